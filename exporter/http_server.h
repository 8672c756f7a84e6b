/* The HTTP server as main.c drives it: listeners and daemons (http_listen.c), the request
 * deadline sweep and the shutdown of streams (http_conn.c). */
#ifndef EXPORTER_HTTP_SERVER_H
#define EXPORTER_HTTP_SERVER_H

#include <stddef.h>

struct config;

struct exporter;
struct server;

/*
 * Binds every listen address ("host:port", "[v6]:port", ":port" for all of IPv4 and IPv6)
 * and reads the TLS certificate and key when cfg's web section names them (its limits give
 * the connection limits): everything that may need
 * privileges, so the process can drop them before any thread starts. Returns 0, or -errno
 * with the reason in err.
 */
int server_prepare(struct server **out, struct exporter *x, const char *const *listen, size_t n,
                   const struct config *cfg, char *err, size_t errlen);

/*
 * Like server_prepare, with the listening sockets systemd passed (socket activation,
 * --web.systemd-socket) instead of addresses to bind; *n_sockets says how many. Returns 0,
 * or -errno with the reason in err (-ENOENT: systemd passed none).
 */
int server_prepare_systemd(struct server **out, struct exporter *x, const struct config *cfg,
                           size_t *n_sockets, char *err, size_t errlen);

/* Starts serving on the prepared sockets (a polling thread per address). Returns 0 or
 * -errno with the reason in err (the server must then be stopped). */
int server_run(struct server *s, char *err, size_t errlen);

/* Cuts the connections that did not deliver a whole request within limits.request_timeout
 * (shuts their sockets down). Call it about once a second. Returns how many it cut. */
unsigned server_sweep(struct server *s);

/* Cuts the /metrics bodies still streaming with a TCP reset (call before server_stop at
 * shutdown: a closed HTTP/1.0 body would otherwise look whole). */
void server_abort_streams(struct server *s);

/* Stops accepting new connections; requests in flight go on. */
void server_quiesce(struct server *s);

/* Stops the server and frees it. Accepts NULL. */
void server_stop(struct server *s);

#endif
