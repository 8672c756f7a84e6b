/*
 * exporter/ internals: the process-wide context shared by the HTTP server, the probes and
 * the metrics. Nothing outside exporter/ includes this.
 */
#ifndef EXPORTER_H
#define EXPORTER_H

#include "config/config.h"
#include "core/icmp.h"
#include "exporter/prom/prom.h"
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

/*
 * Cumulative series of one static target. Kept small (10,000 targets are a normal
 * configuration): the two statuses nearly every echo ends in are inline, the others get
 * their counters at the first such echo, and the RTT buckets are the module's count, in
 * the table's shared store.
 */
struct target_state {
    uint64_t sent;
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
 * Counters are written and read under exporter.lock.
 */
struct target_table {
    _Atomic unsigned refs;
    struct config *cfg; /* a reference */
    size_t n;
    struct target_state *states;
    uint64_t *buckets; /* the states' rtt_buckets */
};

/* A table for cfg's targets with one reference, or NULL (out of memory): zeroed states,
 * except targets that prev (a table of an earlier configuration, or NULL) has unchanged,
 * which keep their counters. exporter.lock held when prev is given. */
struct target_table *target_table_new(struct config *cfg, const struct target_table *prev);
struct target_table *target_table_ref(struct target_table *t);
void target_table_unref(struct target_table *t); /* NULL is fine */

/* A static target's count of echoes that ended in status s. */
uint64_t target_replies(const struct target_state *t, enum icmp_status s);

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
struct auth;

struct exporter {
    struct log_config log;
    struct config_slot *configs;
    const char *config_path; /* NULL: the embedded default */
    struct icmp_engine *engine;
    struct resolver *resolver;
    struct auth *auth;         /* basic-auth verifier */
    const char *tls_cert_file; /* the TLS files the server started with (NULL: plain HTTP) */
    const char *tls_key_file;
    int64_t timeout_offset_ns;
    double start_time; /* CLOCK_REALTIME seconds */

    /* Starting a probe holds it for reading; shutdown takes it to set stopping. */
    pthread_rwlock_t run_lock;
    bool stopping;

    _Atomic int64_t probes_in_flight;
    _Atomic int64_t open_requests;     /* /probe and /metrics requests not yet answered */
    _Atomic uint64_t request_timeouts; /* connections cut for limits.request_timeout */
    _Atomic uint64_t http_requests[HTTP_CODES_COUNTED];

    pthread_mutex_t lock; /* what follows */
    struct module_counter modules[64];
    size_t n_modules;
    struct probe_record history[PROBE_HISTORY]; /* a ring, newest at history_next - 1 */
    size_t history_next, history_len;
    struct target_table *targets; /* the current configuration's, made at its first scrape */
};

/* The status codes counted, in the order of http_requests[] (0 = any other). */
extern const int http_counted_codes[HTTP_CODES_COUNTED];

/* The engine's minimum gap between sends for cfg's limits.max_packets_per_second. */
int64_t send_gap(const struct config *cfg);

/*
 * Reloads the configuration from x->config_path, refusing (like an invalid file) one that
 * asks for what this build cannot enforce. Returns 0 or -errno with the reason in err.
 */
int exporter_reload(struct exporter *x, char *err, size_t errlen);

/*
 * Whether cfg cannot be applied by a reload: its TLS files differ from those the server
 * started with (TLS is set up at start). Reason in err.
 */
bool exporter_reload_conflict(const struct exporter *x, const struct config *cfg, char *err,
                              size_t errlen);

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

/* What a valid /probe request asks for. */
struct probe_settings {
    const struct config_module *module; /* a view into the configuration checked against */
    uint32_t count;                     /* 1..max_echoes_per_probe */
    int64_t interval_ns;
    int64_t timeout_ns;      /* the whole probe: at most the module's and the scrape's */
    int64_t echo_timeout_ns; /* each echo, > 0 */
    bool debug;
};

/*
 * Validates params against cfg; timeout_offset_ns is subtracted from the scrape-timeout
 * header. Returns 0 with *out filled, or 400 with a one-line reason in err. Pure (no
 * allocation, no global state), thread-safe; probe_new's check, exposed for the fuzzer.
 */
int probe_check_params(const struct config *cfg, int64_t timeout_offset_ns,
                       const struct probe_params *params, struct probe_settings *out, char *err,
                       size_t errlen);

/*
 * Validates params against cfg (probe_check_params) and builds a probe (not started).
 * Returns 0, or an HTTP status (400, 500) with a one-line reason in err.
 */
int probe_new(struct exporter *x, struct config *cfg, const struct probe_params *params,
              struct probe **out, char *err, size_t errlen);

/* A probe of a static target, with the module's own settings, its timeout capped at
 * deadline_ns (0: none; from probe_scrape_deadline). Returns 0 or -ENOMEM. */
int probe_new_static(struct exporter *x, struct config *cfg, const struct config_target *t,
                     int64_t deadline_ns, struct probe **out);

/* The time a scrape allows its probes: X-Prometheus-Scrape-Timeout-Seconds (header, NULL
 * when absent: *deadline_ns 0, no cap) minus --timeout-offset. Returns 0, or 400 with a
 * one-line reason in err. */
int probe_scrape_deadline(const struct exporter *x, const char *header, int64_t *deadline_ns,
                          char *err, size_t errlen);

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
int probe_render_debug(const struct probe *p, struct text_buf *out);

bool probe_debug(const struct probe *p);
bool probe_success(const struct probe *p);
const char *probe_module_name(const struct probe *p);

/* Adds a finished static probe to its target's series (exporter.lock held). Returns 0, or
 * -ENOMEM when counters for a rare status could not be allocated (those go uncounted). */
int probe_fold(const struct probe *p, struct target_state *state);

void probe_free(struct probe *p);

/* ---------------------------------------------------------------------------------------
 * /metrics
 */

/* Renders the exporter's own metrics. */
int metrics_render_self(struct exporter *x, struct prom_writer *w);

/*
 * The static targets' series, rendered a piece at a time so that a /metrics body of any size
 * streams through a small buffer. A cursor holds a reference to its table: a reload during
 * the stream does not pull the states from under it.
 */
struct metrics_cursor {
    struct target_table *table; /* a reference; NULL when there is nothing to render */
    const struct config_target *targets;
    const struct config_module *modules;
    size_t n, n_modules;
    unsigned family; /* the family being written (an internal enum) */
    size_t next;     /* the next target within it */
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

/* Writes the next series into w until min_bytes were added or the series are done. Returns
 * 1 when more remain, 0 when done, or the writer's sticky error. exporter.lock held (the
 * counters are read). */
int metrics_render_targets_next(struct metrics_cursor *c, struct prom_writer *w, size_t min_bytes);

#endif
