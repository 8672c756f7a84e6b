/*
 * Dumping: a loaded configuration back to JSON, what GET /config shows.
 *
 * The schema's owner writes it, so a key added to the schema is added here in the same
 * folder. The dump is the effective configuration: every default filled in, keys in the
 * schema's order, each duration in the spelling config_parse_duration reads back, and no
 * secret (a basic-auth user's hash is "<secret>"). It is built as a cJSON tree and printed
 * by cJSON_Print, whose layout (tabs, `"key":\tvalue`) the exporter has always served.
 *
 * Out of memory: every cJSON call may fail and returns NULL (or false) when it does; a
 * failed step marks the dump failed, later steps on a NULL parent do nothing, and the
 * whole dump is refused at the end, never served half-built.
 */
#include "config/config_internal.h"

#include <cjson/cJSON.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dump {
    bool failed;
};

/* P, noting a failed step (NULL) in D. */
static cJSON *step(struct dump *d, cJSON *p)
{
    if (p == NULL)
        d->failed = true;
    return p;
}

/* Appends ITEM (consumed, may be NULL) to ARRAY. */
static void append(struct dump *d, cJSON *array, cJSON *item)
{
    if (item == NULL || !cJSON_AddItemToArray(array, item)) {
        cJSON_Delete(item);
        d->failed = true;
    }
}

static void add_duration(struct dump *d, cJSON *obj, const char *key, int64_t ns)
{
    char text[32];

    config__format_duration(ns, text, sizeof(text));
    step(d, cJSON_AddStringToObject(obj, key, text));
}

static void add_uint(struct dump *d, cJSON *obj, const char *key, unsigned v)
{
    step(d, cJSON_AddNumberToObject(obj, key, v));
}

static void add_bool(struct dump *d, cJSON *obj, const char *key, bool v)
{
    step(d, cJSON_AddBoolToObject(obj, key, v));
}

static void dump_module(struct dump *d, cJSON *modules, const struct config_module *m)
{
    cJSON *o = step(d, cJSON_AddObjectToObject(modules, m->name)), *icmp, *buckets;

    add_duration(d, o, "timeout", m->timeout_ns);
    if (m->mode == CONFIG_MODE_CONTINUOUS) { /* absent: "scrape", as the dumps before it */
        step(d, cJSON_AddStringToObject(o, "mode", "continuous"));
        add_duration(d, o, "dns_refresh", m->dns_refresh_ns);
    }
    icmp = step(d, cJSON_AddObjectToObject(o, "icmp"));
    step(d, cJSON_AddStringToObject(icmp, "preferred_ip_protocol",
                                    m->preferred_ip_protocol == 4 ? "ip4" : "ip6"));
    add_bool(d, icmp, "ip_protocol_fallback", m->ip_protocol_fallback);
    if (m->has_source_ip) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(m->source_ip.family, m->source_ip.bytes, text, sizeof(text));
        step(d, cJSON_AddStringToObject(icmp, "source_ip_address", text));
    }
    add_uint(d, icmp, "payload_size", m->payload_size);
    add_bool(d, icmp, "dont_fragment", m->dont_fragment);
    add_uint(d, icmp, "ttl", m->ttl);
    add_uint(d, icmp, "count", m->count);
    add_duration(d, icmp, "interval", m->interval_ns);
    add_duration(d, icmp, "echo_timeout", m->echo_timeout_ns);
    add_uint(d, icmp, "tos", m->tos);
    buckets = step(d, cJSON_AddArrayToObject(icmp, "buckets"));
    for (size_t k = 0; k < m->n_buckets; k++)
        append(d, buckets, cJSON_CreateNumber(m->buckets[k]));
}

static void dump_target(struct dump *d, cJSON *targets, const struct config_target *t)
{
    cJSON *o = step(d, cJSON_CreateObject());

    step(d, cJSON_AddStringToObject(o, "target", t->target));
    step(d, cJSON_AddStringToObject(o, "module", t->module->name));
    if (t->n_labels > 0) {
        cJSON *labels = step(d, cJSON_AddObjectToObject(o, "labels"));
        for (size_t k = 0; k < t->n_labels; k++)
            step(d, cJSON_AddStringToObject(labels, t->labels[k].name, t->labels[k].value));
    }
    append(d, targets, o);
}

static void dump_limits(struct dump *d, cJSON *obj, const struct config_limits *l)
{
    cJSON *allowed = step(d, cJSON_AddArrayToObject(obj, "allowed_targets"));
    const struct {
        const char *key;
        unsigned value;
    } counts[] = {
        {"max_echoes_per_probe", l->max_echoes_per_probe},
        {"max_concurrent_probes", l->max_concurrent_probes},
        {"max_targets_per_scrape", l->max_targets_per_scrape},
        {"max_packets_per_second", l->max_packets_per_second},
        {"max_connections", l->max_connections},
        {"max_connections_per_ip", l->max_connections_per_ip},
        {"max_new_connections_per_ip", l->max_new_connections_per_ip},
    };

    /* CIDRs first, then names: the two lists config_limits keeps. */
    for (size_t i = 0; i < l->n_allowed_cidrs; i++) {
        char text[64];
        config__format_cidr(&l->allowed_cidrs[i], text, sizeof(text));
        append(d, allowed, cJSON_CreateString(text));
    }
    for (size_t i = 0; i < l->n_allowed_names; i++)
        append(d, allowed, cJSON_CreateString(l->allowed_names[i]));
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
        add_uint(d, obj, counts[i].key, counts[i].value);
    add_duration(d, obj, "request_timeout", l->request_timeout_ns);
}

static void dump_web(struct dump *d, cJSON *obj, const struct config_web *w)
{
    cJSON *listen = step(d, cJSON_AddArrayToObject(obj, "listen_addresses"));

    for (size_t i = 0; i < w->n_listen_addresses; i++)
        append(d, listen, cJSON_CreateString(w->listen_addresses[i]));
    if (w->tls_cert_file != NULL) {
        cJSON *tls = step(d, cJSON_AddObjectToObject(obj, "tls_server_config"));
        step(d, cJSON_AddStringToObject(tls, "cert_file", w->tls_cert_file));
        step(d, cJSON_AddStringToObject(tls, "key_file", w->tls_key_file));
    }
    if (w->n_users > 0) {
        cJSON *users = step(d, cJSON_AddObjectToObject(obj, "basic_auth_users"));
        for (size_t i = 0; i < w->n_users; i++)
            step(d, cJSON_AddStringToObject(users, w->users[i].name, "<secret>"));
    }
}

int config_dump_json(const struct config *cfg, char **json, size_t *len)
{
    struct dump d = {false};
    cJSON *root = step(&d, cJSON_CreateObject());
    cJSON *modules = step(&d, cJSON_AddObjectToObject(root, "modules"));
    cJSON *targets = step(&d, cJSON_AddArrayToObject(root, "targets"));
    cJSON *limits = step(&d, cJSON_AddObjectToObject(root, "limits"));
    cJSON *web = step(&d, cJSON_AddObjectToObject(root, "web"));
    char *text = NULL;

    *json = NULL;
    *len = 0;
    for (size_t i = 0; i < cfg->n_modules; i++)
        dump_module(&d, modules, &cfg->modules[i]);
    for (size_t i = 0; i < cfg->n_targets; i++)
        dump_target(&d, targets, &cfg->targets[i]);
    dump_limits(&d, limits, &cfg->limits);
    dump_web(&d, web, &cfg->web);
    if (!d.failed)
        text = cJSON_Print(root);
    cJSON_Delete(root);
    if (text == NULL)
        return -ENOMEM;
    /* cJSON_Print allocates with cJSON's hooks; the caller frees with free(). */
    *len = strlen(text);
    *json = malloc(*len + 1);
    if (*json != NULL)
        memcpy(*json, text, *len + 1);
    cJSON_free(text);
    if (*json == NULL) {
        *len = 0;
        return -ENOMEM;
    }
    return 0;
}
