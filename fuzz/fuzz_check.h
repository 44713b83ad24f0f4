/* fuzz_check.h: the fuzz targets' assertion. A broken invariant prints where and why, then aborts,
 * which both libFuzzer and the replay program report as a crash with the input that caused it. */
#ifndef SB_FUZZ_CHECK_H
#define SB_FUZZ_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* Splits the input at NUL bytes into at most `max` strings, each in a malloc'd buffer of exactly its
 * size (so reading past one is caught); returns how many. The caller frees them. */
static inline size_t fuzz_split(const uint8_t *data, size_t size, char **part, size_t max) {
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size && n < max; i++) {
        if (i < size && data[i] != 0) continue;
        part[n] = malloc(i - start + 1);
        if (!part[n]) abort();
        memcpy(part[n], data + start, i - start);
        part[n++][i - start] = '\0';
        start = i + 1;
    }
    return n;
}

#endif
