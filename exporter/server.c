/*
 * The HTTP server's front door: libmicrohttpd's access handler, routing, and basic auth.
 *
 * Every request is answered on the handler's second call (libmicrohttpd 0.9.75 closes a
 * connection answered on the first, before it has taken the whole request). A request that
 * needs credentials checked (bcrypt, slow on purpose) or probes run is suspended, and what
 * it waits for resumes it; *con_cls says at which stage a connection is (enum http_stage).
 */
#include "exporter/auth.h"
#include "exporter/http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct route {
    const char *path;
    const char *method;
};

static const struct route routes[] = {
    {"/", "GET"},        {"/metrics", "GET"},   {"/probe", "GET"},  {"/-/healthy", "GET"},
    {"/-/ready", "GET"}, {"/-/reload", "POST"}, {"/config", "GET"},
};

/*
 * Marks a connection whose request headers have been seen: libmicrohttpd 0.9.75 closes a
 * connection answered on the first call of the handler (before it has taken the whole
 * request), so every request is answered on the second call, and keep-alive holds.
 */
static enum http_stage headers_seen = HTTP_STAGE_HEADERS;

/* Routes a request that passed authentication. */
static enum MHD_Result route_request(struct exporter *x, struct MHD_Connection *conn,
                                     const char *url, const char *method, void **con_cls)
{
    const struct route *route = NULL;
    size_t plen = strlen(x->route_prefix);

    /* Under --web.route-prefix (or --web.external-url's path) every route lives below the
     * prefix, as in blackbox_exporter; the prefix alone is the landing page. */
    if (plen > 0) {
        if (strncmp(url, x->route_prefix, plen) != 0 || (url[plen] != '/' && url[plen] != '\0'))
            return http_respond_text(x, conn, MHD_HTTP_NOT_FOUND, "not found");
        url = url[plen] == '\0' ? "/" : url + plen;
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(url, routes[i].path) == 0)
            route = &routes[i];
    }
    if (route == NULL)
        return http_respond_text(x, conn, MHD_HTTP_NOT_FOUND, "not found");
    if (strcmp(method, route->method) != 0 &&
        !(strcmp(method, "HEAD") == 0 && strcmp(route->method, "GET") == 0)) {
        char allow[64];
        snprintf(allow, sizeof(allow), "%s%s", route->method,
                 strcmp(route->method, "GET") == 0 ? ", HEAD" : "");
        return http_respond(x, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                            "method not allowed\n", 19, false, MHD_HTTP_HEADER_ALLOW, allow);
    }
    if (strcmp(url, "/probe") == 0 || strcmp(url, "/metrics") == 0) {
        enum MHD_Result rc;
        pthread_rwlock_rdlock(&x->run_lock);
        if (x->stopping)
            rc = http_respond(x, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
                              "shutting down\n", 14, false, "Retry-After", "1");
        else if (url[1] == 'p')
            rc = http_start_probe(x, conn, con_cls);
        else
            rc = http_start_metrics(x, conn, strcmp(method, "HEAD") == 0, con_cls);
        pthread_rwlock_unlock(&x->run_lock);
        return rc;
    }
    if (strcmp(url, "/-/reload") == 0)
        return http_page_reload(x, conn, con_cls);
    if (strcmp(url, "/") == 0)
        return http_page_landing(x, conn);
    if (strcmp(url, "/config") == 0)
        return http_page_config(x, conn);
    return http_respond_text(x, conn, MHD_HTTP_OK, "OK");
}

struct auth_wait {
    enum http_stage stage; /* HTTP_STAGE_AUTH */
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

static void on_auth_done(void *arg, enum auth_result result)
{
    struct auth_wait *aw = arg;

    aw->result = result;
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
        return http_respond(x, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
                            "too many authentications in progress\n", 37, false, "Retry-After",
                            "1");
    return unauthorized(x, conn);
}

static enum MHD_Result authenticate(struct exporter *x, struct MHD_Connection *conn,
                                    const char *url, const char *method, void **con_cls)
{
    struct config *cfg = config_slot_get(x->configs);
    const struct config_web *web = config_web(cfg);
    struct auth_wait *aw = NULL;
    char *password = NULL, *user = NULL;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *client = ci != NULL ? ci->client_addr : NULL;
    enum auth_result r;

    if (web->n_users == 0) {
        config_unref(cfg);
        return route_request(x, conn, url, method, con_cls);
    }
    user = MHD_basic_auth_get_username_password(conn, &password);
    r = auth_check(x->auth, web, user, password, client, NULL, NULL);
    if (r == AUTH_PENDING) {
        /* Suspend before the worker can resume: it may finish before auth_check returns. */
        aw = calloc(1, sizeof(*aw));
        if (aw == NULL) {
            r = AUTH_BUSY;
        } else {
            *aw = (struct auth_wait){.stage = HTTP_STAGE_AUTH, .x = x, .conn = conn};
            atomic_fetch_add(&x->open_requests, 1);
            *con_cls = aw;
            MHD_suspend_connection(conn);
            r = auth_check(x->auth, web, user, password, client, on_auth_done, aw);
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

struct framing {
    unsigned content_length, transfer_encoding;
    bool list; /* a Content-Length holding a list ("5, 5") */
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct framing *f = cls;

    (void)kind;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        f->content_length++;
        f->list |= value != NULL && strchr(value, ',') != NULL;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->transfer_encoding++;
    }
    return MHD_YES;
}

/*
 * Whether the request's body is framed one way only. Two Content-Length fields (equal or
 * not, or one holding a list), or Content-Length with Transfer-Encoding, are what request
 * smuggling is made of: a proxy in front may read a body boundary other than ours.
 * libmicrohttpd 0.9.75 takes the first Content-Length and says nothing; RFC 9110 allows
 * merging equal ones, but no client of ours sends a body at all, so any repeat is refused.
 */
static bool framing_ok(struct MHD_Connection *conn)
{
    struct framing f = {0};

    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
    return f.content_length <= 1 && !f.list && !(f.content_length > 0 && f.transfer_encoding > 0);
}

enum MHD_Result http_handle(void *cls, struct MHD_Connection *conn, const char *url,
                            const char *method, const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls)
{
    struct exporter *x = cls;

    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        /* Answered on this first call, so libmicrohttpd closes the connection without
         * reading a body whose end it cannot know. */
        if (!framing_ok(conn))
            return http_respond_text(x, conn, MHD_HTTP_BAD_REQUEST,
                                     "ambiguous body length: Content-Length repeated or with "
                                     "Transfer-Encoding");
        *con_cls = &headers_seen;
        http_conn_headers_received(conn); /* never the one evicted (http_conn.c) */
        return MHD_YES;
    }
    switch (*(enum http_stage *)*con_cls) {
    case HTTP_STAGE_HEADERS:
        if (*upload_data_size != 0) {
            *upload_data_size = 0; /* no endpoint takes a body */
            return MHD_YES;
        }
        *con_cls = NULL;
        http_conn_request_received(conn);
        return authenticate(x, conn, url, method, con_cls);
    case HTTP_STAGE_AUTH: {
        struct auth_wait *aw = *con_cls;
        enum auth_result r;
        if (!atomic_load(&aw->done))
            return MHD_YES;
        r = aw->result;
        *con_cls = NULL;
        auth_wait_free(aw);
        return auth_answer(x, conn, r, url, method, con_cls);
    }
    case HTTP_STAGE_REQUEST: {
        struct http_request *rq = *con_cls;
        if (!http_request_ready(rq))
            return MHD_YES;
        return http_request_finish(rq);
    }
    case HTTP_STAGE_RELOAD:
        return http_reload_finish(*con_cls);
    }
    return MHD_NO;
}

void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    http_conn_request_answered(cls, conn);
    if (*con_cls != NULL) {
        switch (*(enum http_stage *)*con_cls) {
        case HTTP_STAGE_HEADERS:
            break;
        case HTTP_STAGE_AUTH: /* only once done: a suspended connection is never completed */
            auth_wait_free(*con_cls);
            break;
        case HTTP_STAGE_REQUEST:
            http_request_free(*con_cls);
            break;
        case HTTP_STAGE_RELOAD: /* only once answered, as above */
            http_reload_free(*con_cls);
            break;
        }
    }
    *con_cls = NULL;
}

void http_log(void *cls, const char *fmt, va_list ap)
{
    struct exporter *x = cls;
    char msg[HTTP_ERR_LEN];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_write(&x->log, LOG_LEVEL_WARN, "http server", "err", msg, NULL);
}
