/* Q8_0 products with AVX512-VNNI (see matmul_q8.c): register tiles of R
 * packed 16-row tiles (one zmm each, rows in lanes) x C weight rows, R x C
 * in {2 x 4, 1 x 8} (about 30 of the 32 zmm: R*C int32 block sums, R*C f32
 * accumulators, C broadcast weights).
 *
 * vpdpbusd multiplies unsigned by signed bytes. Per group of 4 k values each
 * weight row's 4 int8 are broadcast and offset to unsigned (w + 128, by xor
 * 0x80; exact for every int8 w, -128 included), the packed activations are
 * the signed operand, so each lane sums (w + 128) * x over the block; the
 * block sum starts at the packer's correction -128 * sum(x) and ends exactly
 * at sum(w * x). After the block's 8 groups: convert, scale by d_x * d_w and
 * add into the f32 accumulators. Each weight block is read once per 16 or 32
 * activation rows. */
#include "matmul_q8.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define VNNI_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

static inline uint16_t ld16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

/* R packed tiles (pk, tile stride ts) x C weight rows (w, row stride wrow);
 * stores the rows below `valid` of y (row stride ldy), columns 0..C-1. */
static inline __attribute__((always_inline)) VNNI_TARGET void vnni_tile(const uint8_t *pk, size_t ts,
                                                                        const uint8_t *w, size_t wrow, int nb,
                                                                        float *y, size_t ldy, int valid,
                                                                        const int R, const int C) {
    __m512 f[2][8];
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) f[r][c] = _mm512_setzero_ps();
    const __m512i off = _mm512_set1_epi8((char)0x80);
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + (size_t)b * QE_Q8_BYTES;
        __m512i acc[2][8];
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) {
            const uint8_t *rec = pk + (size_t)r * ts + (size_t)b * QE_Q8_REC;
#pragma GCC unroll 8
            for (int c = 0; c < C; c++) acc[r][c] = _mm512_load_si512((const void *)(rec + QE_Q8_OFF_S));
        }
#pragma GCC unroll 8
        for (int c = 0; c < C; c++)
            _mm_prefetch((const char *)(wb + (size_t)c * wrow + 8 * QE_Q8_BYTES), _MM_HINT_T0);
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            __m512i wv[8];
#pragma GCC unroll 8
            for (int c = 0; c < C; c++) {
                int32_t v;
                memcpy(&v, wb + (size_t)c * wrow + 2 + 4 * g, 4);
                wv[c] = _mm512_xor_si512(_mm512_set1_epi32(v), off);
            }
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) {
                __m512i xv =
                    _mm512_load_si512((const void *)(pk + (size_t)r * ts + (size_t)b * QE_Q8_REC + 64 * g));
#pragma GCC unroll 8
                for (int c = 0; c < C; c++) acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], wv[c], xv);
            }
        }
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            __m512 dw = _mm512_set1_ps(_cvtsh_ss(ld16(wb + (size_t)c * wrow)));
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) {
                __m512 dx =
                    _mm512_load_ps((const void *)(pk + (size_t)r * ts + (size_t)b * QE_Q8_REC + QE_Q8_OFF_D));
                f[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][c]), _mm512_mul_ps(dx, dw), f[r][c]);
            }
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

typedef void (*tile_fn)(const uint8_t *pk, size_t ts, const uint8_t *w, size_t wrow, int nb, float *y,
                        size_t ldy, int valid);

#define TILE(R, C)                                                                                      \
    VNNI_TARGET static void tile_##R##_##C(const uint8_t *pk, size_t ts, const uint8_t *w, size_t wrow, \
                                           int nb, float *y, size_t ldy, int valid) {                   \
        vnni_tile(pk, ts, w, wrow, nb, y, ldy, valid, R, C);                                            \
    }
TILE(1, 1)
TILE(1, 2)
TILE(1, 3)
TILE(1, 4)
TILE(1, 5)
TILE(1, 6)
TILE(1, 7)
TILE(1, 8)
TILE(2, 1)
TILE(2, 2)
TILE(2, 3)
TILE(2, 4)

static const tile_fn tiles1[8] = {tile_1_1, tile_1_2, tile_1_3, tile_1_4,
                                  tile_1_5, tile_1_6, tile_1_7, tile_1_8};
static const tile_fn tiles2[4] = {tile_2_1, tile_2_2, tile_2_3, tile_2_4};

void qe_q8_kernel_vnni(const qe_q8_chunk *ch, int j0, int j1) {
    const qe_mm_args *a = ch->a;
    const int nb = a->k / QE_Q8_BLOCK;
    const size_t wrow = (size_t)nb * QE_Q8_BYTES, ts = (size_t)nb * QE_Q8_REC;
    const uint8_t *w = a->w;
    /* panels of 8 weight rows (a few KB) stay in L1/L2 while every tile of
     * the chunk streams past them: pairs of tiles x 4 rows, a last odd tile
     * x 8 rows */
    for (int jp = j0; jp < j1; jp += 8) {
        int cw = j1 - jp < 8 ? j1 - jp : 8;
        int t = 0;
        for (; t + 2 <= ch->n_tiles; t += 2) {
            float *y = a->y + (size_t)(ch->i0 + t * QE_Q8_TILE) * a->ldy;
            for (int j = jp; j < jp + cw; j += 4) {
                int c = jp + cw - j < 4 ? jp + cw - j : 4;
                tiles2[c - 1](ch->pack + (size_t)t * ts, ts, w + (size_t)j * wrow, wrow, nb, y + j, a->ldy,
                              ch->rows - t * QE_Q8_TILE);
            }
        }
        if (t < ch->n_tiles) {
            float *y = a->y + (size_t)(ch->i0 + t * QE_Q8_TILE) * a->ldy;
            tiles1[cw - 1](ch->pack + (size_t)t * ts, ts, w + (size_t)jp * wrow, wrow, nb, y + jp, a->ldy,
                           ch->rows - t * QE_Q8_TILE);
        }
    }
}
#else
void qe_q8_kernel_vnni(const qe_q8_chunk *ch, int j0, int j1) {
    (void)ch, (void)j0, (void)j1;
}
#endif
