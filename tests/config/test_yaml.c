/*
 * blackbox_exporter's YAML configuration and exporter-toolkit's web configuration file,
 * table-driven: good documents give the modules blackbox would run (every field, its
 * defaults, Go durations, YAML's scalars, anchors and merge keys) and the warnings for what
 * is skipped; bad ones the exact error line, position included. The web file is loaded
 * from real files in a temporary directory (relative TLS paths, conflicts with the JSON
 * web section).
 */
#include "config/config.h"
#include "test.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MS 1000000LL
#define S  1000000000LL

static struct config *load(const char *doc, char *err, size_t errlen, int *rc)
{
    struct config *cfg = NULL;
    *rc = config_load_yaml("b.yml", doc, strlen(doc), &cfg, err, errlen);
    return cfg;
}

/* Loads DOC, which must load; returns its module NAME (never NULL) and the config. */
static const struct config_module *module_of(const char *doc, const char *name, struct config **cfg)
{
    char err[1024] = "";
    int rc = 0;
    const struct config_module *m;

    *cfg = load(doc, err, sizeof(err), &rc);
    if (rc != 0 || *cfg == NULL) {
        TEST_FAIL_AT("document failed to load: %s\n%s", err, doc);
        exit(1);
    }
    m = config_module_find(*cfg, name);
    if (m == NULL) {
        TEST_FAIL_AT("no module %s in\n%s", name, doc);
        exit(1);
    }
    return m;
}

/* ---- good documents ---- */

/* Debian's /etc/prometheus/blackbox.yml, as prometheus-blackbox-exporter 0.23 installs it. */
static const char debian_blackbox_yml[] = "modules:\n"
                                          "  http_2xx:\n"
                                          "    prober: http\n"
                                          "  http_post_2xx:\n"
                                          "    prober: http\n"
                                          "    http:\n"
                                          "      method: POST\n"
                                          "  tcp_connect:\n"
                                          "    prober: tcp\n"
                                          "  pop3s_banner:\n"
                                          "    prober: tcp\n"
                                          "    tcp:\n"
                                          "      query_response:\n"
                                          "      - expect: \"^+OK\"\n"
                                          "      tls: true\n"
                                          "      tls_config:\n"
                                          "        insecure_skip_verify: false\n"
                                          "  grpc:\n"
                                          "    prober: grpc\n"
                                          "    grpc:\n"
                                          "      tls: true\n"
                                          "      preferred_ip_protocol: \"ip4\"\n"
                                          "  icmp:\n"
                                          "    prober: icmp\n"
                                          "  icmp_ttl5:\n"
                                          "    prober: icmp\n"
                                          "    timeout: 5s\n"
                                          "    icmp:\n"
                                          "      ttl: 5";

static void test_debian_file(void)
{
    static const char *const warnings[] = {
        "b.yml:2:3: modules.http_2xx: skipped: prober \"http\" (icmp_exporter runs icmp modules "
        "only)",
        "b.yml:4:3: modules.http_post_2xx: skipped: prober \"http\" (icmp_exporter runs icmp "
        "modules only)",
        "b.yml:8:3: modules.tcp_connect: skipped: prober \"tcp\" (icmp_exporter runs icmp "
        "modules only)",
        "b.yml:10:3: modules.pop3s_banner: skipped: prober \"tcp\" (icmp_exporter runs icmp "
        "modules only)",
        "b.yml:18:3: modules.grpc: skipped: prober \"grpc\" (icmp_exporter runs icmp modules "
        "only)",
    };
    struct config *cfg = NULL;
    const struct config_module *m = module_of(debian_blackbox_yml, "icmp", &cfg), *all;
    const char *const *w;
    size_t n = 0;

    /* The same modules as the equivalent JSON: a module without a timeout takes the
     * scrape's deadline, as in blackbox (2m caps it without the header); the rest are
     * blackbox's ICMP defaults, which JSON has too. */
    {
        static const char json[] =
            "{\"modules\": {\"icmp\": {\"timeout\": \"2m\"},\n"
            "             \"icmp_ttl5\": {\"timeout\": \"5s\", \"icmp\": {\"ttl\": 5}}}}";
        struct config *eq = NULL;
        const struct config_module *em;
        REQUIRE(config_load_text("eq.json", json, strlen(json), &eq, NULL, 0) == 0);
        em = config_modules(eq, &n);
        REQUIRE(n == 2);
        all = config_modules(cfg, &n);
        REQUIRE(n == 2);
        for (size_t i = 0; i < 2; i++) {
            /* Field by field after the name: both were zeroed (padding too) before filling. */
            size_t from = offsetof(struct config_module, timeout_ns);
            CHECK_STR_EQ(all[i].name, em[i].name);
            if (memcmp((const char *)&all[i] + from, (const char *)&em[i] + from,
                       sizeof(all[i]) - from) != 0)
                TEST_FAIL_AT("module %s differs from the equivalent JSON's", em[i].name);
        }
        config_unref(eq);
    }
    CHECK_EQ(m->timeout_ns, 120 * S);
    CHECK_EQ(m->preferred_ip_protocol, 6);
    CHECK_EQ(m->payload_size, 28);
    CHECK_EQ(m->ttl, 64);
    all = config_modules(cfg, &n);
    CHECK_EQ(n, 2);
    CHECK_STR_EQ(all[0].name, "icmp");
    CHECK_STR_EQ(all[1].name, "icmp_ttl5");
    CHECK(config_module_find(cfg, "http_2xx") == NULL);
    config_targets(cfg, &n);
    CHECK_EQ(n, 0);
    w = config_warnings(cfg, &n);
    CHECK_EQ(n, sizeof(warnings) / sizeof(warnings[0]));
    for (size_t i = 0; i < n && i < sizeof(warnings) / sizeof(warnings[0]); i++)
        CHECK_STR_EQ(w[i], warnings[i]);
    CHECK_EQ(config_web(cfg)->n_listen_addresses, 1);
    CHECK_EQ(config_limits(cfg)->n_allowed_cidrs + config_limits(cfg)->n_allowed_names, 0);
    config_unref(cfg);
}

static void test_every_icmp_key(void)
{
    struct config *cfg = NULL;
    const struct config_module *m = module_of("# blackbox 0.23's whole <icmp_probe>\n"
                                              "modules:\n"
                                              "  ping:\n"
                                              "    prober: icmp\n"
                                              "    timeout: 1m30s\n"
                                              "    icmp:\n"
                                              "      preferred_ip_protocol: ip4\n"
                                              "      ip_protocol_fallback: false\n"
                                              "      source_ip_address: 198.18.0.1\n"
                                              "      payload_size: 1200\n"
                                              "      dont_fragment: true\n"
                                              "      ttl: 12\n",
                                              "ping", &cfg);
    size_t n = 1;

    CHECK_EQ(m->timeout_ns, 90 * S);
    CHECK_EQ(m->preferred_ip_protocol, 4);
    CHECK(!m->ip_protocol_fallback);
    CHECK(m->has_source_ip);
    CHECK_EQ(m->source_ip.family, AF_INET);
    CHECK_EQ(m->source_ip.bytes[0], 198);
    CHECK_EQ(m->source_ip.bytes[3], 1);
    CHECK_EQ(m->payload_size, 1200);
    CHECK(m->dont_fragment);
    CHECK_EQ(m->ttl, 12);
    config_warnings(cfg, &n);
    CHECK_EQ(n, 0);
    config_unref(cfg);
}

struct scalar_case {
    const char *icmp; /* the icmp: section, flow style */
    unsigned ttl, payload;
    bool df, fallback;
    int family;
};

/* YAML's scalars as Go's yaml.v3 reads them into blackbox's fields. */
static const struct scalar_case scalar_cases[] = {
    {"{ttl: 0x10}", 16, 28, false, true, 6},
    {"{ttl: 010}", 8, 28, false, true, 6}, /* YAML 1.1 octal, still read by yaml.v3 */
    {"{ttl: 0o17}", 15, 28, false, true, 6},
    {"{ttl: 0b101}", 5, 28, false, true, 6},
    {"{ttl: 1_0}", 10, 28, false, true, 6},
    {"{ttl: 5.0}", 5, 28, false, true, 6},
    {"{ttl: +7}", 7, 28, false, true, 6},
    {"{ttl: 09}", 9, 28, false, true, 6}, /* not octal: a float */
    {"{ttl: 0}", 64, 28, false, true, 6}, /* blackbox: the system's TTL */
    {"{payload_size: 0}", 64, 28, false, true, 6},
    {"{ttl: ~, payload_size: null}", 64, 28, false, true, 6},
    {"{ttl: , payload_size: }", 64, 28, false, true, 6},
    {"{dont_fragment: yes, ip_protocol_fallback: off}", 64, 28, true, false, 6},
    {"{dont_fragment: True, ip_protocol_fallback: NO}", 64, 28, true, false, 6},
    {"{dont_fragment: on, ip_protocol_fallback: n}", 64, 28, true, false, 6},
    {"{preferred_ip_protocol: 'ip4'}", 64, 28, false, true, 4},
    {"{preferred_ip_protocol: \"ip4\"}", 64, 28, false, true, 4},
    {"{preferred_ip_protocol: !!str ip4}", 64, 28, false, true, 4},
    {"{ttl: !!int \"12\"}", 12, 28, false, true, 6},
    {"~", 64, 28, false, true, 6},
    {"{}", 64, 28, false, true, 6},
};

static void test_scalars(void)
{
    for (size_t i = 0; i < sizeof(scalar_cases) / sizeof(scalar_cases[0]); i++) {
        const struct scalar_case *c = &scalar_cases[i];
        char doc[256];
        struct config *cfg = NULL;
        const struct config_module *m;

        snprintf(doc, sizeof(doc), "modules:\n  m:\n    prober: icmp\n    icmp: %s\n", c->icmp);
        m = module_of(doc, "m", &cfg);
        if (m->ttl != c->ttl || m->payload_size != c->payload || m->dont_fragment != c->df ||
            m->ip_protocol_fallback != c->fallback || m->preferred_ip_protocol != c->family)
            TEST_FAIL_AT("icmp: %s -> ttl %u payload %u df %d fallback %d ip%d", c->icmp, m->ttl,
                         m->payload_size, m->dont_fragment, m->ip_protocol_fallback,
                         m->preferred_ip_protocol);
        config_unref(cfg);
    }
}

struct timeout_case {
    const char *text;
    int64_t ns; /* -1: an error, then the message below */
    const char *error;
};

/* Module timeouts are Go durations (time.ParseDuration), as blackbox reads them. */
static const struct timeout_case timeout_cases[] = {
    {"5s", 5 * S, NULL},
    {"1m30s", 90 * S, NULL},
    {"500ms", 500 * MS, NULL},
    {"1.5s", 1500 * MS, NULL},
    {".5s", 500 * MS, NULL},
    {"1s1m", 61 * S, NULL}, /* Go takes units in any order */
    {"1s1s", 2 * S, NULL},
    {"1h", 3600 * S, NULL},
    {"2500000us", 2500 * MS, NULL},
    {"\"3s\"", 3 * S, NULL},
    {"0s", 120 * S, NULL}, /* none: the scrape's deadline */
    {"\"0\"", 120 * S, NULL},
    {"~", 120 * S, NULL},
    {"5", -1,
     "b.yml:4:14: modules.m.timeout: expected a duration such as \"5s\", \"1.5s\" or \"1m30s\" "
     "(Go's form, as blackbox_exporter reads it), got 5"},
    {"0", -1,
     "b.yml:4:14: modules.m.timeout: expected a duration such as \"5s\", \"1.5s\" or \"1m30s\" "
     "(Go's form, as blackbox_exporter reads it), got 0"},
    {"1d", -1,
     "b.yml:4:14: modules.m.timeout: expected a duration such as \"5s\", \"1.5s\" or \"1m30s\" "
     "(Go's form, as blackbox_exporter reads it), got \"1d\""},
    {"5S", -1,
     "b.yml:4:14: modules.m.timeout: expected a duration such as \"5s\", \"1.5s\" or \"1m30s\" "
     "(Go's form, as blackbox_exporter reads it), got \"5S\""},
    {"true", -1,
     "b.yml:4:14: modules.m.timeout: expected a duration such as \"5s\", \"1.5s\" or \"1m30s\" "
     "(Go's form, as blackbox_exporter reads it), got true"},
    {"-1s", -1, "b.yml:4:14: modules.m.timeout: expected a duration of 0s or more, got \"-1s\""},
    {"61m", -1, "b.yml:4:14: modules.m.timeout: expected a duration of at most 1h, got \"61m\""},
    {"300us", -1,
     "b.yml:4:14: modules.m.timeout: expected a whole number of milliseconds, got \"300us\""},
    {"99999999999h", -1,
     "b.yml:4:14: modules.m.timeout: expected a duration of at most 1h, got \"99999999999h\""},
};

static void test_timeouts(void)
{
    for (size_t i = 0; i < sizeof(timeout_cases) / sizeof(timeout_cases[0]); i++) {
        const struct timeout_case *c = &timeout_cases[i];
        char doc[256], err[1024] = "";
        struct config *cfg;
        int rc = 0;

        snprintf(doc, sizeof(doc), "modules:\n  m:\n    prober: icmp\n    timeout: %s\n", c->text);
        cfg = load(doc, err, sizeof(err), &rc);
        if (c->ns < 0) {
            CHECK_EQ(rc, -EINVAL);
            CHECK_STR_EQ(err, c->error);
        } else if (rc != 0) {
            TEST_FAIL_AT("timeout: %s refused: %s", c->text, err);
        } else if (config_module_find(cfg, "m")->timeout_ns != c->ns) {
            TEST_FAIL_AT("timeout: %s -> %" PRId64 " ns, expected %" PRId64, c->text,
                         config_module_find(cfg, "m")->timeout_ns, c->ns);
        }
        config_unref(cfg);
    }
}

static void test_anchors_and_merge(void)
{
    struct config *cfg = NULL;
    const struct config_module *m = module_of("modules:\n"
                                              "  base: &base\n"
                                              "    prober: icmp\n"
                                              "    timeout: 3s\n"
                                              "    icmp: &v4\n"
                                              "      preferred_ip_protocol: ip4\n"
                                              "      ttl: 7\n"
                                              "  copy: *base\n"
                                              "  longer:\n"
                                              "    <<: *base\n"
                                              "    timeout: 4s\n"
                                              "  merged:\n"
                                              "    timeout: 6s\n"
                                              "    <<: [*base, {timeout: 9s, prober: http}]\n"
                                              "    icmp:\n"
                                              "      <<: *v4\n"
                                              "      ttl: 9\n",
                                              "copy", &cfg);
    size_t n = 1;

    CHECK_EQ(m->timeout_ns, 3 * S);
    CHECK_EQ(m->ttl, 7);
    CHECK_EQ(m->preferred_ip_protocol, 4);
    m = config_module_find(cfg, "longer");
    REQUIRE(m != NULL);
    CHECK_EQ(m->timeout_ns, 4 * S); /* the mapping's own key wins */
    CHECK_EQ(m->ttl, 7);
    m = config_module_find(cfg, "merged");
    REQUIRE(m != NULL);
    CHECK_EQ(m->timeout_ns, 6 * S); /* own key first, then the merged mappings in order */
    CHECK_EQ(m->ttl, 9);
    CHECK_EQ(m->preferred_ip_protocol, 4);
    config_modules(cfg, &n);
    CHECK_EQ(n, 4);
    config_unref(cfg);
}

static void test_layouts(void)
{
    /* Flow style, a document marker, comments, a UTF-8 BOM, CRLF line ends: one module. */
    static const char *const docs[] = {
        "{modules: {m: {prober: icmp, icmp: {ttl: 3}}}}",
        "---\n# comment\nmodules:   # trailing\n  m:\n    prober: icmp\n    icmp:\n      ttl: "
        "3\n...\n",
        "\xef\xbb\xbfmodules:\n  m:\n    prober: icmp\n    icmp:\n      ttl: 3\n",
        "modules:\r\n  m:\r\n    prober: icmp\r\n    icmp:\r\n      ttl: 3\r\n",
        "modules:\n  \"m\":\n    'prober': \"icmp\"\n    icmp:\n      ttl: !!int 3\n",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        struct config *cfg = NULL;
        const struct config_module *m = module_of(docs[i], "m", &cfg);
        CHECK_EQ(m->ttl, 3);
        config_unref(cfg);
    }
}

static void test_warnings(void)
{
    struct config *cfg = NULL;
    const char *const *w;
    size_t n = 0;

    /* An icmp module's sections for other probers: ignored, as blackbox does. */
    module_of("modules:\n  m:\n    prober: icmp\n    http:\n      method: GET\n    dns: {}\n", "m",
              &cfg);
    w = config_warnings(cfg, &n);
    REQUIRE(n == 2);
    CHECK_STR_EQ(w[0], "b.yml:4:5: modules.m.http: ignored: the module's prober is icmp "
                       "(blackbox_exporter ignores it too)");
    CHECK_STR_EQ(w[1], "b.yml:6:5: modules.m.dns: ignored: the module's prober is icmp "
                       "(blackbox_exporter ignores it too)");
    config_unref(cfg);

    /* No icmp module left. */
    {
        char err[512] = "";
        int rc = 0;
        cfg = load("modules:\n  web:\n    prober: http\n", err, sizeof(err), &rc);
        REQUIRE(rc == 0 && cfg != NULL);
        w = config_warnings(cfg, &n);
        REQUIRE(n == 2);
        CHECK_STR_EQ(w[1], "b.yml:1:1: modules: no icmp module: every /probe will be refused "
                           "(unknown module)");
        config_modules(cfg, &n);
        CHECK_EQ(n, 0);
        config_unref(cfg);
    }
    /* A JSON configuration has none. */
    REQUIRE(config_load_default(&cfg, NULL, 0) == 0);
    w = config_warnings(cfg, &n);
    CHECK_EQ(n, 0);
    config_unref(cfg);
}

/* ---- bad documents: the exact line ---- */

struct bad_case {
    const char *doc;
    const char *error;
};

static const struct bad_case bad_cases[] = {
    /* syntax, with libyaml's wording and our position (bytes) */
    {"modules:\n  m:\n    prober: icmp\n   bad: 1\n",
     "b.yml:4:4: (syntax): did not find expected key (while parsing a block mapping at 2:3)"},
    {"modules:\n\tm:\n",
     "b.yml:2:1: (syntax): found character that cannot start any token (while scanning for the "
     "next token at 2:1)"},
    {"modules: {m: [1, 2}\n",
     "b.yml:1:19: (syntax): did not find expected ',' or ']' (while parsing a flow sequence at "
     "1:14)"},
    {"modules:\n  m: \"open\n", "b.yml:3:1: (syntax): found unexpected end of stream (while "
                                "scanning a quoted scalar at 2:6)"},
    {"modules: \xff\n", "b.yml:1:10: (syntax): invalid leading UTF-8 octet: byte 0xff"},
    {"modules: \"\xc3\xa9\" \xff\n",
     "b.yml:1:15: (syntax): invalid leading UTF-8 octet: byte 0xff"},
    {"modules:\n  m:\n    prober: icmp\n---\nmodules: {}\n",
     "b.yml:4:1: (syntax): one YAML document, got a second one here"},
    {"modules:\n  m: *nope\n", "b.yml:2:6: (syntax): a known anchor (no &nope before this *nope)"},
    {"modules: &a\n  m: *a\n",
     "b.yml:2:6: (syntax): an alias to a finished node (*a is inside it)"},
    {"modules:\n  m:\n    prober: \"ic\\0mp\"\n",
     "b.yml:3:13: (syntax): a string without NUL (\\0)"},
    {"modules:\n  ? [a]\n  : 1\n",
     "b.yml:2:5: (syntax): a scalar key (a mapping or a list as a key is not supported)"},
    {"modules:\n  m:\n    prober: !custom icmp\n",
     "b.yml:3:13: (syntax): unsupported tag \"!custom\""},
    {"modules:\n  m:\n    <<: 1\n    prober: icmp\n",
     "b.yml:3:9: (syntax): a mapping, or a list of mappings, to merge (\"<<\")"},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
     "b.yml:1:33: (syntax): nesting at most 32 levels deep"},
    {"", "b.yml:1:1: (root): the document is empty; expected blackbox_exporter's \"modules:\""},
    {"# only a comment\n",
     "b.yml:1:1: (root): the document is empty; expected blackbox_exporter's \"modules:\""},
    /* the schema, as for JSON: keys, types, ranges */
    {"- modules\n", "b.yml:1:1: (root): expected an object, got an array"},
    {"targets: []\n", "b.yml:1:1: targets: unknown key \"targets\"; expected one of: modules"},
    {"modules: [icmp]\n", "b.yml:1:10: modules: expected an object, got an array"},
    {"modules:\n  m:\n    prober: icmp\n  m:\n    prober: icmp\n",
     "b.yml:4:3: modules.m: duplicate key \"m\" (first given at 2:3, member 0)"},
    {"modules:\n  m:\n    prober: icmp\n    icmp:\n      ttl: 1\n      ttl: 2\n",
     "b.yml:6:7: modules.m.icmp.ttl: duplicate key \"ttl\" (first given at 5:7, member 0)"},
    {"modules:\n  m:\n    prober: icmp\n    bogus: 1\n",
     "b.yml:4:5: modules.m.bogus: unknown key \"bogus\"; expected one of: prober, timeout, http, "
     "tcp, dns, icmp, grpc"},
    {"modules:\n  m:\n    prober: icmp\n    icmp:\n      count: 3\n",
     "b.yml:5:7: modules.m.icmp.count: unknown key \"count\"; expected one of: "
     "preferred_ip_protocol, ip_protocol_fallback, source_ip_address, payload_size, "
     "dont_fragment, ttl"},
    {"modules:\n  m:\n    prober: icmp\n    icmp:\n      tll: 3\n",
     "b.yml:5:7: modules.m.icmp.tll: unknown key \"tll\"; did you mean \"ttl\"?"},
    {"modules:\n  m:\n    timeout: 5s\n",
     "b.yml:2:3: modules.m: missing key \"prober\" (icmp; http, tcp, dns and grpc modules are "
     "skipped)"},
    {"modules:\n  m:\n    prober: ICMP\n",
     "b.yml:3:13: modules.m.prober: expected \"icmp\", or \"http\", \"tcp\", \"dns\" or \"grpc\" "
     "(skipped), got \"ICMP\""},
    {"modules:\n  m:\n    prober: 1\n",
     "b.yml:3:13: modules.m.prober: expected \"icmp\", \"http\", \"tcp\", \"dns\" or \"grpc\", got "
     "1"},
    {"modules:\n  m:\n    prober: icmp\n    icmp:\n      ttl: 300\n",
     "b.yml:5:12: modules.m.icmp.ttl: expected an integer in 1..255, got 300"},
    {"modules:\n  m:\n    prober: icmp\n    icmp:\n      ttl: -1\n",
     "b.yml:5:12: modules.m.icmp.ttl: expected an integer in 1..255, got -1"},
    {"modules:\n  m:\n    prober: icmp\n    icmp:\n      ttl: 0x1G\n",
     "b.yml:5:12: modules.m.icmp.ttl: expected an integer in 1..255, got \"0x1G\""},
    {"modules:\n  m:\n    prober: icmp\n    icmp:\n      ttl: \"5\"\n",
     "b.yml:5:12: modules.m.icmp.ttl: expected an integer in 1..255, got \"5\""},
    {"modules:\n  m:\n    prober: icmp\n    icmp:\n      ttl: 5.5\n",
     "b.yml:5:12: modules.m.icmp.ttl: expected an integer in 1..255, got 5.5"},
    {"modules:\n  m:\n    prober: icmp\n    icmp:\n      ttl: .inf\n",
     "b.yml:5:12: modules.m.icmp.ttl: expected an integer in 1..255, got .inf"},
    {"modules:\n  m:\n    prober: icmp\n    icmp:\n      payload_size: 8\n",
     "b.yml:5:21: modules.m.icmp.payload_size: expected an integer in 16..65507 (16 bytes carry "
     "the probe's nonce and timestamp; 65507 is the largest IPv4 echo payload), got 8"},
    {"modules:\n  m:\n    prober: icmp\n    icmp:\n      dont_fragment: \"true\"\n",
     "b.yml:5:22: modules.m.icmp.dont_fragment: expected true or false, got \"true\""},
    {"modules:\n  m:\n    prober: icmp\n    icmp:\n      preferred_ip_protocol: IP4\n",
     "b.yml:5:30: modules.m.icmp.preferred_ip_protocol: expected \"ip4\" or \"ip6\", got \"IP4\""},
    {"modules:\n  m:\n    prober: icmp\n    icmp:\n      source_ip_address: bogus\n",
     "b.yml:5:26: modules.m.icmp.source_ip_address: expected an IPv4 or IPv6 address, got "
     "\"bogus\""},
    {"modules:\n  m:\n    prober: icmp\n    icmp: 5\n",
     "b.yml:4:11: modules.m.icmp: expected an object, got 5"},
    {"modules:\n  \"\":\n    prober: icmp\n",
     "b.yml:2:3: modules[\"\"]: expected a module name of 1..128 characters without control "
     "characters"},
};

static void test_bad(void)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        char err[1024] = "";
        int rc = 0;
        struct config *cfg = load(bad_cases[i].doc, err, sizeof(err), &rc);
        if (rc != -EINVAL || cfg != NULL)
            TEST_FAIL_AT("case %zu loaded (rc %d): %s", i, rc, bad_cases[i].doc);
        else
            CHECK_STR_EQ(err, bad_cases[i].error);
        config_unref(cfg);
    }
}

/* Aliases of aliases: a bounded number of nodes, refused past it, never expanded. */
static void test_alias_bomb(void)
{
    char doc[2048], err[512] = "";
    size_t used = 0;
    int rc = 0;
    struct config *cfg;

    used += (size_t)snprintf(doc + used, sizeof(doc) - used, "a0: &a0 [x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 12; i++)
        used += (size_t)snprintf(doc + used, sizeof(doc) - used,
                                 "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i,
                                 i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    cfg = load(doc, err, sizeof(err), &rc);
    CHECK(cfg == NULL);
    CHECK_EQ(rc, -EINVAL);
    CHECK(strstr(err, "(syntax): the document expands to more than") != NULL);
}

static void test_format_of(void)
{
    CHECK_EQ(config_format_of("/etc/prometheus/blackbox.yml", "{}", 2), CONFIG_FORMAT_YAML);
    CHECK_EQ(config_format_of("b.yaml", "{}", 2), CONFIG_FORMAT_YAML);
    CHECK_EQ(config_format_of("cfg.json", "modules:", 8), CONFIG_FORMAT_JSON);
    CHECK_EQ(config_format_of("cfg", " \n\t{", 4), CONFIG_FORMAT_JSON);
    CHECK_EQ(config_format_of("cfg", "\xef\xbb\xbf{", 4), CONFIG_FORMAT_JSON);
    CHECK_EQ(config_format_of("cfg", "  \n", 3), CONFIG_FORMAT_JSON);
    CHECK_EQ(config_format_of("cfg", "", 0), CONFIG_FORMAT_JSON);
    CHECK_EQ(config_format_of("cfg", "modules:", 8), CONFIG_FORMAT_YAML);
    CHECK_EQ(config_format_of("cfg", "# x\n{", 5), CONFIG_FORMAT_YAML);
    CHECK_EQ(config_format_of("dir.yml/cfg", "[1]", 3), CONFIG_FORMAT_YAML);
    CHECK_EQ(config_format_of("dir.json/cfg", "x: 1", 4), CONFIG_FORMAT_YAML);
    CHECK_EQ(config_format_of("a.yml.json", "x: 1", 4), CONFIG_FORMAT_JSON);
}

/* ---- the web configuration file ---- */

static char dir[64]; /* /tmp/icmpx_yaml_XXXXXX */

static void write_file(const char *name, const char *text)
{
    char path[PATH_MAX + 64];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs(text, f);
    REQUIRE(fclose(f) == 0);
}

/* Loads CONFIG (a file name in dir, or NULL) with the web file WEB_TEXT. */
static int load_web(const char *config, const char *web_text, struct config **cfg, char *err,
                    size_t errlen)
{
    char cpath[PATH_MAX + 64], wpath[PATH_MAX + 64];
    struct config_files files = {NULL, wpath};

    snprintf(cpath, sizeof(cpath), "%s/%s", dir, config != NULL ? config : "");
    snprintf(wpath, sizeof(wpath), "%s/sub/web.yml", dir);
    files.config_file = config != NULL ? cpath : NULL;
    write_file("sub/web.yml", web_text);
    return config_load_files(&files, cfg, err, errlen);
}

static const char h_alice[] = "$2b$04$gdBYCu4w1M16Zn0z7b6vlO49av.gUvHoeqVoU46SU8cGdh8IUCmi6";

static void test_web_file_good(void)
{
    char err[1024] = "", doc[1024], want[PATH_MAX + 64];
    struct config *cfg = NULL;
    const struct config_web *w;

    /* exporter-toolkit's sample, with what it sets to our own behaviour spelled out. */
    snprintf(doc, sizeof(doc),
             "tls_server_config:\n"
             "  cert_file: cert.pem\n"
             "  key_file: ../key.pem\n"
             "  client_auth_type: NoClientCert\n"
             "  min_version: TLS12\n"
             "  max_version: TLS13\n"
             "  prefer_server_cipher_suites: true\n"
             "  cipher_suites: []\n"
             "  client_ca_file: \"\"\n"
             "http_server_config:\n"
             "  http2: true\n"
             "  headers: {}\n"
             "basic_auth_users:\n"
             "  alice: %s\n"
             "  bob: '%s'\n",
             h_alice, h_alice);
    CHECK_EQ(load_web(NULL, doc, &cfg, err, sizeof(err)), 0);
    CHECK_STR_EQ(err, "");
    REQUIRE(cfg != NULL);
    w = config_web(cfg);
    snprintf(want, sizeof(want), "%s/sub/cert.pem", dir);
    CHECK_STR_EQ(w->tls_cert_file, want);
    snprintf(want, sizeof(want), "%s/sub/../key.pem", dir);
    CHECK_STR_EQ(w->tls_key_file, want);
    REQUIRE(w->n_users == 2);
    CHECK_STR_EQ(w->users[0].name, "alice");
    CHECK_STR_EQ(w->users[0].bcrypt_hash, h_alice);
    CHECK_STR_EQ(w->users[1].name, "bob");
    /* The embedded default's modules and targets are still there. */
    CHECK(config_module_find(cfg, "icmp") != NULL);
    config_unref(cfg);

    /* An empty file, or only comments: nothing set, as exporter-toolkit reads it. */
    CHECK_EQ(load_web(NULL, "# nothing yet\n", &cfg, err, sizeof(err)), 0);
    REQUIRE(cfg != NULL);
    CHECK(config_web(cfg)->tls_cert_file == NULL);
    CHECK_EQ(config_web(cfg)->n_users, 0);
    config_unref(cfg);

    /* With a blackbox.yml: its modules, the web file's users. */
    write_file("bb.yml", "modules:\n  icmp:\n    prober: icmp\n");
    snprintf(doc, sizeof(doc), "basic_auth_users:\n  alice: %s\n", h_alice);
    CHECK_EQ(load_web("bb.yml", doc, &cfg, err, sizeof(err)), 0);
    REQUIRE(cfg != NULL);
    CHECK_EQ(config_web(cfg)->n_users, 1);
    CHECK(config_module_find(cfg, "icmp") != NULL);
    config_unref(cfg);

    /* The JSON file sets TLS, the web file users: each in one place, both kept. */
    snprintf(doc, sizeof(doc),
             "{\"web\": {\"tls_server_config\": {\"cert_file\": \"sub/cert.pem\", "
             "\"key_file\": \"key.pem\"}}}");
    write_file("tls.json", doc);
    snprintf(doc, sizeof(doc), "basic_auth_users:\n  alice: %s\n", h_alice);
    CHECK_EQ(load_web("tls.json", doc, &cfg, err, sizeof(err)), 0);
    REQUIRE(cfg != NULL);
    CHECK(config_web(cfg)->tls_cert_file != NULL);
    CHECK_EQ(config_web(cfg)->n_users, 1);
    config_unref(cfg);
}

struct web_bad {
    const char *config; /* the main file in dir, or NULL */
    const char *web;
    int rc;
    const char *error; /* after "DIR/sub/web.yml:" */
};

static const struct web_bad web_bad_cases[] = {
    {NULL,
     "tls_server_config:\n  cert_file: cert.pem\n  key_file: ../key.pem\n  min_version: TLS13\n",
     -EINVAL,
     "4:16: tls_server_config.min_version: expected \"TLS12\": icmp_exporter serves TLS 1.2 and "
     "1.3, no more and no less, got \"TLS13\""},
    {NULL, "tls_server_config:\n  max_version: TLS12\n", -EINVAL,
     "2:16: tls_server_config.max_version: expected \"TLS13\": icmp_exporter serves TLS 1.2 and "
     "1.3, no more and no less, got \"TLS12\""},
    {NULL, "tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n", -EINVAL,
     "2:21: tls_server_config.client_auth_type: expected \"NoClientCert\": icmp_exporter does "
     "not ask for client certificates (use basic_auth_users), got \"RequireAndVerifyClientCert\""},
    {NULL, "tls_server_config:\n  client_ca_file: ca.pem\n", -EINVAL,
     "2:3: tls_server_config.client_ca_file: not supported: icmp_exporter does not verify "
     "client certificates (use basic_auth_users); remove client_ca_file"},
    {NULL, "tls_server_config:\n  client_allowed_sans: [a]\n", -EINVAL,
     "2:3: tls_server_config.client_allowed_sans: not supported: icmp_exporter does not verify "
     "client certificates (use basic_auth_users); remove client_allowed_sans"},
    {NULL, "tls_server_config:\n  cipher_suites:\n    - TLS_AES_128_GCM_SHA256\n", -EINVAL,
     "2:3: tls_server_config.cipher_suites: not supported: GnuTLS chooses the cipher suites and "
     "curves (its NORMAL priorities, TLS 1.2 and 1.3); remove cipher_suites"},
    {NULL, "tls_server_config:\n  curve_preferences: [X25519]\n", -EINVAL,
     "2:3: tls_server_config.curve_preferences: not supported: GnuTLS chooses the cipher suites "
     "and curves (its NORMAL priorities, TLS 1.2 and 1.3); remove curve_preferences"},
    {NULL, "tls_server_config:\n  key: secret\n", -EINVAL,
     "2:3: tls_server_config.key: not supported: write the PEM to a file and name it with "
     "key_file"},
    {NULL, "tls_server_config:\n  cert_file: cert.pem\n", -EINVAL,
     "2:3: tls_server_config: cert_file and key_file go together (key_file is missing)"},
    {NULL, "tls_server_config:\n  cert_file: missing.pem\n  key_file: ../key.pem\n", -ENOENT,
     "2:14: tls_server_config.cert_file: cannot read \"DIR/sub/missing.pem\": No such file or "
     "directory"},
    {NULL, "tls_server_config:\n  cert_flie: cert.pem\n", -EINVAL,
     "2:3: tls_server_config.cert_flie: unknown key \"cert_flie\"; did you mean \"cert_file\"?"},
    {NULL, "http_server_config:\n  headers:\n    X-Frame-Options: deny\n", -EINVAL,
     "3:5: http_server_config.headers.X-Frame-Options: not supported: icmp_exporter adds no "
     "configured headers to its responses; remove headers"},
    {NULL, "http_server_config:\n  http2: maybe\n", -EINVAL,
     "2:10: http_server_config.http2: expected true or false, got \"maybe\""},
    {NULL, "rate_limit:\n  burst: 10\n", -EINVAL,
     "1:1: rate_limit: not supported: icmp_exporter has no request rate limit; its limits are "
     "the configuration's limits section"},
    {NULL, "basic_auth_users:\n  alice: s3cret\n", -EINVAL,
     "2:10: basic_auth_users.alice: expected a bcrypt hash: $2a$, $2b$ or $2y$, a cost 04..31, "
     "'$' and 53 characters of [./A-Za-z0-9] (60 in all), got a string of 6 characters"},
    {NULL, "basic_auth_users:\n  alice:\n", -EINVAL,
     "2:9: basic_auth_users.alice: expected a bcrypt hash string, got null"},
    {NULL, "listen_addresses: [\":9100\"]\n", -EINVAL,
     "1:1: listen_addresses: unknown key \"listen_addresses\"; expected one of: "
     "tls_server_config, http_server_config, basic_auth_users, rate_limit"},
    {NULL, "tls_server_config: [\n", -EINVAL,
     "2:1: (syntax): did not find expected node content (while parsing a flow node at 2:1)"},
    /* the same thing in both files */
    {"tls.json", "tls_server_config:\n  min_version: TLS12\n", -EINVAL,
     "1:1: tls_server_config: already set by web.tls_server_config in the configuration file "
     "(DIR/tls.json:1:10): set it in one place"},
    {"users.json", "basic_auth_users: {}\n", -EINVAL,
     "1:1: basic_auth_users: already set by web.basic_auth_users in the configuration file "
     "(DIR/users.json:3:36): set it in one place"},
};

static void test_web_file_bad(void)
{
    write_file("users.json", "{\n  \"web\": {\n    \"listen_addresses\": [\":9723\"], "
                             "\"basic_auth_users\": {}\n  }\n}\n");
    for (size_t i = 0; i < sizeof(web_bad_cases) / sizeof(web_bad_cases[0]); i++) {
        const struct web_bad *c = &web_bad_cases[i];
        char err[1024] = "", want[2048], body[1024];
        struct config *cfg = NULL;
        int rc = load_web(c->config, c->web, &cfg, err, sizeof(err));
        size_t used = 0;

        /* "DIR" in the expected text is the temporary directory. */
        for (const char *p = c->error; *p != '\0' && used + 1 < sizeof(body);) {
            if (strncmp(p, "DIR", 3) == 0) {
                used += (size_t)snprintf(body + used, sizeof(body) - used, "%s", dir);
                p += 3;
            } else {
                body[used++] = *p++;
            }
        }
        body[used < sizeof(body) ? used : sizeof(body) - 1] = '\0';
        snprintf(want, sizeof(want), "%s/sub/web.yml:%s", dir, body);
        CHECK_EQ(rc, c->rc);
        CHECK(cfg == NULL);
        CHECK_STR_EQ(err, want);
        config_unref(cfg);
    }
}

int main(void)
{
    char sub[PATH_MAX + 8];

    test_debian_file();
    test_every_icmp_key();
    test_scalars();
    test_timeouts();
    test_anchors_and_merge();
    test_layouts();
    test_warnings();
    test_bad();
    test_alias_bomb();
    test_format_of();

    snprintf(dir, sizeof(dir), "/tmp/icmpx_yaml_XXXXXX");
    REQUIRE(mkdtemp(dir) != NULL);
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    REQUIRE(mkdir(sub, 0700) == 0);
    write_file("sub/cert.pem", "not parsed by config/\n");
    write_file("key.pem", "not parsed by config/\n");
    test_web_file_good();
    test_web_file_bad();
    {
        static const char *const names[] = {"sub/web.yml", "sub/cert.pem", "key.pem",
                                            "bb.yml",      "tls.json",     "users.json"};
        char path[PATH_MAX + 64];
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            unlink(path);
        }
        rmdir(sub);
        rmdir(dir);
    }
    return TEST_DONE();
}
