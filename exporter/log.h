/*
 * Structured log lines on stderr, logfmt or JSON, as Prometheus' own exporters write them:
 *   ts=2026-11-25T07:23:07.123Z level=info msg="listening" address=:9723
 */
#ifndef EXPORTER_LOG_H
#define EXPORTER_LOG_H

#include <stdbool.h>
#include <stdio.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };
enum log_format { LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };

/* Where and what to log; a plain value, set up once by main before threads start. */
struct log_config {
    enum log_level level;
    enum log_format format;
    FILE *out;
};

/* Parses "debug|info|warn|error" / "logfmt|json". Return 0, or -EINVAL (output untouched). */
int log_parse_level(const char *text, enum log_level *level);
int log_parse_format(const char *text, enum log_format *format);

/*
 * Writes one line: msg, then key/value string pairs ending with a NULL key. Values are
 * quoted and escaped as the format needs. The line is built in memory and written with a
 * single fwrite, so concurrent threads never interleave within a line. Thread-safe.
 */
void log_write(const struct log_config *log, enum log_level level, const char *msg, ...);

#endif
