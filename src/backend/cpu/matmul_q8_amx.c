/* Q8_0 products with AMX-INT8 tiles (see matmul_q8.c), where the CPU has
 * them (Sapphire Rapids and later) and the level allows AMX.
 *
 * One tdpbssd (signed x signed bytes, int32 sums) per Q8_0 block and tile
 * pair, with K = 32 (one block), so that every block's integer sums can be
 * scaled by their own d_w * d_x:
 *   A = 16 weight rows x 32 bytes, loaded straight from the mapped file
 *       (row stride = the weight row's bytes; the tile load skips the scales),
 *   B = one packed activation record's q (8 rows of 16 activation rows x 4
 *       bytes: the VNNI layout that tiles want, matmul_q8.h),
 *   C = 16 weight rows x 16 activation rows, int32.
 * A register tile of 32 weight rows x 32 activation rows (2 A, 2 B, 4 C
 * tiles); after each block the C tiles are stored and AVX-512 converts,
 * scales and adds them into f32 accumulators (held in L1, 4 KB) while the
 * next block's tile products run. Column tails (fewer than 32 weight rows)
 * go to the VNNI kernel, which gives the same sums in the same f32 order. */
#include "matmul_q8.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,amx-tile,amx-int8")))

typedef struct tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

int qe_q8_amx_available(void) {
    static _Atomic int cached = -1;
    int c = atomic_load_explicit(&cached, memory_order_relaxed);
    if (c >= 0) return c;
    int amx = 0;
    c = 0;
    if (qe_cpu_features(&amx) >= QE_ISA_AVX512 && amx) {
        unsigned a, b, cx, d;
        __cpuid_count(7, 0, a, b, cx, d);
        /* AMX-INT8 (edx bit 25); Linux hands out the tile state only after a
         * per-process request */
#if defined(SYS_arch_prctl)
        c = ((d >> 25) & 1) &&
            syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
#endif
    }
    atomic_store_explicit(&cached, c, memory_order_relaxed);
    return c;
}

/* The block's f32 work on one stored C tile: acc[r] += C[r] * dx * dw[r]. */
static inline __attribute__((always_inline)) AMX_TARGET void scale_add(float *acc, const int32_t *cb,
                                                                       __m512 dx, const float *dw) {
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) {
        __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512((const void *)(cb + 16 * r)));
        __m512 a = _mm512_load_ps(acc + 16 * r);
        _mm512_store_ps(acc + 16 * r, _mm512_fmadd_ps(v, _mm512_mul_ps(dx, _mm512_set1_ps(dw[r])), a));
    }
}

/* Weight rows [j, j+32) (w at row j) x NX packed tiles (1 or 2, at pk,
 * stride ts); dwp: the 32 rows' scales per block (dwp[32 b + r]). Stores
 * the activation rows below `valid` into y (row stride ldy, column j). */
static inline __attribute__((always_inline)) AMX_TARGET void amx_tile(const uint8_t *pk, size_t ts,
                                                                      const uint8_t *w, size_t wrow, int nb,
                                                                      const float *dwp, float *y, size_t ldy,
                                                                      int valid, const int NX) {
    _Alignas(64) float acc[4][256];
    _Alignas(64) int32_t cb[2][4][256];
    memset(acc, 0, sizeof acc);
#define ISSUE(b)                                                 \
    do {                                                         \
        const uint8_t *wb_ = w + (size_t)(b)*QE_Q8_BYTES + 2;    \
        int32_t(*c_)[256] = cb[(b)&1];                           \
        _tile_zero(4);                                           \
        _tile_zero(5);                                           \
        _tile_loadd(0, wb_, (long)wrow);                         \
        _tile_loadd(1, wb_ + 16 * wrow, (long)wrow);             \
        _tile_loadd(2, pk + (size_t)(b)*QE_Q8_REC, 64);          \
        _tile_dpbssd(4, 0, 2);                                   \
        _tile_dpbssd(5, 1, 2);                                   \
        if (NX == 2) {                                           \
            _tile_zero(6);                                       \
            _tile_zero(7);                                       \
            _tile_loadd(3, pk + ts + (size_t)(b)*QE_Q8_REC, 64); \
            _tile_dpbssd(6, 0, 3);                               \
            _tile_dpbssd(7, 1, 3);                               \
        }                                                        \
        _tile_stored(4, c_[0], 64);                              \
        _tile_stored(5, c_[1], 64);                              \
        if (NX == 2) {                                           \
            _tile_stored(6, c_[2], 64);                          \
            _tile_stored(7, c_[3], 64);                          \
        }                                                        \
    } while (0)
    ISSUE(0);
    for (int b = 0; b < nb; b++) {
        if (b + 1 < nb) ISSUE(b + 1); /* the tile unit runs ahead of the f32 work */
        int32_t(*c)[256] = cb[b & 1];
        __m512 dx0 = _mm512_load_ps((const void *)(pk + (size_t)b * QE_Q8_REC + QE_Q8_OFF_D));
        scale_add(acc[0], c[0], dx0, dwp + 32 * (size_t)b);
        scale_add(acc[1], c[1], dx0, dwp + 32 * (size_t)b + 16);
        if (NX == 2) {
            __m512 dx1 = _mm512_load_ps((const void *)(pk + ts + (size_t)b * QE_Q8_REC + QE_Q8_OFF_D));
            scale_add(acc[2], c[2], dx1, dwp + 32 * (size_t)b);
            scale_add(acc[3], c[3], dx1, dwp + 32 * (size_t)b + 16);
        }
    }
#undef ISSUE
    /* acc[q] is (weight row, activation row): y is (activation row, column) */
    for (int q = 0; q < 2 * NX; q++) {
        int x0 = (q >> 1) * 16, w0 = (q & 1) * 16;
        for (int r = 0; r < 16; r++)
            for (int l = 0; l < 16 && x0 + l < valid; l++)
                y[(size_t)(x0 + l) * ldy + (size_t)(w0 + r)] = acc[q][16 * r + l];
    }
}

AMX_TARGET static void amx_tile1(const uint8_t *pk, size_t ts, const uint8_t *w, size_t wrow, int nb,
                                 const float *dwp, float *y, size_t ldy, int valid) {
    amx_tile(pk, ts, w, wrow, nb, dwp, y, ldy, valid, 1);
}
AMX_TARGET static void amx_tile2(const uint8_t *pk, size_t ts, const uint8_t *w, size_t wrow, int nb,
                                 const float *dwp, float *y, size_t ldy, int valid) {
    amx_tile(pk, ts, w, wrow, nb, dwp, y, ldy, valid, 2);
}

/* The 32 weight rows' f16 scales for every block, as f32 (dwp[32 b + r]). */
AMX_TARGET static void panel_scales(const uint8_t *w, size_t wrow, int nb, float *dwp) {
    const __m512i idx =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32((int)wrow));
    for (int b = 0; b < nb; b++)
        for (int h = 0; h < 2; h++) {
            /* 4 bytes at each block start: the f16 scale and two q (in bounds) */
            __m512i v = _mm512_i32gather_epi32(idx, w + (size_t)h * 16 * wrow + (size_t)b * QE_Q8_BYTES, 1);
            _mm512_storeu_ps(dwp + 32 * (size_t)b + 16 * h, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)));
        }
}

size_t qe_q8_amx_scratch(int k) {
    return (size_t)(k / QE_Q8_BLOCK) * 32 * sizeof(float);
}

AMX_TARGET void qe_q8_kernel_amx(const qe_q8_chunk *ch, int j0, int j1, void *scratch) {
    const qe_mm_args *a = ch->a;
    const int nb = a->k / QE_Q8_BLOCK;
    const size_t wrow = (size_t)nb * QE_Q8_BYTES, ts = (size_t)nb * QE_Q8_REC;
    const uint8_t *w = a->w;
    float *dwp = scratch;
    _Alignas(64) tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 2; t++) { /* A: 16 weight rows x 32 bytes */
        cfg.rows[t] = 16;
        cfg.colsb[t] = 32;
    }
    for (int t = 2; t < 4; t++) { /* B: 8 groups x 16 activation rows x 4 bytes */
        cfg.rows[t] = 8;
        cfg.colsb[t] = 64;
    }
    for (int t = 4; t < 8; t++) { /* C: 16 x 16 int32 */
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    int j = j0;
    for (; j + 32 <= j1; j += 32) {
        panel_scales(w + (size_t)j * wrow, wrow, nb, dwp);
        int t = 0;
        for (; t + 2 <= ch->n_tiles; t += 2)
            amx_tile2(ch->pack + (size_t)t * ts, ts, w + (size_t)j * wrow, wrow, nb, dwp,
                      a->y + (size_t)(ch->i0 + t * QE_Q8_TILE) * a->ldy + j, a->ldy,
                      ch->rows - t * QE_Q8_TILE);
        if (t < ch->n_tiles)
            amx_tile1(ch->pack + (size_t)t * ts, ts, w + (size_t)j * wrow, wrow, nb, dwp,
                      a->y + (size_t)(ch->i0 + t * QE_Q8_TILE) * a->ldy + j, a->ldy,
                      ch->rows - t * QE_Q8_TILE);
    }
    _tile_release();
    if (j < j1) qe_q8_kernel_vnni(ch, j, j1);
}
#else
int qe_q8_amx_available(void) {
    return 0;
}
size_t qe_q8_amx_scratch(int k) {
    (void)k;
    return 0;
}
void qe_q8_kernel_amx(const qe_q8_chunk *ch, int j0, int j1, void *scratch) {
    (void)ch, (void)j0, (void)j1, (void)scratch;
}
#endif
