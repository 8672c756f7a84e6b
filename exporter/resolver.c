/*
 * Name resolution off the HTTP thread. getaddrinfo() blocks, so a few threads run it from
 * a queue; IP literals never reach the queue. A probe thus holds no thread while its
 * echoes are in flight, and a slow DNS server delays only the probes of names.
 *
 * getaddrinfo() cannot be cancelled and takes as long as resolv.conf says (timeout x
 * attempts x servers: 10 s and more), so nothing here ever waits for it (issue 16):
 * - each lookup has its caller's deadline; a timer thread answers "timed out" when it
 *   passes, whether the lookup is still queued or already running, and the thread running
 *   it drops the late answer. Exactly one answer per lookup: whoever sets `answered` first
 *   (under the lock) calls back.
 * - threads are started as lookups wait (up to RESOLVER_MAX_THREADS, never stopped), so
 *   names that hang hold a thread each and leave the others to the names that resolve.
 * - the queue is bounded (RESOLVER_QUEUE_MAX): one more is refused at once (-EBUSY).
 * - resolver_close answers what is left and lets go of the threads: they hold a reference
 *   to the resolver and the last one out frees it, so a thread stuck in getaddrinfo costs
 *   shutdown nothing. It waits only for callbacks already running (they never block).
 */
#include "exporter/resolver.h"

#include "exporter/detached.h"

#include <pthread.h>
#include <stdio.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct request {
    struct request *next; /* in the queue */
    int preferred;
    bool fallback;
    bool answered; /* under the lock: done was called (or is being called) */
    int64_t submitted_ns, deadline_ns;
    resolve_done_fn done;
    void *arg;
    char name[256];
};

struct resolver {
    struct detached_home home; /* the lock; refs: the owner, and each live worker */
    pthread_cond_t wake;       /* workers: a request is queued, or stopping */
    pthread_cond_t timer_wake; /* the timer: a new deadline, or stopping */
    struct request *head, *tail;
    size_t n_queued;
    struct request *running[RESOLVER_MAX_THREADS]; /* by worker; NULL when idle */
    bool stopping;
    unsigned n_threads, n_idle; /* workers started; those waiting for a request */
    pthread_t timer;
};

struct worker_arg {
    struct resolver *r;
    unsigned index;
};

static void resolve(const struct request *rq, struct resolution *res)
{
    struct addrinfo hints = {.ai_socktype = SOCK_RAW, .ai_protocol = IPPROTO_ICMP};
    struct addrinfo *list = NULL;
    const struct addrinfo *pick = NULL;
    int want = rq->preferred == 4 ? AF_INET : AF_INET6;
    int64_t t0 = icmp_now_ns();

    memset(res, 0, sizeof(*res));
    res->error = getaddrinfo(rq->name, NULL, &hints, &list);
    if (res->error == 0) {
        for (const struct addrinfo *ai = list; ai != NULL && pick == NULL; ai = ai->ai_next) {
            if (ai->ai_family == want)
                pick = ai;
        }
        for (const struct addrinfo *ai = list; rq->fallback && ai != NULL && pick == NULL;
             ai = ai->ai_next) {
            if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
                pick = ai;
        }
        if (pick == NULL) {
            res->error = EAI_ADDRFAMILY;
        } else if (pick->ai_family == AF_INET) {
            res->addr.family = AF_INET;
            memcpy(res->addr.bytes, &((struct sockaddr_in *)pick->ai_addr)->sin_addr, 4);
        } else {
            const struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)pick->ai_addr;
            res->addr.family = AF_INET6;
            memcpy(res->addr.bytes, &s6->sin6_addr, 16);
            res->addr.scope_id = s6->sin6_scope_id;
        }
        freeaddrinfo(list);
    }
    res->took_ns = icmp_now_ns() - t0;
}

/* A timed-out answer for rq at now. */
static struct resolution timed_out(const struct request *rq, int64_t now)
{
    return (struct resolution){
        .error = EAI_AGAIN, .timed_out = true, .took_ns = now - rq->submitted_ns};
}

/* Drops a reference (the lock held; it is released). The last one frees the resolver. */
static void unref_unlock(struct resolver *r)
{
    if (!detached_home_unref_unlock(&r->home))
        return;
    detached_home_cleanup(&r->home);
    pthread_cond_destroy(&r->wake);
    pthread_cond_destroy(&r->timer_wake);
    free(r);
}

/* Calls done outside the lock (held on entry and on return), counted in callbacks. */
static void call_back(struct resolver *r, resolve_done_fn done, void *arg,
                      const struct resolution *res)
{
    detached_home_callback_begin(&r->home);
    done(arg, res);
    detached_home_callback_end(&r->home);
}

static void *worker(void *arg)
{
    struct worker_arg *wa = arg;
    struct resolver *r = wa->r;
    unsigned me = wa->index;

    free(wa);
    pthread_mutex_lock(&r->home.lock);
    for (;;) {
        struct request *rq;
        struct resolution res;

        r->n_idle++;
        while (r->head == NULL && !r->stopping)
            pthread_cond_wait(&r->wake, &r->home.lock);
        r->n_idle--;
        if (r->stopping)
            break;
        rq = r->head;
        r->head = rq->next;
        if (r->head == NULL)
            r->tail = NULL;
        r->n_queued--;
        if (icmp_now_ns() >= rq->deadline_ns) { /* the timer has not come round to it yet */
            rq->answered = true;
            res = timed_out(rq, icmp_now_ns());
            call_back(r, rq->done, rq->arg, &res);
            free(rq);
            continue;
        }
        r->running[me] = rq;
        pthread_mutex_unlock(&r->home.lock);
        resolve(rq, &res); /* may hang far past the deadline: the timer answers meanwhile */
        pthread_mutex_lock(&r->home.lock);
        r->running[me] = NULL;
        if (!rq->answered) {
            rq->answered = true;
            call_back(r, rq->done, rq->arg, &res);
        }
        free(rq);
    }
    unref_unlock(r);
    return NULL;
}

/* Answers every lookup whose deadline passed (all of them when stopping); returns the
 * earliest deadline still pending (INT64_MAX: none). The lock is held. */
static int64_t expire(struct resolver *r)
{
    int64_t now = icmp_now_ns(), next = INT64_MAX;
    struct request **link = &r->head, *gone = NULL;
    struct {
        resolve_done_fn done;
        void *arg;
        struct resolution res;
    } late[RESOLVER_MAX_THREADS];
    unsigned n_late = 0;

    while (*link != NULL) {
        struct request *rq = *link;
        if (r->stopping || now >= rq->deadline_ns) {
            *link = rq->next;
            r->n_queued--;
            rq->answered = true;
            rq->next = gone;
            gone = rq;
            continue;
        }
        if (rq->deadline_ns < next)
            next = rq->deadline_ns;
        r->tail = rq;
        link = &rq->next;
    }
    if (r->head == NULL)
        r->tail = NULL;
    for (unsigned i = 0; i < r->n_threads; i++) {
        struct request *rq = r->running[i];
        if (rq == NULL || rq->answered)
            continue;
        if (r->stopping || now >= rq->deadline_ns) {
            rq->answered = true; /* its worker frees it when getaddrinfo returns */
            late[n_late].done = rq->done;
            late[n_late].arg = rq->arg;
            late[n_late].res = timed_out(rq, now);
            n_late++;
        } else if (rq->deadline_ns < next) {
            next = rq->deadline_ns;
        }
    }
    while (gone != NULL) {
        struct request *rq = gone;
        struct resolution res = timed_out(rq, now);
        gone = rq->next;
        call_back(r, rq->done, rq->arg, &res);
        free(rq);
    }
    for (unsigned i = 0; i < n_late; i++) {
        call_back(r, late[i].done, late[i].arg, &late[i].res);
    }
    return next;
}

static void *timer(void *arg)
{
    struct resolver *r = arg;

    pthread_mutex_lock(&r->home.lock);
    while (!r->stopping) {
        int64_t next = expire(r);
        struct timespec ts;
        if (r->stopping)
            break;
        if (next == INT64_MAX) {
            pthread_cond_wait(&r->timer_wake, &r->home.lock);
            continue;
        }
        ts.tv_sec = (time_t)(next / 1000000000);
        ts.tv_nsec = (long)(next % 1000000000);
        pthread_cond_timedwait(&r->timer_wake, &r->home.lock, &ts);
    }
    pthread_mutex_unlock(&r->home.lock);
    return NULL;
}

/* Starts one more worker (the lock held). Returns 0 or -EAGAIN. */
static int spawn(struct resolver *r)
{
    struct worker_arg *wa;
    pthread_attr_t detached;
    pthread_t t;
    int rc;

    if (r->n_threads == RESOLVER_MAX_THREADS || (wa = malloc(sizeof(*wa))) == NULL)
        return -EAGAIN;
    *wa = (struct worker_arg){r, r->n_threads};
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &detached, worker, wa);
    pthread_attr_destroy(&detached);
    if (rc != 0) {
        free(wa);
        return -EAGAIN;
    }
    r->home.refs++;
    r->n_threads++;
    return 0;
}

int resolver_open(struct resolver **out, unsigned threads)
{
    struct resolver *r = calloc(1, sizeof(*r));
    pthread_condattr_t mono;

    if (r == NULL)
        return -ENOMEM;
    detached_home_init(&r->home, 1);
    pthread_cond_init(&r->wake, NULL);
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC); /* deadlines are icmp_now_ns() */
    pthread_cond_init(&r->timer_wake, &mono);
    pthread_condattr_destroy(&mono);
    if (pthread_create(&r->timer, NULL, timer, r) != 0) {
        pthread_mutex_lock(&r->home.lock);
        unref_unlock(r);
        return -EAGAIN;
    }
    pthread_mutex_lock(&r->home.lock);
    while (r->n_threads < threads && spawn(r) == 0)
        ;
    pthread_mutex_unlock(&r->home.lock);
    if (r->n_threads == 0) {
        resolver_close(r);
        return -EAGAIN;
    }
    *out = r;
    return 0;
}

void resolver_close(struct resolver *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->home.lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->wake);
    pthread_cond_broadcast(&r->timer_wake);
    pthread_mutex_unlock(&r->home.lock);
    pthread_join(r->timer, NULL);
    pthread_mutex_lock(&r->home.lock);
    expire(r); /* everything still unanswered, as timed out */
    detached_home_quiesce(&r->home);
    unref_unlock(r);
}

int resolver_submit(struct resolver *r, const char *name, int preferred, bool fallback,
                    int64_t deadline_ns, resolve_done_fn done, void *arg)
{
    struct resolution res = {0};
    struct request *rq;

    if (icmp_addr_parse(name, &res.addr) == 0) {
        done(arg, &res); /* a literal: nothing to look up */
        return 0;
    }
    rq = calloc(1, sizeof(*rq));
    if (rq == NULL)
        return -ENOMEM;
    rq->preferred = preferred;
    rq->fallback = fallback;
    rq->done = done;
    rq->arg = arg;
    rq->submitted_ns = icmp_now_ns();
    rq->deadline_ns = deadline_ns;
    snprintf(rq->name, sizeof(rq->name), "%s", name);
    pthread_mutex_lock(&r->home.lock);
    if (r->stopping || r->n_queued >= RESOLVER_QUEUE_MAX) {
        int rc = r->stopping ? -ESHUTDOWN : -EBUSY;
        pthread_mutex_unlock(&r->home.lock);
        free(rq);
        return rc;
    }
    if (r->tail != NULL)
        r->tail->next = rq;
    else
        r->head = rq;
    r->tail = rq;
    r->n_queued++;
    if (r->n_queued > r->n_idle)
        spawn(r); /* none free: the others may all hang; at the limit, it waits its turn */
    pthread_cond_signal(&r->wake);
    pthread_cond_signal(&r->timer_wake);
    pthread_mutex_unlock(&r->home.lock);
    return 0;
}
