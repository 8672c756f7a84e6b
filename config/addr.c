/*
 * Addresses, networks and host names as they appear in the configuration: pure parsers
 * of text, depending on nothing else in config/ (the schemas and the allow-list build on
 * them). inet_pton/inet_ntop are used as text parsers only: config/ opens no socket. An
 * address is core's plain value type, struct icmp_addr (AF_INET or AF_INET6, scope_id 0),
 * which the exporter hands to the engine and to config_target_allowed as it is.
 */
#include "config/config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int config_addr_parse(const char *text, struct icmp_addr *addr)
{
    struct icmp_addr a;

    memset(&a, 0, sizeof(a));
    if (text == NULL)
        return -EINVAL;
    if (inet_pton(AF_INET, text, a.bytes) == 1) {
        a.family = AF_INET;
    } else if (inet_pton(AF_INET6, text, a.bytes) == 1) {
        a.family = AF_INET6;
    } else {
        return -EINVAL;
    }
    *addr = a;
    return 0;
}

bool config_cidr_contains(const struct config_cidr *cidr, const struct icmp_addr *addr)
{
    unsigned bits = cidr->prefix_len, full = bits / 8, rest = bits % 8;

    if (cidr->addr.family != addr->family)
        return false;
    if (memcmp(cidr->addr.bytes, addr->bytes, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (cidr->addr.bytes[full] & mask) == (addr->bytes[full] & mask);
}

const char *config__parse_cidr(const char *text, struct config_cidr *cidr, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t host_len = slash != NULL ? (size_t)(slash - text) : strlen(text);
    struct config_cidr c;
    unsigned max;

    memset(&c, 0, sizeof(c));
    if (host_len == 0 || host_len >= sizeof(host))
        return "not an IPv4 or IPv6 address";
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (config_addr_parse(host, &c.addr) != 0)
        return "not an IPv4 or IPv6 address";
    max = c.addr.family == AF_INET ? 32 : 128;
    if (slash == NULL) {
        c.prefix_len = max;
    } else {
        const char *p = slash + 1;
        unsigned v = 0;
        size_t n = 0;
        for (; p[n] >= '0' && p[n] <= '9' && n < 4; n++)
            v = v * 10 + (unsigned)(p[n] - '0');
        if (n == 0 || p[n] != '\0' || (n > 1 && p[0] == '0'))
            return "the prefix length is not a number";
        if (v > max)
            return c.addr.family == AF_INET ? "prefix length must be 0..32 for IPv4"
                                            : "prefix length must be 0..128 for IPv6";
        c.prefix_len = v;
    }
    /* Host bits set ("10.0.0.1/8") is most likely a misunderstanding: refuse, naming
     * the network the entry would have meant. */
    struct icmp_addr net = c.addr;
    for (unsigned bit = c.prefix_len; bit < max; bit++)
        net.bytes[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    if (memcmp(net.bytes, c.addr.bytes, sizeof(net.bytes)) != 0) {
        char ntop[INET6_ADDRSTRLEN];
        if (inet_ntop(net.family, net.bytes, ntop, sizeof(ntop)) == NULL)
            return "host bits are set";
        snprintf(buf, size, "host bits are set; the network is %s/%u", ntop, c.prefix_len);
        return buf;
    }
    *cidr = c;
    return NULL;
}

bool config__looks_ipv4(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!(*s == '.' || (*s >= '0' && *s <= '9')))
            return false;
    }
    return true;
}

const char *config__parse_host(const char *s, struct icmp_addr *addr, bool *literal)
{
    *literal = false;
    if (strchr(s, ':') != NULL || config__looks_ipv4(s)) {
        if (config_addr_parse(s, addr) != 0)
            return "not an IPv4 or IPv6 address";
        *literal = true;
        return NULL;
    }
    return config__check_host_name(s, false);
}

void config__format_cidr(const struct config_cidr *cidr, char *buf, size_t size)
{
    char ntop[INET6_ADDRSTRLEN];
    if (size == 0)
        return;
    if (inet_ntop(cidr->addr.family, cidr->addr.bytes, ntop, sizeof(ntop)) == NULL)
        buf[0] = '\0';
    else
        snprintf(buf, size, "%s/%u", ntop, cidr->prefix_len);
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

const char *config__check_host_name(const char *name, bool wildcard)
{
    const char *p = name, *last_label;
    size_t len;

    if (wildcard && p[0] == '*' && p[1] == '.')
        p += 2;
    len = strlen(p);
    if (len > 0 && p[len - 1] == '.')
        len--;
    if (len == 0)
        return "empty name";
    if (len > 253)
        return "longer than 253 characters";
    last_label = p;
    for (;;) {
        size_t n = 0;
        while (p[n] != '\0' && p[n] != '.') {
            if (!is_name_char(p[n]))
                return "invalid character (a host name has letters, digits, '-', '_' and "
                       "dots)";
            n++;
        }
        if (n == 0)
            return "empty label";
        if (n > 63)
            return "label longer than 63 characters";
        if (p[0] == '-' || p[n - 1] == '-')
            return "label starts or ends with '-'";
        last_label = p;
        p += n;
        if (*p == '\0' || p[1] == '\0')
            break; /* end, or the one trailing dot */
        p++;
    }
    if (last_label[0] >= '0' && last_label[0] <= '9')
        return "the last label starts with a digit, which resolvers read as an IPv4 address";
    return NULL;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

void config__fold_name(char *name)
{
    size_t len;

    for (len = 0; name[len] != '\0'; len++)
        name[len] = lower(name[len]);
    if (len > 0 && name[len - 1] == '.')
        name[len - 1] = '\0';
}
