/*
 * libFuzzer target over core/parse.c: every parser, the payload stamp and the checksum.
 *
 * Input: one selector byte, then the bytes the selected entry point reads.
 *   selector & 7: 0 raw IPv4 (IP header first), 1 raw ICMPv6, 2 ping socket IPv4,
 *                 3 ping socket IPv6, 4 error queue IPv4, 5 error queue IPv6 (then a type
 *                 and a code byte, then the quoted request), 6 payload fill/check,
 *                 7 checksum;
 *   selector & 8: the sender/destination addresses are passed as NULL; for raw IPv4 (which
 *                 has none) the ICMP checksum is left as it came, else it is made right.
 *
 * Beyond "no crash": every call must return 0, -ENOMSG or -EINVAL, and accept exactly what
 * the contract of core/icmp_internal.h accepts (an echo reply, or an ICMP error quoting an
 * echo request), decided here from the RFC layouts, independently of the parser. An
 * accepted packet must point into the message (payload running to its end, after an echo
 * header holding the id and sequence reported), carry a named status mapped from its
 * type/code, and give the same answer when its ICMP part is handed to the other form (raw
 * vs ping socket), as the kernel would deliver it there.
 */
#include "core/icmp_internal.h"
#include "fuzz.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

/* Sender and error-queue addresses handed to the parsers (documentation prefixes). */
static const struct icmp_addr from4 = {AF_INET, {198, 51, 100, 7}, 0};
static const struct icmp_addr from6 = {
    AF_INET6, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}, 3};
static const struct icmp_addr router6 = {
    AF_INET6, {0x20, 0x01, 0x0d, 0xb8, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe}, 0};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static bool addr_is(const struct icmp_addr *a, const struct icmp_addr *want)
{
    static const struct icmp_addr none;

    return icmp_addr_equal(a, want != NULL ? want : &none);
}

/* RFC 792 / RFC 4443 error types the contract lets through. */
static bool error_type(int family, uint8_t type)
{
    if (family == AF_INET)
        return type == 3 || type == 4 || type == 11 || type == 12;
    return type >= 1 && type <= 4;
}

/* What an accepted packet must look like: the reference reading of the same bytes. */
struct expect {
    bool accept;
    bool is_error;
    uint8_t type, code;
    bool bad_sum;        /* raw IPv4: the ICMP checksum does not verify (-EBADMSG) */
    const uint8_t *echo; /* the echo header (reply, or quoted request) */
    const uint8_t *end;  /* end of the message: the payload runs up to here */
    struct icmp_addr quoted_dst;
};

/* An echo request quoted at q (its header first) with n bytes: code 0, type by family. */
static bool quoted_request(int family, const uint8_t *q, size_t n)
{
    return n >= 8 && q[0] == (family == AF_INET ? 8 : 128) && q[1] == 0;
}

static struct expect expect_v4_raw(const uint8_t *buf, size_t len)
{
    struct expect e = {0};

    if (len < 20 || buf[0] >> 4 != 4 || buf[9] != 1)
        return e;
    size_t ihl = (size_t)(buf[0] & 15) * 4, total = rd16(buf + 2);
    /* The IP total length delimits the datagram; bytes past it (padding) are not ours. */
    if (ihl < 20 || total > len || total < ihl + 8)
        return e;
    const uint8_t *icmp = buf + ihl;
    /* RFC 1071: the message with its checksum sums to 0xffff (computed here, not with
     * the parser's own function). */
    uint32_t sum = 0;
    for (size_t i = 0; i < total - ihl; i++)
        sum += (uint32_t)icmp[i] << (i % 2 == 0 ? 8 : 0);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    if (sum != 0xffff) {
        e.bad_sum = true;
        return e;
    }
    e.type = icmp[0];
    e.code = icmp[1];
    e.end = buf + total;
    if (e.type == 0) {
        e.accept = true;
        e.echo = icmp;
        return e;
    }
    if (!error_type(AF_INET, e.type))
        return e;
    /* RFC 792: the error quotes the IP header and at least 8 bytes of the datagram. */
    const uint8_t *q = icmp + 8;
    size_t qlen = total - ihl - 8;
    if (qlen < 20 || q[0] >> 4 != 4 || q[9] != 1)
        return e;
    size_t qihl = (size_t)(q[0] & 15) * 4;
    if (qihl < 20 || qihl > qlen || !quoted_request(AF_INET, q + qihl, qlen - qihl))
        return e;
    e.accept = e.is_error = true;
    e.echo = q + qihl;
    e.quoted_dst.family = AF_INET;
    memcpy(e.quoted_dst.bytes, q + 16, 4);
    return e;
}

static struct expect expect_v6_raw(const uint8_t *buf, size_t len)
{
    struct expect e = {0};

    if (len < 8)
        return e;
    e.type = buf[0];
    e.code = buf[1];
    e.end = buf + len;
    if (e.type == 129) {
        e.accept = true;
        e.echo = buf;
        return e;
    }
    /* RFC 4443: the quote starts with the 40-byte IPv6 header; we send no extension headers. */
    const uint8_t *q = buf + 8;
    if (!error_type(AF_INET6, e.type) || len < 8 + 40 || q[0] >> 4 != 6 || q[6] != 58 ||
        !quoted_request(AF_INET6, q + 40, len - 48))
        return e;
    e.accept = e.is_error = true;
    e.echo = q + 40;
    e.quoted_dst.family = AF_INET6;
    memcpy(e.quoted_dst.bytes, q + 24, 16);
    return e;
}

/* The invariants of an accepted packet against the reference reading. */
static void check_accepted(int family, const struct icmp__packet *pkt, const struct expect *e)
{
    const uint8_t *payload = e->echo + 8;
    size_t payload_len = (size_t)(e->end - payload);

    FUZZ_ASSERT(e->accept);
    FUZZ_ASSERT(pkt->is_error == e->is_error);
    FUZZ_ASSERT(pkt->type == e->type && pkt->code == e->code);
    FUZZ_ASSERT(pkt->id == rd16(e->echo + 4) && pkt->seq == rd16(e->echo + 6));
    /* The payload is exactly the rest of the message: never beyond it, nothing left out. */
    FUZZ_ASSERT(pkt->payload_len == payload_len);
    FUZZ_ASSERT(payload_len == 0 || pkt->payload == payload);
    /* The engine indexes per-status arrays with it: a named status, mapped from type/code. */
    FUZZ_ASSERT((unsigned)pkt->status < ICMP_STATUS_LIMIT);
    FUZZ_ASSERT(icmp_status_name(pkt->status) != NULL);
    if (pkt->is_error) {
        FUZZ_ASSERT(pkt->status != ICMP_STATUS_SUCCESS);
        FUZZ_ASSERT(pkt->status == icmp__status_from_icmp(family, pkt->type, pkt->code));
        FUZZ_ASSERT(addr_is(&pkt->quoted_dst, &e->quoted_dst));
    } else {
        FUZZ_ASSERT(pkt->status == ICMP_STATUS_SUCCESS);
        FUZZ_ASSERT(addr_is(&pkt->quoted_dst, NULL));
    }
}

static void check_rc(int rc, const struct expect *e)
{
    FUZZ_ASSERT(rc == 0 || rc == -ENOMSG || rc == -EINVAL || rc == -EBADMSG);
    FUZZ_ASSERT((rc == -EBADMSG) == e->bad_sum);
    FUZZ_ASSERT((rc == 0) == e->accept);
}

/* The same packet as a ping socket shows it: replies on the normal queue, errors quoted
 * alone on the error queue (the kernel strips the IP headers). */
static void check_other_form(int family, const struct icmp__packet *raw, const struct expect *e,
                             const struct icmp_addr *from)
{
    struct icmp__packet d;
    size_t n = (size_t)(e->end - e->echo);
    int rc;

    if (raw->is_error) {
        rc = icmp__parse_errqueue(family, raw->type, raw->code, &raw->quoted_dst, from, e->echo, n,
                                  &d);
        FUZZ_ASSERT(rc == 0 && d.is_error && d.status == raw->status);
        FUZZ_ASSERT(addr_is(&d.from, from) && addr_is(&d.quoted_dst, &raw->quoted_dst));
    } else {
        rc = icmp__parse_dgram(family, e->echo, n, from, &d);
        FUZZ_ASSERT(rc == 0 && !d.is_error && d.status == ICMP_STATUS_SUCCESS);
        FUZZ_ASSERT(addr_is(&d.from, from));
    }
    FUZZ_ASSERT(d.type == raw->type && d.code == raw->code);
    FUZZ_ASSERT(d.id == raw->id && d.seq == raw->seq && d.payload_len == raw->payload_len);
    FUZZ_ASSERT(d.payload_len == 0 || d.payload == raw->payload);
    FUZZ_ASSERT(d.ttl == 0);
}

/* With fix set, a copy of buf whose ICMP checksum is made right first, so the fuzzer gets
 * past the checksum to the rest of the parser; without, the bytes as they came. */
static void fuzz_v4_raw(const uint8_t *in, size_t len, bool fix)
{
    static uint8_t copy[65536];
    const uint8_t *buf = in;

    if (fix && len <= sizeof(copy) && len >= 20) {
        size_t ihl = (size_t)(in[0] & 15) * 4, total = rd16(in + 2);
        memcpy(copy, in, len);
        buf = copy;
        if (ihl >= 20 && total <= len && total >= ihl + 8) {
            uint16_t c;
            copy[ihl + 2] = copy[ihl + 3] = 0;
            c = icmp__checksum(copy + ihl, total - ihl);
            copy[ihl + 2] = (uint8_t)(c >> 8);
            copy[ihl + 3] = (uint8_t)c;
        }
    }
    struct icmp__packet pkt;
    struct expect e = expect_v4_raw(buf, len);
    int rc = icmp__parse_v4_raw(buf, len, &pkt);
    struct icmp_addr src = {AF_INET, {0}, 0};

    check_rc(rc, &e);
    if (rc != 0)
        return;
    check_accepted(AF_INET, &pkt, &e);
    memcpy(src.bytes, buf + 12, 4);
    FUZZ_ASSERT(addr_is(&pkt.from, &src));
    FUZZ_ASSERT(pkt.ttl == buf[8]);
    check_other_form(AF_INET, &pkt, &e, &src);
}

static void fuzz_v6_raw(const uint8_t *buf, size_t len, const struct icmp_addr *from)
{
    struct icmp__packet pkt;
    struct expect e = expect_v6_raw(buf, len);
    int rc = icmp__parse_v6_raw(buf, len, from, &pkt);

    check_rc(rc, &e);
    if (rc != 0)
        return;
    check_accepted(AF_INET6, &pkt, &e);
    FUZZ_ASSERT(addr_is(&pkt.from, from));
    FUZZ_ASSERT(pkt.ttl == 0);
    check_other_form(AF_INET6, &pkt, &e, from);
}

static void fuzz_dgram(int family, const uint8_t *buf, size_t len, const struct icmp_addr *from)
{
    struct icmp__packet pkt;
    struct expect e = {0};
    int rc = icmp__parse_dgram(family, buf, len, from, &pkt);

    /* The normal queue of a ping socket holds echo replies only. */
    if (len >= 8 && buf[0] == (family == AF_INET ? 0 : 129)) {
        e.accept = true;
        e.type = buf[0];
        e.code = buf[1];
        e.echo = buf;
        e.end = buf + len;
    }
    check_rc(rc, &e);
    if (rc != 0)
        return;
    check_accepted(family, &pkt, &e);
    FUZZ_ASSERT(addr_is(&pkt.from, from) && pkt.ttl == 0);
}

static void fuzz_errqueue(int family, const uint8_t *data, size_t size, bool no_addr)
{
    struct icmp__packet pkt;
    struct expect e = {0};
    const struct icmp_addr *dst = no_addr ? NULL : family == AF_INET ? &from4 : &from6;
    const struct icmp_addr *offender = no_addr ? NULL : &router6;
    uint8_t type, code;
    int rc;

    if (size < 2)
        return;
    type = data[0];
    code = data[1];
    data += 2;
    size -= 2;
    rc = icmp__parse_errqueue(family, type, code, dst, offender, data, size, &pkt);
    if (error_type(family, type) && quoted_request(family, data, size)) {
        e.accept = e.is_error = true;
        e.type = type;
        e.code = code;
        e.echo = data;
        e.end = data + size;
        if (dst != NULL)
            e.quoted_dst = *dst;
    }
    check_rc(rc, &e);
    if (rc != 0)
        return;
    check_accepted(family, &pkt, &e);
    FUZZ_ASSERT(addr_is(&pkt.from, offender) && pkt.ttl == 0);
}

/* The engine's stamp: what icmp__payload_fill writes, icmp__payload_check must accept (whole,
 * or cut short as in a quote), and nothing else. */
static void fuzz_payload(const uint8_t *data, size_t size)
{
    uint8_t seed[20] = {0}, buf[1024], *copy;
    uint64_t nonce = 0;
    int64_t stamp;
    uint64_t ustamp = 0;
    uint16_t seq;
    size_t len, cut;
    const void *user;

    memcpy(seed, data, size < sizeof(seed) ? size : sizeof(seed));
    for (int i = 0; i < 8; i++) {
        nonce |= (uint64_t)seed[i] << (8 * i);
        ustamp |= (uint64_t)seed[8 + i] << (8 * i);
    }
    memcpy(&stamp, &ustamp, sizeof(stamp));
    seq = rd16(seed + 16);
    len = rd16(seed + 18) % sizeof(buf);
    data += size < sizeof(seed) ? size : sizeof(seed);
    size -= size < sizeof(seed) ? size : sizeof(seed);
    /* Caller data when the input has enough bytes for it, else the pattern. */
    user = len > ICMP_PAYLOAD_MIN && size >= len - ICMP_PAYLOAD_MIN ? data : NULL;

    memset(buf, 0x5a, sizeof(buf));
    icmp__payload_fill(buf, len, nonce, stamp, seq, user);
    for (size_t i = len; i < sizeof(buf); i++)
        FUZZ_ASSERT(buf[i] == 0x5a); /* writes len bytes, no more */
    /* Exact copy so ASan sees any read past what was received. */
    copy = malloc(len > 0 ? len : 1);
    FUZZ_ASSERT(copy != NULL);
    memcpy(copy, buf, len);
    bool ok = icmp__payload_check(copy, len, len, nonce, stamp, seq, user, false);
    FUZZ_ASSERT(ok == (len >= ICMP_PAYLOAD_MIN));
    for (cut = 0; cut <= len; cut += 1 + len / 8) {
        ok = icmp__payload_check(copy, cut, len, nonce, stamp, seq, user, true);
        FUZZ_ASSERT(ok == (cut >= ICMP_PAYLOAD_MIN));
        FUZZ_ASSERT(!icmp__payload_check(copy, cut, len, nonce, stamp, seq, user, false) ||
                    cut == len);
    }
    if (len >= ICMP_PAYLOAD_MIN) {
        /* One flipped bit anywhere, or a different nonce, stamp or length: not ours. */
        size_t at = (size_t)(nonce % len);
        copy[at] ^= (uint8_t)(1u << (seq & 7));
        FUZZ_ASSERT(!icmp__payload_check(copy, len, len, nonce, stamp, seq, user, false));
        copy[at] ^= (uint8_t)(1u << (seq & 7));
        FUZZ_ASSERT(!icmp__payload_check(copy, len, len, nonce ^ 1, stamp, seq, user, false));
        FUZZ_ASSERT(!icmp__payload_check(copy, len, len, nonce, stamp ^ 2, seq, user, false));
        FUZZ_ASSERT(!icmp__payload_check(copy, len, len + 1, nonce, stamp, seq, user, false));
        /* The pattern depends on the sequence number. */
        if (user == NULL && len > ICMP_PAYLOAD_MIN)
            FUZZ_ASSERT(!icmp__payload_check(copy, len, len, nonce, stamp, (uint16_t)(seq + 1),
                                             NULL, false));
    }
    free(copy);
}

/* RFC 1071: the sum of a message that carries its own checksum verifies as 0. */
static void fuzz_checksum(const uint8_t *data, size_t size)
{
    uint64_t sum = 0;
    uint8_t *buf;
    size_t even = size & ~(size_t)1;
    uint16_t c;

    for (size_t i = 0; i < size; i++)
        sum += (uint64_t)data[i] << (i % 2 == 0 ? 8 : 0);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    c = icmp__checksum(data, size);
    FUZZ_ASSERT(c == (uint16_t)~sum);

    buf = malloc(even + 2);
    FUZZ_ASSERT(buf != NULL);
    memcpy(buf, data, even);
    buf[even] = (uint8_t)(icmp__checksum(buf, even) >> 8);
    buf[even + 1] = (uint8_t)icmp__checksum(buf, even);
    FUZZ_ASSERT(icmp__checksum(buf, even + 2) == 0);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t sel;
    bool no_addr;

    if (size < 1)
        return 0;
    sel = data[0];
    no_addr = (sel & 8) != 0;
    data++;
    size--;
    switch (sel & 7) {
    case 0:
        fuzz_v4_raw(data, size, !no_addr); /* the address bit: checksum as it came */
        break;
    case 1:
        fuzz_v6_raw(data, size, no_addr ? NULL : &from6);
        break;
    case 2:
        fuzz_dgram(AF_INET, data, size, no_addr ? NULL : &from4);
        break;
    case 3:
        fuzz_dgram(AF_INET6, data, size, no_addr ? NULL : &from6);
        break;
    case 4:
        fuzz_errqueue(AF_INET, data, size, no_addr);
        break;
    case 5:
        fuzz_errqueue(AF_INET6, data, size, no_addr);
        break;
    case 6:
        fuzz_payload(data, size);
        break;
    default:
        fuzz_checksum(data, size);
        break;
    }
    /* Families other than the two: refused, whatever the bytes. */
    struct icmp__packet pkt;
    FUZZ_ASSERT(icmp__parse_dgram(AF_UNIX, data, size, NULL, &pkt) == -EINVAL);
    FUZZ_ASSERT(icmp__parse_errqueue(AF_UNIX, 3, 0, NULL, NULL, data, size, &pkt) == -EINVAL);
    return 0;
}
