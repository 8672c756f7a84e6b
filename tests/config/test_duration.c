/* Prometheus-style durations, table-driven: what parses, to what, and what is refused. */
#include "config/config.h"
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

int main(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ns = -7;
        int rc = config_parse_duration(cases[i].text, &ns);
        if (rc != cases[i].expect_rc)
            TEST_FAIL_AT("\"%s\": rc %d, expected %d", cases[i].text, rc, cases[i].expect_rc);
        else if (rc == 0 && ns != cases[i].expect_ns)
            TEST_FAIL_AT("\"%s\": %" PRId64 " ns, expected %" PRId64, cases[i].text, ns,
                         cases[i].expect_ns);
        else if (rc != 0 && ns != -7)
            TEST_FAIL_AT("\"%s\": output written on failure", cases[i].text);
    }
    CHECK_EQ(config_parse_duration(NULL, &(int64_t){0}), -EINVAL);
    return TEST_DONE();
}
