/*
 * The small endpoints: the landing page (links and the last probes), POST /-/reload, and
 * /config (the effective configuration, as config/ dumps it).
 */
#include "exporter/http_internal.h"

#include <cjson/cJSON.h>

#include <arpa/inet.h>
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
    text_buf_printf(
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
        text_buf_append_str(&b, "<tr><td>");
        put_html(&b, r->module);
        text_buf_append_str(&b, "</td><td>");
        put_html(&b, r->target);
        text_buf_printf(&b, "</td><td>%s</td><td>%.6fs</td><td><a href=\"/probe?target=",
                        r->success ? "Success" : "<strong>Failure</strong>", r->duration);
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

enum MHD_Result http_page_reload(struct exporter *x, struct MHD_Connection *conn)
{
    char err[RELOAD_ERRLEN];
    int rc = exporter_reload(x, err, sizeof(err));

    if (rc != 0) {
        log_write(&x->log, LOG_LEVEL_ERROR, "configuration reload failed", "err", err, NULL);
        return http_respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
    }
    log_write(&x->log, LOG_LEVEL_INFO, "configuration reloaded", "file",
              x->config_path != NULL ? x->config_path : "(embedded default)", NULL);
    return http_respond_text(x, conn, MHD_HTTP_OK, "OK");
}

/* /config: the effective configuration as JSON, basic-auth hashes left out. */
enum MHD_Result http_page_config(struct exporter *x, struct MHD_Connection *conn)
{
    struct config *cfg = config_slot_get(x->configs);
    cJSON *root = cJSON_CreateObject(), *mods = cJSON_AddObjectToObject(root, "modules");
    cJSON *tgts = cJSON_AddArrayToObject(root, "targets");
    cJSON *lim = cJSON_AddObjectToObject(root, "limits");
    cJSON *web = cJSON_AddObjectToObject(root, "web");
    const struct config_limits *l = config_limits(cfg);
    const struct config_web *wb = config_web(cfg);
    size_t n;
    const struct config_module *m = config_modules(cfg, &n);
    const struct config_target *t;
    char text[64];
    char *json;
    enum MHD_Result rc;

    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_AddObjectToObject(mods, m[i].name), *icmp;
        snprintf(text, sizeof(text), "%gs", (double)m[i].timeout_ns / 1e9);
        cJSON_AddStringToObject(o, "timeout", text);
        icmp = cJSON_AddObjectToObject(o, "icmp");
        cJSON_AddStringToObject(icmp, "preferred_ip_protocol",
                                m[i].preferred_ip_protocol == 4 ? "ip4" : "ip6");
        cJSON_AddBoolToObject(icmp, "ip_protocol_fallback", m[i].ip_protocol_fallback);
        cJSON_AddNumberToObject(icmp, "payload_size", m[i].payload_size);
        cJSON_AddBoolToObject(icmp, "dont_fragment", m[i].dont_fragment);
        cJSON_AddNumberToObject(icmp, "ttl", m[i].ttl);
        cJSON_AddNumberToObject(icmp, "count", m[i].count);
        snprintf(text, sizeof(text), "%gs", (double)m[i].interval_ns / 1e9);
        cJSON_AddStringToObject(icmp, "interval", text);
        snprintf(text, sizeof(text), "%gs", (double)m[i].echo_timeout_ns / 1e9);
        cJSON_AddStringToObject(icmp, "echo_timeout", text);
        cJSON_AddNumberToObject(icmp, "tos", m[i].tos);
        cJSON *b = cJSON_AddArrayToObject(icmp, "buckets");
        for (size_t k = 0; k < m[i].n_buckets; k++)
            cJSON_AddItemToArray(b, cJSON_CreateNumber(m[i].buckets[k]));
    }
    t = config_targets(cfg, &n);
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "target", t[i].target);
        cJSON_AddStringToObject(o, "module", t[i].module->name);
        if (t[i].n_labels > 0) {
            cJSON *lb = cJSON_AddObjectToObject(o, "labels");
            for (size_t k = 0; k < t[i].n_labels; k++)
                cJSON_AddStringToObject(lb, t[i].labels[k].name, t[i].labels[k].value);
        }
        cJSON_AddItemToArray(tgts, o);
    }
    cJSON *allowed = cJSON_AddArrayToObject(lim, "allowed_targets");
    for (size_t i = 0; i < l->n_allowed_cidrs; i++) {
        char a[INET6_ADDRSTRLEN];
        inet_ntop(l->allowed_cidrs[i].addr.family == 4 ? AF_INET : AF_INET6,
                  l->allowed_cidrs[i].addr.bytes, a, sizeof(a));
        snprintf(text, sizeof(text), "%s/%u", a, l->allowed_cidrs[i].prefix_len);
        cJSON_AddItemToArray(allowed, cJSON_CreateString(text));
    }
    for (size_t i = 0; i < l->n_allowed_names; i++)
        cJSON_AddItemToArray(allowed, cJSON_CreateString(l->allowed_names[i]));
    cJSON_AddNumberToObject(lim, "max_echoes_per_probe", l->max_echoes_per_probe);
    cJSON_AddNumberToObject(lim, "max_concurrent_probes", l->max_concurrent_probes);
    cJSON_AddNumberToObject(lim, "max_targets_per_scrape", l->max_targets_per_scrape);
    cJSON_AddNumberToObject(lim, "max_packets_per_second", l->max_packets_per_second);
    cJSON_AddNumberToObject(lim, "max_connections", l->max_connections);
    cJSON_AddNumberToObject(lim, "max_connections_per_ip", l->max_connections_per_ip);
    snprintf(text, sizeof(text), "%gs", (double)l->request_timeout_ns / 1e9);
    cJSON_AddStringToObject(lim, "request_timeout", text);
    cJSON *listen = cJSON_AddArrayToObject(web, "listen_addresses");
    for (size_t i = 0; i < wb->n_listen_addresses; i++)
        cJSON_AddItemToArray(listen, cJSON_CreateString(wb->listen_addresses[i]));
    if (wb->tls_cert_file != NULL) {
        cJSON *tls = cJSON_AddObjectToObject(web, "tls_server_config");
        cJSON_AddStringToObject(tls, "cert_file", wb->tls_cert_file);
        cJSON_AddStringToObject(tls, "key_file", wb->tls_key_file);
    }
    if (wb->n_users > 0) {
        cJSON *users = cJSON_AddObjectToObject(web, "basic_auth_users");
        for (size_t i = 0; i < wb->n_users; i++)
            cJSON_AddStringToObject(users, wb->users[i].name, "<secret>");
    }
    json = cJSON_Print(root);
    cJSON_Delete(root);
    config_unref(cfg);
    if (json == NULL)
        return http_respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    rc = http_respond(x, conn, MHD_HTTP_OK, "application/json", json, strlen(json), false, NULL,
                      NULL);
    cJSON_free(json);
    return rc;
}
