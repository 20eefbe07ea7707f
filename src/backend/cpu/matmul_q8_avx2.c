/* Q8_0 products with AVX2 (see matmul_q8.c): the activation packer that the
 * AVX2 and VNNI kernels share, and the AVX2 kernel.
 *
 * Kernel: a register tile of one packed 16-row tile (two ymm of 8 rows) x 2
 * weight rows. Per group of 4 k values each weight row's 4 int8 are
 * broadcast; vpmaddubsw multiplies |w| (unsigned, up to 128) by sign(x, w)
 * (|x| <= 127), so each 16-bit pair sum is at most 2 * 128 * 127 < 2^15 and
 * every product is exact, then vpmaddwd by 1 widens to one 32-bit sum per row.
 * After the block's 8 groups the integer sums are scaled by d_x * d_w into
 * f32 accumulators. Each weight block is read once per 16 activation rows. */
#include "matmul_q8.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

/* The scalar quantizer's arithmetic exactly (matmul_q8.c quant_row: amax,
 * s = amax / 127, q = round-to-even(x * (1 / s))), 32 values of one row. */
AVX2_TARGET static void pack_row_block(const float *x, uint8_t *rec, int r) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                             _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float amax = _mm_cvtss_f32(h);
    float s = amax / 127.f, is = s ? 1.f / s : 0.f;
    const __m256 vis = _mm256_set1_ps(is);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vis)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vis));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vis)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vis));
    __m256i sum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    /* packs interleave 128-bit lanes; the permute restores k order */
    __m256i q = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    q = _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    uint32_t g[8];
    _mm256_storeu_si256((__m256i *)g, q);
    for (int i = 0; i < 8; i++) memcpy(rec + i * 64 + r * 4, &g[i], 4);
    memcpy(rec + QE_Q8_OFF_D + r * 4, &s, 4);
    int32_t corr = -128 * _mm_cvtsi128_si32(s4);
    memcpy(rec + QE_Q8_OFF_S + r * 4, &corr, 4);
}

void qe_q8_pack_avx2(const qe_mm_args *a, int i0, int rows, uint8_t *pack, int t, int b0, int b1) {
    const int nb = a->k / QE_Q8_BLOCK;
    for (int b = b0; b < b1; b++) {
        uint8_t *rec = pack + ((size_t)t * (size_t)nb + (size_t)b) * QE_Q8_REC;
        for (int r = 0; r < QE_Q8_TILE; r++) {
            int row = t * QE_Q8_TILE + r;
            if (row < rows) {
                pack_row_block(a->x + (size_t)(i0 + row) * a->ldx + (size_t)b * QE_Q8_BLOCK, rec, r);
            } else { /* padding rows contribute zeros */
                for (int i = 0; i < 8; i++) memset(rec + i * 64 + r * 4, 0, 4);
                memset(rec + QE_Q8_OFF_D + r * 4, 0, 4);
                memset(rec + QE_Q8_OFF_S + r * 4, 0, 4);
            }
        }
    }
}

static inline uint16_t ld16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

/* One packed tile (pk, nb records) x C weight rows (w, row stride wrow);
 * stores the rows below `valid` of y (row stride ldy) columns 0..C-1. */
static inline __attribute__((always_inline)) AVX2_TARGET void avx2_tile(const uint8_t *pk, const uint8_t *w,
                                                                        size_t wrow, int nb, float *y,
                                                                        size_t ldy, int valid, const int C) {
    __m256 f[2][2];
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < C; c++) f[h][c] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = 0; b < nb; b++) {
        const uint8_t *rec = pk + (size_t)b * QE_Q8_REC;
        const uint8_t *wb = w + (size_t)b * QE_Q8_BYTES;
        __m256i acc[2][2];
        for (int h = 0; h < 2; h++)
            for (int c = 0; c < C; c++) acc[h][c] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            __m256i ws[2], wa[2];
            for (int c = 0; c < C; c++) {
                int32_t v;
                memcpy(&v, wb + (size_t)c * wrow + 2 + 4 * g, 4);
                ws[c] = _mm256_set1_epi32(v);
                wa[c] = _mm256_abs_epi8(ws[c]);
            }
            for (int h = 0; h < 2; h++) {
                __m256i xv = _mm256_load_si256((const __m256i *)(rec + 64 * g + 32 * h));
                for (int c = 0; c < C; c++) {
                    __m256i p = _mm256_maddubs_epi16(wa[c], _mm256_sign_epi8(xv, ws[c]));
                    acc[h][c] = _mm256_add_epi32(acc[h][c], _mm256_madd_epi16(p, ones));
                }
            }
        }
        for (int c = 0; c < C; c++) {
            __m256 dw = _mm256_set1_ps(_cvtsh_ss(ld16(wb + (size_t)c * wrow)));
            for (int h = 0; h < 2; h++) {
                __m256 dx = _mm256_load_ps((const float *)(rec + QE_Q8_OFF_D) + 8 * h);
                f[h][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[h][c]), _mm256_mul_ps(dx, dw), f[h][c]);
            }
        }
    }
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < C; c++) {
            float o[8];
            _mm256_storeu_ps(o, f[h][c]);
            for (int l = 0; l < 8 && h * 8 + l < valid; l++) y[(size_t)(h * 8 + l) * ldy + (size_t)c] = o[l];
        }
}

AVX2_TARGET static void tile_c1(const uint8_t *pk, const uint8_t *w, size_t wrow, int nb, float *y,
                                size_t ldy, int valid) {
    avx2_tile(pk, w, wrow, nb, y, ldy, valid, 1);
}
AVX2_TARGET static void tile_c2(const uint8_t *pk, const uint8_t *w, size_t wrow, int nb, float *y,
                                size_t ldy, int valid) {
    avx2_tile(pk, w, wrow, nb, y, ldy, valid, 2);
}

void qe_q8_kernel_avx2(const qe_q8_chunk *ch, int j0, int j1) {
    const qe_mm_args *a = ch->a;
    const int nb = a->k / QE_Q8_BLOCK;
    const size_t wrow = (size_t)nb * QE_Q8_BYTES, ts = (size_t)nb * QE_Q8_REC;
    const uint8_t *w = a->w;
    /* panels of 8 weight rows (a few KB) stay in L1/L2 while every tile of
     * the chunk streams past them */
    for (int jp = j0; jp < j1; jp += 8) {
        int je = jp + 8 < j1 ? jp + 8 : j1;
        for (int t = 0; t < ch->n_tiles; t++) {
            float *y = a->y + (size_t)(ch->i0 + t * QE_Q8_TILE) * a->ldy;
            int valid = ch->rows - t * QE_Q8_TILE;
            for (int j = jp; j < je; j += 2) {
                if (je - j >= 2)
                    tile_c2(ch->pack + (size_t)t * ts, w + (size_t)j * wrow, wrow, nb, y + j, a->ldy, valid);
                else
                    tile_c1(ch->pack + (size_t)t * ts, w + (size_t)j * wrow, wrow, nb, y + j, a->ldy, valid);
            }
        }
    }
}
#else
void qe_q8_pack_avx2(const qe_mm_args *a, int i0, int rows, uint8_t *pack, int t, int b0, int b1) {
    (void)a, (void)i0, (void)rows, (void)pack, (void)t, (void)b0, (void)b1;
}
void qe_q8_kernel_avx2(const qe_q8_chunk *ch, int j0, int j1) {
    (void)ch, (void)j0, (void)j1;
}
#endif
