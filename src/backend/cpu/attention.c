#include "backend/cpu/attention.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QE_X86 1
#endif

/* Work per (query tile, head), flash-attention style:
 *   Kt   = the key tile transposed, (head_dim, TILE_K): each query row's
 *          scores are then TILE_K-wide vector FMAs with no horizontal sums;
 *   s    = q_i Kt * scale, masked causally, folded into the running max and
 *          sum (online softmax, f32);
 *   acc += p V_tile, a block of acc kept in registers across the keys.
 * The two inner loops have a plain C body (the reference) and an AVX2+FMA
 * body, chosen once per call from the ISA the kernels detected. Machines with
 * AVX-512 run the AVX2 body (no AVX-512 body: none could be tested here). */

size_t qe_attn_scratch_floats(int head_dim, int group) {
    const size_t Q = (size_t)QE_ATTN_TILE_Q * (size_t)group; /* query vectors per task */
    /* q vectors, accumulators, running max and sum, one score row,
     * the transposed key tile and the contiguous value tile */
    return Q * (size_t)head_dim * 2 + 2 * Q + QE_ATTN_TILE_K +
           2 * (size_t)head_dim * QE_ATTN_TILE_K;
}

typedef struct attn_vec {
    /* s[j] = sum_d q[d] * kt[d*TILE_K + j] for j < TILE_K */
    void (*scores)(const float *q, const float *kt, int hd, float *s);
    /* acc[d] += sum_j p[j] * v[j*ldv + d] for j < n */
    void (*pv)(float *acc, const float *p, const float *v, size_t ldv, int n, int hd);
    /* s[j] = exp(s[j]*scale - m_new) for j < n, where m_new = max(m_old,
     * max_j s[j]*scale); returns the sum of the new s[j]. NaN propagates. */
    float (*softmax)(float *s, int n, float scale, float m_old, float *m_new);
} attn_vec;

static float softmax_scalar(float *s, int n, float scale, float m_old, float *m_new) {
    float tmax = -INFINITY;
    for (int j = 0; j < n; j++) {
        s[j] *= scale;
        if (s[j] > tmax) tmax = s[j];
    }
    const float m = m_old > tmax ? m_old : tmax;
    float ps = 0.0f;
    for (int j = 0; j < n; j++) {
        s[j] = expf(s[j] - m);
        ps += s[j];
    }
    *m_new = m;
    return ps;
}

static void scores_scalar(const float *q, const float *kt, int hd, float *s) {
    for (int j = 0; j < QE_ATTN_TILE_K; j++) s[j] = 0.0f;
    for (int d = 0; d < hd; d++) {
        const float qd = q[d];
        const float *row = kt + (size_t)d * QE_ATTN_TILE_K;
        for (int j = 0; j < QE_ATTN_TILE_K; j++) s[j] += qd * row[j];
    }
}

static void pv_scalar(float *acc, const float *p, const float *v, size_t ldv, int n, int hd) {
    for (int j = 0; j < n; j++) {
        const float pj = p[j];
        const float *vj = v + (size_t)j * ldv;
        for (int d = 0; d < hd; d++) acc[d] += pj * vj[d];
    }
}

#ifdef QE_X86
#if QE_ATTN_TILE_K != 64
#error "scores_avx2 assumes 64-key tiles (8 accumulators)"
#endif
__attribute__((target("avx2,fma"))) static void scores_avx2(const float *q, const float *kt, int hd,
                                                             float *s) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps(), a4 = _mm256_setzero_ps(), a5 = _mm256_setzero_ps(),
           a6 = _mm256_setzero_ps(), a7 = _mm256_setzero_ps();
    for (int d = 0; d < hd; d++) {
        const __m256 b = _mm256_set1_ps(q[d]);
        const float *r = kt + (size_t)d * 64;
        a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r), a0);
        a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 8), a1);
        a2 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 16), a2);
        a3 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 24), a3);
        a4 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 32), a4);
        a5 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 40), a5);
        a6 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 48), a6);
        a7 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 56), a7);
    }
    _mm256_storeu_ps(s, a0);
    _mm256_storeu_ps(s + 8, a1);
    _mm256_storeu_ps(s + 16, a2);
    _mm256_storeu_ps(s + 24, a3);
    _mm256_storeu_ps(s + 32, a4);
    _mm256_storeu_ps(s + 40, a5);
    _mm256_storeu_ps(s + 48, a6);
    _mm256_storeu_ps(s + 56, a7);
}

__attribute__((target("avx2,fma"))) static void pv_avx2(float *acc, const float *p, const float *v,
                                                         size_t ldv, int n, int hd) {
    int d0 = 0;
    /* 64 accumulators at a time stay in 8 registers across all keys */
    for (; d0 + 64 <= hd; d0 += 64) {
        float *o = acc + d0;
        __m256 a0 = _mm256_loadu_ps(o), a1 = _mm256_loadu_ps(o + 8), a2 = _mm256_loadu_ps(o + 16),
               a3 = _mm256_loadu_ps(o + 24), a4 = _mm256_loadu_ps(o + 32),
               a5 = _mm256_loadu_ps(o + 40), a6 = _mm256_loadu_ps(o + 48),
               a7 = _mm256_loadu_ps(o + 56);
        for (int j = 0; j < n; j++) {
            const __m256 b = _mm256_set1_ps(p[j]);
            const float *r = v + (size_t)j * ldv + d0;
            a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r), a0);
            a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 8), a1);
            a2 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 16), a2);
            a3 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 24), a3);
            a4 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 32), a4);
            a5 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 40), a5);
            a6 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 48), a6);
            a7 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 56), a7);
        }
        _mm256_storeu_ps(o, a0);
        _mm256_storeu_ps(o + 8, a1);
        _mm256_storeu_ps(o + 16, a2);
        _mm256_storeu_ps(o + 24, a3);
        _mm256_storeu_ps(o + 32, a4);
        _mm256_storeu_ps(o + 40, a5);
        _mm256_storeu_ps(o + 48, a6);
        _mm256_storeu_ps(o + 56, a7);
    }
    for (; d0 + 8 <= hd; d0 += 8) {
        __m256 a = _mm256_loadu_ps(acc + d0);
        for (int j = 0; j < n; j++)
            a = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(v + (size_t)j * ldv + d0), a);
        _mm256_storeu_ps(acc + d0, a);
    }
    for (; d0 < hd; d0++)
        for (int j = 0; j < n; j++) acc[d0] += p[j] * v[(size_t)j * ldv + d0];
}

/* exp(x) for x <= 0 as in Cephes expf (range reduction by ln 2, degree-5
 * polynomial): within 2 ulp of expf, which was a sixth of attention's time. */
__attribute__((target("avx2,fma"))) static __m256 exp_avx2(__m256 x) {
    /* min/max with x second keep a NaN in x (they return the second operand) */
    x = _mm256_min_ps(_mm256_set1_ps(88.3762626647949f), x);
    x = _mm256_max_ps(_mm256_set1_ps(-87.3365447504f), x);
    __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
    fx = _mm256_floor_ps(fx);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i n = _mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127));
    return _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(n, 23)));
}

__attribute__((target("avx2,fma"))) static float softmax_avx2(float *s, int n, float scale,
                                                               float m_old, float *m_new) {
    const __m256 vs = _mm256_set1_ps(scale);
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 x = _mm256_mul_ps(_mm256_loadu_ps(s + j), vs);
        _mm256_storeu_ps(s + j, x);
        vmax = _mm256_max_ps(vmax, x);
    }
    float tmp[8];
    _mm256_storeu_ps(tmp, vmax);
    float tmax = -INFINITY;
    for (int k = 0; k < 8; k++)
        if (tmp[k] > tmax) tmax = tmp[k];
    for (; j < n; j++) {
        s[j] *= scale;
        if (s[j] > tmax) tmax = s[j];
    }
    const float m = m_old > tmax ? m_old : tmax;
    const __m256 vm = _mm256_set1_ps(m);
    __m256 vsum = _mm256_setzero_ps();
    j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
        _mm256_storeu_ps(s + j, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    _mm256_storeu_ps(tmp, vsum);
    float ps = ((tmp[0] + tmp[1]) + (tmp[2] + tmp[3])) + ((tmp[4] + tmp[5]) + (tmp[6] + tmp[7]));
    for (; j < n; j++) {
        s[j] = expf(s[j] - m);
        ps += s[j];
    }
    *m_new = m;
    return ps;
}
#endif

static attn_vec pick_vec(qe_isa isa) {
    attn_vec v = {scores_scalar, pv_scalar, softmax_scalar};
#ifdef QE_X86
    if (isa >= QE_ISA_AVX2) {
        v.scores = scores_avx2;
        v.pv = pv_avx2;
        v.softmax = softmax_avx2;
    }
#endif
    return v;
}

/* Arguments plus the chosen bodies, shared by the tasks of one call. */
typedef struct attn_call {
    const qe_attn_args *a;
    attn_vec vec;
} attn_call;

/* Task t = (query tile, kv head): the TILE_Q rows of one sequence for every
 * query head sharing that kv head (GQA group), so each key/value tile is
 * transposed/copied once for TILE_Q x group query vectors. The tile index
 * t / n_kv_heads is found in tile_off by binary search (tile_off[s] = first
 * tile of sequence s). */
static void attn_task(void *arg, int task, int thread) {
    const attn_call *call = arg;
    const qe_attn_args *a = call->a;
    const attn_vec vec = call->vec;
    const int hd = a->head_dim;
    const int group = a->n_heads / a->n_kv_heads;
    const int kvh = task % a->n_kv_heads;
    const int tile = task / a->n_kv_heads;
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
    const int nvec = nq * group; /* vector v: head kvh*group + v / nq, row r0 + v % nq */
    const float scale = 1.0f / sqrtf((float)hd);

    float *qt = a->scratch + (size_t)thread * qe_attn_scratch_floats(hd, group);
    float *acc = qt + (size_t)QE_ATTN_TILE_Q * group * hd; /* (TILE_Q*group, hd) */
    float *mx = acc + (size_t)QE_ATTN_TILE_Q * group * hd; /* (TILE_Q*group) */
    float *sum = mx + (size_t)QE_ATTN_TILE_Q * group;      /* (TILE_Q*group) */
    float *si = sum + (size_t)QE_ATTN_TILE_Q * group;      /* (TILE_K) one score row */
    float *kt = si + QE_ATTN_TILE_K;                       /* (hd, TILE_K) */
    float *vt = kt + (size_t)hd * QE_ATTN_TILE_K;          /* (TILE_K, hd) */

    for (int v = 0; v < nvec; v++) {
        const int h = kvh * group + v / nq, r = r0 + v % nq;
        memcpy(qt + (size_t)v * hd, a->q + (base + r) * a->ldq + (size_t)h * hd,
               (size_t)hd * sizeof(float));
        memset(acc + (size_t)v * hd, 0, (size_t)hd * sizeof(float));
        mx[v] = -INFINITY;
        sum[v] = 0.0f;
    }
    /* Causal: query row r sees keys 0..r; the tile needs keys [0, r1). */
    for (int c0 = 0; c0 < r1; c0 += QE_ATTN_TILE_K) {
        const int c1 = c0 + QE_ATTN_TILE_K < r1 ? c0 + QE_ATTN_TILE_K : r1;
        const int nk = c1 - c0;
        const float *kbase = a->k + (base + c0) * a->ldkv + (size_t)kvh * hd;
        const float *vbase = a->v + (base + c0) * a->ldkv + (size_t)kvh * hd;
        /* Key tile transposed, value tile made contiguous: rows of k and v
         * lie ldkv floats apart (often 4 KiB), which thrashes L1 sets when
         * walked directly. Columns past nk are zero and never read back. */
        for (int j = 0; j < nk; j++) {
            const float *kj = kbase + (size_t)j * a->ldkv;
            for (int d = 0; d < hd; d++) kt[(size_t)d * QE_ATTN_TILE_K + j] = kj[d];
            memcpy(vt + (size_t)j * hd, vbase + (size_t)j * a->ldkv, (size_t)hd * sizeof(float));
        }
        for (int d = 0; d < hd; d++)
            for (int j = nk; j < QE_ATTN_TILE_K; j++) kt[(size_t)d * QE_ATTN_TILE_K + j] = 0.0f;
        for (int v = 0; v < nvec; v++) {
            const int r = r0 + v % nq;
            const int nvis = (c1 < r + 1 ? c1 : r + 1) - c0; /* keys [c0, c0+nvis) visible */
            if (nvis <= 0) continue;
            vec.scores(qt + (size_t)v * hd, kt, hd, si);
            float mnew;
            const float ps = vec.softmax(si, nvis, scale, mx[v], &mnew);
            /* first tile: nothing to rescale (exp(-inf) would be 0 anyway) */
            const float corr = mx[v] == -INFINITY ? 0.0f : expf(mx[v] - mnew);
            float *av = acc + (size_t)v * hd;
            if (corr != 1.0f)
                for (int d = 0; d < hd; d++) av[d] *= corr;
            vec.pv(av, si, vt, (size_t)hd, nvis, hd);
            sum[v] = sum[v] * corr + ps;
            mx[v] = mnew;
        }
    }
    for (int v = 0; v < nvec; v++) {
        const int h = kvh * group + v / nq, r = r0 + v % nq;
        float *o = a->q + (base + r) * a->ldq + (size_t)h * hd;
        const float inv = 1.0f / sum[v];
        const float *av = acc + (size_t)v * hd;
        for (int d = 0; d < hd; d++) o[d] = av[d] * inv;
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
    qe_pool_run(pool, attn_task, &call, tiles * a->n_kv_heads);
}
