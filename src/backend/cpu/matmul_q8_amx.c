/* Q8_0 products with AMX-INT8 tiles (see matmul_q8.c), where the CPU has
 * them (Sapphire Rapids and later) and the level allows AMX.
 *
 * One tdpbssd (signed x signed bytes, int32 sums) per Q8_0 block, with
 * K = 32 (one block), so that every block's integer sums can be scaled by
 * their own d_w * d_x:
 *   A = 16 weight rows x 32 bytes, loaded straight from the mapped file (row
 *       stride = the weight row's bytes; the load skips the scales), or for
 *       more than one activation tile from a per-thread copy of the 16 rows'
 *       q (contiguous: 8 cache lines per load instead of 16 to 32),
 *   B = one packed activation record's q (8 rows of 16 activation rows x 4
 *       bytes: the layout tiles want, matmul_q8.h),
 *   C = 16 weight rows x 16 activation rows, int32.
 * Tile registers are not renamed, so A and B alternate between two
 * registers on even and odd blocks and C rotates over four: a block's loads
 * and product do not wait for the previous block's, and the products run
 * two blocks ahead of the AVX-512 work that converts each stored C, scales
 * it by d_x * d_w and adds it into 16 f32 accumulators (registers). Measured
 * here against a 32 x 32 register tile (2 A, 2 B, 4 C per block): as fast at
 * 16 rows and a little faster at 512 (bench/kernels/bench_q8). Column tails
 * (fewer than 32 weight rows) go to the VNNI kernel, which gives the same
 * sums in the same f32 order. */
#include "matmul_q8.h"
#include "amx_tiles.h"

#include <stdatomic.h>
#include <string.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,amx-tile,amx-int8")))

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

/* 16 weight rows x 16 activation rows (one packed tile), with the tile
 * registers alternating between even and odd blocks (A and B) and C rotating
 * over four, so that a block's loads and product never wait for the previous
 * block's tiles (tile registers are not renamed). */
AMX_TARGET static void amx_one(const uint8_t *pk, const uint8_t *wa, size_t a_step, size_t a_stride, int nb,
                               const float *dwp, float *y, size_t ldy, int valid, const uint8_t *pf,
                               size_t wrow) {
    _Alignas(64) int32_t cb[4][256];
    __m512 acc[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
/* block b's 16 weight rows x 32 bytes, a_stride apart */
#define A_AT(b) (wa + (size_t)(b)*a_step)
#define ISSUE1(b) QE_AMX_Q8_ISSUE(b, A_AT, a_stride, pk, cb)
    ISSUE1(0);
    if (nb > 1) ISSUE1(1);
    for (int b = 0; b < nb; b++) {
        if (b + 2 < nb) ISSUE1(b + 2);
        if (pf) /* the next 16 weight rows' block b, while this block computes */
            for (int r = 0; r < 16; r++)
                _mm_prefetch((const char *)(pf + (size_t)r * wrow + (size_t)b * QE_Q8_BYTES), _MM_HINT_T0);
        const int32_t *c = cb[b & 3];
        __m512 dx = _mm512_load_ps((const void *)(pk + (size_t)b * QE_Q8_REC + QE_Q8_OFF_D));
        const float *dw = dwp + 32 * (size_t)b;
#pragma GCC unroll 16
        for (int r = 0; r < 16; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512((const void *)(c + 16 * r))),
                                     _mm512_mul_ps(dx, _mm512_set1_ps(dw[r])), acc[r]);
    }
#undef ISSUE1
#undef A_AT
    _Alignas(64) float o[256];
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) _mm512_store_ps(o + 16 * r, acc[r]);
    const __m512i col =
        _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
    for (int l = 0; l < 16 && l < valid; l++)
        _mm512_storeu_ps(y + (size_t)l * ldy, _mm512_i32gather_ps(col, o + l, 4));
}

/* The 32 weight rows' f16 scales for every block, as f32 (dwp[32 b + r]).
 * Read row by row, 16 blocks a gather: each row is one sequential stream,
 * which brings the panel's weights into the cache for the tile loads (a
 * query touches them here first; gathering across the 32 rows instead was a
 * quarter of a query's time in cache misses). */
AMX_TARGET static void panel_scales(const uint8_t *w, size_t wrow, int nb, float *dwp) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i src = _mm512_mullo_epi32(lane, _mm512_set1_epi32(QE_Q8_BYTES));
    const __m512i dst = _mm512_mullo_epi32(lane, _mm512_set1_epi32(32));
    for (int r = 0; r < 32; r++)
        for (int b = 0; b < nb; b += 16) {
            __mmask16 m = nb - b >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nb - b)) - 1);
            /* 4 bytes at each block start: the f16 scale and two q (in bounds) */
            __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, src,
                                                    w + (size_t)r * wrow + (size_t)b * QE_Q8_BYTES, 1);
            _mm512_mask_i32scatter_ps(dwp + 32 * (size_t)b + r, m, dst,
                                      _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)), 4);
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
    _Alignas(64) qe_amx_tilecfg cfg;
    qe_amx_tiles_q8(&cfg);
    _tile_loadconfig(&cfg);
    /* with more than one activation tile, each 16 weight rows' q are first
     * copied together (512 contiguous bytes per block, after the scales in
     * the scratch): a tile load then reads 8 cache lines, not 16 to 32 lines
     * spread over the rows */
    uint8_t *rp = (uint8_t *)scratch + (size_t)nb * 32 * sizeof(float);
    const int repack = ch->n_tiles > 1 && qe_q8_amx_scratch(a->k) + (size_t)nb * 512 <= QE_MM_SCRATCH;
    int j = j0;
    for (; j + 32 <= j1; j += 32) {
        panel_scales(w + (size_t)j * wrow, wrow, nb, dwp);
        for (int h = 0; h < 2; h++) {
            const uint8_t *wh = w + (size_t)(j + 16 * h) * wrow;
            const uint8_t *wa = wh + 2;
            size_t a_step = QE_Q8_BYTES, a_stride = wrow;
            if (repack) {
                for (int b = 0; b < nb; b++)
                    for (int r = 0; r < 16; r++)
                        memcpy(rp + (size_t)b * 512 + (size_t)r * 32,
                               wh + (size_t)r * wrow + (size_t)b * QE_Q8_BYTES + 2, 32);
                wa = rp, a_step = 512, a_stride = 32;
            }
            for (int t = 0; t < ch->n_tiles; t++) {
                /* one activation tile (a query): each weight byte is used once
                 * here, so the next panel's rows (16 per half) are prefetched
                 * from memory while these compute */
                const uint8_t *pf = ch->n_tiles == 1 && j + 64 <= j1 ? wh + 32 * wrow : NULL;
                amx_one(ch->pack + (size_t)t * ts, wa, a_step, a_stride, nb, dwp + 16 * h,
                        a->y + (size_t)(ch->i0 + t * QE_Q8_TILE) * a->ldy + j + 16 * h, a->ldy,
                        ch->rows - t * QE_Q8_TILE, pf, wrow);
            }
        }
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
