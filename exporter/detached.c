/* The shared part of a detached worker and its owner (detached.h). */
#include "exporter/detached.h"

void detached_home_init(struct detached_home *h, unsigned refs)
{
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->idle, NULL);
    h->refs = refs;
    h->callbacks = 0;
}

bool detached_home_unref_unlock(struct detached_home *h)
{
    bool last = --h->refs == 0;

    pthread_mutex_unlock(&h->lock);
    return last;
}

void detached_home_cleanup(struct detached_home *h)
{
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->idle);
}

void detached_home_callback_begin(struct detached_home *h)
{
    h->callbacks++;
    pthread_mutex_unlock(&h->lock);
}

void detached_home_callback_end(struct detached_home *h)
{
    pthread_mutex_lock(&h->lock);
    if (--h->callbacks == 0)
        pthread_cond_broadcast(&h->idle);
}

void detached_home_quiesce(struct detached_home *h)
{
    while (h->callbacks > 0)
        pthread_cond_wait(&h->idle, &h->lock);
}
