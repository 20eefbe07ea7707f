/* qe_matmul: dispatch to the variant for the requested instruction set (the
 * top of the folder's dependency order, see mm_common.c): a variant that
 * declines (mode, dtype, no memory, no library) hands over to the next lower
 * one, down to the scalar reference (matmul_scalar.c). */
#include "kernels.h"
#include "matmul_internal.h"
#include "matmul_kq.h"

void qe_matmul(qe_threadpool *pool, qe_isa isa, qe_mm_mode mode, const float *x, size_t ldx, int m, int k,
               const void *w, qe_dtype wt, int n, float *y, size_t ldy) {
    if (m <= 0 || n <= 0) return;
    qe_mm_args a = {pool, mode, x, ldx, m, k, w, wt, n, y, ldy};
    if (k <= 0) { /* empty sum */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) y[(size_t)i * ldy + (size_t)j] = 0.0f;
        return;
    }
    qe_isa hw = qe_cpu_isa_hw();
    if (isa > hw) isa = hw; /* forcing a level the CPU lacks must not fault */
    if (wt == QE_Q8_0) {    /* int8 blocks: their own kernels (matmul_q8.c) */
        if (qe_matmul_q8(&a, qe_q8_best(isa)) != 0) qe_matmul_q8(&a, QE_Q8_SCALAR);
        return;
    }
    if (qe_kq_dtype(wt)) { /* 4-6 bit blocks: dequantized tiles (matmul_kq.c) */
        /* Q4_K/Q6_K outside exact mode: int8 products on the blocks (matmul_kq8.c) */
        qe_kq8_variant v8 = qe_kq8_best(isa, wt);
        if (mode != QE_MM_EXACT && v8 != QE_KQ8_SCALAR && qe_kq8_dtype(wt) && qe_matmul_kq8(&a, v8) == 0)
            return;
        if (qe_matmul_kq(&a, qe_kq_best(isa)) != 0) qe_matmul_kq(&a, QE_KQ_SCALAR);
        return;
    }
    int done = -1;
    switch (isa) {
        case QE_ISA_AMX:
            done = qe_matmul_onednn(&a);
            if (done == 0) break;
            /* fall through */
        case QE_ISA_AVX512_BF16:
            done = qe_matmul_avx512bf16(&a);
            if (done == 0) break;
            /* fall through */
        case QE_ISA_AVX512:
            done = qe_matmul_avx512(&a);
            if (done == 0) break;
            /* fall through */
        case QE_ISA_AVX2: done = qe_matmul_avx2(&a); break;
        case QE_ISA_SCALAR: break;
    }
    if (done != 0) qe_matmul_scalar(&a);
}
