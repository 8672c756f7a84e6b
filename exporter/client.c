/*
 * Client keys (client.h).
 */
#include "exporter/client.h"

#include <netinet/in.h>
#include <string.h>

struct client_key client_key_of(const struct sockaddr *sa)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct client_key k = {0};
    const unsigned char *b;

    if (sa == NULL)
        return k;
    if (sa->sa_family == AF_INET) {
        b = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        if (memcmp(b, mapped, sizeof(mapped)) != 0) {
            k.bytes[0] = 6;
            memcpy(k.bytes + 1, b, 8);
            k.len = 9;
            return k;
        }
        b += 12;
    } else {
        return k;
    }
    k.bytes[0] = 4;
    memcpy(k.bytes + 1, b, 4);
    k.len = 5;
    return k;
}

bool client_key_equal(const struct client_key *a, const struct client_key *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}
