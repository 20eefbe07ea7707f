/* Products on Q8_0 weights as stored (llama.cpp's layout: each row of k
 * values is k/32 blocks of an f16 scale d and 32 int8 q, value = d * q).
 * The activations are quantized the same way on the fly, per block of 32
 * (scale max|x|/127 kept in f32), and each block pair is one int8 dot product
 * scaled by d_w * d_x, accumulated in f32:
 *   scalar  the reference (integer dot, double accumulation),
 *   avx2    vpmaddubsw + vpmaddwd on |x| and sign(w, x),
 *   vnni    vpdpbusd (AVX512-VNNI, 256-bit with VL) on the same operands.
 * Hand-written because no Debian library multiplies ggml's Q8_0 blocks
 * (oneDNN's int8 wants its own per-tensor scales and layouts). Same mode for
 * every qe_mm_mode: the activations are int8 either way. The weights' q may
 * be -128 in a file from elsewhere; |x| <= 127 so pmaddubsw's pair sums stay
 * below 2^15 except for two -128 x 127 terms (off by at most 1 then). */
#include "matmul_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define QB 32
#define QBYTES 34

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

typedef float (*row_dot_fn)(const uint8_t *w, const int8_t *q, const float *d, int nb);

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

#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c"))) static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma,f16c"))) static float dot_avx2(const uint8_t *w, const int8_t *q,
                                                               const float *d, int nb) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + (size_t)b * QBYTES;
        __m256i qw = _mm256_loadu_si256((const __m256i *)(blk + 2));
        __m256i qx = _mm256_loadu_si256((const __m256i *)(q + b * QB));
        __m256i ax = _mm256_sign_epi8(qx, qx);
        __m256i sw = _mm256_sign_epi8(qw, qx);
        __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sw), ones);
        float s = _cvtsh_ss((unsigned short)(blk[0] | blk[1] << 8)) * d[b];
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s), acc);
    }
    return hsum8(acc);
}

__attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512vnni"))) static float
dot_vnni(const uint8_t *w, const int8_t *q, const float *d, int nb) {
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + (size_t)b * QBYTES;
        __m256i qw = _mm256_loadu_si256((const __m256i *)(blk + 2));
        __m256i qx = _mm256_loadu_si256((const __m256i *)(q + b * QB));
        __m256i ax = _mm256_sign_epi8(qx, qx);
        __m256i sw = _mm256_sign_epi8(qw, qx);
        __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sw);
        float s = _cvtsh_ss((unsigned short)(blk[0] | blk[1] << 8)) * d[b];
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s), acc);
    }
    return hsum8(acc);
}
#endif

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
#else
        default: return 0;
#endif
    }
    return 0;
}

/* cpuid traps to the hypervisor under KVM: asked once per variant (racing
 * first callers store the same answer). */
int qe_q8_variant_available(qe_q8_variant v) {
    static _Atomic int cache[3] = {-1, -1, -1};
    if ((unsigned)v > 2u) return 0;
    int c = atomic_load_explicit(&cache[v], memory_order_relaxed);
    if (c < 0) {
        c = available_uncached(v);
        atomic_store_explicit(&cache[v], c, memory_order_relaxed);
    }
    return c;
}

qe_q8_variant qe_q8_best(qe_isa isa) {
    if (isa >= QE_ISA_AVX512 && qe_q8_variant_available(QE_Q8_VNNI)) return QE_Q8_VNNI;
    if (isa >= QE_ISA_AVX2 && qe_q8_variant_available(QE_Q8_AVX2)) return QE_Q8_AVX2;
    return QE_Q8_SCALAR;
}

typedef struct q8_job {
    const qe_mm_args *a;
    row_dot_fn dot;
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
                    job->dot(w, q + (size_t)i * (size_t)k, d + (size_t)i * (size_t)nb, nb);
        }
    }
}

int qe_matmul_q8(const qe_mm_args *a, qe_q8_variant v) {
    if (a->wt != QE_Q8_0 || a->k % QB != 0) return -1;
    if (!qe_q8_variant_available(v)) v = QE_Q8_SCALAR;
    row_dot_fn dot = dot_scalar;
#if defined(__x86_64__)
    if (v == QE_Q8_AVX2) dot = dot_avx2;
    if (v == QE_Q8_VNNI) dot = dot_vnni;
#endif
    /* rows of quantized activations that fit the thread's scratch */
    size_t per_row = (size_t)a->k + (size_t)(a->k / QB) * sizeof(float);
    int mc = (int)((QE_MM_SCRATCH - 128) / per_row);
    if (mc < 1) return -1;
    if (mc > a->m) mc = a->m;
    void *own = NULL;
    q8_job job = {a, dot, qe_mm_n_tasks(a, 8), mc, &own};
    return qe_mm_run(a->pool, q8_task, &job, job.n_tasks, &own);
}
