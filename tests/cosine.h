/* Cosine similarity for the C tests that compare embedding vectors (against
 * golden vectors, another backend, another batch): in double, and 0 rather
 * than NaN when a vector is all zeros (a check then fails with a number). */
#ifndef QE_TEST_COSINE_H
#define QE_TEST_COSINE_H

#include <math.h>

static inline double cosine(const float *a, const float *b, int n) {
    double d = 0, na = 0, nb = 0;
    for (int i = 0; i < n; i++) {
        d += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    return d / sqrt(na * nb + 1e-300);
}

#endif
