/*
 * Continuous measurement (issue 12): the static targets of "mode": "continuous" modules get
 * one echo every interval, from start and from each reload, whatever the scrapes; each
 * settled echo is folded into the target's state in the static targets' table, which
 * /metrics renders. One scheduler thread for every target.
 */
#ifndef EXPORTER_CONTINUOUS_H
#define EXPORTER_CONTINUOUS_H

#include "config/config.h"

#include <stddef.h>

struct exporter;
struct continuous;

/* Echoes a continuous target may have in flight (its memory): the module's echo_timeout in
 * intervals, rounded up, plus one, so that the next echo never waits for the last. Pure. */
unsigned continuous_slots(const struct config_module *m);

/* Starts the scheduler thread of x (no target yet: continuous_update gives them). Returns 0
 * or -errno. */
int continuous_open(struct continuous **out, struct exporter *x);

/*
 * Measures cfg's continuous targets from now on (cfg: the configuration just installed),
 * folding into x's target table for cfg (made if need be: targets a reload left unchanged
 * keep their counters). The previous configuration's targets stop being sent; their echoes
 * still in flight settle into the previous table, which no scrape reads any more. Returns 0
 * or -ENOMEM (the previous targets then go on). Thread-safe.
 */
int continuous_update(struct continuous *c, struct config *cfg);

/* Stops sending and joins the thread: call before the engine and the resolver close. Idempotent;
 * accepts NULL. */
void continuous_stop(struct continuous *c);

/* Frees c once the engine and the resolver are closed (every echo and lookup answered).
 * Accepts NULL. */
void continuous_close(struct continuous *c);

#endif
