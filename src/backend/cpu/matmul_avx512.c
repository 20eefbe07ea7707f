/* avx512 variant of qe_matmul: not written yet; the dispatcher falls back. */
#include "matmul_internal.h"

int qe_matmul_avx512(const qe_mm_args *a) {
    (void)a;
    return -1;
}
