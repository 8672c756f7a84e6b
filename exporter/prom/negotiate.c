/*
 * HTTP content negotiation for the exposition: which format an Accept header asks for, and
 * whether Accept-Encoding takes gzip (client_golang's rules).
 */
#include "exporter/prom/prom.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One element of a comma-separated header; the pointers point into the header. */
struct clause {
    const char *type, *sub; /* sub is NULL for Accept-Encoding */
    size_t type_len, sub_len;
    const char *version; /* NULL when absent */
    size_t version_len;
    int q; /* 0..1000 */
};

static bool tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static const char *token(const char *p, const char **start, size_t *len)
{
    *start = p;
    while (tchar(*p))
        p++;
    *len = (size_t)(p - *start);
    return p;
}

/* qvalue = "0" [ "." 0*3DIGIT ] / "1" [ "." 0*3("0") ] (RFC 9110), in thousandths; -1 if
 * malformed. */
static int parse_q(const char *s, size_t len)
{
    if (len == 0 || (s[0] != '0' && s[0] != '1') || (len > 1 && s[1] != '.') || len > 5)
        return -1;
    int q = (s[0] - '0') * 1000, scale = 100;
    for (size_t i = 2; i < len; i++, scale /= 10) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        q += (s[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

static bool same(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(s, lit, len) == 0;
}

/* Parses one element at p (media range when media is set, else a content coding) and its
 * parameters. Returns the position after the element's comma or the end; c->q is -1 when
 * the element is malformed (and is then skipped by the callers). */
static const char *parse_clause(const char *p, bool media, struct clause *c)
{
    memset(c, 0, sizeof *c);
    c->q = 1000;
    p = token(skip_ows(p), &c->type, &c->type_len);
    if (media) {
        if (*p == '/')
            p = token(p + 1, &c->sub, &c->sub_len);
        if (c->sub_len == 0)
            c->q = -1;
    }
    if (c->type_len == 0)
        c->q = -1;
    for (p = skip_ows(p); *p == ';'; p = skip_ows(p)) {
        const char *name, *val;
        size_t name_len, val_len;
        p = token(skip_ows(p + 1), &name, &name_len);
        p = skip_ows(p);
        if (*p != '=') {
            if (*p == ';' || *p == ',' || *p == '\0')
                continue; /* "a;;b", "a;flag", a trailing ';': ignored, as goautoneg does */
            c->q = -1;
            break;
        }
        if (name_len == 0) {
            c->q = -1;
            break;
        }
        p = skip_ows(p + 1);
        if (*p == '"') {
            val = ++p;
            while (*p != '\0' && *p != '"')
                p += p[0] == '\\' && p[1] != '\0' ? 2 : 1;
            val_len = (size_t)(p - val);
            if (*p == '"')
                p++;
        } else {
            p = token(p, &val, &val_len);
        }
        if (same(name, name_len, "q")) {
            c->q = parse_q(val, val_len);
            if (c->q < 0)
                break;
        } else if (same(name, name_len, "version")) {
            c->version = val;
            c->version_len = val_len;
        }
    }
    if (*p != ',' && *p != '\0')
        c->q = -1;
    /* Resynchronise on the next comma outside a quoted string. */
    for (bool quoted = false; *p != '\0' && (quoted || *p != ','); p++) {
        if (*p == '"')
            quoted = !quoted;
        else if (*p == '\\' && quoted && p[1] != '\0')
            p++;
    }
    return *p == ',' ? p + 1 : p;
}

static bool version_is(const struct clause *c, const char *v)
{
    return c->version == NULL ||
           (c->version_len == strlen(v) && memcmp(c->version, v, c->version_len) == 0);
}

enum prom_format prom_negotiate(const char *accept)
{
    enum prom_format best = PROM_FORMAT_TEXT;
    int best_q = 0;
    for (const char *p = accept; p != NULL && *p != '\0';) {
        struct clause c;
        p = parse_clause(p, true, &c);
        if (c.q <= best_q) /* unacceptable, malformed, or not better than an earlier one */
            continue;
        if (same(c.type, c.type_len, "application") && same(c.sub, c.sub_len, "openmetrics-text") &&
            version_is(&c, "1.0.0")) {
            best = PROM_FORMAT_OPENMETRICS;
            best_q = c.q;
        } else if (same(c.type, c.type_len, "text") && same(c.sub, c.sub_len, "plain") &&
                   version_is(&c, "0.0.4")) {
            best = PROM_FORMAT_TEXT;
            best_q = c.q;
        }
    }
    return best;
}

bool prom_accepts_gzip(const char *accept_encoding)
{
    int gzip_q = -1, star_q = -1;
    for (const char *p = accept_encoding; p != NULL && *p != '\0';) {
        struct clause c;
        p = parse_clause(p, false, &c);
        if (c.q < 0)
            continue;
        if (same(c.type, c.type_len, "gzip") || same(c.type, c.type_len, "x-gzip"))
            gzip_q = c.q > gzip_q ? c.q : gzip_q;
        else if (same(c.type, c.type_len, "*"))
            star_q = c.q > star_q ? c.q : star_q;
    }
    return gzip_q >= 0 ? gzip_q > 0 : star_q > 0;
}
