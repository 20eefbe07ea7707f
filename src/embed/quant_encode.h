/* Encoders for ggml's Q4_0, Q5_0, Q4_K, Q5_K and Q6_K blocks (the writer's
 * `qembed quantize --type q4_k_m` and friends; quant_encode.c). */
#ifndef QE_QUANT_ENCODE_H
#define QE_QUANT_ENCODE_H

#include <stddef.h>

#include "model/tensor.h"

/* Encodes x[0..n) as n / qe_dtype_block(t) blocks of type t into dst
 * (qe_dtype_bytes(t, n) bytes). 0 on success; -1 when t is not one of the
 * five or n is not a multiple of its block. */
int qe_quant_row(qe_dtype t, const float *x, void *dst, size_t n);

#endif
