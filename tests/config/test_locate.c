/*
 * The pure helpers behind error positions: the JSON path locator, offsets to line:col,
 * the strict syntax check and duration formatting. Table-driven.
 */
#include "config/config_internal.h"
#include "test.h"

#include <errno.h>

#define K(k)                                                                                       \
    {                                                                                              \
        k, 0, 0                                                                                    \
    }
#define K2(k)                                                                                      \
    {                                                                                              \
        k, 0, 1                                                                                    \
    }
#define I(i)                                                                                       \
    {                                                                                              \
        NULL, i, 0                                                                                 \
    }

struct locate_case {
    const char *text;
    struct config__path_elem path[4];
    size_t depth;
    bool want_key;
    int rc;
    unsigned line, col;
};

static const char doc[] =
    "{\n"
    "  \"modules\": {\n"
    "    \"icmp\": {\"icmp\": {\"ttl\": 300, \"buckets\": [1, [2, {}], 3]}},\n"
    "    \"a\\\"b\": {\"\\u00e9t\\u00e9\": true, \"\\ud83d\\ude00\": 1}\n"
    "  },\n"
    "  \"targets\": [{\"target\": \"x\"}, {\"target\": \"y\", \"target\": "
    "\"z\"}]\n"
    "}\n";

static const struct locate_case locate_cases[] = {
    {doc, {{0}}, 0, false, 0, 1, 1},
    {doc, {K("modules")}, 1, false, 0, 2, 14},
    {doc, {K("modules")}, 1, true, 0, 2, 3},
    {doc, {K("modules"), K("icmp"), K("icmp"), K("ttl")}, 4, false, 0, 3, 30},
    {doc, {K("modules"), K("icmp"), K("icmp"), K("ttl")}, 4, true, 0, 3, 23},
    {doc, {K("modules"), K("icmp"), K("icmp"), K("buckets")}, 4, false, 0, 3, 46},
    {doc, {K("modules"), K("a\"b"), K("\xc3\xa9t\xc3\xa9")}, 3, true, 0, 4, 14},
    {doc, {K("modules"), K("a\"b"), K("\xf0\x9f\x98\x80")}, 3, true, 0, 4, 37},
    {doc, {K("targets"), I(1), K("target")}, 3, false, 0, 6, 43},
    {doc, {K("targets"), I(1), K2("target")}, 3, true, 0, 6, 48},
    {doc, {K("targets"), I(0)}, 2, false, 0, 6, 15},
    /* absent, or the wrong kind of container */
    {doc, {K("modules"), K("nope")}, 2, false, -ENOENT, 0, 0},
    {doc, {K("targets"), I(2)}, 2, false, -ENOENT, 0, 0},
    {doc, {K("targets"), K("x")}, 2, false, -ENOENT, 0, 0},
    {doc, {I(0)}, 1, false, -ENOENT, 0, 0},
    {doc, {K("targets"), I(1), K2("targetx")}, 3, false, -ENOENT, 0, 0},
    {"[]", {I(0)}, 1, false, -ENOENT, 0, 0},
    {"{}", {K("a")}, 1, false, -ENOENT, 0, 0},
    /* garbage stays in bounds */
    {"", {{0}}, 0, false, -EINVAL, 0, 0},
    {"{\"a\"", {K("a")}, 1, false, -EINVAL, 0, 0},
    {"{\"a\":", {K("a")}, 1, false, -EINVAL, 0, 0},
    {"[1,", {I(1)}, 1, false, -EINVAL, 0, 0},
    {"[}", {I(1)}, 1, false, -EINVAL, 0, 0},
    {"{\"a\":[\"\\", {K("b")}, 1, false, -EINVAL, 0, 0},
    {"{\"\\u12", {K("a")}, 1, false, -EINVAL, 0, 0},
    {"\xef\xbb\xbf {\"a\": 1}", {K("a")}, 1, false, 0, 1, 11},
};

static void test_locate(void)
{
    for (size_t i = 0; i < sizeof(locate_cases) / sizeof(locate_cases[0]); i++) {
        const struct locate_case *c = &locate_cases[i];
        size_t offset = 12345, len = strlen(c->text);
        unsigned line = 0, col = 0;
        int rc = config__locate(c->text, len, c->path, c->depth, c->want_key, &offset);

        if (rc != c->rc) {
            TEST_FAIL_AT("case %zu: rc %d, expected %d", i, rc, c->rc);
            continue;
        }
        if (rc != 0) {
            CHECK_EQ(offset, 12345);
            continue;
        }
        CHECK_LT(offset, len);
        config__line_col(c->text, len, offset, &line, &col);
        if (line != c->line || col != c->col)
            TEST_FAIL_AT("case %zu: %u:%u, expected %u:%u", i, line, col, c->line, c->col);
    }
}

static void test_line_col(void)
{
    unsigned line, col;

    config__line_col("ab\ncd\n", 6, 0, &line, &col);
    CHECK(line == 1 && col == 1);
    config__line_col("ab\ncd\n", 6, 2, &line, &col);
    CHECK(line == 1 && col == 3);
    config__line_col("ab\ncd\n", 6, 3, &line, &col);
    CHECK(line == 2 && col == 1);
    config__line_col("ab\ncd\n", 6, 6, &line, &col); /* the end */
    CHECK(line == 3 && col == 1);
    config__line_col("ab", 2, 99, &line, &col); /* clamped */
    CHECK(line == 1 && col == 3);
}

struct syntax_case {
    const char *text;
    size_t offset; /* SIZE_MAX: valid */
};

static const struct syntax_case syntax_cases[] = {
    {"{}", SIZE_MAX},
    {" [1, -2.5e+3, 0, -0, 1E9, true, false, null, \"\\u00e9\\ud83d\\ude00\"] ", SIZE_MAX},
    {"\xef\xbb\xbf{}", SIZE_MAX},
    {"\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", SIZE_MAX},
    {"", 0},
    {"   ", 3},
    {"{", 1},
    {"{\"a\"}", 4},
    {"{\"a\":}", 5},
    {"{\"a\":1,}", 7},
    {"{a:1}", 1},
    {"[1,]", 3},
    {"[01]", 2},
    {"[1.]", 3},
    {"[1e]", 3},
    {"[-]", 2},
    {"[+1]", 1},
    {"[.5]", 1},
    {"[tru]", 1},
    {"[nul]", 1},
    {"{} {}", 3},
    {"\"\\ud800\"", 1},
    {"\"\\udc00\"", 1},
    {"\"\\ud800\\u0041\"", 1},
    {"\"\\u00G0\"", 1},
    {"\"\\u0000\"", 1},
    {"\"\xc0\xaf\"", 1},         /* overlong '/' */
    {"\"\xed\xa0\x80\"", 1},     /* encoded surrogate */
    {"\"\xf4\x90\x80\x80\"", 1}, /* beyond U+10FFFF */
    {"\"\xe2\x82\"", 1},         /* truncated */
    {"\"abc", 4},
    {"\"a\nb\"", 2},
};

static void test_syntax(void)
{
    char deep[80];

    for (size_t i = 0; i < sizeof(syntax_cases) / sizeof(syntax_cases[0]); i++) {
        const struct syntax_case *c = &syntax_cases[i];
        size_t offset = SIZE_MAX;
        const char *why = config__check_syntax(c->text, strlen(c->text), &offset);

        if ((why == NULL) != (c->offset == SIZE_MAX) || offset != c->offset)
            TEST_FAIL_AT("case %zu \"%s\": %s at %zu, expected %zu", i, c->text,
                         why ? why : "valid", offset, c->offset);
    }
    /* Exactly CONFIG_MAX_DEPTH levels are fine, one more is not. */
    memset(deep, '[', CONFIG_MAX_DEPTH);
    memset(deep + CONFIG_MAX_DEPTH, ']', CONFIG_MAX_DEPTH);
    size_t offset = 0;
    CHECK(config__check_syntax(deep, 2 * CONFIG_MAX_DEPTH, &offset) == NULL);
    memset(deep, '[', CONFIG_MAX_DEPTH + 1);
    memset(deep + CONFIG_MAX_DEPTH + 1, ']', CONFIG_MAX_DEPTH + 1);
    CHECK_STR_EQ(config__check_syntax(deep, 2 * CONFIG_MAX_DEPTH + 2, &offset),
                 "nesting at most 32 levels deep");
    CHECK_EQ(offset, CONFIG_MAX_DEPTH);
    /* Brackets inside strings do not count. */
    CHECK(config__check_syntax("[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]", 42, &offset) ==
          NULL);
}

static void test_format_duration(void)
{
    static const struct {
        int64_t ns;
        const char *text;
    } cases[] = {
        {0, "0s"},
        {1000000, "1ms"},
        {1500000000, "1s500ms"},
        {90000000000, "1m30s"},
        {3600000000000, "1h"},
        {86400000000000 + 1000, "86400000001000ns"},
        {-1000000, "-1000000ns"},
    };
    char buf[64], tiny[4];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        config__format_duration(cases[i].ns, buf, sizeof(buf));
        CHECK_STR_EQ(buf, cases[i].text);
        /* What it writes parses back to the same value. */
        int64_t back = -1;
        if (cases[i].ns >= 0 && cases[i].ns % 1000000 == 0) {
            CHECK_EQ(config_parse_duration(buf, &back), 0);
            CHECK_EQ(back, cases[i].ns);
        }
    }
    config__format_duration(90000000000, tiny, sizeof(tiny));
    CHECK_STR_EQ(tiny, "1m");
}

int main(void)
{
    test_locate();
    test_line_col();
    test_syntax();
    test_format_duration();
    return TEST_DONE();
}
