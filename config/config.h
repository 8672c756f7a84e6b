/*
 * config/: the exporter's JSON configuration. Knows nothing of sockets.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdint.h>

/*
 * Parses a Prometheus-style duration ("250ms", "1s", "1m30s", "1h", "0") into
 * nanoseconds. Units, each at most once and in this order: y w d h m s ms.
 * Returns 0 and sets *ns, or -EINVAL for a malformed string and -ERANGE when the value
 * does not fit in int64_t nanoseconds. Thread-safe; *ns is untouched on failure.
 */
int config_parse_duration(const char *text, int64_t *ns);

#endif
