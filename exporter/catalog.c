/*
 * The metric catalogue (catalog.h). Help texts are what the exporter has always written:
 * dashboards and tests read them, so a change here is a change of the exposition.
 */
#include "exporter/catalog.h"

#include <assert.h>

#define G PROM_TYPE_GAUGE
#define C PROM_TYPE_COUNTER
#define H PROM_TYPE_HISTOGRAM

static const struct metric_desc catalog[METRIC_COUNT] = {
    [METRIC_PROBE_SUCCESS] = {"probe_success", G, "Whether the probe got at least one echo reply"},
    [METRIC_PROBE_DURATION] = {"probe_duration_seconds", G,
                               "How long the probe took to complete in seconds"},
    [METRIC_PROBE_TIMEOUT] = {"probe_timeout_seconds", G,
                              "How long the probe could take in seconds"},
    [METRIC_PROBE_DNS_LOOKUP] = {"probe_dns_lookup_time_seconds", G,
                                 "Returns the time taken for probe dns lookup in seconds"},
    [METRIC_PROBE_IP_PROTOCOL] = {"probe_ip_protocol", G,
                                  "Specifies whether probe ip protocol is IP4 or IP6"},
    [METRIC_PROBE_IP_ADDR_HASH] = {"probe_ip_addr_hash", G, "Specifies the hash of IP address"},
    [METRIC_PROBE_ICMP_DURATION] = {"probe_icmp_duration_seconds", G,
                                    "Duration of icmp request by phase"},
    [METRIC_PROBE_HOP_LIMIT] = {"probe_icmp_reply_hop_limit", G,
                                "Replied packet hop limit (TTL for ipv4)"},
    [METRIC_PROBE_SENT] = {"probe_icmp_echoes_sent", G, "Echo requests sent by this probe"},
    [METRIC_PROBE_UNSENT] = {"probe_icmp_echoes_unsent", G,
                             "Echo requests of this probe not sent before its deadline (the "
                             "packet budget went to other probes first)"},
    [METRIC_PROBE_RECEIVED] = {"probe_icmp_echoes_received", G,
                               "Echo replies received by this probe"},
    [METRIC_PROBE_LOSS] = {"probe_icmp_loss_ratio", G,
                           "Share of echoes sent that got no echo reply (0-1; NaN when none "
                           "could be sent)"},
    [METRIC_PROBE_RTT_MIN] = {"probe_icmp_rtt_min_seconds", G,
                              "Smallest round-trip time of the probe"},
    [METRIC_PROBE_RTT_AVG] = {"probe_icmp_rtt_avg_seconds", G, "Mean round-trip time of the probe"},
    [METRIC_PROBE_RTT_MAX] = {"probe_icmp_rtt_max_seconds", G,
                              "Largest round-trip time of the probe"},
    [METRIC_PROBE_RTT_STDDEV] = {"probe_icmp_rtt_stddev_seconds", G,
                                 "Population standard deviation of the probe's round-trip times"},
    [METRIC_PROBE_RTT] = {"probe_icmp_rtt_seconds", H,
                          "Round-trip times of the probe's echo replies"},
    [METRIC_PROBE_REPLIES] = {"probe_icmp_replies", G,
                              "Echoes of this probe by outcome (IP_STATUS name)"},
    [METRIC_PROBE_DUPLICATES] = {"probe_icmp_duplicates", G,
                                 "Duplicate echo replies seen by this probe"},

    [METRIC_TARGET_SUCCESS] = {"icmp_target_success", G,
                               "Whether the static target answered at least one echo in the last "
                               "scrape"},
    [METRIC_TARGET_LOSS] = {"icmp_target_loss_ratio", G,
                            "Share of the last scrape's echoes that got no echo reply (0-1)"},
    [METRIC_TARGET_HOP_LIMIT] = {"icmp_target_reply_hop_limit", G,
                                 "TTL / hop limit of the last echo reply (a path change signal)"},
    [METRIC_TARGET_RTT_MIN] = {"icmp_target_rtt_min_seconds", G,
                               "Smallest round-trip time of the last scrape's echoes"},
    [METRIC_TARGET_RTT_AVG] = {"icmp_target_rtt_avg_seconds", G,
                               "Mean round-trip time of the last scrape's echoes"},
    [METRIC_TARGET_RTT_MAX] = {"icmp_target_rtt_max_seconds", G,
                               "Largest round-trip time of the last scrape's echoes"},
    [METRIC_TARGET_RTT_STDDEV] = {"icmp_target_rtt_stddev_seconds", G,
                                  "Population standard deviation of the last scrape's round-trip "
                                  "times"},
    [METRIC_TARGET_SENT] = {"icmp_target_echoes_sent_total", C,
                            "Echo requests sent to the static target"},
    [METRIC_TARGET_UNSENT] = {"icmp_target_echoes_unsent_total", C,
                              "Echoes to the static target never tried: the packet budget went "
                              "to other probes until the deadline (no loss; shown once any)"},
    [METRIC_TARGET_REPLIES] = {"icmp_target_replies_total", C,
                               "Echoes to the static target by outcome (IP_STATUS name)"},
    [METRIC_TARGET_DUPLICATES] = {"icmp_target_duplicates_total", C,
                                  "Duplicate echo replies from the static target"},
    [METRIC_TARGET_RTT] = {"icmp_target_rtt_seconds", H,
                           "Round-trip times of the static target's echo replies"},

    [METRIC_BUILD_INFO] =
        {"icmp_exporter_build_info", G,
         "A metric with a constant '1' value labeled by version, revision, branch, "
         "compiler and build_date from which icmp_exporter was built"},
    [METRIC_PROCESS_CPU] = {"process_cpu_seconds_total", C,
                            "Total user and system CPU time spent in seconds"},
    [METRIC_PROCESS_RSS] = {"process_resident_memory_bytes", G, "Resident memory size in bytes"},
    [METRIC_PROCESS_VSIZE] = {"process_virtual_memory_bytes", G, "Virtual memory size in bytes"},
    [METRIC_PROCESS_OPEN_FDS] = {"process_open_fds", G, "Number of open file descriptors"},
    [METRIC_PROCESS_MAX_FDS] = {"process_max_fds", G, "Maximum number of open file descriptors"},
    [METRIC_PROCESS_START_TIME] = {"process_start_time_seconds", G,
                                   "Start time of the process since unix epoch in seconds"},
    [METRIC_SOCKET_MODE] = {"icmp_exporter_socket_mode", G,
                            "ICMP socket mode per address family (1 for the mode in use)"},
    [METRIC_PROBES] = {"icmp_exporter_probes_total", C,
                       "Probes answered on /probe, by module and result"},
    [METRIC_PROBES_IN_FLIGHT] = {"icmp_exporter_probes_in_flight", G,
                                 "Probes (and rounds of the static targets) currently running"},
    [METRIC_SCRAPE_ROUNDS] = {"icmp_exporter_scrape_rounds_total", C,
                              "Probe rounds of the static targets started (scrapes that overlap "
                              "share one)"},
    [METRIC_SCRAPES_EARLY] = {"icmp_exporter_scrapes_before_round_end_total", C,
                              "/metrics scrapes answered at their deadline, before their round "
                              "ended (those targets show their last completed measurement)"},
    [METRIC_ENGINE_SENT] = {"icmp_exporter_echoes_sent_total", C,
                            "Echo requests sent by the engine"},
    [METRIC_ENGINE_REPLIES] = {"icmp_exporter_replies_total", C,
                               "Settled echoes by outcome (IP_STATUS name), timeouts included"},
    [METRIC_ENGINE_DUPLICATES] = {"icmp_exporter_duplicates_total", C,
                                  "Duplicate echo replies received"},
    [METRIC_ENGINE_LATE] = {"icmp_exporter_late_replies_total", C,
                            "Echo replies received after their echo had timed out"},
    [METRIC_ENGINE_CORRUPT] = {"icmp_exporter_corrupt_replies_total", C,
                               "Replies to our echoes with wrong data or source"},
    [METRIC_ENGINE_FOREIGN] = {"icmp_exporter_foreign_packets_total", C,
                               "ICMP packets that were not replies to our echoes"},
    [METRIC_ENGINE_SEND_ERRORS] = {"icmp_exporter_send_errors_total", C,
                                   "Echo requests the kernel refused to send"},
    [METRIC_HTTP_REQUESTS] = {"icmp_exporter_http_requests_total", C,
                              "HTTP requests answered, by status code"},
    [METRIC_HTTP_REQUEST_TIMEOUTS] = {"icmp_exporter_http_request_timeouts_total", C,
                                      "Connections cut for not delivering a whole request within "
                                      "limits.request_timeout"},
    [METRIC_RESOLVER_QUEUE_FULL] = {"icmp_exporter_resolver_queue_full_total", C,
                                    "Probes of names refused because the name lookups waiting "
                                    "filled the resolver's queue"},
    [METRIC_RESOLVER_TIMEOUTS] = {"icmp_exporter_resolver_timeouts_total", C,
                                  "Probes of names that did not resolve before the probe's "
                                  "deadline"},
    [METRIC_CONFIG_RELOAD_OK] = {"icmp_exporter_config_last_reload_successful", G,
                                 "Whether the last configuration reload attempt was successful"},
    [METRIC_CONFIG_RELOAD_TIME] = {"icmp_exporter_config_last_reload_success_timestamp_seconds", G,
                                   "Timestamp of the last successful configuration reload"},
    [METRIC_CONFIG_RELOAD_FAILURES] = {"icmp_exporter_config_reload_failures_total", C,
                                       "Configuration reloads that failed"},
};

const struct metric_desc *metric_desc(enum metric_id id)
{
    assert((unsigned)id < METRIC_COUNT && catalog[id].name != NULL);
    return &catalog[id];
}

int metric_family(struct prom_writer *w, enum metric_id id)
{
    const struct metric_desc *d = metric_desc(id);

    return prom_family(w, d->name, d->type, d->help, NULL);
}

int metric_value(struct prom_writer *w, enum metric_id id, double value)
{
    metric_family(w, id);
    return prom_sample(w, metric_desc(id)->name, NULL, 0, value);
}

int metric_sample(struct prom_writer *w, enum metric_id id, const struct prom_label *a, size_t n_a,
                  const struct prom_label *b, size_t n_b, double value)
{
    return prom_sample2(w, metric_desc(id)->name, a, n_a, b, n_b, value);
}
