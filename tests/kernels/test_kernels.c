/* Tests of the CPU kernels (src/backend/cpu):
 *  - bf16/f16 conversions against independent computations (exhaustive for
 *    f16 -> f32 -> f16, hardware F16C where present);
 *  - the thread pool runs every task exactly once, many times in a row;
 *  - every qe_matmul variant this CPU supports, for every weight dtype and
 *    both modes, against the scalar reference, over odd sizes and tails,
 *    with row strides larger than the rows (the gaps hold NaN in x, which
 *    must never be read, and a sentinel in y, which must never be written).
 *
 * Tolerance of the products: |y - y_ref| <= 1e-5 * sum_p |x_p * w_p|.
 * Why: the reference accumulates in double, so its error is negligible; the
 * SIMD variants accumulate in f32 with k split across vector lanes and into
 * blocks of 512, so each output is a chain of at most ~80 f32 roundings
 * (512/16 FMA steps x 2 per lane, a 3-level horizontal sum, and k/512 block
 * additions), a relative error bounded by 80 * 2^-24 = 4.8e-6 of sum |terms|.
 * In BF16 mode both sides round the activations to bf16 the same way (RNE)
 * and bf16 x {bf16, f16, f32} products are exact or once-rounded in f32, so
 * the same bound holds against the scalar BF16-mode reference. A variant that
 * mishandles a tail, a stride or a dtype is off by O(1), far above this. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/isa_check.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_amx.h"
#include "backend/cpu/matmul_q8p.h"
#include "backend/cpu/ops.h"

#include "check.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd32(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float rnd_unit(void) {
    return (float)((double)rnd32() / 4294967296.0 * 2.0 - 1.0);
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---------------- conversions ---------------- */

/* bf16 rounding computed independently: the two bf16 neighbours of f, the
 * nearer one, ties to the one with an even last bit. */
static uint16_t bf16_ref(float f) {
    uint32_t u = bits(f);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    if ((u & 0xffff) == 0) return lo;
    double dlo = fabs((double)from_bits((uint32_t)lo << 16) - f);
    double vhi = (double)from_bits((uint32_t)hi << 16);
    if (isinf(vhi)) vhi = copysign(ldexp(1.0, 128), vhi); /* the next step past the largest finite */
    double dhi = fabs(vhi - f);
    if (dlo < dhi) return lo;
    if (dhi < dlo) return hi;
    return (lo & 1) ? hi : lo;
}

/* f16 value of h computed with ldexp (independent of the bit tricks). */
static double f16_value(uint16_t h) {
    int e = (h >> 10) & 31, mnt = h & 1023;
    double v = e == 0 ? ldexp(mnt, -24) : ldexp(1024 + mnt, e - 25);
    return (h & 0x8000) ? -v : v;
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("f16c"))) static uint16_t f16_hw(float f) {
    return (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0);
}
#endif

static void test_convert(void) {
    /* bf16: specials, then random bit patterns */
    CHECK(qe_f32_to_bf16(1.0f) == 0x3f80, "bf16(1)");
    CHECK(qe_f32_to_bf16(from_bits(0x3f808000)) == 0x3f80, "tie to even (down)");
    CHECK(qe_f32_to_bf16(from_bits(0x3f818000)) == 0x3f82, "tie to even (up)");
    CHECK(qe_f32_to_bf16(INFINITY) == 0x7f80 && qe_f32_to_bf16(-INFINITY) == 0xff80, "inf");
    CHECK(qe_f32_to_bf16(from_bits(0x7f7fffff)) == 0x7f80, "max float rounds to inf");
    uint16_t nb = qe_f32_to_bf16(from_bits(0x7f800001));
    CHECK((nb & 0x7f80) == 0x7f80 && (nb & 0x7f), "NaN stays NaN: %04x", nb);
    for (int i = 0; i < 200000; i++) {
        float f = from_bits(rnd32() ^ (rnd32() << 16));
        if (isnan(f)) continue;
        uint16_t got = qe_f32_to_bf16(f), want = bf16_ref(f);
        if (got != want) {
            CHECK(0, "bf16(%a) = %04x, want %04x", f, got, want);
            break;
        }
    }
    for (uint32_t h = 0; h < 65536; h++) {
        float f = qe_bf16_to_f32((uint16_t)h);
        if (!isnan(f)) CHECK(qe_f32_to_bf16(f) == h, "bf16 round trip %04x", h);
    }
    /* f16: every value converts exactly and round-trips */
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t hh = (uint16_t)h;
        float f = qe_f16_to_f32(hh);
        int e = (h >> 10) & 31;
        if (e == 31) {
            CHECK((h & 1023) ? isnan(f) : isinf(f), "f16 special %04x", h);
            continue;
        }
        if ((double)f != f16_value(hh)) {
            CHECK(0, "f16 %04x -> %a, want %a", h, f, f16_value(hh));
            break;
        }
        if (qe_f32_to_f16(f) != hh) {
            CHECK(0, "f16 round trip %04x -> %04x", h, qe_f32_to_f16(f));
            break;
        }
    }
    CHECK(qe_f32_to_f16(65520.0f) == 0x7c00 && qe_f32_to_f16(65519.0f) == 0x7bff, "f16 overflow");
    CHECK(qe_f32_to_f16(0x1p-25f) == 0 && qe_f32_to_f16(0x1.8p-25f) == 1, "f16 tiny: tie->0, >tie->1");
    CHECK(qe_f32_to_f16(0x1.8p-24f) == 2, "f16 subnormal tie to even");
#if defined(__x86_64__)
    /* qe_cpu_isa() >= AVX2 implies F16C (kernels.h); clang 14 does not know
     * __builtin_cpu_supports("f16c"). */
    if (qe_cpu_isa() >= QE_ISA_AVX2) {
        for (int i = 0; i < 200000; i++) {
            float f = from_bits(rnd32() ^ (rnd32() << 16));
            if (isnan(f)) continue;
            if (qe_f32_to_f16(f) != f16_hw(f)) {
                CHECK(0, "f16(%a) = %04x, F16C says %04x", f, qe_f32_to_f16(f), f16_hw(f));
                break;
            }
        }
    }
#endif
    float g = 3.0f;
    uint16_t gb = qe_f32_to_bf16(g), gh = qe_f32_to_f16(g);
    CHECK(qe_tensor_get_f32(&g, QE_F32, 0) == 3.0f && qe_tensor_get_f32(&gb, QE_BF16, 0) == 3.0f &&
              qe_tensor_get_f32(&gh, QE_F16, 0) == 3.0f,
          "qe_tensor_get_f32");
}

/* ---------------- thread pool ---------------- */

typedef struct count_job {
    int *hits;
    int n_threads;
    int bad_thread;
} count_job;

static void count_task(void *arg, int task, int thread) {
    count_job *j = arg;
    __atomic_fetch_add(&j->hits[task], 1, __ATOMIC_RELAXED);
    if (thread < 0 || thread >= j->n_threads) __atomic_store_n(&j->bad_thread, 1, __ATOMIC_RELAXED);
}

static void test_pool(void) {
    for (int nt = 1; nt <= 3; nt++) {
        qe_threadpool *pool = qe_threadpool_create(nt);
        CHECK(pool != NULL, "qe_threadpool_create(%d)", nt);
        if (!pool) continue;
        CHECK(qe_threadpool_size(pool) == nt, "pool size %d", qe_threadpool_size(pool));
        int hits[64];
        count_job job = {hits, nt, 0};
        for (int rep = 0; rep < 3000; rep++) {
            int n_tasks = rep % 64;
            memset(hits, 0, sizeof hits);
            qe_threadpool_run(pool, count_task, &job, n_tasks);
            for (int t = 0; t < n_tasks; t++)
                if (hits[t] != 1) {
                    CHECK(0, "pool %d rep %d: task %d ran %d times", nt, rep, t, hits[t]);
                    rep = 1 << 30;
                    break;
                }
        }
        CHECK(!job.bad_thread, "thread index out of range");
        qe_threadpool_free(pool);
    }
    qe_threadpool_free(NULL);
    CHECK(qe_threadpool_size(NULL) == 1, "NULL pool has one thread");
}

/* ---------------- matrix products ---------------- */

typedef struct shape {
    int m, k, n;
} shape;

static void *make_weights(qe_dtype wt, int n, int k, float *wf /* (n,k) as f32 */) {
    size_t cnt = (size_t)n * (size_t)k;
    size_t esz = wt == QE_F32 ? 4 : 2;
    /* exact size, so that ASan flags any read past the last row */
    void *w = malloc(cnt > 0 ? cnt * esz : 1);
    for (size_t i = 0; i < cnt; i++) {
        float v = rnd_unit();
        if (wt == QE_F32) {
            ((float *)w)[i] = v;
        } else if (wt == QE_BF16) {
            ((uint16_t *)w)[i] = qe_f32_to_bf16(v);
        } else {
            ((uint16_t *)w)[i] = qe_f32_to_f16(v);
        }
        wf[i] = qe_tensor_get_f32(w, wt, i);
    }
    return w;
}

static const char *dt_name(qe_dtype t) {
    return t == QE_F32 ? "f32" : t == QE_F16 ? "f16" : "bf16";
}

/* Returns the number of failures for this shape. */
static void test_shape(shape s, qe_dtype wt, qe_threadpool *pool2, qe_isa max_isa) {
    int m = s.m, k = s.k, n = s.n;
    size_t ldx = (size_t)k + 3, ldy = (size_t)n + 5;
    float *x = malloc(sizeof(float) * (size_t)m * ldx);
    float *wf = malloc(sizeof(float) * ((size_t)n * k + 1));
    float *yref = malloc(sizeof(float) * (size_t)m * ldy);
    float *y = malloc(sizeof(float) * (size_t)m * ldy);
    double *bound = malloc(sizeof(double) * (size_t)m * n);
    for (int i = 0; i < m; i++)
        for (size_t p = 0; p < ldx; p++) x[i * ldx + p] = p < (size_t)k ? rnd_unit() * 2.0f : NAN;
    void *w = make_weights(wt, n, k, wf);
    const float sentinel = -12345.5f;

    for (int mode = QE_MM_EXACT; mode <= QE_MM_BF16; mode++) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double b = 0;
                for (int p = 0; p < k; p++) {
                    float xv = x[i * ldx + p];
                    if (mode == QE_MM_BF16) xv = qe_bf16_to_f32(qe_f32_to_bf16(xv));
                    b += fabs((double)xv * wf[(size_t)j * k + p]);
                }
                bound[(size_t)i * n + j] = 1e-5 * b + 1e-30;
            }
        qe_matmul(NULL, QE_ISA_SCALAR, (qe_mm_mode)mode, x, ldx, m, k, w, wt, n, yref, ldy);
        for (int isa = QE_ISA_SCALAR; isa <= (int)max_isa; isa++) {
            for (int threads = 1; threads <= 2; threads++) {
                for (size_t i = 0; i < (size_t)m * ldy; i++) y[i] = sentinel;
                qe_matmul(threads == 1 ? NULL : pool2, (qe_isa)isa, (qe_mm_mode)mode, x, ldx, m, k, w, wt, n,
                          y, ldy);
                int bad = 0;
                for (int i = 0; i < m && !bad; i++) {
                    for (size_t j = 0; j < ldy; j++) {
                        float got = y[i * ldy + j];
                        if (j >= (size_t)n) {
                            if (got != sentinel) {
                                CHECK(0, "%s %s %s m=%d k=%d n=%d threads=%d: y[%d][%zu] (gap) written",
                                      qe_isa_name((qe_isa)isa), dt_name(wt), mode ? "bf16" : "exact", m, k, n,
                                      threads, i, j);
                                bad = 1;
                                break;
                            }
                            continue;
                        }
                        float want = yref[i * ldy + j];
                        double err = fabs((double)got - want);
                        if (!(err <= bound[(size_t)i * n + j])) {
                            CHECK(0,
                                  "%s %s %s m=%d k=%d n=%d threads=%d: y[%d][%zu] = %.9g, ref %.9g "
                                  "(err %.3g > bound %.3g)",
                                  qe_isa_name((qe_isa)isa), dt_name(wt), mode ? "bf16" : "exact", m, k, n,
                                  threads, i, j, got, want, err, bound[(size_t)i * n + j]);
                            bad = 1;
                            break;
                        }
                    }
                }
            }
        }
    }
    free(x);
    free(wf);
    free(yref);
    free(y);
    free(bound);
    free(w);
}

static void test_matmul(void) {
    qe_isa hw = qe_cpu_isa();
    printf("kernels: this CPU runs variants up to %s; testing scalar..%s\n", qe_isa_name(hw),
           qe_isa_name(hw));
    if (hw < QE_ISA_AMX) printf("kernels: level amx not offered here (needs AMX-BF16 and libdnnl.so.2)\n");
    if (hw < QE_ISA_AVX512_BF16)
        printf("kernels: NOT TESTED here (CPU lacks them): %s%s\n", hw < QE_ISA_AVX512 ? "avx512 " : "",
               "avx512bf16");
    qe_threadpool *pool2 = qe_threadpool_create(2);
    CHECK(pool2 != NULL, "pool");
    static const int ms[] = {1, 2, 3, 4, 5, 16, 17, 31, 32, 64, 129};
    static const int ks[] = {1, 15, 16, 17, 64, 1000, 1024};
    static const int ns[] = {1, 7, 33, 1024};
    int n_shapes = 0;
    for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
        for (size_t b = 0; b < sizeof ks / sizeof *ks; b++)
            for (size_t c = 0; c < sizeof ns / sizeof *ns; c++) {
                shape s = {ms[a], ks[b], ns[c]};
                /* the whole cross product would take minutes under ASan
                 * (the reference is scalar): small products all, larger ones
                 * sampled so that every size of each axis still meets the
                 * large sizes of the others */
                long long macs = (long long)s.m * s.k * s.n;
                int keep = macs <= 100000 || (macs <= 5000000 && (a + b + c) % 3 == 0);
                if (!keep) continue;
                for (int dt = 0; dt < 3; dt++) test_shape(s, (qe_dtype)dt, pool2, hw);
                n_shapes++;
            }
    /* a k longer than one 512-block with a tail in the last block, and the
     * model's largest k; for the dot form (m < 32) a k longer than its
     * k-block (the packed rows fill the scratch: 2144 for 31 rows) ending in
     * a partial step */
    /* ... and for the AVX2 GEMM form (m >= 32): several row blocks (240
     * max, rows not a multiple of its 6-row micro-panels), k-blocks of 256
     * with a tail that is not a multiple of 8, columns not a multiple of 16;
     * enough rows for a task per row block */
    shape extra[] = {{5, 1537, 9},
                     {4, 3072, 6},
                     {2, 2048, 35},
                     {250, 300, 37},
                     {487, 523, 21},
                     {128, 1031, 33},
                     {31, 3000, 9},
                     /* GEMM form split by row blocks (>= 4 per thread) */
                     {1931, 40, 19}};
    for (size_t e = 0; e < sizeof extra / sizeof *extra; e++)
        for (int dt = 0; dt < 3; dt++) test_shape(extra[e], (qe_dtype)dt, pool2, hw);
    printf("kernels: %d shapes x 3 dtypes x 2 modes x %d variants x 2 thread counts\n",
           n_shapes + (int)(sizeof extra / sizeof *extra), (int)hw + 1);
    qe_threadpool_free(pool2);
}

/* ---- the oneDNN variant (level amx; level avx512bf16's many-row route) ----
 * Through qe_matmul a variant that declines falls back silently, and the
 * shapes above (row stride n+5) mostly get oneDNN's plain gemm, not its AMX
 * kernels: so here it is called itself, with contiguous y (as the forward
 * pass does), must run (return 0) and agree with the reference. m = 700 with
 * k = 3072 is two row chunks of the conversion block. via_level: through
 * qe_matmul at level avx512bf16 instead, which must route to oneDNN exactly
 * when it can run without AMX and the product has QE_ONEDNN_ZMM_MIN_M (128)
 * rows or more (counted by qe_onednn_calls), and agree either way. */
static void onednn_case(shape s, qe_threadpool *pool2, int via_level) {
    size_t ldx = (size_t)s.k + 3, ldy = (size_t)s.n;
    float *x = malloc(sizeof(float) * (size_t)s.m * ldx), *wf = malloc(sizeof(float) * (size_t)s.n * s.k);
    float *yr = malloc(sizeof(float) * (size_t)s.m * ldy), *y = malloc(sizeof(float) * (size_t)s.m * ldy);
    for (size_t i = 0; i < (size_t)s.m * ldx; i++) x[i] = rnd_unit() * 2.0f;
    void *w = make_weights(QE_BF16, s.n, s.k, wf);
    qe_mm_args a = {NULL, QE_MM_BF16, x, ldx, s.m, s.k, w, QE_BF16, s.n, yr, ldy};
    qe_matmul_scalar(&a);
    const char *what = via_level ? "avx512bf16 level" : "onednn";
    for (int threads = 1; threads <= 2; threads++) {
        a.pool = threads == 1 ? NULL : pool2;
        a.y = y;
        for (size_t i = 0; i < (size_t)s.m * ldy; i++) y[i] = NAN;
        unsigned long calls = qe_onednn_calls();
        if (via_level) {
            qe_matmul(a.pool, QE_ISA_AVX512_BF16, QE_MM_BF16, x, ldx, s.m, s.k, w, QE_BF16, s.n, y, ldy);
            int routed = qe_onednn_calls() != calls, want = s.m >= 128 && qe_onednn_without_amx();
            CHECK(routed == want, "avx512bf16 level m=%d k=%d n=%d: oneDNN %s, expected %s", s.m, s.k, s.n,
                  routed ? "ran" : "did not run", want ? "it" : "qembed's kernel");
        } else {
            CHECK(qe_matmul_onednn(&a) == 0, "onednn m=%d k=%d n=%d threads=%d did not run", s.m, s.k, s.n,
                  threads);
            CHECK(qe_onednn_calls() == calls + 1, "onednn call not counted");
        }
        int bad = 0;
        for (int i = 0; i < s.m && !bad; i++)
            for (int j = 0; j < s.n && !bad; j++) {
                double b = 0;
                for (int p = 0; p < s.k; p++)
                    b += fabs((double)qe_bf16_to_f32(qe_f32_to_bf16(x[(size_t)i * ldx + p])) *
                              wf[(size_t)j * s.k + p]);
                double err = fabs((double)y[(size_t)i * ldy + j] - yr[(size_t)i * ldy + j]);
                if (!(err <= 1e-5 * b + 1e-30)) {
                    CHECK(0, "%s m=%d k=%d n=%d threads=%d: y[%d][%d] = %.9g, ref %.9g", what, s.m, s.k, s.n,
                          threads, i, j, y[(size_t)i * ldy + j], yr[(size_t)i * ldy + j]);
                    bad = 1;
                }
            }
    }
    if (!via_level) {
        a.mode = QE_MM_EXACT; /* f32 activations: not this variant's */
        CHECK(qe_matmul_onednn(&a) == -1, "onednn took an exact-mode product");
    }
    free(x);
    free(wf);
    free(yr);
    free(y);
    free(w);
}

static void test_onednn(qe_threadpool *pool2) {
    /* the levels that call it; below them oneDNN's bf16 matmul may be its
     * reference implementation, seconds per call */
    if (!qe_onednn_available() || qe_cpu_isa() < QE_ISA_AVX512_BF16) {
        printf("kernels: NOT TESTED here: the oneDNN variant (%s)\n",
               qe_onednn_available() ? "no AVX512-BF16" : "libdnnl.so.2 not loadable, or no AVX-512");
        return;
    }
    static const shape shapes[] = {
        {1, 67, 9}, {17, 1024, 192}, {33, 1000, 130}, {129, 2048, 64}, {700, 3072, 65}};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) onednn_case(shapes[si], pool2, 0);
    printf("kernels: oneDNN variant run directly on %zu shapes (oneDNN %s AMX)\n",
           sizeof shapes / sizeof *shapes, qe_onednn_without_amx() ? "without" : "with");
    /* below and at the route's row threshold, tails in k and n */
    static const shape routed[] = {{127, 1024, 70}, {128, 1000, 130}, {300, 2048, 64}};
    for (size_t si = 0; si < sizeof routed / sizeof *routed; si++) onednn_case(routed[si], pool2, 1);
    printf("kernels: avx512bf16 level on %zu shapes: oneDNN route %s\n", sizeof routed / sizeof *routed,
           qe_onednn_without_amx() ? "taken from 128 rows" : "not taken (oneDNN could run AMX)");
}

/* ---- the packed AMX products (matmul_amx.c) against the scalar reference ----
 * Each shape as three outputs of one call (as q, k, v: different widths, row
 * strides past the columns whose gaps must stay untouched) and as one glu
 * output (gate and up packed together: silu(gate) * up against the scalar
 * products then qe_op_swiglu). Tails in m (1, 17, 33: the 1x4/1x2 and 2x2
 * forms and a partial row tile), k (67, 1000: a padded k-block) and n (9,
 * 65, 130: partial tiles and panels); m = 700 at k = 3072 is two row chunks
 * of the conversion block; alone and on a pool. */
static int amx_close(const float *y, const float *yr, const float *x, size_t ldx, const float *wf, int i,
                     int j, int k) {
    double b = 0;
    for (int p = 0; p < k; p++)
        b += fabs((double)qe_bf16_to_f32(qe_f32_to_bf16(x[(size_t)i * ldx + p])) * wf[(size_t)j * k + p]);
    double err = fabs((double)*y - *yr);
    return err <= 1e-5 * b + 1e-30;
}

/* The bound on a glu output silu(g) * u when the gate and up products are
 * each within 1e-5 * b of the reference (b = sum over the depth of |x| |w|:
 * bg for the gate row, bu for the up row), through |silu'| <= 1.1; gr, ur
 * are the reference products and want = silu(gr) * ur. */
static double glu_tol(float gr, float ur, float want, double bg, double bu) {
    double silu = fabs((double)gr / (1.0 + exp(-(double)gr)));
    return 1.1 * 1e-5 * bg * (fabs(ur) + 1e-5 * bu) + (silu + 1e-5 * bg) * 1e-5 * bu + 1e-5 * fabs(want) +
           1e-30;
}

static void test_amx(qe_threadpool *pool2) {
    if (qe_cpu_isa() < QE_ISA_AMX || !qe_amx_usable()) {
        printf("kernels: NOT TESTED here: packed amx products (no AMX-BF16 level on this CPU)\n");
        return;
    }
    static const shape shapes[] = {{1, 67, 9},   {16, 1024, 192}, {17, 1000, 130},
                                   {33, 64, 65}, {100, 256, 96},  {700, 3072, 65}};
    const float sentinel = -12345.5f;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const shape s = shapes[si];
        const size_t ldx = (size_t)s.k + 3;
        const int ns[3] = {s.n, s.n + 32, s.n / 2 + 1};
        float *x = malloc(sizeof(float) * (size_t)s.m * ldx);
        for (size_t i = 0; i < (size_t)s.m * ldx; i++) x[i] = rnd_unit() * 2.0f;
        float *wf[3], *y[3], *yr[3];
        void *w[3];
        size_t ldy[3];
        qe_amx_w pw[3];
        qe_amx_out outs[3];
        for (int o = 0; o < 3; o++) {
            wf[o] = malloc(sizeof(float) * (size_t)ns[o] * s.k);
            w[o] = make_weights(QE_BF16, ns[o], s.k, wf[o]);
            ldy[o] = (size_t)ns[o] + 3 * o;
            y[o] = malloc(sizeof(float) * (size_t)s.m * ldy[o]);
            yr[o] = malloc(sizeof(float) * (size_t)s.m * ldy[o]);
            qe_mm_args a = {NULL, QE_MM_BF16, x, ldx, s.m, s.k, w[o], QE_BF16, ns[o], yr[o], ldy[o]};
            qe_matmul_scalar(&a);
            CHECK(qe_amx_pack(&pw[o], w[o], NULL, ns[o], s.k) == 0, "amx pack n=%d k=%d", ns[o], s.k);
            outs[o] = (qe_amx_out){&pw[o], y[o], ldy[o]};
        }
        /* glu: gate = w[0], up = a second weight of the same shape */
        float *wuf = malloc(sizeof(float) * (size_t)s.n * s.k),
              *g = malloc(sizeof(float) * (size_t)s.m * s.n);
        float *gr = malloc(sizeof(float) * (size_t)s.m * s.n),
              *ur = malloc(sizeof(float) * (size_t)s.m * s.n);
        void *wu = make_weights(QE_BF16, s.n, s.k, wuf);
        qe_amx_w pg;
        CHECK(qe_amx_pack(&pg, w[0], wu, s.n, s.k) == 0, "amx glu pack");
        qe_mm_args a = {NULL, QE_MM_BF16, x, ldx, s.m, s.k, w[0], QE_BF16, s.n, gr, (size_t)s.n};
        qe_matmul_scalar(&a);
        a.w = wu;
        a.y = ur;
        qe_matmul_scalar(&a);
        for (int threads = 1; threads <= 2; threads++) {
            qe_threadpool *pool = threads == 1 ? NULL : pool2;
            for (int o = 0; o < 3; o++)
                for (size_t i = 0; i < (size_t)s.m * ldy[o]; i++) y[o][i] = sentinel;
            CHECK(qe_matmul_amx(pool, x, ldx, s.m, s.k, outs, 3) == 0, "amx m=%d k=%d did not run", s.m, s.k);
            int bad = 0;
            for (int o = 0; o < 3; o++)
                for (int i = 0; i < s.m && !bad; i++)
                    for (size_t j = 0; j < ldy[o] && !bad; j++) {
                        const float *v = &y[o][(size_t)i * ldy[o] + j], *r = &yr[o][(size_t)i * ldy[o] + j];
                        if (j >= (size_t)ns[o]) {
                            if (*v != sentinel) {
                                CHECK(0, "amx output %d wrote the gap at row %d col %zu", o, i, j);
                                bad = 1;
                            }
                        } else if (!amx_close(v, r, x, ldx, wf[o], i, (int)j, s.k)) {
                            CHECK(0, "amx m=%d k=%d n=%d threads=%d out %d: y[%d][%zu] = %.9g, ref %.9g", s.m,
                                  s.k, ns[o], threads, o, i, j, *v, *r);
                            bad = 1;
                        }
                    }
            qe_amx_out go = {&pg, g, (size_t)s.n};
            CHECK(qe_matmul_amx(pool, x, ldx, s.m, s.k, &go, 1) == 0, "amx glu did not run");
            for (int i = 0; i < s.m && !bad; i++)
                for (int j = 0; j < s.n && !bad; j++) {
                    size_t at = (size_t)i * s.n + j;
                    float want = gr[at];
                    qe_op_swiglu(&want, &ur[at], 1);
                    /* the products' bound through silu(g) * u: |silu'| <= 1.1 */
                    double bg = 0, bu = 0;
                    for (int p = 0; p < s.k; p++) {
                        double xv = fabs((double)qe_bf16_to_f32(qe_f32_to_bf16(x[(size_t)i * ldx + p])));
                        bg += xv * fabs(wf[0][(size_t)j * s.k + p]);
                        bu += xv * fabs(wuf[(size_t)j * s.k + p]);
                    }
                    double tol = glu_tol(gr[at], ur[at], want, bg, bu);
                    if (!(fabs((double)g[at] - want) <= tol)) {
                        CHECK(0, "amx glu m=%d k=%d n=%d threads=%d: [%d][%d] = %.9g, ref %.9g", s.m, s.k,
                              s.n, threads, i, j, g[at], want);
                        bad = 1;
                    }
                }
        }
        CHECK(qe_matmul_amx(NULL, x, ldx, s.m, s.k + 1, outs, 1) == -1, "amx took a depth mismatch");
        for (int o = 0; o < 3; o++) {
            qe_amx_free(&pw[o]);
            free(wf[o]);
            free(w[o]);
            free(y[o]);
            free(yr[o]);
        }
        qe_amx_free(&pg);
        free(wu);
        free(wuf);
        free(g);
        free(gr);
        free(ur);
        free(x);
    }
    printf("kernels: packed amx products (3 outputs and glu) on %zu shapes\n",
           sizeof shapes / sizeof *shapes);
}

/* ---- the Q8_0 product on packed weights (matmul_q8p.c) as the forward
 * pass calls it ----
 * Each shape as three outputs of one call (different widths, row strides
 * past the columns whose gaps must stay untouched) and as one glu output
 * (silu(gate) * up against the scalar Q8_0 products then qe_op_swiglu), with
 * random Q8_0 blocks (q of -128 included). Tails in m (1, 17, 33, 100), k
 * (one block, 31 blocks: a last odd block in a record) and n (9, 65, 130:
 * partial 16-row groups); m = 700 at k = 3072 is three chunks of the
 * activation block; alone and on a pool. The single-output form is also
 * q8 variant "amx packed" in test_q8. */
static uint8_t *make_q8(int n, int k) {
    const size_t nb = (size_t)n * (size_t)(k / 32);
    uint8_t *w = malloc(nb * 34);
    for (size_t b = 0; b < nb; b++) {
        uint16_t d = qe_f32_to_f16(0.001f + 0.01f * fabsf(rnd_unit()));
        memcpy(w + b * 34, &d, 2);
        for (int i = 0; i < 32; i++) w[b * 34 + 2 + i] = (uint8_t)(int8_t)(int)floorf(rnd_unit() * 128.f);
    }
    return w;
}

/* |y - ref| within 1e-5 of sum |x w| (the f32 accumulation order differs;
 * the integer sums do not) */
static int q8_close(float y, float ref, const float *x, const uint8_t *w, int k) {
    double b = 0;
    for (int p = 0; p < k; p++) b += fabs((double)x[p] * qe_tensor_get_f32(w, QE_Q8_0, (size_t)p));
    return fabs((double)y - ref) <= 1e-5 * b + 1e-30;
}

static void test_q8p(qe_threadpool *pool2) {
    if (qe_cpu_isa() < QE_ISA_AMX || !qe_q8p_usable()) {
        printf("kernels: NOT TESTED here: packed q8 products (no AMX-INT8 level on this CPU)\n");
        return;
    }
    static const shape shapes[] = {{1, 32, 9},   {16, 1024, 192}, {17, 992, 130},
                                   {33, 64, 65}, {100, 256, 96},  {700, 3072, 65}};
    const float sentinel = -12345.5f;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const shape s = shapes[si];
        const size_t ldx = (size_t)s.k + 3, wrow = (size_t)(s.k / 32) * 34;
        const int ns[3] = {s.n, s.n + 32, s.n / 2 + 1};
        float *x = malloc(sizeof(float) * (size_t)s.m * ldx);
        for (size_t i = 0; i < (size_t)s.m * ldx; i++) x[i] = rnd_unit() * 2.0f;
        float *y[3], *yr[3];
        uint8_t *w[3];
        size_t ldy[3];
        qe_q8p_w pw[3];
        qe_q8p_out outs[3];
        for (int o = 0; o < 3; o++) {
            w[o] = make_q8(ns[o], s.k);
            ldy[o] = (size_t)ns[o] + 3 * o;
            y[o] = malloc(sizeof(float) * (size_t)s.m * ldy[o]);
            yr[o] = malloc(sizeof(float) * (size_t)s.m * ldy[o]);
            qe_mm_args a = {NULL, QE_MM_BF16, x, ldx, s.m, s.k, w[o], QE_Q8_0, ns[o], yr[o], ldy[o]};
            CHECK(qe_matmul_q8(&a, QE_Q8_SCALAR) == 0, "q8 scalar reference ran");
            CHECK(qe_q8p_pack(&pw[o], w[o], NULL, ns[o], s.k) == 0, "q8p pack n=%d k=%d", ns[o], s.k);
            outs[o] = (qe_q8p_out){&pw[o], y[o], ldy[o]};
        }
        uint8_t *wu = make_q8(s.n, s.k);
        float *g = malloc(sizeof(float) * (size_t)s.m * s.n), *gr = malloc(sizeof(float) * (size_t)s.m * s.n);
        float *ur = malloc(sizeof(float) * (size_t)s.m * s.n);
        qe_q8p_w pg;
        CHECK(qe_q8p_pack(&pg, w[0], wu, s.n, s.k) == 0, "q8p glu pack");
        qe_mm_args a = {NULL, QE_MM_BF16, x, ldx, s.m, s.k, w[0], QE_Q8_0, s.n, gr, (size_t)s.n};
        CHECK(qe_matmul_q8(&a, QE_Q8_SCALAR) == 0, "q8 scalar gate");
        a.w = wu;
        a.y = ur;
        CHECK(qe_matmul_q8(&a, QE_Q8_SCALAR) == 0, "q8 scalar up");
        for (int threads = 1; threads <= 2; threads++) {
            qe_threadpool *pool = threads == 1 ? NULL : pool2;
            for (int o = 0; o < 3; o++)
                for (size_t i = 0; i < (size_t)s.m * ldy[o]; i++) y[o][i] = sentinel;
            CHECK(qe_matmul_q8p(pool, x, ldx, s.m, s.k, outs, 3) == 0, "q8p m=%d k=%d did not run", s.m, s.k);
            int bad = 0;
            for (int o = 0; o < 3; o++)
                for (int i = 0; i < s.m && !bad; i++)
                    for (size_t j = 0; j < ldy[o] && !bad; j++) {
                        float v = y[o][(size_t)i * ldy[o] + j], r = yr[o][(size_t)i * ldy[o] + j];
                        if (j >= (size_t)ns[o]) {
                            if (v != sentinel) {
                                CHECK(0, "q8p output %d wrote the gap at row %d col %zu", o, i, j);
                                bad = 1;
                            }
                        } else if (!q8_close(v, r, x + (size_t)i * ldx, w[o] + j * wrow, s.k)) {
                            CHECK(0, "q8p m=%d k=%d n=%d threads=%d out %d: y[%d][%zu] = %.9g, ref %.9g", s.m,
                                  s.k, ns[o], threads, o, i, j, v, r);
                            bad = 1;
                        }
                    }
            qe_q8p_out go = {&pg, g, (size_t)s.n};
            CHECK(qe_matmul_q8p(pool, x, ldx, s.m, s.k, &go, 1) == 0, "q8p glu did not run");
            for (int i = 0; i < s.m && !bad; i++)
                for (int j = 0; j < s.n && !bad; j++) {
                    size_t at = (size_t)i * s.n + j;
                    float want = gr[at];
                    qe_op_swiglu(&want, &ur[at], 1);
                    /* the products' bound through silu(g) * u: |silu'| <= 1.1 */
                    double bg = 0, bu = 0;
                    for (int p = 0; p < s.k; p++) {
                        double xv = fabs((double)x[(size_t)i * ldx + p]);
                        bg += xv * fabs(qe_tensor_get_f32(w[0], QE_Q8_0, (size_t)j * s.k + p));
                        bu += xv * fabs(qe_tensor_get_f32(wu, QE_Q8_0, (size_t)j * s.k + p));
                    }
                    double tol = glu_tol(gr[at], ur[at], want, bg, bu);
                    if (!(fabs((double)g[at] - want) <= tol)) {
                        CHECK(0, "q8p glu m=%d k=%d n=%d threads=%d: [%d][%d] = %.9g, ref %.9g", s.m, s.k,
                              s.n, threads, i, j, g[at], want);
                        bad = 1;
                    }
                }
        }
        CHECK(qe_matmul_q8p(NULL, x, ldx, s.m, s.k + 32, outs, 1) == -1, "q8p took a depth mismatch");
        for (int o = 0; o < 3; o++) {
            qe_q8p_free(&pw[o]);
            free(w[o]);
            free(y[o]);
            free(yr[o]);
        }
        qe_q8p_free(&pg);
        free(wu);
        free(g);
        free(gr);
        free(ur);
        free(x);
    }
    printf("kernels: packed q8 products (3 outputs and glu) on %zu shapes\n", sizeof shapes / sizeof *shapes);
}

/* ---- RMSNorm's SIMD body against qe_op_rmsnorm_rows ----
 * Widths 1..70 and 128, 1024 (tails of 32 and 16), row strides past the
 * width, in place and not, values spanning 1e-3..1e3: agreement within a
 * few ulp (the double sums differ in order only). */
static void test_rmsnorm(void) {
    int checked = 0;
    for (int isa = QE_ISA_AVX512; isa <= (int)qe_cpu_isa(); isa += 100) {
        for (int d = 1; d <= 1024; d = d < 70 ? d + 1 : d < 128 ? 128 : d < 1024 ? 1024 : 2048) {
            const int rows = 3;
            const size_t ld = (size_t)d + 7;
            float *x = malloc(sizeof(float) * rows * ld), *w = malloc(sizeof(float) * d);
            float *y = malloc(sizeof(float) * rows * ld), *yr = malloc(sizeof(float) * rows * ld);
            for (size_t i = 0; i < rows * ld; i++) x[i] = rnd_unit() * powf(10.0f, 3.0f * rnd_unit());
            for (int i = 0; i < d; i++) w[i] = rnd_unit();
            qe_op_rmsnorm_rows(x, ld, yr, ld, 0, rows, d, w, 1e-6f);
            qe_op_rmsnorm_rows_isa((qe_isa)isa, x, ld, y, ld, 0, rows, d, w, 1e-6f);
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < d; j++) {
                    float a = y[r * ld + j], b = yr[r * ld + j];
                    CHECK(fabsf(a - b) <= 4e-7f * fabsf(b) + 1e-30f, "rmsnorm d=%d [%d][%d]: %.9g vs %.9g", d,
                          r, j, a, b);
                }
            /* in place (as the q/k norms run) */
            qe_op_rmsnorm_rows_isa((qe_isa)isa, x, ld, x, ld, 0, rows, d, w, 1e-6f);
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < d; j++)
                    CHECK(fabsf(x[r * ld + j] - yr[r * ld + j]) <= 4e-7f * fabsf(yr[r * ld + j]) + 1e-30f,
                          "rmsnorm in place d=%d", d);
            checked++;
            free(x);
            free(w);
            free(y);
            free(yr);
        }
    }
    printf("kernels: rmsnorm SIMD body agrees with the reference on %d widths\n", checked);
}

/* ---- the fused norms against the ops they fuse ----
 * qe_op_add_rmsnorm_rows_isa must equal qe_op_add then
 * qe_op_rmsnorm_rows_isa, and qe_op_rmsnorm_rope_heads_isa must equal
 * qe_op_rmsnorm_rows_isa over the heads then qe_op_rope_head, bit for bit,
 * at every level this CPU has (the forward pass's vectors rest on it):
 * widths with tails of 32 and 16, strides past the width, y over delta (as
 * the forward pass calls it), no weight (the add alone), head widths the
 * SIMD form takes (multiples of 32 up to 256) and others, real RoPE rows. */
static int same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static void test_fused_norms(void) {
    int checked = 0;
    for (int isa = QE_ISA_SCALAR; isa <= (int)qe_cpu_isa(); isa++) {
        for (int d = 1; d <= 1030; d = d < 70 ? d + 1 : d < 128 ? 128 : d < 1024 ? 1024 : 1031) {
            const int rows = 3;
            const size_t ld = (size_t)d + 5, n = rows * ld;
            float *x = malloc(sizeof(float) * n), *dl = malloc(sizeof(float) * n),
                  *w = malloc(sizeof(float) * d);
            float *x2 = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n),
                  *y2 = malloc(sizeof(float) * n);
            for (size_t i = 0; i < n; i++) {
                x[i] = rnd_unit() * powf(10.0f, 3.0f * rnd_unit());
                dl[i] = rnd_unit() * powf(10.0f, 3.0f * rnd_unit());
            }
            for (int i = 0; i < d; i++) w[i] = rnd_unit();
            for (int mode = 0; mode < 3; mode++) { /* y apart, y over delta, no weight */
                memcpy(x2, x, sizeof(float) * n);
                memcpy(y2, dl, sizeof(float) * n);
                memcpy(y, dl, sizeof(float) * n);
                const float *wm = mode == 2 ? NULL : w;
                /* the reference: the two ops, on copies */
                float *xr = malloc(sizeof(float) * n), *yr = malloc(sizeof(float) * n);
                memcpy(xr, x, sizeof(float) * n);
                memcpy(yr, dl, sizeof(float) * n);
                for (int r = 0; r < rows; r++) qe_op_add(xr + r * ld, dl + r * ld, (size_t)d);
                if (wm) qe_op_rmsnorm_rows_isa((qe_isa)isa, xr, ld, yr, ld, 0, rows, d, wm, 1e-6f);
                if (mode == 1) /* y written over delta */
                    qe_op_add_rmsnorm_rows_isa((qe_isa)isa, x2, ld, y2, ld, y2, ld, 0, rows, d, wm, 1e-6f);
                else
                    qe_op_add_rmsnorm_rows_isa((qe_isa)isa, x2, ld, dl, ld, y2, ld, 0, rows, d, wm, 1e-6f);
                CHECK(same_bits(x2, xr, n), "add_rmsnorm %s d=%d mode %d: x differs",
                      qe_isa_name((qe_isa)isa), d, mode);
                for (int r = 0; r < rows; r++)
                    CHECK(same_bits(y2 + r * ld, yr + r * ld, (size_t)d),
                          "add_rmsnorm %s d=%d mode %d: row %d differs", qe_isa_name((qe_isa)isa), d, mode,
                          r);
                free(xr);
                free(yr);
                checked++;
            }
            free(x);
            free(dl);
            free(w);
            free(x2);
            free(y);
            free(y2);
        }
        static const int dims[] = {2, 30, 32, 64, 96, 128, 160, 256, 288};
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
            const int d = dims[di], heads = 3, pos = 4097, n_pos = 4100;
            float *ct = malloc(sizeof(float) * (size_t)n_pos * (d / 2)),
                  *st = malloc(sizeof(float) * (size_t)n_pos * (d / 2));
            qe_op_rope_table(1000000.0, d, n_pos, ct, st);
            for (int p = 0; p < n_pos; p += pos) {
                float v[3 * 288], vr[3 * 288], w[288];
                for (int i = 0; i < heads * d; i++)
                    v[i] = vr[i] = rnd_unit() * powf(10.0f, 2.0f * rnd_unit());
                for (int i = 0; i < d; i++) w[i] = rnd_unit();
                const float *c = ct + (size_t)p * (d / 2), *s = st + (size_t)p * (d / 2);
                qe_op_rmsnorm_rows_isa((qe_isa)isa, vr, (size_t)d, vr, (size_t)d, 0, heads, d, w, 1e-6f);
                for (int h = 0; h < heads; h++) qe_op_rope_head(vr + h * d, d, c, s);
                qe_op_rmsnorm_rope_heads_isa((qe_isa)isa, v, heads, d, w, 1e-6f, c, s);
                CHECK(same_bits(v, vr, (size_t)heads * d), "norm_rope %s d=%d pos %d differs",
                      qe_isa_name((qe_isa)isa), d, p);
                checked++;
            }
            free(ct);
            free(st);
        }
    }
    printf("kernels: fused add+norm and q/k norm+RoPE equal the ops they fuse, bit for bit (%d cases, levels "
           "to %s)\n",
           checked, qe_isa_name(qe_cpu_isa()));
}

/* ---- SwiGLU's SIMD body against qe_op_swiglu (libm expf) ----
 * Every length 0..70 (tails of 16), values over the range where silu
 * changes shape, and the edges: large |x| (exp overflows or vanishes), 0,
 * -0, NaN. Agreement within 4 ulp-ish of the result's scale. */
static void test_swiglu(void) {
    qe_isa hw = qe_cpu_isa();
    int checked = 0;
    for (int isa = QE_ISA_AVX2; isa <= (int)hw; isa++) {
        for (size_t n = 0; n <= 70; n++) {
            float g[70], g2[70], u[70];
            for (size_t i = 0; i < n; i++) {
                g[i] = (rnd_unit() * 2.0f - 1.0f) * 20.0f;
                u[i] = rnd_unit() * 2.0f - 1.0f;
            }
            if (n > 5) {
                g[0] = 100.0f;
                g[1] = -100.0f;
                g[2] = 0.0f;
                g[3] = -0.0f;
                g[4] = NAN;
                g[5] = -87.0f;
            }
            memcpy(g2, g, sizeof g);
            qe_op_swiglu(g, u, n);
            qe_op_swiglu_isa((qe_isa)isa, g2, u, n);
            for (size_t i = 0; i < n; i++) {
                if (isnan(g[i]) || isnan(g2[i])) {
                    CHECK(isnan(g[i]) && isnan(g2[i]), "swiglu %s n=%zu [%zu]: %g vs %g",
                          qe_isa_name((qe_isa)isa), n, i, g2[i], g[i]);
                    continue;
                }
                float tol = 4e-7f * fabsf(g[i]) + 1e-30f;
                CHECK(fabsf(g2[i] - g[i]) <= tol, "swiglu %s n=%zu [%zu]: %.9g vs %.9g",
                      qe_isa_name((qe_isa)isa), n, i, g2[i], g[i]);
                checked++;
            }
        }
    }
    printf("kernels: swiglu SIMD bodies up to %s agree with libm on %d values\n", qe_isa_name(hw), checked);
}

/* ---- the run-time check that gates each SIMD level ---- */
static int scalar_variant(const qe_mm_args *a) {
    qe_matmul_scalar(a);
    return 0;
}
/* right everywhere but one output, off by 1e-3 of its scale */
static int off_by_a_little(const qe_mm_args *a) {
    qe_matmul_scalar(a);
    float *last = a->y + (size_t)(a->m - 1) * a->ldy + (size_t)(a->n - 1);
    *last += 1e-3f * (fabsf(*last) + 1e-3f);
    return 0;
}
static int writes_nan(const qe_mm_args *a) {
    qe_matmul_scalar(a);
    a->y[0] = NAN;
    return 0;
}
static int skips_a_row(const qe_mm_args *a) {
    qe_mm_args b = *a;
    if (b.m > 1) b.m--; /* the last row keeps the NaN the check pre-fills */
    qe_matmul_scalar(&b);
    return 0;
}

static void test_isa_check(void) {
    CHECK(qe_mm_variant_check(scalar_variant) == 0, "the scalar reference against itself");
    CHECK(qe_mm_variant_check(off_by_a_little) == -1, "a product off by 1e-3 passed the check");
    CHECK(qe_mm_variant_check(writes_nan) == -1, "a NaN passed the check");
    CHECK(qe_mm_variant_check(skips_a_row) == -1, "an unwritten row passed the check");
    /* every level this CPU offers passed at start-up (or it would not be used
     * and the note would say why) */
    CHECK(qe_cpu_isa_note()[0] == '\0', "start-up check: %s", qe_cpu_isa_note());
    for (int l = QE_ISA_AVX2; l <= (int)qe_cpu_isa(); l++)
        CHECK(qe_isa_check((qe_isa)l) == 0, "level %s fails the check", qe_isa_name((qe_isa)l));
    printf("kernels: run-time check passes %s and rejects 3 wrong products\n", qe_isa_name(qe_cpu_isa()));
}

/* Q8_0 weights (matmul_q8.c): every int8 variant this CPU runs against the
 * scalar reference (odd m and n, k of 1 to 37 blocks, alone and on a pool),
 * the reference itself against the f32 product of the dequantized weights
 * (the only difference is the activations' 8-bit rounding), and qe_matmul's
 * dispatch of QE_Q8_0 at the detected level. */
static void test_q8(qe_threadpool *pool2) {
    static const char *const names[QE_Q8_N_VARIANTS] = {"scalar", "avx2", "vnni", "amx", "amx packed"};
    int ran = 0;
    for (int v = QE_Q8_SCALAR; v < QE_Q8_N_VARIANTS; v++) {
        if (!qe_q8_variant_available((qe_q8_variant)v)) continue;
        ran++;
        CHECK(qe_q8_check((qe_q8_variant)v, NULL) == 0, "q8 %s differs from the scalar reference", names[v]);
        CHECK(qe_q8_check((qe_q8_variant)v, pool2) == 0, "q8 %s on a pool differs", names[v]);
    }
    /* k of 400 blocks: the SIMD variants' packed activations (QE_MM_Q8ACT)
     * hold 4 tiles of it, so 100 rows take two chunks with a partial tile;
     * on the pool's own block this time (above, without one, each call
     * allocated its own), sized as a context sizes it */
    CHECK(qe_threadpool_reserve_q8(pool2, qe_q8_block_bytes(32 * 400, 100)) == 0, "reserve");
    CHECK(qe_q8_block_bytes(32 * 400, 100) == 4 * 400 * 640, "one chunk: 4 tiles of 400 records");
    {
        const int bm = 100, bk = 32 * 400, bn = 40;
        float *bx = malloc(sizeof(float) * (size_t)bm * bk), *by = malloc(sizeof(float) * (size_t)bm * bn);
        float *br = malloc(sizeof(float) * (size_t)bm * bn);
        uint8_t *bw = malloc((size_t)bn * 400 * 34);
        CHECK(bx && by && br && bw, "out of memory");
        unsigned r = 11;
        for (size_t i = 0; bx && i < (size_t)bm * bk; i++)
            bx[i] = (float)((r = r * 1103515245u + 12345u) >> 9) / 8388608.f - 1.f;
        for (int b = 0; bw && b < bn * 400; b++) {
            uint16_t d = qe_f32_to_f16(0.002f + 0.001f * (float)(b % 7));
            memcpy(bw + (size_t)b * 34, &d, 2);
            for (int i = 0; i < 32; i++)
                bw[(size_t)b * 34 + 2 + i] =
                    (uint8_t)(int8_t)((int)((r = r * 1103515245u + 12345u) >> 16) % 256 - 128);
        }
        qe_mm_args a = {NULL, QE_MM_BF16, bx, (size_t)bk, bm, bk, bw, QE_Q8_0, bn, br, (size_t)bn};
        CHECK(bx && by && br && bw && qe_matmul_q8(&a, QE_Q8_SCALAR) == 0, "q8 scalar on %d x %d", bm, bk);
        for (int v = QE_Q8_AVX2; bx && by && br && bw && v < QE_Q8_N_VARIANTS; v++) {
            if (!qe_q8_variant_available((qe_q8_variant)v)) continue;
            for (size_t i = 0; i < (size_t)bm * bn; i++) by[i] = NAN;
            a.pool = pool2;
            a.y = by;
            CHECK(qe_matmul_q8(&a, (qe_q8_variant)v) == 0, "q8 %s ran", names[v]);
            /* exact integer sums, f32 against double accumulation over 400
             * blocks: relative to the largest output */
            double worst = 0, big = 0;
            for (size_t i = 0; i < (size_t)bm * bn; i++) big = fmax(big, fabs((double)br[i]));
            for (size_t i = 0; i < (size_t)bm * bn; i++) {
                double d = fabs((double)by[i] - br[i]) / big;
                if (!(d <= worst)) worst = d; /* NaN sticks */
            }
            CHECK(worst <= 1e-5, "q8 %s on two chunks: worst difference %g of the largest output", names[v],
                  worst);
        }
        free(bx);
        free(by);
        free(br);
        free(bw);
    }
    const int m = 5, k = 32 * 7, n = 11;
    float x[5 * 224], y[5 * 11], yd[5 * 11];
    uint8_t w[11 * 7 * 34];
    float wd[11 * 224];
    unsigned s = 7;
    for (int i = 0; i < m * k; i++) x[i] = (float)((s = s * 1103515245u + 12345u) >> 9) / 8388608.f - 1.f;
    for (int b = 0; b < n * 7; b++) {
        uint16_t d = qe_f32_to_f16(0.004f);
        memcpy(w + b * 34, &d, 2);
        for (int i = 0; i < 32; i++)
            w[b * 34 + 2 + i] = (uint8_t)(int8_t)((int)((s = s * 1103515245u + 12345u) >> 16) % 255 - 127);
    }
    for (int i = 0; i < n * k; i++) wd[i] = qe_tensor_get_f32(w, QE_Q8_0, (size_t)i);
    qe_matmul(NULL, QE_ISA_SCALAR, QE_MM_EXACT, x, (size_t)k, m, k, wd, QE_F32, n, yd, (size_t)n);
    for (int isa = QE_ISA_SCALAR; isa <= (int)qe_cpu_isa(); isa++) {
        qe_matmul(pool2, (qe_isa)isa, QE_MM_BF16, x, (size_t)k, m, k, w, QE_Q8_0, n, y, (size_t)n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double bnd = 0;
                for (int p = 0; p < k; p++) bnd += fabs((double)x[i * k + p] * wd[j * k + p]);
                double d = fabs((double)y[i * n + j] - yd[i * n + j]);
                CHECK(d <= 0.01 * bnd, "q8 product at %s (%d,%d): %g vs f32 %g (bound %g)",
                      qe_isa_name((qe_isa)isa), i, j, y[i * n + j], yd[i * n + j], bnd);
            }
    }
    printf("kernels: q8_0 products: %d int8 variant(s) agree with the reference\n", ran);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--isa-cap") == 0) {
        /* run with QEMBED_ISA set: the cap must be applied */
        const char *want = argv[2];
        CHECK(strcmp(qe_isa_name(qe_cpu_isa()), want) == 0, "QEMBED_ISA=%s gave %s", want,
              qe_isa_name(qe_cpu_isa()));
        /* a capped level still computes correctly */
        test_shape((shape){3, 17, 7}, QE_BF16, NULL, qe_cpu_isa());
        printf("kernels: QEMBED_ISA cap -> %s\n", qe_isa_name(qe_cpu_isa()));
        return failures ? 1 : 0;
    }
    if (argc == 2 && strcmp(argv[1], "--onednn-capped") == 0) {
        /* run with QEMBED_ISA=avx512bf16: oneDNN must be held below AMX and
         * the level's many-row products routed to it (77: skipped) */
        if (qe_cpu_isa() != QE_ISA_AVX512_BF16 || !qe_onednn_available()) {
            printf("kernels: NOT TESTED here: level %s, oneDNN %s\n", qe_isa_name(qe_cpu_isa()),
                   qe_onednn_available() ? "loadable" : "not loadable");
            return 77;
        }
        CHECK(qe_onednn_without_amx(), "QEMBED_ISA=avx512bf16 left oneDNN able to run AMX");
        qe_threadpool *pool2 = qe_threadpool_create(2);
        CHECK(pool2 != NULL, "pool");
        if (pool2) test_onednn(pool2);
        qe_threadpool_free(pool2);
        printf("kernels: oneDNN capped below AMX at level avx512bf16: %s\n", failures ? "FAILED" : "passed");
        return failures ? 1 : 0;
    }
    test_convert();
    test_pool();
    test_isa_check();
    test_swiglu();
    test_rmsnorm();
    test_fused_norms();
    test_matmul();
    {
        qe_threadpool *pool2 = qe_threadpool_create(2);
        CHECK(pool2 != NULL, "pool");
        if (pool2) test_onednn(pool2);
        if (pool2) test_amx(pool2);
        if (pool2) test_q8(pool2);
        if (pool2) test_q8p(pool2);
        qe_threadpool_free(pool2);
    }
    if (failures) {
        fprintf(stderr, "kernels: %d failure(s)\n", failures);
        return 1;
    }
    printf("kernels: all passed\n");
    return 0;
}
