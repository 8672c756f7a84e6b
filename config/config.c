/*
 * The config object: what a load produces and every reader holds.
 *
 * Everything a config holds lives in one arena freed at once, so a half-built config on
 * an error path is released by one call, and a loaded config is never written again
 * (only its atomic reference count changes). The views below hand out pointers into it,
 * valid as long as the caller's reference.
 */
#include "config/config_internal.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct config__arena_block {
    struct config__arena_block *next;
    size_t used, size;
    max_align_t data[];
};

/* ---- arena ---- */

void *config__arena_alloc(struct config *cfg, size_t size)
{
    struct config__arena_block *b = cfg->arena;
    size_t align = alignof(max_align_t);

    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + align - 1) / align * align;
    if (b == NULL || b->size - b->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->next = cfg->arena;
        b->used = 0;
        b->size = cap;
        cfg->arena = b;
    }
    void *p = (unsigned char *)b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

void *config__arena_array(struct config *cfg, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    if (n > SIZE_MAX / size)
        return NULL;
    return config__arena_alloc(cfg, n * size);
}

char *config__arena_strdup(struct config *cfg, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = config__arena_alloc(cfg, n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

/* ---- life ---- */

struct config *config__new(void)
{
    struct config *cfg = calloc(1, sizeof(*cfg));

    if (cfg != NULL)
        atomic_init(&cfg->refs, 1);
    return cfg;
}

void config__free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    while (cfg->arena != NULL) {
        struct config__arena_block *next = cfg->arena->next;
        free(cfg->arena);
        cfg->arena = next;
    }
    free(cfg);
}

/* ---- references and views ---- */

struct config *config_ref(struct config *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

void config_unref(struct config *cfg)
{
    /* acq_rel: every holder's reads happen before the free by the last one. */
    if (cfg != NULL && atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
        config__free(cfg);
}

const struct config_module *config_module_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; name != NULL && i < cfg->n_modules; i++) {
        if (strcmp(cfg->modules[i].name, name) == 0)
            return &cfg->modules[i];
    }
    return NULL;
}

const struct config_module *config_modules(const struct config *cfg, size_t *n)
{
    *n = cfg->n_modules;
    return cfg->modules;
}

const struct config_target *config_targets(const struct config *cfg, size_t *n)
{
    *n = cfg->n_targets;
    return cfg->targets;
}

const struct config_limits *config_limits(const struct config *cfg)
{
    return &cfg->limits;
}

const struct config_web *config_web(const struct config *cfg)
{
    return &cfg->web;
}
