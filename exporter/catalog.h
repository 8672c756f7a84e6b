/*
 * Every metric the exporter writes, in one table: name, type and help text. The three
 * vocabularies are here together so that a meaning has one name per vocabulary and one
 * help text, whoever renders it: probe_* for a /probe answer (blackbox_exporter's names),
 * icmp_target_* for the configured targets on /metrics, and the exporter's own metrics.
 */
#ifndef EXPORTER_CATALOG_H
#define EXPORTER_CATALOG_H

#include "exporter/prom/prom.h"

enum metric_id {
    /* /probe */
    METRIC_PROBE_SUCCESS,
    METRIC_PROBE_DURATION,
    METRIC_PROBE_TIMEOUT,
    METRIC_PROBE_DNS_LOOKUP,
    METRIC_PROBE_IP_PROTOCOL,
    METRIC_PROBE_IP_ADDR_HASH,
    METRIC_PROBE_ICMP_DURATION,
    METRIC_PROBE_HOP_LIMIT,
    METRIC_PROBE_SENT,
    METRIC_PROBE_UNSENT,
    METRIC_PROBE_RECEIVED,
    METRIC_PROBE_LOSS,
    METRIC_PROBE_RTT_MIN,
    METRIC_PROBE_RTT_AVG,
    METRIC_PROBE_RTT_MAX,
    METRIC_PROBE_RTT_STDDEV,
    METRIC_PROBE_RTT,
    METRIC_PROBE_REPLIES,
    METRIC_PROBE_DUPLICATES,

    /* The configured targets on /metrics, in the order they are written. */
    METRIC_TARGET_SUCCESS,
    METRIC_TARGET_LOSS,
    METRIC_TARGET_HOP_LIMIT,
    METRIC_TARGET_RTT_MIN,
    METRIC_TARGET_RTT_AVG,
    METRIC_TARGET_RTT_MAX,
    METRIC_TARGET_RTT_STDDEV,
    METRIC_TARGET_SENT,
    METRIC_TARGET_UNSENT,
    METRIC_TARGET_REPLIES,
    METRIC_TARGET_DUPLICATES,
    METRIC_TARGET_RTT,

    /* The exporter's own. */
    METRIC_BUILD_INFO,
    METRIC_PROCESS_CPU,
    METRIC_PROCESS_RSS,
    METRIC_PROCESS_VSIZE,
    METRIC_PROCESS_OPEN_FDS,
    METRIC_PROCESS_MAX_FDS,
    METRIC_PROCESS_START_TIME,
    METRIC_SOCKET_MODE,
    METRIC_PROBES,
    METRIC_PROBES_IN_FLIGHT,
    METRIC_SCRAPE_ROUNDS,
    METRIC_SCRAPES_EARLY,
    METRIC_ENGINE_SENT,
    METRIC_ENGINE_REPLIES,
    METRIC_ENGINE_DUPLICATES,
    METRIC_ENGINE_LATE,
    METRIC_ENGINE_CORRUPT,
    METRIC_ENGINE_FOREIGN,
    METRIC_ENGINE_SEND_ERRORS,
    METRIC_HTTP_REQUESTS,
    METRIC_HTTP_REQUEST_TIMEOUTS,
    METRIC_RESOLVER_QUEUE_FULL,
    METRIC_RESOLVER_TIMEOUTS,
    METRIC_CONFIG_RELOAD_OK,
    METRIC_CONFIG_RELOAD_TIME,
    METRIC_CONFIG_RELOAD_FAILURES,

    METRIC_COUNT,
};

struct metric_desc {
    const char *name;
    enum prom_type type;
    const char *help;
};

/* The description of a metric. id must be a valid enum metric_id. Thread-safe. */
const struct metric_desc *metric_desc(enum metric_id id);

/* Starts the family of id (prom_family with its name, type and help). Returns 0 or the
 * writer's sticky error. */
int metric_family(struct prom_writer *w, enum metric_id id);

/* A family of one unlabelled sample: metric_family, then the value. Returns as above. */
int metric_value(struct prom_writer *w, enum metric_id id, double value);

/* One sample of id's family, with the labels of a then b (prom_sample2). */
int metric_sample(struct prom_writer *w, enum metric_id id, const struct prom_label *a, size_t n_a,
                  const struct prom_label *b, size_t n_b, double value);

#endif
