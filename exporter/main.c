/*
 * icmp_exporter's entry point. For now it parses the command line, reports its version
 * and checks configurations (--config.check: load, validate, print, exit; no socket is
 * opened); the HTTP server, /probe and /metrics arrive with the exporter issue. It exits
 * non-zero when asked to serve, rather than pretend to.
 */
#include <microhttpd.h>
#include <cjson/cJSON.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/icmp.h"

static void print_usage(FILE *out)
{
    fputs("usage: icmp_exporter [--help] [--version] [--config.file=PATH] [--config.check]\n"
          "\n"
          "Prometheus exporter measuring networks with ICMP echo.\n"
          "\n"
          "  --help               show this help and exit\n"
          "  --version            show version information and exit\n"
          "  --config.file=PATH   JSON configuration file, also --config.file PATH\n"
          "                       (default: the embedded configuration)\n"
          "  --config.check       validate the configuration, print the result, exit 0 or 1\n",
          out);
}

/* Loads the configuration (PATH, or the embedded default when NULL); prints errors. */
static struct config *load_config(const char *path)
{
    struct config *cfg = NULL;
    char err[1024];
    int rc = path != NULL ? config_load_file(path, &cfg, err, sizeof(err))
                          : config_load_default(&cfg, err, sizeof(err));

    if (rc != 0) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    return cfg;
}

int main(int argc, char **argv)
{
    const char *config_file = NULL;
    bool check = false;
    struct config *cfg;

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
        if (strcmp(argv[i], "--config.check") == 0) {
            check = true;
            continue;
        }
        if (strncmp(argv[i], "--config.file=", 14) == 0) {
            config_file = argv[i] + 14;
            continue;
        }
        if (strcmp(argv[i], "--config.file") == 0) {
            if (i + 1 == argc) {
                fputs("icmp_exporter: --config.file needs a file name (see --help)\n", stderr);
                return 2;
            }
            config_file = argv[++i];
            continue;
        }
        fprintf(stderr, "icmp_exporter: unknown flag '%s' (see --help)\n", argv[i]);
        return 2;
    }
    if (config_file != NULL && config_file[0] == '\0') {
        fputs("icmp_exporter: --config.file needs a file name (see --help)\n", stderr);
        return 2;
    }
    cfg = load_config(config_file);
    if (cfg == NULL)
        return 1;
    if (check) {
        size_t n_modules, n_targets;
        config_modules(cfg, &n_modules);
        config_targets(cfg, &n_targets);
        printf("config OK: %zu modules, %zu targets\n", n_modules, n_targets);
        config_unref(cfg);
        return 0;
    }
    config_unref(cfg);
    fputs("icmp_exporter: the HTTP server is not built yet; this build only answers --help, "
          "--version and --config.check\n",
          stderr);
    return 1;
}
