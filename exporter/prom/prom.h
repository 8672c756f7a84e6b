/*
 * Prometheus text (0.0.4) and OpenMetrics (1.0.0) rendering into a text_buf: a writer for
 * metric families and samples (writer.c), number formatting (number.c), content negotiation
 * (negotiate.c) and gzip (gzip.c). Pure functions: no sockets, no HTTP, no globals; every
 * function is thread-safe on distinct objects.
 *
 * Errors are the text_buf's sticky error: every writer call fails with the buffer's first
 * error, so a caller may write a whole exposition unchecked and check prom_finish() once.
 */
#ifndef ICMPX_PROM_H
#define ICMPX_PROM_H

#include "exporter/prom/text_buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum prom_format {
    PROM_FORMAT_TEXT,        /* text/plain; version=0.0.4 */
    PROM_FORMAT_OPENMETRICS, /* application/openmetrics-text; version=1.0.0 */
};

/* The Content-Type header value for a format, with charset=utf-8 (static string). */
const char *prom_content_type(enum prom_format format);

enum prom_type {
    PROM_TYPE_GAUGE,
    PROM_TYPE_COUNTER,
    PROM_TYPE_HISTOGRAM,
    PROM_TYPE_UNTYPED, /* "untyped" in text, "unknown" in OpenMetrics */
};

/* A label; both strings are borrowed for the duration of the call. The name must be a
 * valid label name ([a-zA-Z_][a-zA-Z0-9_]*, asserted); the value is any C string and is
 * escaped, with invalid UTF-8 replaced (see prom_family). */
struct prom_label {
    const char *name;
    const char *value;
};

/* Renders into a caller's text_buf; holds no memory of its own (no cleanup). */
struct prom_writer {
    struct text_buf *buf;
    enum prom_format format;
};

void prom_writer_init(struct prom_writer *w, struct text_buf *buf, enum prom_format format);

/*
 * Starts a metric family: "# HELP" then "# TYPE" in text; "# TYPE", "# UNIT", "# HELP" in
 * OpenMetrics. Counters are named with their sample name, ending in "_total" (-EINVAL
 * otherwise); OpenMetrics names the family without it. unit (NULL for none) is written in
 * OpenMetrics only, and the family name must end in "_<unit>" (-EINVAL otherwise). help may be
 * NULL or "" (no HELP line). Invalid UTF-8 in help or label values is replaced by U+FFFD per
 * maximal invalid subsequence (both formats: Prometheus rejects the whole scrape otherwise).
 * Returns 0 or the sticky error.
 */
int prom_family(struct prom_writer *w, const char *name, enum prom_type type, const char *help,
                const char *unit);

/* One sample line, "name{labels} value". prom_sample2 writes the labels of a, then of b
 * (e.g. a target's common labels, then per-sample ones) without copying. Values are
 * formatted as prom_format_value does. Returns 0 or the sticky error. */
int prom_sample(struct prom_writer *w, const char *name, const struct prom_label *labels,
                size_t n_labels, double value);
int prom_sample2(struct prom_writer *w, const char *name, const struct prom_label *a, size_t n_a,
                 const struct prom_label *b, size_t n_b, double value);

/* Histogram observations: counts[i] is the number of observations v with
 * bounds[i-1] < v <= bounds[i] (per bucket, NOT cumulative); observations above the last
 * bound are count minus the sum of counts. bounds are finite and strictly increasing (and
 * positive, for OpenMetrics, which forbids a _sum beside negative bounds; _sum is always
 * written). */
struct prom_buckets {
    const double *bounds;
    const uint64_t *counts;
    size_t n_bounds;
    uint64_t count;
    double sum;
    const char *const *le; /* optional: the bounds already written by prom_format_le for the
                              writer's format (saves formatting them for every series) */
};

/* Writes name_bucket{...,le="..."} cumulatively with a final le="+Inf" equal to count, then
 * name_sum and name_count, all with the labels of a then b. le values are Go's %g (text,
 * as client_golang) or OpenMetrics' canonical form ("1.0", "0.005", "1e+06", "+Inf").
 * Returns 0 or the sticky error; inconsistent buckets (unsorted or non-finite bounds, counts
 * summing above count) are -EINVAL, sticky like any error: pass a consistent snapshot. */
int prom_histogram(struct prom_writer *w, const char *name, const struct prom_label *a, size_t n_a,
                   const struct prom_label *b, size_t n_b, const struct prom_buckets *h);

/* Ends the exposition ("# EOF\n" in OpenMetrics, nothing in text). Returns 0 or the first
 * error of the whole rendering: the one check a caller needs. */
int prom_finish(struct prom_writer *w);

/* Room for any number prom_format_value or prom_format_le writes, NUL included. */
#define PROM_NUMBER_MAX 32

/* A sample value as the shortest text that reads back as the same double: integers of
 * magnitude below 2^53 in plain digits ("1", "10000"), others as C's %g with just enough
 * digits ("0.1", "1e-09", "1e+21"); "NaN", "+Inf", "-Inf"; -0 as "0". Writes a NUL-terminated
 * string into out (size >= PROM_NUMBER_MAX), returns its length. Thread-safe. */
size_t prom_format_value(double v, char *out, size_t size);

/* A histogram bound for the le label: Go's strconv 'g' -1 (text; "1", "0.005", "1e+06"), and
 * for OpenMetrics the same with ".0" added when there is no '.' or exponent ("1.0"). Same
 * contract as prom_format_value. */
size_t prom_format_le(double v, enum prom_format format, char *out, size_t size);

/* True when name is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) / label name
 * ([a-zA-Z_][a-zA-Z0-9_]*; "__" prefixes are reserved to Prometheus but accepted here). */
bool prom_valid_metric_name(const char *name);
bool prom_valid_label_name(const char *name);

/*
 * The format to answer an Accept header with (NULL or garbage: text). OpenMetrics when the
 * highest-q acceptable clause we can serve is application/openmetrics-text with version
 * 1.0.0 or no version; text/plain with version 0.0.4 or none is text. Ties go to the clause
 * listed first; q=0 means "not acceptable"; wildcards and other types or versions are
 * skipped, ending in the text fallback (client_golang's NegotiateIncludingOpenMetrics).
 */
enum prom_format prom_negotiate(const char *accept);

/* True when an Accept-Encoding header accepts gzip: "gzip" or "x-gzip" with q > 0, or, when
 * neither is listed, "*" with q > 0. NULL, "", "identity": false. */
bool prom_accepts_gzip(const char *accept_encoding);

/* Appends the gzip (RFC 1952, zlib level 1) compression of in's content to out, a different
 * buffer whose limit applies. Returns 0 or out's sticky error, which this sets to -E2BIG,
 * -ENOMEM, -EIO (zlib) or -EINVAL (in has failed, or in == out). */
int prom_gzip(const struct text_buf *in, struct text_buf *out);

/*
 * The same compression in steps, for a body rendered and sent piece by piece: feed each
 * piece to prom_gzip_write (finish true with the last one, which may be empty); what deflate
 * has ready is appended to out. Returns 0 or out's sticky error as prom_gzip. One stream per
 * body; not thread-safe; prom_gzip_free accepts NULL.
 */
struct prom_gzip;
int prom_gzip_new(struct prom_gzip **out);
int prom_gzip_write(struct prom_gzip *g, const void *p, size_t n, bool finish,
                    struct text_buf *out);
void prom_gzip_free(struct prom_gzip *g);

#endif
