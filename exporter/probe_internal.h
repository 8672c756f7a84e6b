/*
 * struct probe, shared by probe.c (running) and probe_render.c (rendering), and by the unit
 * tests, which render probes they fill in themselves. Nothing else includes this.
 */
#ifndef EXPORTER_PROBE_INTERNAL_H
#define EXPORTER_PROBE_INTERNAL_H

#include "exporter/probe.h"
#include "exporter/resolver.h"

struct probe {
    struct exporter *x;
    struct config *cfg; /* a reference: the probe keeps the configuration it started with */
    struct probe_settings s;
    const char *target; /* in the same allocation, after the results */
    bool is_static;
    uint64_t flow; /* icmp_job.flow */

    int64_t start_ns; /* monotonic */
    int64_t resolved_ns;
    int64_t end_ns;
    struct resolution res;
    bool resolved;
    bool denied;     /* refused by allowed_targets (res.addr.family 0: by its name alone) */
    bool queue_full; /* never started: the resolver's queue was full */
    bool ran;        /* the job went to the engine */
    struct icmp_job job;
    struct icmp_echo_result *results; /* s.count of them */

    probe_done_fn done;
    void *done_arg;
};

/* A probe of target with settings s, in one allocation with its results (zeroed), not
 * started; NULL when out of memory. Takes a reference to cfg. */
struct probe *probe__alloc(struct exporter *x, struct config *cfg, const char *target,
                           const struct probe_settings *s);

#endif
