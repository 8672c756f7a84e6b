/*
 * Shared by the fuzz targets of tests/fuzz: the libFuzzer entry points and an assertion
 * that survives NDEBUG. A broken invariant prints file:line and the expression, then
 * aborts, which libFuzzer reports as a crash with a reproducer (and replay.c as a failure).
 */
#ifndef ICMPX_FUZZ_H
#define ICMPX_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
