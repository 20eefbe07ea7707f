#include "model/tensor.h"

size_t qe_dtype_size(qe_dtype t) {
    switch (t) {
    case QE_F32: return 4;
    case QE_F16: return 2;
    case QE_BF16: return 2;
    }
    return 0;
}

/* The safetensors spelling, which is also what error messages show. */
const char *qe_dtype_name(qe_dtype t) {
    switch (t) {
    case QE_F32: return "F32";
    case QE_F16: return "F16";
    case QE_BF16: return "BF16";
    }
    return "?";
}
