/*
 * The test tools' HTTP/1.1 client (http_client.h).
 *
 * Model: the caller owns the epoll loop and a struct hc_conn per connection slot; this file
 * owns what happens on the socket. A response is received into one bounded buffer and
 * parsed incrementally after every read: first the head (searched for "\r\n\r\n" from where
 * the last search stopped, so a response arriving a byte at a time costs linear time), then
 * the body by the first rule of RFC 9112 section 6.3 that applies: no body for 204 and 304;
 * chunked when Transfer-Encoding ends with "chunked" (chunks decoded into a second buffer as
 * they complete); otherwise Content-Length; otherwise everything until the server closes.
 * A response counts as whole only when its framing says so: a close or a reset before that
 * is HC_TRUNCATED (or HC_FAILED before the head), never a success.
 */
#include "tests/lib/http_client.h"
#include "tests/lib/tool.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* What one recv() asks for at most. */
#define READ_CHUNK 65536
/* The longest chunk-size line (size and extensions) we wait for before calling it bad. */
#define CHUNK_LINE_MAX 1024

/* ---------------------------------------------------------------------------------------
 * Bounded buffers.
 */

/* Makes room for more bytes plus a NUL. Returns 0, -E2BIG past b->max, -ENOMEM. */
static int buf_reserve(struct hc_buf *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 8192;
    char *p;

    if (more > b->max - b->len)
        return -E2BIG;
    while (cap - b->len < more + 1)
        cap *= 2;
    if (cap == b->cap)
        return 0;
    p = realloc(b->data, cap);
    if (p == NULL)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int buf_append(struct hc_buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);

    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Response parsing.
 */

void hc_response_init(struct hc_response *r, size_t max)
{
    memset(r, 0, sizeof(*r));
    r->in.max = max;
    r->body.max = max;
    hc_response_reset(r);
}

void hc_response_reset(struct hc_response *r)
{
    r->in.len = 0;
    r->body.len = 0;
    r->head_len = 0;
    r->scan = 0;
    r->chunk_pos = 0;
    r->clen = -1;
    r->status = 0;
    r->chunked = r->no_body = r->last_chunk = r->server_close = false;
    r->end = HC_MORE;
}

void hc_response_cleanup(struct hc_response *r)
{
    free(r->in.data);
    free(r->body.data);
    memset(r, 0, sizeof(*r));
}

int hc_response_feed(struct hc_response *r, const void *p, size_t n)
{
    return buf_append(&r->in, p, n);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims spaces and tabs from both ends of [*p, *p + *n). */
static void trim(const char **p, size_t *n)
{
    while (*n > 0 && is_space(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && is_space((*p)[*n - 1]))
        (*n)--;
}

/* Whether [p, p + n) is word, ignoring case. */
static bool equals_word(const char *p, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(p, word, n) == 0;
}

/* Whether an element of the comma-separated list [v, v + n) is word (ignoring case), or,
 * with last_only, whether the last element is. */
static bool list_has(const char *v, size_t n, const char *word, bool last_only)
{
    bool found = false;

    while (n > 0) {
        const char *comma = memchr(v, ',', n);
        size_t len = comma != NULL ? (size_t)(comma - v) : n;
        const char *item = v;
        size_t ilen = len;

        trim(&item, &ilen);
        if (ilen > 0) {
            bool eq = equals_word(item, ilen, word);

            if (eq && !last_only)
                return true;
            found = eq;
        }
        if (comma == NULL)
            break;
        v = comma + 1;
        n -= len + 1;
    }
    return found;
}

/* A Content-Length value: decimal digits only. Returns it, or -1 when malformed. */
static int64_t parse_length(const char *v, size_t n)
{
    int64_t x = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (INT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

/* Parses the head, r->in.data[0, head_len): "HTTP/1.x NNN ...", then "Name: value" lines.
 * Returns 0 or -EPROTO. Every scan is bounded by the head's length, so a NUL in it is only
 * an odd byte. */
static int parse_head(struct hc_response *r)
{
    const char *p = r->in.data, *end = r->in.data + r->head_len - 2;
    const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    bool te = false;
    int status;

    if (eol == NULL || eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' ||
        p[8] != ' ' || p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
        p[11] > '9' || (eol - p > 12 && p[12] != ' '))
        return -EPROTO;
    status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    r->server_close = p[7] == '0'; /* HTTP/1.0: no persistent connection unless negotiated */
    for (p = eol + 2; p < end; p = eol + 2) {
        const char *colon, *v;
        size_t vlen;

        eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == NULL)
            return -EPROTO;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL || colon == p)
            return -EPROTO;
        v = colon + 1;
        vlen = (size_t)(eol - v);
        trim(&v, &vlen);
        if (equals_word(p, (size_t)(colon - p), "Content-Length")) {
            int64_t len = parse_length(v, vlen);

            if (len < 0 || (r->clen >= 0 && r->clen != len))
                return -EPROTO;
            r->clen = len;
        } else if (equals_word(p, (size_t)(colon - p), "Transfer-Encoding")) {
            te = true;
            r->chunked = list_has(v, vlen, "chunked", true);
        } else if (equals_word(p, (size_t)(colon - p), "Connection")) {
            r->server_close |= list_has(v, vlen, "close", false);
        }
    }
    /* Transfer-Encoding overrides Content-Length; without chunked last, the body runs to
     * the close (RFC 9112 section 6.3, items 3 and 4). */
    if (te)
        r->clen = -1;
    r->no_body = status == 204 || status == 304;
    r->chunk_pos = r->head_len;
    r->status = status;
    return 0;
}

/* Decodes the chunks that are complete. Returns 0 (r->last_chunk once the last chunk and
 * the trailers are in), -EPROTO for a malformed chunk, -E2BIG/-ENOMEM. */
static int parse_chunks(struct hc_response *r)
{
    for (;;) {
        const char *p = r->in.data + r->chunk_pos, *end = r->in.data + r->in.len;
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2), *q = p;
        uint64_t size = 0;

        if (eol == NULL)
            return end - p > CHUNK_LINE_MAX ? -EPROTO : 0;
        for (; q < eol && isxdigit((unsigned char)*q); q++) {
            unsigned d = *q <= '9' ? (unsigned)(*q - '0') : (unsigned)((*q | 0x20) - 'a' + 10);

            if (size > (r->body.max >> 4))
                return -EPROTO; /* more than the whole response may hold */
            size = size << 4 | d;
        }
        while (q < eol && is_space(*q))
            q++;
        if (q == p || (q < eol && *q != ';'))
            return -EPROTO;
        if (size == 0) {
            /* The last chunk, then trailer lines, if any, up to an empty line. */
            if (memmem(eol, (size_t)(end - eol), "\r\n\r\n", 4) != NULL)
                r->last_chunk = true;
            return 0;
        }
        if (size > r->body.max - r->body.len)
            return -E2BIG;
        if ((uint64_t)(end - (eol + 2)) < size + 2)
            return 0;
        if (memcmp(eol + 2 + size, "\r\n", 2) != 0)
            return -EPROTO;
        if (buf_append(&r->body, eol + 2, (size_t)size) < 0)
            return -ENOMEM;
        r->chunk_pos = (size_t)(eol + 2 + size + 2 - r->in.data);
    }
}

static enum hc_result decide(struct hc_response *r, bool eof)
{
    if (r->head_len == 0) {
        const char *end;

        if (r->in.len == 0)
            return eof ? HC_FAILED : HC_MORE;
        end = memmem(r->in.data + r->scan, r->in.len - r->scan, "\r\n\r\n", 4);
        if (end == NULL) {
            r->scan = r->in.len > 3 ? r->in.len - 3 : 0;
            return eof ? HC_FAILED : HC_MORE;
        }
        r->head_len = (size_t)(end - r->in.data) + 4;
        if (parse_head(r) < 0)
            return HC_FAILED;
    }
    if (r->no_body)
        return HC_DONE;
    if (r->chunked) {
        if (parse_chunks(r) < 0)
            return HC_TRUNCATED;
        return r->last_chunk ? HC_DONE : eof ? HC_TRUNCATED : HC_MORE;
    }
    if (r->clen >= 0) {
        if (r->in.len - r->head_len >= (uint64_t)r->clen)
            return HC_DONE;
        return eof ? HC_TRUNCATED : HC_MORE;
    }
    return eof ? HC_DONE : HC_MORE;
}

enum hc_result hc_response_parse(struct hc_response *r, bool eof)
{
    if (r->end == HC_MORE)
        r->end = decide(r, eof);
    return r->end;
}

int hc_response_status(const struct hc_response *r)
{
    return r->status;
}

const char *hc_response_body(const struct hc_response *r, size_t *len)
{
    *len = 0;
    if (r->status == 0 || r->no_body)
        return "";
    if (r->chunked) {
        *len = r->body.len;
        return r->body.data != NULL ? r->body.data : "";
    }
    *len = r->in.len - r->head_len;
    if (r->clen >= 0 && *len > (uint64_t)r->clen)
        *len = (size_t)r->clen;
    return r->in.data + r->head_len;
}

const char *hc_response_header(const struct hc_response *r, const char *name, size_t *len)
{
    const char *p, *end, *eol;

    if (r->status == 0)
        return NULL;
    p = (const char *)memmem(r->in.data, r->head_len, "\r\n", 2) + 2;
    end = r->in.data + r->head_len - 2;
    for (; p < end; p = eol + 2) {
        const char *colon, *v;

        eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        colon = memchr(p, ':', (size_t)(eol - p));
        if (equals_word(p, (size_t)(colon - p), name)) {
            v = colon + 1;
            *len = (size_t)(eol - v);
            trim(&v, len);
            return v;
        }
    }
    return NULL;
}

bool hc_response_keepalive(const struct hc_response *r)
{
    /* A body that ran to the close used the connection up. */
    return !r->server_close && (r->no_body || r->chunked || r->clen >= 0);
}

/* ---------------------------------------------------------------------------------------
 * Requests.
 */

__attribute__((format(printf, 4, 5))) static int append(char *out, size_t size, size_t *len,
                                                        const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size - *len)
        return -E2BIG;
    *len += (size_t)n;
    return 0;
}

int hc_request_format(char *out, size_t size, const struct hc_request *rq)
{
    size_t len = 0;

    if (size == 0 || append(out, size, &len, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n",
                            rq->path, rq->host, rq->user_agent) < 0)
        return -E2BIG;
    for (size_t i = 0; i < rq->n_headers; i++) {
        if (append(out, size, &len, "%s\r\n", rq->headers[i]) < 0)
            return -E2BIG;
    }
    if (append(out, size, &len, "%s\r\n", rq->close ? "Connection: close\r\n" : "") < 0 ||
        len > INT32_MAX)
        return -E2BIG;
    return (int)len;
}

/* ---------------------------------------------------------------------------------------
 * Connections.
 */

void hc_conn_init(struct hc_conn *c, int ep, void *tag, size_t max_response)
{
    c->fd = -1;
    c->ep = ep;
    c->tag = tag;
    c->state = HC_STATE_IDLE;
    c->opened = 0;
    c->out_off = c->out_len = 0;
    hc_response_init(&c->resp, max_response);
}

static int conn_events(struct hc_conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c->tag};

    return epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0 ? -errno : 0;
}

void hc_conn_close(struct hc_conn *c)
{
    /* close() takes the socket out of the epoll set: nothing else holds the descriptor. */
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = HC_STATE_IDLE;
}

void hc_conn_cleanup(struct hc_conn *c)
{
    hc_conn_close(c);
    hc_response_cleanup(&c->resp);
}

int hc_conn_open(struct hc_conn *c, const struct sockaddr_in *addr)
{
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c->tag};
    int one = 1, rc;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    c->opened++;
    /* Requests go out in one write each: no Nagle delay on a reused connection. */
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if ((connect(c->fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 &&
         errno != EINPROGRESS) ||
        epoll_ctl(c->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        rc = -errno;
        hc_conn_close(c);
        return rc;
    }
    c->state = HC_STATE_CONNECTING;
    return 0;
}

int hc_conn_request(struct hc_conn *c, const struct hc_request *rq)
{
    int n = hc_request_format(c->out, sizeof(c->out), rq);

    if (n < 0)
        return n;
    c->out_len = (size_t)n;
    c->out_off = 0;
    hc_response_reset(&c->resp);
    return 0;
}

int hc_conn_write(struct hc_conn *c)
{
    if (c->fd < 0 || c->out_len == 0)
        return -EINVAL;
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -errno;
            c->state = HC_STATE_WRITING;
            return conn_events(c, EPOLLOUT);
        }
        c->out_off += (size_t)n;
    }
    c->state = HC_STATE_READING;
    return conn_events(c, EPOLLIN);
}

/* The request on c has ended with res. */
static enum hc_result conn_end(struct hc_conn *c, enum hc_result res)
{
    c->state = HC_STATE_IDLE;
    c->out_len = 0;
    c->resp.end = res;
    return res;
}

/* Reads what the socket holds and parses it. */
static enum hc_result conn_read(struct hc_conn *c)
{
    struct hc_buf *in = &c->resp.in;

    for (;;) {
        size_t room = in->max - in->len;
        /* Before the head, an early end is a failure; after it, a truncation. */
        enum hc_result broken = c->resp.status != 0 ? HC_TRUNCATED : HC_FAILED;
        enum hc_result res;
        ssize_t n;

        if (room == 0 || buf_reserve(in, room < READ_CHUNK ? room : READ_CHUNK) < 0)
            return conn_end(c, broken);
        /* All the free space, but never past the bound (the buffer grows by doubling). */
        if (room > in->cap - in->len - 1)
            room = in->cap - in->len - 1;
        n = recv(c->fd, in->data + in->len, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return HC_MORE;
        if (n < 0)
            return conn_end(c, broken); /* a reset is no clean end, even of a close-framed body */
        in->len += (size_t)n;
        in->data[in->len] = '\0';
        res = hc_response_parse(&c->resp, n == 0);
        if (res != HC_MORE)
            return conn_end(c, res);
    }
}

enum hc_result hc_conn_event(struct hc_conn *c, uint32_t events)
{
    switch (c->state) {
    case HC_STATE_CONNECTING: {
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0 || (events & (EPOLLERR | EPOLLHUP)) || conn_events(c, 0) < 0)
            return conn_end(c, HC_CONNECT_FAILED);
        c->state = HC_STATE_CONNECTED;
        return HC_CONNECTED;
    }
    case HC_STATE_WRITING:
        return hc_conn_write(c) < 0 ? conn_end(c, HC_FAILED) : HC_MORE;
    case HC_STATE_READING:
        return conn_read(c);
    case HC_STATE_IDLE:
    case HC_STATE_CONNECTED:
        break;
    }
    /* Nothing is expected of an idle socket (a kept-alive one the server closes, say):
     * mute it until the next request, so a level-triggered event cannot spin. */
    (void)conn_events(c, 0);
    return HC_MORE;
}

bool hc_conn_reusable(const struct hc_conn *c)
{
    return c->fd >= 0 && c->state == HC_STATE_IDLE && c->resp.end == HC_DONE &&
           hc_response_keepalive(&c->resp);
}

/* ---------------------------------------------------------------------------------------
 * Addresses and bodies.
 */

int hc_parse_addr(const char *text, struct sockaddr_in *addr)
{
    const char *colon = strrchr(text, ':');
    char ip[INET_ADDRSTRLEN];
    int64_t port;

    if (colon == NULL || (size_t)(colon - text) >= sizeof(ip) ||
        tool_parse_i64(colon + 1, 1, 65535, &port) < 0)
        return -EINVAL;
    memcpy(ip, text, (size_t)(colon - text));
    ip[colon - text] = '\0';
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, ip, &addr->sin_addr) == 1 ? 0 : -EINVAL;
}

bool hc_sample_value(const char *body, size_t len, const char *name, double *value)
{
    size_t nlen = strlen(name);
    const char *p = body, *end = body + len;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));

        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == ' ') {
            *value = strtod(p + nlen + 1, NULL);
            return true;
        }
        p = eol + 1;
    }
    return false;
}
