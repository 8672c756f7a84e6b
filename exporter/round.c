/*
 * The static targets' probe rounds (round.h).
 *
 * Why rounds: a /metrics scrape used to start its own probe of every static target, capped
 * by its own X-Prometheus-Scrape-Timeout-Seconds, and fold the result into the state every
 * scrape shares. Any client could then ask for a deadline too short to hear a reply and
 * write "down" into a healthy target's series, and 200 concurrent scrapes of 5,000 targets
 * were a million probes (issue 16). Now probes run with the module's own timeout, one round
 * at a time per table, and scrapes only wait on a round: at most until their deadline, after
 * which they render what the table holds (the last completed measurement of each target).
 *
 * Threads: a round's probes complete on the engine and resolver threads, which fold them
 * into the table (under exporter.lock) and end the round with the last one. Deadlines are
 * kept by one timer thread that sleeps on a condition variable (CLOCK_MONOTONIC, the clock
 * of icmp_now_ns) until the nearest one. Every waiter is in one list, fired (and unlinked)
 * exactly once under rounds.lock by whichever comes first: its round's end, its deadline,
 * or rounds_stop. Waiters are as many as scrapes in flight, so lists beat a heap here.
 */
#include "exporter/round.h"

#include "exporter/exporter.h"
#include "exporter/probe.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct round_call {
    struct round *round;
    size_t index;
};

struct round {
    struct round *next; /* rounds.running */
    struct rounds *rs;
    struct target_table *table; /* a reference */
    struct probe **probes;      /* each freed (NULL) once folded into the table */
    struct round_call *calls;   /* each probe's callback argument */
    _Atomic size_t pending;     /* probes not yet folded, + 1 while the round is starting */
};

struct rounds {
    struct exporter *x;
    pthread_mutex_t lock; /* what follows */
    pthread_cond_t wake;  /* the timer: a nearer deadline, or closing */
    pthread_t timer;
    bool stopping, closing;
    bool trim; /* a round ended: the timer thread gives freed memory back (malloc_trim) */
    struct round *running;
    struct round_waiter *waiters; /* every waiter not fired yet, of every round */
    uint64_t started, early;
};

static void waiter_unlink(struct rounds *rs, struct round_waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        rs->waiters = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

/* Fires a list of waiters unlinked from rs->waiters (chained by next), no lock held. */
static void fire_list(struct round_waiter *list, bool early)
{
    while (list != NULL) {
        struct round_waiter *next = list->next;
        list->next = NULL;
        list->fire(list, early); /* may free list */
        list = next;
    }
}

static void round_free(struct round *r)
{
    size_t n = r->table->n;

    for (size_t i = 0; i < n; i++)
        probe_free(r->probes[i]);
    free(r->probes);
    free(r->calls);
    target_table_unref(r->table);
    free(r);
}

/* The round's last probe is in: unlink it, fire its waiters, free it. */
static void round_end(struct round *r)
{
    struct rounds *rs = r->rs;
    struct round_waiter *done = NULL;

    pthread_mutex_lock(&rs->lock);
    for (struct round **pp = &rs->running; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    for (struct round_waiter *w = rs->waiters, *next; w != NULL; w = next) {
        next = w->next;
        if (w->round != r)
            continue;
        waiter_unlink(rs, w);
        w->next = done;
        done = w;
    }
    pthread_mutex_unlock(&rs->lock);
    atomic_fetch_sub(&rs->x->probes_in_flight, 1);
    fire_list(done, false);
    round_free(r);
    /* A burst of probes and answers is over: give what it freed back to the system, on the
     * timer thread (this may be the engine's, which must not stall on a heap walk). */
    pthread_mutex_lock(&rs->lock);
    rs->trim = true;
    pthread_cond_signal(&rs->wake);
    pthread_mutex_unlock(&rs->lock);
}

static void round_release(struct round *r)
{
    if (atomic_fetch_sub(&r->pending, 1) == 1)
        round_end(r);
}

/* A static target's probe is over: fold it into the table, and free it at once (the series
 * are rendered from the table), so memory drains as the round completes. */
static void on_target_done(struct probe *p, void *arg)
{
    struct round_call *call = arg;
    struct round *r = call->round;
    struct exporter *x = r->rs->x;
    size_t n;
    const struct config_target *t = config_targets(r->table->cfg, &n) + call->index;
    struct echo_summary s;
    const struct icmp_addr *addr;
    uint32_t duplicates;

    probe_summary(p, &s, &duplicates, &addr);
    pthread_mutex_lock(&x->lock);
    target_state_fold(&r->table->states[call->index], t->module, &s, duplicates, probe_success(p),
                      addr);
    pthread_mutex_unlock(&x->lock);
    r->probes[call->index] = NULL;
    probe_free(p);
    round_release(r);
}

/* Starts the probes of a round made by rounds_join (no lock held). A target whose probe
 * cannot be made (out of memory) sits this round out: its state keeps the last one. */
static void round_start(struct round *r)
{
    struct exporter *x = r->rs->x;
    size_t n;
    const struct config_target *t = config_targets(r->table->cfg, &n);

    for (size_t i = 0; i < n; i++) {
        r->calls[i] = (struct round_call){.round = r, .index = i};
        if (t[i].module->mode == CONFIG_MODE_CONTINUOUS) {
            round_release(r); /* measured all the time (continuous.c), never by a round */
            continue;
        }
        if (probe_new_static(x, r->table->cfg, &t[i], 0, &r->probes[i]) < 0) {
            round_release(r);
            continue;
        }
        if (probe_start(r->probes[i], on_target_done, &r->calls[i]) < 0) {
            /* Not started (the exporter is stopping): nothing measured, nothing folded. */
            probe_free(r->probes[i]);
            r->probes[i] = NULL;
            round_release(r);
        }
    }
    round_release(r); /* the starting guard */
}

int rounds_join(struct rounds *rs, struct target_table *table, struct round_waiter *w)
{
    struct round *r, *fresh = NULL;

    pthread_mutex_lock(&rs->lock);
    if (rs->stopping) {
        pthread_mutex_unlock(&rs->lock);
        return -ESHUTDOWN;
    }
    for (r = rs->running; r != NULL && r->table != table; r = r->next)
        ;
    if (r == NULL) {
        size_t n = table->n > 0 ? table->n : 1;
        fresh = calloc(1, sizeof(*fresh));
        if (fresh == NULL || (fresh->probes = calloc(n, sizeof(*fresh->probes))) == NULL ||
            (fresh->calls = calloc(n, sizeof(*fresh->calls))) == NULL) {
            pthread_mutex_unlock(&rs->lock);
            if (fresh != NULL)
                free(fresh->probes);
            free(fresh);
            return -ENOMEM;
        }
        fresh->rs = rs;
        fresh->table = target_table_ref(table);
        atomic_init(&fresh->pending, table->n + 1);
        fresh->next = rs->running;
        rs->running = fresh;
        rs->started++;
        r = fresh;
    }
    w->round = r;
    w->prev = NULL;
    w->next = rs->waiters;
    if (rs->waiters != NULL)
        rs->waiters->prev = w;
    rs->waiters = w;
    if (w->deadline_ns != 0)
        pthread_cond_signal(&rs->wake);
    pthread_mutex_unlock(&rs->lock);
    if (fresh != NULL) {
        atomic_fetch_add(&rs->x->probes_in_flight, 1);
        round_start(fresh);
    }
    return 0;
}

/* The timer thread: fires waiters whose deadline came, sleeps until the nearest one. */
static void *timer_main(void *arg)
{
    struct rounds *rs = arg;

    pthread_mutex_lock(&rs->lock);
    while (!rs->closing) {
        int64_t now = icmp_now_ns(), next = INT64_MAX;
        struct round_waiter *due = NULL;

        for (struct round_waiter *w = rs->waiters, *nw; w != NULL; w = nw) {
            nw = w->next;
            if (w->deadline_ns == 0)
                continue;
            if (w->deadline_ns <= now) {
                waiter_unlink(rs, w);
                w->next = due;
                due = w;
                rs->early++;
            } else if (w->deadline_ns < next) {
                next = w->deadline_ns;
            }
        }
        if (due != NULL) {
            pthread_mutex_unlock(&rs->lock);
            fire_list(due, true);
            pthread_mutex_lock(&rs->lock);
            continue;
        }
        if (rs->trim) {
            rs->trim = false;
            pthread_mutex_unlock(&rs->lock);
            malloc_trim(0);
            pthread_mutex_lock(&rs->lock);
            continue;
        }
        if (next == INT64_MAX) {
            pthread_cond_wait(&rs->wake, &rs->lock);
        } else {
            struct timespec ts = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
            pthread_cond_timedwait(&rs->wake, &rs->lock, &ts);
        }
    }
    pthread_mutex_unlock(&rs->lock);
    return NULL;
}

int rounds_open(struct rounds **out, struct exporter *x)
{
    struct rounds *rs = calloc(1, sizeof(*rs));
    pthread_condattr_t ca;
    int rc;

    *out = NULL;
    if (rs == NULL)
        return -ENOMEM;
    rs->x = x;
    pthread_mutex_init(&rs->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* icmp_now_ns's clock */
    pthread_cond_init(&rs->wake, &ca);
    pthread_condattr_destroy(&ca);
    rc = pthread_create(&rs->timer, NULL, timer_main, rs);
    if (rc != 0) {
        pthread_cond_destroy(&rs->wake);
        pthread_mutex_destroy(&rs->lock);
        free(rs);
        return -rc;
    }
    *out = rs;
    return 0;
}

void rounds_counts(struct rounds *rs, uint64_t *started, uint64_t *early)
{
    pthread_mutex_lock(&rs->lock);
    *started = rs->started;
    *early = rs->early;
    pthread_mutex_unlock(&rs->lock);
}

void rounds_stop(struct rounds *rs)
{
    struct round_waiter *all;

    if (rs == NULL)
        return;
    pthread_mutex_lock(&rs->lock);
    rs->stopping = true;
    all = rs->waiters;
    rs->waiters = NULL;
    pthread_mutex_unlock(&rs->lock);
    fire_list(all, true);
}

void rounds_close(struct rounds *rs)
{
    if (rs == NULL)
        return;
    rounds_stop(rs);
    pthread_mutex_lock(&rs->lock);
    rs->closing = true;
    pthread_cond_signal(&rs->wake);
    pthread_mutex_unlock(&rs->lock);
    pthread_join(rs->timer, NULL);
    /* Rounds end with their probes, which the closed engine and resolver have completed. */
    pthread_cond_destroy(&rs->wake);
    pthread_mutex_destroy(&rs->lock);
    free(rs);
}
