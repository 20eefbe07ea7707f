/* Start-up check of the block-weight products (matmul_kq.c) against their
 * scalar reference, as isa_check.c does for the other products: random
 * blocks of every type (random bytes, so every field value occurs, with
 * small finite f16 scales), odd m and n, one and several k-blocks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dequant.h"
#include "matmul_kq.h"

typedef struct kq_shape {
    int m, k, n;
} kq_shape;

static unsigned long long g_rng = 0x2545f4914f6cdd1dull;
static unsigned long long next(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void put_scale(unsigned char *p) {
    uint16_t h = qe_f32_to_f16(0.002f + 0.01f * (float)(next() % 1000) / 1000.0f);
    p[0] = (unsigned char)h;
    p[1] = (unsigned char)(h >> 8);
}

/* n rows of k as random blocks of t */
static void random_blocks(qe_dtype t, unsigned char *w, size_t nblocks) {
    const size_t bb = qe_dtype_block_bytes(t);
    for (size_t b = 0; b < nblocks; b++) {
        unsigned char *p = w + b * bb;
        for (size_t i = 0; i < bb; i++) p[i] = (unsigned char)(next() >> 24);
        if (t == QE_Q6_K) {
            put_scale(p + 208);
        } else {
            put_scale(p);
            if (t == QE_Q4_K || t == QE_Q5_K) put_scale(p + 2);
        }
    }
}

/* Runs product variant v (of the f32-tile or the int8 family) on a. */
typedef int (*kq_run_fn)(const qe_mm_args *a, int v);
static int run_kq(const qe_mm_args *a, int v) {
    return qe_matmul_kq(a, (qe_kq_variant)v);
}
static int run_kq8(const qe_mm_args *a, int v) {
    return qe_matmul_kq8(a, (qe_kq8_variant)v);
}

/* Variant v against the family's scalar variant on random blocks of t, in
 * mode `mode`: each output within 1e-5 of sum |x w| of the reference. */
static int check_shape(kq_run_fn run, int v, int scalar, qe_mm_mode mode, qe_threadpool *pool, qe_dtype t,
                       const kq_shape *s) {
    const size_t nw = qe_dtype_bytes(t, (uint64_t)s->n * (uint64_t)s->k);
    float *x = malloc((size_t)s->m * s->k * sizeof *x), *wf = malloc((size_t)s->n * s->k * sizeof *wf);
    float *y = malloc((size_t)s->m * s->n * sizeof *y), *yr = malloc((size_t)s->m * s->n * sizeof *yr);
    unsigned char *w = malloc(nw);
    int rc = 0;
    if (!x || !wf || !y || !yr || !w) rc = 1;
    if (rc == 0) {
        for (size_t i = 0; i < (size_t)s->m * s->k; i++)
            x[i] = (float)((double)(next() >> 11) / 0x1p53 * 2 - 1);
        random_blocks(t, w, nw / qe_dtype_block_bytes(t));
        qe_dequant_blocks(t, w, wf, nw / qe_dtype_block_bytes(t));
        qe_mm_args a = {NULL, mode, x, (size_t)s->k, s->m, s->k, w, t, s->n, yr, (size_t)s->n};
        rc = run(&a, scalar) ? 1 : 0;
        for (size_t i = 0; i < (size_t)s->m * s->n; i++) y[i] = NAN;
        a.pool = pool;
        a.y = y;
        if (rc == 0 && run(&a, v) != 0) rc = 1;
        for (int i = 0; rc == 0 && i < s->m; i++)
            for (int j = 0; j < s->n; j++) {
                double bnd = 0;
                for (int p = 0; p < s->k; p++)
                    bnd += fabs((double)x[(size_t)i * s->k + p] * wf[(size_t)j * s->k + p]);
                double d = fabs((double)y[(size_t)i * s->n + j] - (double)yr[(size_t)i * s->n + j]);
                if (!(d <= 1e-5 * bnd + 1e-30)) rc = -1; /* NaN fails too */
            }
    }
    free(x);
    free(wf);
    free(y);
    free(yr);
    free(w);
    return rc;
}

int qe_kq_check(qe_kq_variant v, qe_threadpool *pool) {
    /* 1..6 activation rows and their tails, a partial tile of weight rows,
     * three k-blocks (one a tail of 32-blocks for Q4_0/Q5_0) */
    static const kq_shape big[] = {{1, 256, 9}, {13, 768, 37}};
    static const kq_shape small[] = {{7, 96, 5}, {3, 608, 41}};
    static const qe_dtype types[] = {QE_Q4_0, QE_Q5_0, QE_Q4_K, QE_Q5_K, QE_Q6_K};
    if (!qe_kq_variant_available(v)) return 0;
    int rc = 0;
    for (size_t ti = 0; rc == 0 && ti < sizeof types / sizeof *types; ti++) {
        for (size_t si = 0; rc == 0 && si < 2; si++)
            rc = check_shape(run_kq, v, QE_KQ_SCALAR, QE_MM_EXACT, pool, types[ti], &big[si]);
        if (qe_dtype_block(types[ti]) == 32)
            for (size_t si = 0; rc == 0 && si < 2; si++)
                rc = check_shape(run_kq, v, QE_KQ_SCALAR, QE_MM_EXACT, pool, types[ti], &small[si]);
    }
    return rc;
}

/* The int8 products (matmul_kq8.c): variant v against their scalar
 * reference on random Q4_K and Q6_K blocks; m of 1, 17 (a tile and a tail
 * row) and 45 (a tile pair and a partial tile), n odd and past a panel of 8. */
int qe_kq8_check(qe_kq8_variant v, qe_threadpool *pool) {
    static const kq_shape shapes[] = {{1, 256, 9}, {17, 768, 13}, {45, 512, 19}};
    static const qe_dtype types[] = {QE_Q4_K, QE_Q6_K};
    if (!qe_kq8_variant_available(v)) return 0;
    int rc = 0;
    for (size_t ti = 0; rc == 0 && ti < 2; ti++)
        for (size_t si = 0; rc == 0 && si < sizeof shapes / sizeof *shapes; si++)
            rc = check_shape(run_kq8, v, QE_KQ8_SCALAR, QE_MM_BF16, pool, types[ti], &shapes[si]);
    return rc;
}
