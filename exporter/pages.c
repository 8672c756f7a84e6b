/*
 * The small endpoints: the landing page (links and the last probes), POST /-/reload, and
 * /config (the effective configuration, as config/ dumps it).
 *
 * POST /-/reload is refused (403) unless --web.enable-lifecycle, as in blackbox_exporter:
 * without auth, anyone who reaches the port could otherwise make the exporter re-read its
 * files at will. The load runs on the reload thread (exporter.c); the connection is
 * suspended meanwhile, so the HTTP thread goes on serving.
 */
#include "exporter/http_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RELOAD_ERRLEN 1024

/* Appends s with the HTML specials escaped. */
static void put_html(struct text_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            text_buf_append_str(b, "&lt;");
            break;
        case '>':
            text_buf_append_str(b, "&gt;");
            break;
        case '&':
            text_buf_append_str(b, "&amp;");
            break;
        case '"':
            text_buf_append_str(b, "&quot;");
            break;
        default:
            text_buf_append(b, s, 1);
        }
    }
}

/* Appends s percent-encoded for a query string (then HTML-safe as well). */
static void put_query(struct text_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == ':')
            text_buf_append(b, s, 1);
        else
            text_buf_printf(b, "%%%02X", c);
    }
}

enum MHD_Result http_page_landing(struct exporter *x, struct MHD_Connection *conn)
{
    struct text_buf b;
    enum MHD_Result rc;

    text_buf_init(&b, 1 << 20);
    /* Links carry the route prefix (main.c allows only URL path characters in it). */
    const char *pf = x->route_prefix;

    text_buf_printf(&b,
                    "<!DOCTYPE html>\n<html><head><title>icmp_exporter</title></head><body>\n"
                    "<h1>icmp_exporter</h1>\n<p>Version %s. ICMP sockets: IPv4 %s, IPv6 %s.</p>\n"
                    "<ul>\n<li><a href=\"%s/metrics\">Metrics</a></li>\n"
                    "<li><a href=\"%s/probe?target=127.0.0.1&amp;module=icmp&amp;debug=true\">"
                    "Debug probe of 127.0.0.1</a></li>\n<li><a href=\"%s/config\">Configuration"
                    "</a></li>\n<li><a href=\"%s/-/healthy\">Health</a></li>\n</ul>\n"
                    "<h2>Recent probes</h2>\n<table border=\"1\"><tr><th>Module</th><th>Target"
                    "</th><th>Result</th><th>Duration</th><th>Debug</th></tr>\n",
                    ICMPX_VERSION, icmp_socket_mode_name(icmp_engine_mode(x->engine, AF_INET)),
                    icmp_socket_mode_name(icmp_engine_mode(x->engine, AF_INET6)), pf, pf, pf, pf);
    pthread_mutex_lock(&x->lock);
    for (size_t i = 0; i < x->history_len; i++) {
        const struct probe_record *r =
            &x->history[(x->history_next + PROBE_HISTORY - 1 - i) % PROBE_HISTORY];
        text_buf_append_str(&b, "<tr><td>");
        put_html(&b, r->module);
        text_buf_append_str(&b, "</td><td>");
        put_html(&b, r->target);
        text_buf_printf(&b, "</td><td>%s</td><td>%.6fs</td><td><a href=\"%s/probe?target=",
                        r->success ? "Success" : "<strong>Failure</strong>", r->duration, pf);
        put_query(&b, r->target);
        text_buf_append_str(&b, "&amp;module=");
        put_query(&b, r->module);
        text_buf_append_str(&b, "&amp;debug=true\">Logs</a></td></tr>\n");
    }
    pthread_mutex_unlock(&x->lock);
    text_buf_append_str(&b, "</table>\n</body></html>\n");
    rc = text_buf_error(&b) == 0
             ? http_respond(x, conn, MHD_HTTP_OK, "text/html; charset=utf-8", text_buf_data(&b),
                            text_buf_len(&b), false, NULL, NULL)
             : http_respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "rendering failed");
    text_buf_cleanup(&b);
    return rc;
}

struct http_reload {
    enum http_stage stage; /* HTTP_STAGE_RELOAD */
    struct exporter *x;
    struct MHD_Connection *conn;
    int rc;
    char err[RELOAD_ERRLEN];
    _Atomic bool done;
};

void http_reload_free(struct http_reload *rl)
{
    if (rl == NULL)
        return;
    atomic_fetch_sub(&rl->x->open_requests, 1);
    free(rl);
}

/* On the reload thread (or in exporter_stop): rl is not touched after the resume. */
static void on_reloaded(void *arg, int rc, const char *err)
{
    struct http_reload *rl = arg;

    rl->rc = rc;
    snprintf(rl->err, sizeof(rl->err), "%s", err);
    atomic_store(&rl->done, true);
    MHD_resume_connection(rl->conn);
}

enum MHD_Result http_page_reload(struct exporter *x, struct MHD_Connection *conn, void **con_cls)
{
    struct http_reload *rl;
    int rc;

    if (!x->enable_lifecycle)
        return http_respond_text(x, conn, MHD_HTTP_FORBIDDEN,
                                 "lifecycle APIs are not enabled: start the exporter with "
                                 "--web.enable-lifecycle to reload by POST (SIGHUP always "
                                 "reloads)");
    rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return http_respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    *rl = (struct http_reload){.stage = HTTP_STAGE_RELOAD, .x = x, .conn = conn};
    atomic_fetch_add(&x->open_requests, 1);
    *con_cls = rl;
    /* Suspend first: the reload thread may answer before exporter_request_reload returns. */
    MHD_suspend_connection(conn);
    rc = exporter_request_reload(x, on_reloaded, rl);
    if (rc < 0)
        on_reloaded(rl, rc,
                    rc == -EBUSY       ? "too many reloads waiting"
                    : rc == -ESHUTDOWN ? "shutting down"
                                       : strerror(-rc));
    return MHD_YES;
}

enum MHD_Result http_reload_finish(struct http_reload *rl)
{
    if (!atomic_load(&rl->done))
        return MHD_YES;
    if (rl->rc == 0)
        return http_respond_text(rl->x, rl->conn, MHD_HTTP_OK, "OK");
    if (rl->rc == -EBUSY || rl->rc == -ESHUTDOWN) {
        char line[RELOAD_ERRLEN + 2];
        int n = snprintf(line, sizeof(line), "%s\n", rl->err);
        return http_respond(rl->x, rl->conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                            "text/plain; charset=utf-8", line, (size_t)n, false, "Retry-After",
                            "1");
    }
    return http_respond_text(rl->x, rl->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, rl->err);
}

/* /config: the effective configuration as JSON (config/dump.c), basic-auth hashes left
 * out. */
enum MHD_Result http_page_config(struct exporter *x, struct MHD_Connection *conn)
{
    struct config *cfg = config_slot_get(x->configs);
    char *json;
    size_t len;
    int err = config_dump_json(cfg, &json, &len);
    enum MHD_Result rc;

    config_unref(cfg);
    if (err != 0)
        return http_respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    rc = http_respond(x, conn, MHD_HTTP_OK, "application/json", json, len, false, NULL, NULL);
    free(json);
    return rc;
}
