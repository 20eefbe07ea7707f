/* A weight tensor as stored: a view into a memory-mapped file, never copied. */
#ifndef QE_TENSOR_H
#define QE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum qe_dtype { QE_F32 = 0, QE_F16 = 1, QE_BF16 = 2 } qe_dtype;

typedef struct qe_tensor {
    const void *data;  /* points into the mapping; row-major */
    qe_dtype dtype;
    int ndim;          /* 1 or 2 */
    int64_t shape[2];  /* [rows, cols] for matrices, [n] for vectors */
    const char *name;  /* owned by the checkpoint */
} qe_tensor;

size_t qe_dtype_size(qe_dtype t);
const char *qe_dtype_name(qe_dtype t);

#endif
