/*
 * Loading: text -> strict syntax check -> cJSON tree -> validated, immutable struct config.
 *
 * Model. The loader walks the cJSON tree keeping the JSON path it stands on; every check
 * that fails calls fail(), which finds the offending value (or key) in the source text
 * again by that path (config__locate) and writes `FILE:LINE:COL: PATH: MESSAGE`. Only the
 * first error is reported: each step returns at once, so the message is always about the
 * first problem in a fixed order (the top-level keys, then modules, targets, limits, web;
 * inside an object its unknown or duplicate keys first, then its members in document
 * order, then checks across members).
 *
 * Everything a config holds lives in one arena freed at once, so a half-built config on
 * an error path is released by one call, and a loaded config is never written again
 * (only its atomic reference count changes).
 */
#include "config/config_internal.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_MAX_DEPTH 8 /* deepest path we name: modules.M.icmp.buckets[i] is 5 */

/* Durations are bounded: a probe longer than an hour makes no sense, and the bound keeps
 * interval x (count - 1) + echo_timeout far from overflow. */
#define MAX_DURATION_NS (3600LL * 1000000000LL)

/* ICMP echo data: the engine's nonce and send stamp take 16 bytes; 65507 is the most an
 * IPv4 datagram carries (65535 - 20 IP header - 8 ICMP header), IPv6 takes as much. */
#define MIN_PAYLOAD 16
#define MAX_PAYLOAD 65507
#define MAX_COUNT   1000
#define MAX_LIMIT   1000000

#define DEFAULT_TIMEOUT_NS  (5LL * 1000000000LL)
#define DEFAULT_INTERVAL_NS (1000000000LL)
#define DEFAULT_PAYLOAD     28 /* what blackbox_exporter sends: "Prometheus Blackbox Exporter" */
#define DEFAULT_LISTEN      ":9723"

/* 50 µs to 10 s in 1-2.5-5 steps: sub-millisecond LAN RTTs to a lossy intercontinental
 * path, with `le` values a person can read. */
static const double default_buckets[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                         0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                         0.5,     1,      2.5,     5,      10};

/* Labels the exporter sets itself ("le" is the histogram's bucket label). */
static const char *const reserved_labels[] = {"target", "module", "ip", "ip_version", "le"};

struct arena_block {
    struct arena_block *next;
    size_t used, size;
    max_align_t data[];
};

struct config {
    atomic_size_t refs;
    struct arena_block *arena;
    struct config_module *modules;
    size_t n_modules;
    struct config_target *targets;
    size_t n_targets;
    struct config_limits limits;
    struct config_web web;
};

struct loader {
    const char *name; /* file name for messages */
    const char *text;
    size_t len;
    const char *base_dir; /* relative TLS paths are resolved against it; NULL: as given */
    char *err;
    size_t errlen;
    struct config *cfg;
    struct config__path_elem path[PATH_MAX_DEPTH];
    size_t depth;
};

/* ---- arena ---- */

static void *arena_alloc(struct config *cfg, size_t size)
{
    struct arena_block *b = cfg->arena;
    size_t align = alignof(max_align_t);

    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + align - 1) / align * align;
    if (b == NULL || b->size - b->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->next = cfg->arena;
        b->used = 0;
        b->size = cap;
        cfg->arena = b;
    }
    void *p = (unsigned char *)b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

static void *arena_array(struct config *cfg, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    if (n > SIZE_MAX / size)
        return NULL;
    return arena_alloc(cfg, n * size);
}

static char *arena_strdup(struct config *cfg, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(cfg, n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    while (cfg->arena != NULL) {
        struct arena_block *next = cfg->arena->next;
        free(cfg->arena);
        cfg->arena = next;
    }
    free(cfg);
}

/* ---- paths and errors ---- */

static void push_key(struct loader *ld, const char *key, unsigned occurrence)
{
    if (ld->depth < PATH_MAX_DEPTH)
        ld->path[ld->depth] = (struct config__path_elem){key, 0, occurrence};
    ld->depth++;
}

static void push_index(struct loader *ld, size_t index)
{
    if (ld->depth < PATH_MAX_DEPTH)
        ld->path[ld->depth] = (struct config__path_elem){NULL, index, 0};
    ld->depth++;
}

static void pop(struct loader *ld)
{
    ld->depth--;
}

/* Appends to buf[*used..size), never overflowing; output is cut at the end. */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t size, size_t *used,
                                                         const char *fmt, ...)
{
    va_list ap;
    int w;

    if (*used >= size)
        return;
    va_start(ap, fmt);
    w = vsnprintf(buf + *used, size - *used, fmt, ap);
    va_end(ap);
    if (w > 0)
        *used = (size_t)w >= size - *used ? size : *used + (size_t)w;
}

/* S as a double-quoted string safe for a terminal: escapes, cut after 64 bytes. */
static void quote(const char *s, char *buf, size_t size)
{
    size_t used = 0, i;

    append(buf, size, &used, "\"");
    for (i = 0; s[i] != '\0' && i < 64; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            append(buf, size, &used, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            append(buf, size, &used, "\\x%02x", c);
        else
            append(buf, size, &used, "%c", c);
    }
    append(buf, size, &used, s[i] != '\0' ? "\"..." : "\"");
}

static bool is_simple_key(const char *k)
{
    if (*k == '\0')
        return false;
    for (; *k != '\0'; k++) {
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') ||
              *k == '_' || *k == '-'))
            return false;
    }
    return true;
}

static void format_path(const struct loader *ld, char *buf, size_t size)
{
    size_t used = 0, depth = ld->depth < PATH_MAX_DEPTH ? ld->depth : PATH_MAX_DEPTH;

    buf[0] = '\0';
    if (depth == 0)
        append(buf, size, &used, "(root)");
    for (size_t i = 0; i < depth; i++) {
        const struct config__path_elem *e = &ld->path[i];
        if (e->key == NULL) {
            append(buf, size, &used, "[%zu]", e->index);
        } else if (is_simple_key(e->key)) {
            append(buf, size, &used, "%s%s", i > 0 ? "." : "", e->key);
        } else {
            char q[160];
            quote(e->key, q, sizeof(q));
            append(buf, size, &used, "[%s]", q);
        }
    }
}

/* Offset of the current path's value (or key), else of its nearest existing ancestor. */
static size_t current_offset(const struct loader *ld, bool want_key)
{
    size_t depth = ld->depth < PATH_MAX_DEPTH ? ld->depth : PATH_MAX_DEPTH, offset = 0;

    for (size_t d = depth + 1; d-- > 0;) {
        if (config__locate(ld->text, ld->len, ld->path, d, want_key && d == depth && d > 0,
                           &offset) == 0)
            return offset;
    }
    return 0;
}

static void write_error(const struct loader *ld, size_t offset, const char *path, const char *msg)
{
    unsigned line, col;

    if (ld->err == NULL || ld->errlen == 0)
        return;
    config__line_col(ld->text, ld->len, offset, &line, &col);
    snprintf(ld->err, ld->errlen, "%s:%u:%u: %s: %s", ld->name, line, col, path, msg);
}

/* Reports an error at the current path (its key with AT_KEY) and returns -EINVAL. */
enum where { AT_VALUE, AT_KEY };
__attribute__((format(printf, 3, 4))) static int fail(struct loader *ld, enum where where,
                                                      const char *fmt, ...)
{
    char msg[768], path[384];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    format_path(ld, path, sizeof(path));
    write_error(ld, current_offset(ld, where == AT_KEY), path, msg);
    return -EINVAL;
}

static int fail_oom(struct loader *ld)
{
    if (ld->err != NULL && ld->errlen > 0)
        snprintf(ld->err, ld->errlen, "%s: out of memory", ld->name);
    return -ENOMEM;
}

/* What ITEM (at the current path) is, for "got ...": numbers as written in the text. */
static void describe(const struct loader *ld, const cJSON *item, char *buf, size_t size)
{
    if (cJSON_IsString(item)) {
        quote(item->valuestring, buf, size);
    } else if (cJSON_IsNumber(item)) {
        size_t at = current_offset(ld, false), n = 0;
        while (at + n < ld->len && n < 40 && strchr("+-.eE0123456789", ld->text[at + n]) &&
               ld->text[at + n] != '\0')
            n++;
        if (n == 0)
            snprintf(buf, size, "%g", item->valuedouble);
        else
            snprintf(buf, size, "%.*s%s", (int)n, ld->text + at, n == 40 ? "..." : "");
    } else if (cJSON_IsTrue(item)) {
        snprintf(buf, size, "true");
    } else if (cJSON_IsFalse(item)) {
        snprintf(buf, size, "false");
    } else if (cJSON_IsNull(item)) {
        snprintf(buf, size, "null");
    } else if (cJSON_IsArray(item)) {
        snprintf(buf, size, "an array");
    } else {
        snprintf(buf, size, "an object");
    }
}

/* fail() with ", got <ITEM>" appended. */
__attribute__((format(printf, 3, 4))) static int fail_got(struct loader *ld, const cJSON *item,
                                                          const char *fmt, ...)
{
    char msg[640], got[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    describe(ld, item, got, sizeof(got));
    return fail(ld, AT_VALUE, "%s, got %s", msg, got);
}

/* ---- objects: unknown and duplicate keys ---- */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];

    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

static int unknown_key(struct loader *ld, const char *key, const char *const *allowed)
{
    char q[160], list[512];
    size_t used = 0, best = SIZE_MAX;
    const char *suggestion = NULL;

    quote(key, q, sizeof(q));
    list[0] = '\0';
    for (size_t i = 0; allowed[i] != NULL; i++) {
        size_t d = edit_distance(key, allowed[i]);
        if (d < best) {
            best = d;
            suggestion = allowed[i];
        }
        append(list, sizeof(list), &used, "%s%s", i > 0 ? ", " : "", allowed[i]);
    }
    if (suggestion != NULL && best <= 2 && strlen(key) >= 3)
        return fail(ld, AT_KEY, "unknown key %s; did you mean \"%s\"?", q, suggestion);
    return fail(ld, AT_KEY, "unknown key %s; expected one of: %s", q, list);
}

struct member_ref {
    const char *name;
    size_t index;
};

static int compare_members(const void *a, const void *b)
{
    const struct member_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/*
 * OBJ (at the current path) must be an object with no duplicate keys and, unless ALLOWED
 * is NULL (a map of free names), only ALLOWED keys. The first offender in document order
 * is reported. Sorting keeps this O(n log n) for big maps.
 */
static int check_object(struct loader *ld, const cJSON *obj, const char *const *allowed)
{
    struct member_ref *refs = NULL;
    size_t n = 0, i = 0, unknown_at = SIZE_MAX, dup_at = SIZE_MAX, dup_first = 0;
    unsigned dup_occurrence = 0;
    const cJSON *c;
    int rc = 0;

    if (!cJSON_IsObject(obj))
        return fail_got(ld, obj, "expected an object");
    for (c = obj->child; c != NULL; c = c->next)
        n++;
    for (c = obj->child, i = 0; allowed != NULL && c != NULL; c = c->next, i++) {
        size_t k = 0;
        while (allowed[k] != NULL && strcmp(allowed[k], c->string) != 0)
            k++;
        if (allowed[k] == NULL) {
            unknown_at = i;
            break;
        }
    }
    if (n >= 2) {
        refs = calloc(n, sizeof(*refs));
        if (refs == NULL)
            return fail_oom(ld);
        for (c = obj->child, i = 0; c != NULL; c = c->next, i++)
            refs[i] = (struct member_ref){c->string, i};
        qsort(refs, n, sizeof(*refs), compare_members);
        for (size_t j = 1, group = 0; j < n; j++) {
            if (strcmp(refs[j].name, refs[group].name) != 0) {
                group = j;
            } else if (refs[j].index < dup_at) {
                dup_at = refs[j].index;
                dup_first = refs[group].index;
                dup_occurrence = (unsigned)(j - group);
            }
        }
    }
    if (dup_at < unknown_at) {
        const char *name = NULL;
        char q[160];
        size_t first_offset = 0;
        unsigned line, col;

        for (c = obj->child, i = 0; c != NULL; c = c->next, i++) {
            if (i == dup_at)
                name = c->string;
        }
        push_key(ld, name, 0);
        first_offset = current_offset(ld, true);
        pop(ld);
        config__line_col(ld->text, ld->len, first_offset, &line, &col);
        quote(name, q, sizeof(q));
        push_key(ld, name, dup_occurrence);
        rc = fail(ld, AT_KEY, "duplicate key %s (first given at %u:%u, member %zu)", q, line, col,
                  dup_first);
        pop(ld);
    } else if (unknown_at != SIZE_MAX) {
        for (c = obj->child, i = 0; i < unknown_at; c = c->next, i++)
            ;
        push_key(ld, c->string, 0);
        rc = unknown_key(ld, c->string, allowed);
        pop(ld);
    }
    free(refs);
    return rc;
}

/* ---- scalars ---- */

static int get_string(struct loader *ld, const cJSON *item, const char *what, const char **out)
{
    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return fail_got(ld, item, "expected %s", what);
    *out = item->valuestring;
    return 0;
}

static int get_bool(struct loader *ld, const cJSON *item, bool *out)
{
    if (!cJSON_IsBool(item))
        return fail_got(ld, item, "expected true or false");
    *out = cJSON_IsTrue(item);
    return 0;
}

/* An integer in lo..hi: cJSON's valueint saturates, so the double is checked. */
static int get_uint(struct loader *ld, const cJSON *item, unsigned lo, unsigned hi, const char *why,
                    unsigned *out)
{
    double v = item->valuedouble;

    if (!cJSON_IsNumber(item) || !(v >= lo && v <= hi) || (double)(unsigned)v != v)
        return fail_got(ld, item, "expected an integer in %u..%u%s", lo, hi, why);
    *out = (unsigned)v;
    return 0;
}

static int get_duration(struct loader *ld, const cJSON *item, int64_t *out)
{
    int64_t ns = 0;
    int rc;

    if (!cJSON_IsString(item))
        return fail_got(ld, item, "expected a duration such as \"250ms\", \"1s\" or \"1m30s\"");
    rc = config_parse_duration(item->valuestring, &ns);
    if (rc == -EINVAL)
        return fail_got(ld, item, "expected a duration such as \"250ms\", \"1s\" or \"1m30s\"");
    if (rc == 0 && ns == 0)
        return fail_got(ld, item, "expected a duration greater than 0");
    if (rc != 0 || ns > MAX_DURATION_NS)
        return fail_got(ld, item, "expected a duration of at most 1h");
    *out = ns;
    return 0;
}

/* ---- modules ---- */

static int parse_buckets(struct loader *ld, const cJSON *item, struct config_module *m)
{
    size_t n = 0;
    const cJSON *c;

    if (!cJSON_IsArray(item))
        return fail_got(ld, item, "expected an array of bucket upper bounds in seconds");
    for (c = item->child; c != NULL; c = c->next)
        n++;
    if (n == 0 || n > CONFIG_MAX_BUCKETS)
        return fail(ld, AT_VALUE, "expected 1..%d bucket upper bounds, got %zu", CONFIG_MAX_BUCKETS,
                    n);
    n = 0;
    for (c = item->child; c != NULL; c = c->next, n++) {
        double v = c->valuedouble;
        int rc = 0;

        push_index(ld, n);
        if (!cJSON_IsNumber(c) || !isfinite(v) || v <= 0)
            rc = fail_got(ld, c, "expected a finite number of seconds greater than 0");
        else if (n > 0 && v <= m->buckets[n - 1])
            rc = fail_got(ld, c, "expected a bound greater than the previous one (%g)",
                          m->buckets[n - 1]);
        pop(ld);
        if (rc != 0)
            return rc;
        m->buckets[n] = v;
    }
    m->n_buckets = n;
    return 0;
}

struct module_seen {
    bool timeout, interval, echo_timeout;
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
    int rc = check_object(ld, obj, keys);

    for (const cJSON *c = obj->child; rc == 0 && c != NULL; c = c->next) {
        const char *k = c->string, *s = NULL;

        push_key(ld, k, 0);
        if (strcmp(k, "preferred_ip_protocol") == 0) {
            rc = get_string(ld, c, "\"ip4\" or \"ip6\"", &s);
            if (rc == 0 && strcmp(s, "ip4") != 0 && strcmp(s, "ip6") != 0)
                rc = fail_got(ld, c, "expected \"ip4\" or \"ip6\"");
            if (rc == 0)
                m->preferred_ip_protocol = s[2] == '4' ? 4 : 6;
        } else if (strcmp(k, "ip_protocol_fallback") == 0) {
            rc = get_bool(ld, c, &m->ip_protocol_fallback);
        } else if (strcmp(k, "source_ip_address") == 0) {
            rc = get_string(ld, c, "an IPv4 or IPv6 address", &s);
            if (rc == 0 && config_addr_parse(s, &m->source_ip) != 0)
                rc = fail_got(ld, c, "expected an IPv4 or IPv6 address");
            m->has_source_ip = rc == 0;
        } else if (strcmp(k, "payload_size") == 0) {
            rc = get_uint(ld, c, MIN_PAYLOAD, MAX_PAYLOAD,
                          " (16 bytes carry the probe's nonce and timestamp; 65507 is the "
                          "largest IPv4 echo payload)",
                          &m->payload_size);
        } else if (strcmp(k, "dont_fragment") == 0) {
            rc = get_bool(ld, c, &m->dont_fragment);
        } else if (strcmp(k, "ttl") == 0) {
            rc = get_uint(ld, c, 1, 255, "", &m->ttl);
        } else if (strcmp(k, "count") == 0) {
            rc = get_uint(ld, c, 1, MAX_COUNT, "", &m->count);
        } else if (strcmp(k, "interval") == 0) {
            rc = get_duration(ld, c, &m->interval_ns);
            seen->interval = true;
        } else if (strcmp(k, "echo_timeout") == 0) {
            rc = get_duration(ld, c, &m->echo_timeout_ns);
            seen->echo_timeout = true;
        } else if (strcmp(k, "tos") == 0) {
            rc = get_uint(ld, c, 0, 255, "", &m->tos);
        } else {
            rc = parse_buckets(ld, c, m);
        }
        pop(ld);
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
    push_key(ld, "timeout", 0);
    if (seen->echo_timeout) {
        config__format_duration(m->echo_timeout_ns, e, sizeof(e));
        if (m->timeout_ns < spent + m->echo_timeout_ns) {
            char need[32];
            config__format_duration(spent + m->echo_timeout_ns, need, sizeof(need));
            rc = fail(ld, AT_VALUE,
                      "timeout %s%s is shorter than interval %s * (count %u - 1) + "
                      "echo_timeout %s = %s",
                      t, dflt, i, m->count, e, need);
        }
    } else if (m->timeout_ns <= spent) {
        rc = fail(ld, AT_VALUE,
                  "timeout %s%s leaves no time to wait for the last echo: interval %s * "
                  "(count %u - 1) = %s; raise timeout, or lower interval or count",
                  t, dflt, i, m->count, s);
    } else {
        m->echo_timeout_ns = m->timeout_ns - spent;
    }
    pop(ld);
    return rc;
}

static void module_defaults(struct config_module *m)
{
    m->timeout_ns = DEFAULT_TIMEOUT_NS;
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

static int parse_module(struct loader *ld, const cJSON *obj, struct config_module *m)
{
    static const char *const keys[] = {"prober", "timeout", "icmp", NULL};
    struct module_seen seen = {false, false, false};
    int rc = check_object(ld, obj, keys);

    module_defaults(m);
    for (const cJSON *c = obj->child; rc == 0 && c != NULL; c = c->next) {
        const char *s = NULL;

        push_key(ld, c->string, 0);
        if (strcmp(c->string, "prober") == 0) {
            rc = get_string(ld, c, "\"icmp\"", &s);
            if (rc == 0 && strcmp(s, "icmp") != 0)
                rc = fail_got(ld, c, "expected \"icmp\" (the only prober of this exporter)");
        } else if (strcmp(c->string, "timeout") == 0) {
            rc = get_duration(ld, c, &m->timeout_ns);
            seen.timeout = true;
        } else {
            rc = parse_icmp(ld, c, m, &seen);
        }
        pop(ld);
    }
    return rc != 0 ? rc : check_timing(ld, m, &seen);
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

static int parse_modules(struct loader *ld, const cJSON *obj)
{
    struct config *cfg = ld->cfg;
    size_t n = 0;
    int rc = check_object(ld, obj, NULL);

    if (rc != 0)
        return rc;
    for (const cJSON *c = obj->child; c != NULL; c = c->next)
        n++;
    cfg->modules = arena_array(cfg, n, sizeof(*cfg->modules));
    if (n > 0 && cfg->modules == NULL)
        return fail_oom(ld);
    for (const cJSON *c = obj->child; c != NULL; c = c->next) {
        struct config_module *m = &cfg->modules[cfg->n_modules];

        push_key(ld, c->string, 0);
        if (!valid_module_name(c->string))
            rc = fail(ld, AT_KEY,
                      "expected a module name of 1..128 characters without control characters");
        if (rc == 0)
            rc = parse_module(ld, c, m);
        if (rc == 0 && (m->name = arena_strdup(cfg, c->string)) == NULL)
            rc = fail_oom(ld);
        pop(ld);
        if (rc != 0)
            return rc;
        cfg->n_modules++;
    }
    return 0;
}

/* ---- targets ---- */

static bool looks_ipv4(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!(*s == '.' || (*s >= '0' && *s <= '9')))
            return false;
    }
    return true;
}

/* An IP literal (parsed into *addr, *literal set) or a host name; returns NULL or why not. */
static const char *parse_host(const char *s, struct config_addr *addr, bool *literal)
{
    *literal = false;
    if (strchr(s, ':') != NULL || looks_ipv4(s)) {
        if (config_addr_parse(s, addr) != 0)
            return "not an IPv4 or IPv6 address";
        *literal = true;
        return NULL;
    }
    return config__check_host_name(s, false);
}

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

static int parse_labels(struct loader *ld, const cJSON *obj, struct config_target *t)
{
    struct config *cfg = ld->cfg;
    struct config_label *labels;
    size_t n = 0;
    int rc = check_object(ld, obj, NULL);

    if (rc != 0)
        return rc;
    for (const cJSON *c = obj->child; c != NULL; c = c->next)
        n++;
    labels = arena_array(cfg, n, sizeof(*labels));
    if (n > 0 && labels == NULL)
        return fail_oom(ld);
    n = 0;
    for (const cJSON *c = obj->child; rc == 0 && c != NULL; c = c->next, n++) {
        const char *value = NULL;
        char q[160];

        push_key(ld, c->string, 0);
        quote(c->string, q, sizeof(q));
        if (!valid_label_name(c->string)) {
            rc = fail(ld, AT_KEY, "expected a label name matching [a-zA-Z_][a-zA-Z0-9_]*, got %s",
                      q);
        } else if (strncmp(c->string, "__", 2) == 0) {
            rc = fail(ld, AT_KEY,
                      "label name %s starts with \"__\", which Prometheus reserves for itself", q);
        } else {
            for (size_t r = 0; r < sizeof(reserved_labels) / sizeof(reserved_labels[0]); r++) {
                if (strcmp(c->string, reserved_labels[r]) == 0)
                    rc = fail(ld, AT_KEY,
                              "label name %s is reserved: the exporter sets target, module, "
                              "ip, ip_version and le itself",
                              q);
            }
        }
        if (rc == 0)
            rc = get_string(ld, c, "a string label value", &value);
        if (rc == 0) {
            labels[n].name = arena_strdup(cfg, c->string);
            labels[n].value = arena_strdup(cfg, value);
            if (labels[n].name == NULL || labels[n].value == NULL)
                rc = fail_oom(ld);
        }
        pop(ld);
    }
    t->labels = labels;
    t->n_labels = n;
    return rc;
}

static int parse_target(struct loader *ld, const cJSON *obj, struct config_target *t)
{
    static const char *const keys[] = {"target", "module", "labels", NULL};
    struct config *cfg = ld->cfg;
    const char *module = NULL;
    int rc = check_object(ld, obj, keys);

    for (const cJSON *c = obj->child; rc == 0 && c != NULL; c = c->next) {
        const char *s = NULL, *why;

        push_key(ld, c->string, 0);
        if (strcmp(c->string, "target") == 0) {
            rc = get_string(ld, c, "an IP address or a host name", &s);
            if (rc == 0 && (why = parse_host(s, &t->addr, &t->is_literal)) != NULL)
                rc = fail_got(ld, c, "expected an IP address or a host name (%s)", why);
            if (rc == 0 && (t->target = arena_strdup(cfg, s)) == NULL)
                rc = fail_oom(ld);
        } else if (strcmp(c->string, "module") == 0) {
            rc = get_string(ld, c, "a module name", &module);
        } else {
            rc = parse_labels(ld, c, t);
        }
        pop(ld);
    }
    if (rc != 0)
        return rc;
    if (t->target == NULL)
        return fail(ld, AT_VALUE, "missing key \"target\" (an IP address or a host name)");
    t->module = config_module_find(cfg, module != NULL ? module : "icmp");
    if (t->module == NULL) {
        char q[160], list[512];
        size_t used = 0;

        quote(module != NULL ? module : "icmp", q, sizeof(q));
        list[0] = '\0';
        for (size_t i = 0; i < cfg->n_modules; i++)
            append(list, sizeof(list), &used, "%s%s", i > 0 ? ", " : "", cfg->modules[i].name);
        push_key(ld, "module", 0);
        rc = fail(ld, AT_VALUE, "unknown module %s%s (defined: %s)", q,
                  module != NULL ? "" : ", the default", used > 0 ? list : "none");
        pop(ld);
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
        return fail_oom(ld);
    for (size_t i = 0; i < n; i++) {
        const struct config_target *t = &cfg->targets[i];
        struct target_key *k = &keys[i];
        size_t j = 0;

        k->module = t->module->name;
        k->index = i;
        if (t->is_literal) {
            k->key[0] = (char)('0' + t->addr.family);
            for (j = 0; j < 16; j++)
                snprintf(k->key + 1 + 2 * j, 3, "%02x", t->addr.bytes[j]);
        } else {
            for (j = 0; t->target[j] != '\0' && j < sizeof(k->key) - 1; j++) {
                char ch = t->target[j];
                k->key[j] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
            }
            if (j > 0 && k->key[j - 1] == '.')
                j--;
            k->key[j] = '\0';
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
        quote(cfg->targets[dup_at].target, qt, sizeof(qt));
        quote(cfg->targets[dup_at].module->name, qm, sizeof(qm));
        push_index(ld, dup_at);
        rc = fail(ld, AT_VALUE, "duplicate of targets[%zu]: target %s with module %s", dup_first,
                  qt, qm);
        pop(ld);
    }
    free(keys);
    return rc;
}

static int parse_targets(struct loader *ld, const cJSON *arr)
{
    struct config *cfg = ld->cfg;
    size_t n = 0;

    if (!cJSON_IsArray(arr))
        return fail_got(ld, arr, "expected an array of targets");
    for (const cJSON *c = arr->child; c != NULL; c = c->next)
        n++;
    cfg->targets = arena_array(cfg, n, sizeof(*cfg->targets));
    if (n > 0 && cfg->targets == NULL)
        return fail_oom(ld);
    for (const cJSON *c = arr->child; c != NULL; c = c->next) {
        int rc;

        push_index(ld, cfg->n_targets);
        rc = parse_target(ld, c, &cfg->targets[cfg->n_targets]);
        pop(ld);
        if (rc != 0)
            return rc;
        cfg->n_targets++;
    }
    return check_duplicate_targets(ld);
}

/* ---- limits ---- */

static int parse_allowed_targets(struct loader *ld, const cJSON *arr)
{
    struct config *cfg = ld->cfg;
    struct config_cidr *cidrs;
    const char **names;
    size_t n = 0, i = 0;

    if (!cJSON_IsArray(arr))
        return fail_got(ld, arr, "expected an array of CIDRs, IP addresses and host names");
    for (const cJSON *c = arr->child; c != NULL; c = c->next)
        n++;
    cidrs = arena_array(cfg, n, sizeof(*cidrs));
    names = arena_array(cfg, n, sizeof(*names));
    if (n > 0 && (cidrs == NULL || names == NULL))
        return fail_oom(ld);
    for (const cJSON *c = arr->child; c != NULL; c = c->next, i++) {
        const char *s = NULL, *why;
        char buf[128];
        int rc;

        push_index(ld, i);
        rc = get_string(ld, c, "a CIDR, an IP address or a host name", &s);
        if (rc == 0 && (strchr(s, '/') != NULL || strchr(s, ':') != NULL || looks_ipv4(s))) {
            why = config__parse_cidr(s, &cidrs[cfg->limits.n_allowed_cidrs], buf, sizeof(buf));
            if (why != NULL)
                rc = fail_got(ld, c, "expected a CIDR such as 198.18.0.0/15 or 2001:db8::/32 (%s)",
                              why);
            else
                cfg->limits.n_allowed_cidrs++;
        } else if (rc == 0) {
            why = config__check_host_name(s, true);
            if (why != NULL) {
                rc = fail_got(ld, c,
                              "expected a host name such as probe.example.com or "
                              "*.example.com (%s)",
                              why);
            } else {
                char *name = arena_strdup(cfg, s);
                size_t len;
                if (name == NULL) {
                    rc = fail_oom(ld);
                } else {
                    for (len = 0; name[len] != '\0'; len++)
                        name[len] = name[len] >= 'A' && name[len] <= 'Z'
                                        ? (char)(name[len] - 'A' + 'a')
                                        : name[len];
                    if (len > 0 && name[len - 1] == '.')
                        name[len - 1] = '\0';
                    names[cfg->limits.n_allowed_names++] = name;
                }
            }
        }
        pop(ld);
        if (rc != 0)
            return rc;
    }
    cfg->limits.allowed_cidrs = cidrs;
    cfg->limits.allowed_names = names;
    return 0;
}

static int parse_limits(struct loader *ld, const cJSON *obj)
{
    static const char *const keys[] = {
        "allowed_targets",        "max_echoes_per_probe",   "max_concurrent_probes",
        "max_targets_per_scrape", "max_packets_per_second", "max_connections",
        "max_connections_per_ip", "request_timeout",        NULL};
    struct config_limits *l = &ld->cfg->limits;
    int rc = check_object(ld, obj, keys);

    for (const cJSON *c = obj->child; rc == 0 && c != NULL; c = c->next) {
        push_key(ld, c->string, 0);
        if (strcmp(c->string, "allowed_targets") == 0)
            rc = parse_allowed_targets(ld, c);
        else if (strcmp(c->string, "max_echoes_per_probe") == 0)
            rc = get_uint(ld, c, 1, MAX_LIMIT, "", &l->max_echoes_per_probe);
        else if (strcmp(c->string, "max_concurrent_probes") == 0)
            rc = get_uint(ld, c, 1, MAX_LIMIT, "", &l->max_concurrent_probes);
        else if (strcmp(c->string, "max_targets_per_scrape") == 0)
            rc = get_uint(ld, c, 1, MAX_LIMIT, "", &l->max_targets_per_scrape);
        else if (strcmp(c->string, "max_packets_per_second") == 0)
            rc = get_uint(ld, c, 1, 1000000, " (echo requests per second, all probes together)",
                          &l->max_packets_per_second);
        else if (strcmp(c->string, "max_connections") == 0)
            rc = get_uint(ld, c, 1, 65536, "", &l->max_connections);
        else if (strcmp(c->string, "max_connections_per_ip") == 0)
            rc = get_uint(ld, c, 0, 65536, " (0: no limit)", &l->max_connections_per_ip);
        else
            rc = get_duration(ld, c, &l->request_timeout_ns);
        pop(ld);
    }
    return rc;
}

/* ---- web ---- */

/* "host:port", "[v6]:port" or ":port"; returns NULL or why not. */
static const char *check_listen_address(const char *s)
{
    const char *colon = strrchr(s, ':');
    char host[256];
    size_t host_len;
    unsigned port = 0;
    struct config_addr addr;
    bool literal;

    if (colon == NULL)
        return "missing \":port\"";
    for (const char *p = colon + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            return "the port is not a number in 1..65535";
        port = port * 10 + (unsigned)(*p - '0');
    }
    if (port == 0 || port > 65535)
        return "the port is not a number in 1..65535";
    host_len = (size_t)(colon - s);
    if (host_len == 0)
        return NULL;
    if (host_len >= sizeof(host))
        return "the host is too long";
    if (s[0] == '[') {
        if (host_len < 3 || s[host_len - 1] != ']')
            return "an IPv6 address in brackets needs the closing ']'";
        memcpy(host, s + 1, host_len - 2);
        host[host_len - 2] = '\0';
        if (config_addr_parse(host, &addr) != 0 || addr.family != 6)
            return "not an IPv6 address in brackets";
        return NULL;
    }
    memcpy(host, s, host_len);
    host[host_len] = '\0';
    if (strchr(host, ':') != NULL)
        return "an IPv6 address needs brackets, as in [::1]:9723";
    return parse_host(host, &addr, &literal);
}

static int parse_listen_addresses(struct loader *ld, const cJSON *arr)
{
    struct config *cfg = ld->cfg;
    const char **list;
    size_t n = 0;

    if (!cJSON_IsArray(arr))
        return fail_got(ld, arr, "expected an array of \"host:port\" strings");
    for (const cJSON *c = arr->child; c != NULL; c = c->next)
        n++;
    if (n == 0)
        return fail(ld, AT_VALUE, "expected at least one listen address, got none");
    list = arena_array(cfg, n, sizeof(*list));
    if (list == NULL)
        return fail_oom(ld);
    n = 0;
    for (const cJSON *c = arr->child; c != NULL; c = c->next, n++) {
        const char *s = NULL, *why;
        int rc;

        push_index(ld, n);
        rc = get_string(ld, c, "a \"host:port\" string", &s);
        if (rc == 0 && (why = check_listen_address(s)) != NULL)
            rc = fail_got(ld, c, "expected \"host:port\", \"[ipv6]:port\" or \":port\" (%s)", why);
        if (rc == 0 && (list[n] = arena_strdup(cfg, s)) == NULL)
            rc = fail_oom(ld);
        pop(ld);
        if (rc != 0)
            return rc;
    }
    cfg->web.listen_addresses = list;
    cfg->web.n_listen_addresses = n;
    return 0;
}

/* Resolves a TLS file path against the configuration file's directory, and checks that
 * it can be opened for reading now (not at the first TLS handshake). */
static int tls_file(struct loader *ld, const cJSON *item, const char **out)
{
    struct config *cfg = ld->cfg;
    const char *s = NULL;
    char *path, ebuf[128], q[160];
    struct stat st;
    int rc = get_string(ld, item, "a file name", &s), fd, e;

    if (rc != 0)
        return rc;
    if (*s == '\0')
        return fail_got(ld, item, "expected a file name");
    if (s[0] != '/' && ld->base_dir != NULL) {
        size_t a = strlen(ld->base_dir), b = strlen(s);
        path = arena_alloc(cfg, a + b + 2);
        if (path == NULL)
            return fail_oom(ld);
        memcpy(path, ld->base_dir, a);
        path[a] = '/';
        memcpy(path + a + 1, s, b + 1);
    } else if ((path = arena_strdup(cfg, s)) == NULL) {
        return fail_oom(ld);
    }
    quote(path, q, sizeof(q));
    /* O_NONBLOCK: a FIFO named here must not hang the load. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        e = errno;
        fail(ld, AT_VALUE, "cannot read %s: %s", q, strerror_r(e, ebuf, sizeof(ebuf)));
        return -e;
    }
    if (fstat(fd, &st) != 0) {
        e = errno;
        close(fd);
        fail(ld, AT_VALUE, "cannot read %s: %s", q, strerror_r(e, ebuf, sizeof(ebuf)));
        return -e;
    }
    close(fd);
    if (!S_ISREG(st.st_mode))
        return fail(ld, AT_VALUE, "cannot read %s: not a regular file", q);
    *out = path;
    return 0;
}

static int parse_tls(struct loader *ld, const cJSON *obj)
{
    static const char *const keys[] = {"cert_file", "key_file", NULL};
    struct config_web *w = &ld->cfg->web;
    int rc = check_object(ld, obj, keys);

    for (const cJSON *c = obj->child; rc == 0 && c != NULL; c = c->next) {
        push_key(ld, c->string, 0);
        rc = tls_file(ld, c,
                      strcmp(c->string, "cert_file") == 0 ? &w->tls_cert_file : &w->tls_key_file);
        pop(ld);
    }
    if (rc == 0 && (w->tls_cert_file == NULL) != (w->tls_key_file == NULL))
        rc = fail(ld, AT_VALUE, "cert_file and key_file go together (%s is missing)",
                  w->tls_cert_file == NULL ? "cert_file" : "key_file");
    return rc;
}

/* The shape of a bcrypt hash: $2a$, $2b$ or $2y$, a cost 04..31, '$', 53 characters. */
static bool bcrypt_shape(const char *h)
{
    if (strlen(h) != 60 || h[0] != '$' || h[1] != '2' ||
        (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') || h[3] != '$' || h[6] != '$')
        return false;
    if (h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9')
        return false;
    int cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost < 4 || cost > 31)
        return false;
    for (size_t i = 7; i < 60; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '/'))
            return false;
    }
    return true;
}

static int parse_users(struct loader *ld, const cJSON *obj)
{
    struct config *cfg = ld->cfg;
    struct config_user *users;
    size_t n = 0;
    int rc = check_object(ld, obj, NULL);

    if (rc != 0)
        return rc;
    for (const cJSON *c = obj->child; c != NULL; c = c->next)
        n++;
    users = arena_array(cfg, n, sizeof(*users));
    if (n > 0 && users == NULL)
        return fail_oom(ld);
    n = 0;
    for (const cJSON *c = obj->child; rc == 0 && c != NULL; c = c->next, n++) {
        push_key(ld, c->string, 0);
        if (c->string[0] == '\0' || strchr(c->string, ':') != NULL) {
            rc = fail(ld, AT_KEY, "expected a user name, not empty and without ':'");
        } else if (!cJSON_IsString(c)) {
            rc = fail_got(ld, c, "expected a bcrypt hash string");
        } else if (!bcrypt_shape(c->valuestring)) {
            /* The value is not echoed: it may be a password pasted by mistake. */
            rc = fail(ld, AT_VALUE,
                      "expected a bcrypt hash: $2a$, $2b$ or $2y$, a cost 04..31, '$' and 53 "
                      "characters of [./A-Za-z0-9] (60 in all), got a string of %zu characters",
                      strlen(c->valuestring));
        } else {
            users[n].name = arena_strdup(cfg, c->string);
            users[n].bcrypt_hash = arena_strdup(cfg, c->valuestring);
            if (users[n].name == NULL || users[n].bcrypt_hash == NULL)
                rc = fail_oom(ld);
        }
        pop(ld);
    }
    cfg->web.users = users;
    cfg->web.n_users = n;
    return rc;
}

static int parse_web(struct loader *ld, const cJSON *obj)
{
    static const char *const keys[] = {"listen_addresses", "tls_server_config", "basic_auth_users",
                                       NULL};
    int rc = check_object(ld, obj, keys);

    for (const cJSON *c = obj->child; rc == 0 && c != NULL; c = c->next) {
        push_key(ld, c->string, 0);
        if (strcmp(c->string, "listen_addresses") == 0)
            rc = parse_listen_addresses(ld, c);
        else if (strcmp(c->string, "tls_server_config") == 0)
            rc = parse_tls(ld, c);
        else
            rc = parse_users(ld, c);
        pop(ld);
    }
    return rc;
}

/* ---- the document ---- */

static const char *const default_listen[] = {DEFAULT_LISTEN};

static int parse_document(struct loader *ld, const cJSON *root)
{
    static const char *const keys[] = {"modules", "targets", "limits", "web", NULL};
    static int (*const parsers[])(struct loader *, const cJSON *) = {parse_modules, parse_targets,
                                                                     parse_limits, parse_web};
    struct config *cfg = ld->cfg;
    int rc = check_object(ld, root, keys);

    cfg->limits.max_echoes_per_probe = 100;
    cfg->limits.max_concurrent_probes = 1000;
    cfg->limits.max_targets_per_scrape = 10000;
    cfg->limits.max_packets_per_second = 100000;
    cfg->limits.max_connections = 4096;
    cfg->limits.max_connections_per_ip = 1024;
    cfg->limits.request_timeout_ns = 30 * (int64_t)1000000000;
    cfg->web.listen_addresses = default_listen;
    cfg->web.n_listen_addresses = 1;
    /* Modules first whatever the order in the file: targets refer to them. */
    for (size_t i = 0; rc == 0 && keys[i] != NULL; i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
        if (item == NULL)
            continue;
        push_key(ld, keys[i], 0);
        rc = parsers[i](ld, item);
        pop(ld);
    }
    /* Checked once limits are read, wherever they stand in the file: every static target
     * is probed at each /metrics scrape. */
    if (rc == 0 && cfg->n_targets > cfg->limits.max_targets_per_scrape) {
        push_key(ld, "targets", 0);
        rc = fail(ld, AT_KEY,
                  "%zu static targets, more than limits.max_targets_per_scrape (%u): raise "
                  "the limit, or shard the targets across exporters",
                  cfg->n_targets, cfg->limits.max_targets_per_scrape);
        pop(ld);
    }
    return rc;
}

static void describe_byte(const char *text, size_t len, size_t offset, char *buf, size_t size)
{
    unsigned char c = offset < len ? (unsigned char)text[offset] : 0;

    if (offset >= len)
        snprintf(buf, size, "the end of the document");
    else if (c > 0x20 && c < 0x7f && c != '\'')
        snprintf(buf, size, "'%c'", c);
    else
        snprintf(buf, size, "byte 0x%02x", c);
}

static int load_text_in(const char *name, const char *text, size_t len, const char *base_dir,
                        struct config **out, char *err, size_t errlen)
{
    struct loader ld;
    cJSON *root = NULL;
    char *copy = NULL;
    const char *why;
    size_t offset = 0;
    int rc;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    memset(&ld, 0, sizeof(ld));
    ld.name = name;
    ld.text = text;
    ld.len = len;
    ld.base_dir = base_dir;
    ld.err = err;
    ld.errlen = errlen;
    if (len > CONFIG_MAX_DOCUMENT_SIZE) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: the document is larger than the limit of %u bytes", name,
                     CONFIG_MAX_DOCUMENT_SIZE);
        return -EFBIG;
    }
    why = config__check_syntax(text, len, &offset);
    if (why != NULL) {
        char got[48];
        describe_byte(text, len, offset, got, sizeof(got));
        if (err != NULL && errlen > 0) {
            unsigned line, col;
            config__line_col(text, len, offset, &line, &col);
            snprintf(err, errlen, "%s:%u:%u: (syntax): expected %s, got %s", name, line, col, why,
                     got);
        }
        return -EINVAL;
    }
    /* cJSON 1.7.15 with require_null_terminated wants the NUL inside the given length. */
    copy = malloc(len + 1);
    if (copy == NULL) {
        rc = fail_oom(&ld);
        goto fail;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    {
        /* On failure cJSON also writes its global error pointer, unsynchronised; we read
         * only the per-call end pointer, and failures are rare after our own check. */
        const char *end = NULL;
        root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
        if (root == NULL) {
            /* Our check passed, so this is cJSON refusing valid JSON or out of memory. */
            char got[48];
            offset = end != NULL && end >= copy ? (size_t)(end - copy) : 0;
            describe_byte(text, len, offset, got, sizeof(got));
            if (err != NULL && errlen > 0) {
                unsigned line, col;
                config__line_col(text, len, offset, &line, &col);
                snprintf(err, errlen, "%s:%u:%u: (syntax): cJSON refused the document at %s", name,
                         line, col, got);
            }
            rc = -EINVAL;
            goto fail;
        }
    }
    ld.cfg = calloc(1, sizeof(*ld.cfg));
    if (ld.cfg == NULL) {
        rc = fail_oom(&ld);
        goto fail;
    }
    atomic_init(&ld.cfg->refs, 1);
    rc = parse_document(&ld, root);
    if (rc != 0)
        goto fail;
    cJSON_Delete(root);
    free(copy);
    *out = ld.cfg;
    return 0;

fail:
    config_free(ld.cfg);
    cJSON_Delete(root);
    free(copy);
    return rc;
}

int config_load_text(const char *name, const char *text, size_t len, struct config **out, char *err,
                     size_t errlen)
{
    return load_text_in(name, text, len, NULL, out, err, errlen);
}

int config_load_default(struct config **out, char *err, size_t errlen)
{
    const char *text = config_default_text();
    return load_text_in("(embedded default)", text, strlen(text), NULL, out, err, errlen);
}

int config_load_file(const char *path, struct config **out, char *err, size_t errlen)
{
    char *buf = NULL, *base = NULL, ebuf[128];
    size_t len = 0, cap = 0;
    int fd = -1, rc, e;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        e = errno;
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror_r(e, ebuf, sizeof(ebuf)));
        return -e;
    }
    for (;;) {
        ssize_t n;
        if (len == cap) {
            size_t ncap = cap == 0 ? 65536 : cap * 2;
            char *nbuf;
            if (cap > CONFIG_MAX_DOCUMENT_SIZE) {
                if (err != NULL && errlen > 0)
                    snprintf(err, errlen, "%s: larger than the limit of %u bytes", path,
                             CONFIG_MAX_DOCUMENT_SIZE);
                rc = -EFBIG;
                goto fail;
            }
            nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                if (err != NULL && errlen > 0)
                    snprintf(err, errlen, "%s: out of memory", path);
                rc = -ENOMEM;
                goto fail;
            }
            buf = nbuf;
            cap = ncap;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = errno;
            if (err != NULL && errlen > 0)
                snprintf(err, errlen, "%s: cannot read: %s", path,
                         strerror_r(e, ebuf, sizeof(ebuf)));
            rc = -e;
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CONFIG_MAX_DOCUMENT_SIZE) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: larger than the limit of %u bytes", path,
                     CONFIG_MAX_DOCUMENT_SIZE);
        rc = -EFBIG;
        goto fail;
    }
    {
        const char *slash = strrchr(path, '/');
        if (slash != NULL) {
            size_t n = slash == path ? 1 : (size_t)(slash - path);
            base = malloc(n + 1);
            if (base == NULL) {
                if (err != NULL && errlen > 0)
                    snprintf(err, errlen, "%s: out of memory", path);
                rc = -ENOMEM;
                goto fail;
            }
            memcpy(base, path, n);
            base[n] = '\0';
        }
    }
    rc = load_text_in(path, buf, len, base, out, err, errlen);
fail:
    free(base);
    free(buf);
    close(fd);
    return rc;
}

/* ---- references and views ---- */

struct config *config_ref(struct config *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

void config_unref(struct config *cfg)
{
    /* acq_rel: every holder's reads happen before the free by the last one. */
    if (cfg != NULL && atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
        config_free(cfg);
}

const struct config_module *config_module_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; name != NULL && i < cfg->n_modules; i++) {
        if (strcmp(cfg->modules[i].name, name) == 0)
            return &cfg->modules[i];
    }
    return NULL;
}

const struct config_module *config_modules(const struct config *cfg, size_t *n)
{
    *n = cfg->n_modules;
    return cfg->modules;
}

const struct config_target *config_targets(const struct config *cfg, size_t *n)
{
    *n = cfg->n_targets;
    return cfg->targets;
}

const struct config_limits *config_limits(const struct config *cfg)
{
    return &cfg->limits;
}

const struct config_web *config_web(const struct config *cfg)
{
    return &cfg->web;
}
