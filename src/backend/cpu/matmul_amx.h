/* Products on weights packed once at load for AMX tiles (matmul_amx.c):
 * the bf16-mode path of the forward pass on bf16 weights when the CPU runs
 * AMX-BF16 (level QE_ISA_AMX). Used by forward.c and the CPU backend's
 * segment loading (backend_cpu.c), tested in tests/kernels and checked at
 * start-up (isa_check.c).
 *
 * Packed layout (what the tile product tdpbf16ps reads as its B operand):
 * the weight's rows (the product's output columns) in panels of 32, each
 * panel the k-blocks of 32 one after another, each k-block two 16-column
 * tiles of 1 KiB: element (pair r, column j, e) = W[32p + 16t + j][32b + 2r + e].
 * Columns past n and k values past k are zero. One panel is one sequential
 * stream of memory, so a query (16 rows) reads each weight once, in order. */
#ifndef QE_MATMUL_AMX_H
#define QE_MATMUL_AMX_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/kernels.h"

typedef struct qe_amx_w {
    int n, k;       /* output columns (weight rows) and depth */
    int kp;         /* k rounded up to 32 */
    int panels;     /* 32-column panels stored (with glu: gate and up panels alternating) */
    int glu;        /* 1: gate and up packed together; the product writes silu(x Wg^T) * (x Wu^T) */
    uint16_t *data; /* panels * kp * 32 bf16, 64-byte aligned, owned */
} qe_amx_w;

/* 1 when this CPU and OS run AMX-BF16 tiles (cpuid, XCR0, and Linux granted
 * the tile state to this process: requested once here). */
int qe_amx_usable(void);

/* Bytes qe_amx_pack allocates for an (n, k) weight (glu: for each of the two). */
size_t qe_amx_packed_bytes(int n, int k);

/* Packs bf16 W (n, k) rows contiguous; with wu != NULL, W = wg and wu (both
 * (n, k)) are packed as one glu weight. Returns 0, or -1 when out of memory
 * or n, k < 1. Plain C: a copy at load, not on the hot path. */
int qe_amx_pack(qe_amx_w *out, const uint16_t *wg, const uint16_t *wu, int n, int k);
void qe_amx_free(qe_amx_w *w);

/* One output of a product: y (m, w->n) with row stride ldy. */
typedef struct qe_amx_out {
    const qe_amx_w *w;
    float *y;
    size_t ldy;
} qe_amx_out;

/* For each i: outs[i].y = x W_i^T (x (m, k) f32 with row stride ldx, rounded
 * to bf16 as qe_f32_to_bf16; every W_i of depth k), or for a glu weight
 * silu(x Wg^T) * (x Wu^T) (the same arithmetic per element as
 * qe_op_swiglu_isa at QE_ISA_AVX512). All outputs in one hand-off to the
 * pool: x is converted once and the columns of every output are split over
 * the pool's threads together. Accumulates in f32. Returns 0, or -1 when it
 * cannot run (no AMX, no memory for a call without pool, k mismatch): then
 * nothing was written. */
int qe_matmul_amx(qe_threadpool *pool, const float *x, size_t ldx, int m, int k, const qe_amx_out *outs,
                  int n_outs);

#endif
