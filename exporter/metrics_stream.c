/*
 * The /metrics body, streamed: the own metrics, then the static targets' series a chunk at
 * a time as libmicrohttpd asks for more (chunked transfer encoding), gzipped on the fly
 * when the client accepts it. 10,000 targets are 28 MB of text; this way they never exist
 * in memory at once. An error after the headers are out can only cut the connection: the
 * missing last chunk tells the client the body is incomplete.
 *
 * A HEAD answer has no body (RFC 9110), but libmicrohttpd 0.9.75 ends a chunked answer to
 * HEAD with the last chunk ("0\r\n\r\n"), which a client reads as the start of the next
 * answer on a kept-alive connection. So HEAD renders the body only to measure it, and
 * answers with its Content-Length: libmicrohttpd never reads a HEAD answer's body.
 */
#include "exporter/http_internal.h"
#include "exporter/metrics.h"

#include <stdlib.h>
#include <string.h>

#define STREAM_CHUNK (64u * 1024)

struct metrics_stream {
    struct exporter *x;
    struct http_tracked *track; /* the connection's, NULL if untracked; used only while it reads */
    enum prom_format format;
    struct prom_gzip *gzip; /* NULL: plain */
    struct text_buf text;   /* rendered, not yet compressed (gzip only) */
    struct text_buf out;    /* what goes to the client next */
    size_t off;             /* of out, already handed over */
    struct metrics_cursor cursor;
    bool self_done, done;
};

static void stream_free(void *cls)
{
    struct metrics_stream *s = cls;

    if (s == NULL)
        return;
    metrics_cursor_cleanup(&s->cursor);
    prom_gzip_free(s->gzip);
    text_buf_cleanup(&s->text);
    text_buf_cleanup(&s->out);
    free(s);
}

/* Renders (and compresses) the next piece into s->out. Returns 0 or -errno. */
static int stream_produce(struct metrics_stream *s)
{
    struct text_buf *text = s->gzip != NULL ? &s->text : &s->out;
    struct prom_writer w;
    int rc;

    prom_writer_init(&w, text, s->format);
    if (!s->self_done) {
        rc = metrics_render_self(s->x, &w);
        s->self_done = true;
    } else {
        pthread_mutex_lock(&s->x->lock);
        rc = metrics_render_targets_next(&s->cursor, &w, STREAM_CHUNK);
        pthread_mutex_unlock(&s->x->lock);
        if (rc == 0 && metrics_cursor_done(&s->cursor)) {
            rc = prom_finish(&w);
            s->done = true;
        }
    }
    if (rc < 0)
        return rc;
    if (s->gzip != NULL) {
        rc = prom_gzip_write(s->gzip, text_buf_data(text), text_buf_len(text), s->done, &s->out);
        text_buf_reset(text);
    }
    return rc < 0 ? rc : 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct metrics_stream *s = cls;
    size_t n;

    (void)pos;
    while (s->off == text_buf_len(&s->out)) {
        if (s->done) {
            if (s->track != NULL)
                atomic_store(&s->track->streaming, false);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        text_buf_reset(&s->out);
        s->off = 0;
        if (stream_produce(s) < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    n = text_buf_len(&s->out) - s->off;
    n = n < max ? n : max;
    memcpy(buf, text_buf_data(&s->out) + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

/* The length of the whole body, rendered a piece at a time and thrown away. */
static int stream_measure(struct metrics_stream *s, uint64_t *len)
{
    int rc;

    *len = 0;
    while (!s->done) {
        text_buf_reset(&s->out);
        if ((rc = stream_produce(s)) < 0)
            return rc;
        *len += text_buf_len(&s->out);
    }
    text_buf_reset(&s->out);
    return 0;
}

/* A HEAD answer's body: never read. */
static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

enum MHD_Result http_respond_metrics(struct exporter *x, struct MHD_Connection *conn,
                                     struct target_table *table, enum prom_format format, bool gzip,
                                     bool head)
{
    struct metrics_stream *s = calloc(1, sizeof(*s));
    struct MHD_Response *r;
    enum MHD_Result rc;

    if (s == NULL)
        return http_respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    s->x = x;
    s->format = format;
    text_buf_init(&s->text, HTTP_BODY_LIMIT);
    text_buf_init(&s->out, HTTP_BODY_LIMIT);
    if (metrics_cursor_init(&s->cursor, table, format) < 0 ||
        (gzip && prom_gzip_new(&s->gzip) < 0)) {
        stream_free(s);
        return http_respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    gzip = s->gzip != NULL;
    if (head) {
        uint64_t len;
        int rc_measure = stream_measure(s, &len);
        stream_free(s);
        if (rc_measure < 0)
            return http_respond_text(x, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "rendering failed");
        r = MHD_create_response_from_callback(len, STREAM_CHUNK, no_body, NULL, NULL);
    } else {
        s->track = http_tracked_of(conn);
        if (s->track != NULL)
            atomic_store(&s->track->streaming, true);
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_CHUNK, stream_read, s,
                                              stream_free);
        if (r == NULL)
            stream_free(s);
    }
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, prom_content_type(format));
    if (gzip)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    exporter_count_http(x, MHD_HTTP_OK);
    return rc;
}
