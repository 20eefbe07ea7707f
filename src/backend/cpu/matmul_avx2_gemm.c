/* AVX2 + FMA product for many activation rows (m >= 80, AVX2_GEMM_MIN_M in
 * matmul_avx2.c: batches of texts), in the classic GEMM "broadcast" form.
 *
 * Why a second form: the dot form of matmul_avx2.c reads weights as stored
 * and never repacks them, which is what a short query wants (every weight
 * read once), but it spends loads and a horizontal sum per output. With
 * hundreds of rows the weights can afford a repack, and then the inner loop
 * is pure FMA: per k, 2 weight vectors (16 outputs) and 6 broadcast
 * activations feed 12 FMAs, no reductions.
 *
 * Per task (a block of at most MCG activation rows x a range of weight rows =
 * output columns, multiples of 16; see qe_matmul_avx2_gemm for the split):
 *   for each KC of k:
 *     pack the activation block into 6-row micro-panels [p][6] in scratch
 *       (rounded to bf16 in BF16 mode; see pack_a for why even EXACT mode
 *       copies: rows 4 KiB apart thrashed one L1 set);
 *     for each 16 weight rows: pack them transposed to f32 [p][16] (16 KiB,
 *       stays in L1), then run the 6x16 kernel down all the rows of the block,
 *       adding into y (the first k-block stores).
 * Scratch: MC*KC + 16*KC floats = 256 KiB, the pool's per-thread block. */
#include "matmul_internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#include "avx2_util.h"

#define TGT __attribute__((target("avx2,fma,f16c")))
#define INL TGT static inline __attribute__((always_inline))

#define MR 6    /* rows per micro-tile: 12 accumulators + 2 weights + 1 broadcast */
#define NR 16   /* columns per micro-tile: two ymm */
#define KCG 256 /* k per block: a packed weight panel is 256 x 16 f32 = 16 KiB */
#define MCG 240 /* rows per block, a multiple of MR: 240 x 256 f32 = 240 KiB */

_Static_assert((MCG * KCG + 16 + NR * KCG) * sizeof(float) <= QE_MM_SCRATCH, "scratch too small");

/* Activation rows [i0, i0+mc) x columns [p0, p0+kc) -> dst as MR-row
 * micro-panels: panel q holds rows i0+q*MR .. +MR as [p][MR] (rows past mc
 * zero), rounded to bf16 in BF16 mode. Why pack: the rows of x are k floats
 * apart, 4 KiB for k = 1024 (8 and 12 KiB for 2048, 3072), so the six rows a
 * micro-kernel broadcasts from all fall in the same L1 set and evicted each
 * other and the weight panel; packed, they are one sequential stream.
 * Full 8-column groups are transposed in registers: 8 rows (the 6 of the
 * panel + 2 zero) -> 8 vectors [r0..r7] per column, stored MR floats apart in
 * ascending order so each store's 2 extra lanes are overwritten by the next
 * (the last spills 2 floats past the panel: dst has 8 floats of slack). */
TGT static void pack_a(const qe_mm_args *a, int i0, int mc, int p0, int kc, float *dst) {
    const int rnd = a->mode == QE_MM_BF16;
    for (int ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        const float *src[MR];
        for (int r = 0; r < MR; r++) src[r] = a->x + (size_t)(i0 + ir + (r < mr ? r : 0)) * a->ldx + p0;
        float *d = dst + (size_t)ir * kc; /* panel ir/MR: MR*kc floats */
        int p = 0;
        for (; p + 8 <= kc; p += 8) {
            __m256 r[8];
            for (int q = 0; q < MR; q++) {
                r[q] = q < mr ? _mm256_loadu_ps(src[q] + p) : _mm256_setzero_ps();
                if (rnd) r[q] = qe_round_bf16(r[q]);
            }
            r[6] = r[7] = _mm256_setzero_ps();
            qe_transpose8(r);
            for (int q = 0; q < 8; q++) _mm256_storeu_ps(d + (size_t)(p + q) * MR, r[q]);
        }
        for (; p < kc; p++)
            for (int q = 0; q < MR; q++) {
                float v = q < mr ? src[q][p] : 0.0f;
                d[(size_t)p * MR + q] = rnd ? qe_bf16_to_f32(qe_f32_to_bf16(v)) : v;
            }
    }
}

/* 8 consecutive weights of row `row` from column p, widened to f32 */
INL __m256 load8(const qe_mm_args *a, int row, int p) {
    size_t off = (size_t)row * (size_t)a->k + (size_t)p;
    switch (a->wt) {
        case QE_BF16:
            return _mm256_castsi256_ps(_mm256_slli_epi32(
                _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)a->w + off))), 16));
        case QE_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)a->w + off)));
        case QE_F32: break;
        default: break; /* never here: qe_matmul sends block types to matmul_q8.c / matmul_kq.c */
    }
    return _mm256_loadu_ps((const float *)a->w + off);
}

/* W rows [j, j+nc) (nc <= 16), columns [p0, p0+kc) -> dst[p*16 + c], f32,
 * columns c >= nc zero. Full 8x8 blocks are transposed in registers. */
TGT static void pack_w(const qe_mm_args *a, int j, int nc, int p0, int kc, float *dst) {
    for (int g = 0; g < 2; g++) {
        int rows = nc - g * 8; /* valid rows in this group of 8 */
        if (rows > 8) rows = 8;
        int p = 0;
        if (rows == 8) {
            for (; p + 8 <= kc; p += 8) {
                __m256 r[8];
                for (int q = 0; q < 8; q++) r[q] = load8(a, j + g * 8 + q, p0 + p);
                qe_transpose8(r);
                for (int q = 0; q < 8; q++) _mm256_storeu_ps(dst + (size_t)(p + q) * NR + g * 8, r[q]);
            }
        }
        for (; p < kc; p++)
            for (int c = 0; c < 8; c++) {
                int row = g * 8 + c;
                dst[(size_t)p * NR + row] =
                    row < nc
                        ? qe_tensor_get_f32(a->w, a->wt, (size_t)(j + row) * (size_t)a->k + (size_t)(p0 + p))
                        : 0.0f;
            }
    }
}

/* acc(6x16) = sum_p ap[p][r] * wp[p][c] (ap: a packed micro-panel, rows
 * past mr zero); then y (+)= acc for rows < mr, cols < nc. Per k: 2 weight
 * loads and 6 broadcasts from one sequential stream feed 12 FMAs. */
TGT static void kernel(int kc, const float *ap, const float *wp, float *y, size_t ldy, int mr, int nc,
                       int accumulate) {
    if (accumulate)
        /* the y tile is read back at the end; between k-blocks it has left
         * the caches (the task's y block is 240 rows x its columns), and that
         * miss was an eighth of this function's time before this prefetch */
        for (int r = 0; r < mr; r++) {
            _mm_prefetch((const char *)(y + (size_t)r * ldy), _MM_HINT_T0);
            _mm_prefetch((const char *)(y + (size_t)r * ldy + NR - 1), _MM_HINT_T0);
        }
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
    for (int p = 0; p < kc; p++) {
        __m256 w0 = _mm256_loadu_ps(wp), w1 = _mm256_loadu_ps(wp + 8);
        __m256 b;
        b = _mm256_broadcast_ss(ap + 0);
        c00 = _mm256_fmadd_ps(b, w0, c00);
        c01 = _mm256_fmadd_ps(b, w1, c01);
        b = _mm256_broadcast_ss(ap + 1);
        c10 = _mm256_fmadd_ps(b, w0, c10);
        c11 = _mm256_fmadd_ps(b, w1, c11);
        b = _mm256_broadcast_ss(ap + 2);
        c20 = _mm256_fmadd_ps(b, w0, c20);
        c21 = _mm256_fmadd_ps(b, w1, c21);
        b = _mm256_broadcast_ss(ap + 3);
        c30 = _mm256_fmadd_ps(b, w0, c30);
        c31 = _mm256_fmadd_ps(b, w1, c31);
        b = _mm256_broadcast_ss(ap + 4);
        c40 = _mm256_fmadd_ps(b, w0, c40);
        c41 = _mm256_fmadd_ps(b, w1, c41);
        b = _mm256_broadcast_ss(ap + 5);
        c50 = _mm256_fmadd_ps(b, w0, c50);
        c51 = _mm256_fmadd_ps(b, w1, c51);
        wp += NR;
        ap += MR;
    }
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (nc == NR) {
        for (int r = 0; r < mr; r++) {
            float *yr = y + (size_t)r * ldy;
            if (accumulate) {
                acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(yr));
                acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(yr + 8));
            }
            _mm256_storeu_ps(yr, acc[r][0]);
            _mm256_storeu_ps(yr + 8, acc[r][1]);
        }
    } else {
        for (int r = 0; r < mr; r++) {
            float t[NR];
            _mm256_storeu_ps(t, acc[r][0]);
            _mm256_storeu_ps(t + 8, acc[r][1]);
            float *yr = y + (size_t)r * ldy;
            for (int c = 0; c < nc; c++) yr[c] = accumulate ? yr[c] + t[c] : t[c];
        }
    }
}

typedef struct job {
    const qe_mm_args *a;
    int n_tasks; /* n_blocks x n_groups: task t is row block t / n_groups, column group t % n_groups */
    int n_groups;
    int mb;            /* rows per block: equal blocks of at most MCG, a multiple of MR */
    void *own_scratch; /* set by qe_mm_run when there is no pool (one task) */
} job;

/* Rows [ic, ic+mc) x weight rows (columns of y) [j0, j1). */
TGT static void block(const qe_mm_args *a, int ic, int mc, int j0, int j1, float *xs, float *ws) {
    for (int pc = 0; pc < a->k; pc += KCG) {
        int kc = a->k - pc < KCG ? a->k - pc : KCG;
        pack_a(a, ic, mc, pc, kc, xs);
        for (int jc = j0; jc < j1; jc += NR) {
            int nc = j1 - jc < NR ? j1 - jc : NR;
            pack_w(a, jc, nc, pc, kc, ws);
            if (jc + NR < j1) {
                /* the next panel's weights toward the caches while this
                 * one computes: 16 row pieces of kc weights each are too
                 * short for the hardware prefetcher, and pack_w stalled
                 * on their loads */
                const size_t es = a->wt == QE_F32 ? 4 : 2, bytes = (size_t)kc * es;
                const int nn = j1 - jc - NR < NR ? j1 - jc - NR : NR;
                for (int r = 0; r < nn; r++) {
                    const char *nw =
                        (const char *)a->w + ((size_t)(jc + NR + r) * (size_t)a->k + (size_t)pc) * es;
                    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(nw + o, _MM_HINT_T1);
                }
            }
            for (int ir = 0; ir < mc; ir += MR) {
                int mr = mc - ir < MR ? mc - ir : MR;
                kernel(kc, xs + (size_t)ir * kc, ws, a->y + (size_t)(ic + ir) * a->ldy + jc, a->ldy, mr, nc,
                       pc > 0);
            }
        }
    }
}

TGT static void task(void *arg, int t, int thread) {
    const job *jb = arg;
    const qe_mm_args *a = jb->a;
    float *xs = jb->own_scratch ? jb->own_scratch : qe_threadpool_thread_scratch(a->pool, thread);
    float *ws = xs + (size_t)MCG * KCG + 16; /* 8 floats of pack_a slack, 64-byte aligned */
    int j0, j1;
    qe_mm_split(a->n, jb->n_groups, NR, t % jb->n_groups, &j0, &j1);
    /* one task (no pool: qe_mm_run runs task 0 alone) does every block */
    int ic0 = jb->n_tasks == 1 ? 0 : t / jb->n_groups * jb->mb;
    int ic1 = jb->n_tasks == 1 ? a->m : ic0 + jb->mb;
    for (int ic = ic0; ic < ic1 && ic < a->m && j0 < j1; ic += jb->mb)
        block(a, ic, a->m - ic < jb->mb ? a->m - ic : jb->mb, j0, j1, xs, ws);
}

int qe_matmul_avx2_gemm(const qe_mm_args *a) {
    job jb = {a, 1, 1, 0, NULL};
    /* equal row blocks of at most MCG (no small last block re-packing every
     * weight panel for a few rows) */
    int n_blocks = (a->m + MCG - 1) / MCG;
    jb.mb = ((a->m + n_blocks - 1) / n_blocks + MR - 1) / MR * MR;
    n_blocks = (a->m + jb.mb - 1) / jb.mb;
    /* Tasks are (row block, column group) pairs, at least 4 per thread for
     * balance on a shared machine. A task packs its activation block itself,
     * so each block is packed once per column group: with many row blocks
     * (batches of thousands of tokens) the groups fall to one and nothing is
     * packed twice. Split by columns only, every task packed every block:
     * 5-6% of a 4096-token batch here, and a share growing with the number
     * of threads. Weight panels are packed once per row block either way. */
    int threads = qe_threadpool_size(a->pool);
    if (threads > 1) {
        int tiles = (a->n + NR - 1) / NR;
        jb.n_groups = (4 * threads + n_blocks - 1) / n_blocks;
        if (jb.n_groups > tiles) jb.n_groups = tiles;
    }
    jb.n_tasks = threads > 1 ? n_blocks * jb.n_groups : 1;
    return qe_mm_run(a->pool, task, &jb, jb.n_tasks, &jb.own_scratch);
}

#else
int qe_matmul_avx2_gemm(const qe_mm_args *a) {
    (void)a;
    return -1;
}
#endif
