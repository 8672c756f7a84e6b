/*
 * libFuzzer target over exporter/prom/prom.h: metric families, samples and histograms built from
 * the input are rendered in both formats (text 0.0.4 and OpenMetrics 1.0.0), and each
 * exposition is parsed back by a small checker written here from the two formats' rules,
 * which must find exactly what was written: the same names, types, units and help (unescaped),
 * the same label values (unescaped; invalid UTF-8 replaced by U+FFFD per maximal subpart,
 * computed here independently), and the same numbers (NaN, +Inf, -Inf included), each
 * written as the shortest text that reads back (C %g style for values, Go 'g' -1 for le,
 * OpenMetrics' ".0"), again computed here independently.
 *
 * Also: invalid names, units and buckets are refused with -EINVAL; a size limit either
 * leaves the text whole or fails with -E2BIG and nothing half-written; errors are sticky;
 * gzip of the text inflates back to it.
 *
 * With FUZZ_RENDER_DUMP=DIR in the environment (the promtool test), the renderings of every
 * valid input are also written to DIR as N.prom (text) and N.om (OpenMetrics), each when its
 * families make a scrape that format's parsers accept (see scrape_consistent).
 *
 * Input: a flags byte (raw names allowed, gzip, a small size limit), then families, each:
 * a header byte (type, unit, raw names, sample count), name, help and unit strings (a length
 * byte and bytes), then its samples: a label count byte, labels (name and value strings), and
 * a value (8 bytes, any double) or, for a histogram, bounds, per-bucket counts and a sum.
 */
#include "exporter/prom/prom.h"
#include "fuzz.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include <zlib.h>

#define MAX_FAMILIES 6
#define MAX_SAMPLES  5
#define MAX_LABELS   4
#define MAX_BOUNDS   8
#define STR_MAX      64  /* bytes of input per string */
#define NAME_MAX_LEN 160 /* base, "_", unit, "_total" */
#define TEXT_MAX     512 /* a string after replacement and escaping */

struct mlabel {
    char name[STR_MAX + 1];
    char value[STR_MAX + 1];
};

struct msample {
    struct mlabel labels[MAX_LABELS];
    size_t n_labels, n_a; /* the first n_a go in prom_sample2's a, the rest in b */
    double value;
    /* histograms */
    double bounds[MAX_BOUNDS];
    uint64_t counts[MAX_BOUNDS];
    size_t n_bounds;
    uint64_t count;
    double sum;
    bool pass_le; /* hand the writer preformatted le strings */
};

struct mfamily {
    char name[NAME_MAX_LEN];
    enum prom_type type;
    char help[STR_MAX + 1];
    char unit[STR_MAX + 1];
    bool has_unit;
    struct msample samples[MAX_SAMPLES];
    size_t n_samples;
};

struct model {
    struct mfamily families[MAX_FAMILIES];
    size_t n_families;
    size_t limit; /* 0: no small size limit */
    bool gzip;    /* also check prom_gzip (costly: a deflate stream per input) */
};

static const char *dump_dir;
static unsigned long dump_seq;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dump_dir = getenv("FUZZ_RENDER_DUMP");
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Reading the input.
 */

struct reader {
    const uint8_t *p;
    size_t n;
};

static uint8_t take(struct reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static uint64_t take_u64(struct reader *r)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v |= (uint64_t)take(r) << (8 * i);
    return v;
}

static double take_double(struct reader *r)
{
    uint64_t bits = take_u64(r);
    double v;

    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* A length byte and that many bytes; the C string ends at a NUL among them, as the writer
 * sees it. */
static void take_str(struct reader *r, char *out)
{
    size_t len = take(r) % (STR_MAX + 1);

    for (size_t i = 0; i < len; i++)
        out[i] = (char)take(r);
    out[len] = '\0';
}

static const char name_chars[] = "abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789";

/* Makes a valid name of the bytes: characters valid where they stand are kept (so seeds
 * read as names), others are mapped onto one that is. Metric names may use ':', label names
 * not; neither starts with a digit. */
static void make_name(char *s, bool colon)
{
    size_t first = colon ? 54 : 53, all = colon ? 64 : 63;
    size_t i = 0;

    for (; s[i] != '\0'; i++) {
        const char *at = strchr(name_chars, s[i]);
        size_t k = at != NULL ? (size_t)(at - name_chars) : (unsigned char)s[i];
        /* Label names skip the colon (at 53) and take the digits after it. */
        if (!colon && at != NULL && k > 53)
            k--;
        k %= i == 0 ? first : all;
        s[i] = name_chars[!colon && k >= 53 ? k + 1 : k];
    }
    if (i == 0) {
        s[0] = 'm';
        s[1] = '\0';
    }
}

static void cat(char *dst, size_t size, const char *a, const char *b)
{
    snprintf(dst, size, "%s%s", a, b);
}

static void read_model(struct reader *r, struct model *m)
{
    uint8_t flags = take(r);

    memset(m, 0, sizeof(*m));
    m->limit = flags & 0x80 ? (size_t)(flags & 0x7f) * 16 : 0;
    m->gzip = (flags & 2) != 0;
    while (r->n > 0 && m->n_families < MAX_FAMILIES) {
        struct mfamily *f = &m->families[m->n_families++];
        uint8_t h = take(r);
        bool raw = (h & 8) != 0 && (flags & 1) != 0; /* names left as the bytes came */
        char base[STR_MAX + 1], tmp[NAME_MAX_LEN];

        f->type = (enum prom_type)(h & 3);
        f->has_unit = (h & 4) != 0;
        f->n_samples = ((size_t)h >> 4) % (MAX_SAMPLES + 1);
        take_str(r, base);
        take_str(r, f->help);
        take_str(r, f->unit);
        if (!raw) {
            make_name(base, true);
            make_name(f->unit, true);
        }
        /* name = base [_unit] [_total]: what a well-behaved caller passes. */
        if (f->has_unit && !raw) {
            cat(tmp, sizeof(tmp), base, "_");
            cat(f->name, sizeof(f->name), tmp, f->unit);
        } else {
            cat(f->name, sizeof(f->name), base, "");
        }
        if (f->type == PROM_TYPE_COUNTER && !raw) {
            cat(tmp, sizeof(tmp), f->name, "_total");
            cat(f->name, sizeof(f->name), tmp, "");
        }
        for (size_t i = 0; i < f->n_samples; i++) {
            struct msample *s = &f->samples[i];
            uint8_t l = take(r);
            s->n_labels = (size_t)(l & 7) % (MAX_LABELS + 1);
            s->n_a = ((size_t)l >> 3) % (s->n_labels + 1);
            for (size_t k = 0; k < s->n_labels; k++) {
                take_str(r, s->labels[k].name);
                take_str(r, s->labels[k].value);
                if (!raw)
                    make_name(s->labels[k].name, false);
            }
            if (f->type != PROM_TYPE_HISTOGRAM) {
                s->value = take_double(r);
                continue;
            }
            uint8_t hb = take(r);
            s->n_bounds = (size_t)(hb & 15) % (MAX_BOUNDS + 1);
            s->pass_le = (hb & 16) != 0;
            uint64_t total = 0;
            for (size_t k = 0; k < s->n_bounds; k++) {
                double b = take_double(r);
                /* Unless raw: ascending, as a caller's configuration guarantees. */
                if (!raw && k > 0 && isfinite(b))
                    b = s->bounds[k - 1] + fabs(b) + 1e-300;
                s->bounds[k] = b;
                s->counts[k] = raw ? take_u64(r) : take(r);
                total += raw ? 0 : s->counts[k];
            }
            s->count = raw ? take_u64(r) : total + take(r);
            s->sum = take_double(r);
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * The contract, computed independently of prom.c.
 */

static bool ref_name_ok(const char *s, bool colon)
{
    if (*s == '\0')
        return false;
    for (const char *p = s; *p; p++) {
        bool letter = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_';
        bool digit = *p >= '0' && *p <= '9';
        if (!(letter || (colon && *p == ':') || (digit && p != s)))
            return false;
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The family name OpenMetrics shows: a counter's without "_total". */
static size_t family_len(const struct mfamily *f)
{
    size_t n = strlen(f->name);

    return f->type == PROM_TYPE_COUNTER && ends_with(f->name, "_total") ? n - 6 : n;
}

static bool ref_family_ok(const struct mfamily *f)
{
    size_t fam = family_len(f);

    if (!ref_name_ok(f->name, true))
        return false;
    if (f->type == PROM_TYPE_COUNTER && (!ends_with(f->name, "_total") || fam == 0))
        return false;
    if (f->has_unit) {
        size_t u = strlen(f->unit);
        /* A unit names the family's last component: "<something>_<unit>". */
        if (!ref_name_ok(f->unit, true) || fam < u + 2 || f->name[fam - u - 1] != '_' ||
            strncmp(f->name + fam - u, f->unit, u) != 0)
            return false;
    }
    return true;
}

static bool ref_sample_ok(const struct mfamily *f, const struct msample *s)
{
    uint64_t sum = 0;

    if (!ref_name_ok(f->name, true))
        return false;
    for (size_t k = 0; k < s->n_labels; k++)
        if (!ref_name_ok(s->labels[k].name, false))
            return false;
    if (f->type != PROM_TYPE_HISTOGRAM)
        return true;
    for (size_t k = 0; k < s->n_bounds; k++) {
        if (!isfinite(s->bounds[k]) || (k > 0 && !(s->bounds[k] > s->bounds[k - 1])))
            return false;
        if (sum + s->counts[k] < sum)
            return false; /* the counts alone overflow: more than count for sure */
        sum += s->counts[k];
    }
    return sum <= s->count;
}

/* Whether the first m bytes at p can begin a well-formed n-byte UTF-8 sequence: the code
 * points its completions reach must meet the valid ones (no overlong form, no surrogate,
 * nothing above U+10FFFF). */
static bool utf8_viable(const unsigned char *p, size_t m, size_t n)
{
    static const uint32_t lo_n[5] = {0, 0, 0x80, 0x800, 0x10000};
    static const uint32_t hi_n[5] = {0, 0, 0x7ff, 0xffff, 0x10ffff};
    uint32_t bits = p[0] & (0x7fu >> n);

    for (size_t i = 1; i < m; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return false;
        bits = bits << 6 | (p[i] & 0x3fu);
    }
    uint32_t free_bits = 6 * (uint32_t)(n - m);
    uint32_t lo = bits << free_bits, hi = lo | ((1u << free_bits) - 1);
    if (lo < lo_n[n])
        lo = lo_n[n];
    if (hi > hi_n[n])
        hi = hi_n[n];
    if (lo > hi)
        return false;
    return !(lo >= 0xd800 && hi <= 0xdfff); /* not surrogates only */
}

/* s with every maximal ill-formed subpart replaced by U+FFFD (Unicode 3.9, "best practice"). */
static void ref_sanitize(const char *s, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;

    while (*p != '\0' && o + 4 < size) {
        size_t n = *p < 0x80    ? 1
                   : *p >= 0xf8 ? 0
                   : *p >= 0xf0 ? 4
                   : *p >= 0xe0 ? 3
                   : *p >= 0xc0 ? 2
                                : 0;
        size_t m = 0;
        if (n == 1) {
            out[o++] = (char)*p++;
            continue;
        }
        while (n != 0 && m < n && utf8_viable(p, m + 1, n))
            m++;
        if (n != 0 && m == n) {
            memcpy(out + o, p, n);
            o += n;
            p += n;
            continue;
        }
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
        p += m > 0 ? m : 1;
    }
    FUZZ_ASSERT(*p == '\0');
    out[o] = '\0';
}

/* The shortest significant digits that read back as v (finite, non-zero): searching up from
 * one digit with correctly rounded printf. Returns the count; *exp10 the decimal exponent. */
static int ref_digits(double v, int *exp10)
{
    char tmp[40];
    int p = 0;

    for (; p < 16; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    snprintf(tmp, sizeof(tmp), "%.*e", p, v);
    *exp10 = (int)strtol(strchr(tmp, 'e') + 1, NULL, 10);
    return p + 1;
}

/* A sample value (style 'v': C %g with the shortest digits, integers below 2^53 in full) or
 * an le bound (style 't': Go 'g' -1; 'o': the same, ".0" added as OpenMetrics wants). */
static void ref_number(double v, char style, char *out, size_t size)
{
    int exp, nd, sci_at;

    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        snprintf(out, size, style == 'o' ? "0.0" : "0");
        return;
    }
    if (style == 'v' && fabs(v) < 9007199254740992.0 && v == trunc(v)) {
        snprintf(out, size, "%.0f", v);
        return;
    }
    nd = ref_digits(v, &exp);
    sci_at = style == 'v' ? nd : 6;
    if (exp < -4 || exp >= sci_at)
        snprintf(out, size, "%.*e", nd - 1, v);
    else
        snprintf(out, size, "%.*f", nd - 1 - exp > 0 ? nd - 1 - exp : 0, v);
    if (style == 'o' && strchr(out, '.') == NULL && strchr(out, 'e') == NULL)
        snprintf(out + strlen(out), size - strlen(out), ".0");
}

/* ---------------------------------------------------------------------------------------
 * The checker: reads an exposition line by line against the model.
 */

struct cursor {
    const char *text; /* the whole exposition, for the report */
    const char *p, *end;
};

static void fail(const struct cursor *c, const char *why, const char *detail)
{
    fprintf(stderr, "checker: %s (%s) at offset %td of:\n%s\n", why, detail ? detail : "",
            c->p - c->text, c->text);
    abort();
}

#define EXPECT(c, cond, detail)                                                                    \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail(c, #cond, detail);                                                                \
    } while (0)

static void lit(struct cursor *c, const char *s)
{
    size_t n = strlen(s);

    EXPECT(c, (size_t)(c->end - c->p) >= n && memcmp(c->p, s, n) == 0, s);
    c->p += n;
}

/* A name token: [a-zA-Z_:][a-zA-Z0-9_:]* (no ':' in label names). */
static void name(struct cursor *c, bool colon, char *out, size_t size)
{
    size_t n = 0;

    while (c->p < c->end && n + 1 < size &&
           ((*c->p >= 'a' && *c->p <= 'z') || (*c->p >= 'A' && *c->p <= 'Z') || *c->p == '_' ||
            (colon && *c->p == ':') || (n > 0 && *c->p >= '0' && *c->p <= '9')))
        out[n++] = *c->p++;
    out[n] = '\0';
    EXPECT(c, n > 0, "a name");
}

/* Escaped text up to stop ('"' for a label value, '\n' for help), unescaped into out. Escapes
 * allowed: \\ and \n, and \" where quote_escape (label values; OpenMetrics help). */
static void escaped(struct cursor *c, char stop, bool quote_escape, char *out, size_t size)
{
    size_t n = 0;

    for (;;) {
        EXPECT(c, c->p < c->end && n + 1 < size, "unterminated string");
        char ch = *c->p++;
        if (ch == stop)
            break;
        EXPECT(c, ch != '\n', "a raw newline inside a string");
        if (ch == '\\') {
            EXPECT(c, c->p < c->end, "a lone backslash");
            char e = *c->p++;
            EXPECT(c, e == '\\' || e == 'n' || (quote_escape && e == '"'), "an unknown escape");
            ch = e == 'n' ? '\n' : e;
        } else {
            /* OpenMetrics allows no bare quote in help (escaped-string's normal-char). */
            EXPECT(c, !(quote_escape && ch == '"'), "a bare quote");
        }
        out[n++] = ch;
    }
    out[n] = '\0';
}

/* The number token up to the end of the line, which must be exactly want and read back as v
 * (NaN as NaN); the grammar both formats accept. */
static void number(struct cursor *c, double v, const char *want)
{
    char tok[64];
    size_t n = 0;

    while (c->p < c->end && *c->p != '\n' && n + 1 < sizeof(tok))
        tok[n++] = *c->p++;
    tok[n] = '\0';
    lit(c, "\n");
    EXPECT(c, strcmp(tok, want) == 0, tok);
    if (strcmp(tok, "NaN") == 0) {
        EXPECT(c, isnan(v), tok);
        return;
    }
    if (strcmp(tok, "+Inf") == 0 || strcmp(tok, "-Inf") == 0) {
        EXPECT(c, isinf(v) && (v > 0) == (tok[0] == '+'), tok);
        return;
    }
    /* -?digits(.digits)?(e[+-]digits)? */
    const char *q = tok + (tok[0] == '-');
    EXPECT(c, *q >= '0' && *q <= '9', tok);
    while (*q >= '0' && *q <= '9')
        q++;
    if (*q == '.') {
        q++;
        EXPECT(c, *q >= '0' && *q <= '9', tok);
        while (*q >= '0' && *q <= '9')
            q++;
    }
    if (*q == 'e') {
        q++;
        EXPECT(c, *q == '+' || *q == '-', tok);
        q++;
        EXPECT(c, *q >= '0' && *q <= '9', tok);
        while (*q >= '0' && *q <= '9')
            q++;
    }
    EXPECT(c, *q == '\0', tok);
    EXPECT(c, strtod(tok, NULL) == v, tok);
}

static void number_u64(struct cursor *c, uint64_t v)
{
    char want[24];

    snprintf(want, sizeof(want), "%llu", (unsigned long long)v);
    number(c, (double)v, want);
}

/* "name<suffix>{labels of the sample[,le="..."]} " checked against the sample. */
static void series(struct cursor *c, const char *fname, const char *suffix, const struct msample *s,
                   const char *le, double bound)
{
    char got[NAME_MAX_LEN + 16], want_name[NAME_MAX_LEN + 16], value[TEXT_MAX], want[TEXT_MAX];
    bool any = s->n_labels > 0 || le != NULL;

    cat(want_name, sizeof(want_name), fname, suffix);
    name(c, true, got, sizeof(got));
    EXPECT(c, strcmp(got, want_name) == 0, got);
    if (!any) {
        lit(c, " ");
        return;
    }
    lit(c, "{");
    for (size_t k = 0; k < s->n_labels; k++) {
        if (k > 0)
            lit(c, ",");
        name(c, false, got, sizeof(got));
        EXPECT(c, strcmp(got, s->labels[k].name) == 0, got);
        lit(c, "=\"");
        escaped(c, '"', true, value, sizeof(value));
        ref_sanitize(s->labels[k].value, want, sizeof(want));
        EXPECT(c, strcmp(value, want) == 0, value);
    }
    if (le != NULL) {
        if (s->n_labels > 0)
            lit(c, ",");
        lit(c, "le=\"");
        escaped(c, '"', true, value, sizeof(value));
        EXPECT(c, strcmp(value, le) == 0, value);
        EXPECT(c, strcmp(le, "+Inf") == 0 ? isinf(bound) : strtod(value, NULL) == bound, value);
    }
    lit(c, "} ");
}

static void check_sample(struct cursor *c, const struct mfamily *f, const struct msample *s,
                         bool om)
{
    char want[64];

    if (f->type != PROM_TYPE_HISTOGRAM) {
        series(c, f->name, "", s, NULL, 0);
        ref_number(s->value, 'v', want, sizeof(want));
        number(c, s->value, want);
        return;
    }
    uint64_t cumulative = 0;
    for (size_t k = 0; k < s->n_bounds; k++) {
        char le[64];
        ref_number(s->bounds[k], om ? 'o' : 't', le, sizeof(le));
        series(c, f->name, "_bucket", s, le, s->bounds[k]);
        cumulative += s->counts[k];
        number_u64(c, cumulative);
    }
    series(c, f->name, "_bucket", s, "+Inf", INFINITY);
    number_u64(c, s->count);
    series(c, f->name, "_sum", s, NULL, 0);
    ref_number(s->sum, 'v', want, sizeof(want));
    number(c, s->sum, want);
    series(c, f->name, "_count", s, NULL, 0);
    number_u64(c, s->count);
}

static const char *ref_type(enum prom_type t, bool om)
{
    static const char *const names[] = {"gauge", "counter", "histogram", "untyped"};

    return t == PROM_TYPE_UNTYPED && om ? "unknown" : names[t];
}

/* The metadata line "# KEYWORD name " for the family's shown name. */
static void meta(struct cursor *c, const char *keyword, const struct mfamily *f, bool om)
{
    char got[NAME_MAX_LEN];
    size_t n = om ? family_len(f) : strlen(f->name);

    lit(c, "# ");
    lit(c, keyword);
    lit(c, " ");
    name(c, true, got, sizeof(got));
    EXPECT(c, strlen(got) == n && strncmp(got, f->name, n) == 0, got);
    lit(c, " ");
}

static void check_exposition(const struct model *m, const char *text, size_t len, bool om)
{
    struct cursor c = {text, text, text + len};
    char got[TEXT_MAX], want[TEXT_MAX];

    EXPECT(&c, strlen(text) == len, "a NUL inside the text");
    for (size_t i = 0; i < m->n_families; i++) {
        const struct mfamily *f = &m->families[i];
        bool help = f->help[0] != '\0';
        ref_sanitize(f->help, want, sizeof(want));
        if (help && !om) {
            meta(&c, "HELP", f, om);
            escaped(&c, '\n', false, got, sizeof(got));
            EXPECT(&c, strcmp(got, want) == 0, got);
        }
        meta(&c, "TYPE", f, om);
        lit(&c, ref_type(f->type, om));
        lit(&c, "\n");
        if (om && f->has_unit) {
            meta(&c, "UNIT", f, om);
            lit(&c, f->unit);
            lit(&c, "\n");
        }
        if (help && om) {
            meta(&c, "HELP", f, om);
            escaped(&c, '\n', true, got, sizeof(got));
            EXPECT(&c, strcmp(got, want) == 0, got);
        }
        for (size_t k = 0; k < f->n_samples; k++)
            check_sample(&c, f, &f->samples[k], om);
    }
    if (om)
        lit(&c, "# EOF\n");
    EXPECT(&c, c.p == c.end, "trailing text");
}

/* ---------------------------------------------------------------------------------------
 * Rendering.
 */

/* Writes the model; returns what prom_finish says, checking that each call's result is the
 * expected one (the first error sticks). *valid: whether every call was valid. */
static int render(const struct model *m, struct text_buf *buf, enum prom_format fmt, bool *valid)
{
    struct prom_writer w;
    int err = 0;

    *valid = true;
    prom_writer_init(&w, buf, fmt);
    for (size_t i = 0; i < m->n_families; i++) {
        const struct mfamily *f = &m->families[i];
        int rc = prom_family(&w, f->name, f->type, f->help, f->has_unit ? f->unit : NULL);
        if (err == 0 && !ref_family_ok(f)) {
            *valid = false;
            FUZZ_ASSERT(rc == -EINVAL || rc == -E2BIG);
        }
        FUZZ_ASSERT(err == 0 || rc == err);
        err = rc;
        for (size_t k = 0; k < f->n_samples; k++) {
            const struct msample *s = &f->samples[k];
            struct prom_label labels[MAX_LABELS];
            for (size_t j = 0; j < s->n_labels; j++)
                labels[j] = (struct prom_label){s->labels[j].name, s->labels[j].value};
            if (f->type == PROM_TYPE_HISTOGRAM) {
                char le[MAX_BOUNDS][PROM_NUMBER_MAX];
                const char *les[MAX_BOUNDS];
                for (size_t j = 0; j < s->n_bounds; j++) {
                    prom_format_le(s->bounds[j], fmt, le[j], sizeof(le[j]));
                    les[j] = le[j];
                }
                struct prom_buckets h = {s->bounds, s->counts, s->n_bounds,
                                         s->count,  s->sum,    s->pass_le ? les : NULL};
                rc = prom_histogram(&w, f->name, labels, s->n_a, labels + s->n_a,
                                    s->n_labels - s->n_a, &h);
            } else {
                rc = prom_sample2(&w, f->name, labels, s->n_a, labels + s->n_a,
                                  s->n_labels - s->n_a, s->value);
            }
            if (err == 0 && !ref_sample_ok(f, s)) {
                *valid = false;
                FUZZ_ASSERT(rc == -EINVAL || rc == -E2BIG);
            }
            FUZZ_ASSERT(err == 0 || rc == err);
            err = rc;
        }
    }
    int rc = prom_finish(&w);
    FUZZ_ASSERT(err == 0 || rc == err);
    FUZZ_ASSERT(rc == text_buf_error(buf));
    FUZZ_ASSERT(rc == 0 || rc == -EINVAL || rc == -E2BIG);
    /* Nothing half-written survives an error. */
    FUZZ_ASSERT(rc == 0 || (text_buf_len(buf) == 0 && text_buf_data(buf)[0] == '\0'));
    return rc;
}

/* gzip of the text inflates back to it. */
static void check_gzip(const struct text_buf *text)
{
    struct text_buf gz;
    z_stream zs;
    size_t len = text_buf_len(text);
    unsigned char *back = malloc(len + 1);

    FUZZ_ASSERT(back != NULL);
    text_buf_init(&gz, 1 << 22);
    FUZZ_ASSERT(prom_gzip(text, &gz) == 0);
    memset(&zs, 0, sizeof(zs));
    FUZZ_ASSERT(inflateInit2(&zs, 15 + 16) == Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)text_buf_data(&gz);
    zs.avail_in = (uInt)text_buf_len(&gz);
    zs.next_out = back;
    zs.avail_out = (uInt)len + 1;
    FUZZ_ASSERT(inflate(&zs, Z_FINISH) == Z_STREAM_END);
    FUZZ_ASSERT(zs.total_out == len && memcmp(back, text_buf_data(text), len) == 0);
    inflateEnd(&zs);
    text_buf_cleanup(&gz);
    free(back);
}

/* Whether two samples are the same series: the same labels, in any order, with values that
 * read the same once sanitized. */
static bool same_series(const struct msample *a, const struct msample *b)
{
    char va[TEXT_MAX], vb[TEXT_MAX];

    if (a->n_labels != b->n_labels)
        return false;
    for (size_t i = 0; i < a->n_labels; i++) {
        bool found = false;
        ref_sanitize(a->labels[i].value, va, sizeof(va));
        for (size_t j = 0; j < b->n_labels && !found; j++) {
            ref_sanitize(b->labels[j].value, vb, sizeof(vb));
            found = strcmp(a->labels[i].name, b->labels[j].name) == 0 && strcmp(va, vb) == 0;
        }
        if (!found)
            return false;
    }
    return true;
}

/* Whether a scraper takes these families together: distinct names, none a prefix of another
 * (a histogram's _bucket, a counter's _total), unique label names, no le beside a histogram's
 * own, no series twice. OpenMetrics also wants counter-like values (counters, histograms'
 * sums) neither NaN nor negative, and no negative bucket beside a _sum. The writer leaves
 * all this to its callers, so the dump skips what breaks it. */
static bool scrape_consistent(const struct model *m, bool om)
{
    for (size_t i = 0; i < m->n_families; i++) {
        const struct mfamily *f = &m->families[i];
        for (size_t j = 0; j < m->n_families; j++) {
            const struct mfamily *g = &m->families[j];
            if (i != j && strncmp(f->name, g->name, family_len(f)) == 0)
                return false;
        }
        for (size_t k = 0; k < f->n_samples; k++) {
            const struct msample *s = &f->samples[k];
            for (size_t a = 0; a < s->n_labels; a++) {
                if (f->type == PROM_TYPE_HISTOGRAM && strcmp(s->labels[a].name, "le") == 0)
                    return false;
                for (size_t b = a + 1; b < s->n_labels; b++)
                    if (strcmp(s->labels[a].name, s->labels[b].name) == 0)
                        return false;
            }
            for (size_t b = k + 1; b < f->n_samples; b++)
                if (same_series(s, &f->samples[b]))
                    return false;
            if (!om)
                continue;
            if (f->type == PROM_TYPE_COUNTER && !(s->value >= 0))
                return false;
            if (f->type == PROM_TYPE_HISTOGRAM &&
                (!(s->sum >= 0) || (s->n_bounds > 0 && s->bounds[0] < 0)))
                return false;
        }
    }
    return true;
}

static void dump(const char *ext, const struct text_buf *b)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%04lu.%s", dump_dir, dump_seq, ext);
    f = fopen(path, "wb");
    FUZZ_ASSERT(f != NULL);
    FUZZ_ASSERT(fwrite(text_buf_data(b), 1, text_buf_len(b), f) == text_buf_len(b));
    FUZZ_ASSERT(fclose(f) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct model m; /* large: off the stack */
    struct reader r = {data, size};
    struct text_buf text, om, small;
    bool valid, valid_om, valid_small;
    int rc, rc_om;

    read_model(&r, &m);
    text_buf_init(&text, 1 << 22);
    text_buf_init(&om, 1 << 22);
    rc = render(&m, &text, PROM_FORMAT_TEXT, &valid);
    rc_om = render(&m, &om, PROM_FORMAT_OPENMETRICS, &valid_om);
    FUZZ_ASSERT(valid == valid_om);
    FUZZ_ASSERT(valid ? rc == 0 && rc_om == 0 : rc == -EINVAL && rc_om == -EINVAL);
    if (valid) {
        check_exposition(&m, text_buf_data(&text), text_buf_len(&text), false);
        check_exposition(&m, text_buf_data(&om), text_buf_len(&om), true);
        if (m.gzip)
            check_gzip(&text);
    }
    if (m.limit != 0) {
        /* Under a size limit: the same text when it fits, else -E2BIG and nothing. */
        text_buf_init(&small, m.limit);
        int rc_small = render(&m, &small, PROM_FORMAT_TEXT, &valid_small);
        if (valid && text_buf_len(&text) <= m.limit)
            FUZZ_ASSERT(rc_small == 0 && text_buf_len(&small) == text_buf_len(&text) &&
                        memcmp(text_buf_data(&small), text_buf_data(&text), text_buf_len(&text)) ==
                            0);
        else if (valid)
            FUZZ_ASSERT(rc_small == -E2BIG);
        else
            FUZZ_ASSERT(rc_small == -EINVAL || rc_small == -E2BIG);
        text_buf_cleanup(&small);
    }
    if (dump_dir != NULL && valid) {
        if (scrape_consistent(&m, false))
            dump("prom", &text);
        if (scrape_consistent(&m, true))
            dump("om", &om);
        dump_seq++;
    }
    text_buf_cleanup(&text);
    text_buf_cleanup(&om);
    return 0;
}
