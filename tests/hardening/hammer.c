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
 * the blackhole; '#' lines are comments); slots take the lines round-robin, so the mix
 * follows the file. Every response is read whole by the test tools' HTTP client
 * (tests/lib/http_client.h: Content-Length, chunked, or until the server closes) and judged:
 *
 *   - failed: no status line at all (connection refused, reset or closed before answering,
 *     or still unanswered at the end of the grace period); the slot waits 10 ms before its
 *     next request;
 *   - truncated: a status line, then the connection ended (closed or reset) before the body
 *     did (a chunked body without its last chunk, fewer bytes than Content-Length), or the
 *     body was malformed or too large;
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
#include "tests/lib/http_client.h"
#include "tests/lib/tool.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define NS_PER_MS    TOOL_NS_PER_MS
#define NS_PER_S     TOOL_NS_PER_S
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

/* ---------------------------------------------------------------------------------------
 * Per-class figures.
 */

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

/* The q-quantile (lower value) in ms, values sorted already; -1 when there is none. */
static double quantile_ms(const struct lat *l, double q)
{
    int64_t v = tool_quantile_i64(l->v, l->n, q);

    return v < 0 ? -1 : (double)v / 1e6;
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

struct slot {
    struct hc_conn conn;
    size_t path; /* index of its current request */
    int64_t sent_ns;
    int64_t restart_ns; /* idle after a failure: start again then (0: not waiting) */
};

struct hammer {
    struct sockaddr_in addr;
    const char *host;
    char **lines;       /* the paths file's lines, cut in two: CLASS\0PATH */
    const char **paths; /* into lines */
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
    bool is_probe = strncmp(path, "/probe", 6) == 0;
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
    if (!hc_sample_value(body, len, "probe_success", &v) || (v != 0 && v != 1))
        return false;
    if (v == 1)
        c->success1++;
    else
        c->success0++;
    if (hc_sample_value(body, len, "probe_icmp_echoes_sent", &v) && v >= 0)
        c->echoes_sent += (uint64_t)v;
    if (hc_sample_value(body, len, "probe_icmp_echoes_received", &v) && v >= 0)
        c->echoes_received += (uint64_t)v;
    return true;
}

static void slot_start(struct hammer *h, struct slot *s);

/* Records the slot's request (out: HC_DONE, HC_FAILED or HC_TRUNCATED) and starts its next
 * one (or idles it when stopping). */
static void slot_finish(struct hammer *h, struct slot *s, enum hc_result out)
{
    struct class *c = &h->classes[h->path_class[s->path]];
    struct class *all = &h->classes[MAX_CLASSES];
    int64_t lat = tool_now_ns() - s->sent_ns;
    int status = hc_response_status(&s->conn.resp);
    size_t len;
    bool retry_after = hc_response_header(&s->conn.resp, "Retry-After", &len) != NULL;
    bool reuse = out == HC_DONE && !h->close_each && hc_conn_reusable(&s->conn);

    for (struct class *k = c;; k = all) {
        k->requests++;
        if (out == HC_FAILED) {
            k->failed++;
        } else if (out == HC_TRUNCATED) {
            k->truncated++;
        } else if (status == 200) {
            k->s200++;
        } else if (status == 503) {
            k->s503++;
            k->s503_no_retry += !retry_after;
        } else {
            if (k->other++ == 0)
                k->other_first = status;
        }
        if (out != HC_FAILED)
            lat_add(&k->lat, lat);
        if (k == all)
            break;
    }
    if (out == HC_DONE && status == 200) {
        const char *body = hc_response_body(&s->conn.resp, &len);

        if (!judge_200(h, c, h->paths[s->path], body, len)) {
            c->malformed++;
            all->malformed++;
        }
    }
    h->busy--;
    if (!reuse)
        hc_conn_close(&s->conn);
    if (h->stopping)
        return;
    /* After a failure (the server is gone, or refuses), wait a little: no busy loop, and
     * no recursion when connecting fails at once. */
    if (out == HC_FAILED)
        s->restart_ns = tool_now_ns() + RETRY_NS;
    else
        slot_start(h, s);
}

/* Starts the next request of the paths on slot s (connecting first if needed). */
static void slot_start(struct hammer *h, struct slot *s)
{
    struct hc_request rq = {.host = h->host,
                            .user_agent = "hammer",
                            .headers = h->headers,
                            .n_headers = h->n_headers,
                            .close = h->close_each};

    s->path = h->next_path++ % h->n_paths;
    rq.path = h->paths[s->path];
    s->sent_ns = tool_now_ns();
    h->busy++;
    if (hc_conn_request(&s->conn, &rq) < 0) {
        slot_finish(h, s, HC_FAILED);
        return;
    }
    if (s->conn.fd < 0) {
        if (hc_conn_open(&s->conn, &h->addr) < 0)
            slot_finish(h, s, HC_FAILED);
        return;
    }
    if (hc_conn_write(&s->conn) < 0)
        slot_finish(h, s, HC_FAILED);
}

static void slot_event(struct hammer *h, struct slot *s, uint32_t events)
{
    switch (hc_conn_event(&s->conn, events)) {
    case HC_MORE:
        return;
    case HC_CONNECTED:
        if (hc_conn_write(&s->conn) < 0)
            slot_finish(h, s, HC_FAILED);
        return;
    case HC_CONNECT_FAILED:
    case HC_FAILED:
        slot_finish(h, s, HC_FAILED);
        return;
    case HC_DONE:
        slot_finish(h, s, HC_DONE);
        return;
    case HC_TRUNCATED:
        slot_finish(h, s, HC_TRUNCATED);
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

/* Reads the "CLASS PATH" lines of file. Returns 0 or -errno (-EINVAL: a malformed line, too
 * many classes). */
static int read_paths(const char *file, struct hammer *h)
{
    int rc = tool_read_lines(file, MAX_PATHS, &h->lines, &h->n_paths);

    if (rc < 0)
        return rc;
    h->paths = calloc(h->n_paths, sizeof(*h->paths));
    h->path_class = calloc(h->n_paths, sizeof(*h->path_class));
    if (h->paths == NULL || h->path_class == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < h->n_paths; i++) {
        char *line = h->lines[i], *sp = strchr(line, ' ');

        if (sp == NULL || (size_t)(sp - line) >= CLASS_LEN)
            return -EINVAL;
        *sp = '\0';
        h->paths[i] = sp + 1 + strspn(sp + 1, " ");
        h->path_class[i] = class_index(h, line);
        if (h->paths[i][0] != '/' || h->path_class[i] == SIZE_MAX)
            return -EINVAL;
    }
    return 0;
}

static void report_class(struct class *c, double wall_s)
{
    tool_sort_i64(c->lat.v, c->lat.n);
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

int main(int argc, char **argv)
{
    const char *connect_to = NULL, *paths = NULL, *save_all[8];
    size_t n_save_all = 0;
    int64_t concurrency = 8, duration_s = 10, grace_s = 10, save_every = 50;
    struct hammer h = {.ep = -1};
    int64_t t0, stop_at, give_up_at, t_end;
    struct class *all = &h.classes[MAX_CLASSES];
    const struct tool_opt opts[] = {
        TOOL_TEXT("--connect", &connect_to),
        TOOL_TEXT("--paths", &paths),
        TOOL_INT("--concurrency", &concurrency, 1, MAX_SLOTS),
        TOOL_INT("--duration", &duration_s, 1, 86400),
        TOOL_INT("--grace", &grace_s, 1, 3600),
        TOOL_LIST("--header", h.headers, &h.n_headers),
        TOOL_FLAG("--close", &h.close_each),
        TOOL_TEXT("--save-dir", &h.save_dir),
        TOOL_INT("--save-every", &save_every, 1, INT32_MAX),
        TOOL_LIST("--save-all", save_all, &n_save_all),
    };
    int rc;

    rc = tool_parse_args(argc, argv, opts, sizeof(opts) / sizeof(opts[0]));
    if (rc == 1) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; rc == 0 && i < h.n_headers; i++)
        rc = strpbrk(h.headers[i], "\r\n") != NULL ? -EINVAL : 0;
    if (rc < 0 || connect_to == NULL || paths == NULL || hc_parse_addr(connect_to, &h.addr) < 0)
        goto bad_usage;
    h.host = connect_to;
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
    tool_raise_nofile(h.n_slots);
    h.ep = epoll_create1(EPOLL_CLOEXEC);
    h.slots = calloc(h.n_slots, sizeof(*h.slots));
    if (h.slots == NULL || h.ep < 0) {
        fprintf(stderr, "hammer: out of memory or descriptors\n");
        return 1;
    }
    for (size_t i = 0; i < h.n_slots; i++)
        hc_conn_init(&h.slots[i].conn, h.ep, &h.slots[i], MAX_RESPONSE);
    t0 = tool_now_ns();
    stop_at = t0 + duration_s * NS_PER_S;
    give_up_at = stop_at + grace_s * NS_PER_S;
    for (size_t i = 0; i < h.n_slots; i++)
        slot_start(&h, &h.slots[i]);
    for (;;) {
        struct epoll_event evs[256];
        int64_t now = tool_now_ns();
        int n;

        if (now >= stop_at)
            h.stopping = true;
        if (h.stopping && h.busy == 0)
            break;
        if (now >= give_up_at) {
            fprintf(stderr, "hammer: %zu requests still unanswered %" PRId64 " s after the end\n",
                    h.busy, grace_s);
            for (size_t i = 0; i < h.n_slots; i++) {
                if (h.slots[i].conn.state != HC_STATE_IDLE)
                    slot_finish(&h, &h.slots[i], HC_FAILED);
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
        now = tool_now_ns();
        for (size_t i = 0; i < h.n_slots && !h.stopping; i++) {
            struct slot *s = &h.slots[i];

            if (s->conn.state == HC_STATE_IDLE && s->restart_ns != 0 && s->restart_ns <= now) {
                s->restart_ns = 0;
                slot_start(&h, s);
            }
        }
    }
    t_end = tool_now_ns();
    for (size_t i = 0; i < h.n_classes; i++)
        report_class(&h.classes[i], (double)(t_end - t0) / 1e9);
    report_class(all, (double)(t_end - t0) / 1e9);
    rc = all->failed == 0 && all->truncated == 0 && all->malformed == 0 && all->other == 0 &&
                 all->s503_no_retry == 0
             ? 0
             : 1;
    for (size_t i = 0; i < h.n_slots; i++)
        hc_conn_cleanup(&h.slots[i].conn);
    for (size_t i = 0; i <= MAX_CLASSES; i++)
        free(h.classes[i].lat.v);
    tool_free_lines(h.lines, h.n_paths);
    free(h.paths);
    free(h.path_class);
    free(h.slots);
    close(h.ep);
    return rc;
bad_usage:
    usage(stderr);
    return 2;
}
