/* Run-time check of a SIMD level's matrix products against the scalar
 * reference (isa_check.c); used once by cpu_isa.c before a level is used. */
#ifndef QE_ISA_CHECK_H
#define QE_ISA_CHECK_H

#include "matmul_internal.h"

/* 0: the products of `isa` agree with the scalar reference; -1: they do not
 * (never use this level); 1: could not check (out of memory). */
int qe_isa_check(qe_isa isa);

/* The same for one variant entry point (what qe_isa_check runs per level;
 * the tests hand it a deliberately wrong one). A variant returning nonzero
 * (not applicable to a dtype/mode) passes that case. */
typedef int (*qe_mm_variant)(const qe_mm_args *a);
int qe_mm_variant_check(qe_mm_variant variant);

/* The same for a Q8_0 variant (matmul_q8.c) on random Q8_0 weights, odd
 * sizes with k a multiple of 32, with and without a pool (pool may be NULL):
 * 0 agrees with QE_Q8_SCALAR, -1 does not, 1 could not check. */
int qe_q8_check(qe_q8_variant v, qe_threadpool *pool);

#endif
