/*
 * Parsing received ICMP, and our payload: pure functions over byte buffers.
 *
 * Every length is checked before a header is read, and every field used to index
 * anything is bounded by the caller (the engine indexes its slot table by the 16-bit
 * sequence number, which cannot exceed it). The mapping of ICMP errors onto statuses is
 * the table of shared/reference/icmp-status.md; an error counts only when it quotes an ICMP
 * echo request, and the engine then checks that the request was ours.
 */
#include "core/icmp_internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define ICMP4_ECHO_REPLY     0
#define ICMP4_DEST_UNREACH   3
#define ICMP4_SOURCE_QUENCH  4
#define ICMP4_ECHO_REQUEST   8
#define ICMP4_TIME_EXCEEDED  11
#define ICMP4_PARAM_PROBLEM  12
#define ICMP6_DEST_UNREACH   1
#define ICMP6_PACKET_TOO_BIG 2
#define ICMP6_TIME_EXCEEDED  3
#define ICMP6_PARAM_PROBLEM  4
#define ICMP6_ECHO_REQUEST   128
#define ICMP6_ECHO_REPLY     129
#define ICMP_HEADER_LEN      8
#define IP4_MIN_HEADER_LEN   20
#define IP6_HEADER_LEN       40
#define IPPROTO_ICMP4        1
#define IPPROTO_ICMP6        58

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void set_addr(struct icmp_addr *addr, int family, const uint8_t *bytes)
{
    memset(addr, 0, sizeof(*addr));
    addr->family = (uint16_t)family;
    memcpy(addr->bytes, bytes, family == AF_INET ? 4 : 16);
}

/* Time exceeded has the same codes in both families: 0 in transit, 1 in reassembly. */
static enum icmp_status time_exceeded(uint8_t code)
{
    if (code == 0)
        return ICMP_STATUS_TTL_EXPIRED_TRANSIT;
    return code == 1 ? ICMP_STATUS_TTL_EXPIRED_REASSEM : ICMP_STATUS_TIME_EXCEEDED;
}

enum icmp_status icmp__status_from_icmp(int family, uint8_t type, uint8_t code)
{
    if (family == AF_INET) {
        switch (type) {
        case ICMP4_DEST_UNREACH:
            switch (code) {
            case 0:  /* net */
            case 6:  /* net unknown */
            case 9:  /* net administratively prohibited */
            case 11: /* net unreachable for TOS */
                return ICMP_STATUS_DEST_NET_UNREACHABLE;
            case 1:  /* host */
            case 7:  /* host unknown */
            case 8:  /* source host isolated */
            case 10: /* host administratively prohibited */
            case 12: /* host unreachable for TOS */
            case 13: /* communication administratively prohibited */
            case 14: /* host precedence violation */
            case 15: /* precedence cutoff */
                return ICMP_STATUS_DEST_HOST_UNREACHABLE;
            case 2:
                return ICMP_STATUS_DEST_PROT_UNREACHABLE;
            case 3:
                return ICMP_STATUS_DEST_PORT_UNREACHABLE;
            case 4:
                return ICMP_STATUS_PACKET_TOO_BIG;
            case 5:
                return ICMP_STATUS_BAD_ROUTE;
            default:
                return ICMP_STATUS_DEST_UNREACHABLE;
            }
        case ICMP4_SOURCE_QUENCH:
            return ICMP_STATUS_SOURCE_QUENCH;
        case ICMP4_TIME_EXCEEDED:
            return time_exceeded(code);
        case ICMP4_PARAM_PROBLEM:
            return ICMP_STATUS_PARAM_PROBLEM;
        default:
            return ICMP_STATUS_GENERAL_FAILURE;
        }
    }
    switch (type) {
    case ICMP6_DEST_UNREACH:
        switch (code) {
        case 0: /* no route to destination */
            return ICMP_STATUS_DEST_NET_UNREACHABLE;
        case 1: /* administratively prohibited */
        case 5: /* source address failed ingress/egress policy */
        case 6: /* reject route to destination */
            return ICMP_STATUS_DEST_PROT_UNREACHABLE;
        case 2: /* beyond scope of source address */
            return ICMP_STATUS_DEST_SCOPE_MISMATCH;
        case 3: /* address unreachable */
            return ICMP_STATUS_DEST_HOST_UNREACHABLE;
        case 4:
            return ICMP_STATUS_DEST_PORT_UNREACHABLE;
        default:
            return ICMP_STATUS_DEST_UNREACHABLE;
        }
    case ICMP6_PACKET_TOO_BIG:
        return ICMP_STATUS_PACKET_TOO_BIG;
    case ICMP6_TIME_EXCEEDED:
        return time_exceeded(code);
    case ICMP6_PARAM_PROBLEM:
        return code == 0   ? ICMP_STATUS_BAD_HEADER
               : code == 1 ? ICMP_STATUS_UNRECOGNIZED_NEXT_HEADER
                           : ICMP_STATUS_PARAM_PROBLEM;
    default:
        return ICMP_STATUS_GENERAL_FAILURE;
    }
}

/* The echo request quoted at q (its ICMP header first) into pkt. */
static int take_quoted_echo(int family, const uint8_t *q, size_t len, struct icmp__packet *pkt)
{
    if (len < ICMP_HEADER_LEN)
        return -EINVAL;
    if (q[0] != (family == AF_INET ? ICMP4_ECHO_REQUEST : ICMP6_ECHO_REQUEST) || q[1] != 0)
        return -ENOMSG; /* an error about something else than an echo request */
    pkt->quoted_cksum = be16(q + 2);
    pkt->id = be16(q + 4);
    pkt->seq = be16(q + 6);
    pkt->payload = q + ICMP_HEADER_LEN;
    pkt->payload_len = len - ICMP_HEADER_LEN;
    return 0;
}

/* The echo reply at icmp (its header first, len >= 8 checked by the caller) into pkt. */
static int take_echo_reply(const uint8_t *icmp, size_t len, struct icmp__packet *pkt)
{
    pkt->id = be16(icmp + 4);
    pkt->seq = be16(icmp + 6);
    pkt->payload = icmp + ICMP_HEADER_LEN;
    pkt->payload_len = len - ICMP_HEADER_LEN;
    pkt->status = ICMP_STATUS_SUCCESS;
    return 0;
}

static bool is_v4_error(uint8_t type)
{
    return type == ICMP4_DEST_UNREACH || type == ICMP4_SOURCE_QUENCH ||
           type == ICMP4_TIME_EXCEEDED || type == ICMP4_PARAM_PROBLEM;
}

int icmp__parse_v4_raw(const uint8_t *buf, size_t len, struct icmp__packet *pkt)
{
    size_t ihl, total, qihl;
    const uint8_t *icmp, *q;
    size_t ilen, qlen;

    if (len < IP4_MIN_HEADER_LEN || buf[0] >> 4 != 4)
        return -EINVAL;
    ihl = (size_t)(buf[0] & 0x0f) * 4;
    total = be16(buf + 2);
    if (ihl < IP4_MIN_HEADER_LEN || total < ihl || total > len)
        return -EINVAL;
    if (buf[9] != IPPROTO_ICMP4)
        return -ENOMSG;
    memset(pkt, 0, sizeof(*pkt));
    set_addr(&pkt->from, AF_INET, buf + 12);
    pkt->ttl = buf[8];
    pkt->has_ttl = true;
    icmp = buf + ihl;
    ilen = total - ihl;
    if (ilen < ICMP_HEADER_LEN)
        return -EINVAL;
    /* A raw socket gets the packet before icmp_rcv() checks its checksum (ping sockets and
     * ICMPv6 raw sockets get only verified ones): a damaged error would otherwise be read
     * with the wrong type or code. */
    if (icmp__checksum(icmp, ilen) != 0)
        return -EBADMSG;
    pkt->type = icmp[0];
    pkt->code = icmp[1];
    if (pkt->type == ICMP4_ECHO_REPLY)
        return take_echo_reply(icmp, ilen, pkt);
    if (!is_v4_error(pkt->type))
        return -ENOMSG;
    /* The error quotes the offending IP header and at least 8 bytes of what followed. */
    q = icmp + ICMP_HEADER_LEN;
    qlen = ilen - ICMP_HEADER_LEN;
    if (qlen < IP4_MIN_HEADER_LEN || q[0] >> 4 != 4)
        return -EINVAL;
    qihl = (size_t)(q[0] & 0x0f) * 4;
    if (qihl < IP4_MIN_HEADER_LEN || qihl > qlen)
        return -EINVAL;
    if (q[9] != IPPROTO_ICMP4)
        return -ENOMSG;
    set_addr(&pkt->quoted_src, AF_INET, q + 12);
    set_addr(&pkt->quoted_dst, AF_INET, q + 16);
    pkt->is_error = true;
    pkt->status = icmp__status_from_icmp(AF_INET, pkt->type, pkt->code);
    return take_quoted_echo(AF_INET, q + qihl, qlen - qihl, pkt);
}

int icmp__parse_v6_raw(const uint8_t *buf, size_t len, const struct icmp_addr *from,
                       struct icmp__packet *pkt)
{
    const uint8_t *q;
    size_t qlen;

    if (len < ICMP_HEADER_LEN)
        return -EINVAL;
    memset(pkt, 0, sizeof(*pkt));
    if (from != NULL)
        pkt->from = *from;
    pkt->type = buf[0];
    pkt->code = buf[1];
    if (pkt->type == ICMP6_ECHO_REPLY)
        return take_echo_reply(buf, len, pkt);
    if (pkt->type < ICMP6_DEST_UNREACH || pkt->type > ICMP6_PARAM_PROBLEM)
        return -ENOMSG;
    q = buf + ICMP_HEADER_LEN;
    qlen = len - ICMP_HEADER_LEN;
    if (qlen < IP6_HEADER_LEN || q[0] >> 4 != 6)
        return -EINVAL;
    /* We send no extension headers, so our requests have ICMPv6 right after the header. */
    if (q[6] != IPPROTO_ICMP6)
        return -ENOMSG;
    set_addr(&pkt->quoted_src, AF_INET6, q + 8);
    set_addr(&pkt->quoted_dst, AF_INET6, q + 24);
    pkt->is_error = true;
    pkt->status = icmp__status_from_icmp(AF_INET6, pkt->type, pkt->code);
    return take_quoted_echo(AF_INET6, q + IP6_HEADER_LEN, qlen - IP6_HEADER_LEN, pkt);
}

int icmp__parse_dgram(int family, const uint8_t *buf, size_t len, const struct icmp_addr *from,
                      struct icmp__packet *pkt)
{
    if (family != AF_INET && family != AF_INET6)
        return -EINVAL;
    if (len < ICMP_HEADER_LEN)
        return -EINVAL;
    if (buf[0] != (family == AF_INET ? ICMP4_ECHO_REPLY : ICMP6_ECHO_REPLY))
        return -ENOMSG;
    memset(pkt, 0, sizeof(*pkt));
    if (from != NULL)
        pkt->from = *from;
    pkt->type = buf[0];
    pkt->code = buf[1];
    return take_echo_reply(buf, len, pkt);
}

int icmp__parse_errqueue(int family, uint8_t type, uint8_t code, const struct icmp_addr *dst,
                         const struct icmp_addr *offender, const uint8_t *buf, size_t len,
                         struct icmp__packet *pkt)
{
    if (family != AF_INET && family != AF_INET6)
        return -EINVAL;
    if (family == AF_INET ? !is_v4_error(type)
                          : type < ICMP6_DEST_UNREACH || type > ICMP6_PARAM_PROBLEM)
        return -ENOMSG;
    memset(pkt, 0, sizeof(*pkt));
    if (offender != NULL)
        pkt->from = *offender;
    if (dst != NULL)
        pkt->quoted_dst = *dst;
    pkt->type = type;
    pkt->code = code;
    pkt->is_error = true;
    pkt->status = icmp__status_from_icmp(family, type, code);
    return take_quoted_echo(family, buf, len, pkt);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void icmp__payload_fill(uint8_t *payload, size_t len, uint64_t nonce, int64_t stamp, uint16_t seq,
                        const void *data)
{
    uint8_t header[ICMP_PAYLOAD_MIN];

    put_le64(header, nonce);
    put_le64(header + 8, (uint64_t)stamp);
    memcpy(payload, header, len < sizeof(header) ? len : sizeof(header));
    if (len <= ICMP_PAYLOAD_MIN)
        return;
    if (data != NULL) {
        memcpy(payload + ICMP_PAYLOAD_MIN, data, len - ICMP_PAYLOAD_MIN);
        return;
    }
    for (size_t i = ICMP_PAYLOAD_MIN; i < len; i++)
        payload[i] = (uint8_t)(i + seq);
}

bool icmp__payload_check(const uint8_t *got, size_t got_len, size_t sent_len, uint64_t nonce,
                         int64_t stamp, uint16_t seq, const void *data, bool truncated)
{
    uint8_t header[ICMP_PAYLOAD_MIN];
    const uint8_t *d = data;

    if (truncated ? got_len < ICMP_PAYLOAD_MIN || got_len > sent_len : got_len != sent_len)
        return false;
    if (sent_len < ICMP_PAYLOAD_MIN)
        return false;
    put_le64(header, nonce);
    put_le64(header + 8, (uint64_t)stamp);
    if (memcmp(got, header, sizeof(header)) != 0)
        return false;
    if (d != NULL)
        return memcmp(got + ICMP_PAYLOAD_MIN, d, got_len - ICMP_PAYLOAD_MIN) == 0;
    for (size_t i = ICMP_PAYLOAD_MIN; i < got_len; i++) {
        if (got[i] != (uint8_t)(i + seq))
            return false;
    }
    return true;
}

/* Adds len bytes to a sum of 16-bit words, folded at the end (64 bits hold any message); every
 * piece but the last of a message must have an even length. */
static uint64_t sum_words(const uint8_t *p, size_t len, uint64_t sum)
{
    for (; len > 1; p += 2, len -= 2)
        sum += (uint64_t)(p[0] << 8 | p[1]);
    if (len == 1)
        sum += (uint64_t)(p[0] << 8);
    return sum;
}

static uint16_t fold(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

uint16_t icmp__checksum(const void *data, size_t len)
{
    return fold(sum_words(data, len, 0));
}

uint16_t icmp__echo_checksum(int family, const struct icmp_addr *src, const struct icmp_addr *dst,
                             uint16_t id, uint16_t seq, uint64_t nonce, int64_t stamp,
                             const void *data, size_t payload_len)
{
    uint8_t buf[256]; /* even: the pieces summed one after another stay word-aligned */
    size_t head = payload_len < ICMP_PAYLOAD_MIN ? payload_len : ICMP_PAYLOAD_MIN;
    uint64_t sum = 0;

    if (family == AF_INET6) {
        /* RFC 8200 8.1: source, destination, upper-layer length (32 bits), 3 zero bytes and
         * the next header. */
        uint32_t ulen = (uint32_t)(ICMP_HEADER_LEN + payload_len);
        uint8_t tail[8] = {(uint8_t)(ulen >> 24),
                           (uint8_t)(ulen >> 16),
                           (uint8_t)(ulen >> 8),
                           (uint8_t)ulen,
                           0,
                           0,
                           0,
                           IPPROTO_ICMP6};
        sum = sum_words(src->bytes, 16, sum);
        sum = sum_words(dst->bytes, 16, sum);
        sum = sum_words(tail, sizeof(tail), sum);
    }
    buf[0] = family == AF_INET ? ICMP4_ECHO_REQUEST : ICMP6_ECHO_REQUEST;
    buf[1] = buf[2] = buf[3] = 0;
    buf[4] = (uint8_t)(id >> 8);
    buf[5] = (uint8_t)id;
    buf[6] = (uint8_t)(seq >> 8);
    buf[7] = (uint8_t)seq;
    icmp__payload_fill(buf + ICMP_HEADER_LEN, head, nonce, stamp, seq, NULL);
    sum = sum_words(buf, ICMP_HEADER_LEN + head, sum);
    if (payload_len <= ICMP_PAYLOAD_MIN)
        return fold(sum);
    if (data != NULL)
        return fold(sum_words(data, payload_len - ICMP_PAYLOAD_MIN, sum));
    /* The pattern icmp__payload_fill writes after the header, a buffer at a time. */
    for (size_t i = ICMP_PAYLOAD_MIN; i < payload_len;) {
        size_t n = payload_len - i < sizeof(buf) ? payload_len - i : sizeof(buf);
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)(i + k + seq);
        sum = sum_words(buf, n, sum);
        i += n;
    }
    return fold(sum);
}

void icmp__checksum_put(uint8_t *msg, size_t len)
{
    uint16_t ck;

    msg[2] = msg[3] = 0;
    ck = icmp__checksum(msg, len);
    msg[2] = (uint8_t)(ck >> 8);
    msg[3] = (uint8_t)ck;
}
