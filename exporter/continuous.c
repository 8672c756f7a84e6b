/*
 * Continuous measurement (continuous.h).
 *
 * A schedule holds one configuration's continuous targets. Each target's k-th echo is due at
 * t0 + phase + k x interval on CLOCK_MONOTONIC (the sum is exact integer arithmetic: the
 * schedule never drifts, however late a wake-up), and the targets of a module are phased
 * evenly across its interval (the i-th of N at i x interval / N), so N targets cost a steady
 * N / interval sends per second, never a burst. One thread keeps the targets in a min-heap
 * by due time, sleeps until the nearest, and submits the echoes due (within SLACK_NS) to the
 * shared engine in one batch, as jobs of one echo on the static targets' flow; no thread per
 * target, no allocation per echo.
 *
 * Each target owns a few job slots (continuous_slots): an echo's job lives in its slot from
 * submission until the engine settles it (reply, ICMP error or timeout); the completion
 * folds it into the target's state under exporter.lock and frees the slot. So counters move
 * only when an echo is settled, never while it waits: 1 - success / sent is exact at any
 * time. An echo due while every slot still waits (the packet budget held its send back) is
 * not sent, and counted as unsent.
 *
 * Names are resolved when the schedule starts and every module's dns_refresh after; a name
 * that fails keeps its last address (one that never resolved reads down, as a scrape's
 * would).
 *
 * Lifetime: a schedule is reference-counted (the thread's, one per busy slot, one per
 * lookup), so a reload swaps in a new schedule at once and the old one goes when its last
 * echo and lookup have answered. The new schedule's targets that the reload left unchanged
 * keep their counters (the table carries them) and their phase (carry_phase); their echoes
 * in flight at the swap settle into the old table, in no counter of the new one.
 */
#include "exporter/continuous.h"

#include "exporter/exporter.h"
#include "exporter/probe.h"
#include "exporter/resolver.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Echoes due this soon are sent with the batch being made: fewer wake-ups, ±0.5 ms. */
#define SLACK_NS 500000
/* Jobs handed to the engine in one call. */
#define BATCH_MAX 256
/* One lookup may take this long. */
#define LOOKUP_TIMEOUT_NS (5LL * 1000000000LL)
/* After a full resolver queue, the names left out are tried again this soon. */
#define LOOKUP_RETRY_NS 1000000000LL

struct schedule;
struct ctarget;

struct echo_slot {
    struct icmp_job job;
    struct icmp_echo_result result;
    struct ctarget *target;
    _Atomic bool busy; /* from submission to the job's completion */
};

enum addr_state { ADDR_PENDING, ADDR_OK, ADDR_FAILED };

struct ctarget {
    struct schedule *s;
    size_t index; /* in the table: its state, and its config_target */
    const struct config_target *t;
    int64_t due; /* the next send, icmp_now_ns's clock */
    struct echo_slot *slots;
    unsigned n_slots;
    /* under continuous.lock */
    enum addr_state addr_state;
    struct icmp_addr addr;
    bool resolving;
    int64_t resolve_at; /* the next lookup of a name (the thread's own; 0: at once) */
};

struct schedule {
    _Atomic size_t refs;
    struct continuous *c;
    struct target_table *table; /* a reference; NULL when there is no continuous target */
    size_t n;
    struct ctarget *targets;
    struct echo_slot *slots; /* every target's */
    size_t *heap;            /* target indices, a min-heap by due (the thread's own) */
    size_t *of_index;        /* table index -> target index (SIZE_MAX: not continuous) */
    int64_t resolve_at;      /* the nearest of the targets' resolve_at (INT64_MAX: none) */
};

struct continuous {
    struct exporter *x;
    pthread_mutex_t lock; /* what follows, and the targets' name state */
    pthread_cond_t wake;
    pthread_t thread;
    bool started, stopping;
    struct schedule *fresh; /* given by continuous_update, not yet taken by the thread */
};

unsigned continuous_slots(const struct config_module *m)
{
    int64_t waits = (m->echo_timeout_ns + m->interval_ns - 1) / m->interval_ns;

    return (unsigned)(waits < 1 ? 1 : waits) + 1;
}

static void schedule_unref(struct schedule *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    target_table_unref(s->table);
    free(s->targets);
    free(s->slots);
    free(s->heap);
    free(s->of_index);
    free(s);
}

/* ---- the heap of targets by due time ---- */

static bool before(const struct schedule *s, size_t a, size_t b)
{
    return s->targets[s->heap[a]].due < s->targets[s->heap[b]].due;
}

static void swap_at(struct schedule *s, size_t a, size_t b)
{
    size_t t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
}

/* Node i's due time grew (or the heap is being built): sift it down. */
static void sift_down(struct schedule *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->n && before(s, l, m))
            m = l;
        if (r < s->n && before(s, r, m))
            m = r;
        if (m == i)
            return;
        swap_at(s, i, m);
        i = m;
    }
}

/* ---- a schedule for a configuration ---- */

static struct schedule *schedule_new(struct continuous *c, struct config *cfg)
{
    size_t n_targets, n_modules, n = 0, n_slots = 0;
    const struct config_target *t;
    const struct config_module *modules;
    struct schedule *s = calloc(1, sizeof(*s));
    size_t *per_module = NULL, *rank = NULL;
    int64_t t0 = icmp_now_ns();

    if (s == NULL)
        return NULL;
    atomic_init(&s->refs, 1);
    s->c = c;
    /* The exporter's table for cfg (its own configuration, should cfg be an older one). */
    if ((s->table = exporter_target_table(c->x, cfg)) == NULL)
        goto fail;
    t = config_targets(s->table->cfg, &n_targets);
    modules = config_modules(s->table->cfg, &n_modules);
    per_module = calloc(n_modules + 1, sizeof(size_t));
    rank = calloc(n_modules + 1, sizeof(size_t));
    if (per_module == NULL || rank == NULL)
        goto fail;
    for (size_t i = 0; i < n_targets; i++) {
        if (t[i].module->mode != CONFIG_MODE_CONTINUOUS)
            continue;
        n++;
        n_slots += continuous_slots(t[i].module);
        per_module[t[i].module - modules]++;
    }
    if (n > 0) {
        s->targets = calloc(n, sizeof(*s->targets));
        s->slots = calloc(n_slots, sizeof(*s->slots));
        s->heap = calloc(n, sizeof(*s->heap));
        s->of_index = malloc(n_targets * sizeof(*s->of_index));
        if (s->targets == NULL || s->slots == NULL || s->heap == NULL || s->of_index == NULL)
            goto fail;
        for (size_t i = 0; i < n_targets; i++)
            s->of_index[i] = SIZE_MAX;
    }
    n_slots = 0;
    for (size_t i = 0, k = 0; i < n_targets; i++) {
        const struct config_module *m = t[i].module;
        struct ctarget *ct = &s->targets[k];
        size_t mi = (size_t)(m - modules);

        if (m->mode != CONFIG_MODE_CONTINUOUS)
            continue;
        ct->s = s;
        ct->index = i;
        ct->t = &t[i];
        /* The r-th of a module's N targets at r x interval / N: spread evenly. The product
         * fits: interval is at most 1 h (3.6e12 ns) and r below a million targets. */
        ct->due = t0 + m->interval_ns * (int64_t)rank[mi] / (int64_t)per_module[mi];
        rank[mi]++;
        ct->slots = s->slots + n_slots;
        ct->n_slots = continuous_slots(m);
        n_slots += ct->n_slots;
        for (unsigned j = 0; j < ct->n_slots; j++)
            ct->slots[j].target = ct;
        if (t[i].is_literal) {
            ct->addr = t[i].addr;
            ct->addr_state = ADDR_OK;
        }
        s->heap[k] = k;
        s->of_index[i] = k;
        k++;
    }
    s->n = n;
    for (size_t i = n / 2; i-- > 0;) /* heapify */
        sift_down(s, i);
    s->resolve_at = t0; /* every name at once */
    free(per_module);
    free(rank);
    return s;
fail:
    free(per_module);
    free(rank);
    schedule_unref(s);
    return NULL;
}

/*
 * A reload's schedule takes over the phase (the next due time) and the address of each
 * target its table carried over from the running schedule's, when its interval is the
 * same: an unchanged target goes on as if nothing happened. The thread, continuous.lock
 * held (the addresses).
 */
static void carry_phase(struct schedule *s, const struct schedule *old)
{
    const struct target_table *t = s->table;

    if (old == NULL || old->n == 0 || s->n == 0 || t->carried_table != old->table)
        return;
    for (size_t k = 0; k < s->n; k++) {
        struct ctarget *ct = &s->targets[k];
        size_t j = t->carried_from[ct->index];
        const struct ctarget *o;

        if (j == SIZE_MAX || old->of_index[j] == SIZE_MAX)
            continue;
        o = &old->targets[old->of_index[j]];
        if (o->t->module->interval_ns != ct->t->module->interval_ns)
            continue;
        ct->due = o->due;
        if (!ct->t->is_literal && o->addr_state == ADDR_OK) {
            ct->addr = o->addr;
            ct->addr_state = ADDR_OK;
        }
    }
    for (size_t i = s->n / 2; i-- > 0;) /* heapify again */
        sift_down(s, i);
}

/* ---- echoes ---- */

/* Folds an outcome into the target's state (the exporter's lock taken here). */
static void fold(struct ctarget *ct, const struct echo_summary *sum, uint32_t duplicates,
                 bool success, const struct icmp_addr *addr)
{
    struct exporter *x = ct->s->c->x;

    pthread_mutex_lock(&x->lock);
    target_state_fold(&ct->s->table->states[ct->index], ct->t->module, sum, duplicates, success,
                      addr);
    pthread_mutex_unlock(&x->lock);
}

/* Echoes that could not be sent (every slot waits, the engine refused the batch, or the
 * thread woke up intervals late). */
static void fold_unsent(struct ctarget *ct, uint32_t n)
{
    struct echo_summary sum;

    memset(&sum, 0, sizeof(sum));
    sum.hop_limit = -1;
    sum.unsent = n;
    fold(ct, &sum, 0, false, NULL);
}

/* The engine settled a slot's echo (engine thread). */
static void on_echo_done(struct icmp_job *job, void *arg)
{
    struct echo_slot *slot = arg;
    struct ctarget *ct = slot->target;
    struct schedule *s = ct->s;
    struct echo_summary sum;

    echo_summary_of(&sum, &slot->result, 1, ct->t->module);
    fold(ct, &sum, job->duplicates, job->received > 0, &job->dst);
    atomic_store(&slot->busy, false);
    schedule_unref(s);
}

/* Readies target ct's echo in a free slot: returns its job, or NULL (nothing to send: the
 * name is not known yet, or did not resolve, or every slot still waits; those are folded). */
static struct icmp_job *prepare(struct continuous *c, struct ctarget *ct)
{
    const struct config_module *m = ct->t->module;
    struct echo_slot *slot = NULL;
    enum addr_state state;
    struct icmp_addr dst;

    pthread_mutex_lock(&c->lock);
    state = ct->addr_state;
    dst = ct->addr;
    pthread_mutex_unlock(&c->lock);
    if (state == ADDR_PENDING)
        return NULL; /* the first lookup has not answered: nothing measured yet */
    if (state == ADDR_FAILED) {
        struct echo_summary sum;
        memset(&sum, 0, sizeof(sum));
        sum.hop_limit = -1;
        fold(ct, &sum, 0, false, NULL); /* down, as a scrape's probe of it would read */
        return NULL;
    }
    for (unsigned j = 0; j < ct->n_slots && slot == NULL; j++) {
        if (!atomic_load(&ct->slots[j].busy))
            slot = &ct->slots[j];
    }
    if (slot == NULL) {
        fold_unsent(ct, 1);
        return NULL;
    }
    slot->job = (struct icmp_job){
        .dst = dst,
        .count = 1,
        .interval_ns = m->interval_ns,
        .timeout_ns = m->echo_timeout_ns,
        .payload_size = (uint16_t)m->payload_size,
        .ttl = (uint8_t)m->ttl,
        .tos = (uint8_t)m->tos,
        .dont_fragment = m->dont_fragment,
        .flow = PROBE_FLOW_STATIC,
        .results = &slot->result,
        .on_done = on_echo_done,
        .arg = slot,
    };
    if (m->has_source_ip && m->source_ip.family == dst.family)
        slot->job.src = m->source_ip;
    atomic_store(&slot->busy, true);
    atomic_fetch_add(&ct->s->refs, 1);
    return &slot->job;
}

/* Hands a batch to the engine; a refused batch is released and counted unsent. */
static void submit(struct continuous *c, struct icmp_job **jobs, size_t n)
{
    if (n == 0 || icmp_engine_submit(c->x->engine, jobs, n) == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        struct echo_slot *slot = jobs[i]->arg;
        struct schedule *s = slot->target->s;
        fold_unsent(slot->target, 1);
        atomic_store(&slot->busy, false);
        schedule_unref(s);
    }
}

/* ---- names ---- */

static void on_resolved(void *arg, const struct resolution *res)
{
    struct ctarget *ct = arg;
    struct schedule *s = ct->s;
    struct continuous *c = s->c;

    pthread_mutex_lock(&c->lock);
    if (res->error == 0) {
        ct->addr = res->addr;
        ct->addr_state = ADDR_OK;
    } else if (ct->addr_state == ADDR_PENDING) {
        ct->addr_state = ADDR_FAILED; /* a name that resolved once keeps its address */
    }
    ct->resolving = false;
    pthread_mutex_unlock(&c->lock);
    schedule_unref(s);
}

/* Looks up the names of s due for it (the thread, no lock held): each every its module's
 * dns_refresh. Returns when the next is due (INT64_MAX: no name). */
static int64_t resolve_names(struct continuous *c, struct schedule *s, int64_t now)
{
    int64_t again = INT64_MAX;

    for (size_t i = 0; i < s->n; i++) {
        struct ctarget *ct = &s->targets[i];
        const struct config_module *m = ct->t->module;
        bool go;
        int rc;

        if (ct->t->is_literal)
            continue;
        if (ct->resolve_at <= now) {
            pthread_mutex_lock(&c->lock);
            go = !ct->resolving; /* a lookup that hangs is not asked again meanwhile */
            ct->resolving = true;
            pthread_mutex_unlock(&c->lock);
            ct->resolve_at = now + (go ? m->dns_refresh_ns : LOOKUP_RETRY_NS);
            if (go) {
                atomic_fetch_add(&s->refs, 1);
                rc = resolver_submit(c->x->resolver, ct->t->target, m->preferred_ip_protocol,
                                     m->ip_protocol_fallback, now + LOOKUP_TIMEOUT_NS, on_resolved,
                                     ct);
                if (rc < 0) {
                    pthread_mutex_lock(&c->lock);
                    ct->resolving = false;
                    pthread_mutex_unlock(&c->lock);
                    atomic_fetch_sub(&s->refs, 1); /* the thread's own reference remains */
                    if (rc == -EBUSY)              /* the resolver's queue is full */
                        ct->resolve_at = now + LOOKUP_RETRY_NS;
                }
            }
        }
        if (ct->resolve_at < again)
            again = ct->resolve_at;
    }
    return again;
}

/* ---- the thread ---- */

static void *scheduler_main(void *arg)
{
    struct continuous *c = arg;
    struct schedule *s = NULL;
    struct icmp_job *batch[BATCH_MAX];

    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        int64_t now = icmp_now_ns();
        size_t n = 0;

        if (c->fresh != NULL) {
            struct schedule *old = s;
            s = c->fresh;
            c->fresh = NULL;
            carry_phase(s, old);
            pthread_mutex_unlock(&c->lock);
            schedule_unref(old);
            pthread_mutex_lock(&c->lock);
            continue;
        }
        if (s == NULL || s->n == 0) {
            pthread_cond_wait(&c->wake, &c->lock);
            continue;
        }
        if (s->targets[s->heap[0]].due > now + SLACK_NS && s->resolve_at > now) {
            int64_t next = s->targets[s->heap[0]].due;
            struct timespec ts;
            if (s->resolve_at < next)
                next = s->resolve_at;
            ts = (struct timespec){.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
            pthread_cond_timedwait(&c->wake, &c->lock, &ts);
            continue;
        }
        pthread_mutex_unlock(&c->lock);
        if (s->resolve_at <= now)
            s->resolve_at = resolve_names(c, s, now);
        while (n < BATCH_MAX && s->targets[s->heap[0]].due <= now + SLACK_NS) {
            struct ctarget *ct = &s->targets[s->heap[0]];
            int64_t interval = ct->t->module->interval_ns;
            struct icmp_job *job;

            if (now - ct->due > interval / 2) {
                /* Late by more than half an interval (the process was stopped, the machine
                 * starved it): those echoes are not sent in a burst but counted unsent, so
                 * sends stay at least half an interval apart; the phase stays. */
                int64_t missed = (now - ct->due - interval / 2) / interval + 1;
                fold_unsent(ct, missed > UINT32_MAX ? UINT32_MAX : (uint32_t)missed);
                ct->due += missed * interval;
            }
            if ((job = prepare(c, ct)) != NULL)
                batch[n++] = job;
            ct->due += interval; /* from the schedule, never from now */
            sift_down(s, 0);
        }
        submit(c, batch, n);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    schedule_unref(s);
    return NULL;
}

int continuous_open(struct continuous **out, struct exporter *x)
{
    struct continuous *c = calloc(1, sizeof(*c));
    pthread_condattr_t ca;
    int rc;

    *out = NULL;
    if (c == NULL)
        return -ENOMEM;
    c->x = x;
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* icmp_now_ns's clock */
    pthread_cond_init(&c->wake, &ca);
    pthread_condattr_destroy(&ca);
    rc = pthread_create(&c->thread, NULL, scheduler_main, c);
    if (rc != 0) {
        pthread_cond_destroy(&c->wake);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return -rc;
    }
    c->started = true;
    *out = c;
    return 0;
}

int continuous_update(struct continuous *c, struct config *cfg)
{
    struct schedule *s, *old;

    if (c == NULL)
        return 0;
    s = schedule_new(c, cfg);
    if (s == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&c->lock);
    if (c->stopping) {
        pthread_mutex_unlock(&c->lock);
        schedule_unref(s);
        return 0;
    }
    old = c->fresh;
    c->fresh = s;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    schedule_unref(old);
    return 0;
}

void continuous_stop(struct continuous *c)
{
    struct schedule *fresh;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    fresh = c->fresh;
    c->fresh = NULL;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    schedule_unref(fresh);
    if (c->started) {
        pthread_join(c->thread, NULL);
        c->started = false;
    }
}

void continuous_close(struct continuous *c)
{
    if (c == NULL)
        return;
    continuous_stop(c);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
