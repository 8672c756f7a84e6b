/* The HTTP server (server.c). */
#ifndef EXPORTER_SERVER_H
#define EXPORTER_SERVER_H

#include <stddef.h>

struct exporter;
struct server;

/*
 * Listens on every address ("host:port", "[v6]:port", ":port" for all of IPv4 and IPv6)
 * and serves until server_stop. Returns 0, or -errno with the reason in err.
 */
int server_start(struct server **out, struct exporter *x, const char *const *listen, size_t n,
                 char *err, size_t errlen);

/* Stops accepting new connections; requests in flight go on. */
void server_quiesce(struct server *s);

/* Stops the server and frees it. Accepts NULL. */
void server_stop(struct server *s);

#endif
