/*
 * Helpers for the engine tests: jobs with their own results, a completion callback that
 * records when it ran, and bounded waits.
 *
 * One process-wide mutex and condition variable serve every job, so a callback that runs
 * late (a bug) never touches a waiter that is gone. The callback runs on the engine thread
 * and only records; the checks happen on the test thread after a wait, under the mutex. A
 * job whose callback never came is parked, never freed: the engine may still write to it.
 */
#ifndef TESTS_CORE_ENGINE_UTIL_H
#define TESTS_CORE_ENGINE_UTIL_H

#include "core/icmp.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define TU_MS ((int64_t)1000000)

static pthread_mutex_t tu_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tu_cond;

static inline void tu_init(void)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&tu_cond, &attr);
    pthread_condattr_destroy(&attr);
}

static inline int64_t tu_clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The tests' own clocks, independent of the code under test. */
static inline int64_t tu_now_ns(void)
{
    return tu_clock_ns(CLOCK_MONOTONIC);
}

static inline int64_t tu_realtime_ns(void)
{
    return tu_clock_ns(CLOCK_REALTIME);
}

static inline void tu_sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

struct tu_job {
    struct icmp_job job;
    struct icmp_echo_result *results;
    int64_t submit_ns; /* tu_now_ns() just before icmp_engine_submit */
    int64_t done_ns;   /* tu_now_ns() in the callback */
    unsigned int calls;
    bool wrong_job; /* the callback got another job pointer than its own */
    int index;      /* free for the test */
};

static inline void tu_on_done(struct icmp_job *job, void *arg)
{
    struct tu_job *t = arg;
    int64_t now = tu_now_ns();

    pthread_mutex_lock(&tu_lock);
    if (job != &t->job)
        t->wrong_job = true;
    t->calls++;
    t->done_ns = now;
    pthread_cond_broadcast(&tu_cond);
    pthread_mutex_unlock(&tu_lock);
}

/* A new job of count echoes to dst with results of its own; the rest of the request is zero. */
static inline struct tu_job *tu_job_new(const struct icmp_addr *dst, uint32_t count,
                                        int64_t interval_ns, int64_t timeout_ns,
                                        uint16_t payload_size)
{
    struct tu_job *t = calloc(1, sizeof(*t));
    size_t n = count ? count : 1;

    REQUIRE(t != NULL);
    t->results = calloc(n, sizeof(*t->results));
    REQUIRE(t->results != NULL);
    /* Poison: the engine must write every field it promises. */
    memset(t->results, 0x5a, n * sizeof(*t->results));
    t->job.dst = *dst;
    t->job.count = count;
    t->job.interval_ns = interval_ns;
    t->job.timeout_ns = timeout_ns;
    t->job.payload_size = payload_size;
    t->job.results = t->results;
    t->job.on_done = tu_on_done;
    t->job.arg = t;
    return t;
}

/* Marks a job that was never submitted (the submit failed), so it can be freed. */
static inline void tu_job_not_submitted(struct tu_job *t)
{
    pthread_mutex_lock(&tu_lock);
    t->calls = 1;
    pthread_mutex_unlock(&tu_lock);
}

static struct tu_job *tu_parked[4096];
static size_t tu_parked_n;

/* Frees a job, or parks it when its callback has not run (a failure was reported then): the
 * engine may still write to it. Accepts NULL. */
static inline void tu_job_free(struct tu_job *t)
{
    bool done;

    if (t == NULL)
        return;
    pthread_mutex_lock(&tu_lock);
    done = t->calls > 0;
    pthread_mutex_unlock(&tu_lock);
    if (done) {
        free(t->results);
        free(t);
        return;
    }
    if (tu_parked_n < sizeof(tu_parked) / sizeof(tu_parked[0]))
        tu_parked[tu_parked_n++] = t;
}

/* Waits until every job of jobs[0..n) has completed, at most timeout_ns; true when all did. */
static inline bool tu_wait(struct tu_job *const *jobs, size_t n, int64_t timeout_ns)
{
    int64_t deadline = tu_now_ns() + timeout_ns;
    struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
    bool all = false;

    pthread_mutex_lock(&tu_lock);
    for (;;) {
        size_t i;
        for (i = 0; i < n && jobs[i]->calls > 0; i++)
            ;
        all = i == n;
        if (all || pthread_cond_timedwait(&tu_cond, &tu_lock, &ts) == ETIMEDOUT) {
            for (i = 0; i < n && jobs[i]->calls > 0; i++)
                ;
            all = i == n;
            break;
        }
    }
    pthread_mutex_unlock(&tu_lock);
    return all;
}

/* Submits one job and waits for it; false (and a reported failure) when it did not complete. */
static inline bool tu_run(struct icmp_engine *engine, struct tu_job *t, int64_t timeout_ns,
                          const char *what)
{
    struct icmp_job *job = &t->job;

    t->submit_ns = tu_now_ns();
    int rc = icmp_engine_submit(engine, &job, 1);
    if (rc != 0) {
        TEST_FAIL_AT("%s: icmp_engine_submit = %d", what, rc);
        tu_job_not_submitted(t);
        return false;
    }
    if (!tu_wait(&t, 1, timeout_ns)) {
        TEST_FAIL_AT("%s: no completion within %" PRId64 " ms", what, timeout_ns / TU_MS);
        return false;
    }
    return true;
}

/* Checks what every completed job must satisfy: one callback with its own pointer, and
 * counters that agree with the per-echo results. */
static inline void tu_check_consistent(const struct tu_job *t, const char *what)
{
    const struct icmp_job *j = &t->job;
    uint32_t sent = 0, ok = 0, errors = 0, dups = 0;

    if (t->calls != 1 || t->wrong_job)
        TEST_FAIL_AT("%s: callback ran %u times (wrong job pointer: %d)", what, t->calls,
                     t->wrong_job);
    if (j->error != 0)
        return;
    for (uint32_t i = 0; i < j->count; i++) {
        const struct icmp_echo_result *r = &t->results[i];
        if (r->sent)
            sent++;
        else if (r->status == ICMP_STATUS_SUCCESS || r->sent_ns != -1 || r->rtt_ns != -1)
            TEST_FAIL_AT("%s: echo %u not sent but status %d sent_ns %" PRId64 " rtt %" PRId64,
                         what, i, (int)r->status, r->sent_ns, r->rtt_ns);
        if (r->status == ICMP_STATUS_SUCCESS)
            ok++;
        else if (r->status != ICMP_STATUS_TIMED_OUT && r->sent)
            errors++;
        dups += r->duplicates;
        if (icmp_status_name(r->status) == NULL)
            TEST_FAIL_AT("%s: echo %u has status %d, not a status", what, i, (int)r->status);
        if (r->status == ICMP_STATUS_SUCCESS && (r->rtt_ns <= 0 || r->sent_ns <= 0))
            TEST_FAIL_AT("%s: echo %u success with rtt %" PRId64 " sent_ns %" PRId64, what, i,
                         r->rtt_ns, r->sent_ns);
        if (r->status == ICMP_STATUS_TIMED_OUT && r->rtt_ns != -1)
            TEST_FAIL_AT("%s: echo %u timed out with rtt %" PRId64, what, i, r->rtt_ns);
    }
    if (sent != j->sent || ok != j->received || errors != j->errors || dups != j->duplicates)
        TEST_FAIL_AT("%s: job says sent %u received %u errors %u duplicates %u; results say "
                     "%u %u %u %u",
                     what, j->sent, j->received, j->errors, j->duplicates, sent, ok, errors, dups);
    /* Sequence numbers on the wire are distinct within a job. */
    for (uint32_t i = 0; i < j->count; i++) {
        for (uint32_t k = 0; k < i; k++) {
            if (t->results[i].sent && t->results[k].sent && t->results[i].seq == t->results[k].seq)
                TEST_FAIL_AT("%s: echoes %u and %u both used seq %u", what, k, i,
                             t->results[i].seq);
        }
    }
}

static inline void tu_stats(struct icmp_engine *engine, struct icmp_engine_stats *s)
{
    memset(s, 0, sizeof(*s));
    icmp_engine_stats(engine, s);
}

/* Counters may be bumped just after a callback: waits (at most 500 ms) until `settled` more
 * echoes than in *before are counted and nothing is in flight, then returns the stats. */
static inline void tu_settled_stats(struct icmp_engine *engine,
                                    const struct icmp_engine_stats *before, uint64_t settled,
                                    struct icmp_engine_stats *after)
{
    for (int i = 0; i < 100; i++) {
        uint64_t total = 0;
        tu_stats(engine, after);
        for (int s = 0; s < ICMP_STATUS_LIMIT; s++)
            total += after->replies[s] - before->replies[s];
        if (total >= settled && after->in_flight == 0)
            return;
        tu_sleep_ns(5 * TU_MS);
    }
}

/* Writes value to a /proc or /sys file (a sysctl of the lab's own namespace); true on success. */
static inline bool tu_write_proc(const char *path, const char *value)
{
    FILE *f = fopen(path, "w");
    bool ok;

    if (f == NULL)
        return false;
    ok = fputs(value, f) >= 0;
    ok = fclose(f) == 0 && ok;
    return ok;
}

static inline const char *tu_fmt(const struct icmp_addr *a, char *buf, size_t size)
{
    if ((a->family != AF_INET && a->family != AF_INET6) ||
        inet_ntop(a->family, a->bytes, buf, (socklen_t)size) == NULL)
        snprintf(buf, size, "(family %u)", a->family);
    return buf;
}

/* Same family and address bytes (the tests build addresses without a scope). */
static inline bool tu_same_addr(const struct icmp_addr *a, const struct icmp_addr *b)
{
    return a->family == b->family &&
           memcmp(a->bytes, b->bytes, a->family == AF_INET6 ? 16 : 4) == 0 &&
           a->scope_id == b->scope_id;
}

static inline bool tu_addr_from_text(const char *text, struct icmp_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (text == NULL)
        return false;
    if (inet_pton(AF_INET, text, a->bytes) == 1) {
        a->family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text, a->bytes) == 1) {
        a->family = AF_INET6;
        return true;
    }
    return false;
}

#endif
