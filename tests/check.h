/* The C tests' one assertion: CHECK(cond, fmt, ...) counts a failure and
 * says where and what, then the test goes on (a test reports every failure
 * it finds, and main returns failures != 0). One test program per file. */
#ifndef QE_TEST_CHECK_H
#define QE_TEST_CHECK_H

#include <stdio.h>

static int failures;
#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
        }                                                                   \
    } while (0)

#endif
