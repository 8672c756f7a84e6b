/*
 * Probe rounds of the static targets, shared by the /metrics scrapes that overlap them.
 *
 * A round is one probe per static target of a table, each with its module's own timeout,
 * folded into the table as it completes. A scrape joins the round running on its table, or
 * starts one, and is told when the round is over or when its own deadline comes, whichever
 * is first; it then renders the table as it stands. So a scrape's deadline never shortens a
 * probe (a client cannot make a healthy target look down by asking for a deadline too short
 * to hear its reply), and any number of concurrent scrapes cost one round of probes.
 */
#ifndef EXPORTER_ROUND_H
#define EXPORTER_ROUND_H

#include "exporter/target_table.h"

#include <stdbool.h>
#include <stdint.h>

struct exporter;
struct round;
struct rounds;

/*
 * A scrape waiting on a round. The caller sets fire and deadline_ns and keeps the struct
 * alive until fire has run; the rest is the rounds' own.
 */
struct round_waiter {
    /* Runs exactly once, on an engine, resolver or the rounds' timer thread, without any
     * lock of the rounds held: the round is over, or deadline_ns came first (early). */
    void (*fire)(struct round_waiter *w, bool early);
    int64_t deadline_ns; /* icmp_now_ns() clock; 0: wait for the round however long */
    /* private */
    struct round_waiter *prev, *next;
    struct round *round;
};

/* Opens the rounds of x: no round yet, a timer thread for the waiters' deadlines. Returns
 * 0 or -errno. */
int rounds_open(struct rounds **out, struct exporter *x);

/*
 * Makes w wait on table's running round, starting one when there is none (its probes use
 * x's engine and resolver). w fires once the round is over or at w->deadline_ns; it may
 * fire before rounds_join returns. Returns 0, or -ENOMEM (w will not fire), or -ESHUTDOWN
 * once rounds_stop ran. Thread-safe.
 */
int rounds_join(struct rounds *r, struct target_table *table, struct round_waiter *w);

/* Rounds started, and waiters fired by their deadline before their round was over.
 * (A running round counts as one of exporter.probes_in_flight.) */
void rounds_counts(struct rounds *r, uint64_t *started, uint64_t *early);

/*
 * Refuses new joins and fires every waiter still waiting (as early). Rounds still running
 * end when the engine and the resolver complete their probes. Thread-safe, idempotent.
 */
void rounds_stop(struct rounds *r);

/* Stops the timer thread and frees r, after every round ended (the engine and the resolver
 * are closed). Accepts NULL. */
void rounds_close(struct rounds *r);

#endif
