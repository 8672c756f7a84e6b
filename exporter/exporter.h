/*
 * exporter/ internals: the process-wide context shared by the HTTP server, the probes and
 * the metrics. Nothing outside exporter/ includes this.
 */
#ifndef EXPORTER_H
#define EXPORTER_H

#include "config/config.h"
#include "core/icmp.h"
#include "exporter/prom.h"
#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* HTTP status codes we count (icmp_exporter_http_requests_total{code}); the last is "other". */
#define HTTP_CODES_COUNTED 9

/* Per module: probes by result, for icmp_exporter_probes_total. */
struct module_counter {
    char module[64];
    uint64_t success, failure;
};

/* Cumulative series of one static target, reset when a reload changes the target list. */
struct target_state {
    uint64_t sent;
    uint64_t replies[ICMP_STATUS_LIMIT];
    uint64_t rtt_buckets[CONFIG_MAX_BUCKETS]; /* per bucket, not cumulative */
    uint64_t rtt_count;
    double rtt_sum;
    bool scraped; /* the fields below hold a last scrape */
    bool success;
    double loss_ratio;
    int hop_limit; /* -1: no reply carried one */
    char ip[48];
    int ip_version;
};

/* A finished /probe, for the landing page. */
struct probe_record {
    char target[256];
    char module[64];
    bool success;
    double duration;
    double when; /* CLOCK_REALTIME seconds */
};

#define PROBE_HISTORY 16

struct resolver;

struct exporter {
    struct log_config log;
    struct config_slot *configs;
    const char *config_path; /* NULL: the embedded default */
    struct icmp_engine *engine;
    struct resolver *resolver;
    int64_t timeout_offset_ns;
    double start_time; /* CLOCK_REALTIME seconds */

    /* Starting a probe holds it for reading; shutdown takes it to set stopping. */
    pthread_rwlock_t run_lock;
    bool stopping;

    _Atomic int64_t probes_in_flight;
    _Atomic int64_t open_requests; /* /probe and /metrics requests not yet answered */
    _Atomic uint64_t http_requests[HTTP_CODES_COUNTED];

    pthread_mutex_t lock; /* what follows */
    struct module_counter modules[64];
    size_t n_modules;
    struct probe_record history[PROBE_HISTORY]; /* a ring, newest at history_next - 1 */
    size_t history_next, history_len;
    struct config *targets_cfg; /* a reference: the configuration targets[] belongs to */
    struct target_state *targets;
    size_t n_targets;
};

/* The status codes counted, in the order of http_requests[] (0 = any other). */
extern const int http_counted_codes[HTTP_CODES_COUNTED];

/*
 * Reloads the configuration from x->config_path, refusing (like an invalid file) one that
 * asks for what this build cannot enforce. Returns 0 or -errno with the reason in err.
 */
int exporter_reload(struct exporter *x, char *err, size_t errlen);

/*
 * Whether cfg asks for TLS or basic auth, which this build does not implement yet: it
 * refuses such a configuration rather than serve unprotected. Reason in err.
 */
bool exporter_unsupported(const struct config *cfg, char *err, size_t errlen);

/* Counts one answered HTTP request. Thread-safe. */
void exporter_count_http(struct exporter *x, int code);

/* Counts a finished /probe and remembers it for the landing page. Thread-safe. */
void exporter_count_probe(struct exporter *x, const char *module, const char *target, bool success,
                          double duration);

/* ---------------------------------------------------------------------------------------
 * Name resolution off the HTTP thread: a small pool of threads running getaddrinfo.
 */

/* Result of resolving a name for a module's protocol preference. */
struct resolution {
    int error;             /* 0, or an EAI_* code */
    struct icmp_addr addr; /* the chosen address */
    int64_t took_ns;
};

typedef void (*resolve_done_fn)(void *arg, const struct resolution *res);

int resolver_open(struct resolver **out, unsigned threads);
void resolver_close(struct resolver *r);

/*
 * Resolves name (copied) for family preference 4 or 6 with fallback, then calls done(arg,
 * result) on a resolver thread. IP literals are answered at once on the caller's thread.
 * Returns 0, or -ENOMEM / -ESHUTDOWN (done is then not called).
 */
int resolver_submit(struct resolver *r, const char *name, int preferred, bool fallback,
                    resolve_done_fn done, void *arg);

/* ---------------------------------------------------------------------------------------
 * Probes: one target, one module, through the shared engine.
 */

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
};

typedef void (*probe_done_fn)(struct probe *p, void *arg);

/*
 * Validates params against cfg and builds a probe (not started). Returns 0, or an HTTP
 * status (400) with a one-line reason in err.
 */
int probe_new(struct exporter *x, struct config *cfg, const struct probe_params *params,
              struct probe **out, char *err, size_t errlen);

/* A probe of a static target, with the module's own settings. */
int probe_new_static(struct exporter *x, struct config *cfg, const struct config_target *t,
                     struct probe **out);

/*
 * Starts it: resolution (if a name), the allow-list check, then the echoes. done(p, arg)
 * runs exactly once, on some thread, when the probe is over; the caller must not free
 * the probe before. Returns 0 or -errno (done is then not called).
 */
int probe_start(struct probe *p, probe_done_fn done, void *arg);

/* After done: 200, or 403 when the resolved address is not allowed (reason in err). */
int probe_http_status(const struct probe *p, char *err, size_t errlen);

/* Renders the probe's metrics (the /probe answer). Returns 0 or the writer's error. */
int probe_render(const struct probe *p, struct prom_writer *w);

/* The human-readable log of debug=true, then the metrics. */
int probe_render_debug(const struct probe *p, struct prom_buf *out);

bool probe_debug(const struct probe *p);
bool probe_success(const struct probe *p);
const char *probe_module_name(const struct probe *p);

/* Folds a finished static-target probe into its cumulative state. */
void probe_fold(const struct probe *p, struct target_state *state);

void probe_free(struct probe *p);

/* ---------------------------------------------------------------------------------------
 * /metrics
 */

/* Renders the exporter's own metrics. */
int metrics_render_self(struct exporter *x, struct prom_writer *w);

/* Renders the static targets' series from their states (x->lock held by the caller). */
int metrics_render_targets(struct exporter *x, const struct config *cfg, struct prom_writer *w);

#endif
