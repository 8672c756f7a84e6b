/*
 * hammer: the HTTP load client of the hardening tests (tests/hardening/README.md).
 *
 * Closed loop, for a time: CONCURRENCY connection slots, each sending its next request as
 * soon as the previous one is answered, for --duration seconds; then no new request starts,
 * and the ones in flight get --grace seconds to finish (after that they count as failed).
 * So the rate is the highest the server sustains at that concurrency, and the run is
 * bounded in time whatever the server does.
 *
 * The paths file has one request a line, "CLASS PATH" (CLASS a short word, say "bh" for
 * the blackhole); slots take the lines round-robin, so the mix follows the file. Every
 * response is read whole (Content-Length, chunked, or until the server closes) and judged:
 *
 *   - failed: no status line at all (connection refused, reset or closed before answering,
 *     or still unanswered at the end of the grace period); the slot waits 10 ms before its
 *     next request;
 *   - truncated: a status line, then the connection ended before the body did (a chunked
 *     body without its last chunk, fewer bytes than Content-Length);
 *   - 503: counted apart, and apart again when it lacks "Retry-After";
 *   - 200: a /probe body (debug=true ones too: they end with the metrics) must carry a
 *     probe_success sample, a /metrics body the icmp_exporter_build_info sample, and both
 *     must end with a newline; else "malformed".
 *     From /probe bodies the per-class sums of probe_success, probe_icmp_echoes_sent and
 *     probe_icmp_echoes_received are kept (for "no false success" and exact-loss checks).
 *
 * It prints one line per class and one for all ("class=ALL"), key=value pairs, and exits 0
 * when every request was a 200 or a 503 with Retry-After, 1 otherwise, 2 on bad usage.
 * --save-dir DIR keeps every --save-every'th 200 body per class as DIR/CLASS-N.txt (every
 * one for the classes named by --save-all), for promtool. Everything is bounded: slots, response
 * size, duration, grace.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS    INT64_C(1000000)
#define NS_PER_S     INT64_C(1000000000)
#define MAX_SLOTS    4096
#define MAX_CLASSES  32
#define MAX_PATHS    100000
#define MAX_HEADERS  8
#define MAX_RESPONSE (64u * 1024 * 1024)
#define CLASS_LEN    32
#define RETRY_NS     (10 * NS_PER_MS)

static void usage(FILE *out)
{
    fputs("usage: hammer --connect ADDR:PORT --paths FILE [--concurrency N] [--duration S]\n"
          "              [--grace S] [--header 'Name: value']... [--close]\n"
          "              [--save-dir DIR] [--save-every N] [--save-all CLASS]...\n"
          "\n"
          "  --paths FILE      one request a line: CLASS PATH (taken round-robin)\n"
          "  --concurrency N   connection slots, 1..4096 (default 8)\n"
          "  --duration S      seconds during which new requests start (default 10)\n"
          "  --grace S         seconds the last requests get to finish (default 10)\n"
          "  --header H        an extra request header (up to 8)\n"
          "  --close           a new connection per request (default: keep-alive)\n"
          "  --save-dir DIR    keep 200 bodies as DIR/CLASS-N.txt ...\n"
          "  --save-every N    ... every Nth of each class (default 50)\n"
          "  --save-all CLASS  ... and every one of CLASS (up to 8 classes)\n",
          out);
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + (int64_t)ts.tv_nsec;
}

static int parse_i64(const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return -EINVAL;
    *out = (int64_t)v;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Buffers and per-class figures.
 */

struct buf {
    char *data;
    size_t len, cap;
};

/* Makes room for more bytes (plus a NUL); -E2BIG past MAX_RESPONSE, -ENOMEM. */
static int buf_reserve(struct buf *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 8192;
    char *p;

    if (more > MAX_RESPONSE - b->len)
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

static int buf_append(struct buf *b, const char *p, size_t n)
{
    int rc = buf_reserve(b, n);

    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

struct lat {
    int64_t *v;
    size_t n, cap;
};

static void lat_add(struct lat *l, int64_t ns)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        int64_t *p = realloc(l->v, cap * sizeof(*p));

        if (p == NULL)
            return; /* a latency less in the percentiles; the counts stay exact */
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = ns;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* The q-quantile (lower value) in ms, values sorted already; -1 when there is none. */
static double quantile_ms(const struct lat *l, double q)
{
    if (l->n == 0)
        return -1;
    return (double)l->v[(size_t)(q * (double)(l->n - 1))] / 1e6;
}

struct class
{
    char name[CLASS_LEN];
    uint64_t requests, s200, s503, s503_no_retry, other, failed, truncated, malformed;
    uint64_t success1, success0, echoes_sent, echoes_received, saved, n200;
    int other_first; /* the first unexpected status, for the report */
    bool save_all;
    struct lat lat;
};

/* ---------------------------------------------------------------------------------------
 * Connections.
 */

enum slot_state { SLOT_IDLE, SLOT_CONNECTING, SLOT_WRITING, SLOT_READING };

struct slot {
    int fd;
    enum slot_state state;
    size_t path; /* index of its current request */
    size_t out_off, out_len;
    char out[4096];
    struct buf in;   /* the raw response */
    struct buf body; /* chunked responses: the decoded body */
    size_t head_len; /* bytes of status line and headers, 0 until all seen */
    int64_t clen;    /* Content-Length, -1 when absent */
    bool chunked, server_close, retry_after, body_done;
    size_t chunk_pos; /* chunked: where the next chunk-size line starts in in */
    int status;
    int64_t sent_ns;
    int64_t restart_ns; /* idle after a failure: start again then (0: not waiting) */
};

struct hammer {
    struct sockaddr_in addr;
    char host[64];
    char **paths;
    size_t *path_class;
    size_t n_paths, next_path;
    struct class classes[MAX_CLASSES + 1]; /* the last one is ALL */
    size_t n_classes;
    const char *headers[MAX_HEADERS];
    size_t n_headers;
    bool close_each;
    const char *save_dir;
    uint64_t save_every;
    struct slot *slots;
    size_t n_slots, busy;
    int ep;
    bool stopping; /* past --duration: start nothing new */
};

static void slot_close(struct hammer *h, struct slot *s)
{
    if (s->fd >= 0) {
        epoll_ctl(h->ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
    }
    s->fd = -1;
}

static int slot_events(struct hammer *h, struct slot *s, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = s};

    return epoll_ctl(h->ep, EPOLL_CTL_MOD, s->fd, &ev);
}

static int slot_connect(struct hammer *h, struct slot *s)
{
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
    int one = 1;

    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -errno;
    (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(s->fd, (const struct sockaddr *)&h->addr, sizeof(h->addr)) < 0 &&
        errno != EINPROGRESS) {
        int rc = -errno;
        slot_close(h, s);
        return rc;
    }
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
        int rc = -errno;
        slot_close(h, s);
        return rc;
    }
    s->state = SLOT_CONNECTING;
    return 0;
}

static void slot_reset_response(struct slot *s)
{
    s->in.len = 0;
    s->body.len = 0;
    s->head_len = 0;
    s->clen = -1;
    s->chunked = s->server_close = s->retry_after = s->body_done = false;
    s->chunk_pos = 0;
    s->status = 0;
}

/* Writes what is left of the request; 0, or -errno when the connection failed. */
static int slot_write(struct hammer *h, struct slot *s)
{
    while (s->out_off < s->out_len) {
        ssize_t n = send(s->fd, s->out + s->out_off, s->out_len - s->out_off, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return slot_events(h, s, EPOLLOUT) < 0 ? -errno : 0;
            return -errno;
        }
        s->out_off += (size_t)n;
    }
    s->state = SLOT_READING;
    return slot_events(h, s, EPOLLIN) < 0 ? -errno : 0;
}

static int slot_format(struct hammer *h, struct slot *s)
{
    size_t len;
    int n =
        snprintf(s->out, sizeof(s->out), "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hammer\r\n",
                 h->paths[s->path], h->host);

    if (n < 0 || (size_t)n >= sizeof(s->out))
        return -E2BIG;
    len = (size_t)n;
    for (size_t i = 0; i < h->n_headers; i++) {
        n = snprintf(s->out + len, sizeof(s->out) - len, "%s\r\n", h->headers[i]);
        if (n < 0 || (size_t)n >= sizeof(s->out) - len)
            return -E2BIG;
        len += (size_t)n;
    }
    n = snprintf(s->out + len, sizeof(s->out) - len, "%s\r\n",
                 h->close_each ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(s->out) - len)
        return -E2BIG;
    s->out_len = len + (size_t)n;
    s->out_off = 0;
    return 0;
}

/* The value of the first sample line "name value" (no labels) of body; *found says whether
 * there is one. */
static double sample_value(const char *body, size_t len, const char *name, bool *found)
{
    size_t nlen = strlen(name);
    const char *p = body, *end = body + len;

    *found = false;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));

        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == ' ') {
            *found = true;
            return strtod(p + nlen + 1, NULL);
        }
        p = eol + 1;
    }
    return -1;
}

static void save_body(struct hammer *h, struct class *c, const char *body, size_t len)
{
    char path[4096];
    FILE *f;

    if (h->save_dir == NULL || (!c->save_all && (c->n200 - 1) % h->save_every != 0))
        return;
    snprintf(path, sizeof(path), "%s/%s-%" PRIu64 ".txt", h->save_dir, c->name, c->saved);
    f = fopen(path, "w");
    if (f == NULL)
        return;
    fwrite(body, 1, len, f);
    fclose(f);
    c->saved++;
}

/* Judges a 200 body; returns false when it is malformed. */
static bool judge_200(struct hammer *h, struct class *c, const char *path, const char *body,
                      size_t len)
{
    bool found = false, is_probe = strncmp(path, "/probe", 6) == 0;
    double v;

    c->n200++;
    save_body(h, c, body, len);
    if (len == 0 || body[len - 1] != '\n')
        return false;
    if (!is_probe) {
        /* The exporter's own metrics come first: a body without them is not ours. */
        if (strncmp(path, "/metrics", 8) == 0)
            return memmem(body, len, "\nicmp_exporter_build_info{", 26) != NULL;
        return true;
    }
    v = sample_value(body, len, "probe_success", &found);
    if (!found || (v != 0 && v != 1))
        return false;
    if (v == 1)
        c->success1++;
    else
        c->success0++;
    v = sample_value(body, len, "probe_icmp_echoes_sent", &found);
    if (found && v >= 0)
        c->echoes_sent += (uint64_t)v;
    v = sample_value(body, len, "probe_icmp_echoes_received", &found);
    if (found && v >= 0)
        c->echoes_received += (uint64_t)v;
    return true;
}

/* Parses the status line and headers once all are in; 0 or -EPROTO. */
static int parse_head(struct slot *s)
{
    char *end = memmem(s->in.data, s->in.len, "\r\n\r\n", 4);
    char *line;

    if (end == NULL)
        return 0;
    s->head_len = (size_t)(end - s->in.data) + 4;
    if (sscanf(s->in.data, "HTTP/1.%*d %d", &s->status) != 1)
        return -EPROTO;
    for (line = strstr(s->in.data, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            s->clen = strtoll(line + 15, NULL, 10);
        else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 &&
                 strncasecmp(line + 18 + strspn(line + 18, " "), "chunked", 7) == 0)
            s->chunked = true;
        else if (strncasecmp(line, "Connection:", 11) == 0 &&
                 strncasecmp(line + 11 + strspn(line + 11, " "), "close", 5) == 0)
            s->server_close = true;
        else if (strncasecmp(line, "Retry-After:", 12) == 0)
            s->retry_after = true;
    }
    if (strncmp(s->in.data, "HTTP/1.0", 8) == 0)
        s->server_close = true;
    s->chunk_pos = s->head_len;
    return 0;
}

/* Decodes the complete chunks; sets body_done at the last one. 0 or -EPROTO/-ENOMEM. */
static int parse_chunks(struct slot *s)
{
    for (;;) {
        char *p = s->in.data + s->chunk_pos, *end = s->in.data + s->in.len;
        char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        unsigned long long size;
        char *stop = NULL;

        if (eol == NULL)
            return 0;
        size = strtoull(p, &stop, 16);
        if (stop == p)
            return -EPROTO;
        if (size == 0) {
            /* The last chunk: "0\r\n", no trailers from our server, then "\r\n". */
            if ((size_t)(end - eol) < 4)
                return 0;
            s->body_done = true;
            return 0;
        }
        if (size > MAX_RESPONSE)
            return -EPROTO;
        if ((size_t)(end - (eol + 2)) < size + 2)
            return 0;
        if (buf_append(&s->body, eol + 2, (size_t)size) < 0)
            return -ENOMEM;
        s->chunk_pos = (size_t)(eol + 2 + size + 2 - s->in.data);
    }
}

enum outcome { OUT_MORE, OUT_DONE, OUT_FAILED, OUT_TRUNCATED };

/* Where the response stands after new bytes (eof: the server closed). */
static enum outcome response_state(struct slot *s, bool eof)
{
    if (s->head_len == 0 && parse_head(s) < 0)
        return OUT_FAILED;
    if (s->head_len == 0)
        return eof ? OUT_FAILED : OUT_MORE;
    if (s->chunked) {
        if (parse_chunks(s) < 0)
            return OUT_TRUNCATED;
        return s->body_done ? OUT_DONE : eof ? OUT_TRUNCATED : OUT_MORE;
    }
    if (s->clen >= 0)
        return s->in.len - s->head_len >= (size_t)s->clen ? OUT_DONE
               : eof                                      ? OUT_TRUNCATED
                                                          : OUT_MORE;
    return eof ? OUT_DONE : OUT_MORE;
}

static void slot_start(struct hammer *h, struct slot *s);

/* Records the slot's request and starts its next one (or idles it when stopping). */
static void slot_finish(struct hammer *h, struct slot *s, enum outcome out)
{
    struct class *c = &h->classes[h->path_class[s->path]];
    struct class *all = &h->classes[MAX_CLASSES];
    int64_t lat = monotonic_ns() - s->sent_ns;
    bool reuse = out == OUT_DONE && !h->close_each && !s->server_close;

    for (struct class *k = c;; k = all) {
        k->requests++;
        if (out == OUT_FAILED) {
            k->failed++;
        } else if (out == OUT_TRUNCATED) {
            k->truncated++;
        } else if (s->status == 200) {
            k->s200++;
        } else if (s->status == 503) {
            k->s503++;
            k->s503_no_retry += !s->retry_after;
        } else {
            if (k->other++ == 0)
                k->other_first = s->status;
        }
        if (out != OUT_FAILED)
            lat_add(&k->lat, lat);
        if (k == all)
            break;
    }
    if (out == OUT_DONE && s->status == 200) {
        const char *body = s->chunked ? s->body.data : s->in.data + s->head_len;
        size_t len = s->chunked ? s->body.len : s->in.len - s->head_len;

        if (s->clen >= 0 && len > (size_t)s->clen)
            len = (size_t)s->clen;
        if (!judge_200(h, c, h->paths[s->path], body != NULL ? body : "", len)) {
            c->malformed++;
            all->malformed++;
        }
    }
    h->busy--;
    if (!reuse)
        slot_close(h, s);
    s->state = SLOT_IDLE;
    if (h->stopping)
        return;
    /* After a failure (the server is gone, or refuses), wait a little: no busy loop, and
     * no recursion when connecting fails at once. */
    if (out == OUT_FAILED)
        s->restart_ns = monotonic_ns() + RETRY_NS;
    else
        slot_start(h, s);
}

/* Starts the next request of the paths on slot s (connecting first if needed). */
static void slot_start(struct hammer *h, struct slot *s)
{
    s->path = h->next_path++ % h->n_paths;
    s->sent_ns = monotonic_ns();
    slot_reset_response(s);
    h->busy++;
    if (slot_format(h, s) < 0) {
        slot_finish(h, s, OUT_FAILED);
        return;
    }
    if (s->fd < 0) {
        if (slot_connect(h, s) < 0)
            slot_finish(h, s, OUT_FAILED);
        return;
    }
    s->state = SLOT_WRITING;
    if (slot_write(h, s) < 0)
        slot_finish(h, s, OUT_FAILED);
}

static void slot_readable(struct hammer *h, struct slot *s)
{
    for (;;) {
        ssize_t n;
        enum outcome out;

        if (buf_reserve(&s->in, 65536) < 0) {
            slot_finish(h, s, OUT_TRUNCATED);
            return;
        }
        n = recv(s->fd, s->in.data + s->in.len, s->in.cap - s->in.len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n > 0) {
            s->in.len += (size_t)n;
            s->in.data[s->in.len] = '\0';
        }
        out = response_state(s, n <= 0);
        if (out != OUT_MORE) {
            slot_finish(h, s, out);
            return;
        }
        if (n <= 0)
            return;
    }
}

static void slot_event(struct hammer *h, struct slot *s, uint32_t events)
{
    switch (s->state) {
    case SLOT_CONNECTING: {
        int err = 0;
        socklen_t len = sizeof(err);

        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
            slot_finish(h, s, OUT_FAILED);
            return;
        }
        s->state = SLOT_WRITING;
        if (slot_write(h, s) < 0)
            slot_finish(h, s, OUT_FAILED);
        return;
    }
    case SLOT_WRITING:
        if (slot_write(h, s) < 0)
            slot_finish(h, s, OUT_FAILED);
        return;
    case SLOT_READING:
        slot_readable(h, s);
        return;
    default:
        return;
    }
}

/* ---------------------------------------------------------------------------------------
 * Set-up and report.
 */

static size_t class_index(struct hammer *h, const char *name)
{
    for (size_t i = 0; i < h->n_classes; i++) {
        if (strcmp(h->classes[i].name, name) == 0)
            return i;
    }
    if (h->n_classes == MAX_CLASSES)
        return SIZE_MAX;
    snprintf(h->classes[h->n_classes].name, CLASS_LEN, "%s", name);
    return h->n_classes++;
}

static int read_paths(const char *file, struct hammer *h)
{
    FILE *f = fopen(file, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = -ENOMEM;

    if (f == NULL)
        return -errno;
    h->paths = calloc(MAX_PATHS, sizeof(*h->paths));
    h->path_class = calloc(MAX_PATHS, sizeof(*h->path_class));
    if (h->paths == NULL || h->path_class == NULL)
        goto out;
    while ((n = getline(&line, &cap, f)) > 0) {
        char *sp, *path;

        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        sp = strchr(line, ' ');
        if (sp == NULL || (size_t)(sp - line) >= CLASS_LEN || h->n_paths == MAX_PATHS) {
            rc = -EINVAL;
            goto out;
        }
        *sp = '\0';
        path = sp + 1 + strspn(sp + 1, " ");
        if (path[0] != '/') {
            rc = -EINVAL;
            goto out;
        }
        h->path_class[h->n_paths] = class_index(h, line);
        if (h->path_class[h->n_paths] == SIZE_MAX) {
            rc = -EINVAL;
            goto out;
        }
        h->paths[h->n_paths] = strdup(path);
        if (h->paths[h->n_paths] == NULL)
            goto out;
        h->n_paths++;
    }
    rc = h->n_paths > 0 ? 0 : -ENODATA;
out:
    free(line);
    fclose(f);
    return rc;
}

static int parse_addr(const char *text, struct hammer *h)
{
    const char *colon = strrchr(text, ':');
    char ip[INET_ADDRSTRLEN];
    int64_t port;

    if (colon == NULL || (size_t)(colon - text) >= sizeof(ip) ||
        parse_i64(colon + 1, 1, 65535, &port) < 0)
        return -EINVAL;
    memcpy(ip, text, (size_t)(colon - text));
    ip[colon - text] = '\0';
    h->addr.sin_family = AF_INET;
    h->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &h->addr.sin_addr) != 1)
        return -EINVAL;
    snprintf(h->host, sizeof(h->host), "%s", text);
    return 0;
}

static void report_class(struct class *c, double wall_s)
{
    qsort(c->lat.v, c->lat.n, sizeof(*c->lat.v), cmp_i64);
    printf("hammer class=%s requests=%" PRIu64 " s200=%" PRIu64 " s503=%" PRIu64
           " s503_no_retry_after=%" PRIu64 " other_status=%" PRIu64 " other_first=%d"
           " failed=%" PRIu64 " truncated=%" PRIu64 " malformed=%" PRIu64 " rps=%.1f"
           " lat_p50_ms=%.3f lat_p99_ms=%.3f lat_max_ms=%.3f success1=%" PRIu64 " success0=%" PRIu64
           " echoes_sent=%" PRIu64 " echoes_received=%" PRIu64 " saved=%" PRIu64 "\n",
           c->name, c->requests, c->s200, c->s503, c->s503_no_retry, c->other, c->other_first,
           c->failed, c->truncated, c->malformed, wall_s > 0 ? (double)c->requests / wall_s : 0,
           quantile_ms(&c->lat, 0.5), quantile_ms(&c->lat, 0.99), quantile_ms(&c->lat, 1.0),
           c->success1, c->success0, c->echoes_sent, c->echoes_received, c->saved);
}

static void raise_nofile(size_t n)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= n + 64)
        return;
    rl.rlim_cur = rl.rlim_max < n + 64 ? rl.rlim_max : n + 64;
    setrlimit(RLIMIT_NOFILE, &rl);
}

int main(int argc, char **argv)
{
    const char *connect_to = NULL, *paths = NULL, *save_all[8];
    size_t n_save_all = 0;
    int64_t concurrency = 8, duration_s = 10, grace_s = 10, save_every = 50;
    struct hammer h = {.ep = -1};
    int64_t t0, stop_at, give_up_at, t_end;
    struct class *all = &h.classes[MAX_CLASSES];
    int rc;

    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(argv[i], "--close") == 0) {
            h.close_each = true;
            continue;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (v == NULL)
            goto bad_usage;
        if (strcmp(argv[i], "--connect") == 0) {
            connect_to = v;
        } else if (strcmp(argv[i], "--paths") == 0) {
            paths = v;
        } else if (strcmp(argv[i], "--save-dir") == 0) {
            h.save_dir = v;
        } else if (strcmp(argv[i], "--save-all") == 0) {
            if (n_save_all == sizeof(save_all) / sizeof(save_all[0]))
                goto bad_usage;
            save_all[n_save_all++] = v;
        } else if (strcmp(argv[i], "--header") == 0) {
            if (h.n_headers == MAX_HEADERS || strpbrk(v, "\r\n") != NULL)
                goto bad_usage;
            h.headers[h.n_headers++] = v;
        } else if (strcmp(argv[i], "--concurrency") == 0) {
            if (parse_i64(v, 1, MAX_SLOTS, &concurrency) < 0)
                goto bad_usage;
        } else if (strcmp(argv[i], "--duration") == 0) {
            if (parse_i64(v, 1, 86400, &duration_s) < 0)
                goto bad_usage;
        } else if (strcmp(argv[i], "--grace") == 0) {
            if (parse_i64(v, 1, 3600, &grace_s) < 0)
                goto bad_usage;
        } else if (strcmp(argv[i], "--save-every") == 0) {
            if (parse_i64(v, 1, INT32_MAX, &save_every) < 0)
                goto bad_usage;
        } else {
            goto bad_usage;
        }
        i++;
    }
    if (connect_to == NULL || paths == NULL || parse_addr(connect_to, &h) < 0)
        goto bad_usage;
    h.save_every = (uint64_t)save_every;
    snprintf(all->name, CLASS_LEN, "ALL");
    rc = read_paths(paths, &h);
    if (rc < 0) {
        fprintf(stderr, "hammer: %s: %s (want lines \"CLASS /path\")\n", paths, strerror(-rc));
        return 2;
    }
    for (size_t i = 0; i < n_save_all; i++) {
        for (size_t k = 0; k < h.n_classes; k++)
            h.classes[k].save_all |= strcmp(h.classes[k].name, save_all[i]) == 0;
    }
    signal(SIGPIPE, SIG_IGN);
    h.n_slots = (size_t)concurrency;
    raise_nofile(h.n_slots);
    h.slots = calloc(h.n_slots, sizeof(*h.slots));
    h.ep = epoll_create1(EPOLL_CLOEXEC);
    if (h.slots == NULL || h.ep < 0) {
        fprintf(stderr, "hammer: out of memory or descriptors\n");
        return 1;
    }
    t0 = monotonic_ns();
    stop_at = t0 + duration_s * NS_PER_S;
    give_up_at = stop_at + grace_s * NS_PER_S;
    for (size_t i = 0; i < h.n_slots; i++) {
        h.slots[i].fd = -1;
        slot_start(&h, &h.slots[i]);
    }
    for (;;) {
        struct epoll_event evs[256];
        int64_t now = monotonic_ns();
        int n;

        if (now >= stop_at)
            h.stopping = true;
        if (h.stopping && h.busy == 0)
            break;
        if (now >= give_up_at) {
            fprintf(stderr, "hammer: %zu requests still unanswered %" PRId64 " s after the end\n",
                    h.busy, grace_s);
            for (size_t i = 0; i < h.n_slots; i++) {
                if (h.slots[i].state != SLOT_IDLE)
                    slot_finish(&h, &h.slots[i], OUT_FAILED);
            }
            break;
        }
        n = epoll_wait(h.ep, evs, 256, 10);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "hammer: epoll_wait: %s\n", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++)
            slot_event(&h, evs[i].data.ptr, evs[i].events);
        now = monotonic_ns();
        for (size_t i = 0; i < h.n_slots && !h.stopping; i++) {
            struct slot *s = &h.slots[i];

            if (s->state == SLOT_IDLE && s->restart_ns != 0 && s->restart_ns <= now) {
                s->restart_ns = 0;
                slot_start(&h, s);
            }
        }
    }
    t_end = monotonic_ns();
    for (size_t i = 0; i < h.n_classes; i++)
        report_class(&h.classes[i], (double)(t_end - t0) / 1e9);
    report_class(all, (double)(t_end - t0) / 1e9);
    rc = all->failed == 0 && all->truncated == 0 && all->malformed == 0 && all->other == 0 &&
                 all->s503_no_retry == 0
             ? 0
             : 1;
    for (size_t i = 0; i < h.n_slots; i++) {
        slot_close(&h, &h.slots[i]);
        free(h.slots[i].in.data);
        free(h.slots[i].body.data);
    }
    for (size_t i = 0; i <= MAX_CLASSES; i++)
        free(h.classes[i].lat.v);
    for (size_t i = 0; i < h.n_paths; i++)
        free(h.paths[i]);
    free(h.paths);
    free(h.path_class);
    free(h.slots);
    close(h.ep);
    return rc;
bad_usage:
    usage(stderr);
    return 2;
}
