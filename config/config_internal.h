/*
 * Declarations shared by the files of config/. Nothing outside config/ (but its tests)
 * includes this.
 */
#ifndef CONFIG_INTERNAL_H
#define CONFIG_INTERNAL_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One step of a JSON path: an object member (key, its nth occurrence) or an array index. */
struct config__path_elem {
    const char *key;     /* NULL for an array element */
    size_t index;        /* array index when key is NULL */
    unsigned occurrence; /* 0 for the first member named key, 1 for a duplicate, ... */
};

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

/* Does NAME (any case, optional trailing dot) match the allow-list entry PATTERN? */
bool config__name_matches(const char *pattern, const char *name);

#endif
