/*
 * struct icmp_addr: an IPv4 or IPv6 address, a plain value type shared by core/ and
 * config/, so that neither depends on the other's library (the CMake interface target
 * icmp_addr_type carries only this header). The engine probes these, the configuration
 * parses them and the exporter passes them from one to the other unconverted. The engine's
 * payload limits live here too, so that the configuration checks the very limits the engine
 * applies (one limit, refused at load, never an echo silently not sent).
 *
 * Only <stdint.h>: the family values are AF_INET and AF_INET6 from <sys/socket.h>, which
 * whoever compares them includes.
 */
#ifndef ICMP_ADDR_H
#define ICMP_ADDR_H

#include <stdint.h>

/* An IPv4 or IPv6 address: family is AF_INET or AF_INET6 (0 means "none"). */
struct icmp_addr {
    uint16_t family;
    uint8_t bytes[16]; /* network order; IPv4 uses the first 4 */
    uint32_t scope_id; /* IPv6 link-local zone, else 0 */
};

/*
 * ICMP echo data bytes a job may carry (icmp_job.payload_size). The minimum is our payload
 * header: 8 bytes of per-engine nonce and the 8-byte send stamp. The maximum is what an IPv4
 * datagram carries, 65535 - 20 (IP header) - 8 (ICMP header) = 65507; IPv6 takes up to
 * 65527 without jumbograms (65535 - 8), so 65507 fits both families. Measured on loopback:
 * sendmsg() on ping and raw sockets accepts 65507 (v4) and 65527 (v6) bytes of data and both
 * are answered; one byte more fails with EMSGSIZE.
 */
#define ICMP_PAYLOAD_MIN 16
#define ICMP_PAYLOAD_MAX 65507

#endif
