/* Products on Q4_0, Q5_0, Q4_K, Q5_K and Q6_K weights (matmul_kq.c) and
 * their start-up check (kq_check.c). Internal to the CPU kernels. */
#ifndef QE_MATMUL_KQ_H
#define QE_MATMUL_KQ_H

#include "matmul_internal.h"

typedef enum qe_kq_variant { QE_KQ_SCALAR = 0, QE_KQ_AVX2 = 1, QE_KQ_AVX512 = 2 } qe_kq_variant;
int qe_kq_variant_available(qe_kq_variant v);
/* The best variant allowed at isa level `isa`. */
qe_kq_variant qe_kq_best(qe_isa isa);
/* 1 for the five weight types these products take. */
int qe_kq_dtype(qe_dtype t);
/* y = x W^T on those weights. 0 done; -1 when wt is not one of them, k is
 * not whole blocks, or no scratch memory (the scalar variant needs none and
 * always runs). */
int qe_matmul_kq(const qe_mm_args *a, qe_kq_variant v);

/* Variant v against QE_KQ_SCALAR on random weights of every type (odd m and
 * n, several k-blocks), with and without `pool` (may be NULL): 0 agrees
 * within 1e-5 * sum |x w|, -1 does not, 1 could not check. */
int qe_kq_check(qe_kq_variant v, qe_threadpool *pool);

/* Q4_K and Q6_K with int8 dot products on the blocks (matmul_kq8.c): the
 * activations quantized per 32 values as for Q8_0. QE_KQ8_SCALAR is the
 * reference (exact integer sums, slow: tests and checks only). */
typedef enum qe_kq8_variant { QE_KQ8_SCALAR = 0, QE_KQ8_VNNI = 1, QE_KQ8_AVX2 = 2 } qe_kq8_variant;
int qe_kq8_variant_available(qe_kq8_variant v);
/* The variant to use at level `isa` for weights of type t; QE_KQ8_SCALAR
 * when none beats the dequantized tiles (the caller then uses qe_matmul_kq). */
qe_kq8_variant qe_kq8_best(qe_isa isa, qe_dtype t);
/* 1 for Q4_K and Q6_K. */
int qe_kq8_dtype(qe_dtype t);
/* y = x W^T with int8 activations. 0 done; -1 when wt is not Q4_K/Q6_K, k is
 * not whole 256-blocks, v is not available here, or no memory. */
int qe_matmul_kq8(const qe_mm_args *a, qe_kq8_variant v);
/* Variant v against QE_KQ8_SCALAR (odd m and n, one and three super-blocks,
 * both types), with and without `pool`: 0 agrees within 1e-5 * sum |x w|,
 * -1 does not, 1 could not check. */
int qe_kq8_check(qe_kq8_variant v, qe_threadpool *pool);

#endif
