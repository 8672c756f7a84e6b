/*
 * Addresses, networks, host names and the /probe allow-list rule, table-driven.
 */
#include "config/config_internal.h"
#include "test.h"

#include <errno.h>
#include <sys/socket.h>

static struct icmp_addr addr(const char *text)
{
    struct icmp_addr a;

    memset(&a, 0, sizeof(a));
    if (config_addr_parse(text, &a) != 0)
        TEST_FAIL_AT("cannot parse %s", text);
    return a;
}

static void test_addr_parse(void)
{
    static const struct {
        const char *text;
        int family;
    } cases[] = {
        {"192.0.2.1", AF_INET},
        {"0.0.0.0", AF_INET},
        {"::1", AF_INET6},
        {"2001:db8::1", AF_INET6},
        {"::ffff:192.0.2.4", AF_INET6},
        {"127.1", 0},
        {"0127.0.0.1", 0},
        {"192.0.2.4.5", 0},
        {"198.18.256.1", 0},
        {"fe80::1%eth0", 0},
        {"[::1]", 0},
        {"", 0},
        {" 192.0.2.4", 0},
        {"0x7f.0.0.1", 0},
        {"localhost", 0},
    };
    struct icmp_addr a;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&a, 0xee, sizeof(a));
        int rc = config_addr_parse(cases[i].text, &a);
        if (cases[i].family == 0) {
            if (rc != -EINVAL || a.family != 0xeeee)
                TEST_FAIL_AT("\"%s\" accepted", cases[i].text);
        } else if (rc != 0 || a.family != cases[i].family || a.scope_id != 0) {
            TEST_FAIL_AT("\"%s\": rc %d family %d scope_id %u", cases[i].text, rc, a.family,
                         (unsigned)a.scope_id);
        }
    }
    a = addr("192.0.2.1");
    CHECK(memcmp(a.bytes, "\xc0\x00\x02\x01", 4) == 0);
    CHECK_EQ(config_addr_parse(NULL, &a), -EINVAL);
}

static void test_cidr(void)
{
    static const struct {
        const char *text;
        const char *why; /* NULL: valid */
        unsigned prefix;
    } cases[] = {
        {"198.18.0.0/15", NULL, 15},
        {"0.0.0.0/0", NULL, 0},
        {"192.0.2.1", NULL, 32},
        {"192.0.2.1/32", NULL, 32},
        {"::/0", NULL, 0},
        {"2001:db8::/32", NULL, 32},
        {"::1", NULL, 128},
        {"198.18.0.0/33", "prefix length must be 0..32 for IPv4", 0},
        {"::/129", "prefix length must be 0..128 for IPv6", 0},
        {"198.18.0.0/", "the prefix length is not a number", 0},
        {"198.18.0.0/08", "the prefix length is not a number", 0},
        {"198.18.0.0/-1", "the prefix length is not a number", 0},
        {"198.18.0.0/15/8", "the prefix length is not a number", 0},
        {"198.18.0.0/123456", "the prefix length is not a number", 0},
        {"/8", "not an IPv4 or IPv6 address", 0},
        {"10.0.0/8", "not an IPv4 or IPv6 address", 0},
        {"example.com/8", "not an IPv4 or IPv6 address", 0},
        {"198.18.0.1/15", "host bits are set; the network is 198.18.0.0/15", 0},
        {"2001:db8::1/32", "host bits are set; the network is 2001:db8::/32", 0},
        {"198.18.0.128/25", NULL, 25},
        {"198.18.0.64/25", "host bits are set; the network is 198.18.0.0/25", 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config_cidr c = {{0, {0}, 0}, 999};
        char buf[128];
        const char *why = config__parse_cidr(cases[i].text, &c, buf, sizeof(buf));
        if (cases[i].why == NULL) {
            if (why != NULL || c.prefix_len != cases[i].prefix)
                TEST_FAIL_AT("\"%s\": %s, prefix %u", cases[i].text, why ? why : "ok",
                             c.prefix_len);
        } else {
            CHECK_STR_EQ(why, cases[i].why);
            CHECK_EQ(c.prefix_len, 999);
        }
    }
}

static void test_contains(void)
{
    struct config_cidr c;
    char buf[128];
    struct icmp_addr a;

    CHECK(config__parse_cidr("198.18.0.128/25", &c, buf, sizeof(buf)) == NULL);
    a = addr("198.18.0.128");
    CHECK(config_cidr_contains(&c, &a));
    a = addr("198.18.0.255");
    CHECK(config_cidr_contains(&c, &a));
    a = addr("198.18.0.127");
    CHECK(!config_cidr_contains(&c, &a));
    a = addr("::ffff:198.18.0.200"); /* a mapped address is IPv6: not inside an IPv4 net */
    CHECK(!config_cidr_contains(&c, &a));
    CHECK(config__parse_cidr("0.0.0.0/0", &c, buf, sizeof(buf)) == NULL);
    a = addr("203.0.113.9");
    CHECK(config_cidr_contains(&c, &a));
    a = addr("::1");
    CHECK(!config_cidr_contains(&c, &a));
    CHECK(config__parse_cidr("2001:db8::/33", &c, buf, sizeof(buf)) == NULL);
    a = addr("2001:db8:7fff::1");
    CHECK(config_cidr_contains(&c, &a));
    a = addr("2001:db8:8000::1");
    CHECK(!config_cidr_contains(&c, &a));
    /* A resolved link-local address carries its zone: the network alone decides. */
    CHECK(config__parse_cidr("fe80::/10", &c, buf, sizeof(buf)) == NULL);
    a = addr("fe80::1");
    a.scope_id = 3;
    CHECK(config_cidr_contains(&c, &a));
}

static void test_host_names(void)
{
    static const struct {
        const char *name;
        bool wildcard;
        const char *why;
    } cases[] = {
        {"example.com", false, NULL},
        {"example.com.", false, NULL},
        {"localhost", false, NULL},
        {"a-b.c_d.example", false, NULL},
        {"xn--bcher-kva.example", false, NULL},
        {"*.example.com", true, NULL},
        {"*.example.com", false,
         "invalid character (a host name has letters, digits, '-', '_' "
         "and dots)"},
        {"a.*.example.com", true,
         "invalid character (a host name has letters, digits, '-', '_' "
         "and dots)"},
        {"", false, "empty name"},
        {".", false, "empty name"},
        {"*.", true, "empty name"},
        {"a..b", false, "empty label"},
        {".a", false, "empty label"},
        {"a.b..", false, "empty label"},
        {"-a.com", false, "label starts or ends with '-'"},
        {"a-.com", false, "label starts or ends with '-'"},
        {"exa mple.com", false,
         "invalid character (a host name has letters, digits, '-', '_' "
         "and dots)"},
        {"caf\xc3\xa9.example", false,
         "invalid character (a host name has letters, digits, "
         "'-', '_' and dots)"},
        {"1.2.3", false,
         "the last label starts with a digit, which resolvers read as an IPv4 "
         "address"},
        {"0x7f000001", false,
         "the last label starts with a digit, which resolvers read as an "
         "IPv4 address"},
        {"host.123", false,
         "the last label starts with a digit, which resolvers read as an IPv4 "
         "address"},
        {"123.host", false, NULL},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", false, NULL},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", false,
         "label longer than 63 characters"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = config__check_host_name(cases[i].name, cases[i].wildcard);
        if ((why == NULL) != (cases[i].why == NULL) ||
            (why != NULL && strcmp(why, cases[i].why) != 0))
            TEST_FAIL_AT("\"%s\": %s, expected %s", cases[i].name, why ? why : "ok",
                         cases[i].why ? cases[i].why : "ok");
    }

    /* 253 characters is the limit (a trailing dot not counted). */
    char name[300];
    memset(name, 'a', sizeof(name));
    for (size_t i = 50; i < 260; i += 50)
        name[i] = '.';
    name[253] = '\0';
    CHECK(config__check_host_name(name, false) == NULL);
    name[253] = '.';
    name[254] = '\0';
    CHECK(config__check_host_name(name, false) == NULL);
    name[253] = 'a';
    CHECK_STR_EQ(config__check_host_name(name, false), "longer than 253 characters");
}

static void test_name_matches(void)
{
    CHECK(config__name_matches("probe.example.com", "probe.example.com"));
    CHECK(config__name_matches("probe.example.com", "PROBE.Example.com."));
    CHECK(!config__name_matches("probe.example.com", "xprobe.example.com"));
    CHECK(!config__name_matches("probe.example.com", "probe.example.com.evil"));
    CHECK(!config__name_matches("probe.example.com", "probe.example.co"));
    CHECK(config__name_matches("*.example.com", "a.example.com"));
    CHECK(config__name_matches("*.example.com", "a.b.EXAMPLE.com."));
    CHECK(!config__name_matches("*.example.com", "example.com"));
    CHECK(!config__name_matches("*.example.com", ".example.com."));
    CHECK(!config__name_matches("*.example.com", "aexample.com"));
    CHECK(!config__name_matches("*.example.com", "a.example.com.evil.net"));
}

static void test_allowed(void)
{
    static const char doc[] =
        "{\"limits\": {\"allowed_targets\": [\"198.18.0.0/15\", \"2001:db8::/32\", "
        "\"probe.example.com\", \"*.lab.example.net\"]}}";
    struct config *cfg = NULL, *open_cfg = NULL;
    char err[512];
    struct icmp_addr a;

    REQUIRE(config_load_text("t.json", doc, strlen(doc), &cfg, err, sizeof(err)) == 0);
    REQUIRE(config_load_text("o.json", "{}", 2, &open_cfg, err, sizeof(err)) == 0);

    /* Inside a CIDR: allowed, whatever the name. */
    a = addr("198.19.255.1");
    CHECK(config_target_allowed(cfg, NULL, &a));
    CHECK(config_target_allowed(cfg, "anything.example.org", &a));
    a = addr("2001:db8:1::1");
    CHECK(config_target_allowed(cfg, NULL, &a));
    /* A harmless-looking name resolving outside the CIDRs is refused: the address counts. */
    a = addr("192.0.2.254");
    CHECK(!config_target_allowed(cfg, "harmless.example.org", &a));
    a = addr("127.0.0.1");
    CHECK(!config_target_allowed(cfg, "localhost", &a));
    CHECK(!config_target_allowed(cfg, NULL, &a));
    /* A listed name is trusted wherever its DNS points. */
    CHECK(config_target_allowed(cfg, "Probe.Example.com.", &a));
    CHECK(config_target_allowed(cfg, "r1.lab.example.net", &a));
    CHECK(!config_target_allowed(cfg, "lab.example.net", &a));
    CHECK(!config_target_allowed(cfg, "probe.example.com.evil.org", &a));
    /* An IP literal written as the name does not match a host-name entry. */
    CHECK(!config_target_allowed(cfg, "127.0.0.1", &a));
    /* No allow-list: everything. */
    CHECK(config_target_allowed(open_cfg, "localhost", &a));
    CHECK(config_target_allowed(open_cfg, NULL, NULL));
    config_unref(cfg);
    config_unref(open_cfg);
}

int main(void)
{
    test_addr_parse();
    test_cidr();
    test_contains();
    test_host_names();
    test_name_matches();
    test_allowed();
    return TEST_DONE();
}
