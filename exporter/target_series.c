/*
 * The static targets' series on /metrics, family by family (every target's samples of one
 * family, then the next: the exposition formats want a family's samples together), a piece
 * at a time: the cursor remembers the family and the target where the last piece ended.
 */
#include "exporter/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One past the last family written: the cursor's "done". */
#define FAMILY_END (METRIC_TARGET_RTT + 1)

int metrics_cursor_init(struct metrics_cursor *c, struct target_table *table,
                        enum prom_format format)
{
    size_t n_modules, max_labels = 0;
    const struct config_module *modules;
    const struct config_target *t;

    memset(c, 0, sizeof(*c));
    c->family = FAMILY_END;
    if (table == NULL || table->n == 0)
        return 0;
    t = config_targets(table->cfg, &c->n);
    modules = config_modules(table->cfg, &n_modules);
    for (size_t i = 0; i < c->n; i++)
        max_labels = t[i].n_labels > max_labels ? t[i].n_labels : max_labels;
    /* Each module's bucket bounds as le texts, formatted once instead of per series. */
    c->le = calloc(n_modules > 0 ? n_modules : 1, sizeof(*c->le));
    /* Room for the 4 common labels, the status, then a target's own. */
    c->labels = calloc(5 + max_labels, sizeof(*c->labels));
    if (c->le == NULL || c->labels == NULL) {
        metrics_cursor_cleanup(c);
        return -ENOMEM;
    }
    for (size_t m = 0; m < n_modules; m++) {
        for (size_t b = 0; b < modules[m].n_buckets; b++) {
            prom_format_le(modules[m].buckets[b], format, c->le[m].text[b], PROM_NUMBER_MAX);
            c->le[m].ptr[b] = c->le[m].text[b];
        }
    }
    c->table = target_table_ref(table);
    c->targets = t;
    c->modules = modules;
    c->n_modules = n_modules;
    c->family = METRIC_TARGET_SUCCESS;
    c->next = 0;
    c->family_started = false;
    return 0;
}

void metrics_cursor_cleanup(struct metrics_cursor *c)
{
    target_table_unref(c->table);
    free(c->le);
    free(c->labels);
    memset(c, 0, sizeof(*c));
    c->family = FAMILY_END;
}

/* The value of a family of one sample per target. */
static double state_value(const struct target_state *s, enum metric_id family)
{
    switch (family) {
    case METRIC_TARGET_SUCCESS:
        return s->success ? 1 : 0;
    case METRIC_TARGET_LOSS:
        return s->loss_ratio;
    case METRIC_TARGET_HOP_LIMIT:
        return s->hop_limit;
    case METRIC_TARGET_RTT_MIN:
        return s->rtt_min;
    case METRIC_TARGET_RTT_AVG:
        return s->rtt_avg;
    case METRIC_TARGET_RTT_MAX:
        return s->rtt_max;
    case METRIC_TARGET_RTT_STDDEV:
        return s->rtt_stddev;
    case METRIC_TARGET_SENT:
        return (double)s->sent;
    case METRIC_TARGET_UNSENT:
        return (double)s->unsent;
    default:
        return (double)s->duplicates;
    }
}

/* Writes target i's samples of the cursor's family. */
static void render_target(struct metrics_cursor *c, struct prom_writer *w, size_t i)
{
    const struct config_target *t = &c->targets[i];
    const struct target_state *s = &c->table->states[i];
    const char *name = metric_desc(c->family)->name;
    struct prom_label *l = c->labels, *own = c->labels + 5;
    char version[4];

    /* The RTT gauges need a reply; min, max and stddev a module of more than one echo
     * (of one, they only repeat the mean: 3 lines a target that 10,000 targets pay for). */
    if ((!s->scraped && c->family != METRIC_TARGET_UNSENT) ||
        (c->family == METRIC_TARGET_HOP_LIMIT && s->hop_limit < 0) ||
        (c->family >= METRIC_TARGET_RTT_MIN && c->family <= METRIC_TARGET_RTT_STDDEV &&
         s->rtt_n == 0) ||
        (c->family != METRIC_TARGET_RTT_AVG && c->family >= METRIC_TARGET_RTT_MIN &&
         c->family <= METRIC_TARGET_RTT_STDDEV && t->module->count < 2) ||
        (c->family == METRIC_TARGET_UNSENT && s->unsent == 0))
        return;
    snprintf(version, sizeof(version), "%u", (unsigned)s->ip_version);
    l[0] = (struct prom_label){"target", t->target};
    l[1] = (struct prom_label){"module", t->module->name};
    l[2] = (struct prom_label){"ip", s->ip};
    l[3] = (struct prom_label){"ip_version", version};
    for (size_t k = 0; k < t->n_labels; k++)
        own[k] = (struct prom_label){t->labels[k].name, t->labels[k].value};

    switch (c->family) {
    case METRIC_TARGET_SUCCESS:
    case METRIC_TARGET_LOSS:
    case METRIC_TARGET_HOP_LIMIT:
    case METRIC_TARGET_RTT_MIN:
    case METRIC_TARGET_RTT_AVG:
    case METRIC_TARGET_RTT_MAX:
    case METRIC_TARGET_RTT_STDDEV:
    case METRIC_TARGET_SENT:
    case METRIC_TARGET_UNSENT:
    case METRIC_TARGET_DUPLICATES:
        prom_sample2(w, name, l, 4, own, t->n_labels, state_value(s, c->family));
        break;
    case METRIC_TARGET_REPLIES:
        /* Success always (a target that never answered shows 0), others once seen. The
         * status label goes between the common labels and the target's own. */
        for (int st = 0; st < ICMP_STATUS_LIMIT; st++) {
            uint64_t v = target_replies(s, (enum icmp_status)st);
            if ((v == 0 && st != ICMP_STATUS_SUCCESS) ||
                icmp_status_name((enum icmp_status)st) == NULL)
                continue;
            l[4] = (struct prom_label){"status", icmp_status_name((enum icmp_status)st)};
            prom_sample2(w, name, l, 5, own, t->n_labels, (double)v);
        }
        break;
    case METRIC_TARGET_RTT: {
        size_t mi = (size_t)(t->module - c->modules);
        struct prom_buckets h = {.bounds = t->module->buckets,
                                 .counts = s->rtt_buckets,
                                 .n_bounds = t->module->n_buckets,
                                 .count = s->rtt_count,
                                 .sum = s->rtt_sum,
                                 .le = mi < c->n_modules ? c->le[mi].ptr : NULL};
        prom_histogram(w, name, l, 4, own, t->n_labels, &h);
        break;
    }
    default:
        break;
    }
}

bool metrics_cursor_done(const struct metrics_cursor *c)
{
    return c->family >= FAMILY_END;
}

int metrics_render_targets_next(struct metrics_cursor *c, struct prom_writer *w, size_t min_bytes)
{
    size_t start = text_buf_len(w->buf);

    while (c->family < FAMILY_END) {
        if (!c->family_started) {
            metric_family(w, c->family);
            c->family_started = true;
        }
        while (c->next < c->n) {
            render_target(c, w, c->next++);
            if (text_buf_error(w->buf) != 0)
                return text_buf_error(w->buf);
            if (text_buf_len(w->buf) - start >= min_bytes)
                return 0;
        }
        c->family++;
        c->next = 0;
        c->family_started = false;
    }
    return text_buf_error(w->buf);
}
