/*
 * Loading a document: text -> strict syntax check -> cJSON tree -> the schema's parsers ->
 * a validated, immutable struct config.
 *
 * Model. Our own syntax check (syntax.c) runs before cJSON, which is lenient in ways a
 * configuration must not be; only then is the tree built and handed to the schema, one
 * top-level key after another in a fixed order (modules, targets, limits, web), so that
 * the one error reported is always about the first problem in that order (inside an
 * object: its unknown or duplicate keys first, then its members in document order, then
 * checks across members). Checks across top-level keys come last. On any failure the
 * half-built config is freed whole (its arena) and the caller gets NULL.
 */
#include "config/config_internal.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the document ---- */

static int parse_document(struct loader *ld, const cJSON *root)
{
    static const char *const keys[] = {"modules", "targets", "limits", "web", NULL};
    static int (*const parsers[])(struct loader *, const cJSON *) = {
        config__parse_modules, config__parse_targets, config__parse_limits, config__parse_web};
    struct config *cfg = ld->cfg;
    int rc = config__check_object(ld, root, keys);

    config__limits_web_defaults(cfg);
    /* Modules first whatever the order in the file: targets refer to them. */
    for (size_t i = 0; rc == 0 && keys[i] != NULL; i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
        if (item == NULL)
            continue;
        config__push_key(ld, keys[i], 0);
        rc = parsers[i](ld, item);
        config__pop(ld);
    }
    /* Checked once limits are read, wherever they stand in the file: every static target
     * is probed at each /metrics scrape. */
    if (rc == 0 && cfg->n_targets > cfg->limits.max_targets_per_scrape) {
        config__push_key(ld, "targets", 0);
        rc = config__fail(ld, CONFIG__AT_KEY,
                          "%zu static targets, more than limits.max_targets_per_scrape (%u): raise "
                          "the limit, or shard the targets across exporters",
                          cfg->n_targets, cfg->limits.max_targets_per_scrape);
        config__pop(ld);
    }
    return rc;
}

/* Writes a message into err (when the caller gave one) and returns RC. */
__attribute__((format(printf, 4, 5))) static int say(char *err, size_t errlen, int rc,
                                                     const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static void describe_byte(const char *text, size_t len, size_t offset, char *buf, size_t size)
{
    unsigned char c = offset < len ? (unsigned char)text[offset] : 0;

    if (offset >= len)
        snprintf(buf, size, "the end of the document");
    else if (c > 0x20 && c < 0x7f && c != '\'')
        snprintf(buf, size, "'%c'", c);
    else
        snprintf(buf, size, "byte 0x%02x", c);
}

/* `NAME:LINE:COL: (syntax): WHAT <the byte at OFFSET>` into err; returns -EINVAL. */
static int syntax_error(const char *name, const char *text, size_t len, size_t offset,
                        const char *what, char *err, size_t errlen)
{
    char got[48];
    unsigned line, col;

    describe_byte(text, len, offset, got, sizeof(got));
    config__line_col(text, len, offset, &line, &col);
    return say(err, errlen, -EINVAL, "%s:%u:%u: (syntax): %s %s", name, line, col, what, got);
}

static int load_text_in(const char *name, const char *text, size_t len, const char *base_dir,
                        struct config **out, char *err, size_t errlen)
{
    struct loader ld;
    cJSON *root = NULL;
    char *copy = NULL;
    const char *why;
    size_t offset = 0;
    int rc;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    memset(&ld, 0, sizeof(ld));
    ld.name = name;
    ld.text = text;
    ld.len = len;
    ld.base_dir = base_dir;
    ld.err = err;
    ld.errlen = errlen;
    if (len > CONFIG_MAX_DOCUMENT_SIZE)
        return say(err, errlen, -EFBIG, "%s: the document is larger than the limit of %u bytes",
                   name, CONFIG_MAX_DOCUMENT_SIZE);
    why = config__check_syntax(text, len, &offset);
    if (why != NULL) {
        char what[256];
        snprintf(what, sizeof(what), "expected %s, got", why);
        return syntax_error(name, text, len, offset, what, err, errlen);
    }
    /* cJSON 1.7.15 with require_null_terminated wants the NUL inside the given length. */
    copy = malloc(len + 1);
    if (copy == NULL) {
        rc = config__fail_oom(&ld);
        goto fail;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    {
        /* On failure cJSON also writes its global error pointer, unsynchronised; we read
         * only the per-call end pointer, and failures are rare after our own check. */
        const char *end = NULL;
        root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
        if (root == NULL) {
            /* Our check passed, so this is cJSON refusing valid JSON or out of memory. */
            offset = end != NULL && end >= copy ? (size_t)(end - copy) : 0;
            rc =
                syntax_error(name, text, len, offset, "cJSON refused the document at", err, errlen);
            goto fail;
        }
    }
    ld.cfg = config__new();
    if (ld.cfg == NULL) {
        rc = config__fail_oom(&ld);
        goto fail;
    }
    rc = parse_document(&ld, root);
    if (rc != 0)
        goto fail;
    cJSON_Delete(root);
    free(copy);
    *out = ld.cfg;
    return 0;

fail:
    config__free(ld.cfg);
    cJSON_Delete(root);
    free(copy);
    return rc;
}

int config_load_text(const char *name, const char *text, size_t len, struct config **out, char *err,
                     size_t errlen)
{
    return load_text_in(name, text, len, NULL, out, err, errlen);
}

int config_load_default(struct config **out, char *err, size_t errlen)
{
    const char *text = config_default_text();
    return load_text_in("(embedded default)", text, strlen(text), NULL, out, err, errlen);
}

int config_load_file(const char *path, struct config **out, char *err, size_t errlen)
{
    char *buf = NULL, *base = NULL, ebuf[128];
    size_t len = 0, cap = 0;
    int fd = -1, rc, e;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        e = errno;
        return say(err, errlen, -e, "%s: cannot open: %s", path, strerror_r(e, ebuf, sizeof(ebuf)));
    }
    for (;;) {
        ssize_t n;
        if (len == cap) {
            size_t ncap = cap == 0 ? 65536 : cap * 2;
            char *nbuf;
            if (cap > CONFIG_MAX_DOCUMENT_SIZE)
                break; /* len > the limit: refused below */
            nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                rc = say(err, errlen, -ENOMEM, "%s: out of memory", path);
                goto fail;
            }
            buf = nbuf;
            cap = ncap;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = errno;
            rc = say(err, errlen, -e, "%s: cannot read: %s", path,
                     strerror_r(e, ebuf, sizeof(ebuf)));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CONFIG_MAX_DOCUMENT_SIZE) {
        rc = say(err, errlen, -EFBIG, "%s: larger than the limit of %u bytes", path,
                 CONFIG_MAX_DOCUMENT_SIZE);
        goto fail;
    }
    {
        const char *slash = strrchr(path, '/');
        if (slash != NULL) {
            size_t n = slash == path ? 1 : (size_t)(slash - path);
            base = malloc(n + 1);
            if (base == NULL) {
                rc = say(err, errlen, -ENOMEM, "%s: out of memory", path);
                goto fail;
            }
            memcpy(base, path, n);
            base[n] = '\0';
        }
    }
    rc = load_text_in(path, buf, len, base, out, err, errlen);
fail:
    free(base);
    free(buf);
    close(fd);
    return rc;
}

const char *config_json_library_version(void)
{
    return cJSON_Version();
}
