/*
 * Numbers for the exposition formats.
 *
 * glibc's printf and strtod are correctly rounded, so the shortest round-trip digits are
 * found by printing with 15, 16, then 17 significant digits and reading each back (DBL_DIG
 * = 15 guarantees that when 15 digits round-trip, stripping their trailing zeros gives the
 * shortest form; subnormals search from 1 digit). Where 16 digits would do but the nearest
 * 16-digit decimal does not (possible just above a power of two), 17 are written: the text
 * still reads back exactly, it is only not the shortest. The digits are then laid out by
 * hand, C %g style for sample values and Go strconv 'g' -1 style for le labels, which
 * OpenMetrics' canonical numbers and client_golang's text output are defined by.
 */
#include "exporter/prom/prom.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shortest significant digits (no trailing zeros, at most 17) and decimal exponent of a
 * finite v > 0, such that digits * 10^(exp - nd + 1) reads back as v. Returns nd. */
static int shortest_digits(double v, char digits[18], int *exp10)
{
    char tmp[40];
    /* Subnormals have fewer significant bits than DBL_DIG assumes: search from 1 digit. */
    for (int prec = v < DBL_MIN ? 0 : 14; prec <= 16; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, v);
        if (prec == 16 || strtod(tmp, NULL) == v)
            break;
    }
    /* tmp is "d.ddd...e[+-]xx" */
    int nd = 0;
    const char *p = tmp;
    for (; *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    *exp10 = (int)strtol(p + 1, NULL, 10);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    return nd;
}

/* Appends to a fixed char array; PROM_NUMBER_MAX is sized so it never fills. */
struct numout {
    char *out;
    size_t size;
    size_t len;
};

static void nput(struct numout *o, char c)
{
    if (o->len + 1 < o->size)
        o->out[o->len++] = c;
}

static void nputs(struct numout *o, const char *s)
{
    while (*s != '\0')
        nput(o, *s++);
}

/* Lays out the digits in plain or exponent notation, both as C and Go print them. */
static void layout(struct numout *o, const char *digits, int nd, int exp, bool sci)
{
    if (sci) {
        nput(o, digits[0]);
        if (nd > 1) {
            nput(o, '.');
            nputs(o, digits + 1);
        }
        char e[16];
        snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        nputs(o, e);
    } else if (exp < 0) {
        nputs(o, "0.");
        for (int i = -1; i > exp; i--)
            nput(o, '0');
        nputs(o, digits);
    } else {
        for (int i = 0; i <= exp; i++)
            nput(o, i < nd ? digits[i] : '0');
        if (nd > exp + 1) {
            nput(o, '.');
            nputs(o, digits + exp + 1);
        }
    }
}

/* Non-finite values and zero, the same in every style; false for anything else. */
static bool format_special(double v, struct numout *o)
{
    if (isnan(v))
        nputs(o, "NaN");
    else if (isinf(v))
        nputs(o, v > 0 ? "+Inf" : "-Inf");
    else if (v == 0)
        nputs(o, "0"); /* -0 too: a sign on zero is an arithmetic artefact, not data */
    else
        return false;
    return true;
}

static size_t numout_done(struct numout *o)
{
    if (o->size != 0)
        o->out[o->len] = '\0';
    return o->len;
}

size_t prom_format_value(double v, char *out, size_t size)
{
    struct numout o = {out, size, 0};
    if (format_special(v, &o))
        return numout_done(&o);
    if (fabs(v) < 9007199254740992.0 && v == (double)(long long)v) { /* exact below 2^53 */
        char tmp[24];
        snprintf(tmp, sizeof tmp, "%lld", (long long)v);
        nputs(&o, tmp);
        return numout_done(&o);
    }
    char digits[18];
    int exp;
    if (v < 0)
        nput(&o, '-');
    int nd = shortest_digits(fabs(v), digits, &exp);
    layout(&o, digits, nd, exp, exp < -4 || exp >= nd); /* C's %.{nd}g */
    return numout_done(&o);
}

size_t prom_format_le(double v, enum prom_format format, char *out, size_t size)
{
    struct numout o = {out, size, 0};
    if (!format_special(v, &o)) {
        char digits[18];
        int exp;
        if (v < 0)
            nput(&o, '-');
        int nd = shortest_digits(fabs(v), digits, &exp);
        layout(&o, digits, nd, exp, exp < -4 || exp >= 6); /* Go: 'g' -1 decides at 6 */
    }
    if (format == PROM_FORMAT_OPENMETRICS && !isnan(v) && !isinf(v) &&
        memchr(out, '.', o.len) == NULL && memchr(out, 'e', o.len) == NULL)
        nputs(&o, ".0");
    return numout_done(&o);
}
