/*
 * icmp_exporter's entry point. For now it parses the command line and reports its
 * version; the HTTP server, /probe and /metrics arrive with the exporter issue. It exits
 * non-zero when asked to serve, rather than pretend to.
 */
#include <microhttpd.h>
#include <cjson/cJSON.h>

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/icmp.h"

static void print_usage(FILE *out)
{
    fputs("usage: icmp_exporter [--help] [--version]\n"
          "\n"
          "Prometheus exporter measuring networks with ICMP echo.\n"
          "\n"
          "  --help      show this help and exit\n"
          "  --version   show version information and exit\n",
          out);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("icmp_exporter, version %s (libmicrohttpd %s, cJSON %s)\n", ICMPX_VERSION,
                   MHD_get_version(), cJSON_Version());
            return 0;
        }
        fprintf(stderr, "icmp_exporter: unknown flag '%s' (see --help)\n", argv[i]);
        return 2;
    }
    fputs("icmp_exporter: the HTTP server is not built yet; this build only answers --help "
          "and --version\n",
          stderr);
    return 1;
}
