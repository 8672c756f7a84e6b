/*
 * http_client.h: the HTTP/1.1 client of the test tools (tests/bench/exporter_load,
 * tests/hardening/hammer), for loopback and lab addresses, driven by the caller's epoll loop.
 *
 * A struct hc_conn is one connection slot: a non-blocking socket registered in the caller's
 * epoll set (with the caller's tag as data.ptr), one GET request at a time, and the response
 * read whole into a bounded buffer and parsed as it arrives (status line, headers, a body
 * delimited by Content-Length, chunked coding or the server's close). The caller decides
 * what a request's latency is, what a good body is and when to reuse the connection.
 *
 * Every object belongs to one thread: nothing here locks. The parser (struct hc_response)
 * is a pure function of the bytes fed to it and can be used without a socket.
 */
#ifndef ICMPX_TESTS_HTTP_CLIENT_H
#define ICMPX_TESTS_HTTP_CLIENT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest request (request line and headers) a connection can send. */
#define HC_REQUEST_MAX 4096

/* What a connection event or a parse step came to. */
enum hc_result {
    HC_MORE,           /* nothing decided yet: wait for the next event */
    HC_CONNECTED,      /* the connection is up and idle (nothing in the epoll set's mask) */
    HC_DONE,           /* a whole response is in: hc_response_status(), hc_response_body() */
    HC_CONNECT_FAILED, /* the connection could not be made (refused, unreachable, ...) */
    HC_FAILED,         /* no usable status line and headers: reset or closed before (or
                          while) answering, a malformed head, or the request not written */
    HC_TRUNCATED,      /* a status line and headers, then the body ended early or was
                          malformed (a bad chunk, more than the size bound) */
};

/* ---------------------------------------------------------------------------------------
 * Response parsing.
 */

/* A growable byte buffer with a hard bound; data (NUL-terminated at len) is owned. */
struct hc_buf {
    char *data;
    size_t len, cap, max;
};

/* One response being read. Fields are the parser's; read them through the functions. */
struct hc_response {
    struct hc_buf in;   /* the raw bytes, head and body */
    struct hc_buf body; /* the decoded body of a chunked response */
    size_t head_len;    /* bytes of the status line and headers, 0 until all are in */
    size_t scan;        /* where the search for the head's end resumes */
    size_t chunk_pos;   /* chunked: where the next chunk-size line starts in in */
    int64_t clen;       /* Content-Length, -1 when absent */
    int status;         /* 0 until the head is parsed */
    bool chunked;       /* Transfer-Encoding ends with chunked */
    bool no_body;       /* 204 or 304 */
    bool last_chunk;    /* chunked: the last chunk and the trailers are in */
    bool server_close;  /* HTTP/1.0, or "Connection: close" */
    enum hc_result end; /* HC_MORE until the response is decided, then the verdict */
};

/* Prepares r for responses of at most max bytes (raw, and decoded again for chunked
 * bodies). Allocates nothing; release with hc_response_cleanup(). */
void hc_response_init(struct hc_response *r, size_t max);

/* Forgets the response in r (for the next one on the connection); keeps its buffers. */
void hc_response_reset(struct hc_response *r);

/* Frees r's buffers; r can be initialised again. Accepts a zeroed struct. */
void hc_response_cleanup(struct hc_response *r);

/* Appends n received bytes. Returns 0, -E2BIG past the bound, -ENOMEM. */
int hc_response_feed(struct hc_response *r, const void *p, size_t n);

/* Parses what has been fed; eof says the server closed the connection cleanly after it (a
 * reset is not a clean end: the caller reports it as HC_FAILED/HC_TRUNCATED). Returns
 * HC_MORE, HC_DONE, HC_FAILED (no valid head) or HC_TRUNCATED (a head, then a short or bad
 * body). Cheap to call after every read: parsed parts are not parsed again. */
enum hc_result hc_response_parse(struct hc_response *r, bool eof);

/* The status code, 0 until the head is parsed. */
int hc_response_status(const struct hc_response *r);

/* The body received so far (after HC_DONE: the whole body, Content-Length bounded, chunks
 * decoded) and its length in *len. Never NULL (an empty body is ""); points into r, valid
 * until r is fed, reset or cleaned up. */
const char *hc_response_body(const struct hc_response *r, size_t *len);

/* The value of the first header called name (case-insensitive), spaces trimmed, and its
 * length in *len; NULL when absent or before the head is parsed. Not NUL-terminated; points
 * into r like hc_response_body(). */
const char *hc_response_header(const struct hc_response *r, const char *name, size_t *len);

/* Whether the server lets the connection carry another request: HTTP/1.1 without
 * "Connection: close", and a body framed by its length or chunks (a body that ran to the
 * close used the connection up). Meaningful after HC_DONE. */
bool hc_response_keepalive(const struct hc_response *r);

/* ---------------------------------------------------------------------------------------
 * Requests and connections.
 */

/* A GET request: "GET path HTTP/1.1", Host, User-Agent, the extra header lines (each
 * "Name: value", no CR/LF), and "Connection: close" when close is set. */
struct hc_request {
    const char *path, *host, *user_agent;
    const char *const *headers;
    size_t n_headers;
    bool close;
};

/* Writes rq's bytes into out (size bytes). Returns their length, or -E2BIG when they do not
 * fit. */
int hc_request_format(char *out, size_t size, const struct hc_request *rq);

enum hc_state {
    HC_STATE_IDLE,       /* no request in flight; the socket may be open (kept alive) or not */
    HC_STATE_CONNECTING, /* connect() in progress, waiting for EPOLLOUT */
    HC_STATE_CONNECTED,  /* open, nothing sent yet */
    HC_STATE_WRITING,    /* the request is being written */
    HC_STATE_READING,    /* the response is being read */
};

struct hc_conn {
    int fd;    /* -1 when closed */
    int ep;    /* the epoll set the socket is registered in */
    void *tag; /* epoll_event.data.ptr of the socket's events */
    enum hc_state state;
    uint64_t opened; /* sockets this slot has opened so far */
    size_t out_off, out_len;
    char out[HC_REQUEST_MAX];
    struct hc_response resp;
};

/* Prepares c (zeroed, or cleaned up) as a closed, idle connection of the epoll set ep,
 * whose events for c carry tag in data.ptr, for responses of at most max_response bytes.
 * Allocates nothing. */
void hc_conn_init(struct hc_conn *c, int ep, void *tag, size_t max_response);

/* Starts a non-blocking TCP connection (TCP_NODELAY, close-on-exec) to addr and registers
 * it for EPOLLOUT; c must be closed. Returns 0 (then HC_STATE_CONNECTING: hc_conn_event()
 * tells the outcome) or -errno (c stays closed). */
int hc_conn_open(struct hc_conn *c, const struct sockaddr_in *addr);

/* Formats rq as c's next request and forgets the previous response; sends nothing yet
 * (hc_conn_write()). Returns 0, or -E2BIG when the request does not fit. */
int hc_conn_request(struct hc_conn *c, const struct hc_request *rq);

/* Writes what is left of the request (c open and connected); when all is written, c reads
 * the response. Returns 0 (the rest follows through hc_conn_event()) or -errno when the
 * connection failed. */
int hc_conn_write(struct hc_conn *c);

/* Handles the epoll events of c's socket and says where c stands: HC_MORE; HC_CONNECTED
 * or HC_CONNECT_FAILED while connecting; HC_DONE, HC_FAILED or HC_TRUNCATED when the
 * request has ended (c is then HC_STATE_IDLE, its socket still open: hc_conn_close() it
 * unless hc_conn_reusable()). */
enum hc_result hc_conn_event(struct hc_conn *c, uint32_t events);

/* Whether c's socket can carry the next request: open, and the last response complete and
 * without "Connection: close". */
bool hc_conn_reusable(const struct hc_conn *c);

/* Closes c's socket (which leaves the epoll set with it); c becomes HC_STATE_IDLE.
 * Harmless on a closed c. */
void hc_conn_close(struct hc_conn *c);

/* Closes c and frees its buffers; c can be initialised again. */
void hc_conn_cleanup(struct hc_conn *c);

/* ---------------------------------------------------------------------------------------
 * Addresses and bodies.
 */

/* Parses "IPV4:PORT" (port 1..65535) into *addr. Returns 0 or -EINVAL. */
int hc_parse_addr(const char *text, struct sockaddr_in *addr);

/* The value of the first sample line "name value" of a Prometheus text body (name with its
 * labels as they are written, then one space). Returns true and sets *value when there is
 * one; false otherwise. */
bool hc_sample_value(const char *body, size_t len, const char *name, double *value);

#endif
