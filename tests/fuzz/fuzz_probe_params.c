/*
 * libFuzzer target over /probe's request handling, linked with the exporter's own sources:
 * the query string and the X-Prometheus-Scrape-Timeout-Seconds header as they reach
 * probe_check_params() and probe_new() (a probe built and freed, never started).
 *
 * Input: a selector byte (which configuration and timeout offset), then the query string
 * ("target=...&count=..." as after the '?' of the URL), then optionally '\n' and the header
 * value. The query is split as libmicrohttpd does ('&', then the first '='; '+' is a space;
 * %XX decoded by its own MHD_http_unescape; a key without '=' has no value; keys match
 * case-insensitively, the first one wins), so the strings are those server.c looks up.
 *
 * Invariants: every request is accepted (0) or refused with -EINVAL and a non-empty one-line
 * reason (no control characters, valid UTF-8), the same from probe_new(); refusals are
 * never silent truncations (a tiny error buffer still gets a terminated string). What is
 * accepted lies within the configuration: a known module, 1 <= count <= max_echoes_per_probe,
 * the probe's timeout within the module's and the scrape's (minus the offset), echoes that
 * fit in it, each with time to wait; parameters given are the values used. A probe built
 * from them renders (debug log and metrics) with exactly those settings.
 */
#include "exporter/exporter.h"
#include "exporter/probe.h"
#include "fuzz.h"

#include <microhttpd.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* A configuration with tight limits and modules at the edges: a count above the limit,
 * echoes that only fit the module's own timeout, a non-ASCII name with quotes. */
static const char limits_json[] =
    "{\"modules\": {"
    "  \"icmp\": {\"prober\": \"icmp\", \"timeout\": \"2s\","
    "    \"icmp\": {\"count\": 3, \"interval\": \"500ms\", \"echo_timeout\": \"700ms\"}},"
    "  \"many\": {\"prober\": \"icmp\", \"timeout\": \"1h\","
    "    \"icmp\": {\"count\": 1000, \"interval\": \"1ms\"}},"
    "  \"fast\": {\"prober\": \"icmp\", \"timeout\": \"100ms\"},"
    "  \"sp\\u00e4t \\\"quoted\\\"\": {\"prober\": \"icmp\", \"timeout\": \"10s\","
    "    \"icmp\": {\"count\": 2, \"interval\": \"3s\", \"preferred_ip_protocol\": \"ip6\"}}},"
    " \"targets\": [],"
    " \"limits\": {\"allowed_targets\": [\"198.18.0.0/15\", \"*.example.org\"],"
    "   \"max_echoes_per_probe\": 5, \"max_concurrent_probes\": 2}}";

/* The largest limits the configuration allows: counts up to a million. */
static const char huge_json[] =
    "{\"modules\": {\"icmp\": {\"prober\": \"icmp\", \"timeout\": \"1h\","
    "  \"icmp\": {\"count\": 1, \"interval\": \"1ms\"}}},"
    " \"limits\": {\"max_echoes_per_probe\": 1000000}}";

#define N_CONFIGS 3
/* Loaded once: parsing per input would only measure the JSON parser. */
static struct config *configs[N_CONFIGS];
/* --timeout-offset values: the default 0.5s, none, and more than some module timeouts. */
static const int64_t offsets[] = {500000000, 0, 1000000000, 3600LL * 1000000000};
#define N_OFFSETS (sizeof(offsets) / sizeof(offsets[0]))

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[512];

    (void)argc;
    (void)argv;
    if (config_load_default(&configs[0], err, sizeof(err)) != 0 ||
        config_load_text("limits.json", limits_json, strlen(limits_json), &configs[1], err,
                         sizeof(err)) != 0 ||
        config_load_text("huge.json", huge_json, strlen(huge_json), &configs[2], err,
                         sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_probe_params: %s\n", err);
        abort();
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * The request as libmicrohttpd hands it over.
 */

#define MAX_ARGS 32

struct request {
    char *keys[MAX_ARGS];
    size_t key_lens[MAX_ARGS];
    char *values[MAX_ARGS]; /* NULL: the key came without '=' */
    size_t n;
};

static void add_arg(struct request *rq, char *key, char *value)
{
    if (rq->n == MAX_ARGS)
        return;
    for (char *p = key; *p; p++)
        *p = *p == '+' ? ' ' : *p;
    rq->key_lens[rq->n] = MHD_http_unescape(key);
    if (value != NULL) {
        for (char *p = value; *p; p++)
            *p = *p == '+' ? ' ' : *p;
        MHD_http_unescape(value);
    }
    rq->keys[rq->n] = key;
    rq->values[rq->n] = value;
    rq->n++;
}

/* Splits a NUL-terminated query in place (MHD_parse_arguments_ of libmicrohttpd 0.9.75). */
static void parse_query(char *args, struct request *rq)
{
    while (args != NULL && *args != '\0') {
        char *amper = strchr(args, '&');
        char *equals = strchr(args, '=');

        if (amper != NULL)
            *amper++ = '\0';
        if (equals != NULL && (amper == NULL || equals < amper)) {
            *equals++ = '\0';
            add_arg(rq, args, equals);
        } else {
            add_arg(rq, args, NULL);
        }
        args = amper;
    }
}

/* MHD_lookup_connection_value: the first key of the same length, compared caselessly. */
static const char *lookup(const struct request *rq, const char *key)
{
    for (size_t i = 0; i < rq->n; i++)
        if (rq->key_lens[i] == strlen(key) && strncasecmp(rq->keys[i], key, rq->key_lens[i]) == 0)
            return rq->values[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Invariants.
 */

/* One line of valid UTF-8 without control characters. */
static bool one_clean_line(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p != '\0') {
        size_t n;
        uint32_t cp;
        if (*p < 0x20 || *p == 0x7f)
            return false;
        if (*p < 0x80) {
            p++;
            continue;
        }
        if ((*p & 0xe0) == 0xc0) {
            n = 2;
            cp = *p & 0x1fu;
        } else if ((*p & 0xf0) == 0xe0) {
            n = 3;
            cp = *p & 0x0fu;
        } else if ((*p & 0xf8) == 0xf0) {
            n = 4;
            cp = *p & 0x07u;
        } else {
            return false;
        }
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3fu);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || (cp >= 0x80 && cp < 0xa0))
            return false;
        p += n;
    }
    return true;
}

static bool target_chars(const char *t)
{
    for (; *t; t++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:%", *t) ==
            NULL)
            return false;
    return true;
}

/* A count as the contract reads it: decimal digits only; -1 when not that (or too big). */
static int64_t decimal(const char *s)
{
    int64_t v = 0;

    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

static void check_refusal(int rc, const char *err)
{
    FUZZ_ASSERT(rc == -EINVAL);
    FUZZ_ASSERT(err[0] != '\0');
    FUZZ_ASSERT(one_clean_line(err));
}

static void check_accepted(const struct config *cfg, int64_t offset, const struct probe_params *pp,
                           const struct probe_settings *s)
{
    const struct config_limits *limits = config_limits(cfg);
    const struct config_module *m = s->module;
    size_t tlen = strlen(pp->target);
    int64_t v;

    FUZZ_ASSERT(tlen >= 1 && tlen <= 253 && target_chars(pp->target));
    FUZZ_ASSERT(m != NULL && m == config_module_find(cfg, pp->module ? pp->module : "icmp"));
    FUZZ_ASSERT(s->count >= 1 && s->count <= limits->max_echoes_per_probe);
    FUZZ_ASSERT(pp->count != NULL ? (int64_t)s->count == decimal(pp->count) : s->count == m->count);
    if (pp->interval != NULL) {
        FUZZ_ASSERT(config_parse_duration(pp->interval, &v) == 0 && v == s->interval_ns);
        FUZZ_ASSERT(s->interval_ns > 0 && s->interval_ns <= 60 * (int64_t)1000000000);
    } else {
        FUZZ_ASSERT(s->interval_ns == m->interval_ns);
    }
    FUZZ_ASSERT(s->timeout_ns > 0 && s->timeout_ns <= m->timeout_ns);
    if (pp->timeout != NULL)
        FUZZ_ASSERT(config_parse_duration(pp->timeout, &v) == 0 && s->timeout_ns <= v);
    else if (pp->scrape_timeout == NULL)
        FUZZ_ASSERT(s->timeout_ns == m->timeout_ns);
    if (pp->scrape_timeout != NULL) {
        char *end;
        double secs = strtod(pp->scrape_timeout, &end);
        FUZZ_ASSERT(*end == '\0' && secs > 0 && secs <= 86400);
        FUZZ_ASSERT(s->timeout_ns <= (int64_t)(secs * 1e9) - offset);
    }
    /* Every echo is sent, and waited for, within the probe's timeout. */
    FUZZ_ASSERT(s->echo_timeout_ns > 0);
    FUZZ_ASSERT(s->interval_ns * (int64_t)(s->count - 1) + s->echo_timeout_ns <= s->timeout_ns);
    if (pp->count == NULL && pp->interval == NULL && pp->timeout == NULL)
        FUZZ_ASSERT(s->echo_timeout_ns <= m->echo_timeout_ns);
    FUZZ_ASSERT(s->debug == (pp->debug != NULL && strcmp(pp->debug, "true") == 0));
}

/* Refusals the contract makes certain, whatever the implementation does first. */
static bool must_refuse(const struct config *cfg, const struct probe_params *pp)
{
    const struct config_limits *limits = config_limits(cfg);
    int64_t v;

    if (pp->target == NULL || pp->target[0] == '\0' || strlen(pp->target) > 253 ||
        !target_chars(pp->target))
        return true;
    if (config_module_find(cfg, pp->module ? pp->module : "icmp") == NULL)
        return true;
    if (pp->count != NULL &&
        (decimal(pp->count) < 1 || decimal(pp->count) > limits->max_echoes_per_probe))
        return true;
    if (pp->interval != NULL && (config_parse_duration(pp->interval, &v) != 0 || v <= 0))
        return true;
    if (pp->timeout != NULL && (config_parse_duration(pp->timeout, &v) != 0 || v <= 0))
        return true;
    return false;
}

/* The first line of the debug answer, from the settings alone. */
static void check_probe(struct probe *p, const struct probe_params *pp,
                        const struct probe_settings *s)
{
    struct text_buf out, want;
    char err[64];

    FUZZ_ASSERT(strcmp(probe_module_name(p), s->module->name) == 0);
    FUZZ_ASSERT(probe_debug(p) == s->debug);
    FUZZ_ASSERT(!probe_success(p));
    FUZZ_ASSERT(probe_error(p, err, sizeof(err)) == 0);
    text_buf_init(&out, 1 << 20);
    text_buf_init(&want, 1 << 20);
    text_buf_printf(&want, "Probe of %s with module %s: %u echoes, %.3fs apart, timeout %.3fs\n",
                    pp->target, s->module->name, s->count, (double)s->interval_ns / 1e9,
                    (double)s->timeout_ns / 1e9);
    FUZZ_ASSERT(probe_render_debug(p, &out) == 0);
    FUZZ_ASSERT(text_buf_len(&out) > text_buf_len(&want));
    FUZZ_ASSERT(memcmp(text_buf_data(&out), text_buf_data(&want), text_buf_len(&want)) == 0);
    text_buf_cleanup(&out);
    text_buf_cleanup(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct exporter x; /* probe_new reads the offset; nothing here starts a probe */
    struct request rq = {0};
    struct probe_params pp;
    struct probe_settings s;
    struct probe *p = NULL;
    char err[512], err2[512], tiny[8];
    char *text, *header;
    int rc, rc2;

    if (size < 1)
        return 0;
    const struct config *cfg = configs[data[0] % N_CONFIGS];
    int64_t offset = offsets[(data[0] / N_CONFIGS) % N_OFFSETS];
    x.timeout_offset_ns = offset;

    /* NUL-terminated copy: MHD hands over C strings, so an embedded NUL ends the request. */
    text = malloc(size);
    FUZZ_ASSERT(text != NULL);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    header = strchr(text, '\n');
    if (header != NULL) {
        *header++ = '\0';
        /* One header line: MHD skips the blanks after the colon and ends it at CR or LF. */
        header[strcspn(header, "\r\n")] = '\0';
        header += strspn(header, " \t");
    }
    parse_query(text, &rq);
    pp = (struct probe_params){
        .target = lookup(&rq, "target"),
        .module = lookup(&rq, "module"),
        .count = lookup(&rq, "count"),
        .interval = lookup(&rq, "interval"),
        .timeout = lookup(&rq, "timeout"),
        .debug = lookup(&rq, "debug"),
        .scrape_timeout = header,
    };

    memset(err, 'x', sizeof(err));
    rc = probe_check_params(cfg, offset, &pp, &s, err, sizeof(err));
    FUZZ_ASSERT(rc == 0 || rc == -EINVAL);
    FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL || rc == 0);
    if (rc != 0) {
        check_refusal(rc, err);
        /* A small buffer cuts the reason but still terminates it. */
        memset(tiny, 'x', sizeof(tiny));
        FUZZ_ASSERT(probe_check_params(cfg, offset, &pp, &s, tiny, sizeof(tiny)) == rc);
        FUZZ_ASSERT(memchr(tiny, '\0', sizeof(tiny)) != NULL);
    } else {
        FUZZ_ASSERT(!must_refuse(cfg, &pp));
        check_accepted(cfg, offset, &pp, &s);
    }

    /* The same request through probe_new, as scrape.c makes it. */
    rc2 = probe_new(&x, (struct config *)cfg, &pp, &p, err2, sizeof(err2));
    FUZZ_ASSERT(rc2 == rc);
    if (rc2 != 0) {
        FUZZ_ASSERT(strcmp(err, err2) == 0);
    } else {
        FUZZ_ASSERT(p != NULL);
        check_probe(p, &pp, &s);
        probe_free(p);
    }
    free(text);
    return 0;
}
