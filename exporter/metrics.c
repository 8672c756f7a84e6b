/*
 * /metrics: the exporter's own metrics (process, engine, HTTP, configuration) and the
 * cumulative series of the static targets. Counters live in their objects (the engine,
 * struct exporter) and are only read here.
 */
#include "exporter.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const int http_counted_codes[HTTP_CODES_COUNTED] = {0, 200, 400, 403, 404, 405, 500, 503, 401};

bool exporter_unsupported(const struct config *cfg, char *err, size_t errlen)
{
    const struct config_web *web = config_web(cfg);

    if (web->tls_cert_file == NULL && web->n_users == 0)
        return false;
    snprintf(err, errlen,
             "web.%s is not implemented in this version; refusing to serve without the "
             "protection the configuration asks for",
             web->tls_cert_file != NULL ? "tls_server_config" : "basic_auth_users");
    return true;
}

int exporter_reload(struct exporter *x, char *err, size_t errlen)
{
    struct config *cfg = NULL;
    int rc = x->config_path != NULL ? config_load_file(x->config_path, &cfg, err, errlen)
                                    : config_load_default(&cfg, err, errlen);

    if (rc == 0 && exporter_unsupported(cfg, err, errlen)) {
        config_unref(cfg);
        cfg = NULL;
        rc = -ENOTSUP;
    }
    config_slot_swap(x->configs, cfg);
    return rc;
}

void exporter_count_http(struct exporter *x, int code)
{
    size_t slot = 0;

    for (size_t i = 1; i < HTTP_CODES_COUNTED; i++) {
        if (http_counted_codes[i] == code)
            slot = i;
    }
    atomic_fetch_add(&x->http_requests[slot], 1);
}

void exporter_count_probe(struct exporter *x, const char *module, const char *target, bool success,
                          double duration)
{
    struct probe_record *rec;
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&x->lock);
    for (size_t i = 0; i <= x->n_modules && i < 64; i++) {
        struct module_counter *m = &x->modules[i];
        if (i == x->n_modules) {
            snprintf(m->module, sizeof(m->module), "%s", module);
            x->n_modules++;
        } else if (strcmp(m->module, module) != 0) {
            continue;
        }
        if (success)
            m->success++;
        else
            m->failure++;
        break;
    }
    rec = &x->history[x->history_next];
    snprintf(rec->target, sizeof(rec->target), "%s", target);
    snprintf(rec->module, sizeof(rec->module), "%s", module);
    rec->success = success;
    rec->duration = duration;
    rec->when = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    x->history_next = (x->history_next + 1) % PROBE_HISTORY;
    if (x->history_len < PROBE_HISTORY)
        x->history_len++;
    pthread_mutex_unlock(&x->lock);
}

/* utime, stime (clock ticks) and rss (pages) from /proc/self/stat; -1 when unreadable. */
static void read_proc_stat(double *cpu_seconds, double *rss_bytes, double *vsize_bytes)
{
    FILE *f = fopen("/proc/self/stat", "r");
    char buf[1024];
    unsigned long utime = 0, stime = 0, vsize = 0;
    long rss = 0;
    char *p;

    *cpu_seconds = *rss_bytes = *vsize_bytes = -1;
    if (f == NULL)
        return;
    if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL &&
        sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d "
               "%*u %lu %ld",
               &utime, &stime, &vsize, &rss) == 4) {
        double tick = (double)sysconf(_SC_CLK_TCK);
        *cpu_seconds = (double)(utime + stime) / tick;
        *rss_bytes = (double)rss * (double)sysconf(_SC_PAGESIZE);
        *vsize_bytes = (double)vsize;
    }
    fclose(f);
}

static double count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    double n = 0;

    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

static void family1(struct prom_writer *w, const char *name, enum prom_type type, const char *help,
                    double v)
{
    prom_family(w, name, type, help, NULL);
    prom_sample(w, name, NULL, 0, v);
}

int metrics_render_self(struct exporter *x, struct prom_writer *w)
{
    struct icmp_engine_stats st;
    struct config_reload_status rs;
    double cpu, rss, vsize;
    struct rlimit rl;
    char buf[16];

    icmp_engine_stats(x->engine, &st);
    config_slot_status(x->configs, &rs);
    read_proc_stat(&cpu, &rss, &vsize);

    prom_family(w, "icmp_exporter_build_info", PROM_TYPE_GAUGE,
                "A metric with a constant '1' value labeled by version", NULL);
    {
        struct prom_label l = {"version", ICMPX_VERSION};
        prom_sample(w, "icmp_exporter_build_info", &l, 1, 1);
    }
    if (cpu >= 0) {
        family1(w, "process_cpu_seconds_total", PROM_TYPE_COUNTER,
                "Total user and system CPU time spent in seconds", cpu);
        family1(w, "process_resident_memory_bytes", PROM_TYPE_GAUGE,
                "Resident memory size in bytes", rss);
        family1(w, "process_virtual_memory_bytes", PROM_TYPE_GAUGE, "Virtual memory size in bytes",
                vsize);
    }
    family1(w, "process_open_fds", PROM_TYPE_GAUGE, "Number of open file descriptors", count_fds());
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        family1(w, "process_max_fds", PROM_TYPE_GAUGE, "Maximum number of open file descriptors",
                (double)rl.rlim_cur);
    family1(w, "process_start_time_seconds", PROM_TYPE_GAUGE,
            "Start time of the process since unix epoch in seconds", x->start_time);

    prom_family(w, "icmp_exporter_socket_mode", PROM_TYPE_GAUGE,
                "ICMP socket mode per address family (1 for the mode in use)", NULL);
    for (int i = 0; i < 2; i++) {
        int af = i == 0 ? AF_INET : AF_INET6;
        struct prom_label l[2] = {{"family", i == 0 ? "ipv4" : "ipv6"},
                                  {"mode", icmp_socket_mode_name(icmp_engine_mode(x->engine, af))}};
        prom_sample(w, "icmp_exporter_socket_mode", l, 2, 1);
    }

    prom_family(w, "icmp_exporter_probes_total", PROM_TYPE_COUNTER,
                "Probes answered on /probe, by module and result", NULL);
    pthread_mutex_lock(&x->lock);
    for (size_t i = 0; i < x->n_modules; i++) {
        struct prom_label l[2] = {{"module", x->modules[i].module}, {"result", "success"}};
        prom_sample(w, "icmp_exporter_probes_total", l, 2, (double)x->modules[i].success);
        l[1].value = "failure";
        prom_sample(w, "icmp_exporter_probes_total", l, 2, (double)x->modules[i].failure);
    }
    pthread_mutex_unlock(&x->lock);
    family1(w, "icmp_exporter_probes_in_flight", PROM_TYPE_GAUGE,
            "Probes (and static-target scrapes) currently running",
            (double)atomic_load(&x->probes_in_flight));

    family1(w, "icmp_exporter_echoes_sent_total", PROM_TYPE_COUNTER,
            "Echo requests sent by the engine", (double)st.sent);
    prom_family(w, "icmp_exporter_replies_total", PROM_TYPE_COUNTER,
                "Settled echoes by outcome (IP_STATUS name), timeouts included", NULL);
    for (int i = 0; i < ICMP_STATUS_LIMIT; i++) {
        const char *name = icmp_status_name((enum icmp_status)i);
        if (name == NULL ||
            (st.replies[i] == 0 && i != ICMP_STATUS_SUCCESS && i != ICMP_STATUS_TIMED_OUT))
            continue;
        struct prom_label l = {"status", name};
        prom_sample(w, "icmp_exporter_replies_total", &l, 1, (double)st.replies[i]);
    }
    family1(w, "icmp_exporter_duplicates_total", PROM_TYPE_COUNTER,
            "Duplicate echo replies received", (double)st.duplicates);
    family1(w, "icmp_exporter_late_replies_total", PROM_TYPE_COUNTER,
            "Echo replies received after their echo had timed out", (double)st.late);
    family1(w, "icmp_exporter_corrupt_replies_total", PROM_TYPE_COUNTER,
            "Replies to our echoes with wrong data or source", (double)st.corrupt);
    family1(w, "icmp_exporter_foreign_packets_total", PROM_TYPE_COUNTER,
            "ICMP packets that were not replies to our echoes", (double)st.foreign);
    family1(w, "icmp_exporter_send_errors_total", PROM_TYPE_COUNTER,
            "Echo requests the kernel refused to send", (double)st.send_errors);

    prom_family(w, "icmp_exporter_http_requests_total", PROM_TYPE_COUNTER,
                "HTTP requests answered, by status code", NULL);
    for (size_t i = 0; i < HTTP_CODES_COUNTED; i++) {
        struct prom_label l = {"code", "other"};
        if (http_counted_codes[i] != 0) {
            snprintf(buf, sizeof(buf), "%d", http_counted_codes[i]);
            l.value = buf;
        }
        prom_sample(w, "icmp_exporter_http_requests_total", &l, 1,
                    (double)atomic_load(&x->http_requests[i]));
    }

    family1(w, "icmp_exporter_config_last_reload_successful", PROM_TYPE_GAUGE,
            "Whether the last configuration reload attempt was successful",
            rs.last_success ? 1 : 0);
    family1(w, "icmp_exporter_config_last_reload_success_timestamp_seconds", PROM_TYPE_GAUGE,
            "Timestamp of the last successful configuration reload", rs.last_success_seconds);
    family1(w, "icmp_exporter_config_reload_failures_total", PROM_TYPE_COUNTER,
            "Configuration reloads that failed", (double)rs.failures_total);
    return prom_buf_error(w->buf);
}

/* Labels of a static target: target, module, ip, ip_version, then its own. */
struct target_labels {
    struct prom_label l[4];
    char version[4];
};

static void target_labels(const struct config_target *t, const struct target_state *s,
                          struct target_labels *out)
{
    snprintf(out->version, sizeof(out->version), "%d", s->ip_version);
    out->l[0] = (struct prom_label){"target", t->target};
    out->l[1] = (struct prom_label){"module", t->module->name};
    out->l[2] = (struct prom_label){"ip", s->ip};
    out->l[3] = (struct prom_label){"ip_version", out->version};
}

int metrics_render_targets(struct exporter *x, const struct config *cfg, struct prom_writer *w)
{
    size_t n;
    const struct config_target *t = config_targets(cfg, &n);
    struct target_labels tl;
    struct prom_label *own; /* every target's own labels, as prom_labels */
    size_t *first, total = 0, n_modules;
    const struct config_module *modules;
    struct module_le {
        char text[CONFIG_MAX_BUCKETS][PROM_NUMBER_MAX];
        const char *ptr[CONFIG_MAX_BUCKETS];
    } * le;

    if (x->targets_cfg != cfg || n == 0)
        return prom_buf_error(w->buf);
    for (size_t i = 0; i < n; i++)
        total += t[i].n_labels;
    own = calloc(total + 1, sizeof(*own));
    first = calloc(n, sizeof(*first));
    if (own == NULL || first == NULL) {
        free(own);
        free(first);
        return -ENOMEM;
    }
    /* Each module's bucket bounds as le texts, formatted once instead of per series. */
    modules = config_modules(cfg, &n_modules);
    le = calloc(n_modules + 1, sizeof(*le));
    if (le == NULL) {
        free(own);
        free(first);
        return -ENOMEM;
    }
    for (size_t m = 0; m < n_modules; m++) {
        for (size_t b = 0; b < modules[m].n_buckets; b++) {
            prom_format_le(modules[m].buckets[b], w->format, le[m].text[b], PROM_NUMBER_MAX);
            le[m].ptr[b] = le[m].text[b];
        }
    }
    /* About 2.8 KB a target (17 buckets): one allocation instead of a dozen doublings. */
    prom_buf_reserve(w->buf, n * 3000 < (size_t)16 << 20 ? n * 3000 : (size_t)16 << 20);
    total = 0;
    for (size_t i = 0; i < n; i++) {
        first[i] = total;
        for (size_t k = 0; k < t[i].n_labels; k++)
            own[total++] = (struct prom_label){t[i].labels[k].name, t[i].labels[k].value};
    }

    prom_family(w, "icmp_target_success", PROM_TYPE_GAUGE,
                "Whether the static target answered at least one echo in the last scrape", NULL);
    for (size_t i = 0; i < n; i++) {
        if (!x->targets[i].scraped)
            continue;
        target_labels(&t[i], &x->targets[i], &tl);
        prom_sample2(w, "icmp_target_success", tl.l, 4, own + first[i], t[i].n_labels,
                     x->targets[i].success ? 1 : 0);
    }
    prom_family(w, "icmp_target_loss_ratio", PROM_TYPE_GAUGE,
                "Share of the last scrape's echoes that got no echo reply (0-1)", NULL);
    for (size_t i = 0; i < n; i++) {
        if (!x->targets[i].scraped)
            continue;
        target_labels(&t[i], &x->targets[i], &tl);
        prom_sample2(w, "icmp_target_loss_ratio", tl.l, 4, own + first[i], t[i].n_labels,
                     x->targets[i].loss_ratio);
    }
    prom_family(w, "icmp_target_reply_hop_limit", PROM_TYPE_GAUGE,
                "TTL / hop limit of the last echo reply (a path change signal)", NULL);
    for (size_t i = 0; i < n; i++) {
        if (!x->targets[i].scraped || x->targets[i].hop_limit < 0)
            continue;
        target_labels(&t[i], &x->targets[i], &tl);
        prom_sample2(w, "icmp_target_reply_hop_limit", tl.l, 4, own + first[i], t[i].n_labels,
                     x->targets[i].hop_limit);
    }
    prom_family(w, "icmp_target_echoes_sent_total", PROM_TYPE_COUNTER,
                "Echo requests sent to the static target", NULL);
    for (size_t i = 0; i < n; i++) {
        if (!x->targets[i].scraped)
            continue;
        target_labels(&t[i], &x->targets[i], &tl);
        prom_sample2(w, "icmp_target_echoes_sent_total", tl.l, 4, own + first[i], t[i].n_labels,
                     (double)x->targets[i].sent);
    }
    prom_family(w, "icmp_target_replies_total", PROM_TYPE_COUNTER,
                "Echoes to the static target by outcome (IP_STATUS name)", NULL);
    for (size_t i = 0; i < n; i++) {
        if (!x->targets[i].scraped)
            continue;
        target_labels(&t[i], &x->targets[i], &tl);
        for (int s = 0; s < ICMP_STATUS_LIMIT; s++) {
            if (x->targets[i].replies[s] == 0 && s != ICMP_STATUS_SUCCESS)
                continue;
            struct prom_label labels[5];
            memcpy(labels, tl.l, sizeof(tl.l));
            labels[4] = (struct prom_label){"status", icmp_status_name((enum icmp_status)s)};
            prom_sample2(w, "icmp_target_replies_total", labels, 5, own + first[i], t[i].n_labels,
                         (double)x->targets[i].replies[s]);
        }
    }
    prom_family(w, "icmp_target_rtt_seconds", PROM_TYPE_HISTOGRAM,
                "Round-trip times of the static target's echo replies", NULL);
    for (size_t i = 0; i < n; i++) {
        if (!x->targets[i].scraped)
            continue;
        target_labels(&t[i], &x->targets[i], &tl);
        size_t mi = (size_t)(t[i].module - modules);
        struct prom_buckets h = {.bounds = t[i].module->buckets,
                                 .counts = x->targets[i].rtt_buckets,
                                 .n_bounds = t[i].module->n_buckets,
                                 .count = x->targets[i].rtt_count,
                                 .sum = x->targets[i].rtt_sum,
                                 .le = mi < n_modules ? le[mi].ptr : NULL};
        prom_histogram(w, "icmp_target_rtt_seconds", tl.l, 4, own + first[i], t[i].n_labels, &h);
    }
    free(own);
    free(first);
    free(le);
    return prom_buf_error(w->buf);
}
