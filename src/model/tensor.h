/* A weight tensor as stored: a view into a memory-mapped file, never copied. */
#ifndef QE_TENSOR_H
#define QE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

/* Block types: ggml's layouts, rows of whole blocks, only for 2-D weights
 * from a GGUF file.
 * QE_Q8_0: blocks of 32 (f16 scale + 32 int8, 34 bytes), products in matmul_q8.c.
 * QE_Q4_0, QE_Q5_0 (32 per block: 18, 22 bytes) and the K-quants QE_Q4_K,
 * QE_Q5_K, QE_Q6_K (256 per block: 144, 176, 210 bytes): layouts and
 * dequantization in backend/cpu/dequant.c, products in matmul_kq.c. */
typedef enum qe_dtype {
    QE_F32 = 0,
    QE_F16 = 1,
    QE_BF16 = 2,
    QE_Q8_0 = 3,
    QE_Q4_0 = 4,
    QE_Q5_0 = 5,
    QE_Q4_K = 6,
    QE_Q5_K = 7,
    QE_Q6_K = 8
} qe_dtype;

typedef struct qe_tensor {
    const void *data; /* points into the mapping; row-major */
    qe_dtype dtype;
    int ndim;         /* 1 or 2 */
    int64_t shape[2]; /* [rows, cols] for matrices, [n] for vectors */
    const char *name; /* owned by the checkpoint */
} qe_tensor;

size_t qe_dtype_size(qe_dtype t); /* bytes per element; 0 for block types */
/* Elements per block (1 for F32/F16/BF16) and bytes per block. */
unsigned qe_dtype_block(qe_dtype t);
unsigned qe_dtype_block_bytes(qe_dtype t);
/* Bytes of n elements (n a multiple of the block for block types). */
uint64_t qe_dtype_bytes(qe_dtype t, uint64_t n);
const char *qe_dtype_name(qe_dtype t);

#endif
