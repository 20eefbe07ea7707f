/* AVX2 + FMA (+ F16C) variant of qe_matmul, for EXACT mode and for BF16 mode
 * on CPUs without vdpbf16ps (then the activations are rounded to bf16 while
 * packed, and the products run in f32 exactly as in EXACT mode).
 *
 * Shape of the computation ("dot" form, no packing of the weights):
 *   y[i][j] = sum_p x[i][p] * W[j][p]; vectors run along k, so weight rows
 *   are read as stored (bf16/f16/f32, memory-mapped) and widened in
 *   registers; each output is a horizontal sum at the end of a k-block.
 * Blocking: a task owns a range of weight rows (output columns). For each
 *   row block of QE_MM_MC activations and k-block (as long as the packed
 *   block fits the thread's scratch, in L2: all of k for a query), it packs
 *   the activation block into its thread's scratch (contiguous, zero-padded
 *   to the k step, bf16-rounded in BF16 mode) and then, for each tile of 4
 *   weight rows, multiplies it by every tile of 3 (or 2, 1) rows of the
 *   block: the 4 weight rows stay in L1/L2 (the next tile's are prefetched).
 *   With one row block (m <= 64: queries) every weight is read from memory
 *   exactly once per call.
 * Measured on the build machine (Zen 3, 1 thread, 17 rows, the 28 layers of
 *   0.6B shapes with distinct weights): 3 x 4 tiles with the activations in
 *   registers ~55-60 GFLOP/s of a ~100 GFLOP/s ymm FMA peak, against ~40-45
 *   for the former 2 x 4 tiles; 3 x 4 with activations as memory operands
 *   (what the compiler does when a 17th register is needed) ~48.
 * bf16 trick: one 256-bit load holds 16 bf16 weights; `<< 16` widens the
 *   even-indexed ones and `& 0xffff0000` the odd-indexed ones, each into 8
 *   f32 lanes, with no shuffles. The packed activations are permuted to match
 *   (per 16: x0 x2 .. x14 | x1 x3 .. x15); a dot product does not care about
 *   the order of its terms. */
#include "matmul_internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#include "avx2_util.h"

#define TGT __attribute__((target("avx2,fma,f16c")))
#define INL TGT static inline __attribute__((always_inline))

#define STEP 16            /* k elements per kernel step */
#define KC QE_MM_KC        /* smallest k-block */
#define TR 3               /* activation rows per tile, at most (tiles of 3, 2 or 1 rows) */
#define AVX2_GEMM_MIN_M 80 /* from this many rows on, the GEMM form (qe_matmul_avx2) */
#define TC \
    4 /* weight rows per tile (the reduction assumes 4): 12 accumulators
                 * + 3 activation vectors + 1 weight vector = 16 ymm */

/* Packs x[i0 .. i0+mc)[p0 .. p0+kc) into dst, rows of kcp floats (kc rounded
 * up to STEP, the rest zero). perm: the even/odd order of the bf16 kernel. */
TGT static void pack_x(const qe_mm_args *a, int i0, int mc, int p0, int kc, int kcp, int perm, float *dst) {
    int round = a->mode == QE_MM_BF16;
    int full = kc / STEP * STEP;
    for (int r = 0; r < mc; r++) {
        const float *src = a->x + (size_t)(i0 + r) * a->ldx + p0;
        float *d = dst + (size_t)r * kcp;
        for (int p = 0; p < full; p += STEP) {
            __m256 lo = _mm256_loadu_ps(src + p), hi = _mm256_loadu_ps(src + p + 8);
            if (round) {
                lo = qe_round_bf16(lo);
                hi = qe_round_bf16(hi);
            }
            if (perm) {
                __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
                __m256 od = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
                /* 64-bit chunks [lo02 hi02 lo46 hi46] -> [lo02 lo46 hi02 hi46] */
                lo = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
                hi = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), _MM_SHUFFLE(3, 1, 2, 0)));
            }
            _mm256_storeu_ps(d + p, lo);
            _mm256_storeu_ps(d + p + 8, hi);
        }
        if (full < kcp) {
            float t[STEP];
            for (int q = 0; q < STEP; q++) {
                float v = full + q < kc ? src[full + q] : 0.0f;
                if (round) v = qe_bf16_to_f32(qe_f32_to_bf16(v));
                t[q] = v;
            }
            for (int q = 0; q < STEP; q++) d[full + (perm ? (q & 1) * 8 + q / 2 : q)] = t[q];
        }
    }
}

static const _Alignas(32) uint32_t g_odd_mask[8] = {0xffff0000u, 0xffff0000u, 0xffff0000u, 0xffff0000u,
                                                    0xffff0000u, 0xffff0000u, 0xffff0000u, 0xffff0000u};

/* Half h (0 or 1) of the STEP weights at w (dtype dt), widened to match the
 * packed activations: lanes of half 0 go with x[p..p+8), half 1 with
 * x[p+8..p+16) (for bf16 these are the even- and odd-indexed weights). */
INL __m256 load_w_half(const void *w, qe_dtype dt, int h) {
    if (dt == QE_BF16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)w);
        if (h == 0) return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        /* the mask is re-loaded (volatile) rather than held: with 12
         * accumulators and 3 activation vectors, a 17th register would make
         * the compiler take the activations as memory operands instead,
         * 24 loads per step where the L1 delivers 2 per cycle */
        return _mm256_castsi256_ps(_mm256_and_si256(v, *(const volatile __m256i *)&g_odd_mask));
    }
    if (dt == QE_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + 8 * h)));
    return _mm256_loadu_ps((const float *)w + 8 * h);
}

/* out[r][c] = sum over `steps` steps of xp row r (stride ldxp) . w[c].
 * R (1..3) and dt are compile-time constants at every call: the loops unroll
 * and the 12 accumulators live in registers. A step is two half-steps of 8
 * k: the R activation vectors of the half are loaded once, then each weight
 * vector is widened once and feeds R FMAs. Why 3 x 4 and half-steps: with
 * whole steps (x0 and x1 of every row held at once) only 2 x 4 tiles fit the
 * 16 ymm registers, and their 8 accumulators each took 2 dependent FMAs per
 * step, which on Zen 3 (4-cycle FMA latency, 2 pipes) is exactly the FMA
 * pipes' throughput: any stall lost cycles. 12 accumulators leave slack, and
 * the weights' loads and widening are shared by 3 rows instead of 2. */
INL void kernel(int R, qe_dtype dt, int steps, const float *xp, size_t ldxp, const void *const *w,
                float out[TR][TC]) {
    __m256 acc[TR][TC];
    const size_t es = dt == QE_F32 ? 4 : 2;
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < TC; c++) acc[r][c] = _mm256_setzero_ps();
    for (int s = 0; s < steps; s++) {
        const float *xs = xp + (size_t)s * STEP;
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256 xv[TR];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) xv[r] = _mm256_loadu_ps(xs + r * ldxp + h * 8);
#pragma GCC unroll 4
            for (int c = 0; c < TC; c++) {
                const char *wp = (const char *)w[c] + (size_t)s * STEP * es;
                __m256 wv = load_w_half(wp, dt, h);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
            }
        }
    }
    /* the 4 column sums of a row in one go: 3 hadds + 1 cross-lane add */
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        __m256 hs =
            _mm256_hadd_ps(_mm256_hadd_ps(acc[r][0], acc[r][1]), _mm256_hadd_ps(acc[r][2], acc[r][3]));
        __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(hs), _mm256_extractf128_ps(hs, 1));
        _mm_storeu_ps(out[r], s4);
    }
}

#define DEF_KERNELS(DT, SUF)                                                                \
    TGT static void k3_##SUF(int steps, const float *xp, size_t ldxp, const void *const *w, \
                             float out[TR][TC]) {                                           \
        kernel(3, DT, steps, xp, ldxp, w, out);                                             \
    }                                                                                       \
    TGT static void k2_##SUF(int steps, const float *xp, size_t ldxp, const void *const *w, \
                             float out[TR][TC]) {                                           \
        kernel(2, DT, steps, xp, ldxp, w, out);                                             \
    }                                                                                       \
    TGT static void k1_##SUF(int steps, const float *xp, size_t ldxp, const void *const *w, \
                             float out[TR][TC]) {                                           \
        kernel(1, DT, steps, xp, ldxp, w, out);                                             \
    }
DEF_KERNELS(QE_BF16, bf16)
DEF_KERNELS(QE_F16, f16)
DEF_KERNELS(QE_F32, f32)

typedef void (*kern_fn)(int, const float *, size_t, const void *const *, float[TR][TC]);

typedef struct job {
    const qe_mm_args *a;
    int n_tasks;
    kern_fn k[TR + 1]; /* k[R]: the kernel for tiles of R rows */
    void *own_scratch; /* set by qe_mm_run when there is no pool (one task) */
} job;

TGT static void task(void *arg, int t, int thread) {
    const job *jb = arg;
    const qe_mm_args *a = jb->a;
    int j0, j1;
    qe_mm_split(a->n, jb->n_tasks, TC, t, &j0, &j1);
    if (j0 >= j1) return;
    float *xs = jb->own_scratch ? jb->own_scratch : qe_threadpool_thread_scratch(a->pool, thread);
    const size_t es = a->wt == QE_F32 ? 4 : 2;
    const int perm = a->wt == QE_BF16;
    const char *wbase = a->w;
    /* zero-padded copies of the weight rows' last partial step */
    _Alignas(32) unsigned char tail[TC][STEP * 4];

    /* row blocks outside k-blocks: the block of y being summed over k
     * (64 rows x the task's columns) stays in cache between k-blocks */
    for (int ic = 0; ic < a->m; ic += QE_MM_MC) {
        int mc = a->m - ic < QE_MM_MC ? a->m - ic : QE_MM_MC;
        /* k-block: as long as the packed block still fits the scratch (in
         * L2): a query's 17 rows take all of k = 3072 at once, so each
         * kernel call runs 4-6x longer between its reductions and stores */
        int kb = (int)((QE_MM_SCRATCH / sizeof(float)) / (size_t)mc) / STEP * STEP;
        if (kb < KC) kb = KC;
        for (int pc = 0; pc < a->k; pc += kb) {
            int kc = a->k - pc < kb ? a->k - pc : kb;
            int full = kc / STEP, rem = kc % STEP;
            int kcp = (full + (rem > 0)) * STEP;
            pack_x(a, ic, mc, pc, kc, kcp, perm, xs);
            for (int jt = j0; jt < j1; jt += TC) {
                int nc = j1 - jt < TC ? j1 - jt : TC;
                const void *wr[TC], *wt[TC];
                for (int c = 0; c < TC; c++) {
                    /* columns past the task's end repeat its last row: valid
                     * memory, results discarded */
                    int j = jt + (c < nc ? c : nc - 1);
                    wr[c] = wbase + ((size_t)j * (size_t)a->k + (size_t)pc) * es;
                    if (rem) {
                        memset(tail[c], 0, sizeof tail[c]);
                        memcpy(tail[c], (const char *)wr[c] + (size_t)full * STEP * es, (size_t)rem * es);
                        wt[c] = tail[c];
                    }
                }
                if (jt + TC < j1) {
                    /* pull the next tile's weight rows toward L1 while this
                     * one computes: with few activation rows (queries) the
                     * weights come from DRAM/L3 and would stall the first
                     * row tile of every weight tile */
                    size_t bytes = (size_t)kc * es;
                    for (int c = 0; c < TC && jt + TC + c < j1; c++) {
                        const char *nw = wbase + ((size_t)(jt + TC + c) * (size_t)a->k + (size_t)pc) * es;
                        for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(nw + o, _MM_HINT_T0);
                    }
                }
                float out[TR][TC], o2[TR][TC];
                for (int it = 0; it < mc;) {
                    /* tiles of 3 rows, ending with 2+2 rather than 3+1 (a
                     * 1-row tile costs as much time as a 3-row one) */
                    int left = mc - it;
                    int R = left >= 3 && left != 4 ? 3 : left >= 2 ? 2 : 1;
                    const float *xr = xs + (size_t)it * kcp;
                    jb->k[R](full, xr, (size_t)kcp, wr, out);
                    if (rem) {
                        jb->k[R](1, xr + (size_t)full * STEP, (size_t)kcp, wt, o2);
                        for (int r = 0; r < R; r++)
                            for (int c = 0; c < nc; c++) out[r][c] += o2[r][c];
                    }
                    for (int r = 0; r < R; r++) {
                        float *yr = a->y + (size_t)(ic + it + r) * a->ldy + jt;
                        for (int c = 0; c < nc; c++) yr[c] = pc ? yr[c] + out[r][c] : out[r][c];
                    }
                    it += R;
                }
            }
        }
    }
}

int qe_matmul_avx2(const qe_mm_args *a) {
    /* many rows: the packed-weights form wins (see its file). Measured
     * here (Zen 3, 1 thread, the 0.6B shapes, 2026-11-25), dot form against
     * GEMM form in GFLOP/s: m = 32: 62/51, 64: 66/58, 80: 60/59, 96: 59/71,
     * 128: 59/66. */
    if (a->m >= AVX2_GEMM_MIN_M && qe_matmul_avx2_gemm(a) == 0) return 0;
    job jb = {a, qe_mm_n_tasks(a, TC), {NULL}, NULL};
    switch (a->wt) {
        case QE_BF16:
            jb.k[1] = k1_bf16;
            jb.k[2] = k2_bf16;
            jb.k[3] = k3_bf16;
            break;
        case QE_F16:
            jb.k[1] = k1_f16;
            jb.k[2] = k2_f16;
            jb.k[3] = k3_f16;
            break;
        case QE_F32:
            jb.k[1] = k1_f32;
            jb.k[2] = k2_f32;
            jb.k[3] = k3_f32;
            break;
        default: return -1;
    }
    return qe_mm_run(a->pool, task, &jb, jb.n_tasks, &jb.own_scratch);
}

#else
int qe_matmul_avx2(const qe_mm_args *a) {
    (void)a;
    return -1;
}
#endif
