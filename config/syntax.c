/*
 * A strict JSON syntax check that runs before cJSON. cJSON 1.7.15 reports only where it
 * gave up (often the end of the document, e.g. for `{"a":1,}`), accepts what RFC 8259
 * refuses (leading zeros, invalid UTF-8) and recurses once per nesting level. This check
 * says what was expected at the exact byte, refuses "\u0000" (cJSON would cut a string
 * short there) and bounds the nesting, with a state machine over an explicit stack of
 * CONFIG_MAX_DEPTH entries: no recursion, one pass. cJSON then builds the tree; should it
 * still refuse the text, the loader falls back to cJSON's error offset.
 */
#include "config/config_internal.h"

#include <string.h>

#define STR_(x) #x
#define STR(x)  STR_(x)

struct scan {
    const char *t;
    size_t len, p;
    const char *error;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->len &&
           (s->t[s->p] == ' ' || s->t[s->p] == '\t' || s->t[s->p] == '\n' || s->t[s->p] == '\r'))
        s->p++;
}

static bool fail(struct scan *s, const char *error)
{
    s->error = error;
    return false;
}

static int hex4(const struct scan *s, size_t p)
{
    int v = 0;

    if (s->len - p < 4)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        char c = s->t[p + i];
        int h = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t utf8_seq(const struct scan *s, size_t p)
{
    const unsigned char *u = (const unsigned char *)s->t + p;
    size_t avail = s->len - p, n;
    unsigned long cp;

    if (u[0] >= 0xc2 && u[0] <= 0xdf) {
        n = 2;
        cp = u[0] & 0x1fu;
    } else if (u[0] >= 0xe0 && u[0] <= 0xef) {
        n = 3;
        cp = u[0] & 0x0fu;
    } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        n = 4;
        cp = u[0] & 0x07u;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (u[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0; /* overlong, out of range, or an encoded surrogate */
    return n;
}

/* s->p at the opening quote; leaves s->p past the closing one. */
static bool scan_string(struct scan *s)
{
    for (s->p++; s->p < s->len;) {
        unsigned char c = (unsigned char)s->t[s->p];

        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return fail(s, "an escape sequence instead of a raw control character");
        if (c >= 0x80) {
            size_t n = utf8_seq(s, s->p);
            if (n == 0)
                return fail(s, "valid UTF-8 in a string");
            s->p += n;
            continue;
        }
        if (c != '\\') {
            s->p++;
            continue;
        }
        if (s->p + 1 >= s->len)
            break;
        c = (unsigned char)s->t[s->p + 1];
        if (c != 'u') {
            if (strchr("\"\\/bfnrt", c) == NULL || c == '\0')
                return fail(s, "an escape: one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX");
            s->p += 2;
            continue;
        }
        int cp = hex4(s, s->p + 2);
        if (cp < 0)
            return fail(s, "an escape \\u followed by 4 hex digits");
        if (cp == 0)
            return fail(s, "a string without \\u0000 (NUL)");
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return fail(s, "a high surrogate before the low surrogate \\u escape");
        if (cp >= 0xd800 && cp <= 0xdbff) {
            int lo = s->p + 8 <= s->len && s->t[s->p + 6] == '\\' && s->t[s->p + 7] == 'u'
                         ? hex4(s, s->p + 8)
                         : -1;
            if (lo < 0xdc00 || lo > 0xdfff)
                return fail(s, "a low surrogate \\u escape after the high surrogate");
            s->p += 6;
        }
        s->p += 6;
    }
    return fail(s, "the closing quote of the string");
}

static bool is_digit(const struct scan *s)
{
    return s->p < s->len && s->t[s->p] >= '0' && s->t[s->p] <= '9';
}

static bool scan_number(struct scan *s)
{
    if (s->t[s->p] == '-')
        s->p++;
    if (!is_digit(s))
        return fail(s, "a digit");
    if (s->t[s->p] == '0') {
        s->p++;
        if (is_digit(s))
            return fail(s, "a number without leading zeros");
    } else {
        while (is_digit(s))
            s->p++;
    }
    if (s->p < s->len && s->t[s->p] == '.') {
        s->p++;
        if (!is_digit(s))
            return fail(s, "a digit after the decimal point");
        while (is_digit(s))
            s->p++;
    }
    if (s->p < s->len && (s->t[s->p] == 'e' || s->t[s->p] == 'E')) {
        s->p++;
        if (s->p < s->len && (s->t[s->p] == '+' || s->t[s->p] == '-'))
            s->p++;
        if (!is_digit(s))
            return fail(s, "a digit in the exponent");
        while (is_digit(s))
            s->p++;
    }
    return true;
}

static bool scan_literal(struct scan *s, const char *word)
{
    size_t n = strlen(word);

    if (s->len - s->p < n || memcmp(s->t + s->p, word, n) != 0)
        return fail(s, "a value (object, array, string, number, true, false or null)");
    s->p += n;
    return true;
}

const char *config__check_syntax(const char *text, size_t len, size_t *offset)
{
    char stack[CONFIG_MAX_DEPTH];
    size_t depth = 0;
    struct scan s = {text, len, 0, NULL};
    enum { VALUE, KEY, AFTER } state = VALUE;

    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        s.p = 3;
    for (;;) {
        skip_ws(&s);
        if (state == VALUE) {
            if (s.p >= len) {
                fail(&s, "a value (object, array, string, number, true, false or null)");
                break;
            }
            char c = text[s.p];
            if (c == '{' || c == '[') {
                if (depth == CONFIG_MAX_DEPTH) {
                    fail(&s, "nesting at most " STR(CONFIG_MAX_DEPTH) " levels deep");
                    break;
                }
                stack[depth++] = c;
                s.p++;
                skip_ws(&s);
                if (s.p < len && text[s.p] == (c == '{' ? '}' : ']')) {
                    s.p++;
                    depth--;
                    state = AFTER;
                } else {
                    state = c == '{' ? KEY : VALUE;
                }
                continue;
            }
            bool ok = c == '"'                             ? scan_string(&s)
                      : c == '-' || (c >= '0' && c <= '9') ? scan_number(&s)
                      : c == 't'                           ? scan_literal(&s, "true")
                      : c == 'f'                           ? scan_literal(&s, "false")
                                                           : scan_literal(&s, "null");
            if (!ok)
                break;
            state = AFTER;
        } else if (state == KEY) {
            if (s.p >= len || text[s.p] != '"') {
                fail(&s, "a string key in double quotes");
                break;
            }
            if (!scan_string(&s))
                break;
            skip_ws(&s);
            if (s.p >= len || text[s.p] != ':') {
                fail(&s, "':' after the key");
                break;
            }
            s.p++;
            state = VALUE;
        } else {
            if (depth == 0) {
                if (s.p < len)
                    fail(&s, "the end of the document after the value");
                break;
            }
            char open = stack[depth - 1], close = open == '{' ? '}' : ']';
            if (s.p < len && text[s.p] == ',') {
                s.p++;
                state = open == '{' ? KEY : VALUE;
            } else if (s.p < len && text[s.p] == close) {
                s.p++;
                depth--;
            } else {
                fail(&s, open == '{' ? "',' or '}' after an object member"
                                     : "',' or ']' after an array element");
                break;
            }
        }
    }
    if (s.error == NULL)
        return NULL;
    *offset = s.p;
    return s.error;
}
