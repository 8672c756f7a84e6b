/*
 * Declarations shared by the files of config/. Nothing outside config/ (but its tests)
 * includes this.
 */
#ifndef CONFIG_INTERNAL_H
#define CONFIG_INTERNAL_H

#include "config/config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* cJSON's node (typedef'd as cJSON in <cjson/cJSON.h>); only the .c files that walk a
 * tree include cJSON itself. */
struct cJSON;

/* One step of a JSON path: an object member (key, its nth occurrence) or an array index. */
struct config__path_elem {
    const char *key;     /* NULL for an array element */
    size_t index;        /* array index when key is NULL */
    unsigned occurrence; /* 0 for the first member named key, 1 for a duplicate, ... */
};

/* ---- the config object (config.c) ---- */

struct config__arena_block;

/* Everything a config holds lives in its arena, freed at once; only refs changes after load. */
struct config {
    atomic_size_t refs;
    struct config__arena_block *arena;
    struct config_module *modules;
    size_t n_modules;
    struct config_target *targets;
    size_t n_targets;
    struct config_limits limits;
    struct config_web web;
    const char **warnings; /* `FILE:LINE:COL: PATH: MESSAGE` lines, in the order found */
    size_t n_warnings, cap_warnings;
    /* "FILE:LINE:COL" of the main document's web.tls_server_config and
     * web.basic_auth_users, NULL when absent: the web configuration file may not set them
     * again. */
    const char *web_tls_at, *web_users_at;
};

/* A new, empty config holding one reference, or NULL when out of memory. */
struct config *config__new(void);

/* Frees CFG and its arena whatever its reference count (a config that failed to load). */
void config__free(struct config *cfg);

/*
 * Zeroed memory from CFG's arena, aligned for any type, freed with the config; NULL when
 * out of memory. config__arena_array returns NULL for N == 0 too.
 */
void *config__arena_alloc(struct config *cfg, size_t size);
void *config__arena_array(struct config *cfg, size_t n, size_t size);
char *config__arena_strdup(struct config *cfg, const char *s);

/* ---- the loader and its diagnostics (diag.c) ---- */

#define CONFIG__PATH_MAX_DEPTH 8 /* deepest path we name: modules.M.icmp.buckets[i] is 5 */

/*
 * What a document is read as: our own JSON schema; blackbox_exporter's configuration
 * (blackbox.yml: only "modules", Go durations, other probers skipped, null and 0 as
 * absent); exporter-toolkit's web configuration file (--web.config.file).
 */
enum config__dialect { CONFIG__NATIVE, CONFIG__BLACKBOX, CONFIG__WEB_FILE };

struct config__yaml;

/* One load in progress: the source text, where we stand in it, and the config being built. */
struct loader {
    const char *name; /* file name for messages */
    const char *text;
    size_t len;
    const struct config__yaml *yaml; /* the YAML document read; NULL: TEXT is JSON */
    enum config__dialect dialect;
    const char *base_dir; /* relative TLS paths are resolved against it; NULL: as given */
    char *err;
    size_t errlen;
    struct config *cfg;
    struct config__path_elem path[CONFIG__PATH_MAX_DEPTH];
    size_t depth;
};

/* Enter an object member (its nth occurrence) or an array element; pop leaves it. */
void config__push_key(struct loader *ld, const char *key, unsigned occurrence);
void config__push_index(struct loader *ld, size_t index);
void config__pop(struct loader *ld);

/*
 * Writes `FILE:LINE:COL: PATH: MESSAGE` for the current path into the loader's error
 * buffer, the position being its value's or (CONFIG__AT_KEY) its key's, and returns
 * -EINVAL. config__fail_got appends ", got <the value as written>" and points at the
 * value. config__fail_oom writes `FILE: out of memory` and returns -ENOMEM.
 */
enum config__where { CONFIG__AT_VALUE, CONFIG__AT_KEY };
__attribute__((format(printf, 3, 4))) int config__fail(struct loader *ld, enum config__where where,
                                                       const char *fmt, ...);
__attribute__((format(printf, 3, 4))) int
config__fail_got(struct loader *ld, const struct cJSON *item, const char *fmt, ...);
int config__fail_oom(struct loader *ld);

/*
 * Records a warning, `FILE:LINE:COL: PATH: MESSAGE` as config__fail words an error, in
 * the config being built (config_warnings). Returns 0, or config__fail_oom's -ENOMEM.
 */
__attribute__((format(printf, 3, 4))) int config__warn(struct loader *ld, enum config__where where,
                                                       const char *fmt, ...);

/* "FILE:LINE:COL" of the current path's value or key, in the config's arena (NULL: OOM). */
const char *config__where_now(struct loader *ld, enum config__where where);

/* A YAML null (`key:`, `key: ~`): Go's YAML readers then leave the field as it was, so
 * the schema takes it as an absent key. Always false for JSON. */
bool config__absent(const struct loader *ld, const struct cJSON *item);

/* Appends to buf[*used..size), never overflowing; output is cut at the end. */
__attribute__((format(printf, 4, 5))) void config__append(char *buf, size_t size, size_t *used,
                                                          const char *fmt, ...);

/* S as a double-quoted string safe for a terminal: escapes, cut after 64 bytes. */
void config__quote(const char *s, char *buf, size_t size);

/*
 * OBJ (at the current path) must be an object with no duplicate keys and, unless ALLOWED
 * is NULL (a map of free names), only ALLOWED keys (a NULL-terminated list). Returns 0 or
 * the error of the first offender in document order.
 */
int config__check_object(struct loader *ld, const struct cJSON *obj, const char *const *allowed);

/*
 * Calls EACH for every member of PARENT (an object or an array) in document order, the
 * loader standing on it (its key, or its index), with I its position and ARG passed
 * through. Stops at the first error and returns it; 0 when every member passed.
 */
typedef int config__member_fn(struct loader *ld, const struct cJSON *member, size_t i, void *arg);
int config__each_member(struct loader *ld, const struct cJSON *parent, config__member_fn *each,
                        void *arg);

/*
 * A collection: PARENT must be an array (else "expected an array of ARRAY_OF, got ...")
 * or, with ARRAY_OF NULL, an object of free names (config__check_object with no key
 * list). Allocates one zeroed SIZE-byte element per member in the arena, then, unless
 * EACH is NULL, fills them through config__each_member with the array as ARG. Sets *n to
 * the number of members and *rc to 0 or the first error. Returns the array: NULL when
 * there are no members, or on error.
 */
void *config__collect(struct loader *ld, const struct cJSON *parent, const char *array_of,
                      size_t size, config__member_fn *each, size_t *n, int *rc);

/*
 * Typed getters for the value at the current path: 0 and *out set, or the error
 * "expected <what>, got <value>". get_uint takes an integer in lo..hi (WHY is appended to
 * the range in the message); get_duration a Prometheus duration in (0, 1h], or in the
 * blackbox dialect a Go duration of whole milliseconds in [0, 1h] (0: none given).
 */
int config__get_string(struct loader *ld, const struct cJSON *item, const char *what,
                       const char **out);
int config__get_bool(struct loader *ld, const struct cJSON *item, bool *out);
int config__get_uint(struct loader *ld, const struct cJSON *item, unsigned lo, unsigned hi,
                     const char *why, unsigned *out);
int config__get_duration(struct loader *ld, const struct cJSON *item, int64_t *out);

/* ---- the schema (schema_probes.c, schema_web.c) ---- */

/* Each parses its top-level key's value (at the current path) into ld->cfg. Modules are
 * parsed before targets, which refer to them. */
int config__parse_modules(struct loader *ld, const struct cJSON *obj);
int config__parse_targets(struct loader *ld, const struct cJSON *arr);
int config__parse_limits(struct loader *ld, const struct cJSON *obj);
int config__parse_web(struct loader *ld, const struct cJSON *obj);

/*
 * The web configuration file (--web.config.file, exporter-toolkit's format) into ld->cfg's
 * web section, after the main document; ROOT NULL is an empty file. Refuses what the main
 * document set already (TLS, users) and what this exporter cannot do, naming the key.
 */
int config__parse_web_file(struct loader *ld, const struct cJSON *root);

/* Sets the defaults of limits and web, before either is parsed. */
void config__limits_web_defaults(struct config *cfg);

/*
 * Finds in TEXT (LEN bytes of JSON) the value at PATH (DEPTH steps; 0 is the root), or
 * with WANT_KEY the key of the last step. Returns 0 and sets *offset, or -ENOENT when
 * the path does not exist, -EINVAL when the text is not JSON where it looks. A pure,
 * non-recursive function, linear in LEN, never reading outside TEXT.
 */
int config__locate(const char *text, size_t len, const struct config__path_elem *path, size_t depth,
                   bool want_key, size_t *offset);

/* 1-based line and column (in bytes) of OFFSET in TEXT; OFFSET may equal LEN. */
void config__line_col(const char *text, size_t len, size_t offset, unsigned *line, unsigned *col);

/*
 * Checks that TEXT is one strict RFC 8259 JSON document, valid UTF-8, without "\u0000"
 * escapes (cJSON would cut the string there: "10.0.0.1\u0000.evil" reads as "10.0.0.1")
 * and nested at most CONFIG_MAX_DEPTH deep. Returns NULL, or what was expected and sets
 * *offset to where. Pure, non-recursive, linear in LEN.
 */
const char *config__check_syntax(const char *text, size_t len, size_t *offset);

/* Formats NS as a Prometheus duration ("1m30s", "250ms", "0s") into buf. */
void config__format_duration(int64_t ns, char *buf, size_t size);

/*
 * Go's time.ParseDuration ("1.5s", "1m30s", "300us", "-2h", units in any order), which
 * blackbox_exporter reads module timeouts with. Returns 0 and sets *ns (maybe negative),
 * or -EINVAL / -ERANGE. Pure.
 */
int config__parse_go_duration(const char *text, int64_t *ns);

/* ---- YAML documents (yaml.c) ---- */

/*
 * Parses one YAML document of LEN bytes (UTF-8) into a cJSON tree with the position of
 * every node kept. Returns 0 and *out (free it with config__yaml_free), or -EINVAL with
 * `NAME:LINE:COL: (syntax): MESSAGE` in err, or -ENOMEM. Thread-safe.
 */
int config__yaml_parse(const char *name, const char *text, size_t len, struct config__yaml **out,
                       char *err, size_t errlen);
void config__yaml_free(struct config__yaml *y);

/* The document's root; NULL when the stream holds no document (an empty file). */
const struct cJSON *config__yaml_root(const struct config__yaml *y);

/* A plain scalar read as null, a boolean or a number, as written ("0x10", "yes"); else NULL. */
const char *config__yaml_raw(const struct config__yaml *y, const struct cJSON *node);

/* Byte offset of the value (or key) at PATH, else of its nearest existing ancestor. */
size_t config__yaml_locate(const struct config__yaml *y, const struct config__path_elem *path,
                           size_t depth, bool want_key);

/* ---- addresses, networks and host names (addr.c) ---- */

/*
 * Checks a host name: labels of [A-Za-z0-9_-], 1..63 bytes, not starting or ending with
 * '-', at most 253 bytes, one optional trailing dot, last label not starting with a
 * digit (the resolver would read "127.1" or "0x7f000001" as an IPv4 address). With
 * WILDCARD a leading "*." is allowed. Returns NULL or the reason it is not one.
 */
const char *config__check_host_name(const char *name, bool wildcard);

/*
 * Parses "ADDR/LEN" or a bare address (a host prefix) into *cidr. Returns NULL or the
 * reason; host bits set is refused, with the network named in the reason (written into
 * buf, which the returned pointer may point to).
 */
const char *config__parse_cidr(const char *text, struct config_cidr *cidr, char *buf, size_t size);

/* Writes CIDR as "ADDR/LEN" (inet_ntop's spelling of ADDR) into buf, cut to SIZE. */
void config__format_cidr(const struct config_cidr *cidr, char *buf, size_t size);

/* Only digits and dots: meant as an IPv4 address (so "10.0.0" is a bad address, not a name). */
bool config__looks_ipv4(const char *s);

/* An IP literal (parsed into *addr, *literal set) or a host name; returns NULL or why not. */
const char *config__parse_host(const char *s, struct icmp_addr *addr, bool *literal);

/* Lower-cases NAME in place and drops one trailing dot: the form names are compared in. */
void config__fold_name(char *name);

/* ---- the allow-list (allow.c) ---- */

/* Does NAME (any case, optional trailing dot) match the allow-list entry PATTERN? */
bool config__name_matches(const char *pattern, const char *name);

#endif
