/*
 * Probes: one target, one module, through the shared engine. A /probe request is one probe;
 * a /metrics scrape is one probe per static target. Functions return 0 or -errno; the HTTP
 * status for an error is chosen in one place (http_status_of, http_internal.h).
 */
#ifndef EXPORTER_PROBE_H
#define EXPORTER_PROBE_H

#include "config/config.h"
#include "core/icmp.h"
#include "exporter/echo_summary.h"
#include "exporter/prom/prom.h"

#include <stdbool.h>
#include <stdint.h>

struct sockaddr;

struct exporter;
struct probe;

/* Request parameters of /probe (strings as the client sent them, NULL when absent). */
struct probe_params {
    const char *target;
    const char *module;
    const char *count;
    const char *interval;
    const char *timeout;
    const char *debug;
    const char *scrape_timeout; /* X-Prometheus-Scrape-Timeout-Seconds */
    uint64_t flow;              /* the engine flow (icmp_job.flow): probe_client_flow() */
};

/* The engine flow of the static targets' probes: they share one part of the packet budget. */
#define PROBE_FLOW_STATIC 1

/*
 * The engine flow of a /probe client: a hash of its address (the port left out; an IPv6
 * client by its /64, what one host usually holds; a v4-mapped address as IPv4), never 0 or
 * PROBE_FLOW_STATIC, so each client shares the packet budget with the others round-robin
 * whatever the number of its probes. NULL or another family: 0 (a flow per probe). Pure.
 */
uint64_t probe_client_flow(const struct sockaddr *client);

/* How a probe runs: the module's settings, or what a valid /probe request asks for. */
struct probe_settings {
    const struct config_module *module; /* a view into the configuration checked against */
    uint32_t count;                     /* 1..max_echoes_per_probe */
    int64_t interval_ns;
    int64_t timeout_ns;      /* the whole probe: at most the module's and the scrape's */
    int64_t echo_timeout_ns; /* each echo, > 0 */
    bool debug;
};

/*
 * The time a scrape allows its probes: the X-Prometheus-Scrape-Timeout-Seconds header
 * (NULL when absent: *deadline_ns 0, no cap) minus offset_ns (--timeout-offset), as
 * blackbox_exporter does. Returns 0, or -EINVAL with a one-line reason in err. Pure.
 */
int probe_deadline(const char *header, int64_t offset_ns, int64_t *deadline_ns, char *err,
                   size_t errlen);

/*
 * Validates params against cfg; timeout_offset_ns is subtracted from the scrape-timeout
 * header. Returns 0 with *out filled, or -EINVAL with a one-line reason in err. Pure (no
 * allocation, no global state), thread-safe; probe_new's check, exposed for the fuzzer.
 */
int probe_check_params(const struct config *cfg, int64_t timeout_offset_ns,
                       const struct probe_params *params, struct probe_settings *out, char *err,
                       size_t errlen);

/* A static target's settings: its module's, the whole probe and each echo capped at
 * deadline_ns (0: no cap; from probe_deadline), so echoes that no longer fit are not sent. */
void probe_settings_of_module(const struct config_module *m, int64_t deadline_ns,
                              struct probe_settings *out);

/*
 * Validates params against cfg (probe_check_params) and builds a probe (not started).
 * Returns 0, -EINVAL with a one-line reason in err, or -ENOMEM.
 */
int probe_new(struct exporter *x, struct config *cfg, const struct probe_params *params,
              struct probe **out, char *err, size_t errlen);

/* A probe of a static target with probe_settings_of_module(t->module, deadline_ns). Not
 * counted as a /probe, nor checked against allowed_targets. Returns 0 or -ENOMEM. */
int probe_new_static(struct exporter *x, struct config *cfg, const struct config_target *t,
                     int64_t deadline_ns, struct probe **out);

typedef void (*probe_done_fn)(struct probe *p, void *arg);

/*
 * Starts it: resolution (if a name, bounded by the probe's timeout), the allow-list check,
 * then the echoes. done(p, arg) runs exactly once, on some thread (perhaps this one, before
 * it returns), when the probe is over; the caller must not free the probe before. Returns
 * 0 or -errno (done is then not called): -EBUSY when the resolver's queue is full
 * (probe_error then says so).
 */
int probe_start(struct probe *p, probe_done_fn done, void *arg);

/* After done: 0, or -EACCES when the target is not allowed (reason in err); after a failed
 * probe_start: -EBUSY when the resolver's queue was full. */
int probe_error(const struct probe *p, char *err, size_t errlen);

/* Renders the probe's metrics (the /probe answer). Returns 0 or the writer's error. */
int probe_render(const struct probe *p, struct prom_writer *w);

/* The human-readable log of debug=true, then the metrics. Returns as probe_render. */
int probe_render_debug(const struct probe *p, struct text_buf *out);

bool probe_debug(const struct probe *p);
bool probe_success(const struct probe *p);
const char *probe_module_name(const struct probe *p);

/*
 * After done: what the probe measured, for a static target's series: its summary, the
 * duplicates the engine saw, and the address it went to (NULL: the name did not resolve).
 */
void probe_summary(const struct probe *p, struct echo_summary *s, uint32_t *duplicates,
                   const struct icmp_addr **addr);

/* Frees it (after done, or when never started). Accepts NULL. */
void probe_free(struct probe *p);

#endif
