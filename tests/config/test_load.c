/*
 * Loading configurations, table-driven: valid documents give the expected structures
 * (every field, defaults applied), invalid ones the exact error line, position included.
 */
#include "config/config.h"
#include "test.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define NS_PER_MS 1000000LL
#define NS_PER_S  1000000000LL

struct bad_case {
    const char *doc;
    int rc;
    const char *error;
};

/* Every document is named t.json; positions are 1-based lines and byte columns. */
static const struct bad_case bad_cases[] = {
    /* syntax, with the exact position and what was expected */
    {"", -EINVAL,
     "t.json:1:1: (syntax): expected a value (object, array, string, number, true, false or "
     "null), got the end of the document"},
    {"{\n  \"modules\": {\n    \"icmp\": {\"timeout\" \"5s\"}\n  }\n}", -EINVAL,
     "t.json:3:24: (syntax): expected ':' after the key, got '\"'"},
    {"{\"modules\": {}}\nx", -EINVAL,
     "t.json:2:1: (syntax): expected the end of the document after the value, got 'x'"},
    {"{\"modules\": {},}", -EINVAL,
     "t.json:1:16: (syntax): expected a string key in double quotes, got '}'"},
    {"{\"targets\": [1 2]}", -EINVAL,
     "t.json:1:16: (syntax): expected ',' or ']' after an array element, got '2'"},
    {"{\"modules\": {\"m\": {\"icmp\": {\"ttl\": 064}}}}", -EINVAL,
     "t.json:1:37: (syntax): expected a number without leading zeros, got '6'"},
    {"{\"modules\": {\"m\": {\"icmp\": {\"ttl\": 64", -EINVAL,
     "t.json:1:38: (syntax): expected ',' or '}' after an object member, got the end of the "
     "document"},
    {"{\"a\": \"x\\qy\"}", -EINVAL,
     "t.json:1:9: (syntax): expected an escape: one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t "
     "\\uXXXX, got '\\'"},
    {"{\"targets\": [{\"target\": \"198.18.0.1\\u0000.evil\"}]}", -EINVAL,
     "t.json:1:36: (syntax): expected a string without \\u0000 (NUL), got '\\'"},
    {"{\"a\": \"\xff\"}", -EINVAL,
     "t.json:1:8: (syntax): expected valid UTF-8 in a string, got "
     "byte 0xff"},
    {"{\"a\": \"tab\there\"}", -EINVAL,
     "t.json:1:11: (syntax): expected an escape sequence instead of a raw control character, "
     "got byte 0x09"},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", -EINVAL,
     "t.json:1:33: (syntax): expected nesting at most 32 levels deep, got '['"},
    /* wrong types at several depths */
    {"[]", -EINVAL, "t.json:1:1: (root): expected an object, got an array"},
    {"{\"modules\": []}", -EINVAL, "t.json:1:13: modules: expected an object, got an array"},
    {"{\"modules\": {\"icmp\": {\"timeout\": 5}}}", -EINVAL,
     "t.json:1:34: modules.icmp.timeout: expected a duration such as \"250ms\", \"1s\" or "
     "\"1m30s\", got 5"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"ttl\": \"64\"}}}}", -EINVAL,
     "t.json:1:39: modules.icmp.icmp.ttl: expected an integer in 1..255, got \"64\""},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"dont_fragment\": 1}}}}", -EINVAL,
     "t.json:1:49: modules.icmp.icmp.dont_fragment: expected true or false, got 1"},
    {"{\"targets\": {}}", -EINVAL,
     "t.json:1:13: targets: expected an array of targets, got an object"},
    {"{\"modules\": {\"icmp\": {}}, \"targets\": [{\"target\": \"::1\", \"labels\": {\"a\": 1}}]}",
     -EINVAL, "t.json:1:73: targets[0].labels.a: expected a string label value, got 1"},
    {"{\"web\": {\"listen_addresses\": \":9723\"}}", -EINVAL,
     "t.json:1:30: web.listen_addresses: expected an array of \"host:port\" strings, got "
     "\":9723\""},
    /* unknown keys, with a suggestion for typos */
    {"{\"module\": {}}", -EINVAL,
     "t.json:1:2: module: unknown key \"module\"; did you mean "
     "\"modules\"?"},
    {"{\"modules\": {\"icmp\": {\"prober\": \"icmp\", \"http\": {}}}}", -EINVAL,
     "t.json:1:41: modules.icmp.http: unknown key \"http\"; expected one of: prober, timeout, "
     "icmp, mode, dns_refresh"},
    {"{\"modules\": {\"s\": {\"dns_refresh\": \"10s\"}}}", -EINVAL,
     "t.json:1:20: modules.s.dns_refresh: dns_refresh is for continuous modules (\"mode\": "
     "\"continuous\"); a scrape module's names are looked up at each probe"},
    /* continuous mode: combinations that make no sense, and targets beyond the budget */
    {"{\"modules\": {\"c\": {\"mode\": \"always\"}}}", -EINVAL,
     "t.json:1:28: modules.c.mode: expected \"scrape\" or \"continuous\", got \"always\""},
    {"{\"modules\": {\"c\": {\"mode\": \"continuous\", \"icmp\": {\"count\": 3}}}}", -EINVAL,
     "t.json:1:60: modules.c.icmp.count: count 3 in a continuous module: it sends one echo per "
     "target every interval; set the period with interval (1s), and count 1"},
    {"{\"modules\": {\"c\": {\"mode\": \"continuous\", \"icmp\": {\"interval\": \"100ms\"}, "
     "\"timeout\": \"5s\"}}}",
     -EINVAL,
     "t.json:1:63: modules.c.icmp.interval: a continuous module's echo waits at most 10 "
     "intervals: echo_timeout 5s (the timeout) is longer than 10 x interval 100ms; lower it, or "
     "raise interval"},
    {"{\"modules\": {\"c\": {\"mode\": \"continuous\", \"icmp\": {\"echo_timeout\": \"11s\"}}}}",
     -EINVAL,
     "t.json:1:67: modules.c.icmp.echo_timeout: a continuous module's echo waits at most 10 "
     "intervals: echo_timeout 11s is longer than 10 x interval 1s; lower it, or raise interval"},
    {"{\"modules\": {\"c\": {\"mode\": \"continuous\", \"timeout\": \"1s\", \"icmp\": "
     "{\"echo_timeout\": \"2s\"}}}}",
     -EINVAL,
     "t.json:1:84: modules.c.icmp.echo_timeout: echo_timeout 2s is longer than the timeout 1s"},
    {"{\"modules\": {\"c\": {\"mode\": \"continuous\", \"icmp\": {\"interval\": \"1ms\"}}}, "
     "\"limits\": {\"max_packets_per_second\": 1500}, \"targets\": [{\"target\": \"192.0.2.1\", "
     "\"module\": \"c\"}, {\"target\": \"192.0.2.2\", \"module\": \"c\"}]}",
     -EINVAL,
     "t.json:1:117: targets: 2 continuous targets send 2000 echoes per second, more than "
     "limits.max_packets_per_second (1500): raise the limit or the modules' interval, or shard "
     "the targets across exporters"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\n  \"tll\": 64\n}}}}", -EINVAL,
     "t.json:2:3: modules.icmp.icmp.tll: unknown key \"tll\"; did you mean \"ttl\"?"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"source_ip\": \"198.18.0.1\"}}}}", -EINVAL,
     "t.json:1:32: modules.icmp.icmp.source_ip: unknown key \"source_ip\"; expected one of: "
     "preferred_ip_protocol, ip_protocol_fallback, source_ip_address, payload_size, "
     "dont_fragment, ttl, count, interval, echo_timeout, tos, buckets"},
    {"{\"web\": {\"listen_address\": [\":1\"]}}", -EINVAL,
     "t.json:1:10: web.listen_address: unknown key \"listen_address\"; did you mean "
     "\"listen_addresses\"?"},
    {"{\"limits\": {\"max_echos_per_probe\": 5}}", -EINVAL,
     "t.json:1:13: limits.max_echos_per_probe: unknown key \"max_echos_per_probe\"; did you "
     "mean \"max_echoes_per_probe\"?"},
    {"{\"modules\": {\"icmp\": {}}, \"targets\": [{\"target\": \"::1\", \"modul\": \"icmp\"}]}",
     -EINVAL, "t.json:1:57: targets[0].modul: unknown key \"modul\"; did you mean \"module\"?"},
    {"{\"web\": {\"tls_server_config\": {\"client_ca_file\": \"ca.pem\"}}}", -EINVAL,
     "t.json:1:32: web.tls_server_config.client_ca_file: unknown key \"client_ca_file\"; "
     "expected one of: cert_file, key_file"},
    /* duplicate keys: refused at the second occurrence */
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"ttl\": 1,\n \"ttl\": 2}}}}", -EINVAL,
     "t.json:2:2: modules.icmp.icmp.ttl: duplicate key \"ttl\" (first given at 1:32, member 0)"},
    {"{\"modules\": {\"a\": {}, \"b\": {}, \"a\": {}}}", -EINVAL,
     "t.json:1:32: modules.a: duplicate key \"a\" (first given at 1:14, member 0)"},
    /* out of range */
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"ttl\": 0}}}}", -EINVAL,
     "t.json:1:39: modules.icmp.icmp.ttl: expected an integer in 1..255, got 0"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"ttl\": 256}}}}", -EINVAL,
     "t.json:1:39: modules.icmp.icmp.ttl: expected an integer in 1..255, got 256"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"ttl\": 64.5}}}}", -EINVAL,
     "t.json:1:39: modules.icmp.icmp.ttl: expected an integer in 1..255, got 64.5"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"ttl\": 1e400}}}}", -EINVAL,
     "t.json:1:39: modules.icmp.icmp.ttl: expected an integer in 1..255, got 1e400"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"count\": -1e400}}}}", -EINVAL,
     "t.json:1:41: modules.icmp.icmp.count: expected an integer in 1..1000, got -1e400"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"payload_size\": 8}}}}", -EINVAL,
     "t.json:1:48: modules.icmp.icmp.payload_size: expected an integer in 16..65507 (16 bytes "
     "carry the probe's nonce and timestamp; 65507 is the largest IPv4 echo payload), got 8"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"payload_size\": 65508}}}}", -EINVAL,
     "t.json:1:48: modules.icmp.icmp.payload_size: expected an integer in 16..65507 (16 bytes "
     "carry the probe's nonce and timestamp; 65507 is the largest IPv4 echo payload), got "
     "65508"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"count\": 0}}}}", -EINVAL,
     "t.json:1:41: modules.icmp.icmp.count: expected an integer in 1..1000, got 0"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"count\": 1001}}}}", -EINVAL,
     "t.json:1:41: modules.icmp.icmp.count: expected an integer in 1..1000, got 1001"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"tos\": 256}}}}", -EINVAL,
     "t.json:1:39: modules.icmp.icmp.tos: expected an integer in 0..255, got 256"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"preferred_ip_protocol\": \"ipv4\"}}}}", -EINVAL,
     "t.json:1:57: modules.icmp.icmp.preferred_ip_protocol: expected \"ip4\" or \"ip6\", got "
     "\"ipv4\""},
    {"{\"modules\": {\"icmp\": {\"prober\": \"http\"}}}", -EINVAL,
     "t.json:1:33: modules.icmp.prober: expected \"icmp\" (the only prober of this exporter), "
     "got \"http\""},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"source_ip_address\": \"198.18.0.256\"}}}}", -EINVAL,
     "t.json:1:53: modules.icmp.icmp.source_ip_address: expected an IPv4 or IPv6 address, got "
     "\"198.18.0.256\""},
    {"{\"modules\": {\"\": {}}}", -EINVAL,
     "t.json:1:14: modules[\"\"]: expected a module name of 1..128 characters without control "
     "characters"},
    /* durations */
    {"{\"modules\": {\"icmp\": {\"timeout\": \"-1s\"}}}", -EINVAL,
     "t.json:1:34: modules.icmp.timeout: expected a duration such as \"250ms\", \"1s\" or "
     "\"1m30s\", got \"-1s\""},
    {"{\"modules\": {\"icmp\": {\"timeout\": \"0s\"}}}", -EINVAL,
     "t.json:1:34: modules.icmp.timeout: expected a duration greater than 0, got \"0s\""},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"interval\": \"1.5s\"}}}}", -EINVAL,
     "t.json:1:44: modules.icmp.icmp.interval: expected a duration such as \"250ms\", \"1s\" "
     "or \"1m30s\", got \"1.5s\""},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"echo_timeout\": \"2h\"}}}}", -EINVAL,
     "t.json:1:48: modules.icmp.icmp.echo_timeout: expected a duration of at most 1h, got "
     "\"2h\""},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"interval\": \"300y\"}}}}", -EINVAL,
     "t.json:1:44: modules.icmp.icmp.interval: expected a duration of at most 1h, got "
     "\"300y\""},
    /* timeout >= interval x (count - 1) + echo_timeout */
    {"{\"modules\": {\"icmp\": {\"timeout\": \"2s\", \"icmp\": {\"count\": 3, \"interval\": "
     "\"500ms\", \"echo_timeout\": \"1500ms\"}}}}",
     -EINVAL,
     "t.json:1:34: modules.icmp.timeout: timeout 2s is shorter than interval 500ms * (count 3 "
     "- 1) + echo_timeout 1s500ms = 2s500ms"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"count\": 6}}}}", -EINVAL,
     "t.json:1:22: modules.icmp.timeout: timeout 5s (the default) leaves no time to wait for "
     "the last echo: interval 1s * (count 6 - 1) = 5s; raise timeout, or lower interval or "
     "count"},
    /* buckets */
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"buckets\": [0.001, 0.0005]}}}}", -EINVAL,
     "t.json:1:51: modules.icmp.icmp.buckets[1]: expected a bound greater than the previous "
     "one (0.001), got 0.0005"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"buckets\": [0, 1]}}}}", -EINVAL,
     "t.json:1:44: modules.icmp.icmp.buckets[0]: expected a finite number of seconds greater "
     "than 0, got 0"},
    {"{\"modules\": {\"icmp\": {\"icmp\": {\"buckets\": []}}}}", -EINVAL,
     "t.json:1:43: modules.icmp.icmp.buckets: expected 1..64 bucket upper bounds, got 0"},
    /* targets */
    {"{\"modules\": {\"icmp\": {}}, \"targets\": [{\"target\": \"::1\", \"module\": \"icmp6\"}]}",
     -EINVAL, "t.json:1:67: targets[0].module: unknown module \"icmp6\" (defined: icmp)"},
    {"{\"targets\": [{\"target\": \"::1\"}]}", -EINVAL,
     "t.json:1:14: targets[0].module: unknown module \"icmp\", the default (defined: none)"},
    {"{\"modules\": {\"icmp\": {}}, \"targets\": [{\"module\": \"icmp\"}]}", -EINVAL,
     "t.json:1:39: targets[0]: missing key \"target\" (an IP address or a host name)"},
    {"{\"modules\": {\"icmp\": {}, \"v6\": {}}, \"targets\": [\n"
     "  {\"target\": \"::1\"},\n"
     "  {\"target\": \"::1\", \"module\": \"v6\"},\n"
     "  {\"target\": \"0:0::1\", \"module\": \"icmp\"}\n]}",
     -EINVAL,
     "t.json:4:3: targets[2]: duplicate of targets[0]: target \"0:0::1\" with module \"icmp\""},
    {"{\"modules\": {\"icmp\": {}}, \"targets\": [{\"target\": \"Example.COM.\"}, {\"target\": "
     "\"example.com\"}]}",
     -EINVAL,
     "t.json:1:67: targets[1]: duplicate of targets[0]: target \"example.com\" with module "
     "\"icmp\""},
    {"{\"modules\": {\"icmp\": {}}, \"targets\": [{\"target\": \"bad_name..com\"}]}", -EINVAL,
     "t.json:1:50: targets[0].target: expected an IP address or a host name (empty label), got "
     "\"bad_name..com\""},
    {"{\"modules\": {\"icmp\": {}}, \"targets\": [{\"target\": \"127.1\"}]}", -EINVAL,
     "t.json:1:50: targets[0].target: expected an IP address or a host name (not an IPv4 or "
     "IPv6 address), got \"127.1\""},
    {"{\"modules\": {\"icmp\": {}}, \"targets\": [{\"target\": \"0x7f000001\"}]}", -EINVAL,
     "t.json:1:50: targets[0].target: expected an IP address or a host name (the last label starts "
     "with a digit, which resolvers read as an IPv4 address), got \"0x7f000001\""},
    {"{\"modules\": {\"icmp\": {}}, \"targets\": [{\"target\": \"::1\", \"labels\": {\"target\": "
     "\"x\"}}]}",
     -EINVAL,
     "t.json:1:68: targets[0].labels.target: label name \"target\" is reserved: the exporter "
     "sets target, module, ip, ip_version and le itself"},
    {"{\"modules\": {\"icmp\": {}}, \"targets\": [{\"target\": \"::1\", \"labels\": {\"__x\": "
     "\"x\"}}]}",
     -EINVAL,
     "t.json:1:68: targets[0].labels.__x: label name \"__x\" starts with \"__\", which "
     "Prometheus reserves for itself"},
    {"{\"modules\": {\"icmp\": {}}, \"targets\": [{\"target\": \"::1\", \"labels\": {\"a.b\": "
     "\"x\"}}]}",
     -EINVAL,
     "t.json:1:68: targets[0].labels[\"a.b\"]: expected a label name matching "
     "[a-zA-Z_][a-zA-Z0-9_]*, got \"a.b\""},
    /* limits */
    {"{\"limits\": {\"allowed_targets\": [\"198.18.0.0/15\", \"198.18.0.0/33\"]}}", -EINVAL,
     "t.json:1:50: limits.allowed_targets[1]: expected a CIDR such as 198.18.0.0/15 or "
     "2001:db8::/32 (prefix length must be 0..32 for IPv4), got \"198.18.0.0/33\""},
    {"{\"limits\": {\"allowed_targets\": [\"2001:db8::/129\"]}}", -EINVAL,
     "t.json:1:33: limits.allowed_targets[0]: expected a CIDR such as 198.18.0.0/15 or "
     "2001:db8::/32 (prefix length must be 0..128 for IPv6), got \"2001:db8::/129\""},
    {"{\"limits\": {\"allowed_targets\": [\"198.18.0.300/15\"]}}", -EINVAL,
     "t.json:1:33: limits.allowed_targets[0]: expected a CIDR such as 198.18.0.0/15 or "
     "2001:db8::/32 (not an IPv4 or IPv6 address), got \"198.18.0.300/15\""},
    {"{\"limits\": {\"allowed_targets\": [\"198.19.2.3/15\"]}}", -EINVAL,
     "t.json:1:33: limits.allowed_targets[0]: expected a CIDR such as 198.18.0.0/15 or "
     "2001:db8::/32 (host bits are set; the network is 198.18.0.0/15), got \"198.19.2.3/15\""},
    {"{\"limits\": {\"allowed_targets\": [\"198.18.0.0/x\"]}}", -EINVAL,
     "t.json:1:33: limits.allowed_targets[0]: expected a CIDR such as 198.18.0.0/15 or "
     "2001:db8::/32 (the prefix length is not a number), got \"198.18.0.0/x\""},
    {"{\"limits\": {\"allowed_targets\": [\"-bad.example.com\"]}}", -EINVAL,
     "t.json:1:33: limits.allowed_targets[0]: expected a host name such as probe.example.com "
     "or *.example.com (label starts or ends with '-'), got \"-bad.example.com\""},
    {"{\"limits\": {\"max_concurrent_probes\": 0}}", -EINVAL,
     "t.json:1:38: limits.max_concurrent_probes: expected an integer in 1..1000000, got 0"},
    /* web */
    {"{\"web\": {\"listen_addresses\": [\"9723\"]}}", -EINVAL,
     "t.json:1:31: web.listen_addresses[0]: expected \"host:port\", \"[ipv6]:port\" or "
     "\":port\" (missing \":port\"), got \"9723\""},
    {"{\"web\": {\"listen_addresses\": [\"::1:9723\"]}}", -EINVAL,
     "t.json:1:31: web.listen_addresses[0]: expected \"host:port\", \"[ipv6]:port\" or "
     "\":port\" (an IPv6 address needs brackets, as in [::1]:9723), got \"::1:9723\""},
    {"{\"web\": {\"listen_addresses\": [\":65536\"]}}", -EINVAL,
     "t.json:1:31: web.listen_addresses[0]: expected \"host:port\", \"[ipv6]:port\" or "
     "\":port\" (the port is not a number in 1..65535), got \":65536\""},
    {"{\"modules\": {\"icmp\": {}}, \"targets\": [{\"target\": \"::1\"}, {\"target\": "
     "\"127.0.0.1\"}],\n"
     " \"limits\": {\"max_targets_per_scrape\": 1}}",
     -EINVAL,
     "t.json:1:27: targets: 2 static targets, more than limits.max_targets_per_scrape (1): "
     "raise the limit, or shard the targets across exporters"},
    {"{\"web\": {\"basic_auth_users\": {\"alice\": \"secret\"}}}", -EINVAL,
     "t.json:1:40: web.basic_auth_users.alice: expected a bcrypt hash: $2a$, $2b$ or $2y$, a "
     "cost 04..31, '$' and 53 characters of [./A-Za-z0-9] (60 in all), got a string of 6 "
     "characters"},
    {"{\"web\": {\"basic_auth_users\": {\"alice\": "
     "\"$2y$03$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234\"}}}",
     -EINVAL,
     "t.json:1:40: web.basic_auth_users.alice: expected a bcrypt hash: $2a$, $2b$ or $2y$, a "
     "cost 04..31, '$' and 53 characters of [./A-Za-z0-9] (60 in all), got a string of 60 "
     "characters"},
    {"{\"web\": {\"basic_auth_users\": {\"a:b\": "
     "\"$2y$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234\"}}}",
     -EINVAL,
     "t.json:1:31: web.basic_auth_users[\"a:b\"]: expected a user name, not empty and without "
     "':'"},
    {"{\"web\": {\"tls_server_config\": {\"cert_file\": \"/nonexistent/cert.pem\", \"key_file\": "
     "\"/nonexistent/key.pem\"}}}",
     -ENOENT,
     "t.json:1:45: web.tls_server_config.cert_file: cannot read \"/nonexistent/cert.pem\": No "
     "such file or directory"},
    {"{\"web\": {\"tls_server_config\": {\"key_file\": \"/etc/passwd\"}}}", -EINVAL,
     "t.json:1:31: web.tls_server_config: cert_file and key_file go together (cert_file is "
     "missing)"},
};

static int load(const char *doc, size_t len, struct config **cfg, char *err, size_t errlen)
{
    return config_load_text("t.json", doc, len, cfg, err, errlen);
}

static void test_bad_cases(void)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct config *cfg = (struct config *)&cfg;
        char err[1024];
        int rc = load(c->doc, strlen(c->doc), &cfg, err, sizeof(err));

        if (rc != c->rc || strcmp(err, c->error) != 0)
            TEST_FAIL_AT("case %zu: rc %d, expected %d\n  got:      %s\n  expected: %s", i, rc,
                         c->rc, err, c->error);
        CHECK(cfg == NULL);
    }
}

static struct config *load_ok(const char *doc)
{
    struct config *cfg = NULL;
    char err[1024] = "";
    int rc = load(doc, strlen(doc), &cfg, err, sizeof(err));

    if (rc != 0)
        TEST_FAIL_AT("rc %d: %s", rc, err);
    REQUIRE(rc == 0 && cfg != NULL);
    return cfg;
}

/* A blackbox_exporter ICMP module converted to JSON, every key set. */
static void test_full_module(void)
{
    struct config *cfg = load_ok(
        "{\"modules\": {\"icmp_v4\": {\"prober\": \"icmp\", \"timeout\": \"3s\", \"icmp\": {\n"
        "  \"preferred_ip_protocol\": \"ip4\", \"ip_protocol_fallback\": false,\n"
        "  \"source_ip_address\": \"192.0.2.1\", \"payload_size\": 56,\n"
        "  \"dont_fragment\": true, \"ttl\": 32, \"count\": 5, \"interval\": \"250ms\",\n"
        "  \"echo_timeout\": \"1s\", \"tos\": 184, \"buckets\": [0.001, 0.01, 0.1, 1]}}}}");
    const struct config_module *m = config_module_find(cfg, "icmp_v4");
    size_t n;

    REQUIRE(m != NULL);
    CHECK_STR_EQ(m->name, "icmp_v4");
    CHECK_EQ(m->timeout_ns, 3 * NS_PER_S);
    CHECK_EQ(m->preferred_ip_protocol, 4);
    CHECK(!m->ip_protocol_fallback);
    CHECK(m->has_source_ip);
    CHECK_EQ(m->source_ip.family, AF_INET);
    CHECK(memcmp(m->source_ip.bytes, "\xc0\x00\x02\x01", 4) == 0);
    CHECK_EQ(m->payload_size, 56);
    CHECK(m->dont_fragment);
    CHECK_EQ(m->ttl, 32);
    CHECK_EQ(m->count, 5);
    CHECK_EQ(m->interval_ns, 250 * NS_PER_MS);
    CHECK_EQ(m->echo_timeout_ns, NS_PER_S);
    CHECK_EQ(m->tos, 184);
    CHECK_EQ(m->n_buckets, 4);
    CHECK(m->buckets[0] == 0.001 && m->buckets[3] == 1.0);
    CHECK(config_module_find(cfg, "ICMP_V4") == NULL); /* case-sensitive */
    CHECK(config_module_find(cfg, "icmp") == NULL);
    config_modules(cfg, &n);
    CHECK_EQ(n, 1);
    config_targets(cfg, &n);
    CHECK_EQ(n, 0);
    config_unref(cfg);
}

/* An empty module gets blackbox's defaults and ours. */
static void test_defaults(void)
{
    struct config *cfg = load_ok("{\"modules\": {\"m\": {}}}");
    const struct config_module *m = config_module_find(cfg, "m");
    const struct config_limits *l = config_limits(cfg);
    const struct config_web *w = config_web(cfg);

    REQUIRE(m != NULL);
    CHECK_EQ(m->timeout_ns, 5 * NS_PER_S);
    CHECK_EQ(m->preferred_ip_protocol, 6);
    CHECK(m->ip_protocol_fallback);
    CHECK(!m->has_source_ip);
    CHECK_EQ(m->payload_size, 28);
    CHECK(!m->dont_fragment);
    CHECK_EQ(m->ttl, 64);
    CHECK_EQ(m->count, 1);
    CHECK_EQ(m->interval_ns, NS_PER_S);
    CHECK_EQ(m->echo_timeout_ns, 5 * NS_PER_S); /* timeout - interval x (count - 1) */
    CHECK_EQ(m->tos, 0);
    CHECK_EQ(m->n_buckets, 17);
    CHECK(m->buckets[0] == 0.00005 && m->buckets[16] == 10.0);
    for (size_t i = 1; i < m->n_buckets; i++)
        CHECK(m->buckets[i] > m->buckets[i - 1]);
    CHECK_EQ(l->n_allowed_cidrs, 0);
    CHECK_EQ(l->n_allowed_names, 0);
    CHECK_EQ(l->max_echoes_per_probe, 100);
    CHECK_EQ(l->max_concurrent_probes, 1000);
    CHECK_EQ(l->max_targets_per_scrape, 10000);
    REQUIRE(w->n_listen_addresses == 1);
    CHECK_STR_EQ(w->listen_addresses[0], ":9723");
    CHECK(w->tls_cert_file == NULL && w->tls_key_file == NULL);
    CHECK_EQ(w->n_users, 0);
    config_unref(cfg);

    /* Derived echo wait: 4s - 500ms x 2 = 3s. */
    cfg = load_ok("{\"modules\": {\"m\": {\"timeout\": \"4s\", \"icmp\": {\"count\": 3, "
                  "\"interval\": \"500ms\"}}}}");
    CHECK_EQ(config_module_find(cfg, "m")->echo_timeout_ns, 3 * NS_PER_S);
    config_unref(cfg);
    /* Exactly enough: 2s = 500ms x 2 + 1s. */
    cfg = load_ok("{\"modules\": {\"m\": {\"timeout\": \"2s\", \"icmp\": {\"count\": 3, "
                  "\"interval\": \"500ms\", \"echo_timeout\": \"1s\"}}}}");
    CHECK_EQ(config_module_find(cfg, "m")->echo_timeout_ns, NS_PER_S);
    config_unref(cfg);
    /* An empty document is a valid (if useless) configuration. */
    cfg = load_ok(" {} ");
    CHECK(config_module_find(cfg, "icmp") == NULL);
    config_unref(cfg);
}

/* A continuous module: its echo waits an interval unless told otherwise; /probe of it waits
 * as long (its timeout); the mode shows in /config only when continuous. */
static void test_continuous(void)
{
    struct config *cfg = load_ok("{\"modules\": {\"c\": {\"mode\": \"continuous\", \"icmp\": "
                                 "{\"interval\": \"250ms\"}}, \"t\": {\"mode\": \"continuous\", "
                                 "\"timeout\": \"2s\"}, \"s\": {\"mode\": \"scrape\"}}}");
    const struct config_module *c = config_module_find(cfg, "c"), *t = config_module_find(cfg, "t"),
                               *s = config_module_find(cfg, "s");
    char *json = NULL;
    size_t len = 0;

    REQUIRE(c != NULL && t != NULL && s != NULL);
    CHECK(c->mode == CONFIG_MODE_CONTINUOUS);
    CHECK_EQ(c->interval_ns, 250000000);
    CHECK_EQ(c->echo_timeout_ns, 250000000);
    CHECK_EQ(c->timeout_ns, 250000000);
    CHECK_EQ(c->count, 1);
    CHECK(t->mode == CONFIG_MODE_CONTINUOUS);
    CHECK_EQ(t->echo_timeout_ns, 2000000000);
    CHECK(s->mode == CONFIG_MODE_SCRAPE);
    CHECK_EQ(s->echo_timeout_ns, 5000000000);
    CHECK_EQ(c->dns_refresh_ns, 60000000000);
    REQUIRE(config_dump_json(cfg, &json, &len) == 0);
    CHECK(strstr(json, "\"mode\":\t\"continuous\"") != NULL);
    CHECK(strstr(json, "\"scrape\"") == NULL);
    free(json);
    config_unref(cfg);
}

static void test_targets(void)
{
    struct config *cfg =
        load_ok("{\"targets\": [\n"
                "  {\"target\": \"192.0.2.7\", \"labels\": {\"site\": \"par\\\"1\\\\\\n\", \"_x\": "
                "\"\"}},\n"
                "  {\"target\": \"192.0.2.7\", \"module\": \"loss\"},\n"
                "  {\"target\": \"2001:db8::1\"},\n"
                "  {\"target\": \"Probe.Example.com.\", \"module\": \"loss\"}\n"
                "], \"modules\": {\"icmp\": {}, \"loss\": {\"icmp\": {\"count\": 3}}}}");
    size_t n;
    const struct config_target *t = config_targets(cfg, &n);

    REQUIRE(n == 4);
    CHECK_STR_EQ(t[0].target, "192.0.2.7");
    CHECK(t[0].is_literal);
    CHECK_EQ(t[0].addr.family, AF_INET);
    CHECK_STR_EQ(t[0].module->name, "icmp");
    REQUIRE(t[0].n_labels == 2);
    CHECK_STR_EQ(t[0].labels[0].name, "site");
    CHECK_STR_EQ(t[0].labels[0].value, "par\"1\\\n");
    CHECK_STR_EQ(t[0].labels[1].name, "_x");
    CHECK_STR_EQ(t[0].labels[1].value, "");
    CHECK_STR_EQ(t[1].module->name, "loss");
    CHECK_EQ(t[1].module->count, 3);
    CHECK_EQ(t[1].n_labels, 0);
    CHECK(t[2].is_literal);
    CHECK_EQ(t[2].addr.family, AF_INET6);
    CHECK_EQ(t[2].addr.bytes[15], 1);
    CHECK(!t[3].is_literal);
    CHECK_STR_EQ(t[3].target, "Probe.Example.com.");
    config_unref(cfg);
}

static void test_limits_and_web(void)
{
    char dir[] = "/tmp/icmpx_config_XXXXXX", path[256], doc[1024], err[1024];
    struct config *cfg = NULL;
    FILE *f;

    REQUIRE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/cert.pem", dir);
    REQUIRE((f = fopen(path, "w")) != NULL);
    fclose(f);
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    REQUIRE((f = fopen(path, "w")) != NULL);
    fclose(f);
    snprintf(doc, sizeof(doc), "%s",
             "{\"limits\": {\"allowed_targets\": [\"198.18.0.0/15\", \"2001:db8::/32\", "
             "\"192.0.2.1\", \"Probe.Example.COM.\", \"*.lab.example.net\"],\n"
             "  \"max_echoes_per_probe\": 10, \"max_concurrent_probes\": 20,\n"
             "  \"max_targets_per_scrape\": 30},\n"
             " \"web\": {\"listen_addresses\": [\":9723\", \"127.0.0.1:9724\", \"[::1]:9725\", "
             "\"localhost:9726\"],\n"
             "  \"tls_server_config\": {\"cert_file\": \"cert.pem\", \"key_file\": \"key.pem\"},\n"
             "  \"basic_auth_users\": {\"alice\": "
             "\"$2y$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234\"}}}");
    snprintf(path, sizeof(path), "%s/c.json", dir);
    REQUIRE((f = fopen(path, "w")) != NULL);
    fputs(doc, f);
    fclose(f);

    /* From a file, relative TLS paths are resolved against the file's directory. */
    CHECK_EQ(config_load_file(path, &cfg, err, sizeof(err)), 0);
    REQUIRE(cfg != NULL);
    const struct config_limits *l = config_limits(cfg);
    const struct config_web *w = config_web(cfg);
    REQUIRE(l->n_allowed_cidrs == 3 && l->n_allowed_names == 2);
    CHECK_EQ(l->allowed_cidrs[0].prefix_len, 15);
    CHECK_EQ(l->allowed_cidrs[1].addr.family, AF_INET6);
    CHECK_EQ(l->allowed_cidrs[1].prefix_len, 32);
    CHECK_EQ(l->allowed_cidrs[2].prefix_len, 32);
    CHECK_STR_EQ(l->allowed_names[0], "probe.example.com");
    CHECK_STR_EQ(l->allowed_names[1], "*.lab.example.net");
    CHECK_EQ(l->max_echoes_per_probe, 10);
    CHECK_EQ(l->max_concurrent_probes, 20);
    CHECK_EQ(l->max_targets_per_scrape, 30);
    REQUIRE(w->n_listen_addresses == 4);
    CHECK_STR_EQ(w->listen_addresses[2], "[::1]:9725");
    snprintf(path, sizeof(path), "%s/cert.pem", dir);
    CHECK_STR_EQ(w->tls_cert_file, path);
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    CHECK_STR_EQ(w->tls_key_file, path);
    REQUIRE(w->n_users == 1);
    CHECK_STR_EQ(w->users[0].name, "alice");
    CHECK_EQ(strlen(w->users[0].bcrypt_hash), 60);
    config_unref(cfg);

    /* From text, relative paths are relative to the working directory: here, missing. */
    cfg = NULL;
    CHECK_EQ(config_load_text("t.json", doc, strlen(doc), &cfg, err, sizeof(err)), -ENOENT);
    CHECK_STR_EQ(err, "t.json:5:38: web.tls_server_config.cert_file: cannot read \"cert.pem\": "
                      "No such file or directory");
    CHECK(cfg == NULL);

    /* A directory is not a certificate. */
    snprintf(doc, sizeof(doc),
             "{\"web\": {\"tls_server_config\": {\"cert_file\": \"%s\", \"key_file\": \"%s\"}}}",
             dir, dir);
    CHECK_EQ(config_load_text("t.json", doc, strlen(doc), &cfg, err, sizeof(err)), -EINVAL);
    snprintf(doc, sizeof(doc),
             "t.json:1:45: web.tls_server_config.cert_file: cannot read \"%s\": not a regular "
             "file",
             dir);
    CHECK_STR_EQ(err, doc);

    snprintf(path, sizeof(path), "%s/cert.pem", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/c.json", dir);
    unlink(path);
    rmdir(dir);
}

static void test_files(void)
{
    struct config *cfg = (struct config *)&cfg;
    char err[512];

    CHECK_EQ(config_load_file("/nonexistent/icmpx.json", &cfg, err, sizeof(err)), -ENOENT);
    CHECK_STR_EQ(err, "/nonexistent/icmpx.json: cannot open: No such file or directory");
    CHECK(cfg == NULL);
    CHECK_EQ(config_load_file("/", &cfg, err, sizeof(err)), -EISDIR);
    CHECK_STR_EQ(err, "/: cannot read: Is a directory");
    if (geteuid() != 0) {
        /* root reads anything; elsewhere, an unreadable file gives EACCES. */
        char path[] = "/tmp/icmpx_unreadable_XXXXXX";
        int fd = mkstemp(path);
        REQUIRE(fd >= 0);
        close(fd);
        chmod(path, 0);
        CHECK_EQ(config_load_file(path, &cfg, err, sizeof(err)), -EACCES);
        unlink(path);
    }
}

static void test_limits_of_size(void)
{
    size_t big = CONFIG_MAX_DOCUMENT_SIZE + 1;
    char *doc = malloc(big), err[256];
    struct config *cfg = NULL;

    REQUIRE(doc != NULL);
    memset(doc, ' ', big);
    doc[0] = '{';
    doc[big - 1] = '}';
    CHECK_EQ(load(doc, big, &cfg, err, sizeof(err)), -EFBIG);
    CHECK_STR_EQ(err, "t.json: the document is larger than the limit of 16777216 bytes");
    /* At the limit it is fine. */
    doc[big - 2] = '}';
    CHECK_EQ(load(doc, big - 1, &cfg, err, sizeof(err)), 0);
    config_unref(cfg);
    free(doc);

    /* A NUL byte would end cJSON's reading early: refused where it is. */
    CHECK_EQ(load("{} \0 x", 6, &cfg, err, sizeof(err)), -EINVAL);
    CHECK_STR_EQ(err, "t.json:1:4: (syntax): expected the end of the document after the value, "
                      "got byte 0x00");

    /* A tiny error buffer is filled, cut and terminated, never overrun. */
    char small[8];
    memset(small, 'x', sizeof(small));
    CHECK_EQ(load("[]", 2, &cfg, small, 5), -EINVAL);
    CHECK_STR_EQ(small, "t.js");
    CHECK_EQ(small[5], 'x');
    CHECK_EQ(load("[]", 2, &cfg, NULL, 0), -EINVAL);
}

/* The embedded default: loads, and holds what README promises. */
static void test_default(void)
{
    struct config *cfg = NULL, *again = NULL;
    char err[512];
    const char *text = config_default_text();
    size_t n;

    REQUIRE(text != NULL && strlen(text) > 0);
    CHECK_EQ(config_load_default(&cfg, err, sizeof(err)), 0);
    REQUIRE(cfg != NULL);
    CHECK_EQ(config_load_text("default.json", text, strlen(text), &again, err, sizeof(err)), 0);
    config_unref(again);

    const struct config_module *m = config_module_find(cfg, "icmp");
    REQUIRE(m != NULL);
    config_modules(cfg, &n);
    CHECK_EQ(n, 1);
    CHECK_EQ(m->timeout_ns, 5 * NS_PER_S);
    CHECK_EQ(m->count, 1);
    CHECK_EQ(m->preferred_ip_protocol, 4);
    CHECK(m->ip_protocol_fallback);
    CHECK_EQ(m->ttl, 64);
    CHECK_EQ(m->payload_size, 28);
    CHECK_EQ(m->echo_timeout_ns, 5 * NS_PER_S);
    CHECK_EQ(m->n_buckets, 17);
    const struct config_target *t = config_targets(cfg, &n);
    REQUIRE(n == 2);
    CHECK_STR_EQ(t[0].target, "127.0.0.1");
    CHECK_EQ(t[0].addr.family, AF_INET);
    CHECK(t[0].module == m);
    CHECK_STR_EQ(t[1].target, "::1");
    CHECK_EQ(t[1].addr.family, AF_INET6);
    CHECK(t[1].module == m);
    CHECK_EQ(config_limits(cfg)->n_allowed_cidrs + config_limits(cfg)->n_allowed_names, 0);
    CHECK_STR_EQ(config_web(cfg)->listen_addresses[0], ":9723");

    /* References: one more holder keeps it alive past the first unref. */
    CHECK(config_ref(cfg) == cfg);
    config_unref(cfg);
    CHECK_STR_EQ(config_module_find(cfg, "icmp")->name, "icmp");
    config_unref(cfg);
    config_unref(NULL);
}

int main(void)
{
    test_bad_cases();
    test_full_module();
    test_defaults();
    test_continuous();
    test_targets();
    test_limits_and_web();
    test_files();
    test_limits_of_size();
    test_default();
    return TEST_DONE();
}
