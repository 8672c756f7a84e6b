/*
 * The bounded text buffer (curl's dynbuf): one growable allocation with a hard limit whose
 * first error is sticky and empties it, so a long text (an exposition, an HTML page, a
 * probe's debug log) is written without a check per append and checked once at the end;
 * a failed text can never be served half-written.
 */
#include "exporter/prom/text_buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void text_buf_init(struct text_buf *b, size_t max_bytes)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max_bytes;
    b->err = 0;
}

char *text_buf_release(struct text_buf *b, size_t *len)
{
    char *data = b->data;

    *len = b->len;
    if (b->err != 0 || data == NULL) {
        text_buf_cleanup(b);
        *len = 0;
        return NULL;
    }
    text_buf_init(b, b->max);
    return data;
}

void text_buf_cleanup(struct text_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    text_buf_init(b, b->max);
}

void text_buf_reset(struct text_buf *b)
{
    b->len = 0;
    b->err = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

/* Records the first error and drops the content: nothing half-written survives. */
int text_buf_fail(struct text_buf *b, int err)
{
    if (b->err == 0)
        b->err = err;
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
    return b->err;
}

/* Makes room for extra more bytes of content plus the NUL. */
static int buf_reserve(struct text_buf *b, size_t extra);

int text_buf_reserve(struct text_buf *b, size_t extra)
{
    return b->err != 0 ? b->err : buf_reserve(b, extra);
}

static int buf_reserve(struct text_buf *b, size_t extra)
{
    if (b->err != 0)
        return b->err;
    if (extra > b->max - b->len)
        return text_buf_fail(b, -E2BIG);
    if (extra >= SIZE_MAX - b->len)
        return text_buf_fail(b, -ENOMEM);
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t limit = b->max < SIZE_MAX ? b->max + 1 : SIZE_MAX;
    size_t cap = b->cap != 0 ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > limit)
        cap = limit;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return text_buf_fail(b, -ENOMEM);
    b->data = p;
    b->cap = cap;
    return 0;
}

int text_buf_append(struct text_buf *b, const void *p, size_t n)
{
    int err = buf_reserve(b, n);
    if (err != 0)
        return err;
    if (n != 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int text_buf_append_str(struct text_buf *b, const char *s)
{
    return text_buf_append(b, s, strlen(s));
}

int text_buf_vprintf(struct text_buf *b, const char *fmt, va_list ap)
{
    if (b->err != 0)
        return b->err;
    size_t avail = b->cap > b->len ? b->cap - b->len : 0;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(avail != 0 ? b->data + b->len : NULL, avail, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return text_buf_fail(b, -EINVAL);
    if ((size_t)n >= avail) {
        int err = buf_reserve(b, (size_t)n);
        if (err != 0)
            return err;
        if (vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap) != n)
            return text_buf_fail(b, -EINVAL);
    }
    b->len += (size_t)n;
    return 0;
}

int text_buf_printf(struct text_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int err = text_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return err;
}

const char *text_buf_data(const struct text_buf *b)
{
    return b->data != NULL ? b->data : "";
}

size_t text_buf_len(const struct text_buf *b)
{
    return b->len;
}

int text_buf_error(const struct text_buf *b)
{
    return b->err;
}

char *text_buf_tail(struct text_buf *b, size_t *room)
{
    *room = b->cap > b->len ? b->cap - b->len - 1 : 0;
    return b->data != NULL ? b->data + b->len : NULL;
}

void text_buf_commit(struct text_buf *b, size_t n)
{
    b->len += n;
    b->data[b->len] = '\0';
}

size_t text_buf_headroom(const struct text_buf *b)
{
    return b->err != 0 ? 0 : b->max - b->len;
}
