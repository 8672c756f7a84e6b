/*
 * What a set of echo results says, computed in one place for /probe and for the static
 * targets: echoes sent and settled by status, replies, RTT min/max/mean/stddev and the
 * module's histogram buckets, the hop limit of a reply, and the loss ratio.
 */
#ifndef EXPORTER_ECHO_SUMMARY_H
#define EXPORTER_ECHO_SUMMARY_H

#include "config/config.h"
#include "core/icmp.h"

#include <stdint.h>

struct echo_summary {
    uint32_t sent;      /* echoes that went out */
    uint32_t attempted; /* sent, plus the echoes the kernel refused to send (no route...) */
    uint32_t unsent;    /* never tried: the deadline came first (the packet budget was taken
                           by other probes, or the deadline was too short), or a cancel */
    uint32_t received;  /* answered with an echo reply: the RTT statistics' count */
    double min, max, sum, sumsq; /* RTT seconds over the replies (valid when received > 0) */
    int hop_limit;               /* TTL / hop limit of the last reply that carried one, or -1 */
    uint64_t buckets[CONFIG_MAX_BUCKETS]; /* per bucket of the module, not cumulative */
    uint64_t by_status[ICMP_STATUS_LIMIT];
};

/* Summarises n results of a job run with module m (its buckets). Pure, thread-safe. */
void echo_summary_of(struct echo_summary *s, const struct icmp_echo_result *results, uint32_t n,
                     const struct config_module *m);

/* Share of the attempted echoes without an echo reply (0-1). Unsent echoes are not lost: when
 * none was attempted it is NaN (unknown) if echoes were left unsent, else 1. */
double echo_summary_loss(const struct echo_summary *s);

/* Mean and population standard deviation of the RTTs, in seconds (received > 0). */
double echo_summary_mean(const struct echo_summary *s);
double echo_summary_stddev(const struct echo_summary *s);

#endif
