/*
 * The exposition writer: Prometheus text 0.0.4 and OpenMetrics 1.0.0 families, samples and
 * histograms appended to a text_buf.
 *
 * Strings: label values and HELP text come from configuration and users. Prometheus rejects
 * a whole scrape on one invalid UTF-8 label value, so invalid sequences become U+FFFD, one per
 * maximal invalid subsequence (Unicode's recommended practice), in both formats.
 */
#include "exporter/prom/prom.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static bool name_char(char c, bool first, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
           (!first && c >= '0' && c <= '9');
}

static bool valid_name(const char *s, bool colon)
{
    if (s == NULL || *s == '\0')
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (!name_char(*p, p == s, colon))
            return false;
    return true;
}

bool prom_valid_metric_name(const char *name)
{
    return valid_name(name, true);
}

bool prom_valid_label_name(const char *name)
{
    return valid_name(name, false);
}

/* Length of the valid UTF-8 sequence at p (2-4), or 0 with *bad set to the length of the
 * maximal invalid subsequence to replace (>= 1). Table 3-7 of the Unicode standard: no
 * overlongs, no surrogates, nothing above U+10FFFF. p is NUL-terminated, and NUL is never a
 * continuation byte, so the reads stop at the end of the string. */
static size_t utf8_seq(const unsigned char *p, size_t *bad)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        *bad = 1;
        return 0;
    }
    if (p[1] < lo || p[1] > hi) {
        *bad = 1;
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) {
            *bad = i;
            return 0;
        }
    }
    return n;
}

/* Appends s escaped: backslash and newline always, the double quote when quote is set;
 * invalid UTF-8 becomes U+FFFD. Literal runs are copied in one piece. */
static void append_escaped(struct text_buf *b, const char *s, bool quote)
{
    const unsigned char *p = (const unsigned char *)s, *run = p;
    while (*p != '\0') {
        const char *rep;
        size_t skip = 1;
        if (*p == '\\') {
            rep = "\\\\";
        } else if (*p == '\n') {
            rep = "\\n";
        } else if (*p == '"' && quote) {
            rep = "\\\"";
        } else if (*p < 0x80) {
            p++;
            continue;
        } else {
            size_t n = utf8_seq(p, &skip);
            if (n != 0) {
                p += n;
                continue;
            }
            rep = "\xEF\xBF\xBD";
        }
        text_buf_append(b, run, (size_t)(p - run));
        text_buf_append_str(b, rep);
        p += skip;
        run = p;
    }
    text_buf_append(b, run, (size_t)(p - run));
}

/* ---- the writer ---- */

const char *prom_content_type(enum prom_format format)
{
    return format == PROM_FORMAT_OPENMETRICS
               ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
               : "text/plain; version=0.0.4; charset=utf-8";
}

void prom_writer_init(struct prom_writer *w, struct text_buf *buf, enum prom_format format)
{
    w->buf = buf;
    w->format = format;
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static const char *type_name(enum prom_type type, enum prom_format format)
{
    switch (type) {
    case PROM_TYPE_GAUGE:
        return "gauge";
    case PROM_TYPE_COUNTER:
        return "counter";
    case PROM_TYPE_HISTOGRAM:
        return "histogram";
    case PROM_TYPE_UNTYPED:
        return format == PROM_FORMAT_OPENMETRICS ? "unknown" : "untyped";
    }
    return NULL;
}

int prom_family(struct prom_writer *w, const char *name, enum prom_type type, const char *help,
                const char *unit)
{
    struct text_buf *b = w->buf;
    if (text_buf_error(b) != 0)
        return text_buf_error(b);
    const char *tname = type_name(type, w->format);
    if (tname == NULL || !prom_valid_metric_name(name))
        return text_buf_fail(b, -EINVAL);
    /* The family name: counters' without "_total" (OpenMetrics prints it that way). */
    size_t len = strlen(name), fam = len;
    if (type == PROM_TYPE_COUNTER) {
        if (!ends_with(name, len, "_total") || len == strlen("_total"))
            return text_buf_fail(b, -EINVAL);
        fam = len - strlen("_total");
    }
    if (unit != NULL) {
        size_t ulen = strlen(unit);
        if (!valid_name(unit, true) || ulen + 1 >= fam || name[fam - ulen - 1] != '_' ||
            memcmp(name + fam - ulen, unit, ulen) != 0)
            return text_buf_fail(b, -EINVAL);
    }
    int flen = (int)(w->format == PROM_FORMAT_OPENMETRICS ? fam : len);
    bool om = w->format == PROM_FORMAT_OPENMETRICS;
    bool has_help = help != NULL && *help != '\0';
    if (!om && has_help) {
        text_buf_printf(b, "# HELP %s ", name);
        append_escaped(b, help, false);
        text_buf_append(b, "\n", 1);
    }
    text_buf_printf(b, "# TYPE %.*s %s\n", flen, name, tname);
    if (om && unit != NULL)
        text_buf_printf(b, "# UNIT %.*s %s\n", flen, name, unit);
    if (om && has_help) {
        text_buf_printf(b, "# HELP %.*s ", flen, name);
        append_escaped(b, help, true);
        text_buf_append(b, "\n", 1);
    }
    return text_buf_error(b);
}

static bool valid_labels(const struct prom_label *l, size_t n)
{
    if (n != 0 && l == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!prom_valid_label_name(l[i].name) || l[i].value == NULL)
            return false;
    return true;
}

static void put_labels(struct text_buf *b, const struct prom_label *l, size_t n, bool *first)
{
    for (size_t i = 0; i < n; i++) {
        text_buf_append(b, *first ? "{" : ",", 1);
        *first = false;
        text_buf_append_str(b, l[i].name);
        text_buf_append(b, "=\"", 2);
        append_escaped(b, l[i].value, true);
        text_buf_append(b, "\"", 1);
    }
}

/* "name<suffix>{a..., b..., le="..."} " (le when not NULL); names were validated. */
static void put_series(struct text_buf *b, const char *name, const char *suffix,
                       const struct prom_label *a, size_t n_a, const struct prom_label *l2,
                       size_t n_b, const char *le)
{
    bool first = true;
    text_buf_append_str(b, name);
    text_buf_append_str(b, suffix);
    put_labels(b, a, n_a, &first);
    put_labels(b, l2, n_b, &first);
    if (le != NULL) {
        text_buf_append_str(b, first ? "{le=\"" : ",le=\"");
        text_buf_append_str(b, le);
        text_buf_append(b, "\"", 1);
        first = false;
    }
    text_buf_append_str(b, first ? " " : "} ");
}

int prom_sample2(struct prom_writer *w, const char *name, const struct prom_label *a, size_t n_a,
                 const struct prom_label *b, size_t n_b, double value)
{
    struct text_buf *out = w->buf;
    if (text_buf_error(out) != 0)
        return text_buf_error(out);
    if (!prom_valid_metric_name(name) || !valid_labels(a, n_a) || !valid_labels(b, n_b))
        return text_buf_fail(out, -EINVAL);
    char num[PROM_NUMBER_MAX];
    size_t len = prom_format_value(value, num, sizeof num);
    num[len++] = '\n';
    put_series(out, name, "", a, n_a, b, n_b, NULL);
    return text_buf_append(out, num, len);
}

int prom_sample(struct prom_writer *w, const char *name, const struct prom_label *labels,
                size_t n_labels, double value)
{
    return prom_sample2(w, name, labels, n_labels, NULL, 0, value);
}

/* "<v>\n" without printf: histograms write many of these. */
static void put_u64_line(struct text_buf *out, uint64_t v)
{
    char digits[24];
    size_t i = sizeof(digits);

    digits[--i] = '\n';
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    text_buf_append(out, digits + i, sizeof(digits) - i);
}

int prom_histogram(struct prom_writer *w, const char *name, const struct prom_label *a, size_t n_a,
                   const struct prom_label *b, size_t n_b, const struct prom_buckets *h)
{
    struct text_buf *out = w->buf;
    if (text_buf_error(out) != 0)
        return text_buf_error(out);
    if (!prom_valid_metric_name(name) || !valid_labels(a, n_a) || !valid_labels(b, n_b) ||
        (h->n_bounds != 0 && (h->bounds == NULL || h->counts == NULL)))
        return text_buf_fail(out, -EINVAL);
    uint64_t total = 0;
    for (size_t i = 0; i < h->n_bounds; i++) {
        if (!isfinite(h->bounds[i]) || (i > 0 && !(h->bounds[i] > h->bounds[i - 1])) ||
            h->counts[i] > h->count - total)
            return text_buf_fail(out, -EINVAL);
        total += h->counts[i];
    }
    char le[PROM_NUMBER_MAX];
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h->n_bounds; i++) {
        cumulative += h->counts[i];
        if (h->le == NULL)
            prom_format_le(h->bounds[i], w->format, le, sizeof le);
        put_series(out, name, "_bucket", a, n_a, b, n_b, h->le != NULL ? h->le[i] : le);
        put_u64_line(out, cumulative);
    }
    put_series(out, name, "_bucket", a, n_a, b, n_b, "+Inf");
    put_u64_line(out, h->count);
    char num[PROM_NUMBER_MAX];
    prom_format_value(h->sum, num, sizeof num);
    put_series(out, name, "_sum", a, n_a, b, n_b, NULL);
    text_buf_printf(out, "%s\n", num);
    put_series(out, name, "_count", a, n_a, b, n_b, NULL);
    return text_buf_printf(out, "%llu\n", (unsigned long long)h->count);
}

int prom_finish(struct prom_writer *w)
{
    if (w->format == PROM_FORMAT_OPENMETRICS)
        text_buf_append_str(w->buf, "# EOF\n");
    return text_buf_error(w->buf);
}
