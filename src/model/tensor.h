/* A weight tensor as stored: a view into a memory-mapped file, never copied. */
#ifndef QE_TENSOR_H
#define QE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

/* QE_Q8_0: ggml's blocks of 32 (f16 scale + 32 int8, 34 bytes) along each
 * row; only for 2-D weights from a GGUF file, products in matmul_q8.c. */
typedef enum qe_dtype { QE_F32 = 0, QE_F16 = 1, QE_BF16 = 2, QE_Q8_0 = 3 } qe_dtype;

typedef struct qe_tensor {
    const void *data; /* points into the mapping; row-major */
    qe_dtype dtype;
    int ndim;         /* 1 or 2 */
    int64_t shape[2]; /* [rows, cols] for matrices, [n] for vectors */
    const char *name; /* owned by the checkpoint */
} qe_tensor;

size_t qe_dtype_size(qe_dtype t); /* bytes per element; 0 for block types (Q8_0) */
/* Bytes of n elements (n a multiple of the block for Q8_0). */
uint64_t qe_dtype_bytes(qe_dtype t, uint64_t n);
const char *qe_dtype_name(qe_dtype t);

#endif
