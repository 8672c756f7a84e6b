/*
 * YAML documents turned into the cJSON tree the JSON loader builds, so that one schema,
 * with one set of rules and messages, reads both formats (blackbox_exporter's blackbox.yml
 * and exporter-toolkit's web configuration are YAML).
 *
 * Model. libyaml's event parser drives a builder: a stack of the open mappings and
 * sequences (at most CONFIG_MAX_DEPTH deep, as JSON), each plain scalar resolved as Go's
 * yaml.v3 resolves it (null, booleans with YAML 1.1's yes/no/on/off, integers in any base,
 * floats, else a string); quoted scalars are strings. Anchors are kept by name and an
 * alias becomes a copy of its node; a "<<" merge key copies the members its mapping does
 * not have itself (explicit keys win, then the merged mappings in order). Every node made
 * is counted against a bound proportional to the text, so aliases of aliases cannot
 * expand without end. cJSON keeps no positions: each node's key and value offsets go
 * into a hash table by node address, and errors find a node again by its path
 * (config__yaml_locate), so they point into the YAML text as JSON errors point into
 * theirs. libyaml counts its marks in characters; they are turned into byte offsets, so
 * columns count bytes in both formats. Only the first document of a stream is allowed.
 */
#include "config/config_internal.h"

#include <cjson/cJSON.h>
#include <yaml.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_KEY SIZE_MAX

struct pos_entry {
    const cJSON *node; /* NULL: a free slot */
    size_t key_at;     /* the member's key, NO_KEY when the node is no mapping member */
    size_t value_at;
    char *raw; /* a plain scalar read as null, a boolean or a number, as written */
};

struct config__yaml {
    cJSON *root;      /* NULL: the stream holds no document */
    cJSON *graveyard; /* merge values, kept while anchors may still name them */
    struct pos_entry *table;
    size_t cap, used; /* cap is a power of two */
};

/* ---- positions by node address ---- */

static size_t slot_of(const struct config__yaml *y, const cJSON *node)
{
    uintptr_t h = (uintptr_t)node >> 4;

    h *= (uintptr_t)0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 7) & (y->cap - 1);
}

static const struct pos_entry *pos_find(const struct config__yaml *y, const cJSON *node)
{
    if (y->cap == 0 || node == NULL)
        return NULL;
    for (size_t i = slot_of(y, node);; i = (i + 1) & (y->cap - 1)) {
        if (y->table[i].node == node)
            return &y->table[i];
        if (y->table[i].node == NULL)
            return NULL;
    }
}

/* Records (or replaces: a freed node's address may come back) NODE's positions; takes RAW. */
static int pos_put(struct config__yaml *y, const cJSON *node, size_t key_at, size_t value_at,
                   char *raw)
{
    size_t i;

    if (2 * (y->used + 1) > y->cap) {
        size_t ncap = y->cap == 0 ? 256 : 2 * y->cap;
        struct pos_entry *old = y->table, *fresh = calloc(ncap, sizeof(*fresh));
        size_t ocap = y->cap;

        if (fresh == NULL) {
            free(raw);
            return -ENOMEM;
        }
        y->table = fresh;
        y->cap = ncap;
        for (size_t j = 0; j < ocap; j++) {
            if (old[j].node == NULL)
                continue;
            for (i = slot_of(y, old[j].node); fresh[i].node != NULL; i = (i + 1) & (ncap - 1))
                ;
            fresh[i] = old[j];
        }
        free(old);
    }
    for (i = slot_of(y, node); y->table[i].node != NULL && y->table[i].node != node;
         i = (i + 1) & (y->cap - 1))
        ;
    if (y->table[i].node == NULL)
        y->used++;
    else
        free(y->table[i].raw);
    y->table[i] = (struct pos_entry){node, key_at, value_at, raw};
    return 0;
}

/* ---- the builder ---- */

struct merge_source {
    const cJSON *node;
    size_t at;
};

struct frame {
    cJSON *node; /* the open mapping or sequence */
    bool mapping;
    char *key;       /* a mapping's pending key (NULL: a key comes next) */
    size_t key_at;   /* where the pending key stands */
    bool merge;      /* the pending key is the merge key "<<" */
    bool have_key;   /* a key was read, its value comes next */
    size_t value_at; /* where the collection starts */
    char *anchor;    /* the collection's anchor, registered when it ends */
    struct merge_source *merges;
    size_t n_merges, cap_merges;
};

struct anchor {
    char *name;
    const cJSON *node;
};

struct builder {
    const char *name, *text;
    size_t len;
    char *err;
    size_t errlen;
    struct config__yaml *doc;
    struct frame stack[CONFIG_MAX_DEPTH];
    size_t depth;
    struct anchor *anchors;
    size_t n_anchors, cap_anchors;
    size_t nodes, max_nodes;
    unsigned documents;
    size_t cur_index, cur_offset; /* the last mark turned into a byte offset */
};

/* libyaml's mark index counts characters (a CRLF as two): the byte offset of it. */
static size_t mark_offset(struct builder *b, yaml_mark_t m)
{
    if (m.index < b->cur_index) {
        b->cur_index = 0;
        b->cur_offset = 0;
    }
    while (b->cur_index < m.index && b->cur_offset < b->len) {
        b->cur_offset++;
        while (b->cur_offset < b->len && ((unsigned char)b->text[b->cur_offset] & 0xc0) == 0x80)
            b->cur_offset++;
        b->cur_index++;
    }
    return b->cur_offset;
}

/* `NAME:LINE:COL: (syntax): MESSAGE` at byte OFFSET; returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int fail_at(struct builder *b, size_t offset,
                                                         const char *fmt, ...)
{
    char msg[512];
    unsigned line, col;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    config__line_col(b->text, b->len, offset, &line, &col);
    if (b->err != NULL && b->errlen > 0)
        snprintf(b->err, b->errlen, "%s:%u:%u: (syntax): %s", b->name, line, col, msg);
    return -EINVAL;
}

static int fail_oom(struct builder *b)
{
    if (b->err != NULL && b->errlen > 0)
        snprintf(b->err, b->errlen, "%s: out of memory", b->name);
    return -ENOMEM;
}

static int count_node(struct builder *b, size_t at)
{
    if (++b->nodes > b->max_nodes)
        return fail_at(b, at, "the document expands to more than %zu values (aliases of aliases?)",
                       b->max_nodes);
    return 0;
}

static int put(struct builder *b, const cJSON *node, size_t key_at, size_t value_at, char *raw)
{
    return pos_put(b->doc, node, key_at, value_at, raw) == 0 ? 0 : fail_oom(b);
}

/* A copy of SRC and everything below it, positions included (an alias, a merge). */
static int copy_node(struct builder *b, const cJSON *src, size_t at, cJSON **out)
{
    const struct pos_entry *e = pos_find(b->doc, src);
    size_t key_at = e != NULL ? e->key_at : NO_KEY, value_at = e != NULL ? e->value_at : at;
    char *raw = e != NULL && e->raw != NULL ? strdup(e->raw) : NULL;
    cJSON *dst = NULL;
    int rc = count_node(b, at);

    *out = NULL;
    if (rc != 0 || (e != NULL && e->raw != NULL && raw == NULL)) {
        free(raw);
        return rc != 0 ? rc : fail_oom(b);
    }
    if (cJSON_IsNull(src))
        dst = cJSON_CreateNull();
    else if (cJSON_IsBool(src))
        dst = cJSON_CreateBool(cJSON_IsTrue(src));
    else if (cJSON_IsNumber(src))
        dst = cJSON_CreateNumber(src->valuedouble);
    else if (cJSON_IsString(src))
        dst = cJSON_CreateString(src->valuestring);
    else if (cJSON_IsArray(src))
        dst = cJSON_CreateArray();
    else
        dst = cJSON_CreateObject();
    if (dst == NULL || (rc = put(b, dst, key_at, value_at, raw)) != 0) {
        if (dst == NULL)
            free(raw);
        cJSON_Delete(dst);
        return rc != 0 ? rc : fail_oom(b);
    }
    for (const cJSON *c = src->child; c != NULL && (cJSON_IsArray(src) || cJSON_IsObject(src));
         c = c->next) {
        cJSON *child = NULL;
        rc = copy_node(b, c, at, &child);
        if (rc == 0 && cJSON_IsArray(src) && !cJSON_AddItemToArray(dst, child))
            rc = fail_oom(b);
        else if (rc == 0 && cJSON_IsObject(src) && !cJSON_AddItemToObject(dst, c->string, child))
            rc = fail_oom(b);
        if (rc != 0) {
            cJSON_Delete(child);
            cJSON_Delete(dst);
            return rc;
        }
    }
    *out = dst;
    return 0;
}

/* How many levels of collections NODE holds (0 for a scalar). */
static size_t height(const cJSON *node)
{
    size_t h = 0;

    if (!cJSON_IsArray(node) && !cJSON_IsObject(node))
        return 0;
    for (const cJSON *c = node->child; c != NULL; c = c->next) {
        size_t ch = height(c);
        if (ch > h)
            h = ch;
    }
    return h + 1;
}

/* Places a finished NODE (starting at VALUE_AT) in the open collection, or as the root. */
static int add_value(struct builder *b, cJSON *node, size_t value_at, char *raw)
{
    struct frame *f = b->depth > 0 ? &b->stack[b->depth - 1] : NULL;
    int rc;

    if (f == NULL) {
        b->doc->root = node;
        return put(b, node, NO_KEY, value_at, raw);
    }
    if (!f->mapping) {
        if (!cJSON_AddItemToArray(f->node, node)) {
            free(raw);
            cJSON_Delete(node);
            return fail_oom(b);
        }
        return put(b, node, NO_KEY, value_at, raw);
    }
    if (f->merge) {
        /* Kept aside until the mapping ends; anchors may name it, so it lives on. */
        struct merge_source *m = f->merges;
        if (f->n_merges == f->cap_merges) {
            size_t ncap = f->cap_merges == 0 ? 2 : 2 * f->cap_merges;
            m = realloc(f->merges, ncap * sizeof(*m));
            if (m == NULL) {
                free(raw);
                cJSON_Delete(node);
                return fail_oom(b);
            }
            f->merges = m;
            f->cap_merges = ncap;
        }
        if (!cJSON_AddItemToArray(b->doc->graveyard, node)) {
            free(raw);
            cJSON_Delete(node);
            return fail_oom(b);
        }
        m[f->n_merges++] = (struct merge_source){node, value_at};
        rc = put(b, node, f->key_at, value_at, raw);
    } else {
        if (!cJSON_AddItemToObject(f->node, f->key, node)) {
            free(raw);
            cJSON_Delete(node);
            return fail_oom(b);
        }
        rc = put(b, node, f->key_at, value_at, raw);
    }
    free(f->key);
    f->key = NULL;
    f->have_key = false;
    f->merge = false;
    return rc;
}

static int add_anchor(struct builder *b, char *name, const cJSON *node)
{
    if (b->n_anchors == b->cap_anchors) {
        size_t ncap = b->cap_anchors == 0 ? 8 : 2 * b->cap_anchors;
        struct anchor *a = realloc(b->anchors, ncap * sizeof(*a));
        if (a == NULL) {
            free(name);
            return fail_oom(b);
        }
        b->anchors = a;
        b->cap_anchors = ncap;
    }
    b->anchors[b->n_anchors++] = (struct anchor){name, node};
    return 0;
}

/* add_value, then NAME (taken over; NULL: none) names the node for later aliases. */
static int add_named(struct builder *b, cJSON *node, size_t at, char *raw, char *name)
{
    int rc = add_value(b, node, at, raw);

    if (rc == 0 && name != NULL)
        return add_anchor(b, name, node);
    free(name);
    return rc;
}

static char *dup_anchor(const yaml_char_t *anchor)
{
    return anchor != NULL ? strdup((const char *)anchor) : NULL;
}

/* ---- scalars, resolved as yaml.v3 resolves plain ones ---- */

static bool one_of(const char *s, const char *const *words)
{
    for (; *words != NULL; words++) {
        if (strcmp(s, *words) == 0)
            return true;
    }
    return false;
}

/* [0-9]+ in BASE, all of S; at least one digit. */
static bool digits_in_base(const char *s, int base, double *out)
{
    double v = 0;

    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        int d = *s >= '0' && *s <= '9'   ? *s - '0'
                : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
                : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
                                         : 99;
        if (d >= base)
            return false;
        v = v * base + d;
    }
    *out = v;
    return true;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$, yaml.v3's float. */
static bool yaml_float(const char *s)
{
    bool digits = false;

    if (*s == '+' || *s == '-')
        s++;
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++)
            digits = true;
    } else {
        for (; *s >= '0' && *s <= '9'; s++)
            digits = true;
        if (digits && *s == '.')
            for (s++; *s >= '0' && *s <= '9'; s++)
                ;
    }
    if (!digits)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

/* An integer (Go's base prefixes 0b 0o 0x, and 0777 as octal; '_' dropped) or a float. */
static bool resolve_number(const char *in, double *out)
{
    static const char *const inf[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const ninf[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nan[] = {".nan", ".NaN", ".NAN", NULL};
    char buf[128], *p = buf;
    size_t n = 0;
    bool neg = false;
    double v = 0;

    if (one_of(in, inf) || one_of(in, ninf)) {
        *out = one_of(in, inf) ? HUGE_VAL : -HUGE_VAL;
        return true;
    }
    if (one_of(in, nan)) {
        *out = (double)NAN;
        return true;
    }
    for (; *in != '\0'; in++) {
        if (*in == '_')
            continue;
        if (n + 1 >= sizeof(buf))
            return false;
        buf[n++] = *in;
    }
    buf[n] = '\0';
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (p[0] == '0' && p[1] != '\0') {
        char x = p[1];
        bool ok = x == 'x' || x == 'X'   ? digits_in_base(p + 2, 16, &v)
                  : x == 'o' || x == 'O' ? digits_in_base(p + 2, 8, &v)
                  : x == 'b' || x == 'B' ? digits_in_base(p + 2, 2, &v)
                                         : digits_in_base(p + 1, 8, &v);
        if (ok) {
            *out = neg ? -v : v;
            return true;
        }
    } else if (digits_in_base(p, 10, &v)) {
        *out = neg ? -v : v;
        return true;
    }
    if (!yaml_float(buf))
        return false;
    *out = strtod(buf, NULL);
    return true;
}

/* The node for a scalar event, and *raw (malloc'd) when it is not a string. */
static int scalar_node(struct builder *b, const yaml_event_t *e, size_t at, cJSON **out, char **raw)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", "y",  "Y",  "yes",
                                        "Yes",  "YES",  "on",   "On", "ON", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", "n",   "N",   "no",
                                         "No",    "NO",    "off",   "Off", "OFF", NULL};
    static const char *const core[] = {"tag:yaml.org,2002:null", "tag:yaml.org,2002:bool",
                                       "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", NULL};
    const char *s = (const char *)e->data.scalar.value, *tag = (const char *)e->data.scalar.tag;
    bool plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    double v = 0;

    *out = NULL;
    *raw = NULL;
    if (memchr(s, '\0', e->data.scalar.length) != NULL)
        return fail_at(b, at, "a string without NUL (\\0)");
    if (tag != NULL && strcmp(tag, "tag:yaml.org,2002:str") != 0 && strcmp(tag, "!") != 0 &&
        !one_of(tag, core))
        return fail_at(b, at, "unsupported tag \"%.64s\"", tag);
    if (tag != NULL && one_of(tag, core))
        plain = true; /* !!int "5": read as the plain scalar 5 */
    else if (tag != NULL)
        plain = false; /* !!str 5, or "!": a string */
    if (!plain)
        *out = cJSON_CreateString(s);
    else if (one_of(s, nulls))
        *out = cJSON_CreateNull();
    else if (one_of(s, trues) || one_of(s, falses))
        *out = cJSON_CreateBool(one_of(s, trues));
    else if (resolve_number(s, &v))
        *out = cJSON_CreateNumber(v);
    else
        *out = cJSON_CreateString(s);
    if (*out != NULL && !cJSON_IsString(*out) && (*raw = strdup(s)) == NULL) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return *out == NULL ? fail_oom(b) : 0;
}

/* ---- events ---- */

static bool has_key(const cJSON *obj, const char *key)
{
    for (const cJSON *c = obj->child; c != NULL; c = c->next) {
        if (strcmp(c->string, key) == 0)
            return true;
    }
    return false;
}

/* Copies into F's mapping the members of SRC it does not have. */
static int merge_from(struct builder *b, struct frame *f, const cJSON *src, size_t at)
{
    for (const cJSON *c = src->child; c != NULL; c = c->next) {
        cJSON *copy = NULL;
        int rc;

        if (has_key(f->node, c->string))
            continue;
        rc = copy_node(b, c, at, &copy);
        if (rc != 0)
            return rc;
        /* copy_node kept the member's own key and value positions */
        if (!cJSON_AddItemToObject(f->node, c->string, copy)) {
            cJSON_Delete(copy);
            return fail_oom(b);
        }
    }
    return 0;
}

static int apply_merges(struct builder *b, struct frame *f)
{
    for (size_t i = 0; i < f->n_merges; i++) {
        const cJSON *src = f->merges[i].node;
        int rc = 0;

        if (cJSON_IsObject(src)) {
            rc = merge_from(b, f, src, f->merges[i].at);
        } else if (cJSON_IsArray(src)) {
            for (const cJSON *c = src->child; rc == 0 && c != NULL; c = c->next) {
                const struct pos_entry *e = pos_find(b->doc, c);
                size_t at = e != NULL ? e->value_at : f->merges[i].at;
                rc = cJSON_IsObject(c) ? merge_from(b, f, c, at)
                                       : fail_at(b, at, "a mapping to merge (\"<<\")");
            }
        } else {
            rc = fail_at(b, f->merges[i].at, "a mapping, or a list of mappings, to merge (\"<<\")");
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void frame_free(struct frame *f)
{
    free(f->key);
    free(f->anchor);
    free(f->merges);
    memset(f, 0, sizeof(*f));
}

static int open_collection(struct builder *b, const yaml_event_t *e, bool mapping)
{
    size_t at = mark_offset(b, e->start_mark);
    const yaml_char_t *anchor =
        mapping ? e->data.mapping_start.anchor : e->data.sequence_start.anchor;
    struct frame *parent = b->depth > 0 ? &b->stack[b->depth - 1] : NULL;
    struct frame *f;
    int rc;

    if (parent != NULL && parent->mapping && !parent->have_key)
        return fail_at(b, at, "a scalar key (a mapping or a list as a key is not supported)");
    if (b->depth == CONFIG_MAX_DEPTH)
        return fail_at(b, at, "nesting at most %d levels deep", CONFIG_MAX_DEPTH);
    if ((rc = count_node(b, at)) != 0)
        return rc;
    f = &b->stack[b->depth];
    memset(f, 0, sizeof(*f));
    f->mapping = mapping;
    f->value_at = at;
    f->node = mapping ? cJSON_CreateObject() : cJSON_CreateArray();
    f->anchor = dup_anchor(anchor);
    if (f->node == NULL || (anchor != NULL && f->anchor == NULL)) {
        cJSON_Delete(f->node);
        frame_free(f);
        return fail_oom(b);
    }
    b->depth++;
    return 0;
}

static int close_collection(struct builder *b)
{
    struct frame *f = &b->stack[b->depth - 1];
    cJSON *node = f->node;
    char *anchor = f->anchor;
    size_t at = f->value_at;
    int rc = f->mapping ? apply_merges(b, f) : 0;

    f->anchor = NULL;
    f->node = NULL;
    frame_free(f);
    b->depth--;
    if (rc != 0) {
        cJSON_Delete(node);
        free(anchor);
        return rc;
    }
    return add_named(b, node, at, NULL, anchor);
}

static int on_scalar(struct builder *b, const yaml_event_t *e)
{
    struct frame *f = b->depth > 0 ? &b->stack[b->depth - 1] : NULL;
    size_t at = mark_offset(b, e->start_mark);
    const char *anchor = (const char *)e->data.scalar.anchor;
    cJSON *node = NULL;
    char *raw = NULL, *name = NULL;
    int rc;

    if (f != NULL && f->mapping && !f->have_key) {
        const char *key = (const char *)e->data.scalar.value;
        if (memchr(key, '\0', e->data.scalar.length) != NULL)
            return fail_at(b, at, "a key without NUL (\\0)");
        if (anchor != NULL)
            return fail_at(b, at, "a key without an anchor (anchored keys are not supported)");
        f->merge = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && e->data.scalar.tag == NULL &&
                   strcmp(key, "<<") == 0;
        f->key = strdup(key);
        if (f->key == NULL)
            return fail_oom(b);
        f->key_at = at;
        f->have_key = true;
        return 0;
    }
    if ((rc = count_node(b, at)) != 0 || (rc = scalar_node(b, e, at, &node, &raw)) != 0)
        return rc;
    if (anchor != NULL && (name = strdup(anchor)) == NULL) {
        free(raw);
        cJSON_Delete(node);
        return fail_oom(b);
    }
    return add_named(b, node, at, raw, name);
}

static int on_alias(struct builder *b, const yaml_event_t *e)
{
    struct frame *f = b->depth > 0 ? &b->stack[b->depth - 1] : NULL;
    size_t at = mark_offset(b, e->start_mark);
    const char *name = (const char *)e->data.alias.anchor;
    const cJSON *target = NULL;
    cJSON *copy = NULL;
    int rc;

    if (f != NULL && f->mapping && !f->have_key)
        return fail_at(b, at, "a scalar key (an alias as a key is not supported)");
    for (size_t i = b->n_anchors; i-- > 0 && target == NULL;) {
        if (strcmp(b->anchors[i].name, name) == 0)
            target = b->anchors[i].node;
    }
    if (target == NULL) {
        for (size_t d = 0; d < b->depth; d++) {
            if (b->stack[d].anchor != NULL && strcmp(b->stack[d].anchor, name) == 0)
                return fail_at(b, at, "an alias to a finished node (*%.64s is inside it)", name);
        }
        return fail_at(b, at, "a known anchor (no &%.64s before this *%.64s)", name, name);
    }
    if (f != NULL && f->mapping && f->merge) {
        /* "<<: *base" merges the anchored mapping itself: no copy needed. */
        struct merge_source *m = f->merges;
        if (f->n_merges == f->cap_merges) {
            size_t ncap = f->cap_merges == 0 ? 2 : 2 * f->cap_merges;
            m = realloc(f->merges, ncap * sizeof(*m));
            if (m == NULL)
                return fail_oom(b);
            f->merges = m;
            f->cap_merges = ncap;
        }
        m[f->n_merges++] = (struct merge_source){target, at};
        free(f->key);
        f->key = NULL;
        f->have_key = false;
        f->merge = false;
        return 0;
    }
    if (b->depth + height(target) > CONFIG_MAX_DEPTH)
        return fail_at(b, at, "nesting at most %d levels deep (with *%.64s in place)",
                       CONFIG_MAX_DEPTH, name);
    rc = copy_node(b, target, at, &copy);
    return rc != 0 ? rc : add_value(b, copy, at, NULL);
}

static int syntax_error(struct builder *b, const yaml_parser_t *p)
{
    size_t at;

    if (p->error == YAML_MEMORY_ERROR)
        return fail_oom(b);
    if (p->error == YAML_READER_ERROR) {
        at = p->problem_offset < b->len ? p->problem_offset : b->len;
        if (p->problem_value >= 0)
            return fail_at(b, at, "%s: byte 0x%02x", p->problem, (unsigned)p->problem_value);
        return fail_at(b, at, "%s", p->problem != NULL ? p->problem : "unreadable text");
    }
    if (p->context != NULL) {
        unsigned line, col;
        config__line_col(b->text, b->len, mark_offset(b, p->context_mark), &line, &col);
        at = mark_offset(b, p->problem_mark);
        return fail_at(b, at, "%s (%s at %u:%u)", p->problem, p->context, line, col);
    }
    at = mark_offset(b, p->problem_mark);
    return fail_at(b, at, "%s", p->problem != NULL ? p->problem : "malformed YAML");
}

static int on_event(struct builder *b, const yaml_event_t *e)
{
    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1)
            return fail_at(b, mark_offset(b, e->start_mark),
                           "one YAML document, got a second one here");
        return 0;
    case YAML_MAPPING_START_EVENT:
        return open_collection(b, e, true);
    case YAML_SEQUENCE_START_EVENT:
        return open_collection(b, e, false);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        return close_collection(b);
    case YAML_SCALAR_EVENT:
        return on_scalar(b, e);
    case YAML_ALIAS_EVENT:
        return on_alias(b, e);
    default:
        return 0;
    }
}

int config__yaml_parse(const char *name, const char *text, size_t len, struct config__yaml **out,
                       char *err, size_t errlen)
{
    struct builder b;
    yaml_parser_t parser;
    bool done = false;
    int rc = 0;

    *out = NULL;
    memset(&b, 0, sizeof(b));
    b.name = name;
    b.text = text;
    b.len = len;
    b.err = err;
    b.errlen = errlen;
    /* Each node takes at least a byte of text but for aliases; this leaves room for a
     * shared block copied a few times, and none for an exponential chain. */
    b.max_nodes = 2 * len + 10000;
    b.doc = calloc(1, sizeof(*b.doc));
    if (b.doc == NULL || (b.doc->graveyard = cJSON_CreateArray()) == NULL) {
        free(b.doc);
        return fail_oom(&b);
    }
    if (!yaml_parser_initialize(&parser)) {
        config__yaml_free(b.doc);
        return fail_oom(&b);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    while (rc == 0 && !done) {
        yaml_event_t e;
        if (!yaml_parser_parse(&parser, &e)) {
            rc = syntax_error(&b, &parser);
            break;
        }
        rc = on_event(&b, &e);
        done = e.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&parser);
    while (b.depth > 0) {
        cJSON_Delete(b.stack[b.depth - 1].node);
        frame_free(&b.stack[--b.depth]);
    }
    for (size_t i = 0; i < b.n_anchors; i++)
        free(b.anchors[i].name);
    free(b.anchors);
    if (rc != 0) {
        config__yaml_free(b.doc);
        return rc;
    }
    *out = b.doc;
    return 0;
}

void config__yaml_free(struct config__yaml *y)
{
    if (y == NULL)
        return;
    for (size_t i = 0; i < y->cap; i++)
        free(y->table[i].raw);
    free(y->table);
    cJSON_Delete(y->root);
    cJSON_Delete(y->graveyard);
    free(y);
}

const struct cJSON *config__yaml_root(const struct config__yaml *y)
{
    return y->root;
}

const char *config__yaml_raw(const struct config__yaml *y, const struct cJSON *node)
{
    const struct pos_entry *e = pos_find(y, node);
    return e != NULL ? e->raw : NULL;
}

/* The child of NODE at step E: the E->occurrence-th member named E->key, or an index. */
static const cJSON *step(const cJSON *node, const struct config__path_elem *e)
{
    unsigned seen = 0;
    size_t i = 0;

    if (e->key != NULL && !cJSON_IsObject(node))
        return NULL;
    if (e->key == NULL && !cJSON_IsArray(node))
        return NULL;
    for (const cJSON *c = node->child; c != NULL; c = c->next, i++) {
        if (e->key != NULL ? strcmp(c->string, e->key) == 0 && seen++ == e->occurrence
                           : i == e->index)
            return c;
    }
    return NULL;
}

size_t config__yaml_locate(const struct config__yaml *y, const struct config__path_elem *path,
                           size_t depth, bool want_key)
{
    const cJSON *node = y->root, *next;
    const struct pos_entry *e;
    size_t d = 0;

    if (node == NULL)
        return 0;
    for (; d < depth && (next = step(node, &path[d])) != NULL; d++)
        node = next;
    e = pos_find(y, node);
    if (e == NULL)
        return 0;
    return want_key && d == depth && depth > 0 && e->key_at != NO_KEY ? e->key_at : e->value_at;
}

const char *config_yaml_library_version(void)
{
    return yaml_get_version_string();
}
