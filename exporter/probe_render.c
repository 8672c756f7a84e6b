/*
 * A finished probe as metrics (the /probe answer, blackbox_exporter's names plus ours) and
 * as the human-readable log of debug=true. Pure functions of the probe: no sockets.
 */
#include "exporter/catalog.h"
#include "exporter/probe_internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

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

int probe_render(const struct probe *p, struct prom_writer *w)
{
    struct echo_summary s;
    const struct config_module *m = p->s.module;
    double resolve = p->resolved_ns > 0 ? (double)(p->resolved_ns - p->start_ns) / 1e9 : 0;
    double total = (double)(p->end_ns - p->start_ns) / 1e9, rtt_phase;
    const char *name;
    struct prom_label l;

    echo_summary_of(&s, p->results, p->ran ? p->s.count : 0, m);
    /* blackbox_exporter's meaning of the rtt phase: the round trip of the reply, 0 without
     * one (never the time waited for nothing). Ours is the kernel-stamped RTT, the mean of
     * the replies when the probe sends several echoes. */
    rtt_phase = s.received > 0 ? echo_summary_mean(&s) : 0;
    metric_value(w, METRIC_PROBE_SUCCESS, probe_success(p) ? 1 : 0);
    metric_value(w, METRIC_PROBE_DURATION, total);
    metric_value(w, METRIC_PROBE_TIMEOUT, (double)p->s.timeout_ns / 1e9);
    metric_value(w, METRIC_PROBE_DNS_LOOKUP, resolve);
    if (p->resolved) {
        metric_value(w, METRIC_PROBE_IP_PROTOCOL, p->res.addr.family == AF_INET ? 4 : 6);
        metric_value(w, METRIC_PROBE_IP_ADDR_HASH, addr_hash(&p->res.addr));
    }
    metric_family(w, METRIC_PROBE_ICMP_DURATION);
    l = (struct prom_label){"phase", "resolve"};
    metric_sample(w, METRIC_PROBE_ICMP_DURATION, &l, 1, NULL, 0, resolve);
    l.value = "setup";
    metric_sample(w, METRIC_PROBE_ICMP_DURATION, &l, 1, NULL, 0, 0);
    l.value = "rtt";
    metric_sample(w, METRIC_PROBE_ICMP_DURATION, &l, 1, NULL, 0, rtt_phase);
    if (s.hop_limit >= 0 && s.received > 0)
        metric_value(w, METRIC_PROBE_HOP_LIMIT, s.hop_limit);
    metric_value(w, METRIC_PROBE_SENT, s.sent);
    metric_value(w, METRIC_PROBE_UNSENT, s.unsent);
    metric_value(w, METRIC_PROBE_RECEIVED, s.received);
    metric_value(w, METRIC_PROBE_LOSS, echo_summary_loss(&s));
    if (s.received > 0) {
        metric_value(w, METRIC_PROBE_RTT_MIN, s.min);
        metric_value(w, METRIC_PROBE_RTT_AVG, echo_summary_mean(&s));
        metric_value(w, METRIC_PROBE_RTT_MAX, s.max);
        metric_value(w, METRIC_PROBE_RTT_STDDEV, echo_summary_stddev(&s));
    }
    metric_family(w, METRIC_PROBE_RTT);
    {
        struct prom_buckets h = {.bounds = m->buckets,
                                 .counts = s.buckets,
                                 .n_bounds = m->n_buckets,
                                 .count = s.received,
                                 .sum = s.sum};
        prom_histogram(w, metric_desc(METRIC_PROBE_RTT)->name, NULL, 0, NULL, 0, &h);
    }
    metric_family(w, METRIC_PROBE_REPLIES);
    for (int i = 0; i < ICMP_STATUS_LIMIT; i++) {
        if (s.by_status[i] == 0 || (name = icmp_status_name((enum icmp_status)i)) == NULL)
            continue;
        l = (struct prom_label){"status", name};
        metric_sample(w, METRIC_PROBE_REPLIES, &l, 1, NULL, 0, (double)s.by_status[i]);
    }
    metric_value(w, METRIC_PROBE_DUPLICATES, p->ran ? p->job.duplicates : 0);
    return prom_finish(w);
}

int probe_render_debug(const struct probe *p, struct text_buf *out)
{
    char a[INET6_ADDRSTRLEN];
    struct prom_writer w;

    text_buf_printf(out, "Probe of %s with module %s: %u echoes, %.3fs apart, timeout %.3fs\n",
                    p->target, p->s.module->name, p->s.count, (double)p->s.interval_ns / 1e9,
                    (double)p->s.timeout_ns / 1e9);
    if (!p->resolved && p->res.timed_out) {
        text_buf_printf(out,
                        "Resolution timed out: no answer within the probe's %.3fs (the lookup "
                        "goes on in the background; its answer is dropped)\n",
                        (double)p->s.timeout_ns / 1e9);
    } else if (!p->resolved) {
        text_buf_printf(out, "Resolution failed: %s\n", gai_strerror(p->res.error));
    } else {
        text_buf_printf(out, "Resolved %s to %s (IPv%d) in %.6fs\n", p->target,
                        icmp_addr_format(&p->res.addr, a, sizeof(a)),
                        p->res.addr.family == AF_INET ? 4 : 6, (double)p->res.took_ns / 1e9);
    }
    for (uint32_t i = 0; p->ran && i < p->s.count; i++) {
        const struct icmp_echo_result *r = &p->results[i];
        if (!r->sent) {
            text_buf_printf(out, "echo %u: not sent (%s)\n", i,
                            r->send_errno ? icmp_status_name(r->status)
                                          : "no send slot before the deadline: the packet "
                                            "budget went to other probes, or the deadline "
                                            "was too short; not a loss");
            continue;
        }
        text_buf_printf(out, "echo %u: seq=%u status=%s", i, r->seq, icmp_status_name(r->status));
        if (r->rtt_ns >= 0)
            text_buf_printf(out, " rtt=%.6fs from=%s ttl=%d", (double)r->rtt_ns / 1e9,
                            icmp_addr_format(&r->from, a, sizeof(a)), r->ttl);
        if (r->duplicates)
            text_buf_printf(out, " duplicates=%u", r->duplicates);
        text_buf_append_str(out, "\n");
    }
    text_buf_append_str(out, "\nMetrics that would have been returned:\n");
    prom_writer_init(&w, out, PROM_FORMAT_TEXT);
    return probe_render(p, &w);
}
