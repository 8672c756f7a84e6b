/*
 * The reload holder. A slot owns one reference to the current configuration. Readers take
 * their own reference under a mutex held for two pointer operations, then read without
 * any lock for as long as they like: a request in flight keeps the configuration it
 * started with even if a reload swaps another in meanwhile. A reload parses and validates
 * outside the lock (it may read files and take milliseconds), then swaps under it, so a
 * failed reload never disturbs the current configuration. The old one is freed by
 * whoever drops its last reference, the slot or the last reader.
 */
#include "config/config_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct config_slot {
    pthread_mutex_t lock;
    struct config *current; /* never NULL */
    struct config_reload_status status;
};

static double realtime_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct config_slot *config_slot_new(struct config *initial)
{
    struct config_slot *slot = NULL;

    if (initial == NULL)
        goto fail;
    slot = calloc(1, sizeof(*slot));
    if (slot == NULL)
        goto fail;
    if (pthread_mutex_init(&slot->lock, NULL) != 0)
        goto fail;
    slot->current = initial;
    slot->status.last_success = true;
    slot->status.last_success_seconds = realtime_seconds();
    slot->status.successes_total = 1;
    return slot;

fail:
    free(slot);
    config_unref(initial);
    return NULL;
}

void config_slot_free(struct config_slot *slot)
{
    if (slot == NULL)
        return;
    config_unref(slot->current);
    pthread_mutex_destroy(&slot->lock);
    free(slot);
}

struct config *config_slot_get(struct config_slot *slot)
{
    struct config *cfg;

    pthread_mutex_lock(&slot->lock);
    cfg = config_ref(slot->current);
    pthread_mutex_unlock(&slot->lock);
    return cfg;
}

void config_slot_swap(struct config_slot *slot, struct config *fresh)
{
    struct config *old = NULL;

    pthread_mutex_lock(&slot->lock);
    if (fresh != NULL) {
        old = slot->current;
        slot->current = fresh;
        slot->status.last_success = true;
        slot->status.last_success_seconds = realtime_seconds();
        slot->status.successes_total++;
    } else {
        slot->status.last_success = false;
        slot->status.failures_total++;
    }
    pthread_mutex_unlock(&slot->lock);
    config_unref(old); /* outside the lock: it may free a whole configuration */
}

int config_slot_reload(struct config_slot *slot, const char *path, char *err, size_t errlen)
{
    struct config *fresh = NULL;
    int rc = path != NULL ? config_load_file(path, &fresh, err, errlen)
                          : config_load_default(&fresh, err, errlen);

    config_slot_swap(slot, rc == 0 ? fresh : NULL);
    return rc;
}

void config_slot_status(struct config_slot *slot, struct config_reload_status *status)
{
    pthread_mutex_lock(&slot->lock);
    *status = slot->status;
    pthread_mutex_unlock(&slot->lock);
}
