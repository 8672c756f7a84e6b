/*
 * The probe schema: "modules" (how to ping) and "targets" (whom /metrics pings).
 *
 * A module starts from blackbox_exporter's defaults and takes the keys given; its timing
 * is checked as a whole once all its keys are read (timeout against interval, count and
 * echo_timeout), and echo_timeout is derived from the timeout when absent. Targets are
 * parsed after every module, wherever "modules" stands in the file, since each names one;
 * duplicates are caught across the whole list at the end (same address or same name, in
 * any case, with the same module).
 *
 * A blackbox_exporter configuration (the CONFIG__BLACKBOX dialect, from YAML) goes through
 * the same functions with blackbox's key set and meanings: a module of another prober
 * (http, tcp, dns, grpc) is skipped with a warning, as are an icmp module's sections for
 * other probers (blackbox ignores them too); null, ttl 0 and payload_size 0 leave the
 * default; a module without a timeout takes the scrape's whole deadline, as in blackbox.
 */
#include "config/config_internal.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ICMP echo data: the engine's own limits (core/icmp_addr.h), so that what loads is what the
 * engine sends: 16 bytes carry its nonce and send stamp; 65507 is the most an IPv4 datagram
 * carries (65535 - 20 IP header - 8 ICMP header), IPv6 takes as much. */
#define MIN_PAYLOAD ICMP_PAYLOAD_MIN
#define MAX_PAYLOAD ICMP_PAYLOAD_MAX
/* The numbers are spelled out in parse_icmp's message too. */
_Static_assert(MIN_PAYLOAD == 16 && MAX_PAYLOAD == 65507, "update payload_size's message");
#define MAX_COUNT 1000

#define DEFAULT_TIMEOUT_NS (5LL * 1000000000LL)
/* blackbox_exporter's module without a timeout takes the scrape timeout less the offset,
 * 120 s without the header: 2m caps nothing a scrape allows, and is blackbox's fallback. */
#define BLACKBOX_DEFAULT_TIMEOUT_NS (120LL * 1000000000LL)
#define DEFAULT_INTERVAL_NS         (1000000000LL)
#define DEFAULT_DNS_REFRESH_NS      (60LL * 1000000000LL)
#define DEFAULT_PAYLOAD             28 /* what blackbox_exporter sends: "Prometheus Blackbox Exporter" */

/* 50 µs to 10 s in 1-2.5-5 steps: sub-millisecond LAN RTTs to a lossy intercontinental
 * path, with `le` values a person can read. */
static const double default_buckets[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                         0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                         0.5,     1,      2.5,     5,      10};

/* Labels the exporter sets itself ("le" is the histogram's bucket label). */
static const char *const reserved_labels[] = {"target", "module", "ip", "ip_version", "le"};

/* ---- modules ---- */

static int parse_buckets(struct loader *ld, const cJSON *item, struct config_module *m)
{
    size_t n = 0;
    const cJSON *c;

    if (!cJSON_IsArray(item))
        return config__fail_got(ld, item, "expected an array of bucket upper bounds in seconds");
    for (c = item->child; c != NULL; c = c->next)
        n++;
    if (n == 0 || n > CONFIG_MAX_BUCKETS)
        return config__fail(ld, CONFIG__AT_VALUE, "expected 1..%d bucket upper bounds, got %zu",
                            CONFIG_MAX_BUCKETS, n);
    n = 0;
    for (c = item->child; c != NULL; c = c->next, n++) {
        double v = c->valuedouble;
        int rc = 0;

        config__push_index(ld, n);
        if (!cJSON_IsNumber(c) || !isfinite(v) || v <= 0)
            rc = config__fail_got(ld, c, "expected a finite number of seconds greater than 0");
        else if (n > 0 && v <= m->buckets[n - 1])
            rc = config__fail_got(ld, c, "expected a bound greater than the previous one (%g)",
                                  m->buckets[n - 1]);
        config__pop(ld);
        if (rc != 0)
            return rc;
        m->buckets[n] = v;
    }
    m->n_buckets = n;
    return 0;
}

struct module_seen {
    bool timeout, interval, echo_timeout, dns_refresh;
};

static int parse_icmp(struct loader *ld, const cJSON *obj, struct config_module *m,
                      struct module_seen *seen)
{
    static const char *const keys[] = {"preferred_ip_protocol",
                                       "ip_protocol_fallback",
                                       "source_ip_address",
                                       "payload_size",
                                       "dont_fragment",
                                       "ttl",
                                       "count",
                                       "interval",
                                       "echo_timeout",
                                       "tos",
                                       "buckets",
                                       NULL};
    /* blackbox_exporter 0.23's ICMPProbe, and nothing more: the file stays blackbox's. */
    static const char *const blackbox_keys[] = {"preferred_ip_protocol",
                                                "ip_protocol_fallback",
                                                "source_ip_address",
                                                "payload_size",
                                                "dont_fragment",
                                                "ttl",
                                                NULL};
    bool bb = ld->dialect == CONFIG__BLACKBOX;
    int rc = config__check_object(ld, obj, bb ? blackbox_keys : keys);

    for (const cJSON *c = obj->child; rc == 0 && c != NULL; c = c->next) {
        const char *k = c->string, *s = NULL;

        /* blackbox: 0 leaves the default (its prober sends 28 bytes, and the system's TTL,
         * 64 on Linux, for payload_size and ttl 0). */
        if (config__absent(ld, c) || (bb && cJSON_IsNumber(c) && c->valuedouble == 0 &&
                                      (strcmp(k, "payload_size") == 0 || strcmp(k, "ttl") == 0)))
            continue;
        config__push_key(ld, k, 0);
        if (strcmp(k, "preferred_ip_protocol") == 0) {
            rc = config__get_string(ld, c, "\"ip4\" or \"ip6\"", &s);
            if (rc == 0 && strcmp(s, "ip4") != 0 && strcmp(s, "ip6") != 0)
                rc = config__fail_got(ld, c, "expected \"ip4\" or \"ip6\"");
            if (rc == 0)
                m->preferred_ip_protocol = s[2] == '4' ? 4 : 6;
        } else if (strcmp(k, "ip_protocol_fallback") == 0) {
            rc = config__get_bool(ld, c, &m->ip_protocol_fallback);
        } else if (strcmp(k, "source_ip_address") == 0) {
            rc = config__get_string(ld, c, "an IPv4 or IPv6 address", &s);
            if (rc == 0 && config_addr_parse(s, &m->source_ip) != 0)
                rc = config__fail_got(ld, c, "expected an IPv4 or IPv6 address");
            m->has_source_ip = rc == 0;
        } else if (strcmp(k, "payload_size") == 0) {
            rc = config__get_uint(ld, c, MIN_PAYLOAD, MAX_PAYLOAD,
                                  " (16 bytes carry the probe's nonce and timestamp; 65507 is the "
                                  "largest IPv4 echo payload)",
                                  &m->payload_size);
        } else if (strcmp(k, "dont_fragment") == 0) {
            rc = config__get_bool(ld, c, &m->dont_fragment);
        } else if (strcmp(k, "ttl") == 0) {
            rc = config__get_uint(ld, c, 1, 255, "", &m->ttl);
        } else if (strcmp(k, "count") == 0) {
            rc = config__get_uint(ld, c, 1, MAX_COUNT, "", &m->count);
        } else if (strcmp(k, "interval") == 0) {
            rc = config__get_duration(ld, c, &m->interval_ns);
            seen->interval = true;
        } else if (strcmp(k, "echo_timeout") == 0) {
            rc = config__get_duration(ld, c, &m->echo_timeout_ns);
            seen->echo_timeout = true;
        } else if (strcmp(k, "tos") == 0) {
            rc = config__get_uint(ld, c, 0, 255, "", &m->tos);
        } else {
            rc = parse_buckets(ld, c, m);
        }
        config__pop(ld);
    }
    return rc;
}

/* timeout >= interval x (count - 1) + echo_timeout; echo_timeout derived when absent. */
static int check_timing(struct loader *ld, struct config_module *m, const struct module_seen *seen)
{
    char t[32], i[32], e[32], s[32];
    int64_t spent = m->interval_ns * (int64_t)(m->count - 1);
    const char *dflt = seen->timeout ? "" : " (the default)";
    int rc = 0;

    config__format_duration(m->timeout_ns, t, sizeof(t));
    config__format_duration(m->interval_ns, i, sizeof(i));
    config__format_duration(spent, s, sizeof(s));
    config__push_key(ld, "timeout", 0);
    if (seen->echo_timeout) {
        config__format_duration(m->echo_timeout_ns, e, sizeof(e));
        if (m->timeout_ns < spent + m->echo_timeout_ns) {
            char need[32];
            config__format_duration(spent + m->echo_timeout_ns, need, sizeof(need));
            rc = config__fail(ld, CONFIG__AT_VALUE,
                              "timeout %s%s is shorter than interval %s * (count %u - 1) + "
                              "echo_timeout %s = %s",
                              t, dflt, i, m->count, e, need);
        }
    } else if (m->timeout_ns <= spent) {
        rc = config__fail(ld, CONFIG__AT_VALUE,
                          "timeout %s%s leaves no time to wait for the last echo: interval %s * "
                          "(count %u - 1) = %s; raise timeout, or lower interval or count",
                          t, dflt, i, m->count, s);
    } else {
        m->echo_timeout_ns = m->timeout_ns - spent;
    }
    config__pop(ld);
    return rc;
}

/*
 * A continuous module sends one echo per target every interval, each waiting echo_timeout:
 * count must be 1 (the period is the interval); echo_timeout is given, or the timeout
 * given, or else the interval (an echo waits until the next is sent); an echo may wait at
 * most CONFIG_CONTINUOUS_MAX_WAIT intervals, which bounds the echoes a target has in flight.
 * A /probe of the module sends one echo and waits echo_timeout (the timeout when given).
 */
static int check_continuous(struct loader *ld, struct config_module *m,
                            const struct module_seen *seen)
{
    char i[32], e[32], t[32];
    int rc = 0;

    config__format_duration(m->interval_ns, i, sizeof(i));
    config__push_key(ld, "icmp", 0);
    if (m->count != 1) {
        config__push_key(ld, "count", 0);
        rc = config__fail(ld, CONFIG__AT_VALUE,
                          "count %u in a continuous module: it sends one echo per target every "
                          "interval; set the period with interval (%s), and count 1",
                          m->count, i);
        config__pop(ld);
    }
    if (rc == 0 && !seen->echo_timeout)
        m->echo_timeout_ns = seen->timeout ? m->timeout_ns : m->interval_ns;
    config__format_duration(m->echo_timeout_ns, e, sizeof(e));
    config__format_duration(m->timeout_ns, t, sizeof(t));
    if (rc == 0 && seen->echo_timeout && seen->timeout && m->timeout_ns < m->echo_timeout_ns) {
        config__push_key(ld, "echo_timeout", 0);
        rc = config__fail(ld, CONFIG__AT_VALUE, "echo_timeout %s is longer than the timeout %s", e,
                          t);
        config__pop(ld);
    }
    if (rc == 0 && m->echo_timeout_ns > CONFIG_CONTINUOUS_MAX_WAIT * m->interval_ns) {
        config__push_key(ld, seen->echo_timeout ? "echo_timeout" : "interval", 0);
        rc =
            config__fail(ld, CONFIG__AT_VALUE,
                         "a continuous module's echo waits at most %d intervals: echo_timeout %s%s "
                         "is longer than %d x interval %s; lower it, or raise interval",
                         CONFIG_CONTINUOUS_MAX_WAIT, e, seen->echo_timeout ? "" : " (the timeout)",
                         CONFIG_CONTINUOUS_MAX_WAIT, i);
        config__pop(ld);
    }
    config__pop(ld);
    if (rc == 0 && !seen->timeout)
        m->timeout_ns = m->echo_timeout_ns;
    return rc;
}

static void module_defaults(struct config_module *m, bool blackbox)
{
    m->mode = CONFIG_MODE_SCRAPE;
    m->dns_refresh_ns = DEFAULT_DNS_REFRESH_NS;
    m->timeout_ns = blackbox ? BLACKBOX_DEFAULT_TIMEOUT_NS : DEFAULT_TIMEOUT_NS;
    m->preferred_ip_protocol = 6;
    m->ip_protocol_fallback = true;
    m->payload_size = DEFAULT_PAYLOAD;
    m->ttl = 64;
    m->count = 1;
    m->interval_ns = DEFAULT_INTERVAL_NS;
    m->tos = 0;
    m->n_buckets = sizeof(default_buckets) / sizeof(default_buckets[0]);
    memcpy(m->buckets, default_buckets, sizeof(default_buckets));
}

/* blackbox_exporter's probers: icmp is read, the others are skipped. */
static const char *const blackbox_probers[] = {"http", "tcp", "dns", "grpc", NULL};

static bool is_other_prober(const char *s)
{
    for (size_t i = 0; blackbox_probers[i] != NULL; i++) {
        if (strcmp(s, blackbox_probers[i]) == 0)
            return true;
    }
    return false;
}

/*
 * A blackbox module's prober, which it must have (blackbox fails every probe of a module
 * without one). Sets *skip for http, tcp, dns and grpc, with a warning.
 */
static int blackbox_prober(struct loader *ld, const cJSON *obj, bool *skip)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, "prober");
    const char *s = NULL;
    int rc;

    if (c == NULL || cJSON_IsNull(c))
        return config__fail(ld, CONFIG__AT_KEY,
                            "missing key \"prober\" (icmp; http, tcp, dns and grpc modules are "
                            "skipped)");
    config__push_key(ld, "prober", 0);
    rc = config__get_string(ld, c, "\"icmp\", \"http\", \"tcp\", \"dns\" or \"grpc\"", &s);
    if (rc == 0 && strcmp(s, "icmp") != 0 && !is_other_prober(s))
        rc = config__fail_got(ld, c,
                              "expected \"icmp\", or \"http\", \"tcp\", \"dns\" or \"grpc\" "
                              "(skipped)");
    config__pop(ld);
    if (rc == 0 && strcmp(s, "icmp") != 0) {
        *skip = true;
        rc = config__warn(ld, CONFIG__AT_KEY,
                          "skipped: prober \"%s\" (icmp_exporter runs icmp modules only)", s);
    }
    return rc;
}

static int parse_module(struct loader *ld, const cJSON *obj, struct config_module *m, bool *skip)
{
    static const char *const keys[] = {"prober", "timeout", "icmp", "mode", "dns_refresh", NULL};
    static const char *const blackbox_keys[] = {"prober", "timeout", "http", "tcp",
                                                "dns",    "icmp",    "grpc", NULL};
    struct module_seen seen = {false, false, false, false};
    bool bb = ld->dialect == CONFIG__BLACKBOX;
    int rc = config__check_object(ld, obj, bb ? blackbox_keys : keys);

    module_defaults(m, bb);
    *skip = false;
    if (rc == 0 && bb)
        rc = blackbox_prober(ld, obj, skip);
    for (const cJSON *c = obj->child; rc == 0 && !*skip && c != NULL; c = c->next) {
        const char *s = NULL;

        if (config__absent(ld, c))
            continue;
        config__push_key(ld, c->string, 0);
        if (strcmp(c->string, "prober") == 0) {
            rc = config__get_string(ld, c, "\"icmp\"", &s);
            if (rc == 0 && strcmp(s, "icmp") != 0)
                rc =
                    config__fail_got(ld, c, "expected \"icmp\" (the only prober of this exporter)");
        } else if (strcmp(c->string, "timeout") == 0) {
            int64_t t = 0;
            rc = config__get_duration(ld, c, &t);
            if (rc == 0 && t > 0) { /* blackbox: 0s is no timeout */
                m->timeout_ns = t;
                seen.timeout = true;
            }
        } else if (strcmp(c->string, "icmp") == 0) {
            rc = parse_icmp(ld, c, m, &seen);
        } else if (strcmp(c->string, "mode") == 0) {
            rc = config__get_string(ld, c, "\"scrape\" or \"continuous\"", &s);
            if (rc == 0 && strcmp(s, "scrape") != 0 && strcmp(s, "continuous") != 0)
                rc = config__fail_got(ld, c, "expected \"scrape\" or \"continuous\"");
            if (rc == 0)
                m->mode = s[0] == 'c' ? CONFIG_MODE_CONTINUOUS : CONFIG_MODE_SCRAPE;
        } else if (strcmp(c->string, "dns_refresh") == 0) {
            rc = config__get_duration(ld, c, &m->dns_refresh_ns);
            seen.dns_refresh = true;
        } else {
            rc = config__warn(ld, CONFIG__AT_KEY,
                              "ignored: the module's prober is icmp (blackbox_exporter ignores "
                              "it too)");
        }
        config__pop(ld);
    }
    if (rc != 0 || *skip)
        return rc;
    if (seen.dns_refresh && m->mode != CONFIG_MODE_CONTINUOUS) {
        config__push_key(ld, "dns_refresh", 0);
        rc = config__fail(ld, CONFIG__AT_KEY,
                          "dns_refresh is for continuous modules (\"mode\": \"continuous\"); a "
                          "scrape module's names are looked up at each probe");
        config__pop(ld);
        return rc;
    }
    return m->mode == CONFIG_MODE_CONTINUOUS ? check_continuous(ld, m, &seen)
                                             : check_timing(ld, m, &seen);
}

static bool valid_module_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 128)
        return false;
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    }
    return true;
}

/* One member of "modules": its name (the key), then the module. */
static int parse_named_module(struct loader *ld, const cJSON *obj, size_t i, void *arg)
{
    struct config_module *m = (struct config_module *)arg + i;
    bool skip = false;
    int rc = 0;

    if (!valid_module_name(obj->string))
        rc = config__fail(ld, CONFIG__AT_KEY,
                          "expected a module name of 1..128 characters without control characters");
    if (rc == 0)
        rc = parse_module(ld, obj, m, &skip);
    /* A skipped module keeps no name: config__parse_modules drops it. */
    if (rc == 0 && !skip && (m->name = config__arena_strdup(ld->cfg, obj->string)) == NULL)
        rc = config__fail_oom(ld);
    return rc;
}

int config__parse_modules(struct loader *ld, const cJSON *obj)
{
    struct config *cfg = ld->cfg;
    size_t kept = 0;
    int rc;

    if (config__absent(ld, obj))
        return 0;
    cfg->modules = config__collect(ld, obj, NULL, sizeof(*cfg->modules), parse_named_module,
                                   &cfg->n_modules, &rc);
    for (size_t i = 0; rc == 0 && i < cfg->n_modules; i++) {
        if (cfg->modules[i].name != NULL)
            cfg->modules[kept++] = cfg->modules[i];
    }
    if (rc == 0)
        cfg->n_modules = kept;
    return rc;
}

/* ---- targets ---- */

static bool valid_label_name(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (s++; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    }
    return true;
}

/* One member of "labels": a Prometheus label name we do not set ourselves, a string. */
static int parse_label(struct loader *ld, const cJSON *c, size_t i, void *arg)
{
    struct config_label *label = (struct config_label *)arg + i;
    const char *value = NULL;
    char q[160];
    int rc = 0;

    config__quote(c->string, q, sizeof(q));
    if (!valid_label_name(c->string)) {
        rc = config__fail(ld, CONFIG__AT_KEY,
                          "expected a label name matching [a-zA-Z_][a-zA-Z0-9_]*, got %s", q);
    } else if (strncmp(c->string, "__", 2) == 0) {
        rc = config__fail(ld, CONFIG__AT_KEY,
                          "label name %s starts with \"__\", which Prometheus reserves for itself",
                          q);
    } else {
        for (size_t r = 0; r < sizeof(reserved_labels) / sizeof(reserved_labels[0]); r++) {
            if (strcmp(c->string, reserved_labels[r]) == 0)
                rc = config__fail(ld, CONFIG__AT_KEY,
                                  "label name %s is reserved: the exporter sets target, module, "
                                  "ip, ip_version and le itself",
                                  q);
        }
    }
    if (rc == 0)
        rc = config__get_string(ld, c, "a string label value", &value);
    if (rc == 0) {
        label->name = config__arena_strdup(ld->cfg, c->string);
        label->value = config__arena_strdup(ld->cfg, value);
        if (label->name == NULL || label->value == NULL)
            rc = config__fail_oom(ld);
    }
    return rc;
}

static int parse_labels(struct loader *ld, const cJSON *obj, struct config_target *t)
{
    int rc;

    t->labels = config__collect(ld, obj, NULL, sizeof(*t->labels), parse_label, &t->n_labels, &rc);
    return rc;
}

static int parse_target(struct loader *ld, const cJSON *obj, struct config_target *t)
{
    static const char *const keys[] = {"target", "module", "labels", NULL};
    struct config *cfg = ld->cfg;
    const char *module = NULL;
    int rc = config__check_object(ld, obj, keys);

    for (const cJSON *c = obj->child; rc == 0 && c != NULL; c = c->next) {
        const char *s = NULL, *why;

        config__push_key(ld, c->string, 0);
        if (strcmp(c->string, "target") == 0) {
            rc = config__get_string(ld, c, "an IP address or a host name", &s);
            if (rc == 0 && (why = config__parse_host(s, &t->addr, &t->is_literal)) != NULL)
                rc = config__fail_got(ld, c, "expected an IP address or a host name (%s)", why);
            if (rc == 0 && (t->target = config__arena_strdup(cfg, s)) == NULL)
                rc = config__fail_oom(ld);
        } else if (strcmp(c->string, "module") == 0) {
            rc = config__get_string(ld, c, "a module name", &module);
        } else {
            rc = parse_labels(ld, c, t);
        }
        config__pop(ld);
    }
    if (rc != 0)
        return rc;
    if (t->target == NULL)
        return config__fail(ld, CONFIG__AT_VALUE,
                            "missing key \"target\" (an IP address or a host name)");
    t->module = config_module_find(cfg, module != NULL ? module : "icmp");
    if (t->module == NULL) {
        char q[160], list[512];
        size_t used = 0;

        config__quote(module != NULL ? module : "icmp", q, sizeof(q));
        list[0] = '\0';
        for (size_t i = 0; i < cfg->n_modules; i++)
            config__append(list, sizeof(list), &used, "%s%s", i > 0 ? ", " : "",
                           cfg->modules[i].name);
        config__push_key(ld, "module", 0);
        rc = config__fail(ld, CONFIG__AT_VALUE, "unknown module %s%s (defined: %s)", q,
                          module != NULL ? "" : ", the default", used > 0 ? list : "none");
        config__pop(ld);
    }
    return rc;
}

/* Target identity for duplicates: the address for literals, else the lower-case name. */
struct target_key {
    char key[256];
    const char *module;
    size_t index;
};

static int compare_target_keys(const void *a, const void *b)
{
    const struct target_key *x = a, *y = b;
    int c = strcmp(x->module, y->module);
    if (c == 0)
        c = strcmp(x->key, y->key);
    return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

static int check_duplicate_targets(struct loader *ld)
{
    const struct config *cfg = ld->cfg;
    struct target_key *keys;
    size_t n = cfg->n_targets, dup_at = SIZE_MAX, dup_first = 0;
    int rc = 0;

    if (n < 2)
        return 0;
    keys = calloc(n, sizeof(*keys));
    if (keys == NULL)
        return config__fail_oom(ld);
    for (size_t i = 0; i < n; i++) {
        const struct config_target *t = &cfg->targets[i];
        struct target_key *k = &keys[i];
        k->module = t->module->name;
        k->index = i;
        if (t->is_literal) {
            k->key[0] = t->addr.family == AF_INET ? '4' : '6';
            for (size_t j = 0; j < 16; j++)
                snprintf(k->key + 1 + 2 * j, 3, "%02x", t->addr.bytes[j]);
        } else {
            snprintf(k->key, sizeof(k->key), "%s", t->target);
            config__fold_name(k->key);
        }
    }
    qsort(keys, n, sizeof(*keys), compare_target_keys);
    for (size_t j = 1, group = 0; j < n; j++) {
        if (strcmp(keys[j].module, keys[group].module) != 0 ||
            strcmp(keys[j].key, keys[group].key) != 0) {
            group = j;
        } else if (keys[j].index < dup_at) {
            dup_at = keys[j].index;
            dup_first = keys[group].index;
        }
    }
    if (dup_at != SIZE_MAX) {
        char qt[160], qm[160];
        config__quote(cfg->targets[dup_at].target, qt, sizeof(qt));
        config__quote(cfg->targets[dup_at].module->name, qm, sizeof(qm));
        config__push_index(ld, dup_at);
        rc = config__fail(ld, CONFIG__AT_VALUE,
                          "duplicate of targets[%zu]: target %s with module %s", dup_first, qt, qm);
        config__pop(ld);
    }
    free(keys);
    return rc;
}

static int parse_target_member(struct loader *ld, const cJSON *obj, size_t i, void *arg)
{
    return parse_target(ld, obj, (struct config_target *)arg + i);
}

int config__parse_targets(struct loader *ld, const cJSON *arr)
{
    struct config *cfg = ld->cfg;
    int rc;

    cfg->targets = config__collect(ld, arr, "targets", sizeof(*cfg->targets), parse_target_member,
                                   &cfg->n_targets, &rc);
    return rc != 0 ? rc : check_duplicate_targets(ld);
}
