/* AVX-512 variants of qe_matmul (both in this file: they share the packing
 * and the loop nest, which is the AVX2 variant's, see matmul_avx2.c):
 *  - qe_matmul_avx512: AVX-512F f32 FMA on weights widened in registers; for
 *    EXACT mode, and BF16 mode on CPUs without AVX512_BF16 or for f16/f32
 *    weights (then the activations are rounded to bf16 while packed).
 *  - qe_matmul_avx512bf16: BF16 mode with bf16 weights: vdpbf16ps straight
 *    on the stored weights, activations rounded to bf16 once while packed.
 * Differences from AVX2: 32 k elements per step, 4x4 tiles (16 accumulators,
 * the 8 activation vectors of a tile held in registers: 32 zmm), k-blocks of
 * 2*QE_MM_KC = 1024 (these cores have 1-2 MiB of L2).
 *
 * Run and tested on an Intel Emerald Rapids machine (AVX-512, AVX512-BF16;
 * 2026-12-06), never on an AMD Zen 4; the tests run these variants only where
 * the CPU has them, and say so. */
#include "matmul_internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#include "avx512_util.h"

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define TGTBF __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))
#define INL TGT static inline __attribute__((always_inline))

#define STEP 32
#define TR 4
#define TC 4
#define KC (2 * QE_MM_KC)

/* RNE to bf16 of 16 floats, kept as f32 bit patterns with the low half zero
 * (NaN quieted), exactly as qe_f32_to_bf16 (the shared rounding). */
INL __m512i round_bf16_bits(__m512 v) {
    return _mm512_and_si512(qe_bf16_round_avx512(v), _mm512_set1_epi32((int)0xffff0000u));
}

/* f32 packing for the FMA variant: rows of kcp floats; perm (bf16 weights):
 * per 32, the even-indexed then the odd-indexed elements. */
TGT static void pack_f32(const qe_mm_args *a, int i0, int mc, int p0, int kc, int kcp, int perm, void *dstv) {
    float *dst = dstv;
    const int round = a->mode == QE_MM_BF16;
    const int full = kc / STEP * STEP;
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int r = 0; r < mc; r++) {
        const float *src = a->x + (size_t)(i0 + r) * a->ldx + p0;
        float *d = dst + (size_t)r * kcp;
        for (int p = 0; p < full; p += STEP) {
            __m512 lo = _mm512_loadu_ps(src + p), hi = _mm512_loadu_ps(src + p + 16);
            if (round) {
                lo = _mm512_castsi512_ps(round_bf16_bits(lo));
                hi = _mm512_castsi512_ps(round_bf16_bits(hi));
            }
            if (perm) {
                __m512 e = _mm512_permutex2var_ps(lo, ev, hi), o = _mm512_permutex2var_ps(lo, od, hi);
                lo = e;
                hi = o;
            }
            _mm512_storeu_ps(d + p, lo);
            _mm512_storeu_ps(d + p + 16, hi);
        }
        if (full < kcp) {
            for (int q = 0; q < STEP; q++) {
                float v = full + q < kc ? src[full + q] : 0.0f;
                if (round) v = qe_bf16_to_f32(qe_f32_to_bf16(v));
                d[full + (perm ? (q & 1) * 16 + q / 2 : q)] = v;
            }
        }
    }
}

/* bf16 packing for vdpbf16ps: rows of kcp bf16, natural order (the
 * instruction pairs adjacent elements of both operands). */
TGT static void pack_bf16(const qe_mm_args *a, int i0, int mc, int p0, int kc, int kcp, int perm,
                          void *dstv) {
    (void)perm;
    uint16_t *dst = dstv;
    const int full = kc / STEP * STEP;
    for (int r = 0; r < mc; r++) {
        const float *src = a->x + (size_t)(i0 + r) * a->ldx + p0;
        uint16_t *d = dst + (size_t)r * kcp;
        for (int p = 0; p < full; p += 16) {
            __m512i b = round_bf16_bits(_mm512_loadu_ps(src + p));
            _mm256_storeu_si256((__m256i *)(d + p), _mm512_cvtepi32_epi16(_mm512_srli_epi32(b, 16)));
        }
        for (int q = full; q < kcp; q++) d[q] = q < kc ? qe_f32_to_bf16(src[q]) : 0;
    }
}

INL void load_w(const void *w, qe_dtype dt, __m512 *w0, __m512 *w1) {
    if (dt == QE_BF16) {
        __m512i v = _mm512_loadu_si512(w);
        *w0 = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
        *w1 = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xffff0000u)));
    } else if (dt == QE_F16) {
        *w0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)w));
        *w1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + 16)));
    } else {
        *w0 = _mm512_loadu_ps(w);
        *w1 = _mm512_loadu_ps((const float *)w + 16);
    }
}

/* 16 lanes -> 8 (no AVX512DQ needed) */
INL __m256 half_sum(__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

INL float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* acc[R][C] -> out[r][c] */
INL void reduce(int R, int C, __m512 acc[TR][TC], float out[TR][TC]) {
    if (R == 4) {
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(half_sum(acc[0][c]), half_sum(acc[1][c])),
                                      _mm256_hadd_ps(half_sum(acc[2][c]), half_sum(acc[3][c])));
            __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
            float t[4];
            _mm_storeu_ps(t, s);
            for (int r = 0; r < 4; r++) out[r][c] = t[r];
        }
    } else {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) out[r][c] = hsum8(half_sum(acc[r][c]));
    }
}

INL void kernel_fma(int R, qe_dtype dt, int steps, const void *xpv, size_t ldxp, const void *const *w,
                    float out[TR][TC]) {
    const float *xp = xpv;
    __m512 acc[TR][TC];
    const size_t es = dt == QE_F32 ? 4 : 2;
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < TC; c++) acc[r][c] = _mm512_setzero_ps();
    for (int s = 0; s < steps; s++) {
        const float *xs = xp + (size_t)s * STEP;
        __m512 x0[TR], x1[TR];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            x0[r] = _mm512_loadu_ps(xs + r * ldxp);
            x1[r] = _mm512_loadu_ps(xs + r * ldxp + 16);
        }
#pragma GCC unroll 4
        for (int c = 0; c < TC; c++) {
            __m512 w0, w1;
            load_w((const char *)w[c] + (size_t)s * STEP * es, dt, &w0, &w1);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                acc[r][c] = _mm512_fmadd_ps(x0[r], w0, acc[r][c]);
                acc[r][c] = _mm512_fmadd_ps(x1[r], w1, acc[r][c]);
            }
        }
    }
    reduce(R, TC, acc, out);
}

TGTBF static inline __attribute__((always_inline)) void
kernel_dp(int R, int steps, const void *xpv, size_t ldxp, const void *const *w, float out[TR][TC]) {
    const uint16_t *xp = xpv;
    __m512 acc[TR][TC];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < TC; c++) acc[r][c] = _mm512_setzero_ps();
    for (int s = 0; s < steps; s++) {
        __m512bh xv[TR];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) xv[r] = (__m512bh)_mm512_loadu_si512(xp + r * ldxp + (size_t)s * STEP);
#pragma GCC unroll 4
        for (int c = 0; c < TC; c++) {
            __m512bh wv = (__m512bh)_mm512_loadu_si512((const uint16_t *)w[c] + (size_t)s * STEP);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], xv[r], wv);
        }
    }
    reduce(R, TC, acc, out);
}

typedef void (*kern_fn)(int, const void *, size_t, const void *const *, float[TR][TC]);
typedef void (*pack_fn)(const qe_mm_args *, int, int, int, int, int, int, void *);

#define DEF_FMA(DT, SUF)                                                                   \
    TGT static void k4_##SUF(int steps, const void *xp, size_t ldxp, const void *const *w, \
                             float out[TR][TC]) {                                          \
        kernel_fma(4, DT, steps, xp, ldxp, w, out);                                        \
    }                                                                                      \
    TGT static void k1_##SUF(int steps, const void *xp, size_t ldxp, const void *const *w, \
                             float out[TR][TC]) {                                          \
        kernel_fma(1, DT, steps, xp, ldxp, w, out);                                        \
    }
DEF_FMA(QE_BF16, bf16)
DEF_FMA(QE_F16, f16)
DEF_FMA(QE_F32, f32)

TGTBF static void k4_dp(int steps, const void *xp, size_t ldxp, const void *const *w, float out[TR][TC]) {
    kernel_dp(4, steps, xp, ldxp, w, out);
}
TGTBF static void k1_dp(int steps, const void *xp, size_t ldxp, const void *const *w, float out[TR][TC]) {
    kernel_dp(1, steps, xp, ldxp, w, out);
}

typedef struct job {
    const qe_mm_args *a;
    int n_tasks;
    kern_fn k4, k1;
    pack_fn pack;
    size_t xes; /* bytes per packed activation element (4 or 2) */
    int perm;
    void *own_scratch; /* set by qe_mm_run when there is no pool (one task) */
} job;

TGT static void task(void *arg, int t, int thread) {
    const job *jb = arg;
    const qe_mm_args *a = jb->a;
    int j0, j1;
    qe_mm_split(a->n, jb->n_tasks, TC, t, &j0, &j1);
    if (j0 >= j1) return;
    char *xs = jb->own_scratch ? jb->own_scratch : qe_threadpool_thread_scratch(a->pool, thread);
    const size_t es = a->wt == QE_F32 ? 4 : 2;
    const char *wbase = a->w;
    _Alignas(64) unsigned char tail[TC][STEP * 4];

    /* row blocks outside k-blocks: the block of y being summed over k
     * (64 rows x the task's columns) stays in cache between k-blocks */
    for (int ic = 0; ic < a->m; ic += QE_MM_MC) {
        int mc = a->m - ic < QE_MM_MC ? a->m - ic : QE_MM_MC;
        for (int pc = 0; pc < a->k; pc += KC) {
            int kc = a->k - pc < KC ? a->k - pc : KC;
            int full = kc / STEP, rem = kc % STEP;
            int kcp = (full + (rem > 0)) * STEP;
            jb->pack(a, ic, mc, pc, kc, kcp, jb->perm, xs);
            for (int jt = j0; jt < j1; jt += TC) {
                int nc = j1 - jt < TC ? j1 - jt : TC;
                const void *wr[TC], *wt[TC];
                for (int c = 0; c < TC; c++) {
                    int j = jt + (c < nc ? c : nc - 1);
                    wr[c] = wbase + ((size_t)j * (size_t)a->k + (size_t)pc) * es;
                    wt[c] = tail[c];
                    if (rem) {
                        memset(tail[c], 0, sizeof tail[c]);
                        memcpy(tail[c], (const char *)wr[c] + (size_t)full * STEP * es, (size_t)rem * es);
                    }
                }
                float out[TR][TC], o2[TR][TC];
                int it = 0;
                for (; it + 4 <= mc; it += 4) {
                    const char *xr = xs + (size_t)it * kcp * jb->xes;
                    jb->k4(full, xr, (size_t)kcp, wr, out);
                    if (rem) {
                        jb->k4(1, xr + (size_t)full * STEP * jb->xes, (size_t)kcp, wt, o2);
                        for (int r = 0; r < 4; r++)
                            for (int c = 0; c < nc; c++) out[r][c] += o2[r][c];
                    }
                    for (int r = 0; r < 4; r++) {
                        float *yr = a->y + (size_t)(ic + it + r) * a->ldy + jt;
                        for (int c = 0; c < nc; c++) yr[c] = pc ? yr[c] + out[r][c] : out[r][c];
                    }
                }
                for (; it < mc; it++) {
                    const char *xr = xs + (size_t)it * kcp * jb->xes;
                    jb->k1(full, xr, (size_t)kcp, wr, out);
                    if (rem) {
                        jb->k1(1, xr + (size_t)full * STEP * jb->xes, (size_t)kcp, wt, o2);
                        for (int c = 0; c < nc; c++) out[0][c] += o2[0][c];
                    }
                    float *yr = a->y + (size_t)(ic + it) * a->ldy + jt;
                    for (int c = 0; c < nc; c++) yr[c] = pc ? yr[c] + out[0][c] : out[0][c];
                }
            }
        }
    }
}

static int run(job *jb) {
    jb->n_tasks = qe_mm_n_tasks(jb->a, TC);
    return qe_mm_run(jb->a->pool, task, jb, jb->n_tasks, &jb->own_scratch);
}

int qe_matmul_avx512(const qe_mm_args *a) {
    job jb = {a, 1, NULL, NULL, pack_f32, 4, a->wt == QE_BF16, NULL};
    switch (a->wt) {
        case QE_BF16:
            jb.k4 = k4_bf16;
            jb.k1 = k1_bf16;
            break;
        case QE_F16:
            jb.k4 = k4_f16;
            jb.k1 = k1_f16;
            break;
        case QE_F32:
            jb.k4 = k4_f32;
            jb.k1 = k1_f32;
            break;
        default: return -1;
    }
    return run(&jb);
}

int qe_matmul_avx512bf16(const qe_mm_args *a) {
    /* vdpbf16ps needs both operands in bf16: only BF16 mode on bf16 weights */
    if (a->mode != QE_MM_BF16 || a->wt != QE_BF16) return -1;
    job jb = {a, 1, k4_dp, k1_dp, pack_bf16, 2, 0, NULL};
    return run(&jb);
}

#else
int qe_matmul_avx512(const qe_mm_args *a) {
    (void)a;
    return -1;
}
int qe_matmul_avx512bf16(const qe_mm_args *a) {
    (void)a;
    return -1;
}
#endif
