/*
 * struct exporter: the process-wide context that the HTTP server, the probes and the
 * metrics share (exporter.c owns it: open, start, stop, close, reload, its counters).
 * Nothing outside exporter/ includes this.
 */
#ifndef EXPORTER_H
#define EXPORTER_H

#include "config/config.h"
#include "core/icmp.h"
#include "exporter/log.h"
#include "exporter/target_table.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* HTTP status codes we count (icmp_exporter_http_requests_total{code}); the first is "other". */
#define HTTP_CODES_COUNTED 9

/* The status codes counted, in the order of exporter.http_requests[] (0 = any other). */
extern const int http_counted_codes[HTTP_CODES_COUNTED];

/* Per module: /probe results, for icmp_exporter_probes_total. */
struct module_counter {
    char *name; /* owned */
    uint64_t success, failure;
};

/* A finished /probe, for the landing page. */
struct probe_record {
    char target[256];
    char module[129]; /* module names are at most 128 bytes (config/) */
    bool success;
    double duration;
    double when; /* CLOCK_REALTIME seconds */
};

#define PROBE_HISTORY 16

struct resolver;
struct auth;
struct rounds;
struct reloader;
struct continuous;

/* What the exporter is started with (main.c's flags). */
struct exporter_options {
    struct log_config log;
    const char *route_prefix;    /* "" or "/path" (no trailing '/'): where the routes live */
    const char *config_path;     /* NULL: the embedded default */
    const char *web_config_path; /* --web.config.file, or NULL */
    int64_t timeout_offset_ns;
    bool enable_lifecycle; /* --web.enable-lifecycle: POST /-/reload allowed */
};

struct exporter {
    struct log_config log;
    struct config_slot *configs;
    const char *config_path;     /* NULL: the embedded default */
    const char *web_config_path; /* NULL: none */
    struct icmp_engine *engine;
    struct resolver *resolver;
    struct reloader *reloader;     /* the reload thread (exporter.c) */
    bool enable_lifecycle;         /* POST /-/reload allowed (--web.enable-lifecycle) */
    struct auth *auth;             /* basic-auth verifier */
    struct rounds *rounds;         /* the static targets' probe rounds (round.h) */
    struct continuous *continuous; /* the continuous targets' scheduler (continuous.h) */
    char *tls_cert_file;           /* the TLS files the server started with (NULL: plain HTTP) */
    char *tls_key_file;
    int64_t timeout_offset_ns;
    const char *route_prefix; /* "" or "/path": every route lives below it */
    double start_time;        /* CLOCK_REALTIME seconds */

    /* Starting a probe holds it for reading; exporter_stop takes it to set stopping. */
    pthread_rwlock_t run_lock;
    bool stopping;

    _Atomic int64_t probes_in_flight;
    _Atomic int64_t open_requests;        /* /probe and /metrics requests not yet answered */
    _Atomic uint64_t request_timeouts;    /* connections cut for limits.request_timeout */
    _Atomic uint64_t resolver_queue_full; /* probes refused: the resolver's queue was full */
    _Atomic uint64_t resolver_timeouts;   /* probes whose name did not resolve in time */
    _Atomic uint64_t http_requests[HTTP_CODES_COUNTED];

    pthread_mutex_t lock; /* what follows */
    struct module_counter *modules;
    size_t n_modules, cap_modules;
    struct probe_record history[PROBE_HISTORY]; /* a ring, newest at history_next - 1 */
    size_t history_next, history_len;
    struct target_table *targets; /* the current configuration's, made at its first scrape */
};

/*
 * Sets x up for cfg (taking over the caller's reference) and opens the ICMP engine's
 * sockets, which may need privileges; no thread is started yet. Returns 0, or -errno with
 * the reason in err (-EACCES: no way to send ICMP). exporter_close undoes it either way.
 */
int exporter_open(struct exporter *x, const struct exporter_options *o, struct config *cfg,
                  char *err, size_t errlen);

/* Starts the threads: the engine's, the resolvers', the password checker's, the rounds'
 * timer, the reload thread. Returns 0 or -errno with the reason in err. */
int exporter_start(struct exporter *x, char *err, size_t errlen);

/*
 * Refuses new probes and reloads (reloads waiting are answered -ESHUTDOWN; a reload whose
 * file blocks is abandoned, never installed), answers name lookups still waiting or running as
 * timed out (without waiting for a getaddrinfo that hangs), lets queued password checks finish,
 * closes the engine (every job still running completes as cancelled), then waits up to 2 s for the
 * requests still being answered. Call before stopping the HTTP server.
 */
void exporter_stop(struct exporter *x);

/* Frees what exporter_open made. Call after the HTTP server is stopped. */
void exporter_close(struct exporter *x);

/* The engine's minimum gap between sends for cfg's limits.max_packets_per_second. */
int64_t exporter_send_gap(const struct config *cfg);

/* A reload's answer: rc 0, or -errno with the reason in err (-ESHUTDOWN: the exporter
 * stopped first; -EBUSY: too many reloads waiting). */
typedef void (*exporter_reload_done_fn)(void *arg, int rc, const char *err);

#define EXPORTER_RELOADS_WAITING_MAX 64

/*
 * Asks the reload thread to load x->config_path and x->web_config_path again and install
 * the result (refusing, like an invalid file, one that asks for what this build cannot
 * enforce); logs the outcome. Loads run one at a time, and a request waits for a load that
 * starts after it (a load under way may have read the file before it changed), so the last
 * request's file is what stays installed. done(arg, ...) then runs once on that thread, or
 * in exporter_stop; done NULL (SIGHUP): only logged. Never blocks, whatever the file is (a
 * FIFO, a hung file system). Returns 0, or -EBUSY (EXPORTER_RELOADS_WAITING_MAX waiting),
 * -ESHUTDOWN or -ENOMEM, done then not called. Thread-safe.
 */
int exporter_request_reload(struct exporter *x, exporter_reload_done_fn done, void *arg);

/*
 * Whether cfg cannot be applied by a reload: its TLS files differ from those the server
 * started with (TLS is set up at start). Reason in err.
 */
bool exporter_reload_conflict(const struct exporter *x, const struct config *cfg, char *err,
                              size_t errlen);

/* Counts one answered HTTP request. Thread-safe. */
void exporter_count_http(struct exporter *x, int code);

/* Counts a finished /probe (a row per module name, however long) and remembers it for the
 * landing page. Thread-safe. */
void exporter_count_probe(struct exporter *x, const char *module, const char *target, bool success,
                          double duration);

/* The current table of the static targets' states for cfg (made anew when the
 * configuration changed; targets a reload left unchanged keep their counters). A cfg older
 * than the installed one gets the current table (which holds its own configuration): a
 * scrape that began before a reload never replaces the table the continuous targets fold
 * into. Returns a reference, or NULL when out of memory. Thread-safe. */
struct target_table *exporter_target_table(struct exporter *x, struct config *cfg);

#endif
