/*
 * netlab_responder: userspace ICMP/ICMPv6 echo responder for the test network lab.
 *
 * Model. The lab's "delay" namespace turns kernel echo replies off and routes whole prefixes to
 * lo as local, so every echo request for those prefixes reaches our raw receive sockets and
 * nobody else answers. For each request the first rule (file order) whose prefix holds the
 * destination decides: loss and jitter are drawn from a seeded xoshiro256** PRNG, and the
 * request is parked in a preallocated binary min-heap keyed by (due time, arrival serial),
 * where due = kernel receive stamp (SO_TIMESTAMPNS, CLOCK_REALTIME) + chosen delay. Payloads
 * wait in a preallocated pool of fixed-size chunks chained per request, so nothing is allocated
 * per packet and memory stays bounded (heap full or pool empty: ev=overflow, no reply).
 * One thread, one ppoll(), SIGTERM/SIGINT unblocked only inside it. ppoll sleeps until the next
 * due time minus a learned wake-up margin (timers fire ~160 us late on the lab VM even with 1 ns
 * timer slack), then spins with zero-timeout ppoll until the reply is due. Receive sockets are
 * drained in batches between passes that send every due reply, so a burst of requests never
 * delays replies already due.
 *
 * Sending. The destinations are not assigned to any interface (only local routes), so they are
 * not usable as an ordinary source address. v4 replies leave through an IPPROTO_RAW socket
 * (IP_HDRINCL) carrying our own IP header: TTL from the rule, id 0 and header checksum filled by
 * the kernel, ICMP checksum ours. IP_HDRINCL cannot fragment, so a v4 reply above the MTU falls
 * back to an IPPROTO_ICMP raw socket with an IP_PKTINFO source and an IP_TTL cmsg. v6 replies
 * leave through an ICMPv6 raw socket with IPV6_FREEBIND (IPV6_TRANSPARENT as fallback), which
 * makes the kernel accept an IPV6_PKTINFO source covered only by a local route; an IPV6_HOPLIMIT
 * cmsg sets the hop limit. We chose this over a header-included IPPROTO_RAW v6 socket because the
 * kernel then computes the ICMPv6 checksum over the real pseudo-header and fragments large
 * replies, and the checksum is valid by construction even for corrupt/wrongid replies.
 *
 * Errors. error=TYPE/CODE answers with an ICMP error instead of the reply, at the same time and
 * from the same source, quoting the request as a router would (resp_build_error): its IP header
 * (rebuilt; v6 requests come without theirs), its ICMP header with the checksum it carried, and
 * quote=N bytes of its data (0: RFC 792's minimum, what older routers send).
 *
 * Hostile rules (tests/hardening). src=ADDR sends the reply from ADDR instead of the address
 * asked. forge=N forge_src=ADDR sends, for each request, N forged packets claiming to come
 * from ADDR, built from what an on-path attacker sees of the request (see resp_forge); they go
 * out at once, through the same send sockets, from their own PRNG stream. forge_quote=N cuts
 * the data their forged errors quote.
 *
 * Ground truth. Each event is one logfmt line written with a single write(). hold_ns is send
 * stamp - kernel receive stamp. The send stamp is the kernel's software TX stamp (SO_TIMESTAMPING,
 * read from MSG_ERRQUEUE right after sendmsg) when it is already there and not older than a user
 * stamp taken just before sendmsg (so a late stamp of an earlier copy is never taken for this
 * one); otherwise it is that clock_gettime(CLOCK_REALTIME) user stamp. Both are CLOCK_REALTIME,
 * the domain of the receive stamps.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>

#define RESP_PROG               "netlab_responder"
#define RESP_USAGE              "%s --rules FILE --log FILE|- [--seed N] [--pidfile FILE]"
#define RESP_HEAP_CAPACITY      65536u
#define RESP_CHUNK_SIZE         256u    /* even, so 16-bit checksum words never straddle chunks */
#define RESP_CHUNK_COUNT        131072u /* 32 MiB, touched lazily; LIFO reuse keeps it warm */
#define RESP_NO_CHUNK           UINT32_MAX
#define RESP_MAX_PACKET         65535u
#define RESP_IP_HEADER_LEN      20u
#define RESP_ICMP_HEADER_LEN    8u
#define RESP_SOCKET_BUFFER      (4 * 1024 * 1024)
#define RESP_DRAIN_BATCH        256
#define RESP_MAX_DUP            16u
#define RESP_MAX_FORGE          256u
#define RESP_QUOTE_MAX          1024u /* payload bytes an ICMP error of ours quotes, at most */
#define RESP_DEFAULT_TTL        64u
#define RESP_CORRUPT_XOR        0x5au
#define RESP_CORRUPT_KEEP       16u /* iputils ping keeps a struct timeval in the first 16 bytes */
#define RESP_NSEC_PER_SEC       1000000000LL
#define RESP_MAX_DURATION_NS    (3600LL * RESP_NSEC_PER_SEC)
#define RESP_WAKE_MARGIN_MIN_NS 20000LL
#define RESP_WAKE_MARGIN_MAX_NS 2000000LL
#define RESP_WAKE_LATE_INIT_NS  200000LL
#define RESP_LINE_MAX           640
#define RESP_ERR_MAX            512
#define RESP_EXIT_USAGE         2
#define RESP_EXIT_SYSTEM        1
#define RESP_ICMP_ECHO          8u
#define RESP_ICMP_ECHOREPLY     0u
#define RESP_ICMP6_ECHO         128u
#define RESP_ICMP6_ECHOREPLY    129u
#define RESP_ICMP_UNREACH       3u /* code 1: host unreachable */
#define RESP_ICMP6_UNREACH      1u /* code 3: address unreachable */
#define RESP_IP6_HEADER_LEN     40u
/* linux/icmp.h's ICMP_FILTER (SOL_RAW level); that header clashes with netinet/ip_icmp.h. */
#define RESP_ICMP_FILTER 1

static volatile sig_atomic_t resp_stop_requested;

struct resp_rule {
    int family; /* AF_INET or AF_INET6 */
    unsigned char prefix[16];
    unsigned int prefix_len;
    int64_t delay_ns;
    int64_t jitter_ns;
    double loss; /* probability 0..1 */
    unsigned int dup;
    unsigned int ttl;
    bool corrupt;
    bool wrongid;
    bool have_src;               /* src=: replies come from src, not from the destination */
    unsigned char src[16];       /* (same family as the rule) */
    unsigned int forge;          /* forge=: forged packets sent per request, see resp_forge */
    unsigned char forge_src[16]; /* forge_src=: the source they claim */
    bool have_forge_src;
    unsigned int forge_quote; /* forge_quote=: payload bytes the forged errors quote, at most */
    bool error;               /* error=: an ICMP error instead of the echo reply */
    uint8_t error_type;       /* (its type and code) */
    uint8_t error_code;
    unsigned int quote; /* quote=: payload bytes the error quotes after the echo header */
};

struct resp_rules {
    struct resp_rule *items;
    size_t count;
    size_t capacity;
};

/* Addressing of one echo request, shared by the parsed request and the pending reply. */
struct resp_echo {
    int family;
    unsigned char src[16];
    unsigned char dst[16];
    uint32_t scope_id;
    uint16_t id;    /* host order, as in the request */
    uint16_t seq;   /* host order, as in the request */
    uint16_t cksum; /* the request's ICMP checksum, host order (what an error quotes) */
    uint32_t payload_len;
};

struct resp_request {
    struct resp_echo echo;
    const unsigned char *payload; /* points into the receive buffer */
    int64_t rx_ns;
};

struct resp_pending {
    int64_t due_ns;
    uint64_t serial; /* FIFO among equal due times */
    int64_t rx_ns;
    int64_t delay_ns;
    uint32_t first_chunk;
    uint32_t rule_index;
    struct resp_echo echo;
};

struct resp_heap {
    struct resp_pending *items;
    uint32_t count;
    uint32_t capacity;
};

struct resp_pool {
    unsigned char *data;
    uint32_t *next;
    uint32_t *free_stack;
    uint32_t free_count;
};

struct resp_rng {
    uint64_t s[4];
};

struct resp_counters {
    uint64_t rx;
    uint64_t replies;
    uint64_t drops;
    uint64_t dups;
    uint64_t nomatch;
    uint64_t overflow;
    uint64_t senderr;
    uint64_t ignored;
    uint64_t tx_kernel;
    uint64_t tx_user;
    uint64_t forged;
};

struct responder {
    int rx4_fd;
    int rx6_fd;
    int tx4_fd;
    int tx4frag_fd; /* v4 replies above the MTU, see resp_send_copy */
    int tx6_fd;
    int log_fd;
    bool tx4_stamping;
    bool tx4frag_stamping;
    bool tx6_stamping;
    const struct resp_rules *rules;
    struct resp_rng rng;
    struct resp_rng forge_rng; /* its own stream: forging never shifts loss or jitter draws */
    struct resp_heap heap;
    struct resp_pool pool;
    unsigned char *rx_buf; /* RESP_MAX_PACKET + 1, so an oversized datagram shows MSG_TRUNC */
    unsigned char *tx_buf; /* IP header + RESP_MAX_PACKET */
    uint64_t serial;
    int64_t wake_late_ewma_ns; /* how late ppoll timeouts fire, see resp_learn_wake_latency */
    int64_t wake_margin_ns;    /* wake this long before a reply is due, then spin */
    struct resp_counters counters;
};

struct resp_options {
    const char *rules_path;
    const char *log_path;
    const char *pidfile_path;
    uint64_t seed;
    bool have_seed;
};

struct resp_line {
    char buf[RESP_LINE_MAX];
    size_t len;
};

/* ---- time and randomness ---------------------------------------------------------------- */

static int64_t resp_timespec_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * RESP_NSEC_PER_SEC + (int64_t)ts->tv_nsec;
}

static int64_t resp_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return resp_timespec_ns(&ts);
}

static uint64_t resp_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void resp_rng_seed(struct resp_rng *rng, uint64_t seed)
{
    uint64_t state = seed;

    for (size_t i = 0; i < 4; i++)
        rng->s[i] = resp_splitmix64(&state);
}

static uint64_t resp_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman & Vigna). */
static uint64_t resp_rng_next(struct resp_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = resp_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = resp_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 bits. */
static double resp_rng_unit(struct resp_rng *rng)
{
    return (double)(resp_rng_next(rng) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, bound), bound > 0, without modulo bias. */
static uint64_t resp_rng_below(struct resp_rng *rng, uint64_t bound)
{
    uint64_t threshold = (0 - bound) % bound;

    for (;;) {
        uint64_t x = resp_rng_next(rng);
        if (x >= threshold)
            return x % bound;
    }
}

/* ---- log lines ---------------------------------------------------------------------------- */

static void resp_line_add(struct resp_line *line, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends to the line; the buffer always keeps one byte for the final '\n'. A field that does
 * not fit is cut (never happens with the fields we write: the longest line is ~400 bytes). */
static void resp_line_add(struct resp_line *line, const char *fmt, ...)
{
    size_t room = sizeof(line->buf) - 1 - line->len;
    va_list ap;
    int n;

    if (room == 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(line->buf + line->len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    line->len += (size_t)n < room ? (size_t)n : room - 1;
}

static void resp_line_start(struct resp_line *line, int64_t t_ns, const char *event)
{
    line->len = 0;
    resp_line_add(line, "t=%" PRId64 " ev=%s", t_ns, event);
}

static void resp_line_echo(struct resp_line *line, const struct resp_echo *echo)
{
    char src[INET6_ADDRSTRLEN];
    char dst[INET6_ADDRSTRLEN];

    if (!inet_ntop(echo->family, echo->src, src, sizeof(src)))
        memcpy(src, "?", 2);
    if (!inet_ntop(echo->family, echo->dst, dst, sizeof(dst)))
        memcpy(dst, "?", 2);
    resp_line_add(line, " fam=%d src=%s dst=%s id=%u seq=%u size=%" PRIu32,
                  echo->family == AF_INET ? 4 : 6, src, dst, (unsigned int)echo->id,
                  (unsigned int)echo->seq, echo->payload_len);
}

/* One write() per line so a reader tailing the log never sees half a line (O_APPEND keeps
 * concurrent writers whole too). A short write is finished rather than dropped. */
static void resp_line_write(int fd, struct resp_line *line)
{
    size_t off = 0;

    line->buf[line->len++] = '\n';
    while (off < line->len) {
        ssize_t n = write(fd, line->buf + off, line->len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it; the log is the report */
        }
        off += (size_t)n;
    }
}

/* ---- rules ------------------------------------------------------------------------------- */

static bool resp_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Parses digits only (no sign, no spaces, no base prefix) into *out if the value is <= max. */
static bool resp_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t value = 0;

    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (!resp_is_digit(*s))
            return false;
        uint64_t digit = (uint64_t)(*s - '0');
        if (digit > max || value > (max - digit) / 10)
            return false;
        value = value * 10 + digit;
    }
    *out = value;
    return true;
}

/* DUR: integer or decimal followed by ns|us|ms|s ("0" alone is accepted too). Exact integer
 * arithmetic; a value finer than 1 ns or above RESP_MAX_DURATION_NS is rejected. */
static bool resp_parse_duration(const char *s, int64_t *out)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {{"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}};
    uint64_t whole = 0;
    uint64_t frac = 0;
    uint64_t frac_scale = 1;
    uint64_t unit = 0;
    const char *p = s;

    if (strcmp(s, "0") == 0) {
        *out = 0;
        return true;
    }
    if (!resp_is_digit(*p))
        return false;
    for (; resp_is_digit(*p); p++) {
        if (whole > (uint64_t)RESP_MAX_DURATION_NS)
            return false;
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        p++;
        if (!resp_is_digit(*p))
            return false;
        for (; resp_is_digit(*p); p++) {
            if (frac_scale >= 1000000000u)
                return false;
            frac = frac * 10 + (uint64_t)(*p - '0');
            frac_scale *= 10;
        }
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].name) == 0)
            unit = units[i].ns;
    }
    if (unit == 0 || whole > (uint64_t)RESP_MAX_DURATION_NS / unit)
        return false;
    if ((frac * unit) % frac_scale != 0)
        return false;
    uint64_t total = whole * unit + frac * unit / frac_scale;
    if (total > (uint64_t)RESP_MAX_DURATION_NS)
        return false;
    *out = (int64_t)total;
    return true;
}

/* PCT: digits with at most one '.', 0..100. Checked by hand first because strtod alone would
 * also take "inf", "1e2", hex floats and leading spaces. */
static bool resp_parse_percent(const char *s, double *out)
{
    bool dot = false;
    char *end = NULL;

    if (!resp_is_digit(s[0]))
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '.' && !dot && resp_is_digit(p[1]))
            dot = true;
        else if (!resp_is_digit(*p))
            return false;
    }
    errno = 0;
    double value = strtod(s, &end);
    if (errno != 0 || *end != '\0' || value < 0.0 || value > 100.0)
        return false;
    *out = value;
    return true;
}

static bool resp_prefix_match(const unsigned char *prefix, unsigned int prefix_len,
                              const unsigned char *addr)
{
    unsigned int full = prefix_len / 8;
    unsigned int rest = prefix_len % 8;

    if (memcmp(prefix, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned int mask = (0xffu << (8 - rest)) & 0xffu;
    return ((unsigned int)(prefix[full] ^ addr[full]) & mask) == 0;
}

/* Clears the host bits of addr; returns true if any was set. */
static bool resp_clear_host_bits(unsigned char *addr, size_t addr_len, unsigned int prefix_len)
{
    bool had = false;

    for (size_t i = 0; i < addr_len; i++) {
        unsigned int keep;
        if ((i + 1) * 8 <= prefix_len)
            keep = 8;
        else if (i * 8 >= prefix_len)
            keep = 0;
        else
            keep = prefix_len - (unsigned int)i * 8;
        unsigned int mask = (0xffu << (8 - keep)) & 0xffu;
        if (((unsigned int)addr[i] & ~mask & 0xffu) != 0)
            had = true;
        addr[i] = (unsigned char)(addr[i] & mask);
    }
    return had;
}

static bool resp_parse_cidr(const char *s, struct resp_rule *rule, char *err, size_t err_size)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t addr_len = slash ? (size_t)(slash - s) : strlen(s);
    unsigned int max_len;
    uint64_t prefix_len;

    if (addr_len == 0 || addr_len >= sizeof(addr)) {
        snprintf(err, err_size, "bad CIDR '%.64s': not an IPv4 or IPv6 address", s);
        return false;
    }
    memcpy(addr, s, addr_len);
    addr[addr_len] = '\0';
    memset(rule->prefix, 0, sizeof(rule->prefix));
    if (inet_pton(AF_INET, addr, rule->prefix) == 1) {
        rule->family = AF_INET;
        max_len = 32;
    } else if (inet_pton(AF_INET6, addr, rule->prefix) == 1) {
        rule->family = AF_INET6;
        max_len = 128;
    } else {
        snprintf(err, err_size, "bad CIDR '%.64s': not an IPv4 or IPv6 address", s);
        return false;
    }
    prefix_len = max_len;
    if (slash && !resp_parse_uint(slash + 1, max_len, &prefix_len)) {
        snprintf(err, err_size, "bad CIDR '%.64s': prefix length must be 0..%u", s, max_len);
        return false;
    }
    rule->prefix_len = (unsigned int)prefix_len;
    if (resp_clear_host_bits(rule->prefix, max_len / 8, rule->prefix_len)) {
        char net[INET6_ADDRSTRLEN];
        if (!inet_ntop(rule->family, rule->prefix, net, sizeof(net)))
            memcpy(net, "?", 2);
        snprintf(err, err_size, "bad CIDR '%.64s': host bits set (did you mean %s/%u?)", s, net,
                 rule->prefix_len);
        return false;
    }
    return true;
}

/* Returns the next whitespace-separated token of *cursor, NUL-terminated in place, or NULL. */
static char *resp_next_token(char **cursor)
{
    char *p = *cursor;

    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (*p == '\0') {
        *cursor = p;
        return NULL;
    }
    char *start = p;
    while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
        p++;
    if (*p != '\0')
        *p++ = '\0';
    *cursor = p;
    return start;
}

/* An address of the rule's own family (rule->family is set by the CIDR, parsed first). */
static bool resp_parse_family_addr(const char *s, const struct resp_rule *rule, unsigned char *out)
{
    memset(out, 0, 16);
    return inet_pton(rule->family, s, out) == 1;
}

/* error=TYPE/CODE: an ICMP error type of the rule's family (RFC 792: 3 4 11 12; RFC 4443: 1 to
 * 4), so the requester's kernel takes it for one, and any code. */
static bool resp_parse_error_type(const char *s, struct resp_rule *rule)
{
    char type_text[8];
    const char *slash = strchr(s, '/');
    uint64_t type, code;

    if (!slash || (size_t)(slash - s) >= sizeof(type_text))
        return false;
    memcpy(type_text, s, (size_t)(slash - s));
    type_text[slash - s] = '\0';
    if (!resp_parse_uint(type_text, 255, &type) || !resp_parse_uint(slash + 1, 255, &code))
        return false;
    if (rule->family == AF_INET ? type != 3 && type != 4 && type != 11 && type != 12
                                : type < 1 || type > 4)
        return false;
    rule->error = true;
    rule->error_type = (uint8_t)type;
    rule->error_code = (uint8_t)code;
    return true;
}

static bool resp_parse_option(char *token, struct resp_rule *rule, unsigned int *seen, char *err,
                              size_t err_size)
{
    static const char *const keys[] = {"delay",       "jitter", "loss", "dup",   "corrupt",
                                       "wrongid",     "ttl",    "src",  "forge", "forge_src",
                                       "forge_quote", "error",  "quote"};
    char *eq = strchr(token, '=');
    size_t key_index = sizeof(keys) / sizeof(keys[0]);
    uint64_t number = 0;

    if (!eq) {
        snprintf(err, err_size, "expected key=value, got '%.64s'", token);
        return false;
    }
    *eq = '\0';
    const char *value = eq + 1;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(token, keys[i]) == 0)
            key_index = i;
    }
    if (key_index == sizeof(keys) / sizeof(keys[0])) {
        snprintf(err, err_size,
                 "unknown key '%.64s' (known: delay jitter loss dup corrupt wrongid ttl src forge "
                 "forge_src forge_quote error quote)",
                 token);
        return false;
    }
    if (*seen & (1u << key_index)) {
        snprintf(err, err_size, "key '%s' given twice", keys[key_index]);
        return false;
    }
    *seen |= 1u << key_index;

    bool ok;
    const char *want;
    switch (key_index) {
    case 0:
        ok = resp_parse_duration(value, &rule->delay_ns);
        want = "a duration like 20ms, 1.5ms, 500us, 2s (at most 3600s, whole ns)";
        break;
    case 1:
        ok = resp_parse_duration(value, &rule->jitter_ns);
        want = "a duration like 20ms, 1.5ms, 500us, 2s (at most 3600s, whole ns)";
        break;
    case 2:
        ok = resp_parse_percent(value, &rule->loss);
        rule->loss /= 100.0;
        want = "a percentage 0..100 (decimal allowed)";
        break;
    case 3:
        ok = resp_parse_uint(value, RESP_MAX_DUP, &number);
        rule->dup = (unsigned int)number;
        want = "an integer 0..16";
        break;
    case 4:
        ok = resp_parse_uint(value, 1, &number);
        rule->corrupt = number != 0;
        want = "0 or 1";
        break;
    case 5:
        ok = resp_parse_uint(value, 1, &number);
        rule->wrongid = number != 0;
        want = "0 or 1";
        break;
    case 6:
        /* 0 too: the kernel delivers a datagram with TTL 0 to a local receiver (only a
         * router drops it), and the client must report it as a TTL, not as "unknown". */
        ok = resp_parse_uint(value, 255, &number);
        rule->ttl = (unsigned int)number;
        want = "an integer 0..255";
        break;
    case 7:
        ok = resp_parse_family_addr(value, rule, rule->src);
        rule->have_src = ok;
        want = "an address of the rule's family";
        break;
    case 8:
        ok = resp_parse_uint(value, RESP_MAX_FORGE, &number);
        rule->forge = (unsigned int)number;
        want = "an integer 0..256";
        break;
    case 9:
        ok = resp_parse_family_addr(value, rule, rule->forge_src);
        rule->have_forge_src = ok;
        want = "an address of the rule's family";
        break;
    case 10:
        ok = resp_parse_uint(value, RESP_QUOTE_MAX, &number);
        rule->forge_quote = (unsigned int)number;
        want = "an integer 0..1024";
        break;
    case 11:
        ok = resp_parse_error_type(value, rule);
        want = rule->family == AF_INET ? "TYPE/CODE, TYPE one of 3 4 11 12, CODE 0..255"
                                       : "TYPE/CODE, TYPE one of 1 2 3 4, CODE 0..255";
        break;
    default:
        ok = resp_parse_uint(value, RESP_QUOTE_MAX, &number);
        rule->quote = (unsigned int)number;
        want = "an integer 0..1024";
        break;
    }
    if (!ok) {
        snprintf(err, err_size, "bad value '%.64s' for %s: want %s", value, keys[key_index], want);
        return false;
    }
    return true;
}

/* Parses one line (modified in place). Returns 1 and fills *rule for a rule line, 0 for a blank
 * or comment line, -1 with a message in err otherwise. */
static int resp_parse_rule_line(char *line, struct resp_rule *rule, char *err, size_t err_size)
{
    char *hash = strchr(line, '#');
    char *cursor = line;
    unsigned int seen = 0;
    char *token;

    if (hash)
        *hash = '\0';
    token = resp_next_token(&cursor);
    if (!token)
        return 0;
    memset(rule, 0, sizeof(*rule));
    rule->ttl = RESP_DEFAULT_TTL;
    rule->quote = RESP_QUOTE_MAX;
    rule->forge_quote = RESP_QUOTE_MAX;
    if (!resp_parse_cidr(token, rule, err, err_size))
        return -1;
    while ((token = resp_next_token(&cursor)) != NULL) {
        if (!resp_parse_option(token, rule, &seen, err, err_size))
            return -1;
    }
    if (rule->forge > 0 && !rule->have_forge_src) {
        snprintf(err, err_size, "forge= needs forge_src= (the source the forged packets claim)");
        return -1;
    }
    return 1;
}

static void resp_rules_cleanup(struct resp_rules *rules)
{
    free(rules->items);
    rules->items = NULL;
    rules->count = 0;
    rules->capacity = 0;
}

static int resp_rules_append(struct resp_rules *rules, const struct resp_rule *rule)
{
    if (rules->count == rules->capacity) {
        size_t capacity = rules->capacity ? rules->capacity * 2 : 16;
        if (capacity > SIZE_MAX / sizeof(*rules->items))
            return -ENOMEM;
        struct resp_rule *items = realloc(rules->items, capacity * sizeof(*items));
        if (!items)
            return -ENOMEM;
        rules->items = items;
        rules->capacity = capacity;
    }
    rules->items[rules->count++] = *rule;
    return 0;
}

/* Loads the rules file. Returns 0, or -1 with "FILE:LINE: problem" (or "FILE: problem") in err. */
static int resp_rules_load(const char *path, struct resp_rules *rules, char *err, size_t err_size)
{
    char problem[RESP_ERR_MAX / 2];
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t line_cap = 0;
    unsigned long line_no = 0;
    int rc = -1;

    if (!f) {
        snprintf(err, err_size, "%s: cannot open rules file: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        struct resp_rule rule;
        errno = 0;
        ssize_t n = getline(&line, &line_cap, f);
        if (n < 0) {
            if (ferror(f) || errno == ENOMEM) {
                snprintf(err, err_size, "%s:%lu: read error: %s", path, line_no + 1,
                         strerror(errno ? errno : EIO));
                goto out;
            }
            break;
        }
        line_no++;
        if (memchr(line, '\0', (size_t)n)) {
            snprintf(err, err_size, "%s:%lu: NUL byte in line", path, line_no);
            goto out;
        }
        int kind = resp_parse_rule_line(line, &rule, problem, sizeof(problem));
        if (kind < 0) {
            snprintf(err, err_size, "%s:%lu: %s", path, line_no, problem);
            goto out;
        }
        if (kind == 1 && resp_rules_append(rules, &rule) < 0) {
            snprintf(err, err_size, "%s:%lu: out of memory", path, line_no);
            goto out;
        }
    }
    rc = 0;
out:
    free(line);
    fclose(f);
    if (rc < 0)
        resp_rules_cleanup(rules);
    return rc;
}

static const struct resp_rule *resp_rules_match(const struct resp_rules *rules, int family,
                                                const unsigned char *addr, uint32_t *index)
{
    for (size_t i = 0; i < rules->count; i++) {
        const struct resp_rule *rule = &rules->items[i];
        if (rule->family == family && resp_prefix_match(rule->prefix, rule->prefix_len, addr)) {
            *index = (uint32_t)i;
            return rule;
        }
    }
    return NULL;
}

/* ---- packets ----------------------------------------------------------------------------- */

/* Internet checksum (RFC 1071) over bytes, big-endian words. Over a buffer that includes a
 * correct checksum field the result is 0. */
static uint64_t resp_sum(const unsigned char *data, size_t len, uint64_t sum)
{
    size_t i;

    for (i = 0; i + 1 < len; i += 2)
        sum += (uint64_t)data[i] << 8 | data[i + 1];
    if (i < len)
        sum += (uint64_t)data[i] << 8;
    return sum;
}

static uint16_t resp_fold(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffffu) + (sum >> 16);
    return (uint16_t)(~sum & 0xffffu);
}

static uint16_t resp_checksum(const unsigned char *data, size_t len)
{
    return resp_fold(resp_sum(data, len, 0));
}

static uint16_t resp_get16(const unsigned char *p)
{
    return (uint16_t)((unsigned int)p[0] << 8 | p[1]);
}

static void resp_put16(unsigned char *p, uint32_t value)
{
    p[0] = (unsigned char)((value >> 8) & 0xffu);
    p[1] = (unsigned char)(value & 0xffu);
}

/* Parses a datagram from the AF_INET raw ICMP socket (IP header included, as Linux delivers it:
 * total length in network order, covering the header). Returns 0 and fills req (payload points
 * into buf) for a well-formed, correctly checksummed echo request; -EINVAL otherwise. Raw
 * sockets get a copy before icmp_rcv() validates anything, so every check here matters. Pure. */
static int resp_parse_v4(const unsigned char *buf, size_t len, struct resp_request *req)
{
    if (len < RESP_IP_HEADER_LEN || (buf[0] >> 4) != 4)
        return -EINVAL;
    size_t header_len = (size_t)(buf[0] & 0x0fu) * 4;
    size_t total_len = resp_get16(buf + 2);
    if (header_len < RESP_IP_HEADER_LEN || header_len > len)
        return -EINVAL;
    if (total_len < header_len || total_len > len)
        return -EINVAL;
    if (buf[9] != IPPROTO_ICMP)
        return -EINVAL;
    if ((resp_get16(buf + 6) & 0x3fffu) != 0) /* MF or offset: a fragment, not reassembled */
        return -EINVAL;
    const unsigned char *icmp = buf + header_len;
    size_t icmp_len = total_len - header_len;
    if (icmp_len < RESP_ICMP_HEADER_LEN)
        return -EINVAL;
    if (icmp[0] != RESP_ICMP_ECHO || icmp[1] != 0)
        return -EINVAL;
    if (resp_checksum(icmp, icmp_len) != 0)
        return -EINVAL;
    memset(&req->echo, 0, sizeof(req->echo));
    req->echo.family = AF_INET;
    memcpy(req->echo.src, buf + 12, 4);
    memcpy(req->echo.dst, buf + 16, 4);
    req->echo.id = resp_get16(icmp + 4);
    req->echo.seq = resp_get16(icmp + 6);
    req->echo.cksum = resp_get16(icmp + 2);
    req->echo.payload_len = (uint32_t)(icmp_len - RESP_ICMP_HEADER_LEN);
    req->payload = icmp + RESP_ICMP_HEADER_LEN;
    return 0;
}

/* Parses an ICMPv6 message from the raw socket (no IPv6 header; the kernel has verified the
 * checksum). from is the sender, dst the IPV6_PKTINFO destination. Returns 0 for an echo
 * request, -EINVAL otherwise. Pure. */
static int resp_parse_v6(const unsigned char *buf, size_t len, const struct sockaddr_in6 *from,
                         const struct in6_addr *dst, struct resp_request *req)
{
    if (len < RESP_ICMP_HEADER_LEN || buf[0] != RESP_ICMP6_ECHO || buf[1] != 0)
        return -EINVAL;
    memset(&req->echo, 0, sizeof(req->echo));
    req->echo.family = AF_INET6;
    memcpy(req->echo.src, &from->sin6_addr, 16);
    memcpy(req->echo.dst, dst, 16);
    req->echo.scope_id = from->sin6_scope_id;
    req->echo.id = resp_get16(buf + 4);
    req->echo.seq = resp_get16(buf + 6);
    req->echo.cksum = resp_get16(buf + 2);
    req->echo.payload_len = (uint32_t)(len - RESP_ICMP_HEADER_LEN);
    req->payload = buf + RESP_ICMP_HEADER_LEN;
    return 0;
}

/* ---- payload pool and heap --------------------------------------------------------------- */

static int resp_pool_init(struct resp_pool *pool)
{
    memset(pool, 0, sizeof(*pool));
    pool->data = malloc((size_t)RESP_CHUNK_COUNT * RESP_CHUNK_SIZE);
    pool->next = malloc((size_t)RESP_CHUNK_COUNT * sizeof(*pool->next));
    pool->free_stack = malloc((size_t)RESP_CHUNK_COUNT * sizeof(*pool->free_stack));
    if (!pool->data || !pool->next || !pool->free_stack)
        return -ENOMEM;
    /* Push in reverse so chunk 0 is handed out first and low memory is reused. */
    for (uint32_t i = 0; i < RESP_CHUNK_COUNT; i++)
        pool->free_stack[i] = RESP_CHUNK_COUNT - 1 - i;
    pool->free_count = RESP_CHUNK_COUNT;
    return 0;
}

static void resp_pool_cleanup(struct resp_pool *pool)
{
    free(pool->data);
    free(pool->next);
    free(pool->free_stack);
    memset(pool, 0, sizeof(*pool));
}

/* Copies len bytes into a chain of chunks. Returns 0 and the first chunk (RESP_NO_CHUNK for
 * len 0), or -ENOBUFS when the pool cannot hold it. */
static int resp_pool_store(struct resp_pool *pool, const unsigned char *src, size_t len,
                           uint32_t *first)
{
    size_t needed = (len + RESP_CHUNK_SIZE - 1) / RESP_CHUNK_SIZE;
    uint32_t *link = first;

    if (needed > pool->free_count)
        return -ENOBUFS;
    for (size_t done = 0; done < len; done += RESP_CHUNK_SIZE) {
        uint32_t chunk = pool->free_stack[--pool->free_count];
        size_t part = len - done < RESP_CHUNK_SIZE ? len - done : RESP_CHUNK_SIZE;
        memcpy(pool->data + (size_t)chunk * RESP_CHUNK_SIZE, src + done, part);
        *link = chunk;
        link = &pool->next[chunk];
    }
    *link = RESP_NO_CHUNK;
    return 0;
}

static void resp_pool_load(const struct resp_pool *pool, uint32_t chunk, unsigned char *dst,
                           size_t len)
{
    for (size_t done = 0; done < len && chunk != RESP_NO_CHUNK; done += RESP_CHUNK_SIZE) {
        size_t part = len - done < RESP_CHUNK_SIZE ? len - done : RESP_CHUNK_SIZE;
        memcpy(dst + done, pool->data + (size_t)chunk * RESP_CHUNK_SIZE, part);
        chunk = pool->next[chunk];
    }
}

static void resp_pool_release(struct resp_pool *pool, uint32_t chunk)
{
    while (chunk != RESP_NO_CHUNK) {
        pool->free_stack[pool->free_count++] = chunk;
        chunk = pool->next[chunk];
    }
}

static bool resp_pending_before(const struct resp_pending *a, const struct resp_pending *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->serial < b->serial);
}

static int resp_heap_push(struct resp_heap *heap, const struct resp_pending *item)
{
    if (heap->count == heap->capacity)
        return -ENOBUFS;
    uint32_t i = heap->count++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!resp_pending_before(item, &heap->items[parent]))
            break;
        heap->items[i] = heap->items[parent];
        i = parent;
    }
    heap->items[i] = *item;
    return 0;
}

static void resp_heap_pop(struct resp_heap *heap, struct resp_pending *out)
{
    *out = heap->items[0];
    struct resp_pending last = heap->items[--heap->count];
    uint32_t n = heap->count;
    uint32_t i = 0;

    if (n == 0)
        return;
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && resp_pending_before(&heap->items[child + 1], &heap->items[child]))
            child++;
        if (!resp_pending_before(&heap->items[child], &last))
            break;
        heap->items[i] = heap->items[child];
        i = child;
    }
    heap->items[i] = last;
}

/* ---- sockets ----------------------------------------------------------------------------- */

static void resp_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int resp_setsockopt_int(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof(value)) < 0 ? -errno : 0;
}

/* 4 MiB buffers so a burst of thousands of requests is not dropped by the kernel while we are
 * busy sending; the FORCE variant ignores rmem_max/wmem_max (we are root), plain is fallback. */
static void resp_set_buffer(int fd, int force_name, int name)
{
    if (resp_setsockopt_int(fd, SOL_SOCKET, force_name, RESP_SOCKET_BUFFER) < 0)
        (void)resp_setsockopt_int(fd, SOL_SOCKET, name, RESP_SOCKET_BUFFER);
}

/* Software TX stamps, reported as an SCM_TIMESTAMPING cmsg on an empty errqueue message.
 * Best effort: a kernel refusing it only means txstamp=user everywhere. */
static bool resp_enable_tx_stamps(int fd)
{
    int flags =
        SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_TSONLY;

    return resp_setsockopt_int(fd, SOL_SOCKET, SO_TIMESTAMPING, flags) == 0;
}

static int resp_fail(char *err, size_t err_size, const char *what, int error)
{
    snprintf(err, err_size, "%s: %s", what, strerror(error));
    return -error;
}

static int resp_open_sockets(struct responder *r, char *err, size_t err_size)
{
    const int type = SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC;
    struct icmp6_filter filter;
    int rc;

    r->rx4_fd = socket(AF_INET, type, IPPROTO_ICMP);
    if (r->rx4_fd < 0)
        return resp_fail(err, err_size, "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)", errno);
    resp_set_buffer(r->rx4_fd, SO_RCVBUFFORCE, SO_RCVBUF);
    rc = resp_setsockopt_int(r->rx4_fd, SOL_SOCKET, SO_TIMESTAMPNS, 1);
    if (rc < 0)
        return resp_fail(err, err_size, "setsockopt(SO_TIMESTAMPNS, v4)", -rc);
    /* Kernel-side type filter (bit set = drop): only echo requests reach us. Optional: the
     * parser checks the type anyway. */
    uint32_t icmp_filter = ~(UINT32_C(1) << RESP_ICMP_ECHO);
    (void)setsockopt(r->rx4_fd, SOL_RAW, RESP_ICMP_FILTER, &icmp_filter, sizeof(icmp_filter));

    r->rx6_fd = socket(AF_INET6, type, IPPROTO_ICMPV6);
    if (r->rx6_fd < 0)
        return resp_fail(err, err_size, "socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)", errno);
    resp_set_buffer(r->rx6_fd, SO_RCVBUFFORCE, SO_RCVBUF);
    rc = resp_setsockopt_int(r->rx6_fd, SOL_SOCKET, SO_TIMESTAMPNS, 1);
    if (rc < 0)
        return resp_fail(err, err_size, "setsockopt(SO_TIMESTAMPNS, v6)", -rc);
    rc = resp_setsockopt_int(r->rx6_fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    if (rc < 0)
        return resp_fail(err, err_size, "setsockopt(IPV6_RECVPKTINFO)", -rc);
    /* In icmp6_filt a set bit blocks that type (glibc's ICMP6_FILTER_* macros shift a signed
     * int and trip -Wsign-conversion, hence by hand). Pass only echo requests. */
    memset(&filter, 0xff, sizeof(filter));
    filter.icmp6_filt[RESP_ICMP6_ECHO >> 5] &= ~(UINT32_C(1) << (RESP_ICMP6_ECHO & 31u));
    if (setsockopt(r->rx6_fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter)) < 0)
        return resp_fail(err, err_size, "setsockopt(ICMP6_FILTER)", errno);

    /* IPPROTO_RAW implies IP_HDRINCL and never receives anything. */
    r->tx4_fd = socket(AF_INET, type, IPPROTO_RAW);
    if (r->tx4_fd < 0)
        return resp_fail(err, err_size, "socket(AF_INET, SOCK_RAW, IPPROTO_RAW)", errno);
    rc = resp_setsockopt_int(r->tx4_fd, IPPROTO_IP, IP_HDRINCL, 1);
    if (rc < 0)
        return resp_fail(err, err_size, "setsockopt(IP_HDRINCL)", -rc);
    resp_set_buffer(r->tx4_fd, SO_SNDBUFFORCE, SO_SNDBUF);
    r->tx4_stamping = resp_enable_tx_stamps(r->tx4_fd);

    r->tx4frag_fd = socket(AF_INET, type, IPPROTO_ICMP);
    if (r->tx4frag_fd < 0)
        return resp_fail(err, err_size, "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)", errno);
    icmp_filter = UINT32_MAX; /* receive nothing: this socket only sends */
    if (setsockopt(r->tx4frag_fd, SOL_RAW, RESP_ICMP_FILTER, &icmp_filter, sizeof(icmp_filter)) < 0)
        return resp_fail(err, err_size, "setsockopt(ICMP_FILTER, send socket)", errno);
    /* No DF, like kernel echo replies, so big replies are fragmented locally. */
    rc = resp_setsockopt_int(r->tx4frag_fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT);
    if (rc < 0)
        return resp_fail(err, err_size, "setsockopt(IP_MTU_DISCOVER)", -rc);
    resp_set_buffer(r->tx4frag_fd, SO_SNDBUFFORCE, SO_SNDBUF);
    r->tx4frag_stamping = resp_enable_tx_stamps(r->tx4frag_fd);

    r->tx6_fd = socket(AF_INET6, type, IPPROTO_ICMPV6);
    if (r->tx6_fd < 0)
        return resp_fail(err, err_size, "socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)", errno);
    memset(&filter, 0xff, sizeof(filter)); /* block everything: this socket only sends */
    if (setsockopt(r->tx6_fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter)) < 0)
        return resp_fail(err, err_size, "setsockopt(ICMP6_FILTER, send socket)", errno);
    /* ipv6_chk_addr() does not look at local routes, so a PKTINFO source from a
     * `local ... dev lo` prefix is EINVAL unless the socket may use non-local addresses. */
    rc = resp_setsockopt_int(r->tx6_fd, IPPROTO_IPV6, IPV6_FREEBIND, 1);
    if (rc < 0)
        rc = resp_setsockopt_int(r->tx6_fd, IPPROTO_IPV6, IPV6_TRANSPARENT, 1);
    if (rc < 0)
        return resp_fail(err, err_size, "setsockopt(IPV6_FREEBIND and IPV6_TRANSPARENT)", -rc);
    resp_set_buffer(r->tx6_fd, SO_SNDBUFFORCE, SO_SNDBUF);
    r->tx6_stamping = resp_enable_tx_stamps(r->tx6_fd);
    return 0;
}

/* Reads the errqueue for the software TX stamp of the send just made: the first SCM_TSTAMP_SND
 * stamp not older than not_before_ns (the user stamp taken before sendmsg). Stale stamps of
 * earlier sends are consumed and discarded. Never blocks; returns false if none is there yet. */
static bool resp_read_tx_stamp(int fd, int64_t not_before_ns, int64_t *stamp_ns)
{
    for (;;) {
        union {
            char buf[CMSG_SPACE(sizeof(struct scm_timestamping)) +
                     CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in6)) +
                     64];
            struct cmsghdr align;
        } control;
        unsigned char data[64];
        struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
        struct msghdr msg;
        bool have_stamp = false;
        bool is_send_stamp = false;
        int64_t stamp = 0;

        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof(control.buf);
        if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING &&
                c->cmsg_len >= CMSG_LEN(sizeof(struct scm_timestamping))) {
                struct scm_timestamping ts;
                memcpy(&ts, CMSG_DATA(c), sizeof(ts));
                stamp = resp_timespec_ns(&ts.ts[0]);
                have_stamp = stamp != 0; /* 0 would mean a hardware stamp in ts[2] */
            } else if (((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
                        (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) &&
                       c->cmsg_len >= CMSG_LEN(sizeof(struct sock_extended_err))) {
                struct sock_extended_err ee;
                memcpy(&ee, CMSG_DATA(c), sizeof(ee));
                is_send_stamp =
                    ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING && ee.ee_info == SCM_TSTAMP_SND;
            }
        }
        if (have_stamp && is_send_stamp && stamp >= not_before_ns) {
            *stamp_ns = stamp;
            return true;
        }
    }
}

static void resp_drain_errqueue(int fd)
{
    int64_t unused;

    (void)resp_read_tx_stamp(fd, INT64_MAX, &unused);
}

/* ---- requests and replies ---------------------------------------------------------------- */

static const char *resp_mod_name(const struct resp_rule *rule)
{
    if (rule->error)
        return "error";
    if (rule->corrupt && rule->wrongid)
        return "corrupt,wrongid";
    if (rule->corrupt)
        return "corrupt";
    if (rule->wrongid)
        return "wrongid";
    return "none";
}

static void resp_log_request_event(struct responder *r, const char *event,
                                   const struct resp_request *req)
{
    struct resp_line line;

    resp_line_start(&line, req->rx_ns, event);
    resp_line_echo(&line, &req->echo);
    resp_line_write(r->log_fd, &line);
}

static void resp_forge(struct responder *r, const struct resp_request *req,
                       const struct resp_rule *rule);

static void resp_handle_request(struct responder *r, const struct resp_request *req)
{
    struct resp_pending pending;
    uint32_t rule_index = 0;

    r->counters.rx++;
    const struct resp_rule *rule =
        resp_rules_match(r->rules, req->echo.family, req->echo.dst, &rule_index);
    if (!rule) {
        r->counters.nomatch++;
        resp_log_request_event(r, "nomatch", req);
        return;
    }
    if (rule->forge > 0)
        resp_forge(r, req, rule);
    if (rule->loss > 0.0 && resp_rng_unit(&r->rng) < rule->loss) {
        r->counters.drops++;
        resp_log_request_event(r, "drop", req);
        return;
    }
    int64_t delay = rule->delay_ns;
    if (rule->jitter_ns > 0) {
        uint64_t span = 2 * (uint64_t)rule->jitter_ns + 1;
        delay += (int64_t)resp_rng_below(&r->rng, span) - rule->jitter_ns;
        if (delay < 0)
            delay = 0;
    }
    memset(&pending, 0, sizeof(pending));
    pending.rx_ns = req->rx_ns;
    pending.delay_ns = delay;
    pending.due_ns = req->rx_ns + delay;
    pending.serial = r->serial++;
    pending.rule_index = rule_index;
    pending.echo = req->echo;
    if (r->heap.count == r->heap.capacity ||
        resp_pool_store(&r->pool, req->payload, req->echo.payload_len, &pending.first_chunk) < 0) {
        r->counters.overflow++;
        resp_log_request_event(r, "overflow", req);
        return;
    }
    (void)resp_heap_push(&r->heap, &pending); /* capacity checked above */
}

/* Builds the ICMP(v6) reply at icmp. Returns its length. */
static size_t resp_build_icmp(const struct responder *r, const struct resp_pending *p,
                              const struct resp_rule *rule, unsigned char *icmp)
{
    bool v4 = p->echo.family == AF_INET;
    size_t payload_len = p->echo.payload_len;
    size_t len = RESP_ICMP_HEADER_LEN + payload_len;
    uint32_t id = rule->wrongid ? (uint32_t)p->echo.id ^ 0xffffu : p->echo.id;

    icmp[0] = (unsigned char)(v4 ? RESP_ICMP_ECHOREPLY : RESP_ICMP6_ECHOREPLY);
    icmp[1] = 0;
    icmp[2] = 0;
    icmp[3] = 0;
    resp_put16(icmp + 4, id);
    resp_put16(icmp + 6, p->echo.seq);
    resp_pool_load(&r->pool, p->first_chunk, icmp + RESP_ICMP_HEADER_LEN, payload_len);
    if (rule->corrupt) {
        size_t from = payload_len > RESP_CORRUPT_KEEP ? RESP_CORRUPT_KEEP : 0;
        for (size_t i = from; i < payload_len; i++)
            icmp[RESP_ICMP_HEADER_LEN + i] ^= RESP_CORRUPT_XOR;
    }
    /* v6: the kernel always computes the ICMPv6 checksum on raw ICMPv6 sockets (offset 2). */
    if (v4)
        resp_put16(icmp + 2, resp_checksum(icmp, len));
    return len;
}

/* The source of a reply: the address the request was sent to, or the rule's src=. */
static const unsigned char *resp_reply_src(const struct resp_pending *p,
                                           const struct resp_rule *rule)
{
    return rule->have_src ? rule->src : p->echo.dst;
}

static void resp_build_ip_header(const struct resp_pending *p, const struct resp_rule *rule,
                                 size_t icmp_len, unsigned char *ip)
{
    memset(ip, 0, RESP_IP_HEADER_LEN);
    ip[0] = 0x45; /* version 4, 5 words */
    resp_put16(ip + 2, (uint32_t)(RESP_IP_HEADER_LEN + icmp_len));
    /* ip[4..5] id 0: the kernel picks one; ip[6..7] no DF, like kernel echo replies. */
    ip[8] = (unsigned char)rule->ttl;
    ip[9] = IPPROTO_ICMP;
    /* ip[10..11] header checksum: always filled by the kernel for IP_HDRINCL. */
    memcpy(ip + 12, resp_reply_src(p, rule), 4);
    memcpy(ip + 16, p->echo.src, 4);
}

/* Appends one cmsg after prev (NULL: first) in a zeroed control buffer sized for it. */
static struct cmsghdr *resp_add_cmsg(struct msghdr *msg, struct cmsghdr *prev, int level, int type,
                                     const void *data, size_t len)
{
    struct cmsghdr *c = prev ? CMSG_NXTHDR(msg, prev) : CMSG_FIRSTHDR(msg);

    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(len);
    memcpy(CMSG_DATA(c), data, len);
    return c;
}

/* sendmsg plus the send stamp: the kernel TX stamp if it is already queued, else the user stamp
 * taken right before the call. Returns 0 or -errno. */
static int resp_sendmsg_stamped(int fd, bool stamping, const struct msghdr *msg, int64_t *sent_ns,
                                bool *kernel_stamp)
{
    int64_t before = resp_now_ns();

    while (sendmsg(fd, msg, 0) < 0) {
        if (errno != EINTR)
            return -errno;
        before = resp_now_ns();
    }
    *kernel_stamp = stamping && resp_read_tx_stamp(fd, before, sent_ns);
    if (!*kernel_stamp)
        *sent_ns = before;
    return 0;
}

/* Sends the reply already in r->tx_buf (v4: IP header + ICMP, v6: ICMPv6) once. Returns 0 with
 * the send stamp, or -errno. */
static int resp_send_copy(struct responder *r, const struct resp_pending *p,
                          const struct resp_rule *rule, size_t len, int64_t *sent_ns,
                          bool *kernel_stamp)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = r->tx_buf, .iov_len = len};
    struct msghdr msg;
    int ttl = (int)rule->ttl;
    int rc;

    memset(&msg, 0, sizeof(msg));
    memset(&control, 0, sizeof(control));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (p->echo.family == AF_INET) {
        struct sockaddr_in to;
        struct in_pktinfo info;

        memset(&to, 0, sizeof(to));
        to.sin_family = AF_INET;
        memcpy(&to.sin_addr, p->echo.src, 4);
        msg.msg_name = &to;
        msg.msg_namelen = sizeof(to);
        rc = resp_sendmsg_stamped(r->tx4_fd, r->tx4_stamping, &msg, sent_ns, kernel_stamp);
        if (rc != -EMSGSIZE)
            return rc;
        /* IP_HDRINCL never fragments (raw_send_hdrinc() says EMSGSIZE above the device MTU),
         * so a reply that big goes through a socket that builds the header itself: source via
         * IP_PKTINFO (accepted because the local route makes it a local address for
         * __ip_dev_find()), TTL via IP_TTL cmsg. */
        memset(&info, 0, sizeof(info));
        memcpy(&info.ipi_spec_dst, resp_reply_src(p, rule), 4);
        iov.iov_base = r->tx_buf + RESP_IP_HEADER_LEN;
        iov.iov_len = len - RESP_IP_HEADER_LEN;
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(info)) + CMSG_SPACE(sizeof(ttl));
        struct cmsghdr *c = resp_add_cmsg(&msg, NULL, IPPROTO_IP, IP_PKTINFO, &info, sizeof(info));
        resp_add_cmsg(&msg, c, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
        return resp_sendmsg_stamped(r->tx4frag_fd, r->tx4frag_stamping, &msg, sent_ns,
                                    kernel_stamp);
    }

    struct sockaddr_in6 to;
    struct in6_pktinfo info;

    memset(&to, 0, sizeof(to));
    to.sin6_family = AF_INET6;
    memcpy(&to.sin6_addr, p->echo.src, 16);
    to.sin6_scope_id = p->echo.scope_id;
    msg.msg_name = &to;
    msg.msg_namelen = sizeof(to);
    memset(&info, 0, sizeof(info));
    memcpy(&info.ipi6_addr, resp_reply_src(p, rule), 16);
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(info)) + CMSG_SPACE(sizeof(ttl));
    struct cmsghdr *c = resp_add_cmsg(&msg, NULL, IPPROTO_IPV6, IPV6_PKTINFO, &info, sizeof(info));
    resp_add_cmsg(&msg, c, IPPROTO_IPV6, IPV6_HOPLIMIT, &ttl, sizeof(ttl));
    return resp_sendmsg_stamped(r->tx6_fd, r->tx6_stamping, &msg, sent_ns, kernel_stamp);
}

/* The echo request an ICMP error quotes: from src to dst, with this header and payload. */
struct resp_quoted {
    int family;
    const unsigned char *src;
    const unsigned char *dst;
    uint16_t id;
    uint16_t seq;
    uint16_t cksum;               /* the echo's ICMP checksum, as it was on the wire */
    const unsigned char *payload; /* quote_len bytes of it (the start of the echo data) */
    uint32_t payload_len;         /* the whole echo data, for the quoted length fields */
    size_t quote_len;             /* echo data bytes quoted after the 8-byte echo header */
};

/* Builds at icmp an ICMP(v6) error of type/code quoting q: the IP header (v4 20 bytes, v6 40)
 * of the echo request, its 8-byte ICMP header and q->quote_len bytes of its data; quote_len 0
 * is RFC 792's minimum (the header and 64 bits of the datagram). Returns its length. */
static size_t resp_build_error(uint8_t type, uint8_t code, const struct resp_quoted *q,
                               unsigned char *icmp)
{
    bool v4 = q->family == AF_INET;
    size_t ip_len = v4 ? RESP_IP_HEADER_LEN : RESP_IP6_HEADER_LEN;
    unsigned char *ip = icmp + RESP_ICMP_HEADER_LEN;
    unsigned char *echo = ip + ip_len;
    uint32_t echo_len = RESP_ICMP_HEADER_LEN + q->payload_len; /* as sent, not as quoted */

    memset(icmp, 0, RESP_ICMP_HEADER_LEN + ip_len + RESP_ICMP_HEADER_LEN);
    icmp[0] = type;
    icmp[1] = code;
    if (v4) {
        ip[0] = 0x45;
        resp_put16(ip + 2, RESP_IP_HEADER_LEN + echo_len);
        ip[8] = 64;
        ip[9] = IPPROTO_ICMP;
        memcpy(ip + 12, q->src, 4);
        memcpy(ip + 16, q->dst, 4);
        resp_put16(ip + 10, resp_checksum(ip, RESP_IP_HEADER_LEN));
    } else {
        ip[0] = 0x60;
        resp_put16(ip + 4, echo_len);
        ip[6] = IPPROTO_ICMPV6;
        ip[7] = 64;
        memcpy(ip + 8, q->src, 16);
        memcpy(ip + 24, q->dst, 16);
    }
    echo[0] = (unsigned char)(v4 ? RESP_ICMP_ECHO : RESP_ICMP6_ECHO);
    resp_put16(echo + 2, q->cksum);
    resp_put16(echo + 4, q->id);
    resp_put16(echo + 6, q->seq);
    memcpy(echo + RESP_ICMP_HEADER_LEN, q->payload, q->quote_len);
    size_t len = RESP_ICMP_HEADER_LEN + ip_len + RESP_ICMP_HEADER_LEN + q->quote_len;
    if (v4) /* v6: the kernel checksums ICMPv6 on raw sockets */
        resp_put16(icmp + 2, resp_checksum(icmp, len));
    return len;
}

/* error=: builds at icmp the ICMP error that answers p instead of its echo reply, quoting at
 * most rule->quote bytes of its data. Returns its length. */
static size_t resp_build_error_reply(const struct responder *r, const struct resp_pending *p,
                                     const struct resp_rule *rule, unsigned char *icmp)
{
    unsigned char quote[RESP_QUOTE_MAX];
    struct resp_quoted q = {
        .family = p->echo.family,
        .src = p->echo.src,
        .dst = p->echo.dst,
        .id = p->echo.id,
        .seq = p->echo.seq,
        .cksum = p->echo.cksum,
        .payload = quote,
        .payload_len = p->echo.payload_len,
        .quote_len = p->echo.payload_len < rule->quote ? p->echo.payload_len : rule->quote,
    };

    resp_pool_load(&r->pool, p->first_chunk, quote, q.quote_len);
    return resp_build_error(rule->error_type, rule->error_code, &q, icmp);
}

static void resp_send_reply(struct responder *r, const struct resp_pending *p)
{
    const struct resp_rule *rule = &r->rules->items[p->rule_index];
    bool v4 = p->echo.family == AF_INET;
    size_t header_len = v4 ? RESP_IP_HEADER_LEN : 0;
    size_t icmp_len = rule->error ? resp_build_error_reply(r, p, rule, r->tx_buf + header_len)
                                  : resp_build_icmp(r, p, rule, r->tx_buf + header_len);

    if (v4)
        resp_build_ip_header(p, rule, icmp_len, r->tx_buf);
    for (unsigned int copy = 0; copy <= rule->dup; copy++) {
        struct resp_line line;
        int64_t sent_ns = 0;
        bool kernel_stamp = false;
        int rc = resp_send_copy(r, p, rule, header_len + icmp_len, &sent_ns, &kernel_stamp);

        if (rc < 0) {
            r->counters.senderr++;
            resp_line_start(&line, resp_now_ns(), "senderr");
            resp_line_echo(&line, &p->echo);
            resp_line_add(&line, " delay_ns=%" PRId64 " copy=%u errno=%d err=\"%s\"", p->delay_ns,
                          copy, -rc, strerror(-rc));
            resp_line_write(r->log_fd, &line);
            continue;
        }
        if (copy == 0)
            r->counters.replies++;
        else
            r->counters.dups++;
        if (kernel_stamp)
            r->counters.tx_kernel++;
        else
            r->counters.tx_user++;
        resp_line_start(&line, sent_ns, copy > 0 ? "dup" : rule->error ? "error" : "reply");
        resp_line_echo(&line, &p->echo);
        resp_line_add(&line, " delay_ns=%" PRId64 " hold_ns=%" PRId64 " ttl=%u mod=%s txstamp=%s",
                      p->delay_ns, sent_ns - p->rx_ns, rule->ttl, resp_mod_name(rule),
                      kernel_stamp ? "kernel" : "user");
        if (rule->error)
            resp_line_add(&line, " type=%u code=%u quote=%u", rule->error_type, rule->error_code,
                          p->echo.payload_len < rule->quote ? p->echo.payload_len : rule->quote);
        if (rule->have_src) {
            char from[INET6_ADDRSTRLEN];
            if (!inet_ntop(p->echo.family, rule->src, from, sizeof(from)))
                memcpy(from, "?", 2);
            resp_line_add(&line, " from=%s", from);
        }
        resp_line_write(r->log_fd, &line);
    }
    resp_pool_release(&r->pool, p->first_chunk);
}

/* Builds at icmp a forged ICMP(v6) error (v4 destination unreachable 3/1, v6 address
 * unreachable 1/3) quoting an echo request from req's source to claimed_dst with identifier
 * id, sequence seq and (up to quote_max bytes of) req's payload. Returns its length. */
static size_t resp_build_forged_error(const struct resp_request *req,
                                      const unsigned char *claimed_dst, uint16_t id, uint16_t seq,
                                      size_t quote_max, unsigned char *icmp)
{
    bool v4 = req->echo.family == AF_INET;
    struct resp_quoted q = {
        .family = req->echo.family,
        .src = req->echo.src,
        .dst = claimed_dst,
        .id = id,
        .seq = seq,
        .payload = req->payload,
        .payload_len = req->echo.payload_len,
        .quote_len = req->echo.payload_len < quote_max ? req->echo.payload_len : quote_max,
    };

    if (v4) {
        /* The quoted echo's own checksum, as the claimed echo would carry it with this
         * payload (the forger cannot know the real one's); v6 leaves it 0. */
        unsigned char header[RESP_ICMP_HEADER_LEN] = {RESP_ICMP_ECHO};
        resp_put16(header + 4, id);
        resp_put16(header + 6, seq);
        q.cksum = resp_fold(
            resp_sum(req->payload, req->echo.payload_len, resp_sum(header, sizeof(header), 0)));
    }
    return resp_build_error(v4 ? RESP_ICMP_UNREACH : RESP_ICMP6_UNREACH, v4 ? 1 : 3, &q, icmp);
}

/*
 * forge=N forge_src=ADDR: an attacker that sees this request (so it knows the client's
 * identifier and the payload, nonce included) answers it normally, and at once sends the
 * client N forged packets claiming to come from ADDR, in turn:
 *   0: an echo reply, the request's identifier, sequence +1, -1, +2, -2, ... of the request's
 *      (sequences handed out round-robin are guessable: these are the neighbours in flight);
 *   1: an echo reply, random identifier and sequence (a blind guess);
 *   2: an ICMP error (v4 3/1, v6 1/3) quoting an echo to ADDR with the request's identifier
 *      and sequence -1, +1, -2, +2, ...;
 *   3: an echo reply, the request's identifier, a random sequence.
 * Every one carries the request's payload (nonce right, send stamp that of another echo).
 * Each forged packet is logged: ev=forge fam= src=ADDR dst=client id= seq= kind=reply|error
 * req_id= req_seq= (those of the request it answers).
 */
static void resp_forge(struct responder *r, const struct resp_request *req,
                       const struct resp_rule *rule)
{
    struct resp_rule plain;
    struct resp_pending fake;
    bool v4 = req->echo.family == AF_INET;
    size_t header_len = v4 ? RESP_IP_HEADER_LEN : 0;

    /* A plain reply from forge_src: no other modification of the rule applies. */
    memset(&plain, 0, sizeof(plain));
    plain.family = rule->family;
    plain.ttl = rule->ttl;
    memset(&fake, 0, sizeof(fake));
    fake.echo = req->echo;
    memcpy(fake.echo.dst, rule->forge_src, sizeof(fake.echo.dst)); /* the claimed source */
    for (unsigned int i = 0; i < rule->forge; i++) {
        unsigned int kind = i % 4;
        unsigned int step = i / 4 / 2 + 1;
        bool up = (i / 4) % 2 == 0;
        uint16_t id = req->echo.id;
        uint16_t seq = req->echo.seq;
        unsigned char *icmp = r->tx_buf + header_len;
        size_t icmp_len;
        struct resp_line line;
        char src[INET6_ADDRSTRLEN];
        char dst[INET6_ADDRSTRLEN];
        int64_t sent_ns = 0;
        bool kernel_stamp = false;

        if (kind == 0)
            seq = (uint16_t)(up ? seq + step : seq - step);
        else if (kind == 2)
            seq = (uint16_t)(up ? seq - step : seq + step);
        else
            seq = (uint16_t)resp_rng_next(&r->forge_rng);
        if (kind == 1)
            id = (uint16_t)resp_rng_next(&r->forge_rng);
        if (kind == 2) {
            icmp_len =
                resp_build_forged_error(req, rule->forge_src, id, seq, rule->forge_quote, icmp);
        } else {
            icmp_len = RESP_ICMP_HEADER_LEN + req->echo.payload_len;
            memset(icmp, 0, RESP_ICMP_HEADER_LEN);
            icmp[0] = (unsigned char)(v4 ? RESP_ICMP_ECHOREPLY : RESP_ICMP6_ECHOREPLY);
            resp_put16(icmp + 4, id);
            resp_put16(icmp + 6, seq);
            memcpy(icmp + RESP_ICMP_HEADER_LEN, req->payload, req->echo.payload_len);
            if (v4)
                resp_put16(icmp + 2, resp_checksum(icmp, icmp_len));
        }
        if (v4)
            resp_build_ip_header(&fake, &plain, icmp_len, r->tx_buf);
        int rc = resp_send_copy(r, &fake, &plain, header_len + icmp_len, &sent_ns, &kernel_stamp);
        if (!inet_ntop(req->echo.family, rule->forge_src, src, sizeof(src)))
            memcpy(src, "?", 2);
        if (!inet_ntop(req->echo.family, req->echo.src, dst, sizeof(dst)))
            memcpy(dst, "?", 2);
        if (rc < 0) {
            r->counters.senderr++;
            resp_line_start(&line, resp_now_ns(), "senderr");
        } else {
            r->counters.forged++;
            resp_line_start(&line, sent_ns, "forge");
        }
        resp_line_add(&line, " fam=%d src=%s dst=%s id=%u seq=%u kind=%s req_id=%u req_seq=%u",
                      v4 ? 4 : 6, src, dst, (unsigned int)id, (unsigned int)seq,
                      kind == 2 ? "error" : "reply", (unsigned int)req->echo.id,
                      (unsigned int)req->echo.seq);
        if (rc < 0)
            resp_line_add(&line, " errno=%d err=\"%s\"", -rc, strerror(-rc));
        resp_line_write(r->log_fd, &line);
    }
}

static void resp_send_due(struct responder *r)
{
    struct resp_pending p;

    while (r->heap.count > 0 && r->heap.items[0].due_ns <= resp_now_ns()) {
        resp_heap_pop(&r->heap, &p);
        resp_send_reply(r, &p);
    }
}

/* Receive stamp from SO_TIMESTAMPNS; a missing one (never seen) falls back to now. */
static int64_t resp_rx_stamp(struct msghdr *msg, const struct in6_addr **pktinfo_dst)
{
    int64_t stamp = 0;

    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof(ts));
            stamp = resp_timespec_ns(&ts);
        } else if (pktinfo_dst && c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                   c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
            /* ipi6_addr is the first member of struct in6_pktinfo. */
            *pktinfo_dst = (const struct in6_addr *)(const void *)CMSG_DATA(c);
        }
    }
    return stamp != 0 ? stamp : resp_now_ns();
}

/* Reads up to RESP_DRAIN_BATCH datagrams. Returns true if the batch was used up (more may be
 * waiting), false once the socket is empty. */
static bool resp_drain(struct responder *r, int family)
{
    int fd = family == AF_INET ? r->rx4_fd : r->rx6_fd;

    for (int i = 0; i < RESP_DRAIN_BATCH; i++) {
        union {
            char buf[CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(struct in6_pktinfo)) +
                     128];
            struct cmsghdr align;
        } control;
        struct sockaddr_in6 from;
        struct iovec iov = {.iov_base = r->rx_buf, .iov_len = RESP_MAX_PACKET + 1};
        struct msghdr msg;
        struct resp_request req;
        const struct in6_addr *dst = NULL;

        memset(&msg, 0, sizeof(msg));
        memset(&from, 0, sizeof(from));
        msg.msg_name = &from;
        msg.msg_namelen = sizeof(from);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof(control.buf);
        ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false; /* EAGAIN, or a transient error we cannot act on */
        }
        if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
            r->counters.ignored++;
            continue;
        }
        req.rx_ns = resp_rx_stamp(&msg, family == AF_INET6 ? &dst : NULL);
        int rc;
        if (family == AF_INET)
            rc = resp_parse_v4(r->rx_buf, (size_t)n, &req);
        else if (dst && msg.msg_namelen >= sizeof(from))
            rc = resp_parse_v6(r->rx_buf, (size_t)n, &from, dst, &req);
        else
            rc = -EINVAL;
        if (rc < 0) {
            r->counters.ignored++;
            continue;
        }
        resp_handle_request(r, &req);
    }
    return true;
}

/* Learns how late ppoll wakes up (on this VM ~160 us even with 1 ns timer slack) and sets the
 * margin by which we wake early to spin on the clock: EWMA of lateness * 1.5 + 20 us, within
 * [20 us, 2 ms]. One wakeup that comes later than the margin only makes that reply late. */
static void resp_learn_wake_latency(struct responder *r, int64_t late_ns)
{
    if (late_ns < 0)
        late_ns = 0;
    r->wake_late_ewma_ns += (late_ns - r->wake_late_ewma_ns) / 8;
    int64_t margin = r->wake_late_ewma_ns + r->wake_late_ewma_ns / 2 + RESP_WAKE_MARGIN_MIN_NS;
    if (margin > RESP_WAKE_MARGIN_MAX_NS)
        margin = RESP_WAKE_MARGIN_MAX_NS;
    r->wake_margin_ns = margin;
}

/* Main loop. Returns 0 when a stop signal arrived, -errno if ppoll failed. The wait is split in
 * two: ppoll sleeps until (next due - wake margin), then ppoll with a zero timeout spins (still
 * draining sockets and taking signals) until the reply is due, so replies leave within a few
 * microseconds of their due time instead of a timer wakeup latency later. */
static int resp_run(struct responder *r, const sigset_t *wait_mask)
{
    struct pollfd fds[5] = {
        {.fd = r->rx4_fd, .events = POLLIN}, {.fd = r->rx6_fd, .events = POLLIN},
        {.fd = r->tx4_fd, .events = 0}, /* POLLERR only: late TX stamps to discard */
        {.fd = r->tx4frag_fd, .events = 0},  {.fd = r->tx6_fd, .events = 0},
    };
    bool more = false;

    while (!resp_stop_requested) {
        struct timespec timeout = {0, 0};
        struct timespec *timeout_p = &timeout;
        int64_t wake_target = 0;

        resp_send_due(r);
        if (!more && r->heap.count > 0) {
            int64_t now = resp_now_ns();
            int64_t target = r->heap.items[0].due_ns - r->wake_margin_ns;
            if (target > now) {
                int64_t wait = target - now;
                timeout.tv_sec = (time_t)(wait / RESP_NSEC_PER_SEC);
                timeout.tv_nsec = (long)(wait % RESP_NSEC_PER_SEC);
                wake_target = target;
            }
        } else if (!more) {
            timeout_p = NULL;
        }
        int n = ppoll(fds, 5, timeout_p, wait_mask);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        more = false;
        if (n == 0) {
            if (wake_target != 0)
                resp_learn_wake_latency(r, resp_now_ns() - wake_target);
            continue;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].revents & POLLERR)
                resp_drain_errqueue(fds[i].fd);
            if (fds[i].revents & POLLIN)
                more = resp_drain(r, i == 0 ? AF_INET : AF_INET6) || more;
            resp_send_due(r);
        }
        for (int i = 2; i < 5; i++) {
            if (fds[i].revents & POLLERR)
                resp_drain_errqueue(fds[i].fd);
        }
    }
    return 0;
}

/* ---- process ----------------------------------------------------------------------------- */

static void resp_on_signal(int signo)
{
    (void)signo;
    resp_stop_requested = 1;
}

/* Blocks SIGTERM/SIGINT (so they are only taken inside ppoll, never lost between the flag
 * check and the wait) and fills wait_mask with the mask ppoll should use. */
static int resp_setup_signals(sigset_t *wait_mask)
{
    struct sigaction sa;
    sigset_t block;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = resp_on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
        return -errno;
    sa.sa_handler = SIG_IGN; /* a closed log pipe must not kill us; write() fails with EPIPE */
    if (sigaction(SIGPIPE, &sa, NULL) < 0)
        return -errno;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    if (sigprocmask(SIG_BLOCK, &block, wait_mask) < 0)
        return -errno;
    sigdelset(wait_mask, SIGTERM);
    sigdelset(wait_mask, SIGINT);
    return 0;
}

/* Writes the pid through a temporary file and rename(), so the lab never reads a half file. */
static int resp_write_pidfile(const char *path, char *err, size_t err_size)
{
    char tmp[PATH_MAX];
    char text[32];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);

    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        snprintf(err, err_size, "%s: pidfile path too long", path);
        return -ENAMETOOLONG;
    }
    int len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return resp_fail(err, err_size, tmp, errno);
    if (write(fd, text, (size_t)len) != (ssize_t)len) {
        int error = errno ? errno : EIO;
        close(fd);
        unlink(tmp);
        return resp_fail(err, err_size, tmp, error);
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        int error = errno;
        unlink(tmp);
        return resp_fail(err, err_size, path, error);
    }
    return 0;
}

/* Returns 0, 1 for --help, or -1 with a message in err. */
static int resp_parse_args(int argc, char **argv, struct resp_options *opt, char *err,
                           size_t err_size)
{
    memset(opt, 0, sizeof(*opt));
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char **target = NULL;

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
            return 1;
        if (strcmp(arg, "--rules") == 0)
            target = &opt->rules_path;
        else if (strcmp(arg, "--log") == 0)
            target = &opt->log_path;
        else if (strcmp(arg, "--pidfile") == 0)
            target = &opt->pidfile_path;
        else if (strcmp(arg, "--seed") != 0) {
            snprintf(err, err_size, "unknown argument '%.64s'", arg);
            return -1;
        }
        if (i + 1 >= argc || argv[i + 1][0] == '\0') {
            snprintf(err, err_size, "%s needs a value", arg);
            return -1;
        }
        const char *value = argv[++i];
        if (!target) {
            if (opt->have_seed || !resp_parse_uint(value, UINT64_MAX, &opt->seed)) {
                snprintf(err, err_size, "--seed: want one unsigned 64-bit decimal, got '%.64s'",
                         value);
                return -1;
            }
            opt->have_seed = true;
            continue;
        }
        if (*target) {
            snprintf(err, err_size, "%s given twice", arg);
            return -1;
        }
        *target = value;
    }
    if (!opt->rules_path || !opt->log_path) {
        snprintf(err, err_size, "missing %s", !opt->rules_path ? "--rules" : "--log");
        return -1;
    }
    return 0;
}

static int resp_init(struct responder *r)
{
    memset(r, 0, sizeof(*r));
    r->rx4_fd = r->rx6_fd = r->tx4_fd = r->tx4frag_fd = r->tx6_fd = r->log_fd = -1;
    r->heap.capacity = RESP_HEAP_CAPACITY;
    r->wake_late_ewma_ns = RESP_WAKE_LATE_INIT_NS;
    resp_learn_wake_latency(r, RESP_WAKE_LATE_INIT_NS);
    r->heap.items = malloc((size_t)RESP_HEAP_CAPACITY * sizeof(*r->heap.items));
    r->rx_buf = malloc((size_t)RESP_MAX_PACKET + 1);
    r->tx_buf = malloc((size_t)RESP_IP_HEADER_LEN + RESP_MAX_PACKET);
    if (!r->heap.items || !r->rx_buf || !r->tx_buf)
        return -ENOMEM;
    return resp_pool_init(&r->pool);
}

static void resp_cleanup(struct responder *r)
{
    resp_close_fd(&r->rx4_fd);
    resp_close_fd(&r->rx6_fd);
    resp_close_fd(&r->tx4_fd);
    resp_close_fd(&r->tx4frag_fd);
    resp_close_fd(&r->tx6_fd);
    if (r->log_fd != STDOUT_FILENO)
        resp_close_fd(&r->log_fd);
    free(r->heap.items);
    free(r->rx_buf);
    free(r->tx_buf);
    resp_pool_cleanup(&r->pool);
}

int main(int argc, char **argv)
{
    char err[RESP_ERR_MAX];
    struct resp_options opt;
    struct resp_rules rules = {NULL, 0, 0};
    struct responder r;
    struct resp_line line;
    sigset_t wait_mask;
    bool pidfile_written = false;
    int status = RESP_EXIT_SYSTEM;

    int rc = resp_parse_args(argc, argv, &opt, err, sizeof(err));
    if (rc == 1) {
        printf("usage: " RESP_USAGE "\n", RESP_PROG);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s (usage: " RESP_USAGE ")\n", RESP_PROG, err, RESP_PROG);
        return RESP_EXIT_USAGE;
    }
    if (resp_rules_load(opt.rules_path, &rules, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", RESP_PROG, err);
        return RESP_EXIT_USAGE;
    }
    if (resp_init(&r) < 0) {
        fprintf(stderr, "%s: out of memory\n", RESP_PROG);
        goto out;
    }
    r.rules = &rules;
    if (strcmp(opt.log_path, "-") == 0) {
        r.log_fd = STDOUT_FILENO;
    } else {
        r.log_fd = open(opt.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (r.log_fd < 0) {
            fprintf(stderr, "%s: %s: cannot open log: %s\n", RESP_PROG, opt.log_path,
                    strerror(errno));
            goto out;
        }
    }
    rc = resp_setup_signals(&wait_mask);
    if (rc < 0) {
        fprintf(stderr, "%s: signal setup: %s\n", RESP_PROG, strerror(-rc));
        goto out;
    }
    if (resp_open_sockets(&r, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", RESP_PROG, err);
        goto out;
    }
    /* Default slack (50 us) would blur every hold time; 1 ns makes ppoll wake when asked. */
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    if (!opt.have_seed) {
        uint64_t mix = (uint64_t)resp_now_ns() ^ ((uint64_t)getpid() << 32);
        opt.seed = resp_splitmix64(&mix);
    }
    resp_rng_seed(&r.rng, opt.seed);
    resp_rng_seed(&r.forge_rng, opt.seed ^ 0x666f726765ULL);

    resp_line_start(&line, resp_now_ns(), "start");
    resp_line_add(&line, " seed=%" PRIu64 " pid=%ld rules=%zu", opt.seed, (long)getpid(),
                  rules.count);
    resp_line_write(r.log_fd, &line);
    if (opt.pidfile_path) {
        if (resp_write_pidfile(opt.pidfile_path, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s: %s\n", RESP_PROG, err);
            goto out;
        }
        pidfile_written = true;
    }

    rc = resp_run(&r, &wait_mask);
    if (rc < 0)
        fprintf(stderr, "%s: ppoll: %s\n", RESP_PROG, strerror(-rc));
    else
        status = 0;

    /* Replies still pending are abandoned (counted as pending=, never sent). */
    resp_line_start(&line, resp_now_ns(), "stop");
    resp_line_add(&line,
                  " rx=%" PRIu64 " replies=%" PRIu64 " drops=%" PRIu64 " dups=%" PRIu64
                  " nomatch=%" PRIu64 " overflow=%" PRIu64 " senderr=%" PRIu64 " ignored=%" PRIu64
                  " pending=%" PRIu32 " txstamp_kernel=%" PRIu64 " txstamp_user=%" PRIu64
                  " forged=%" PRIu64,
                  r.counters.rx, r.counters.replies, r.counters.drops, r.counters.dups,
                  r.counters.nomatch, r.counters.overflow, r.counters.senderr, r.counters.ignored,
                  r.heap.count, r.counters.tx_kernel, r.counters.tx_user, r.counters.forged);
    resp_line_write(r.log_fd, &line);
out:
    if (pidfile_written)
        unlink(opt.pidfile_path);
    resp_cleanup(&r);
    resp_rules_cleanup(&rules);
    return status;
}
