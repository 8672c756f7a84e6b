/*
 * bench_core: the echo engine's benchmark driver (a documented command, not a ctest test;
 * tests/bench/README.md explains the figures, run_core_bench.sh drives it).
 *
 * Three subcommands, each meant to run in a fresh process so its figures are its own:
 *
 *   sweep --targets FILE   one icmp_engine, one icmp_engine_submit() of one job per target
 *                          (count 1), wait for every callback; prints loss, the engine's own
 *                          wall time (submit to last callback) and this process's CPU time
 *                          and peak RSS (getrusage of itself).
 *   rtt --target ADDR      one job of --count echoes --interval ms apart; prints one line per
 *                          echo (wire seq and rtt_ns) so the runner can join each echo with
 *                          the lab responder's hold time for the same (dst, seq).
 *   run -- CMD...          fork/exec CMD, wait4() it and print its wall time, user and system
 *                          CPU time and peak RSS on one line: the same yardstick for fping,
 *                          ping and ourselves, without GNU time.
 *
 * Completion callbacks run on the engine thread and must not block: they count down an
 * atomic and the last one writes an eventfd, which the main thread polls with a bound, so
 * a misbehaving engine makes the benchmark fail instead of hang.
 */
#include "core/icmp.h"
#include "tests/lib/tool.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S  INT64_C(1000000000)

/* Slack beyond the jobs' own timeouts before the benchmark gives up on the engine. */
#define GRACE_NS (10 * NS_PER_S)

static void usage(FILE *out)
{
    fputs("usage: bench_core sweep --targets FILE [--timeout MS] [--size BYTES] [--gap NS]\n"
          "       bench_core rtt --target ADDR [--count N] [--interval MS] [--timeout MS]\n"
          "                      [--size BYTES] [--gap NS]\n"
          "       bench_core run [--report FILE] [--limit S] -- CMD [ARG...]\n"
          "\n"
          "  sweep  ping every address of FILE (one literal a line, '#' comments) once,\n"
          "         all in one submit; print loss, engine wall time, CPU time and peak RSS\n"
          "  rtt    ping ADDR COUNT times (default 200, 20 ms apart); print each echo's\n"
          "         wire seq and rtt_ns, then a summary\n"
          "  run    run CMD, print its wall time, CPU time and peak RSS (to FILE, default\n"
          "         stderr); kill it after S seconds (default 120); exit with its status\n"
          "\n"
          "  --timeout MS  per-echo timeout (default 1000)\n"
          "  --size BYTES  ICMP payload bytes (default 56, as ping and fping)\n"
          "  --gap NS      engine pacing, minimum gap between sends (default: the engine's)\n",
          out);
}

static int64_t timeval_ns(const struct timeval *tv)
{
    return (int64_t)tv->tv_sec * NS_PER_S + (int64_t)tv->tv_usec * 1000;
}

/* Median of n values (sorts them in place); -1 when n is 0. */
static int64_t median_i64(int64_t *v, size_t n)
{
    if (n == 0)
        return -1;
    tool_sort_i64(v, n);
    if (n % 2 == 1)
        return v[n / 2];
    return v[n / 2 - 1] + (v[n / 2] - v[n / 2 - 1]) / 2;
}

/* ---------------------------------------------------------------------------------------
 * Waiting for callbacks.
 */

struct waiter {
    atomic_size_t remaining; /* jobs whose callback has not run yet */
    int efd;                 /* eventfd written by the last callback */
};

/* Runs on the engine thread: never blocks (eventfd writes of 1 do not). */
static void waiter_done(struct icmp_job *job, void *arg)
{
    struct waiter *w = arg;
    uint64_t one = 1;

    (void)job;
    /* A failed write cannot be reported from here; waiter_wait() then times out. */
    if (atomic_fetch_sub(&w->remaining, 1) == 1 && write(w->efd, &one, sizeof(one)) < 0)
        return;
}

static int waiter_init(struct waiter *w, size_t jobs)
{
    atomic_init(&w->remaining, jobs);
    w->efd = eventfd(0, EFD_CLOEXEC);
    return w->efd < 0 ? -errno : 0;
}

/* Waits until every job has completed, or until deadline (CLOCK_MONOTONIC ns). */
static int waiter_wait(struct waiter *w, int64_t deadline)
{
    struct pollfd pfd = {.fd = w->efd, .events = POLLIN};
    uint64_t value;

    for (;;) {
        int64_t left = deadline - tool_now_ns();
        int rc;

        if (left <= 0)
            return -ETIMEDOUT;
        rc = poll(&pfd, 1, left / NS_PER_MS >= INT_MAX ? INT_MAX : (int)(left / NS_PER_MS + 1));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -errno;
        if (rc == 0)
            continue;
        if (read(w->efd, &value, sizeof(value)) < 0 && errno != EAGAIN)
            return -errno;
        return 0;
    }
}

/* ---------------------------------------------------------------------------------------
 * Shared engine options.
 */

struct echo_params {
    int64_t timeout_ns;
    int64_t interval_ns;
    int64_t gap_ns; /* -1: the engine's default */
    uint32_t count;
    uint16_t size;
};

static int open_engine(struct icmp_engine **engine, const struct echo_params *p)
{
    struct icmp_engine_options options = {0};
    int rc;

    options.min_send_gap_ns = p->gap_ns >= 0 ? p->gap_ns : ICMP_DEFAULT_SEND_GAP_NS;
    rc = icmp_engine_open(engine, &options);
    if (rc < 0)
        fprintf(stderr, "bench_core: icmp_engine_open: %s\n", strerror(-rc));
    return rc;
}

static void fill_job(struct icmp_job *job, const struct icmp_addr *dst, const struct echo_params *p,
                     struct icmp_echo_result *results, struct waiter *w)
{
    memset(job, 0, sizeof(*job));
    job->dst = *dst;
    job->count = p->count;
    job->interval_ns = p->interval_ns;
    job->timeout_ns = p->timeout_ns;
    job->payload_size = p->size;
    job->results = results;
    job->on_done = waiter_done;
    job->arg = w;
}

/* Parses the options common to sweep and rtt; returns the index of an unknown one or argc. */
static int parse_echo_option(int argc, char **argv, int i, struct echo_params *p, bool *bad)
{
    int64_t v;

    if (i + 1 >= argc) {
        *bad = true;
        return i;
    }
    if (strcmp(argv[i], "--timeout") == 0 && tool_parse_i64(argv[i + 1], 1, 60000, &v) == 0) {
        p->timeout_ns = v * NS_PER_MS;
    } else if (strcmp(argv[i], "--size") == 0 &&
               tool_parse_i64(argv[i + 1], ICMP_PAYLOAD_MIN, 1400, &v) == 0) {
        p->size = (uint16_t)v;
    } else if (strcmp(argv[i], "--gap") == 0 && tool_parse_i64(argv[i + 1], 0, NS_PER_S, &v) == 0) {
        p->gap_ns = v;
    } else if (strcmp(argv[i], "--count") == 0 && tool_parse_i64(argv[i + 1], 1, 65535, &v) == 0) {
        p->count = (uint32_t)v;
    } else if (strcmp(argv[i], "--interval") == 0 &&
               tool_parse_i64(argv[i + 1], 0, 60000, &v) == 0) {
        p->interval_ns = v * NS_PER_MS;
    } else {
        *bad = true;
    }
    return i + 2;
}

static void print_rusage(const char *what)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    printf("%s user_ns=%" PRId64 " sys_ns=%" PRId64 " cpu_ns=%" PRId64 " maxrss_kb=%ld\n", what,
           timeval_ns(&ru.ru_utime), timeval_ns(&ru.ru_stime),
           timeval_ns(&ru.ru_utime) + timeval_ns(&ru.ru_stime), ru.ru_maxrss);
}

/* ---------------------------------------------------------------------------------------
 * sweep
 */

/* Reads address literals, one a line; blank lines and '#' comments are skipped. */
static int read_targets(const char *path, struct icmp_addr **out, size_t *n_out)
{
    FILE *f = fopen(path, "r");
    struct icmp_addr *addrs = NULL;
    size_t n = 0, cap = 0, lineno = 0;
    char line[256];
    int rc = 0;

    if (f == NULL) {
        rc = -errno;
        fprintf(stderr, "bench_core: %s: %s\n", path, strerror(errno));
        return rc;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *s = line, *e;

        lineno++;
        while (*s == ' ' || *s == '\t')
            s++;
        e = s + strcspn(s, " \t\r\n#");
        if (e == s)
            continue;
        *e = '\0';
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1024;
            struct icmp_addr *grown = realloc(addrs, ncap * sizeof(*addrs));

            if (grown == NULL) {
                rc = -ENOMEM;
                break;
            }
            addrs = grown;
            cap = ncap;
        }
        if (icmp_addr_parse(s, &addrs[n]) != 0) {
            fprintf(stderr, "bench_core: %s:%zu: not an address literal: %s\n", path, lineno, s);
            rc = -EINVAL;
            break;
        }
        n++;
    }
    fclose(f);
    if (rc == 0 && n == 0) {
        fprintf(stderr, "bench_core: %s: no targets\n", path);
        rc = -EINVAL;
    }
    if (rc != 0) {
        free(addrs);
        return rc;
    }
    *out = addrs;
    *n_out = n;
    return 0;
}

static int cmd_sweep(int argc, char **argv)
{
    struct echo_params p = {.timeout_ns = 1000 * NS_PER_MS, .gap_ns = -1, .count = 1, .size = 56};
    const char *targets = NULL;
    struct icmp_addr *addrs = NULL;
    struct icmp_job *jobs = NULL, **ptrs = NULL;
    struct icmp_echo_result *results = NULL;
    struct icmp_engine *engine = NULL;
    struct waiter w = {.efd = -1};
    uint64_t by_status[ICMP_STATUS_LIMIT] = {0};
    uint64_t received = 0, sent = 0, job_errors = 0, dups = 0;
    int64_t *rtts = NULL, t_open, t_submit, t_done;
    size_t n = 0, n_rtt = 0;
    bool bad = false;
    int rc = 1, sub;

    for (int i = 0; i < argc && !bad;) {
        if (strcmp(argv[i], "--targets") == 0 && i + 1 < argc) {
            targets = argv[i + 1];
            i += 2;
        } else {
            i = parse_echo_option(argc, argv, i, &p, &bad);
        }
    }
    if (bad || targets == NULL || p.count != 1) {
        usage(stderr);
        return 2;
    }
    if (read_targets(targets, &addrs, &n) != 0)
        return 1;

    jobs = calloc(n, sizeof(*jobs));
    ptrs = calloc(n, sizeof(*ptrs));
    results = calloc(n, sizeof(*results));
    rtts = calloc(n, sizeof(*rtts));
    if (jobs == NULL || ptrs == NULL || results == NULL || rtts == NULL) {
        fputs("bench_core: out of memory\n", stderr);
        goto out;
    }
    if (waiter_init(&w, n) != 0) {
        fprintf(stderr, "bench_core: eventfd: %s\n", strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        fill_job(&jobs[i], &addrs[i], &p, &results[i], &w);
        ptrs[i] = &jobs[i];
    }

    t_open = icmp_now_ns();
    if (open_engine(&engine, &p) < 0)
        goto out;
    t_submit = icmp_now_ns();
    sub = icmp_engine_submit(engine, ptrs, n);
    if (sub < 0) {
        fprintf(stderr, "bench_core: icmp_engine_submit: %s\n", strerror(-sub));
        goto out;
    }
    if (waiter_wait(&w, t_submit + p.timeout_ns + GRACE_NS) != 0) {
        fprintf(stderr, "bench_core: %zu of %zu jobs still unfinished %" PRId64 " s after submit\n",
                atomic_load(&w.remaining), n, (p.timeout_ns + GRACE_NS) / NS_PER_S);
        goto out;
    }
    t_done = icmp_now_ns();

    for (size_t i = 0; i < n; i++) {
        const struct icmp_job *job = &jobs[i];
        const struct icmp_echo_result *r = &results[i];

        sent += job->sent;
        received += job->received;
        dups += job->duplicates;
        job_errors += job->error != 0;
        if ((unsigned)r->status < ICMP_STATUS_LIMIT)
            by_status[r->status]++;
        if (r->status == ICMP_STATUS_SUCCESS && r->rtt_ns >= 0)
            rtts[n_rtt++] = r->rtt_ns;
    }
    printf("sweep targets=%zu sent=%" PRIu64 " received=%" PRIu64 " lost=%" PRIu64
           " job_errors=%" PRIu64 " duplicates=%" PRIu64 " mode4=%s mode6=%s\n",
           n, sent, received, (uint64_t)n - received, job_errors, dups,
           icmp_socket_mode_name(icmp_engine_mode(engine, AF_INET)),
           icmp_socket_mode_name(icmp_engine_mode(engine, AF_INET6)));
    printf("statuses");
    for (int s = 0; s < ICMP_STATUS_LIMIT; s++) {
        if (by_status[s] != 0)
            printf(" %s=%" PRIu64, icmp_status_name((enum icmp_status)s), by_status[s]);
    }
    printf("\n");
    printf("engine open_ns=%" PRId64 " run_ns=%" PRId64 " rtt_median_ns=%" PRId64 "\n",
           t_submit - t_open, t_done - t_submit, median_i64(rtts, n_rtt));
    icmp_engine_close(engine);
    engine = NULL;
    print_rusage("process");
    rc = 0;
out:
    icmp_engine_close(engine);
    if (w.efd >= 0)
        close(w.efd);
    free(rtts);
    free(results);
    free(ptrs);
    free(jobs);
    free(addrs);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * rtt
 */

static int cmd_rtt(int argc, char **argv)
{
    struct echo_params p = {.timeout_ns = 1000 * NS_PER_MS,
                            .interval_ns = 20 * NS_PER_MS,
                            .gap_ns = -1,
                            .count = 200,
                            .size = 56};
    const char *target = NULL;
    struct icmp_addr dst;
    struct icmp_engine *engine = NULL;
    struct icmp_echo_result *results = NULL;
    struct icmp_job job;
    struct icmp_job *ptr = &job;
    struct waiter w = {.efd = -1};
    int64_t *rtts = NULL, sum = 0, t_submit;
    size_t n_rtt = 0;
    char text[64];
    bool bad = false;
    int rc = 1, sub;

    for (int i = 0; i < argc && !bad;) {
        if (strcmp(argv[i], "--target") == 0 && i + 1 < argc) {
            target = argv[i + 1];
            i += 2;
        } else {
            i = parse_echo_option(argc, argv, i, &p, &bad);
        }
    }
    if (bad || target == NULL) {
        usage(stderr);
        return 2;
    }
    if (icmp_addr_parse(target, &dst) != 0) {
        fprintf(stderr, "bench_core: not an address literal: %s\n", target);
        return 2;
    }
    results = calloc(p.count, sizeof(*results));
    rtts = calloc(p.count, sizeof(*rtts));
    if (results == NULL || rtts == NULL) {
        fputs("bench_core: out of memory\n", stderr);
        goto out;
    }
    if (waiter_init(&w, 1) != 0) {
        fprintf(stderr, "bench_core: eventfd: %s\n", strerror(errno));
        goto out;
    }
    fill_job(&job, &dst, &p, results, &w);
    if (open_engine(&engine, &p) < 0)
        goto out;
    t_submit = icmp_now_ns();
    sub = icmp_engine_submit(engine, &ptr, 1);
    if (sub < 0) {
        fprintf(stderr, "bench_core: icmp_engine_submit: %s\n", strerror(-sub));
        goto out;
    }
    if (waiter_wait(&w, t_submit + (int64_t)p.count * p.interval_ns + p.timeout_ns + GRACE_NS) !=
        0) {
        fputs("bench_core: the job did not complete in time\n", stderr);
        goto out;
    }

    icmp_addr_format(&dst, text, sizeof(text));
    for (uint32_t i = 0; i < p.count; i++) {
        const struct icmp_echo_result *r = &results[i];
        const char *name = icmp_status_name(r->status);

        printf("echo dst=%s index=%" PRIu32 " seq=%u status=%s rtt_ns=%" PRId64 " ttl=%d\n", text,
               i, (unsigned)r->seq, name ? name : "?", r->rtt_ns, r->ttl);
        if (r->status == ICMP_STATUS_SUCCESS && r->rtt_ns >= 0) {
            rtts[n_rtt++] = r->rtt_ns;
            sum += r->rtt_ns;
        }
    }
    printf("rtt dst=%s sent=%" PRIu32 " received=%" PRIu32 " mode=%s mean_ns=%" PRId64
           " median_ns=%" PRId64 "\n",
           text, job.sent, job.received,
           icmp_socket_mode_name(icmp_engine_mode(engine, dst.family)),
           n_rtt ? sum / (int64_t)n_rtt : -1, median_i64(rtts, n_rtt));
    icmp_engine_close(engine);
    engine = NULL;
    print_rusage("process");
    rc = job.received == job.count ? 0 : 3;
out:
    icmp_engine_close(engine);
    if (w.efd >= 0)
        close(w.efd);
    free(rtts);
    free(results);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * run
 */

/*
 * Waits for pid with a bound: a pidfd (Linux 5.3+) becomes readable when the child exits,
 * so poll() gives an exact wall time and a timeout without signals or polling loops.
 * Returns true when the child had to be killed.
 */
static bool wait_bounded(pid_t pid, int64_t limit_ns)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    bool killed = false;

    if (pidfd < 0)
        return false; /* old kernel: wait4() alone, unbounded */
    for (;;) {
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
        int rc = poll(&pfd, 1, (int)(limit_ns / NS_PER_MS));

        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0) {
            kill(pid, SIGKILL);
            killed = true;
        }
        break;
    }
    close(pidfd);
    return killed;
}

static int cmd_run(int argc, char **argv)
{
    const char *report = NULL;
    int64_t limit_s = 120;
    struct rusage ru;
    int status = 0, i = 0, code;
    FILE *out = stderr;
    int64_t t0, t1;
    bool killed;
    pid_t pid;

    while (i < argc && strcmp(argv[i], "--") != 0) {
        if (strcmp(argv[i], "--report") == 0 && i + 1 < argc) {
            report = argv[i + 1];
        } else if (!(strcmp(argv[i], "--limit") == 0 && i + 1 < argc &&
                     tool_parse_i64(argv[i + 1], 1, 3600, &limit_s) == 0)) {
            usage(stderr);
            return 2;
        }
        i += 2;
    }
    if (i + 1 >= argc) {
        usage(stderr);
        return 2;
    }
    char **cmd = &argv[i + 1];

    fflush(NULL);
    t0 = tool_now_ns();
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "bench_core: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        execvp(cmd[0], cmd);
        fprintf(stderr, "bench_core: %s: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    killed = wait_bounded(pid, limit_s * NS_PER_S);
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "bench_core: wait4: %s\n", strerror(errno));
            return 1;
        }
    }
    t1 = tool_now_ns();

    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (report != NULL) {
        out = fopen(report, "w");
        if (out == NULL) {
            fprintf(stderr, "bench_core: %s: %s\n", report, strerror(errno));
            return 1;
        }
    }
    fprintf(out,
            "run wall_ns=%" PRId64 " user_ns=%" PRId64 " sys_ns=%" PRId64 " cpu_ns=%" PRId64
            " maxrss_kb=%ld exit=%d killed=%d\n",
            t1 - t0, timeval_ns(&ru.ru_utime), timeval_ns(&ru.ru_stime),
            timeval_ns(&ru.ru_utime) + timeval_ns(&ru.ru_stime), ru.ru_maxrss, code,
            killed ? 1 : 0);
    if (out != stderr && fclose(out) != 0) {
        fprintf(stderr, "bench_core: %s: write failed\n", report);
        return 1;
    }
    return code;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "sweep") == 0)
        return cmd_sweep(argc - 2, argv + 2);
    if (strcmp(argv[1], "rtt") == 0)
        return cmd_rtt(argc - 2, argv + 2);
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
