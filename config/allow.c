/*
 * The /probe allow-list rule: config_target_allowed judges a name and the address it
 * resolved to against the CIDRs and host names of limits.allowed_targets.
 *
 * Why the allow-list is checked on resolved addresses: a name is only a pointer the
 * caller (or whoever runs its DNS) controls, so "harmless.example" may well resolve to
 * 127.0.0.1 or 169.254.169.254. CIDR entries therefore judge the address actually about
 * to be probed; host-name entries are an explicit "trust this name's DNS" (see
 * config_target_allowed in config.h).
 */
#include "config/config_internal.h"

#include <string.h>

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive equality of the first n bytes. */
static bool equal_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (lower(a[i]) != lower(b[i]))
            return false;
    }
    return true;
}

bool config__name_matches(const char *pattern, const char *name)
{
    size_t n = strlen(name), pn = strlen(pattern);

    if (n > 0 && name[n - 1] == '.')
        n--;
    if (pn >= 2 && pattern[0] == '*' && pattern[1] == '.') {
        /* "*.example.com" matches a.example.com and a.b.example.com, not example.com. */
        const char *suffix = pattern + 1;
        size_t sn = pn - 1;
        return n > sn && equal_nocase(name + n - sn, suffix, sn);
    }
    return n == pn && equal_nocase(name, pattern, n);
}

bool config_target_allowed(const struct config *cfg, const char *name,
                           const struct icmp_addr *resolved)
{
    const struct config_limits *l = config_limits(cfg);

    if (l->n_allowed_cidrs == 0 && l->n_allowed_names == 0)
        return true;
    for (size_t i = 0; resolved != NULL && i < l->n_allowed_cidrs; i++) {
        if (config_cidr_contains(&l->allowed_cidrs[i], resolved))
            return true;
    }
    for (size_t i = 0; name != NULL && i < l->n_allowed_names; i++) {
        if (config__name_matches(l->allowed_names[i], name))
            return true;
    }
    return false;
}
