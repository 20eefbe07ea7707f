/* Products on ggml's 4-, 5- and 6-bit block weights (Q4_0, Q5_0, Q4_K,
 * Q5_K, Q6_K), "correct first": the weights are dequantized to f32 with the
 * bit-exact dequantizer (dequant.c), a tile at a time, into the thread's
 * scratch, and multiplied in f32 (the activations stay f32).
 *   scalar  the reference: per block, dequantize and dot, double accumulation;
 *   avx2    tiles of 16 weight rows x 256 k, 6 x 16 outputs per step (12 ymm
 *           accumulators, activations broadcast);
 *   avx512  the same with tiles of 32 weight rows (12 zmm accumulators).
 * The tile is stored k-major (tile[p * NT + r]) so that one vector load
 * holds NT weight rows at one k: no horizontal sums. Each weight is
 * dequantized once per product; each activation is read from L2 once per
 * tile of NT weight rows.
 * Q4_K and Q6_K outside exact mode run int8 dot products on the blocks
 * instead where the CPU has AVX512-VNNI, Q4_K also with AVX2 (matmul_kq8.c);
 * this path is exact mode's (f32 activations), the fallback elsewhere, and
 * Q4_0/Q5_0/Q5_K's. */
#include "matmul_kq.h"

#include <stdatomic.h>
#include <string.h>

#include "dequant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define KB 256 /* k per tile: a whole K-quant block, eight of the 32-blocks */
#define MR 6   /* activation rows per micro-kernel step */
#define NT_MAX 32

int qe_kq_dtype(qe_dtype t) {
    return t == QE_Q4_0 || t == QE_Q5_0 || t == QE_Q4_K || t == QE_Q5_K || t == QE_Q6_K;
}

/* ---- scalar reference ---- */

typedef struct kq_job {
    const qe_mm_args *a;
    int n_tasks, nt;
    void (*tile)(const float *const *xr, int mr, const float *t, int kc, float *out);
    void **own;
} kq_job;

static void scalar_task(void *arg, int task, int thread) {
    (void)thread;
    const kq_job *job = arg;
    const qe_mm_args *a = job->a;
    int j0, j1;
    qe_mm_split(a->n, job->n_tasks, 1, task, &j0, &j1);
    const size_t be = qe_dtype_block(a->wt), bb = qe_dtype_block_bytes(a->wt);
    const size_t nb = (size_t)a->k / be, rowb = nb * bb;
    float v[QE_MAX_BLOCK];
    for (int j = j0; j < j1; j++) {
        const unsigned char *w = (const unsigned char *)a->w + (size_t)j * rowb;
        for (int i = 0; i < a->m; i++) {
            const float *x = a->x + (size_t)i * a->ldx;
            double acc = 0;
            for (size_t b = 0; b < nb; b++) {
                qe_dequant_blocks(a->wt, w + b * bb, v, 1);
                for (size_t p = 0; p < be; p++) acc += (double)x[b * be + p] * (double)v[p];
            }
            a->y[(size_t)i * a->ldy + (size_t)j] = (float)acc;
        }
    }
}

/* ---- SIMD micro-kernels: out[r * NT + c] = sum_p xr[r][p] * t[p * NT + c] ---- */

#if defined(__x86_64__)
#define TGT2 __attribute__((target("avx2,fma")))
#define TGT5 __attribute__((target("avx512f,avx2,fma")))

/* All MR rows are computed (the caller points missing rows at a valid one)
 * and the first mr stored: the accumulators are named registers, written
 * out by hand because GCC at -O2 keeps an accumulator array in memory. */
TGT2 static void tile_avx2(const float *const *xr, int mr, const float *t, int kc, float *out) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    __m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    const float *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5];
    for (int p = 0; p < kc; p++) {
        const __m256 w0 = _mm256_load_ps(t + (size_t)p * 16), w1 = _mm256_load_ps(t + (size_t)p * 16 + 8);
        __m256 b;
#define ROW2(r)                                \
    b = _mm256_broadcast_ss(x##r + p);         \
    a##r##0 = _mm256_fmadd_ps(b, w0, a##r##0); \
    a##r##1 = _mm256_fmadd_ps(b, w1, a##r##1);
        ROW2(0) ROW2(1) ROW2(2) ROW2(3) ROW2(4) ROW2(5)
#undef ROW2
    }
    const __m256 acc[MR][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}, {a40, a41}, {a50, a51}};
    for (int r = 0; r < mr; r++) {
        _mm256_storeu_ps(out + r * 16, acc[r][0]);
        _mm256_storeu_ps(out + r * 16 + 8, acc[r][1]);
    }
}

TGT5 static void tile_avx512(const float *const *xr, int mr, const float *t, int kc, float *out) {
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    __m512 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    const float *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5];
    for (int p = 0; p < kc; p++) {
        const __m512 w0 = _mm512_load_ps(t + (size_t)p * 32), w1 = _mm512_load_ps(t + (size_t)p * 32 + 16);
        __m512 b;
#define ROW5(r)                                \
    b = _mm512_set1_ps(x##r[p]);               \
    a##r##0 = _mm512_fmadd_ps(b, w0, a##r##0); \
    a##r##1 = _mm512_fmadd_ps(b, w1, a##r##1);
        ROW5(0) ROW5(1) ROW5(2) ROW5(3) ROW5(4) ROW5(5)
#undef ROW5
    }
    const __m512 acc[MR][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}, {a40, a41}, {a50, a51}};
    for (int r = 0; r < mr; r++) {
        _mm512_storeu_ps(out + r * 32, acc[r][0]);
        _mm512_storeu_ps(out + r * 32 + 16, acc[r][1]);
    }
}

/* rows (nt, KB) -> tile (kc, nt), nt a multiple of 8 and kc of 32: 8 x 8
 * blocks transposed in registers (the scattered scalar stores it replaces
 * cost more than the dequantization). AVX2, which both SIMD variants have. */
TGT2 static void transpose8(const float *rows, int nt, int kc, float *tile) {
    for (int r0 = 0; r0 < nt; r0 += 8)
        for (int p0 = 0; p0 < kc; p0 += 8) {
            const float *s = rows + (size_t)r0 * KB + p0;
            __m256 a0 = _mm256_loadu_ps(s), a1 = _mm256_loadu_ps(s + KB), a2 = _mm256_loadu_ps(s + 2 * KB);
            __m256 a3 = _mm256_loadu_ps(s + 3 * KB), a4 = _mm256_loadu_ps(s + 4 * KB);
            __m256 a5 = _mm256_loadu_ps(s + 5 * KB), a6 = _mm256_loadu_ps(s + 6 * KB);
            __m256 a7 = _mm256_loadu_ps(s + 7 * KB);
            __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
            __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
            __m256 t4 = _mm256_unpacklo_ps(a4, a5), t5 = _mm256_unpackhi_ps(a4, a5);
            __m256 t6 = _mm256_unpacklo_ps(a6, a7), t7 = _mm256_unpackhi_ps(a6, a7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *d = tile + (size_t)p0 * nt + r0;
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + nt, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * nt, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * nt, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * nt, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * nt, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * nt, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * nt, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
}
#endif

/* Weight rows [j0, j1) of this task in groups of NT; per group and k-block,
 * dequantize NT rows x kc into the k-major tile, then run every activation
 * row through it MR at a time, adding into y (the first k-block stores). */
static void tile_task(void *arg, int task, int thread) {
    const kq_job *job = arg;
    const qe_mm_args *a = job->a;
    const int nt = job->nt, k = a->k;
    int j0, j1;
    qe_mm_split(a->n, job->n_tasks, nt, task, &j0, &j1);
    if (j0 >= j1) return;
    float *tile = a->pool ? qe_threadpool_thread_scratch(a->pool, thread) : *job->own; /* (KB, nt) */
    float *rows = tile + (size_t)KB * nt; /* (nt, KB): the tile's rows before the transpose */
    const size_t be = qe_dtype_block(a->wt), rowb = qe_dtype_bytes(a->wt, (uint64_t)k);
    float out[MR * NT_MAX];
    for (int jg = j0; jg < j1; jg += nt) {
        const int nv = j1 - jg < nt ? j1 - jg : nt;
        for (int p0 = 0; p0 < k; p0 += KB) {
            const int kc = k - p0 < KB ? k - p0 : KB; /* whole blocks: k and KB are multiples of them */
            for (int r = 0; r < nt; r++) {
                float *dst = rows + (size_t)r * KB;
                if (r < nv)
                    qe_dequant_blocks(a->wt,
                                      (const unsigned char *)a->w + (size_t)(jg + r) * rowb +
                                          qe_dtype_bytes(a->wt, (uint64_t)p0),
                                      dst, (size_t)kc / be);
                else
                    memset(dst, 0, (size_t)kc * sizeof *dst);
            }
            transpose8(rows, nt, kc, tile);
            for (int i0 = 0; i0 < a->m; i0 += MR) {
                const int mr = a->m - i0 < MR ? a->m - i0 : MR;
                const float *xr[MR];
                for (int r = 0; r < MR; r++) xr[r] = a->x + (size_t)(i0 + (r < mr ? r : 0)) * a->ldx + p0;
                job->tile(xr, mr, tile, kc, out);
                for (int r = 0; r < mr; r++) {
                    float *y = a->y + (size_t)(i0 + r) * a->ldy + (size_t)jg;
                    if (p0 == 0)
                        for (int c = 0; c < nv; c++) y[c] = out[r * nt + c];
                    else
                        for (int c = 0; c < nv; c++) y[c] += out[r * nt + c];
                }
            }
        }
    }
}

static int available_uncached(qe_kq_variant v) {
    switch (v) {
        case QE_KQ_SCALAR: return 1;
#if defined(__x86_64__)
        /* qe_cpu_features, not qe_cpu_isa_hw: the start-up self-check calls
         * this from inside qe_cpu_isa_hw's one-time detection */
        case QE_KQ_AVX2: return qe_cpu_features(NULL) >= QE_ISA_AVX2;
        case QE_KQ_AVX512: return qe_cpu_features(NULL) >= QE_ISA_AVX512;
#else
        default: return 0;
#endif
    }
    return 0;
}

/* cpuid traps to the hypervisor under KVM: asked once per variant. */
int qe_kq_variant_available(qe_kq_variant v) {
    static _Atomic int cache[3] = {-1, -1, -1};
    if ((unsigned)v > 2u) return 0;
    int c = atomic_load_explicit(&cache[v], memory_order_relaxed);
    if (c < 0) {
        c = available_uncached(v);
        atomic_store_explicit(&cache[v], c, memory_order_relaxed);
    }
    return c;
}

qe_kq_variant qe_kq_best(qe_isa isa) {
    if (isa >= QE_ISA_AVX512 && qe_kq_variant_available(QE_KQ_AVX512)) return QE_KQ_AVX512;
    if (isa >= QE_ISA_AVX2 && qe_kq_variant_available(QE_KQ_AVX2)) return QE_KQ_AVX2;
    return QE_KQ_SCALAR;
}

int qe_matmul_kq(const qe_mm_args *a, qe_kq_variant v) {
    if (!qe_kq_dtype(a->wt) || a->k % (int)qe_dtype_block(a->wt) != 0) return -1;
    if (!qe_kq_variant_available(v)) v = QE_KQ_SCALAR;
    kq_job job = {a, 1, 1, NULL, NULL};
    if (v == QE_KQ_SCALAR) {
        int threads = qe_threadpool_size(a->pool);
        if (threads > 1) job.n_tasks = a->n < threads * 4 ? a->n : threads * 4;
        qe_threadpool_run(a->pool, scalar_task, &job, job.n_tasks);
        return 0;
    }
#if defined(__x86_64__)
    job.nt = v == QE_KQ_AVX512 ? 32 : 16;
    job.tile = v == QE_KQ_AVX512 ? tile_avx512 : tile_avx2;
    /* the tile and its rows before the transpose must fit the thread's scratch */
    if ((size_t)KB * job.nt * 2 * sizeof(float) > QE_MM_SCRATCH) return -1;
    void *own = NULL;
    job.own = &own;
    job.n_tasks = qe_mm_n_tasks(a, job.nt);
    return qe_mm_run(a->pool, tile_task, &job, job.n_tasks, &own);
#else
    return -1;
#endif
}
