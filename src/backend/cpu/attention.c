#include "backend/cpu/attention.h"

#include <math.h>
#include <string.h>

#include "backend/cpu/ops.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QE_X86 1
#endif

/* The two inner loops of attention: q.k dot products and p*v accumulation
 * over head_dim. Without SIMD bodies they were a fifth of a 0.6B pass on
 * 128-token inputs; one body per instruction set, chosen once per call from
 * the ISA the kernels detected (same scheme as qe_matmul). */
typedef struct attn_vec {
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n); /* y += a*x */
    void (*scale)(float *y, float a, int n);                 /* y *= a */
} attn_vec;

static void axpy_scalar(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static void scale_scalar(float *y, float a, int n) {
    for (int i = 0; i < n; i++) y[i] *= a;
}

#ifdef QE_X86
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = _mm_cvtss_f32(h);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx2,fma"))) static void axpy_avx2(float *y, float a, const float *x, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

__attribute__((target("avx2,fma"))) static void scale_avx2(float *y, float a, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] *= a;
}

__attribute__((target("avx512f"))) static float dot_avx512(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx512f"))) static void axpy_avx512(float *y, float a, const float *x, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

__attribute__((target("avx512f"))) static void scale_avx512(float *y, float a, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(va, _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] *= a;
}
#endif

static attn_vec pick_vec(qe_isa isa) {
    attn_vec v = {qe_op_dot, axpy_scalar, scale_scalar};
#ifdef QE_X86
    if (isa >= QE_ISA_AVX512) {
        v.dot = dot_avx512;
        v.axpy = axpy_avx512;
        v.scale = scale_avx512;
    } else if (isa >= QE_ISA_AVX2) {
        v.dot = dot_avx2;
        v.axpy = axpy_avx2;
        v.scale = scale_avx2;
    }
#endif
    return v;
}

/* Arguments plus the chosen bodies, shared by the tasks of one call. */
typedef struct attn_call {
    const qe_attn_args *a;
    attn_vec vec;
} attn_call;

size_t qe_attn_scratch_floats(int head_dim) {
    /* q tile, accumulators, scores, running max and sum */
    return (size_t)QE_ATTN_TILE_Q * head_dim * 2 + (size_t)QE_ATTN_TILE_Q * QE_ATTN_TILE_K +
           2 * QE_ATTN_TILE_Q;
}

/* Task t = (query tile, head): tile index = t / n_heads, found in tile_off by
 * binary search (tile_off[s] = first tile of sequence s). */
static void attn_task(void *arg, int task, int thread) {
    const attn_call *call = arg;
    const qe_attn_args *a = call->a;
    const attn_vec vec = call->vec;
    const int hd = a->head_dim;
    const int h = task % a->n_heads;
    const int tile = task / a->n_heads;
    int lo = 0, hi = a->n_seq - 1;
    while (lo < hi) { /* last s with tile_off[s] <= tile */
        int mid = (lo + hi + 1) / 2;
        if (a->tile_off[mid] <= tile) lo = mid;
        else hi = mid - 1;
    }
    const int s = lo;
    const size_t base = (size_t)a->seq_off[s];
    const int len = a->seq_off[s + 1] - a->seq_off[s];
    int r0, r1; /* query rows within the sequence */
    if (a->last_only) {
        r0 = len - 1;
        r1 = len;
    } else {
        r0 = (tile - a->tile_off[s]) * QE_ATTN_TILE_Q;
        r1 = r0 + QE_ATTN_TILE_Q < len ? r0 + QE_ATTN_TILE_Q : len;
    }
    const int nq = r1 - r0;
    const int kvh = h / (a->n_heads / a->n_kv_heads);
    const float scale = 1.0f / sqrtf((float)hd);

    float *qt = a->scratch + (size_t)thread * qe_attn_scratch_floats(hd); /* (TILE_Q, hd) */
    float *acc = qt + (size_t)QE_ATTN_TILE_Q * hd;                          /* (TILE_Q, hd) */
    float *sc = acc + (size_t)QE_ATTN_TILE_Q * hd;                          /* (TILE_Q, TILE_K) */
    float *mx = sc + (size_t)QE_ATTN_TILE_Q * QE_ATTN_TILE_K;               /* (TILE_Q) */
    float *sum = mx + QE_ATTN_TILE_Q;                                       /* (TILE_Q) */

    for (int i = 0; i < nq; i++) {
        memcpy(qt + (size_t)i * hd, a->q + (base + r0 + i) * a->ldq + (size_t)h * hd,
               (size_t)hd * sizeof(float));
        memset(acc + (size_t)i * hd, 0, (size_t)hd * sizeof(float));
        mx[i] = -INFINITY;
        sum[i] = 0.0f;
    }
    /* Causal: query row r sees keys 0..r; the tile needs keys [0, r1). */
    for (int c0 = 0; c0 < r1; c0 += QE_ATTN_TILE_K) {
        int c1 = c0 + QE_ATTN_TILE_K < r1 ? c0 + QE_ATTN_TILE_K : r1;
        for (int i = 0; i < nq; i++) {
            int r = r0 + i;
            int jend = c1 < r + 1 ? c1 : r + 1; /* keys [c0, jend) visible to row r */
            if (jend <= c0) continue;
            const float *qi = qt + (size_t)i * hd;
            float *si = sc + (size_t)i * QE_ATTN_TILE_K;
            float tmax = -INFINITY;
            for (int j = c0; j < jend; j++) {
                const float *kj = a->k + (base + j) * a->ldkv + (size_t)kvh * hd;
                float x = vec.dot(qi, kj, hd) * scale;
                si[j - c0] = x;
                if (x > tmax) tmax = x;
            }
            float mnew = mx[i] > tmax ? mx[i] : tmax;
            /* exp(-inf) = 0 on the first tile; mnew is finite unless the scores are not */
            float corr = mx[i] == -INFINITY ? 0.0f : expf(mx[i] - mnew);
            float *ai = acc + (size_t)i * hd;
            if (corr != 1.0f) vec.scale(ai, corr, hd);
            float ps = 0.0f;
            for (int j = c0; j < jend; j++) {
                float p = expf(si[j - c0] - mnew);
                ps += p;
                const float *vj = a->v + (base + j) * a->ldkv + (size_t)kvh * hd;
                vec.axpy(ai, p, vj, hd);
            }
            sum[i] = sum[i] * corr + ps;
            mx[i] = mnew;
        }
    }
    for (int i = 0; i < nq; i++) {
        float *o = a->q + (base + r0 + i) * a->ldq + (size_t)h * hd;
        float inv = 1.0f / sum[i];
        const float *ai = acc + (size_t)i * hd;
        for (int d = 0; d < hd; d++) o[d] = ai[d] * inv;
    }
}

void qe_attention(qe_pool *pool, const qe_attn_args *a) {
    int tiles = 0;
    for (int s = 0; s < a->n_seq; s++) {
        a->tile_off[s] = tiles;
        int len = a->seq_off[s + 1] - a->seq_off[s];
        tiles += a->last_only ? 1 : (len + QE_ATTN_TILE_Q - 1) / QE_ATTN_TILE_Q;
    }
    a->tile_off[a->n_seq] = tiles;
    attn_call call = {a, pick_vec(a->isa)};
    qe_pool_run(pool, attn_task, &call, tiles * a->n_heads);
}
