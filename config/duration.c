/*
 * Prometheus durations (model.ParseDuration): a sequence of <integer><unit> with units
 * y, w, d, h, m, s, ms, each at most once and in decreasing order, or the bare "0".
 * A year is 365 days, as in Prometheus. Fractions are not accepted there, so not here.
 *
 * Two more readers for what blackbox_exporter accepts: Go's time.ParseDuration (module
 * timeouts in its YAML) and a flag's plain seconds ("0.5", its --timeout-offset).
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
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

/*
 * Go's time.ParseDuration, which blackbox_exporter's YAML reads module timeouts with:
 * [-+]?([0-9]*(\.[0-9]*)?UNIT)+ with UNIT one of ns us µs μs ms s m h, units in any order
 * and repeated, or "0" alone. Fractions are turned into nanoseconds through a double, as
 * Go does, so "1.1s" gives what blackbox gets.
 */
int config__parse_go_duration(const char *text, int64_t *ns)
{
    static const struct unit go_units[] = {
        {"ns", 1},
        {"us", 1000},
        {"\xc2\xb5s", 1000}, /* U+00B5 MICRO SIGN */
        {"\xce\xbcs", 1000}, /* U+03BC GREEK SMALL LETTER MU */
        {"ms", 1000000},
        {"s", 1000000000},
        {"m", 60LL * 1000000000},
        {"h", 3600LL * 1000000000},
    };
    const uint64_t limit = (uint64_t)1 << 63;
    const char *s = text;
    uint64_t total = 0;
    bool neg = false;

    if (text == NULL)
        return -EINVAL;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '\0')
        return -EINVAL;
    while (*s != '\0') {
        uint64_t v = 0, f = 0, unit = 0;
        double scale = 1;
        bool pre = false, post = false, f_overflow = false;
        size_t ulen = 0;

        if (*s != '.' && (*s < '0' || *s > '9'))
            return -EINVAL;
        for (; *s >= '0' && *s <= '9'; s++, pre = true) {
            if (v > limit / 10)
                return -ERANGE;
            v = v * 10 + (uint64_t)(*s - '0');
            if (v > limit)
                return -ERANGE;
        }
        if (*s == '.') {
            for (s++; *s >= '0' && *s <= '9'; s++, post = true) {
                if (f_overflow || f > (limit - 1) / 10) {
                    f_overflow = true; /* Go stops gaining precision, silently */
                    continue;
                }
                f = f * 10 + (uint64_t)(*s - '0');
                scale *= 10;
            }
        }
        if (!pre && !post)
            return -EINVAL;
        while (s[ulen] != '\0' && s[ulen] != '.' && (s[ulen] < '0' || s[ulen] > '9'))
            ulen++;
        for (size_t i = 0; i < sizeof(go_units) / sizeof(go_units[0]); i++) {
            if (strlen(go_units[i].name) == ulen && memcmp(go_units[i].name, s, ulen) == 0)
                unit = (uint64_t)go_units[i].ns;
        }
        if (unit == 0)
            return -EINVAL; /* no unit, or an unknown one */
        s += ulen;
        if (v > limit / unit)
            return -ERANGE;
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > limit)
                return -ERANGE;
        }
        total += v;
        if (total > limit)
            return -ERANGE;
    }
    if (!neg && total > limit - 1)
        return -ERANGE;
    *ns = neg ? (int64_t)(0 - total) : (int64_t)total;
    return 0;
}

int config_parse_duration_or_seconds(const char *text, int64_t *ns)
{
    const char *p = text;
    bool digits = false;
    char *end = NULL;
    double v;

    if (text == NULL)
        return -EINVAL;
    if (config_parse_duration(text, ns) == 0)
        return 0;
    /* Plain decimal seconds, as a Go float flag reads them: 0.5, 2, 1.5e-1. No sign,
     * spaces, hex, "inf" or "nan". */
    for (; *p >= '0' && *p <= '9'; p++)
        digits = true;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            digits = true;
    if (!digits)
        return -EINVAL;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p != '\0')
        return -EINVAL;
    errno = 0;
    v = strtod(text, &end);
    if (end == NULL || *end != '\0')
        return -EINVAL;
    if (errno == ERANGE || !(v * 1e9 < 9.2e18))
        return -ERANGE;
    *ns = (int64_t)(v * 1e9 + 0.5);
    return 0;
}
