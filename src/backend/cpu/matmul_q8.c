/* Products on Q8_0 weights as stored (llama.cpp's layout: each row of k
 * values is k/32 blocks of an f16 scale d and 32 int8 q, value = d * q).
 * The activations are quantized the same way on the fly, per block of 32
 * (scale max|x|/127 kept in f32), and each block pair is one int8 dot product
 * scaled by d_w * d_x, accumulated in f32:
 *   scalar  the reference (per row and column: integer dot, double
 *           accumulation; quantizes its rows per task),
 *   avx2    register tiles of 16 activation rows x 2 weight rows,
 *           vpmaddubsw + vpmaddwd on |w| and sign(x, w) (matmul_q8_avx2.c),
 *   vnni    register tiles of 16 or 32 activation rows x 8 or 4 weight
 *           rows, vpdpbusd on w + 128 and x with a per-block correction
 *           (matmul_q8_vnni.c).
 * The SIMD variants share this file's driver: each chunk of activation rows is
 * quantized once per product, in parallel, into the pool's Q8 block (packed
 * as matmul_q8.h describes), then the weight rows are split between the
 * threads; each weight block is read once per 16 or 32 activation rows.
 * Hand-written because no Debian library multiplies ggml's Q8_0 blocks
 * (oneDNN's int8 wants its own per-tensor scales and layouts). Same mode for
 * every qe_mm_mode: the activations are int8 either way. Every variant is
 * exact in its integer sums (a weight q of -128, possible in a file from
 * elsewhere, included); only the f32 accumulation order differs. */
#include "matmul_q8.h"
#include "matmul_q8p.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define QB QE_Q8_BLOCK
#define QBYTES QE_Q8_BYTES

/* Quantizes one activation row of k (k % 32 == 0) into q (k int8) and d
 * (k/32 scales). */
static void quant_row(const float *x, int k, int8_t *q, float *d) {
    for (int b = 0; b < k / QB; b++) {
        float amax = 0;
        for (int i = 0; i < QB; i++) amax = fmaxf(amax, fabsf(x[b * QB + i]));
        float s = amax / 127.f, is = s ? 1.f / s : 0.f;
        d[b] = s;
        for (int i = 0; i < QB; i++) q[b * QB + i] = (int8_t)lrintf(x[b * QB + i] * is);
    }
}

static float dot_scalar(const uint8_t *w, const int8_t *q, const float *d, int nb) {
    double acc = 0;
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + (size_t)b * QBYTES;
        float dw = qe_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
        int32_t s = 0;
        for (int i = 0; i < QB; i++) s += (int32_t)(int8_t)blk[2 + i] * (int32_t)q[b * QB + i];
        acc += (double)dw * (double)d[b] * (double)s;
    }
    return (float)acc;
}

static int available_uncached(qe_q8_variant v) {
    switch (v) {
        case QE_Q8_SCALAR: return 1;
#if defined(__x86_64__)
        /* qe_cpu_features, not qe_cpu_isa_hw: the start-up self-check calls this
     * from inside qe_cpu_isa_hw's one-time detection */
        case QE_Q8_AVX2: return qe_cpu_features(NULL) >= QE_ISA_AVX2;
        case QE_Q8_VNNI:
            __builtin_cpu_init();
            return qe_cpu_features(NULL) >= QE_ISA_AVX512 && __builtin_cpu_supports("avx512vnni");
        case QE_Q8_AMX: return qe_q8_variant_available(QE_Q8_VNNI) && qe_q8_amx_available();
        case QE_Q8_AMXP: return qe_q8_variant_available(QE_Q8_AMX);
#else
        default: return 0;
#endif
    }
    return 0;
}

/* cpuid traps to the hypervisor under KVM: asked once per variant (racing
 * first callers store the same answer). */
int qe_q8_variant_available(qe_q8_variant v) {
    static _Atomic int cache[QE_Q8_N_VARIANTS] = {-1, -1, -1, -1, -1};
    if ((unsigned)v >= QE_Q8_N_VARIANTS) return 0;
    int c = atomic_load_explicit(&cache[v], memory_order_relaxed);
    if (c < 0) {
        c = available_uncached(v);
        atomic_store_explicit(&cache[v], c, memory_order_relaxed);
    }
    return c;
}

qe_q8_variant qe_q8_best(qe_isa isa) {
    if (isa >= QE_ISA_AMX && qe_q8_variant_available(QE_Q8_AMX)) return QE_Q8_AMX;
    if (isa >= QE_ISA_AVX512 && qe_q8_variant_available(QE_Q8_VNNI)) return QE_Q8_VNNI;
    if (isa >= QE_ISA_AVX2 && qe_q8_variant_available(QE_Q8_AVX2)) return QE_Q8_AVX2;
    return QE_Q8_SCALAR;
}

/* The scalar reference: per task, its activation rows quantized into the
 * thread's scratch and one dot product per (row, column). */
typedef struct q8_job {
    const qe_mm_args *a;
    int n_tasks, mc;
    void **own;
} q8_job;

static void q8_task(void *arg, int task, int thread) {
    const q8_job *job = arg;
    const qe_mm_args *a = job->a;
    int j0, j1;
    qe_mm_split(a->n, job->n_tasks, 8, task, &j0, &j1);
    if (j0 >= j1) return;
    const int k = a->k, nb = k / QB;
    const size_t wrow = (size_t)nb * QBYTES;
    uint8_t *scr = a->pool ? qe_threadpool_thread_scratch(a->pool, thread) : *job->own;
    int8_t *q = (int8_t *)scr;
    float *d = (float *)(scr + (((size_t)job->mc * (size_t)k + 63) & ~(size_t)63));
    for (int i0 = 0; i0 < a->m; i0 += job->mc) {
        int mc = a->m - i0 < job->mc ? a->m - i0 : job->mc;
        for (int i = 0; i < mc; i++)
            quant_row(a->x + (size_t)(i0 + i) * a->ldx, k, q + (size_t)i * (size_t)k,
                      d + (size_t)i * (size_t)nb);
        for (int j = j0; j < j1; j++) {
            const uint8_t *w = (const uint8_t *)a->w + (size_t)j * wrow;
            for (int i = 0; i < mc; i++)
                a->y[(size_t)(i0 + i) * a->ldy + (size_t)j] =
                    dot_scalar(w, q + (size_t)i * (size_t)k, d + (size_t)i * (size_t)nb, nb);
        }
    }
}

static int q8_scalar(const qe_mm_args *a) {
    /* rows of quantized activations that fit the thread's scratch */
    size_t per_row = (size_t)a->k + (size_t)(a->k / QB) * sizeof(float);
    int mc = (int)((QE_MM_SCRATCH - 128) / per_row);
    if (mc < 1) return -1;
    if (mc > a->m) mc = a->m;
    void *own = NULL;
    q8_job job = {a, qe_mm_n_tasks(a, 8), mc, &own};
    return qe_mm_run(a->pool, q8_task, &job, job.n_tasks, &own);
}

#if defined(__x86_64__)
/* The SIMD variants' driver: one chunk of rows at a time, packed by every
 * thread (tasks over (tile, block) records), then multiplied (tasks over
 * weight rows, in panels of 8). */
typedef struct q8_fast_job {
    qe_q8_chunk ch;
    qe_q8_variant v;
    uint8_t *pack;
    int nb, n_tasks;
    void *own_scratch; /* the AMX kernel's scratch without a pool */
} q8_fast_job;

static void q8_pack_task(void *arg, int task, int thread) {
    (void)thread;
    const q8_fast_job *job = arg;
    const long units = (long)job->ch.n_tiles * job->nb;
    long u0 = units * task / job->n_tasks, u1 = units * (task + 1) / job->n_tasks;
    while (u0 < u1) {
        int t = (int)(u0 / job->nb), b0 = (int)(u0 % job->nb);
        int b1 = (long)t * job->nb + job->nb <= u1 ? job->nb : (int)(u1 - (long)t * job->nb);
        qe_q8_pack_avx2(job->ch.a, job->ch.i0, job->ch.rows, job->pack, t, b0, b1);
        u0 = (long)t * job->nb + b1;
    }
}

static void q8_mul_task(void *arg, int task, int thread) {
    const q8_fast_job *job = arg;
    int j0, j1;
    qe_mm_split(job->ch.a->n, job->n_tasks, job->v == QE_Q8_AMX ? 32 : 8, task, &j0, &j1);
    if (j0 >= j1) return;
    if (job->v == QE_Q8_AMX)
        qe_q8_kernel_amx(&job->ch, j0, j1,
                         job->ch.a->pool ? qe_threadpool_thread_scratch(job->ch.a->pool, thread)
                                         : job->own_scratch);
    else if (job->v == QE_Q8_VNNI)
        qe_q8_kernel_vnni(&job->ch, j0, j1);
    else
        qe_q8_kernel_avx2(&job->ch, j0, j1);
}

static int q8_fast(const qe_mm_args *a, qe_q8_variant v) {
    const int nb = a->k / QB;
    const size_t per_tile = (size_t)nb * QE_Q8_REC;
    const int chunk_tiles = (int)(QE_MM_Q8ACT / per_tile);
    if (chunk_tiles < 1) return -1;
    if (v == QE_Q8_AMX && qe_q8_amx_scratch(a->k) > QE_MM_SCRATCH) v = QE_Q8_VNNI;
    uint8_t *pack = qe_threadpool_q8_block(a->pool, qe_q8_block_bytes(a->k, a->m));
    void *own = NULL, *own_scr = NULL;
    if (!pack) { /* no block on the pool (no pool, none reserved): blocks for this call */
        if (posix_memalign(&own, 64, QE_MM_Q8ACT) != 0) return -1;
        if (v == QE_Q8_AMX && posix_memalign(&own_scr, 64, QE_MM_SCRATCH) != 0) {
            free(own);
            return -1;
        }
        pack = own;
    }
    const int threads = qe_threadpool_size(a->pool);
    const int mul_tasks = qe_mm_n_tasks(a, v == QE_Q8_AMX ? 32 : 8);
    for (int i0 = 0; i0 < a->m; i0 += chunk_tiles * QE_Q8_TILE) {
        int rows = a->m - i0 < chunk_tiles * QE_Q8_TILE ? a->m - i0 : chunk_tiles * QE_Q8_TILE;
        q8_fast_job job = {
            {a, pack, i0, rows, (rows + QE_Q8_TILE - 1) / QE_Q8_TILE}, v, pack, nb, 0, own_scr};
        long units = (long)job.ch.n_tiles * nb;
        job.n_tasks = units < threads ? (int)units : threads;
        qe_threadpool_run(a->pool, q8_pack_task, &job, job.n_tasks);
        job.n_tasks = mul_tasks;
        qe_threadpool_run(a->pool, q8_mul_task, &job, job.n_tasks);
    }
    free(own);
    free(own_scr);
    return 0;
}
#endif

int qe_matmul_q8(const qe_mm_args *a, qe_q8_variant v) {
    if (a->wt != QE_Q8_0 || a->k % QB != 0) return -1;
    if (!qe_q8_variant_available(v)) v = QE_Q8_SCALAR;
    if (v == QE_Q8_AMXP) { /* packs W for this call: the load-time path, tested */
        qe_q8p_w pw;
        if (qe_q8p_pack(&pw, a->w, NULL, a->n, a->k) != 0) return -1;
        qe_q8p_out o = {&pw, a->y, a->ldy};
        int rc = qe_matmul_q8p(a->pool, a->x, a->ldx, a->m, a->k, &o, 1);
        qe_q8p_free(&pw);
        return rc;
    }
#if defined(__x86_64__)
    if (v != QE_Q8_SCALAR && q8_fast(a, v) == 0) return 0;
#endif
    return q8_scalar(a);
}
