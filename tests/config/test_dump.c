/*
 * config_dump_json: the exact JSON of a configuration with every section (what GET /config
 * serves), and the round trip: the dump loads back into the same configuration and dumps
 * again to the same bytes. Basic-auth hashes are dumped as "<secret>", so the round trip
 * puts the hash back first.
 */
#include "config/config.h"
#include "test.h"

#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

#define HASH "$2b$04$gdBYCu4w1M16Zn0z7b6vlO49av.gUvHoeqVoU46SU8cGdh8IUCmi6"

/* The configuration; %s are the TLS certificate and key paths. */
static const char doc_fmt[] =
    "{\n"
    "  \"modules\": {\n"
    "    \"icmp\": {\"timeout\": \"1m30s\", \"icmp\": {\"preferred_ip_protocol\": \"ip4\",\n"
    "      \"ip_protocol_fallback\": false, \"payload_size\": 56, \"dont_fragment\": true,\n"
    "      \"ttl\": 32, \"count\": 3, \"interval\": \"250ms\", \"tos\": 16,\n"
    "      \"buckets\": [0.0005, 0.001, 0.3, 2.5]}},\n"
    "    \"v6\": {\"timeout\": \"2s\", \"icmp\": {\"echo_timeout\": \"1500ms\",\n"
    "      \"source_ip_address\": \"2001:db8::5\",\n"
    "      \"buckets\": [1e-05, 10]}}\n"
    "  },\n"
    "  \"targets\": [\n"
    "    {\"target\": \"198.18.0.1\", \"labels\": {\"site\": \"lab \\\"1\\\"\", \"z\": \"\"}},\n"
    "    {\"target\": \"2001:db8::1\", \"module\": \"v6\"},\n"
    "    {\"target\": \"probe.example.com\", \"module\": \"v6\", \"labels\": {\"role\": "
    "\"name\"}}\n"
    "  ],\n"
    "  \"limits\": {\n"
    "    \"allowed_targets\": [\"Probe.Example.COM.\", \"198.18.0.0/15\", \"2001:db8::/32\"],\n"
    "    \"max_echoes_per_probe\": 50, \"max_connections_per_ip\": 0, \"request_timeout\": "
    "\"45s\"\n"
    "  },\n"
    "  \"web\": {\n"
    "    \"listen_addresses\": [\"127.0.0.1:9723\", \"[::1]:9723\"],\n"
    "    \"tls_server_config\": {\"cert_file\": \"%s\", \"key_file\": \"%s\"},\n"
    "    \"basic_auth_users\": {\"alice\": \"" HASH "\", \"bob\": \"" HASH "\"}\n"
    "  }\n"
    "}\n";

/* What cJSON_Print makes of it: tabs, defaults filled in, durations in config's spelling,
 * CIDRs before names, hashes hidden. %s as above. */
static const char want_fmt[] =
    "{\n"
    "\t\"modules\":\t{\n"
    "\t\t\"icmp\":\t{\n"
    "\t\t\t\"timeout\":\t\"1m30s\",\n"
    "\t\t\t\"icmp\":\t{\n"
    "\t\t\t\t\"preferred_ip_protocol\":\t\"ip4\",\n"
    "\t\t\t\t\"ip_protocol_fallback\":\tfalse,\n"
    "\t\t\t\t\"payload_size\":\t56,\n"
    "\t\t\t\t\"dont_fragment\":\ttrue,\n"
    "\t\t\t\t\"ttl\":\t32,\n"
    "\t\t\t\t\"count\":\t3,\n"
    "\t\t\t\t\"interval\":\t\"250ms\",\n"
    "\t\t\t\t\"echo_timeout\":\t\"1m29s500ms\",\n"
    "\t\t\t\t\"tos\":\t16,\n"
    "\t\t\t\t\"buckets\":\t[0.0005, 0.001, 0.3, 2.5]\n"
    "\t\t\t}\n"
    "\t\t},\n"
    "\t\t\"v6\":\t{\n"
    "\t\t\t\"timeout\":\t\"2s\",\n"
    "\t\t\t\"icmp\":\t{\n"
    "\t\t\t\t\"preferred_ip_protocol\":\t\"ip6\",\n"
    "\t\t\t\t\"ip_protocol_fallback\":\ttrue,\n"
    "\t\t\t\t\"source_ip_address\":\t\"2001:db8::5\",\n"
    "\t\t\t\t\"payload_size\":\t28,\n"
    "\t\t\t\t\"dont_fragment\":\tfalse,\n"
    "\t\t\t\t\"ttl\":\t64,\n"
    "\t\t\t\t\"count\":\t1,\n"
    "\t\t\t\t\"interval\":\t\"1s\",\n"
    "\t\t\t\t\"echo_timeout\":\t\"1s500ms\",\n"
    "\t\t\t\t\"tos\":\t0,\n"
    "\t\t\t\t\"buckets\":\t[1e-05, 10]\n"
    "\t\t\t}\n"
    "\t\t}\n"
    "\t},\n"
    "\t\"targets\":\t[{\n"
    "\t\t\t\"target\":\t\"198.18.0.1\",\n"
    "\t\t\t\"module\":\t\"icmp\",\n"
    "\t\t\t\"labels\":\t{\n"
    "\t\t\t\t\"site\":\t\"lab \\\"1\\\"\",\n"
    "\t\t\t\t\"z\":\t\"\"\n"
    "\t\t\t}\n"
    "\t\t}, {\n"
    "\t\t\t\"target\":\t\"2001:db8::1\",\n"
    "\t\t\t\"module\":\t\"v6\"\n"
    "\t\t}, {\n"
    "\t\t\t\"target\":\t\"probe.example.com\",\n"
    "\t\t\t\"module\":\t\"v6\",\n"
    "\t\t\t\"labels\":\t{\n"
    "\t\t\t\t\"role\":\t\"name\"\n"
    "\t\t\t}\n"
    "\t\t}],\n"
    "\t\"limits\":\t{\n"
    "\t\t\"allowed_targets\":\t[\"198.18.0.0/15\", \"2001:db8::/32\", \"probe.example.com\"],\n"
    "\t\t\"max_echoes_per_probe\":\t50,\n"
    "\t\t\"max_concurrent_probes\":\t1000,\n"
    "\t\t\"max_targets_per_scrape\":\t10000,\n"
    "\t\t\"max_packets_per_second\":\t100000,\n"
    "\t\t\"max_connections\":\t4096,\n"
    "\t\t\"max_connections_per_ip\":\t0,\n"
    "\t\t\"max_new_connections_per_ip\":\t16,\n"
    "\t\t\"request_timeout\":\t\"45s\"\n"
    "\t},\n"
    "\t\"web\":\t{\n"
    "\t\t\"listen_addresses\":\t[\"127.0.0.1:9723\", \"[::1]:9723\"],\n"
    "\t\t\"tls_server_config\":\t{\n"
    "\t\t\t\"cert_file\":\t\"%s\",\n"
    "\t\t\t\"key_file\":\t\"%s\"\n"
    "\t\t},\n"
    "\t\t\"basic_auth_users\":\t{\n"
    "\t\t\t\"alice\":\t\"<secret>\",\n"
    "\t\t\t\"bob\":\t\"<secret>\"\n"
    "\t\t}\n"
    "\t}\n"
    "}";

static struct config *load(const char *text)
{
    struct config *cfg = NULL;
    char err[512];
    int rc = config_load_text("t.json", text, strlen(text), &cfg, err, sizeof(err));

    if (rc != 0)
        TEST_FAIL_AT("load: %d %s", rc, err);
    return cfg;
}

/* TEXT with every "<secret>" replaced by HASH, malloc'd. */
static char *reveal(const char *text)
{
    static const char secret[] = "\"<secret>\"";
    size_t n = 0, len = strlen(text);
    const char *p;
    char *out, *w;

    for (p = text; (p = strstr(p, secret)) != NULL; p += sizeof(secret) - 1)
        n++;
    out = malloc(len + n * strlen(HASH) + 1);
    REQUIRE(out != NULL);
    for (w = out, p = text;;) {
        const char *s = strstr(p, secret);
        size_t k = s != NULL ? (size_t)(s - p) : strlen(p);
        memcpy(w, p, k);
        w += k;
        if (s == NULL)
            break;
        w += (size_t)snprintf(w, strlen(HASH) + 3, "\"%s\"", HASH);
        p = s + sizeof(secret) - 1;
    }
    *w = '\0';
    return out;
}

static bool same_addr(const struct icmp_addr *a, const struct icmp_addr *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0 &&
           a->scope_id == b->scope_id;
}

static void check_same_module(const struct config_module *a, const struct config_module *b)
{
    CHECK_STR_EQ(a->name, b->name);
    CHECK_EQ(a->timeout_ns, b->timeout_ns);
    CHECK_EQ(a->preferred_ip_protocol, b->preferred_ip_protocol);
    CHECK_EQ(a->ip_protocol_fallback, b->ip_protocol_fallback);
    CHECK_EQ(a->has_source_ip, b->has_source_ip);
    CHECK(!a->has_source_ip || same_addr(&a->source_ip, &b->source_ip));
    CHECK_EQ(a->payload_size, b->payload_size);
    CHECK_EQ(a->dont_fragment, b->dont_fragment);
    CHECK_EQ(a->ttl, b->ttl);
    CHECK_EQ(a->count, b->count);
    CHECK_EQ(a->interval_ns, b->interval_ns);
    CHECK_EQ(a->echo_timeout_ns, b->echo_timeout_ns);
    CHECK_EQ(a->tos, b->tos);
    CHECK_EQ(a->n_buckets, b->n_buckets);
    for (size_t k = 0; k < a->n_buckets && k < b->n_buckets; k++)
        CHECK(a->buckets[k] == b->buckets[k]);
}

static void check_same_target(const struct config_target *a, const struct config_target *b)
{
    CHECK_STR_EQ(a->target, b->target);
    CHECK_EQ(a->is_literal, b->is_literal);
    CHECK(same_addr(&a->addr, &b->addr));
    CHECK_STR_EQ(a->module->name, b->module->name);
    CHECK_EQ(a->n_labels, b->n_labels);
    for (size_t k = 0; k < a->n_labels && k < b->n_labels; k++) {
        CHECK_STR_EQ(a->labels[k].name, b->labels[k].name);
        CHECK_STR_EQ(a->labels[k].value, b->labels[k].value);
    }
}

static void check_same_strings(const char *const *a, size_t na, const char *const *b, size_t nb)
{
    CHECK_EQ(na, nb);
    for (size_t i = 0; i < na && i < nb; i++)
        CHECK_STR_EQ(a[i], b[i]);
}

static void check_same_limits(const struct config_limits *a, const struct config_limits *b)
{
    CHECK_EQ(a->n_allowed_cidrs, b->n_allowed_cidrs);
    for (size_t i = 0; i < a->n_allowed_cidrs && i < b->n_allowed_cidrs; i++) {
        CHECK(same_addr(&a->allowed_cidrs[i].addr, &b->allowed_cidrs[i].addr));
        CHECK_EQ(a->allowed_cidrs[i].prefix_len, b->allowed_cidrs[i].prefix_len);
    }
    check_same_strings(a->allowed_names, a->n_allowed_names, b->allowed_names, b->n_allowed_names);
    CHECK_EQ(a->max_echoes_per_probe, b->max_echoes_per_probe);
    CHECK_EQ(a->max_concurrent_probes, b->max_concurrent_probes);
    CHECK_EQ(a->max_targets_per_scrape, b->max_targets_per_scrape);
    CHECK_EQ(a->max_packets_per_second, b->max_packets_per_second);
    CHECK_EQ(a->max_connections, b->max_connections);
    CHECK_EQ(a->max_connections_per_ip, b->max_connections_per_ip);
    CHECK_EQ(a->max_new_connections_per_ip, b->max_new_connections_per_ip);
    CHECK_EQ(a->request_timeout_ns, b->request_timeout_ns);
}

static void check_same_web(const struct config_web *a, const struct config_web *b)
{
    check_same_strings(a->listen_addresses, a->n_listen_addresses, b->listen_addresses,
                       b->n_listen_addresses);
    CHECK_STR_EQ(a->tls_cert_file, b->tls_cert_file);
    CHECK_STR_EQ(a->tls_key_file, b->tls_key_file);
    CHECK_EQ(a->n_users, b->n_users);
    for (size_t i = 0; i < a->n_users && i < b->n_users; i++) {
        CHECK_STR_EQ(a->users[i].name, b->users[i].name);
        CHECK_STR_EQ(a->users[i].bcrypt_hash, b->users[i].bcrypt_hash);
    }
}

static void check_same(const struct config *a, const struct config *b)
{
    size_t na, nb;
    const struct config_module *ma = config_modules(a, &na), *mb = config_modules(b, &nb);
    const struct config_target *ta, *tb;

    CHECK_EQ(na, nb);
    for (size_t i = 0; i < na && i < nb; i++)
        check_same_module(&ma[i], &mb[i]);
    ta = config_targets(a, &na);
    tb = config_targets(b, &nb);
    CHECK_EQ(na, nb);
    for (size_t i = 0; i < na && i < nb; i++)
        check_same_target(&ta[i], &tb[i]);
    check_same_limits(config_limits(a), config_limits(b));
    check_same_web(config_web(a), config_web(b));
}

/* A file that exists, for the TLS paths (the loader opens them). */
static void temp_file(char *path, size_t size, const char *name)
{
    int fd;

    snprintf(path, size, "/tmp/icmpx_test_dump_%s_XXXXXX", name);
    fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
}

int main(void)
{
    char cert[64], key[64], doc[sizeof(doc_fmt) + 128], want[sizeof(want_fmt) + 128];
    struct config *cfg, *again = NULL;
    char *json = NULL, *json2 = NULL, *revealed;
    size_t len = 0, len2 = 0;

    temp_file(cert, sizeof(cert), "cert");
    temp_file(key, sizeof(key), "key");
    snprintf(doc, sizeof(doc), doc_fmt, cert, key);
    snprintf(want, sizeof(want), want_fmt, cert, key);
    cfg = load(doc);
    REQUIRE(cfg != NULL);

    /* The exact bytes, and the length said. */
    CHECK_EQ(config_dump_json(cfg, &json, &len), 0);
    REQUIRE(json != NULL);
    CHECK_STR_EQ(json, want);
    CHECK_EQ(len, strlen(json));

    /* Round trip: the dump (hashes put back) loads into the same configuration... */
    revealed = reveal(json);
    again = load(revealed);
    REQUIRE(again != NULL);
    check_same(cfg, again);
    /* ...which dumps to the same bytes. */
    CHECK_EQ(config_dump_json(again, &json2, &len2), 0);
    CHECK_STR_EQ(json2, json);
    CHECK_EQ(len2, len);

    /* The embedded default round-trips too (no users, no TLS, no allow-list). */
    {
        struct config *dflt = NULL, *back;
        char err[256], *d = NULL;
        size_t dlen;

        REQUIRE(config_load_default(&dflt, err, sizeof(err)) == 0);
        CHECK_EQ(config_dump_json(dflt, &d, &dlen), 0);
        REQUIRE(d != NULL);
        CHECK(strstr(d, "\"tls_server_config\"") == NULL);
        CHECK(strstr(d, "\"basic_auth_users\"") == NULL);
        CHECK(strstr(d, "\t\t\"allowed_targets\":\t[],\n") != NULL);
        back = load(d);
        if (back != NULL)
            check_same(dflt, back);
        config_unref(back);
        config_unref(dflt);
        free(d);
    }

    CHECK(strlen(config_json_library_version()) > 0);

    free(revealed);
    free(json);
    free(json2);
    config_unref(again);
    config_unref(cfg);
    unlink(cert);
    unlink(key);
    return TEST_DONE();
}
