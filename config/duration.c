/*
 * Prometheus durations (model.ParseDuration): a sequence of <integer><unit> with units
 * y, w, d, h, m, s, ms, each at most once and in decreasing order, or the bare "0".
 * A year is 365 days, as in Prometheus. Fractions are not accepted there, so not here.
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct unit {
    const char *name;
    int64_t ns;
};

/* Ordered from largest to smallest; "ms" precedes "m" only in matching, see below. */
static const struct unit units[] = {
    {"y", 365LL * 24 * 3600 * 1000000000LL},
    {"w", 7LL * 24 * 3600 * 1000000000LL},
    {"d", 24LL * 3600 * 1000000000LL},
    {"h", 3600LL * 1000000000LL},
    {"m", 60LL * 1000000000LL},
    {"s", 1000000000LL},
    {"ms", 1000000LL},
};

/* Index of the unit at p (longest match), or -1. Advances *len by the unit's length. */
static int match_unit(const char *p, size_t *len)
{
    if (p[0] == 'm' && p[1] == 's') {
        *len = 2;
        return 6;
    }
    for (int i = 0; i < 6; i++) {
        if (p[0] == units[i].name[0]) {
            *len = 1;
            return i;
        }
    }
    return -1;
}

int config_parse_duration(const char *text, int64_t *ns)
{
    const char *p = text;
    int64_t total = 0;
    int next_unit = 0;

    if (text == NULL || *text == '\0')
        return -EINVAL;
    if (strcmp(text, "0") == 0) {
        *ns = 0;
        return 0;
    }
    while (*p != '\0') {
        int64_t value = 0;
        bool digits = false;
        size_t len = 0;
        int u;

        for (; *p >= '0' && *p <= '9'; p++) {
            if (value > (INT64_MAX - (*p - '0')) / 10)
                return -ERANGE;
            value = value * 10 + (*p - '0');
            digits = true;
        }
        if (!digits)
            return -EINVAL;
        u = match_unit(p, &len);
        if (u < next_unit)
            return -EINVAL; /* unknown unit, repeated, or out of order */
        if (value > (INT64_MAX - total) / units[u].ns)
            return -ERANGE;
        total += value * units[u].ns;
        next_unit = u + 1;
        p += len;
    }
    *ns = total;
    return 0;
}

/* The shortest Prometheus duration for ns (units of the same table as the parser). */
void config__format_duration(int64_t ns, char *buf, size_t size)
{
    size_t used = 0;

    if (size == 0)
        return;
    buf[0] = '\0';
    if (ns == 0 || ns % 1000000 != 0 || ns < 0) {
        /* Not a Prometheus duration (sub-millisecond or negative): say it in ns. */
        if (ns == 0)
            snprintf(buf, size, "0s");
        else
            snprintf(buf, size, "%" PRId64 "ns", ns);
        return;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && ns > 0; i++) {
        int64_t n = ns / units[i].ns;
        if (n == 0)
            continue;
        ns -= n * units[i].ns;
        int w = snprintf(buf + used, size - used, "%" PRId64 "%s", n, units[i].name);
        if (w < 0 || (size_t)w >= size - used) {
            buf[used] = '\0'; /* drop a cut unit rather than show a wrong number */
            return;
        }
        used += (size_t)w;
    }
}
