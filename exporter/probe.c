/*
 * Probes: a target and a module become one engine job; its results become metrics.
 *
 * A probe waits on the engine, not on a thread: probe_start() hands the job to the engine
 * (after the resolver pool when the target is a name) and returns; the engine thread runs
 * the probe's completion callback. The HTTP side suspends its connection meanwhile.
 *
 * Name resolution follows blackbox_exporter: the module's preferred family first, the
 * other one when ip_protocol_fallback allows. The allow-list is checked on the resolved
 * address, so a harmless-looking name cannot point the exporter at a forbidden range.
 */
#include "exporter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_TARGET_LEN 253

struct probe {
    struct exporter *x;
    struct config *cfg; /* a reference: the probe keeps the configuration it started with */
    const struct config_module *module;
    const char *target; /* in the same allocation, after the results */
    uint32_t count;
    int64_t interval_ns;
    int64_t timeout_ns;      /* the whole probe */
    int64_t echo_timeout_ns; /* each echo */
    bool debug;
    bool is_static;

    int64_t start_ns; /* monotonic */
    int64_t resolved_ns;
    int64_t end_ns;
    struct resolution res;
    bool resolved;
    bool denied;
    bool ran; /* the job went to the engine */
    struct icmp_job job;
    struct icmp_echo_result *results;

    probe_done_fn done;
    void *done_arg;
};

/* ---------------------------------------------------------------------------------------
 * Parameters.
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

static struct probe *probe_alloc(struct exporter *x, struct config *cfg,
                                 const struct config_module *m, const char *target, uint32_t count)
{
    /* One allocation: the probe, its results, its target (10,000 static targets are 10,000
     * probes in flight at once; every byte here counts ten thousand times). */
    size_t len = strlen(target) + 1;
    struct probe *p = calloc(1, sizeof(*p) + count * sizeof(*p->results) + len);

    if (p == NULL)
        return NULL;
    p->results = (struct icmp_echo_result *)(p + 1);
    p->target = memcpy((char *)(p->results + count), target, len);
    p->x = x;
    p->cfg = config_ref(cfg);
    p->module = m;
    p->count = count;
    p->interval_ns = m->interval_ns;
    p->timeout_ns = m->timeout_ns;
    p->echo_timeout_ns = m->echo_timeout_ns;
    p->res.addr.family = 0;
    return p;
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
        return 400;
    }
    if (!valid_target(params->target)) {
        snprintf(err, errlen, "target parameter is not a host name or IP address");
        return 400;
    }
    m = config_module_find(cfg, module_name);
    if (m == NULL) {
        snprintf(err, errlen, "unknown module \"%s\"",
                 printable(module_name, shown, sizeof(shown)));
        return 400;
    }
    count = m->count;
    interval_ns = m->interval_ns;
    timeout_ns = m->timeout_ns;
    if (params->count != NULL &&
        parse_uint(params->count, 1, limits->max_echoes_per_probe, &count) < 0) {
        snprintf(err, errlen, "count must be an integer in 1..%u", limits->max_echoes_per_probe);
        return 400;
    }
    if (count > limits->max_echoes_per_probe) {
        snprintf(err, errlen, "module %s sends %u echoes, above max_echoes_per_probe %u", m->name,
                 count, limits->max_echoes_per_probe);
        return 400;
    }
    if (params->interval != NULL && (config_parse_duration(params->interval, &interval_ns) < 0 ||
                                     interval_ns <= 0 || interval_ns > 60 * (int64_t)1000000000)) {
        snprintf(err, errlen, "interval must be a duration like 100ms, at most 1m");
        return 400;
    }
    if (params->timeout != NULL && (config_parse_duration(params->timeout, &timeout_ns) < 0 ||
                                    timeout_ns <= 0 || timeout_ns > m->timeout_ns)) {
        snprintf(err, errlen, "timeout must be a duration like 2s, at most the module's %.3gs",
                 (double)m->timeout_ns / 1e9);
        return 400;
    }
    if (params->scrape_timeout != NULL) {
        /* As blackbox: the scrape's own timeout minus an offset bounds the probe. */
        if (parse_seconds(params->scrape_timeout, &scrape_ns) < 0) {
            snprintf(err, errlen, "X-Prometheus-Scrape-Timeout-Seconds is not a number of seconds");
            return 400;
        }
        scrape_ns -= timeout_offset_ns;
        if (scrape_ns <= 0) {
            snprintf(err, errlen, "scrape timeout is not above the timeout offset");
            return 400;
        }
        if (scrape_ns < timeout_ns)
            timeout_ns = scrape_ns;
    }
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
        return 400;
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

int probe_new(struct exporter *x, struct config *cfg, const struct probe_params *params,
              struct probe **out, char *err, size_t errlen)
{
    struct probe_settings s;
    struct probe *p;
    int code = probe_check_params(cfg, x->timeout_offset_ns, params, &s, err, errlen);

    if (code != 0)
        return code;
    p = probe_alloc(x, cfg, s.module, params->target, s.count);
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return 500;
    }
    p->interval_ns = s.interval_ns;
    p->timeout_ns = s.timeout_ns;
    p->echo_timeout_ns = s.echo_timeout_ns;
    p->debug = s.debug;
    *out = p;
    return 0;
}

int probe_new_static(struct exporter *x, struct config *cfg, const struct config_target *t,
                     int64_t deadline_ns, struct probe **out)
{
    struct probe *p = probe_alloc(x, cfg, t->module, t->target, t->module->count);

    if (p == NULL)
        return -ENOMEM;
    p->is_static = true;
    /* The scrape's own deadline bounds the probe (and each echo) as it bounds a /probe's:
     * echoes that no longer fit are not sent. */
    if (deadline_ns > 0 && deadline_ns < p->timeout_ns)
        p->timeout_ns = deadline_ns;
    if (p->echo_timeout_ns > p->timeout_ns)
        p->echo_timeout_ns = p->timeout_ns;
    *out = p;
    return 0;
}

int probe_scrape_deadline(const struct exporter *x, const char *header, int64_t *deadline_ns,
                          char *err, size_t errlen)
{
    int64_t ns;

    *deadline_ns = 0;
    if (header == NULL)
        return 0;
    if (parse_seconds(header, &ns) < 0) {
        snprintf(err, errlen, "X-Prometheus-Scrape-Timeout-Seconds is not a number of seconds");
        return 400;
    }
    ns -= x->timeout_offset_ns;
    if (ns <= 0) {
        snprintf(err, errlen, "scrape timeout is not above the timeout offset");
        return 400;
    }
    *deadline_ns = ns;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Running.
 */

static void finish(struct probe *p)
{
    p->end_ns = icmp_now_ns();
    if (!p->is_static)
        exporter_count_probe(p->x, p->module->name, p->target, probe_success(p),
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
    const struct config_module *m = p->module;

    p->res = *res;
    p->resolved_ns = now;
    p->resolved = res->error == 0;
    if (!p->resolved) {
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
        .count = p->count,
        .interval_ns = p->interval_ns,
        .timeout_ns = p->echo_timeout_ns,
        .deadline_ns = p->start_ns + p->timeout_ns,
        .payload_size = (uint16_t)m->payload_size,
        .ttl = (uint8_t)m->ttl,
        .tos = (uint8_t)m->tos,
        .dont_fragment = m->dont_fragment,
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

int probe_start(struct probe *p, probe_done_fn done, void *arg)
{
    p->done = done;
    p->done_arg = arg;
    p->start_ns = icmp_now_ns();
    return resolver_submit(p->x->resolver, p->target, p->module->preferred_ip_protocol,
                           p->module->ip_protocol_fallback, on_resolved, p);
}

int probe_http_status(const struct probe *p, char *err, size_t errlen)
{
    if (p->denied) {
        char a[INET6_ADDRSTRLEN];
        snprintf(err, errlen, "target %s (%s) is not in allowed_targets", p->target,
                 icmp_addr_format(&p->res.addr, a, sizeof(a)));
        return 403;
    }
    return 200;
}

bool probe_success(const struct probe *p)
{
    return p->ran && p->job.received > 0;
}

bool probe_debug(const struct probe *p)
{
    return p->debug;
}

const char *probe_module_name(const struct probe *p)
{
    return p->module->name;
}

void probe_free(struct probe *p)
{
    if (p == NULL)
        return;
    config_unref(p->cfg);
    free(p);
}

/* ---------------------------------------------------------------------------------------
 * Metrics.
 */

/* RTT statistics over the echoes answered with an echo reply. */
struct rtt_stats {
    uint32_t n;
    double min, max, sum, sumsq;
    int hop_limit;
    uint64_t buckets[CONFIG_MAX_BUCKETS];
    uint64_t by_status[ICMP_STATUS_LIMIT];
    uint32_t sent;
    uint32_t attempted; /* sent, plus the echoes the kernel refused to send (no route...) */
};

static void collect(const struct probe *p, struct rtt_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->hop_limit = -1;
    if (!p->ran)
        return;
    for (uint32_t i = 0; i < p->count; i++) {
        const struct icmp_echo_result *r = &p->results[i];
        if (!r->sent) {
            /* Refused by the kernel (no route, a firewall): not sent, yet an outcome the
             * operator must see, under its status, and a loss. Echoes never tried (cut by
             * the deadline) count nowhere. */
            if (r->send_errno != 0) {
                s->attempted++;
                s->by_status[r->status]++;
            }
            continue;
        }
        s->sent++;
        s->attempted++;
        s->by_status[r->status]++;
        if (r->status != ICMP_STATUS_SUCCESS)
            continue;
        if (r->ttl != 0)
            s->hop_limit = r->ttl;
        double v = (double)r->rtt_ns / 1e9;
        if (s->n == 0 || v < s->min)
            s->min = v;
        if (s->n == 0 || v > s->max)
            s->max = v;
        s->n++;
        s->sum += v;
        s->sumsq += v * v;
        for (size_t b = 0; b < p->module->n_buckets; b++) {
            if (v <= p->module->buckets[b]) {
                s->buckets[b]++;
                break;
            }
        }
    }
}

/* FNV-1a, 32 bits, over the address bytes (4 or 16): blackbox's probe_ip_addr_hash. */
static double addr_hash(const struct icmp_addr *a)
{
    size_t n = a->family == AF_INET ? 4 : 16;
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++) {
        h ^= a->bytes[i];
        h *= 16777619u;
    }
    return (double)h;
}

static void gauge(struct prom_writer *w, const char *name, const char *help, double v)
{
    prom_family(w, name, PROM_TYPE_GAUGE, help, NULL);
    prom_sample(w, name, NULL, 0, v);
}

int probe_render(const struct probe *p, struct prom_writer *w)
{
    struct rtt_stats s;
    double resolve = p->resolved_ns > 0 ? (double)(p->resolved_ns - p->start_ns) / 1e9 : 0;
    double total = (double)(p->end_ns - p->start_ns) / 1e9;
    double rtt_phase = p->ran ? (double)(p->end_ns - p->resolved_ns) / 1e9 : 0;
    struct prom_label phase[1];

    collect(p, &s);
    gauge(w, "probe_success", "Whether the probe got at least one echo reply",
          probe_success(p) ? 1 : 0);
    gauge(w, "probe_duration_seconds", "How long the probe took to complete in seconds", total);
    gauge(w, "probe_timeout_seconds", "How long the probe could take in seconds",
          (double)p->timeout_ns / 1e9);
    gauge(w, "probe_dns_lookup_time_seconds",
          "Returns the time taken for probe dns lookup in seconds", resolve);
    if (p->resolved) {
        gauge(w, "probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6",
              p->res.addr.family == AF_INET ? 4 : 6);
        gauge(w, "probe_ip_addr_hash", "Specifies the hash of IP address", addr_hash(&p->res.addr));
    }
    prom_family(w, "probe_icmp_duration_seconds", PROM_TYPE_GAUGE,
                "Duration of icmp request by phase", NULL);
    phase[0] = (struct prom_label){"phase", "resolve"};
    prom_sample(w, "probe_icmp_duration_seconds", phase, 1, resolve);
    phase[0].value = "setup";
    prom_sample(w, "probe_icmp_duration_seconds", phase, 1, 0);
    phase[0].value = "rtt";
    prom_sample(w, "probe_icmp_duration_seconds", phase, 1, rtt_phase);
    if (s.hop_limit >= 0 && s.n > 0)
        gauge(w, "probe_icmp_reply_hop_limit", "Replied packet hop limit (TTL for ipv4)",
              s.hop_limit);
    gauge(w, "probe_icmp_echoes_sent", "Echo requests sent by this probe", s.sent);
    gauge(w, "probe_icmp_echoes_received", "Echo replies received by this probe", s.n);
    gauge(w, "probe_icmp_loss_ratio", "Share of echoes sent that got no echo reply (0-1)",
          s.attempted > 0 ? 1.0 - (double)s.n / s.attempted : 1.0);
    if (s.n > 0) {
        double avg = s.sum / s.n;
        double var = s.sumsq / s.n - avg * avg;
        gauge(w, "probe_icmp_rtt_min_seconds", "Smallest round-trip time of the probe", s.min);
        gauge(w, "probe_icmp_rtt_avg_seconds", "Mean round-trip time of the probe", avg);
        gauge(w, "probe_icmp_rtt_max_seconds", "Largest round-trip time of the probe", s.max);
        gauge(w, "probe_icmp_rtt_stddev_seconds",
              "Population standard deviation of the probe's round-trip times",
              var > 0 ? sqrt(var) : 0);
    }
    prom_family(w, "probe_icmp_rtt_seconds", PROM_TYPE_HISTOGRAM,
                "Round-trip times of the probe's echo replies", NULL);
    {
        struct prom_buckets h = {.bounds = p->module->buckets,
                                 .counts = s.buckets,
                                 .n_bounds = p->module->n_buckets,
                                 .count = s.n,
                                 .sum = s.sum};
        prom_histogram(w, "probe_icmp_rtt_seconds", NULL, 0, NULL, 0, &h);
    }
    prom_family(w, "probe_icmp_replies", PROM_TYPE_GAUGE,
                "Echoes of this probe by outcome (IP_STATUS name)", NULL);
    for (int i = 0; i < ICMP_STATUS_LIMIT; i++) {
        if (s.by_status[i] == 0)
            continue;
        struct prom_label l = {"status", icmp_status_name((enum icmp_status)i)};
        prom_sample(w, "probe_icmp_replies", &l, 1, (double)s.by_status[i]);
    }
    gauge(w, "probe_icmp_duplicates", "Duplicate echo replies seen by this probe",
          p->ran ? p->job.duplicates : 0);
    return prom_finish(w);
}

int probe_render_debug(const struct probe *p, struct prom_buf *out)
{
    char a[INET6_ADDRSTRLEN];
    struct prom_writer w;

    prom_buf_printf(out, "Probe of %s with module %s: %u echoes, %.3fs apart, timeout %.3fs\n",
                    p->target, p->module->name, p->count, (double)p->interval_ns / 1e9,
                    (double)p->timeout_ns / 1e9);
    if (!p->resolved) {
        prom_buf_printf(out, "Resolution failed: %s\n", gai_strerror(p->res.error));
    } else {
        prom_buf_printf(out, "Resolved %s to %s (IPv%d) in %.6fs\n", p->target,
                        icmp_addr_format(&p->res.addr, a, sizeof(a)),
                        p->res.addr.family == AF_INET ? 4 : 6, (double)p->res.took_ns / 1e9);
    }
    for (uint32_t i = 0; p->ran && i < p->count; i++) {
        const struct icmp_echo_result *r = &p->results[i];
        if (!r->sent) {
            prom_buf_printf(out, "echo %u: not sent (%s)\n", i,
                            r->send_errno ? icmp_status_name(r->status) : "deadline");
            continue;
        }
        prom_buf_printf(out, "echo %u: seq=%u status=%s", i, r->seq, icmp_status_name(r->status));
        if (r->rtt_ns >= 0)
            prom_buf_printf(out, " rtt=%.6fs from=%s ttl=%u", (double)r->rtt_ns / 1e9,
                            icmp_addr_format(&r->from, a, sizeof(a)), r->ttl);
        if (r->duplicates)
            prom_buf_printf(out, " duplicates=%u", r->duplicates);
        prom_buf_append_str(out, "\n");
    }
    prom_buf_append_str(out, "\nMetrics that would have been returned:\n");
    prom_writer_init(&w, out, PROM_FORMAT_TEXT);
    return probe_render(p, &w);
}

int probe_fold(const struct probe *p, struct target_state *t)
{
    struct rtt_stats s;
    int rc = 0;

    collect(p, &s);
    t->sent += s.sent;
    for (int i = 0; i < ICMP_STATUS_LIMIT; i++) {
        if (s.by_status[i] == 0)
            continue;
        if (i == ICMP_STATUS_SUCCESS) {
            t->replied += s.by_status[i];
        } else if (i == ICMP_STATUS_TIMED_OUT) {
            t->timed_out += s.by_status[i];
        } else {
            if (t->other == NULL &&
                (t->other = calloc(ICMP_STATUS_LIMIT, sizeof(uint64_t))) == NULL) {
                rc = -ENOMEM; /* this scrape's rarer outcomes go uncounted */
                continue;
            }
            t->other[i] += s.by_status[i];
        }
    }
    for (size_t b = 0; b < p->module->n_buckets; b++)
        t->rtt_buckets[b] += s.buckets[b];
    t->rtt_count += s.n;
    t->rtt_sum += s.sum;
    t->duplicates += p->ran ? p->job.duplicates : 0;
    t->rtt_n = s.n;
    if (s.n > 0) {
        double var = s.sumsq / s.n - (s.sum / s.n) * (s.sum / s.n);
        t->rtt_min = s.min;
        t->rtt_avg = s.sum / s.n;
        t->rtt_max = s.max;
        t->rtt_stddev = var > 0 ? sqrt(var) : 0;
    }
    t->scraped = true;
    t->success = probe_success(p);
    t->loss_ratio = s.attempted > 0 ? 1.0 - (double)s.n / s.attempted : 1.0;
    t->hop_limit = (int16_t)(s.n > 0 ? s.hop_limit : -1);
    if (p->resolved) {
        icmp_addr_format(&p->res.addr, t->ip, sizeof(t->ip));
        t->ip_version = p->res.addr.family == AF_INET ? 4 : 6;
    }
    return rc;
}
