/*
 * Connections, tracked for the request deadline (limits.request_timeout): libmicrohttpd's
 * own timeout is one of inactivity, which a client sending a byte a second never trips.
 * From its start, and again after each answer, a connection has request_timeout to
 * deliver a whole request; past that, the sweep shuts its socket down, and libmicrohttpd
 * sees the end of the stream and closes the connection.
 *
 * The sweep runs on another thread, so the descriptor must still be the connection's
 * when it is shut down: libmicrohttpd reports MHD_CONNECTION_NOTIFY_CLOSED before it
 * closes the socket, on every path (read in its daemon.c, 0.9.75 to 1.0.1), and both the
 * report and the sweep hold track_lock. (A dup() of each socket would not need that
 * order, but costs two system calls per connection, a tenth of a /probe's.)
 *
 * A daemon at its connection limit leaves new clients in the backlog, so clients that
 * open connections and send nothing (or trickle) could hold every slot and keep a scrape
 * waiting until the request deadline cuts them. So when a connection takes a daemon's
 * last slot, the connection of that daemon that has waited longest for its request is
 * cut at once (from one below the limit): a slot stays free for the next client, and a connection
 * whose request headers are in (Prometheus sends them at once) is never cut this way.
 *
 * That alone still lets clients that reconnect as fast as they are cut win the race for
 * each freed slot (issue 16: a dozen addresses held every slot). So one address (an IPv6
 * client: its /64) may also hold at most limits.max_new_connections_per_ip connections that
 * have never delivered a request, once half the listener's slots are taken: one more cuts
 * that address's own longest-waiting such connection. A dozen addresses then hold a few dozen
 * slots, not thousands, and a client that sends its request at once, as Prometheus does, is never
 * the one cut. Kept-alive connections that were served are not "new": Prometheus keeps one per
 * /probe target.
 */
#include "exporter/http_internal.h"
#include "exporter/http_server.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int64_t request_deadline(struct exporter *x)
{
    struct config *cfg = config_slot_get(x->configs);
    int64_t t = config_limits(cfg)->request_timeout_ns;

    config_unref(cfg);
    return icmp_now_ns() + t;
}

/* How many connections of one daemon make it evict one: two below its limit (from 4 on),
 * as libmicrohttpd accepts and at once closes a connection arriving at the limit, and the
 * evicted one's slot frees only once the daemon has seen it end. */
static unsigned evict_at(const struct server *s)
{
    return s->connection_limit >= 4 ? s->connection_limit - 1 : s->connection_limit;
}

/* Whether the client has sent a whole request head that libmicrohttpd has not read yet
 * (it accepts a burst of connections before it reads any): such a one is no idler. */
static bool head_waiting(int fd)
{
    char buf[2048];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_PEEK | MSG_DONTWAIT);

    if (n <= 0)
        return false;
    buf[n] = '\0';
    return strstr(buf, "\r\n\r\n") != NULL;
}

/* If the daemon of fresh (a connection just started) is at its limit, cuts its connection
 * that has waited longest for a request (the earliest deadline; one being answered has
 * none, and one whose request head is in or waiting to be read is skipped), never fresh.
 * Counted with the request deadline's cuts. Under track_lock. */
static void evict_longest_waiting(struct server *s, struct http_tracked *fresh)
{
    struct MHD_Daemon *daemon = fresh->daemon;
    struct http_tracked *skip[4] = {NULL};
    size_t n = 0;

    for (struct http_tracked *t = s->tracked; t != NULL; t = t->next)
        n += t->daemon == daemon;
    if (n < evict_at(s))
        return;
    for (size_t tries = 0; tries < 4; tries++) {
        struct http_tracked *oldest = NULL;
        for (struct http_tracked *t = s->tracked; t != NULL; t = t->next) {
            int64_t d = atomic_load(&t->deadline);
            bool skipped = false;
            for (size_t k = 0; k < tries; k++)
                skipped |= skip[k] == t;
            if (t->daemon != daemon || t == fresh || skipped || atomic_load(&t->headers_in))
                continue;
            if (d != 0 && (oldest == NULL || d < atomic_load(&oldest->deadline)))
                oldest = t;
        }
        if (oldest == NULL)
            return;
        if (!head_waiting(oldest->fd)) {
            shutdown(oldest->fd, SHUT_RDWR); /* libmicrohttpd sees the end and closes it */
            atomic_store(&oldest->deadline, 0);
            atomic_fetch_add(&s->x->request_timeouts, 1);
            return;
        }
        skip[tries] = oldest;
    }
}

/* If fresh's listener has half its slots taken or more and fresh's address holds
 * max_new_per_ip other connections that never delivered a request, cuts the one of them
 * that has waited longest (not one whose request head is waiting to be read). Below half,
 * nothing is cut: a client opening many connections at once (Prometheus starting its
 * /probe scrapes) may accept them a moment before it writes its requests. Counted with the
 * request deadline's cuts. Under track_lock. */
static void cut_new_of_same_client(struct server *s, struct http_tracked *fresh)
{
    struct http_tracked *oldest = NULL;
    unsigned n = 0, n_daemon = 0;

    if (s->max_new_per_ip == 0 || fresh->client.len == 0)
        return;
    for (struct http_tracked *t = s->tracked; t != NULL; t = t->next)
        n_daemon += t->daemon == fresh->daemon;
    if (s->connection_limit > 0 && n_daemon * 2 < s->connection_limit)
        return;
    for (struct http_tracked *t = s->tracked; t != NULL; t = t->next) {
        if (t == fresh || atomic_load(&t->served) || atomic_load(&t->headers_in) ||
            !client_key_equal(&t->client, &fresh->client))
            continue;
        int64_t d = atomic_load(&t->deadline);
        n++;
        if (d != 0 && (oldest == NULL || d < atomic_load(&oldest->deadline)) &&
            !head_waiting(t->fd))
            oldest = t;
    }
    if (n < s->max_new_per_ip || oldest == NULL)
        return;
    shutdown(oldest->fd, SHUT_RDWR); /* libmicrohttpd sees the end and closes it */
    atomic_store(&oldest->deadline, 0);
    atomic_store(&oldest->served, true); /* cut: no longer one of the address's new ones */
    atomic_fetch_add(&s->x->request_timeouts, 1);
}

void http_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    struct server *s = cls;
    struct http_tracked *t = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        t = calloc(1, sizeof(*t));
        if (t == NULL)
            return; /* untracked: only libmicrohttpd's inactivity timeout applies */
        if (info == NULL) {
            free(t);
            return;
        }
        t->fd = info->connect_fd;
        info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
        t->daemon = info != NULL ? info->daemon : NULL;
        info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        t->client = client_key_of(info != NULL ? info->client_addr : NULL);
        atomic_init(&t->deadline, request_deadline(s->x));
        pthread_mutex_lock(&s->track_lock);
        t->next = s->tracked;
        if (s->tracked != NULL)
            s->tracked->prev = t;
        s->tracked = t;
        s->n_tracked++;
        cut_new_of_same_client(s, t);
        if (s->connection_limit > 0 && s->n_tracked >= evict_at(s))
            evict_longest_waiting(s, t);
        pthread_mutex_unlock(&s->track_lock);
        *socket_context = t;
        return;
    }
    if (t == NULL)
        return;
    pthread_mutex_lock(&s->track_lock);
    s->n_tracked--;
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        s->tracked = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&s->track_lock);
    free(t);
    *socket_context = NULL;
}

struct http_tracked *http_tracked_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return info != NULL ? info->socket_context : NULL;
}

void http_conn_headers_received(struct MHD_Connection *conn)
{
    struct http_tracked *t = http_tracked_of(conn);

    if (t != NULL) {
        atomic_store(&t->headers_in, true);
        atomic_store(&t->served, true);
    }
}

/* The request is in (its answer being made): no deadline until the next one starts. */
void http_conn_request_received(struct MHD_Connection *conn)
{
    struct http_tracked *t = http_tracked_of(conn);

    if (t != NULL)
        atomic_store(&t->deadline, 0);
}

/* Answered: on a kept-alive connection the next request's time starts now. */
void http_conn_request_answered(struct exporter *x, struct MHD_Connection *conn)
{
    struct http_tracked *t = http_tracked_of(conn);

    if (t != NULL) {
        atomic_store(&t->headers_in, false);
        atomic_store(&t->deadline, request_deadline(x));
    }
}

/*
 * At shutdown, bodies still streaming are cut with a TCP reset, never a FIN: an HTTP/1.0
 * body ends with the connection, so a FIN would make a cut one look whole. (A chunked body
 * shows its cut by its missing last chunk either way.) connect(AF_UNSPEC) disconnects the
 * socket with a reset; libmicrohttpd's own shutdown and close then send nothing more.
 */
void server_abort_streams(struct server *s)
{
    const struct sockaddr unspec = {.sa_family = AF_UNSPEC};

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->track_lock);
    for (struct http_tracked *t = s->tracked; t != NULL; t = t->next) {
        if (atomic_load(&t->streaming))
            connect(t->fd, &unspec, sizeof(unspec));
    }
    pthread_mutex_unlock(&s->track_lock);
}

unsigned server_sweep(struct server *s)
{
    int64_t now = icmp_now_ns();
    unsigned cut = 0;

    if (s == NULL)
        return 0;
    pthread_mutex_lock(&s->track_lock);
    for (struct http_tracked *t = s->tracked; t != NULL; t = t->next) {
        int64_t d = atomic_load(&t->deadline);
        if (d != 0 && d <= now) {
            shutdown(t->fd, SHUT_RDWR);
            atomic_store(&t->deadline, 0);
            cut++;
        }
    }
    pthread_mutex_unlock(&s->track_lock);
    return cut;
}
