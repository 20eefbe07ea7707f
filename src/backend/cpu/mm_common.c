/* What every matmul variant shares: the column split of a product into
 * tasks and running them on a pool (or alone with a call-scoped scratch).
 * Below the variants and the dispatcher (matmul.c); depends only on the
 * pool (threadpool.c). The folder's matmul files depend one way (each only
 * on files to its left; convert.c, the conversions, is a leaf under all):
 *   cpu_features.c <- threadpool.c <- mm_common.c <- matmul_{scalar,avx2,
 *   avx2_gemm,avx512,amx,onednn}.c <- isa_check.c <- cpu_isa.c <- matmul.c
 *   (the dispatcher) <- peak.c, ops.c, attention.c, forward.c */
#include "matmul_internal.h"

#include <stdlib.h>

void qe_mm_split(int n, int n_tasks, int align, int t, int *j0, int *j1) {
    int tiles = (n + align - 1) / align;
    int a = (int)((long long)tiles * t / n_tasks), b = (int)((long long)tiles * (t + 1) / n_tasks);
    *j0 = a * align < n ? a * align : n;
    *j1 = b * align < n ? b * align : n;
}

int qe_mm_run(qe_threadpool *pool, qe_task_fn fn, void *job, int n_tasks, void **own_scratch) {
    if (pool) {
        qe_threadpool_run(pool, fn, job, n_tasks);
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
    int threads = qe_threadpool_size(a->pool);
    if (threads <= 1) return 1; /* one task: the activations are packed once */
    int tiles = (a->n + align - 1) / align;
    int want = threads * 4;
    return tiles < want ? (tiles > 0 ? tiles : 1) : want;
}

int qe_mm_unit_tasks(qe_threadpool *pool, int units) {
    const int threads = qe_threadpool_size(pool);
    const int n = threads > 1 ? 2 * threads : 1;
    return n < units ? n : units;
}
