/*
 * A bounded growable text buffer (curl's dynbuf): the exposition writer renders into it, and
 * so do the HTML pages and a probe's debug log. Pure: no sockets, no globals; thread-safe on
 * distinct buffers.
 *
 * Error model: a text_buf remembers its first error (-ENOMEM, -E2BIG, -EINVAL). After one,
 * every further append fails with the same error and the buffer is emptied, so a caller that
 * forgets a check still never serves truncated text. Callers may write a whole text unchecked
 * and check text_buf_error() (or prom_finish()) once.
 */
#ifndef ICMPX_TEXT_BUF_H
#define ICMPX_TEXT_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* A growable byte buffer with a hard size limit (curl's dynbuf). Plain struct: init it,
 * use it, clean it up. Fields are private; use the accessors. */
struct text_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    int err;
};

/* Empty buffer that may grow to max_bytes bytes of content (a NUL is kept past the end).
 * Allocates nothing until the first append. */
void text_buf_init(struct text_buf *b, size_t max_bytes);
/* Frees the memory; the buffer is then as after text_buf_init(b, same max). NULL is fine. */
void text_buf_cleanup(struct text_buf *b);
/*
 * Hands the content over: returns the malloc'd, NUL-terminated bytes (the caller frees
 * them) and sets *len, leaving the buffer empty. NULL when the buffer failed or is empty.
 */
char *text_buf_release(struct text_buf *b, size_t *len);

/* Makes room for extra more bytes at once (one allocation instead of doublings). Returns 0
 * or the sticky error. */
int text_buf_reserve(struct text_buf *b, size_t extra);

/* Empties the buffer and clears its sticky error, keeping the allocation for reuse. */
void text_buf_reset(struct text_buf *b);

/* Append n bytes / a C string / printf-style text. Return 0, or the sticky error: -E2BIG
 * when the content would exceed max_bytes, -ENOMEM, -EINVAL for a formatting error. On any
 * failure nothing partial is kept: the buffer is emptied and stays failed until reset. */
int text_buf_append(struct text_buf *b, const void *p, size_t n);
int text_buf_append_str(struct text_buf *b, const char *s);
int text_buf_printf(struct text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int text_buf_vprintf(struct text_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Content, always NUL-terminated ("" when empty or failed); the pointer is owned by the
 * buffer and valid until the next append, reset or cleanup. */
const char *text_buf_data(const struct text_buf *b);
size_t text_buf_len(const struct text_buf *b);
/* 0, or the first error the buffer met. */
int text_buf_error(const struct text_buf *b);

/* Fails the buffer with err (a negative errno) unless it already failed: it is emptied and
 * keeps its first error. Returns that first error. */
int text_buf_fail(struct text_buf *b, int err);

/*
 * Writing in place (for producers such as zlib that want an output pointer): text_buf_tail
 * returns where the next byte goes and sets *room to the bytes allocated there (make room
 * first with text_buf_reserve); text_buf_commit then adds n <= room bytes written there.
 * text_buf_headroom is how many more bytes the limit allows.
 */
char *text_buf_tail(struct text_buf *b, size_t *room);
void text_buf_commit(struct text_buf *b, size_t n);
size_t text_buf_headroom(const struct text_buf *b);

#endif
