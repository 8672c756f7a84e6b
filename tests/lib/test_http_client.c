/*
 * test_http_client: the test tools' HTTP client (tests/lib/http_client.h) against a tiny
 * HTTP server of its own, a thread with a listening socket on 127.0.0.1.
 *
 * The server takes one scripted connection after the other: for each request it reads the
 * head, records it, and writes the scripted response in pieces with pauses between them
 * (TCP_NODELAY, so each piece reaches the client in a read of its own), or a byte at a time;
 * after the last response it closes. The client runs through the library as the load tools
 * do: its own epoll set, hc_conn_open/request/write/event. The parser is also checked alone
 * on crafted bytes, for what a friendly server does not send.
 */
#include "tests/lib/http_client.h"
#include "tests/lib/tool.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RESPONSE (1024u * 1024)
#define WAIT_NS      (5 * TOOL_NS_PER_S)
#define MAX_TURNS    2
#define MAX_PIECES   6
#define MAX_RECORDED 16

/* One response, written as its pieces (NULL-terminated). */
struct turn {
    const char *pieces[MAX_PIECES + 1];
};

/* One connection: a response per request, then the server closes. */
struct script {
    struct turn turns[MAX_TURNS];
    size_t n_turns;
    int pause_ms;  /* between pieces (or bytes) */
    bool bytewise; /* every piece a byte at a time */
};

struct server {
    int fd;
    struct sockaddr_in addr;
    const struct script *scripts;
    size_t n_scripts;
    pthread_mutex_t lock; /* guards the rest */
    char requests[MAX_RECORDED][512];
    size_t n_requests;
    const char *error; /* the server's first failure, for the report */
};

static void pause_ms(int ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};

    while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void server_fail(struct server *sv, const char *what)
{
    pthread_mutex_lock(&sv->lock);
    if (sv->error == NULL)
        sv->error = what;
    pthread_mutex_unlock(&sv->lock);
}

/* Reads one request head from fd and records it. Returns false on EOF, error or timeout. */
static bool read_request(struct server *sv, int fd)
{
    char buf[512];
    size_t len = 0;

    while (memmem(buf, len, "\r\n\r\n", 4) == NULL) {
        ssize_t n;

        if (len == sizeof(buf) - 1)
            return false;
        n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        len += (size_t)n;
    }
    buf[len] = '\0';
    pthread_mutex_lock(&sv->lock);
    if (sv->n_requests < MAX_RECORDED)
        memcpy(sv->requests[sv->n_requests++], buf, len + 1);
    pthread_mutex_unlock(&sv->lock);
    return true;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void serve_script(struct server *sv, int fd, const struct script *sc)
{
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (size_t t = 0; t < sc->n_turns; t++) {
        if (!read_request(sv, fd)) {
            server_fail(sv, "no request");
            return;
        }
        for (const char *const *p = sc->turns[t].pieces; *p != NULL; p++) {
            size_t len = strlen(*p);

            if (p != sc->turns[t].pieces)
                pause_ms(sc->pause_ms);
            for (size_t i = 0; sc->bytewise && i < len; i++) {
                if (i > 0)
                    pause_ms(sc->pause_ms);
                if (!write_all(fd, *p + i, 1))
                    server_fail(sv, "write");
            }
            if (!sc->bytewise && !write_all(fd, *p, len))
                server_fail(sv, "write");
        }
    }
}

static void *server_main(void *arg)
{
    struct server *sv = arg;

    for (size_t i = 0; i < sv->n_scripts; i++) {
        struct pollfd pfd = {.fd = sv->fd, .events = POLLIN};
        struct timeval tv = {.tv_sec = 5};
        int fd;

        if (poll(&pfd, 1, 5000) != 1) {
            server_fail(sv, "no connection within 5 s");
            break;
        }
        fd = accept4(sv->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            server_fail(sv, "accept");
            break;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        serve_script(sv, fd, &sv->scripts[i]);
        close(fd);
    }
    return NULL;
}

/* Sends rq on c (connecting first when it is closed) and drives c until the request has
 * ended; returns how it ended. *waits counts the reads that left the response undecided. */
static enum hc_result exchange(struct hc_conn *c, const struct sockaddr_in *addr,
                               const struct hc_request *rq, int *waits)
{
    int64_t deadline = tool_now_ns() + WAIT_NS;

    *waits = 0;
    REQUIRE(hc_conn_request(c, rq) == 0);
    if (c->fd < 0)
        REQUIRE(hc_conn_open(c, addr) == 0);
    else
        REQUIRE(hc_conn_write(c) == 0);
    while (tool_now_ns() < deadline) {
        struct epoll_event ev;
        enum hc_result res;
        bool reading = c->state == HC_STATE_READING;

        if (epoll_wait(c->ep, &ev, 1, 100) != 1)
            continue;
        REQUIRE(ev.data.ptr == c);
        res = hc_conn_event(c, ev.events);
        if (res == HC_CONNECTED) {
            REQUIRE(hc_conn_write(c) == 0);
            continue;
        }
        if (res != HC_MORE)
            return res;
        *waits += reading;
    }
    TEST_FAIL_AT("the request did not end within 5 s");
    return HC_MORE;
}

/* Whether body is exactly text. */
static bool body_is(const struct hc_conn *c, const char *text)
{
    size_t len;
    const char *body = hc_response_body(&c->resp, &len);

    if (len == strlen(text) && memcmp(body, text, len) == 0)
        return true;
    fprintf(stderr, "body: \"%.*s\" (%zu bytes), want \"%s\"\n", (int)len, body, len, text);
    return false;
}

static const struct script scripts[] = {
    /* 0: Content-Length, twice on one kept-alive connection */
    {.turns = {{{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\n"
                 "hello world",
                 NULL}},
               {{"HTTP/1.1 200 OK\r\ncontent-length:3\r\n\r\nabc", NULL}}},
     .n_turns = 2},
    /* 1: a chunked body in four pieces, cut inside a chunk, its CRLF and the last chunk */
    {.turns = {{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                 "lo\r\n6\r\n world\r", "\n0\r\n", "\r\n", NULL}}},
     .n_turns = 1,
     .pause_ms = 30},
    /* 2: a chunked response a byte at a time, with a chunk extension and a trailer */
    {.turns = {{{"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                 "4;name=value\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: 1\r\n\r\n",
                 NULL}}},
     .n_turns = 1,
     .pause_ms = 1,
     .bytewise = true},
    /* 3: closed after 17 of 100 bytes */
    {.turns = {{{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nseventeen bytes..", NULL}}},
     .n_turns = 1},
    /* 4: closed after a whole chunk, before the last one */
    {.turns = {{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", NULL}}},
     .n_turns = 1},
    /* 5: closed before answering */
    {.turns = {{{NULL}}}, .n_turns = 1},
    /* 6: 503 with Retry-After */
    {.turns = {{{"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 5\r\n"
                 "Connection: close\r\n\r\nbusy\n",
                 NULL}}},
     .n_turns = 1},
    /* 7: HTTP/1.0, the body delimited by the close */
    {.turns = {{{"HTTP/1.0 200 OK\r\n\r\nuntil ", "the close", NULL}}},
     .n_turns = 1,
     .pause_ms = 20},
    /* 8: more than a 64-byte bound, in one piece */
    {.turns = {{{"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"
                 "0123456789012345678901234567890123456789",
                 NULL}}},
     .n_turns = 1},
};

static void test_with_server(void)
{
    struct server sv = {.scripts = scripts, .n_scripts = sizeof(scripts) / sizeof(scripts[0])};
    socklen_t alen = sizeof(sv.addr);
    const char *extra[] = {"X-Test: 1"};
    struct hc_request rq = {.path = "/one", .host = "test", .user_agent = "test_http_client"};
    struct hc_conn c, small;
    pthread_t thread;
    size_t len;
    const char *v;
    int ep, waits;

    pthread_mutex_init(&sv.lock, NULL);
    sv.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(sv.fd >= 0);
    sv.addr.sin_family = AF_INET;
    sv.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(sv.fd, (const struct sockaddr *)&sv.addr, sizeof(sv.addr)) == 0);
    REQUIRE(getsockname(sv.fd, (struct sockaddr *)&sv.addr, &alen) == 0);
    REQUIRE(listen(sv.fd, 8) == 0);
    REQUIRE(pthread_create(&thread, NULL, server_main, &sv) == 0);
    ep = epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(ep >= 0);
    hc_conn_init(&c, ep, &c, MAX_RESPONSE);

    /* 0: Content-Length; the request as written; the connection reused. */
    rq.headers = extra;
    rq.n_headers = 1;
    CHECK_EQ(exchange(&c, &sv.addr, &rq, &waits), HC_DONE);
    CHECK_EQ(hc_response_status(&c.resp), 200);
    CHECK(body_is(&c, "hello world"));
    v = hc_response_header(&c.resp, "content-type", &len);
    CHECK(v != NULL && len == 10 && memcmp(v, "text/plain", 10) == 0);
    CHECK(hc_conn_reusable(&c));
    rq.path = "/two";
    rq.headers = NULL;
    rq.n_headers = 0;
    CHECK_EQ(exchange(&c, &sv.addr, &rq, &waits), HC_DONE);
    CHECK(body_is(&c, "abc"));
    CHECK_EQ(c.opened, 1);
    pthread_mutex_lock(&sv.lock);
    CHECK_STR_EQ(sv.requests[0],
                 "GET /one HTTP/1.1\r\nHost: test\r\nUser-Agent: test_http_client\r\n"
                 "X-Test: 1\r\n\r\n");
    CHECK_STR_EQ(sv.requests[1],
                 "GET /two HTTP/1.1\r\nHost: test\r\nUser-Agent: test_http_client\r\n\r\n");
    pthread_mutex_unlock(&sv.lock);
    hc_conn_close(&c);

    /* 1: chunked, split across reads. */
    rq.close = true;
    CHECK_EQ(exchange(&c, &sv.addr, &rq, &waits), HC_DONE);
    CHECK(body_is(&c, "hello world"));
    CHECK_GE(waits, 3); /* the four pieces came in reads of their own */
    hc_conn_close(&c);
    pthread_mutex_lock(&sv.lock);
    CHECK(strstr(sv.requests[2], "\r\nConnection: close\r\n\r\n") != NULL);
    pthread_mutex_unlock(&sv.lock);

    /* 2: a byte at a time. */
    CHECK_EQ(exchange(&c, &sv.addr, &rq, &waits), HC_DONE);
    CHECK(body_is(&c, "abcdefg"));
    CHECK_GE(waits, 20);
    hc_conn_close(&c);

    /* 3, 4: closed mid-body; 5: closed before answering. */
    CHECK_EQ(exchange(&c, &sv.addr, &rq, &waits), HC_TRUNCATED);
    CHECK_EQ(hc_response_status(&c.resp), 200);
    CHECK(!hc_conn_reusable(&c));
    hc_conn_close(&c);
    CHECK_EQ(exchange(&c, &sv.addr, &rq, &waits), HC_TRUNCATED);
    CHECK(!hc_conn_reusable(&c));
    hc_conn_close(&c);
    CHECK_EQ(exchange(&c, &sv.addr, &rq, &waits), HC_FAILED);
    CHECK_EQ(hc_response_status(&c.resp), 0);
    hc_conn_close(&c);

    /* 6: 503. */
    CHECK_EQ(exchange(&c, &sv.addr, &rq, &waits), HC_DONE);
    CHECK_EQ(hc_response_status(&c.resp), 503);
    CHECK(body_is(&c, "busy\n"));
    v = hc_response_header(&c.resp, "Retry-After", &len);
    CHECK(v != NULL && len == 1 && v[0] == '7');
    CHECK(!hc_conn_reusable(&c));
    hc_conn_close(&c);

    /* 7: a body that ends with the connection. */
    CHECK_EQ(exchange(&c, &sv.addr, &rq, &waits), HC_DONE);
    CHECK(body_is(&c, "until the close"));
    CHECK(!hc_conn_reusable(&c));
    hc_conn_close(&c);

    CHECK_EQ(c.opened, 8);

    /* 8: the size bound holds even when the socket has more to give at once. */
    hc_conn_init(&small, ep, &small, 64);
    CHECK_EQ(exchange(&small, &sv.addr, &rq, &waits), HC_TRUNCATED);
    CHECK_EQ(hc_response_status(&small.resp), 200);
    hc_conn_cleanup(&small);

    pthread_join(thread, NULL);
    if (sv.error != NULL)
        TEST_FAIL_AT("server: %s", sv.error);

    /* Nothing listens any more: the connection is refused. */
    close(sv.fd);
    REQUIRE(hc_conn_request(&c, &rq) == 0);
    REQUIRE(hc_conn_open(&c, &sv.addr) == 0);
    {
        struct epoll_event ev;

        CHECK_EQ(epoll_wait(ep, &ev, 1, 5000), 1);
        CHECK_EQ(hc_conn_event(&c, ev.events), HC_CONNECT_FAILED);
    }
    hc_conn_cleanup(&c);
    close(ep);
    pthread_mutex_destroy(&sv.lock);
}

/* ---------------------------------------------------------------------------------------
 * The parser alone.
 */

/* Feeds text (len bytes) to a fresh parser and returns what it decides, eof after it. */
static enum hc_result parse(struct hc_response *r, const char *text, size_t len, bool eof)
{
    hc_response_reset(r);
    REQUIRE(hc_response_feed(r, text, len) == 0);
    return hc_response_parse(r, eof);
}

#define PARSE(r, lit, eof) parse(r, lit, sizeof(lit) - 1, eof)

static void test_parser(void)
{
    struct hc_response r;
    size_t len;
    const char *body;

    hc_response_init(&r, 4096);
    CHECK_EQ(PARSE(&r, "", true), HC_FAILED);
    CHECK_EQ(PARSE(&r, "HTTP/1.1 200 OK\r\n", true), HC_FAILED);
    CHECK_EQ(PARSE(&r, "HTTP/1.1 2x0 OK\r\n\r\n", false), HC_FAILED);
    CHECK_EQ(PARSE(&r, "HTTP/2 200\r\n\r\n", false), HC_FAILED);
    CHECK_EQ(PARSE(&r, "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", false), HC_FAILED);
    CHECK_EQ(PARSE(&r, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false), HC_FAILED);
    CHECK_EQ(
        PARSE(&r, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", false),
        HC_FAILED);
    /* A NUL in a header is an odd byte, not the end of the text. */
    CHECK_EQ(PARSE(&r, "HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 2\r\n\r\nok", false),
             HC_DONE);
    CHECK_EQ(hc_response_status(&r), 200);
    /* Status line without a reason phrase; 204 has no body whatever follows. */
    CHECK_EQ(PARSE(&r, "HTTP/1.1 204\r\n\r\n", false), HC_DONE);
    CHECK(hc_response_keepalive(&r));
    /* Chunked wins over Content-Length; the last coding decides. */
    CHECK_EQ(
        PARSE(&r,
              "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
              "2\r\nhi\r\n0\r\n\r\n",
              false),
        HC_DONE);
    body = hc_response_body(&r, &len);
    CHECK(len == 2 && memcmp(body, "hi", 2) == 0);
    /* Not chunked last: the body runs to the close, and the connection is used up. */
    CHECK_EQ(PARSE(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nhi", false),
             HC_MORE);
    CHECK_EQ(hc_response_parse(&r, true), HC_DONE);
    CHECK(!hc_response_keepalive(&r));
    /* Malformed chunks: a size past the bound, no CRLF after the data, no size at all. */
    CHECK_EQ(PARSE(&r,
                   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
                   false),
             HC_TRUNCATED);
    CHECK_EQ(PARSE(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1001\r\n", false),
             HC_TRUNCATED);
    CHECK_EQ(PARSE(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiX\r\n", false),
             HC_TRUNCATED);
    CHECK_EQ(PARSE(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n", false),
             HC_TRUNCATED);
    /* More than the bound. */
    {
        char big[5000];

        memset(big, 'x', sizeof(big));
        hc_response_reset(&r);
        CHECK_EQ(hc_response_feed(&r, big, sizeof(big)), -E2BIG);
    }
    /* Content-Length: extra bytes are not part of the body; short at EOF is truncated. */
    CHECK_EQ(PARSE(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", false), HC_DONE);
    body = hc_response_body(&r, &len);
    CHECK(len == 2 && memcmp(body, "ok", 2) == 0);
    CHECK_EQ(PARSE(&r, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok", true), HC_TRUNCATED);
    /* Connection: close anywhere in the list; HTTP/1.0 closes. */
    CHECK_EQ(PARSE(&r, "HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 0\r\n\r\n",
                   false),
             HC_DONE);
    CHECK(!hc_response_keepalive(&r));
    CHECK_EQ(PARSE(&r, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false), HC_DONE);
    CHECK(!hc_response_keepalive(&r));
    hc_response_cleanup(&r);
}

static void test_helpers(void)
{
    const char *text = "# HELP x\nprobe_success 1\nprobe_rtt{phase=\"rtt\"} 0.25\nlast 3";
    struct sockaddr_in addr;
    int64_t v[] = {5, 1, 4, 2, 3}, x = 0;
    double d = -1;
    char out[64];
    struct hc_request rq = {.path = "/a", .host = "h", .user_agent = "u", .close = true};

    CHECK(hc_sample_value(text, strlen(text), "probe_success", &d) && d == 1);
    CHECK(hc_sample_value(text, strlen(text), "probe_rtt{phase=\"rtt\"}", &d) && d == 0.25);
    CHECK(hc_sample_value(text, strlen(text), "last", &d) && d == 3);
    CHECK(!hc_sample_value(text, strlen(text), "probe", &d));
    CHECK_EQ(hc_parse_addr("127.0.0.1:9116", &addr), 0);
    CHECK_EQ(ntohs(addr.sin_port), 9116);
    CHECK_EQ(hc_parse_addr("127.0.0.1:0", &addr), -EINVAL);
    CHECK_EQ(hc_parse_addr("localhost:80", &addr), -EINVAL);
    CHECK_EQ(hc_request_format(out, sizeof(out), &rq), 62);
    CHECK_STR_EQ(out, "GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent: u\r\nConnection: close\r\n\r\n");
    CHECK_EQ(hc_request_format(out, 62, &rq), -E2BIG);
    tool_sort_i64(v, 5);
    CHECK_EQ(tool_quantile_i64(v, 5, 0.0), 1);
    CHECK_EQ(tool_quantile_i64(v, 5, 0.5), 3);
    CHECK_EQ(tool_quantile_i64(v, 5, 0.99), 4);
    CHECK_EQ(tool_quantile_i64(v, 5, 1.0), 5);
    CHECK_EQ(tool_quantile_i64(v, 0, 0.5), -1);
    CHECK_EQ(tool_parse_i64("42", 1, 100, &x), 0);
    CHECK_EQ(x, 42);
    CHECK_EQ(tool_parse_i64("42x", 1, 100, &x), -EINVAL);
    CHECK_EQ(tool_parse_i64("101", 1, 100, &x), -EINVAL);
}

int main(void)
{
    test_parser();
    test_helpers();
    test_with_server();
    return TEST_DONE();
}
