/* The AMX tile configuration (palette 1): the 64-byte block LDTILECFG reads,
 * which every tile kernel loads before its first tile instruction. One
 * definition for the tile kernels (matmul_amx.c, matmul_q8_amx.c,
 * matmul_q8p.c, attention_amx.c) and the peak bench (peak.c); each loads it
 * itself with _tile_loadconfig, inside its own target attribute. */
#ifndef QE_AMX_TILES_H
#define QE_AMX_TILES_H

#include <stdint.h>
#include <string.h>

typedef struct qe_amx_tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16]; /* bytes per row of tile t */
    uint8_t rows[16];   /* rows of tile t */
} qe_amx_tilecfg;
_Static_assert(sizeof(qe_amx_tilecfg) == 64, "LDTILECFG reads 64 bytes");

/* cfg = palette 1, every tile unused. */
static inline void qe_amx_tilecfg_init(qe_amx_tilecfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->palette = 1;
}

/* Tiles [t0, t1) of cfg: rows x colsb bytes each. */
static inline void qe_amx_tiles_set(qe_amx_tilecfg *cfg, int t0, int t1, int rows, int colsb) {
    for (int t = t0; t < t1; t++) {
        cfg->rows[t] = (uint8_t)rows;
        cfg->colsb[t] = (uint16_t)colsb;
    }
}

/* The int8 products' configuration (matmul_q8_amx.c, matmul_q8p.c): tiles
 * 0-1 A = 16 weight rows x 32 bytes (one Q8_0 block), 2-3 B = 8 groups x 16
 * activation rows x 4 bytes, 4-7 C = 16 x 16 int32. */
static inline void qe_amx_tiles_q8(qe_amx_tilecfg *cfg) {
    qe_amx_tilecfg_init(cfg);
    qe_amx_tiles_set(cfg, 0, 2, 16, 32);
    qe_amx_tiles_set(cfg, 2, 4, 8, 64);
    qe_amx_tiles_set(cfg, 4, 8, 16, 64);
}

/* The int8 products' tile rotation (matmul_q8_amx.c, matmul_q8p.c, in the
 * configuration above): QE_AMX_Q8_ISSUE(b, A_AT, a_stride, pk, cb) issues
 * Q8_0 block b's product, A = 16 weight rows x 32 bytes at A_AT(b) (A_AT: the
 * caller's function-like macro, the one thing the two kernels lay out
 * differently) with rows a_stride bytes apart, B = block b of the packed
 * activation tile pk (QE_Q8_REC bytes a block, 64-byte rows), and stores the
 * int32 C (16 x 16) in cb[b & 3]. A and B alternate between two registers
 * (even and odd blocks) and C rotates over four, so that a block's loads and
 * product never wait for the previous block's tiles (tile registers are not
 * renamed): issued up to two blocks ahead of the code reading cb. Macros,
 * not functions: tile register numbers must be literals. Expand only inside
 * a function compiled for amx-tile and amx-int8 (immintrin.h included). */
#define QE_AMX_Q8_ONE(b, A_AT, a_stride, pk, cb, ta, tb, tc) \
    do {                                                     \
        _tile_zero(tc);                                      \
        _tile_loadd(ta, A_AT(b), (long)(a_stride));          \
        _tile_loadd(tb, (pk) + (size_t)(b)*QE_Q8_REC, 64);   \
        _tile_dpbssd(tc, ta, tb);                            \
        _tile_stored(tc, (cb)[(b)&3], 64);                   \
    } while (0)
#define QE_AMX_Q8_ISSUE(b, A_AT, a_stride, pk, cb)                             \
    do {                                                                       \
        switch ((b)&3) {                                                       \
            case 0: QE_AMX_Q8_ONE(b, A_AT, a_stride, pk, cb, 0, 2, 4); break;  \
            case 1: QE_AMX_Q8_ONE(b, A_AT, a_stride, pk, cb, 1, 3, 5); break;  \
            case 2: QE_AMX_Q8_ONE(b, A_AT, a_stride, pk, cb, 0, 2, 6); break;  \
            default: QE_AMX_Q8_ONE(b, A_AT, a_stride, pk, cb, 1, 3, 7); break; \
        }                                                                      \
    } while (0)

#endif
