/*
 * When the engine's wait for events fails (anything but EINTR), it must say so and stop, not
 * spin: the jobs it holds complete with error = -errno through their callbacks, its thread
 * ends (the process stops using CPU), icmp_engine_submit() returns the error and
 * icmp_engine_error() reports it. The IcmpSendEcho call returns it instead of looping.
 *
 * The failures are the kernel's own, on a real engine pinging 127.0.0.1: the test takes the
 * engine's epoll descriptor away the way a bug elsewhere in a process would, by closing it
 * (epoll_pwait2 then fails with EBADF) or by putting another file under its number
 * (EINVAL). The descriptor is found in /proc/self/fd, where it is the process's only
 * "anon_inode:[eventpoll]". The epoll_wait fallback is reached for real too: a seccomp filter
 * fails epoll_pwait2 with EPERM, as a container profile that predates the call does. The
 * filter stays for the rest of the process, so that part runs last.
 */
#include "core/icmp.h"
#include "engine_util.h"
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct icmp_addr lo4;

/* The process's only epoll descriptor, or -1 (none, or more than one). */
static int find_epoll_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int found = -1, n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        char target[64];
        ssize_t len = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strcmp(target, "anon_inode:[eventpoll]") == 0) {
            found = (int)strtol(de->d_name, NULL, 10);
            n++;
        }
    }
    closedir(d);
    return n == 1 ? found : -1;
}

/* CPU time of the whole process (every thread) over `ns` of sleep. */
static int64_t cpu_ns_over(int64_t ns)
{
    int64_t before = tu_clock_ns(CLOCK_PROCESS_CPUTIME_ID);

    tu_sleep_ns(ns);
    return tu_clock_ns(CLOCK_PROCESS_CPUTIME_ID) - before;
}

/* A spinning engine thread burnt 80-110 ms of these 200 ms on a shared 2-core machine (ASan
 * build); the stopped engine leaves the process under 2 ms. */
#define IDLE_WINDOW_NS (200 * TU_MS)
#define IDLE_CPU_MAX   (20 * TU_MS)

enum breakage {
    CLOSE_FD, /* close(epfd): the wait fails with EBADF */
    REUSE_FD, /* another file under the number: EINVAL (not an epoll descriptor) */
};

/*
 * Takes the engine's epoll descriptor away while a job waits for its second echo, checks what
 * the engine makes of the failure, and closes the engine.
 */
static void break_and_check(struct icmp_engine *engine, enum breakage how, int want,
                            const char *what)
{
    int epfd = find_epoll_fd();

    if (epfd < 0) {
        TEST_FAIL_AT("%s: no single epoll descriptor in /proc/self/fd", what);
        return;
    }

    /* A job with an echo answered and one due 5 s later: the engine sleeps in its wait. */
    struct tu_job *held = tu_job_new(&lo4, 2, 5000 * TU_MS, 1000 * TU_MS, 56);
    struct icmp_job *job = &held->job;
    REQUIRE(icmp_engine_submit(engine, &job, 1) == 0);
    tu_sleep_ns(100 * TU_MS);

    if (how == CLOSE_FD) {
        REQUIRE(close(epfd) == 0);
        /* Nothing opens a descriptor from here to icmp_engine_close, which closes the
         * number again (EBADF, harmless): it cannot hit a file of someone else's. */
    } else {
        int other = open("/dev/null", O_RDONLY | O_CLOEXEC);
        REQUIRE(other >= 0);
        REQUIRE(dup2(other, epfd) == epfd);
        close(other);
    }

    /* The engine still sleeps on the epoll file it entered the wait with: a new job wakes
     * it (through its eventfd), and its next wait fails. */
    struct tu_job *waker = tu_job_new(&lo4, 1, 0, 1000 * TU_MS, 56);
    job = &waker->job;
    int rc = icmp_engine_submit(engine, &job, 1);
    if (rc != 0) {
        CHECK_EQ(rc, want); /* the engine failed first: refused, equally right */
        tu_job_not_submitted(waker);
    }

    struct tu_job *both[2] = {held, waker};
    if (!tu_wait(both, 2, 2000 * TU_MS))
        TEST_FAIL_AT("%s: jobs not completed within 2 s of the failure (held %u, waker %u "
                     "callbacks)",
                     what, held->calls, waker->calls);

    pthread_mutex_lock(&tu_lock);
    if (held->calls > 0) {
        CHECK_EQ(held->calls, 1);
        CHECK_EQ(held->job.error, want);
        CHECK(!held->job.cancelled);
        /* What was learnt before stays: the first echo went out and was answered, the
         * second never went out. */
        CHECK_EQ(held->job.sent, 1);
        CHECK_EQ(held->job.received, 1);
        CHECK(held->results[0].sent);
        CHECK_EQ(held->results[0].status, ICMP_STATUS_SUCCESS);
        CHECK(!held->results[1].sent);
    }
    if (rc == 0 && waker->calls > 0) {
        CHECK_EQ(waker->calls, 1);
        CHECK_EQ(waker->job.error, want);
    }
    pthread_mutex_unlock(&tu_lock);
    CHECK_EQ(icmp_engine_error(engine), want);

    /* The thread has stopped: no CPU burnt on a wait that fails at once, over and over. */
    int64_t cpu = cpu_ns_over(IDLE_WINDOW_NS);
    fprintf(stderr, "%s: %.1f ms of CPU in the %" PRId64 " ms after the failure\n", what,
            (double)cpu / 1e6, IDLE_WINDOW_NS / TU_MS);
    if (cpu > IDLE_CPU_MAX)
        TEST_FAIL_AT("%s: the process used %" PRId64 " ms of CPU in %" PRId64
                     " ms after the failure (the engine spins)",
                     what, cpu / TU_MS, IDLE_WINDOW_NS / TU_MS);

    /* Later submits are refused with the error, and their callbacks never run. */
    struct tu_job *late = tu_job_new(&lo4, 1, 0, 1000 * TU_MS, 56);
    job = &late->job;
    rc = icmp_engine_submit(engine, &job, 1);
    CHECK_EQ(rc, want);
    if (rc != 0)
        tu_job_not_submitted(late);
    /* Cancelling a job the engine already settled does nothing. */
    icmp_engine_cancel(engine, &held->job);

    icmp_engine_close(engine);
    pthread_mutex_lock(&tu_lock);
    CHECK_LE(held->calls, 1);
    CHECK_LE(waker->calls, 1);
    if (rc == 0)
        CHECK_EQ(late->calls, 1); /* a submit the engine took must still complete */
    pthread_mutex_unlock(&tu_lock);
    tu_job_free(held);
    tu_job_free(waker);
    tu_job_free(late);
}

static struct icmp_engine *open_engine(const char *what)
{
    struct icmp_engine *engine = NULL;
    struct icmp_engine_options o = {.min_send_gap_ns = ICMP_DEFAULT_SEND_GAP_NS,
                                    .families = AF_INET};
    int rc = icmp_engine_open(&engine, &o);

    if (rc == -EACCES || rc == -EPERM)
        TEST_SKIP("icmp_engine_open: %d: no ICMP socket here (needs CAP_NET_RAW or "
                  "net.ipv4.ping_group_range)",
                  rc);
    if (rc != 0)
        TEST_FAIL_AT("%s: icmp_engine_open = %d", what, rc);
    REQUIRE(rc == 0 && engine != NULL);
    return engine;
}

/* An engine that ran fine until its wait failed. */
static void check_engine(enum breakage how, int want, const char *what)
{
    struct icmp_engine *engine = open_engine(what);
    struct tu_job *t = tu_job_new(&lo4, 1, 0, 1000 * TU_MS, 56);

    if (tu_run(engine, t, 2000 * TU_MS, what)) {
        CHECK_EQ(t->job.error, 0);
        CHECK_EQ(t->job.received, 1);
    }
    CHECK_EQ(icmp_engine_error(engine), 0);
    tu_job_free(t);
    break_and_check(engine, how, want, what);
}

/* The IcmpSendEcho call drives the engine in its own thread: it returns the error. */
static void check_sync(void)
{
    struct icmp_handle *h = NULL;
    uint8_t buf[ICMP_REPLY_BUFFER_SIZE(8)];
    static const uint8_t data[8] = "abcdefg";

    REQUIRE(icmp_open(&h, AF_INET) == 0);
    CHECK_EQ(icmp_send_echo(h, &lo4, data, sizeof(data), NULL, buf, sizeof(buf), 1000), 1);
    int epfd = find_epoll_fd();
    int other = open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(epfd >= 0 && other >= 0);
    REQUIRE(dup2(other, epfd) == epfd);
    close(other);

    int64_t t0 = tu_now_ns(), cpu0 = tu_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    int rc = icmp_send_echo(h, &lo4, data, sizeof(data), NULL, buf, sizeof(buf), 1000);
    int64_t took = tu_now_ns() - t0, cpu = tu_clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    CHECK_EQ(rc, -EINVAL);
    if (took > 500 * TU_MS)
        TEST_FAIL_AT("sync: icmp_send_echo took %" PRId64 " ms (%" PRId64 " ms of CPU) to "
                     "report the failed wait",
                     took / TU_MS, cpu / TU_MS);
    CHECK_EQ(icmp_send_echo(h, &lo4, data, sizeof(data), NULL, buf, sizeof(buf), 1000), -EINVAL);
    icmp_close(h);
}

/* Makes epoll_pwait2 fail with EPERM in this thread and the threads it creates from now on.
 * Returns false where seccomp filters are not available. */
static bool deny_epoll_pwait2(void)
{
    /* Syscall 441 is epoll_pwait2 on every architecture; nothing else is touched, so the
     * filter needs no architecture check. */
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_epoll_pwait2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return false;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0;
}

int main(void)
{
    tu_init();
    REQUIRE(tu_addr_from_text("127.0.0.1", &lo4));

    /* epoll_pwait2, the wait the engine uses where the kernel has it. */
    check_engine(CLOSE_FD, -EBADF, "epoll_pwait2, descriptor closed");
    check_engine(REUSE_FD, -EINVAL, "epoll_pwait2, descriptor reused");
    check_sync();

    /* epoll_wait, the fallback where epoll_pwait2 is refused (EPERM) or missing (ENOSYS):
     * the engine must still work on it, then fail the same way when its wait fails. */
    if (!deny_epoll_pwait2()) {
        fprintf(stderr, "no seccomp filters here: the epoll_wait fallback is not tested\n");
        return TEST_DONE();
    }
    /* The engine threads start after the filter, so they inherit it: their epoll_pwait2 gets
     * EPERM (not EBADF for this bad descriptor), and only epoll_wait is left to them. */
    struct epoll_event ev;
    errno = 0;
    REQUIRE(epoll_pwait2(-1, &ev, 1, NULL, NULL) == -1 && errno == EPERM);
    check_engine(CLOSE_FD, -EBADF, "epoll_wait fallback, descriptor closed");
    check_engine(REUSE_FD, -EINVAL, "epoll_wait fallback, descriptor reused");
    return TEST_DONE();
}
