/*
 * The test tools' shared helpers (tool.h): plain functions over caller-owned values, no
 * state of their own.
 */
#include "tests/lib/tool.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>

int64_t tool_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * TOOL_NS_PER_S + (int64_t)ts.tv_nsec;
}

int tool_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return -EINVAL;
    *out = (int64_t)v;
    return 0;
}

int tool_parse_args(int argc, char **argv, const struct tool_opt *opts, size_t n)
{
    for (int i = 1; i < argc; i++) {
        const struct tool_opt *o = NULL;
        const char *v;

        for (size_t k = 0; k < n && o == NULL; k++)
            o = strcmp(argv[i], opts[k].name) == 0 ? &opts[k] : NULL;
        if (o == NULL)
            return strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ? 1 : -EINVAL;
        if (o->kind == TOOL_OPT_FLAG) {
            *(bool *)o->dst = true;
            continue;
        }
        if (++i == argc)
            return -EINVAL;
        v = argv[i];
        switch (o->kind) {
        case TOOL_OPT_TEXT:
            *(const char **)o->dst = v;
            break;
        case TOOL_OPT_INT:
            if (tool_parse_i64(v, o->min, o->max, o->dst) < 0)
                return -EINVAL;
            break;
        case TOOL_OPT_LIST:
            if (*o->count >= (size_t)o->max)
                return -EINVAL;
            ((const char **)o->dst)[(*o->count)++] = v;
            break;
        case TOOL_OPT_FLAG:
            break;
        }
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

void tool_sort_i64(int64_t *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_i64);
}

int64_t tool_quantile_i64(const int64_t *sorted, size_t n, double q)
{
    size_t i;

    if (n == 0)
        return -1;
    i = (size_t)(q * (double)(n - 1));
    return sorted[i < n ? i : n - 1];
}

void tool_free_lines(char **lines, size_t n)
{
    for (size_t i = 0; lines != NULL && i < n; i++)
        free(lines[i]);
    free(lines);
}

int tool_read_lines(const char *file, size_t max, char ***lines, size_t *n)
{
    FILE *f = fopen(file, "r");
    char *line = NULL, **v = NULL;
    size_t cap = 0, alloc = 0, count = 0;
    ssize_t len;
    int rc = -ENOMEM;

    *lines = NULL;
    *n = 0;
    if (f == NULL)
        return -errno;
    while ((len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (count == max) {
            rc = -E2BIG;
            goto fail;
        }
        if (count == alloc) {
            size_t na = alloc ? alloc * 2 : 1024;
            char **p = realloc(v, na * sizeof(*p));

            if (p == NULL)
                goto fail;
            v = p;
            alloc = na;
        }
        v[count] = strdup(line);
        if (v[count] == NULL)
            goto fail;
        count++;
    }
    if (ferror(f)) {
        rc = -EIO;
        goto fail;
    }
    free(line);
    fclose(f);
    if (count == 0) {
        free(v);
        return -ENODATA;
    }
    *lines = v;
    *n = count;
    return 0;
fail:
    free(line);
    fclose(f);
    tool_free_lines(v, count);
    return rc;
}

void tool_raise_nofile(size_t n)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= n + 64)
        return;
    rl.rlim_cur = rl.rlim_max < n + 64 ? rl.rlim_max : n + 64;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
}
