/* Products on Q4_0, Q5_0, Q4_K, Q5_K and Q6_K weights (matmul_kq.c): every
 * variant this CPU runs, and qe_matmul's dispatch at every level up to the
 * detected one, against the double-precision product of the dequantized
 * weights (dequant.c, itself bit-exact with ggml: test_dequant.c); odd m and
 * n, k of one block up to several 256-wide tiles plus a tail of 32-blocks,
 * alone and on a pool of 2 (without and with a reserved Q8 activation
 * block); the block's sizing from a model's shapes; and the start-up check
 * (qe_kq_check) for each variant. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dequant.h"
#include "backend/cpu/matmul_kq.h"
#include "model/weights.h"
#include "check.h"

static unsigned long long g_s = 0x853c49e6748fea9bull;
static unsigned long long nxt(void) {
    g_s ^= g_s << 13;
    g_s ^= g_s >> 7;
    g_s ^= g_s << 17;
    return g_s;
}

static void scale_at(unsigned char *p, float v) {
    uint16_t h = qe_f32_to_f16(v);
    p[0] = (unsigned char)h, p[1] = (unsigned char)(h >> 8);
}

static const char *const vnames[] = {"scalar", "avx2", "avx512"};

/* y = x W^T for one type and shape: each variant and each dispatch level
 * within 1e-5 * sum |x w| of the double product of the dequantized weights. */
static void run(qe_dtype t, int m, int k, int n, qe_threadpool *pool) {
    const size_t bb = qe_dtype_block_bytes(t), nb = (size_t)n * (size_t)k / qe_dtype_block(t);
    unsigned char *w = malloc(nb * bb);
    float *wf = malloc(sizeof(float) * n * k), *x = malloc(sizeof(float) * m * k);
    float *y = malloc(sizeof(float) * m * n);
    double *yd = malloc(sizeof(double) * m * n), *bnd = malloc(sizeof(double) * m * n);
    double *qbnd = malloc(sizeof(double) * m * n);
    float *y8 = malloc(sizeof(float) * m * n);
    if (!w || !wf || !x || !y || !yd || !bnd || !qbnd || !y8) {
        CHECK(0, "out of memory");
        return;
    }
    for (size_t i = 0; i < nb * bb; i++) w[i] = (unsigned char)(nxt() >> 20);
    for (size_t b = 0; b < nb; b++) { /* finite scales of either sign */
        unsigned char *p = w + b * bb;
        float d = (float)((int)(nxt() % 2001) - 1000) * 1e-5f;
        if (t == QE_Q6_K)
            scale_at(p + 208, d);
        else
            scale_at(p, d);
        if (t == QE_Q4_K || t == QE_Q5_K) scale_at(p + 2, d * 0.5f);
    }
    qe_dequant_blocks(t, w, wf, nb);
    for (int i = 0; i < m * k; i++) x[i] = (float)((double)(nxt() >> 11) / 0x1p53 * 2 - 1);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0, b = 0, qb = 0;
            for (int p = 0; p < k; p++) {
                s += (double)x[i * k + p] * wf[(size_t)j * k + p];
                b += fabs((double)x[i * k + p] * wf[(size_t)j * k + p]);
            }
            /* int8 activations (per 32 values, scale amax/127): each is off
             * by at most half a step, amax/254 */
            for (int p0 = 0; p0 < k; p0 += 32) {
                double amax = 0;
                for (int p = p0; p < p0 + 32; p++) amax = fmax(amax, fabs((double)x[i * k + p]));
                for (int p = p0; p < p0 + 32; p++) qb += fabs((double)wf[(size_t)j * k + p]) * amax / 254;
            }
            yd[i * n + j] = s, bnd[i * n + j] = b, qbnd[i * n + j] = qb * 1.001 + 1e-5 * b;
        }
    /* the int8 products (Q4_K, Q6_K): the scalar reference within the
     * quantization bound of the double product, every other variant and
     * the dispatch outside exact mode within 1e-5 * sum |x w| of it */
    int int8 = t == QE_Q4_K || t == QE_Q6_K;
    if (int8) {
        qe_mm_args a = {NULL, QE_MM_BF16, x, (size_t)k, m, k, w, t, n, y8, (size_t)n};
        CHECK(qe_matmul_kq8(&a, QE_KQ8_SCALAR) == 0, "int8 reference refused");
        for (int i = 0; i < m * n; i++)
            if (!(fabs(y8[i] - yd[i]) <= qbnd[i])) {
                CHECK(0, "%s int8 scalar m=%d k=%d n=%d at (%d,%d): %.9g vs %.9g (bound %.3g)",
                      qe_dtype_name(t), m, k, n, i / n, i % n, y8[i], yd[i], qbnd[i]);
                break;
            }
        for (int v = QE_KQ8_SCALAR; v <= QE_KQ8_AVX2; v++)
            for (int p = 0; p < 2; p++) {
                if (!qe_kq8_variant_available((qe_kq8_variant)v)) continue;
                for (int i = 0; i < m * n; i++) y[i] = NAN;
                a.pool = p ? pool : NULL;
                a.y = y;
                CHECK(qe_matmul_kq8(&a, (qe_kq8_variant)v) == 0, "int8 variant %d refused", v);
                for (int i = 0; i < m * n; i++)
                    if (!(fabs(y[i] - y8[i]) <= 1e-5 * bnd[i] + 1e-30)) {
                        CHECK(0, "%s int8 variant %d%s m=%d k=%d n=%d at (%d,%d): %.9g vs %.9g",
                              qe_dtype_name(t), v, p ? " (pool)" : "", m, k, n, i / n, i % n, y[i], y8[i]);
                        break;
                    }
            }
    }
    for (int pass = 0; pass < 2 * 3 + 2 * 5; pass++) {
        const char *what;
        char buf[64];
        for (int i = 0; i < m * n; i++) y[i] = NAN;
        if (pass < 6) { /* variants, without and with the pool */
            qe_kq_variant v = (qe_kq_variant)(pass / 2);
            if (!qe_kq_variant_available(v)) continue;
            qe_mm_args a = {pass % 2 ? pool : NULL, QE_MM_EXACT, x, (size_t)k, m, k, w, t, n, y, (size_t)n};
            CHECK(qe_matmul_kq(&a, v) == 0, "variant %s refused", vnames[v]);
            snprintf(buf, sizeof buf, "%s%s", vnames[v], pass % 2 ? " (pool)" : "");
        } else { /* the public entry at each level and mode */
            qe_isa isa = (qe_isa)((pass - 6) / 2);
            if (isa > qe_cpu_isa()) continue;
            qe_matmul(pool, isa, (pass - 6) % 2 ? QE_MM_BF16 : QE_MM_EXACT, x, (size_t)k, m, k, w, t, n, y,
                      (size_t)n);
            snprintf(buf, sizeof buf, "qe_matmul at %s (%s)", qe_isa_name(isa),
                     (pass - 6) % 2 ? "bf16" : "exact");
        }
        what = buf;
        /* outside exact mode, where an int8 variant runs, its reference */
        const int as8 =
            int8 && pass >= 6 && (pass - 6) % 2 && qe_kq8_best((qe_isa)((pass - 6) / 2), t) != QE_KQ8_SCALAR;
        const float *want = as8 ? y8 : NULL;
        int bad = 0;
        for (int i = 0; i < m * n && bad < 3; i++)
            if (!(fabs(y[i] - (want ? want[i] : yd[i])) <= 1e-5 * bnd[i] + 1e-30)) {
                CHECK(0, "%s %s m=%d k=%d n=%d at (%d,%d): %.9g vs %.9g", qe_dtype_name(t), what, m, k, n,
                      i / n, i % n, y[i], want ? want[i] : yd[i]);
                bad++;
            }
    }
    free(w), free(wf), free(x), free(y), free(yd), free(bnd), free(qbnd), free(y8);
}

/* The Q8 activation block: its size per product (whole 16-row tiles of
 * k/32 records of 640 bytes, at most 1 MiB), from a model's shapes (only
 * products that pack activations count: Q8_0 always, Q4_K/Q6_K outside exact
 * mode), and the pool hands it out only to products it holds. */
static void test_q8_block(void) {
    CHECK(qe_q8_block_bytes(1024, 16) == 32 * 640, "k 1024, 16 rows: %zu", qe_q8_block_bytes(1024, 16));
    CHECK(qe_q8_block_bytes(1024, 17) == 2 * 32 * 640, "k 1024, 17 rows: %zu", qe_q8_block_bytes(1024, 17));
    /* k 3072: 96 records a tile; 1 MiB holds 17 tiles */
    CHECK(qe_q8_block_bytes(3072, 4096) == 17 * 96 * 640, "k 3072, 4096 rows: %zu",
          qe_q8_block_bytes(3072, 4096));
    CHECK(qe_q8_block_bytes(100, 16) == 0 && qe_q8_block_bytes(64, 0) == 0, "bad shapes need no block");

    qe_layer_weights lw[2];
    memset(lw, 0, sizeof lw);
    static char data[1];
    qe_tensor *mats[2][7] = {
        {&lw[0].wq, &lw[0].wk, &lw[0].wv, &lw[0].wo, &lw[0].w_gate, &lw[0].w_up, &lw[0].w_down},
        {&lw[1].wq, &lw[1].wk, &lw[1].wv, &lw[1].wo, &lw[1].w_gate, &lw[1].w_up, &lw[1].w_down}};
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < 7; i++) {
            mats[l][i]->data = data;
            mats[l][i]->dtype = QE_BF16;
            mats[l][i]->shape[0] = 512;
            mats[l][i]->shape[1] = i == 6 ? 1536 : 512;
        }
    qe_weights w = {.layers = lw, .n_layers = 2};
    CHECK(qe_q8_block_bytes_for(&w, 64, 0) == 0, "bf16 weights: %zu", qe_q8_block_bytes_for(&w, 64, 0));
    lw[1].w_down.dtype = QE_Q6_K; /* k 1536 */
    CHECK(qe_q8_block_bytes_for(&w, 64, 1) == 0, "Q6_K in exact mode: %zu", qe_q8_block_bytes_for(&w, 64, 1));
    CHECK(qe_q8_block_bytes_for(&w, 64, 0) == 4 * 48 * 640, "Q6_K down: %zu",
          qe_q8_block_bytes_for(&w, 64, 0));
    lw[0].wq.dtype = QE_Q8_0; /* k 512: the smaller need */
    CHECK(qe_q8_block_bytes_for(&w, 64, 1) == 4 * 16 * 640, "Q8_0 in exact mode: %zu",
          qe_q8_block_bytes_for(&w, 64, 1));
    CHECK(qe_q8_block_bytes_for(&w, 64, 0) == 4 * 48 * 640, "both: %zu", qe_q8_block_bytes_for(&w, 64, 0));
    lw[1].w_down.data = NULL; /* not bound here (another segment's layer) */
    CHECK(qe_q8_block_bytes_for(&w, 64, 0) == 4 * 16 * 640, "unbound down: %zu",
          qe_q8_block_bytes_for(&w, 64, 0));

    qe_threadpool *p = qe_threadpool_create(1);
    CHECK(p != NULL, "pool");
    size_t base = qe_threadpool_scratch_bytes(p);
    CHECK(qe_threadpool_q8_block(p, 1) == NULL, "a pool has no Q8 block until one is reserved");
    CHECK(qe_threadpool_reserve_q8(p, 0) == 0 && qe_threadpool_scratch_bytes(p) == base, "reserving 0");
    CHECK(qe_threadpool_reserve_q8(p, 5000) == 0 && qe_threadpool_scratch_bytes(p) == base + 5000,
          "5000 bytes");
    CHECK(qe_threadpool_q8_block(p, 5000) != NULL && qe_threadpool_q8_block(p, 5001) == NULL, "held bytes");
    CHECK(qe_threadpool_reserve_q8(p, 100) == 0 && qe_threadpool_scratch_bytes(p) == base + 5000,
          "a smaller reservation keeps the block");
    qe_threadpool_free(p);
}

int main(void) {
    test_q8_block();
    qe_threadpool *pool = qe_threadpool_create(2);
    CHECK(pool != NULL, "qe_threadpool_create(2)");
    static const qe_dtype types[] = {QE_Q4_0, QE_Q5_0, QE_Q4_K, QE_Q5_K, QE_Q6_K};
    for (size_t ti = 0; ti < 5; ti++) {
        qe_dtype t = types[ti];
        const int kb = (int)qe_dtype_block(t);
        run(t, 1, kb, 1, pool);
        run(t, 7, kb == 32 ? 32 * 11 : 256, 37, pool);  /* m tail (6 + 1), partial weight tile */
        run(t, 17, kb == 32 ? 32 * 19 : 768, 65, pool); /* 3 k-tiles (32-blocks: 2 and a tail) */
        run(t, 13, kb == 32 ? 32 * 9 : 512, 33, pool);
        if (kb == 256) { /* the int8 kernels' tile pairs, lone tiles and column tails */
            run(t, 33, 256, 11, pool);
            run(t, 45, 768, 27, pool);
        }
    }
    /* the int8 products again with the pool's own block (above, each call
     * allocated one): sized for the largest of these, as a context sizes it */
    CHECK(qe_threadpool_reserve_q8(pool, qe_q8_block_bytes(768, 45)) == 0, "reserve");
    for (size_t ti = 0; ti < 5; ti++) {
        if (!qe_kq8_dtype(types[ti])) continue;
        run(types[ti], 33, 256, 11, pool);
        run(types[ti], 45, 768, 27, pool);
        run(types[ti], 7, 256, 37, pool);
    }
    int ran = 0;
    for (int v = QE_KQ_SCALAR; v <= QE_KQ_AVX512; v++) {
        if (!qe_kq_variant_available((qe_kq_variant)v)) continue;
        ran++;
        CHECK(qe_kq_check((qe_kq_variant)v, NULL) == 0, "start-up check of %s fails", vnames[v]);
        CHECK(qe_kq_check((qe_kq_variant)v, pool) == 0, "start-up check of %s on a pool fails", vnames[v]);
    }
    for (int v = QE_KQ8_SCALAR; v <= QE_KQ8_AVX2; v++) {
        if (!qe_kq8_variant_available((qe_kq8_variant)v)) continue;
        CHECK(qe_kq8_check((qe_kq8_variant)v, NULL) == 0, "start-up check of int8 variant %d fails", v);
        CHECK(qe_kq8_check((qe_kq8_variant)v, pool) == 0, "start-up check of int8 variant %d on a pool fails",
              v);
    }
    printf("kernels: int8 Q4_K/Q6_K products: best here %s\n",
           qe_kq8_best(qe_cpu_isa(), QE_Q4_K) == QE_KQ8_VNNI   ? "vnni"
           : qe_kq8_best(qe_cpu_isa(), QE_Q4_K) == QE_KQ8_AVX2 ? "avx2"
                                                               : "none (dequantized tiles)");
    printf("kernels: Q4_0/Q5_0/Q4_K/Q5_K/Q6_K products: %d variant(s) (best here: %s) agree with the "
           "dequantized "
           "product\n",
           ran, vnames[qe_kq_best(qe_cpu_isa())]);
    qe_threadpool_free(pool);
    return failures != 0;
}
