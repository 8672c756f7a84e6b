/*
 * Durations, table-driven: what parses, to what, and what is refused. Prometheus' form (our
 * JSON), Go's time.ParseDuration (blackbox_exporter's YAML timeouts) and the flag form that
 * also takes plain seconds (--timeout-offset, as blackbox's float flag).
 */
#include "config/config.h"
#include "config/config_internal.h"
#include "test.h"

#include <errno.h>

struct duration_case {
    const char *text;
    int expect_rc;
    int64_t expect_ns;
};

static const struct duration_case cases[] = {
    {"0", 0, 0},
    {"250ms", 0, 250000000},
    {"1s", 0, 1000000000},
    {"1m30s", 0, 90000000000},
    {"1h", 0, 3600000000000},
    {"1d", 0, 86400000000000},
    {"1w", 0, 604800000000000},
    {"1y", 0, 31536000000000000},
    {"2h45m10s500ms", 0, 9910500000000},
    {"0s", 0, 0},
    {"9223372036854ms", 0, 9223372036854000000},
    {"", -EINVAL, 0},
    {"s", -EINVAL, 0},
    {"1", -EINVAL, 0},
    {"1.5s", -EINVAL, 0},
    {"-1s", -EINVAL, 0},
    {" 1s", -EINVAL, 0},
    {"1s ", -EINVAL, 0},
    {"1us", -EINVAL, 0},
    {"1s1m", -EINVAL, 0},
    {"1s1s", -EINVAL, 0},
    {"1ms1s", -EINVAL, 0},
    {"1x", -EINVAL, 0},
    {"9223372036855ms", -ERANGE, 0},
    {"99999999999999999999s", -ERANGE, 0},
    {"300y", -ERANGE, 0},
};

/* What Go 1.19's time.ParseDuration returns for each. */
static const struct duration_case go_cases[] = {
    {"0", 0, 0},
    {"-0", 0, 0},
    {"+0", 0, 0},
    {"0s", 0, 0},
    {"5s", 0, 5000000000},
    {"1m30s", 0, 90000000000},
    {"1s1m", 0, 61000000000},
    {"1h1h", 0, 7200000000000},
    {"1.5s", 0, 1500000000},
    {".5s", 0, 500000000},
    {"5.s", 0, 5000000000},
    {"1.1s", 0, 1100000000},
    {"2.3h", 0, 8280000000000},
    {"300us", 0, 300000},
    {"300\xc2\xb5s", 0, 300000},
    {"300\xce\xbcs", 0, 300000},
    {"7ns", 0, 7},
    {"-1.5s", 0, -1500000000},
    {"+2ms", 0, 2000000},
    {"1.0000000000000000000001s", 0, 1000000000},
    {"9223372036854775807ns", 0, INT64_MAX},
    {"-9223372036854775808ns", 0, INT64_MIN},
    {"", -EINVAL, 0},
    {"-", -EINVAL, 0},
    {"5", -EINVAL, 0},
    {"s", -EINVAL, 0},
    {".s", -EINVAL, 0},
    {"1d", -EINVAL, 0},
    {"5S", -EINVAL, 0},
    {"1sx", -EINVAL, 0},
    {" 1s", -EINVAL, 0},
    {"1s ", -EINVAL, 0},
    {"1e3s", -EINVAL, 0},
    {"9223372036854775808ns", -ERANGE, 0},
    {"2562048h", -ERANGE, 0},
    {"99999999999999999999s", -ERANGE, 0},
};

/* --timeout-offset: a Prometheus duration, or seconds as Go's ParseFloat reads them. */
static const struct duration_case flag_cases[] = {
    {"500ms", 0, 500000000},    {"1m30s", 0, 90000000000}, {"0", 0, 0},
    {"0.5", 0, 500000000},      {"1", 0, 1000000000},      {"2.25", 0, 2250000000},
    {".5", 0, 500000000},       {"5.", 0, 5000000000},     {"1e-1", 0, 100000000},
    {"1.5E1", 0, 15000000000},  {"0.0000000001", 0, 0},    {"", -EINVAL, 0},
    {".", -EINVAL, 0},          {"-0.5", -EINVAL, 0},      {"+0.5", -EINVAL, 0},
    {" 0.5", -EINVAL, 0},       {"0.5 ", -EINVAL, 0},      {"0.5s", -EINVAL, 0},
    {"1e", -EINVAL, 0},         {"0x10", -EINVAL, 0},      {"inf", -EINVAL, 0},
    {"nan", -EINVAL, 0},        {"1.5s", -EINVAL, 0},      {"1e400", -ERANGE, 0},
    {"9300000000", -ERANGE, 0},
};

static void run(const char *what, int (*parse)(const char *, int64_t *),
                const struct duration_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t ns = -7;
        int rc = parse(c[i].text, &ns);
        if (rc != c[i].expect_rc)
            TEST_FAIL_AT("%s \"%s\": rc %d, expected %d", what, c[i].text, rc, c[i].expect_rc);
        else if (rc == 0 && ns != c[i].expect_ns)
            TEST_FAIL_AT("%s \"%s\": %" PRId64 " ns, expected %" PRId64, what, c[i].text, ns,
                         c[i].expect_ns);
        else if (rc != 0 && ns != -7)
            TEST_FAIL_AT("%s \"%s\": output written on failure", what, c[i].text);
    }
}

int main(void)
{
    run("go", config__parse_go_duration, go_cases, sizeof(go_cases) / sizeof(go_cases[0]));
    run("flag", config_parse_duration_or_seconds, flag_cases,
        sizeof(flag_cases) / sizeof(flag_cases[0]));
    CHECK_EQ(config__parse_go_duration(NULL, &(int64_t){0}), -EINVAL);
    CHECK_EQ(config_parse_duration_or_seconds(NULL, &(int64_t){0}), -EINVAL);
    run("prometheus", config_parse_duration, cases, sizeof(cases) / sizeof(cases[0]));
    CHECK_EQ(config_parse_duration(NULL, &(int64_t){0}), -EINVAL);
    return TEST_DONE();
}
