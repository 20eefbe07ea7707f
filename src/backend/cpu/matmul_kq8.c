/* Products on Q4_K and Q6_K weights (the Q4_K_M pair) with int8 dot products
 * on the blocks as stored, the activations quantized per 32 values as the
 * Q8_0 products do (matmul_q8.h: the same packer, the same pool block, the
 * same int8 values and f32 scales d_x):
 *   Q4_K  sub-block j (32 values) of a 256 super-block: w = d*sc_j*q - dmin*m_j
 *         with q in 0..15, so sum(w * x) = d*sc_j*d_x*sum(q * xq)
 *         - dmin*m_j*d_x*sum(xq); the nibbles are vpdpbusd's unsigned operand
 *         as they are (and/shift), sum(xq) is the packer's correction / -128;
 *   Q6_K  16-value sub-blocks: w = d*sc*(q - 32), q in 0..63 unsigned:
 *         sum((q - 32) * xq) = sum(q * xq) - 32 * sum(xq) per 16 values, the
 *         second term one more vpdpbusd (32 x xq) per activation tile shared
 *         by every weight row of the register tile.
 * Integer sums are exact (|q * xq| <= 63 * 127, 16 or 32 terms); each is
 * scaled into f32 accumulators per 16 or 32 values.
 *   scalar  the reference: the Q8_0 scalar quantizer's arithmetic, exact
 *           integer sums, double accumulation (slow; tests and the check);
 *   vnni    AVX512-VNNI register tiles of R packed 16-row tiles (rows in
 *           lanes) x C weight rows, R x C in {2 x 4, 1 x 8}; weight rows
 *           split between the threads in panels of 8;
 *   avx2    one packed tile (two ymm) x 2 weight rows, vpmaddubsw +
 *           vpmaddwd (no saturation: see the kernel).
 * Used for qe_mm_mode QE_MM_BF16 (the default numerics); QE_MM_EXACT keeps
 * f32 activations on the dequantized tiles (matmul_kq.c), which is also the
 * fallback without AVX2, for Q6_K without VNNI (qe_kq8_best) and for the
 * other block types. Hand-written because
 * no Debian library multiplies ggml's K-quant blocks. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "matmul_kq.h"
#include "matmul_q8.h"

#define SB 256        /* values per super-block */
#define Q4K_BYTES 144 /* d | dmin | scales[12] | qs[128] */
#define Q6K_BYTES 210 /* ql[128] | qh[64] | scales[16] | d */

int qe_kq8_dtype(qe_dtype t) {
    return t == QE_Q4_K || t == QE_Q6_K;
}

static float half_at(const uint8_t *p) {
    return qe_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

/* Sub-block j's 6-bit scale and min of a Q4_K block's scales[12] (as
 * dequant.c's get_scale_min). */
static void scale_min(int j, const uint8_t *s, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* The 6-bit value l (0..31) of 32-block j (0..7) of a Q6_K block: 32-block
 * j = 4h + u takes ql[64h + 32(u & 1) + l] (low nibble for u < 2, high
 * otherwise) and bits 2u, 2u+1 of qh[32h + l]; its scales are sc[2j], sc[2j+1]. */
static int q6_at(const uint8_t *b, int j, int l) {
    int h = j >> 2, u = j & 3;
    int lo = b[64 * h + 32 * (u & 1) + l];
    lo = u < 2 ? lo & 0x0F : lo >> 4;
    return lo | ((b[128 + 32 * h + l] >> (2 * u)) & 3) << 4;
}

/* ---- scalar reference ---- */

/* The Q8_0 scalar quantizer (matmul_q8.c quant_row; the packer gives the
 * same values), one row of k. */
static void quant_row(const float *x, int k, int8_t *q, float *d) {
    for (int b = 0; b < k / 32; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[b * 32 + i]));
        float s = amax / 127.f, is = s ? 1.f / s : 0.f;
        d[b] = s;
        for (int i = 0; i < 32; i++) q[b * 32 + i] = (int8_t)lrintf(x[b * 32 + i] * is);
    }
}

static double dot_q4k(const uint8_t *w, const int8_t *q, const float *dx, int nsb) {
    double acc = 0;
    for (int s = 0; s < nsb; s++, w += Q4K_BYTES) {
        const double d = half_at(w), dmin = half_at(w + 2);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            scale_min(j, w + 4, &sc, &m);
            const uint8_t *qs = w + 16 + 32 * (j >> 1);
            const int8_t *xq = q + (size_t)(8 * s + j) * 32;
            int32_t sqx = 0, sx = 0;
            for (int l = 0; l < 32; l++) {
                int v = j & 1 ? qs[l] >> 4 : qs[l] & 0x0F;
                sqx += v * xq[l];
                sx += xq[l];
            }
            acc += (double)dx[8 * s + j] * (d * sc * sqx - dmin * m * sx);
        }
    }
    return acc;
}

static double dot_q6k(const uint8_t *w, const int8_t *q, const float *dx, int nsb) {
    double acc = 0;
    for (int s = 0; s < nsb; s++, w += Q6K_BYTES) {
        const double d = half_at(w + 208);
        const int8_t *sc = (const int8_t *)(w + 192);
        for (int j = 0; j < 8; j++) {
            const int8_t *xq = q + (size_t)(8 * s + j) * 32;
            for (int g = 0; g < 2; g++) {
                int32_t sum = 0;
                for (int l = 16 * g; l < 16 * g + 16; l++) sum += (q6_at(w, j, l) - 32) * xq[l];
                acc += (double)dx[8 * s + j] * d * sc[2 * j + g] * sum;
            }
        }
    }
    return acc;
}

typedef struct kq8_ref_job {
    const qe_mm_args *a;
    int n_tasks;
} kq8_ref_job;

/* Per task: its weight rows, every activation row quantized again (the
 * reference's simplicity over its speed). */
static void ref_task(void *arg, int task, int thread) {
    (void)thread;
    const kq8_ref_job *job = arg;
    const qe_mm_args *a = job->a;
    int j0, j1;
    qe_mm_split(a->n, job->n_tasks, 1, task, &j0, &j1);
    const int k = a->k, nsb = k / SB;
    const size_t rowb = qe_dtype_bytes(a->wt, (uint64_t)k);
    int8_t *q = malloc((size_t)k);
    float *dx = malloc((size_t)(k / 32) * sizeof *dx);
    if (!q || !dx) { /* cannot happen in practice (k values); say so loudly in y */
        for (int i = 0; i < a->m; i++)
            for (int j = j0; j < j1; j++) a->y[(size_t)i * a->ldy + (size_t)j] = NAN;
        free(q);
        free(dx);
        return;
    }
    for (int i = 0; i < a->m; i++) {
        quant_row(a->x + (size_t)i * a->ldx, k, q, dx);
        for (int j = j0; j < j1; j++) {
            const uint8_t *w = (const uint8_t *)a->w + (size_t)j * rowb;
            double v = a->wt == QE_Q4_K ? dot_q4k(w, q, dx, nsb) : dot_q6k(w, q, dx, nsb);
            a->y[(size_t)i * a->ldy + (size_t)j] = (float)v;
        }
    }
    free(q);
    free(dx);
}

/* ---- VNNI ---- */

#if defined(__x86_64__)
#include <immintrin.h>

#define VNNI_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define INLINE static inline __attribute__((always_inline))

/* f16 -> f32 with F16C, inline (qe_f16_to_f32 is a call per scale) */
INLINE VNNI_TARGET float half_c(const uint8_t *p) {
    return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8));
}

/* Software prefetch of the weight rows after the tile's C rows (contiguous:
 * the next tile's, usually the next panel), a C-super-block slice per step,
 * so that the whole next tile is in cache when this one ends. The hardware
 * prefetcher does not keep up with C short interleaved row streams (a 0.6B
 * row is 4 to 12 super-blocks): without this the products waited on DRAM.
 * Past the matrix's end it only prefetches (never faults). */
INLINE void prefetch_next(const uint8_t *w, size_t wrow, int s, int bytes, const int C) {
    const uint8_t *p = w + (size_t)C * wrow + (size_t)s * (size_t)C * (size_t)bytes;
    for (int o = 0; o < C * bytes; o += 64) _mm_prefetch((const char *)(p + o), _MM_HINT_T0);
}

static inline uint32_t ld32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Q4_K: one 32-block j of super-block s for R tiles x C weight rows. SH is
 * the nibble's shift (0 for even j, 4 for odd). */
INLINE VNNI_TARGET void q4k_block(const uint8_t *pk, size_t ts, const uint8_t *w, size_t wrow, int s, int j,
                                  const float dsc[8][8], const float dm[8][8], __m512 f[2][8], const int R,
                                  const int C, const int SH) {
    const size_t b = (size_t)s * 8 + (size_t)j;
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    __m512i acc[2][8];
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_si512();
    const uint8_t *qs = w + (size_t)s * Q4K_BYTES + 16 + 32 * (j >> 1);
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) {
        __m512i wv[8];
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            __m512i v = _mm512_set1_epi32((int)ld32(qs + (size_t)c * wrow + 4 * g));
            if (SH) v = _mm512_srli_epi32(v, 4);
            wv[c] = _mm512_and_si512(v, lo4);
        }
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) {
            __m512i xv = _mm512_load_si512((const void *)(pk + (size_t)r * ts + b * QE_Q8_REC + 64 * g));
#pragma GCC unroll 8
            for (int c = 0; c < C; c++) acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], wv[c], xv);
        }
    }
#pragma GCC unroll 2
    for (int r = 0; r < R; r++) {
        const uint8_t *rec = pk + (size_t)r * ts + b * QE_Q8_REC;
        const __m512 dx = _mm512_load_ps((const void *)(rec + QE_Q8_OFF_D));
        /* the packer's correction is -128 * sum(xq): exact in f32 */
        const __m512 sx = _mm512_mul_ps(
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512((const void *)(rec + QE_Q8_OFF_S))),
                          _mm512_set1_ps(-1.f / 128.f)),
            dx);
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            f[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][c]),
                                      _mm512_mul_ps(dx, _mm512_set1_ps(dsc[c][j])), f[r][c]);
            f[r][c] = _mm512_fnmadd_ps(sx, _mm512_set1_ps(dm[c][j]), f[r][c]);
        }
    }
}

INLINE VNNI_TARGET void q4k_tile(const uint8_t *pk, size_t ts, const uint8_t *w, size_t wrow, int nsb,
                                 float *y, size_t ldy, int valid, const int R, const int C) {
    __m512 f[2][8];
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) f[r][c] = _mm512_setzero_ps();
    float dsc[8][8], dm[8][8];
    for (int s = 0; s < nsb; s++) {
        for (int c = 0; c < C; c++) {
            const uint8_t *blk = w + (size_t)c * wrow + (size_t)s * Q4K_BYTES;
            /* the eight 6-bit scales and mins at once (scale_min's packing,
             * four bytes at a time): bytes 0-3 scales 0-3 (low 6 bits),
             * 4-7 mins 0-3; scales/mins 4-7 the nibbles of 8-11 with the top
             * two bits of 0-3 / 4-7 above them */
            const uint32_t s0 = ld32(blk + 4), s1 = ld32(blk + 8), s2 = ld32(blk + 12);
            const uint32_t sc_lo = s0 & 0x3f3f3f3fu, m_lo = s1 & 0x3f3f3f3fu;
            const uint32_t sc_hi = (s2 & 0x0f0f0f0fu) | ((s0 >> 2) & 0x30303030u);
            const uint32_t m_hi = ((s2 >> 4) & 0x0f0f0f0fu) | ((s1 >> 2) & 0x30303030u);
            const __m256 scf =
                _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32((int)sc_lo, (int)sc_hi, 0, 0)));
            const __m256 mf =
                _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32((int)m_lo, (int)m_hi, 0, 0)));
            _mm256_storeu_ps(dsc[c], _mm256_mul_ps(_mm256_set1_ps(half_c(blk)), scf));
            _mm256_storeu_ps(dm[c], _mm256_mul_ps(_mm256_set1_ps(half_c(blk + 2)), mf));
        }
        prefetch_next(w, wrow, s, Q4K_BYTES, C);
        for (int j = 0; j < 8; j += 2) {
            q4k_block(pk, ts, w, wrow, s, j, dsc, dm, f, R, C, 0);
            q4k_block(pk, ts, w, wrow, s, j + 1, dsc, dm, f, R, C, 4);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            float o[16];
            _mm512_storeu_ps(o, f[r][c]);
            for (int l = 0; l < 16 && r * 16 + l < valid; l++)
                y[(size_t)(r * 16 + l) * ldy + (size_t)c] = o[l];
        }
}

/* Q6_K: 32-block j = 4h + u of super-block s; its two 16-value halves each
 * folded into f with their own scale. */
INLINE VNNI_TARGET void q6k_block(const uint8_t *pk, size_t ts, const uint8_t *w, size_t wrow, int s, int j,
                                  const float dsc[8][16], __m512 f[2][8], const int R, const int C,
                                  const int U) {
    const size_t b = (size_t)s * 8 + (size_t)j;
    const int h = j >> 2;
    const __m512i c32 = _mm512_set1_epi8(32);
    const uint8_t *ql = w + (size_t)s * Q6K_BYTES + 64 * h + 32 * (U & 1);
    const uint8_t *qh = w + (size_t)s * Q6K_BYTES + 128 + 32 * h;
#pragma GCC unroll 2
    for (int half = 0; half < 2; half++) {
        __m512i acc[2][8], xs[2];
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) {
            xs[r] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_si512();
        }
#pragma GCC unroll 4
        for (int g = 4 * half; g < 4 * half + 4; g++) {
            __m512i wv[8];
#pragma GCC unroll 8
            for (int c = 0; c < C; c++) {
                /* four 6-bit values assembled in a general register (the
                 * vector ports are the bottleneck; then one broadcast): the
                 * nibble, and bits 2U, 2U+1 of each qh byte masked first (no
                 * bit crosses into a neighbour byte), moved to bits 4, 5 */
                uint32_t l = ld32(ql + (size_t)c * wrow + 4 * g);
                uint32_t hb = ld32(qh + (size_t)c * wrow + 4 * g) & (0x03030303u << (2 * U));
                l = (U >= 2 ? l >> 4 : l) & 0x0F0F0F0Fu;
                hb = U == 0 ? hb << 4 : U == 1 ? hb << 2 : U == 2 ? hb : hb >> 2;
                wv[c] = _mm512_set1_epi32((int)(l | hb));
            }
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) {
                __m512i xv = _mm512_load_si512((const void *)(pk + (size_t)r * ts + b * QE_Q8_REC + 64 * g));
                xs[r] = _mm512_dpbusd_epi32(xs[r], c32, xv);
#pragma GCC unroll 8
                for (int c = 0; c < C; c++) acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], wv[c], xv);
            }
        }
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) {
            const __m512 dx =
                _mm512_load_ps((const void *)(pk + (size_t)r * ts + b * QE_Q8_REC + QE_Q8_OFF_D));
#pragma GCC unroll 8
            for (int c = 0; c < C; c++)
                f[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][c], xs[r])),
                                          _mm512_mul_ps(dx, _mm512_set1_ps(dsc[c][2 * j + half])), f[r][c]);
        }
    }
}

INLINE VNNI_TARGET void q6k_tile(const uint8_t *pk, size_t ts, const uint8_t *w, size_t wrow, int nsb,
                                 float *y, size_t ldy, int valid, const int R, const int C) {
    __m512 f[2][8];
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) f[r][c] = _mm512_setzero_ps();
    float dsc[8][16];
    for (int s = 0; s < nsb; s++) {
        for (int c = 0; c < C; c++) {
            const uint8_t *blk = w + (size_t)c * wrow + (size_t)s * Q6K_BYTES;
            const __m512 scf =
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)(blk + 192))));
            _mm512_storeu_ps(dsc[c], _mm512_mul_ps(_mm512_set1_ps(half_c(blk + 208)), scf));
        }
        prefetch_next(w, wrow, s, Q6K_BYTES, C);
        for (int j = 0; j < 8; j += 4) {
            q6k_block(pk, ts, w, wrow, s, j, dsc, f, R, C, 0);
            q6k_block(pk, ts, w, wrow, s, j + 1, dsc, f, R, C, 1);
            q6k_block(pk, ts, w, wrow, s, j + 2, dsc, f, R, C, 2);
            q6k_block(pk, ts, w, wrow, s, j + 3, dsc, f, R, C, 3);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            float o[16];
            _mm512_storeu_ps(o, f[r][c]);
            for (int l = 0; l < 16 && r * 16 + l < valid; l++)
                y[(size_t)(r * 16 + l) * ldy + (size_t)c] = o[l];
        }
}

typedef void (*tile_fn)(const uint8_t *pk, size_t ts, const uint8_t *w, size_t wrow, int nsb, float *y,
                        size_t ldy, int valid);

#define TILE(T, R, C)                                                                                  \
    VNNI_TARGET static void T##_##R##_##C(const uint8_t *pk, size_t ts, const uint8_t *w, size_t wrow, \
                                          int nsb, float *y, size_t ldy, int valid) {                  \
        T##_tile(pk, ts, w, wrow, nsb, y, ldy, valid, R, C);                                           \
    }
#define TILES(T)                                                                 \
    TILE(T, 1, 1)                                                                \
    TILE(T, 1, 2)                                                                \
    TILE(T, 1, 3)                                                                \
    TILE(T, 1, 4)                                                                \
    TILE(T, 1, 5)                                                                \
    TILE(T, 1, 6)                                                                \
    TILE(T, 1, 7)                                                                \
    TILE(T, 1, 8)                                                                \
    TILE(T, 2, 1)                                                                \
    TILE(T, 2, 2)                                                                \
    TILE(T, 2, 3)                                                                \
    TILE(T, 2, 4)                                                                \
    static const tile_fn T##_1[8] = {                                            \
        T##_1_1, T##_1_2, T##_1_3, T##_1_4, T##_1_5, T##_1_6, T##_1_7, T##_1_8}; \
    static const tile_fn T##_2[4] = {T##_2_1, T##_2_2, T##_2_3, T##_2_4};
TILES(q4k)
TILES(q6k)

/* Weight rows [j0, j1) of the chunk, in panels of 8 that stay in L1/L2 while
 * every tile of the chunk streams past them (as the Q8_0 VNNI kernel). */
static void kq8_kernel_vnni(const qe_q8_chunk *ch, int j0, int j1) {
    const qe_mm_args *a = ch->a;
    const int nsb = a->k / SB;
    const size_t wrow = qe_dtype_bytes(a->wt, (uint64_t)a->k), ts = (size_t)(a->k / 32) * QE_Q8_REC;
    const tile_fn *t1 = a->wt == QE_Q4_K ? q4k_1 : q6k_1, *t2 = a->wt == QE_Q4_K ? q4k_2 : q6k_2;
    const uint8_t *w = a->w;
    for (int jp = j0; jp < j1; jp += 8) {
        int cw = j1 - jp < 8 ? j1 - jp : 8;
        int t = 0;
        for (; t + 2 <= ch->n_tiles; t += 2) {
            float *y = a->y + (size_t)(ch->i0 + t * QE_Q8_TILE) * a->ldy;
            for (int j = jp; j < jp + cw; j += 4) {
                int c = jp + cw - j < 4 ? jp + cw - j : 4;
                t2[c - 1](ch->pack + (size_t)t * ts, ts, w + (size_t)j * wrow, wrow, nsb, y + j, a->ldy,
                          ch->rows - t * QE_Q8_TILE);
            }
        }
        if (t < ch->n_tiles) {
            float *y = a->y + (size_t)(ch->i0 + t * QE_Q8_TILE) * a->ldy;
            t1[cw - 1](ch->pack + (size_t)t * ts, ts, w + (size_t)jp * wrow, wrow, nsb, y + jp, a->ldy,
                       ch->rows - t * QE_Q8_TILE);
        }
    }
}

/* ---- AVX2 ----
 * One packed tile (16 rows: two ymm of 8 rows) x C (1 or 2) weight rows.
 * vpmaddubsw multiplies the unsigned weight values by the signed
 * activations into 16-bit pair sums without saturation (Q4_K: 2*15*127;
 * Q6_K: 2*63*127; 32 * x: 2*32*127), summed in 16 bits while they cannot
 * wrap (Q4_K eight groups: 30480; Q6_K two: 32004; 32 * x four: 32512),
 * then vpmaddwd by 1 widens to 32 bits. */
#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

INLINE AVX2_TARGET float half_c2(const uint8_t *p) {
    return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8));
}

INLINE AVX2_TARGET void store_tile2(__m256 f[2][2], float *y, size_t ldy, int valid, const int C) {
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < C; c++) {
            float o[8];
            _mm256_storeu_ps(o, f[h][c]);
            for (int l = 0; l < 8 && h * 8 + l < valid; l++) y[(size_t)(h * 8 + l) * ldy + (size_t)c] = o[l];
        }
}

INLINE AVX2_TARGET void q4k_tile_avx2(const uint8_t *pk, const uint8_t *w, size_t wrow, int nsb, float *y,
                                      size_t ldy, int valid, const int C) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 f[2][2];
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < C; c++) f[h][c] = _mm256_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        float dsc[2][8], dm[2][8];
        for (int c = 0; c < C; c++) {
            const uint8_t *blk = w + (size_t)c * wrow + (size_t)s * Q4K_BYTES;
            const float d = half_c2(blk), dmin = half_c2(blk + 2);
            for (int j = 0; j < 8; j++) {
                int sc, m;
                scale_min(j, blk + 4, &sc, &m);
                dsc[c][j] = d * (float)sc;
                dm[c][j] = dmin * (float)m;
            }
        }
        for (int j = 0; j < 8; j++) {
            const uint8_t *rec = pk + ((size_t)s * 8 + (size_t)j) * QE_Q8_REC;
            const int sh = 4 * (j & 1);
            __m256i acc[2][2];
#pragma GCC unroll 8
            for (int g = 0; g < 8; g++) {
                __m256i wv[2];
                for (int c = 0; c < C; c++)
                    wv[c] = _mm256_set1_epi32((int)((ld32(w + (size_t)c * wrow + (size_t)s * Q4K_BYTES + 16 +
                                                          32 * (j >> 1) + 4 * g) >>
                                                     sh) &
                                                    0x0F0F0F0Fu));
                for (int h = 0; h < 2; h++) {
                    const __m256i xv = _mm256_load_si256((const void *)(rec + 64 * g + 32 * h));
                    for (int c = 0; c < C; c++) {
                        __m256i p = _mm256_maddubs_epi16(wv[c], xv);
                        acc[h][c] = g ? _mm256_add_epi16(acc[h][c], p) : p;
                    }
                }
            }
            for (int h = 0; h < 2; h++) {
                const __m256 dx = _mm256_load_ps((const void *)(rec + QE_Q8_OFF_D + 32 * h));
                const __m256 sx = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_load_si256((
                                                                  const void *)(rec + QE_Q8_OFF_S + 32 * h))),
                                                              _mm256_set1_ps(-1.f / 128.f)),
                                                dx);
                for (int c = 0; c < C; c++) {
                    __m256 v = _mm256_cvtepi32_ps(_mm256_madd_epi16(acc[h][c], ones));
                    f[h][c] = _mm256_fmadd_ps(v, _mm256_mul_ps(dx, _mm256_set1_ps(dsc[c][j])), f[h][c]);
                    f[h][c] = _mm256_fnmadd_ps(sx, _mm256_set1_ps(dm[c][j]), f[h][c]);
                }
            }
        }
    }
    store_tile2(f, y, ldy, valid, C);
}

INLINE AVX2_TARGET void q6k_tile_avx2(const uint8_t *pk, const uint8_t *w, size_t wrow, int nsb, float *y,
                                      size_t ldy, int valid, const int C) {
    const __m256i ones = _mm256_set1_epi16(1), c32 = _mm256_set1_epi8(32);
    __m256 f[2][2];
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < C; c++) f[h][c] = _mm256_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        float dsc[2][16];
        for (int c = 0; c < C; c++) {
            const uint8_t *blk = w + (size_t)c * wrow + (size_t)s * Q6K_BYTES;
            const float d = half_c2(blk + 208);
            for (int i = 0; i < 16; i++) dsc[c][i] = d * (float)(int8_t)blk[192 + i];
        }
        for (int j = 0; j < 8; j++) {
            const uint8_t *rec = pk + ((size_t)s * 8 + (size_t)j) * QE_Q8_REC;
            const int hh = j >> 2, u = j & 3;
            const uint8_t *ql = w + (size_t)s * Q6K_BYTES + 64 * hh + 32 * (u & 1);
            const uint8_t *qh = w + (size_t)s * Q6K_BYTES + 128 + 32 * hh;
            for (int half = 0; half < 2; half++) {
                __m256i acc[2][2], xs[2];
                for (int h = 0; h < 2; h++) {
                    __m256i t = _mm256_setzero_si256();
                    for (int g = 4 * half; g < 4 * half + 4; g++)
                        t = _mm256_add_epi16(
                            t, _mm256_maddubs_epi16(
                                   c32, _mm256_load_si256((const void *)(rec + 64 * g + 32 * h))));
                    xs[h] = _mm256_madd_epi16(t, ones);
                    for (int c = 0; c < C; c++) acc[h][c] = _mm256_setzero_si256();
                }
                for (int g = 4 * half; g < 4 * half + 4; g += 2) {
                    __m256i wv[2][2];
                    for (int c = 0; c < C; c++)
                        for (int e = 0; e < 2; e++) {
                            uint32_t l = ld32(ql + (size_t)c * wrow + 4 * (g + e));
                            uint32_t hb =
                                ld32(qh + (size_t)c * wrow + 4 * (g + e)) & (0x03030303u << (2 * u));
                            l = (u >= 2 ? l >> 4 : l) & 0x0F0F0F0Fu;
                            hb = u == 0 ? hb << 4 : u == 1 ? hb << 2 : u == 2 ? hb : hb >> 2;
                            wv[c][e] = _mm256_set1_epi32((int)(l | hb));
                        }
                    for (int h = 0; h < 2; h++) {
                        const __m256i x0 = _mm256_load_si256((const void *)(rec + 64 * g + 32 * h));
                        const __m256i x1 = _mm256_load_si256((const void *)(rec + 64 * (g + 1) + 32 * h));
                        for (int c = 0; c < C; c++) {
                            __m256i t = _mm256_add_epi16(_mm256_maddubs_epi16(wv[c][0], x0),
                                                         _mm256_maddubs_epi16(wv[c][1], x1));
                            acc[h][c] = _mm256_add_epi32(acc[h][c], _mm256_madd_epi16(t, ones));
                        }
                    }
                }
                for (int h = 0; h < 2; h++) {
                    const __m256 dx = _mm256_load_ps((const void *)(rec + QE_Q8_OFF_D + 32 * h));
                    for (int c = 0; c < C; c++)
                        f[h][c] =
                            _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[h][c], xs[h])),
                                            _mm256_mul_ps(dx, _mm256_set1_ps(dsc[c][2 * j + half])), f[h][c]);
                }
            }
        }
    }
    store_tile2(f, y, ldy, valid, C);
}

typedef void (*tile2_fn)(const uint8_t *pk, const uint8_t *w, size_t wrow, int nsb, float *y, size_t ldy,
                         int valid);
#define TILE2(T, C)                                                                                 \
    AVX2_TARGET static void T##_avx2_##C(const uint8_t *pk, const uint8_t *w, size_t wrow, int nsb, \
                                         float *y, size_t ldy, int valid) {                         \
        T##_tile_avx2(pk, w, wrow, nsb, y, ldy, valid, C);                                          \
    }
TILE2(q4k, 1)
TILE2(q4k, 2)
TILE2(q6k, 1)
TILE2(q6k, 2)

/* Weight rows [j0, j1) of the chunk in pairs, every tile of the chunk past
 * each pair. */
static void kq8_kernel_avx2(const qe_q8_chunk *ch, int j0, int j1) {
    const qe_mm_args *a = ch->a;
    const int nsb = a->k / SB;
    const size_t wrow = qe_dtype_bytes(a->wt, (uint64_t)a->k), ts = (size_t)(a->k / 32) * QE_Q8_REC;
    const tile2_fn f1 = a->wt == QE_Q4_K ? q4k_avx2_1 : q6k_avx2_1,
                   f2 = a->wt == QE_Q4_K ? q4k_avx2_2 : q6k_avx2_2;
    const uint8_t *w = a->w;
    for (int j = j0; j < j1; j += 2)
        for (int t = 0; t < ch->n_tiles; t++) {
            float *y = a->y + (size_t)(ch->i0 + t * QE_Q8_TILE) * a->ldy + j;
            (j + 2 <= j1 ? f2 : f1)(ch->pack + (size_t)t * ts, w + (size_t)j * wrow, wrow, nsb, y, a->ldy,
                                    ch->rows - t * QE_Q8_TILE);
        }
}

/* The driver: one chunk of activation rows at a time, packed by every thread
 * (tasks over (tile, block) records), then multiplied (tasks over weight
 * rows in panels of 8); as matmul_q8.c's q8_fast. */
typedef struct kq8_job {
    qe_q8_chunk ch;
    int nb, n_tasks;
    qe_kq8_variant v;
} kq8_job;

static void pack_task(void *arg, int task, int thread) {
    (void)thread;
    const kq8_job *job = arg;
    const long units = (long)job->ch.n_tiles * job->nb;
    long u0 = units * task / job->n_tasks, u1 = units * (task + 1) / job->n_tasks;
    while (u0 < u1) {
        int t = (int)(u0 / job->nb), b0 = (int)(u0 % job->nb);
        int b1 = (long)t * job->nb + job->nb <= u1 ? job->nb : (int)(u1 - (long)t * job->nb);
        qe_q8_pack_avx2(job->ch.a, job->ch.i0, job->ch.rows, (uint8_t *)job->ch.pack, t, b0, b1);
        u0 = (long)t * job->nb + b1;
    }
}

static void mul_task(void *arg, int task, int thread) {
    (void)thread;
    const kq8_job *job = arg;
    int j0, j1;
    qe_mm_split(job->ch.a->n, job->n_tasks, 8, task, &j0, &j1);
    if (j0 >= j1) return;
    if (job->v == QE_KQ8_VNNI)
        kq8_kernel_vnni(&job->ch, j0, j1);
    else
        kq8_kernel_avx2(&job->ch, j0, j1);
}

static int kq8_fast(const qe_mm_args *a, qe_kq8_variant v) {
    const int nb = a->k / 32;
    const size_t per_tile = (size_t)nb * QE_Q8_REC;
    const int chunk_tiles = (int)(QE_MM_Q8ACT / per_tile);
    if (chunk_tiles < 1) return -1;
    uint8_t *pack = qe_threadpool_q8_block(a->pool, qe_q8_block_bytes(a->k, a->m));
    void *own = NULL;
    if (!pack) { /* no block on the pool (no pool, none reserved): a block for this call */
        if (posix_memalign(&own, 64, QE_MM_Q8ACT) != 0) return -1;
        pack = own;
    }
    const int threads = qe_threadpool_size(a->pool);
    const int mul_tasks = qe_mm_n_tasks(a, 8);
    for (int i0 = 0; i0 < a->m; i0 += chunk_tiles * QE_Q8_TILE) {
        int rows = a->m - i0 < chunk_tiles * QE_Q8_TILE ? a->m - i0 : chunk_tiles * QE_Q8_TILE;
        kq8_job job = {{a, pack, i0, rows, (rows + QE_Q8_TILE - 1) / QE_Q8_TILE}, nb, 0, v};
        long units = (long)job.ch.n_tiles * nb;
        job.n_tasks = units < threads ? (int)units : threads;
        qe_threadpool_run(a->pool, pack_task, &job, job.n_tasks);
        job.n_tasks = mul_tasks;
        qe_threadpool_run(a->pool, mul_task, &job, job.n_tasks);
    }
    free(own);
    return 0;
}
#endif

int qe_kq8_variant_available(qe_kq8_variant v) {
    if (v == QE_KQ8_SCALAR) return 1;
    /* the Q8_0 VNNI kernel's condition (cached there): AVX-512 + VNNI */
    if (v == QE_KQ8_VNNI) return qe_q8_variant_available(QE_Q8_VNNI);
    if (v == QE_KQ8_AVX2) return qe_q8_variant_available(QE_Q8_AVX2);
    return 0;
}

qe_kq8_variant qe_kq8_best(qe_isa isa, qe_dtype t) {
    if (isa >= QE_ISA_AVX512 && qe_kq8_variant_available(QE_KQ8_VNNI)) return QE_KQ8_VNNI;
    /* AVX2 only for Q4_K: its Q6_K kernel measured slower than the f32
     * tiles (bench_quant, 16 rows, at level avx2: 1.2x their time) */
    if (t == QE_Q4_K && isa >= QE_ISA_AVX2 && qe_kq8_variant_available(QE_KQ8_AVX2)) return QE_KQ8_AVX2;
    return QE_KQ8_SCALAR;
}

int qe_matmul_kq8(const qe_mm_args *a, qe_kq8_variant v) {
    if (!qe_kq8_dtype(a->wt) || a->k % SB != 0) return -1;
    if (!qe_kq8_variant_available(v)) return -1;
#if defined(__x86_64__)
    if (v != QE_KQ8_SCALAR) return kq8_fast(a, v);
#endif
    int threads = qe_threadpool_size(a->pool);
    kq8_ref_job job = {a, 1};
    if (threads > 1) job.n_tasks = a->n < threads * 4 ? a->n : threads * 4;
    qe_threadpool_run(a->pool, ref_task, &job, job.n_tasks);
    return 0;
}
