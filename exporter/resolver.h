/* Name resolution off the HTTP thread: a small pool of threads running getaddrinfo. */
#ifndef EXPORTER_RESOLVER_H
#define EXPORTER_RESOLVER_H

#include "core/icmp.h"

#include <stdbool.h>
#include <stdint.h>

struct resolver;

/* Result of resolving a name for a module's protocol preference. */
struct resolution {
    int error;             /* 0, or an EAI_* code (getaddrinfo's own, for gai_strerror) */
    struct icmp_addr addr; /* the chosen address */
    int64_t took_ns;
};

typedef void (*resolve_done_fn)(void *arg, const struct resolution *res);

/* Starts `threads` resolver threads. Returns 0 or -errno. */
int resolver_open(struct resolver **out, unsigned threads);

/* Stops the threads after the queued lookups ran (each callback runs). Accepts NULL. */
void resolver_close(struct resolver *r);

/*
 * Resolves name (copied) for family preference 4 or 6 with fallback, then calls done(arg,
 * result) on a resolver thread. IP literals are answered at once on the caller's thread.
 * Returns 0, or -ENOMEM / -ESHUTDOWN (done is then not called). Thread-safe.
 */
int resolver_submit(struct resolver *r, const char *name, int preferred, bool fallback,
                    resolve_done_fn done, void *arg);

#endif
