#include "model/tensor.h"

size_t qe_dtype_size(qe_dtype t) {
    switch (t) {
        case QE_F32: return 4;
        case QE_F16: return 2;
        case QE_BF16: return 2;
        case QE_Q8_0: return 0;
    }
    return 0;
}

uint64_t qe_dtype_bytes(qe_dtype t, uint64_t n) {
    return t == QE_Q8_0 ? n / 32 * 34 : n * qe_dtype_size(t);
}

/* The safetensors spelling, which is also what error messages show. */
const char *qe_dtype_name(qe_dtype t) {
    switch (t) {
        case QE_F32: return "F32";
        case QE_F16: return "F16";
        case QE_BF16: return "BF16";
        case QE_Q8_0: return "Q8_0";
    }
    return "?";
}
