/*
 * Echo results summarised (echo_summary.h). An echo the kernel refused to send (no route,
 * a firewall) was not sent, yet is an outcome the operator must see, under its status, and
 * a loss; an echo never tried (cut by the deadline: the packet budget went to other probes
 * first) is no loss, only counted as unsent, and a probe that tried none has no loss ratio.
 */
#include "exporter/echo_summary.h"

#include <math.h>
#include <string.h>

void echo_summary_of(struct echo_summary *s, const struct icmp_echo_result *results, uint32_t n,
                     const struct config_module *m)
{
    memset(s, 0, sizeof(*s));
    s->hop_limit = -1;
    for (uint32_t i = 0; i < n; i++) {
        const struct icmp_echo_result *r = &results[i];
        if (!r->sent) {
            if (r->send_errno != 0) {
                s->attempted++;
                s->by_status[r->status]++;
            } else {
                s->unsent++;
            }
            continue;
        }
        s->sent++;
        s->attempted++;
        s->by_status[r->status]++;
        if (r->status != ICMP_STATUS_SUCCESS)
            continue;
        if (r->ttl >= 0)
            s->hop_limit = r->ttl;
        double v = (double)r->rtt_ns / 1e9;
        if (s->received == 0 || v < s->min)
            s->min = v;
        if (s->received == 0 || v > s->max)
            s->max = v;
        s->received++;
        s->sum += v;
        s->sumsq += v * v;
        for (size_t b = 0; b < m->n_buckets; b++) {
            if (v <= m->buckets[b]) {
                s->buckets[b]++;
                break;
            }
        }
    }
}

double echo_summary_loss(const struct echo_summary *s)
{
    if (s->attempted > 0)
        return 1.0 - (double)s->received / s->attempted;
    return s->unsent > 0 ? NAN : 1.0;
}

double echo_summary_mean(const struct echo_summary *s)
{
    return s->sum / s->received;
}

double echo_summary_stddev(const struct echo_summary *s)
{
    double avg = s->sum / s->received;
    double var = s->sumsq / s->received - avg * avg;

    return var > 0 ? sqrt(var) : 0;
}
