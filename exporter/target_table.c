/*
 * The static targets' table (target_table.h). A reload makes a new table and carries over
 * the counters of every target it left unchanged, matched by a hash of target, module and
 * labels, so a reload is not a counter reset for them.
 */
#include "exporter/target_table.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The identity of a static target across reloads: its target, module and labels. */
static uint64_t target_key_hash(const struct config_target *t)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    const char *parts[2] = {t->target, t->module->name};

    for (size_t k = 0; k < 2 + 2 * t->n_labels; k++) {
        const char *p = k < 2              ? parts[k]
                        : (k - 2) % 2 == 0 ? t->labels[(k - 2) / 2].name
                                           : t->labels[(k - 2) / 2].value;
        for (; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211u;
        h = (h ^ 0xff) * 1099511628211u; /* a separator no string contains */
    }
    return h;
}

static bool same_target(const struct config_target *a, const struct config_target *b)
{
    if (strcmp(a->target, b->target) != 0 || strcmp(a->module->name, b->module->name) != 0 ||
        a->n_labels != b->n_labels || a->module->n_buckets != b->module->n_buckets)
        return false;
    for (size_t k = 0; k < a->n_labels; k++) {
        if (strcmp(a->labels[k].name, b->labels[k].name) != 0 ||
            strcmp(a->labels[k].value, b->labels[k].value) != 0)
            return false;
    }
    for (size_t b_ = 0; b_ < a->module->n_buckets; b_++) {
        if (a->module->buckets[b_] != b->module->buckets[b_])
            return false;
    }
    return true;
}

/*
 * Carries the counters of every target that a reload kept unchanged (same target, module,
 * labels and buckets) from prev into t, so a reload is not a counter reset for them. A
 * scrape still running on prev may add to it afterwards; those few echoes are not carried.
 * prev's counters are read under exporter.lock (held by the caller).
 */
#define TAKEN (SIZE_MAX - 1)

static void carry_states(struct target_table *t, const struct target_table *prev)
{
    const struct config_target *nt = config_targets(t->cfg, &(size_t){0});
    const struct config_target *ot = config_targets(prev->cfg, &(size_t){0});
    size_t cap = 1, *slots;

    while (cap < prev->n * 2)
        cap *= 2;
    slots = malloc(cap * sizeof(*slots));
    if (slots == NULL)
        return; /* the counters start again: a reset, not a failure */
    for (size_t i = 0; i < cap; i++)
        slots[i] = SIZE_MAX;
    for (size_t j = 0; j < prev->n; j++) {
        size_t i = (size_t)target_key_hash(&ot[j]) & (cap - 1);
        while (slots[i] != SIZE_MAX)
            i = (i + 1) & (cap - 1);
        slots[i] = j;
    }
    for (size_t k = 0; k < t->n; k++) {
        size_t i = (size_t)target_key_hash(&nt[k]) & (cap - 1);
        for (; slots[i] != SIZE_MAX; i = (i + 1) & (cap - 1)) {
            if (slots[i] == TAKEN || !same_target(&nt[k], &ot[slots[i]]))
                continue;
            const struct target_state *o = &prev->states[slots[i]];
            struct target_state *s = &t->states[k];
            uint64_t *buckets = s->rtt_buckets;
            *s = *o;
            s->rtt_buckets = buckets;
            memcpy(buckets, o->rtt_buckets, nt[k].module->n_buckets * sizeof(*buckets));
            s->other = NULL;
            if (o->other != NULL && (s->other = malloc(ICMP_STATUS_LIMIT * sizeof(uint64_t))))
                memcpy(s->other, o->other, ICMP_STATUS_LIMIT * sizeof(uint64_t));
            t->carried_from[k] = slots[i];
            slots[i] = TAKEN; /* a target listed twice: the second starts at zero */
            break;
        }
    }
    free(slots);
    t->carried_table = prev;
}

struct target_table *target_table_new(struct config *cfg, const struct target_table *prev)
{
    size_t n, n_buckets = 0;
    const struct config_target *t = config_targets(cfg, &n);
    struct target_table *table = calloc(1, sizeof(*table));

    if (table == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        n_buckets += t[i].module->n_buckets;
    table->states = calloc(n > 0 ? n : 1, sizeof(*table->states));
    table->buckets = calloc(n_buckets > 0 ? n_buckets : 1, sizeof(*table->buckets));
    table->carried_from = malloc((n > 0 ? n : 1) * sizeof(*table->carried_from));
    if (table->states == NULL || table->buckets == NULL || table->carried_from == NULL) {
        free(table->states);
        free(table->buckets);
        free(table->carried_from);
        free(table);
        return NULL;
    }
    n_buckets = 0;
    for (size_t i = 0; i < n; i++) {
        table->carried_from[i] = SIZE_MAX;
        table->states[i].hop_limit = -1;
        table->states[i].rtt_buckets = table->buckets + n_buckets;
        n_buckets += t[i].module->n_buckets;
    }
    atomic_init(&table->refs, 1);
    table->cfg = config_ref(cfg);
    table->n = n;
    if (prev != NULL && prev->n > 0 && n > 0)
        carry_states(table, prev);
    return table;
}

struct target_table *target_table_ref(struct target_table *t)
{
    atomic_fetch_add(&t->refs, 1);
    return t;
}

void target_table_unref(struct target_table *t)
{
    if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->states[i].other);
    free(t->states);
    free(t->buckets);
    free(t->carried_from);
    config_unref(t->cfg);
    free(t);
}

uint64_t target_replies(const struct target_state *t, enum icmp_status s)
{
    if (s == ICMP_STATUS_SUCCESS)
        return t->replied;
    if (s == ICMP_STATUS_TIMED_OUT)
        return t->timed_out;
    return t->other != NULL && (unsigned)s < ICMP_STATUS_LIMIT ? t->other[s] : 0;
}

int target_state_fold(struct target_state *t, const struct config_module *m,
                      const struct echo_summary *s, uint32_t duplicates, bool success,
                      const struct icmp_addr *addr)
{
    int rc = 0;

    if (addr != NULL) {
        icmp_addr_format(addr, t->ip, sizeof(t->ip));
        t->ip_version = addr->family == AF_INET ? 4 : 6;
    }
    t->unsent += s->unsent;
    if (s->attempted == 0 && s->unsent > 0)
        return 0; /* nothing measured: not a down, the last measurement stands */
    t->sent += s->sent;
    for (int i = 0; i < ICMP_STATUS_LIMIT; i++) {
        if (s->by_status[i] == 0)
            continue;
        if (i == ICMP_STATUS_SUCCESS) {
            t->replied += s->by_status[i];
        } else if (i == ICMP_STATUS_TIMED_OUT) {
            t->timed_out += s->by_status[i];
        } else {
            if (t->other == NULL &&
                (t->other = calloc(ICMP_STATUS_LIMIT, sizeof(uint64_t))) == NULL) {
                rc = -ENOMEM; /* this scrape's rarer outcomes go uncounted */
                continue;
            }
            t->other[i] += s->by_status[i];
        }
    }
    for (size_t b = 0; b < m->n_buckets; b++)
        t->rtt_buckets[b] += s->buckets[b];
    t->rtt_count += s->received;
    t->rtt_sum += s->sum;
    t->duplicates += duplicates;
    t->rtt_n = s->received;
    if (s->received > 0) {
        t->rtt_min = s->min;
        t->rtt_avg = echo_summary_mean(s);
        t->rtt_max = s->max;
        t->rtt_stddev = echo_summary_stddev(s);
    }
    t->scraped = true;
    t->success = success;
    t->loss_ratio = echo_summary_loss(s);
    t->hop_limit = (int16_t)(s->received > 0 ? s->hop_limit : -1);
    return rc;
}
