/*
 * The static targets' cumulative series: one state per configured target, in a table made
 * for one configuration. Nothing here touches the network or HTTP.
 */
#ifndef EXPORTER_TARGET_TABLE_H
#define EXPORTER_TARGET_TABLE_H

#include "config/config.h"
#include "core/icmp.h"
#include "exporter/echo_summary.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Cumulative series of one static target. Kept small (10,000 targets are a normal
 * configuration): the two statuses nearly every echo ends in are inline, the others get
 * their counters at the first such echo, and the RTT buckets are the module's count, in
 * the table's shared store.
 */
struct target_state {
    uint64_t sent;
    uint64_t unsent;       /* never tried (the packet budget ran out): no loss */
    uint64_t replied;      /* ICMP_STATUS_SUCCESS */
    uint64_t timed_out;    /* ICMP_STATUS_TIMED_OUT */
    uint64_t *other;       /* NULL, or ICMP_STATUS_LIMIT counters for the other statuses */
    uint64_t *rtt_buckets; /* module->n_buckets, per bucket (not cumulative) */
    uint64_t rtt_count;
    double rtt_sum;
    uint64_t duplicates;
    double loss_ratio; /* the fields from here hold the last scrape, when scraped */
    double rtt_min, rtt_avg, rtt_max, rtt_stddev; /* when rtt_n > 0 */
    uint32_t rtt_n;
    int16_t hop_limit; /* -1: no reply carried one */
    uint8_t ip_version;
    bool scraped;
    bool success;
    char ip[46]; /* INET6_ADDRSTRLEN */
};

/*
 * The static targets' states for one configuration. Reference-counted: a reload installs a
 * new table while scrapes that started before it finish (and stream) from the old one.
 * Counters are written and read under the owner's lock (exporter.lock).
 */
struct target_table {
    _Atomic unsigned refs;
    struct config *cfg; /* a reference */
    size_t n;
    struct target_state *states;
    uint64_t *buckets; /* the states' rtt_buckets */
    /* The table a reload carried counters from (identity only, no reference; NULL: none),
     * and for each target the index there whose counters it took (SIZE_MAX: none). The
     * continuous targets' schedule keeps their phase by it. */
    const struct target_table *carried_table;
    size_t *carried_from;
};

/* A table for cfg's targets with one reference, or NULL (out of memory): zeroed states,
 * except targets that prev (a table of an earlier configuration, or NULL) has unchanged
 * (same target, module, labels and buckets), which keep their counters. The owner's lock
 * held when prev is given. */
struct target_table *target_table_new(struct config *cfg, const struct target_table *prev);
struct target_table *target_table_ref(struct target_table *t);
void target_table_unref(struct target_table *t); /* NULL is fine */

/* A static target's count of echoes that ended in status s. */
uint64_t target_replies(const struct target_state *t, enum icmp_status s);

/*
 * Adds one finished probe of the target to its series: its summary s (made with module
 * m), the duplicates the engine saw, whether it succeeded, and the address it went to
 * (NULL when the name did not resolve). A probe that tried no echo but left some unsent
 * (the packet budget ran out) measured nothing: it adds to the unsent count only, and the
 * last measurement stands. Returns 0, or -ENOMEM when counters for a rare status could not
 * be allocated (those go uncounted). The owner's lock held.
 */
int target_state_fold(struct target_state *t, const struct config_module *m,
                      const struct echo_summary *s, uint32_t duplicates, bool success,
                      const struct icmp_addr *addr);

#endif
