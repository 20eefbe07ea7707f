/* qe_matmul: dispatch to the variant for the requested instruction set, and
 * the scalar variant, which is both the portable fallback and the reference
 * every SIMD variant is tested against (tests/kernels/). */
#include "kernels.h"
#include "matmul_internal.h"

#include <stdlib.h>
#include <string.h>

void qe_mm_split(int n, int n_tasks, int align, int t, int *j0, int *j1) {
    int tiles = (n + align - 1) / align;
    int a = (int)((long long)tiles * t / n_tasks), b = (int)((long long)tiles * (t + 1) / n_tasks);
    *j0 = a * align < n ? a * align : n;
    *j1 = b * align < n ? b * align : n;
}

int qe_mm_run(qe_pool *pool, qe_task_fn fn, void *job, int n_tasks, void **own_scratch) {
    if (pool) {
        qe_pool_run(pool, fn, job, n_tasks);
        return 0;
    }
    void *mem = NULL;
    if (posix_memalign(&mem, 64, QE_MM_SCRATCH) != 0) return -1;
    *own_scratch = mem;
    fn(job, 0, 0);
    *own_scratch = NULL;
    free(mem);
    return 0;
}

int qe_mm_n_tasks(const qe_mm_args *a, int align) {
    int threads = qe_pool_size(a->pool);
    if (threads <= 1) return 1; /* one task: the activations are packed once */
    int tiles = (a->n + align - 1) / align;
    int want = threads * 4;
    return tiles < want ? (tiles > 0 ? tiles : 1) : want;
}

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
            }
            a->y[(size_t)i * a->ldy + (size_t)j] = (float)acc;
        }
    }
}

void qe_matmul_scalar(const qe_mm_args *a) {
    scalar_job job = {a, 1};
    int threads = qe_pool_size(a->pool);
    if (threads > 1) job.n_tasks = a->n < threads * 4 ? a->n : threads * 4;
    qe_pool_run(a->pool, scalar_task, &job, job.n_tasks);
}

void qe_matmul(qe_pool *pool, qe_isa isa, qe_mm_mode mode, const float *x, size_t ldx, int m,
               int k, const void *w, qe_dtype wt, int n, float *y, size_t ldy) {
    if (m <= 0 || n <= 0) return;
    qe_mm_args a = {pool, mode, x, ldx, m, k, w, wt, n, y, ldy};
    if (k <= 0) { /* empty sum */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) y[(size_t)i * ldy + (size_t)j] = 0.0f;
        return;
    }
    qe_isa hw = qe_cpu_isa_hw();
    if (isa > hw) isa = hw; /* forcing a level the CPU lacks must not fault */
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
    case QE_ISA_AVX2:
        done = qe_matmul_avx2(&a);
        break;
    case QE_ISA_SCALAR:
        break;
    }
    if (done != 0) qe_matmul_scalar(&a);
}
