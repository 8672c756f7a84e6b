/*
 * Responses: every answer of the exporter goes out through here, so each is counted once
 * (icmp_exporter_http_requests_total), and the probe API's -errno becomes an HTTP status in
 * one place (http_status_of).
 */
#include "exporter/http_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned http_status_of(int err)
{
    switch (err) {
    case 0:
        return MHD_HTTP_OK;
    case -EINVAL:
        return MHD_HTTP_BAD_REQUEST;
    case -EACCES:
        return MHD_HTTP_FORBIDDEN;
    case -EBUSY:
    case -ESHUTDOWN:
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    default:
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

enum MHD_Result http_respond(struct exporter *x, struct MHD_Connection *conn, unsigned code,
                             const char *type, const char *body, size_t len, bool gzip,
                             const char *header, const char *header_value)
{
    struct text_buf zipped;
    struct MHD_Response *r;
    enum MHD_Result rc;

    text_buf_init(&zipped, HTTP_BODY_LIMIT);
    if (gzip) {
        struct text_buf in;
        text_buf_init(&in, HTTP_BODY_LIMIT);
        if (text_buf_append(&in, body, len) == 0 && prom_gzip(&in, &zipped) == 0) {
            body = text_buf_data(&zipped);
            len = text_buf_len(&zipped);
        } else {
            gzip = false;
        }
        text_buf_cleanup(&in);
    }
    r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    text_buf_cleanup(&zipped);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (gzip)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    if (header != NULL)
        MHD_add_response_header(r, header, header_value);
    rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    exporter_count_http(x, (int)code);
    return rc;
}

/* Answers with the content of buf, handed to libmicrohttpd without a copy (gzipped first
 * when the client accepts it). buf is left empty. */
enum MHD_Result http_respond_buf(struct exporter *x, struct MHD_Connection *conn, unsigned code,
                                 const char *type, struct text_buf *buf, bool gzip)
{
    struct text_buf zipped;
    struct MHD_Response *r;
    enum MHD_Result rc;
    size_t len;
    char *body;

    text_buf_init(&zipped, HTTP_BODY_LIMIT);
    if (gzip && prom_gzip(buf, &zipped) == 0) {
        text_buf_cleanup(buf);
        body = text_buf_release(&zipped, &len);
    } else {
        gzip = false;
        body = text_buf_release(buf, &len);
    }
    text_buf_cleanup(&zipped);
    r = MHD_create_response_from_buffer(len, body != NULL ? body : (char *)"",
                                        body != NULL ? MHD_RESPMEM_MUST_FREE
                                                     : MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (gzip)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    exporter_count_http(x, (int)code);
    return rc;
}

enum MHD_Result http_respond_text(struct exporter *x, struct MHD_Connection *conn, unsigned code,
                                  const char *text)
{
    char line[HTTP_ERR_LEN + 2];
    int n = snprintf(line, sizeof(line), "%s\n", text);

    return http_respond(x, conn, code, "text/plain; charset=utf-8", line,
                        n < 0                      ? 0
                        : (size_t)n < sizeof(line) ? (size_t)n
                                                   : sizeof(line) - 1,
                        false, NULL, NULL);
}

const char *http_header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

const char *http_arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}
