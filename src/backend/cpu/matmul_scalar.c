/* The scalar variant of qe_matmul: both the portable fallback and the
 * reference every SIMD variant is tested against (tests/kernels/, and the
 * start-up check in isa_check.c). */
#include "matmul_internal.h"

#include <string.h>

/* ---- scalar reference ----
 * Accumulates in double: as a reference its own rounding error is then far
 * below the SIMD variants' f32 accumulation error, so a test's tolerance
 * measures the variant, not the reference. In BF16 mode each activation is
 * first rounded to bf16 (RNE), exactly as the SIMD variants do once per call. */
typedef struct scalar_job {
    const qe_mm_args *a;
    int n_tasks;
} scalar_job;

/* bf16 rounding of an activation, as qe_f32_to_bf16 then back (inlined here:
 * the reference runs it for every product term). */
static inline float round_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        u |= 0x00400000u;
    } else {
        u += 0x7fffu + ((u >> 16) & 1u);
    }
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

static inline float bf16_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void scalar_task(void *arg, int task, int thread) {
    const scalar_job *job = arg;
    const qe_mm_args *a = job->a;
    int j0, j1;
    qe_mm_split(a->n, job->n_tasks, 1, task, &j0, &j1);
    const int k = a->k, rnd = a->mode == QE_MM_BF16;
    for (int j = j0; j < j1; j++) {
        size_t wrow = (size_t)j * (size_t)k;
        for (int i = 0; i < a->m; i++) {
            const float *xr = a->x + (size_t)i * a->ldx;
            double acc = 0.0;
            /* dtype switch outside the loop over k */
            switch (a->wt) {
                case QE_BF16: {
                    const uint16_t *w = (const uint16_t *)a->w + wrow;
                    for (int p = 0; p < k; p++)
                        acc += (double)(rnd ? round_bf16(xr[p]) : xr[p]) * (double)bf16_f32(w[p]);
                    break;
                }
                case QE_F16: {
                    const uint16_t *w = (const uint16_t *)a->w + wrow;
                    for (int p = 0; p < k; p++)
                        acc += (double)(rnd ? round_bf16(xr[p]) : xr[p]) * (double)qe_f16_to_f32(w[p]);
                    break;
                }
                case QE_F32: {
                    const float *w = (const float *)a->w + wrow;
                    for (int p = 0; p < k; p++)
                        acc += (double)(rnd ? round_bf16(xr[p]) : xr[p]) * (double)w[p];
                    break;
                }
                default: break; /* never here: qe_matmul sends block types to matmul_q8.c / matmul_kq.c */
            }
            a->y[(size_t)i * a->ldy + (size_t)j] = (float)acc;
        }
    }
}

void qe_matmul_scalar(const qe_mm_args *a) {
    scalar_job job = {a, 1};
    int threads = qe_threadpool_size(a->pool);
    if (threads > 1) job.n_tasks = a->n < threads * 4 ? a->n : threads * 4;
    qe_threadpool_run(a->pool, scalar_task, &job, job.n_tasks);
}
