/*
 * icmp_exporter's entry point: flags, start-up, signals and shutdown.
 *
 * Signals are blocked in every thread and taken synchronously by the main thread with
 * sigwait(): SIGHUP asks the reload thread for a reload (a configuration file that blocks
 * must not stop SIGTERM nor the request-timeout sweep, which this thread also runs),
 * SIGTERM and SIGINT stop. So no signal handler runs inside libmicrohttpd or the engine,
 * and there is no global flag.
 *
 * Shutdown order matters: stop accepting, refuse new probes, let queued name lookups
 * finish, close the engine (every job still running completes as cancelled and resumes
 * its connection), and only then stop the HTTP server, whose connections then hold no
 * probe that could still call back.
 */
#include <microhttpd.h>

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <malloc.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "exporter/build_info.h" /* generated at configure time: exporter/build_info.cmake */
#include "exporter/exporter.h"
#include "exporter/http_server.h"

#define MAX_LISTEN 16

static void print_usage(FILE *out)
{
    fputs(
        "usage: icmp_exporter [flags]\n"
        "\n"
        "Prometheus exporter measuring networks with ICMP echo.\n"
        "\n"
        "  --config.file=PATH           configuration file, JSON or blackbox_exporter's YAML\n"
        "                               (default: the embedded configuration)\n"
        "  --web.config.file=PATH       exporter-toolkit web configuration (YAML): TLS and\n"
        "                               basic-auth users\n"
        "  --config.check               validate the configuration, print the result, exit "
        "0 or 1\n"
        "  --web.listen-address=ADDR    address to listen on, host:port or :port; repeatable\n"
        "                               (default: the configuration's, else :9723)\n"
        "  --web.systemd-socket         listen on the sockets systemd passes (socket\n"
        "                               activation) instead of listen addresses\n"
        "  --web.external-url=URL       the URL the exporter is reached at; its path is the\n"
        "                               route prefix (http://host:9723/icmp/ serves /icmp/probe)\n"
        "  --web.route-prefix=PATH      where the routes live (default: the external URL's\n"
        "                               path, else /)\n"
        "  --web.enable-lifecycle       allow POST /-/reload (without it: 403; SIGHUP always\n"
        "                               reloads)\n"
        "  --timeout-offset=DURATION    subtracted from X-Prometheus-Scrape-Timeout-Seconds, "
        "a\n"
        "                               duration or seconds (500ms, 0.5; default 500ms)\n"
        "  --user=USER                  after opening its sockets, run as USER (name or uid)\n"
        "                               instead of root; capabilities are dropped in any case\n"
        "  --log.level=LEVEL            debug, info, warn or error (default info)\n"
        "  --log.format=FORMAT          logfmt or json (default logfmt)\n"
        "  --help                       show this help and exit\n"
        "  --version                    show version information and exit\n",
        out);
}

/* Prometheus exporters' multi-line form (`prometheus --version`), with the C compiler in
 * place of the Go version, and the libraries linked at run time. */
static void print_version(void)
{
    printf("icmp_exporter, version %s (branch: %s, revision: %s)\n"
           "  build user:       %s\n"
           "  build date:       %s\n"
           "  compiler:         %s\n"
           "  platform:         %s\n"
           "  libraries:        libmicrohttpd %s, cJSON %s, libyaml %s\n",
           ICMPX_VERSION, ICMPX_BUILD_BRANCH, ICMPX_BUILD_REVISION, ICMPX_BUILD_USER,
           ICMPX_BUILD_DATE, ICMPX_BUILD_COMPILER, ICMPX_BUILD_PLATFORM, MHD_get_version(),
           config_json_library_version(), config_yaml_library_version());
}

/* "--name=value" or "--name value": the value, or NULL when argv[*i] is not that flag. */
static const char *flag_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);

    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

struct options {
    const char *config_file;
    const char *web_config_file;
    bool check;
    const char *listen[MAX_LISTEN];
    size_t n_listen;
    int64_t timeout_offset_ns;
    const char *user;
    struct log_config log;
    bool systemd_socket;
    bool enable_lifecycle;
    char route_prefix[256]; /* "" or "/path", from --web.route-prefix or --web.external-url */
    bool route_prefix_set;  /* by --web.route-prefix, which wins over the URL's path */
};

/*
 * Sets o->route_prefix from a path: "" for "/" or "", else the path without its trailing
 * '/'. Only URL path characters that need no escaping in HTML or a redirect are allowed
 * (the landing page's links carry the prefix). Returns 0 or -EINVAL.
 */
static int set_route_prefix(struct options *o, const char *path, size_t len)
{
    while (len > 0 && path[len - 1] == '/')
        len--;
    if (len >= sizeof(o->route_prefix) || (len > 0 && path[0] != '/'))
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = path[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '-' || c == '.' || c == '_' || c == '~') ||
            (c == '/' && i > 0 && path[i - 1] == '/'))
            return -EINVAL;
    }
    memcpy(o->route_prefix, path, len);
    o->route_prefix[len] = '\0';
    return 0;
}

/* --web.external-url: an absolute http(s) URL; its path is the default route prefix, as in
 * blackbox_exporter. Returns 0 or -EINVAL. */
static int set_external_url(struct options *o, const char *url)
{
    const char *host, *path;

    if (strncmp(url, "http://", 7) == 0)
        host = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        host = url + 8;
    else
        return -EINVAL;
    if (*host == '\0' || *host == '/' || strpbrk(url, "?#") != NULL)
        return -EINVAL;
    path = strchr(host, '/');
    if (o->route_prefix_set)
        return 0;
    return path != NULL ? set_route_prefix(o, path, strlen(path)) : 0;
}

/* Returns -1 to go on, else the exit status. */
static int parse_flags(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            print_version();
            return 0;
        }
        if (strcmp(argv[i], "--config.check") == 0) {
            o->check = true;
            continue;
        }
        if (strcmp(argv[i], "--web.systemd-socket") == 0) {
            o->systemd_socket = true;
            continue;
        }
        if (strcmp(argv[i], "--web.enable-lifecycle") == 0) {
            o->enable_lifecycle = true;
            continue;
        }
        if ((v = flag_value(argc, argv, &i, "--config.file", &missing)) != NULL) {
            o->config_file = v;
        } else if ((v = flag_value(argc, argv, &i, "--web.config.file", &missing)) != NULL) {
            o->web_config_file = v;
        } else if ((v = flag_value(argc, argv, &i, "--web.listen-address", &missing)) != NULL) {
            if (o->n_listen == MAX_LISTEN) {
                fprintf(stderr, "icmp_exporter: at most %d listen addresses\n", MAX_LISTEN);
                return 2;
            }
            o->listen[o->n_listen++] = v;
        } else if ((v = flag_value(argc, argv, &i, "--timeout-offset", &missing)) != NULL) {
            if (config_parse_duration_or_seconds(v, &o->timeout_offset_ns) < 0) {
                fprintf(stderr,
                        "icmp_exporter: --timeout-offset: bad duration '%s' (250ms, 1s, or "
                        "seconds: 0.5)\n",
                        v);
                return 2;
            }
        } else if ((v = flag_value(argc, argv, &i, "--web.route-prefix", &missing)) != NULL) {
            if (set_route_prefix(o, v, strlen(v)) < 0) {
                fprintf(stderr, "icmp_exporter: --web.route-prefix: want a path like /icmp "
                                "(letters, digits, '/', '-', '.', '_', '~')\n");
                return 2;
            }
            o->route_prefix_set = true;
        } else if ((v = flag_value(argc, argv, &i, "--web.external-url", &missing)) != NULL) {
            if (set_external_url(o, v) < 0) {
                fprintf(stderr, "icmp_exporter: --web.external-url: want an absolute http(s) URL "
                                "without query, like http://host:9723/icmp/ (its path: letters, "
                                "digits, '/', '-', '.', '_', '~')\n");
                return 2;
            }
        } else if ((v = flag_value(argc, argv, &i, "--user", &missing)) != NULL) {
            if (*v == '\0') {
                fputs("icmp_exporter: --user needs a user name or uid\n", stderr);
                return 2;
            }
            o->user = v;
        } else if ((v = flag_value(argc, argv, &i, "--log.level", &missing)) != NULL) {
            if (log_parse_level(v, &o->log.level) < 0) {
                fprintf(stderr, "icmp_exporter: --log.level: want debug, info, warn or error\n");
                return 2;
            }
        } else if ((v = flag_value(argc, argv, &i, "--log.format", &missing)) != NULL) {
            if (log_parse_format(v, &o->log.format) < 0) {
                fprintf(stderr, "icmp_exporter: --log.format: want logfmt or json\n");
                return 2;
            }
        } else if (missing) {
            fprintf(stderr, "icmp_exporter: %s needs %s (see --help)\n", argv[i],
                    strstr(argv[i], "config.file") != NULL ? "a file name" : "a value");
            return 2;
        } else {
            fprintf(stderr, "icmp_exporter: unknown flag '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (o->config_file != NULL && o->config_file[0] == '\0') {
        fputs("icmp_exporter: --config.file needs a file name (see --help)\n", stderr);
        return 2;
    }
    if (o->web_config_file != NULL && o->web_config_file[0] == '\0') {
        fputs("icmp_exporter: --web.config.file needs a file name (see --help)\n", stderr);
        return 2;
    }
    return -1;
}

/* The configuration's warnings (what a blackbox_exporter file had that is skipped or
 * ignored), logged at warn level, or with LOG NULL printed on stderr as they are. */
static void report_warnings(const struct config *cfg, const struct log_config *log)
{
    size_t n;
    const char *const *w = config_warnings(cfg, &n);

    for (size_t i = 0; i < n; i++) {
        if (log != NULL)
            log_write(log, LOG_LEVEL_WARN, "configuration warning", "warning", w[i], NULL);
        else
            fprintf(stderr, "%s\n", w[i]);
    }
}

/* Says which ICMP sockets we got, and how to get them when we got none. */
static void log_socket_modes(struct exporter *x)
{
    for (int i = 0; i < 2; i++) {
        int af = i == 0 ? AF_INET : AF_INET6;
        enum icmp_socket_mode m = icmp_engine_mode(x->engine, af);
        log_write(&x->log, m == ICMP_MODE_NONE ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, "ICMP socket",
                  "family", i == 0 ? "ipv4" : "ipv6", "mode", icmp_socket_mode_name(m), NULL);
    }
}

static const char privilege_help[] =
    "no ICMP socket could be opened. Any one of these fixes it: "
    "(1) allow ping sockets for our group: sysctl -w net.ipv4.ping_group_range=\"0 2147483647\" "
    "(in a container: --sysctl net.ipv4.ping_group_range=...); "
    "(2) give the binary raw sockets: setcap cap_net_raw+ep icmp_exporter; "
    "(3) run it as root";

/*
 * Drops what the process was started with once its sockets are open, while it still has a
 * single thread (capabilities are per thread): to USER when given (supplementary groups,
 * gid, uid: root stays root only without --user), then every capability (a plain user
 * with `setcap cap_net_raw+ep` holds CAP_NET_RAW otherwise), and no_new_privs, so no exec
 * could regain any. Returns 0 or -errno with what failed in err.
 */
static int drop_privileges(const char *user, char *err, size_t errlen)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    /* The bounding set too, while CAP_SETPCAP may still be there (root); a plain user
     * cannot, and needs not: no_new_privs below stops every way back. Up to 63: the
     * kernel's own last capability may be above this header's. */
    for (int cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
        prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (user != NULL) {
        struct passwd pw, *found = NULL;
        char buf[4096], *end;
        uid_t uid;
        gid_t gid;
        unsigned long n;

        if (getpwnam_r(user, &pw, buf, sizeof(buf), &found) != 0 || found == NULL) {
            errno = 0;
            n = strtoul(user, &end, 10);
            if (*user < '0' || *user > '9' || *end != '\0' || errno != 0 || n >= (uid_t)-1) {
                snprintf(err, errlen, "--user: no user \"%s\"", user);
                return -ENOENT;
            }
            if (getpwuid_r((uid_t)n, &pw, buf, sizeof(buf), &found) != 0)
                found = NULL;
            uid = (uid_t)n;
            gid = found != NULL ? found->pw_gid : (gid_t)n; /* a bare uid: its number as gid */
        } else {
            uid = found->pw_uid;
            gid = found->pw_gid;
        }
        if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
            setresuid(uid, uid, uid) != 0) {
            int e = errno;
            snprintf(err, errlen, "cannot become user %s (uid %u, gid %u): %s", user, (unsigned)uid,
                     (unsigned)gid, strerror(e));
            return -e;
        }
        if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
            snprintf(err, errlen, "could regain root after switching to user %s", user);
            return -EPERM;
        }
    }
    memset(data, 0, sizeof(data));
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (syscall(SYS_capset, &hdr, data) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot drop capabilities: %s", strerror(e));
        return -e;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot set no_new_privs: %s", strerror(e));
        return -e;
    }
    return 0;
}

/* limits.max_connections defaults to 4096 descriptors for connections alone: take the
 * hard limit, as Go programs do, instead of the soft 1024. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int serve(struct options *o, struct config *cfg)
{
    struct exporter x;
    struct exporter_options xo = {.log = o->log,
                                  .config_path = o->config_file,
                                  .web_config_path = o->web_config_file,
                                  .timeout_offset_ns = o->timeout_offset_ns,
                                  .route_prefix = o->route_prefix,
                                  .enable_lifecycle = o->enable_lifecycle};
    struct server *server = NULL;
    const struct config_web *web = config_web(cfg);
    const char *const *listen = o->listen;
    size_t n_listen = o->n_listen, n_systemd = 0;
    char err[512];
    sigset_t set;
    int rc, status = 1;

    /* Every thread created from here on inherits the blocked signals. */
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* First what needs privileges (ICMP sockets, listening ports, the TLS key), then drop
     * them while this is the only thread, then start the threads. */
    raise_fd_limit();
    rc = exporter_open(&x, &xo, cfg, err, sizeof(err));
    if (rc < 0) {
        log_write(&x.log, LOG_LEVEL_ERROR,
                  rc == -EACCES   ? privilege_help
                  : rc == -ENOMEM ? "out of memory"
                                  : "cannot open the ICMP engine",
                  "err", err, NULL);
        goto out;
    }
    log_socket_modes(&x);
    if (n_listen == 0) {
        listen = web->listen_addresses;
        n_listen = web->n_listen_addresses;
    }
    rc = o->systemd_socket ? server_prepare_systemd(&server, &x, cfg, &n_systemd, err, sizeof(err))
                           : server_prepare(&server, &x, listen, n_listen, cfg, err, sizeof(err));
    if (rc < 0) {
        log_write(&x.log, LOG_LEVEL_ERROR, "cannot start the HTTP server", "err", err, NULL);
        goto out;
    }
    rc = drop_privileges(o->user, err, sizeof(err));
    if (rc < 0) {
        log_write(&x.log, LOG_LEVEL_ERROR, "cannot drop privileges", "err", err, NULL);
        goto out;
    }
    if (geteuid() == 0)
        log_write(&x.log, LOG_LEVEL_WARN,
                  "running as root (without capabilities); --user=NAME runs as NAME once the "
                  "sockets are open",
                  NULL);
    rc = exporter_start(&x, err, sizeof(err));
    if (rc < 0) {
        log_write(&x.log, LOG_LEVEL_ERROR, "cannot start the worker threads", "err", err, NULL);
        goto out;
    }
    rc = server_run(server, err, sizeof(err));
    if (rc < 0) {
        log_write(&x.log, LOG_LEVEL_ERROR, "cannot start the HTTP server", "err", err, NULL);
        goto out;
    }
    for (size_t i = 0; !o->systemd_socket && i < n_listen; i++)
        log_write(&x.log, LOG_LEVEL_INFO, "listening", "address", listen[i], "tls",
                  x.tls_cert_file != NULL ? "true" : "false", NULL);
    for (size_t i = 0; i < n_systemd; i++) {
        char fd[16];
        snprintf(fd, sizeof(fd), "%zu", 3 + i);
        log_write(&x.log, LOG_LEVEL_INFO, "listening", "systemd_socket_fd", fd, "tls",
                  x.tls_cert_file != NULL ? "true" : "false", NULL);
    }
    if (x.route_prefix[0] != '\0')
        log_write(&x.log, LOG_LEVEL_INFO, "routes", "prefix", x.route_prefix, NULL);
    log_write(&x.log, LOG_LEVEL_INFO, "started", "version", ICMPX_VERSION, "config",
              o->config_file != NULL ? o->config_file : "(embedded default)", "user",
              o->user != NULL ? o->user : "(unchanged)", NULL);

    for (;;) {
        /* Woken by a signal, or each second to cut connections past their deadline. */
        struct timespec second = {1, 0};
        int sig = sigtimedwait(&set, NULL, &second);
        if (sig < 0) {
            unsigned cut = server_sweep(server);
            if (cut > 0)
                atomic_fetch_add(&x.request_timeouts, cut);
            continue;
        }
        if (sig == SIGHUP) {
            /* The reload thread loads and logs; a load under way is followed by another. */
            exporter_request_reload(&x, NULL, NULL);
            continue;
        }
        log_write(&x.log, LOG_LEVEL_INFO, "shutting down", "signal", strsignal(sig), NULL);
        break;
    }
    status = 0;

out:
    server_quiesce(server);
    exporter_stop(&x);
    server_abort_streams(server);
    server_stop(server);
    exporter_close(&x);
    return status;
}

int main(int argc, char **argv)
{
    struct options o = {.timeout_offset_ns = 500000000,
                        .log = {.level = LOG_LEVEL_INFO, .format = LOG_FORMAT_LOGFMT}};
    struct config *cfg = NULL;
    struct config_files files;
    char err[1024];
    int rc = parse_flags(argc, argv, &o);

    if (rc >= 0)
        return rc;
    o.log.out = stderr;
    files = (struct config_files){o.config_file, o.web_config_file};
    rc = config_load_files(&files, &cfg, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* Parsing a large file leaves megabytes of freed JSON tree in the heap: give them back
     * before the long idle life of the process (glibc keeps them otherwise). */
    malloc_trim(0);
    if (o.check) {
        size_t n_modules, n_targets, n_warnings;
        config_modules(cfg, &n_modules);
        config_targets(cfg, &n_targets);
        config_warnings(cfg, &n_warnings);
        report_warnings(cfg, NULL);
        if (n_warnings > 0)
            printf("config OK: %zu modules, %zu targets, %zu warnings\n", n_modules, n_targets,
                   n_warnings);
        else
            printf("config OK: %zu modules, %zu targets\n", n_modules, n_targets);
        config_unref(cfg);
        return 0;
    }
    report_warnings(cfg, &o.log);
    return serve(&o, cfg); /* takes over cfg */
}
