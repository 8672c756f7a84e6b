/*
 * Listeners and the daemons' lifecycle: listen addresses parsed and bound, the TLS files
 * read (all before privileges are dropped), one libmicrohttpd daemon per address with an
 * internal polling thread (epoll) and suspend/resume, quiesce and stop. (libmicrohttpd
 * forbids suspend/resume together with thread-per-connection, and its select() mode stops
 * at 1024 descriptors.)
 *
 * The connection limit is kept below the descriptor limit (RLIMIT_NOFILE): a daemon whose
 * accept() fails with EMFILE logs it and tries again, and with two listeners they took
 * turns at it (98 % of a core, a warning per turn). Below the limit, a daemon at its
 * connection limit stops polling its listening socket, and new clients wait in the backlog.
 */
#include "exporter/http_internal.h"
#include "exporter/http_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define TLS_FILE_MAX (1024 * 1024)
/* TLS 1.2 and 1.3 only, as Prometheus' exporter-toolkit by default. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* "host:port", "[v6]:port" or ":port" into a socket address (":port": NULL, dual stack). */
static int parse_listen(const char *text, struct sockaddr_storage *ss, bool *any, uint16_t *port)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    size_t hl;
    char *end;
    unsigned long p;
    struct addrinfo hints = {.ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *res;

    if (colon == NULL)
        return -EINVAL;
    errno = 0;
    p = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || p > 65535)
        return -EINVAL;
    *port = (uint16_t)p;
    hl = (size_t)(colon - text);
    if (hl == 0) {
        *any = true;
        return 0;
    }
    if (text[0] == '[' && hl >= 2 && text[hl - 1] == ']') {
        text++;
        hl -= 2;
    }
    if (hl >= sizeof(host))
        return -EINVAL;
    memcpy(host, text, hl);
    host[hl] = '\0';
    *any = false;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        return -EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

/* Reads a whole (small) file for TLS into a NUL-terminated buffer. Returns 0 or -errno. */
static int read_small_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    *out = NULL;
    if (f == NULL)
        return -errno;
    for (;;) {
        if (cap - n < 4096) {
            char *more;
            if (cap >= TLS_FILE_MAX) {
                rc = -EFBIG;
                break;
            }
            more = realloc(buf, cap + 65536);
            if (more == NULL) {
                rc = -ENOMEM;
                break;
            }
            buf = more;
            cap += 65536;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = -EIO;
            break;
        }
    }
    fclose(f);
    if (rc < 0) {
        if (buf != NULL)
            explicit_bzero(buf, cap);
        free(buf);
        return rc;
    }
    if (buf == NULL && (buf = malloc(1)) == NULL)
        return -ENOMEM;
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* A listening TCP socket for one address (":port": IPv6 and IPv4 when the host has IPv6).
 * Returns the descriptor, or -errno. */
static int open_listener(const struct sockaddr_storage *ss, bool any, uint16_t port, int *family)
{
    struct sockaddr_storage a = *ss;
    socklen_t len;
    int fd, one = 1, zero = 0, e;

    if (any) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a;
        memset(&a, 0, sizeof(a));
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_any;
        s6->sin6_port = htons(port);
    }
    fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && any && errno == EAFNOSUPPORT) { /* a kernel without IPv6 */
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a;
        memset(&a, 0, sizeof(a));
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        s4->sin_port = htons(port);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0)
        return -errno;
    len = a.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (a.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &one, sizeof(int));
    if (bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, SOMAXCONN) < 0) {
        e = errno;
        close(fd);
        return -e;
    }
    *family = a.ss_family;
    return fd;
}

/* A server with nothing to listen on yet, its TLS files read when cfg's web section names
 * them. Returns 0 or -errno with the reason in err. */
static int server_new(struct server **out, struct exporter *x, const struct config *cfg, char *err,
                      size_t errlen)
{
    struct server *s = calloc(1, sizeof(*s));
    const struct config_web *web = config_web(cfg);
    int rc;

    *out = NULL;
    if (s == NULL)
        return -ENOMEM;
    s->x = x;
    pthread_mutex_init(&s->track_lock, NULL);
    s->max_connections = config_limits(cfg)->max_connections;
    s->max_per_ip = config_limits(cfg)->max_connections_per_ip;
    s->max_new_per_ip = config_limits(cfg)->max_new_connections_per_ip;
    for (size_t i = 0; i < HTTP_MAX_DAEMONS; i++)
        s->fds[i] = -1;
    if (web->tls_cert_file != NULL) {
        const char *failed = web->tls_cert_file;
        rc = read_small_file(web->tls_cert_file, &s->tls_cert, &s->tls_cert_len);
        if (rc == 0) {
            failed = web->tls_key_file;
            rc = read_small_file(web->tls_key_file, &s->tls_key, &s->tls_key_len);
        }
        if (rc < 0) {
            snprintf(err, errlen, "cannot read %s: %s", failed, strerror(-rc));
            server_stop(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

int server_prepare(struct server **out, struct exporter *x, const char *const *listen, size_t n,
                   const struct config *cfg, char *err, size_t errlen)
{
    struct server *s;
    int rc;

    *out = NULL;
    if (n > HTTP_MAX_DAEMONS) {
        snprintf(err, errlen, "at most %d listen addresses", HTTP_MAX_DAEMONS);
        return -EINVAL;
    }
    if ((rc = server_new(&s, x, cfg, err, errlen)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss = {0};
        bool any = false;
        uint16_t port = 0;

        if (parse_listen(listen[i], &ss, &any, &port) < 0) {
            snprintf(err, errlen, "bad listen address \"%s\": want host:port or :port", listen[i]);
            server_stop(s);
            return -EINVAL;
        }
        rc = open_listener(&ss, any, port, &s->families[i]);
        if (rc < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", listen[i], strerror(-rc));
            server_stop(s);
            return rc;
        }
        s->fds[i] = rc;
        s->n_fds = i + 1;
    }
    *out = s;
    return 0;
}

/* A decimal environment variable in [1, max], or 0 when absent or malformed. */
static unsigned long env_number(const char *name, unsigned long max)
{
    const char *v = getenv(name);
    char *end;
    unsigned long n;

    if (v == NULL || *v < '0' || *v > '9')
        return 0;
    errno = 0;
    n = strtoul(v, &end, 10);
    return errno == 0 && *end == '\0' && n <= max ? n : 0;
}

int server_prepare_systemd(struct server **out, struct exporter *x, const struct config *cfg,
                           size_t *n_sockets, char *err, size_t errlen)
{
    /* sd_listen_fds(3): LISTEN_PID names this process, LISTEN_FDS sockets from descriptor 3
     * on. Read without libsystemd: two variables are the whole protocol. */
    unsigned long pid = env_number("LISTEN_PID", (unsigned long)INT32_MAX);
    unsigned long n = env_number("LISTEN_FDS", HTTP_MAX_DAEMONS + 1);
    struct server *s;
    int rc;

    *out = NULL;
    if (pid != (unsigned long)getpid() || n == 0) {
        snprintf(err, errlen,
                 "--web.systemd-socket: systemd passed no sockets (LISTEN_PID and LISTEN_FDS "
                 "do not name this process): start it from a .socket unit");
        return -ENOENT;
    }
    if (n > HTTP_MAX_DAEMONS) {
        snprintf(err, errlen, "--web.systemd-socket: at most %d sockets", HTTP_MAX_DAEMONS);
        return -EINVAL;
    }
    if ((rc = server_new(&s, x, cfg, err, errlen)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        int fd = 3 + (int)i, listening = 0, flags;
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss), olen = sizeof(listening);

        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
            (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) < 0 || !listening) {
            snprintf(err, errlen,
                     "--web.systemd-socket: descriptor %d is not a listening TCP socket", fd);
            server_stop(s);
            return -EINVAL;
        }
        flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        s->fds[i] = fd;
        s->families[i] = ss.ss_family;
        s->n_fds = i + 1;
    }
    /* Not for the children of the children: the sockets are ours now. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    *n_sockets = n;
    *out = s;
    return 0;
}

/* Descriptors open in this process now. /proc/self/fd, else (a process that changed user
 * is not dumpable: /proc/self/fd is root's) the first 4096 numbers tried one by one: all
 * the descriptors of start-up are there. */
static long open_descriptors(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = -1; /* the directory's own descriptor */

    if (d == NULL) {
        n = 0;
        for (int fd = 0; fd < 4096; fd++)
            n += fcntl(fd, F_GETFD) >= 0;
        return n;
    }
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 2; /* "." and ".." */
}

/* Descriptors kept free beyond the connections: each daemon's epoll and wake-up
 * descriptors, and room for what opens while serving (name lookups, a reload's file,
 * /proc/self/stat for each /metrics). */
#define FDS_PER_DAEMON 2
#define FDS_SPARE      16

/* The connection limit per listener that fits in RLIMIT_NOFILE with the descriptors open
 * now, n daemons about to start; configured when it fits (or the limit is unknown). */
static unsigned connections_that_fit(struct server *s, size_t n)
{
    struct rlimit rl;
    long open = open_descriptors(), room;
    unsigned fit;
    char want[24], got[24], nofile[24];

    if (n == 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > (rlim_t)LONG_MAX)
        return s->max_connections;
    room = (long)rl.rlim_cur - open - (long)n * FDS_PER_DAEMON - FDS_SPARE;
    fit = room < (long)n ? 1 : (unsigned)(room / (long)n);
    if (fit >= s->max_connections)
        return s->max_connections;
    snprintf(want, sizeof(want), "%u", s->max_connections);
    snprintf(got, sizeof(got), "%u", fit);
    snprintf(nofile, sizeof(nofile), "%llu", (unsigned long long)rl.rlim_cur);
    log_write(&s->x->log, LOG_LEVEL_WARN,
              "limits.max_connections lowered to fit the descriptor limit (raise ulimit -n)",
              "max_connections", want, "per_listener", got, "nofile", nofile, NULL);
    return fit;
}

int server_run(struct server *s, char *err, size_t errlen)
{
    unsigned max_connections = connections_that_fit(s, s->n_fds);

    s->connection_limit = max_connections;

    for (size_t i = 0; i < s->n_fds; i++) {
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        struct MHD_Daemon *d;

        if (s->families[i] == AF_INET6)
            flags |= MHD_USE_IPv6;
        if (s->tls_cert != NULL)
            flags |= MHD_USE_TLS;
        /* The TLS options come last: without TLS, MHD_OPTION_END stops the list there. */
        d = MHD_start_daemon(
            flags, 0, NULL, NULL, http_handle, s->x, MHD_OPTION_EXTERNAL_LOGGER, http_log, s->x,
            MHD_OPTION_NOTIFY_COMPLETED, http_completed, s->x, MHD_OPTION_NOTIFY_CONNECTION,
            http_conn_notify, s, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT,
            max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->max_per_ip,
            /* 8 KiB per connection, not 32 KiB allocated and zeroed for each: our
             * requests are a line and a few headers. */
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192, MHD_OPTION_LISTEN_SOCKET, s->fds[i],
            s->tls_cert != NULL ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->tls_cert,
            MHD_OPTION_HTTPS_MEM_KEY, s->tls_key, MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
            MHD_OPTION_END);
        if (d == NULL) {
            snprintf(err, errlen, "cannot start the HTTP server%s (see the log above)",
                     s->tls_cert != NULL ? " with TLS: check the certificate and key" : "");
            return -EINVAL;
        }
        s->fds[i] = -1; /* the daemon's now */
        s->daemons[s->n_daemons++] = d;
    }
    return 0;
}

void server_quiesce(struct server *s)
{
    for (size_t i = 0; s != NULL && i < s->n_daemons; i++) {
        MHD_socket fd = MHD_quiesce_daemon(s->daemons[i]);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
}

void server_stop(struct server *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_daemons; i++)
        MHD_stop_daemon(s->daemons[i]);
    for (size_t i = 0; i < s->n_fds; i++) {
        if (s->fds[i] >= 0)
            close(s->fds[i]);
    }
    if (s->tls_key != NULL)
        explicit_bzero(s->tls_key, s->tls_key_len);
    free(s->tls_key);
    free(s->tls_cert);
    pthread_mutex_destroy(&s->track_lock);
    free(s);
}
