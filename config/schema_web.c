/*
 * The serving schema: "limits" (what a /probe caller may ask for, and how much the
 * exporter takes on at once) and "web" (where it listens, TLS, basic-auth users).
 *
 * Every value is checked here so that the exporter never finds out at run time: listen
 * addresses are parsed as the listener will read them, TLS files are opened now (not at
 * the first handshake), and bcrypt hashes are checked for their shape, never echoed back
 * (a password pasted by mistake must not land in a log).
 *
 * The web configuration file (--web.config.file, exporter-toolkit's YAML) fills the same
 * web section through the same functions, with exporter-toolkit's keys: those our TLS
 * cannot follow are refused by name unless they ask for what it does anyway, and neither
 * TLS nor users may be set both there and in the configuration file.
 */
#include "config/config_internal.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LIMIT      1000000
#define DEFAULT_LISTEN ":9723"

static const char *const default_listen[] = {DEFAULT_LISTEN};

void config__limits_web_defaults(struct config *cfg)
{
    cfg->limits.max_echoes_per_probe = 100;
    cfg->limits.max_concurrent_probes = 1000;
    cfg->limits.max_targets_per_scrape = 10000;
    cfg->limits.max_packets_per_second = 100000;
    cfg->limits.max_connections = 4096;
    cfg->limits.max_connections_per_ip = 1024;
    cfg->limits.max_new_connections_per_ip = 16;
    cfg->limits.request_timeout_ns = 30 * (int64_t)1000000000;
    cfg->web.listen_addresses = default_listen;
    cfg->web.n_listen_addresses = 1;
}

/* ---- limits ---- */

/* The lists being filled: each entry of allowed_targets goes to one of them. */
struct allow_lists {
    struct config_cidr *cidrs;
    const char **names;
};

static int parse_allowed_target(struct loader *ld, const cJSON *c, size_t i, void *arg)
{
    struct allow_lists *lists = arg;
    struct config_limits *l = &ld->cfg->limits;
    const char *s = NULL, *why;
    char buf[128], *name;
    int rc = config__get_string(ld, c, "a CIDR, an IP address or a host name", &s);

    (void)i;
    if (rc != 0)
        return rc;
    if (strchr(s, '/') != NULL || strchr(s, ':') != NULL || config__looks_ipv4(s)) {
        why = config__parse_cidr(s, &lists->cidrs[l->n_allowed_cidrs], buf, sizeof(buf));
        if (why != NULL)
            return config__fail_got(
                ld, c, "expected a CIDR such as 198.18.0.0/15 or 2001:db8::/32 (%s)", why);
        l->n_allowed_cidrs++;
        return 0;
    }
    why = config__check_host_name(s, true);
    if (why != NULL)
        return config__fail_got(ld, c,
                                "expected a host name such as probe.example.com or "
                                "*.example.com (%s)",
                                why);
    name = config__arena_strdup(ld->cfg, s);
    if (name == NULL)
        return config__fail_oom(ld);
    config__fold_name(name);
    lists->names[l->n_allowed_names++] = name;
    return 0;
}

static int parse_allowed_targets(struct loader *ld, const cJSON *arr)
{
    struct config *cfg = ld->cfg;
    struct allow_lists lists;
    size_t n;
    int rc;

    /* Allocated here, filled below: names go to an array of their own. */
    lists.cidrs = config__collect(ld, arr, "CIDRs, IP addresses and host names",
                                  sizeof(*lists.cidrs), NULL, &n, &rc);
    lists.names = config__arena_array(cfg, n, sizeof(*lists.names));
    if (rc == 0 && n > 0 && lists.names == NULL)
        rc = config__fail_oom(ld);
    if (rc == 0)
        rc = config__each_member(ld, arr, parse_allowed_target, &lists);
    cfg->limits.allowed_cidrs = lists.cidrs;
    cfg->limits.allowed_names = lists.names;
    return rc;
}

/* One member of "limits", by its key (config__check_object let only known keys through). */
static int parse_limit(struct loader *ld, const cJSON *c, size_t i, void *arg)
{
    struct config_limits *l = &ld->cfg->limits;

    (void)i;
    (void)arg;
    if (strcmp(c->string, "allowed_targets") == 0)
        return parse_allowed_targets(ld, c);
    if (strcmp(c->string, "max_echoes_per_probe") == 0)
        return config__get_uint(ld, c, 1, MAX_LIMIT, "", &l->max_echoes_per_probe);
    if (strcmp(c->string, "max_concurrent_probes") == 0)
        return config__get_uint(ld, c, 1, MAX_LIMIT, "", &l->max_concurrent_probes);
    if (strcmp(c->string, "max_targets_per_scrape") == 0)
        return config__get_uint(ld, c, 1, MAX_LIMIT, "", &l->max_targets_per_scrape);
    if (strcmp(c->string, "max_packets_per_second") == 0)
        return config__get_uint(ld, c, 1, 1000000,
                                " (echo requests per second, all probes together)",
                                &l->max_packets_per_second);
    if (strcmp(c->string, "max_connections") == 0)
        return config__get_uint(ld, c, 1, 65536, "", &l->max_connections);
    if (strcmp(c->string, "max_connections_per_ip") == 0)
        return config__get_uint(ld, c, 0, 65536, " (0: no limit)", &l->max_connections_per_ip);
    if (strcmp(c->string, "max_new_connections_per_ip") == 0)
        return config__get_uint(ld, c, 0, 65536, " (0: no limit)", &l->max_new_connections_per_ip);
    return config__get_duration(ld, c, &l->request_timeout_ns);
}

int config__parse_limits(struct loader *ld, const cJSON *obj)
{
    static const char *const keys[] = {"allowed_targets",        "max_echoes_per_probe",
                                       "max_concurrent_probes",  "max_targets_per_scrape",
                                       "max_packets_per_second", "max_connections",
                                       "max_connections_per_ip", "max_new_connections_per_ip",
                                       "request_timeout",        NULL};
    int rc = config__check_object(ld, obj, keys);

    return rc != 0 ? rc : config__each_member(ld, obj, parse_limit, NULL);
}

/* ---- web ---- */

/* "host:port", "[v6]:port" or ":port"; returns NULL or why not. */
static const char *check_listen_address(const char *s)
{
    const char *colon = strrchr(s, ':');
    char host[256];
    size_t host_len;
    unsigned port = 0;
    struct icmp_addr addr;
    bool literal;

    if (colon == NULL)
        return "missing \":port\"";
    for (const char *p = colon + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            return "the port is not a number in 1..65535";
        port = port * 10 + (unsigned)(*p - '0');
    }
    if (port == 0 || port > 65535)
        return "the port is not a number in 1..65535";
    host_len = (size_t)(colon - s);
    if (host_len == 0)
        return NULL;
    if (host_len >= sizeof(host))
        return "the host is too long";
    if (s[0] == '[') {
        if (host_len < 3 || s[host_len - 1] != ']')
            return "an IPv6 address in brackets needs the closing ']'";
        memcpy(host, s + 1, host_len - 2);
        host[host_len - 2] = '\0';
        if (config_addr_parse(host, &addr) != 0 || addr.family != AF_INET6)
            return "not an IPv6 address in brackets";
        return NULL;
    }
    memcpy(host, s, host_len);
    host[host_len] = '\0';
    if (strchr(host, ':') != NULL)
        return "an IPv6 address needs brackets, as in [::1]:9723";
    return config__parse_host(host, &addr, &literal);
}

static int parse_listen_address(struct loader *ld, const cJSON *c, size_t i, void *arg)
{
    const char **list = arg, *s = NULL, *why;
    int rc = config__get_string(ld, c, "a \"host:port\" string", &s);

    if (rc == 0 && (why = check_listen_address(s)) != NULL)
        rc = config__fail_got(ld, c, "expected \"host:port\", \"[ipv6]:port\" or \":port\" (%s)",
                              why);
    if (rc == 0 && (list[i] = config__arena_strdup(ld->cfg, s)) == NULL)
        rc = config__fail_oom(ld);
    return rc;
}

static int parse_listen_addresses(struct loader *ld, const cJSON *arr)
{
    struct config *cfg = ld->cfg;
    const char **list;
    size_t n;
    int rc;

    /* An empty list calls no parse_listen_address: it is refused below. */
    list = config__collect(ld, arr, "\"host:port\" strings", sizeof(*list), parse_listen_address,
                           &n, &rc);
    if (rc == 0 && n == 0)
        rc = config__fail(ld, CONFIG__AT_VALUE, "expected at least one listen address, got none");
    if (rc == 0) {
        cfg->web.listen_addresses = list;
        cfg->web.n_listen_addresses = n;
    }
    return rc;
}

/* Resolves a TLS file path against the configuration file's directory, and checks that
 * it can be opened for reading now (not at the first TLS handshake). */
static int tls_file(struct loader *ld, const cJSON *item, const char **out)
{
    struct config *cfg = ld->cfg;
    const char *s = NULL;
    char *path, ebuf[128], q[160];
    struct stat st;
    int rc = config__get_string(ld, item, "a file name", &s), fd, e;

    if (rc != 0)
        return rc;
    if (*s == '\0')
        return config__fail_got(ld, item, "expected a file name");
    if (s[0] != '/' && ld->base_dir != NULL) {
        size_t a = strlen(ld->base_dir), b = strlen(s);
        path = config__arena_alloc(cfg, a + b + 2);
        if (path == NULL)
            return config__fail_oom(ld);
        memcpy(path, ld->base_dir, a);
        path[a] = '/';
        memcpy(path + a + 1, s, b + 1);
    } else if ((path = config__arena_strdup(cfg, s)) == NULL) {
        return config__fail_oom(ld);
    }
    config__quote(path, q, sizeof(q));
    /* O_NONBLOCK: a FIFO named here must not hang the load. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        e = errno;
        config__fail(ld, CONFIG__AT_VALUE, "cannot read %s: %s", q,
                     strerror_r(e, ebuf, sizeof(ebuf)));
        return -e;
    }
    if (fstat(fd, &st) != 0) {
        e = errno;
        close(fd);
        config__fail(ld, CONFIG__AT_VALUE, "cannot read %s: %s", q,
                     strerror_r(e, ebuf, sizeof(ebuf)));
        return -e;
    }
    close(fd);
    if (!S_ISREG(st.st_mode))
        return config__fail(ld, CONFIG__AT_VALUE, "cannot read %s: not a regular file", q);
    *out = path;
    return 0;
}

/* An empty string or list, which exporter-toolkit reads as "not set". */
static bool empty_value(const cJSON *c)
{
    return (cJSON_IsString(c) && c->valuestring[0] == '\0') ||
           ((cJSON_IsArray(c) || cJSON_IsObject(c)) && c->child == NULL);
}

/*
 * One exporter-toolkit tls_server_config key that our TLS (GnuTLS, TLS 1.2 and 1.3, no
 * client certificates) cannot follow: accepted when it asks for what we do anyway,
 * refused with what we do otherwise. cert_file and key_file are read by the caller.
 */
static int toolkit_tls_key(struct loader *ld, const cJSON *c)
{
    const char *k = c->string, *s = NULL;
    bool ignored = false;

    if (strcmp(k, "prefer_server_cipher_suites") == 0)
        return config__get_bool(ld, c, &ignored); /* Go ignores it since 1.17, GnuTLS chooses */
    if (strcmp(k, "min_version") == 0 || strcmp(k, "max_version") == 0) {
        const char *want = k[1] == 'i' ? "TLS12" : "TLS13";
        int rc = config__get_string(ld, c, "a TLS version", &s);
        if (rc == 0 && strcmp(s, want) != 0)
            rc = config__fail_got(ld, c,
                                  "expected \"%s\": icmp_exporter serves TLS 1.2 and 1.3, no more "
                                  "and no less",
                                  want);
        return rc;
    }
    if (strcmp(k, "client_auth_type") == 0) {
        int rc = config__get_string(ld, c, "\"NoClientCert\"", &s);
        if (rc == 0 && *s != '\0' && strcmp(s, "NoClientCert") != 0)
            rc = config__fail_got(ld, c,
                                  "expected \"NoClientCert\": icmp_exporter does not ask for "
                                  "client certificates (use basic_auth_users)");
        return rc;
    }
    if (empty_value(c))
        return 0;
    if (strcmp(k, "cipher_suites") == 0 || strcmp(k, "curve_preferences") == 0)
        return config__fail(ld, CONFIG__AT_KEY,
                            "not supported: GnuTLS chooses the cipher suites and curves (its "
                            "NORMAL priorities, TLS 1.2 and 1.3); remove %s",
                            k);
    if (strcmp(k, "cert") == 0 || strcmp(k, "key") == 0)
        return config__fail(ld, CONFIG__AT_KEY,
                            "not supported: write the PEM to a file and name it with %s_file", k);
    return config__fail(ld, CONFIG__AT_KEY,
                        "not supported: icmp_exporter does not verify client certificates "
                        "(use basic_auth_users); remove %s",
                        k);
}

static int parse_tls(struct loader *ld, const cJSON *obj)
{
    static const char *const keys[] = {"cert_file", "key_file", NULL};
    /* exporter-toolkit's TLSConfig, up to its newest keys (cert, key, client_ca,
     * client_allowed_sans), so that each is refused by name. */
    static const char *const toolkit_keys[] = {"cert_file",
                                               "key_file",
                                               "client_auth_type",
                                               "client_ca_file",
                                               "cipher_suites",
                                               "curve_preferences",
                                               "min_version",
                                               "max_version",
                                               "prefer_server_cipher_suites",
                                               "client_allowed_sans",
                                               "cert",
                                               "key",
                                               "client_ca",
                                               NULL};
    struct config_web *w = &ld->cfg->web;
    bool toolkit = ld->dialect == CONFIG__WEB_FILE;
    int rc = config__check_object(ld, obj, toolkit ? toolkit_keys : keys);

    for (const cJSON *c = obj->child; rc == 0 && c != NULL; c = c->next) {
        bool cert = strcmp(c->string, "cert_file") == 0;

        if (config__absent(ld, c) || (toolkit && cJSON_IsString(c) && *c->valuestring == '\0'))
            continue; /* exporter-toolkit: an empty file name is no file */
        config__push_key(ld, c->string, 0);
        if (cert || strcmp(c->string, "key_file") == 0)
            rc = tls_file(ld, c, cert ? &w->tls_cert_file : &w->tls_key_file);
        else
            rc = toolkit_tls_key(ld, c);
        config__pop(ld);
    }
    if (rc == 0 && (w->tls_cert_file == NULL) != (w->tls_key_file == NULL))
        rc =
            config__fail(ld, CONFIG__AT_VALUE, "cert_file and key_file go together (%s is missing)",
                         w->tls_cert_file == NULL ? "cert_file" : "key_file");
    return rc;
}

/* The shape of a bcrypt hash: $2a$, $2b$ or $2y$, a cost 04..31, '$', 53 characters. */
static bool bcrypt_shape(const char *h)
{
    if (strlen(h) != 60 || h[0] != '$' || h[1] != '2' ||
        (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') || h[3] != '$' || h[6] != '$')
        return false;
    if (h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9')
        return false;
    int cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost < 4 || cost > 31)
        return false;
    for (size_t i = 7; i < 60; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '/'))
            return false;
    }
    return true;
}

/* One member of "basic_auth_users": a name without ':' and its bcrypt hash. */
static int parse_user(struct loader *ld, const cJSON *c, size_t i, void *arg)
{
    struct config_user *user = (struct config_user *)arg + i;

    if (c->string[0] == '\0' || strchr(c->string, ':') != NULL)
        return config__fail(ld, CONFIG__AT_KEY, "expected a user name, not empty and without ':'");
    if (!cJSON_IsString(c))
        return config__fail_got(ld, c, "expected a bcrypt hash string");
    if (!bcrypt_shape(c->valuestring)) {
        /* The value is not echoed: it may be a password pasted by mistake. */
        return config__fail(
            ld, CONFIG__AT_VALUE,
            "expected a bcrypt hash: $2a$, $2b$ or $2y$, a cost 04..31, '$' and 53 "
            "characters of [./A-Za-z0-9] (60 in all), got a string of %zu characters",
            strlen(c->valuestring));
    }
    user->name = config__arena_strdup(ld->cfg, c->string);
    user->bcrypt_hash = config__arena_strdup(ld->cfg, c->valuestring);
    return user->name == NULL || user->bcrypt_hash == NULL ? config__fail_oom(ld) : 0;
}

static int parse_users(struct loader *ld, const cJSON *obj)
{
    struct config_web *w = &ld->cfg->web;
    int rc;

    w->users = config__collect(ld, obj, NULL, sizeof(*w->users), parse_user, &w->n_users, &rc);
    return rc;
}

/* One member of "web", by its key. */
static int parse_web_member(struct loader *ld, const cJSON *c, size_t i, void *arg)
{
    struct config *cfg = ld->cfg;

    (void)i;
    (void)arg;
    if (strcmp(c->string, "listen_addresses") == 0)
        return parse_listen_addresses(ld, c);
    /* Where they are set, for the web configuration file's conflicts. */
    if (strcmp(c->string, "tls_server_config") == 0) {
        if ((cfg->web_tls_at = config__where_now(ld, CONFIG__AT_KEY)) == NULL)
            return config__fail_oom(ld);
        return parse_tls(ld, c);
    }
    if ((cfg->web_users_at = config__where_now(ld, CONFIG__AT_KEY)) == NULL)
        return config__fail_oom(ld);
    return parse_users(ld, c);
}

int config__parse_web(struct loader *ld, const cJSON *obj)
{
    static const char *const keys[] = {"listen_addresses", "tls_server_config", "basic_auth_users",
                                       NULL};
    int rc = config__check_object(ld, obj, keys);

    return rc != 0 ? rc : config__each_member(ld, obj, parse_web_member, NULL);
}

/* ---- the web configuration file (exporter-toolkit's format) ---- */

static int parse_http_server_config(struct loader *ld, const cJSON *obj)
{
    static const char *const keys[] = {"http2", "headers", NULL};
    int rc = config__check_object(ld, obj, keys);

    for (const cJSON *c = obj->child; rc == 0 && c != NULL; c = c->next) {
        bool http2 = false;

        if (config__absent(ld, c))
            continue;
        config__push_key(ld, c->string, 0);
        if (strcmp(c->string, "http2") == 0) {
            rc = config__get_bool(ld, c, &http2); /* HTTP/1.1 only, whatever it says */
        } else {
            rc = config__check_object(ld, c, NULL);
            if (rc == 0 && c->child != NULL) {
                config__push_key(ld, c->child->string, 0);
                rc = config__fail(ld, CONFIG__AT_KEY,
                                  "not supported: icmp_exporter adds no configured headers to "
                                  "its responses; remove headers");
                config__pop(ld);
            }
        }
        config__pop(ld);
    }
    return rc;
}

/* KEY was set in the main document too (at AT): the same thing in two places. */
static int conflict(struct loader *ld, const char *key, const char *at)
{
    return config__fail(ld, CONFIG__AT_KEY,
                        "already set by web.%s in the configuration file (%s): set it in one "
                        "place",
                        key, at);
}

static int parse_web_file_member(struct loader *ld, const cJSON *c, size_t i, void *arg)
{
    struct config *cfg = ld->cfg;

    (void)i;
    (void)arg;
    if (config__absent(ld, c))
        return 0;
    if (strcmp(c->string, "tls_server_config") == 0)
        return cfg->web_tls_at != NULL ? conflict(ld, c->string, cfg->web_tls_at)
                                       : parse_tls(ld, c);
    if (strcmp(c->string, "basic_auth_users") == 0)
        return cfg->web_users_at != NULL ? conflict(ld, c->string, cfg->web_users_at)
                                         : parse_users(ld, c);
    if (strcmp(c->string, "http_server_config") == 0)
        return parse_http_server_config(ld, c);
    return config__fail(ld, CONFIG__AT_KEY,
                        "not supported: icmp_exporter has no request rate limit; its limits are "
                        "the configuration's limits section");
}

int config__parse_web_file(struct loader *ld, const cJSON *root)
{
    static const char *const keys[] = {"tls_server_config", "http_server_config",
                                       "basic_auth_users", "rate_limit", NULL};
    int rc;

    if (root == NULL || cJSON_IsNull(root))
        return 0; /* an empty file sets nothing, as in exporter-toolkit */
    rc = config__check_object(ld, root, keys);
    return rc != 0 ? rc : config__each_member(ld, root, parse_web_file_member, NULL);
}
