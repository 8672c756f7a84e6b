/*
 * /metrics' series: the exporter's own (own_metrics.c) and the static targets'
 * (target_series.c), rendered a piece at a time so a body of any size streams through a
 * small buffer.
 */
#ifndef EXPORTER_METRICS_H
#define EXPORTER_METRICS_H

#include "exporter/catalog.h"
#include "exporter/prom/prom.h"
#include "exporter/target_table.h"

#include <stdbool.h>

struct exporter;

/* Renders the exporter's own metrics. Returns 0 or the writer's sticky error. Thread-safe
 * (takes the exporter's lock for its counters). */
int metrics_render_self(struct exporter *x, struct prom_writer *w);

/*
 * A cursor over the static targets' series. It holds a reference to its table: a reload
 * during the stream does not pull the states from under it.
 */
struct metrics_cursor {
    struct target_table *table; /* a reference; NULL when there is nothing to render */
    const struct config_target *targets;
    const struct config_module *modules;
    size_t n, n_modules;
    enum metric_id family; /* the family being written; METRIC_TARGET_RTT + 1 when done */
    size_t next;           /* the next target within it */
    bool family_started;
    struct prom_label *labels; /* scratch: a target's labels */
    struct {
        char text[CONFIG_MAX_BUCKETS][PROM_NUMBER_MAX];
        const char *ptr[CONFIG_MAX_BUCKETS];
    } * le; /* per module: its bucket bounds as le texts in the writer's format */
};

/* A cursor at the start of table's series (NULL or an empty table: nothing to write).
 * Returns 0 or -ENOMEM. */
int metrics_cursor_init(struct metrics_cursor *c, struct target_table *table,
                        enum prom_format format);
void metrics_cursor_cleanup(struct metrics_cursor *c);

/* Whether every series was written. */
bool metrics_cursor_done(const struct metrics_cursor *c);

/* Writes the next series into w until min_bytes were added or the series are done.
 * Returns 0 or the writer's sticky error. The table owner's lock held (counters are read). */
int metrics_render_targets_next(struct metrics_cursor *c, struct prom_writer *w, size_t min_bytes);

#endif
