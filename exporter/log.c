/*
 * Structured logging: one line per event, built in a stack buffer (long values are cut
 * with "...", a log line is not worth an allocation failure) and written in one call.
 *
 * Repeats are limited (log.h): a small table of the lines written recently, keyed by a
 * hash of the line after its time, each with its window's start and counts. A line beyond
 * its burst is dropped and counted; its summary carries the text of the line itself (kept
 * in the table), so it reads as the line it stands for.
 */
#include "exporter/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_BYTES 4096
#define REPEAT_SLOTS   16

struct repeat_slot {
    uint64_t key;     /* 0: empty */
    int64_t start_s;  /* the window's start (monotonic seconds) */
    int64_t last_s;   /* last seen: the least recent slot is reused */
    unsigned written; /* in this window */
    unsigned long dropped;
    enum log_level level;
    char text[LINE_MAX_BYTES]; /* the line after its time: "level=... msg=..." */
};

struct log_repeat {
    pthread_mutex_t lock;
    struct repeat_slot slots[REPEAT_SLOTS];
};

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

/* Builds "ts=... <body>" (or its JSON), body being pairs already formatted, plus extra
 * pairs, and writes it in one call. */
static void emit(const struct log_config *log, const char *body, const char *repeated)
{
    struct line l = {.len = 0};
    char ts[40];
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03ldZ", now.tv_nsec / 1000000);

    put_pair(&l, log->format, "ts", ts, true);
    puts_(&l, log->format == LOG_FORMAT_JSON ? "," : " ");
    puts_(&l, body);
    if (repeated != NULL)
        put_pair(&l, log->format, "repeated", repeated, false);
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

static int64_t mono_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec;
}

/* FNV-1a, never 0 (0 marks an empty slot). */
static uint64_t line_key(enum log_level level, const char *body)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)level;

    for (const unsigned char *p = (const unsigned char *)body; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h != 0 ? h : 1;
}

/* The summary of a slot with dropped lines, copied out under the lock, written after. */
struct summary {
    bool due;
    char text[LINE_MAX_BYTES];
    char count[24];
};

static void summary_take(struct repeat_slot *slot, struct summary *out)
{
    out->due = slot->dropped > 0;
    if (!out->due)
        return;
    memcpy(out->text, slot->text, sizeof(out->text));
    snprintf(out->count, sizeof(out->count), "%lu", slot->dropped);
    slot->dropped = 0;
}

/* Whether the line may be written now (the repeat table updated); *sum: a summary due
 * first. */
static bool repeat_admit(struct log_repeat *r, enum log_level level, const char *body,
                         struct summary *sum)
{
    uint64_t key = line_key(level, body);
    int64_t now = mono_s();
    struct repeat_slot *slot = NULL, *oldest = &r->slots[0];
    bool admit = true;

    sum->due = false;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < REPEAT_SLOTS; i++) {
        struct repeat_slot *t = &r->slots[i];
        if (t->key == key)
            slot = t;
        if (oldest->key != 0 && (t->key == 0 || t->last_s < oldest->last_s))
            oldest = t; /* an empty slot, else the least recently seen */
    }
    if (slot == NULL) { /* a new line: take the least recent slot, its summary due first */
        slot = oldest;
        summary_take(slot, sum);
        *slot = (struct repeat_slot){.key = key, .start_s = now, .level = level};
        snprintf(slot->text, sizeof(slot->text), "%s", body);
    } else if (now - slot->start_s >= LOG_REPEAT_WINDOW_S) { /* a new window */
        summary_take(slot, sum);
        slot->start_s = now;
        slot->written = 0;
    }
    slot->last_s = now;
    if (slot->written >= LOG_REPEAT_BURST) {
        slot->dropped++;
        admit = false;
    } else {
        slot->written++;
    }
    pthread_mutex_unlock(&r->lock);
    return admit;
}

void log_write(const struct log_config *log, enum log_level level, const char *msg, ...)
{
    struct line l = {.len = 0};
    struct summary sum;
    va_list ap;

    if (log == NULL || level < log->level)
        return;
    put_pair(&l, log->format, "level", level_names[level], true);
    if (log->format == LOG_FORMAT_JSON) /* the body goes after ts's pair: no opening brace */
        memmove(l.buf, l.buf + 1, --l.len);
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
    if (l.cut && log->format == LOG_FORMAT_JSON)
        l.buf[l.len++] = '"'; /* a cut body ends inside a string (put() keeps room) */
    l.buf[l.len] = '\0';
    if (log->repeat != NULL) {
        bool admit = repeat_admit(log->repeat, level, l.buf, &sum);
        if (sum.due)
            emit(log, sum.text, sum.count);
        if (!admit)
            return;
    }
    emit(log, l.buf, NULL);
}

int log_repeat_new(struct log_repeat **out)
{
    struct log_repeat *r = calloc(1, sizeof(*r));

    *out = r;
    if (r == NULL)
        return -ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    return 0;
}

void log_repeat_flush(const struct log_config *log)
{
    struct log_repeat *r = log != NULL ? log->repeat : NULL;

    for (size_t i = 0; r != NULL && i < REPEAT_SLOTS; i++) {
        struct summary sum;
        pthread_mutex_lock(&r->lock);
        summary_take(&r->slots[i], &sum);
        pthread_mutex_unlock(&r->lock);
        if (sum.due)
            emit(log, sum.text, sum.count);
    }
}

void log_repeat_free(struct log_repeat *r)
{
    if (r == NULL)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}
