/* Name resolution off the HTTP thread: a small pool of threads running getaddrinfo, each
 * lookup bounded by its caller's deadline. */
#ifndef EXPORTER_RESOLVER_H
#define EXPORTER_RESOLVER_H

#include "core/icmp.h"

#include <stdbool.h>
#include <stdint.h>

struct resolver;

/* Lookups that may wait for a thread; one more is refused (resolver_submit: -EBUSY). */
#define RESOLVER_QUEUE_MAX 256
/* Threads running getaddrinfo, started as needed: this many names may hang at once without
 * delaying others. */
#define RESOLVER_MAX_THREADS 32

/* Result of resolving a name for a module's protocol preference. */
struct resolution {
    int error;             /* 0, or an EAI_* code (getaddrinfo's own, for gai_strerror) */
    bool timed_out;        /* error set: the deadline came first (or the resolver closed) */
    struct icmp_addr addr; /* the chosen address */
    int64_t took_ns;
};

typedef void (*resolve_done_fn)(void *arg, const struct resolution *res);

/* Starts `threads` resolver threads (more start as lookups wait, up to RESOLVER_MAX_THREADS)
 * and the deadline timer. Returns 0 or -errno. */
int resolver_open(struct resolver **out, unsigned threads);

/*
 * Answers every lookup not yet answered as timed out (their callbacks run before it
 * returns) and lets go of the threads without waiting for a getaddrinfo that hangs: such a
 * thread frees its part when the call returns, and calls nothing back. Accepts NULL.
 */
void resolver_close(struct resolver *r);

/*
 * Resolves name (copied) for family preference 4 or 6 with fallback, then calls done(arg,
 * result) exactly once on a resolver thread: with the answer, or timed out at deadline_ns
 * (monotonic, icmp_now_ns; the lookup may go on, its answer is dropped). IP literals are
 * answered at once on the caller's thread. Returns 0, or -EBUSY (RESOLVER_QUEUE_MAX lookups
 * waiting already), -ENOMEM or -ESHUTDOWN (done is then not called). Thread-safe.
 */
int resolver_submit(struct resolver *r, const char *name, int preferred, bool fallback,
                    int64_t deadline_ns, resolve_done_fn done, void *arg);

#endif
