/*
 * struct icmp_addr: an IPv4 or IPv6 address, a plain value type shared by core/ and
 * config/, so that neither depends on the other's library (the CMake interface target
 * icmp_addr_type carries only this header). The engine probes these, the configuration
 * parses them and the exporter passes them from one to the other unconverted.
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

#endif
