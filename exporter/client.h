/*
 * Who a client is, for the per-client shares of the exporter's queues: the packet budget
 * (probe.c), the bcrypt queue (auth.c) and the connections that have sent no request
 * (http_conn.c). One client is an IPv4 address, or an IPv6 /64 (one host commonly holds a
 * whole /64, so counting its addresses apart would hand it unlimited shares); an
 * IPv4-mapped IPv6 address is the IPv4 client it maps.
 */
#ifndef EXPORTER_CLIENT_H
#define EXPORTER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* A family tag, then 4 (IPv4) or 8 (the IPv6 /64) address bytes. */
#define CLIENT_KEY_MAX 9

struct client_key {
    unsigned char len; /* 0: unknown (no address, or another family) */
    unsigned char bytes[CLIENT_KEY_MAX];
};

/* The client of a peer address (NULL: unknown). Pure, thread-safe. */
struct client_key client_key_of(const struct sockaddr *sa);

/* Whether a and b are the same client (all unknown ones are one). */
bool client_key_equal(const struct client_key *a, const struct client_key *b);

#endif
