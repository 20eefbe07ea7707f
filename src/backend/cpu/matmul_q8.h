/* Internal to the Q8_0 products (matmul_q8.c and its SIMD kernels
 * matmul_q8_avx2.c, matmul_q8_vnni.c): the packed form of the quantized
 * activations and the kernels' entry points.
 *
 * A product quantizes its activations once (matmul_q8.c, shared by every
 * thread) into chunks of whole 16-row tiles. Tile t of a chunk, block b (k
 * values [32b, 32b+32)) is one record of QE_Q8_REC bytes at
 * (t * nb + b) * QE_Q8_REC:
 *   bytes [0, 512)    q: 8 groups g of 64 bytes; group g holds rows 0..15 of
 *                     the tile, each row's 4 int8 values k = 32b + 4g .. +3
 *                     (rows in vector lanes, as vpdpbusd / vpmaddwd sum 4 or 2
 *                     adjacent bytes into one 32-bit lane);
 *   bytes [512, 576)  d: 16 f32 scales (row r's max|x| / 127);
 *   bytes [576, 640)  s: 16 int32, -128 * (sum of row r's 32 q), the
 *                     correction for the VNNI kernel's +128 offset.
 * Rows past the product's m are zero (q, d and s), so a kernel may compute
 * them and not store them. */
#ifndef QE_MATMUL_Q8_H
#define QE_MATMUL_Q8_H

#include "matmul_internal.h"

#define QE_Q8_BLOCK 32  /* values per Q8_0 block */
#define QE_Q8_BYTES 34  /* bytes per stored block: f16 scale + 32 int8 */
#define QE_Q8_TILE 16   /* activation rows per packed tile */
#define QE_Q8_REC 640   /* bytes per (tile, block) record */
#define QE_Q8_OFF_D 512 /* offset of the 16 f32 scales in a record */
#define QE_Q8_OFF_S 576 /* offset of the 16 int32 corrections */

/* One chunk's work for a kernel: packed tiles [0, n_tiles) of the chunk at
 * `pack` (rows i0 .. i0 + rows - 1 of the product), times weight rows
 * [j0, j1) of a->w, written to y rows i0.., columns j0..j1-1. */
typedef struct qe_q8_chunk {
    const qe_mm_args *a;
    const uint8_t *pack;
    int i0, rows, n_tiles;
} qe_q8_chunk;

/* The kernels: each multiplies a chunk by the weight rows [j0, j1). */
void qe_q8_kernel_avx2(const qe_q8_chunk *c, int j0, int j1);
void qe_q8_kernel_vnni(const qe_q8_chunk *c, int j0, int j1);
/* AMX-INT8 (matmul_q8_amx.c): 1 when the CPU has the tiles and Linux
 * granted them; the kernel needs qe_q8_amx_scratch(k) bytes of `scratch`
 * (the panel's weight scales) and hands column tails to the VNNI kernel. */
int qe_q8_amx_available(void);
size_t qe_q8_amx_scratch(int k);
void qe_q8_kernel_amx(const qe_q8_chunk *c, int j0, int j1, void *scratch);
/* Quantizes and packs activation rows into tile t's records (blocks
 * [b0, b1)) with AVX2; the same values as the scalar quantizer. */
void qe_q8_pack_avx2(const qe_mm_args *a, int i0, int rows, uint8_t *pack, int t, int b0, int b1);

#endif
