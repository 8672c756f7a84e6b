/*
 * tool.h: what the test tools' command lines and reports share (bench_core, exporter_load,
 * hammer): whole-string integer options, a monotonic clock in nanoseconds, percentiles of
 * latencies, a lines file, the descriptor limit. No state: every function is thread-safe
 * unless its comment says otherwise.
 */
#ifndef ICMPX_TESTS_TOOL_H
#define ICMPX_TESTS_TOOL_H

#include <stddef.h>
#include <stdint.h>

#define TOOL_NS_PER_MS INT64_C(1000000)
#define TOOL_NS_PER_S  INT64_C(1000000000)

/* The kinds of command-line options: "--name" alone, or "--name value". */
enum tool_opt_kind {
    TOOL_OPT_FLAG, /* no value; sets *(bool *)dst */
    TOOL_OPT_TEXT, /* *(const char **)dst = the value */
    TOOL_OPT_INT,  /* *(int64_t *)dst = the value, a decimal integer in [min, max] */
    TOOL_OPT_LIST, /* repeatable: ((const char **)dst)[(*count)++] = the value, max at most */
};

struct tool_opt {
    const char *name;
    enum tool_opt_kind kind;
    void *dst;
    int64_t min, max;
    size_t *count; /* TOOL_OPT_LIST only */
};

#define TOOL_FLAG(name, dst)                                                                       \
    {                                                                                              \
        (name), TOOL_OPT_FLAG, (dst), 0, 0, NULL                                                   \
    }
#define TOOL_TEXT(name, dst)                                                                       \
    {                                                                                              \
        (name), TOOL_OPT_TEXT, (dst), 0, 0, NULL                                                   \
    }
#define TOOL_INT(name, dst, min, max)                                                              \
    {                                                                                              \
        (name), TOOL_OPT_INT, (dst), (min), (max), NULL                                            \
    }
#define TOOL_LIST(name, dst, count)                                                                \
    {                                                                                              \
        (name), TOOL_OPT_LIST, (dst), 0, sizeof(dst) / sizeof((dst)[0]), (count)                   \
    }

/* Parses argv[1..argc) against the n options of opts, in order; values point into argv.
 * Returns 0; 1 when "-h" or "--help" comes before any error (the caller prints its usage to
 * stdout and exits 0); -EINVAL for an unknown option, a missing or bad value, or one value
 * too many for a list. */
int tool_parse_args(int argc, char **argv, const struct tool_opt *opts, size_t n);

/* CLOCK_MONOTONIC in nanoseconds: one clock for every stamp a tool subtracts. */
int64_t tool_now_ns(void);

/* Parses text, the whole string, as a decimal integer in [min, max] into *out. Returns 0, or
 * -EINVAL (then *out is untouched) for an empty string, trailing characters or a value out
 * of range. */
int tool_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out);

/* Sorts n values in place, ascending. */
void tool_sort_i64(int64_t *v, size_t n);

/* The q-quantile (q in 0..1) of n values sorted ascending: the lower value at index
 * floor(q * (n - 1)), so q = 1 is the maximum. Returns -1 when n is 0. */
int64_t tool_quantile_i64(const int64_t *sorted, size_t n, double q);

/* Reads the lines of file into a new array *lines of *n strings: CR/LF stripped, empty lines
 * and lines starting with '#' skipped, at most max of them. Returns 0; -errno when the file
 * cannot be read, -ENODATA when it holds no line, -E2BIG past max lines, -ENOMEM. On success
 * the caller owns the array and its strings (tool_free_lines()); on error nothing is left
 * to free (*lines NULL, *n 0). */
int tool_read_lines(const char *file, size_t max, char ***lines, size_t *n);

/* Frees what tool_read_lines() returned; accepts NULL. */
void tool_free_lines(char **lines, size_t n);

/* Raises the soft RLIMIT_NOFILE (up to the hard limit) to what n connections need, plus 64
 * for the rest of the process. Best effort: a tool that cannot have them sees EMFILE. */
void tool_raise_nofile(size_t n);

#endif
