/*
 * libFuzzer target over the configuration loader: any bytes, read as JSON and again as
 * blackbox_exporter's YAML, must give either a config (freed again) or one NUL-terminated
 * error line, never a crash, a leak or undefined behaviour. Loaded configurations are also
 * walked (warnings included) and asked the allow-list question, so every pointer they hand
 * out is touched under ASan.
 */
#include "config/config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct config *cfg)
{
    static const struct icmp_addr probe = {AF_INET, {127, 0, 0, 1}, 0};
    size_t n_modules, n_targets;
    const struct config_module *m = config_modules(cfg, &n_modules);
    const struct config_target *t = config_targets(cfg, &n_targets);
    const struct config_web *w = config_web(cfg);
    size_t total = 0;

    for (size_t i = 0; i < n_modules; i++) {
        if (config_module_find(cfg, m[i].name) == NULL)
            __builtin_trap();
        total += m[i].n_buckets;
    }
    for (size_t i = 0; i < n_targets; i++) {
        total += strlen(t[i].target) + strlen(t[i].module->name);
        for (size_t j = 0; j < t[i].n_labels; j++)
            total += strlen(t[i].labels[j].name) + strlen(t[i].labels[j].value);
        config_target_allowed(cfg, t[i].target, t[i].is_literal ? &t[i].addr : &probe);
    }
    for (size_t i = 0; i < w->n_listen_addresses; i++)
        total += strlen(w->listen_addresses[i]);
    for (size_t i = 0; i < w->n_users; i++)
        total += strlen(w->users[i].name) + strlen(w->users[i].bcrypt_hash);
    {
        size_t n;
        const char *const *warnings = config_warnings(cfg, &n);
        for (size_t i = 0; i < n; i++)
            total += strlen(warnings[i]);
    }
    if (total == SIZE_MAX)
        __builtin_trap(); /* keeps the reads from being optimised away */
}

typedef int load_fn(const char *name, const char *text, size_t len, struct config **cfg, char *err,
                    size_t errlen);

static void one(load_fn *load, const char *name, const uint8_t *data, size_t size)
{
    struct config *cfg = NULL;
    char err[512], tiny[8];

    memset(err, 'x', sizeof(err));
    if (load(name, (const char *)data, size, &cfg, err, sizeof(err)) == 0) {
        walk(cfg);
        config_unref(config_ref(cfg));
        config_unref(cfg);
        return;
    }
    if (cfg != NULL || memchr(err, '\0', sizeof(err)) == NULL)
        __builtin_trap();
    /* The same failure into a tiny buffer: cut, terminated, never overrun. */
    load(name, (const char *)data, size, &cfg, tiny, sizeof(tiny));
    if (cfg != NULL || memchr(tiny, '\0', sizeof(tiny)) == NULL)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(config_load_text, "fuzz.json", data, size);
    one(config_load_yaml, "fuzz.yml", data, size);
    return 0;
}
