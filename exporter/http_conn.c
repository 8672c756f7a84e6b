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
 */
#include "exporter/http_internal.h"
#include "exporter/http_server.h"

#include <stdlib.h>
#include <sys/socket.h>

static int64_t request_deadline(struct exporter *x)
{
    struct config *cfg = config_slot_get(x->configs);
    int64_t t = config_limits(cfg)->request_timeout_ns;

    config_unref(cfg);
    return icmp_now_ns() + t;
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
        atomic_init(&t->deadline, request_deadline(s->x));
        pthread_mutex_lock(&s->track_lock);
        t->next = s->tracked;
        if (s->tracked != NULL)
            s->tracked->prev = t;
        s->tracked = t;
        pthread_mutex_unlock(&s->track_lock);
        *socket_context = t;
        return;
    }
    if (t == NULL)
        return;
    pthread_mutex_lock(&s->track_lock);
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

    if (t != NULL)
        atomic_store(&t->deadline, request_deadline(x));
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
