/*
 * Declarations shared by the HTTP files of exporter/ (libmicrohttpd's side): responses
 * (http_response.c), the /probe and /metrics request lifecycle (scrape.c), the streamed
 * /metrics body (metrics_stream.c), the small endpoints (pages.c), connection tracking and
 * the request deadline (http_conn.c), listeners (http_listen.c), and routing (server.c).
 * Nothing outside these files includes this.
 */
#ifndef EXPORTER_HTTP_INTERNAL_H
#define EXPORTER_HTTP_INTERNAL_H

#include "exporter/client.h"
#include "exporter/exporter.h"
#include "exporter/probe.h"
#include "exporter/prom/prom.h"

#include <microhttpd.h>

#include <stdatomic.h>
#include <stdbool.h>

#define HTTP_MAX_DAEMONS 16
#define HTTP_BODY_LIMIT  (64u * 1024 * 1024)
#define HTTP_ERR_LEN     512

/* What *con_cls points at across calls of the handler: each kind starts with its stage. */
enum http_stage {
    HTTP_STAGE_HEADERS = 1, /* the request's headers are in; answer on the next call */
    HTTP_STAGE_AUTH,        /* struct auth_wait (server.c): credentials being verified */
    HTTP_STAGE_REQUEST,     /* struct http_request (scrape.c): waiting on its probes */
    HTTP_STAGE_RELOAD,      /* struct http_reload (pages.c): waiting on the reload thread */
};

/*
 * A connection, tracked for the request deadline (limits.request_timeout; http_conn.c).
 * From its start, and again after each answer, a connection has request_timeout to
 * deliver a whole request; past that, the sweep shuts its socket down.
 */
struct http_tracked {
    struct http_tracked *prev, *next;
    int fd;                    /* the connection's socket, libmicrohttpd's */
    struct MHD_Daemon *daemon; /* whose connection limit it counts against */
    _Atomic bool streaming;    /* a /metrics body is being streamed and is not done */
    _Atomic bool headers_in;   /* the request's headers are in: not idle, never evicted */
    _Atomic bool served;       /* a request's headers have come in on it once */
    struct client_key client;  /* who opened it (client.h) */
    _Atomic int64_t deadline;  /* monotonic ns; 0: none (a request is being answered) */
};

struct server {
    struct exporter *x;
    pthread_mutex_t track_lock;
    struct http_tracked *tracked; /* every open connection */
    unsigned max_connections, max_per_ip;
    unsigned max_new_per_ip;   /* connections that have not yet sent a request, per address */
    unsigned connection_limit; /* per daemon, as started (server_run) */
    size_t n_tracked;
    int fds[HTTP_MAX_DAEMONS];      /* listening sockets not yet handed to a daemon */
    int families[HTTP_MAX_DAEMONS]; /* their address families */
    size_t n_fds;
    char *tls_cert, *tls_key; /* PEM, NULL without TLS */
    size_t tls_cert_len, tls_key_len;
    struct MHD_Daemon *daemons[HTTP_MAX_DAEMONS];
    size_t n_daemons;
};

/* ---- responses (http_response.c); each counts the answer in the exporter's counters ---- */

/* The HTTP status for a -errno of the probe API: -EINVAL 400, -EACCES 403, -EBUSY and
 * -ESHUTDOWN 503, anything else 500. The one place where errors become status codes. */
unsigned http_status_of(int err);

/* Answers with a copy of body (gzipped when asked and possible), an optional extra header. */
enum MHD_Result http_respond(struct exporter *x, struct MHD_Connection *conn, unsigned code,
                             const char *type, const char *body, size_t len, bool gzip,
                             const char *header, const char *header_value);

/* Answers with the content of buf, handed over without a copy (gzipped first when asked).
 * buf is left empty. */
enum MHD_Result http_respond_buf(struct exporter *x, struct MHD_Connection *conn, unsigned code,
                                 const char *type, struct text_buf *buf, bool gzip);

/* Answers with one line of plain text. */
enum MHD_Result http_respond_text(struct exporter *x, struct MHD_Connection *conn, unsigned code,
                                  const char *text);

/* A request header / query argument, NULL when absent. */
const char *http_header(struct MHD_Connection *c, const char *name);
const char *http_arg(struct MHD_Connection *c, const char *name);

/* ---- /probe and /metrics (scrape.c) ---- */

struct http_request;

/* Validate and start a /probe or a /metrics scrape: answers errors at once, or suspends the
 * connection and sets *con_cls to the request, answered by http_request_finish once ready.
 * head: a HEAD request (its answer carries the headers of GET's and no body). */
enum MHD_Result http_start_probe(struct exporter *x, struct MHD_Connection *conn, void **con_cls);
enum MHD_Result http_start_metrics(struct exporter *x, struct MHD_Connection *conn, bool head,
                                   void **con_cls);

/* Whether the request's probes are over (it may be answered). */
bool http_request_ready(const struct http_request *rq);

/* Answers a ready request: the probe's metrics, or the streamed /metrics body. */
enum MHD_Result http_request_finish(struct http_request *rq);

/* Frees a request once its connection completed. Accepts NULL. */
void http_request_free(struct http_request *rq);

/* ---- the streamed /metrics body (metrics_stream.c) ---- */

/* Answers 200 with the own metrics then the static targets of table (a reference the
 * stream takes its own of), in format, gzipped when asked, streamed as the client reads.
 * head: the body is rendered only to be measured, and the answer carries its
 * Content-Length and no body. */
enum MHD_Result http_respond_metrics(struct exporter *x, struct MHD_Connection *conn,
                                     struct target_table *table, enum prom_format format, bool gzip,
                                     bool head);

/* ---- the small endpoints (pages.c) ---- */

enum MHD_Result http_page_landing(struct exporter *x, struct MHD_Connection *conn);
enum MHD_Result http_page_config(struct exporter *x, struct MHD_Connection *conn);

/* POST /-/reload: 403 without --web.enable-lifecycle; else suspends the connection and
 * sets *con_cls to a struct http_reload, resumed when the reload thread has answered. */
enum MHD_Result http_page_reload(struct exporter *x, struct MHD_Connection *conn, void **con_cls);

struct http_reload;

/* Answers a resumed reload (MHD_YES without answering while it still waits). */
enum MHD_Result http_reload_finish(struct http_reload *rl);

/* Frees it once its connection completed. */
void http_reload_free(struct http_reload *rl);

/* ---- connection tracking and the request deadline (http_conn.c) ---- */

/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback (cls: the server). */
void http_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);

/* The tracking record of a connection, NULL if untracked. */
struct http_tracked *http_tracked_of(struct MHD_Connection *conn);

/* The request's headers are in: the connection is no longer idle (never evicted). */
void http_conn_headers_received(struct MHD_Connection *conn);

/* The request is in (its answer being made): no deadline until the next one starts. */
void http_conn_request_received(struct MHD_Connection *conn);

/* Answered: on a kept-alive connection the next request's time starts now. */
void http_conn_request_answered(struct exporter *x, struct MHD_Connection *conn);

/* ---- routing (server.c) ---- */

/* libmicrohttpd's access handler and completion callback (cls: the exporter). */
enum MHD_Result http_handle(void *cls, struct MHD_Connection *conn, const char *url,
                            const char *method, const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls);
void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe);

/* libmicrohttpd's error log, into the exporter's log (cls: the exporter). */
void http_log(void *cls, const char *fmt, va_list ap);

#endif
