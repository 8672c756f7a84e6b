/*
 * Diagnostics: where the loader stands, and what it says when a value is wrong.
 *
 * The loader walks the cJSON tree keeping the JSON path it stands on (push/pop); every
 * check that fails calls config__fail(), which finds the offending value (or key) in the
 * source text again by that path (config__locate for JSON text, the node's recorded
 * position for YAML) and writes `FILE:LINE:COL: PATH: MESSAGE`. Only the first error is
 * reported: each step returns at once. Warnings (config__warn) are worded and placed the
 * same way, and kept with the configuration instead of stopping it. The checks every
 * schema shares live here too, so that they word their errors alike: an object's unknown
 * and duplicate keys (reported before its members), and the typed getters that say
 * "expected X, got Y" with Y as written in the document.
 */
#include "config/config_internal.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Durations are bounded: a probe longer than an hour makes no sense, and the bound keeps
 * interval x (count - 1) + echo_timeout far from overflow. */
#define MAX_DURATION_NS (3600LL * 1000000000LL)

/* ---- paths and errors ---- */

void config__push_key(struct loader *ld, const char *key, unsigned occurrence)
{
    if (ld->depth < CONFIG__PATH_MAX_DEPTH)
        ld->path[ld->depth] = (struct config__path_elem){key, 0, occurrence};
    ld->depth++;
}

void config__push_index(struct loader *ld, size_t index)
{
    if (ld->depth < CONFIG__PATH_MAX_DEPTH)
        ld->path[ld->depth] = (struct config__path_elem){NULL, index, 0};
    ld->depth++;
}

void config__pop(struct loader *ld)
{
    ld->depth--;
}

void config__append(char *buf, size_t size, size_t *used, const char *fmt, ...)
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

void config__quote(const char *s, char *buf, size_t size)
{
    size_t used = 0, i;

    config__append(buf, size, &used, "\"");
    for (i = 0; s[i] != '\0' && i < 64; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            config__append(buf, size, &used, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            config__append(buf, size, &used, "\\x%02x", c);
        else
            config__append(buf, size, &used, "%c", c);
    }
    config__append(buf, size, &used, s[i] != '\0' ? "\"..." : "\"");
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
    size_t used = 0,
           depth = ld->depth < CONFIG__PATH_MAX_DEPTH ? ld->depth : CONFIG__PATH_MAX_DEPTH;

    buf[0] = '\0';
    if (depth == 0)
        config__append(buf, size, &used, "(root)");
    for (size_t i = 0; i < depth; i++) {
        const struct config__path_elem *e = &ld->path[i];
        if (e->key == NULL) {
            config__append(buf, size, &used, "[%zu]", e->index);
        } else if (is_simple_key(e->key)) {
            config__append(buf, size, &used, "%s%s", i > 0 ? "." : "", e->key);
        } else {
            char q[160];
            config__quote(e->key, q, sizeof(q));
            config__append(buf, size, &used, "[%s]", q);
        }
    }
}

/* Offset of the current path's value (or key), else of its nearest existing ancestor. */
static size_t current_offset(const struct loader *ld, bool want_key)
{
    size_t depth = ld->depth < CONFIG__PATH_MAX_DEPTH ? ld->depth : CONFIG__PATH_MAX_DEPTH,
           offset = 0;

    if (ld->yaml != NULL)
        return config__yaml_locate(ld->yaml, ld->path, depth, want_key);
    for (size_t d = depth + 1; d-- > 0;) {
        if (config__locate(ld->text, ld->len, ld->path, d, want_key && d == depth && d > 0,
                           &offset) == 0)
            return offset;
    }
    return 0;
}

/* `FILE:LINE:COL: PATH: MSG` for the current path into out. */
static void format_line(const struct loader *ld, enum config__where where, const char *msg,
                        char *out, size_t size)
{
    char path[384];
    unsigned line, col;

    format_path(ld, path, sizeof(path));
    config__line_col(ld->text, ld->len, current_offset(ld, where == CONFIG__AT_KEY), &line, &col);
    snprintf(out, size, "%s:%u:%u: %s: %s", ld->name, line, col, path, msg);
}

int config__fail(struct loader *ld, enum config__where where, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ld->err != NULL && ld->errlen > 0)
        format_line(ld, where, msg, ld->err, ld->errlen);
    return -EINVAL;
}

int config__warn(struct loader *ld, enum config__where where, const char *fmt, ...)
{
    struct config *cfg = ld->cfg;
    char msg[768], line[1280];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    format_line(ld, where, msg, line, sizeof(line));
    if (cfg->n_warnings == cfg->cap_warnings) {
        /* The arena never frees: the old array stays behind, which few warnings afford. */
        size_t ncap = cfg->cap_warnings == 0 ? 8 : 2 * cfg->cap_warnings;
        const char **w = config__arena_array(cfg, ncap, sizeof(*w));
        if (w == NULL)
            return config__fail_oom(ld);
        if (cfg->n_warnings > 0)
            memcpy(w, cfg->warnings, cfg->n_warnings * sizeof(*w));
        cfg->warnings = w;
        cfg->cap_warnings = ncap;
    }
    if ((cfg->warnings[cfg->n_warnings] = config__arena_strdup(cfg, line)) == NULL)
        return config__fail_oom(ld);
    cfg->n_warnings++;
    return 0;
}

const char *config__where_now(struct loader *ld, enum config__where where)
{
    char buf[512];
    unsigned line, col;

    config__line_col(ld->text, ld->len, current_offset(ld, where == CONFIG__AT_KEY), &line, &col);
    snprintf(buf, sizeof(buf), "%s:%u:%u", ld->name, line, col);
    return config__arena_strdup(ld->cfg, buf);
}

bool config__absent(const struct loader *ld, const cJSON *item)
{
    return ld->yaml != NULL && cJSON_IsNull(item);
}

int config__fail_oom(struct loader *ld)
{
    if (ld->err != NULL && ld->errlen > 0)
        snprintf(ld->err, ld->errlen, "%s: out of memory", ld->name);
    return -ENOMEM;
}

/* What ITEM (at the current path) is, for "got ...": numbers as written in the text. */
static void describe(const struct loader *ld, const cJSON *item, char *buf, size_t size)
{
    const char *raw = ld->yaml != NULL ? config__yaml_raw(ld->yaml, item) : NULL;

    if (raw != NULL && *raw != '\0') {
        /* YAML: as written (0x10, yes, ~), cut as a quoted string would be. */
        snprintf(buf, size, "%.64s%s", raw, strlen(raw) > 64 ? "..." : "");
    } else if (cJSON_IsString(item)) {
        config__quote(item->valuestring, buf, size);
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

int config__fail_got(struct loader *ld, const cJSON *item, const char *fmt, ...)
{
    char msg[640], got[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    describe(ld, item, got, sizeof(got));
    return config__fail(ld, CONFIG__AT_VALUE, "%s, got %s", msg, got);
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

    config__quote(key, q, sizeof(q));
    list[0] = '\0';
    for (size_t i = 0; allowed[i] != NULL; i++) {
        size_t d = edit_distance(key, allowed[i]);
        if (d < best) {
            best = d;
            suggestion = allowed[i];
        }
        config__append(list, sizeof(list), &used, "%s%s", i > 0 ? ", " : "", allowed[i]);
    }
    if (suggestion != NULL && best <= 2 && strlen(key) >= 3)
        return config__fail(ld, CONFIG__AT_KEY, "unknown key %s; did you mean \"%s\"?", q,
                            suggestion);
    return config__fail(ld, CONFIG__AT_KEY, "unknown key %s; expected one of: %s", q, list);
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

/* Sorting keeps this O(n log n) for big maps. */
int config__check_object(struct loader *ld, const cJSON *obj, const char *const *allowed)
{
    struct member_ref *refs = NULL;
    size_t n = 0, i = 0, unknown_at = SIZE_MAX, dup_at = SIZE_MAX, dup_first = 0;
    unsigned dup_occurrence = 0;
    const cJSON *c;
    int rc = 0;

    if (!cJSON_IsObject(obj))
        return config__fail_got(ld, obj, "expected an object");
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
            return config__fail_oom(ld);
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
        config__push_key(ld, name, 0);
        first_offset = current_offset(ld, true);
        config__pop(ld);
        config__line_col(ld->text, ld->len, first_offset, &line, &col);
        config__quote(name, q, sizeof(q));
        config__push_key(ld, name, dup_occurrence);
        rc = config__fail(ld, CONFIG__AT_KEY, "duplicate key %s (first given at %u:%u, member %zu)",
                          q, line, col, dup_first);
        config__pop(ld);
    } else if (unknown_at != SIZE_MAX) {
        for (c = obj->child, i = 0; i < unknown_at; c = c->next, i++)
            ;
        config__push_key(ld, c->string, 0);
        rc = unknown_key(ld, c->string, allowed);
        config__pop(ld);
    }
    free(refs);
    return rc;
}

int config__each_member(struct loader *ld, const cJSON *parent, config__member_fn *each, void *arg)
{
    size_t i = 0;
    int rc = 0;

    for (const cJSON *c = parent->child; rc == 0 && c != NULL; c = c->next, i++) {
        if (cJSON_IsArray(parent))
            config__push_index(ld, i);
        else
            config__push_key(ld, c->string, 0);
        rc = each(ld, c, i, arg);
        config__pop(ld);
    }
    return rc;
}

void *config__collect(struct loader *ld, const cJSON *parent, const char *array_of, size_t size,
                      config__member_fn *each, size_t *n, int *rc)
{
    void *array;

    *n = 0;
    if (array_of == NULL)
        *rc = config__check_object(ld, parent, NULL);
    else if (!cJSON_IsArray(parent))
        *rc = config__fail_got(ld, parent, "expected an array of %s", array_of);
    else
        *rc = 0;
    if (*rc != 0)
        return NULL;
    for (const cJSON *c = parent->child; c != NULL; c = c->next)
        (*n)++;
    array = config__arena_array(ld->cfg, *n, size);
    if (*n > 0 && array == NULL)
        *rc = config__fail_oom(ld);
    else if (each != NULL)
        *rc = config__each_member(ld, parent, each, array);
    return *rc == 0 ? array : NULL;
}

/* ---- scalars ---- */

int config__get_string(struct loader *ld, const cJSON *item, const char *what, const char **out)
{
    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return config__fail_got(ld, item, "expected %s", what);
    *out = item->valuestring;
    return 0;
}

int config__get_bool(struct loader *ld, const cJSON *item, bool *out)
{
    if (!cJSON_IsBool(item))
        return config__fail_got(ld, item, "expected true or false");
    *out = cJSON_IsTrue(item);
    return 0;
}

/* An integer in lo..hi: cJSON's valueint saturates, so the double is checked. */
int config__get_uint(struct loader *ld, const cJSON *item, unsigned lo, unsigned hi,
                     const char *why, unsigned *out)
{
    double v = item->valuedouble;

    if (!cJSON_IsNumber(item) || !(v >= lo && v <= hi) || (double)(unsigned)v != v)
        return config__fail_got(ld, item, "expected an integer in %u..%u%s", lo, hi, why);
    *out = (unsigned)v;
    return 0;
}

/* blackbox_exporter's timeouts: Go durations; 0 (none) is let through for the caller. */
static int get_go_duration(struct loader *ld, const cJSON *item, int64_t *out)
{
    static const char expected[] =
        "expected a duration such as \"5s\", \"1.5s\" or \"1m30s\" (Go's form, as "
        "blackbox_exporter reads it)";
    int64_t ns = 0;
    int rc = cJSON_IsString(item) ? config__parse_go_duration(item->valuestring, &ns) : -EINVAL;

    if (rc == -EINVAL)
        return config__fail_got(ld, item, expected);
    if (rc == 0 && ns < 0)
        return config__fail_got(ld, item, "expected a duration of 0s or more");
    if (rc != 0 || ns > MAX_DURATION_NS)
        return config__fail_got(ld, item, "expected a duration of at most 1h");
    if (ns % 1000000 != 0)
        return config__fail_got(ld, item, "expected a whole number of milliseconds");
    *out = ns;
    return 0;
}

int config__get_duration(struct loader *ld, const cJSON *item, int64_t *out)
{
    int64_t ns = 0;
    int rc;

    if (ld->dialect == CONFIG__BLACKBOX)
        return get_go_duration(ld, item, out);
    if (!cJSON_IsString(item))
        return config__fail_got(ld, item,
                                "expected a duration such as \"250ms\", \"1s\" or \"1m30s\"");
    rc = config_parse_duration(item->valuestring, &ns);
    if (rc == -EINVAL)
        return config__fail_got(ld, item,
                                "expected a duration such as \"250ms\", \"1s\" or \"1m30s\"");
    if (rc == 0 && ns == 0)
        return config__fail_got(ld, item, "expected a duration greater than 0");
    if (rc != 0 || ns > MAX_DURATION_NS)
        return config__fail_got(ld, item, "expected a duration of at most 1h");
    *out = ns;
    return 0;
}
