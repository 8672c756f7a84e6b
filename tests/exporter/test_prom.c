/*
 * exporter/prom/prom.h: exact text of small expositions in both formats, escaping, numbers,
 * buffer limits, content negotiation as Prometheus really asks, gzip, and a structural check
 * of OpenMetrics output (promtool only parses the text format).
 */
#include "exporter/prom/prom.h"
#include "test.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <zlib.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_buf(void)
{
    struct text_buf b;
    text_buf_init(&b, 10);
    CHECK_STR_EQ(text_buf_data(&b), "");
    CHECK_EQ(text_buf_len(&b), 0);
    CHECK_EQ(text_buf_append_str(&b, "12345"), 0);
    CHECK_EQ(text_buf_printf(&b, "%d%s", 67, "89"), 0);
    CHECK_STR_EQ(text_buf_data(&b), "123456789");
    CHECK_EQ(text_buf_append(&b, "0", 1), 0); /* exactly at the limit */
    CHECK_EQ(text_buf_len(&b), 10);
    CHECK_EQ(text_buf_append(&b, "", 0), 0);
    CHECK_EQ(text_buf_append(&b, "x", 1), -E2BIG); /* one past: fails, drops everything */
    CHECK_EQ(text_buf_len(&b), 0);
    CHECK_STR_EQ(text_buf_data(&b), "");
    CHECK_EQ(text_buf_append(&b, "y", 1), -E2BIG); /* sticky */
    CHECK_EQ(text_buf_printf(&b, "z"), -E2BIG);
    CHECK_EQ(text_buf_error(&b), -E2BIG);
    CHECK_EQ(text_buf_len(&b), 0);
    text_buf_reset(&b);
    CHECK_EQ(text_buf_error(&b), 0);
    CHECK_EQ(text_buf_printf(&b, "%s", "abcdefghijk"), -E2BIG); /* 11 bytes: no truncation */
    CHECK_STR_EQ(text_buf_data(&b), "");
    text_buf_reset(&b);
    CHECK_EQ(text_buf_printf(&b, "%s", "abcdefghij"), 0);
    CHECK_STR_EQ(text_buf_data(&b), "abcdefghij");
    text_buf_cleanup(&b);
    text_buf_cleanup(NULL);

    /* Growth across many reallocations, printf retrying after a grow. */
    text_buf_init(&b, 1 << 20);
    char expect[64];
    for (int i = 0; i < 10000; i++)
        text_buf_printf(&b, "line %05d %s\n", i, "0123456789012345678901234567890123456789");
    CHECK_EQ(text_buf_error(&b), 0);
    CHECK_EQ(text_buf_len(&b), 10000 * 52);
    snprintf(expect, sizeof expect, "line %05d ", 9999);
    CHECK(memcmp(text_buf_data(&b) + 9999 * 52, expect, strlen(expect)) == 0);
    CHECK_EQ(strlen(text_buf_data(&b)), text_buf_len(&b));
    text_buf_cleanup(&b);

    /* A zero limit refuses everything but nothing. */
    text_buf_init(&b, 0);
    CHECK_EQ(text_buf_append(&b, "", 0), 0);
    CHECK_EQ(text_buf_append_str(&b, "a"), -E2BIG);
    text_buf_cleanup(&b);
}

static void check_value(double v, const char *want)
{
    char out[PROM_NUMBER_MAX];
    size_t n = prom_format_value(v, out, sizeof out);
    CHECK_EQ(n, strlen(out));
    if (strcmp(out, want) != 0)
        TEST_FAIL_AT("prom_format_value(%.17g) = \"%s\", want \"%s\"", v, out, want);
}

static void check_le(double v, const char *text, const char *om)
{
    char out[PROM_NUMBER_MAX];
    prom_format_le(v, PROM_FORMAT_TEXT, out, sizeof out);
    if (strcmp(out, text) != 0)
        TEST_FAIL_AT("le text (%.17g) = \"%s\", want \"%s\"", v, out, text);
    prom_format_le(v, PROM_FORMAT_OPENMETRICS, out, sizeof out);
    if (strcmp(out, om) != 0)
        TEST_FAIL_AT("le om (%.17g) = \"%s\", want \"%s\"", v, out, om);
}

/* xorshift64*: deterministic pseudo-random bit patterns for the round-trip sweep. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void test_numbers(void)
{
    check_value(0, "0");
    check_value(-0.0, "0");
    check_value(1, "1");
    check_value(-42, "-42");
    check_value(10000, "10000");
    check_value(0.1, "0.1");
    check_value(-1.5, "-1.5");
    check_value(123.456, "123.456");
    check_value(1.0 / 3, "0.3333333333333333");
    check_value(0.000123456, "0.000123456"); /* 123456 ns in seconds */
    check_value(0.0001, "0.0001");
    check_value(1e-5, "1e-05");
    check_value(1e-9, "1e-09");
    check_value(1e15, "1000000000000000");
    check_value(123456789012, "123456789012");
    check_value(9007199254740991.0, "9007199254740991"); /* 2^53 - 1 */
    check_value(9007199254740992.0, "9007199254740992"); /* 2^53: %g, still plain */
    check_value(1e16, "1e+16");
    check_value(1e21, "1e+21");
    check_value(DBL_MAX, "1.7976931348623157e+308");
    check_value(-DBL_MAX, "-1.7976931348623157e+308");
    check_value(DBL_MIN, "2.2250738585072014e-308");
    check_value(DBL_TRUE_MIN, "5e-324");                            /* the smallest subnormal */
    check_value(2.2250738585072009e-308, "2.225073858507201e-308"); /* largest subnormal */
    check_value(NAN, "NaN");
    check_value(-NAN, "NaN");
    check_value(INFINITY, "+Inf");
    check_value(-INFINITY, "-Inf");

    check_le(0.005, "0.005", "0.005");
    check_le(0, "0", "0.0");
    check_le(1, "1", "1.0");
    check_le(10, "10", "10.0");
    check_le(2.5, "2.5", "2.5");
    check_le(0.0001, "0.0001", "0.0001");
    check_le(1e-5, "1e-05", "1e-05");
    check_le(1e-10, "1e-10", "1e-10");
    check_le(100000, "100000", "100000.0");
    check_le(1e6, "1e+06", "1e+06");
    check_le(1e10, "1e+10", "1e+10");
    check_le(123456789, "1.23456789e+08", "1.23456789e+08"); /* Go's 'g' -1 */
    check_le(5e-5, "5e-05", "5e-05");
    check_le(-0.5, "-0.5", "-0.5");
    check_le(INFINITY, "+Inf", "+Inf");

    /* OpenMetrics' canonical numbers: 0.0 to 10.0 in steps of 0.001. */
    for (int i = 0; i <= 10000; i++) {
        char want[32], out[PROM_NUMBER_MAX];
        int n = snprintf(want, sizeof want, "%d.%03d", i / 1000, i % 1000);
        while (want[n - 1] == '0' && want[n - 2] != '.')
            want[--n] = '\0';
        prom_format_le(i / 1000.0, PROM_FORMAT_OPENMETRICS, out, sizeof out);
        if (strcmp(out, want) != 0) {
            TEST_FAIL_AT("le om %d/1000 = \"%s\", want \"%s\"", i, out, want);
            break;
        }
    }

    /* Any finite double reads back exactly and is never longer than %.17g. */
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = rng_next(&seed);
        double v;
        memcpy(&v, &bits, sizeof v);
        if (i % 4 == 0)
            v = (double)(bits % 100000000) / 1e9; /* RTT-like seconds */
        if (!isfinite(v))
            continue;
        char out[PROM_NUMBER_MAX], ref[40];
        prom_format_value(v, out, sizeof out);
        snprintf(ref, sizeof ref, "%.17g", v);
        double back = strtod(out, NULL);
        if (memcmp(&back, &v, sizeof v) != 0 && !(v == 0 && back == 0)) {
            TEST_FAIL_AT("round trip %s -> %s", ref, out);
            break;
        }
        if (strlen(out) > strlen(ref) + (v == trunc(v) ? 6 : 0)) { /* plain integers allowed */
            TEST_FAIL_AT("not short: %s for %s", out, ref);
            break;
        }
        prom_format_le(v, PROM_FORMAT_OPENMETRICS, out, sizeof out);
        back = strtod(out, NULL);
        if (memcmp(&back, &v, sizeof v) != 0 && !(v == 0 && back == 0)) {
            TEST_FAIL_AT("le round trip %s -> %s", ref, out);
            break;
        }
    }
}

/* Renders with fn in one format and compares the whole exposition. */
static void expect_render(enum prom_format f, void (*fn)(struct prom_writer *), const char *want,
                          int line)
{
    struct text_buf b;
    struct prom_writer w;
    text_buf_init(&b, 1 << 16);
    prom_writer_init(&w, &b, f);
    fn(&w);
    int err = prom_finish(&w);
    if (err != 0)
        TEST_FAIL_AT("line %d: prom_finish = %d", line, err);
    if (strcmp(text_buf_data(&b), want) != 0)
        TEST_FAIL_AT("line %d: format %d rendered\n%s---- want\n%s----", line, (int)f,
                     text_buf_data(&b), want);
    text_buf_cleanup(&b);
}

static void render_gauge(struct prom_writer *w)
{
    const struct prom_label target[] = {{"target", "example.org"}};
    prom_family(w, "icmp_probe_success", PROM_TYPE_GAUGE, "1 if the probe succeeded.", NULL);
    prom_sample(w, "icmp_probe_success", target, 1, 1);
    prom_sample(w, "icmp_probe_success", NULL, 0, 0);
}

static void render_counter(struct prom_writer *w)
{
    const struct prom_label common[] = {{"target", "a"}, {"ip", "192.0.2.1"}};
    const struct prom_label per[] = {{"reason", "timeout"}};
    prom_family(w, "icmp_echo_lost_total", PROM_TYPE_COUNTER, "Echoes without a reply.", NULL);
    prom_sample2(w, "icmp_echo_lost_total", common, N(common), per, N(per), 17);
    prom_sample2(w, "icmp_echo_lost_total", NULL, 0, per, N(per), 1e21);
}

static void render_unit(struct prom_writer *w)
{
    prom_family(w, "icmp_sent_bytes_total", PROM_TYPE_COUNTER, "Bytes sent.", "bytes");
    prom_sample(w, "icmp_sent_bytes_total", NULL, 0, 640);
    prom_family(w, "icmp_probe_duration_seconds", PROM_TYPE_GAUGE, "", "seconds");
    prom_sample(w, "icmp_probe_duration_seconds", NULL, 0, 0.000123456);
    prom_family(w, "icmp_thing", PROM_TYPE_UNTYPED, NULL, NULL);
    prom_sample(w, "icmp_thing", NULL, 0, NAN);
}

static void render_histogram(struct prom_writer *w)
{
    static const double bounds[] = {0.0005, 0.001, 0.1, 1, 10};
    static const uint64_t counts[] = {1, 0, 5, 3, 0};
    const struct prom_buckets h = {bounds, counts, N(bounds), 12, 7.25, NULL};
    const struct prom_label l[] = {{"target", "x"}};
    prom_family(w, "icmp_rtt_seconds", PROM_TYPE_HISTOGRAM, "Round-trip time.", "seconds");
    prom_histogram(w, "icmp_rtt_seconds", l, 1, NULL, 0, &h);
    /* The same series with the le texts given preformatted: the same bytes. */
    {
        char text[N(bounds)][PROM_NUMBER_MAX];
        const char *le[N(bounds)];
        struct text_buf b1, b2;
        struct prom_writer w1, w2;
        text_buf_init(&b1, 1 << 16);
        text_buf_init(&b2, 1 << 16);
        prom_writer_init(&w1, &b1, w->format);
        prom_writer_init(&w2, &b2, w->format);
        for (size_t i = 0; i < N(bounds); i++) {
            prom_format_le(bounds[i], w->format, text[i], sizeof(text[i]));
            le[i] = text[i];
        }
        const struct prom_buckets hl = {bounds, counts, N(bounds), 12, 7.25, le};
        prom_histogram(&w1, "icmp_rtt_seconds", l, 1, NULL, 0, &h);
        prom_histogram(&w2, "icmp_rtt_seconds", l, 1, NULL, 0, &hl);
        CHECK_STR_EQ(text_buf_data(&b1), text_buf_data(&b2));
        text_buf_cleanup(&b1);
        text_buf_cleanup(&b2);
    }
    const struct prom_buckets empty = {NULL, NULL, 0, 0, 0, NULL};
    prom_histogram(w, "icmp_rtt_seconds", NULL, 0, NULL, 0, &empty);
}

static void render_hostile(struct prom_writer *w)
{
    const struct prom_label l[] = {
        {"path", "C:\\DIR\\FILE.TXT"},
        {"error", "Cannot find file:\n\"FILE.TXT\""},
        {"unicode", "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"}, /* é € U+1F600 */
        {"empty", ""},
        {"brace", "}{,= #"},
    };
    prom_family(w, "weird", PROM_TYPE_GAUGE, "Back\\slash, new\nline and \"quotes\".", NULL);
    prom_sample(w, "weird", l, N(l), 1.458255915e9);
}

static void render_invalid_utf8(struct prom_writer *w)
{
    const struct prom_label l[] = {
        {"a", "\xFF"},                 /* never valid */
        {"b", "x\xE2\x82y"},           /* truncated 3-byte sequence: one U+FFFD */
        {"c", "\xC0\xAF"},             /* overlong '/': two */
        {"d", "\xED\xA0\x80"},         /* surrogate U+D800: three */
        {"e", "\xF4\x90\x80\x80"},     /* above U+10FFFF: four */
        {"f", "\xF0\x9F\x98"},         /* truncated at the end of the string */
        {"g", "\xEF\xBF\xBD\xC3\xA9"}, /* valid as it is */
    };
    prom_family(w, "utf", PROM_TYPE_GAUGE, "bad \xFE byte", NULL);
    prom_sample(w, "utf", l, N(l), 2);
}

#define R "\xEF\xBF\xBD"

static void test_render(void)
{
    expect_render(PROM_FORMAT_TEXT, render_gauge,
                  "# HELP icmp_probe_success 1 if the probe succeeded.\n"
                  "# TYPE icmp_probe_success gauge\n"
                  "icmp_probe_success{target=\"example.org\"} 1\n"
                  "icmp_probe_success 0\n",
                  __LINE__);
    expect_render(PROM_FORMAT_OPENMETRICS, render_gauge,
                  "# TYPE icmp_probe_success gauge\n"
                  "# HELP icmp_probe_success 1 if the probe succeeded.\n"
                  "icmp_probe_success{target=\"example.org\"} 1\n"
                  "icmp_probe_success 0\n"
                  "# EOF\n",
                  __LINE__);
    expect_render(PROM_FORMAT_TEXT, render_counter,
                  "# HELP icmp_echo_lost_total Echoes without a reply.\n"
                  "# TYPE icmp_echo_lost_total counter\n"
                  "icmp_echo_lost_total{target=\"a\",ip=\"192.0.2.1\",reason=\"timeout\"} 17\n"
                  "icmp_echo_lost_total{reason=\"timeout\"} 1e+21\n",
                  __LINE__);
    expect_render(PROM_FORMAT_OPENMETRICS, render_counter,
                  "# TYPE icmp_echo_lost counter\n"
                  "# HELP icmp_echo_lost Echoes without a reply.\n"
                  "icmp_echo_lost_total{target=\"a\",ip=\"192.0.2.1\",reason=\"timeout\"} 17\n"
                  "icmp_echo_lost_total{reason=\"timeout\"} 1e+21\n"
                  "# EOF\n",
                  __LINE__);
    expect_render(PROM_FORMAT_TEXT, render_unit,
                  "# HELP icmp_sent_bytes_total Bytes sent.\n"
                  "# TYPE icmp_sent_bytes_total counter\n"
                  "icmp_sent_bytes_total 640\n"
                  "# TYPE icmp_probe_duration_seconds gauge\n"
                  "icmp_probe_duration_seconds 0.000123456\n"
                  "# TYPE icmp_thing untyped\n"
                  "icmp_thing NaN\n",
                  __LINE__);
    expect_render(PROM_FORMAT_OPENMETRICS, render_unit,
                  "# TYPE icmp_sent_bytes counter\n"
                  "# UNIT icmp_sent_bytes bytes\n"
                  "# HELP icmp_sent_bytes Bytes sent.\n"
                  "icmp_sent_bytes_total 640\n"
                  "# TYPE icmp_probe_duration_seconds gauge\n"
                  "# UNIT icmp_probe_duration_seconds seconds\n"
                  "icmp_probe_duration_seconds 0.000123456\n"
                  "# TYPE icmp_thing unknown\n"
                  "icmp_thing NaN\n"
                  "# EOF\n",
                  __LINE__);
    expect_render(PROM_FORMAT_TEXT, render_histogram,
                  "# HELP icmp_rtt_seconds Round-trip time.\n"
                  "# TYPE icmp_rtt_seconds histogram\n"
                  "icmp_rtt_seconds_bucket{target=\"x\",le=\"0.0005\"} 1\n"
                  "icmp_rtt_seconds_bucket{target=\"x\",le=\"0.001\"} 1\n"
                  "icmp_rtt_seconds_bucket{target=\"x\",le=\"0.1\"} 6\n"
                  "icmp_rtt_seconds_bucket{target=\"x\",le=\"1\"} 9\n"
                  "icmp_rtt_seconds_bucket{target=\"x\",le=\"10\"} 9\n"
                  "icmp_rtt_seconds_bucket{target=\"x\",le=\"+Inf\"} 12\n"
                  "icmp_rtt_seconds_sum{target=\"x\"} 7.25\n"
                  "icmp_rtt_seconds_count{target=\"x\"} 12\n"
                  "icmp_rtt_seconds_bucket{le=\"+Inf\"} 0\n"
                  "icmp_rtt_seconds_sum 0\n"
                  "icmp_rtt_seconds_count 0\n",
                  __LINE__);
    expect_render(PROM_FORMAT_OPENMETRICS, render_histogram,
                  "# TYPE icmp_rtt_seconds histogram\n"
                  "# UNIT icmp_rtt_seconds seconds\n"
                  "# HELP icmp_rtt_seconds Round-trip time.\n"
                  "icmp_rtt_seconds_bucket{target=\"x\",le=\"0.0005\"} 1\n"
                  "icmp_rtt_seconds_bucket{target=\"x\",le=\"0.001\"} 1\n"
                  "icmp_rtt_seconds_bucket{target=\"x\",le=\"0.1\"} 6\n"
                  "icmp_rtt_seconds_bucket{target=\"x\",le=\"1.0\"} 9\n"
                  "icmp_rtt_seconds_bucket{target=\"x\",le=\"10.0\"} 9\n"
                  "icmp_rtt_seconds_bucket{target=\"x\",le=\"+Inf\"} 12\n"
                  "icmp_rtt_seconds_sum{target=\"x\"} 7.25\n"
                  "icmp_rtt_seconds_count{target=\"x\"} 12\n"
                  "icmp_rtt_seconds_bucket{le=\"+Inf\"} 0\n"
                  "icmp_rtt_seconds_sum 0\n"
                  "icmp_rtt_seconds_count 0\n"
                  "# EOF\n",
                  __LINE__);
    /* HELP: text escapes \\ and \n only; OpenMetrics also \". Label values: the same three
     * in both formats. */
    expect_render(PROM_FORMAT_TEXT, render_hostile,
                  "# HELP weird Back\\\\slash, new\\nline and \"quotes\".\n"
                  "# TYPE weird gauge\n"
                  "weird{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find "
                  "file:\\n\\\"FILE.TXT\\\"\",unicode=\"h\xC3\xA9llo \xE2\x82\xAC "
                  "\xF0\x9F\x98\x80\",empty=\"\",brace=\"}{,= #\"} 1458255915\n",
                  __LINE__);
    expect_render(PROM_FORMAT_OPENMETRICS, render_hostile,
                  "# TYPE weird gauge\n"
                  "# HELP weird Back\\\\slash, new\\nline and \\\"quotes\\\".\n"
                  "weird{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find "
                  "file:\\n\\\"FILE.TXT\\\"\",unicode=\"h\xC3\xA9llo \xE2\x82\xAC "
                  "\xF0\x9F\x98\x80\",empty=\"\",brace=\"}{,= #\"} 1458255915\n"
                  "# EOF\n",
                  __LINE__);
    expect_render(PROM_FORMAT_TEXT, render_invalid_utf8,
                  "# HELP utf bad " R " byte\n"
                  "# TYPE utf gauge\n"
                  "utf{a=\"" R "\",b=\"x" R "y\",c=\"" R R "\",d=\"" R R R "\",e=\"" R R R R
                  "\",f=\"" R "\",g=\"" R "\xC3\xA9\"} 2\n",
                  __LINE__);
}

/* Programmer errors are -EINVAL, sticky like any other error, and leave nothing behind. */
static void test_invalid(void)
{
    static const double up[] = {1, 2}, down[] = {2, 1}, nan_bound[] = {NAN};
    static const uint64_t c2[] = {1, 1}, c1[] = {0};
    const struct prom_buckets too_many = {up, c2, 2, 1, 0, NULL},
                              unsorted = {down, c2, 2, 5, 0, NULL},
                              nan_b = {nan_bound, c1, 1, 0, 0, NULL};
    const struct prom_label bad_label[] = {{"0x", "v"}}, null_value[] = {{"a", NULL}};
    struct text_buf b;
    struct prom_writer w;
    text_buf_init(&b, 4096);
    prom_writer_init(&w, &b, PROM_FORMAT_OPENMETRICS);
    for (int i = 0; i < 12; i++) {
        int err = -1;
        text_buf_reset(&b);
        text_buf_append_str(&b, "x 1\n");
        switch (i) {
        case 0:
            err = prom_family(&w, "requests", PROM_TYPE_COUNTER, NULL, NULL); /* no _total */
            break;
        case 1:
            err = prom_family(&w, "_total", PROM_TYPE_COUNTER, NULL, NULL);
            break;
        case 2:
            err = prom_family(&w, "rtt_seconds", PROM_TYPE_GAUGE, NULL, "bytes");
            break;
        case 3:
            err = prom_family(&w, "rtt_seconds_total", PROM_TYPE_COUNTER, NULL, "total");
            break;
        case 4:
            err = prom_family(&w, "seconds", PROM_TYPE_GAUGE, NULL, "seconds");
            break;
        case 5:
            err = prom_sample(&w, "bad-name", NULL, 0, 1);
            break;
        case 6:
            err = prom_sample(&w, "ok", bad_label, 1, 1);
            break;
        case 7:
            err = prom_sample2(&w, "ok", NULL, 0, null_value, 1, 1);
            break;
        case 8:
            err = prom_histogram(&w, "h", NULL, 0, NULL, 0, &too_many);
            break;
        case 9:
            err = prom_histogram(&w, "h", NULL, 0, NULL, 0, &unsorted);
            break;
        case 10:
            err = prom_histogram(&w, "h", NULL, 0, NULL, 0, &nan_b);
            break;
        case 11:
            err = prom_family(&w, "", PROM_TYPE_GAUGE, NULL, NULL);
            break;
        }
        if (err != -EINVAL)
            TEST_FAIL_AT("invalid case %d: %d, want -EINVAL", i, err);
        CHECK_EQ(text_buf_len(&b), 0);
        CHECK_EQ(prom_finish(&w), -EINVAL);
        CHECK_EQ(prom_sample(&w, "ok", NULL, 0, 1), -EINVAL);
    }
    /* Valid corner cases. */
    text_buf_reset(&b);
    CHECK_EQ(prom_family(&w, "a:b_seconds_total", PROM_TYPE_COUNTER, NULL, "seconds"), 0);
    CHECK_EQ(prom_family(&w, "_x", PROM_TYPE_GAUGE, NULL, NULL), 0);
    CHECK(prom_valid_label_name("__name__"));
    CHECK(!prom_valid_label_name("a:b"));
    CHECK(prom_valid_metric_name("a:b"));
    CHECK(!prom_valid_metric_name("1a"));
    CHECK(!prom_valid_metric_name(NULL));
    text_buf_cleanup(&b);
}

/* A full rendering into a small buffer fails as a whole, and never half-written. */
static void test_limit(void)
{
    for (size_t max = 0; max < 400; max += 7) {
        struct text_buf b;
        struct prom_writer w;
        text_buf_init(&b, max);
        prom_writer_init(&w, &b, PROM_FORMAT_OPENMETRICS);
        render_histogram(&w);
        int err = prom_finish(&w);
        if (err == 0) {
            CHECK_LE(text_buf_len(&b), max);
            CHECK(text_buf_len(&b) >= 6 &&
                  strcmp(text_buf_data(&b) + text_buf_len(&b) - 6, "# EOF\n") == 0);
        } else {
            CHECK_EQ(err, -E2BIG);
            CHECK_EQ(text_buf_len(&b), 0);
            CHECK_STR_EQ(text_buf_data(&b), "");
        }
        text_buf_cleanup(&b);
    }
}

static void test_negotiate(void)
{
    static const struct {
        const char *accept;
        enum prom_format want;
    } cases[] = {
        /* Prometheus 2.5 to 2.32: OpenMetrics 0.0.1, which we do not claim: text. */
        {"application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
         PROM_FORMAT_TEXT},
        /* Prometheus 2.33 to 2.48. */
        {"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
         "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
         PROM_FORMAT_OPENMETRICS},
        /* Prometheus 2.49+ (scrape_protocols defaults). */
        {"application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version="
         "0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
         PROM_FORMAT_OPENMETRICS},
        /* Prometheus 2.49+ with native histograms: protobuf first, which we do not serve. */
        {"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding="
         "delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,application/"
         "openmetrics-text;version=0.0.1;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
         PROM_FORMAT_OPENMETRICS},
        /* Prometheus 3.x defaults. */
        {"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/"
         "openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q="
         "0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
         PROM_FORMAT_OPENMETRICS},
        /* Prometheus 3.x, scrape_protocols: [PrometheusText1.0.0, PrometheusText0.0.4]. */
        {"text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=0.0.4;q=0.5,*/*;"
         "q=0.4",
         PROM_FORMAT_TEXT},
        {"text/plain;version=0.0.4;q=0.6,*/*;q=0.5", PROM_FORMAT_TEXT},
        {"*/*", PROM_FORMAT_TEXT}, /* curl */
        {"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
         PROM_FORMAT_TEXT}, /* a browser */
        {NULL, PROM_FORMAT_TEXT},
        {"", PROM_FORMAT_TEXT},
        {"application/openmetrics-text", PROM_FORMAT_OPENMETRICS},
        {"application/openmetrics-text;version=1.0.0;", PROM_FORMAT_OPENMETRICS},
        {"application/openmetrics-text; version=\"1.0.0\"", PROM_FORMAT_OPENMETRICS},
        {"Application/OpenMetrics-Text; Version=1.0.0; Q=1.000", PROM_FORMAT_OPENMETRICS},
        {"application/openmetrics-text;version=2.0.0", PROM_FORMAT_TEXT},
        {"application/openmetrics-text;version=1.0.0;q=0", PROM_FORMAT_TEXT},
        {"application/openmetrics-text;q=0.0,text/plain;q=0", PROM_FORMAT_TEXT},
        {"text/plain;q=0.5, application/openmetrics-text;q=0.9", PROM_FORMAT_OPENMETRICS},
        {"application/openmetrics-text;q=0.5, text/plain;q=0.9", PROM_FORMAT_TEXT},
        {"text/plain, application/openmetrics-text", PROM_FORMAT_TEXT}, /* tie: first */
        {"application/openmetrics-text, text/plain", PROM_FORMAT_OPENMETRICS},
        {"application/openmetrics-text;q=abc", PROM_FORMAT_TEXT},
        {"application/openmetrics-text;q=1.5", PROM_FORMAT_TEXT},
        {"application/openmetrics-text;q=0.0001", PROM_FORMAT_TEXT},
        {"application/openmetrics-text;foo=\"a,b\";q=0.9,text/plain;q=0.8",
         PROM_FORMAT_OPENMETRICS},
        {";;;,,,=q", PROM_FORMAT_TEXT},
        {"application/openmetrics-text garbage", PROM_FORMAT_TEXT},
        {"application/", PROM_FORMAT_TEXT},
        {"application/openmetrics-text;version", PROM_FORMAT_OPENMETRICS},
        {"application/openmetrics-text;=1.0.0", PROM_FORMAT_TEXT},
        {"application/openmetrics-text;version=\"1.0.0", PROM_FORMAT_OPENMETRICS},
        {"\"", PROM_FORMAT_TEXT},
    };
    for (size_t i = 0; i < N(cases); i++) {
        enum prom_format got = prom_negotiate(cases[i].accept);
        if (got != cases[i].want)
            TEST_FAIL_AT("prom_negotiate(\"%s\") = %d, want %d",
                         cases[i].accept ? cases[i].accept : "(null)", (int)got,
                         (int)cases[i].want);
    }
    CHECK_STR_EQ(prom_content_type(PROM_FORMAT_TEXT), "text/plain; version=0.0.4; charset=utf-8");
    CHECK_STR_EQ(prom_content_type(PROM_FORMAT_OPENMETRICS),
                 "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

static void test_accepts_gzip(void)
{
    static const struct {
        const char *header;
        bool want;
    } cases[] = {
        {"gzip", true},      /* Prometheus with compression (the default) */
        {"identity", false}, /* Prometheus with enable_compression: false */
        {NULL, false},
        {"", false},
        {"gzip, deflate, br", true},
        {"br;q=1.0, gzip;q=0.8, *;q=0.1", true},
        {"GZip;Q=0.5", true},
        {"x-gzip", true},
        {"gzip;q=0", false},
        {"gzip;q=0.000", false},
        {"gzip;q=0.001", true},
        {"gzip;q=bogus", false},
        {"*", true},
        {"*;q=0", false},
        {"gzip;q=0, *", false},
        {"identity, *;q=0.5", true},
        {"identity;q=1, *;q=0", false},
        {"deflate, br", false},
        {"gzipx", false},
    };
    for (size_t i = 0; i < N(cases); i++) {
        bool got = prom_accepts_gzip(cases[i].header);
        if (got != cases[i].want)
            TEST_FAIL_AT("prom_accepts_gzip(\"%s\") = %d", cases[i].header ? cases[i].header : "",
                         (int)got);
    }
}

/* Inflates a gzip stream with zlib; returns the length or -1. */
static long gunzip(const char *in, size_t in_len, char *out, size_t out_size)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return -1;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)in_len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)out_size;
    int rc = inflate(&zs, Z_FINISH);
    long n = rc == Z_STREAM_END ? (long)zs.total_out : -1;
    inflateEnd(&zs);
    return n;
}

static void test_gzip(void)
{
    struct text_buf in, out;
    struct prom_writer w;
    text_buf_init(&in, 8 << 20);
    text_buf_init(&out, 8 << 20);
    prom_writer_init(&w, &in, PROM_FORMAT_TEXT);
    prom_family(&w, "icmp_probe_rtt_seconds", PROM_TYPE_GAUGE, "RTT.", "seconds");
    uint64_t seed = 42;
    for (int i = 0; i < 50000; i++) {
        char target[32];
        snprintf(target, sizeof target, "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        const struct prom_label l[] = {{"target", target}};
        prom_sample(&w, "icmp_probe_rtt_seconds", l, 1, (double)(rng_next(&seed) % 1000000) / 1e9);
    }
    REQUIRE(prom_finish(&w) == 0);
    CHECK_EQ(prom_gzip(&in, &out), 0);
    CHECK_GT(text_buf_len(&out), 18);
    CHECK_LT(text_buf_len(&out), text_buf_len(&in) / 3);
    fprintf(stderr, "gzip: %zu -> %zu bytes\n", text_buf_len(&in), text_buf_len(&out));
    char *back = malloc(text_buf_len(&in) + 1);
    REQUIRE(back != NULL);
    long n = gunzip(text_buf_data(&out), text_buf_len(&out), back, text_buf_len(&in) + 1);
    CHECK_EQ(n, (long)text_buf_len(&in));
    CHECK(n >= 0 && memcmp(back, text_buf_data(&in), (size_t)n) == 0);

    /* Empty input: a valid empty gzip stream. */
    struct text_buf empty;
    text_buf_init(&empty, 16);
    text_buf_reset(&out);
    CHECK_EQ(prom_gzip(&empty, &out), 0);
    CHECK_EQ(gunzip(text_buf_data(&out), text_buf_len(&out), back, 16), 0);

    /* Appends after existing content; the limit applies to the whole. */
    text_buf_reset(&out);
    text_buf_append_str(&out, "HEAD");
    text_buf_append_str(&empty, "hello");
    CHECK_EQ(prom_gzip(&empty, &out), 0);
    CHECK(memcmp(text_buf_data(&out), "HEAD", 4) == 0);
    CHECK_EQ(gunzip(text_buf_data(&out) + 4, text_buf_len(&out) - 4, back, 16), 5);

    /* Too small an output limit: -E2BIG, nothing kept; a failed input: -EINVAL. */
    for (size_t max = 0; max < 200; max += 13) {
        struct text_buf small;
        text_buf_init(&small, max);
        int err = prom_gzip(&in, &small);
        CHECK_EQ(err, -E2BIG);
        CHECK_EQ(text_buf_len(&small), 0);
        text_buf_cleanup(&small);
    }
    struct text_buf tight;
    text_buf_init(&tight, text_buf_len(&out));
    text_buf_append_str(&tight, "HEAD");
    CHECK_EQ(prom_gzip(&empty, &tight), 0); /* exactly fits */
    text_buf_cleanup(&tight);
    text_buf_append(&empty, "0123456789abcdef", 16); /* over its limit of 16 */
    text_buf_reset(&out);
    CHECK_EQ(prom_gzip(&empty, &out), -EINVAL);
    CHECK_EQ(prom_gzip(&out, &out), -EINVAL);

    free(back);
    text_buf_cleanup(&empty);
    text_buf_cleanup(&in);
    text_buf_cleanup(&out);
}

/* The incremental form: any split of the input, fed piece by piece with the output drained
 * between pieces (as the /metrics stream does), decodes to the input. */
static void test_gzip_stream(void)
{
    struct text_buf in, out, all;
    struct prom_writer w;
    uint64_t seed = 7;

    text_buf_init(&in, 8 << 20);
    text_buf_init(&out, 8 << 20);
    text_buf_init(&all, 8 << 20);
    prom_writer_init(&w, &in, PROM_FORMAT_TEXT);
    prom_family(&w, "icmp_target_success", PROM_TYPE_GAUGE, "Success.", NULL);
    for (int i = 0; i < 20000; i++) {
        char target[32];
        snprintf(target, sizeof target, "198.18.%d.%d", i >> 8, i & 255);
        const struct prom_label l[] = {{"target", target}};
        prom_sample(&w, "icmp_target_success", l, 1, (double)(rng_next(&seed) % 2));
    }
    REQUIRE(prom_finish(&w) == 0);
    char *back = malloc(text_buf_len(&in) + 1);
    REQUIRE(back != NULL);
    /* Piece sizes: 1 byte, odd, about a chunk, bigger than the input, and random. */
    const size_t pieces[] = {1, 997, 65536, 1 << 24, 0};
    for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
        struct prom_gzip *g;
        REQUIRE(prom_gzip_new(&g) == 0);
        text_buf_reset(&all);
        size_t off = 0, len = text_buf_len(&in);
        int rc = 0;
        while (rc == 0 && off < len) {
            size_t n = pieces[k] != 0 ? pieces[k] : 1 + rng_next(&seed) % 100000;
            n = n < len - off ? n : len - off;
            text_buf_reset(&out);
            rc = prom_gzip_write(g, text_buf_data(&in) + off, n, false, &out);
            text_buf_append(&all, text_buf_data(&out), text_buf_len(&out));
            off += n;
        }
        CHECK_EQ(rc, 0);
        text_buf_reset(&out);
        CHECK_EQ(prom_gzip_write(g, NULL, 0, true, &out), 0); /* an empty last piece */
        text_buf_append(&all, text_buf_data(&out), text_buf_len(&out));
        prom_gzip_free(g);
        long n = gunzip(text_buf_data(&all), text_buf_len(&all), back, len + 1);
        CHECK_EQ(n, (long)len);
        CHECK(n >= 0 && memcmp(back, text_buf_data(&in), (size_t)n) == 0);
    }
    /* A failed output buffer stays failed. */
    struct prom_gzip *g;
    struct text_buf tiny;
    text_buf_init(&tiny, 8);
    REQUIRE(prom_gzip_new(&g) == 0);
    CHECK_EQ(prom_gzip_write(g, text_buf_data(&in), text_buf_len(&in), true, &tiny), -E2BIG);
    CHECK_EQ(prom_gzip_write(g, "x", 1, true, &tiny), -E2BIG);
    prom_gzip_free(g);
    prom_gzip_free(NULL);
    text_buf_cleanup(&tiny);
    free(back);
    text_buf_cleanup(&in);
    text_buf_cleanup(&out);
    text_buf_cleanup(&all);
}

/*
 * A structural check of OpenMetrics output, since promtool parses the text format only:
 * ends in "# EOF\n"; metadata lines are TYPE, UNIT, HELP of known types, each at most once per
 * family and before its samples; a family is never reopened; each sample's name is the
 * family's name plus a suffix its type allows (_total for counters); labels are well-formed
 * with only \\ \" \n escapes; values parse as numbers; the whole text is valid UTF-8.
 */
static const char *om_suffixes(const char *type)
{
    if (strcmp(type, "counter") == 0)
        return "_total _created";
    if (strcmp(type, "histogram") == 0)
        return "_bucket _sum _count _created";
    if (strcmp(type, "gauge") == 0 || strcmp(type, "unknown") == 0)
        return "";
    return NULL;
}

/* True when word is one of the space-separated words of list. */
static bool word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

static bool om_sample_ok(const char *line, const char *family, const char *type)
{
    size_t n = strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
    size_t flen = strlen(family);
    if (n < flen || strncmp(line, family, flen) != 0)
        return false;
    char suffix[32];
    if (n - flen >= sizeof suffix)
        return false;
    memcpy(suffix, line + flen, n - flen);
    suffix[n - flen] = '\0';
    const char *allowed = om_suffixes(type);
    if (allowed == NULL)
        return false;
    if (suffix[0] == '\0' ? allowed[0] != '\0' : !word_in(allowed, suffix))
        return false;
    const char *p = line + n;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            size_t ln =
                strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
            if (ln == 0 || p[ln] != '=' || p[ln + 1] != '"')
                return false;
            for (p += ln + 2; *p != '"'; p++) {
                if (*p == '\0' || *p == '\n')
                    return false;
                if (*p == '\\' && (p[1] != '\\' && p[1] != '"' && p[1] != 'n'))
                    return false;
                if (*p == '\\')
                    p++;
            }
            p++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                return false;
        }
        p++;
    }
    if (*p++ != ' ')
        return false;
    if (strcmp(p, "NaN") == 0 || strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0)
        return true;
    char *end;
    strtod(p, &end);
    return end != p && *end == '\0' && strspn(p, "+-0123456789.e") == strlen(p);
}

static int om_check(const char *text)
{
    size_t len = strlen(text);
    if (len < 6 || strcmp(text + len - 6, "# EOF\n") != 0)
        return __LINE__;
    for (const unsigned char *u = (const unsigned char *)text; *u != '\0';) {
        size_t n = *u < 0x80 ? 1 : (*u >> 5) == 6 ? 2 : (*u >> 4) == 14 ? 3 : 4;
        for (size_t i = 1; i < n; i++)
            if ((u[i] & 0xC0) != 0x80)
                return __LINE__;
        u += n;
    }
    char seen[64][64];
    size_t n_seen = 0;
    char family[64] = "", type[16] = "";
    bool had_sample = false, meta[3] = {false, false, false};
    char line[1024];
    for (const char *p = text; strncmp(p, "# EOF\n", 6) != 0;) {
        const char *nl = strchr(p, '\n');
        if (nl == NULL || (size_t)(nl - p) >= sizeof line)
            return __LINE__;
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        p = nl + 1;
        if (line[0] == '#') {
            char kind[8], name[64];
            int off = 0;
            if (sscanf(line, "# %7s %63s %n", kind, name, &off) != 2)
                return __LINE__;
            int k = strcmp(kind, "TYPE") == 0   ? 0
                    : strcmp(kind, "UNIT") == 0 ? 1
                    : strcmp(kind, "HELP") == 0 ? 2
                                                : -1;
            if (k < 0)
                return __LINE__;
            if (strcmp(name, family) != 0) {
                for (size_t i = 0; i < n_seen; i++)
                    if (strcmp(seen[i], name) == 0)
                        return __LINE__; /* family reopened */
                if (n_seen == 64)
                    return __LINE__;
                snprintf(seen[n_seen++], sizeof seen[0], "%s", name);
                snprintf(family, sizeof family, "%s", name);
                type[0] = '\0';
                had_sample = false;
                memset(meta, 0, sizeof meta);
            }
            if (meta[k] || had_sample)
                return __LINE__;
            meta[k] = true;
            if (k == 0 && (sscanf(line + off, "%15s", type) != 1 || om_suffixes(type) == NULL))
                return __LINE__;
            if (k == 1) {
                size_t fl = strlen(family), ul = strlen(line + off);
                if (ul == 0 || ul + 1 >= fl || strcmp(family + fl - ul, line + off) != 0)
                    return __LINE__;
            }
            continue;
        }
        if (type[0] == '\0' || !om_sample_ok(line, family, type))
            return __LINE__;
        had_sample = true;
    }
    return 0;
}

static void test_openmetrics_structure(void)
{
    void (*renders[])(struct prom_writer *) = {render_gauge,   render_counter,
                                               render_unit,    render_histogram,
                                               render_hostile, render_invalid_utf8};
    struct text_buf b;
    struct prom_writer w;
    text_buf_init(&b, 1 << 16);
    prom_writer_init(&w, &b, PROM_FORMAT_OPENMETRICS);
    for (size_t i = 0; i < N(renders); i++)
        renders[i](&w);
    REQUIRE(prom_finish(&w) == 0);
    int bad = om_check(text_buf_data(&b));
    if (bad != 0)
        TEST_FAIL_AT("OpenMetrics check failed at test_prom.c:%d on\n%s", bad, text_buf_data(&b));
    /* The checker itself catches what it claims to. */
    CHECK_NE(om_check("# TYPE a gauge\na 1\n"), 0);
    CHECK_NE(om_check("# TYPE a counter\na 1\n# EOF\n"), 0);
    CHECK_NE(om_check("# TYPE a_total counter\na_total 1\n# EOF\n"), 0);
    CHECK_NE(om_check("# TYPE a gauge\na{x=\"\\t\"} 1\n# EOF\n"), 0);
    CHECK_NE(om_check("# TYPE a gauge\na 1\n# TYPE b gauge\n# TYPE a gauge\n# EOF\n"), 0);
    CHECK_NE(om_check("# TYPE a gauge\na nan\n# EOF\n"), 0);
    CHECK_NE(om_check("# TYPE a gauge\na{x=\"\xFF\"} 1\n# EOF\n"), 0);
    CHECK_NE(om_check("# TYPE a gauge\n# UNIT a seconds\n# EOF\n"), 0);
    CHECK_EQ(om_check("# TYPE a_seconds gauge\n# UNIT a_seconds seconds\na_seconds 1\n# EOF\n"), 0);
    text_buf_cleanup(&b);
}

int main(void)
{
    test_buf();
    test_numbers();
    test_render();
    test_invalid();
    test_limit();
    test_negotiate();
    test_accepts_gzip();
    test_gzip();
    test_gzip_stream();
    test_openmetrics_structure();
    return TEST_DONE();
}
