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
 *
 * YAML takes another road to the same place: yaml.c builds the same kind of cJSON tree
 * from libyaml's events, keeping each node's position, and the schema reads it as
 * blackbox_exporter's configuration (the CONFIG__BLACKBOX dialect). A file is YAML by its
 * name (.yml, .yaml), JSON by its name (.json), else by its first byte that is not white
 * space: '{' (or none at all) is JSON. The web configuration file is read last, into the
 * config the main document made.
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

/* Continuous targets send on their own, whatever the scrapes: together they must fit in the
 * packet budget, or every one of them would fall behind its schedule. */
static int check_continuous_rate(struct loader *ld)
{
    const struct config *cfg = ld->cfg;
    double rate = 0;
    size_t n = 0;
    int rc = 0;

    for (size_t i = 0; i < cfg->n_targets; i++) {
        const struct config_module *m = cfg->targets[i].module;
        if (m->mode == CONFIG_MODE_CONTINUOUS) {
            rate += 1e9 / (double)m->interval_ns;
            n++;
        }
    }
    if (rate > (double)cfg->limits.max_packets_per_second) {
        config__push_key(ld, "targets", 0);
        rc = config__fail(ld, CONFIG__AT_KEY,
                          "%zu continuous targets send %.0f echoes per second, more than "
                          "limits.max_packets_per_second (%u): raise the limit or the modules' "
                          "interval, or shard the targets across exporters",
                          n, rate, cfg->limits.max_packets_per_second);
        config__pop(ld);
    }
    return rc;
}

static int parse_document(struct loader *ld, const cJSON *root)
{
    static const char *const keys[] = {"modules", "targets", "limits", "web", NULL};
    static const char *const blackbox_keys[] = {"modules", NULL};
    static int (*const parsers[])(struct loader *, const cJSON *) = {
        config__parse_modules, config__parse_targets, config__parse_limits, config__parse_web};
    struct config *cfg = ld->cfg;
    bool bb = ld->dialect == CONFIG__BLACKBOX;
    int rc;

    if (bb && (root == NULL || cJSON_IsNull(root)))
        return config__fail(ld, CONFIG__AT_VALUE,
                            "the document is empty; expected blackbox_exporter's \"modules:\"");
    rc = config__check_object(ld, root, bb ? blackbox_keys : keys);
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
    if (rc == 0)
        rc = check_continuous_rate(ld);
    if (rc == 0 && bb && cfg->n_modules == 0) {
        config__push_key(ld, "modules", 0);
        rc = config__warn(ld, CONFIG__AT_KEY,
                          "no icmp module: every /probe will be refused (unknown module)");
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

/* The strict check, then cJSON: *root, or the error. */
static int parse_json(struct loader *ld, cJSON **root)
{
    const char *why, *end = NULL;
    size_t offset = 0;
    char *copy;

    why = config__check_syntax(ld->text, ld->len, &offset);
    if (why != NULL) {
        char what[256];
        snprintf(what, sizeof(what), "expected %s, got", why);
        return syntax_error(ld->name, ld->text, ld->len, offset, what, ld->err, ld->errlen);
    }
    /* cJSON 1.7.15 with require_null_terminated wants the NUL inside the given length. */
    copy = malloc(ld->len + 1);
    if (copy == NULL)
        return config__fail_oom(ld);
    memcpy(copy, ld->text, ld->len);
    copy[ld->len] = '\0';
    /* On failure cJSON also writes its global error pointer, unsynchronised; we read only
     * the per-call end pointer, and failures are rare after our own check. */
    *root = cJSON_ParseWithLengthOpts(copy, ld->len + 1, &end, 1);
    if (*root == NULL) {
        /* Our check passed, so this is cJSON refusing valid JSON or out of memory. */
        offset = end != NULL && end >= copy ? (size_t)(end - copy) : 0;
        free(copy);
        return syntax_error(ld->name, ld->text, ld->len, offset, "cJSON refused the document at",
                            ld->err, ld->errlen);
    }
    free(copy);
    return 0;
}

/* Reads ld's text as FORMAT and hands it to the schema of ld->dialect, into ld->cfg. */
static int read_document(struct loader *ld, enum config_format format)
{
    struct config__yaml *yaml = NULL;
    cJSON *json = NULL;
    int rc;

    if (ld->len > CONFIG_MAX_DOCUMENT_SIZE)
        return say(ld->err, ld->errlen, -EFBIG,
                   "%s: the document is larger than the limit of %u bytes", ld->name,
                   CONFIG_MAX_DOCUMENT_SIZE);
    if (format == CONFIG_FORMAT_JSON)
        rc = parse_json(ld, &json);
    else
        rc = config__yaml_parse(ld->name, ld->text, ld->len, &yaml, ld->err, ld->errlen);
    if (rc != 0)
        return rc;
    ld->yaml = yaml;
    if (ld->dialect == CONFIG__WEB_FILE)
        rc = config__parse_web_file(ld, config__yaml_root(yaml));
    else
        rc = parse_document(ld, json != NULL ? json : config__yaml_root(yaml));
    ld->yaml = NULL;
    config__yaml_free(yaml);
    cJSON_Delete(json);
    return rc;
}

static void loader_init(struct loader *ld, const char *name, const char *text, size_t len,
                        const char *base_dir, char *err, size_t errlen)
{
    memset(ld, 0, sizeof(*ld));
    ld->name = name;
    ld->text = text;
    ld->len = len;
    ld->base_dir = base_dir;
    ld->err = err;
    ld->errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
}

static int load_text_in(const char *name, const char *text, size_t len, const char *base_dir,
                        enum config_format format, struct config **out, char *err, size_t errlen)
{
    struct loader ld;
    int rc;

    *out = NULL;
    loader_init(&ld, name, text, len, base_dir, err, errlen);
    ld.dialect = format == CONFIG_FORMAT_YAML ? CONFIG__BLACKBOX : CONFIG__NATIVE;
    ld.cfg = config__new();
    if (ld.cfg == NULL)
        return config__fail_oom(&ld);
    rc = read_document(&ld, format);
    if (rc != 0) {
        config__free(ld.cfg);
        return rc;
    }
    *out = ld.cfg;
    return 0;
}

int config_load_text(const char *name, const char *text, size_t len, struct config **out, char *err,
                     size_t errlen)
{
    return load_text_in(name, text, len, NULL, CONFIG_FORMAT_JSON, out, err, errlen);
}

int config_load_yaml(const char *name, const char *text, size_t len, struct config **out, char *err,
                     size_t errlen)
{
    return load_text_in(name, text, len, NULL, CONFIG_FORMAT_YAML, out, err, errlen);
}

int config_load_default(struct config **out, char *err, size_t errlen)
{
    const char *text = config_default_text();
    return load_text_in("(embedded default)", text, strlen(text), NULL, CONFIG_FORMAT_JSON, out,
                        err, errlen);
}

enum config_format config_format_of(const char *name, const char *text, size_t len)
{
    const char *slash = name != NULL ? strrchr(name, '/') : NULL;
    const char *dot = name != NULL ? strrchr(slash != NULL ? slash : name, '.') : NULL;
    size_t p = 0;

    if (dot != NULL && (strcmp(dot, ".yml") == 0 || strcmp(dot, ".yaml") == 0))
        return CONFIG_FORMAT_YAML;
    if (dot != NULL && strcmp(dot, ".json") == 0)
        return CONFIG_FORMAT_JSON;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        p = 3;
    while (p < len && (text[p] == ' ' || text[p] == '\t' || text[p] == '\n' || text[p] == '\r'))
        p++;
    return p == len || text[p] == '{' ? CONFIG_FORMAT_JSON : CONFIG_FORMAT_YAML;
}

/* Reads a whole file of at most CONFIG_MAX_DOCUMENT_SIZE bytes into *buf (malloc'd). */
static int read_file(const char *path, char **out, size_t *out_len, char *err, size_t errlen)
{
    char *buf = NULL, ebuf[128];
    size_t len = 0, cap = 0;
    int fd, rc = 0, e;

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
                goto out;
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
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CONFIG_MAX_DOCUMENT_SIZE)
        rc = say(err, errlen, -EFBIG, "%s: larger than the limit of %u bytes", path,
                 CONFIG_MAX_DOCUMENT_SIZE);
out:
    close(fd);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/* The directory part of PATH (malloc'd) into *dir, NULL for a bare name. */
static int dir_of(const char *path, char **dir, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    *dir = NULL;
    if (slash == NULL)
        return 0;
    n = slash == path ? 1 : (size_t)(slash - path);
    *dir = malloc(n + 1);
    if (*dir == NULL)
        return say(err, errlen, -ENOMEM, "%s: out of memory", path);
    memcpy(*dir, path, n);
    (*dir)[n] = '\0';
    return 0;
}

/* Reads the web configuration file PATH into CFG's web section. */
static int load_web_file(const char *path, struct config *cfg, char *err, size_t errlen)
{
    struct loader ld;
    char *buf = NULL, *base = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len, err, errlen);

    if (rc == 0)
        rc = dir_of(path, &base, err, errlen);
    if (rc == 0) {
        loader_init(&ld, path, buf, len, base, err, errlen);
        ld.dialect = CONFIG__WEB_FILE;
        ld.cfg = cfg;
        rc = read_document(&ld, CONFIG_FORMAT_YAML);
    }
    free(base);
    free(buf);
    return rc;
}

int config_load_files(const struct config_files *files, struct config **out, char *err,
                      size_t errlen)
{
    const char *path = files->config_file;
    char *buf = NULL, *base = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (path == NULL) {
        rc = config_load_default(out, err, errlen);
    } else {
        rc = read_file(path, &buf, &len, err, errlen);
        if (rc == 0)
            rc = dir_of(path, &base, err, errlen);
        if (rc == 0)
            rc = load_text_in(path, buf, len, base, config_format_of(path, buf, len), out, err,
                              errlen);
    }
    if (rc == 0 && files->web_config_file != NULL) {
        rc = load_web_file(files->web_config_file, *out, err, errlen);
        if (rc != 0) {
            config__free(*out);
            *out = NULL;
        }
    }
    free(base);
    free(buf);
    return rc;
}

int config_load_file(const char *path, struct config **out, char *err, size_t errlen)
{
    const struct config_files files = {path, NULL};
    return config_load_files(&files, out, err, errlen);
}

const char *config_json_library_version(void)
{
    return cJSON_Version();
}

const char *const *config_warnings(const struct config *cfg, size_t *n)
{
    *n = cfg->n_warnings;
    return cfg->warnings;
}
