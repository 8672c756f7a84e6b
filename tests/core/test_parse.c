/*
 * core/'s pure functions over crafted byte buffers: no sockets.
 *
 * Every packet is built byte by byte from RFC 791/792 (IPv4, ICMP) and RFC 8200/4443 (IPv6,
 * ICMPv6) with a reference checksum of our own, so a parser that reads a field at the wrong
 * offset, trusts a length it has not checked, or maps a code to the wrong status fails here.
 * Truncations are tried at every byte, with the IPv4 total length and checksums recomputed for
 * the shorter packet, so each one is rejected for being short and not for a stale field.
 */
#include "core/icmp_internal.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>

#define ID  0xbeef
#define SEQ 0x0102

static const uint8_t client4[4] = {192, 0, 2, 1};
static const uint8_t target4[4] = {198, 51, 100, 7};
static const uint8_t router4[4] = {203, 0, 113, 254};
static const uint8_t client6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t target6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
static const uint8_t router6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe};

/* ---------------------------------------------------------------------------------------
 * Packet building.
 */

/* RFC 1071 over bytes in network order; the value is the checksum as a big-endian number. */
static uint16_t ref_checksum(const uint8_t *p, size_t n)
{
    uint32_t sum = 0;
    size_t i;

    for (i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static struct icmp_addr mkaddr(int family, const uint8_t *bytes)
{
    struct icmp_addr a;

    memset(&a, 0, sizeof(a));
    a.family = (uint16_t)family;
    memcpy(a.bytes, bytes, family == AF_INET ? 4 : 16);
    return a;
}

/* An IPv4 header of ihl words: options are NOPs closed by an end-of-options byte. */
static size_t put_ip4(uint8_t *p, unsigned int ihl, size_t tot_len, uint8_t ttl, uint8_t proto,
                      const uint8_t src[4], const uint8_t dst[4])
{
    size_t hl = (size_t)ihl * 4;

    memset(p, 0, hl);
    p[0] = (uint8_t)(0x40 | ihl);
    p[1] = 0;
    put16(p + 2, (uint32_t)tot_len);
    put16(p + 4, 0x04d2);
    p[6] = 0x40; /* DF */
    p[8] = ttl;
    p[9] = proto;
    memcpy(p + 12, src, 4);
    memcpy(p + 16, dst, 4);
    for (size_t i = 20; i < hl; i++)
        p[i] = 1;
    if (hl > 20)
        p[hl - 1] = 0;
    put16(p + 10, ref_checksum(p, hl));
    return hl;
}

/* An ICMP(v6) echo message; with v4 set its checksum is filled (ICMPv6 needs the addresses). */
static size_t put_echo(uint8_t *p, uint8_t type, const uint8_t *payload, size_t plen, bool v4)
{
    p[0] = type;
    p[1] = 0;
    p[2] = 0;
    p[3] = 0;
    put16(p + 4, ID);
    put16(p + 6, SEQ);
    memcpy(p + 8, payload, plen);
    if (v4)
        put16(p + 2, ref_checksum(p, 8 + plen));
    return 8 + plen;
}

/* After cutting an IPv4 packet to len bytes: total length and both checksums made right. */
static void fix_v4(uint8_t *buf, size_t len)
{
    if (len < 20)
        return;
    size_t hl = (size_t)(buf[0] & 0x0f) * 4;
    put16(buf + 2, (uint32_t)len);
    if (hl < 20 || hl > len)
        return;
    put16(buf + 10, 0);
    put16(buf + 10, ref_checksum(buf, hl));
    if (len >= hl + 4) {
        put16(buf + hl + 2, 0);
        put16(buf + hl + 2, ref_checksum(buf + hl, len - hl));
    }
}

static void fill_payload(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(0xa0 + i);
}

/* A v4 echo reply target4 -> client4, TTL 57. */
static size_t build_v4_reply(uint8_t *buf, unsigned int ihl, uint8_t type, size_t plen)
{
    uint8_t payload[256];
    size_t hl = (size_t)ihl * 4;

    fill_payload(payload, plen);
    put_ip4(buf, ihl, hl + 8 + plen, 57, IPPROTO_ICMP, target4, client4);
    put_echo(buf + hl, type, payload, plen, true);
    return hl + 8 + plen;
}

struct err_spec {
    uint8_t type;
    uint8_t code;
    unsigned int outer_ihl; /* v4 only */
    unsigned int q_ihl;     /* v4 only: IHL of the quoted header */
    uint8_t q_proto;        /* protocol / next header of the quoted packet */
    uint8_t q_type;         /* ICMP type of the quoted message */
    size_t plen;            /* payload bytes of the original echo */
    size_t quote_len;       /* bytes of the original datagram quoted (SIZE_MAX: all) */
};

/* An ICMPv4 error router4 -> client4 (TTL 250) quoting the datagram client4 -> target4. */
static size_t build_v4_error(uint8_t *buf, const struct err_spec *e)
{
    uint8_t orig[600], payload[256];
    size_t qhl = (size_t)e->q_ihl * 4;
    size_t olen = qhl + 8 + e->plen;

    fill_payload(payload, e->plen);
    put_ip4(orig, e->q_ihl, olen, 1, e->q_proto, client4, target4);
    put_echo(orig + qhl, e->q_type, payload, e->plen, true);
    size_t q = e->quote_len < olen ? e->quote_len : olen;
    size_t hl = (size_t)e->outer_ihl * 4;
    size_t len = hl + 8 + q;
    put_ip4(buf, e->outer_ihl, len, 250, IPPROTO_ICMP, router4, client4);
    uint8_t *icmp = buf + hl;
    memset(icmp, 0, 8);
    icmp[0] = e->type;
    icmp[1] = e->code;
    if (e->type == 3 && e->code == 4)
        put16(icmp + 6, 1400); /* next-hop MTU */
    if (e->type == 12)
        icmp[4] = 8; /* pointer */
    memcpy(icmp + 8, orig, q);
    put16(icmp + 2, ref_checksum(icmp, 8 + q));
    return len;
}

/* An ICMPv6 error (from router6, given separately) quoting client6 -> target6. */
static size_t build_v6_error(uint8_t *buf, const struct err_spec *e)
{
    uint8_t payload[256];
    size_t olen = 40 + 8 + e->plen;
    uint8_t orig[600];

    fill_payload(payload, e->plen);
    memset(orig, 0, 40);
    orig[0] = 0x60;
    put16(orig + 4, (uint32_t)(8 + e->plen));
    orig[6] = e->q_proto;
    orig[7] = 1;
    memcpy(orig + 8, client6, 16);
    memcpy(orig + 24, target6, 16);
    put_echo(orig + 40, e->q_type, payload, e->plen, false);
    size_t q = e->quote_len < olen ? e->quote_len : olen;
    memset(buf, 0, 8);
    buf[0] = e->type;
    buf[1] = e->code;
    if (e->type == 2)
        put16(buf + 6, 1280); /* MTU */
    memcpy(buf + 8, orig, q);
    return 8 + q;
}

/* The payload the parser reports: pointer and length (the pointer of an empty one is free). */
static bool payload_is(const struct icmp__packet *pkt, const uint8_t *at, size_t len)
{
    return pkt->payload_len == len && (len == 0 || pkt->payload == at);
}

static struct icmp__packet poisoned(void)
{
    struct icmp__packet pkt;

    memset(&pkt, 0xa5, sizeof(pkt));
    return pkt;
}

/* ---------------------------------------------------------------------------------------
 * IPv4 raw.
 */

static void test_v4_reply(void)
{
    static const unsigned int ihls[] = {5, 6, 7, 15};
    uint8_t buf[512];
    struct icmp_addr from = mkaddr(AF_INET, target4);

    for (size_t k = 0; k < sizeof(ihls) / sizeof(ihls[0]); k++) {
        size_t hl = (size_t)ihls[k] * 4;
        size_t len = build_v4_reply(buf, ihls[k], 0, 40);
        struct icmp__packet pkt = poisoned();

        int rc = icmp__parse_v4_raw(buf, len, &pkt);
        if (rc != 0) {
            TEST_FAIL_AT("v4 echo reply with IHL %u: rc %d", ihls[k], rc);
            continue;
        }
        CHECK_EQ(pkt.type, 0);
        CHECK_EQ(pkt.code, 0);
        CHECK(!pkt.is_error);
        CHECK_EQ(pkt.id, ID);
        CHECK_EQ(pkt.seq, SEQ);
        CHECK_EQ(pkt.ttl, 57);
        CHECK_EQ(pkt.from.family, AF_INET);
        CHECK(memcmp(pkt.from.bytes, target4, 4) == 0);
        /* The engine compares sources with icmp_addr_equal: no stale bytes may leak in. */
        CHECK(icmp_addr_equal(&pkt.from, &from));
        CHECK(pkt.payload == buf + hl + 8);
        CHECK_EQ(pkt.payload_len, 40);
        CHECK_EQ(pkt.status, ICMP_STATUS_SUCCESS);
    }

    /* Empty payload: still a reply (the payload check rejects it later, not the parser). */
    size_t len = build_v4_reply(buf, 5, 0, 0);
    struct icmp__packet pkt = poisoned();
    CHECK_EQ(icmp__parse_v4_raw(buf, len, &pkt), 0);
    CHECK_EQ(pkt.payload_len, 0);

    /* A damaged ICMP checksum (raw sockets see packets before the kernel checks it): any
     * one bit flipped in the message, the checksum field included, is refused. */
    len = build_v4_reply(buf, 5, 0, 40);
    for (size_t bit = 0; bit < (len - 20) * 8; bit += 7) {
        buf[20 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        pkt = poisoned();
        CHECK_EQ(icmp__parse_v4_raw(buf, len, &pkt), -EBADMSG);
        buf[20 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CHECK_EQ(icmp__parse_v4_raw(buf, len, &pkt), 0);
}

static void test_v4_truncated(void)
{
    uint8_t full[512], buf[512];
    static const unsigned int ihls[] = {5, 7};

    for (size_t k = 0; k < sizeof(ihls) / sizeof(ihls[0]); k++) {
        size_t hl = (size_t)ihls[k] * 4;
        size_t len = build_v4_reply(full, ihls[k], 0, 24);

        for (size_t cut = 0; cut <= len; cut++) {
            struct icmp__packet pkt = poisoned();

            /* Consistent total length: short only where a header is cut. */
            memcpy(buf, full, cut);
            fix_v4(buf, cut);
            int rc = icmp__parse_v4_raw(buf, cut, &pkt);
            int want = cut < hl + 8 ? -EINVAL : 0;
            if (rc != want)
                TEST_FAIL_AT("v4 reply IHL %u cut to %zu bytes: rc %d, want %d", ihls[k], cut, rc,
                             want);
            else if (rc == 0 && !payload_is(&pkt, buf + hl + 8, cut - hl - 8))
                TEST_FAIL_AT("v4 reply cut to %zu: payload %p len %zu, buf %p", cut,
                             (const void *)pkt.payload, pkt.payload_len, (const void *)buf);

            /* The header still claims the full length: inconsistent, so malformed. */
            if (cut < len) {
                memcpy(buf, full, cut);
                rc = icmp__parse_v4_raw(buf, cut, &pkt);
                if (rc != -EINVAL)
                    TEST_FAIL_AT("v4 reply IHL %u, %zu of %zu bytes: rc %d, want -EINVAL", ihls[k],
                                 cut, len, rc);
            }
        }
    }
}

static void test_v4_malformed(void)
{
    uint8_t buf[512];
    struct icmp__packet pkt = poisoned();
    size_t len;

    /* IHL below 5. */
    for (unsigned int ihl = 0; ihl < 5; ihl++) {
        len = build_v4_reply(buf, 5, 0, 24);
        buf[0] = (uint8_t)(0x40 | ihl);
        if (icmp__parse_v4_raw(buf, len, &pkt) != -EINVAL)
            TEST_FAIL_AT("v4 IHL %u accepted", ihl);
    }
    /* IHL beyond the packet: 60-byte header claimed, 48 bytes there. */
    len = build_v4_reply(buf, 5, 0, 20);
    buf[0] = 0x4f;
    CHECK_EQ(icmp__parse_v4_raw(buf, len, &pkt), -EINVAL);
    /* IHL leaves no room for the ICMP header. */
    len = build_v4_reply(buf, 5, 0, 0); /* 28 bytes */
    buf[0] = 0x46;
    CHECK_EQ(icmp__parse_v4_raw(buf, len, &pkt), -EINVAL);
    /* Not IPv4. */
    len = build_v4_reply(buf, 5, 0, 24);
    buf[0] = 0x65;
    CHECK_EQ(icmp__parse_v4_raw(buf, len, &pkt), -EINVAL);
    /* Total length too large, and too small for the headers. */
    len = build_v4_reply(buf, 5, 0, 24);
    put16(buf + 2, (uint32_t)len + 1);
    CHECK_EQ(icmp__parse_v4_raw(buf, len, &pkt), -EINVAL);
    put16(buf + 2, 20);
    CHECK_EQ(icmp__parse_v4_raw(buf, len, &pkt), -EINVAL);
    put16(buf + 2, 0);
    CHECK_EQ(icmp__parse_v4_raw(buf, len, &pkt), -EINVAL);
    /* Total length shorter than the buffer: reject it, or honour it and never read past it. */
    len = build_v4_reply(buf, 5, 0, 24);
    fix_v4(buf, len - 4); /* total length and checksums for the first len - 4 bytes */
    int rc = icmp__parse_v4_raw(buf, len, &pkt);
    if (rc != -EINVAL && !(rc == 0 && pkt.payload_len == 24 - 4))
        TEST_FAIL_AT("v4 total length %zu in %zu bytes: rc %d payload_len %zu", len - 4, len, rc,
                     rc == 0 ? pkt.payload_len : 0);
    /* Not ICMP at all (a raw ICMP socket never delivers it, but the parser must not care). */
    len = build_v4_reply(buf, 5, 0, 24);
    buf[9] = IPPROTO_UDP;
    rc = icmp__parse_v4_raw(buf, len, &pkt);
    if (rc != -EINVAL && rc != -ENOMSG)
        TEST_FAIL_AT("v4 UDP datagram: rc %d, want -EINVAL or -ENOMSG", rc);
    /* Nothing at all. */
    CHECK_EQ(icmp__parse_v4_raw(buf, 0, &pkt), -EINVAL);
}

static void test_v4_other_types(void)
{
    static const uint8_t types[] = {8, 13, 14, 9, 10, 17, 18, 42};
    uint8_t buf[512];
    struct icmp__packet pkt = poisoned();

    for (size_t k = 0; k < sizeof(types); k++) {
        size_t len = build_v4_reply(buf, 5, types[k], 24);
        int rc = icmp__parse_v4_raw(buf, len, &pkt);
        if (rc != -ENOMSG)
            TEST_FAIL_AT("v4 ICMP type %u: rc %d, want -ENOMSG", types[k], rc);
    }
}

struct status_case {
    uint8_t type;
    uint8_t code;
    enum icmp_status status;
};

static const struct status_case v4_errors[] = {
    {3, 0, ICMP_STATUS_DEST_NET_UNREACHABLE},   {3, 1, ICMP_STATUS_DEST_HOST_UNREACHABLE},
    {3, 2, ICMP_STATUS_DEST_PROT_UNREACHABLE},  {3, 3, ICMP_STATUS_DEST_PORT_UNREACHABLE},
    {3, 4, ICMP_STATUS_PACKET_TOO_BIG},         {3, 5, ICMP_STATUS_BAD_ROUTE},
    {3, 6, ICMP_STATUS_DEST_NET_UNREACHABLE},   {3, 7, ICMP_STATUS_DEST_HOST_UNREACHABLE},
    {3, 8, ICMP_STATUS_DEST_HOST_UNREACHABLE},  {3, 9, ICMP_STATUS_DEST_NET_UNREACHABLE},
    {3, 10, ICMP_STATUS_DEST_HOST_UNREACHABLE}, {3, 11, ICMP_STATUS_DEST_NET_UNREACHABLE},
    {3, 12, ICMP_STATUS_DEST_HOST_UNREACHABLE}, {3, 13, ICMP_STATUS_DEST_HOST_UNREACHABLE},
    {3, 14, ICMP_STATUS_DEST_HOST_UNREACHABLE}, {3, 15, ICMP_STATUS_DEST_HOST_UNREACHABLE},
    {11, 0, ICMP_STATUS_TTL_EXPIRED_TRANSIT},   {11, 1, ICMP_STATUS_TTL_EXPIRED_REASSEM},
    {12, 0, ICMP_STATUS_PARAM_PROBLEM},         {12, 1, ICMP_STATUS_PARAM_PROBLEM},
    {12, 2, ICMP_STATUS_PARAM_PROBLEM},         {4, 0, ICMP_STATUS_SOURCE_QUENCH},
};

/* Definite v6 mappings (icmp-status.md: the v6 names of 11002..11005, 11009, 11013..11014,
 * 11045 "scope mismatch"). RFC 4443 3.1: codes 5 (ingress/egress policy) and 6 (reject route)
 * are "more informative subsets of code 1", administratively prohibited. */
static const struct status_case v6_errors[] = {
    {1, 0, ICMP_STATUS_DEST_NET_UNREACHABLE},  {1, 1, ICMP_STATUS_DEST_PROT_UNREACHABLE},
    {1, 2, ICMP_STATUS_DEST_SCOPE_MISMATCH},   {1, 3, ICMP_STATUS_DEST_HOST_UNREACHABLE},
    {1, 4, ICMP_STATUS_DEST_PORT_UNREACHABLE}, {1, 5, ICMP_STATUS_DEST_PROT_UNREACHABLE},
    {1, 6, ICMP_STATUS_DEST_PROT_UNREACHABLE}, {2, 0, ICMP_STATUS_PACKET_TOO_BIG},
    {3, 0, ICMP_STATUS_TTL_EXPIRED_TRANSIT},   {3, 1, ICMP_STATUS_TTL_EXPIRED_REASSEM},
};

/* ICMPv6 parameter problem: the generic status, or the specific one for its code. */
static bool v6_param_problem_ok(uint8_t code, enum icmp_status s)
{
    if (s == ICMP_STATUS_PARAM_PROBLEM)
        return true;
    return (code == 0 && s == ICMP_STATUS_BAD_HEADER) ||
           (code == 1 && s == ICMP_STATUS_UNRECOGNIZED_NEXT_HEADER) ||
           (code == 2 && s == ICMP_STATUS_BAD_OPTION);
}

static void check_error_pkt(const char *what, int rc, const struct icmp__packet *pkt, uint8_t type,
                            uint8_t code, const struct icmp_addr *from,
                            const struct icmp_addr *quoted_dst, const uint8_t *payload,
                            size_t payload_len)
{
    if (rc != 0) {
        TEST_FAIL_AT("%s type %u code %u: rc %d", what, type, code, rc);
        return;
    }
    if (pkt->type != type || pkt->code != code || !pkt->is_error || pkt->id != ID ||
        pkt->seq != SEQ)
        TEST_FAIL_AT("%s type %u code %u: got type %u code %u is_error %d id %#x seq %#x", what,
                     type, code, pkt->type, pkt->code, pkt->is_error, pkt->id, pkt->seq);
    if (!icmp_addr_equal(&pkt->from, from))
        TEST_FAIL_AT("%s type %u code %u: from is not the router", what, type, code);
    if (!icmp_addr_equal(&pkt->quoted_dst, quoted_dst))
        TEST_FAIL_AT("%s type %u code %u: quoted_dst is not the target", what, type, code);
    if (!payload_is(pkt, payload, payload_len))
        TEST_FAIL_AT("%s type %u code %u: payload %p len %zu, want %p len %zu", what, type, code,
                     (const void *)pkt->payload, pkt->payload_len, (const void *)payload,
                     payload_len);
}

static void test_v4_errors(void)
{
    uint8_t buf[1024];
    struct icmp_addr router = mkaddr(AF_INET, router4), target = mkaddr(AF_INET, target4);

    for (size_t k = 0; k < sizeof(v4_errors) / sizeof(v4_errors[0]); k++) {
        const struct status_case *c = &v4_errors[k];
        /* Vary the header sizes with the case: options on the outer and the quoted header. */
        struct err_spec e = {
            c->type, c->code, 5 + (unsigned int)(k % 3), 5 + (unsigned int)(k % 2), IPPROTO_ICMP, 8,
            40,      SIZE_MAX};
        size_t len = build_v4_error(buf, &e);
        size_t off = e.outer_ihl * 4 + 8 + e.q_ihl * 4 + 8;
        struct icmp__packet pkt = poisoned();

        int rc = icmp__parse_v4_raw(buf, len, &pkt);
        check_error_pkt("v4 raw", rc, &pkt, c->type, c->code, &router, &target, buf + off, 40);
        if (rc == 0) {
            if (pkt.status != c->status)
                TEST_FAIL_AT("v4 type %u code %u: status %d, want %d", c->type, c->code,
                             (int)pkt.status, (int)c->status);
            CHECK_EQ(pkt.ttl, 250);
        }
    }

    /* RFC 792's minimum quote: the IP header and 8 bytes, no payload at all. */
    struct err_spec e = {11, 0, 5, 5, IPPROTO_ICMP, 8, 40, 28};
    size_t len = build_v4_error(buf, &e);
    struct icmp__packet pkt = poisoned();
    int rc = icmp__parse_v4_raw(buf, len, &pkt);
    check_error_pkt("v4 minimal quote", rc, &pkt, 11, 0, &router, &target, buf + len, 0);

    /* A quote cut inside the payload: the quoted total length is larger than what is here. */
    e.quote_len = 28 + 20;
    len = build_v4_error(buf, &e);
    pkt = poisoned();
    rc = icmp__parse_v4_raw(buf, len, &pkt);
    check_error_pkt("v4 cut quote", rc, &pkt, 11, 0, &router, &target, buf + 56, 20);
}

static void test_v4_error_truncated(void)
{
    uint8_t full[1024], buf[1024];
    static const unsigned int q_ihls[] = {5, 6};

    for (size_t k = 0; k < sizeof(q_ihls) / sizeof(q_ihls[0]); k++) {
        struct err_spec e = {3, 1, 5, q_ihls[k], IPPROTO_ICMP, 8, 24, SIZE_MAX};
        size_t len = build_v4_error(full, &e);
        size_t need = 20 + 8 + q_ihls[k] * 4 + 8;

        for (size_t cut = 0; cut <= len; cut++) {
            struct icmp__packet pkt = poisoned();

            memcpy(buf, full, cut);
            fix_v4(buf, cut);
            int rc = icmp__parse_v4_raw(buf, cut, &pkt);
            int want = cut < need ? -EINVAL : 0;
            if (rc != want)
                TEST_FAIL_AT("v4 error (quoted IHL %u) cut to %zu bytes: rc %d, want %d", q_ihls[k],
                             cut, rc, want);
            else if (rc == 0 && !payload_is(&pkt, buf + need, cut - need))
                TEST_FAIL_AT("v4 error cut to %zu: payload %p len %zu, buf %p", cut,
                             (const void *)pkt.payload, pkt.payload_len, (const void *)buf);
        }
    }

    /* Quoted IHL below 5. */
    struct err_spec e = {3, 1, 5, 5, IPPROTO_ICMP, 8, 24, SIZE_MAX};
    size_t len = build_v4_error(full, &e);
    for (unsigned int ihl = 0; ihl < 5; ihl++) {
        struct icmp__packet pkt = poisoned();
        memcpy(buf, full, len);
        buf[28] = (uint8_t)(0x40 | ihl);
        fix_v4(buf, len);
        if (icmp__parse_v4_raw(buf, len, &pkt) != -EINVAL)
            TEST_FAIL_AT("v4 error quoting a header with IHL %u accepted", ihl);
    }
    /* Quoted IHL pointing past the quote (60-byte header claimed, 40 bytes quoted). */
    struct icmp__packet pkt = poisoned();
    memcpy(buf, full, len);
    buf[28] = 0x4f;
    fix_v4(buf, 20 + 8 + 40);
    CHECK_EQ(icmp__parse_v4_raw(buf, 20 + 8 + 40, &pkt), -EINVAL);
}

static void test_v4_error_foreign(void)
{
    uint8_t buf[1024];
    struct icmp__packet pkt = poisoned();

    /* Errors about somebody else's traffic: a UDP datagram, an echo reply, a timestamp. */
    struct err_spec udp = {3, 3, 5, 5, IPPROTO_UDP, 8, 24, SIZE_MAX};
    size_t len = build_v4_error(buf, &udp);
    CHECK_EQ(icmp__parse_v4_raw(buf, len, &pkt), -ENOMSG);
    struct err_spec reply = {3, 1, 5, 5, IPPROTO_ICMP, 0, 24, SIZE_MAX};
    len = build_v4_error(buf, &reply);
    CHECK_EQ(icmp__parse_v4_raw(buf, len, &pkt), -ENOMSG);
    struct err_spec stamp = {11, 0, 5, 5, IPPROTO_ICMP, 13, 24, SIZE_MAX};
    len = build_v4_error(buf, &stamp);
    CHECK_EQ(icmp__parse_v4_raw(buf, len, &pkt), -ENOMSG);
}

/* ---------------------------------------------------------------------------------------
 * IPv6 raw.
 */

static void test_v6_raw(void)
{
    uint8_t buf[1024], payload[64];
    struct icmp_addr target = mkaddr(AF_INET6, target6), router = mkaddr(AF_INET6, router6);
    struct icmp__packet pkt = poisoned();

    fill_payload(payload, sizeof(payload));
    size_t len = put_echo(buf, 129, payload, 40, false);
    int rc = icmp__parse_v6_raw(buf, len, &target, &pkt);
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        CHECK_EQ(pkt.type, 129);
        CHECK_EQ(pkt.code, 0);
        CHECK(!pkt.is_error);
        CHECK_EQ(pkt.id, ID);
        CHECK_EQ(pkt.seq, SEQ);
        CHECK(icmp_addr_equal(&pkt.from, &target));
        CHECK_EQ(pkt.ttl, 0); /* the hop limit comes from a cmsg, not from the parser */
        CHECK(pkt.payload == buf + 8);
        CHECK_EQ(pkt.payload_len, 40);
        CHECK_EQ(pkt.status, ICMP_STATUS_SUCCESS);
    }

    /* Truncated echo reply. */
    for (size_t cut = 0; cut <= len; cut++) {
        pkt = poisoned();
        rc = icmp__parse_v6_raw(buf, cut, &target, &pkt);
        int want = cut < 8 ? -EINVAL : 0;
        if (rc != want)
            TEST_FAIL_AT("v6 reply cut to %zu bytes: rc %d, want %d", cut, rc, want);
        else if (rc == 0 && pkt.payload_len != cut - 8)
            TEST_FAIL_AT("v6 reply cut to %zu: payload_len %zu", cut, pkt.payload_len);
    }

    /* Other messages: echo request, router/neighbour discovery, MLD, and v4's reply type. */
    static const uint8_t others[] = {128, 130, 133, 134, 135, 136, 0, 8};
    for (size_t k = 0; k < sizeof(others); k++) {
        len = put_echo(buf, others[k], payload, 24, false);
        rc = icmp__parse_v6_raw(buf, len, &target, &pkt);
        if (rc != -ENOMSG)
            TEST_FAIL_AT("v6 ICMP type %u: rc %d, want -ENOMSG", others[k], rc);
    }

    /* Errors: the status table. */
    for (size_t k = 0; k < sizeof(v6_errors) / sizeof(v6_errors[0]) + 3; k++) {
        bool param = k >= sizeof(v6_errors) / sizeof(v6_errors[0]);
        uint8_t type = param ? 4 : v6_errors[k].type;
        uint8_t code =
            param ? (uint8_t)(k - sizeof(v6_errors) / sizeof(v6_errors[0])) : v6_errors[k].code;
        struct err_spec e = {type, code, 0, 0, IPPROTO_ICMPV6, 128, 40, SIZE_MAX};
        len = build_v6_error(buf, &e);
        pkt = poisoned();
        rc = icmp__parse_v6_raw(buf, len, &router, &pkt);
        check_error_pkt("v6 raw", rc, &pkt, type, code, &router, &target, buf + 56, 40);
        if (rc != 0)
            continue;
        if (param ? !v6_param_problem_ok(code, pkt.status) : pkt.status != v6_errors[k].status)
            TEST_FAIL_AT("v6 type %u code %u: status %d", type, code, (int)pkt.status);
    }

    /* Truncated errors: the IPv6 header, then the quoted ICMPv6 header. */
    struct err_spec e = {1, 3, 0, 0, IPPROTO_ICMPV6, 128, 24, SIZE_MAX};
    len = build_v6_error(buf, &e);
    for (size_t cut = 0; cut <= len; cut++) {
        pkt = poisoned();
        rc = icmp__parse_v6_raw(buf, cut, &router, &pkt);
        int want = cut < 56 ? -EINVAL : 0;
        if (rc != want)
            TEST_FAIL_AT("v6 error cut to %zu bytes: rc %d, want %d", cut, rc, want);
        else if (rc == 0 && !payload_is(&pkt, buf + 56, cut - 56))
            TEST_FAIL_AT("v6 error cut to %zu: payload %p len %zu, buf %p", cut,
                         (const void *)pkt.payload, pkt.payload_len, (const void *)buf);
    }

    /* Errors about somebody else's packets. */
    struct err_spec udp = {1, 4, 0, 0, IPPROTO_UDP, 128, 24, SIZE_MAX};
    len = build_v6_error(buf, &udp);
    CHECK_EQ(icmp__parse_v6_raw(buf, len, &router, &pkt), -ENOMSG);
    struct err_spec reply = {1, 3, 0, 0, IPPROTO_ICMPV6, 129, 24, SIZE_MAX};
    len = build_v6_error(buf, &reply);
    CHECK_EQ(icmp__parse_v6_raw(buf, len, &router, &pkt), -ENOMSG);
    struct err_spec nd = {3, 0, 0, 0, IPPROTO_ICMPV6, 135, 24, SIZE_MAX};
    len = build_v6_error(buf, &nd);
    CHECK_EQ(icmp__parse_v6_raw(buf, len, &router, &pkt), -ENOMSG);
}

/* ---------------------------------------------------------------------------------------
 * Ping sockets: the normal queue and the error queue.
 */

static void test_dgram(void)
{
    uint8_t buf[256], payload[64];
    struct icmp_addr t4 = mkaddr(AF_INET, target4), t6 = mkaddr(AF_INET6, target6);
    struct icmp__packet pkt;

    fill_payload(payload, sizeof(payload));
    for (int v6 = 0; v6 <= 1; v6++) {
        int family = v6 ? AF_INET6 : AF_INET;
        const struct icmp_addr *from = v6 ? &t6 : &t4;
        uint8_t reply = v6 ? 129 : 0, request = v6 ? 128 : 8;
        size_t len = put_echo(buf, reply, payload, 32, !v6);

        pkt = poisoned();
        int rc = icmp__parse_dgram(family, buf, len, from, &pkt);
        CHECK_EQ(rc, 0);
        if (rc == 0) {
            CHECK_EQ(pkt.type, reply);
            CHECK(!pkt.is_error);
            CHECK_EQ(pkt.id, ID);
            CHECK_EQ(pkt.seq, SEQ);
            CHECK(icmp_addr_equal(&pkt.from, from));
            CHECK_EQ(pkt.ttl, 0);
            CHECK(pkt.payload == buf + 8);
            CHECK_EQ(pkt.payload_len, 32);
            CHECK_EQ(pkt.status, ICMP_STATUS_SUCCESS);
        }
        for (size_t cut = 0; cut < 8; cut++) {
            if (icmp__parse_dgram(family, buf, cut, from, &pkt) != -EINVAL)
                TEST_FAIL_AT("v%d dgram reply of %zu bytes accepted", v6 ? 6 : 4, cut);
        }
        pkt = poisoned();
        CHECK_EQ(icmp__parse_dgram(family, buf, 8, from, &pkt), 0);
        CHECK_EQ(pkt.payload_len, 0);

        /* Anything but an echo reply of the family. */
        uint8_t others[] = {request, v6 ? 0 : 129, v6 ? 1 : 3, v6 ? 3 : 11};
        for (size_t k = 0; k < sizeof(others); k++) {
            len = put_echo(buf, others[k], payload, 32, !v6);
            rc = icmp__parse_dgram(family, buf, len, from, &pkt);
            if (rc != -ENOMSG)
                TEST_FAIL_AT("v%d dgram type %u: rc %d, want -ENOMSG", v6 ? 6 : 4, others[k], rc);
        }
    }
}

static void test_errqueue(void)
{
    uint8_t buf[256], payload[64];
    struct icmp_addr t4 = mkaddr(AF_INET, target4), t6 = mkaddr(AF_INET6, target6);
    struct icmp_addr r4 = mkaddr(AF_INET, router4), r6 = mkaddr(AF_INET6, router6);
    struct icmp__packet pkt;
    int rc;

    fill_payload(payload, sizeof(payload));
    size_t len4 = put_echo(buf, 8, payload, 40, true);
    for (size_t k = 0; k < sizeof(v4_errors) / sizeof(v4_errors[0]); k++) {
        const struct status_case *c = &v4_errors[k];
        pkt = poisoned();
        rc = icmp__parse_errqueue(AF_INET, c->type, c->code, &t4, &r4, buf, len4, &pkt);
        check_error_pkt("v4 errqueue", rc, &pkt, c->type, c->code, &r4, &t4, buf + 8, 40);
        if (rc == 0 && pkt.status != c->status)
            TEST_FAIL_AT("v4 errqueue type %u code %u: status %d, want %d", c->type, c->code,
                         (int)pkt.status, (int)c->status);
    }
    for (size_t cut = 0; cut < 8; cut++) {
        if (icmp__parse_errqueue(AF_INET, 11, 0, &t4, &r4, buf, cut, &pkt) != -EINVAL)
            TEST_FAIL_AT("v4 errqueue quote of %zu bytes accepted", cut);
    }
    pkt = poisoned();
    rc = icmp__parse_errqueue(AF_INET, 11, 0, &t4, &r4, buf, 8, &pkt);
    check_error_pkt("v4 errqueue header only", rc, &pkt, 11, 0, &r4, &t4, buf + 8, 0);

    size_t len6 = put_echo(buf, 128, payload, 40, false);
    for (size_t k = 0; k < sizeof(v6_errors) / sizeof(v6_errors[0]); k++) {
        const struct status_case *c = &v6_errors[k];
        pkt = poisoned();
        rc = icmp__parse_errqueue(AF_INET6, c->type, c->code, &t6, &r6, buf, len6, &pkt);
        check_error_pkt("v6 errqueue", rc, &pkt, c->type, c->code, &r6, &t6, buf + 8, 40);
        if (rc == 0 && pkt.status != c->status)
            TEST_FAIL_AT("v6 errqueue type %u code %u: status %d, want %d", c->type, c->code,
                         (int)pkt.status, (int)c->status);
    }
    for (size_t cut = 0; cut < 8; cut++) {
        if (icmp__parse_errqueue(AF_INET6, 1, 3, &t6, &r6, buf, cut, &pkt) != -EINVAL)
            TEST_FAIL_AT("v6 errqueue quote of %zu bytes accepted", cut);
    }

    /* The quote is not an echo request of our family. */
    size_t len = put_echo(buf, 0, payload, 24, true);
    CHECK_EQ(icmp__parse_errqueue(AF_INET, 3, 1, &t4, &r4, buf, len, &pkt), -ENOMSG);
    len = put_echo(buf, 129, payload, 24, false);
    CHECK_EQ(icmp__parse_errqueue(AF_INET6, 1, 3, &t6, &r6, buf, len, &pkt), -ENOMSG);
    len = put_echo(buf, 128, payload, 24, false);
    CHECK_EQ(icmp__parse_errqueue(AF_INET, 3, 1, &t4, &r4, buf, len, &pkt), -ENOMSG);
}

/* ---------------------------------------------------------------------------------------
 * The status table on its own.
 */

static void test_status_table(void)
{
    for (size_t k = 0; k < sizeof(v4_errors) / sizeof(v4_errors[0]); k++) {
        enum icmp_status s = icmp__status_from_icmp(AF_INET, v4_errors[k].type, v4_errors[k].code);
        if (s != v4_errors[k].status)
            TEST_FAIL_AT("v4 type %u code %u -> %d (code %d), want %d (code %d)", v4_errors[k].type,
                         v4_errors[k].code, (int)s, icmp_status_code(s), (int)v4_errors[k].status,
                         icmp_status_code(v4_errors[k].status));
    }
    for (size_t k = 0; k < sizeof(v6_errors) / sizeof(v6_errors[0]); k++) {
        enum icmp_status s = icmp__status_from_icmp(AF_INET6, v6_errors[k].type, v6_errors[k].code);
        if (s != v6_errors[k].status)
            TEST_FAIL_AT("v6 type %u code %u -> %d (code %d), want %d (code %d)", v6_errors[k].type,
                         v6_errors[k].code, (int)s, icmp_status_code(s), (int)v6_errors[k].status,
                         icmp_status_code(v6_errors[k].status));
    }
    for (uint8_t code = 0; code <= 2; code++) {
        enum icmp_status s = icmp__status_from_icmp(AF_INET6, 4, code);
        if (!v6_param_problem_ok(code, s))
            TEST_FAIL_AT("v6 parameter problem code %u -> %d", code, (int)s);
    }

    /* Not errors, unknown codes, and the other family's numbers. */
    static const struct {
        int family;
        uint8_t type, code;
    } none[] = {
        {AF_INET, 0, 0},    {AF_INET, 8, 0},    {AF_INET, 13, 0},   {AF_INET, 1, 0},
        {AF_INET6, 128, 0}, {AF_INET6, 129, 0}, {AF_INET6, 135, 0}, {AF_INET6, 11, 0},
        {AF_INET6, 12, 0},  {AF_INET6, 0, 0},
    };
    for (size_t k = 0; k < sizeof(none) / sizeof(none[0]); k++) {
        enum icmp_status s = icmp__status_from_icmp(none[k].family, none[k].type, none[k].code);
        if (s != ICMP_STATUS_GENERAL_FAILURE)
            TEST_FAIL_AT("family %d type %u code %u -> %d, want general_failure", none[k].family,
                         none[k].type, none[k].code, (int)s);
    }
    /* An unassigned code of a known error type: "none" of the table (GENERAL_FAILURE), or the
     * generic "destination unreachable, other codes" (11040); anything more specific is wrong. */
    enum icmp_status s16 = icmp__status_from_icmp(AF_INET, 3, 16);
    if (s16 != ICMP_STATUS_GENERAL_FAILURE && s16 != ICMP_STATUS_DEST_UNREACHABLE)
        TEST_FAIL_AT("v4 type 3 code 16 -> %d", (int)s16);
    enum icmp_status s7 = icmp__status_from_icmp(AF_INET6, 1, 7);
    if (s7 != ICMP_STATUS_GENERAL_FAILURE && s7 != ICMP_STATUS_DEST_UNREACHABLE)
        TEST_FAIL_AT("v6 type 1 code 7 -> %d", (int)s7);
    /* Same numbers, different families. */
    CHECK_EQ(icmp__status_from_icmp(AF_INET6, 3, 0), ICMP_STATUS_TTL_EXPIRED_TRANSIT);
    CHECK_EQ(icmp__status_from_icmp(AF_INET, 3, 0), ICMP_STATUS_DEST_NET_UNREACHABLE);
    CHECK_NE(icmp__status_from_icmp(AF_INET6, 4, 0), ICMP_STATUS_SOURCE_QUENCH);
}

/* ---------------------------------------------------------------------------------------
 * Payload.
 */

static const uint64_t nonce = 0x0102030405060708u;
static const int64_t stamp = 0x1122334455667788;

/* Which pattern icmp__payload_fill uses for NULL data: 1 = (i + seq) with i counted from the
 * start of the payload, 2 = counted from the end of our header; 0 = neither. */
static int pattern_kind(const uint8_t *p, size_t len, uint16_t seq)
{
    bool abs_ok = true, rel_ok = true;

    for (size_t i = 16; i < len; i++) {
        abs_ok = abs_ok && p[i] == (uint8_t)(i + seq);
        rel_ok = rel_ok && p[i] == (uint8_t)(i - 16 + seq);
    }
    return abs_ok ? 1 : rel_ok ? 2 : 0;
}

static void test_payload_fill(void)
{
    uint8_t p[300], q[300], data[300];

    memset(p, 0xee, sizeof(p));
    icmp__payload_fill(p, 200, nonce, stamp, 7, NULL);
    static const uint8_t header[16] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
                                       0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
    CHECK(memcmp(p, header, 16) == 0);
    int kind = pattern_kind(p, 200, 7);
    if (kind == 0)
        TEST_FAIL_AT("payload bytes 16.. follow neither (i + seq) pattern: %02x %02x %02x", p[16],
                     p[17], p[18]);
    CHECK_EQ(p[200], 0xee); /* nothing past len */

    /* Another seq, another pattern (so a reply to another echo does not match). */
    icmp__payload_fill(q, 200, nonce, stamp, 8, NULL);
    CHECK(memcmp(p + 16, q + 16, 184) != 0);
    CHECK_EQ(pattern_kind(q, 200, 8), kind);
    /* seq wraps as uint8 arithmetic. */
    icmp__payload_fill(q, 300, nonce, stamp, 0xffff, NULL);
    CHECK_EQ(pattern_kind(q, 300, 0xffff), kind);

    /* Caller data after the header. */
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 3);
    memset(p, 0xee, sizeof(p));
    icmp__payload_fill(p, 100, nonce, stamp, 7, data);
    CHECK(memcmp(p, header, 16) == 0);
    CHECK(memcmp(p + 16, data, 84) == 0);
    CHECK_EQ(p[100], 0xee);

    /* Exactly the header. */
    memset(p, 0xee, sizeof(p));
    icmp__payload_fill(p, 16, nonce, stamp, 7, NULL);
    CHECK(memcmp(p, header, 16) == 0);
    CHECK_EQ(p[16], 0xee);
}

static void check_roundtrip(size_t len, const void *data, size_t flip_step)
{
    uint8_t *p = malloc(len + 1);
    REQUIRE(p != NULL);

    icmp__payload_fill(p, len, nonce, stamp, 42, data);
    if (!icmp__payload_check(p, len, len, nonce, stamp, 42, data, false))
        TEST_FAIL_AT("payload of %zu bytes (data %s) does not check", len, data ? "given" : "NULL");
    if (!icmp__payload_check(p, len, len, nonce, stamp, 42, data, true))
        TEST_FAIL_AT("full quote of %zu bytes does not check", len);

    /* One flipped byte anywhere. */
    for (size_t i = 0; i < len; i += (i < 32 || i + 32 > len) ? 1 : flip_step) {
        p[i] ^= 0xff;
        if (icmp__payload_check(p, len, len, nonce, stamp, 42, data, false))
            TEST_FAIL_AT("payload of %zu bytes with byte %zu flipped passes", len, i);
        if (icmp__payload_check(p, len, len, nonce, stamp, 42, data, true))
            TEST_FAIL_AT("quote of %zu bytes with byte %zu flipped passes", len, i);
        p[i] ^= 0xff;
    }

    /* Wrong length either way. */
    p[len] = p[len - 1];
    if (icmp__payload_check(p, len - 1, len, nonce, stamp, 42, data, false))
        TEST_FAIL_AT("reply one byte short (%zu of %zu) passes", len - 1, len);
    if (icmp__payload_check(p, len + 1, len, nonce, stamp, 42, data, false))
        TEST_FAIL_AT("reply one byte long (%zu of %zu) passes", len + 1, len);
    if (icmp__payload_check(p, len + 1, len, nonce, stamp, 42, data, true))
        TEST_FAIL_AT("quote longer than sent (%zu of %zu) passes", len + 1, len);

    /* Other nonce, stamp, seq (seq only matters for the pattern). */
    CHECK(!icmp__payload_check(p, len, len, nonce ^ 1, stamp, 42, data, false));
    CHECK(!icmp__payload_check(p, len, len, nonce, stamp + 1, 42, data, false));
    if (data == NULL && len > 16)
        CHECK(!icmp__payload_check(p, len, len, nonce, stamp, 43, data, false));

    /* Truncated quotes: any prefix of at least the header, only when allowed. */
    for (size_t got = 0; got < len; got += (got < 64 || got + 64 > len) ? 1 : flip_step) {
        bool ok = icmp__payload_check(p, got, len, nonce, stamp, 42, data, true);
        if (ok != (got >= 16))
            TEST_FAIL_AT("quote of %zu of %zu bytes: check %d, want %d", got, len, ok, got >= 16);
        if (icmp__payload_check(p, got, len, nonce, stamp, 42, data, false))
            TEST_FAIL_AT("reply of %zu of %zu bytes passes without truncated", got, len);
        if (got > 16) {
            p[got - 1] ^= 0x01;
            if (icmp__payload_check(p, got, len, nonce, stamp, 42, data, true))
                TEST_FAIL_AT("quote of %zu bytes with its last byte flipped passes", got);
            p[got - 1] ^= 0x01;
        }
    }
    free(p);
}

static void test_payload_check(void)
{
    static uint8_t data[ICMP_PAYLOAD_MAX];

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 13 + 5);
    static const size_t lens[] = {16, 17, 56, 300};
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        check_roundtrip(lens[k], NULL, 1);
        check_roundtrip(lens[k], data, 1);
    }
    check_roundtrip(ICMP_PAYLOAD_MAX, NULL, 997);
    check_roundtrip(ICMP_PAYLOAD_MAX, data, 997);

    /* Data differing from what was sent. */
    uint8_t p[64], other[48];
    icmp__payload_fill(p, 64, nonce, stamp, 1, data);
    memcpy(other, data, sizeof(other));
    other[47] ^= 0x5a;
    CHECK(!icmp__payload_check(p, 64, 64, nonce, stamp, 1, other, false));
    /* The netlab corrupt host's reply: bytes from 16 on XOR 0x5a. */
    icmp__payload_fill(p, 64, nonce, stamp, 1, NULL);
    for (size_t i = 16; i < 64; i++)
        p[i] ^= 0x5a;
    CHECK(!icmp__payload_check(p, 64, 64, nonce, stamp, 1, NULL, false));
}

/* ---------------------------------------------------------------------------------------
 * Checksum.
 */

/* Compares n bytes with what must be on the wire; on a difference prints both in hex. */
static void check_bytes(const char *what, const uint8_t *got, const uint8_t *want, size_t n)
{
    char g[3 * 64 + 1], w[3 * 64 + 1];

    if (memcmp(got, want, n) == 0)
        return;
    for (size_t i = 0; i < n && i < 64; i++) {
        snprintf(g + 3 * i, 4, " %02x", got[i]);
        snprintf(w + 3 * i, 4, " %02x", want[i]);
    }
    TEST_FAIL_AT("%s: bytes differ\n  got: %s\n want: %s", what, g, w);
}

/*
 * Known vectors with their bytes on the wire, worked out by hand below: a checksum whose two
 * bytes come out swapped (returned or stored in the other order) fails here. Each one is
 * checked three ways: icmp__checksum's value, the bytes icmp__checksum_put writes (the raw
 * IPv4 send path), and that the finished message verifies to 0 (the receive path).
 */
static void test_checksum(void)
{
    /* RFC 1071, section 3: words 0001 f203 f4f5 f6f7 sum to 2ddf0, folded ddf2, so the
     * checksum is ~ddf2 = 220d: on the wire the bytes 22 0d. */
    static const uint8_t rfc[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    CHECK_EQ(ref_checksum(rfc, 8), 0x220d);
    CHECK_EQ(icmp__checksum(rfc, 8), 0x220d);

    /* The echo request of Windows' `ping` (identifier 1, sequence 1, the 32 data bytes
     * "abcdefghijklmnopqrstuvwabcdefghi"). Header words 0800 + 0001 + 0001 = 0802 (the
     * checksum field counts as 0); data words 6162 6364 6566 6768 696a 6b6c 6d6e 6f70 7172
     * 7374 7576 7761 6263 6465 6667 6869 sum to 6aa9d; together 6b29f, folded b29f + 6 =
     * b2a5, so the checksum is ~b2a5 = 4d5a: the bytes 4d 5a after type and code, as
     * Wireshark shows it in captures of that ping. */
    static const uint8_t ping_wire[40] = {0x08, 0x00, 0x4d, 0x5a, 0x00, 0x01, 0x00, 0x01, 'a', 'b',
                                          'c',  'd',  'e',  'f',  'g',  'h',  'i',  'j',  'k', 'l',
                                          'm',  'n',  'o',  'p',  'q',  'r',  's',  't',  'u', 'v',
                                          'w',  'a',  'b',  'c',  'd',  'e',  'f',  'g',  'h', 'i'};
    uint8_t msg[40];
    memcpy(msg, ping_wire, sizeof(msg));
    msg[2] = msg[3] = 0;
    CHECK_EQ(icmp__checksum(msg, sizeof(msg)), 0x4d5a);
    msg[2] = 0xaa; /* icmp__checksum_put zeroes the field before summing */
    msg[3] = 0x55;
    icmp__checksum_put(msg, sizeof(msg));
    check_bytes("Windows ping echo request", msg, ping_wire, sizeof(msg));
    CHECK_EQ(icmp__checksum(ping_wire, sizeof(ping_wire)), 0);

    /* Odd length: echo request, identifier 0x1234, sequence 1, one data byte 0x41 ('A'),
     * which counts as the high byte of a zero-padded word 4100. 0800 + 1234 + 0001 + 4100 =
     * 5b35, so the checksum is ~5b35 = a4ca: the bytes a4 ca. */
    static const uint8_t odd_wire[9] = {0x08, 0x00, 0xa4, 0xca, 0x12, 0x34, 0x00, 0x01, 0x41};
    uint8_t odd[9];
    memcpy(odd, odd_wire, sizeof(odd));
    icmp__checksum_put(odd, sizeof(odd));
    check_bytes("odd-length echo request", odd, odd_wire, sizeof(odd));
    CHECK_EQ(icmp__checksum(odd_wire, sizeof(odd_wire)), 0);
    /* Its header alone: 0800 + 1234 + 0001 = 1a35 -> ~1a35 = e5ca. */
    static const uint8_t echo[8] = {8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01};
    CHECK_EQ(icmp__checksum(echo, 8), 0xe5ca);

    /* Empty and zero buffers: ~0. */
    static const uint8_t zeros[9];
    CHECK_EQ(icmp__checksum(zeros, 0), 0xffff);
    CHECK_EQ(icmp__checksum(zeros, 9), 0xffff);
    /* Odd length: the last byte is the high byte of a zero-padded word (00 01 f2 -> 0dfe). */
    CHECK_EQ(icmp__checksum(rfc, 3), 0x0dfe);
    /* Carries that need more than one fold. */
    static uint8_t ff[4096];
    memset(ff, 0xff, sizeof(ff));
    CHECK_EQ(icmp__checksum(ff, sizeof(ff)), ref_checksum(ff, sizeof(ff)));

    /* Every length up to 300 of pseudo-random bytes, and a valid checksum verifies to 0. */
    uint8_t buf[301];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t n = 0; n <= 300; n++) {
        uint16_t got = icmp__checksum(buf, n);
        if (got != ref_checksum(buf, n))
            TEST_FAIL_AT("checksum of %zu bytes: %#06x, want %#06x", n, got, ref_checksum(buf, n));
    }
    uint8_t pkt[64];
    memcpy(pkt, buf, sizeof(pkt));
    put16(pkt + 2, 0);
    put16(pkt + 2, ref_checksum(pkt, sizeof(pkt)));
    CHECK_EQ(icmp__checksum(pkt, sizeof(pkt)), 0);
}

/* ---------------------------------------------------------------------------------------
 * Short quotes: the checksum an error quotes of our echo, and the clocks.
 */

/* Our echo request as the engine sends it (type, code 0, ID, SEQ, the engine's payload of
 * plen bytes), with its checksum; v6 over the pseudo-header of client6 -> target6. */
static size_t build_our_echo(uint8_t *p, bool v4, size_t plen, const void *data)
{
    uint8_t pseudo[40 + 8 + 1100];

    p[0] = v4 ? 8 : 128;
    p[1] = p[2] = p[3] = 0;
    put16(p + 4, ID);
    put16(p + 6, SEQ);
    icmp__payload_fill(p + 8, plen, nonce, stamp, SEQ, data);
    if (v4) {
        put16(p + 2, ref_checksum(p, 8 + plen));
        return 8 + plen;
    }
    /* RFC 8200 8.1: source, destination, upper-layer length, zeros, next header 58. */
    REQUIRE(plen <= 1100);
    memcpy(pseudo, client6, 16);
    memcpy(pseudo + 16, target6, 16);
    pseudo[32] = (uint8_t)((8 + plen) >> 24);
    pseudo[33] = (uint8_t)((8 + plen) >> 16);
    pseudo[34] = (uint8_t)((8 + plen) >> 8);
    pseudo[35] = (uint8_t)(8 + plen);
    pseudo[36] = pseudo[37] = pseudo[38] = 0;
    pseudo[39] = 58;
    memcpy(pseudo + 40, p, 8 + plen);
    put16(p + 2, ref_checksum(pseudo, 40 + 8 + plen));
    return 8 + plen;
}

static void test_echo_checksum(void)
{
    static const size_t lens[] = {16, 17, 24, 56, 255, 256, 257, 300, 1000};
    struct icmp_addr c4 = mkaddr(AF_INET, client4), t4 = mkaddr(AF_INET, target4);
    struct icmp_addr c6 = mkaddr(AF_INET6, client6), t6 = mkaddr(AF_INET6, target6);
    uint8_t echo[8 + 1000], data[1000];

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 3);
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        for (int v4 = 0; v4 < 2; v4++) {
            for (int with_data = 0; with_data < 2; with_data++) {
                const void *d = with_data ? data : NULL;
                build_our_echo(echo, v4, lens[k], d);
                uint16_t want = (uint16_t)(echo[2] << 8 | echo[3]);
                uint16_t got =
                    v4 ? icmp__echo_checksum(AF_INET, &c4, &t4, ID, SEQ, nonce, stamp, d, lens[k])
                       : icmp__echo_checksum(AF_INET6, &c6, &t6, ID, SEQ, nonce, stamp, d, lens[k]);
                if (got != want)
                    TEST_FAIL_AT("echo checksum, v%d, %zu bytes, data %d: %#06x, want %#06x",
                                 v4 ? 4 : 6, lens[k], with_data, got, want);
            }
        }
    }
    /* It proves the quote is of this echo: another nonce or send stamp (same everything
     * else) gives another checksum, as does another sequence number or source. */
    uint16_t base = icmp__echo_checksum(AF_INET, &c4, &t4, ID, SEQ, nonce, stamp, NULL, 56);
    CHECK_NE(icmp__echo_checksum(AF_INET, &c4, &t4, ID, SEQ, nonce ^ 0x10000, stamp, NULL, 56),
             base);
    CHECK_NE(icmp__echo_checksum(AF_INET, &c4, &t4, ID, SEQ, nonce, stamp + 1, NULL, 56), base);
    CHECK_NE(icmp__echo_checksum(AF_INET, &c4, &t4, ID, SEQ + 1, nonce, stamp, NULL, 56), base);
    base = icmp__echo_checksum(AF_INET6, &c6, &t6, ID, SEQ, nonce, stamp, NULL, 56);
    CHECK_NE(icmp__echo_checksum(AF_INET6, &t6, &t6, ID, SEQ, nonce, stamp, NULL, 56), base);
}

/* A parsed short quote of our 56-byte echo from src: its checksum, quoted, and recomputed. */
static void check_short_quote(const char *what, int rc, const struct icmp__packet *pkt, int family,
                              const struct icmp_addr *src, uint16_t cksum)
{
    if (rc != 0)
        return;
    if (pkt->quoted_cksum != cksum || !icmp_addr_equal(&pkt->quoted_src, src))
        TEST_FAIL_AT("%s: quoted checksum %#06x (want %#06x), or not our quoted source", what,
                     pkt->quoted_cksum, cksum);
    uint16_t again = icmp__echo_checksum(family, &pkt->quoted_src, &pkt->quoted_dst, pkt->id,
                                         pkt->seq, nonce, stamp, NULL, 56);
    if (again != cksum)
        TEST_FAIL_AT("%s: recomputed checksum %#06x, want %#06x", what, again, cksum);
}

/* RFC 792's minimum: an error quoting the IP header and the 8-byte ICMP header of our echo. */
static void test_short_quote(void)
{
    uint8_t orig[20 + 8 + 56], buf[256];
    struct icmp_addr c4 = mkaddr(AF_INET, client4), t4 = mkaddr(AF_INET, target4);
    struct icmp_addr c6 = mkaddr(AF_INET6, client6), t6 = mkaddr(AF_INET6, target6);
    struct icmp_addr r4 = mkaddr(AF_INET, router4), r6 = mkaddr(AF_INET6, router6);
    struct icmp__packet pkt;
    int rc;

    /* v4 raw: 20 + 8 outer, 20 + 8 quoted. */
    put_ip4(orig, 5, sizeof(orig), 63, IPPROTO_ICMP, client4, target4);
    build_our_echo(orig + 20, true, 56, NULL);
    uint16_t cksum4 = (uint16_t)(orig[22] << 8 | orig[23]);
    put_ip4(buf, 5, 20 + 8 + 28, 250, IPPROTO_ICMP, router4, client4);
    memset(buf + 20, 0, 8);
    buf[20] = 3;
    buf[21] = 1;
    memcpy(buf + 28, orig, 28);
    put16(buf + 22, ref_checksum(buf + 20, 8 + 28));
    pkt = poisoned();
    rc = icmp__parse_v4_raw(buf, 20 + 8 + 28, &pkt);
    check_error_pkt("v4 short quote", rc, &pkt, 3, 1, &r4, &t4, buf + 56, 0);
    check_short_quote("v4 short quote", rc, &pkt, AF_INET, &c4, cksum4);
    CHECK(rc != 0 || (pkt.has_ttl && pkt.ttl == 250));

    /* v6 raw: 8 outer, 40 + 8 quoted. */
    uint8_t echo6[8 + 56];
    build_our_echo(echo6, false, 56, NULL);
    uint16_t cksum6 = (uint16_t)(echo6[2] << 8 | echo6[3]);
    memset(buf, 0, 8 + 40);
    buf[0] = 1;
    buf[1] = 3;
    buf[8] = 0x60;
    put16(buf + 12, 8 + 56);
    buf[14] = 58;
    buf[15] = 64;
    memcpy(buf + 16, client6, 16);
    memcpy(buf + 32, target6, 16);
    memcpy(buf + 48, echo6, 8);
    pkt = poisoned();
    rc = icmp__parse_v6_raw(buf, 8 + 40 + 8, &r6, &pkt);
    check_error_pkt("v6 short quote", rc, &pkt, 1, 3, &r6, &t6, buf + 56, 0);
    check_short_quote("v6 short quote", rc, &pkt, AF_INET6, &c6, cksum6);
    CHECK(rc != 0 || !pkt.has_ttl);

    /* Ping socket error queue: the quoted ICMP header alone; no quoted source (the engine
     * takes ours from IPV6_PKTINFO). */
    pkt = poisoned();
    rc = icmp__parse_errqueue(AF_INET6, 1, 3, &t6, &r6, echo6, 8, &pkt);
    check_error_pkt("v6 errqueue short quote", rc, &pkt, 1, 3, &r6, &t6, echo6 + 8, 0);
    if (rc == 0) {
        CHECK_EQ(pkt.quoted_cksum, cksum6);
        CHECK_EQ(pkt.quoted_src.family, 0);
    }
}

/*
 * The timing of an answer, with the wall clock stepped between send and answer (as when an
 * operator or a bad NTP server sets it). Stamps are CLOCK_REALTIME (the kernel's); the echo
 * was sent at R (realtime) = M (monotonic), with a 1 s timeout.
 */
static void test_echo_time(void)
{
    const int64_t R = 1700000000 * (int64_t)1000000000, M = 5 * (int64_t)1000000000;
    const int64_t ms = 1000000, hour = 3600 * (int64_t)1000000000;
    struct icmp__echo_clock echo = {
        .sent = {R, M, 30}, .tx_rt = R + 15000, .deadline = M + 1000 * ms};
    struct icmp__clocks read;
    bool late = true;

    /* No step: reply stamped 20 ms after the send, read 50 us later. */
    read = (struct icmp__clocks){R + 20 * ms + 50000, M + 20 * ms + 50000, 30};
    CHECK_EQ(icmp__echo_time(&echo, R + 20 * ms, &read, &late), 20 * ms - 15000);
    CHECK(!late);
    /* Without a transmit stamp the RTT starts at the send. */
    struct icmp__echo_clock no_tx = echo;
    no_tx.tx_rt = -1;
    CHECK_EQ(icmp__echo_time(&no_tx, R + 20 * ms, &read, &late), 20 * ms);
    CHECK(!late);

    /* The wall clock set an hour ahead while the echo was out: the receive stamp is an hour
     * on, and so is the clock read with it. Still 20 ms, not late (realtime differences would
     * say an hour, and late). */
    read = (struct icmp__clocks){R + hour + 20 * ms + 50000, M + 20 * ms + 50000, 30};
    CHECK_EQ(icmp__echo_time(&echo, R + hour + 20 * ms, &read, &late), 20 * ms - 15000);
    CHECK(!late);
    /* Set an hour back: 20 ms again (realtime differences: minus an hour)... */
    read = (struct icmp__clocks){R - hour + 20 * ms + 50000, M + 20 * ms + 50000, 30};
    CHECK_EQ(icmp__echo_time(&echo, R - hour + 20 * ms, &read, &late), 20 * ms - 15000);
    CHECK(!late);
    /* ... and a reply 1.5 s after the send is late (realtime would put it 58 minutes before
     * its deadline and count it a success). */
    read = (struct icmp__clocks){R - hour + 1500 * ms + 50000, M + 1500 * ms + 50000, 30};
    icmp__echo_time(&echo, R - hour + 1500 * ms, &read, &late);
    CHECK(late);
    /* A step of a millisecond is a step too. */
    read = (struct icmp__clocks){R + ms + 20 * ms + 50000, M + 20 * ms + 50000, 30};
    CHECK_EQ(icmp__echo_time(&echo, R + ms + 20 * ms, &read, &late), 20 * ms - 15000);

    /* The deadline itself: a reply stamped at it is on time, one nanosecond later is late. */
    read = (struct icmp__clocks){R + 1000 * ms + 50000, M + 1000 * ms + 50000, 30};
    icmp__echo_time(&echo, R + 1000 * ms, &read, &late);
    CHECK(!late);
    icmp__echo_time(&echo, R + 1000 * ms + 1, &read, &late);
    CHECK(late);

    /* No step, but the send's reading was preempted between its clock reads (40 us of
     * uncertainty, the offset off by 39 us): a 20 us RTT stays exactly 20 us, the difference
     * of the kernel's stamps, instead of going negative. */
    struct icmp__echo_clock noisy = {
        .sent = {R, M - 39000, 40000}, .tx_rt = R + 5000, .deadline = M + 1000 * ms};
    read = (struct icmp__clocks){R + 30000, M + 30000, 30};
    CHECK_EQ(icmp__echo_time(&noisy, R + 25000, &read, &late), 20000);
    CHECK(!late);

    /* Both clocks read back to back, the monotonic one to within err. */
    struct icmp__clocks a, b;
    icmp__clocks_now(&a);
    icmp__clocks_now(&b);
    CHECK_GE(b.mono, a.mono);
    CHECK_GE(a.err, 0);
    CHECK_LT(b.mono - a.mono, 50 * ms);
    int64_t off = (b.rt - b.mono) - (a.rt - a.mono);
    if (off < -50 * ms || off > 50 * ms)
        TEST_FAIL_AT("realtime - monotonic moved by %" PRId64 " ns between two reads", off);
}

/* Received packets sit at any offset of a buffer: the checksum must not assume alignment
 * (UBSan aborts on a misaligned uint16_t load, so this runs last). */
static void test_checksum_unaligned(void)
{
    uint8_t buf[64];
    static const uint8_t rfc[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};

    memcpy(buf + 1, rfc, 8);
    CHECK_EQ(icmp__checksum(buf + 1, 8), 0x220d);
}

/* ---------------------------------------------------------------------------------------
 * Addresses, names, clock.
 */

static void test_addr(void)
{
    static const struct {
        const char *text;
        int family;
        const char *canonical;
    } cases[] = {
        {"127.0.0.1", AF_INET, "127.0.0.1"},
        {"0.0.0.0", AF_INET, "0.0.0.0"},
        {"255.255.255.255", AF_INET, "255.255.255.255"},
        {"::1", AF_INET6, "::1"},
        {"::", AF_INET6, "::"},
        {"2001:DB8:0:0::1", AF_INET6, "2001:db8::1"},
        {"::ffff:192.0.2.1", AF_INET6, "::ffff:192.0.2.1"},
        {"", 0, NULL},
        {"1.2.3", 0, NULL},
        {"198.18.1.256", 0, NULL},
        {"192.0.2.4 ", 0, NULL},
        {" 192.0.2.4", 0, NULL},
        {"192.0.2.4/32", 0, NULL},
        {"localhost", 0, NULL},
        {"example.com", 0, NULL},
        {"::g", 0, NULL},
        {"[::1]", 0, NULL},
        {"1:2:3:4:5:6:7:8:9", 0, NULL},
    };
    char text[64];

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct icmp_addr a;
        memset(&a, 0, sizeof(a));
        int rc = icmp_addr_parse(cases[k].text, &a);
        if (cases[k].family == 0) {
            if (rc != -EINVAL)
                TEST_FAIL_AT("icmp_addr_parse(\"%s\") = %d, want -EINVAL", cases[k].text, rc);
            continue;
        }
        if (rc != 0 || a.family != cases[k].family) {
            TEST_FAIL_AT("icmp_addr_parse(\"%s\") = %d family %u", cases[k].text, rc, a.family);
            continue;
        }
        CHECK_EQ(a.scope_id, 0);
        memset(text, 'x', sizeof(text));
        const char *r = icmp_addr_format(&a, text, sizeof(text));
        CHECK(r == text);
        CHECK_STR_EQ(text, cases[k].canonical);
    }

    struct icmp_addr a, b;
    CHECK_EQ(icmp_addr_parse("127.0.0.1", &a), 0);
    static const uint8_t lo4[4] = {127, 0, 0, 1};
    CHECK(memcmp(a.bytes, lo4, 4) == 0);
    CHECK_EQ(icmp_addr_parse("::1", &b), 0);
    CHECK_EQ(b.bytes[15], 1);
    CHECK_EQ(b.bytes[0], 0);

    /* Equality: family, bytes, scope. */
    struct icmp_addr x = mkaddr(AF_INET, target4), y = mkaddr(AF_INET, target4);
    CHECK(icmp_addr_equal(&x, &y));
    y.bytes[3] ^= 1;
    CHECK(!icmp_addr_equal(&x, &y));
    struct icmp_addr z6 = mkaddr(AF_INET6, target6), w6 = mkaddr(AF_INET6, target6);
    CHECK(icmp_addr_equal(&z6, &w6));
    w6.scope_id = 3;
    CHECK(!icmp_addr_equal(&z6, &w6));
    w6 = z6;
    w6.bytes[15] ^= 1;
    CHECK(!icmp_addr_equal(&z6, &w6));
    /* Same leading bytes, different family. */
    struct icmp_addr p4 = mkaddr(AF_INET, target6), p6 = mkaddr(AF_INET6, target6);
    memset(p4.bytes + 4, 0, 12);
    memcpy(p6.bytes, p4.bytes, 16);
    CHECK(!icmp_addr_equal(&p4, &p6));
    /* Parsed equals built. */
    struct icmp_addr parsed;
    CHECK_EQ(icmp_addr_parse("198.51.100.7", &parsed), 0);
    CHECK(icmp_addr_equal(&parsed, &x));

    /* Unknown family: "?" in the caller's buffer. */
    struct icmp_addr none;
    memset(&none, 0, sizeof(none));
    memset(text, 'x', sizeof(text));
    const char *r = icmp_addr_format(&none, text, sizeof(text));
    CHECK(r == text);
    CHECK_STR_EQ(text, "?");
}

static void test_names(void)
{
    for (int i = -1; i <= ICMP_STATUS_LIMIT; i++) {
        const char *name = icmp_status_name((enum icmp_status)i);
        int code = icmp_status_code((enum icmp_status)i);
        if (name == NULL) {
            CHECK_EQ(code, -1);
            continue;
        }
        CHECK_EQ(code, i == 0 ? 0 : 11000 + i);
    }
    CHECK_STR_EQ(icmp_status_name(ICMP_STATUS_DEST_HOST_UNREACHABLE), "dest_host_unreachable");
    CHECK_EQ(icmp_status_code(ICMP_STATUS_DEST_PROT_UNREACHABLE), 11004);
    CHECK_EQ(icmp_status_code(ICMP_STATUS_PACKET_TOO_BIG), 11009);
    CHECK_EQ(icmp_status_code(ICMP_STATUS_DEST_UNREACHABLE), 11040);
    CHECK_STR_EQ(icmp_socket_mode_name(ICMP_MODE_NONE), "none");
    CHECK_STR_EQ(icmp_socket_mode_name(ICMP_MODE_DGRAM), "dgram");
    CHECK_STR_EQ(icmp_socket_mode_name(ICMP_MODE_RAW), "raw");
}

static void test_clock(void)
{
    struct timespec ts;
    int64_t prev = icmp_now_ns();

    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t mono = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int64_t diff = mono - prev;
    if (diff < 0 || diff > 50000000)
        TEST_FAIL_AT("icmp_now_ns is %" PRId64 " ns off CLOCK_MONOTONIC", diff);
    for (int i = 0; i < 1000; i++) {
        int64_t now = icmp_now_ns();
        CHECK_GE(now, prev);
        prev = now;
    }
}

int main(void)
{
    test_v4_reply();
    test_v4_truncated();
    test_v4_malformed();
    test_v4_other_types();
    test_v4_errors();
    test_v4_error_truncated();
    test_v4_error_foreign();
    test_v6_raw();
    test_dgram();
    test_errqueue();
    test_status_table();
    test_payload_fill();
    test_payload_check();
    test_checksum();
    test_addr();
    test_names();
    test_clock();
    test_echo_checksum();
    test_short_quote();
    test_echo_time();
    test_checksum_unaligned();
    return TEST_DONE();
}
