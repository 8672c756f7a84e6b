/*
 * Structured logging: one line per event, built in a stack buffer (long values are cut
 * with "...", a log line is not worth an allocation failure) and written in one call.
 */
#include "exporter/log.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_BYTES 4096

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_parse_level(const char *text, enum log_level *level)
{
    for (int i = 0; i < 4; i++) {
        if (text != NULL && strcmp(text, level_names[i]) == 0) {
            *level = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

int log_parse_format(const char *text, enum log_format *format)
{
    if (text != NULL && strcmp(text, "logfmt") == 0)
        *format = LOG_FORMAT_LOGFMT;
    else if (text != NULL && strcmp(text, "json") == 0)
        *format = LOG_FORMAT_JSON;
    else
        return -EINVAL;
    return 0;
}

struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
    bool cut; /* the line was too long: "..." written, nothing more goes in */
};

static void put(struct line *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - 8 - l->len; /* room for "...", "\"}", "\n" */

    if (l->cut)
        return;
    if (n > room) {
        l->cut = true;
        memcpy(l->buf + l->len, s, room);
        l->len += room;
        memcpy(l->buf + l->len, "...", 3);
        l->len += 3;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* A logfmt value needs quotes when empty or holding a space, quote, '=' or control. */
static bool needs_quotes(const char *v)
{
    if (*v == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return true;
    }
    return false;
}

static void put_escaped(struct line *l, const char *v)
{
    char hex[8];

    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        switch (*p) {
        case '"':
            puts_(l, "\\\"");
            break;
        case '\\':
            puts_(l, "\\\\");
            break;
        case '\n':
            puts_(l, "\\n");
            break;
        case '\t':
            puts_(l, "\\t");
            break;
        default:
            if (*p < ' ' || *p == 0x7f) {
                snprintf(hex, sizeof(hex), "\\u%04x", *p);
                puts_(l, hex);
            } else {
                put(l, (const char *)p, 1);
            }
        }
    }
}

static void put_pair(struct line *l, enum log_format format, const char *key, const char *value,
                     bool first)
{
    if (format == LOG_FORMAT_JSON) {
        puts_(l, first ? "{\"" : ",\"");
        put_escaped(l, key);
        puts_(l, "\":\"");
        put_escaped(l, value);
        puts_(l, "\"");
        return;
    }
    if (!first)
        puts_(l, " ");
    puts_(l, key);
    puts_(l, "=");
    if (needs_quotes(value)) {
        puts_(l, "\"");
        put_escaped(l, value);
        puts_(l, "\"");
    } else {
        puts_(l, value);
    }
}

void log_write(const struct log_config *log, enum log_level level, const char *msg, ...)
{
    struct line l = {.len = 0};
    char ts[40];
    struct timespec now;
    struct tm tm;
    va_list ap;

    if (log == NULL || level < log->level)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03ldZ", now.tv_nsec / 1000000);

    put_pair(&l, log->format, "ts", ts, true);
    put_pair(&l, log->format, "level", level_names[level], false);
    put_pair(&l, log->format, "msg", msg, false);
    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        const char *value;
        if (key == NULL)
            break;
        value = va_arg(ap, const char *);
        put_pair(&l, log->format, key, value != NULL ? value : "", false);
    }
    va_end(ap);
    if (log->format == LOG_FORMAT_JSON) {
        /* A cut line ends inside a string: close it so the line stays valid JSON. */
        if (l.cut)
            l.buf[l.len++] = '"';
        l.buf[l.len++] = '}';
    }
    l.buf[l.len++] = '\n';
    fwrite(l.buf, 1, l.len, log->out != NULL ? log->out : stderr);
    fflush(log->out != NULL ? log->out : stderr);
}
