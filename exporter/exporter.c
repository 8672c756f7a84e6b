/*
 * struct exporter (exporter.h): its lifecycle, its reload, and the counters it keeps.
 *
 * The lifecycle is split where privileges end: exporter_open opens what may need them (the
 * ICMP sockets) while the process still has one thread, main.c drops them, and only then
 * does exporter_start start threads. exporter_stop runs before the HTTP server stops, so
 * that every probe has called back before its connection goes away.
 */
#include "exporter/exporter.h"

#include "exporter/auth.h"
#include "exporter/resolver.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const int http_counted_codes[HTTP_CODES_COUNTED] = {0, 200, 400, 403, 404, 405, 500, 503, 401};

int64_t exporter_send_gap(const struct config *cfg)
{
    return 1000000000 / (int64_t)config_limits(cfg)->max_packets_per_second;
}

int exporter_open(struct exporter *x, const struct exporter_options *o, struct config *cfg,
                  char *err, size_t errlen)
{
    const struct config_web *web = config_web(cfg);
    struct icmp_engine_options eo = {.start_later = true,
                                     .min_send_gap_ns = exporter_send_gap(cfg)};
    struct timespec now;
    int rc;

    memset(x, 0, sizeof(*x));
    x->log = o->log;
    x->config_path = o->config_path;
    x->web_config_path = o->web_config_path;
    x->timeout_offset_ns = o->timeout_offset_ns;
    x->route_prefix = o->route_prefix != NULL ? o->route_prefix : "";
    clock_gettime(CLOCK_REALTIME, &now);
    x->start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    pthread_mutex_init(&x->lock, NULL);
    pthread_rwlock_init(&x->run_lock, NULL);

    x->configs = config_slot_new(cfg);
    if (x->configs == NULL || log_repeat_new(&x->log.repeat) < 0 ||
        (web->tls_cert_file != NULL && (x->tls_cert_file = strdup(web->tls_cert_file)) == NULL) ||
        (web->tls_key_file != NULL && (x->tls_key_file = strdup(web->tls_key_file)) == NULL)) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = icmp_engine_open(&x->engine, &eo);
    if (rc < 0) {
        snprintf(err, errlen, "%s", strerror(-rc));
        return rc;
    }
    return 0;
}

int exporter_start(struct exporter *x, char *err, size_t errlen)
{
    int rc;

    if ((rc = icmp_engine_start(x->engine)) < 0 || (rc = resolver_open(&x->resolver, 2)) < 0 ||
        (rc = auth_open(&x->auth)) < 0) {
        snprintf(err, errlen, "%s", strerror(-rc));
        return rc;
    }
    return 0;
}

void exporter_stop(struct exporter *x)
{
    pthread_rwlock_wrlock(&x->run_lock);
    x->stopping = true;
    pthread_rwlock_unlock(&x->run_lock);
    resolver_close(x->resolver);
    x->resolver = NULL;
    icmp_engine_close(x->engine);
    x->engine = NULL;
    auth_stop(x->auth); /* the checks waiting are dropped: their connections get 503 */
    /* Every probe is over now: give their connections up to 2 s to get their answers. */
    for (int i = 0; i < 200 && atomic_load(&x->open_requests) > 0; i++) {
        struct timespec tick = {0, 10000000};
        nanosleep(&tick, NULL);
    }
}

void exporter_close(struct exporter *x)
{
    resolver_close(x->resolver);
    icmp_engine_close(x->engine);
    auth_free(x->auth);
    free(x->tls_cert_file);
    free(x->tls_key_file);
    pthread_mutex_lock(&x->lock);
    target_table_unref(x->targets);
    x->targets = NULL;
    for (size_t i = 0; i < x->n_modules; i++)
        free(x->modules[i].name);
    free(x->modules);
    pthread_mutex_unlock(&x->lock);
    config_slot_free(x->configs);
    log_repeat_flush(&x->log);
    log_repeat_free(x->log.repeat);
    pthread_mutex_destroy(&x->lock);
    pthread_rwlock_destroy(&x->run_lock);
    memset(x, 0, sizeof(*x));
}

/* ---------------------------------------------------------------------------------------
 * Reload.
 */

static bool same_path(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool exporter_reload_conflict(const struct exporter *x, const struct config *cfg, char *err,
                              size_t errlen)
{
    const struct config_web *web = config_web(cfg);

    if (same_path(web->tls_cert_file, x->tls_cert_file) &&
        same_path(web->tls_key_file, x->tls_key_file))
        return false;
    snprintf(err, errlen,
             "web.tls_server_config differs from the one the server started with; TLS is set up "
             "at start: restart to apply it");
    return true;
}

int exporter_reload(struct exporter *x, char *err, size_t errlen)
{
    const struct config_files files = {x->config_path, x->web_config_path};
    struct config *cfg = NULL;
    int rc = config_load_files(&files, &cfg, err, errlen);

    if (rc == 0 && exporter_reload_conflict(x, cfg, err, errlen)) {
        config_unref(cfg);
        cfg = NULL;
        rc = -ENOTSUP;
    }
    if (cfg != NULL) {
        /* What the new file has that is skipped or ignored, as at start (main.c). */
        size_t n;
        const char *const *warnings = config_warnings(cfg, &n);
        for (size_t i = 0; i < n; i++)
            log_write(&x->log, LOG_LEVEL_WARN, "configuration warning", "warning", warnings[i],
                      NULL);
    }
    if (cfg != NULL && x->engine != NULL)
        icmp_engine_set_send_gap(x->engine, exporter_send_gap(cfg));
    config_slot_swap(x->configs, cfg);
    malloc_trim(0); /* the parser's freed JSON tree, as at start */
    return rc;
}

struct target_table *exporter_target_table(struct exporter *x, struct config *cfg)
{
    struct target_table *t = NULL;

    pthread_mutex_lock(&x->lock);
    if (x->targets == NULL || x->targets->cfg != cfg) {
        struct target_table *fresh = target_table_new(cfg, x->targets);
        if (fresh != NULL) {
            target_table_unref(x->targets);
            x->targets = fresh;
        }
    }
    if (x->targets != NULL && x->targets->cfg == cfg)
        t = target_table_ref(x->targets);
    pthread_mutex_unlock(&x->lock);
    return t;
}

/* ---------------------------------------------------------------------------------------
 * Counters.
 */

void exporter_count_http(struct exporter *x, int code)
{
    size_t slot = 0;

    for (size_t i = 1; i < HTTP_CODES_COUNTED; i++) {
        if (http_counted_codes[i] == code)
            slot = i;
    }
    atomic_fetch_add(&x->http_requests[slot], 1);
}

/* The counter of module, added when first seen (the exporter lock held). NULL when out of
 * memory: that probe goes uncounted. Module names are few (a configuration's, across
 * reloads), so a linear search is cheaper than a hash table's upkeep. */
static struct module_counter *module_counter(struct exporter *x, const char *module)
{
    struct module_counter *m;

    for (size_t i = 0; i < x->n_modules; i++) {
        if (strcmp(x->modules[i].name, module) == 0)
            return &x->modules[i];
    }
    if (x->n_modules == x->cap_modules) {
        size_t cap = x->cap_modules != 0 ? 2 * x->cap_modules : 8;
        m = realloc(x->modules, cap * sizeof(*m));
        if (m == NULL)
            return NULL;
        x->modules = m;
        x->cap_modules = cap;
    }
    m = &x->modules[x->n_modules];
    *m = (struct module_counter){.name = strdup(module)};
    if (m->name == NULL)
        return NULL;
    x->n_modules++;
    return m;
}

void exporter_count_probe(struct exporter *x, const char *module, const char *target, bool success,
                          double duration)
{
    struct module_counter *m;
    struct probe_record *rec;
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&x->lock);
    m = module_counter(x, module);
    if (m != NULL && success)
        m->success++;
    else if (m != NULL)
        m->failure++;
    rec = &x->history[x->history_next];
    snprintf(rec->target, sizeof(rec->target), "%s", target);
    snprintf(rec->module, sizeof(rec->module), "%s", module);
    rec->success = success;
    rec->duration = duration;
    rec->when = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    x->history_next = (x->history_next + 1) % PROBE_HISTORY;
    if (x->history_len < PROBE_HISTORY)
        x->history_len++;
    pthread_mutex_unlock(&x->lock);
}
