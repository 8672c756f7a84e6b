/*
 * /probe and /metrics: start, suspend, resume, answer.
 *
 * A request is validated at once (4xx answers go out immediately); then its connection is
 * suspended before its probes start, and the last probe's completion (on the engine or
 * resolver thread) resumes it; the handler runs again and answers. No thread waits for a
 * probe, so a thousand probes in flight cost a thousand small structs, not a thousand
 * threads. A /metrics scrape is one probe per static target, each folded into the target
 * table as it completes and freed at once, so memory drains as the batch completes.
 */
#include "exporter/http_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum request_kind { REQ_PROBE, REQ_METRICS };

struct target_call {
    struct http_request *rq;
    size_t index;
};

struct http_request {
    enum http_stage stage;
    struct exporter *x;
    struct MHD_Connection *conn;
    enum request_kind kind;
    enum prom_format format;
    bool gzip;
    bool head;                  /* REQ_METRICS: a HEAD request, answered without a body */
    struct probe *probe;        /* REQ_PROBE */
    struct target_table *table; /* REQ_METRICS: a reference; the states its probes feed */
    struct probe **targets;     /* REQ_METRICS: each freed (NULL) once folded into table */
    struct target_call *calls;  /* REQ_METRICS: each target callback's argument */
    size_t n_targets;
    _Atomic size_t pending; /* probes still running */
    _Atomic bool ready;
};

void http_request_free(struct http_request *rq)
{
    if (rq == NULL)
        return;
    atomic_fetch_sub(&rq->x->open_requests, 1);
    probe_free(rq->probe);
    for (size_t i = 0; i < rq->n_targets; i++)
        probe_free(rq->targets[i]);
    free(rq->targets);
    free(rq->calls);
    target_table_unref(rq->table);
    free(rq);
}

static void resume(struct http_request *rq)
{
    atomic_store(&rq->ready, true);
    atomic_fetch_sub(&rq->x->probes_in_flight, 1);
    MHD_resume_connection(rq->conn);
}

static void on_probe_done(struct probe *p, void *arg)
{
    (void)p;
    resume(arg);
}

/* A static target's probe is over: fold it into the table, and free it at once (the
 * series are rendered from the table), so memory drains as the batch completes. */
static void on_target_done(struct probe *p, void *arg)
{
    struct target_call *call = arg;
    struct http_request *rq = call->rq;
    struct exporter *x = rq->x;

    size_t n;
    const struct config_target *t = config_targets(rq->table->cfg, &n) + call->index;
    struct echo_summary s;
    const struct icmp_addr *addr;
    uint32_t duplicates;

    probe_summary(p, &s, &duplicates, &addr);
    pthread_mutex_lock(&x->lock);
    target_state_fold(&rq->table->states[call->index], t->module, &s, duplicates, probe_success(p),
                      addr);
    pthread_mutex_unlock(&x->lock);
    rq->targets[call->index] = NULL;
    probe_free(p);
    if (atomic_fetch_sub(&rq->pending, 1) == 1)
        resume(rq);
}

/* Makes rq an open request of conn (counted in open_requests until http_request_free),
 * answered in the format and encoding its headers ask for. */
static void request_open(struct http_request *rq, struct exporter *x, struct MHD_Connection *conn,
                         enum request_kind kind)
{
    rq->x = x;
    rq->conn = conn;
    rq->stage = HTTP_STAGE_REQUEST;
    rq->kind = kind;
    atomic_fetch_add(&x->open_requests, 1);
    rq->format = prom_negotiate(http_header(conn, MHD_HTTP_HEADER_ACCEPT));
    rq->gzip = prom_accepts_gzip(http_header(conn, MHD_HTTP_HEADER_ACCEPT_ENCODING));
}

static bool over_limit(struct exporter *x, const struct config *cfg)
{
    return atomic_load(&x->probes_in_flight) >= (int64_t)config_limits(cfg)->max_concurrent_probes;
}

enum MHD_Result http_start_probe(struct exporter *x, struct MHD_Connection *conn, void **con_cls)
{
    struct probe_params params = {
        .target = http_arg(conn, "target"),
        .module = http_arg(conn, "module"),
        .count = http_arg(conn, "count"),
        .interval = http_arg(conn, "interval"),
        .timeout = http_arg(conn, "timeout"),
        .debug = http_arg(conn, "debug"),
        .scrape_timeout = http_header(conn, "X-Prometheus-Scrape-Timeout-Seconds"),
    };
    struct config *cfg = config_slot_get(x->configs);
    struct http_request *rq;
    char err[HTTP_ERR_LEN];
    int rc;

    if (over_limit(x, cfg)) {
        config_unref(cfg);
        return http_respond(x, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
                            "too many concurrent probes\n", 27, false, "Retry-After", "1");
    }
    rq = calloc(1, sizeof(*rq));
    if (rq == NULL) {
        config_unref(cfg);
        return http_respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    rc = probe_new(x, cfg, &params, &rq->probe, err, sizeof(err));
    config_unref(cfg);
    if (rc < 0) {
        free(rq);
        return http_respond_text(x, conn, http_status_of(rc), err);
    }
    request_open(rq, x, conn, REQ_PROBE);
    *con_cls = rq;
    atomic_fetch_add(&x->probes_in_flight, 1);
    /* Suspend first: the probe may complete (and resume) before probe_start returns. */
    MHD_suspend_connection(conn);
    if (probe_start(rq->probe, on_probe_done, rq) < 0)
        resume(rq); /* renders a failed probe */
    return MHD_YES;
}

enum MHD_Result http_start_metrics(struct exporter *x, struct MHD_Connection *conn, bool head,
                                   void **con_cls)
{
    struct config *cfg;
    struct http_request *rq;
    size_t n;
    const struct config_target *t;
    int64_t deadline_ns;
    char err[HTTP_ERR_LEN];
    int rc = probe_deadline(http_header(conn, "X-Prometheus-Scrape-Timeout-Seconds"),
                            x->timeout_offset_ns, &deadline_ns, err, sizeof(err));

    if (rc < 0)
        return http_respond_text(x, conn, http_status_of(rc), err);
    cfg = config_slot_get(x->configs);
    t = config_targets(cfg, &n);
    rq = calloc(1, sizeof(*rq));
    if (rq == NULL || (rq->table = exporter_target_table(x, cfg)) == NULL ||
        (n > 0 && ((rq->targets = calloc(n, sizeof(*rq->targets))) == NULL ||
                   (rq->calls = calloc(n, sizeof(*rq->calls))) == NULL))) {
        if (rq != NULL) {
            target_table_unref(rq->table);
            free(rq->targets);
            free(rq);
        }
        config_unref(cfg);
        return http_respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    request_open(rq, x, conn, REQ_METRICS);
    rq->head = head;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = probe_new_static(x, cfg, &t[i], deadline_ns, &rq->targets[i]);
        if (rc == 0)
            rq->n_targets++;
    }
    config_unref(cfg); /* the table and the probes hold their own references */
    if (rc < 0) {
        http_request_free(rq);
        return http_respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    *con_cls = rq;
    atomic_fetch_add(&x->probes_in_flight, 1);
    if (n == 0) {
        atomic_store(&rq->ready, true);
        atomic_fetch_sub(&x->probes_in_flight, 1);
        return MHD_YES; /* no targets: render at once on the next call */
    }
    atomic_store(&rq->pending, n);
    MHD_suspend_connection(conn);
    for (size_t i = 0; i < n; i++) {
        rq->calls[i] = (struct target_call){.rq = rq, .index = i};
        if (probe_start(rq->targets[i], on_target_done, &rq->calls[i]) < 0)
            on_target_done(rq->targets[i], &rq->calls[i]);
    }
    return MHD_YES;
}

bool http_request_ready(const struct http_request *rq)
{
    return atomic_load(&rq->ready);
}

enum MHD_Result http_request_finish(struct http_request *rq)
{
    struct exporter *x = rq->x;
    struct text_buf buf;
    struct prom_writer w;
    enum MHD_Result result;
    char err[HTTP_ERR_LEN];
    int rc;

    if (rq->kind == REQ_METRICS)
        return http_respond_metrics(x, rq->conn, rq->table, rq->format, rq->gzip, rq->head);
    rc = probe_error(rq->probe, err, sizeof(err));
    if (rc < 0)
        return http_respond_text(x, rq->conn, http_status_of(rc), err);
    text_buf_init(&buf, HTTP_BODY_LIMIT);
    if (probe_debug(rq->probe)) {
        rc = probe_render_debug(rq->probe, &buf);
        result = rc == 0
                     ? http_respond(x, rq->conn, MHD_HTTP_OK, "text/plain; charset=utf-8",
                                    text_buf_data(&buf), text_buf_len(&buf), rq->gzip, NULL, NULL)
                     : http_respond_text(x, rq->conn, 500, "rendering failed");
        text_buf_cleanup(&buf);
        return result;
    }
    prom_writer_init(&w, &buf, rq->format);
    rc = probe_render(rq->probe, &w);
    if (rc != 0) {
        text_buf_cleanup(&buf);
        snprintf(err, sizeof(err), "rendering the metrics failed: %s", strerror(-rc));
        return http_respond_text(x, rq->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
    }
    result =
        http_respond_buf(x, rq->conn, MHD_HTTP_OK, prom_content_type(rq->format), &buf, rq->gzip);
    text_buf_cleanup(&buf);
    return result;
}
