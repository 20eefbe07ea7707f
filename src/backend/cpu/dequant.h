/* Dequantization of ggml's block types (Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K)
 * to f32, bit for bit what ggml's reference dequantize_row_* gives (the
 * test tests/kernels/test_dequant.c holds it to fixture data made by ggml).
 * Used by the embedding lookup, the K-quant products (matmul_kq.c) and
 * qe_tensor_get_f32. */
#ifndef QE_DEQUANT_H
#define QE_DEQUANT_H

#include <stddef.h>

#include "model/tensor.h"

/* Largest block of any type (elements). */
#define QE_MAX_BLOCK 256

/* Dequantizes `nblocks` whole blocks of type t starting at src into dst
 * (nblocks * qe_dtype_block(t) floats). t must be a block type. */
void qe_dequant_blocks(qe_dtype t, const void *src, float *dst, size_t nblocks);

/* One row of n elements (n a multiple of the block) of any dtype, widened to
 * f32 (plain types converted; block types dequantized). */
void qe_dequant_row(qe_dtype t, const void *src, float *dst, size_t n);

#endif
