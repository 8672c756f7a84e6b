/*
 * Positions for error messages. cJSON builds a tree without source positions, so when
 * the loader rejects a value it asks config__locate() to find that value again in the
 * text by its JSON path. The locator is a forward-only scanner: it walks the members of
 * one object (or elements of one array) per path step and skips unwanted values by
 * counting brackets, never recursing, so its cost is bounded by the text's length and its
 * stack by nothing. It runs on text cJSON has accepted, but stays in bounds on any input.
 */
#include "config/config_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *t, size_t len, size_t p)
{
    while (p < len && is_ws(t[p]))
        p++;
    return p;
}

/* P is at an opening quote; returns the offset just past the closing one, or LEN. */
static size_t skip_string(const char *t, size_t len, size_t p)
{
    for (p++; p < len; p++) {
        if (t[p] == '\\')
            p++;
        else if (t[p] == '"')
            return p + 1;
    }
    return len;
}

/* P is at the start of a value; returns the offset just past it (or LEN). */
static size_t skip_value(const char *t, size_t len, size_t p)
{
    size_t depth = 0;

    if (p >= len)
        return len;
    if (t[p] == '"')
        return skip_string(t, len, p);
    if (t[p] != '{' && t[p] != '[') {
        while (p < len && !is_ws(t[p]) && t[p] != ',' && t[p] != '}' && t[p] != ']')
            p++;
        return p;
    }
    while (p < len) {
        char c = t[p];
        if (c == '"') {
            p = skip_string(t, len, p);
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return p + 1;
        }
        p++;
    }
    return len;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at t[p]; returns the code unit or -1. */
static long read_hex4(const char *t, size_t len, size_t p)
{
    long v = 0;

    if (p + 4 > len)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        int h = hex_value(t[p + i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* UTF-8 encoding of CP into out; returns its length. */
static size_t encode_utf8(unsigned long cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Does the JSON string at t[p] (its opening quote) decode to KEY? Escapes are decoded. */
static bool string_equals(const char *t, size_t len, size_t p, const char *key)
{
    size_t k = 0;

    for (p++; p < len && t[p] != '"';) {
        unsigned char buf[4];
        size_t n = 1;

        if (t[p] != '\\') {
            buf[0] = (unsigned char)t[p++];
        } else {
            if (p + 1 >= len)
                return false;
            switch (t[p + 1]) {
            case 'b':
                buf[0] = '\b';
                break;
            case 'f':
                buf[0] = '\f';
                break;
            case 'n':
                buf[0] = '\n';
                break;
            case 'r':
                buf[0] = '\r';
                break;
            case 't':
                buf[0] = '\t';
                break;
            case 'u': {
                long cp = read_hex4(t, len, p + 2);
                if (cp < 0)
                    return false;
                p += 4;
                if (cp >= 0xd800 && cp <= 0xdbff && p + 8 <= len && t[p + 2] == '\\' &&
                    t[p + 3] == 'u') {
                    long lo = read_hex4(t, len, p + 4);
                    if (lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        p += 6;
                    }
                }
                n = encode_utf8((unsigned long)cp, buf);
                break;
            }
            default: /* \" \\ \/ */
                buf[0] = (unsigned char)t[p + 1];
                break;
            }
            p += 2;
        }
        for (size_t i = 0; i < n; i++, k++) {
            if (key[k] == '\0' || (unsigned char)key[k] != buf[i])
                return false;
        }
    }
    return p < len && key[k] == '\0';
}

int config__locate(const char *text, size_t len, const struct config__path_elem *path, size_t depth,
                   bool want_key, size_t *offset)
{
    const char *t = text;
    size_t p = 0;

    if (len >= 3 && memcmp(t, "\xef\xbb\xbf", 3) == 0)
        p = 3;
    p = skip_ws(t, len, p);
    for (size_t d = 0; d < depth; d++) {
        const struct config__path_elem *e = &path[d];
        bool last = d + 1 == depth;

        if (p >= len)
            return -EINVAL;
        if (e->key != NULL) {
            unsigned seen = 0;
            if (t[p] != '{')
                return -ENOENT;
            p = skip_ws(t, len, p + 1);
            for (;;) {
                size_t key_at = p;
                bool match = false;

                if (p >= len)
                    return -EINVAL;
                if (t[p] == '}')
                    return -ENOENT;
                if (t[p] != '"')
                    return -EINVAL;
                if (string_equals(t, len, p, e->key))
                    match = seen++ == e->occurrence;
                p = skip_ws(t, len, skip_string(t, len, p));
                if (p >= len || t[p] != ':')
                    return -EINVAL;
                p = skip_ws(t, len, p + 1);
                if (match) {
                    if (last && want_key) {
                        *offset = key_at;
                        return 0;
                    }
                    break;
                }
                p = skip_ws(t, len, skip_value(t, len, p));
                if (p < len && t[p] == ',') {
                    p = skip_ws(t, len, p + 1);
                    continue;
                }
                return p < len && t[p] == '}' ? -ENOENT : -EINVAL;
            }
        } else {
            if (t[p] != '[')
                return -ENOENT;
            p = skip_ws(t, len, p + 1);
            for (size_t i = 0; i != e->index; i++) {
                if (p >= len)
                    return -EINVAL;
                if (t[p] == ']')
                    return -ENOENT;
                p = skip_ws(t, len, skip_value(t, len, p));
                if (p < len && t[p] == ',') {
                    p = skip_ws(t, len, p + 1);
                    continue;
                }
                return p < len && t[p] == ']' ? -ENOENT : -EINVAL;
            }
            if (p < len && t[p] == ']')
                return -ENOENT;
        }
    }
    if (p >= len)
        return -EINVAL;
    *offset = p;
    return 0;
}

void config__line_col(const char *text, size_t len, size_t offset, unsigned *line, unsigned *col)
{
    unsigned l = 1, c = 1;

    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}
