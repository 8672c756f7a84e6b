/*
 * /probe and /metrics: start, suspend, resume, answer.
 *
 * A request is validated at once (4xx answers go out immediately); then its connection is
 * suspended before its work starts, and whatever ends the wait (the probe's completion on
 * the engine or resolver thread, or for /metrics its round's end or its deadline on the
 * rounds' timer thread) resumes it; the handler runs again and answers. No thread waits for
 * a probe, so a thousand probes in flight cost a thousand small structs, not a thousand
 * threads. A /metrics scrape probes nothing itself: it waits on the static targets' round
 * (round.h), shared with every scrape that overlaps it, and renders the target table.
 */
#include "exporter/http_internal.h"
#include "exporter/round.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum request_kind { REQ_PROBE, REQ_METRICS };

struct http_request {
    enum http_stage stage;
    struct exporter *x;
    struct MHD_Connection *conn;
    enum request_kind kind;
    enum prom_format format;
    bool gzip;
    bool head;                  /* REQ_METRICS: a HEAD request, answered without a body */
    struct probe *probe;        /* REQ_PROBE */
    struct target_table *table; /* REQ_METRICS: a reference, rendered once the wait is over */
    struct round_waiter wait;   /* REQ_METRICS: on the table's round */
    int error;                  /* REQ_METRICS: -errno when it could not wait on a round */
    _Atomic bool ready;
};

void http_request_free(struct http_request *rq)
{
    if (rq == NULL)
        return;
    atomic_fetch_sub(&rq->x->open_requests, 1);
    probe_free(rq->probe);
    target_table_unref(rq->table);
    free(rq);
}

static void on_probe_done(struct probe *p, void *arg)
{
    struct http_request *rq = arg;

    (void)p;
    atomic_store(&rq->ready, true);
    atomic_fetch_sub(&rq->x->probes_in_flight, 1);
    MHD_resume_connection(rq->conn);
}

/* The scrape's round is over, or its deadline came first (early): render the table. */
static void on_round_fired(struct round_waiter *w, bool early)
{
    struct http_request *rq =
        (struct http_request *)((char *)w - offsetof(struct http_request, wait));

    (void)early;
    atomic_store(&rq->ready, true);
    MHD_resume_connection(rq->conn);
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
    /* Each client address is one engine flow: its probes share one part of the budget. */
    const union MHD_ConnectionInfo *client =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    struct probe_params params = {
        .target = http_arg(conn, "target"),
        .module = http_arg(conn, "module"),
        .count = http_arg(conn, "count"),
        .interval = http_arg(conn, "interval"),
        .timeout = http_arg(conn, "timeout"),
        .debug = http_arg(conn, "debug"),
        .scrape_timeout = http_header(conn, "X-Prometheus-Scrape-Timeout-Seconds"),
        .flow = probe_client_flow(client != NULL ? client->client_addr : NULL),
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
        on_probe_done(rq->probe, rq); /* renders a failed probe */
    return MHD_YES;
}

enum MHD_Result http_start_metrics(struct exporter *x, struct MHD_Connection *conn, bool head,
                                   void **con_cls)
{
    struct config *cfg;
    struct http_request *rq;
    int64_t deadline_ns;
    char err[HTTP_ERR_LEN];
    int rc = probe_deadline(http_header(conn, "X-Prometheus-Scrape-Timeout-Seconds"),
                            x->timeout_offset_ns, &deadline_ns, err, sizeof(err));

    if (rc < 0)
        return http_respond_text(x, conn, http_status_of(rc), err);
    cfg = config_slot_get(x->configs);
    rq = calloc(1, sizeof(*rq));
    if (rq == NULL || (rq->table = exporter_target_table(x, cfg)) == NULL) {
        free(rq);
        config_unref(cfg);
        return http_respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    config_unref(cfg); /* the table holds its own reference */
    request_open(rq, x, conn, REQ_METRICS);
    rq->head = head;
    *con_cls = rq;
    if (rq->table->n == 0) {
        atomic_store(&rq->ready, true);
        return MHD_YES; /* no targets: render at once on the next call */
    }
    /* The scrape waits for its round at most until its own deadline, then renders what the
     * table holds; the round itself runs on with the modules' timeouts. */
    rq->wait.fire = on_round_fired;
    rq->wait.deadline_ns = deadline_ns > 0 ? icmp_now_ns() + deadline_ns : 0;
    /* Suspend first: the round may end (and resume) before rounds_join returns. */
    MHD_suspend_connection(conn);
    rc = rounds_join(x->rounds, rq->table, &rq->wait);
    if (rc < 0) {
        rq->error = rc;
        atomic_store(&rq->ready, true);
        MHD_resume_connection(conn);
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

    if (rq->kind == REQ_METRICS && rq->error < 0) {
        snprintf(err, sizeof(err), "the static targets cannot be probed: %s",
                 rq->error == -ESHUTDOWN ? "the exporter is stopping" : strerror(-rq->error));
        return http_respond_text(x, rq->conn, http_status_of(rq->error), err);
    }
    if (rq->kind == REQ_METRICS)
        return http_respond_metrics(x, rq->conn, rq->table, rq->format, rq->gzip, rq->head);
    rc = probe_error(rq->probe, err, sizeof(err));
    if (rc == -EBUSY) { /* never started: a moment later it may be */
        size_t n = strlen(err);
        if (n + 1 < sizeof(err))
            memcpy(err + n, "\n", 2);
        return http_respond(x, rq->conn, http_status_of(rc), "text/plain; charset=utf-8", err,
                            strlen(err), false, "Retry-After", "1");
    }
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
