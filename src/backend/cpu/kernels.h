/* CPU kernels: the matrix product that dominates the forward pass, chosen
 * once at start-up from cpuid, and the persistent thread pool that runs it.
 * The scalar variant is the reference every other variant is tested against. */
#ifndef QE_KERNELS_H
#define QE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "model/tensor.h"

/* ---- thread pool: created once per context, no thread creation per op ---- */
typedef struct qe_threadpool qe_threadpool;

/* n_threads <= 0: every online core. NULL on failure. */
qe_threadpool *qe_threadpool_create(int n_threads);
void qe_threadpool_free(qe_threadpool *pool);
int qe_threadpool_size(const qe_threadpool *pool);
/* Bytes the pool allocated for its threads' packing blocks (and its Q8
 * activation block, when reserved). */
size_t qe_threadpool_scratch_bytes(const qe_threadpool *pool);
/* Gives the pool a Q8 activation block of at least `bytes` (matmul_internal.h;
 * 0 reserves nothing). Call before any product runs on the pool, never while
 * one runs. 0 done, -1 out of memory (the pool keeps what it had). */
int qe_threadpool_reserve_q8(qe_threadpool *pool, size_t bytes);
/* The Q8 activation block that products on weights `w` need for batches of
 * up to max_rows rows in the given mode (exact: Q4_K/Q6_K products run on
 * dequantized tiles and pack nothing): 0 when no bound matrix is Q8_0 (or, in
 * bf16 mode, Q4_K/Q6_K). */
struct qe_weights;
size_t qe_q8_block_bytes_for(const struct qe_weights *w, int max_rows, int exact);

/* Runs fn(arg, task, thread) for task in [0, n_tasks) on the pool's threads
 * (the caller's thread included) and returns when all are done. */
typedef void (*qe_task_fn)(void *arg, int task, int thread);
void qe_threadpool_run(qe_threadpool *pool, qe_task_fn fn, void *arg, int n_tasks);

/* ---- instruction-set levels ---- */
typedef enum qe_isa {
    QE_ISA_SCALAR = 0,
    QE_ISA_AVX2 = 1,        /* AVX2 + FMA + F16C */
    QE_ISA_AVX512 = 2,      /* AVX-512 F/BW/VL */
    QE_ISA_AVX512_BF16 = 3, /* + AVX512_BF16 (vdpbf16ps; bf16-mode products of 128+ rows on
                             * bf16 weights through oneDNN held below AMX, when loadable) */
    QE_ISA_AMX = 4          /* + AMX-BF16 tiles, through oneDNN (libdnnl.so.2 loaded at run
                             * time, matmul_onednn.c) for bf16-mode products on bf16
                             * weights; everything else runs the avx512bf16 level */
} qe_isa;

/* Best level this CPU (and OS: XCR0) supports and whose products pass a
 * check against the scalar reference at first use, capped by the environment
 * variable QEMBED_ISA=scalar|avx2|avx512|avx512bf16|amx when set (a cap never
 * raises the level; an unknown value is ignored). Detected once. */
qe_isa qe_cpu_isa(void);
const char *qe_isa_name(qe_isa isa);
/* "" normally; otherwise why a level the CPU offers is not used (its
 * products failed the run-time check against the scalar reference). */
const char *qe_cpu_isa_note(void);

/* Matrix-product modes. EXACT keeps activations in f32 (weights widened to
 * f32); BF16 rounds activations to bf16 to use the bf16 dot-product units. */
typedef enum qe_mm_mode { QE_MM_EXACT = 0, QE_MM_BF16 = 1 } qe_mm_mode;

/* y[m][n] = sum_k x[m][k] * W[n][k]   (y = x W^T, as torch Linear)
 *   x: (m, k) f32, row stride ldx
 *   W: (n, k) in `wt` (bf16/f16/f32), rows contiguous
 *   y: (m, n) f32, row stride ldy
 * `isa` picks the variant (qe_cpu_isa() normally; tests force each one); a
 * level above what the CPU supports is lowered to it, never faults.
 * Threads split the work over `pool` by output columns (may be NULL: the
 * calling thread, and then a 256 KiB packing block is malloc'ed per call;
 * with a pool, each thread's block is allocated once at qe_threadpool_create, so
 * the hot path allocates nothing).
 * Not in place: y must not overlap x or W. k == 0 gives y = 0. */
void qe_matmul(qe_threadpool *pool, qe_isa isa, qe_mm_mode mode, const float *x, size_t ldx, int m, int k,
               const void *w, qe_dtype wt, int n, float *y, size_t ldy);

/* Conversions used around the products. */
float qe_bf16_to_f32(uint16_t h);
uint16_t qe_f32_to_bf16(float f); /* round to nearest even, NaN kept */
float qe_f16_to_f32(uint16_t h);
uint16_t qe_f32_to_f16(float f);

/* Reads element i of a weight vector in any dtype as f32 (norm weights). */
float qe_tensor_get_f32(const void *data, qe_dtype dt, size_t i);

#endif
