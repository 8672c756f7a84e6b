/*
 * Addresses and clocks: the small value helpers of the engine's API. struct icmp_addr keeps
 * an address in 24 bytes (a sockaddr_storage is 128), so per-echo results stay small.
 */
#include "core/icmp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <time.h>

int icmp_addr_parse(const char *text, struct icmp_addr *addr)
{
    struct icmp_addr out = {0};
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    const char *zone;

    if (text == NULL || addr == NULL)
        return -EINVAL;
    if (inet_pton(AF_INET, text, out.bytes) == 1) {
        out.family = AF_INET;
        *addr = out;
        return 0;
    }
    /* IPv6, with an optional %zone (interface name or index) for link-local addresses. */
    zone = strchr(text, '%');
    if (zone == NULL) {
        if (inet_pton(AF_INET6, text, out.bytes) != 1)
            return -EINVAL;
    } else {
        size_t n = (size_t)(zone - text);
        if (n >= sizeof(buf) || zone[1] == '\0')
            return -EINVAL;
        memcpy(buf, text, n);
        buf[n] = '\0';
        if (inet_pton(AF_INET6, buf, out.bytes) != 1)
            return -EINVAL;
        out.scope_id = if_nametoindex(zone + 1);
        if (out.scope_id == 0)
            return -EINVAL;
    }
    out.family = AF_INET6;
    *addr = out;
    return 0;
}

const char *icmp_addr_format(const struct icmp_addr *addr, char *buf, size_t size)
{
    if (size == 0)
        return buf;
    if (addr == NULL || (addr->family != AF_INET && addr->family != AF_INET6) ||
        inet_ntop(addr->family, addr->bytes, buf, (socklen_t)size) == NULL) {
        buf[0] = '?';
        if (size > 1)
            buf[1] = '\0';
        else
            buf[0] = '\0';
    }
    return buf;
}

bool icmp_addr_equal(const struct icmp_addr *a, const struct icmp_addr *b)
{
    size_t n = a->family == AF_INET ? 4 : 16;

    return a->family == b->family && a->scope_id == b->scope_id &&
           memcmp(a->bytes, b->bytes, n) == 0;
}

int64_t icmp_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *icmp_socket_mode_name(enum icmp_socket_mode mode)
{
    switch (mode) {
    case ICMP_MODE_DGRAM:
        return "dgram";
    case ICMP_MODE_RAW:
        return "raw";
    case ICMP_MODE_NONE:
        break;
    }
    return "none";
}
