/* qe_matmul: dispatch to the variant for the requested instruction set (the
 * top of the folder's dependency order, see mm_common.c): a variant that
 * declines (mode, dtype, no memory, no library) hands over to the next lower
 * one, down to the scalar reference (matmul_scalar.c). Within a level the
 * variant may depend on the shape (rows) where measurements say so. */
#include "kernels.h"
#include "matmul_internal.h"
#include "matmul_kq.h"

/* Level avx512bf16 hands bf16-mode products on bf16 weights of at least this
 * many rows to oneDNN (matmul_onednn.c, capped below AMX): measured on the
 * 0.6B shapes, alternating, with oneDNN held to avx512_core_bf16, its route
 * ran 1.06-1.13x qembed's vdpbf16ps kernel at 128 rows and 1.19-1.20x at
 * 512, 1.02-1.11x at 32-64 and 0.59-0.98x at 16 (Emerald Rapids, 2 threads,
 * bench/results/onednn-avx512bf16-emr-2026-12-06.md); the Zen 4
 * figures agree (oneDNN as stored 431-444 GFLOP/s against 375-385 at
 * 128-512 rows). Queries (16 rows) stay on qembed's kernel; 128 and not 32
 * because at 32-64 rows the gain was within a busy machine's noise and the
 * Zen 4 figures do not cover them. */
#define QE_ONEDNN_ZMM_MIN_M 128

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
            /* oneDNN's zmm kernels from QE_ONEDNN_ZMM_MIN_M rows, where no
             * AMX can run (qe_onednn_without_amx: level amx got here only
             * after oneDNN declined) */
            if (isa == QE_ISA_AVX512_BF16 && m >= QE_ONEDNN_ZMM_MIN_M && qe_onednn_without_amx())
                done = qe_matmul_onednn(&a);
            if (done == 0) break;
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
