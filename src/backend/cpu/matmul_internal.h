/* Internal to the CPU kernels (threadpool.c, cpu_*.c, mm_common.c, matmul*.c,
 * isa_check.c, peak.c; their dependency order is in mm_common.c):
 * the per-variant entry points and the packing helpers they share. Not for
 * the forward pass: it calls qe_matmul() in kernels.h. */
#ifndef QE_MATMUL_INTERNAL_H
#define QE_MATMUL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

/* Highest of scalar..avx512bf16 that the CPU and OS offer (cpuid, XCR0),
 * and in *amx (may be NULL) whether AMX-BF16 tiles are usable too; no
 * self-check, no cap (cpu_features.c, the bottom of the folder's order). */
qe_isa qe_cpu_features(int *amx);
/* What the hardware supports, ignoring the QEMBED_ISA cap: qe_matmul clamps a
 * requested variant to this so that forcing one can never fault. */
qe_isa qe_cpu_isa_hw(void);
/* "scalar", "avx2", "avx512", "avx512bf16" -> level; 0 on success, -1 unknown. */
int qe_isa_parse(const char *s, qe_isa *out);

/* Blocking shared by the SIMD variants: a task packs an (MC x KC) block of
 * activations into its thread's scratch and multiplies it by every tile of
 * its weight rows; KC is a multiple of every variant's k step (16 and 32).
 * The AVX-512 variants use k-blocks of 2*KC (larger L2 on those cores). */
#define QE_MM_MC 64
#define QE_MM_KC 512

/* Per-thread scratch of a pool, for packed activation blocks: QE_MM_SCRATCH
 * bytes, 64-byte aligned, allocated when the pool is created (so the hot path
 * allocates nothing). thread in [0, qe_threadpool_size). NULL for a NULL pool. */
#define QE_MM_SCRATCH ((size_t)QE_MM_MC * 1024 * sizeof(float) + 4096)
void *qe_threadpool_thread_scratch(qe_threadpool *pool, int thread);
/* Per-pool block for the oneDNN variant's bf16 copy of a chunk of activation
 * rows: QE_MM_CONV bytes, 64-byte aligned, allocated with the pool when the
 * CPU has AMX tiles or AVX512-BF16 (counted in qe_threadpool_scratch_bytes),
 * else NULL. */
#define QE_MM_CONV ((size_t)4 << 20)
void *qe_threadpool_conv_block(qe_threadpool *pool);
/* Per-pool block for the int8 products' quantized activations (one chunk of
 * rows, packed as matmul_q8.h describes, written once per product and read by
 * every thread), 64-byte aligned. A chunk is at most QE_MM_Q8ACT bytes: 1 MiB
 * keeps it in a core's L2 while every column panel streams over it. The pool
 * has a block only when its context reserved one (qe_threadpool_reserve_q8,
 * sized by qe_q8_block_bytes_for from the model's shapes; counted in
 * qe_threadpool_scratch_bytes): a model without Q8_0/K-quant weights has
 * none. qe_threadpool_q8_block returns it when it holds `bytes`, else NULL
 * (no pool, none reserved, or too small: the product then allocates a block
 * for the call). */
#define QE_MM_Q8ACT ((size_t)1 << 20)
void *qe_threadpool_q8_block(qe_threadpool *pool, size_t bytes);
/* Bytes of the first chunk of a product with reduction length k (a multiple
 * of 32) over `rows` activation rows: whole 16-row tiles, at most
 * QE_MM_Q8ACT. 0 for k not a multiple of 32. */
size_t qe_q8_block_bytes(int k, int rows);

/* One product, as handed to a variant. */
typedef struct qe_mm_args {
    qe_threadpool *pool;
    qe_mm_mode mode;
    const float *x; /* (m, k), row stride ldx */
    size_t ldx;
    int m, k;
    const void *w; /* (n, k) rows contiguous */
    qe_dtype wt;
    int n;
    float *y; /* (m, n), row stride ldy */
    size_t ldy;
} qe_mm_args;

/* Column split: task t of n_tasks covers weight rows [*j0, *j1), boundaries
 * multiples of `align` (the variant's tile width) except the last. */
void qe_mm_split(int n, int n_tasks, int align, int t, int *j0, int *j1);
/* Number of column tasks for a pool: a few per thread so that a thread slowed
 * by another process on this shared machine does not hold the others up. */
int qe_mm_n_tasks(const qe_mm_args *a, int align);
/* Number of tasks for the packed products (matmul_amx.c, matmul_q8p.c),
 * whose work is `units` (panel pairs, column groups) over every output of a
 * call: two per thread of the pool, so that one thread slowed by another
 * process does not hold the call, at most one per unit; 1 for a pool of one
 * thread (or none). Task t covers units qe_mm_split(units, n_tasks, 1, t). */
int qe_mm_unit_tasks(qe_threadpool *pool, int units);
/* Runs fn(job, t, thread) for t in [0, n_tasks) on `pool`, whose threads each
 * have a planned scratch block. Without a pool it runs task 0 alone on this
 * thread with a QE_MM_SCRATCH block allocated for the call, stored in
 * *own_scratch while it runs (pass a pool to keep allocation out of the hot
 * path). Returns 0, or -1 when that block cannot be allocated. */
int qe_mm_run(qe_threadpool *pool, qe_task_fn fn, void *job, int n_tasks, void **own_scratch);

/* The variants. Each returns 0 when done, -1 when it could not run (no
 * scratch memory, or not compiled for this target): the caller then uses the
 * scalar variant, which needs no memory. */
void qe_matmul_scalar(const qe_mm_args *a);
int qe_matmul_avx2(const qe_mm_args *a);
/* AVX2 in the broadcast (packed-weights) form, used by qe_matmul_avx2 from
 * AVX2_GEMM_MIN_M activation rows on (matmul_avx2.c, matmul_avx2_gemm.c). */
int qe_matmul_avx2_gemm(const qe_mm_args *a);
int qe_matmul_avx512(const qe_mm_args *a);
int qe_matmul_avx512bf16(const qe_mm_args *a);
/* BF16 mode on bf16 weights through oneDNN (matmul_onednn.c); -1 for other
 * modes and dtypes or when libdnnl.so.2 cannot be loaded. */
int qe_matmul_onednn(const qe_mm_args *a);
/* Q8_0 weights (matmul_q8.c): the int8 dot-product variants. */
/* QE_Q8_AMXP: the AMX-INT8 product on weights packed at load (matmul_q8p.c),
 * which qe_matmul_q8 runs by packing W for the call (for tests and the
 * self-check; qe_q8_best never picks it) */
typedef enum qe_q8_variant {
    QE_Q8_SCALAR = 0,
    QE_Q8_AVX2 = 1,
    QE_Q8_VNNI = 2,
    QE_Q8_AMX = 3,
    QE_Q8_AMXP = 4
} qe_q8_variant;
#define QE_Q8_N_VARIANTS 5
int qe_q8_variant_available(qe_q8_variant v);
/* The best variant allowed at isa level `isa` (VNNI needs AVX-512 and VNNI;
 * AMX-INT8 tiles the level QE_ISA_AMX). */
qe_q8_variant qe_q8_best(qe_isa isa);
/* 0 done; -1 when not Q8_0 or k is not a multiple of 32, or no scratch. */
int qe_matmul_q8(const qe_mm_args *a, qe_q8_variant v);

/* Rows of x (row stride ldx) to bf16 as qe_f32_to_bf16 rounds, into dst
 * with row stride ldd >= k (elements), zeros from k to ldd. AVX-512F/BW:
 * only for the AMX levels (matmul_amx.c, used by matmul_onednn.c too). */
void qe_mm_to_bf16_rows(const float *x, size_t ldx, int rows, int k, uint16_t *dst, size_t ldd);

/* 1 when libdnnl.so.2 loads and has what qe_matmul_onednn calls. */
int qe_onednn_available(void);
/* 1 when it is available and cannot run AMX tiles (a CPU without them, or
 * capped because QEMBED_ISA is below amx): what level avx512bf16 needs to
 * route products to it (matmul.c). */
int qe_onednn_without_amx(void);
/* Products qe_matmul_onednn has completed in this process (for the tests:
 * which route a product took). */
unsigned long qe_onednn_calls(void);

#endif
