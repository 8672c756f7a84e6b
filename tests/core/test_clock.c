/*
 * The engine's clocks: round-trip times and the "late" decision are CLOCK_MONOTONIC
 * durations, so setting the wall clock (CLOCK_REALTIME, in which the kernel stamps packets)
 * cannot move them.
 *
 * The wall clock of a shared machine must not be set, so the step is made where it may be:
 * inside a time namespace of our own (CLONE_NEWTIME, Linux 5.6), which offsets CLOCK_MONOTONIC
 * only. A child process (setns into a time namespace needs a single-threaded process) drives
 * an engine with no thread of its own: it sends an echo to the lab's delay host, lets the
 * reply arrive, then moves its CLOCK_MONOTONIC forward while the kernel's CLOCK_REALTIME
 * stamps stay where they were, and only then lets the engine read the reply. An engine that
 * measures in CLOCK_MONOTONIC sees the jump inside the echo: a jump past the timeout makes
 * the reply late, a smaller one lengthens the RTT by exactly the jump. An engine measuring in
 * CLOCK_REALTIME sees neither; that is the engine a wall-clock step would fool.
 *
 * Runs inside the lab (core_lab_clock), in both socket modes and both families.
 */
#include "core/icmp_internal.h"
#include "engine_util.h"
#include "test.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#define JUMP_LATE_NS (10000 * TU_MS) /* past the echo's 1 s timeout */
#define JUMP_RTT_NS  (300 * TU_MS)   /* inside it */

/* What the child reports through its pipe. */
struct jump_report {
    int stage; /* 0: ran to the end; else where it stopped (see the messages) */
    int err;   /* errno or -rc of the failing step */
    enum icmp_status status;
    int64_t rtt_ns;
    uint32_t late, received;
    int64_t jumped_ns; /* how far icmp_now_ns() moved across the namespace switch */
};

static void on_done(struct icmp_job *job, void *arg)
{
    (void)job;
    *(bool *)arg = true;
}

/* Moves this (single-threaded) process into a new time namespace whose CLOCK_MONOTONIC is
 * offset_ns ahead. Returns 0 or -errno. */
static int jump_monotonic(int64_t offset_ns)
{
    char text[64];
    int fd, rc = 0;

    if (unshare(CLONE_NEWTIME) != 0)
        return -errno;
    /* The offsets can be written until a process enters the namespace. */
    fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int n = snprintf(text, sizeof(text), "monotonic %" PRId64 " %" PRId64 "\n",
                     offset_ns / 1000000000, offset_ns % 1000000000);
    if (write(fd, text, (size_t)n) != n)
        rc = -errno;
    close(fd);
    if (rc != 0)
        return rc;
    fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (setns(fd, CLONE_NEWTIME) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

static void child(int family, enum icmp_socket_mode mode, const struct icmp_addr *delay,
                  const struct icmp_addr *fast, int64_t jump_ns, int out)
{
    struct jump_report rep = {0};
    struct icmp_engine_options o = {.min_send_gap_ns = ICMP_DEFAULT_SEND_GAP_NS,
                                    .mode4 = mode,
                                    .mode6 = mode,
                                    .no_thread = true,
                                    .families = family};
    struct icmp_engine *e = NULL;
    struct icmp_echo_result ra, rb;
    struct icmp_job a = {0}, b = {0};
    struct icmp_job *jobs[2] = {&a, &b};
    bool done_a = false, done_b = false;
    int rc = icmp_engine_open(&e, &o);

    if (rc != 0) {
        rep.stage = 1;
        rep.err = -rc;
        goto out;
    }
    /* a: the delay host (reply after 20 ms), sent first; b: the fast host, right after. */
    a.dst = *delay;
    b.dst = *fast;
    a.count = b.count = 1;
    a.timeout_ns = b.timeout_ns = 1000 * TU_MS;
    a.payload_size = b.payload_size = 56;
    a.results = &ra;
    b.results = &rb;
    a.on_done = b.on_done = on_done;
    a.arg = &done_a;
    b.arg = &done_b;
    rc = icmp_engine_submit(e, jobs, 2);
    if (rc != 0) {
        rep.stage = 2;
        rep.err = -rc;
        goto out;
    }
    /* Runs until b is answered: a is in flight by then, and nobody reads the socket after. */
    icmp__engine_run_until(e, &done_b);
    if (done_a || !ra.sent) {
        rep.stage = 3;
        goto out;
    }
    tu_sleep_ns(100 * TU_MS); /* a's reply arrives and waits, stamped by the kernel */
    int64_t before = icmp_now_ns();
    rc = jump_monotonic(jump_ns);
    rep.jumped_ns = icmp_now_ns() - before;
    if (rc != 0) {
        rep.stage = 4;
        rep.err = -rc;
        goto out;
    }
    icmp__engine_run_until(e, &done_a);
    rep.status = ra.status;
    rep.rtt_ns = ra.rtt_ns;
    rep.late = a.late;
    rep.received = a.received;
out:
    icmp_engine_close(e);
    if (write(out, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
        _exit(2);
    _exit(0);
}

/* Runs one jump in a child; false (a failure reported) when it did not get to the end. */
static bool run_jump(int family, enum icmp_socket_mode mode, const struct icmp_addr *delay,
                     const struct icmp_addr *fast, int64_t jump_ns, const char *what,
                     struct jump_report *rep)
{
    static const char *const stages[] = {"ran", "icmp_engine_open", "icmp_engine_submit",
                                         "the delay host's echo settled before the jump",
                                         "entering a time namespace"};

    /* Stage 3 proves nothing either way: on a busy machine the fast host's reply may be read
     * only after the delay host's, 20 ms later. Such a run is tried again, 3 times at most. */
    for (int attempt = 0;; attempt++) {
        int fds[2], status = 0;
        pid_t pid;
        ssize_t n;

        REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
        fflush(stderr);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child(family, mode, delay, fast, jump_ns, fds[1]);
        }
        close(fds[1]);
        n = read(fds[0], rep, sizeof(*rep)); /* the child's engine gives up within 1 s */
        close(fds[0]);
        REQUIRE(waitpid(pid, &status, 0) == pid);
        if (n != (ssize_t)sizeof(*rep) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            TEST_FAIL_AT("%s: the child failed", what);
            return false;
        }
        if (rep->stage == 3 && attempt < 2) {
            fprintf(stderr, "%s: the delay host's echo settled before the jump; again\n", what);
            continue;
        }
        if (rep->stage != 0) {
            TEST_FAIL_AT("%s: %s failed (%d)", what, stages[rep->stage], rep->err);
            return false;
        }
        return true;
    }
}

static void lab_jumps(int family, enum icmp_socket_mode mode)
{
    const char *v = family == AF_INET ? "NETLAB_V4_DELAY" : "NETLAB_V6_DELAY";
    const char *w = family == AF_INET ? "NETLAB_V4_FAST" : "NETLAB_V6_FAST";
    struct icmp_addr delay, fast;
    struct jump_report rep;
    char what[64];

    REQUIRE(tu_addr_from_text(getenv(v), &delay) && tu_addr_from_text(getenv(w), &fast));
    /* Lab addresses only (198.18.0.0/15, 2001:db8::/32). */
    REQUIRE(family == AF_INET ? delay.bytes[0] == 198 && (delay.bytes[1] & 0xfe) == 18
                              : delay.bytes[0] == 0x20 && delay.bytes[1] == 0x01 &&
                                    delay.bytes[2] == 0x0d && delay.bytes[3] == 0xb8);
    REQUIRE(fast.family == delay.family && memcmp(fast.bytes, delay.bytes, 2) == 0);

    /* A jump past the timeout, between the reply's arrival and its reading: late. */
    snprintf(what, sizeof(what), "v%d %s, monotonic +10 s", family == AF_INET ? 4 : 6,
             icmp_socket_mode_name(mode));
    if (run_jump(family, mode, &delay, &fast, JUMP_LATE_NS, what, &rep)) {
        fprintf(stderr, "%s: clock moved %.3f s; echo %s, rtt %" PRId64 " ns, late %u\n", what,
                (double)rep.jumped_ns / 1e9, icmp_status_name(rep.status), rep.rtt_ns, rep.late);
        if (rep.jumped_ns < JUMP_LATE_NS)
            TEST_FAIL_AT("%s: CLOCK_MONOTONIC moved only %" PRId64 " ns", what, rep.jumped_ns);
        if (rep.status != ICMP_STATUS_TIMED_OUT || rep.late != 1 || rep.received != 0)
            TEST_FAIL_AT("%s: %s received %u late %u, want timed_out 0 1: the late decision "
                         "follows CLOCK_MONOTONIC",
                         what, icmp_status_name(rep.status), rep.received, rep.late);
    }

    /* A jump inside the timeout: the RTT is the monotonic time between send and reply (the
     * delay host may hold a reply a little longer on a busy machine, never 300 ms). */
    snprintf(what, sizeof(what), "v%d %s, monotonic +300 ms", family == AF_INET ? 4 : 6,
             icmp_socket_mode_name(mode));
    if (run_jump(family, mode, &delay, &fast, JUMP_RTT_NS, what, &rep)) {
        int64_t want = 20 * TU_MS + JUMP_RTT_NS;
        fprintf(stderr, "%s: echo %s, rtt %.3f ms\n", what, icmp_status_name(rep.status),
                (double)rep.rtt_ns / 1e6);
        if (rep.status != ICMP_STATUS_SUCCESS || rep.received != 1)
            TEST_FAIL_AT("%s: %s, want success", what, icmp_status_name(rep.status));
        else if (rep.rtt_ns < want - TU_MS || rep.rtt_ns > want + 20 * TU_MS)
            TEST_FAIL_AT("%s: rtt %.3f ms, want the delay plus the jump, %.3f ms: RTTs are "
                         "CLOCK_MONOTONIC durations",
                         what, (double)rep.rtt_ns / 1e6, (double)want / 1e6);
    }
}

int main(void)
{
    if (getenv("NETLAB_PREFIX") == NULL)
        TEST_SKIP("not inside a lab: run through ctest, or tests/netlab/netlab.sh run");
    if (access("/proc/self/ns/time_for_children", F_OK) != 0)
        TEST_SKIP("no time namespaces here (Linux >= 5.6 with CONFIG_TIME_NS)");
    /* Ping sockets for every group: the test runs in the lab's own client namespace. */
    if (!tu_write_proc("/proc/sys/net/ipv4/ping_group_range", "0 2147483647"))
        TEST_FAIL_AT("cannot open the lab's net.ipv4.ping_group_range");
    for (int m = 0; m < 2; m++) {
        lab_jumps(AF_INET, m == 0 ? ICMP_MODE_RAW : ICMP_MODE_DGRAM);
        lab_jumps(AF_INET6, m == 0 ? ICMP_MODE_RAW : ICMP_MODE_DGRAM);
    }
    return TEST_DONE();
}
