/*
 * exporter_load: the HTTP load client of the exporter benchmark (run_exporter_bench.sh;
 * tests/bench/README.md explains the figures). A documented tool, not a ctest test.
 *
 * One epoll loop, non-blocking sockets, CONCURRENCY connection slots taking the request
 * paths of a file in order. The first wave is a barrier: every slot connects first, and
 * only when all are connected are all first requests written, back to back, so "1,000
 * concurrent requests" means 1,000 requests on the wire within a millisecond or so, not
 * 1,000 connects trickling in. Later requests of a slot reuse its connection
 * (--keepalive) or open a new one (the default, "Connection: close").
 *
 * Each response is read whole (Content-Length, chunked, or until EOF), then judged: status
 * 200, and the body contains --expect when given. --value METRIC takes that sample's value
 * (seconds) from each body, for "turnaround minus the RTT the exporter reports".
 *
 * --watch PID samples the server while the load runs, without a helper process: its
 * thread count (/proc/PID/status Threads, at least every millisecond), its CPU time
 * (the process CPU clock of clock_getcpuclockid(), which counts exited threads too, and
 * utime+stime of /proc/PID/stat as a cross-check) just before the first request and just
 * after the last response, and VmHWM / VmRSS at the end.
 *
 * Everything is bounded: --limit seconds for the whole run, then unfinished requests
 * count as failed.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S  INT64_C(1000000000)

#define MAX_SLOTS    20000
#define MAX_REQUESTS 1000000
#define MAX_RESPONSE (512u * 1024 * 1024)
#define SAMPLE_NS    NS_PER_MS

static void usage(FILE *out)
{
    fputs("usage: exporter_load --connect ADDR:PORT --paths FILE [--concurrency N] [--keepalive]\n"
          "                     [--expect TEXT] [--value METRIC] [--watch PID] [--lines FILE]\n"
          "                     [--body FILE] [--limit S]\n"
          "\n"
          "  --paths FILE       request paths, one a line (\"/probe?target=...\"), sent in order\n"
          "  --concurrency N    connection slots (default: one per path, at most 20000)\n"
          "  --keepalive        a slot sends its requests one after another on one connection\n"
          "  --expect TEXT      a response counts as ok only if its body contains TEXT\n"
          "  --value METRIC     take the value of sample METRIC (name{labels}) from each body\n"
          "  --watch PID        sample PID's threads, CPU time and RSS during the run\n"
          "  --lines FILE       write \"index status latency_ns value_ns ok\" per request\n"
          "  --body FILE        write every response body to FILE\n"
          "  --limit S          give up after S seconds (default 60)\n"
          "\n"
          "Prints one line: load requests= ok= ... wall_ns= lat_p50_ns= ... cpu_ns= ...\n",
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

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* The q-quantile (0..1, lower value) of n values, sorted in place; -1 when n is 0. */
static int64_t quantile_i64(int64_t *v, size_t n, double q)
{
    size_t i;

    if (n == 0)
        return -1;
    qsort(v, n, sizeof(*v), cmp_i64);
    i = (size_t)(q * (double)(n - 1));
    return v[i];
}

/* ---------------------------------------------------------------------------------------
 * A growable byte buffer, bounded by MAX_RESPONSE.
 */

struct buf {
    char *data;
    size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 4096;
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

/* ---------------------------------------------------------------------------------------
 * Watching the server.
 */

struct watch {
    pid_t pid;
    int status_fd;
    clockid_t clock;
    bool have_clock;
    int threads_max, threads_first;
    int64_t samples, last_ns;
};

/* Reads /proc/PID/status into buf; returns false when the process is gone. */
static bool watch_status(struct watch *w, char *buf, size_t size)
{
    ssize_t n;

    if (w->status_fd < 0)
        return false;
    n = pread(w->status_fd, buf, size - 1, 0);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* The value of "Key:\t<n>" in a /proc status text, or -1. */
static long status_field(const char *text, const char *key)
{
    size_t klen = strlen(key);

    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ':')
            return strtol(p + klen + 1, NULL, 10);
    }
    return -1;
}

static void watch_sample(struct watch *w, int64_t now)
{
    char text[4096];
    long threads;

    if (w->pid <= 0 || (now - w->last_ns < SAMPLE_NS && w->samples > 0))
        return;
    w->last_ns = now;
    if (!watch_status(w, text, sizeof(text)))
        return;
    threads = status_field(text, "Threads");
    if (threads < 0)
        return;
    if (w->samples++ == 0)
        w->threads_first = (int)threads;
    if (threads > w->threads_max)
        w->threads_max = (int)threads;
}

/* The watched process's CPU time in ns (process CPU clock), or -1. */
static int64_t watch_cpu_ns(const struct watch *w)
{
    struct timespec ts;

    if (!w->have_clock || clock_gettime(w->clock, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * NS_PER_S + (int64_t)ts.tv_nsec;
}

/* utime + stime of /proc/PID/stat in ns (clock-tick resolution), or -1. */
static int64_t watch_stat_cpu_ns(const struct watch *w)
{
    char path[64], text[2048];
    unsigned long long ut = 0, st = 0;
    const char *p;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)w->pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    text[n] = '\0';
    /* Fields after the command name, which may hold spaces: state is field 3, utime 14. */
    p = strrchr(text, ')');
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (int64_t)(ut + st) * (NS_PER_S / sysconf(_SC_CLK_TCK));
}

/* ---------------------------------------------------------------------------------------
 * Connections.
 */

enum slot_state { SLOT_IDLE, SLOT_CONNECTING, SLOT_CONNECTED, SLOT_WRITING, SLOT_READING };

struct slot {
    int fd;
    enum slot_state state;
    size_t req; /* index of its current request */
    size_t out_off, out_len;
    char out[2048];
    struct buf in;   /* the raw response */
    struct buf body; /* the decoded body (chunked responses only) */
    size_t head_len; /* bytes of status line and headers, 0 until seen */
    int64_t clen;    /* Content-Length, -1 when absent */
    bool chunked, server_close;
    size_t chunk_pos; /* chunked: next chunk-size line in in */
    bool body_done;
    int status;
    int64_t sent_ns;
};

struct result {
    int status;
    bool ok;
    int64_t latency_ns;
    int64_t value_ns; /* -1 when absent */
};

struct load {
    struct sockaddr_in addr;
    char host[64];
    char **paths;
    size_t n_paths, next_req, done;
    struct slot *slots;
    size_t n_slots;
    bool keepalive;
    const char *expect, *value;
    FILE *body_out;
    struct result *results;
    int ep;
    int64_t first_send_ns, last_done_ns;
    struct watch watch;
    int64_t cpu0, stat_cpu0;
    size_t connect_errors;
    size_t connects; /* connections opened: 1 per slot when keep-alive is honoured */
};

static int slot_events(struct load *l, struct slot *s, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = s};

    return epoll_ctl(l->ep, EPOLL_CTL_MOD, s->fd, &ev);
}

static void slot_reset_response(struct slot *s)
{
    s->in.len = 0;
    s->body.len = 0;
    s->head_len = 0;
    s->clen = -1;
    s->chunked = false;
    s->server_close = false;
    s->chunk_pos = 0;
    s->body_done = false;
    s->status = 0;
}

static void slot_close(struct slot *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->state = SLOT_IDLE;
}

/* Opens a connection for s; returns 0 or -errno. */
static int slot_connect(struct load *l, struct slot *s)
{
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
    int one = 1, rc;

    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -errno;
    l->connects++;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    rc = connect(s->fd, (const struct sockaddr *)&l->addr, sizeof(l->addr));
    if (rc < 0 && errno != EINPROGRESS) {
        rc = -errno;
        slot_close(s);
        return rc;
    }
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
        rc = -errno;
        slot_close(s);
        return rc;
    }
    s->state = SLOT_CONNECTING;
    return 0;
}

/* Writes what is left of s's request; returns 0, or -errno when the connection failed. */
static int slot_write(struct load *l, struct slot *s)
{
    while (s->out_off < s->out_len) {
        ssize_t n = send(s->fd, s->out + s->out_off, s->out_len - s->out_off, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return slot_events(l, s, EPOLLOUT) < 0 ? -errno : 0;
            return -errno;
        }
        s->out_off += (size_t)n;
    }
    s->state = SLOT_READING;
    return slot_events(l, s, EPOLLIN) < 0 ? -errno : 0;
}

/* Formats and starts writing request s->req. */
static int slot_send(struct load *l, struct slot *s, int64_t now)
{
    int n = snprintf(s->out, sizeof(s->out),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: exporter_load\r\n%s\r\n",
                     l->paths[s->req], l->host, l->keepalive ? "" : "Connection: close\r\n");

    if (n < 0 || (size_t)n >= sizeof(s->out))
        return -E2BIG;
    s->out_len = (size_t)n;
    s->out_off = 0;
    slot_reset_response(s);
    s->sent_ns = now;
    if (l->first_send_ns == 0)
        l->first_send_ns = now;
    s->state = SLOT_WRITING;
    return slot_write(l, s);
}

/* The value of sample `name` (a whole line prefix up to a space) in body, in ns, or -1. */
static int64_t sample_value_ns(const char *body, size_t len, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = body, *end = body + len;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));

        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == ' ') {
            double v = strtod(p + nlen + 1, NULL);

            return v >= 0 ? (int64_t)(v * 1e9 + 0.5) : -1;
        }
        p = eol + 1;
    }
    return -1;
}

/* Parses the status line and headers once they are all in; returns 0 or -EPROTO. */
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
                 strstr(line, "chunked") != NULL && strstr(line, "chunked") < strstr(line, "\r\n"))
            s->chunked = true;
        else if (strncasecmp(line, "Connection:", 11) == 0 &&
                 strncasecmp(line + 11 + strspn(line + 11, " "), "close", 5) == 0)
            s->server_close = true;
    }
    if (strncmp(s->in.data, "HTTP/1.0", 8) == 0)
        s->server_close = true;
    s->chunk_pos = s->head_len;
    return 0;
}

/* Decodes the chunks that are complete; sets body_done at the last one. */
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
            /* No trailers from our peers: the last chunk is "0\r\n\r\n". */
            if ((size_t)(end - eol) < 4)
                return 0;
            s->body_done = true;
            return 0;
        }
        if ((size_t)(end - (eol + 2)) < size + 2)
            return 0;
        if (buf_append(&s->body, eol + 2, (size_t)size) < 0)
            return -ENOMEM;
        s->chunk_pos = (size_t)(eol + 2 + size + 2 - s->in.data);
    }
}

/* Whether the response in s is complete, after new bytes (or EOF when eof). */
static int response_complete(struct slot *s, bool eof)
{
    if (s->head_len == 0 && parse_head(s) < 0)
        return -EPROTO;
    if (s->head_len == 0)
        return eof ? -EPROTO : 0;
    if (s->chunked) {
        if (parse_chunks(s) < 0)
            return -EPROTO;
        return s->body_done ? 1 : (eof ? -EPROTO : 0);
    }
    if (s->clen >= 0)
        return s->in.len - s->head_len >= (size_t)s->clen ? 1 : (eof ? -EPROTO : 0);
    return eof ? 1 : 0;
}

/* Records request s->req as finished (ok or not) and gives the slot its next request. */
static void slot_finish(struct load *l, struct slot *s, bool complete, int64_t now)
{
    struct result *r = &l->results[s->req];
    bool reuse = complete && l->keepalive && !s->server_close;

    r->status = complete ? s->status : 0;
    r->latency_ns = now - s->sent_ns;
    r->value_ns = -1;
    r->ok = false;
    if (complete) {
        const char *body = s->chunked ? s->body.data : s->in.data + s->head_len;
        size_t len = s->chunked ? s->body.len : s->in.len - s->head_len;

        if (s->clen >= 0 && len > (size_t)s->clen)
            len = (size_t)s->clen;
        if (body == NULL)
            body = "";
        r->ok = s->status == 200 &&
                (l->expect == NULL || memmem(body, len, l->expect, strlen(l->expect)) != NULL);
        if (l->value != NULL)
            r->value_ns = sample_value_ns(body, len, l->value);
        if (l->body_out != NULL)
            fwrite(body, 1, len, l->body_out);
    }
    l->done++;
    l->last_done_ns = now;
    if (!reuse)
        slot_close(s);
    if (l->next_req >= l->n_paths) {
        if (reuse)
            slot_close(s);
        return;
    }
    s->req = l->next_req++;
    if (reuse) {
        if (slot_send(l, s, now) < 0)
            slot_finish(l, s, false, monotonic_ns());
        return;
    }
    if (slot_connect(l, s) < 0) {
        l->connect_errors++;
        s->sent_ns = now;
        slot_finish(l, s, false, now);
    }
}

static void slot_readable(struct load *l, struct slot *s)
{
    for (;;) {
        ssize_t n;
        int rc;

        if (buf_reserve(&s->in, 65536) < 0) {
            slot_finish(l, s, false, monotonic_ns());
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
        rc = response_complete(s, n <= 0);
        if (rc != 0 || n <= 0) {
            slot_finish(l, s, rc > 0, monotonic_ns());
            return;
        }
    }
}

static void slot_event(struct load *l, struct slot *s, uint32_t events, bool barrier_done)
{
    int64_t now = monotonic_ns();

    switch (s->state) {
    case SLOT_CONNECTING: {
        int err = 0;
        socklen_t len = sizeof(err);

        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
            l->connect_errors++;
            s->sent_ns = now;
            slot_finish(l, s, false, now);
            return;
        }
        s->state = SLOT_CONNECTED;
        if (!barrier_done) {
            slot_events(l, s, 0); /* parked until every first connection is up */
            return;
        }
        if (slot_send(l, s, now) < 0)
            slot_finish(l, s, false, monotonic_ns());
        return;
    }
    case SLOT_WRITING:
        if (slot_write(l, s) < 0)
            slot_finish(l, s, false, monotonic_ns());
        return;
    case SLOT_READING:
        slot_readable(l, s);
        return;
    default:
        return;
    }
}

static int read_paths(const char *file, struct load *l)
{
    FILE *f = fopen(file, "r");
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t n;

    if (f == NULL)
        return -errno;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (l->n_paths == MAX_REQUESTS)
            break;
        if (l->n_paths == alloc) {
            size_t na = alloc ? alloc * 2 : 1024;
            char **p = realloc(l->paths, na * sizeof(*p));

            if (p == NULL)
                goto fail;
            l->paths = p;
            alloc = na;
        }
        l->paths[l->n_paths] = strdup(line);
        if (l->paths[l->n_paths] == NULL)
            goto fail;
        l->n_paths++;
    }
    free(line);
    fclose(f);
    return l->n_paths > 0 ? 0 : -ENODATA;
fail:
    free(line);
    fclose(f);
    return -ENOMEM;
}

static int parse_addr(const char *text, struct load *l)
{
    const char *colon = strrchr(text, ':');
    char ip[INET_ADDRSTRLEN];
    int64_t port;

    if (colon == NULL || (size_t)(colon - text) >= sizeof(ip) ||
        parse_i64(colon + 1, 1, 65535, &port) < 0)
        return -EINVAL;
    memcpy(ip, text, (size_t)(colon - text));
    ip[colon - text] = '\0';
    l->addr.sin_family = AF_INET;
    l->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &l->addr.sin_addr) != 1)
        return -EINVAL;
    snprintf(l->host, sizeof(l->host), "%s", text);
    return 0;
}

/* Raises the descriptor limit to what n connections need. */
static void raise_nofile(size_t n)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= n + 64)
        return;
    rl.rlim_cur = rl.rlim_max < n + 64 ? rl.rlim_max : n + 64;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static void report(struct load *l, const char *lines_file, int64_t cpu1, int64_t stat_cpu1)
{
    size_t ok = 0, bad_status = 0, no_expect = 0, failed = 0, n_lat = 0, n_diff = 0;
    int64_t *lat = calloc(l->n_paths + 1, sizeof(*lat));
    int64_t *diff = calloc(l->n_paths + 1, sizeof(*diff));
    char text[4096];
    long hwm = -1, rss = -1;
    FILE *lf = NULL;

    if (lines_file != NULL) {
        lf = fopen(lines_file, "w");
        if (lf == NULL)
            fprintf(stderr, "exporter_load: %s: %s\n", lines_file, strerror(errno));
    }
    for (size_t i = 0; i < l->n_paths; i++) {
        const struct result *r = &l->results[i];

        if (r->status == 0)
            failed++;
        else if (r->status != 200)
            bad_status++;
        else if (!r->ok)
            no_expect++;
        else
            ok++;
        if (r->status != 0 && lat != NULL)
            lat[n_lat++] = r->latency_ns;
        if (r->ok && r->value_ns >= 0 && diff != NULL)
            diff[n_diff++] = r->latency_ns - r->value_ns;
        if (lf != NULL)
            fprintf(lf, "%zu %d %" PRId64 " %" PRId64 " %d\n", i, r->status, r->latency_ns,
                    r->value_ns, r->ok ? 1 : 0);
    }
    if (lf != NULL)
        fclose(lf);
    if (watch_status(&l->watch, text, sizeof(text))) {
        hwm = status_field(text, "VmHWM");
        rss = status_field(text, "VmRSS");
    }
    printf("load requests=%zu ok=%zu bad_status=%zu no_expect=%zu failed=%zu connect_errors=%zu"
           " connects=%zu concurrency=%zu wall_ns=%" PRId64,
           l->n_paths, ok, bad_status, no_expect, failed, l->connect_errors, l->connects,
           l->n_slots, l->first_send_ns ? l->last_done_ns - l->first_send_ns : -1);
    if (lat != NULL && diff != NULL) {
        int64_t p50 = quantile_i64(lat, n_lat, 0.5), p90 = quantile_i64(lat, n_lat, 0.9);
        int64_t p99 = quantile_i64(lat, n_lat, 0.99), mx = quantile_i64(lat, n_lat, 1.0);

        printf(" lat_min_ns=%" PRId64 " lat_p50_ns=%" PRId64 " lat_p90_ns=%" PRId64
               " lat_p99_ns=%" PRId64 " lat_max_ns=%" PRId64 " value_n=%zu diff_p50_ns=%" PRId64,
               n_lat ? lat[0] : -1, p50, p90, p99, mx, n_diff, quantile_i64(diff, n_diff, 0.5));
    }
    printf(" threads_start=%d threads_max=%d thread_samples=%" PRId64 " vmhwm_kb=%ld vmrss_kb=%ld"
           " cpu_ns=%" PRId64 " stat_cpu_ns=%" PRId64 "\n",
           l->watch.samples ? l->watch.threads_first : -1,
           l->watch.samples ? l->watch.threads_max : -1, l->watch.samples, hwm, rss,
           cpu1 >= 0 && l->cpu0 >= 0 ? cpu1 - l->cpu0 : -1,
           stat_cpu1 >= 0 && l->stat_cpu0 >= 0 ? stat_cpu1 - l->stat_cpu0 : -1);
    free(lat);
    free(diff);
}

int main(int argc, char **argv)
{
    const char *connect_to = NULL, *paths = NULL, *lines = NULL, *body = NULL;
    int64_t concurrency = 0, limit_s = 60, pid = 0, deadline, cpu1 = -1, stat_cpu1 = -1;
    struct load l = {.ep = -1, .watch = {.status_fd = -1}};
    bool barrier_done = false;
    size_t connected = 0;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(argv[i], "--keepalive") == 0) {
            l.keepalive = true;
            continue;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (v == NULL)
            goto bad_usage;
        if (strcmp(argv[i], "--connect") == 0)
            connect_to = v;
        else if (strcmp(argv[i], "--paths") == 0)
            paths = v;
        else if (strcmp(argv[i], "--expect") == 0)
            l.expect = v;
        else if (strcmp(argv[i], "--value") == 0)
            l.value = v;
        else if (strcmp(argv[i], "--lines") == 0)
            lines = v;
        else if (strcmp(argv[i], "--body") == 0)
            body = v;
        else if (strcmp(argv[i], "--concurrency") == 0) {
            if (parse_i64(v, 1, MAX_SLOTS, &concurrency) < 0)
                goto bad_usage;
        } else if (strcmp(argv[i], "--limit") == 0) {
            if (parse_i64(v, 1, 3600, &limit_s) < 0)
                goto bad_usage;
        } else if (strcmp(argv[i], "--watch") == 0) {
            if (parse_i64(v, 1, INT32_MAX, &pid) < 0)
                goto bad_usage;
        } else {
            goto bad_usage;
        }
        i++;
    }
    if (connect_to == NULL || paths == NULL || parse_addr(connect_to, &l) < 0)
        goto bad_usage;
    if ((rc = read_paths(paths, &l)) < 0) {
        fprintf(stderr, "exporter_load: %s: %s\n", paths, strerror(-rc));
        return 1;
    }
    rc = 1;
    l.n_slots = concurrency > 0 ? (size_t)concurrency : l.n_paths;
    if (l.n_slots > l.n_paths)
        l.n_slots = l.n_paths;
    if (l.n_slots > MAX_SLOTS)
        l.n_slots = MAX_SLOTS;
    raise_nofile(l.n_slots);
    l.slots = calloc(l.n_slots, sizeof(*l.slots));
    l.results = calloc(l.n_paths, sizeof(*l.results));
    l.ep = epoll_create1(EPOLL_CLOEXEC);
    if (l.slots == NULL || l.results == NULL || l.ep < 0) {
        fprintf(stderr, "exporter_load: out of memory or descriptors\n");
        goto out;
    }
    if (body != NULL && (l.body_out = fopen(body, "w")) == NULL) {
        fprintf(stderr, "exporter_load: %s: %s\n", body, strerror(errno));
        goto out;
    }
    if (pid > 0) {
        char path[64];

        l.watch.pid = (pid_t)pid;
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        l.watch.status_fd = open(path, O_RDONLY | O_CLOEXEC);
        l.watch.have_clock = clock_getcpuclockid((pid_t)pid, &l.watch.clock) == 0;
        if (l.watch.status_fd < 0)
            fprintf(stderr, "exporter_load: %s: %s\n", path, strerror(errno));
    }

    /* First wave: every slot connects; nothing is sent until all are connected. */
    for (size_t i = 0; i < l.n_slots; i++) {
        struct slot *s = &l.slots[i];

        s->fd = -1;
        s->req = l.next_req++;
        if (slot_connect(&l, s) < 0) {
            fprintf(stderr, "exporter_load: connect: %s\n", strerror(errno));
            l.connect_errors++;
            s->sent_ns = monotonic_ns();
            l.results[s->req].latency_ns = 0;
            l.done++;
            s->state = SLOT_IDLE;
        }
    }
    deadline = monotonic_ns() + limit_s * NS_PER_S;
    while (l.done < l.n_paths) {
        struct epoll_event evs[256];
        int64_t now = monotonic_ns();
        int n;

        if (now >= deadline) {
            fprintf(stderr, "exporter_load: gave up after %" PRId64 " s: %zu of %zu done\n",
                    limit_s, l.done, l.n_paths);
            break;
        }
        if (!barrier_done) {
            connected = 0;
            for (size_t i = 0; i < l.n_slots; i++)
                connected += l.slots[i].state != SLOT_CONNECTING;
            if (connected == l.n_slots) {
                barrier_done = true;
                l.cpu0 = watch_cpu_ns(&l.watch);
                l.stat_cpu0 = watch_stat_cpu_ns(&l.watch);
                watch_sample(&l.watch, now);
                for (size_t i = 0; i < l.n_slots; i++) {
                    struct slot *s = &l.slots[i];

                    if (s->state == SLOT_CONNECTED && slot_send(&l, s, monotonic_ns()) < 0)
                        slot_finish(&l, s, false, monotonic_ns());
                }
                continue;
            }
        }
        n = epoll_wait(l.ep, evs, 256, barrier_done && l.watch.pid > 0 ? 1 : 10);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "exporter_load: epoll_wait: %s\n", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++)
            slot_event(&l, evs[i].data.ptr, evs[i].events, barrier_done);
        if (barrier_done)
            watch_sample(&l.watch, monotonic_ns());
    }
    cpu1 = watch_cpu_ns(&l.watch);
    stat_cpu1 = watch_stat_cpu_ns(&l.watch);
    if (l.first_send_ns == 0)
        l.cpu0 = l.stat_cpu0 = -1;
    report(&l, lines, cpu1, stat_cpu1);
    rc = 0;
    for (size_t i = 0; i < l.n_paths; i++)
        rc |= !l.results[i].ok;
out:
    for (size_t i = 0; l.slots != NULL && i < l.n_slots; i++) {
        slot_close(&l.slots[i]);
        free(l.slots[i].in.data);
        free(l.slots[i].body.data);
    }
    for (size_t i = 0; i < l.n_paths; i++)
        free(l.paths[i]);
    free(l.paths);
    free(l.slots);
    free(l.results);
    if (l.body_out != NULL)
        fclose(l.body_out);
    if (l.watch.status_fd >= 0)
        close(l.watch.status_fd);
    if (l.ep >= 0)
        close(l.ep);
    return rc;
bad_usage:
    usage(stderr);
    return 2;
}
