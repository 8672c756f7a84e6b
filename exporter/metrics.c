/*
 * /metrics: the exporter's own metrics (process, engine, HTTP, configuration) and the
 * cumulative series of the static targets. Counters live in their objects (the engine,
 * struct exporter) and are only read here.
 */
#include "exporter.h"

#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const int http_counted_codes[HTTP_CODES_COUNTED] = {0, 200, 400, 403, 404, 405, 500, 503, 401};

static bool same_path(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool exporter_reload_conflict(const struct exporter *x, const struct config *cfg, char *err,
                              size_t errlen)
{
    const struct config_web *web = config_web(cfg);

    if (same_path(web->tls_cert_file, x->tls_cert_file) &&
        same_path(web->tls_key_file, x->tls_key_file))
        return false;
    snprintf(err, errlen,
             "web.tls_server_config differs from the one the server started with; TLS is set up "
             "at start: restart to apply it");
    return true;
}

int64_t send_gap(const struct config *cfg)
{
    return 1000000000 / (int64_t)config_limits(cfg)->max_packets_per_second;
}

int exporter_reload(struct exporter *x, char *err, size_t errlen)
{
    struct config *cfg = NULL;
    int rc = x->config_path != NULL ? config_load_file(x->config_path, &cfg, err, errlen)
                                    : config_load_default(&cfg, err, errlen);

    if (rc == 0 && exporter_reload_conflict(x, cfg, err, errlen)) {
        config_unref(cfg);
        cfg = NULL;
        rc = -ENOTSUP;
    }
    if (cfg != NULL && x->engine != NULL)
        icmp_engine_set_send_gap(x->engine, send_gap(cfg));
    config_slot_swap(x->configs, cfg);
    malloc_trim(0); /* the parser's freed JSON tree, as at start */
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

    family1(w, "icmp_exporter_http_request_timeouts_total", PROM_TYPE_COUNTER,
            "Connections cut for not delivering a whole request within limits.request_timeout",
            (double)atomic_load(&x->request_timeouts));

    family1(w, "icmp_exporter_config_last_reload_successful", PROM_TYPE_GAUGE,
            "Whether the last configuration reload attempt was successful",
            rs.last_success ? 1 : 0);
    family1(w, "icmp_exporter_config_last_reload_success_timestamp_seconds", PROM_TYPE_GAUGE,
            "Timestamp of the last successful configuration reload", rs.last_success_seconds);
    family1(w, "icmp_exporter_config_reload_failures_total", PROM_TYPE_COUNTER,
            "Configuration reloads that failed", (double)rs.failures_total);
    return text_buf_error(w->buf);
}

/* ---------------------------------------------------------------------------------------
 * The static targets' table.
 */

/* The identity of a static target across reloads: its target, module and labels. */
static uint64_t target_key_hash(const struct config_target *t)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    const char *parts[2] = {t->target, t->module->name};

    for (size_t k = 0; k < 2 + 2 * t->n_labels; k++) {
        const char *p = k < 2              ? parts[k]
                        : (k - 2) % 2 == 0 ? t->labels[(k - 2) / 2].name
                                           : t->labels[(k - 2) / 2].value;
        for (; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211u;
        h = (h ^ 0xff) * 1099511628211u; /* a separator no string contains */
    }
    return h;
}

static bool same_target(const struct config_target *a, const struct config_target *b)
{
    if (strcmp(a->target, b->target) != 0 || strcmp(a->module->name, b->module->name) != 0 ||
        a->n_labels != b->n_labels || a->module->n_buckets != b->module->n_buckets)
        return false;
    for (size_t k = 0; k < a->n_labels; k++) {
        if (strcmp(a->labels[k].name, b->labels[k].name) != 0 ||
            strcmp(a->labels[k].value, b->labels[k].value) != 0)
            return false;
    }
    for (size_t b_ = 0; b_ < a->module->n_buckets; b_++) {
        if (a->module->buckets[b_] != b->module->buckets[b_])
            return false;
    }
    return true;
}

/*
 * Carries the counters of every target that a reload kept unchanged (same target, module,
 * labels and buckets) from prev into t, so a reload is not a counter reset for them. A
 * scrape still running on prev may add to it afterwards; those few echoes are not carried.
 * prev's counters are read under exporter.lock (held by the caller).
 */
#define TAKEN (SIZE_MAX - 1)

static void carry_states(struct target_table *t, const struct target_table *prev)
{
    const struct config_target *nt = config_targets(t->cfg, &(size_t){0});
    const struct config_target *ot = config_targets(prev->cfg, &(size_t){0});
    size_t cap = 1, *slots;

    while (cap < prev->n * 2)
        cap *= 2;
    slots = malloc(cap * sizeof(*slots));
    if (slots == NULL)
        return; /* the counters start again: a reset, not a failure */
    for (size_t i = 0; i < cap; i++)
        slots[i] = SIZE_MAX;
    for (size_t j = 0; j < prev->n; j++) {
        size_t i = (size_t)target_key_hash(&ot[j]) & (cap - 1);
        while (slots[i] != SIZE_MAX)
            i = (i + 1) & (cap - 1);
        slots[i] = j;
    }
    for (size_t k = 0; k < t->n; k++) {
        size_t i = (size_t)target_key_hash(&nt[k]) & (cap - 1);
        for (; slots[i] != SIZE_MAX; i = (i + 1) & (cap - 1)) {
            if (slots[i] == TAKEN || !same_target(&nt[k], &ot[slots[i]]))
                continue;
            const struct target_state *o = &prev->states[slots[i]];
            struct target_state *s = &t->states[k];
            uint64_t *buckets = s->rtt_buckets;
            *s = *o;
            s->rtt_buckets = buckets;
            memcpy(buckets, o->rtt_buckets, nt[k].module->n_buckets * sizeof(*buckets));
            s->other = NULL;
            if (o->other != NULL && (s->other = malloc(ICMP_STATUS_LIMIT * sizeof(uint64_t))))
                memcpy(s->other, o->other, ICMP_STATUS_LIMIT * sizeof(uint64_t));
            slots[i] = TAKEN; /* a target listed twice: the second starts at zero */
            break;
        }
    }
    free(slots);
}

struct target_table *target_table_new(struct config *cfg, const struct target_table *prev)
{
    size_t n, n_buckets = 0;
    const struct config_target *t = config_targets(cfg, &n);
    struct target_table *table = calloc(1, sizeof(*table));

    if (table == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        n_buckets += t[i].module->n_buckets;
    table->states = calloc(n > 0 ? n : 1, sizeof(*table->states));
    table->buckets = calloc(n_buckets > 0 ? n_buckets : 1, sizeof(*table->buckets));
    if (table->states == NULL || table->buckets == NULL) {
        free(table->states);
        free(table->buckets);
        free(table);
        return NULL;
    }
    n_buckets = 0;
    for (size_t i = 0; i < n; i++) {
        table->states[i].hop_limit = -1;
        table->states[i].rtt_buckets = table->buckets + n_buckets;
        n_buckets += t[i].module->n_buckets;
    }
    atomic_init(&table->refs, 1);
    table->cfg = config_ref(cfg);
    table->n = n;
    if (prev != NULL && prev->n > 0 && n > 0)
        carry_states(table, prev);
    return table;
}

struct target_table *target_table_ref(struct target_table *t)
{
    atomic_fetch_add(&t->refs, 1);
    return t;
}

void target_table_unref(struct target_table *t)
{
    if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->states[i].other);
    free(t->states);
    free(t->buckets);
    config_unref(t->cfg);
    free(t);
}

uint64_t target_replies(const struct target_state *t, enum icmp_status s)
{
    if (s == ICMP_STATUS_SUCCESS)
        return t->replied;
    if (s == ICMP_STATUS_TIMED_OUT)
        return t->timed_out;
    return t->other != NULL && (unsigned)s < ICMP_STATUS_LIMIT ? t->other[s] : 0;
}

/* ---------------------------------------------------------------------------------------
 * The static targets' series, rendered a piece at a time.
 */

/* The families, in the order they are written; each is every target's samples. */
enum target_family {
    TF_SUCCESS,
    TF_LOSS,
    TF_HOP_LIMIT,
    TF_RTT_MIN,
    TF_RTT_AVG,
    TF_RTT_MAX,
    TF_RTT_STDDEV,
    TF_SENT,
    TF_REPLIES,
    TF_DUPLICATES,
    TF_RTT,
    TF_END,
};

static const struct {
    const char *name;
    enum prom_type type;
    const char *help;
} target_families[TF_END] = {
    [TF_SUCCESS] = {"icmp_target_success", PROM_TYPE_GAUGE,
                    "Whether the static target answered at least one echo in the last scrape"},
    [TF_LOSS] = {"icmp_target_loss_ratio", PROM_TYPE_GAUGE,
                 "Share of the last scrape's echoes that got no echo reply (0-1)"},
    [TF_HOP_LIMIT] = {"icmp_target_reply_hop_limit", PROM_TYPE_GAUGE,
                      "TTL / hop limit of the last echo reply (a path change signal)"},
    [TF_RTT_MIN] = {"icmp_target_rtt_min_seconds", PROM_TYPE_GAUGE,
                    "Smallest round-trip time of the last scrape's echoes"},
    [TF_RTT_AVG] = {"icmp_target_rtt_avg_seconds", PROM_TYPE_GAUGE,
                    "Mean round-trip time of the last scrape's echoes"},
    [TF_RTT_MAX] = {"icmp_target_rtt_max_seconds", PROM_TYPE_GAUGE,
                    "Largest round-trip time of the last scrape's echoes"},
    [TF_RTT_STDDEV] = {"icmp_target_rtt_stddev_seconds", PROM_TYPE_GAUGE,
                       "Population standard deviation of the last scrape's round-trip times"},
    [TF_SENT] = {"icmp_target_echoes_sent_total", PROM_TYPE_COUNTER,
                 "Echo requests sent to the static target"},
    [TF_REPLIES] = {"icmp_target_replies_total", PROM_TYPE_COUNTER,
                    "Echoes to the static target by outcome (IP_STATUS name)"},
    [TF_DUPLICATES] = {"icmp_target_duplicates_total", PROM_TYPE_COUNTER,
                       "Duplicate echo replies from the static target"},
    [TF_RTT] = {"icmp_target_rtt_seconds", PROM_TYPE_HISTOGRAM,
                "Round-trip times of the static target's echo replies"},
};

int metrics_cursor_init(struct metrics_cursor *c, struct target_table *table,
                        enum prom_format format)
{
    size_t n_modules, max_labels = 0;
    const struct config_module *modules;
    const struct config_target *t;

    memset(c, 0, sizeof(*c));
    c->family = TF_END;
    if (table == NULL || table->n == 0)
        return 0;
    t = config_targets(table->cfg, &c->n);
    modules = config_modules(table->cfg, &n_modules);
    for (size_t i = 0; i < c->n; i++)
        max_labels = t[i].n_labels > max_labels ? t[i].n_labels : max_labels;
    /* Each module's bucket bounds as le texts, formatted once instead of per series. */
    c->le = calloc(n_modules > 0 ? n_modules : 1, sizeof(*c->le));
    /* Room for the 4 common labels, the status, then a target's own. */
    c->labels = calloc(5 + max_labels, sizeof(*c->labels));
    if (c->le == NULL || c->labels == NULL) {
        metrics_cursor_cleanup(c);
        return -ENOMEM;
    }
    for (size_t m = 0; m < n_modules; m++) {
        for (size_t b = 0; b < modules[m].n_buckets; b++) {
            prom_format_le(modules[m].buckets[b], format, c->le[m].text[b], PROM_NUMBER_MAX);
            c->le[m].ptr[b] = c->le[m].text[b];
        }
    }
    c->table = target_table_ref(table);
    c->targets = t;
    c->modules = modules;
    c->n_modules = n_modules;
    c->family = TF_SUCCESS;
    c->next = 0;
    c->family_started = false;
    return 0;
}

void metrics_cursor_cleanup(struct metrics_cursor *c)
{
    target_table_unref(c->table);
    free(c->le);
    free(c->labels);
    memset(c, 0, sizeof(*c));
    c->family = TF_END;
}

/* Writes target i's samples of the cursor's family. */
static void render_target(struct metrics_cursor *c, struct prom_writer *w, size_t i)
{
    const struct config_target *t = &c->targets[i];
    const struct target_state *s = &c->table->states[i];
    const char *name = target_families[c->family].name;
    struct prom_label *l = c->labels, *own = c->labels + 5;
    char version[4];

    /* The RTT gauges need a reply; min, max and stddev a module of more than one echo
     * (of one, they only repeat the mean: 3 lines a target that 10,000 targets pay for). */
    if (!s->scraped || (c->family == TF_HOP_LIMIT && s->hop_limit < 0) ||
        (c->family >= TF_RTT_MIN && c->family <= TF_RTT_STDDEV && s->rtt_n == 0) ||
        (c->family != TF_RTT_AVG && c->family >= TF_RTT_MIN && c->family <= TF_RTT_STDDEV &&
         t->module->count < 2))
        return;
    snprintf(version, sizeof(version), "%u", (unsigned)s->ip_version);
    l[0] = (struct prom_label){"target", t->target};
    l[1] = (struct prom_label){"module", t->module->name};
    l[2] = (struct prom_label){"ip", s->ip};
    l[3] = (struct prom_label){"ip_version", version};
    for (size_t k = 0; k < t->n_labels; k++)
        own[k] = (struct prom_label){t->labels[k].name, t->labels[k].value};

    switch ((enum target_family)c->family) {
    case TF_SUCCESS:
        prom_sample2(w, name, l, 4, own, t->n_labels, s->success ? 1 : 0);
        break;
    case TF_LOSS:
        prom_sample2(w, name, l, 4, own, t->n_labels, s->loss_ratio);
        break;
    case TF_HOP_LIMIT:
        prom_sample2(w, name, l, 4, own, t->n_labels, s->hop_limit);
        break;
    case TF_RTT_MIN:
        prom_sample2(w, name, l, 4, own, t->n_labels, s->rtt_min);
        break;
    case TF_RTT_AVG:
        prom_sample2(w, name, l, 4, own, t->n_labels, s->rtt_avg);
        break;
    case TF_RTT_MAX:
        prom_sample2(w, name, l, 4, own, t->n_labels, s->rtt_max);
        break;
    case TF_RTT_STDDEV:
        prom_sample2(w, name, l, 4, own, t->n_labels, s->rtt_stddev);
        break;
    case TF_SENT:
        prom_sample2(w, name, l, 4, own, t->n_labels, (double)s->sent);
        break;
    case TF_DUPLICATES:
        prom_sample2(w, name, l, 4, own, t->n_labels, (double)s->duplicates);
        break;
    case TF_REPLIES:
        /* Success always (a target that never answered shows 0), others once seen. The
         * status label goes between the common labels and the target's own. */
        for (int st = 0; st < ICMP_STATUS_LIMIT; st++) {
            uint64_t v = target_replies(s, (enum icmp_status)st);
            if ((v == 0 && st != ICMP_STATUS_SUCCESS) ||
                icmp_status_name((enum icmp_status)st) == NULL)
                continue;
            l[4] = (struct prom_label){"status", icmp_status_name((enum icmp_status)st)};
            prom_sample2(w, name, l, 5, own, t->n_labels, (double)v);
        }
        break;
    case TF_RTT: {
        size_t mi = (size_t)(t->module - c->modules);
        struct prom_buckets h = {.bounds = t->module->buckets,
                                 .counts = s->rtt_buckets,
                                 .n_bounds = t->module->n_buckets,
                                 .count = s->rtt_count,
                                 .sum = s->rtt_sum,
                                 .le = mi < c->n_modules ? c->le[mi].ptr : NULL};
        prom_histogram(w, name, l, 4, own, t->n_labels, &h);
        break;
    }
    case TF_END:
        break;
    }
}

int metrics_render_targets_next(struct metrics_cursor *c, struct prom_writer *w, size_t min_bytes)
{
    size_t start = text_buf_len(w->buf);

    while (c->family < TF_END) {
        if (!c->family_started) {
            prom_family(w, target_families[c->family].name, target_families[c->family].type,
                        target_families[c->family].help, NULL);
            c->family_started = true;
        }
        while (c->next < c->n) {
            render_target(c, w, c->next++);
            if (text_buf_error(w->buf) != 0)
                return text_buf_error(w->buf);
            if (text_buf_len(w->buf) - start >= min_bytes)
                return 1;
        }
        c->family++;
        c->next = 0;
        c->family_started = false;
    }
    return text_buf_error(w->buf);
}
