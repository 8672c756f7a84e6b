/*
 * The HTTP server: libmicrohttpd with one internal polling thread (epoll) per listen
 * address, and suspend/resume for everything that waits on the network.
 *
 * A /probe or /metrics request is validated at once (4xx answers go out immediately);
 * then its connection is suspended before its probes start, and the last probe's
 * completion (on the engine or resolver thread) resumes it; the handler runs again and
 * renders. No thread waits for a probe, so a thousand probes in flight cost a thousand
 * small structs, not a thousand threads. (libmicrohttpd forbids suspend/resume together
 * with thread-per-connection, and its select() mode stops at 1024 descriptors.)
 */
#include "auth.h"
#include "exporter.h"
#include "server.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_DAEMONS   16
#define BODY_LIMIT    (64u * 1024 * 1024)
#define ERR_LEN       512
#define RELOAD_ERRLEN 1024
#define TLS_FILE_MAX  (1024 * 1024)
/* TLS 1.2 and 1.3 only, as Prometheus' exporter-toolkit by default. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

enum request_kind { REQ_PROBE, REQ_METRICS };

/* What a static target's probe calls back with: its request and its index. */
struct request;

struct target_call {
    struct request *rq;
    size_t index;
};

/* What *con_cls points at across calls of the handler: each kind starts with its stage. */
enum conn_stage {
    STAGE_HEADERS = 1, /* the request's headers are in; answer on the next call */
    STAGE_AUTH,        /* struct auth_wait: credentials being verified */
    STAGE_REQUEST,     /* struct request: a /probe or /metrics waiting on its probes */
};

struct request {
    enum conn_stage stage;
    struct exporter *x;
    struct MHD_Connection *conn;
    enum request_kind kind;
    enum prom_format format;
    bool gzip;
    struct probe *probe;        /* REQ_PROBE */
    struct target_table *table; /* REQ_METRICS: a reference; the states its probes feed */
    struct probe **targets;     /* REQ_METRICS: each freed (NULL) once folded into table */
    struct target_call *calls;  /* REQ_METRICS: each target callback's argument */
    size_t n_targets;
    _Atomic size_t pending; /* probes still running */
    _Atomic bool ready;
};

/*
 * A connection, tracked for the request deadline (limits.request_timeout): libmicrohttpd's
 * own timeout is one of inactivity, which a client sending a byte a second never trips.
 * From its start, and again after each answer, a connection has request_timeout to
 * deliver a whole request; past that, the sweep shuts its socket down, and libmicrohttpd
 * sees the end of the stream and closes the connection.
 *
 * The sweep runs on another thread, so the descriptor must still be the connection's
 * when it is shut down: libmicrohttpd reports MHD_CONNECTION_NOTIFY_CLOSED before it
 * closes the socket, on every path (read in its daemon.c, 0.9.75 to 1.0.1), and both the
 * report and the sweep hold track_lock. (A dup() of each socket would not need that
 * order, but costs two system calls per connection, a tenth of a /probe's.)
 */
struct tracked {
    struct tracked *prev, *next;
    int fd;                   /* the connection's socket, libmicrohttpd's */
    _Atomic bool streaming;   /* a /metrics body is being streamed and is not done */
    _Atomic int64_t deadline; /* monotonic ns; 0: none (a request is being answered) */
};

struct server {
    struct exporter *x;
    pthread_mutex_t track_lock;
    struct tracked *tracked; /* every open connection */
    unsigned max_connections, max_per_ip;
    int fds[MAX_DAEMONS];      /* listening sockets not yet handed to a daemon */
    int families[MAX_DAEMONS]; /* their address families */
    size_t n_fds;
    char *tls_cert, *tls_key; /* PEM, NULL without TLS */
    size_t tls_cert_len, tls_key_len;
    struct MHD_Daemon *daemons[MAX_DAEMONS];
    size_t n_daemons;
};

static struct tracked *tracked_of(struct MHD_Connection *conn);

/* ---------------------------------------------------------------------------------------
 * Responses.
 */

static enum MHD_Result respond(struct exporter *x, struct MHD_Connection *conn, unsigned code,
                               const char *type, const char *body, size_t len, bool gzip,
                               const char *header, const char *header_value)
{
    struct prom_buf zipped;
    struct MHD_Response *r;
    enum MHD_Result rc;

    prom_buf_init(&zipped, BODY_LIMIT);
    if (gzip) {
        struct prom_buf in;
        prom_buf_init(&in, BODY_LIMIT);
        if (prom_buf_append(&in, body, len) == 0 && prom_gzip(&in, &zipped) == 0) {
            body = prom_buf_data(&zipped);
            len = prom_buf_len(&zipped);
        } else {
            gzip = false;
        }
        prom_buf_cleanup(&in);
    }
    r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    prom_buf_cleanup(&zipped);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (gzip)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    if (header != NULL)
        MHD_add_response_header(r, header, header_value);
    rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    exporter_count_http(x, (int)code);
    return rc;
}

/* Answers with the content of buf, handed to libmicrohttpd without a copy (gzipped first
 * when the client accepts it). buf is left empty. */
static enum MHD_Result respond_buf(struct exporter *x, struct MHD_Connection *conn, unsigned code,
                                   const char *type, struct prom_buf *buf, bool gzip)
{
    struct prom_buf zipped;
    struct MHD_Response *r;
    enum MHD_Result rc;
    size_t len;
    char *body;

    prom_buf_init(&zipped, BODY_LIMIT);
    if (gzip && prom_gzip(buf, &zipped) == 0) {
        prom_buf_cleanup(buf);
        body = prom_buf_release(&zipped, &len);
    } else {
        gzip = false;
        body = prom_buf_release(buf, &len);
    }
    prom_buf_cleanup(&zipped);
    r = MHD_create_response_from_buffer(len, body != NULL ? body : (char *)"",
                                        body != NULL ? MHD_RESPMEM_MUST_FREE
                                                     : MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (gzip)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    exporter_count_http(x, (int)code);
    return rc;
}

static enum MHD_Result respond_text(struct exporter *x, struct MHD_Connection *conn, unsigned code,
                                    const char *text)
{
    char line[ERR_LEN + 2];
    int n = snprintf(line, sizeof(line), "%s\n", text);

    return respond(x, conn, code, "text/plain; charset=utf-8", line,
                   n < 0                      ? 0
                   : (size_t)n < sizeof(line) ? (size_t)n
                                              : sizeof(line) - 1,
                   false, NULL, NULL);
}

/* ---------------------------------------------------------------------------------------
 * /probe and /metrics: start, suspend, resume, render.
 */

static void request_free(struct request *rq)
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

static void resume(struct request *rq)
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
    struct request *rq = call->rq;
    struct exporter *x = rq->x;

    pthread_mutex_lock(&x->lock);
    probe_fold(p, &rq->table->states[call->index]);
    pthread_mutex_unlock(&x->lock);
    rq->targets[call->index] = NULL;
    probe_free(p);
    if (atomic_fetch_sub(&rq->pending, 1) == 1)
        resume(rq);
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static const char *arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static bool over_limit(struct exporter *x, const struct config *cfg)
{
    return atomic_load(&x->probes_in_flight) >= (int64_t)config_limits(cfg)->max_concurrent_probes;
}

static enum MHD_Result start_probe(struct exporter *x, struct MHD_Connection *conn, void **con_cls)
{
    struct probe_params params = {
        .target = arg(conn, "target"),
        .module = arg(conn, "module"),
        .count = arg(conn, "count"),
        .interval = arg(conn, "interval"),
        .timeout = arg(conn, "timeout"),
        .debug = arg(conn, "debug"),
        .scrape_timeout = header(conn, "X-Prometheus-Scrape-Timeout-Seconds"),
    };
    struct config *cfg = config_slot_get(x->configs);
    struct request *rq;
    char err[ERR_LEN];
    int code;

    if (over_limit(x, cfg)) {
        config_unref(cfg);
        return respond(x, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
                       "too many concurrent probes\n", 27, false, "Retry-After", "1");
    }
    rq = calloc(1, sizeof(*rq));
    if (rq == NULL) {
        config_unref(cfg);
        return respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    code = probe_new(x, cfg, &params, &rq->probe, err, sizeof(err));
    config_unref(cfg);
    if (code != 0) {
        free(rq);
        return respond_text(x, conn, (unsigned)code, err);
    }
    rq->x = x;
    rq->conn = conn;
    rq->stage = STAGE_REQUEST;
    rq->kind = REQ_PROBE;
    atomic_fetch_add(&x->open_requests, 1);
    rq->format = prom_negotiate(header(conn, MHD_HTTP_HEADER_ACCEPT));
    rq->gzip = prom_accepts_gzip(header(conn, MHD_HTTP_HEADER_ACCEPT_ENCODING));
    *con_cls = rq;
    atomic_fetch_add(&x->probes_in_flight, 1);
    /* Suspend first: the probe may complete (and resume) before probe_start returns. */
    MHD_suspend_connection(conn);
    if (probe_start(rq->probe, on_probe_done, rq) < 0)
        resume(rq); /* renders a failed probe */
    return MHD_YES;
}

/* The current table of the static targets' states, made anew when the configuration
 * changed (targets the reload left unchanged keep their counters). Returns a reference, or
 * NULL when out of memory. */
static struct target_table *current_table(struct exporter *x, struct config *cfg)
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

static enum MHD_Result start_metrics(struct exporter *x, struct MHD_Connection *conn,
                                     void **con_cls)
{
    struct config *cfg;
    struct request *rq;
    size_t n;
    const struct config_target *t;
    int64_t deadline_ns;
    char err[ERR_LEN];
    int rc = probe_scrape_deadline(x, header(conn, "X-Prometheus-Scrape-Timeout-Seconds"),
                                   &deadline_ns, err, sizeof(err));

    if (rc != 0)
        return respond_text(x, conn, (unsigned)rc, err);
    cfg = config_slot_get(x->configs);
    t = config_targets(cfg, &n);
    rq = calloc(1, sizeof(*rq));
    if (rq == NULL || (rq->table = current_table(x, cfg)) == NULL ||
        (n > 0 && ((rq->targets = calloc(n, sizeof(*rq->targets))) == NULL ||
                   (rq->calls = calloc(n, sizeof(*rq->calls))) == NULL))) {
        if (rq != NULL) {
            target_table_unref(rq->table);
            free(rq->targets);
            free(rq);
        }
        config_unref(cfg);
        return respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    rq->x = x;
    rq->conn = conn;
    rq->stage = STAGE_REQUEST;
    rq->kind = REQ_METRICS;
    atomic_fetch_add(&x->open_requests, 1);
    rq->format = prom_negotiate(header(conn, MHD_HTTP_HEADER_ACCEPT));
    rq->gzip = prom_accepts_gzip(header(conn, MHD_HTTP_HEADER_ACCEPT_ENCODING));
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = probe_new_static(x, cfg, &t[i], deadline_ns, &rq->targets[i]);
        if (rc == 0)
            rq->n_targets++;
    }
    config_unref(cfg); /* the table and the probes hold their own references */
    if (rc < 0) {
        request_free(rq);
        return respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
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

/* ---------------------------------------------------------------------------------------
 * The /metrics body, streamed: the own metrics, then the static targets' series a chunk at
 * a time as libmicrohttpd asks for more (chunked transfer encoding), gzipped on the fly
 * when the client accepts it. 10,000 targets are 28 MB of text; this way they never exist
 * in memory at once. An error after the headers are out can only cut the connection: the
 * missing last chunk tells the client the body is incomplete.
 */

#define STREAM_CHUNK (64u * 1024)

struct metrics_stream {
    struct exporter *x;
    struct tracked *track; /* the connection's, NULL if untracked; used only while it reads */
    enum prom_format format;
    struct prom_gzip *gzip; /* NULL: plain */
    struct prom_buf text;   /* rendered, not yet compressed (gzip only) */
    struct prom_buf out;    /* what goes to the client next */
    size_t off;             /* of out, already handed over */
    struct metrics_cursor cursor;
    bool self_done, done;
};

static void stream_free(void *cls)
{
    struct metrics_stream *s = cls;

    if (s == NULL)
        return;
    metrics_cursor_cleanup(&s->cursor);
    prom_gzip_free(s->gzip);
    prom_buf_cleanup(&s->text);
    prom_buf_cleanup(&s->out);
    free(s);
}

/* Renders (and compresses) the next piece into s->out. Returns 0 or -errno. */
static int stream_produce(struct metrics_stream *s)
{
    struct prom_buf *text = s->gzip != NULL ? &s->text : &s->out;
    struct prom_writer w;
    int rc;

    prom_writer_init(&w, text, s->format);
    if (!s->self_done) {
        rc = metrics_render_self(s->x, &w);
        s->self_done = true;
    } else {
        pthread_mutex_lock(&s->x->lock);
        rc = metrics_render_targets_next(&s->cursor, &w, STREAM_CHUNK);
        pthread_mutex_unlock(&s->x->lock);
        if (rc == 0) {
            rc = prom_finish(&w);
            s->done = true;
        }
    }
    if (rc < 0)
        return rc;
    if (s->gzip != NULL) {
        rc = prom_gzip_write(s->gzip, prom_buf_data(text), prom_buf_len(text), s->done, &s->out);
        prom_buf_reset(text);
    }
    return rc < 0 ? rc : 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct metrics_stream *s = cls;
    size_t n;

    (void)pos;
    while (s->off == prom_buf_len(&s->out)) {
        if (s->done) {
            if (s->track != NULL)
                atomic_store(&s->track->streaming, false);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        prom_buf_reset(&s->out);
        s->off = 0;
        if (stream_produce(s) < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    n = prom_buf_len(&s->out) - s->off;
    n = n < max ? n : max;
    memcpy(buf, prom_buf_data(&s->out) + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static enum MHD_Result respond_metrics(struct request *rq)
{
    struct exporter *x = rq->x;
    struct metrics_stream *s = calloc(1, sizeof(*s));
    struct MHD_Response *r;
    enum MHD_Result rc;

    if (s == NULL)
        return respond_text(x, rq->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    s->x = x;
    s->format = rq->format;
    prom_buf_init(&s->text, BODY_LIMIT);
    prom_buf_init(&s->out, BODY_LIMIT);
    if (metrics_cursor_init(&s->cursor, rq->table, rq->format) < 0 ||
        (rq->gzip && prom_gzip_new(&s->gzip) < 0)) {
        stream_free(s);
        return respond_text(x, rq->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    s->track = tracked_of(rq->conn);
    if (s->track != NULL)
        atomic_store(&s->track->streaming, true);
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_CHUNK, stream_read, s,
                                          stream_free);
    if (r == NULL) {
        stream_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, prom_content_type(rq->format));
    if (s->gzip != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    rc = MHD_queue_response(rq->conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    exporter_count_http(x, MHD_HTTP_OK);
    return rc;
}

static enum MHD_Result finish_request(struct request *rq)
{
    struct exporter *x = rq->x;
    struct prom_buf buf;
    struct prom_writer w;
    enum MHD_Result result;
    char err[ERR_LEN];
    int rc, code;

    if (rq->kind == REQ_METRICS)
        return respond_metrics(rq);
    code = probe_http_status(rq->probe, err, sizeof(err));
    if (code != 200)
        return respond_text(x, rq->conn, (unsigned)code, err);
    prom_buf_init(&buf, BODY_LIMIT);
    if (probe_debug(rq->probe)) {
        rc = probe_render_debug(rq->probe, &buf);
        result = rc == 0 ? respond(x, rq->conn, MHD_HTTP_OK, "text/plain; charset=utf-8",
                                   prom_buf_data(&buf), prom_buf_len(&buf), rq->gzip, NULL, NULL)
                         : respond_text(x, rq->conn, 500, "rendering failed");
        prom_buf_cleanup(&buf);
        return result;
    }
    prom_writer_init(&w, &buf, rq->format);
    rc = probe_render(rq->probe, &w);
    if (rc != 0) {
        prom_buf_cleanup(&buf);
        snprintf(err, sizeof(err), "rendering the metrics failed: %s", strerror(-rc));
        return respond_text(x, rq->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
    }
    result = respond_buf(x, rq->conn, MHD_HTTP_OK, prom_content_type(rq->format), &buf, rq->gzip);
    prom_buf_cleanup(&buf);
    return result;
}

/* ---------------------------------------------------------------------------------------
 * The small endpoints.
 */

/* Appends s with the HTML specials escaped. */
static void put_html(struct prom_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            prom_buf_append_str(b, "&lt;");
            break;
        case '>':
            prom_buf_append_str(b, "&gt;");
            break;
        case '&':
            prom_buf_append_str(b, "&amp;");
            break;
        case '"':
            prom_buf_append_str(b, "&quot;");
            break;
        default:
            prom_buf_append(b, s, 1);
        }
    }
}

/* Appends s percent-encoded for a query string (then HTML-safe as well). */
static void put_query(struct prom_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == ':')
            prom_buf_append(b, s, 1);
        else
            prom_buf_printf(b, "%%%02X", c);
    }
}

static enum MHD_Result landing(struct exporter *x, struct MHD_Connection *conn)
{
    struct prom_buf b;
    enum MHD_Result rc;

    prom_buf_init(&b, 1 << 20);
    prom_buf_printf(
        &b,
        "<!DOCTYPE html>\n<html><head><title>icmp_exporter</title></head><body>\n"
        "<h1>icmp_exporter</h1>\n<p>Version %s. ICMP sockets: IPv4 %s, IPv6 %s.</p>\n"
        "<ul>\n<li><a href=\"/metrics\">Metrics</a></li>\n"
        "<li><a href=\"/probe?target=127.0.0.1&amp;module=icmp&amp;debug=true\">Debug probe of "
        "127.0.0.1</a></li>\n<li><a href=\"/config\">Configuration</a></li>\n"
        "<li><a href=\"/-/healthy\">Health</a></li>\n</ul>\n<h2>Recent probes</h2>\n"
        "<table border=\"1\"><tr><th>Module</th><th>Target</th><th>Result</th>"
        "<th>Duration</th><th>Debug</th></tr>\n",
        ICMPX_VERSION, icmp_socket_mode_name(icmp_engine_mode(x->engine, AF_INET)),
        icmp_socket_mode_name(icmp_engine_mode(x->engine, AF_INET6)));
    pthread_mutex_lock(&x->lock);
    for (size_t i = 0; i < x->history_len; i++) {
        const struct probe_record *r =
            &x->history[(x->history_next + PROBE_HISTORY - 1 - i) % PROBE_HISTORY];
        prom_buf_append_str(&b, "<tr><td>");
        put_html(&b, r->module);
        prom_buf_append_str(&b, "</td><td>");
        put_html(&b, r->target);
        prom_buf_printf(&b, "</td><td>%s</td><td>%.6fs</td><td><a href=\"/probe?target=",
                        r->success ? "Success" : "<strong>Failure</strong>", r->duration);
        put_query(&b, r->target);
        prom_buf_append_str(&b, "&amp;module=");
        put_query(&b, r->module);
        prom_buf_append_str(&b, "&amp;debug=true\">Logs</a></td></tr>\n");
    }
    pthread_mutex_unlock(&x->lock);
    prom_buf_append_str(&b, "</table>\n</body></html>\n");
    rc = prom_buf_error(&b) == 0
             ? respond(x, conn, MHD_HTTP_OK, "text/html; charset=utf-8", prom_buf_data(&b),
                       prom_buf_len(&b), false, NULL, NULL)
             : respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "rendering failed");
    prom_buf_cleanup(&b);
    return rc;
}

static enum MHD_Result reload(struct exporter *x, struct MHD_Connection *conn)
{
    char err[RELOAD_ERRLEN];
    int rc = exporter_reload(x, err, sizeof(err));

    if (rc != 0) {
        log_write(&x->log, LOG_LEVEL_ERROR, "configuration reload failed", "err", err, NULL);
        return respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
    }
    log_write(&x->log, LOG_LEVEL_INFO, "configuration reloaded", "file",
              x->config_path != NULL ? x->config_path : "(embedded default)", NULL);
    return respond_text(x, conn, MHD_HTTP_OK, "OK");
}

/* /config: the effective configuration as JSON, basic-auth hashes left out. */
static enum MHD_Result show_config(struct exporter *x, struct MHD_Connection *conn)
{
    struct config *cfg = config_slot_get(x->configs);
    char *json;
    size_t len;
    int err = config_dump_json(cfg, &json, &len);
    enum MHD_Result rc;

    config_unref(cfg);
    if (err != 0)
        return respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    rc = respond(x, conn, MHD_HTTP_OK, "application/json", json, len, false, NULL, NULL);
    free(json);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Routing.
 */

struct route {
    const char *path;
    const char *method;
};

static const struct route routes[] = {
    {"/", "GET"},        {"/metrics", "GET"},   {"/probe", "GET"},  {"/-/healthy", "GET"},
    {"/-/ready", "GET"}, {"/-/reload", "POST"}, {"/config", "GET"},
};

/* ---------------------------------------------------------------------------------------
 * The request deadline (struct tracked).
 */

static int64_t request_deadline(struct exporter *x)
{
    struct config *cfg = config_slot_get(x->configs);
    int64_t t = config_limits(cfg)->request_timeout_ns;

    config_unref(cfg);
    return icmp_now_ns() + t;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct server *s = cls;
    struct tracked *t = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        t = calloc(1, sizeof(*t));
        if (t == NULL)
            return; /* untracked: only libmicrohttpd's inactivity timeout applies */
        if (info == NULL) {
            free(t);
            return;
        }
        t->fd = info->connect_fd;
        atomic_init(&t->deadline, request_deadline(s->x));
        pthread_mutex_lock(&s->track_lock);
        t->next = s->tracked;
        if (s->tracked != NULL)
            s->tracked->prev = t;
        s->tracked = t;
        pthread_mutex_unlock(&s->track_lock);
        *socket_context = t;
        return;
    }
    if (t == NULL)
        return;
    pthread_mutex_lock(&s->track_lock);
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        s->tracked = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&s->track_lock);
    free(t);
    *socket_context = NULL;
}

static struct tracked *tracked_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return info != NULL ? info->socket_context : NULL;
}

/* The request is in (its answer being made): no deadline until the next one starts. */
static void request_received(struct MHD_Connection *conn)
{
    struct tracked *t = tracked_of(conn);

    if (t != NULL)
        atomic_store(&t->deadline, 0);
}

/* Answered: on a kept-alive connection the next request's time starts now. */
static void request_answered(struct exporter *x, struct MHD_Connection *conn)
{
    struct tracked *t = tracked_of(conn);

    if (t != NULL)
        atomic_store(&t->deadline, request_deadline(x));
}

/*
 * At shutdown, bodies still streaming are cut with a TCP reset, never a FIN: an HTTP/1.0
 * body ends with the connection, so a FIN would make a cut one look whole. (A chunked body
 * shows its cut by its missing last chunk either way.) connect(AF_UNSPEC) disconnects the
 * socket with a reset; libmicrohttpd's own shutdown and close then send nothing more.
 */
void server_abort_streams(struct server *s)
{
    const struct sockaddr unspec = {.sa_family = AF_UNSPEC};

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->track_lock);
    for (struct tracked *t = s->tracked; t != NULL; t = t->next) {
        if (atomic_load(&t->streaming))
            connect(t->fd, &unspec, sizeof(unspec));
    }
    pthread_mutex_unlock(&s->track_lock);
}

unsigned server_sweep(struct server *s)
{
    int64_t now = icmp_now_ns();
    unsigned cut = 0;

    if (s == NULL)
        return 0;
    pthread_mutex_lock(&s->track_lock);
    for (struct tracked *t = s->tracked; t != NULL; t = t->next) {
        int64_t d = atomic_load(&t->deadline);
        if (d != 0 && d <= now) {
            shutdown(t->fd, SHUT_RDWR);
            atomic_store(&t->deadline, 0);
            cut++;
        }
    }
    pthread_mutex_unlock(&s->track_lock);
    return cut;
}

/*
 * Marks a connection whose request headers have been seen: libmicrohttpd 0.9.75 closes a
 * connection answered on the first call of the handler (before it has taken the whole
 * request), so every request is answered on the second call, and keep-alive holds.
 */
static enum conn_stage headers_seen = STAGE_HEADERS;

/* Routes a request that passed authentication. */
static enum MHD_Result route_request(struct exporter *x, struct MHD_Connection *conn,
                                     const char *url, const char *method, void **con_cls)
{
    const struct route *route = NULL;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(url, routes[i].path) == 0)
            route = &routes[i];
    }
    if (route == NULL)
        return respond_text(x, conn, MHD_HTTP_NOT_FOUND, "not found");
    if (strcmp(method, route->method) != 0 &&
        !(strcmp(method, "HEAD") == 0 && strcmp(route->method, "GET") == 0)) {
        char allow[64];
        snprintf(allow, sizeof(allow), "%s%s", route->method,
                 strcmp(route->method, "GET") == 0 ? ", HEAD" : "");
        return respond(x, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                       "method not allowed\n", 19, false, MHD_HTTP_HEADER_ALLOW, allow);
    }
    if (strcmp(url, "/probe") == 0 || strcmp(url, "/metrics") == 0) {
        enum MHD_Result rc;
        pthread_rwlock_rdlock(&x->run_lock);
        if (x->stopping)
            rc = respond(x, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
                         "shutting down\n", 14, false, "Retry-After", "1");
        else if (url[1] == 'p')
            rc = start_probe(x, conn, con_cls);
        else
            rc = start_metrics(x, conn, con_cls);
        pthread_rwlock_unlock(&x->run_lock);
        return rc;
    }
    if (strcmp(url, "/-/reload") == 0)
        return reload(x, conn);
    if (strcmp(url, "/") == 0)
        return landing(x, conn);
    if (strcmp(url, "/config") == 0)
        return show_config(x, conn);
    return respond_text(x, conn, MHD_HTTP_OK, "OK");
}

/* ---------------------------------------------------------------------------------------
 * Basic authentication (auth.c): a remembered pair passes at once; otherwise the
 * connection is suspended while the worker runs bcrypt, as a probe waits on the engine.
 */

struct auth_wait {
    enum conn_stage stage; /* STAGE_AUTH */
    struct exporter *x;
    struct MHD_Connection *conn;
    enum auth_result result; /* AUTH_OK, AUTH_DENIED or AUTH_BUSY once done */
    _Atomic bool done;
};

static void auth_wait_free(struct auth_wait *aw)
{
    atomic_fetch_sub(&aw->x->open_requests, 1);
    free(aw);
}

static void on_auth_done(void *arg, bool ok)
{
    struct auth_wait *aw = arg;

    aw->result = ok ? AUTH_OK : AUTH_DENIED;
    atomic_store(&aw->done, true);
    MHD_resume_connection(aw->conn); /* aw is not touched after this */
}

static enum MHD_Result unauthorized(struct exporter *x, struct MHD_Connection *conn)
{
    static const char body[] = "unauthorized\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc;

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    rc = MHD_queue_basic_auth_fail_response(conn, "icmp_exporter", r);
    MHD_destroy_response(r);
    exporter_count_http(x, MHD_HTTP_UNAUTHORIZED);
    return rc;
}

static enum MHD_Result auth_answer(struct exporter *x, struct MHD_Connection *conn,
                                   enum auth_result result, const char *url, const char *method,
                                   void **con_cls)
{
    if (result == AUTH_OK)
        return route_request(x, conn, url, method, con_cls);
    if (result == AUTH_BUSY)
        return respond(x, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
                       "too many authentications in progress\n", 37, false, "Retry-After", "1");
    return unauthorized(x, conn);
}

static enum MHD_Result authenticate(struct exporter *x, struct MHD_Connection *conn,
                                    const char *url, const char *method, void **con_cls)
{
    struct config *cfg = config_slot_get(x->configs);
    const struct config_web *web = config_web(cfg);
    struct auth_wait *aw = NULL;
    char *password = NULL, *user = NULL;
    enum auth_result r;

    if (web->n_users == 0) {
        config_unref(cfg);
        return route_request(x, conn, url, method, con_cls);
    }
    user = MHD_basic_auth_get_username_password(conn, &password);
    r = auth_check(x->auth, web, user, password, NULL, NULL);
    if (r == AUTH_PENDING) {
        /* Suspend before the worker can resume: it may finish before auth_check returns. */
        aw = calloc(1, sizeof(*aw));
        if (aw == NULL) {
            r = AUTH_BUSY;
        } else {
            *aw = (struct auth_wait){.stage = STAGE_AUTH, .x = x, .conn = conn};
            atomic_fetch_add(&x->open_requests, 1);
            *con_cls = aw;
            MHD_suspend_connection(conn);
            r = auth_check(x->auth, web, user, password, on_auth_done, aw);
            if (r != AUTH_PENDING) { /* answered on the next call, like a late result */
                aw->result = r;
                atomic_store(&aw->done, true);
                MHD_resume_connection(conn);
            }
        }
    }
    if (password != NULL) {
        explicit_bzero(password, strlen(password));
        MHD_free(password);
    }
    MHD_free(user);
    config_unref(cfg);
    if (aw != NULL)
        return MHD_YES;
    return auth_answer(x, conn, r, url, method, con_cls);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct exporter *x = cls;

    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = &headers_seen;
        return MHD_YES;
    }
    switch (*(enum conn_stage *)*con_cls) {
    case STAGE_HEADERS:
        if (*upload_data_size != 0) {
            *upload_data_size = 0; /* no endpoint takes a body */
            return MHD_YES;
        }
        *con_cls = NULL;
        request_received(conn);
        return authenticate(x, conn, url, method, con_cls);
    case STAGE_AUTH: {
        struct auth_wait *aw = *con_cls;
        enum auth_result r;
        if (!atomic_load(&aw->done))
            return MHD_YES;
        r = aw->result;
        *con_cls = NULL;
        auth_wait_free(aw);
        return auth_answer(x, conn, r, url, method, con_cls);
    }
    case STAGE_REQUEST: {
        struct request *rq = *con_cls;
        if (!atomic_load(&rq->ready))
            return MHD_YES;
        return finish_request(rq);
    }
    }
    return MHD_NO;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    request_answered(cls, conn);
    if (*con_cls != NULL) {
        switch (*(enum conn_stage *)*con_cls) {
        case STAGE_HEADERS:
            break;
        case STAGE_AUTH: /* only once done: a suspended connection is never completed */
            auth_wait_free(*con_cls);
            break;
        case STAGE_REQUEST:
            request_free(*con_cls);
            break;
        }
    }
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct exporter *x = cls;
    char msg[ERR_LEN];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_write(&x->log, LOG_LEVEL_WARN, "http server", "err", msg, NULL);
}

/* "host:port", "[v6]:port" or ":port" into a socket address (":port": NULL, dual stack). */
static int parse_listen(const char *text, struct sockaddr_storage *ss, bool *any, uint16_t *port)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    size_t hl;
    char *end;
    unsigned long p;
    struct addrinfo hints = {.ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *res;

    if (colon == NULL)
        return -EINVAL;
    errno = 0;
    p = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || p > 65535)
        return -EINVAL;
    *port = (uint16_t)p;
    hl = (size_t)(colon - text);
    if (hl == 0) {
        *any = true;
        return 0;
    }
    if (text[0] == '[' && hl >= 2 && text[hl - 1] == ']') {
        text++;
        hl -= 2;
    }
    if (hl >= sizeof(host))
        return -EINVAL;
    memcpy(host, text, hl);
    host[hl] = '\0';
    *any = false;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        return -EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

/* Reads a whole (small) file for TLS into a NUL-terminated buffer. Returns 0 or -errno. */
static int read_small_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    *out = NULL;
    if (f == NULL)
        return -errno;
    for (;;) {
        if (cap - n < 4096) {
            char *more;
            if (cap >= TLS_FILE_MAX) {
                rc = -EFBIG;
                break;
            }
            more = realloc(buf, cap + 65536);
            if (more == NULL) {
                rc = -ENOMEM;
                break;
            }
            buf = more;
            cap += 65536;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = -EIO;
            break;
        }
    }
    fclose(f);
    if (rc < 0) {
        if (buf != NULL)
            explicit_bzero(buf, cap);
        free(buf);
        return rc;
    }
    if (buf == NULL && (buf = malloc(1)) == NULL)
        return -ENOMEM;
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* A listening TCP socket for one address (":port": IPv6 and IPv4 when the host has IPv6).
 * Returns the descriptor, or -errno. */
static int open_listener(const struct sockaddr_storage *ss, bool any, uint16_t port, int *family)
{
    struct sockaddr_storage a = *ss;
    socklen_t len;
    int fd, one = 1, zero = 0, e;

    if (any) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a;
        memset(&a, 0, sizeof(a));
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_any;
        s6->sin6_port = htons(port);
    }
    fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && any && errno == EAFNOSUPPORT) { /* a kernel without IPv6 */
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a;
        memset(&a, 0, sizeof(a));
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        s4->sin_port = htons(port);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0)
        return -errno;
    len = a.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (a.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &one, sizeof(int));
    if (bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, SOMAXCONN) < 0) {
        e = errno;
        close(fd);
        return -e;
    }
    *family = a.ss_family;
    return fd;
}

int server_prepare(struct server **out, struct exporter *x, const char *const *listen, size_t n,
                   const struct config *cfg, char *err, size_t errlen)
{
    struct server *s = calloc(1, sizeof(*s));
    const struct config_web *web = config_web(cfg);
    int rc;

    *out = NULL;
    if (s == NULL)
        return -ENOMEM;
    s->x = x;
    pthread_mutex_init(&s->track_lock, NULL);
    s->max_connections = config_limits(cfg)->max_connections;
    s->max_per_ip = config_limits(cfg)->max_connections_per_ip;
    for (size_t i = 0; i < MAX_DAEMONS; i++)
        s->fds[i] = -1;
    if (n > MAX_DAEMONS) {
        snprintf(err, errlen, "at most %d listen addresses", MAX_DAEMONS);
        server_stop(s);
        return -EINVAL;
    }
    if (web->tls_cert_file != NULL) {
        const char *failed = web->tls_cert_file;
        rc = read_small_file(web->tls_cert_file, &s->tls_cert, &s->tls_cert_len);
        if (rc == 0) {
            failed = web->tls_key_file;
            rc = read_small_file(web->tls_key_file, &s->tls_key, &s->tls_key_len);
        }
        if (rc < 0) {
            snprintf(err, errlen, "cannot read %s: %s", failed, strerror(-rc));
            server_stop(s);
            return rc;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss = {0};
        bool any = false;
        uint16_t port = 0;

        if (parse_listen(listen[i], &ss, &any, &port) < 0) {
            snprintf(err, errlen, "bad listen address \"%s\": want host:port or :port", listen[i]);
            server_stop(s);
            return -EINVAL;
        }
        rc = open_listener(&ss, any, port, &s->families[i]);
        if (rc < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", listen[i], strerror(-rc));
            server_stop(s);
            return rc;
        }
        s->fds[i] = rc;
        s->n_fds = i + 1;
    }
    *out = s;
    return 0;
}

int server_run(struct server *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->n_fds; i++) {
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        struct MHD_Daemon *d;

        if (s->families[i] == AF_INET6)
            flags |= MHD_USE_IPv6;
        if (s->tls_cert != NULL)
            flags |= MHD_USE_TLS;
        /* The TLS options come last: without TLS, MHD_OPTION_END stops the list there. */
        d = MHD_start_daemon(
            flags, 0, NULL, NULL, handle, s->x, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s->x,
            MHD_OPTION_NOTIFY_COMPLETED, completed, s->x, MHD_OPTION_NOTIFY_CONNECTION,
            on_connection, s, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT,
            s->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->max_per_ip,
            /* 8 KiB per connection, not 32 KiB allocated and zeroed for each: our
             * requests are a line and a few headers. */
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192, MHD_OPTION_LISTEN_SOCKET, s->fds[i],
            s->tls_cert != NULL ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->tls_cert,
            MHD_OPTION_HTTPS_MEM_KEY, s->tls_key, MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
            MHD_OPTION_END);
        if (d == NULL) {
            snprintf(err, errlen, "cannot start the HTTP server%s (see the log above)",
                     s->tls_cert != NULL ? " with TLS: check the certificate and key" : "");
            return -EINVAL;
        }
        s->fds[i] = -1; /* the daemon's now */
        s->daemons[s->n_daemons++] = d;
    }
    return 0;
}

void server_quiesce(struct server *s)
{
    for (size_t i = 0; s != NULL && i < s->n_daemons; i++) {
        MHD_socket fd = MHD_quiesce_daemon(s->daemons[i]);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
}

void server_stop(struct server *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_daemons; i++)
        MHD_stop_daemon(s->daemons[i]);
    for (size_t i = 0; i < s->n_fds; i++) {
        if (s->fds[i] >= 0)
            close(s->fds[i]);
    }
    if (s->tls_key != NULL)
        explicit_bzero(s->tls_key, s->tls_key_len);
    free(s->tls_key);
    free(s->tls_cert);
    pthread_mutex_destroy(&s->track_lock);
    free(s);
}
