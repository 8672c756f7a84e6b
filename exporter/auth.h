/* HTTP basic authentication against bcrypt hashes (auth.c). */
#ifndef EXPORTER_AUTH_H
#define EXPORTER_AUTH_H

#include "config/config.h"

#include <stdbool.h>

struct sockaddr;

struct auth;

/* Starts the verifier (its worker thread). Returns 0 or -errno. */
int auth_open(struct auth **out);

/* Stops the worker: the checks still waiting are answered AUTH_BUSY (their callbacks run
 * here), not run; only the check the worker is running finishes. Later checks that need it
 * answer AUTH_BUSY. auth_free then frees it, once nothing can call auth_check. Both accept
 * NULL. */
void auth_stop(struct auth *a);
void auth_free(struct auth *a);

enum auth_result {
    AUTH_OK,      /* no users configured, or a remembered good pair */
    AUTH_DENIED,  /* no credentials, or wrong ones */
    AUTH_PENDING, /* done(arg, result) will run later, on another thread */
    AUTH_BUSY,    /* too many checks waiting (or out of memory, or stopping): answer 503 */
};

/* result: AUTH_OK, AUTH_DENIED, or AUTH_BUSY (dropped for a fairer share, or at shutdown). */
typedef void (*auth_done_fn)(void *arg, enum auth_result result);

/*
 * Checks user/password (NULL: none sent) against web's users, for the client at address
 * client (NULL: unknown; the queue is shared fairly between addresses, auth.c). Only
 * AUTH_PENDING calls done, later and on another thread (or on a thread calling auth_check
 * or auth_stop); the strings are copied. With done NULL nothing is queued: AUTH_PENDING
 * then only says that the slow check is needed. Thread-safe.
 */
enum auth_result auth_check(struct auth *a, const struct config_web *web, const char *user,
                            const char *password, const struct sockaddr *client, auth_done_fn done,
                            void *arg);

#endif
