/*
 * config/: the exporter's configuration. Knows nothing of sockets.
 *
 * A configuration is loaded from one document (a file, a string, or the embedded
 * default) into an opaque, fully validated, immutable `struct config`. JSON is the native
 * format; a YAML document is read as blackbox_exporter's configuration (blackbox.yml: its
 * icmp modules, with blackbox's meanings; modules of its other probers are skipped with a
 * warning). An optional second file, exporter-toolkit's web configuration
 * (--web.config.file), adds TLS and basic-auth users. It is
 * reference-counted: whoever holds a reference may read it from any thread while a reload
 * swaps a new one into a `struct config_slot`; the old one is freed when its last holder
 * lets go. The plain structs below are views into a config and live as long as it does.
 *
 * Errors are one line: `FILE:LINE:COL: PATH: MESSAGE`, e.g.
 *   cfg.json:7:16: modules.icmp.icmp.ttl: expected an integer in 1..255, got 300
 * PATH is the path of the offending value (or key), `(syntax)` for a malformed document;
 * columns count bytes, in YAML too. Errors about the file itself (unreadable, too large)
 * are `FILE: MESSAGE`. Warnings, kept with a loaded configuration, have the errors' form.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include "core/icmp_addr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest document accepted, and deepest nesting of arrays and objects. */
#define CONFIG_MAX_DOCUMENT_SIZE (16u * 1024 * 1024)
#define CONFIG_MAX_DEPTH         32
/* Histogram bounds per module. */
#define CONFIG_MAX_BUCKETS 64

struct config;
struct config_slot;

/*
 * Addresses are core's plain value type, struct icmp_addr (core/icmp_addr.h): family
 * AF_INET or AF_INET6, bytes in network order (the first 4 for IPv4); the configuration
 * never sets scope_id (always 0).
 */

/* A network: an address with its host bits zero and a prefix length (0..32 or 0..128). */
struct config_cidr {
    struct icmp_addr addr;
    unsigned prefix_len;
};

/*
 * How a module's static targets are measured: at each /metrics scrape (one probe per
 * target per round), or continuously (one echo per target every interval, from start,
 * whatever the scrapes; exporter/continuous.c).
 */
enum config_mode { CONFIG_MODE_SCRAPE = 0, CONFIG_MODE_CONTINUOUS };

/* A continuous module's echo waits at most this many intervals: a target has this many
 * echoes in flight at most (its memory is bounded by it). */
#define CONFIG_CONTINUOUS_MAX_WAIT 10

/* One probe module, blackbox_exporter's ICMP module plus our keys. Durations in ns. */
struct config_module {
    const char *name;
    enum config_mode mode;      /* default CONFIG_MODE_SCRAPE */
    int64_t dns_refresh_ns;     /* continuous: a name is looked up again this often; 1m */
    int64_t timeout_ns;         /* whole probe; default 5s */
    int preferred_ip_protocol;  /* 4 or 6; default 6 as in blackbox */
    bool ip_protocol_fallback;  /* default true */
    bool has_source_ip;         /* source_ip_address given */
    struct icmp_addr source_ip; /* valid when has_source_ip */
    unsigned payload_size;      /* ICMP echo data bytes, 16..65507; default 28 */
    bool dont_fragment;         /* default false */
    unsigned ttl;               /* 1..255; default 64 */
    unsigned count;             /* echoes per target per probe, 1..1000; default 1 */
    int64_t interval_ns;        /* between a target's echoes; default 1s */
    int64_t echo_timeout_ns;    /* wait for each echo; given or derived, always > 0 */
    unsigned tos;               /* IPv4 TOS / IPv6 traffic class, 0..255; default 0 */
    size_t n_buckets;           /* RTT histogram upper bounds in seconds, increasing */
    double buckets[CONFIG_MAX_BUCKETS];
};

struct config_label {
    const char *name;
    const char *value;
};

/* A static target, probed on every /metrics scrape. */
struct config_target {
    const char *target;                 /* as written: an IP literal or a host name */
    bool is_literal;                    /* target is an IP literal, parsed into addr */
    struct icmp_addr addr;              /* valid when is_literal */
    const struct config_module *module; /* never NULL */
    const struct config_label *labels;  /* n_labels user labels, in document order */
    size_t n_labels;
};

/* What a /probe caller may ask for. allowed_* both empty means every target is allowed. */
struct config_limits {
    const struct config_cidr *allowed_cidrs;
    size_t n_allowed_cidrs;
    const char *const *allowed_names; /* lower case, no trailing dot, maybe "*.suffix" */
    size_t n_allowed_names;
    unsigned max_echoes_per_probe;       /* count x targets of one /probe; default 100 */
    unsigned max_concurrent_probes;      /* default 1000 */
    unsigned max_targets_per_scrape;     /* default 10000; continuous targets included */
    unsigned max_packets_per_second;     /* echo requests, all probes together; default 100000 */
    unsigned max_connections;            /* per listen address; default 4096 (read at start) */
    unsigned max_connections_per_ip;     /* 0: none; default 1024 (read at start) */
    unsigned max_new_connections_per_ip; /* not yet sent a request; 0: none; default 16 */
    int64_t request_timeout_ns;          /* to receive a whole request; default 30 s */
};

struct config_user {
    const char *name;
    const char *bcrypt_hash;
};

struct config_web {
    const char *const *listen_addresses; /* "host:port", "[v6]:port" or ":port" */
    size_t n_listen_addresses;           /* at least 1; default ":9723" */
    const char *tls_cert_file;           /* both NULL (no TLS) or both set; relative */
    const char *tls_key_file;            /* paths already resolved against the file's dir */
    const struct config_user *users;     /* basic-auth users; none means no auth */
    size_t n_users;
};

/*
 * Load a configuration. config_load_file reads PATH (at most CONFIG_MAX_DOCUMENT_SIZE
 * bytes); config_load_text parses LEN bytes of TEXT, naming it NAME in errors;
 * config_load_default loads config_default_text(). On success returns 0 and *cfg holds
 * one reference (release it with config_unref). On failure *cfg is NULL, the error is
 * written to err (at most errlen bytes, NUL-terminated) and the return is -EINVAL for an
 * invalid document, -ENOMEM, -EFBIG for an oversized one, or -errno from reading the file
 * (or a TLS file it names). Thread-safe; no socket is touched.
 */
int config_load_file(const char *path, struct config **cfg, char *err, size_t errlen);
int config_load_text(const char *name, const char *text, size_t len, struct config **cfg, char *err,
                     size_t errlen);
int config_load_default(struct config **cfg, char *err, size_t errlen);

/*
 * config_load_yaml: as config_load_text, for a YAML document read as blackbox_exporter's
 * configuration (only "modules"; Go durations; modules of other probers skipped, each
 * with a warning).
 */
int config_load_yaml(const char *name, const char *text, size_t len, struct config **cfg, char *err,
                     size_t errlen);

enum config_format { CONFIG_FORMAT_JSON, CONFIG_FORMAT_YAML };

/*
 * The format a file is read in: YAML for a NAME ending in .yml or .yaml, JSON for .json;
 * else by TEXT's first byte that is not white space (after a UTF-8 BOM): '{', or none at
 * all, is JSON, anything else YAML. Pure.
 */
enum config_format config_format_of(const char *name, const char *text, size_t len);

/* What a configuration is loaded from (main.c's --config.file and --web.config.file). */
struct config_files {
    const char *config_file;     /* JSON or YAML (config_format_of); NULL: the embedded default */
    const char *web_config_file; /* exporter-toolkit's web configuration (YAML), or NULL */
};

/*
 * Loads FILES->config_file as config_load_file does (the embedded default when NULL),
 * then the web configuration file into its web section: tls_server_config (cert_file and
 * key_file relative to the web file's directory) and basic_auth_users, each refused when
 * the configuration file's web section sets it too; exporter-toolkit keys this exporter
 * cannot honour are errors that name them. Returns as config_load_file. Thread-safe.
 */
int config_load_files(const struct config_files *files, struct config **cfg, char *err,
                      size_t errlen);

/*
 * The warnings of the load that made CFG, each `FILE:LINE:COL: PATH: MESSAGE` (what was
 * skipped or ignored, and why), in document order; *n of them (0: the array may be
 * NULL). Valid while the caller holds a reference; thread-safe.
 */
const char *const *config_warnings(const struct config *cfg, size_t *n);

/* The embedded default configuration (config/default.json), a static NUL-terminated string. */
const char *config_default_text(void);

/*
 * The effective configuration as JSON, as GET /config shows it: every default filled in,
 * durations as Prometheus durations ("1m30s", "250ms") that parse back, basic-auth hashes
 * replaced by "<secret>", cJSON_Print's layout. On success returns 0, *json is a malloc'd
 * NUL-terminated string (the caller frees it with free()) and *len its length; -ENOMEM
 * otherwise (*json NULL). Thread-safe for a configuration the caller holds a reference to.
 */
int config_dump_json(const struct config *cfg, char **json, size_t *len);

/* The versions of the JSON (cJSON) and YAML (libyaml) libraries config/ reads with, for
 * --version. Static strings. */
const char *config_json_library_version(void);
const char *config_yaml_library_version(void);

/*
 * Reference counting (atomic, thread-safe). config_ref returns cfg. config_unref frees the
 * configuration when the last reference goes; it accepts NULL.
 */
struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

/*
 * Read-only views, valid while the caller holds a reference; thread-safe.
 * config_module_find returns NULL for an unknown name (names are case-sensitive).
 * config_modules and config_targets return arrays in document order and set *n.
 */
const struct config_module *config_module_find(const struct config *cfg, const char *name);
const struct config_module *config_modules(const struct config *cfg, size_t *n);
const struct config_target *config_targets(const struct config *cfg, size_t *n);
const struct config_limits *config_limits(const struct config *cfg);
const struct config_web *config_web(const struct config *cfg);

/*
 * May a /probe caller probe NAME, which resolved to *RESOLVED? Call it for every address
 * the exporter is about to probe, after resolution. NAME may be NULL (an IP literal).
 * The rule: allowed iff allowed_targets is empty, or *resolved lies inside one of its
 * CIDRs, or NAME (case-insensitive, trailing dot ignored) equals one of its host names or
 * ends with ".suffix" for a "*.suffix" entry. So a name that is not listed reaches only
 * addresses inside the CIDRs, whatever its DNS says (a harmless-looking name resolving to
 * 169.254.169.254 is refused); a listed name is trusted to resolve anywhere, so list only
 * names whose DNS you control. Thread-safe.
 */
bool config_target_allowed(const struct config *cfg, const char *name,
                           const struct icmp_addr *resolved);

/*
 * Parses an IPv4 or IPv6 literal (no zone, no brackets) into *addr (AF_INET or AF_INET6,
 * scope_id 0). Returns 0 or -EINVAL (*addr untouched). config_cidr_contains: whether addr
 * lies inside cidr (false when the families differ; scope_id is not looked at). Both pure
 * and thread-safe.
 */
int config_addr_parse(const char *text, struct icmp_addr *addr);
bool config_cidr_contains(const struct config_cidr *cidr, const struct icmp_addr *addr);

/*
 * Parses a Prometheus-style duration ("250ms", "1s", "1m30s", "1h", "0") into
 * nanoseconds. Units, each at most once and in this order: y w d h m s ms.
 * Returns 0 and sets *ns, or -EINVAL for a malformed string and -ERANGE when the value
 * does not fit in int64_t nanoseconds. Thread-safe; *ns is untouched on failure.
 */
int config_parse_duration(const char *text, int64_t *ns);

/*
 * A Prometheus duration (config_parse_duration) or plain decimal seconds as
 * blackbox_exporter's float flags take them ("0.5", "2", "1.5e-1"; no sign). Returns 0
 * and sets *ns, -EINVAL or -ERANGE (*ns untouched). Pure, thread-safe.
 */
int config_parse_duration_or_seconds(const char *text, int64_t *ns);

/*
 * The reload holder. config_slot_new takes over the caller's reference to INITIAL (which
 * counts as a successful load) and returns NULL when out of memory (the reference is
 * then released). config_slot_free releases the slot's reference; accepts NULL.
 * config_slot_get returns a new reference to the current configuration (caller unrefs).
 * config_slot_reload loads PATH (NULL: the embedded default) and swaps it in only if it
 * is valid; on failure the current configuration stays, the failure is counted and the
 * error is written to err; returns as config_load_file. All thread-safe.
 */
struct config_slot *config_slot_new(struct config *initial);
void config_slot_free(struct config_slot *slot);
struct config *config_slot_get(struct config_slot *slot);
int config_slot_reload(struct config_slot *slot, const char *path, char *err, size_t errlen);

/*
 * Installs a configuration the caller loaded (and checked further) itself, taking over
 * its reference, and records a successful reload; FRESH NULL records a failed one and
 * keeps the current configuration. Thread-safe.
 */
void config_slot_swap(struct config_slot *slot, struct config *fresh);

/* Reload bookkeeping, as blackbox_exporter exports it. */
struct config_reload_status {
    bool last_success;           /* did the last load succeed */
    double last_success_seconds; /* CLOCK_REALTIME of the last successful load */
    uint64_t failures_total;     /* failed reloads since the slot was created */
    uint64_t successes_total;    /* successful loads, the initial one included */
};

/* Copies the slot's reload bookkeeping into *status. Thread-safe. */
void config_slot_status(struct config_slot *slot, struct config_reload_status *status);

#endif
