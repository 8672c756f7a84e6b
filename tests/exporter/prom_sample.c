/*
 * Writes a representative exposition with exporter/prom/prom.h to stdout, for test_promtool.sh to
 * feed to real parsers: gauges, counters, a histogram, units, hostile label values and help
 * text, special values. Usage: prom_sample text|openmetrics [gzip]
 */
#include "exporter/prom/prom.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void render(struct prom_writer *w)
{
    static const char *const targets[] = {
        "192.0.2.1",
        "example.org",
        "C:\\DIR\\FILE.TXT",
        "quote \" and\nnewline",
        "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80",
        "bad \xFF\xC0\xAF utf-8",
        "",
    };
    static const double bounds[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
    static const uint64_t counts[] = {0, 3, 10, 4, 0, 0, 1, 0, 0, 1};

    prom_family(w, "icmp_probe_success", PROM_TYPE_GAUGE,
                "Whether the last probe got at least one reply (1) or none (0).", NULL);
    for (size_t i = 0; i < N(targets); i++) {
        const struct prom_label l[] = {{"target", targets[i]}, {"ip_version", "4"}};
        prom_sample(w, "icmp_probe_success", l, N(l), (double)(i % 2));
    }

    prom_family(w, "icmp_probe_rtt_seconds", PROM_TYPE_GAUGE,
                "Mean round-trip time of the last probe \\ in seconds; NaN without \"replies\".\n"
                "Second line.",
                "seconds");
    for (size_t i = 0; i < N(targets); i++) {
        const struct prom_label common[] = {{"target", targets[i]}};
        const struct prom_label per[] = {{"stat", "mean"}};
        double v = i == 0 ? 0.000123456 : i == 1 ? NAN : i == 2 ? 1e-9 : (double)i / 3;
        prom_sample2(w, "icmp_probe_rtt_seconds", common, N(common), per, N(per), v);
    }

    prom_family(w, "icmp_echo_requests_total", PROM_TYPE_COUNTER, "Echo requests sent.", NULL);
    prom_sample(w, "icmp_echo_requests_total", NULL, 0, 123456789012);
    prom_family(w, "icmp_echo_sent_bytes_total", PROM_TYPE_COUNTER, "Bytes of echo requests.",
                "bytes");
    prom_sample(w, "icmp_echo_sent_bytes_total", NULL, 0, 1e21);

    prom_family(w, "icmp_echo_rtt_seconds", PROM_TYPE_HISTOGRAM, "Round-trip time of echo replies.",
                "seconds");
    const struct prom_buckets h = {bounds, counts, N(bounds), 25, 5.312, NULL};
    const struct prom_buckets none = {bounds, (const uint64_t[N(bounds)]){0}, N(bounds), 0, 0,
                                      NULL};
    for (size_t i = 0; i < 2; i++) {
        const struct prom_label l[] = {{"target", targets[i + 2]}};
        prom_histogram(w, "icmp_echo_rtt_seconds", l, N(l), NULL, 0, i == 0 ? &h : &none);
    }

    prom_family(w, "icmp_exporter_limits", PROM_TYPE_GAUGE, "Extreme values.", NULL);
    static const double extremes[] = {INFINITY, -INFINITY, 1.7976931348623157e308, 5e-324, -0.0};
    static const char *const kinds[] = {"inf", "minus_inf", "max", "subnormal", "minus_zero"};
    for (size_t i = 0; i < N(extremes); i++) {
        const struct prom_label l[] = {{"kind", kinds[i]}};
        prom_sample(w, "icmp_exporter_limits", l, 1, extremes[i]);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "text") != 0 && strcmp(argv[1], "openmetrics") != 0)) {
        fprintf(stderr, "usage: prom_sample text|openmetrics [gzip]\n");
        return 2;
    }
    enum prom_format f = strcmp(argv[1], "text") == 0 ? PROM_FORMAT_TEXT : PROM_FORMAT_OPENMETRICS;
    struct text_buf b, z;
    struct prom_writer w;
    text_buf_init(&b, 1 << 20);
    text_buf_init(&z, 1 << 20);
    prom_writer_init(&w, &b, f);
    render(&w);
    int err = prom_finish(&w);
    const struct text_buf *out = &b;
    if (err == 0 && argc > 2 && strcmp(argv[2], "gzip") == 0) {
        err = prom_gzip(&b, &z);
        out = &z;
    }
    if (err != 0) {
        fprintf(stderr, "prom_sample: rendering failed: %s\n", strerror(-err));
        return 1;
    }
    fwrite(text_buf_data(out), 1, text_buf_len(out), stdout);
    text_buf_cleanup(&b);
    text_buf_cleanup(&z);
    return fflush(stdout) == 0 ? 0 : 1;
}
