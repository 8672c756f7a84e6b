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

struct log_repeat;

/* Where and what to log; a plain value, set up once by main before threads start. */
struct log_config {
    enum log_level level;
    enum log_format format;
    FILE *out;
    struct log_repeat *repeat; /* NULL: every line is written (log_repeat_new) */
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

/*
 * Repeated lines, limited: with log->repeat set, a line identical to one already written
 * (all but its time) more than LOG_REPEAT_BURST times within LOG_REPEAT_WINDOW_S seconds
 * is only counted; the count is written once, as the same line with repeated=N, when the
 * line comes again after the window, when the line leaves the table of recent ones, or at
 * log_repeat_flush. So a loop that logs on each turn (libmicrohttpd at the descriptor
 * limit) costs a few lines a second, not gigabytes. log_repeat_new returns 0 or -ENOMEM;
 * log_repeat_free (NULL accepted) writes nothing: flush first. Thread-safe.
 */
#define LOG_REPEAT_BURST    10
#define LOG_REPEAT_WINDOW_S 10
int log_repeat_new(struct log_repeat **out);
void log_repeat_flush(const struct log_config *log);
void log_repeat_free(struct log_repeat *r);

#endif
