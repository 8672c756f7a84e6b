/*
 * core/ internals shared between its files and its unit tests; nothing outside core/ (and
 * tests/core) includes this.
 */
#ifndef ICMP_INTERNAL_H
#define ICMP_INTERNAL_H

#include "core/icmp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the parser found in one received ICMP message that may concern us. */
struct icmp__packet {
    uint8_t type;                /* ICMP type of the received message */
    uint8_t code;                /* and its code */
    bool is_error;               /* an ICMP error quoting an echo request */
    uint16_t id;                 /* identifier of the echo reply, or of the quoted request */
    uint16_t seq;                /* sequence number, likewise */
    struct icmp_addr from;       /* sender of the message (raw v4: from the IP header) */
    struct icmp_addr quoted_dst; /* errors: destination of the quoted request (if known) */
    struct icmp_addr quoted_src; /* raw errors: source of the quoted request, else none */
    uint16_t quoted_cksum;       /* errors: the ICMP checksum of the quoted request */
    uint8_t ttl;                 /* raw v4: TTL from the IP header; else 0 (see has_ttl) */
    bool has_ttl;                /* ttl was read from the packet (raw v4) */
    const uint8_t *payload;      /* echo data of the reply, or of the quoted request */
    size_t payload_len;          /* bytes available at payload (quotes may be truncated) */
    enum icmp_status status;     /* SUCCESS for a reply, the mapped status for an error */
};

/*
 * Parsers: pure functions over a byte buffer, validating every length before reading.
 * Each returns 0 when the message is an echo reply or an ICMP error quoting an ICMP echo
 * request (then *pkt is filled, pointing into buf), -ENOMSG for any other well-formed ICMP
 * message (echo requests, other types), -EINVAL for a truncated or malformed one.
 */

/* IPv4 raw socket: buf starts at the IPv4 header. -EBADMSG: the ICMP checksum is wrong. */
int icmp__parse_v4_raw(const uint8_t *buf, size_t len, struct icmp__packet *pkt);

/* IPv6 raw socket: buf starts at the ICMPv6 header; from is the sender (msg_name). */
int icmp__parse_v6_raw(const uint8_t *buf, size_t len, const struct icmp_addr *from,
                       struct icmp__packet *pkt);

/*
 * Ping (datagram) socket, normal queue: buf starts at the ICMP(v6) header of an echo
 * reply; from is the sender. The kernel only queues replies, so anything else is -ENOMSG.
 */
int icmp__parse_dgram(int family, const uint8_t *buf, size_t len, const struct icmp_addr *from,
                      struct icmp__packet *pkt);

/*
 * Ping socket error queue: type/code/offender from the sock_extended_err, buf the quoted
 * ICMP echo request we sent (header first), dst the destination it was sent to (the
 * msg_name of the error), offender the reporting router.
 */
int icmp__parse_errqueue(int family, uint8_t type, uint8_t code, const struct icmp_addr *dst,
                         const struct icmp_addr *offender, const uint8_t *buf, size_t len,
                         struct icmp__packet *pkt);

/*
 * The status of an ICMP error type/code (icmp-status.md's table). Codes the table does not
 * name fall back to the type's generic status: DEST_UNREACHABLE for destination
 * unreachable, TIME_EXCEEDED, PARAM_PROBLEM; any other type is GENERAL_FAILURE.
 */
enum icmp_status icmp__status_from_icmp(int family, uint8_t type, uint8_t code);

/*
 * Our payload: [0, 8) the engine's nonce, [8, 16) the CLOCK_REALTIME send stamp in ns (both
 * little-endian), then the caller's data, or when data is NULL the pattern
 * byte i = (uint8_t)(i + seq).
 */
void icmp__payload_fill(uint8_t *payload, size_t len, uint64_t nonce, int64_t stamp, uint16_t seq,
                        const void *data);

/*
 * Checks a received payload against what we sent: got_len bytes at got; sent_len is the
 * length we sent. A reply must match exactly (truncated = false); an error's quote may be
 * cut short (truncated = true: at least the 16-byte header must be there, and the bytes
 * present must match).
 */
bool icmp__payload_check(const uint8_t *got, size_t got_len, size_t sent_len, uint64_t nonce,
                         int64_t stamp, uint16_t seq, const void *data, bool truncated);

/*
 * The ICMP checksum our echo request carried on the wire (what an ICMP error quotes of it
 * even when it quotes nothing else): type, code 0, id and seq, then the payload
 * icmp__payload_fill makes of nonce, stamp, seq and data (payload_len bytes). IPv6 includes
 * the pseudo-header of src and dst. It covers the nonce and the send stamp, so it proves (to
 * 16 bits) that a short quote is of our echo. Pure.
 */
uint16_t icmp__echo_checksum(int family, const struct icmp_addr *src, const struct icmp_addr *dst,
                             uint16_t id, uint16_t seq, uint64_t nonce, int64_t stamp,
                             const void *data, size_t payload_len);

/*
 * Clocks. The kernel stamps packets in CLOCK_REALTIME (SO_TIMESTAMPNS, SO_TIMESTAMPING), the
 * wall clock, which jumps when someone sets it; the engine's deadlines and durations are
 * CLOCK_MONOTONIC. Between two readings of both clocks (struct icmp__clocks), the offset
 * realtime - monotonic changes only by the steps of the wall clock in between: one at the send
 * and one where the answer is read tell how far the answer's realtime stamp is to be taken
 * back (icmp__echo_time). Only a step falling between a kernel stamp and the reading beside it
 * (microseconds) escapes.
 */
struct icmp__clocks {
    int64_t rt;   /* CLOCK_REALTIME */
    int64_t mono; /* CLOCK_MONOTONIC at the same moment, to within err */
    int64_t err;  /* rt - mono is the clocks' offset to within err nanoseconds */
};

/* Reads both clocks (three vDSO calls, no system call). */
void icmp__clocks_now(struct icmp__clocks *now);

/* What the engine keeps of an echo in flight to time its answer. */
struct icmp__echo_clock {
    struct icmp__clocks sent; /* just before sendmsg (sent.rt is the stamp in the payload) */
    int64_t tx_rt;            /* the kernel's transmit stamp (CLOCK_REALTIME), or -1 */
    int64_t deadline;         /* CLOCK_MONOTONIC end of the wait */
};

/*
 * Times an answer with the kernel's receive stamp rx_rt (CLOCK_REALTIME), read from the
 * socket when the clocks said `read`: returns the round-trip time from the transmit stamp
 * (else the send) to the receive stamp, less any wall-clock step between the send and the
 * read (a CLOCK_MONOTONIC duration), and sets *late when the answer arrived, in monotonic
 * time, after the echo's deadline. Without a step (an offset change within the readings'
 * uncertainty) the RTT is the exact difference of the realtime stamps. Pure.
 */
int64_t icmp__echo_time(const struct icmp__echo_clock *echo, int64_t rx_rt,
                        const struct icmp__clocks *read, bool *late);

/*
 * Drives an engine opened with no_thread until *done is set by a job's callback: the
 * synchronous API runs the engine's loop in its caller's thread.
 */
void icmp__engine_run_until(struct icmp_engine *engine, const bool *done);

/*
 * The Internet checksum (RFC 1071) of len bytes, as a number: 0x220d for RFC 1071's example,
 * whose checksum goes on the wire as the bytes 22 0d (high byte first). Over a message that
 * carries a valid checksum it is 0.
 */
uint16_t icmp__checksum(const void *data, size_t len);

/*
 * Writes the checksum of an ICMP message of len bytes (len >= 4) into its bytes 2-3, in
 * network byte order, computed with those bytes zero: what raw IPv4 sends need.
 */
void icmp__checksum_put(uint8_t *msg, size_t len);

#endif
