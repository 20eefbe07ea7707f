/* Q8_0 products on weights packed once at load for AMX-INT8 tiles
 * (matmul_q8p.c): the forward pass's path for Q8_0 matrices at level amx,
 * in every mode (the activations are int8 either way, as in matmul_q8.c).
 * Used by forward.c and the CPU backend's segment loading (backend_cpu.c),
 * tested in tests/kernels (as qe_q8_variant QE_Q8_AMXP) and checked at
 * start-up (isa_check.c).
 *
 * Packed layout: the weight's rows (the product's output columns) in groups
 * of 16; a group is (nb + 1) / 2 records of QE_Q8P_PAIR bytes, record p
 * holding blocks 2p and 2p + 1 (k values [64p, 64p + 64)):
 *   bytes [0, 512)       block 2p's q, row r at 32 r (a tile's A operand:
 *                        16 rows x 32 bytes, contiguous),
 *   bytes [512, 1024)    block 2p + 1's q, likewise,
 *   bytes [1024, 1056)   block 2p's 16 f16 scales d (row r at 2 r),
 *   bytes [1056, 1088)   block 2p + 1's.
 * Rows past n and a last odd block are zero. The same bytes as stored (34
 * per 32 values) when nb is even and n a multiple of 16, every record 17
 * cache lines, 64-byte aligned: a group is one sequential stream, so a
 * query (16 activation rows) reads each weight once, in order. */
#ifndef QE_MATMUL_Q8P_H
#define QE_MATMUL_Q8P_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/kernels.h"

#define QE_Q8P_PAIR 1088 /* bytes per record (two blocks of 16 rows) */

typedef struct qe_q8p_w {
    int n, k;       /* output columns (weight rows) and depth (a multiple of 32) */
    int groups;     /* 16-row groups stored (glu: gate and up groups alternating) */
    int glu;        /* 1: gate and up packed together; the product writes silu(x Wg^T) * (x Wu^T) */
    size_t gstride; /* bytes per group */
    uint8_t *data;  /* groups * gstride bytes, 64-byte aligned, owned */
} qe_q8p_w;

/* 1 when this CPU and OS run the packed product (AMX-INT8 tiles granted,
 * AVX512-VNNI: the level at which qe_q8_best picks QE_Q8_AMX). */
int qe_q8p_usable(void);

/* Bytes qe_q8p_pack allocates for a Q8_0 weight (n, k) (glu: for each of
 * the two); 0 when k is not a multiple of 32 or n, k < 1. */
size_t qe_q8p_packed_bytes(int n, int k);

/* Packs Q8_0 W (n rows of k/32 blocks, as stored in a GGUF) into out; with
 * wu != NULL, wg and wu (both (n, k)) as one glu weight. Returns 0, or -1
 * when out of memory or the sizes are not a Q8_0 matrix's. A copy at load,
 * not on the hot path. */
int qe_q8p_pack(qe_q8p_w *out, const uint8_t *wg, const uint8_t *wu, int n, int k);
void qe_q8p_free(qe_q8p_w *w);

/* One output of a product: y (m, w->n) with row stride ldy. */
typedef struct qe_q8p_out {
    const qe_q8p_w *w;
    float *y;
    size_t ldy;
} qe_q8p_out;

/* For each i: outs[i].y = x W_i^T with the activations quantized per block
 * of 32 exactly as matmul_q8.c does (the same integer sums, each scaled by
 * d_w * d_x into f32), or for a glu weight silu(x Wg^T) * (x Wu^T) (per
 * element the arithmetic of qe_op_swiglu_isa at QE_ISA_AVX512). All outputs
 * in one hand-off: x is quantized once, the column groups of every output
 * are split over the pool's threads together. Returns 0, or -1 when it
 * cannot run (not usable, k mismatch, more than 8 outputs, no memory for a
 * call without pool): then nothing was written. */
int qe_matmul_q8p(qe_threadpool *pool, const float *x, size_t ldx, int m, int k, const qe_q8p_out *outs,
                  int n_outs);

#endif
