/*
 * The exporter's own metrics on /metrics: process, engine, HTTP, probes and configuration.
 * Counters live in their objects (the engine, struct exporter) and are only read here.
 */
#include "exporter/metrics.h"

#include "exporter/build_info.h" /* generated at configure time: exporter/build_info.cmake */
#include "exporter/exporter.h"
#include "exporter/round.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

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

    metric_family(w, METRIC_BUILD_INFO);
    {
        /* Prometheus exporters' labels (version, revision, branch, goversion), with the C
         * compiler in goversion's place, and the build date; sorted by name, as Go's client
         * writes them. */
        struct prom_label l[] = {{"branch", ICMPX_BUILD_BRANCH},
                                 {"build_date", ICMPX_BUILD_DATE},
                                 {"compiler", ICMPX_BUILD_COMPILER},
                                 {"revision", ICMPX_BUILD_REVISION},
                                 {"version", ICMPX_VERSION}};
        metric_sample(w, METRIC_BUILD_INFO, l, sizeof(l) / sizeof(l[0]), NULL, 0, 1);
    }
    if (cpu >= 0) {
        metric_value(w, METRIC_PROCESS_CPU, cpu);
        metric_value(w, METRIC_PROCESS_RSS, rss);
        metric_value(w, METRIC_PROCESS_VSIZE, vsize);
    }
    metric_value(w, METRIC_PROCESS_OPEN_FDS, count_fds());
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        metric_value(w, METRIC_PROCESS_MAX_FDS, (double)rl.rlim_cur);
    metric_value(w, METRIC_PROCESS_START_TIME, x->start_time);

    metric_family(w, METRIC_SOCKET_MODE);
    for (int i = 0; i < 2; i++) {
        int af = i == 0 ? AF_INET : AF_INET6;
        struct prom_label l[2] = {{"family", i == 0 ? "ipv4" : "ipv6"},
                                  {"mode", icmp_socket_mode_name(icmp_engine_mode(x->engine, af))}};
        metric_sample(w, METRIC_SOCKET_MODE, l, 2, NULL, 0, 1);
    }

    metric_family(w, METRIC_PROBES);
    pthread_mutex_lock(&x->lock);
    for (size_t i = 0; i < x->n_modules; i++) {
        struct prom_label l[2] = {{"module", x->modules[i].name}, {"result", "success"}};
        metric_sample(w, METRIC_PROBES, l, 2, NULL, 0, (double)x->modules[i].success);
        l[1].value = "failure";
        metric_sample(w, METRIC_PROBES, l, 2, NULL, 0, (double)x->modules[i].failure);
    }
    pthread_mutex_unlock(&x->lock);
    metric_value(w, METRIC_PROBES_IN_FLIGHT, (double)atomic_load(&x->probes_in_flight));
    if (x->rounds != NULL) {
        uint64_t started, early;
        rounds_counts(x->rounds, &started, &early);
        metric_value(w, METRIC_SCRAPE_ROUNDS, (double)started);
        metric_value(w, METRIC_SCRAPES_EARLY, (double)early);
    }

    metric_value(w, METRIC_ENGINE_SENT, (double)st.sent);
    metric_family(w, METRIC_ENGINE_REPLIES);
    for (int i = 0; i < ICMP_STATUS_LIMIT; i++) {
        const char *name = icmp_status_name((enum icmp_status)i);
        if (name == NULL ||
            (st.replies[i] == 0 && i != ICMP_STATUS_SUCCESS && i != ICMP_STATUS_TIMED_OUT))
            continue;
        struct prom_label l = {"status", name};
        metric_sample(w, METRIC_ENGINE_REPLIES, &l, 1, NULL, 0, (double)st.replies[i]);
    }
    metric_value(w, METRIC_ENGINE_DUPLICATES, (double)st.duplicates);
    metric_value(w, METRIC_ENGINE_LATE, (double)st.late);
    metric_value(w, METRIC_ENGINE_CORRUPT, (double)st.corrupt);
    metric_value(w, METRIC_ENGINE_FOREIGN, (double)st.foreign);
    metric_value(w, METRIC_ENGINE_SEND_ERRORS, (double)st.send_errors);

    metric_family(w, METRIC_HTTP_REQUESTS);
    for (size_t i = 0; i < HTTP_CODES_COUNTED; i++) {
        struct prom_label l = {"code", "other"};
        if (http_counted_codes[i] != 0) {
            snprintf(buf, sizeof(buf), "%d", http_counted_codes[i]);
            l.value = buf;
        }
        metric_sample(w, METRIC_HTTP_REQUESTS, &l, 1, NULL, 0,
                      (double)atomic_load(&x->http_requests[i]));
    }

    metric_value(w, METRIC_HTTP_REQUEST_TIMEOUTS, (double)atomic_load(&x->request_timeouts));
    metric_value(w, METRIC_RESOLVER_QUEUE_FULL, (double)atomic_load(&x->resolver_queue_full));
    metric_value(w, METRIC_RESOLVER_TIMEOUTS, (double)atomic_load(&x->resolver_timeouts));

    metric_value(w, METRIC_CONFIG_RELOAD_OK, rs.last_success ? 1 : 0);
    metric_value(w, METRIC_CONFIG_RELOAD_TIME, rs.last_success_seconds);
    metric_value(w, METRIC_CONFIG_RELOAD_FAILURES, (double)rs.failures_total);
    return text_buf_error(w->buf);
}
