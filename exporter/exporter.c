/*
 * struct exporter (exporter.h): its lifecycle, its reload, and the counters it keeps.
 *
 * The lifecycle is split where privileges end: exporter_open opens what may need them (the
 * ICMP sockets) while the process still has one thread, main.c drops them, and only then
 * does exporter_start start threads. exporter_stop runs before the HTTP server stops, so
 * that every probe has called back before its connection goes away.
 *
 * Reloads run on a thread of their own (issue 16), never on the HTTP thread (an 8 MB file
 * took 2.3 s to parse, and no other request was served meanwhile) nor on the signal thread
 * (a configuration path that blocks, a FIFO or a hung file system, stopped SIGTERM and the
 * request-timeout sweep). One load at a time, each request answered by a load that started
 * after it: the last request wins. The thread is detached and holds a reference to struct
 * reloader, so a load that never returns costs shutdown nothing; it installs nothing once
 * exporter_stop has run (the lock orders the two).
 */
#include "exporter/exporter.h"

#include "exporter/auth.h"
#include "exporter/continuous.h"
#include "exporter/detached.h"
#include "exporter/resolver.h"
#include "exporter/round.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const int http_counted_codes[HTTP_CODES_COUNTED] = {0, 200, 400, 403, 404, 405, 500, 503, 401};

struct reload_waiter {
    struct reload_waiter *next;
    exporter_reload_done_fn done;
    void *arg;
};

struct reloader {
    struct detached_home home; /* the lock; refs: the exporter's, and the thread's */
    pthread_cond_t wake;       /* the thread: a request, or stopping */
    struct exporter *x;        /* used only under the lock and while !stopping */
    bool stopping;
    bool pending;                /* a load is asked for and not yet started */
    struct reload_waiter *queue; /* answered by the next load */
    struct reload_waiter *batch; /* answered by the load under way */
    size_t n_waiting;            /* in both */
};

static int reloader_open(struct exporter *x);
static void reloader_stop(struct reloader *r);

static void reloader_unref_unlock(struct reloader *r)
{
    if (!detached_home_unref_unlock(&r->home))
        return;
    detached_home_cleanup(&r->home);
    pthread_cond_destroy(&r->wake);
    free(r);
}

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
    x->enable_lifecycle = o->enable_lifecycle;
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
    struct config *cfg;
    int rc;

    if ((rc = icmp_engine_start(x->engine)) < 0 || (rc = resolver_open(&x->resolver, 2)) < 0 ||
        (rc = auth_open(&x->auth)) < 0 || (rc = rounds_open(&x->rounds, x)) < 0 ||
        (rc = continuous_open(&x->continuous, x)) < 0 || (rc = reloader_open(x)) < 0) {
        snprintf(err, errlen, "%s", strerror(-rc));
        return rc;
    }
    cfg = config_slot_get(x->configs);
    rc = continuous_update(x->continuous, cfg); /* the continuous targets start now */
    config_unref(cfg);
    if (rc < 0)
        snprintf(err, errlen, "%s", strerror(-rc));
    return rc;
}

void exporter_stop(struct exporter *x)
{
    pthread_rwlock_wrlock(&x->run_lock);
    x->stopping = true;
    pthread_rwlock_unlock(&x->run_lock);
    reloader_stop(x->reloader);
    continuous_stop(x->continuous); /* no more echoes or lookups submitted */
    resolver_close(x->resolver);
    x->resolver = NULL;
    icmp_engine_close(x->engine);
    x->engine = NULL;
    rounds_stop(x->rounds); /* every round has ended with its probes; no new ones */
    auth_stop(x->auth);     /* the checks waiting are dropped: their connections get 503 */
    /* Every probe is over now: give their connections up to 2 s to get their answers. */
    for (int i = 0; i < 200 && atomic_load(&x->open_requests) > 0; i++) {
        struct timespec tick = {0, 10000000};
        nanosleep(&tick, NULL);
    }
}

void exporter_close(struct exporter *x)
{
    reloader_stop(x->reloader);
    if (x->reloader != NULL) {
        pthread_mutex_lock(&x->reloader->home.lock);
        reloader_unref_unlock(x->reloader);
    }
    continuous_stop(x->continuous);
    resolver_close(x->resolver);
    icmp_engine_close(x->engine);
    continuous_close(x->continuous); /* every echo and lookup has answered */
    rounds_close(x->rounds);
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

/* Installs what a load gave (cfg NULL: it failed, rc and err say why), refusing what this
 * build cannot apply; logs the outcome. Returns 0 or -errno (reason in err). */
static int install(struct exporter *x, struct config *cfg, int rc, char *err, size_t errlen)
{
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
    if (cfg != NULL) {
        /* The continuous targets switch to the new configuration (and its table) now. */
        struct config *now = config_slot_get(x->configs);
        if (continuous_update(x->continuous, now) < 0)
            log_write(&x->log, LOG_LEVEL_ERROR, "continuous targets not updated", "err",
                      "out of memory", NULL);
        config_unref(now);
    }
    if (rc == 0)
        log_write(&x->log, LOG_LEVEL_INFO, "configuration reloaded", "file",
                  x->config_path != NULL ? x->config_path : "(embedded default)", NULL);
    else
        log_write(&x->log, LOG_LEVEL_ERROR, "configuration reload failed", "err", err, NULL);
    return rc;
}

/* Answers a list of waiters (the lock held on entry and return, released meanwhile). */
static void answer(struct reloader *r, struct reload_waiter *w, int rc, const char *err)
{
    while (w != NULL) {
        struct reload_waiter *next = w->next;
        r->n_waiting--;
        detached_home_callback_begin(&r->home);
        w->done(w->arg, rc, err);
        free(w);
        detached_home_callback_end(&r->home);
        w = next;
    }
}

static void *reload_thread(void *arg)
{
    struct reloader *r = arg;
    char err[1024];

    pthread_mutex_lock(&r->home.lock);
    for (;;) {
        struct config_files files;
        struct config *cfg = NULL;
        struct reload_waiter *batch;
        int rc;

        while (!r->pending && !r->stopping)
            pthread_cond_wait(&r->wake, &r->home.lock);
        if (r->stopping)
            break;
        r->pending = false;
        r->batch = r->queue;
        r->queue = NULL;
        /* The paths are main()'s argv: they outlive this thread even past exporter_close. */
        files = (struct config_files){r->x->config_path, r->x->web_config_path};
        pthread_mutex_unlock(&r->home.lock);
        err[0] = '\0';
        rc = config_load_files(&files, &cfg, err, sizeof(err)); /* may block for ever */
        malloc_trim(0); /* the parser's freed JSON tree, as at start */
        pthread_mutex_lock(&r->home.lock);
        if (r->stopping) { /* exporter_stop answered the batch; x may be gone */
            config_unref(cfg);
            break;
        }
        rc = install(r->x, cfg, rc, err, sizeof(err));
        batch = r->batch;
        r->batch = NULL;
        answer(r, batch, rc, err);
    }
    reloader_unref_unlock(r);
    return NULL;
}

static int reloader_open(struct exporter *x)
{
    struct reloader *r = calloc(1, sizeof(*r));
    pthread_attr_t detached;
    pthread_t t;
    int rc;

    if (r == NULL)
        return -ENOMEM;
    detached_home_init(&r->home, 2); /* the exporter's, the thread's */
    pthread_cond_init(&r->wake, NULL);
    r->x = x;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &detached, reload_thread, r);
    pthread_attr_destroy(&detached);
    if (rc != 0) {
        r->home.refs = 1;
        pthread_mutex_lock(&r->home.lock);
        reloader_unref_unlock(r);
        return -rc;
    }
    x->reloader = r;
    return 0;
}

/* Stops taking reloads and answers those waiting (-ESHUTDOWN), waiting only for answers
 * already being given. Idempotent; accepts NULL. */
static void reloader_stop(struct reloader *r)
{
    struct reload_waiter *a, *b;

    if (r == NULL)
        return;
    pthread_mutex_lock(&r->home.lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->wake);
    a = r->queue;
    b = r->batch;
    r->queue = r->batch = NULL;
    answer(r, a, -ESHUTDOWN, "shutting down");
    answer(r, b, -ESHUTDOWN, "shutting down");
    detached_home_quiesce(&r->home);
    pthread_mutex_unlock(&r->home.lock);
}

int exporter_request_reload(struct exporter *x, exporter_reload_done_fn done, void *arg)
{
    struct reloader *r = x->reloader;
    struct reload_waiter *w = NULL;

    if (r == NULL)
        return -ESHUTDOWN;
    if (done != NULL && (w = calloc(1, sizeof(*w))) == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&r->home.lock);
    if (r->stopping || (w != NULL && r->n_waiting >= EXPORTER_RELOADS_WAITING_MAX)) {
        int rc = r->stopping ? -ESHUTDOWN : -EBUSY;
        pthread_mutex_unlock(&r->home.lock);
        free(w);
        return rc;
    }
    if (w != NULL) {
        /* In request order: the queue is answered as one, so order within it is moot. */
        *w = (struct reload_waiter){.next = r->queue, .done = done, .arg = arg};
        r->queue = w;
        r->n_waiting++;
    }
    r->pending = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->home.lock);
    return 0;
}

struct target_table *exporter_target_table(struct exporter *x, struct config *cfg)
{
    struct target_table *t = NULL;
    struct config *current = config_slot_get(x->configs);

    pthread_mutex_lock(&x->lock);
    if (x->targets != NULL && cfg != current)
        cfg = x->targets->cfg; /* an older configuration: the table stays */
    else if (x->targets == NULL || x->targets->cfg != cfg) {
        struct target_table *fresh = target_table_new(cfg, x->targets);
        if (fresh != NULL) {
            target_table_unref(x->targets);
            x->targets = fresh;
        }
    }
    if (x->targets != NULL && x->targets->cfg == cfg)
        t = target_table_ref(x->targets);
    pthread_mutex_unlock(&x->lock);
    config_unref(current);
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
