/*
 * The engine and the IcmpSendEcho contract against the test lab (tests/netlab/README.md), in
 * one socket mode per executable: raw sockets (core_lab_raw) or ping sockets (core_lab_dgram,
 * built with TEST_LAB_DGRAM), each inside a lab of its own, so the two run side by side.
 *
 * Every address comes from the lab's NETLAB_* variables and must lie inside the lab's ranges
 * (198.18.0.0/15, 2001:db8::/32): nothing here can reach another network. The responder's log
 * is the ground truth: RTTs are compared with the responder's hold time of the same echo, and
 * loss with what it dropped. Ping sockets rewrite the identifier, so an echo's log line is
 * found by destination and sequence: the newest such line whose request arrived after our send
 * stamp. Scenarios run one after another on one engine per family (so counters can be compared
 * before and after), and the slow "late" case runs for both families at once at the end.
 */
#include "core/icmp.h"
#include "engine_util.h"
#include "test.h"

#include <netinet/in.h>
#include <stdlib.h>

#ifdef TEST_LAB_DGRAM
#define LAB_MODE ICMP_MODE_DGRAM
/* Ping sockets for every group: the test runs in the lab's own client namespace. */
#define LAB_PING_GROUPS "0 2147483647"
#else
#define LAB_MODE        ICMP_MODE_RAW
/* No ping sockets, so icmp_open() falls back to raw too. */
#define LAB_PING_GROUPS "1 0"
#endif

struct unreach {
    struct icmp_addr addr;
    enum icmp_status status;
    const char *name;
};

struct fam {
    int family;
    char tag[16]; /* "v4 raw" */
    struct icmp_addr fast, delay, loss, dup, corrupt, wrongid, late, ttl, router, far, blackhole;
    struct icmp_addr short_err, forge_short, ttl0;
    struct icmp_addr delay_link; /* the delay host's own address: the source of its errors */
    struct icmp_addr anyip;      /* the prefix */
    unsigned int anyip_len;      /* its length */
    struct unreach unreach[4];
};

static int delay_ms, reply_ttl, dup_copies;
static const char *log_path;

/* ---------------------------------------------------------------------------------------
 * The lab's variables.
 */

static bool in_lab_ranges(const struct icmp_addr *a)
{
    static const uint8_t doc6[4] = {0x20, 0x01, 0x0d, 0xb8};

    if (a->family == AF_INET)
        return a->bytes[0] == 198 && (a->bytes[1] & 0xfe) == 18;
    return a->family == AF_INET6 && memcmp(a->bytes, doc6, 4) == 0;
}

static const char *lab_env(const char *name)
{
    char full[96];

    snprintf(full, sizeof(full), "NETLAB_%s", name);
    const char *v = getenv(full);
    if (v == NULL || *v == '\0')
        TEST_FAIL_AT("NETLAB_%s is not set", name);
    REQUIRE(v != NULL && *v != '\0');
    return v;
}

static struct icmp_addr lab_addr(const char *name)
{
    struct icmp_addr a;
    const char *text = lab_env(name);

    if (!tu_addr_from_text(text, &a) || !in_lab_ranges(&a))
        TEST_FAIL_AT("NETLAB_%s=%s is not a lab address", name, text);
    REQUIRE(in_lab_ranges(&a));
    return a;
}

static int lab_int(const char *name)
{
    const char *text = lab_env(name);
    char *end;
    long v = strtol(text, &end, 10);

    REQUIRE(*end == '\0' && v >= 0 && v < 1000000);
    return (int)v;
}

/* A prefix "address/length" of the lab. */
static void lab_prefix(const char *name, struct icmp_addr *a, unsigned int *len)
{
    char buf[64];
    const char *text = lab_env(name);
    const char *slash = strchr(text, '/');

    REQUIRE(slash != NULL && (size_t)(slash - text) < sizeof(buf));
    memcpy(buf, text, (size_t)(slash - text));
    buf[slash - text] = '\0';
    REQUIRE(tu_addr_from_text(buf, a) && in_lab_ranges(a));
    char *end;
    long v = strtol(slash + 1, &end, 10);
    REQUIRE(*end == '\0' && v > 0 && v <= (a->family == AF_INET ? 20 : 112));
    *len = (unsigned int)v;
}

/* Host number k of the anyip prefix (k below 4096, well inside a /20 or shorter). */
static struct icmp_addr anyip_host(const struct fam *f, unsigned int k)
{
    struct icmp_addr a = f->anyip;
    size_t last = f->family == AF_INET ? 3 : 15;
    unsigned int carry = k;

    for (size_t i = last + 1; i-- > 0 && carry;) {
        unsigned int v = a.bytes[i] + (carry & 0xff);
        a.bytes[i] = (uint8_t)v;
        carry = (carry >> 8) + (v >> 8);
    }
    REQUIRE(in_lab_ranges(&a));
    return a;
}

static void load_family(struct fam *f, int family)
{
    const char *v = family == AF_INET ? "V4_" : "V6_";
    char name[64];

#define ADDR(field, var)                                                                           \
    do {                                                                                           \
        snprintf(name, sizeof(name), "%s%s", v, var);                                              \
        f->field = lab_addr(name);                                                                 \
    } while (0)

    memset(f, 0, sizeof(*f));
    f->family = family;
    snprintf(f->tag, sizeof(f->tag), "v%d %s", family == AF_INET ? 4 : 6,
             icmp_socket_mode_name(LAB_MODE));
    ADDR(fast, "FAST");
    ADDR(delay, "DELAY");
    ADDR(loss, "LOSS");
    ADDR(dup, "DUP");
    ADDR(corrupt, "CORRUPT");
    ADDR(wrongid, "WRONGID");
    ADDR(late, "LATE");
    ADDR(ttl, "TTL");
    ADDR(router, "ROUTER");
    ADDR(far, "FAR");
    ADDR(blackhole, "BLACKHOLE");
    ADDR(short_err, "SHORT_ERR");
    ADDR(forge_short, "FORGE_SHORT");
    ADDR(ttl0, "TTL0");
    ADDR(delay_link, "DELAY_LINK");
#undef ADDR
    snprintf(name, sizeof(name), "%sANYIP_NET", v);
    lab_prefix(name, &f->anyip, &f->anyip_len);

    if (family == AF_INET) {
        /* Code 13 (communication administratively prohibited) is a host status, 11003. */
        f->unreach[0] = (struct unreach){lab_addr("V4_UNREACH_HOST"),
                                         ICMP_STATUS_DEST_HOST_UNREACHABLE, "V4_UNREACH_HOST"};
        f->unreach[1] = (struct unreach){lab_addr("V4_PROHIBITED"),
                                         ICMP_STATUS_DEST_HOST_UNREACHABLE, "V4_PROHIBITED"};
        f->unreach[2] = (struct unreach){lab_addr("V4_UNREACH_NET"),
                                         ICMP_STATUS_DEST_NET_UNREACHABLE, "V4_UNREACH_NET"};
        f->unreach[3] = (struct unreach){lab_addr("V4_UNREACH_ARP"),
                                         ICMP_STATUS_DEST_HOST_UNREACHABLE, "V4_UNREACH_ARP"};
    } else {
        /* v6: no route is 11002, administratively prohibited 11004, address unreachable
         * 11003. */
        f->unreach[0] = (struct unreach){lab_addr("V6_UNREACH_ROUTE"),
                                         ICMP_STATUS_DEST_NET_UNREACHABLE, "V6_UNREACH_ROUTE"};
        f->unreach[1] = (struct unreach){lab_addr("V6_PROHIBITED"),
                                         ICMP_STATUS_DEST_PROT_UNREACHABLE, "V6_PROHIBITED"};
        f->unreach[2] = (struct unreach){lab_addr("V6_NO_ROUTE"), ICMP_STATUS_DEST_NET_UNREACHABLE,
                                         "V6_NO_ROUTE"};
        f->unreach[3] = (struct unreach){lab_addr("V6_UNREACH_ND"),
                                         ICMP_STATUS_DEST_HOST_UNREACHABLE, "V6_UNREACH_ND"};
    }
}

/* ---------------------------------------------------------------------------------------
 * The responder's log.
 */

struct log_ev {
    char ev[8];
    char dst[48];
    unsigned int seq;
    unsigned int ttl;
    int64_t t;
    int64_t hold_ns;
    int64_t rx_ns; /* the request's receive stamp (CLOCK_REALTIME) */
    int quote;     /* ev=error: echo data bytes the error quoted; else -1 */
};

struct log {
    struct log_ev *ev;
    size_t n;
};

static void log_free(struct log *log)
{
    free(log->ev);
    log->ev = NULL;
    log->n = 0;
}

/* Reads every reply/dup/drop line of the log. */
static void log_read(struct log *log)
{
    FILE *f = fopen(log_path, "r");
    char line[1024];
    size_t cap = 0;

    log_free(log);
    if (f == NULL) {
        TEST_FAIL_AT("cannot open the responder's log %s", log_path);
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        struct log_ev e;
        bool have_dst = false, have_seq = false, have_t = false;

        memset(&e, 0, sizeof(e));
        e.quote = -1;
        for (char *tok = line; tok != NULL && *tok != '\0';) {
            char *next = strchr(tok, ' ');
            if (next != NULL)
                *next++ = '\0';
            tok[strcspn(tok, "\n")] = '\0';
            char *eq = strchr(tok, '=');
            if (eq != NULL) {
                *eq = '\0';
                const char *val = eq + 1;
                if (strcmp(tok, "ev") == 0)
                    snprintf(e.ev, sizeof(e.ev), "%s", val);
                else if (strcmp(tok, "dst") == 0)
                    have_dst = snprintf(e.dst, sizeof(e.dst), "%s", val) > 0;
                else if (strcmp(tok, "seq") == 0)
                    e.seq = (unsigned int)strtoul(val, NULL, 10), have_seq = true;
                else if (strcmp(tok, "ttl") == 0)
                    e.ttl = (unsigned int)strtoul(val, NULL, 10);
                else if (strcmp(tok, "t") == 0)
                    e.t = strtoll(val, NULL, 10), have_t = true;
                else if (strcmp(tok, "hold_ns") == 0)
                    e.hold_ns = strtoll(val, NULL, 10);
                else if (strcmp(tok, "quote") == 0)
                    e.quote = (int)strtol(val, NULL, 10);
            }
            tok = next;
        }
        if (!have_dst || !have_seq || !have_t ||
            (strcmp(e.ev, "reply") != 0 && strcmp(e.ev, "dup") != 0 && strcmp(e.ev, "drop") != 0 &&
             strcmp(e.ev, "error") != 0))
            continue;
        e.rx_ns = strcmp(e.ev, "drop") == 0 ? e.t : e.t - e.hold_ns;
        if (log->n == cap) {
            cap = cap ? cap * 2 : 1024;
            struct log_ev *grown = realloc(log->ev, cap * sizeof(*grown));
            REQUIRE(grown != NULL);
            log->ev = grown;
        }
        log->ev[log->n++] = e;
    }
    fclose(f);
}

/* The newest reply, error or drop line for (dst, seq), if its request arrived after sent_ns (less a
 * millisecond of slack): older lines belong to earlier echoes with the same sequence. */
static const struct log_ev *log_find(const struct log *log, const char *dst, unsigned int seq,
                                     int64_t sent_ns)
{
    for (size_t i = log->n; i-- > 0;) {
        const struct log_ev *e = &log->ev[i];
        if (e->seq != seq || strcmp(e->dst, dst) != 0 || strcmp(e->ev, "dup") == 0)
            continue;
        return e->rx_ns >= sent_ns - TU_MS ? e : NULL;
    }
    return NULL;
}

/* Finds the log line of every sent echo of a job (out[i], NULL when none); the responder
 * writes a line just after its send, so a missing one is waited for (up to 1 s). Returns how
 * many echoes have one. */
static uint32_t log_match(const struct tu_job *t, struct log *log, const struct log_ev **out)
{
    char dst[64];
    uint32_t found = 0;

    tu_fmt(&t->job.dst, dst, sizeof(dst));
    for (int attempt = 0; attempt < 20; attempt++) {
        uint32_t want = 0;
        found = 0;
        log_read(log);
        for (uint32_t i = 0; i < t->job.count; i++) {
            out[i] = NULL;
            if (!t->results[i].sent)
                continue;
            want++;
            out[i] = log_find(log, dst, t->results[i].seq, t->results[i].sent_ns);
            if (out[i] != NULL)
                found++;
        }
        if (found == want)
            break;
        tu_sleep_ns(50 * TU_MS);
    }
    return found;
}

static int64_t abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

/* The one reply the responder logged to dst after the log's first `mark` events (a call of
 * the sync API, which reports no sequence number), waited for up to 1 s; NULL when there
 * is none, or more than one. */
static const struct log_ev *log_only_reply_since(struct log *log, size_t mark,
                                                 const struct icmp_addr *dst)
{
    char d[64];
    const struct log_ev *found = NULL;

    tu_fmt(dst, d, sizeof(d));
    for (int attempt = 0; attempt < 20 && found == NULL; attempt++) {
        if (attempt > 0)
            tu_sleep_ns(50 * TU_MS);
        log_read(log);
        for (size_t i = mark; i < log->n; i++) {
            const struct log_ev *e = &log->ev[i];
            if (strcmp(e->ev, "reply") != 0 || strcmp(e->dst, d) != 0)
                continue;
            if (found != NULL)
                return NULL;
            found = e;
        }
    }
    return found;
}

/* ---------------------------------------------------------------------------------------
 * Scenarios: each on the engine of one family, in that family's mode.
 */

static void check_all(const struct tu_job *t, enum icmp_status status, const struct icmp_addr *from,
                      const char *what)
{
    char a[64], b[64];

    for (uint32_t i = 0; i < t->job.count; i++) {
        const struct icmp_echo_result *r = &t->results[i];
        if (r->status != status)
            TEST_FAIL_AT("%s: echo %u (seq %u): status %s, want %s", what, i, r->seq,
                         icmp_status_name(r->status) ? icmp_status_name(r->status) : "?",
                         icmp_status_name(status));
        else if (from != NULL && !tu_same_addr(&r->from, from))
            TEST_FAIL_AT("%s: echo %u: from %s, want %s", what, i, tu_fmt(&r->from, a, sizeof(a)),
                         tu_fmt(from, b, sizeof(b)));
    }
}

/* Runs one job and checks the things every scenario wants: completion, consistency. */
static struct tu_job *run_job(struct icmp_engine *e, const struct icmp_addr *dst, uint32_t count,
                              int64_t interval_ns, int64_t timeout_ns, int64_t wait_ns,
                              const char *what)
{
    struct tu_job *t = tu_job_new(dst, count, interval_ns, timeout_ns, 56);

    if (!tu_run(e, t, wait_ns, what)) {
        tu_job_free(t);
        return NULL;
    }
    tu_check_consistent(t, what);
    if (t->job.error != 0)
        TEST_FAIL_AT("%s: job error %d", what, t->job.error);
    return t;
}

/* Resolves the neighbours of the responder's and the router's links first, so that no
 * measured echo waits for ARP or neighbour discovery after its send stamp. */
static void warm_up(struct icmp_engine *e, const struct fam *f)
{
    char what[64];

    snprintf(what, sizeof(what), "%s warm-up", f->tag);
    struct tu_job *t = run_job(e, &f->fast, 1, 0, 1000 * TU_MS, 2000 * TU_MS, what);
    if (t != NULL)
        check_all(t, ICMP_STATUS_SUCCESS, &f->fast, what);
    tu_job_free(t);
    t = run_job(e, &f->router, 1, 0, 1000 * TU_MS, 2000 * TU_MS, what);
    if (t != NULL)
        check_all(t, ICMP_STATUS_SUCCESS, &f->router, what);
    tu_job_free(t);
}

/* The delay host; returns how many of its 20 RTTs start at the kernel's transmit stamp. */
static int sc_delay(struct icmp_engine *e, const struct fam *f)
{
    int tx_stamped = 0;
    char what[64];
    struct log log = {NULL, 0};
    const struct log_ev *ev[20];

    snprintf(what, sizeof(what), "%s delay host", f->tag);
    struct tu_job *t = run_job(e, &f->delay, 20, 50 * TU_MS, 1000 * TU_MS, 5000 * TU_MS, what);
    if (t == NULL)
        return 0;
    CHECK_EQ(t->job.sent, 20);
    CHECK_EQ(t->job.received, 20);
    check_all(t, ICMP_STATUS_SUCCESS, &f->delay, what);
    uint32_t found = log_match(t, &log, ev);
    if (found != 20)
        TEST_FAIL_AT("%s: %u of 20 echoes in the responder's log", what, found);

    int64_t sum_err = 0, max_err = 0, sum_rtt = 0, sum_oneway = 0, max_oneway = INT64_MIN;
    uint32_t n = 0;
    for (uint32_t i = 0; i < 20; i++) {
        const struct icmp_echo_result *r = &t->results[i];
        if (ev[i] == NULL || r->status != ICMP_STATUS_SUCCESS)
            continue;
        int64_t err = r->rtt_ns - ev[i]->hold_ns;
        tx_stamped += r->tx_stamped;
        int64_t oneway = ev[i]->rx_ns - r->sent_ns;
        n++;
        sum_err += abs64(err);
        max_err = abs64(err) > max_err ? abs64(err) : max_err;
        sum_rtt += r->rtt_ns;
        sum_oneway += oneway;
        if (strcmp(ev[i]->ev, "reply") != 0)
            TEST_FAIL_AT("%s: echo %u answered, but the responder logged ev=%s", what, i,
                         ev[i]->ev);
        if (abs64(err) > 200000)
            TEST_FAIL_AT("%s: echo %u (seq %u): rtt %.3f ms, responder hold %.3f ms: off by "
                         "%.3f ms (> 0.2); sent_ns to responder rx %.3f ms",
                         what, i, r->seq, (double)r->rtt_ns / 1e6, (double)ev[i]->hold_ns / 1e6,
                         (double)err / 1e6, (double)oneway / 1e6);
        /* About the configured delay, unless the responder itself held the reply longer (a
         * busy machine): then the hold above is the truth the RTT was compared with. */
        if (abs64(ev[i]->hold_ns - delay_ms * TU_MS) > TU_MS / 2)
            fprintf(stderr, "%s: echo %u: the responder held it %.3f ms (late itself)\n", what, i,
                    (double)ev[i]->hold_ns / 1e6);
        else if (abs64(r->rtt_ns - delay_ms * TU_MS) > TU_MS)
            TEST_FAIL_AT("%s: echo %u: rtt %.3f ms, want %d +- 1 ms", what, i,
                         (double)r->rtt_ns / 1e6, delay_ms);
        if (r->ttl != (int)ev[i]->ttl)
            TEST_FAIL_AT("%s: echo %u: ttl %d, the responder sent %u", what, i, r->ttl, ev[i]->ttl);
        /* sent_ns is CLOCK_REALTIME and taken before the send: the responder's receive stamp
         * of the request is later (less the slack of two clock reads). How much later is
         * not the engine's to promise: a thread preempted between the stamp and sendmsg()
         * makes it milliseconds on a busy machine while the RTT above, from kernel stamps,
         * stays right. The mean and the largest are printed below. */
        if (oneway < -200000)
            TEST_FAIL_AT("%s: echo %u: the responder got it %.3f ms before sent_ns", what, i,
                         (double)-oneway / 1e6);
        max_oneway = oneway > max_oneway ? oneway : max_oneway;
    }
    if (n > 0)
        fprintf(stderr,
                "%s: %u echoes: rtt - responder hold: mean |error| %.1f us, max %.1f us; mean "
                "rtt %.3f ms; sent_ns -> responder rx: mean %.1f us, max %.1f us\n",
                what, n, (double)sum_err / n / 1e3, (double)max_err / 1e3,
                (double)sum_rtt / n / 1e6, (double)sum_oneway / n / 1e3, (double)max_oneway / 1e3);
    log_free(&log);
    tu_job_free(t);
    return tx_stamped;
}

static void sc_loss(struct icmp_engine *e, const struct fam *f)
{
    char what[64];
    struct log log = {NULL, 0};
    const struct log_ev *ev[100];

    snprintf(what, sizeof(what), "%s loss host", f->tag);
    struct tu_job *t = run_job(e, &f->loss, 100, 10 * TU_MS, 500 * TU_MS, 10000 * TU_MS, what);
    if (t == NULL)
        return;
    CHECK_EQ(t->job.sent, 100);
    CHECK_EQ(t->job.errors, 0);
    uint32_t found = log_match(t, &log, ev);
    if (found != 100)
        TEST_FAIL_AT("%s: %u of 100 echoes in the responder's log", what, found);
    uint32_t replied = 0, dropped = 0;
    for (uint32_t i = 0; i < 100; i++) {
        const struct icmp_echo_result *r = &t->results[i];
        if (ev[i] == NULL)
            continue;
        bool drop = strcmp(ev[i]->ev, "drop") == 0;
        if (drop)
            dropped++;
        else
            replied++;
        enum icmp_status want = drop ? ICMP_STATUS_TIMED_OUT : ICMP_STATUS_SUCCESS;
        if (r->status != want)
            TEST_FAIL_AT("%s: echo %u (seq %u): status %s, but the responder logged ev=%s", what, i,
                         r->seq, icmp_status_name(r->status), ev[i]->ev);
    }
    if (t->job.received != replied || t->job.sent - t->job.received != dropped)
        TEST_FAIL_AT("%s: received %u lost %u; the responder replied %u dropped %u", what,
                     t->job.received, t->job.sent - t->job.received, replied, dropped);
    fprintf(stderr, "%s: lost %u of 100, responder dropped %u\n", what,
            t->job.sent - t->job.received, dropped);
    log_free(&log);
    tu_job_free(t);
}

static void sc_dup(struct icmp_engine *e, const struct fam *f)
{
    char what[64];
    struct icmp_engine_stats before, after;

    snprintf(what, sizeof(what), "%s dup host", f->tag);
    tu_stats(e, &before);
    struct tu_job *t = run_job(e, &f->dup, 5, 100 * TU_MS, 1000 * TU_MS, 5000 * TU_MS, what);
    if (t == NULL)
        return;
    CHECK_EQ(t->job.received, 5);
    check_all(t, ICMP_STATUS_SUCCESS, &f->dup, what);
    /* The copies of the last reply may come after the job completed. */
    if (t->job.duplicates < 4u * (uint32_t)dup_copies)
        TEST_FAIL_AT("%s: job duplicates %u, want >= %d", what, t->job.duplicates, 4 * dup_copies);
    for (uint32_t i = 0; i < 5; i++) {
        if (t->results[i].duplicates > dup_copies)
            TEST_FAIL_AT("%s: echo %u counts %u duplicates, the responder sends %d", what, i,
                         t->results[i].duplicates, dup_copies);
    }
    uint64_t want = 5u * (uint64_t)dup_copies;
    for (int i = 0; i < 100; i++) {
        tu_stats(e, &after);
        if (after.duplicates - before.duplicates >= want)
            break;
        tu_sleep_ns(10 * TU_MS);
    }
    tu_sleep_ns(100 * TU_MS);
    tu_stats(e, &after);
    if (after.duplicates - before.duplicates != want)
        TEST_FAIL_AT("%s: engine counted %" PRIu64 " duplicates, want %" PRIu64, what,
                     after.duplicates - before.duplicates, want);
    CHECK_EQ(after.replies[ICMP_STATUS_SUCCESS] - before.replies[ICMP_STATUS_SUCCESS], 5);
    tu_job_free(t);
}

static void sc_corrupt(struct icmp_engine *e, const struct fam *f)
{
    char what[64];
    struct icmp_engine_stats before, after;

    snprintf(what, sizeof(what), "%s corrupt host", f->tag);
    tu_stats(e, &before);
    struct tu_job *t = run_job(e, &f->corrupt, 3, 20 * TU_MS, 300 * TU_MS, 3000 * TU_MS, what);
    if (t == NULL)
        return;
    CHECK_EQ(t->job.sent, 3);
    CHECK_EQ(t->job.received, 0);
    check_all(t, ICMP_STATUS_TIMED_OUT, NULL, what);
    if (t->job.corrupt < 1)
        TEST_FAIL_AT("%s: job corrupt %u, want >= 1", what, t->job.corrupt);
    tu_settled_stats(e, &before, 3, &after);
    if (after.corrupt - before.corrupt < 1)
        TEST_FAIL_AT("%s: engine corrupt counter moved by %" PRIu64, what,
                     after.corrupt - before.corrupt);
    CHECK_EQ(after.replies[ICMP_STATUS_SUCCESS] - before.replies[ICMP_STATUS_SUCCESS], 0);
    fprintf(stderr, "%s: job corrupt %u, engine corrupt +%" PRIu64 "\n", what, t->job.corrupt,
            after.corrupt - before.corrupt);
    tu_job_free(t);
}

static void sc_wrongid(struct icmp_engine *e, const struct fam *f)
{
    char what[64];
    struct log log = {NULL, 0};
    const struct log_ev *ev[3];

    snprintf(what, sizeof(what), "%s wrongid host", f->tag);
    struct tu_job *t = run_job(e, &f->wrongid, 3, 20 * TU_MS, 300 * TU_MS, 3000 * TU_MS, what);
    if (t == NULL)
        return;
    CHECK_EQ(t->job.sent, 3);
    CHECK_EQ(t->job.received, 0);
    check_all(t, ICMP_STATUS_TIMED_OUT, NULL, what);
    /* The responder did answer: the replies were there to be refused. */
    uint32_t found = log_match(t, &log, ev);
    uint32_t replies = 0;
    for (uint32_t i = 0; i < 3; i++)
        replies += ev[i] != NULL && strcmp(ev[i]->ev, "reply") == 0;
    if (found != 3 || replies != 3)
        TEST_FAIL_AT("%s: the responder logged %u replies to our 3 echoes", what, replies);
    log_free(&log);
    tu_job_free(t);
}

static void sc_ttl(struct icmp_engine *e, const struct fam *f)
{
    char what[64];

    snprintf(what, sizeof(what), "%s ttl host", f->tag);
    struct tu_job *t = run_job(e, &f->ttl, 2, 10 * TU_MS, 1000 * TU_MS, 3000 * TU_MS, what);
    if (t == NULL)
        return;
    check_all(t, ICMP_STATUS_SUCCESS, &f->ttl, what);
    for (uint32_t i = 0; i < 2; i++) {
        if (t->results[i].ttl != reply_ttl)
            TEST_FAIL_AT("%s: echo %u: ttl %d, want %d", what, i, t->results[i].ttl, reply_ttl);
    }
    tu_job_free(t);
}

static void sc_router(struct icmp_engine *e, const struct fam *f)
{
    char what[64];

    snprintf(what, sizeof(what), "%s far host", f->tag);
    struct tu_job *t = run_job(e, &f->far, 2, 10 * TU_MS, 1000 * TU_MS, 3000 * TU_MS, what);
    if (t != NULL) {
        check_all(t, ICMP_STATUS_SUCCESS, &f->far, what);
        for (uint32_t i = 0; i < 2; i++) {
            if (t->results[i].ttl != 63)
                TEST_FAIL_AT("%s: echo %u: ttl %d, want 63", what, i, t->results[i].ttl);
        }
        tu_job_free(t);
    }

    /* TTL 1: the router reports time exceeded, long before the timeout. */
    snprintf(what, sizeof(what), "%s far host with ttl 1", f->tag);
    t = tu_job_new(&f->far, 2, 20 * TU_MS, 3000 * TU_MS, 56);
    t->job.ttl = 1;
    if (tu_run(e, t, 5000 * TU_MS, what)) {
        tu_check_consistent(t, what);
        CHECK_EQ(t->job.errors, 2);
        CHECK_EQ(t->job.received, 0);
        check_all(t, ICMP_STATUS_TTL_EXPIRED_TRANSIT, &f->router, what);
        if (t->done_ns - t->submit_ns > 1000 * TU_MS)
            TEST_FAIL_AT("%s: took %.0f ms (timeout 3 s)", what,
                         (double)(t->done_ns - t->submit_ns) / 1e6);
    }
    tu_job_free(t);
}

static void sc_unreach(struct icmp_engine *e, const struct fam *f)
{
    struct tu_job *t[4];
    struct icmp_job *jobs[4];
    char what[96];

    for (int i = 0; i < 4; i++) {
        t[i] = tu_job_new(&f->unreach[i].addr, 1, 0, 5000 * TU_MS, 56);
        jobs[i] = &t[i]->job;
        t[i]->submit_ns = tu_now_ns();
    }
    int rc = icmp_engine_submit(e, jobs, 4);
    CHECK_EQ(rc, 0);
    if (rc != 0) {
        for (int i = 0; i < 4; i++)
            tu_job_not_submitted(t[i]);
    } else if (!tu_wait(t, 4, 8000 * TU_MS)) {
        TEST_FAIL_AT("%s unreachables: not all completed within 8 s", f->tag);
    }
    for (int i = 0; rc == 0 && i < 4; i++) {
        snprintf(what, sizeof(what), "%s %s", f->tag, f->unreach[i].name);
        if (t[i]->calls == 0)
            continue;
        tu_check_consistent(t[i], what);
        CHECK_EQ(t[i]->job.errors, 1);
        check_all(t[i], f->unreach[i].status, &f->router, what);
        /* The error's own TTL, as the router sent it (one hop), in both socket modes. */
        int16_t ttl = t[i]->results[0].ttl;
        if (ttl != 64)
            TEST_FAIL_AT("%s: ttl %d, want the router's 64", what, ttl);
        int64_t took = t[i]->done_ns - t[i]->submit_ns;
        fprintf(stderr, "%s: %s after %.1f ms\n", what, icmp_status_name(t[i]->results[0].status),
                (double)took / 1e6);
        if (took > 1000 * TU_MS)
            TEST_FAIL_AT("%s: settled after %.0f ms, want within 1 s (timeout 5 s)", what,
                         (double)took / 1e6);
    }
    for (int i = 0; i < 4; i++)
        tu_job_free(t[i]);
}

static void sc_blackhole(struct icmp_engine *e, const struct fam *f)
{
    char what[64];

    snprintf(what, sizeof(what), "%s blackhole", f->tag);
    struct tu_job *t = run_job(e, &f->blackhole, 1, 0, 300 * TU_MS, 3000 * TU_MS, what);
    if (t == NULL)
        return;
    CHECK_EQ(t->job.sent, 1);
    check_all(t, ICMP_STATUS_TIMED_OUT, NULL, what);
    int64_t took = t->done_ns - t->submit_ns;
    fprintf(stderr, "%s: timed out %.1f ms after submit (timeout 300 ms)\n", what,
            (double)took / 1e6);
    if (took < 300 * TU_MS || took > 600 * TU_MS)
        TEST_FAIL_AT("%s: completed %.1f ms after submit, want 300..600", what, (double)took / 1e6);
    tu_job_free(t);
}

static void sc_anyip(struct icmp_engine *e, const struct fam *f)
{
    enum { N = 1000 };
    struct tu_job **t = calloc(N, sizeof(*t));
    struct icmp_job **jobs = calloc(N, sizeof(*jobs));
    char what[64];

    REQUIRE(t != NULL && jobs != NULL);
    snprintf(what, sizeof(what), "%s anyip x %d", f->tag, N);
    for (unsigned int i = 0; i < N; i++) {
        struct icmp_addr dst = anyip_host(f, i + 1);
        t[i] = tu_job_new(&dst, 1, 0, 2000 * TU_MS, 56);
        jobs[i] = &t[i]->job;
    }
    int64_t start = tu_now_ns();
    for (unsigned int i = 0; i < N; i++)
        t[i]->submit_ns = start;
    int rc = icmp_engine_submit(e, jobs, N);
    CHECK_EQ(rc, 0);
    if (rc != 0) {
        for (unsigned int i = 0; i < N; i++)
            tu_job_not_submitted(t[i]);
    } else if (!tu_wait(t, N, 10000 * TU_MS)) {
        TEST_FAIL_AT("%s: not all jobs completed within 10 s", what);
    }
    int64_t last = start;
    uint32_t ok = 0, bad = 0;
    for (unsigned int i = 0; rc == 0 && i < N; i++) {
        if (t[i]->calls == 0)
            continue;
        last = t[i]->done_ns > last ? t[i]->done_ns : last;
        if (t[i]->job.error == 0 && t[i]->results[0].status == ICMP_STATUS_SUCCESS &&
            tu_same_addr(&t[i]->results[0].from, &t[i]->job.dst) && t[i]->job.received == 1 &&
            t[i]->calls == 1) {
            ok++;
        } else if (bad++ < 5) {
            char a[64];
            TEST_FAIL_AT("%s: target %s: error %d status %s received %u calls %u", what,
                         tu_fmt(&t[i]->job.dst, a, sizeof(a)), t[i]->job.error,
                         icmp_status_name(t[i]->results[0].status), t[i]->job.received,
                         t[i]->calls);
        }
    }
    if (ok != N)
        TEST_FAIL_AT("%s: %u of %d targets answered", what, ok, N);
    fprintf(stderr, "%s: %u answered, all done %.1f ms after submit\n", what, ok,
            (double)(last - start) / 1e6);
    for (unsigned int i = 0; i < N; i++)
        tu_job_free(t[i]);
    free(t);
    free(jobs);
}

enum { WORKERS = 4, PER_WORKER = 50 };

struct worker {
    struct icmp_engine *engine;
    pthread_barrier_t *barrier;
    struct tu_job *jobs[PER_WORKER];
    int rc[PER_WORKER];
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    pthread_barrier_wait(w->barrier);
    for (int i = 0; i < PER_WORKER; i++) {
        struct icmp_job *job = &w->jobs[i]->job;
        w->jobs[i]->submit_ns = tu_now_ns();
        w->rc[i] = icmp_engine_submit(w->engine, &job, 1);
    }
    return NULL;
}

static void sc_concurrency(struct icmp_engine *e, const struct fam *f)
{
    static struct worker w[WORKERS];
    pthread_t th[WORKERS];
    pthread_barrier_t barrier;
    struct tu_job *all[WORKERS * PER_WORKER];
    char what[64];

    snprintf(what, sizeof(what), "%s %d threads x %d jobs", f->tag, WORKERS, PER_WORKER);
    pthread_barrier_init(&barrier, NULL, WORKERS);
    for (int k = 0; k < WORKERS; k++) {
        w[k].engine = e;
        w[k].barrier = &barrier;
        for (int i = 0; i < PER_WORKER; i++) {
            struct icmp_addr dst = anyip_host(f, 2001 + (unsigned int)(k * PER_WORKER + i));
            w[k].jobs[i] = tu_job_new(&dst, 2, 5 * TU_MS, 2000 * TU_MS, 56);
            all[k * PER_WORKER + i] = w[k].jobs[i];
        }
    }
    for (int k = 0; k < WORKERS; k++)
        REQUIRE(pthread_create(&th[k], NULL, worker_main, &w[k]) == 0);
    for (int k = 0; k < WORKERS; k++)
        pthread_join(th[k], NULL);
    pthread_barrier_destroy(&barrier);
    for (int k = 0; k < WORKERS; k++) {
        for (int i = 0; i < PER_WORKER; i++) {
            if (w[k].rc[i] != 0) {
                TEST_FAIL_AT("%s: thread %d job %d: submit = %d", what, k, i, w[k].rc[i]);
                tu_job_not_submitted(w[k].jobs[i]);
            }
        }
    }
    if (!tu_wait(all, WORKERS * PER_WORKER, 10000 * TU_MS))
        TEST_FAIL_AT("%s: not all completed within 10 s", what);
    uint32_t ok = 0;
    for (int i = 0; i < WORKERS * PER_WORKER; i++) {
        struct tu_job *t = all[i];
        if (t->calls == 0)
            continue;
        tu_check_consistent(t, what);
        if (t->job.error == 0 && t->job.received == 2 && t->results[0].status == 0 &&
            t->results[1].status == 0 && tu_same_addr(&t->results[0].from, &t->job.dst) &&
            tu_same_addr(&t->results[1].from, &t->job.dst))
            ok++;
    }
    if (ok != WORKERS * PER_WORKER)
        TEST_FAIL_AT("%s: %u of %d jobs fully answered by their own target", what, ok,
                     WORKERS * PER_WORKER);
    for (int i = 0; i < WORKERS * PER_WORKER; i++)
        tu_job_free(all[i]);
}

static void sc_cancel(struct icmp_engine *e, const struct fam *f)
{
    char what[64];

    snprintf(what, sizeof(what), "%s cancel", f->tag);
    struct tu_job *t = tu_job_new(&f->blackhole, 10, 100 * TU_MS, 1000 * TU_MS, 56);
    struct icmp_job *job = &t->job;
    t->submit_ns = tu_now_ns();
    int rc = icmp_engine_submit(e, &job, 1);
    CHECK_EQ(rc, 0);
    if (rc != 0) {
        tu_job_not_submitted(t);
        tu_job_free(t);
        return;
    }
    tu_sleep_ns(150 * TU_MS);
    int64_t cancel_ns = tu_now_ns();
    icmp_engine_cancel(e, &t->job);
    if (!tu_wait(&t, 1, 2000 * TU_MS)) {
        TEST_FAIL_AT("%s: no completion within 2 s of the cancel", what);
        tu_job_free(t);
        return;
    }
    tu_check_consistent(t, what);
    CHECK(t->job.cancelled);
    if (t->job.sent < 1 || t->job.sent >= 10)
        TEST_FAIL_AT("%s: sent %u, want 2 (1..9)", what, t->job.sent);
    if (t->done_ns - cancel_ns > 100 * TU_MS)
        TEST_FAIL_AT("%s: completed %.1f ms after the cancel", what,
                     (double)(t->done_ns - cancel_ns) / 1e6);
    for (uint32_t i = 0; i < 10; i++) {
        if (t->results[i].status == ICMP_STATUS_SUCCESS)
            TEST_FAIL_AT("%s: echo %u to the blackhole succeeded", what, i);
    }
    tu_job_free(t);
}

/*
 * Errors quoting only the IP header and the 8-byte ICMP header of the echo (RFC 792's minimum,
 * what older routers send; RFC 4443 lets a v6 router send as little): no echo data, so none of
 * our nonce. They must still settle their echo at once, not leave it to time out.
 */
static void sc_short_error(struct icmp_engine *e, const struct fam *f)
{
    char what[64];
    struct log log = {NULL, 0};
    const struct log_ev *ev[3];

    snprintf(what, sizeof(what), "%s short-quote errors", f->tag);
    struct tu_job *t = run_job(e, &f->short_err, 3, 20 * TU_MS, 3000 * TU_MS, 6000 * TU_MS, what);
    if (t == NULL)
        return;
    int64_t took = t->done_ns - t->submit_ns;
    fprintf(stderr, "%s: %s after %.1f ms (timeout 3 s)\n", what,
            icmp_status_name(t->results[0].status), (double)took / 1e6);
    CHECK_EQ(t->job.sent, 3);
    CHECK_EQ(t->job.errors, 3);
    CHECK_EQ(t->job.received, 0);
    check_all(t, ICMP_STATUS_DEST_HOST_UNREACHABLE, &f->delay_link, what);
    if (took > 1000 * TU_MS)
        TEST_FAIL_AT("%s: settled after %.0f ms, want within 1 s (timeout 3 s)", what,
                     (double)took / 1e6);
    /* The ground truth: the responder answered each echo with an error quoting no data. */
    uint32_t found = log_match(t, &log, ev);
    for (uint32_t i = 0; i < 3; i++) {
        if (ev[i] != NULL && (strcmp(ev[i]->ev, "error") != 0 || ev[i]->quote != 0))
            TEST_FAIL_AT("%s: echo %u: the responder logged ev=%s quote=%d, want error, 0", what, i,
                         ev[i]->ev, ev[i]->quote);
    }
    if (found != 3)
        TEST_FAIL_AT("%s: %u of 3 echoes in the responder's log", what, found);
    log_free(&log);
    tu_job_free(t);
}

/*
 * Forged short errors (tests/netlab: forge_quote=0) from an attacker who sees one echo of
 * ours: they claim echoes to the blackhole with our identifier and the sequence numbers
 * next to the one it saw, which are exactly those of our blackhole echoes in flight. Nothing
 * of such an error proves it ours but the quoted checksum, which covers our secret nonce and
 * the send stamp: none of them may settle a blackhole echo.
 */
static uint32_t forged_errors_naming(int family, unsigned int req_seq,
                                     const struct tu_job *const *t, size_t n)
{
    FILE *fp = fopen(log_path, "r");
    char line[1024], fam[8];
    uint32_t hits = 0;

    if (fp == NULL)
        return 0;
    snprintf(fam, sizeof(fam), " fam=%d ", family == AF_INET ? 4 : 6);
    while (fgets(line, sizeof(line), fp) != NULL) {
        const char *id = strstr(line, " id="), *seq = strstr(line, " seq=");
        const char *rid = strstr(line, " req_id="), *rseq = strstr(line, " req_seq=");
        if (strstr(line, " ev=forge ") == NULL || strstr(line, " kind=error ") == NULL ||
            strstr(line, fam) == NULL || id == NULL || seq == NULL || rid == NULL || rseq == NULL ||
            strtoul(rseq + 9, NULL, 10) != req_seq ||
            strtoul(id + 4, NULL, 10) != strtoul(rid + 8, NULL, 10))
            continue;
        unsigned long s = strtoul(seq + 5, NULL, 10);
        for (size_t k = 0; k < n; k++) {
            for (uint32_t i = 0; i < t[k]->job.count; i++)
                hits += t[k]->results[i].sent && t[k]->results[i].seq == s;
        }
    }
    fclose(fp);
    return hits;
}

static void sc_forge_short(struct icmp_engine *e, const struct fam *f)
{
    struct icmp_engine_stats before, after;
    struct tu_job *t[3];
    struct icmp_job *jobs[3];
    char what[64];

    snprintf(what, sizeof(what), "%s forged short errors", f->tag);
    /* Sent in this order, back to back: four blackhole echoes, the forger's, four more. */
    t[0] = tu_job_new(&f->blackhole, 4, 0, 300 * TU_MS, 56);
    t[1] = tu_job_new(&f->forge_short, 1, 0, 1000 * TU_MS, 56);
    t[2] = tu_job_new(&f->blackhole, 4, 0, 300 * TU_MS, 56);
    for (int i = 0; i < 3; i++) {
        jobs[i] = &t[i]->job;
        t[i]->submit_ns = tu_now_ns();
    }
    tu_stats(e, &before);
    int rc = icmp_engine_submit(e, jobs, 3);
    CHECK_EQ(rc, 0);
    if (rc != 0) {
        for (int i = 0; i < 3; i++)
            tu_job_not_submitted(t[i]);
    } else if (!tu_wait(t, 3, 3000 * TU_MS)) {
        TEST_FAIL_AT("%s: not all completed within 3 s", what);
    }
    for (int i = 0; rc == 0 && i < 3; i++) {
        if (t[i]->calls == 0)
            continue;
        tu_check_consistent(t[i], what);
        if (i == 1) {
            check_all(t[i], ICMP_STATUS_SUCCESS, &f->forge_short, what);
            continue;
        }
        CHECK_EQ(t[i]->job.sent, 4);
        CHECK_EQ(t[i]->job.errors, 0);
        check_all(t[i], ICMP_STATUS_TIMED_OUT, NULL, what);
    }
    if (rc == 0 && t[1]->calls > 0 && t[1]->results[0].sent) {
        const struct tu_job *bh[2] = {t[0], t[2]};
        uint32_t hits = 0;
        /* The forger logs its packets after sending them: wait for them (up to 1 s). */
        for (int attempt = 0; attempt < 20 && hits == 0; attempt++) {
            hits = forged_errors_naming(f->family, t[1]->results[0].seq, bh, 2);
            if (hits == 0)
                tu_sleep_ns(50 * TU_MS);
        }
        tu_settled_stats(e, &before, 9, &after);
        fprintf(stderr,
                "%s: %u forged errors named a blackhole echo of ours; foreign +%" PRIu64 "\n", what,
                hits, after.foreign - before.foreign);
        if (hits == 0)
            TEST_FAIL_AT("%s: no forged error named a blackhole echo (the test does not bite)",
                         what);
        if (after.foreign - before.foreign < hits)
            TEST_FAIL_AT("%s: foreign +%" PRIu64 ", want >= %u", what,
                         after.foreign - before.foreign, hits);
        CHECK_EQ(after.replies[ICMP_STATUS_DEST_HOST_UNREACHABLE] -
                     before.replies[ICMP_STATUS_DEST_HOST_UNREACHABLE],
                 0);
    }
    for (int i = 0; i < 3; i++)
        tu_job_free(t[i]);
}

/* A reply with TTL / hop limit 0 reports 0; an echo without a reply reports no TTL (-1). */
static void sc_ttl0(struct icmp_engine *e, const struct fam *f)
{
    char what[64];

    snprintf(what, sizeof(what), "%s ttl 0 host", f->tag);
    struct tu_job *t = run_job(e, &f->ttl0, 2, 10 * TU_MS, 1000 * TU_MS, 3000 * TU_MS, what);
    if (t != NULL) {
        check_all(t, ICMP_STATUS_SUCCESS, &f->ttl0, what);
        for (uint32_t i = 0; i < 2; i++) {
            int16_t ttl = t->results[i].ttl;
            if (ttl != 0)
                TEST_FAIL_AT("%s: echo %u: ttl %d, want 0", what, i, ttl);
        }
        tu_job_free(t);
    }
    snprintf(what, sizeof(what), "%s ttl of a timed-out echo", f->tag);
    t = run_job(e, &f->blackhole, 1, 0, 100 * TU_MS, 2000 * TU_MS, what);
    if (t != NULL) {
        int16_t ttl = t->results[0].ttl;
        check_all(t, ICMP_STATUS_TIMED_OUT, NULL, what);
        if (ttl != -1)
            TEST_FAIL_AT("%s: ttl %d, want -1 (no reply, no TTL)", what, ttl);
        tu_job_free(t);
    }
}

/*
 * A link-local target with its zone (fe80::...%if): the reply comes from the target on the
 * zone's interface and must count; an error about a link-local target (neighbour discovery
 * fails, the kernel reports address unreachable) must settle its echo at once.
 */
static void sc_link_local(struct icmp_engine *e, const struct fam *f)
{
    struct icmp_addr router_ll, nobody;
    char text[96], what[96];
    const char *ifname = lab_env("CLIENT_IF_ROUTER");

    if (f->family != AF_INET6)
        return;
    snprintf(text, sizeof(text), "%s%%%s", lab_env("V6_ROUTER_LL"), ifname);
    REQUIRE(icmp_addr_parse(text, &router_ll) == 0);
    snprintf(text, sizeof(text), "%s%%%s", lab_env("V6_LL_NOBODY"), ifname);
    REQUIRE(icmp_addr_parse(text, &nobody) == 0);
    /* Link-local on a lab interface: such traffic cannot leave the link. */
    REQUIRE(router_ll.scope_id != 0 && router_ll.bytes[0] == 0xfe &&
            (router_ll.bytes[1] & 0xc0) == 0x80 && strncmp(ifname, "nl", 2) == 0);
    REQUIRE(nobody.scope_id == router_ll.scope_id && nobody.bytes[0] == 0xfe);

    snprintf(what, sizeof(what), "%s link-local %s%%%s", f->tag, lab_env("V6_ROUTER_LL"), ifname);
    struct tu_job *t = run_job(e, &router_ll, 3, 10 * TU_MS, 1000 * TU_MS, 3000 * TU_MS, what);
    if (t != NULL) {
        CHECK_EQ(t->job.received, 3);
        CHECK_EQ(t->job.corrupt, 0);
        check_all(t, ICMP_STATUS_SUCCESS, &router_ll, what);
        tu_job_free(t);
    }
    /* A zone on an address that needs none (getaddrinfo and icmp_addr_parse accept one): the
     * kernel ignores it on the way out and reports the reply's source without one. */
    struct icmp_addr zoned = f->router;
    zoned.scope_id = router_ll.scope_id;
    snprintf(what, sizeof(what), "%s global address with a zone %s%%%s", f->tag,
             lab_env("V6_ROUTER"), ifname);
    t = run_job(e, &zoned, 2, 10 * TU_MS, 1000 * TU_MS, 3000 * TU_MS, what);
    if (t != NULL) {
        CHECK_EQ(t->job.received, 2);
        CHECK_EQ(t->job.corrupt, 0);
        check_all(t, ICMP_STATUS_SUCCESS, &f->router, what);
        tu_job_free(t);
    }
    snprintf(what, sizeof(what), "%s link-local nobody %s%%%s", f->tag, lab_env("V6_LL_NOBODY"),
             ifname);
    t = run_job(e, &nobody, 1, 0, 3000 * TU_MS, 5000 * TU_MS, what);
    if (t != NULL) {
        int64_t took = t->done_ns - t->submit_ns;
        fprintf(stderr, "%s: %s after %.1f ms\n", what, icmp_status_name(t->results[0].status),
                (double)took / 1e6);
        CHECK_EQ(t->job.corrupt, 0);
        CHECK_EQ(t->job.errors, 1);
        check_all(t, ICMP_STATUS_DEST_HOST_UNREACHABLE, NULL, what);
        if (took > 1000 * TU_MS)
            TEST_FAIL_AT("%s: settled after %.0f ms, want within 1 s (timeout 3 s)", what,
                         (double)took / 1e6);
        tu_job_free(t);
    }
}

static void sc_deadline(struct icmp_engine *e, const struct fam *f)
{
    char what[64];

    snprintf(what, sizeof(what), "%s deadline", f->tag);
    struct tu_job *t = tu_job_new(&f->delay, 10, 100 * TU_MS, 1000 * TU_MS, 56);
    t->job.deadline_ns = icmp_now_ns() + 350 * TU_MS;
    if (!tu_run(e, t, 3000 * TU_MS, what)) {
        tu_job_free(t);
        return;
    }
    tu_check_consistent(t, what);
    int64_t took = t->done_ns - t->submit_ns;
    fprintf(stderr, "%s: sent %u received %u, completed after %.1f ms\n", what, t->job.sent,
            t->job.received, (double)took / 1e6);
    CHECK(!t->job.cancelled);
    /* Echoes due at 0, 100, 200, 300 ms; the next one would be past the deadline. The one
     * due at 300 ms goes out only if the engine thread runs within the 50 ms before the
     * deadline, which is the scheduler's to grant (a loaded run sent 3, woken at 360 ms);
     * the promise is that nothing goes out after the deadline (below) and that the job
     * ends at the deadline, not at the echoes' 1 s timeout or after its ten echoes
     * (900 ms). */
    if (t->job.sent < 3 || t->job.sent > 4)
        TEST_FAIL_AT("%s: sent %u, want 4 (3 if the engine woke after 350 ms)", what, t->job.sent);
    if (t->job.received + 1 < t->job.sent)
        TEST_FAIL_AT("%s: received %u of %u, want all (but the last if its reply missed the "
                     "deadline)",
                     what, t->job.received, t->job.sent);
    if (took > 700 * TU_MS || took < 300 * TU_MS)
        TEST_FAIL_AT("%s: completed %.1f ms after submit, want at the deadline at 350 (300..700)",
                     what, (double)took / 1e6);
    for (uint32_t i = 4; i < 10; i++) {
        if (t->results[i].sent)
            TEST_FAIL_AT("%s: echo %u sent after the deadline", what, i);
    }
    tu_job_free(t);
}

/* ---------------------------------------------------------------------------------------
 * The IcmpSendEcho contract against the lab.
 */

static void sc_sync(const struct fam *f)
{
    struct icmp_handle *h = NULL;
    static union {
        max_align_t align;
        unsigned char bytes[1024];
    } buf;
    uint8_t data[32];
    size_t size = ICMP_REPLY_BUFFER_SIZE(sizeof(data));
    const struct icmp_echo_reply *r = (const void *)buf.bytes;
    char a[64], what[64];

    snprintf(what, sizeof(what), "%s sync", f->tag);
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 3);
    int rc = icmp_open(&h, f->family);
    if (rc != 0) {
        TEST_FAIL_AT("%s: icmp_open = %d", what, rc);
        return;
    }
    CHECK_EQ(icmp_handle_mode(h), LAB_MODE);

    /* The delay host: one record, RTT the responder's hold of the echo (as in sc_delay;
     * about the configured delay unless the responder itself was late), whole
     * milliseconds. */
    struct log log = {NULL, 0};
    log_read(&log);
    size_t mark = log.n;
    rc = icmp_send_echo(h, &f->delay, data, sizeof(data), NULL, buf.bytes, size, 2000);
    CHECK_EQ(rc, 1);
    if (rc == 1) {
        CHECK_EQ(r->status, ICMP_STATUS_SUCCESS);
        CHECK(tu_same_addr(&r->address, &f->delay));
        const struct log_ev *ev = log_only_reply_since(&log, mark, &f->delay);
        if (ev == NULL)
            TEST_FAIL_AT("%s: not one reply to the delay host in the responder's log", what);
        else if (abs64(r->rtt_ns - ev->hold_ns) > 200000)
            TEST_FAIL_AT("%s: rtt %.3f ms, responder hold %.3f ms: off by %.3f ms (> 0.2)", what,
                         (double)r->rtt_ns / 1e6, (double)ev->hold_ns / 1e6,
                         (double)(r->rtt_ns - ev->hold_ns) / 1e6);
        else if (abs64(ev->hold_ns - delay_ms * TU_MS) > TU_MS / 2)
            fprintf(stderr, "%s: the responder held it %.3f ms (late itself)\n", what,
                    (double)ev->hold_ns / 1e6);
        else
            CHECK_LE(abs64(r->rtt_ns - delay_ms * TU_MS), TU_MS);
        CHECK_EQ(r->rtt_ms, r->rtt_ns / 1000000);
        CHECK_EQ(r->data_size, sizeof(data));
        if (r->data_size == sizeof(data))
            CHECK(memcmp(r->data, data, sizeof(data)) == 0);
    }
    /* The TTL host. */
    rc = icmp_send_echo(h, &f->ttl, data, sizeof(data), NULL, buf.bytes, size, 2000);
    CHECK_EQ(rc, 1);
    if (rc == 1)
        CHECK_EQ(r->ttl, reply_ttl);
    /* TTL 0 is a TTL like any other. */
    rc = icmp_send_echo(h, &f->ttl0, data, sizeof(data), NULL, buf.bytes, size, 2000);
    CHECK_EQ(rc, 1);
    if (rc == 1) {
        CHECK_EQ(r->status, ICMP_STATUS_SUCCESS);
        CHECK_EQ(r->ttl, 0);
    }
    /* A short-quote error settles the call at once. */
    int64_t t0 = tu_now_ns();
    rc = icmp_send_echo(h, &f->short_err, data, sizeof(data), NULL, buf.bytes, size, 3000);
    int64_t took = tu_now_ns() - t0;
    CHECK_EQ(rc, 1);
    CHECK_EQ(icmp_last_status(h), ICMP_STATUS_DEST_HOST_UNREACHABLE);
    if (rc == 1 && !tu_same_addr(&r->address, &f->delay_link))
        TEST_FAIL_AT("%s short-quote error: address %s, want the delay host's link", what,
                     tu_fmt(&r->address, a, sizeof(a)));
    CHECK_LT(took, 1000 * TU_MS);

    /* An ICMP error is a record of its own, from the router. */
    t0 = tu_now_ns();
    rc = icmp_send_echo(h, &f->unreach[0].addr, data, sizeof(data), NULL, buf.bytes, size, 3000);
    took = tu_now_ns() - t0;
    CHECK_EQ(rc, 1);
    if (rc == 1) {
        if (r->status != f->unreach[0].status)
            TEST_FAIL_AT("%s %s: status %s, want %s", what, f->unreach[0].name,
                         icmp_status_name(r->status), icmp_status_name(f->unreach[0].status));
        if (!tu_same_addr(&r->address, &f->router))
            TEST_FAIL_AT("%s %s: address %s, want the router", what, f->unreach[0].name,
                         tu_fmt(&r->address, a, sizeof(a)));
        CHECK_EQ(icmp_last_status(h), f->unreach[0].status);
    }
    CHECK_LT(took, 1000 * TU_MS);

    /* The blackhole: nothing within the timeout. */
    t0 = tu_now_ns();
    rc = icmp_send_echo(h, &f->blackhole, data, sizeof(data), NULL, buf.bytes, size, 200);
    took = tu_now_ns() - t0;
    CHECK_EQ(rc, 0);
    CHECK_EQ(icmp_last_status(h), ICMP_STATUS_TIMED_OUT);
    CHECK_EQ(r->status, ICMP_STATUS_TIMED_OUT);
    int16_t no_ttl = r->ttl;
    CHECK_EQ(no_ttl, -1);
    if (took < 200 * TU_MS || took > 350 * TU_MS)
        TEST_FAIL_AT("%s blackhole: returned after %.1f ms, want about 200", what,
                     (double)took / 1e6);
    icmp_close(h);
    log_free(&log);
}

/* The first call on a fresh handle, to a host that never answers: it must return at its
 * timeout even with nothing else pending in the handle. It runs on a thread of its own so
 * that a call that never returns is reported (after 5 s) instead of hanging the test. */
struct first_call {
    const struct fam *f;
    bool finished;
    int open_rc, rc;
    enum icmp_status last;
    int64_t took;
};

static void *first_call_main(void *arg)
{
    struct first_call *c = arg;
    struct icmp_handle *h = NULL;
    static _Thread_local union {
        max_align_t align;
        unsigned char bytes[512];
    } buf;
    uint8_t data[16] = {0};

    int open_rc = icmp_open(&h, c->f->family);
    int rc = -1;
    enum icmp_status last = ICMP_STATUS_GENERAL_FAILURE;
    int64_t t0 = tu_now_ns();
    if (open_rc == 0) {
        rc = icmp_send_echo(h, &c->f->blackhole, data, sizeof(data), NULL, buf.bytes,
                            sizeof(buf.bytes), 200);
        last = icmp_last_status(h);
        icmp_close(h);
    }
    pthread_mutex_lock(&tu_lock);
    c->open_rc = open_rc;
    c->rc = rc;
    c->last = last;
    c->took = tu_now_ns() - t0;
    c->finished = true;
    pthread_cond_broadcast(&tu_cond);
    pthread_mutex_unlock(&tu_lock);
    return NULL;
}

/* Returns false when the call hung (the thread is left blocked; the test must end). */
static bool sc_sync_first_call(const struct fam *f)
{
    static struct first_call calls[2];
    struct first_call *c = &calls[f->family == AF_INET ? 0 : 1];
    pthread_t th;
    int64_t deadline = tu_now_ns() + 5000 * TU_MS;
    struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
    bool finished;

    memset(c, 0, sizeof(*c));
    c->f = f;
    REQUIRE(pthread_create(&th, NULL, first_call_main, c) == 0);
    pthread_mutex_lock(&tu_lock);
    while (!c->finished && pthread_cond_timedwait(&tu_cond, &tu_lock, &ts) != ETIMEDOUT)
        ;
    finished = c->finished;
    pthread_mutex_unlock(&tu_lock);
    if (!finished) {
        TEST_FAIL_AT("%s sync: first icmp_send_echo on a fresh handle, to the blackhole with "
                     "timeout 200 ms, has not returned after 5 s",
                     f->tag);
        pthread_detach(th);
        return false;
    }
    pthread_join(th, NULL);
    CHECK_EQ(c->open_rc, 0);
    if (c->open_rc != 0)
        return true;
    if (c->rc != 0 || c->last != ICMP_STATUS_TIMED_OUT || c->took < 200 * TU_MS ||
        c->took > 350 * TU_MS)
        TEST_FAIL_AT("%s sync, fresh handle, blackhole: rc %d status %s after %.1f ms, want 0 "
                     "timed_out after about 200 ms",
                     f->tag, c->rc, icmp_status_name(c->last), (double)c->took / 1e6);
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Late replies: the job ends at its timeout, the engine still recognises the reply.
 */

static void phase_late(const struct fam *fams, int n)
{
    struct icmp_engine *engines[2] = {NULL, NULL};
    struct icmp_engine_stats before[2], after;
    struct tu_job *t[2] = {NULL, NULL};

    for (int i = 0; i < n; i++) {
        struct icmp_engine_options o;
        memset(&o, 0, sizeof(o));
        o.min_send_gap_ns = ICMP_DEFAULT_SEND_GAP_NS;
        o.mode4 = o.mode6 = LAB_MODE;
        o.families = fams[i].family;
        int rc = icmp_engine_open(&engines[i], &o);
        REQUIRE(rc == 0);
        tu_stats(engines[i], &before[i]);
        t[i] = tu_job_new(&fams[i].late, 1, 0, 1000 * TU_MS, 56);
        struct icmp_job *job = &t[i]->job;
        t[i]->submit_ns = tu_now_ns();
        rc = icmp_engine_submit(engines[i], &job, 1);
        CHECK_EQ(rc, 0);
        if (rc != 0)
            tu_job_not_submitted(t[i]);
    }
    if (!tu_wait(t, (size_t)n, 3000 * TU_MS))
        TEST_FAIL_AT("late host: jobs not complete within 3 s");
    int64_t done = 0;
    for (int i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof(what), "%s late host", fams[i].tag);
        if (t[i]->calls == 0 || t[i]->job.error != 0)
            continue;
        tu_check_consistent(t[i], what);
        check_all(t[i], ICMP_STATUS_TIMED_OUT, NULL, what);
        CHECK_EQ(t[i]->job.late, 0);
        int64_t took = t[i]->done_ns - t[i]->submit_ns;
        if (took < 1000 * TU_MS || took > 1300 * TU_MS)
            TEST_FAIL_AT("%s: completed after %.1f ms, want 1000..1300", what, (double)took / 1e6);
        done = t[i]->done_ns > done ? t[i]->done_ns : done;
    }
    /* The reply comes LATE_MS after the send; keep the engines 2.5 s past completion. */
    int64_t until = (done ? done : tu_now_ns()) + 2500 * TU_MS;
    tu_sleep_ns(until - tu_now_ns() > 0 ? until - tu_now_ns() : 0);
    for (int i = 0; i < n; i++) {
        tu_stats(engines[i], &after);
        if (after.late - before[i].late != 1)
            TEST_FAIL_AT("%s late host: engine late counter moved by %" PRIu64 ", want 1",
                         fams[i].tag, after.late - before[i].late);
        CHECK_EQ(after.replies[ICMP_STATUS_SUCCESS] - before[i].replies[ICMP_STATUS_SUCCESS], 0);
        icmp_engine_close(engines[i]);
        tu_job_free(t[i]);
    }
}

/*
 * The delay host measured while ICMP errors for another job keep arriving: on ping sockets
 * an error leaves an errno pending that fails the next send, which is retried, and the
 * transmit-stamp keys restart. Every RTT must still start at the kernel's transmit stamp.
 */
static void sc_delay_amid_errors(struct icmp_engine *e, const struct fam *f)
{
    struct tu_job *bg = tu_job_new(&f->unreach[0].addr, 40, 25 * TU_MS, 1000 * TU_MS, 56);
    struct icmp_job *jobs[1] = {&bg->job};

    if (icmp_engine_submit(e, jobs, 1) != 0) {
        tu_job_not_submitted(bg);
        TEST_FAIL_AT("%s: submit of the background unreachable job failed", f->tag);
    } else {
        int stamped = sc_delay(e, f);
        if (stamped != 20)
            TEST_FAIL_AT("%s: delay host amid ICMP errors: %d of 20 RTTs from the kernel's "
                         "transmit stamp",
                         f->tag, stamped);
        if (!tu_wait(&bg, 1, 5000 * TU_MS))
            TEST_FAIL_AT("%s: the background unreachable job did not complete", f->tag);
        else
            CHECK_EQ(bg->job.errors, 40);
    }
    tu_job_free(bg);
}

int main(void)
{
    struct fam fams[2];
    int64_t start = tu_now_ns();

    tu_init();
    if (getenv("NETLAB_PREFIX") == NULL)
        TEST_SKIP("not inside a lab: run through ctest, or tests/netlab/netlab.sh run");
    log_path = lab_env("RESPONDER_LOG");
    delay_ms = lab_int("DELAY_MS");
    reply_ttl = lab_int("REPLY_TTL");
    dup_copies = lab_int("DUP_COPIES");
    if (!tu_write_proc("/proc/sys/net/ipv4/ping_group_range", LAB_PING_GROUPS))
        TEST_FAIL_AT("cannot write \"%s\" to the lab's net.ipv4.ping_group_range", LAB_PING_GROUPS);
    load_family(&fams[0], AF_INET);
    load_family(&fams[1], AF_INET6);

    for (int i = 0; i < 2; i++) {
        const struct fam *f = &fams[i];
        struct icmp_engine_options o;
        struct icmp_engine *e = NULL;

        memset(&o, 0, sizeof(o));
        o.min_send_gap_ns = ICMP_DEFAULT_SEND_GAP_NS;
        o.mode4 = o.mode6 = LAB_MODE;
        o.families = f->family;
        int rc = icmp_engine_open(&e, &o);
        if (rc != 0) {
            TEST_FAIL_AT("%s: icmp_engine_open = %d", f->tag, rc);
            continue;
        }
        if (icmp_engine_mode(e, f->family) != LAB_MODE)
            TEST_FAIL_AT("%s: engine mode %s", f->tag,
                         icmp_socket_mode_name(icmp_engine_mode(e, f->family)));
        int64_t t0 = tu_now_ns();
        warm_up(e, f);
        sc_delay(e, f);
        sc_loss(e, f);
        sc_dup(e, f);
        sc_corrupt(e, f);
        sc_wrongid(e, f);
        sc_ttl(e, f);
        sc_router(e, f);
        sc_unreach(e, f);
        sc_delay_amid_errors(e, f);
        sc_blackhole(e, f);
        sc_anyip(e, f);
        sc_concurrency(e, f);
        sc_cancel(e, f);
        sc_deadline(e, f);
        sc_short_error(e, f);
        sc_forge_short(e, f);
        sc_ttl0(e, f);
        sc_link_local(e, f);
        icmp_engine_close(e);
        sc_sync(f);
        fprintf(stderr, "%s: scenarios took %.1f s\n", f->tag, (double)(tu_now_ns() - t0) / 1e9);
    }
    phase_late(fams, 2);
    for (int i = 0; i < 2; i++) {
        if (!sc_sync_first_call(&fams[i]))
            break; /* a thread is stuck inside the call: stop here */
    }
    fprintf(stderr, "total %.1f s\n", (double)(tu_now_ns() - start) / 1e9);
    return TEST_DONE();
}
