/*
 * The engine and the IcmpSendEcho contract over real sockets on loopback (127.0.0.1, ::1):
 * no lab, no other address. Needs an ICMP socket (root has raw sockets); skips without one.
 *
 * Loopback answers at once and never loses, so every echo here must succeed with the
 * loopback TTL, and everything else (validation, buffer sizes, cancel, close) is checked
 * against the contract in core/icmp.h.
 */
#include "core/icmp.h"
#include "engine_util.h"
#include "test.h"

#include <netinet/in.h>
#include <stddef.h>
#include <unistd.h>

static struct icmp_addr lo4, lo6;
static bool have_v6;
static int ttl4 = 64, ttl6 = 64;

static int read_int_file(const char *path, int fallback)
{
    FILE *f = fopen(path, "r");
    long v = fallback;

    if (f == NULL)
        return fallback;
    if (fscanf(f, "%ld", &v) != 1)
        v = fallback;
    fclose(f);
    return (int)v;
}

/* ::1 exists (IPv6 may be disabled on the host). */
static bool v6_loopback_works(void)
{
    struct sockaddr_in6 sa;
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool ok;

    if (fd < 0)
        return false;
    memset(&sa, 0, sizeof(sa));
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static struct icmp_engine *open_engine(const struct icmp_engine_options *options, const char *what)
{
    struct icmp_engine *engine = NULL;
    int rc = icmp_engine_open(&engine, options);

    if (rc != 0 || engine == NULL)
        TEST_FAIL_AT("%s: icmp_engine_open = %d", what, rc);
    return rc == 0 ? engine : NULL;
}

/* ---------------------------------------------------------------------------------------
 * Engine.
 */

static void check_loopback_job(struct icmp_engine *engine, const struct icmp_addr *dst, int ttl,
                               const char *what)
{
    struct icmp_engine_stats before, after;
    uint8_t data[40];

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(0x30 + i);
    tu_stats(engine, &before);
    struct tu_job *t = tu_job_new(dst, 3, 10 * TU_MS, 1000 * TU_MS, 56);
    t->job.data = data;
    int64_t t0 = tu_realtime_ns();
    if (!tu_run(engine, t, 5000 * TU_MS, what)) {
        tu_job_free(t);
        return;
    }
    int64_t t1 = tu_realtime_ns();
    tu_check_consistent(t, what);
    const struct icmp_job *j = &t->job;
    if (j->error != 0 || j->cancelled || j->sent != 3 || j->received != 3 || j->errors != 0 ||
        j->duplicates != 0 || j->late != 0 || j->corrupt != 0)
        TEST_FAIL_AT("%s: error %d cancelled %d sent %u received %u errors %u dups %u late %u "
                     "corrupt %u, want 0 0 3 3 0 0 0 0",
                     what, j->error, j->cancelled, j->sent, j->received, j->errors, j->duplicates,
                     j->late, j->corrupt);
    for (uint32_t i = 0; i < 3; i++) {
        const struct icmp_echo_result *r = &t->results[i];
        char a[64], b[64];
        if (r->status != ICMP_STATUS_SUCCESS || !r->sent || r->send_errno != 0 ||
            r->duplicates != 0)
            TEST_FAIL_AT("%s echo %u: status %d sent %d errno %d dups %u", what, i, (int)r->status,
                         r->sent, r->send_errno, r->duplicates);
        if (r->ttl != ttl)
            TEST_FAIL_AT("%s echo %u: ttl %d, want %d", what, i, r->ttl, ttl);
        if (r->rtt_ns <= 0 || r->rtt_ns >= 5 * TU_MS)
            TEST_FAIL_AT("%s echo %u: rtt %" PRId64 " ns, want (0, 5 ms)", what, i, r->rtt_ns);
        if (!tu_same_addr(&r->from, dst))
            TEST_FAIL_AT("%s echo %u: from %s, want %s", what, i, tu_fmt(&r->from, a, sizeof(a)),
                         tu_fmt(dst, b, sizeof(b)));
        /* CLOCK_REALTIME send stamps, inside the test's window. */
        if (r->sent_ns < t0 - TU_MS || r->sent_ns > t1 + TU_MS)
            TEST_FAIL_AT("%s echo %u: sent_ns %" PRId64 " outside [%" PRId64 ", %" PRId64 "]", what,
                         i, r->sent_ns, t0, t1);
    }
    /* Echoes interval_ns apart: echo i is due i intervals after the submit; it may go out
     * late on a busy machine, never early. */
    for (uint32_t i = 0; i < 3; i++) {
        int64_t off = t->results[i].sent_ns - t0;
        if (off < (int64_t)i * 10 * TU_MS - TU_MS || off > (int64_t)i * 10 * TU_MS + 50 * TU_MS)
            TEST_FAIL_AT("%s: echo %u sent %" PRId64 " us after the submit, want %u ms", what, i,
                         off / 1000, i * 10);
    }
    tu_settled_stats(engine, &before, 3, &after);
    CHECK_EQ(after.jobs - before.jobs, 1);
    CHECK_EQ(after.sent - before.sent, 3);
    CHECK_EQ(after.replies[ICMP_STATUS_SUCCESS] - before.replies[ICMP_STATUS_SUCCESS], 3);
    CHECK_EQ(after.replies[ICMP_STATUS_TIMED_OUT] - before.replies[ICMP_STATUS_TIMED_OUT], 0);
    CHECK_EQ(after.send_errors - before.send_errors, 0);
    CHECK_EQ(after.duplicates - before.duplicates, 0);
    CHECK_EQ(after.corrupt - before.corrupt, 0);
    CHECK_EQ(after.in_flight, 0);
    tu_job_free(t);
}

/* One echo of the largest payload, and a few sizes between. */
static void check_payload_sizes(struct icmp_engine *engine, const struct icmp_addr *dst,
                                const char *what)
{
    static const uint16_t sizes[] = {ICMP_PAYLOAD_MIN, 17, 1472, 9000, ICMP_PAYLOAD_MAX};

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        struct tu_job *t = tu_job_new(dst, 1, 0, 2000 * TU_MS, sizes[k]);
        if (tu_run(engine, t, 5000 * TU_MS, what)) {
            tu_check_consistent(t, what);
            if (t->job.error != 0 || t->results[0].status != ICMP_STATUS_SUCCESS)
                TEST_FAIL_AT("%s: payload %u bytes: error %d status %d", what, sizes[k],
                             t->job.error, (int)t->results[0].status);
        }
        tu_job_free(t);
    }
}

/* Two jobs to the same address at once: each gets its own replies and nothing else. */
static void check_same_target(struct icmp_engine *engine, const struct icmp_addr *dst,
                              const char *what)
{
    struct tu_job *both[2];
    struct icmp_job *jobs[2];

    both[0] = tu_job_new(dst, 20, 1 * TU_MS, 1000 * TU_MS, 56);
    both[1] = tu_job_new(dst, 20, 1 * TU_MS, 1000 * TU_MS, 100);
    both[1]->job.ttl = 9;
    both[1]->job.tos = 0x10;
    both[1]->job.dont_fragment = true;
    jobs[0] = &both[0]->job;
    jobs[1] = &both[1]->job;
    int rc = icmp_engine_submit(engine, jobs, 2);
    CHECK_EQ(rc, 0);
    if (rc != 0) {
        tu_job_not_submitted(both[0]);
        tu_job_not_submitted(both[1]);
    } else if (!tu_wait(both, 2, 5000 * TU_MS)) {
        TEST_FAIL_AT("%s: two jobs to one target did not complete", what);
    }
    for (int k = 0; rc == 0 && k < 2; k++) {
        struct tu_job *t = both[k];
        if (t->calls == 0)
            continue;
        tu_check_consistent(t, what);
        if (t->job.received != 20 || t->job.duplicates != 0 || t->job.corrupt != 0)
            TEST_FAIL_AT("%s: job %d of two: received %u dups %u corrupt %u, want 20 0 0", what, k,
                         t->job.received, t->job.duplicates, t->job.corrupt);
    }
    tu_job_free(both[0]);
    tu_job_free(both[1]);
}

struct chain {
    struct tu_job *first, *second;
    struct icmp_engine *engine;
    int submit_rc;
};

/* A callback that submits the next job (the contract allows it). */
static void chain_done(struct icmp_job *job, void *arg)
{
    struct chain *c = arg;
    struct icmp_job *next = &c->second->job;
    int rc;

    (void)job;
    c->second->submit_ns = tu_now_ns();
    rc = icmp_engine_submit(c->engine, &next, 1);
    pthread_mutex_lock(&tu_lock);
    c->submit_rc = rc;
    c->first->calls++;
    c->first->done_ns = tu_now_ns();
    if (rc != 0)
        c->second->calls = 1; /* never submitted */
    pthread_cond_broadcast(&tu_cond);
    pthread_mutex_unlock(&tu_lock);
}

static void check_submit_from_callback(struct icmp_engine *engine)
{
    static struct chain c;

    c.first = tu_job_new(&lo4, 1, 0, 1000 * TU_MS, 56);
    c.second = tu_job_new(&lo4, 2, 1 * TU_MS, 1000 * TU_MS, 56);
    c.first->job.on_done = chain_done;
    c.first->job.arg = &c;
    c.engine = engine;
    struct tu_job *both[2] = {c.first, c.second};
    struct icmp_job *first = &c.first->job;
    int rc = icmp_engine_submit(engine, &first, 1);
    CHECK_EQ(rc, 0);
    if (rc != 0) {
        tu_job_not_submitted(c.first);
        tu_job_not_submitted(c.second);
    } else if (!tu_wait(both, 2, 5000 * TU_MS)) {
        TEST_FAIL_AT("a job submitted from a callback did not complete (first done: %u)",
                     c.first->calls);
    }
    if (rc == 0 && c.second->calls > 0) {
        CHECK_EQ(c.submit_rc, 0);
        if (c.submit_rc == 0) {
            tu_check_consistent(c.second, "job submitted from a callback");
            CHECK_EQ(c.second->job.received, 2);
        }
    }
    tu_job_free(c.first);
    tu_job_free(c.second);
}

static void check_cancel(struct icmp_engine *engine)
{
    struct tu_job *t = tu_job_new(&lo4, 10, 50 * TU_MS, 1000 * TU_MS, 56);
    struct icmp_job *job = &t->job;

    t->submit_ns = tu_now_ns();
    REQUIRE(icmp_engine_submit(engine, &job, 1) == 0);
    tu_sleep_ns(75 * TU_MS);
    int64_t cancel_ns = tu_now_ns();
    icmp_engine_cancel(engine, &t->job);
    if (!tu_wait(&t, 1, 2000 * TU_MS)) {
        TEST_FAIL_AT("cancelled loopback job did not complete");
        tu_job_free(t);
        return;
    }
    tu_check_consistent(t, "cancelled loopback job");
    CHECK(t->job.cancelled);
    CHECK_GE(t->job.sent, 1);
    CHECK_LE(t->job.sent, 3);
    CHECK_LT(t->done_ns - cancel_ns, 100 * TU_MS);
    for (uint32_t i = t->job.sent; i < 10; i++)
        CHECK(!t->results[i].sent);
    tu_job_free(t);

    /* Cancelling a job that has completed does nothing (no second callback). */
    struct tu_job *done = tu_job_new(&lo4, 1, 0, 1000 * TU_MS, 56);
    if (tu_run(engine, done, 2000 * TU_MS, "job before a late cancel")) {
        icmp_engine_cancel(engine, &done->job);
        tu_sleep_ns(100 * TU_MS);
        pthread_mutex_lock(&tu_lock);
        CHECK_EQ(done->calls, 1);
        pthread_mutex_unlock(&tu_lock);
        CHECK(!done->job.cancelled);
    }
    tu_job_free(done);
}

/* Close completes what is unfinished, as cancelled, before it returns. */
static void check_close_with_jobs(void)
{
    struct icmp_engine *engine = open_engine(NULL, "engine for close");

    if (engine == NULL)
        return;
    struct tu_job *t = tu_job_new(&lo4, 100, 100 * TU_MS, 1000 * TU_MS, 56);
    struct icmp_job *job = &t->job;
    REQUIRE(icmp_engine_submit(engine, &job, 1) == 0);
    tu_sleep_ns(50 * TU_MS);
    icmp_engine_close(engine);
    pthread_mutex_lock(&tu_lock);
    unsigned int calls = t->calls;
    pthread_mutex_unlock(&tu_lock);
    if (calls != 1)
        TEST_FAIL_AT("icmp_engine_close returned with the job's callback run %u times", calls);
    if (calls > 0) {
        tu_check_consistent(t, "job cut by close");
        CHECK(t->job.cancelled);
        CHECK_GE(t->job.sent, 1);
        CHECK_LT(t->job.sent, 100);
    }
    tu_job_free(t);
}

static void check_validation(struct icmp_engine *engine)
{
    struct icmp_engine_stats before, after;
    struct icmp_addr none;

    memset(&none, 0, sizeof(none));
    tu_stats(engine, &before);
    for (int k = 0; k < 9; k++) {
        struct tu_job *bad = tu_job_new(&lo4, 2, 10 * TU_MS, 1000 * TU_MS, 56);
        const char *what = "";
        switch (k) {
        case 0:
            bad->job.count = 0, what = "count 0";
            break;
        case 1:
            bad->job.timeout_ns = 0, what = "timeout 0";
            break;
        case 2:
            bad->job.payload_size = ICMP_PAYLOAD_MIN - 1, what = "payload below the minimum";
            break;
        case 3:
            bad->job.results = NULL, what = "NULL results";
            break;
        case 4:
            bad->job.on_done = NULL, what = "NULL on_done";
            break;
        case 5:
            bad->job.src = lo6, what = "v4 dst with a v6 src";
            break;
        case 6:
            bad->job.dst = none, what = "dst without a family";
            break;
        case 7:
            bad->job.payload_size = ICMP_PAYLOAD_MAX + 1, what = "payload above the maximum";
            break;
        case 8:
            bad->job.timeout_ns = -1, what = "negative timeout";
            break;
        }
        struct icmp_job *one = &bad->job;
        int rc = icmp_engine_submit(engine, &one, 1);
        if (rc != -EINVAL)
            TEST_FAIL_AT("submit of a job with %s = %d, want -EINVAL", what, rc);
        if (rc != 0)
            tu_job_not_submitted(bad);
        else if (bad->job.on_done != NULL)
            tu_wait(&bad, 1, 3000 * TU_MS);
        tu_job_free(bad); /* parked if it was taken and never completed */
    }

    /* A bad job in a batch: nothing of the batch is submitted. */
    struct tu_job *good = tu_job_new(&lo4, 1, 0, 1000 * TU_MS, 56);
    struct tu_job *bad = tu_job_new(&lo4, 1, 0, 0, 56);
    struct icmp_job *jobs[2] = {&good->job, &bad->job};
    CHECK_EQ(icmp_engine_submit(engine, jobs, 2), -EINVAL);
    tu_sleep_ns(200 * TU_MS);
    pthread_mutex_lock(&tu_lock);
    unsigned int calls = good->calls;
    pthread_mutex_unlock(&tu_lock);
    if (calls != 0)
        TEST_FAIL_AT("the good job of a rejected batch ran (callback %u times)", calls);
    tu_stats(engine, &after);
    CHECK_EQ(after.jobs - before.jobs, 0);
    CHECK_EQ(after.sent - before.sent, 0);
    tu_job_not_submitted(good);
    tu_job_not_submitted(bad);
    tu_job_free(good);
    tu_job_free(bad);
}

/* An engine limited to one family: the other has no socket, and its jobs fail through the
 * callback with -EAFNOSUPPORT. */
/*
 * The packet budget is shared round-robin among flows: with a 5 ms gap, flow A's 150 jobs
 * queued first, then flow B's one job of 10 echoes and a job of a flow of its own (flow 0)
 * of 10 echoes, the first 30 sends must be about a third each. Before flows, A's 150 went
 * first and B and C waited 0.75 s.
 */
#define FLOW_A_JOBS 150

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static void check_flows_share_budget(const struct icmp_addr *dst, const char *what)
{
    struct icmp_engine_options o;
    struct tu_job *jobs[FLOW_A_JOBS + 2];
    struct icmp_job *sub[FLOW_A_JOBS + 2];
    int64_t stamps[FLOW_A_JOBS + 20], cutoff;
    size_t n = 0, in_window_b = 0, in_window_c = 0;

    memset(&o, 0, sizeof(o));
    o.min_send_gap_ns = 5 * TU_MS;
    struct icmp_engine *engine = open_engine(&o, what);
    if (engine == NULL)
        return;
    for (size_t i = 0; i < FLOW_A_JOBS + 2; i++) {
        bool a = i < FLOW_A_JOBS;
        jobs[i] = tu_job_new(dst, a ? 1 : 10, 0, 5000 * TU_MS, 56);
        jobs[i]->job.flow = a ? 7 : i == FLOW_A_JOBS ? 9 : 0;
        sub[i] = &jobs[i]->job;
    }
    CHECK_EQ(icmp_engine_submit(engine, sub, FLOW_A_JOBS + 2), 0);
    if (!tu_wait(jobs, FLOW_A_JOBS + 2, 20000 * TU_MS)) {
        TEST_FAIL_AT("%s: the flows' jobs did not complete within 20 s", what);
    } else {
        for (size_t i = 0; i < FLOW_A_JOBS + 2; i++) {
            tu_check_consistent(jobs[i], what);
            CHECK_EQ(jobs[i]->job.received, jobs[i]->job.count);
            for (uint32_t k = 0; k < jobs[i]->job.count; k++)
                if (jobs[i]->results[k].sent)
                    stamps[n++] = jobs[i]->results[k].sent_ns;
        }
        CHECK_EQ(n, FLOW_A_JOBS + 20);
        qsort(stamps, n, sizeof(stamps[0]), cmp_i64);
        cutoff = stamps[29]; /* the 30th send */
        for (size_t i = FLOW_A_JOBS; i < FLOW_A_JOBS + 2; i++)
            for (uint32_t k = 0; k < 10; k++)
                if (jobs[i]->results[k].sent && jobs[i]->results[k].sent_ns <= cutoff)
                    *(i == FLOW_A_JOBS ? &in_window_b : &in_window_c) += 1;
        fprintf(stderr, "%s: of the first 30 sends, flow B had %zu, flow 0 (C) %zu, A %zu\n", what,
                in_window_b, in_window_c, 30 - in_window_b - in_window_c);
        if (in_window_b < 8 || in_window_c < 8)
            TEST_FAIL_AT("%s: flows B and C got %zu and %zu of the first 30 sends, not a third "
                         "each",
                         what, in_window_b, in_window_c);
    }
    icmp_engine_close(engine);
    for (size_t i = 0; i < FLOW_A_JOBS + 2; i++)
        tu_job_free(jobs[i]);
}

static void check_one_family(void)
{
    struct icmp_engine_options o;

    memset(&o, 0, sizeof(o));
    o.min_send_gap_ns = ICMP_DEFAULT_SEND_GAP_NS;
    o.families = AF_INET;
    struct icmp_engine *engine = open_engine(&o, "v4-only engine");
    if (engine == NULL)
        return;
    CHECK_NE(icmp_engine_mode(engine, AF_INET), ICMP_MODE_NONE);
    CHECK_EQ(icmp_engine_mode(engine, AF_INET6), ICMP_MODE_NONE);
    struct tu_job *t = tu_job_new(&lo6, 1, 0, 1000 * TU_MS, 56);
    if (tu_run(engine, t, 2000 * TU_MS, "v6 job on a v4-only engine")) {
        CHECK_EQ(t->job.error, -EAFNOSUPPORT);
        CHECK_EQ(t->job.sent, 0);
        CHECK_EQ(t->calls, 1);
    }
    tu_job_free(t);
    check_loopback_job(engine, &lo4, ttl4, "v4-only engine, 127.0.0.1");
    icmp_engine_close(engine);
}

static void test_engine(void)
{
    struct icmp_engine *engine = NULL;
    int rc = icmp_engine_open(&engine, NULL);

    if (rc == -EACCES || rc == -EPERM)
        TEST_SKIP("icmp_engine_open: %d: no ICMP socket here (needs CAP_NET_RAW or "
                  "net.ipv4.ping_group_range)",
                  rc);
    REQUIRE(rc == 0 && engine != NULL);
    enum icmp_socket_mode m4 = icmp_engine_mode(engine, AF_INET);
    fprintf(stderr, "default engine: v4 %s, v6 %s\n", icmp_socket_mode_name(m4),
            icmp_socket_mode_name(icmp_engine_mode(engine, AF_INET6)));
    CHECK_NE(m4, ICMP_MODE_NONE);

    check_loopback_job(engine, &lo4, ttl4, "default engine, 127.0.0.1");
    if (have_v6)
        check_loopback_job(engine, &lo6, ttl6, "default engine, ::1");
    check_payload_sizes(engine, &lo4, "127.0.0.1");
    if (have_v6)
        check_payload_sizes(engine, &lo6, "::1");
    check_same_target(engine, &lo4, "127.0.0.1");
    if (have_v6)
        check_same_target(engine, &lo6, "::1");
    check_submit_from_callback(engine);
    check_cancel(engine);
    check_validation(engine);
    icmp_engine_close(engine);
    check_flows_share_budget(&lo4, "flows, 127.0.0.1");

    /* Raw sockets asked for explicitly (we are root when this runs in CI). */
    struct icmp_engine_options o;
    memset(&o, 0, sizeof(o));
    o.min_send_gap_ns = ICMP_DEFAULT_SEND_GAP_NS;
    o.mode4 = ICMP_MODE_RAW;
    o.mode6 = ICMP_MODE_RAW;
    engine = NULL;
    rc = icmp_engine_open(&engine, &o);
    if (rc == -EACCES || rc == -EPERM) {
        fprintf(stderr, "raw engine: %d (no CAP_NET_RAW), not tested\n", rc);
    } else if (rc != 0) {
        TEST_FAIL_AT("raw engine: icmp_engine_open = %d", rc);
    } else {
        CHECK_EQ(icmp_engine_mode(engine, AF_INET), ICMP_MODE_RAW);
        check_loopback_job(engine, &lo4, ttl4, "raw engine, 127.0.0.1");
        if (have_v6) {
            CHECK_EQ(icmp_engine_mode(engine, AF_INET6), ICMP_MODE_RAW);
            check_loopback_job(engine, &lo6, ttl6, "raw engine, ::1");
        }
        icmp_engine_close(engine);
    }

    check_one_family();
    check_close_with_jobs();
    icmp_engine_close(NULL);
}

/* ---------------------------------------------------------------------------------------
 * The IcmpSendEcho contract.
 */

#define GUARD 64
#define AREA  (GUARD + 4096 + GUARD)

static union {
    max_align_t align;
    unsigned char bytes[AREA];
} area;

static void *guarded(void)
{
    memset(area.bytes, 0xa5, sizeof(area.bytes));
    return area.bytes + GUARD;
}

/* Bytes outside [GUARD, GUARD + size) still hold the guard pattern. */
static bool guard_intact(size_t size, const char *what)
{
    for (size_t i = 0; i < AREA; i++) {
        if (i >= GUARD && i < GUARD + size)
            continue;
        if (area.bytes[i] != 0xa5) {
            TEST_FAIL_AT("%s: byte %td %s the reply buffer was written", what,
                         (ptrdiff_t)i - (ptrdiff_t)(i < GUARD ? GUARD : GUARD + size),
                         i < GUARD ? "before" : "after");
            return false;
        }
    }
    return true;
}

static void check_sync_echo(struct icmp_handle *h, const struct icmp_addr *dst, int ttl,
                            const char *what)
{
    uint8_t data[32];

    /* A few rounds with different data: each call sees its own reply. */
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < sizeof(data); i++)
            data[i] = (uint8_t)(i + 17 * (size_t)round);
        size_t size = ICMP_REPLY_BUFFER_SIZE(sizeof(data));
        void *buf = guarded();
        const struct icmp_options *opt = NULL;
        struct icmp_options df = {64, 0, ICMP_FLAG_DF};
        if (round == 2)
            opt = &df;
        int rc = icmp_send_echo(h, dst, data, sizeof(data), opt, buf, size, 2000);
        if (rc != 1) {
            TEST_FAIL_AT("%s round %d: icmp_send_echo = %d (last status %d)", what, round, rc,
                         (int)icmp_last_status(h));
            continue;
        }
        const struct icmp_echo_reply *r = buf;
        const unsigned char *lo = buf, *hi = lo + size, *d = r->data;
        CHECK_EQ(r->status, ICMP_STATUS_SUCCESS);
        CHECK_EQ(icmp_last_status(h), ICMP_STATUS_SUCCESS);
        CHECK(tu_same_addr(&r->address, dst));
        CHECK_EQ(r->data_size, sizeof(data));
        if (d < lo + sizeof(struct icmp_echo_reply) || d > hi || (size_t)(hi - d) < r->data_size)
            TEST_FAIL_AT("%s: data %p (%u bytes) is not inside the buffer after the record "
                         "[%p, %p)",
                         what, r->data, r->data_size, (const void *)lo, (const void *)hi);
        else
            CHECK(memcmp(d, data, sizeof(data)) == 0);
        CHECK(r->rtt_ns > 0 && r->rtt_ns < 5 * TU_MS);
        CHECK_EQ(r->rtt_ms, r->rtt_ns / 1000000);
        CHECK_EQ(r->ttl, ttl);
        guard_intact(size, what);
    }

    /* No data at all. */
    void *buf = guarded();
    int rc = icmp_send_echo(h, dst, data, 0, NULL, buf, ICMP_REPLY_BUFFER_SIZE(0), 2000);
    CHECK_EQ(rc, 1);
    if (rc == 1) {
        const struct icmp_echo_reply *r = buf;
        CHECK_EQ(r->status, ICMP_STATUS_SUCCESS);
        CHECK_EQ(r->data_size, 0);
    }
    guard_intact(ICMP_REPLY_BUFFER_SIZE(0), "no data");

    /* One byte short: nothing stored, the status says why, the first record holds it. */
    size_t small = ICMP_REPLY_BUFFER_SIZE(sizeof(data)) - 1;
    buf = guarded();
    rc = icmp_send_echo(h, dst, data, sizeof(data), NULL, buf, small, 2000);
    CHECK_EQ(rc, 0);
    CHECK_EQ(icmp_last_status(h), ICMP_STATUS_BUF_TOO_SMALL);
    CHECK_EQ(((const struct icmp_echo_reply *)buf)->status, ICMP_STATUS_BUF_TOO_SMALL);
    guard_intact(small, "buffer one byte short");

    /* Smaller than one record. */
    buf = guarded();
    rc = icmp_send_echo(h, dst, data, sizeof(data), NULL, buf, 8, 2000);
    CHECK_EQ(rc, 0);
    CHECK_EQ(icmp_last_status(h), ICMP_STATUS_BUF_TOO_SMALL);
    guard_intact(8, "buffer of 8 bytes");

    /* After a failed call, a good one works again (no stale reply is taken). */
    buf = guarded();
    rc = icmp_send_echo(h, dst, data, sizeof(data), NULL, buf, ICMP_REPLY_BUFFER_SIZE(sizeof(data)),
                        2000);
    CHECK_EQ(rc, 1);
    CHECK_EQ(icmp_last_status(h), ICMP_STATUS_SUCCESS);
}

static void check_sync_bad_args(struct icmp_handle *h, const struct icmp_addr *dst,
                                const struct icmp_addr *other_family)
{
    uint8_t data[32] = {0};
    size_t size = ICMP_REPLY_BUFFER_SIZE(sizeof(data));
    void *buf = guarded();

    CHECK_EQ(icmp_send_echo(NULL, dst, data, sizeof(data), NULL, buf, size, 100), -EINVAL);
    CHECK_EQ(icmp_send_echo(h, NULL, data, sizeof(data), NULL, buf, size, 100), -EINVAL);
    CHECK_EQ(icmp_send_echo(h, dst, NULL, sizeof(data), NULL, buf, size, 100), -EINVAL);
    CHECK_EQ(icmp_send_echo(h, dst, data, sizeof(data), NULL, NULL, size, 100), -EINVAL);
    CHECK_EQ(icmp_send_echo(h, other_family, data, sizeof(data), NULL, buf, size, 100), -EINVAL);
    static uint8_t big[ICMP_PAYLOAD_MAX];
    CHECK_EQ(icmp_send_echo(h, dst, big, ICMP_PAYLOAD_MAX - 16 + 1, NULL, buf,
                            ICMP_REPLY_BUFFER_SIZE(ICMP_PAYLOAD_MAX), 100),
             -EINVAL);
    struct icmp_addr none;
    memset(&none, 0, sizeof(none));
    CHECK_EQ(icmp_send_echo(h, &none, data, sizeof(data), NULL, buf, size, 100), -EINVAL);
    guard_intact(0, "bad arguments");
}

static void test_sync(void)
{
    struct icmp_handle *h = NULL;

    CHECK_EQ(icmp_open(&h, AF_UNIX), -EAFNOSUPPORT);
    CHECK_EQ(icmp_open(&h, AF_PACKET), -EAFNOSUPPORT);
    icmp_close(NULL);

    int rc = icmp_open(&h, AF_INET);
    if (rc == -EACCES) {
        fprintf(stderr, "icmp_open(AF_INET): -EACCES, sync API not tested\n");
        return;
    }
    REQUIRE(rc == 0 && h != NULL);
    CHECK_NE(icmp_handle_mode(h), ICMP_MODE_NONE);
    check_sync_echo(h, &lo4, ttl4, "sync 127.0.0.1");
    check_sync_bad_args(h, &lo4, &lo6);
    icmp_close(h);

    if (!have_v6)
        return;
    h = NULL;
    rc = icmp_open(&h, AF_INET6);
    CHECK_EQ(rc, 0);
    if (rc != 0)
        return;
    CHECK_NE(icmp_handle_mode(h), ICMP_MODE_NONE);
    check_sync_echo(h, &lo6, ttl6, "sync ::1");
    check_sync_bad_args(h, &lo6, &lo4);
    icmp_close(h);
}

int main(void)
{
    tu_init();
    REQUIRE(tu_addr_from_text("127.0.0.1", &lo4));
    REQUIRE(tu_addr_from_text("::1", &lo6));
    have_v6 = v6_loopback_works();
    if (!have_v6)
        fprintf(stderr, "no ::1 here: IPv6 loopback cases not run\n");
    ttl4 = read_int_file("/proc/sys/net/ipv4/ip_default_ttl", 64);
    ttl6 = read_int_file("/proc/sys/net/ipv6/conf/lo/hop_limit", 64);

    test_engine();
    test_sync();
    return TEST_DONE();
}
