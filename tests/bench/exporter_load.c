/*
 * exporter_load: the HTTP load client of the exporter benchmark (run_exporter_bench.sh;
 * tests/bench/README.md explains the figures). A documented tool, not a ctest test.
 *
 * One epoll loop, non-blocking sockets, CONCURRENCY connection slots taking the request
 * paths of a file in order ('#' lines are comments). The first wave is a barrier: every slot
 * connects first, and only when all are connected are all first requests written, back to back, so
 * "1,000 concurrent requests" means 1,000 requests on the wire within a millisecond or so, not
 * 1,000 connects trickling in. Later requests of a slot reuse its connection
 * (--keepalive) or open a new one (the default, "Connection: close").
 *
 * Each response is read whole by the test tools' HTTP client (tests/lib/http_client.h:
 * Content-Length, chunked, or until the server closes), then judged: status
 * 200, and the body contains --expect when given. --value METRIC takes that sample's value
 * (seconds) from each body, for "turnaround minus the RTT the exporter reports".
 *
 * --watch PID samples the server while the load runs, without a helper process: its
 * thread count (/proc/PID/status Threads, at least every millisecond), its CPU time
 * (the process CPU clock of clock_getcpuclockid(), which counts exited threads too, and
 * utime+stime of /proc/PID/stat as a cross-check) just before the first request and just
 * after the last response, and VmHWM / VmRSS at the end.
 *
 * Everything is bounded: --limit seconds for the whole run, then unfinished requests
 * count as failed.
 */
#include "tests/lib/http_client.h"
#include "tests/lib/tool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S TOOL_NS_PER_S

#define MAX_SLOTS    20000
#define MAX_REQUESTS 1000000
#define MAX_RESPONSE (512u * 1024 * 1024)
#define SAMPLE_NS    TOOL_NS_PER_MS

static void usage(FILE *out)
{
    fputs("usage: exporter_load --connect ADDR:PORT --paths FILE [--concurrency N] [--keepalive]\n"
          "                     [--expect TEXT] [--value METRIC] [--watch PID] [--lines FILE]\n"
          "                     [--body FILE] [--limit S]\n"
          "\n"
          "  --paths FILE       request paths, one a line (\"/probe?target=...\"), sent in order\n"
          "  --concurrency N    connection slots (default: one per path, at most 20000)\n"
          "  --keepalive        a slot sends its requests one after another on one connection\n"
          "  --expect TEXT      a response counts as ok only if its body contains TEXT\n"
          "  --value METRIC     take the value of sample METRIC (name{labels}) from each body\n"
          "  --watch PID        sample PID's threads, CPU time and RSS during the run\n"
          "  --lines FILE       write \"index status latency_ns value_ns ok\" per request\n"
          "  --body FILE        write every response body to FILE\n"
          "  --limit S          give up after S seconds (default 60)\n"
          "\n"
          "Prints one line: load requests= ok= ... wall_ns= lat_p50_ns= ... cpu_ns= ...\n",
          out);
}

/* ---------------------------------------------------------------------------------------
 * Watching the server.
 */

struct watch {
    pid_t pid;
    int status_fd;
    clockid_t clock;
    bool have_clock;
    int threads_max, threads_first;
    int64_t samples, last_ns;
};

/* Reads /proc/PID/status into buf; returns false when the process is gone. */
static bool watch_status(struct watch *w, char *buf, size_t size)
{
    ssize_t n;

    if (w->status_fd < 0)
        return false;
    n = pread(w->status_fd, buf, size - 1, 0);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* The value of "Key:\t<n>" in a /proc status text, or -1. */
static long status_field(const char *text, const char *key)
{
    size_t klen = strlen(key);

    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ':')
            return strtol(p + klen + 1, NULL, 10);
    }
    return -1;
}

static void watch_sample(struct watch *w, int64_t now)
{
    char text[4096];
    long threads;

    if (w->pid <= 0 || (now - w->last_ns < SAMPLE_NS && w->samples > 0))
        return;
    w->last_ns = now;
    if (!watch_status(w, text, sizeof(text)))
        return;
    threads = status_field(text, "Threads");
    if (threads < 0)
        return;
    if (w->samples++ == 0)
        w->threads_first = (int)threads;
    if (threads > w->threads_max)
        w->threads_max = (int)threads;
}

/* The watched process's CPU time in ns (process CPU clock), or -1. */
static int64_t watch_cpu_ns(const struct watch *w)
{
    struct timespec ts;

    if (!w->have_clock || clock_gettime(w->clock, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * NS_PER_S + (int64_t)ts.tv_nsec;
}

/* utime + stime of /proc/PID/stat in ns (clock-tick resolution), or -1. */
static int64_t watch_stat_cpu_ns(const struct watch *w)
{
    char path[64], text[2048];
    unsigned long long ut = 0, st = 0;
    const char *p;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)w->pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    text[n] = '\0';
    /* Fields after the command name, which may hold spaces: state is field 3, utime 14. */
    p = strrchr(text, ')');
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (int64_t)(ut + st) * (NS_PER_S / sysconf(_SC_CLK_TCK));
}

/* ---------------------------------------------------------------------------------------
 * Connections.
 */

struct slot {
    struct hc_conn conn;
    size_t req; /* index of its current request */
    int64_t sent_ns;
};

struct result {
    int status;
    bool ok;
    int64_t latency_ns;
    int64_t value_ns; /* -1 when absent */
};

struct load {
    struct sockaddr_in addr;
    const char *host;
    char **paths;
    size_t n_paths, next_req, done;
    struct slot *slots;
    size_t n_slots;
    bool keepalive;
    const char *expect, *value;
    FILE *body_out;
    struct result *results;
    int ep;
    int64_t first_send_ns, last_done_ns;
    struct watch watch;
    int64_t cpu0, stat_cpu0;
    size_t connect_errors;
};

/* Formats and starts writing request s->req; its latency runs from now. */
static int slot_send(struct load *l, struct slot *s, int64_t now)
{
    struct hc_request rq = {.path = l->paths[s->req],
                            .host = l->host,
                            .user_agent = "exporter_load",
                            .close = !l->keepalive};
    int rc = hc_conn_request(&s->conn, &rq);

    if (rc < 0)
        return rc;
    s->sent_ns = now;
    if (l->first_send_ns == 0)
        l->first_send_ns = now;
    return hc_conn_write(&s->conn);
}

/* The value of sample `name` (a whole line prefix up to a space) in body, in ns, or -1. */
static int64_t sample_value_ns(const char *body, size_t len, const char *name)
{
    double v;

    return hc_sample_value(body, len, name, &v) && v >= 0 ? (int64_t)(v * 1e9 + 0.5) : -1;
}

/* Records request s->req as finished (complete: a whole response) and gives the slot its
 * next request. */
static void slot_finish(struct load *l, struct slot *s, bool complete, int64_t now)
{
    struct result *r = &l->results[s->req];
    bool reuse = complete && l->keepalive && hc_conn_reusable(&s->conn);

    r->status = complete ? hc_response_status(&s->conn.resp) : 0;
    r->latency_ns = now - s->sent_ns;
    r->value_ns = -1;
    r->ok = false;
    if (complete) {
        size_t len;
        const char *body = hc_response_body(&s->conn.resp, &len);

        r->ok = r->status == 200 &&
                (l->expect == NULL || memmem(body, len, l->expect, strlen(l->expect)) != NULL);
        if (l->value != NULL)
            r->value_ns = sample_value_ns(body, len, l->value);
        if (l->body_out != NULL)
            fwrite(body, 1, len, l->body_out);
    }
    l->done++;
    l->last_done_ns = now;
    if (!reuse || l->next_req >= l->n_paths)
        hc_conn_close(&s->conn);
    if (l->next_req >= l->n_paths)
        return;
    s->req = l->next_req++;
    if (reuse) {
        if (slot_send(l, s, now) < 0)
            slot_finish(l, s, false, tool_now_ns());
        return;
    }
    if (hc_conn_open(&s->conn, &l->addr) < 0) {
        l->connect_errors++;
        s->sent_ns = now;
        slot_finish(l, s, false, now);
    }
}

static void slot_event(struct load *l, struct slot *s, uint32_t events, bool barrier_done)
{
    int64_t now = tool_now_ns();

    switch (hc_conn_event(&s->conn, events)) {
    case HC_MORE:
        return;
    case HC_CONNECTED:
        /* Before the barrier it stays parked until every first connection is up. */
        if (barrier_done && slot_send(l, s, now) < 0)
            slot_finish(l, s, false, tool_now_ns());
        return;
    case HC_CONNECT_FAILED:
        l->connect_errors++;
        s->sent_ns = now;
        slot_finish(l, s, false, now);
        return;
    case HC_DONE:
        slot_finish(l, s, true, tool_now_ns());
        return;
    case HC_FAILED:
    case HC_TRUNCATED:
        slot_finish(l, s, false, tool_now_ns());
        return;
    }
}

static void report(struct load *l, const char *lines_file, int64_t cpu1, int64_t stat_cpu1)
{
    size_t ok = 0, bad_status = 0, no_expect = 0, failed = 0, n_lat = 0, n_diff = 0;
    int64_t *lat = calloc(l->n_paths + 1, sizeof(*lat));
    int64_t *diff = calloc(l->n_paths + 1, sizeof(*diff));
    char text[4096];
    long hwm = -1, rss = -1;
    size_t connects = 0;
    FILE *lf = NULL;

    if (lines_file != NULL) {
        lf = fopen(lines_file, "w");
        if (lf == NULL)
            fprintf(stderr, "exporter_load: %s: %s\n", lines_file, strerror(errno));
    }
    for (size_t i = 0; i < l->n_paths; i++) {
        const struct result *r = &l->results[i];

        if (r->status == 0)
            failed++;
        else if (r->status != 200)
            bad_status++;
        else if (!r->ok)
            no_expect++;
        else
            ok++;
        if (r->status != 0 && lat != NULL)
            lat[n_lat++] = r->latency_ns;
        if (r->ok && r->value_ns >= 0 && diff != NULL)
            diff[n_diff++] = r->latency_ns - r->value_ns;
        if (lf != NULL)
            fprintf(lf, "%zu %d %" PRId64 " %" PRId64 " %d\n", i, r->status, r->latency_ns,
                    r->value_ns, r->ok ? 1 : 0);
    }
    if (lf != NULL)
        fclose(lf);
    for (size_t i = 0; i < l->n_slots; i++)
        connects += (size_t)l->slots[i].conn.opened;
    if (watch_status(&l->watch, text, sizeof(text))) {
        hwm = status_field(text, "VmHWM");
        rss = status_field(text, "VmRSS");
    }
    printf("load requests=%zu ok=%zu bad_status=%zu no_expect=%zu failed=%zu connect_errors=%zu"
           " connects=%zu concurrency=%zu wall_ns=%" PRId64,
           l->n_paths, ok, bad_status, no_expect, failed, l->connect_errors, connects, l->n_slots,
           l->first_send_ns ? l->last_done_ns - l->first_send_ns : -1);
    if (lat != NULL && diff != NULL) {
        int64_t p50, p90, p99, mx;

        tool_sort_i64(lat, n_lat);
        tool_sort_i64(diff, n_diff);
        p50 = tool_quantile_i64(lat, n_lat, 0.5);
        p90 = tool_quantile_i64(lat, n_lat, 0.9);
        p99 = tool_quantile_i64(lat, n_lat, 0.99);
        mx = tool_quantile_i64(lat, n_lat, 1.0);
        printf(" lat_min_ns=%" PRId64 " lat_p50_ns=%" PRId64 " lat_p90_ns=%" PRId64
               " lat_p99_ns=%" PRId64 " lat_max_ns=%" PRId64 " value_n=%zu diff_p50_ns=%" PRId64,
               n_lat ? lat[0] : -1, p50, p90, p99, mx, n_diff,
               tool_quantile_i64(diff, n_diff, 0.5));
    }
    printf(" threads_start=%d threads_max=%d thread_samples=%" PRId64 " vmhwm_kb=%ld vmrss_kb=%ld"
           " cpu_ns=%" PRId64 " stat_cpu_ns=%" PRId64 "\n",
           l->watch.samples ? l->watch.threads_first : -1,
           l->watch.samples ? l->watch.threads_max : -1, l->watch.samples, hwm, rss,
           cpu1 >= 0 && l->cpu0 >= 0 ? cpu1 - l->cpu0 : -1,
           stat_cpu1 >= 0 && l->stat_cpu0 >= 0 ? stat_cpu1 - l->stat_cpu0 : -1);
    free(lat);
    free(diff);
}

int main(int argc, char **argv)
{
    const char *connect_to = NULL, *paths = NULL, *lines = NULL, *body = NULL;
    int64_t concurrency = 0, limit_s = 60, pid = 0, deadline, cpu1 = -1, stat_cpu1 = -1;
    struct load l = {.ep = -1, .watch = {.status_fd = -1}};
    bool barrier_done = false;
    size_t connected = 0;
    const struct tool_opt opts[] = {
        TOOL_TEXT("--connect", &connect_to),
        TOOL_TEXT("--paths", &paths),
        TOOL_INT("--concurrency", &concurrency, 1, MAX_SLOTS),
        TOOL_FLAG("--keepalive", &l.keepalive),
        TOOL_TEXT("--expect", &l.expect),
        TOOL_TEXT("--value", &l.value),
        TOOL_INT("--watch", &pid, 1, INT32_MAX),
        TOOL_TEXT("--lines", &lines),
        TOOL_TEXT("--body", &body),
        TOOL_INT("--limit", &limit_s, 1, 3600),
    };
    int rc;

    rc = tool_parse_args(argc, argv, opts, sizeof(opts) / sizeof(opts[0]));
    if (rc == 1) {
        usage(stdout);
        return 0;
    }
    if (rc < 0 || connect_to == NULL || paths == NULL || hc_parse_addr(connect_to, &l.addr) < 0)
        goto bad_usage;
    l.host = connect_to;
    if ((rc = tool_read_lines(paths, MAX_REQUESTS, &l.paths, &l.n_paths)) < 0) {
        fprintf(stderr, "exporter_load: %s: %s\n", paths, strerror(-rc));
        return 1;
    }
    rc = 1;
    l.n_slots = concurrency > 0 ? (size_t)concurrency : l.n_paths;
    if (l.n_slots > l.n_paths)
        l.n_slots = l.n_paths;
    if (l.n_slots > MAX_SLOTS)
        l.n_slots = MAX_SLOTS;
    tool_raise_nofile(l.n_slots);
    l.ep = epoll_create1(EPOLL_CLOEXEC);
    l.slots = calloc(l.n_slots, sizeof(*l.slots));
    l.results = calloc(l.n_paths, sizeof(*l.results));
    for (size_t i = 0; l.slots != NULL && i < l.n_slots; i++)
        hc_conn_init(&l.slots[i].conn, l.ep, &l.slots[i], MAX_RESPONSE);
    if (l.slots == NULL || l.results == NULL || l.ep < 0) {
        fprintf(stderr, "exporter_load: out of memory or descriptors\n");
        goto out;
    }
    if (body != NULL && (l.body_out = fopen(body, "w")) == NULL) {
        fprintf(stderr, "exporter_load: %s: %s\n", body, strerror(errno));
        goto out;
    }
    if (pid > 0) {
        char path[64];

        l.watch.pid = (pid_t)pid;
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        l.watch.status_fd = open(path, O_RDONLY | O_CLOEXEC);
        l.watch.have_clock = clock_getcpuclockid((pid_t)pid, &l.watch.clock) == 0;
        if (l.watch.status_fd < 0)
            fprintf(stderr, "exporter_load: %s: %s\n", path, strerror(errno));
    }

    /* First wave: every slot connects; nothing is sent until all are connected. */
    for (size_t i = 0; i < l.n_slots; i++) {
        struct slot *s = &l.slots[i];
        int err;

        s->req = l.next_req++;
        if ((err = hc_conn_open(&s->conn, &l.addr)) < 0) {
            fprintf(stderr, "exporter_load: connect: %s\n", strerror(-err));
            l.connect_errors++;
            s->sent_ns = tool_now_ns();
            l.results[s->req].latency_ns = 0;
            l.done++;
        }
    }
    deadline = tool_now_ns() + limit_s * NS_PER_S;
    while (l.done < l.n_paths) {
        struct epoll_event evs[256];
        int64_t now = tool_now_ns();
        int n;

        if (now >= deadline) {
            fprintf(stderr, "exporter_load: gave up after %" PRId64 " s: %zu of %zu done\n",
                    limit_s, l.done, l.n_paths);
            break;
        }
        if (!barrier_done) {
            connected = 0;
            for (size_t i = 0; i < l.n_slots; i++)
                connected += l.slots[i].conn.state != HC_STATE_CONNECTING;
            if (connected == l.n_slots) {
                barrier_done = true;
                l.cpu0 = watch_cpu_ns(&l.watch);
                l.stat_cpu0 = watch_stat_cpu_ns(&l.watch);
                watch_sample(&l.watch, now);
                for (size_t i = 0; i < l.n_slots; i++) {
                    struct slot *s = &l.slots[i];

                    if (s->conn.state == HC_STATE_CONNECTED && slot_send(&l, s, tool_now_ns()) < 0)
                        slot_finish(&l, s, false, tool_now_ns());
                }
                continue;
            }
        }
        n = epoll_wait(l.ep, evs, 256, barrier_done && l.watch.pid > 0 ? 1 : 10);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "exporter_load: epoll_wait: %s\n", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++)
            slot_event(&l, evs[i].data.ptr, evs[i].events, barrier_done);
        if (barrier_done)
            watch_sample(&l.watch, tool_now_ns());
    }
    cpu1 = watch_cpu_ns(&l.watch);
    stat_cpu1 = watch_stat_cpu_ns(&l.watch);
    if (l.first_send_ns == 0)
        l.cpu0 = l.stat_cpu0 = -1;
    report(&l, lines, cpu1, stat_cpu1);
    rc = 0;
    for (size_t i = 0; i < l.n_paths; i++)
        rc |= !l.results[i].ok;
out:
    for (size_t i = 0; l.slots != NULL && i < l.n_slots; i++)
        hc_conn_cleanup(&l.slots[i].conn);
    tool_free_lines(l.paths, l.n_paths);
    free(l.slots);
    free(l.results);
    if (l.body_out != NULL)
        fclose(l.body_out);
    if (l.watch.status_fd >= 0)
        close(l.watch.status_fd);
    if (l.ep >= 0)
        close(l.ep);
    return rc;
bad_usage:
    usage(stderr);
    return 2;
}
