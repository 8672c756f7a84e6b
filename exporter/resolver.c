/*
 * Name resolution off the HTTP thread. getaddrinfo() blocks, so a few threads run it from
 * a queue; IP literals never reach the queue. A probe thus holds no thread while its
 * echoes are in flight, and a slow DNS server delays only the probes of names.
 */
#include "exporter/resolver.h"

#include <pthread.h>
#include <stdio.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_THREADS 8

struct request {
    struct request *next;
    int preferred;
    bool fallback;
    resolve_done_fn done;
    void *arg;
    char name[256];
};

struct resolver {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct request *head, *tail;
    bool stopping;
    unsigned n_threads;
    pthread_t threads[MAX_THREADS];
};

static void resolve(const struct request *rq, struct resolution *res)
{
    struct addrinfo hints = {.ai_socktype = SOCK_RAW, .ai_protocol = IPPROTO_ICMP};
    struct addrinfo *list = NULL;
    const struct addrinfo *pick = NULL;
    int want = rq->preferred == 4 ? AF_INET : AF_INET6;
    int64_t t0 = icmp_now_ns();

    memset(res, 0, sizeof(*res));
    res->error = getaddrinfo(rq->name, NULL, &hints, &list);
    if (res->error == 0) {
        for (const struct addrinfo *ai = list; ai != NULL && pick == NULL; ai = ai->ai_next) {
            if (ai->ai_family == want)
                pick = ai;
        }
        for (const struct addrinfo *ai = list; rq->fallback && ai != NULL && pick == NULL;
             ai = ai->ai_next) {
            if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
                pick = ai;
        }
        if (pick == NULL) {
            res->error = EAI_ADDRFAMILY;
        } else if (pick->ai_family == AF_INET) {
            res->addr.family = AF_INET;
            memcpy(res->addr.bytes, &((struct sockaddr_in *)pick->ai_addr)->sin_addr, 4);
        } else {
            const struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)pick->ai_addr;
            res->addr.family = AF_INET6;
            memcpy(res->addr.bytes, &s6->sin6_addr, 16);
            res->addr.scope_id = s6->sin6_scope_id;
        }
        freeaddrinfo(list);
    }
    res->took_ns = icmp_now_ns() - t0;
}

static void *worker(void *arg)
{
    struct resolver *r = arg;

    for (;;) {
        struct request *rq;
        struct resolution res;

        pthread_mutex_lock(&r->lock);
        while (r->head == NULL && !r->stopping)
            pthread_cond_wait(&r->wake, &r->lock);
        rq = r->head;
        if (rq != NULL) {
            r->head = rq->next;
            if (r->head == NULL)
                r->tail = NULL;
        }
        pthread_mutex_unlock(&r->lock);
        if (rq == NULL)
            return NULL; /* stopping, queue drained */
        resolve(rq, &res);
        rq->done(rq->arg, &res);
        free(rq);
    }
}

int resolver_open(struct resolver **out, unsigned threads)
{
    struct resolver *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return -ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    if (threads == 0 || threads > MAX_THREADS)
        threads = 2;
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&r->threads[i], NULL, worker, r) != 0)
            break;
        r->n_threads++;
    }
    if (r->n_threads == 0) {
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->wake);
        free(r);
        return -EAGAIN;
    }
    *out = r;
    return 0;
}

void resolver_close(struct resolver *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->lock);
    for (unsigned i = 0; i < r->n_threads; i++)
        pthread_join(r->threads[i], NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r);
}

int resolver_submit(struct resolver *r, const char *name, int preferred, bool fallback,
                    resolve_done_fn done, void *arg)
{
    struct resolution res = {0};
    struct request *rq;

    if (icmp_addr_parse(name, &res.addr) == 0) {
        done(arg, &res); /* a literal: nothing to look up */
        return 0;
    }
    rq = calloc(1, sizeof(*rq));
    if (rq == NULL)
        return -ENOMEM;
    rq->preferred = preferred;
    rq->fallback = fallback;
    rq->done = done;
    rq->arg = arg;
    snprintf(rq->name, sizeof(rq->name), "%s", name);
    pthread_mutex_lock(&r->lock);
    if (r->stopping) {
        pthread_mutex_unlock(&r->lock);
        free(rq);
        return -ESHUTDOWN;
    }
    if (r->tail != NULL)
        r->tail->next = rq;
    else
        r->head = rq;
    r->tail = rq;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    return 0;
}
