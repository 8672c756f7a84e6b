/*
 * What a detached worker thread and its owner share, for a worker that may block in a call
 * nobody can interrupt (getaddrinfo, reading a configuration file that is a FIFO): the
 * lock, a reference count (the owner's and each thread's; the last one out frees the
 * object, so the owner never waits for a blocked thread), and a count of callbacks running
 * outside the lock, which the owner waits for before it goes (they never block).
 * resolver.c and exporter.c's reload thread use it.
 */
#ifndef EXPORTER_DETACHED_H
#define EXPORTER_DETACHED_H

#include <pthread.h>
#include <stdbool.h>

struct detached_home {
    pthread_mutex_t lock;
    pthread_cond_t idle; /* callbacks reached 0 */
    unsigned refs;
    unsigned callbacks;
};

/* Sets it up with refs references. */
void detached_home_init(struct detached_home *h, unsigned refs);

/* Drops a reference; the lock is held on entry and released. Returns true for the last
 * one: the caller then frees the object (detached_home_cleanup first). */
bool detached_home_unref_unlock(struct detached_home *h);

/* Destroys the lock and the condition (no thread uses them any more). */
void detached_home_cleanup(struct detached_home *h);

/* Around a callback run outside the lock (held before begin and after end): counted, so
 * that detached_home_quiesce can wait for it. */
void detached_home_callback_begin(struct detached_home *h);
void detached_home_callback_end(struct detached_home *h);

/* Waits (the lock held) until no callback runs. */
void detached_home_quiesce(struct detached_home *h);

#endif
