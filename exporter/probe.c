/*
 * Probes: a target and a module become one engine job (probe.h); probe_render.c turns its
 * results into metrics.
 *
 * A probe waits on the engine, not on a thread: probe_start() hands the job to the engine
 * (after the resolver pool when the target is a name) and returns; the engine thread runs
 * the probe's completion callback. The HTTP side suspends its connection meanwhile.
 *
 * Name resolution follows blackbox_exporter: the module's preferred family first, the
 * other one when ip_protocol_fallback allows. The allow-list is checked on the resolved
 * address, so a harmless-looking name cannot point the exporter at a forbidden range.
 * A lookup ends at the probe's own deadline (resolver.c), and a name the allow-list would
 * refuse whatever it resolves to (a list of names only, none matching) is refused before
 * it costs a lookup (issue 16).
 */
#include "exporter/probe_internal.h"

#include "exporter/client.h"
#include "exporter/exporter.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_TARGET_LEN 253

/* ---------------------------------------------------------------------------------------
 * Parameters and settings.
 */

/* A positive integer in [lo, hi]. */
static int parse_uint(const char *s, unsigned long lo, unsigned long hi, uint32_t *out)
{
    char *end;
    unsigned long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

/* Seconds as Prometheus sends them ("10", "9.5"), positive and finite. */
static int parse_seconds(const char *s, int64_t *ns)
{
    char *end;
    double v;

    if (s == NULL || *s == '\0')
        return -EINVAL;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v > 0) || v > 86400)
        return -EINVAL;
    *ns = (int64_t)(v * 1e9);
    return 0;
}

static bool valid_target(const char *t)
{
    size_t n = strlen(t);

    if (n == 0 || n > MAX_TARGET_LEN)
        return false;
    /* Host names (letters, digits, '.', '-', '_') and IP literals (':', '%' for a zone). */
    for (const char *p = t; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':' || c == '%'))
            return false;
    }
    return true;
}

/* The client's text for a one-line reason: at most 64 bytes, anything but printable ASCII
 * (a newline, a control, a byte of UTF-8 that the cut could split) shown as '?'. */
static const char *printable(const char *s, char *buf, size_t size)
{
    size_t n = 0;

    for (; s[n] != '\0' && n + 1 < size && n < 64; n++)
        buf[n] = s[n] >= 0x20 && s[n] < 0x7f ? s[n] : '?';
    buf[n] = '\0';
    return buf;
}

int probe_deadline(const char *header, int64_t offset_ns, int64_t *deadline_ns, char *err,
                   size_t errlen)
{
    int64_t ns;

    *deadline_ns = 0;
    if (header == NULL)
        return 0;
    if (parse_seconds(header, &ns) < 0) {
        snprintf(err, errlen, "X-Prometheus-Scrape-Timeout-Seconds is not a number of seconds");
        return -EINVAL;
    }
    ns -= offset_ns;
    if (ns <= 0) {
        snprintf(err, errlen, "scrape timeout is not above the timeout offset");
        return -EINVAL;
    }
    *deadline_ns = ns;
    return 0;
}

int probe_check_params(const struct config *cfg, int64_t timeout_offset_ns,
                       const struct probe_params *params, struct probe_settings *out, char *err,
                       size_t errlen)
{
    const char *module_name = params->module != NULL ? params->module : "icmp";
    const struct config_module *m;
    const struct config_limits *limits = config_limits(cfg);
    uint32_t count;
    int64_t interval_ns, timeout_ns, echo_timeout_ns, scrape_ns;
    char shown[68];

    if (params->target == NULL || params->target[0] == '\0') {
        snprintf(err, errlen, "target parameter is missing");
        return -EINVAL;
    }
    if (!valid_target(params->target)) {
        snprintf(err, errlen, "target parameter is not a host name or IP address");
        return -EINVAL;
    }
    m = config_module_find(cfg, module_name);
    if (m == NULL) {
        snprintf(err, errlen, "unknown module \"%s\"",
                 printable(module_name, shown, sizeof(shown)));
        return -EINVAL;
    }
    count = m->count;
    interval_ns = m->interval_ns;
    timeout_ns = m->timeout_ns;
    if (params->count != NULL &&
        parse_uint(params->count, 1, limits->max_echoes_per_probe, &count) < 0) {
        snprintf(err, errlen, "count must be an integer in 1..%u", limits->max_echoes_per_probe);
        return -EINVAL;
    }
    if (count > limits->max_echoes_per_probe) {
        snprintf(err, errlen, "module %s sends %u echoes, above max_echoes_per_probe %u", m->name,
                 count, limits->max_echoes_per_probe);
        return -EINVAL;
    }
    if (params->interval != NULL && (config_parse_duration(params->interval, &interval_ns) < 0 ||
                                     interval_ns <= 0 || interval_ns > 60 * (int64_t)1000000000)) {
        snprintf(err, errlen, "interval must be a duration like 100ms, at most 1m");
        return -EINVAL;
    }
    if (params->timeout != NULL && (config_parse_duration(params->timeout, &timeout_ns) < 0 ||
                                    timeout_ns <= 0 || timeout_ns > m->timeout_ns)) {
        snprintf(err, errlen, "timeout must be a duration like 2s, at most the module's %.3gs",
                 (double)m->timeout_ns / 1e9);
        return -EINVAL;
    }
    /* As blackbox: the scrape's own timeout minus an offset bounds the probe. */
    if (probe_deadline(params->scrape_timeout, timeout_offset_ns, &scrape_ns, err, errlen) < 0)
        return -EINVAL;
    if (scrape_ns > 0 && scrape_ns < timeout_ns)
        timeout_ns = scrape_ns;
    /* Each echo waits what is left after the last one is sent, at most the module's wait. */
    echo_timeout_ns = timeout_ns - interval_ns * (int64_t)(count - 1);
    if (echo_timeout_ns > m->echo_timeout_ns && params->timeout == NULL && params->count == NULL &&
        params->interval == NULL)
        echo_timeout_ns = m->echo_timeout_ns;
    if (echo_timeout_ns <= 0) {
        snprintf(err, errlen,
                 "%u echoes %.3gs apart do not fit in the timeout of %.3gs; lower count or "
                 "interval",
                 count, (double)interval_ns / 1e9, (double)timeout_ns / 1e9);
        return -EINVAL;
    }
    *out = (struct probe_settings){
        .module = m,
        .count = count,
        .interval_ns = interval_ns,
        .timeout_ns = timeout_ns,
        .echo_timeout_ns = echo_timeout_ns,
        .debug = params->debug != NULL && strcmp(params->debug, "true") == 0,
    };
    return 0;
}

uint64_t probe_client_flow(const struct sockaddr *client)
{
    struct client_key k = client_key_of(client);
    uint64_t h = 14695981039346656037ull; /* FNV-1a, 64 bits, over the key and its tag */

    if (k.len == 0)
        return 0;
    for (size_t i = 0; i < k.len; i++) {
        h ^= k.bytes[i];
        h *= 1099511628211ull;
    }
    return h > PROBE_FLOW_STATIC ? h : h + PROBE_FLOW_STATIC + 1;
}

struct probe *probe__alloc(struct exporter *x, struct config *cfg, const char *target,
                           const struct probe_settings *s)
{
    /* One allocation: the probe, its results, its target (10,000 static targets are 10,000
     * probes in flight at once; every byte here counts ten thousand times). */
    size_t len = strlen(target) + 1;
    struct probe *p = calloc(1, sizeof(*p) + s->count * sizeof(*p->results) + len);

    if (p == NULL)
        return NULL;
    p->results = (struct icmp_echo_result *)(p + 1);
    p->target = memcpy((char *)(p->results + s->count), target, len);
    p->x = x;
    p->cfg = config_ref(cfg);
    p->s = *s;
    p->res.addr.family = 0;
    return p;
}

void probe_settings_of_module(const struct config_module *m, int64_t deadline_ns,
                              struct probe_settings *out)
{
    *out = (struct probe_settings){
        .module = m,
        .count = m->count,
        .interval_ns = m->interval_ns,
        .timeout_ns = m->timeout_ns,
        .echo_timeout_ns = m->echo_timeout_ns,
    };
    if (deadline_ns > 0 && deadline_ns < out->timeout_ns)
        out->timeout_ns = deadline_ns;
    if (out->echo_timeout_ns > out->timeout_ns)
        out->echo_timeout_ns = out->timeout_ns;
}

int probe_new(struct exporter *x, struct config *cfg, const struct probe_params *params,
              struct probe **out, char *err, size_t errlen)
{
    struct probe_settings s;
    int rc = probe_check_params(cfg, x->timeout_offset_ns, params, &s, err, errlen);

    if (rc < 0)
        return rc;
    *out = probe__alloc(x, cfg, params->target, &s);
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    (*out)->flow = params->flow;
    return 0;
}

int probe_new_static(struct exporter *x, struct config *cfg, const struct config_target *t,
                     int64_t deadline_ns, struct probe **out)
{
    struct probe_settings s;

    probe_settings_of_module(t->module, deadline_ns, &s);
    *out = probe__alloc(x, cfg, t->target, &s);
    if (*out == NULL)
        return -ENOMEM;
    (*out)->is_static = true;
    (*out)->flow = PROBE_FLOW_STATIC;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Running.
 */

static void finish(struct probe *p)
{
    p->end_ns = icmp_now_ns();
    if (!p->is_static)
        exporter_count_probe(p->x, p->s.module->name, p->target, probe_success(p),
                             (double)(p->end_ns - p->start_ns) / 1e9);
    p->done(p, p->done_arg);
}

static void on_job_done(struct icmp_job *job, void *arg)
{
    struct probe *p = arg;

    (void)job;
    finish(p);
}

/* Resolution is over (on some thread): check the allow-list, then hand over to the engine. */
static void on_resolved(void *arg, const struct resolution *res)
{
    struct probe *p = arg;
    struct icmp_job *jobs[1] = {&p->job};
    int64_t now = icmp_now_ns();
    const struct config_module *m = p->s.module;

    p->res = *res;
    p->resolved_ns = now;
    p->resolved = res->error == 0;
    if (!p->resolved) {
        if (res->timed_out)
            atomic_fetch_add(&p->x->resolver_timeouts, 1);
        finish(p);
        return;
    }
    if (!p->is_static && !config_target_allowed(p->cfg, p->target, &res->addr)) {
        p->denied = true;
        finish(p);
        return;
    }
    p->job = (struct icmp_job){
        .dst = res->addr,
        .count = p->s.count,
        .interval_ns = p->s.interval_ns,
        .timeout_ns = p->s.echo_timeout_ns,
        .deadline_ns = p->start_ns + p->s.timeout_ns,
        .payload_size = (uint16_t)m->payload_size,
        .ttl = (uint8_t)m->ttl,
        .tos = (uint8_t)m->tos,
        .dont_fragment = m->dont_fragment,
        .flow = p->flow,
        .results = p->results,
        .on_done = on_job_done,
        .arg = p,
    };
    if (m->has_source_ip && m->source_ip.family == res->addr.family)
        p->job.src = m->source_ip;
    p->ran = true;
    if (icmp_engine_submit(p->x->engine, jobs, 1) < 0) {
        p->ran = false;
        finish(p);
    }
}

/* Whether the allow-list refuses name whatever it resolves to: it lists no CIDR (so no
 * address can pass) and none of its names matches. An IP literal is judged as it is. */
static bool refused_by_name(const struct config *cfg, const char *name)
{
    struct icmp_addr literal;

    return config_limits(cfg)->n_allowed_cidrs == 0 && icmp_addr_parse(name, &literal) < 0 &&
           !config_target_allowed(cfg, name, NULL);
}

int probe_start(struct probe *p, probe_done_fn done, void *arg)
{
    int rc;

    p->done = done;
    p->done_arg = arg;
    p->start_ns = icmp_now_ns();
    if (!p->is_static && refused_by_name(p->cfg, p->target)) {
        p->denied = true;
        finish(p);
        return 0;
    }
    rc = resolver_submit(p->x->resolver, p->target, p->s.module->preferred_ip_protocol,
                         p->s.module->ip_protocol_fallback, p->start_ns + p->s.timeout_ns,
                         on_resolved, p);
    if (rc == -EBUSY) {
        p->queue_full = true;
        atomic_fetch_add(&p->x->resolver_queue_full, 1);
    }
    return rc;
}

int probe_error(const struct probe *p, char *err, size_t errlen)
{
    if (p->queue_full) {
        snprintf(err, errlen, "too many name lookups waiting (%d); retry later",
                 RESOLVER_QUEUE_MAX);
        return -EBUSY;
    }
    if (p->denied && p->res.addr.family == 0) {
        snprintf(err, errlen, "target %s is not in allowed_targets", p->target);
        return -EACCES;
    }
    if (p->denied) {
        char a[INET6_ADDRSTRLEN];
        snprintf(err, errlen, "target %s (%s) is not in allowed_targets", p->target,
                 icmp_addr_format(&p->res.addr, a, sizeof(a)));
        return -EACCES;
    }
    return 0;
}

bool probe_success(const struct probe *p)
{
    return p->ran && p->job.received > 0;
}

bool probe_debug(const struct probe *p)
{
    return p->s.debug;
}

const char *probe_module_name(const struct probe *p)
{
    return p->s.module->name;
}

void probe_free(struct probe *p)
{
    if (p == NULL)
        return;
    config_unref(p->cfg);
    free(p);
}

void probe_summary(const struct probe *p, struct echo_summary *s, uint32_t *duplicates,
                   const struct icmp_addr **addr)
{
    echo_summary_of(s, p->results, p->ran ? p->s.count : 0, p->s.module);
    *duplicates = p->ran ? p->job.duplicates : 0;
    *addr = p->resolved ? &p->res.addr : NULL;
}
