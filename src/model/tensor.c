#include "model/tensor.h"

size_t qe_dtype_size(qe_dtype t) {
    switch (t) {
        case QE_F32: return 4;
        case QE_F16: return 2;
        case QE_BF16: return 2;
        default: return 0; /* block types */
    }
}

unsigned qe_dtype_block(qe_dtype t) {
    switch (t) {
        case QE_Q8_0:
        case QE_Q4_0:
        case QE_Q5_0: return 32;
        case QE_Q4_K:
        case QE_Q5_K:
        case QE_Q6_K: return 256;
        default: return 1;
    }
}

unsigned qe_dtype_block_bytes(qe_dtype t) {
    switch (t) {
        case QE_Q8_0: return 34;
        case QE_Q4_0: return 18;
        case QE_Q5_0: return 22;
        case QE_Q4_K: return 144;
        case QE_Q5_K: return 176;
        case QE_Q6_K: return 210;
        default: return (unsigned)qe_dtype_size(t);
    }
}

uint64_t qe_dtype_bytes(qe_dtype t, uint64_t n) {
    return n / qe_dtype_block(t) * qe_dtype_block_bytes(t);
}

/* The safetensors spelling, which is also what error messages show. */
const char *qe_dtype_name(qe_dtype t) {
    switch (t) {
        case QE_F32: return "F32";
        case QE_F16: return "F16";
        case QE_BF16: return "BF16";
        case QE_Q8_0: return "Q8_0";
        case QE_Q4_0: return "Q4_0";
        case QE_Q5_0: return "Q5_0";
        case QE_Q4_K: return "Q4_K";
        case QE_Q5_K: return "Q5_K";
        case QE_Q6_K: return "Q6_K";
    }
    return "?";
}
