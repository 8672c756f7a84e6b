/*
 * Unit tests of the exporter's library (icmp_exporter_lib) without HTTP: the scrape
 * deadline, /probe's parameters, a probe's settings and its rendering, the static targets'
 * table (folding, carrying counters over a reload, streaming its series in pieces), and
 * the per-module probe counters, and the limit on repeated log lines.
 *
 * Expected numbers are chosen to be exact in binary (RTTs of 2^-9 and 3 * 2^-9 seconds),
 * so every value below is the arithmetic's own result, not a rounding accident.
 */
#include "config/config.h"
#include "exporter/continuous.h"
#include "exporter/exporter.h"
#include "exporter/metrics.h"
#include "exporter/probe_internal.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define SEC 1000000000LL

static struct config *load(const char *json)
{
    struct config *cfg = NULL;
    char err[512];

    if (config_load_text("test.json", json, strlen(json), &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return cfg;
}

static const char base_config[] =
    "{\"modules\": {\"icmp\": {}, \"m\": {\"timeout\": \"5s\", \"icmp\": {\"count\": 4, "
    "\"interval\": \"100ms\", \"echo_timeout\": \"1s\", \"buckets\": [0.002, 0.01]}}},"
    " \"targets\": [{\"target\": \"198.18.0.1\", \"module\": \"m\", \"labels\": {\"site\": "
    "\"a\"}}, {\"target\": \"198.18.0.2\", \"module\": \"icmp\"}],"
    " \"limits\": {\"max_echoes_per_probe\": 20}}";

/* ---- the scrape deadline ---- */

static void test_deadline(void)
{
    int64_t ns = -1;
    char err[128] = "";

    CHECK_EQ(probe_deadline(NULL, SEC / 2, &ns, err, sizeof(err)), 0);
    CHECK_EQ(ns, 0); /* no header: no cap */
    CHECK_EQ(probe_deadline("10", SEC / 2, &ns, err, sizeof(err)), 0);
    CHECK_EQ(ns, 9 * SEC + SEC / 2);
    CHECK_EQ(probe_deadline("2.5", 0, &ns, err, sizeof(err)), 0);
    CHECK_EQ(ns, 2 * SEC + SEC / 2);
    CHECK_EQ(probe_deadline("abc", 0, &ns, err, sizeof(err)), -EINVAL);
    CHECK_STR_EQ(err, "X-Prometheus-Scrape-Timeout-Seconds is not a number of seconds");
    CHECK_EQ(probe_deadline("-1", 0, &ns, err, sizeof(err)), -EINVAL);
    CHECK_EQ(probe_deadline("1e400", 0, &ns, err, sizeof(err)), -EINVAL);
    CHECK_EQ(probe_deadline("0.2", SEC / 2, &ns, err, sizeof(err)), -EINVAL);
    CHECK_STR_EQ(err, "scrape timeout is not above the timeout offset");
    CHECK_EQ(ns, 0); /* never a deadline from a refused header */
}

/* ---- /probe's parameters ---- */

static int check(const struct config *cfg, struct probe_params p, struct probe_settings *s,
                 char *err, size_t errlen)
{
    return probe_check_params(cfg, SEC / 2, &p, s, err, errlen);
}

static void test_params(void)
{
    struct config *cfg = load(base_config);
    struct probe_settings s;
    char err[256];

    CHECK_EQ(check(cfg, (struct probe_params){0}, &s, err, sizeof(err)), -EINVAL);
    CHECK_STR_EQ(err, "target parameter is missing");
    CHECK_EQ(check(cfg, (struct probe_params){.target = "a b"}, &s, err, sizeof(err)), -EINVAL);
    CHECK_STR_EQ(err, "target parameter is not a host name or IP address");
    CHECK_EQ(
        check(cfg, (struct probe_params){.target = "x", .module = "no\npe"}, &s, err, sizeof(err)),
        -EINVAL);
    CHECK_STR_EQ(err, "unknown module \"no?pe\"");
    CHECK_EQ(check(cfg, (struct probe_params){.target = "x", .count = "21"}, &s, err, sizeof(err)),
             -EINVAL);
    CHECK_STR_EQ(err, "count must be an integer in 1..20");
    CHECK_EQ(
        check(cfg, (struct probe_params){.target = "x", .interval = "61s"}, &s, err, sizeof(err)),
        -EINVAL);
    CHECK_EQ(check(cfg, (struct probe_params){.target = "x", .module = "m", .timeout = "6s"}, &s,
                   err, sizeof(err)),
             -EINVAL);
    CHECK_STR_EQ(err, "timeout must be a duration like 2s, at most the module's 5s");

    /* The module's own settings. */
    CHECK_EQ(check(cfg, (struct probe_params){.target = "198.18.0.1", .module = "m"}, &s, err,
                   sizeof(err)),
             0);
    CHECK_EQ(s.count, 4);
    CHECK_EQ(s.interval_ns, SEC / 10);
    CHECK_EQ(s.timeout_ns, 5 * SEC);
    CHECK_EQ(s.echo_timeout_ns, SEC); /* the module's wait, which fits */
    CHECK(!s.debug);

    /* The scrape's header caps the whole probe, and each echo waits what is left. */
    CHECK_EQ(check(cfg,
                   (struct probe_params){
                       .target = "x", .module = "m", .scrape_timeout = "1", .debug = "true"},
                   &s, err, sizeof(err)),
             0);
    CHECK_EQ(s.timeout_ns, SEC / 2);
    CHECK_EQ(s.echo_timeout_ns, SEC / 2 - 3 * SEC / 10);
    CHECK(s.debug);
    CHECK_EQ(check(cfg,
                   (struct probe_params){
                       .target = "x", .module = "m", .count = "10", .scrape_timeout = "1"},
                   &s, err, sizeof(err)),
             -EINVAL);
    CHECK_STR_EQ(err, "10 echoes 0.1s apart do not fit in the timeout of 0.5s; lower count or "
                      "interval");
    config_unref(cfg);
}

static void test_static_settings(void)
{
    struct config *cfg = load(base_config);
    const struct config_module *m = config_module_find(cfg, "m");
    struct probe_settings s;

    probe_settings_of_module(m, 0, &s);
    CHECK_EQ(s.timeout_ns, 5 * SEC);
    CHECK_EQ(s.echo_timeout_ns, SEC);
    probe_settings_of_module(m, SEC / 4, &s);
    CHECK_EQ(s.timeout_ns, SEC / 4);
    CHECK_EQ(s.echo_timeout_ns, SEC / 4); /* never waits past the scrape */
    config_unref(cfg);
}

/* ---- a probe's rendering ---- */

/* A probe of 198.18.0.1 with module m as if it had run: two replies, a timeout, and an echo
 * the kernel refused (no route). */
static struct probe *ran_probe(struct config *cfg)
{
    struct probe_settings s;
    struct probe *p;

    probe_settings_of_module(config_module_find(cfg, "m"), 0, &s);
    p = probe__alloc(NULL, cfg, "198.18.0.1", &s);
    REQUIRE(p != NULL);
    p->start_ns = SEC;
    p->resolved_ns = SEC + SEC / 4;
    p->end_ns = 2 * SEC;
    p->resolved = true;
    p->ran = true;
    REQUIRE(icmp_addr_parse("198.18.0.1", &p->res.addr) == 0);
    p->results[0] = (struct icmp_echo_result){
        .status = ICMP_STATUS_SUCCESS, .rtt_ns = 1953125, .sent = true, .ttl = 64, .seq = 1};
    p->results[1] = (struct icmp_echo_result){
        .status = ICMP_STATUS_SUCCESS, .rtt_ns = 5859375, .sent = true, .ttl = 63, .seq = 2};
    p->results[2] =
        (struct icmp_echo_result){.status = ICMP_STATUS_TIMED_OUT, .rtt_ns = -1, .sent = true};
    p->results[3] = (struct icmp_echo_result){
        .status = ICMP_STATUS_DEST_HOST_UNREACHABLE, .rtt_ns = -1, .send_errno = EHOSTUNREACH};
    p->job.received = 2;
    p->job.duplicates = 2;
    return p;
}

/* ---- the engine flow of a /probe client ---- */

static uint64_t flow_of(const char *text, uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};

    if (inet_pton(AF_INET, text, &sin.sin_addr) == 1)
        return probe_client_flow((const struct sockaddr *)&sin);
    REQUIRE(inet_pton(AF_INET6, text, &sin6.sin6_addr) == 1);
    return probe_client_flow((const struct sockaddr *)&sin6);
}

static void test_client_flow(void)
{
    const char *addrs[] = {"127.0.0.2", "127.0.0.3",   "198.18.0.1",
                           "::1",       "2001:db8::1", "2001:db8:0:1::1"};

    /* A client is its address, whatever its port; never 0 (a flow per job) nor the static
     * targets' flow. */
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        uint64_t f = flow_of(addrs[i], 40000);
        CHECK(f != 0 && f != PROBE_FLOW_STATIC);
        CHECK_EQ(flow_of(addrs[i], 40001), f);
        for (size_t k = 0; k < i; k++)
            CHECK(flow_of(addrs[k], 40000) != f);
    }
    /* An IPv6 client is its /64; a v4-mapped address is the IPv4 client. */
    CHECK_EQ(flow_of("2001:db8::1", 1), flow_of("2001:db8::ffff:2", 2));
    CHECK_EQ(flow_of("::ffff:127.0.0.2", 1), flow_of("127.0.0.2", 2));
    CHECK_EQ(probe_client_flow(NULL), 0);
}

static void test_render(void)
{
    static const char want[] =
        "# HELP probe_success Whether the probe got at least one echo reply\n"
        "# TYPE probe_success gauge\n"
        "probe_success 1\n"
        "# HELP probe_duration_seconds How long the probe took to complete in seconds\n"
        "# TYPE probe_duration_seconds gauge\n"
        "probe_duration_seconds 1\n"
        "# HELP probe_timeout_seconds How long the probe could take in seconds\n"
        "# TYPE probe_timeout_seconds gauge\n"
        "probe_timeout_seconds 5\n"
        "# HELP probe_dns_lookup_time_seconds Returns the time taken for probe dns lookup in "
        "seconds\n"
        "# TYPE probe_dns_lookup_time_seconds gauge\n"
        "probe_dns_lookup_time_seconds 0.25\n"
        "# HELP probe_ip_protocol Specifies whether probe ip protocol is IP4 or IP6\n"
        "# TYPE probe_ip_protocol gauge\n"
        "probe_ip_protocol 4\n"
        "# HELP probe_ip_addr_hash Specifies the hash of IP address\n"
        "# TYPE probe_ip_addr_hash gauge\n"
        "probe_ip_addr_hash 410016390\n"
        "# HELP probe_icmp_duration_seconds Duration of icmp request by phase\n"
        "# TYPE probe_icmp_duration_seconds gauge\n"
        "probe_icmp_duration_seconds{phase=\"resolve\"} 0.25\n"
        "probe_icmp_duration_seconds{phase=\"setup\"} 0\n"
        "probe_icmp_duration_seconds{phase=\"rtt\"} 0.00390625\n"
        "# HELP probe_icmp_reply_hop_limit Replied packet hop limit (TTL for ipv4)\n"
        "# TYPE probe_icmp_reply_hop_limit gauge\n"
        "probe_icmp_reply_hop_limit 63\n"
        "# HELP probe_icmp_echoes_sent Echo requests sent by this probe\n"
        "# TYPE probe_icmp_echoes_sent gauge\n"
        "probe_icmp_echoes_sent 3\n"
        "# HELP probe_icmp_echoes_unsent Echo requests of this probe not sent before its "
        "deadline (the packet budget went to other probes first)\n"
        "# TYPE probe_icmp_echoes_unsent gauge\n"
        "probe_icmp_echoes_unsent 0\n"
        "# HELP probe_icmp_echoes_received Echo replies received by this probe\n"
        "# TYPE probe_icmp_echoes_received gauge\n"
        "probe_icmp_echoes_received 2\n"
        "# HELP probe_icmp_loss_ratio Share of echoes sent that got no echo reply (0-1; NaN when "
        "none could be sent)\n"
        "# TYPE probe_icmp_loss_ratio gauge\n"
        "probe_icmp_loss_ratio 0.5\n"
        "# HELP probe_icmp_rtt_min_seconds Smallest round-trip time of the probe\n"
        "# TYPE probe_icmp_rtt_min_seconds gauge\n"
        "probe_icmp_rtt_min_seconds 0.001953125\n"
        "# HELP probe_icmp_rtt_avg_seconds Mean round-trip time of the probe\n"
        "# TYPE probe_icmp_rtt_avg_seconds gauge\n"
        "probe_icmp_rtt_avg_seconds 0.00390625\n"
        "# HELP probe_icmp_rtt_max_seconds Largest round-trip time of the probe\n"
        "# TYPE probe_icmp_rtt_max_seconds gauge\n"
        "probe_icmp_rtt_max_seconds 0.005859375\n"
        "# HELP probe_icmp_rtt_stddev_seconds Population standard deviation of the probe's "
        "round-trip times\n"
        "# TYPE probe_icmp_rtt_stddev_seconds gauge\n"
        "probe_icmp_rtt_stddev_seconds 0.001953125\n"
        "# HELP probe_icmp_rtt_seconds Round-trip times of the probe's echo replies\n"
        "# TYPE probe_icmp_rtt_seconds histogram\n"
        "probe_icmp_rtt_seconds_bucket{le=\"0.002\"} 1\n"
        "probe_icmp_rtt_seconds_bucket{le=\"0.01\"} 2\n"
        "probe_icmp_rtt_seconds_bucket{le=\"+Inf\"} 2\n"
        "probe_icmp_rtt_seconds_sum 0.0078125\n"
        "probe_icmp_rtt_seconds_count 2\n"
        "# HELP probe_icmp_replies Echoes of this probe by outcome (IP_STATUS name)\n"
        "# TYPE probe_icmp_replies gauge\n"
        "probe_icmp_replies{status=\"success\"} 2\n"
        "probe_icmp_replies{status=\"dest_host_unreachable\"} 1\n"
        "probe_icmp_replies{status=\"timed_out\"} 1\n"
        "# HELP probe_icmp_duplicates Duplicate echo replies seen by this probe\n"
        "# TYPE probe_icmp_duplicates gauge\n"
        "probe_icmp_duplicates 2\n";
    struct config *cfg = load(base_config);
    struct probe *p = ran_probe(cfg);
    struct text_buf b;
    struct prom_writer w;
    char err[128];

    text_buf_init(&b, 1 << 20);
    prom_writer_init(&w, &b, PROM_FORMAT_TEXT);
    CHECK_EQ(probe_render(p, &w), 0);
    CHECK_STR_EQ(text_buf_data(&b), want);
    CHECK_EQ(probe_error(p, err, sizeof(err)), 0);
    CHECK(probe_success(p));

    /* Denied by allowed_targets: the one error a finished probe can have. */
    p->denied = true;
    CHECK_EQ(probe_error(p, err, sizeof(err)), -EACCES);
    CHECK_STR_EQ(err, "target 198.18.0.1 (198.18.0.1) is not in allowed_targets");

    /* A dead host: every echo timed out. The rtt phase is blackbox's 0, never the time
     * waited for nothing. */
    text_buf_reset(&b);
    for (int i = 0; i < 4; i++)
        p->results[i] =
            (struct icmp_echo_result){.status = ICMP_STATUS_TIMED_OUT, .rtt_ns = -1, .sent = true};
    p->job.received = 0;
    CHECK_EQ(probe_render(p, &w), 0);
    CHECK(strstr(text_buf_data(&b), "probe_success 0\n") != NULL);
    CHECK(strstr(text_buf_data(&b), "probe_icmp_duration_seconds{phase=\"rtt\"} 0\n") != NULL);
    CHECK(strstr(text_buf_data(&b), "probe_icmp_loss_ratio 1\n") != NULL);

    /* Echoes the packet budget left unsent (sent false, no send error) are no loss: two
     * unsent, one answered, one timed out is a loss of 0.5 with 2 unsent; all four unsent is
     * no loss ratio at all (NaN), not a dead host's 1. */
    text_buf_reset(&b);
    p->results[0] = (struct icmp_echo_result){
        .status = ICMP_STATUS_SUCCESS, .rtt_ns = 1000000, .sent = true, .ttl = 64};
    for (int i = 2; i < 4; i++)
        p->results[i] = (struct icmp_echo_result){
            .status = ICMP_STATUS_TIMED_OUT, .rtt_ns = -1, .sent_ns = -1, .ttl = -1};
    p->job.received = 1;
    CHECK_EQ(probe_render(p, &w), 0);
    CHECK(strstr(text_buf_data(&b), "probe_success 1\n") != NULL);
    CHECK(strstr(text_buf_data(&b), "probe_icmp_echoes_sent 2\n") != NULL);
    CHECK(strstr(text_buf_data(&b), "probe_icmp_echoes_unsent 2\n") != NULL);
    CHECK(strstr(text_buf_data(&b), "probe_icmp_loss_ratio 0.5\n") != NULL);
    text_buf_reset(&b);
    for (int i = 0; i < 4; i++)
        p->results[i] = (struct icmp_echo_result){
            .status = ICMP_STATUS_TIMED_OUT, .rtt_ns = -1, .sent_ns = -1, .ttl = -1};
    p->job.received = 0;
    CHECK_EQ(probe_render(p, &w), 0);
    CHECK(strstr(text_buf_data(&b), "probe_success 0\n") != NULL);
    CHECK(strstr(text_buf_data(&b), "probe_icmp_echoes_sent 0\n") != NULL);
    CHECK(strstr(text_buf_data(&b), "probe_icmp_echoes_unsent 4\n") != NULL);
    CHECK(strstr(text_buf_data(&b), "probe_icmp_loss_ratio NaN\n") != NULL);
    text_buf_reset(&b);
    CHECK_EQ(probe_render_debug(p, &b), 0);
    CHECK(strstr(text_buf_data(&b), "echo 3: not sent (no send slot before the deadline") != NULL);

    /* A probe whose name did not resolve: no protocol, no hash, a loss of 1. */
    text_buf_reset(&b);
    p->resolved = p->ran = p->denied = false;
    p->resolved_ns = 0;
    p->job.received = 0;
    CHECK_EQ(probe_render(p, &w), 0);
    CHECK(strstr(text_buf_data(&b), "probe_success 0\n") != NULL);
    CHECK(strstr(text_buf_data(&b), "probe_ip_protocol") == NULL);
    CHECK(strstr(text_buf_data(&b), "probe_icmp_loss_ratio 1\n") != NULL);
    CHECK(strstr(text_buf_data(&b), "probe_icmp_duplicates 0\n") != NULL);
    CHECK(strstr(text_buf_data(&b), "probe_icmp_duration_seconds{phase=\"rtt\"} 0\n") != NULL);
    text_buf_cleanup(&b);
    probe_free(p);
    config_unref(cfg);
}

/* ---- the static targets' table ---- */

/* The whole series of table, rendered min_bytes at a time (SIZE_MAX: at once). */
static char *render_targets(struct target_table *table, size_t min_bytes)
{
    struct metrics_cursor c;
    struct text_buf b;
    struct prom_writer w;
    size_t len;
    int pieces = 0;

    text_buf_init(&b, 1 << 20);
    prom_writer_init(&w, &b, PROM_FORMAT_TEXT);
    REQUIRE(metrics_cursor_init(&c, table, PROM_FORMAT_TEXT) == 0);
    while (!metrics_cursor_done(&c) && pieces++ < 10000)
        REQUIRE(metrics_render_targets_next(&c, &w, min_bytes) == 0);
    metrics_cursor_cleanup(&c);
    return text_buf_release(&b, &len);
}

static void test_target_table(void)
{
    struct config *a = load(base_config);
    struct config *b = load("{\"modules\": {\"icmp\": {}, \"m\": {\"timeout\": \"5s\", \"icmp\": "
                            "{\"count\": 4, \"interval\": \"100ms\", \"echo_timeout\": \"1s\", "
                            "\"buckets\": [0.002, 0.01]}}}, \"targets\": [{\"target\": "
                            "\"198.18.0.2\", \"module\": \"icmp\", \"labels\": {\"new\": \"x\"}}, "
                            "{\"target\": \"198.18.0.1\", \"module\": \"m\", \"labels\": "
                            "{\"site\": \"a\"}}]}");
    struct target_table *ta = target_table_new(a, NULL), *tb;
    struct probe *p = ran_probe(a);
    struct echo_summary s;
    const struct icmp_addr *addr;
    uint32_t dups;
    char *whole, *pieces;

    REQUIRE(ta != NULL);
    CHECK_EQ(ta->n, 2);
    probe_summary(p, &s, &dups, &addr);
    CHECK_EQ(target_state_fold(&ta->states[0], config_module_find(a, "m"), &s, dups, true, addr),
             0);
    CHECK_EQ(target_state_fold(&ta->states[0], config_module_find(a, "m"), &s, dups, true, addr),
             0);
    CHECK_EQ(ta->states[0].sent, 6);
    CHECK_EQ(target_replies(&ta->states[0], ICMP_STATUS_SUCCESS), 4);
    CHECK_EQ(target_replies(&ta->states[0], ICMP_STATUS_TIMED_OUT), 2);
    CHECK_EQ(target_replies(&ta->states[0], ICMP_STATUS_DEST_HOST_UNREACHABLE), 2);
    CHECK_EQ(ta->states[0].duplicates, 4);
    CHECK_EQ(ta->states[0].rtt_buckets[0], 2);
    CHECK_EQ(ta->states[0].rtt_buckets[1], 2);
    CHECK_STR_EQ(ta->states[0].ip, "198.18.0.1");
    CHECK(!ta->states[1].scraped);

    /* Streamed a byte at a time or at once: the same text. */
    whole = render_targets(ta, SIZE_MAX);
    pieces = render_targets(ta, 1);
    REQUIRE(whole != NULL && pieces != NULL);
    CHECK_STR_EQ(pieces, whole);
    CHECK(strstr(whole, "icmp_target_echoes_sent_total{target=\"198.18.0.1\",module=\"m\",ip="
                        "\"198.18.0.1\",ip_version=\"4\",site=\"a\"} 6\n") != NULL);
    CHECK(strstr(whole, "icmp_target_replies_total{target=\"198.18.0.1\",module=\"m\",ip="
                        "\"198.18.0.1\",ip_version=\"4\",status=\"dest_host_unreachable\","
                        "site=\"a\"} 2\n") != NULL);
    CHECK(strstr(whole, "icmp_target_rtt_stddev_seconds{target=\"198.18.0.1\",module=\"m\",ip="
                        "\"198.18.0.1\",ip_version=\"4\",site=\"a\"} 0.001953125\n") != NULL);
    CHECK(strstr(whole, "target=\"198.18.0.2\"") == NULL);            /* never scraped: no series */
    CHECK(strstr(whole, "icmp_target_echoes_unsent_total{") == NULL); /* none unsent */
    free(whole);
    free(pieces);

    /* A probe that tried nothing (the packet budget ran out before its deadline) measured
     * nothing: the last measurement stands, only the unsent count moves. */
    {
        struct echo_summary none = {.unsent = 2, .hop_limit = -1};
        struct target_state before = ta->states[0];
        CHECK_EQ(
            target_state_fold(&ta->states[0], config_module_find(a, "m"), &none, 0, false, addr),
            0);
        CHECK_EQ(ta->states[0].unsent, 2);
        CHECK_EQ(ta->states[0].sent, before.sent);
        CHECK_EQ(ta->states[0].success, before.success);
        CHECK(ta->states[0].loss_ratio == before.loss_ratio);
        CHECK_EQ(target_replies(&ta->states[0], ICMP_STATUS_TIMED_OUT), 2);
        whole = render_targets(ta, SIZE_MAX);
        REQUIRE(whole != NULL);
        CHECK(strstr(whole, "icmp_target_echoes_unsent_total{target=\"198.18.0.1\",module=\"m\","
                            "ip=\"198.18.0.1\",ip_version=\"4\",site=\"a\"} 2\n") != NULL);
        CHECK(strstr(whole, "icmp_target_success{target=\"198.18.0.1\",module=\"m\",ip=\"198.18."
                            "0.1\",ip_version=\"4\",site=\"a\"} 1\n") != NULL);
        free(whole);
    }

    /* A reload: the unchanged target (now second) keeps its counters; the changed one
     * (new labels) starts at zero. */
    tb = target_table_new(b, ta);
    REQUIRE(tb != NULL);
    CHECK_EQ(tb->states[1].sent, 6);
    CHECK_EQ(target_replies(&tb->states[1], ICMP_STATUS_DEST_HOST_UNREACHABLE), 2);
    CHECK_EQ(tb->states[1].rtt_buckets[1], 2);
    CHECK(tb->states[1].rtt_buckets != ta->states[0].rtt_buckets);
    CHECK_EQ(tb->states[0].sent, 0);
    /* ... and says whence (the continuous targets' schedule keeps their phase by it). */
    CHECK(tb->carried_table == ta);
    CHECK_EQ(tb->carried_from[1], 0u);
    CHECK_EQ(tb->carried_from[0], SIZE_MAX);
    CHECK(ta->carried_table == NULL);
    target_table_unref(ta);
    CHECK_EQ(tb->states[1].sent, 6); /* its own copy outlives the old table */
    target_table_unref(tb);
    probe_free(p);
    config_unref(a);
    config_unref(b);
}

/* ---- /probe counters per module ---- */

/* Counts the lines of text that start with prefix. */
static int lines_with(const char *text, const char *prefix)
{
    int n = 0;

    for (const char *l = text; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        n += strncmp(l, prefix, strlen(prefix)) == 0;
    return n;
}

static void test_module_counters(void)
{
    char name[129], line[256], err[256];
    struct exporter x;
    struct exporter_options o = {.log = {.out = stderr}};
    struct text_buf b;
    struct prom_writer w;
    int rc;

    memset(name, 'm', 128);
    name[128] = '\0';
    rc = exporter_open(&x, &o, load(base_config), err, sizeof(err));
    if (rc == -EACCES) {
        exporter_close(&x);
        fprintf(stderr, "module counters: no ICMP socket here, skipped\n");
        return;
    }
    REQUIRE(rc == 0);
    /* A module name of 128 bytes (valid configuration), probed three times, is one row;
     * more than 64 modules are all counted. */
    for (int i = 0; i < 3; i++)
        exporter_count_probe(&x, name, "198.18.0.1", true, 0.1);
    for (int i = 0; i < 70; i++) {
        snprintf(line, sizeof(line), "mod%d", i);
        exporter_count_probe(&x, line, "198.18.0.1", i % 2 == 0, 0.1);
    }
    text_buf_init(&b, 1 << 20);
    prom_writer_init(&w, &b, PROM_FORMAT_TEXT);
    CHECK_EQ(metrics_render_self(&x, &w), 0);
    snprintf(line, sizeof(line), "icmp_exporter_probes_total{module=\"%s\",result=\"success\"} 3\n",
             name);
    CHECK(strstr(text_buf_data(&b), line) != NULL);
    CHECK_EQ(lines_with(text_buf_data(&b), "icmp_exporter_probes_total{"), 2 * 71);
    CHECK(strstr(text_buf_data(&b),
                 "icmp_exporter_probes_total{module=\"mod69\",result=\"failure\"} 1\n") != NULL);
    CHECK_EQ(x.history_len, 16);
    text_buf_cleanup(&b);
    exporter_close(&x);
}

/* ---- continuous targets: the echoes a target may have in flight ---- */

static void test_continuous_slots(void)
{
    struct config *cfg = load("{\"modules\": {\"a\": {\"mode\": \"continuous\"}, \"b\": {\"mode\": "
                              "\"continuous\", \"icmp\": {\"interval\": \"100ms\", "
                              "\"echo_timeout\": \"150ms\"}}, \"c\": {\"mode\": \"continuous\", "
                              "\"icmp\": {\"interval\": \"100ms\", \"echo_timeout\": \"1s\"}}}}");

    CHECK_EQ(continuous_slots(config_module_find(cfg, "a")), 2u);  /* waits one interval */
    CHECK_EQ(continuous_slots(config_module_find(cfg, "b")), 3u);  /* 1.5 intervals */
    CHECK_EQ(continuous_slots(config_module_find(cfg, "c")), 11u); /* the most: 10 */
    config_unref(cfg);
}

/* Reads f from its start: lines holding needle. */
static int file_lines_with(FILE *f, const char *needle)
{
    char line[8192];
    int n = 0;

    rewind(f);
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, needle) != NULL;
    return n;
}

/* A line logged 1000 times in a row is written LOG_REPEAT_BURST times, then counted once;
 * other lines meanwhile pass; both formats stay one valid line each. */
static void test_log_repeat(void)
{
    for (int format = LOG_FORMAT_LOGFMT; format <= LOG_FORMAT_JSON; format++) {
        FILE *f = tmpfile();
        struct log_config log = {.level = LOG_LEVEL_INFO, .format = format, .out = f};
        char count[32];

        REQUIRE(f != NULL);
        REQUIRE(log_repeat_new(&log.repeat) == 0);
        for (int i = 0; i < 1000; i++) {
            log_write(&log, LOG_LEVEL_WARN, "http server", "err", "Too many open files", NULL);
            if (i % 100 == 0)
                log_write(&log, LOG_LEVEL_INFO, "other", "n", i == 0 ? "0" : "1", NULL);
        }
        log_write(&log, LOG_LEVEL_DEBUG, "below the level", NULL);
        CHECK_EQ(file_lines_with(f, "Too many open files"), LOG_REPEAT_BURST);
        CHECK_EQ(file_lines_with(f, "other"), 10); /* "n=1" 9 times, "n=0" once */
        log_repeat_flush(&log);
        snprintf(count, sizeof(count),
                 format == LOG_FORMAT_JSON ? "\"repeated\":\"%d\"}" : " repeated=%d\n",
                 1000 - LOG_REPEAT_BURST);
        CHECK_EQ(file_lines_with(f, count), 1);
        CHECK_EQ(file_lines_with(f, "Too many open files"), LOG_REPEAT_BURST + 1);
        CHECK_EQ(file_lines_with(f, format == LOG_FORMAT_JSON ? "{\"ts\":\"" : "ts="),
                 LOG_REPEAT_BURST + 11);
        log_repeat_flush(&log); /* nothing more to say */
        CHECK_EQ(file_lines_with(f, "repeated"), 1);
        log_repeat_free(log.repeat);
        fclose(f);
    }
}

int main(void)
{
    test_log_repeat();
    test_deadline();
    test_params();
    test_static_settings();
    test_render();
    test_client_flow();
    test_target_table();
    test_module_counters();
    test_continuous_slots();
    return TEST_DONE();
}
