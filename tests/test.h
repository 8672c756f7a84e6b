/*
 * A tiny assert header for icmp_exporter's tests (in the spirit of libuv's task.h).
 *
 * Each CHECK prints the expression, both values and file:line to stderr, counts the
 * failure and carries on, so one run shows every broken case; TEST_DONE() then returns
 * the exit status for ctest. TEST_SKIP() exits 77, which ctest reports as skipped
 * (SKIP_RETURN_CODE 77), never as passed. REQUIRE stops the test at once.
 */
#ifndef ICMPX_TEST_H
#define ICMPX_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;

#define TEST_FAIL_AT(...)                                                                          \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        test_failures++;                                                                           \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            TEST_FAIL_AT("CHECK(%s) failed", #cond);                                               \
    } while (0)

#define CHECK_INT_OP(a, op, b)                                                                     \
    do {                                                                                           \
        intmax_t va_ = (intmax_t)(a), vb_ = (intmax_t)(b);                                         \
        if (!(va_ op vb_))                                                                         \
            TEST_FAIL_AT("CHECK(%s %s %s) failed: %jd vs %jd", #a, #op, #b, va_, vb_);             \
    } while (0)

#define CHECK_EQ(a, b) CHECK_INT_OP(a, ==, b)
#define CHECK_NE(a, b) CHECK_INT_OP(a, !=, b)
#define CHECK_LT(a, b) CHECK_INT_OP(a, <, b)
#define CHECK_LE(a, b) CHECK_INT_OP(a, <=, b)
#define CHECK_GT(a, b) CHECK_INT_OP(a, >, b)
#define CHECK_GE(a, b) CHECK_INT_OP(a, >=, b)

#define CHECK_STR_EQ(a, b)                                                                         \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (sa_ == NULL || sb_ == NULL ? sa_ != sb_ : strcmp(sa_, sb_) != 0)                       \
            TEST_FAIL_AT("CHECK_STR_EQ(%s, %s) failed: \"%s\" vs \"%s\"", #a, #b,                  \
                         sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                              \
    } while (0)

/* Like CHECK, but stops the test: for preconditions later checks depend on. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            TEST_FAIL_AT("REQUIRE(%s) failed", #cond);                                             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define TEST_SKIP(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "SKIP: ");                                                                 \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        exit(77);                                                                                  \
    } while (0)

#define TEST_DONE()                                                                                \
    (test_failures == 0 ? (fprintf(stderr, "ok\n"), 0)                                             \
                        : (fprintf(stderr, "%d check(s) failed\n", test_failures), 1))

#endif
