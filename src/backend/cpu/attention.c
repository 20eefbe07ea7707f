#include "backend/cpu/attention.h"

#include "backend/cpu/attention_amx.h"
#include "backend/cpu/attention_bf16.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "backend/cpu/avx2_util.h"
#include "backend/cpu/avx512_util.h"
#define QE_X86 1
#endif

/* Work per task = (query tile, kv head), flash-attention style. The task's
 * query vectors (TILE_Q rows x the `group` query heads sharing the kv head)
 * are handled together, GEMM-style, for each key tile of TILE_K keys:
 *   S (nvec x TILE_K)  = Q Kt                  micro-tiles of MR x NR scores;
 *   per row: scale, causal mask, online softmax (running max and sum, f32);
 *   O (nvec x head_dim) = O * corr + P V_tile  micro-tiles of MR x NR outputs.
 * Why blocked: one query row at a time did one load per FMA from a 32 KiB
 * key tile and a 32 KiB value tile (more than L1 together), so it ran at
 * about 30% of the FMA peak. A 6 x 16 micro-tile does 12 FMAs per 2 vector
 * loads + 6 broadcasts, the vector operand panel (16 keys or 16 columns of
 * V) staying in L1 while the broadcast operand streams.
 *
 * Packed layouts (all in the per-thread scratch):
 *   qp: query vectors in MR-vector panels, panel b = [d][MR] (one sequential
 *       broadcast stream; vectors past nvec zero). Vector v is row r0 + v /
 *       group of head kvh*group + v % group: row-major, so the rows a key
 *       tile hides (causal) form a prefix and the panels a mask touches are
 *       few.
 *   kp: key tile transposed in NR-key panels, panel jp = [d][NR] (keys past
 *       the tile's end zero).
 *   vp: value tile in NR-column panels, panel dp = [key][NR] (columns past
 *       head_dim zero).
 *   s:  scores, then probabilities, [v][TILE_K].
 * The micro-kernels have a plain C body (the reference) and an AVX2+FMA body
 * with the same summation order per output (so the two agree closely),
 * chosen once per call from the ISA the kernels detected, and an AVX-512F
 * body (one zmm per panel row; run and tested on an AVX-512 machine,
 * 2026-12-06). These f32 bodies run in exact mode, and in bf16 mode below
 * the AVX512-BF16 level.
 *
 * bf16 mode at level avx512bf16 (and amx when the AMX-BF16 body,
 * attention_amx.c, cannot run) takes the vdpbf16ps micro-kernels of
 * attention_bf16.c with the AVX-512F softmax: the same tiling, with qp, kp,
 * vp and the probabilities holding bf16 pairs in their float slots (the
 * depth of each product halved; attention_bf16.h). */

#define MR QE_ATTN_MR /* query vectors per micro-tile: 12 accumulators + 2 loads + 1 broadcast */
#define NR QE_ATTN_NR /* keys (scores) or output columns (P V) per micro-tile: two ymm */
#define TK QE_ATTN_TILE_K

#if QE_ATTN_TILE_K % 16 != 0
#error "key tiles must be whole NR-key panels"
#endif
_Static_assert(sizeof(int) == sizeof(float), "vis: one int in each float of its scratch room");

static size_t round_up(size_t x, size_t m) {
    return (x + m - 1) / m * m;
}

static size_t f32_scratch_floats(int head_dim, int group) {
    const size_t Q = (size_t)QE_ATTN_TILE_Q * (size_t)group; /* query vectors per task */
    const size_t QP = round_up(Q, MR);                       /* ... in whole panels */
    const size_t D = (size_t)head_dim;
    return QP * D                  /* qp */
           + Q * D                 /* o: output accumulators (nvec, head_dim) */
           + 4 * Q                 /* running max, running sum, rescale factor, visible keys */
           + QP * TK               /* s */
           + TK * D                /* kp */
           + TK * round_up(D, NR); /* vp */
}

size_t qe_attn_scratch_floats(int head_dim, int group) {
    const size_t f = f32_scratch_floats(head_dim, group), t = qe_attn_amx_scratch_floats(head_dim, group);
    return f > t ? f : t;
}

typedef struct attn_vec {
    /* 1: the layouts hold bf16 pairs (attention_bf16.h): depth slots per
     * q/k vector (hd + 1) / 2, key slots per value panel TK / 2; and the
     * probabilities are rounded by round_p before pv */
    int pairs;
    /* s[r*TK + c] = sum_d qp[d*MR + r] * kp[d*NR + c], r < MR, c < NR, d in order
     * (hd: depth slots) */
    void (*qk)(const float *qp, const float *kp, int hd, float *s);
    /* o[r*ldo + c] = o[r*ldo + c] * corr[r] + sum_j p[r*TK + j] * vp[j*NR + c]
     * for r < MR, c < NR, j in order over keys j < jf (every row) and then
     * jf <= j < min(jm, nv[r]) (the causal diagonal: per row). */
    void (*pv)(float *o, size_t ldo, const float *corr, const float *p, const float *vp, const int *nv,
               int jf, int jm);
    /* s[j] = exp(s[j]*scale - m_new) for j < n, where m_new = max(m_old,
     * max_j s[j]*scale); returns the sum of the new s[j]. NaN propagates. */
    float (*softmax)(float *s, int n, float scale, float m_old, float *m_new);
    /* kp[(j/NR)*NR*hd + d*NR + j%NR] = k[j*ld + d] for j < nk, 0 for nk <= j < TK */
    void (*pack_k)(const float *k, size_t ld, int nk, int hd, float *kp);
    /* vp[(dp*TK + j)*NR + c] = v[j*ld + dp*NR + c] for j < nk (0 past hd) */
    void (*pack_v)(const float *v, size_t ld, int nk, int hd, float *vp);
    /* dst[d*MR] = src[d] for d < hd (src NULL: 0) */
    void (*pack_q)(const float *src, int hd, float *dst);
    /* NULL, or a row of probabilities (keys < nv valid) to what pv reads */
    void (*round_p)(float *s, int nv);
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

static void qk_scalar(const float *qp, const float *kp, int hd, float *s) {
    float acc[MR][NR] = {{0}};
    for (int d = 0; d < hd; d++)
        for (int r = 0; r < MR; r++)
            for (int c = 0; c < NR; c++) acc[r][c] += qp[d * MR + r] * kp[d * NR + c];
    for (int r = 0; r < MR; r++) memcpy(s + (size_t)r * TK, acc[r], sizeof acc[r]);
}

static void pv_scalar(float *o, size_t ldo, const float *corr, const float *p, const float *vp, const int *nv,
                      int jf, int jm) {
    for (int r = 0; r < MR; r++) {
        const int n = nv[r] < jm ? (nv[r] > jf ? nv[r] : jf) : jm;
        for (int c = 0; c < NR; c++) {
            float a = o[(size_t)r * ldo + c] * corr[r];
            for (int j = 0; j < n; j++) a += p[r * TK + j] * vp[j * NR + c];
            o[(size_t)r * ldo + c] = a;
        }
    }
}

static void pack_k_scalar(const float *k, size_t ld, int nk, int hd, float *kp) {
    for (int j = 0; j < TK; j++) {
        float *kpj = kp + (size_t)(j / NR) * NR * hd + j % NR;
        const float *kj = k + (size_t)j * ld;
        for (int d = 0; d < hd; d++) kpj[(size_t)d * NR] = j < nk ? kj[d] : 0.0f;
    }
}

static void pack_v_f32(const float *v, size_t ld, int nk, int hd, float *vp) {
    const int nd = (int)round_up((size_t)hd, NR) / NR;
    for (int j = 0; j < nk; j++) { /* vp rows past nk: no kernel reads them */
        const float *vj = v + (size_t)j * ld;
        for (int dp = 0; dp < nd; dp++) {
            const int n = hd - dp * NR < NR ? hd - dp * NR : NR;
            float *dst = vp + ((size_t)dp * TK + j) * NR;
            if (n == NR) /* a constant size: inlined as vector moves */
                memcpy(dst, vj + dp * NR, NR * sizeof(float));
            else
                for (int c = 0; c < NR; c++) dst[c] = c < n ? vj[dp * NR + c] : 0.0f;
        }
    }
}

static void pack_q_f32(const float *src, int hd, float *dst) {
    for (int d = 0; d < hd; d++) dst[(size_t)d * MR] = src ? src[d] : 0.0f;
}

#ifdef QE_X86
#define TGT __attribute__((target("avx2,fma")))

TGT static void qk_avx2(const float *qp, const float *kp, int hd, float *s) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
    for (int d = 0; d < hd; d++) {
        const __m256 w0 = _mm256_loadu_ps(kp), w1 = _mm256_loadu_ps(kp + 8);
        __m256 b;
        b = _mm256_broadcast_ss(qp + 0);
        c00 = _mm256_fmadd_ps(b, w0, c00);
        c01 = _mm256_fmadd_ps(b, w1, c01);
        b = _mm256_broadcast_ss(qp + 1);
        c10 = _mm256_fmadd_ps(b, w0, c10);
        c11 = _mm256_fmadd_ps(b, w1, c11);
        b = _mm256_broadcast_ss(qp + 2);
        c20 = _mm256_fmadd_ps(b, w0, c20);
        c21 = _mm256_fmadd_ps(b, w1, c21);
        b = _mm256_broadcast_ss(qp + 3);
        c30 = _mm256_fmadd_ps(b, w0, c30);
        c31 = _mm256_fmadd_ps(b, w1, c31);
        b = _mm256_broadcast_ss(qp + 4);
        c40 = _mm256_fmadd_ps(b, w0, c40);
        c41 = _mm256_fmadd_ps(b, w1, c41);
        b = _mm256_broadcast_ss(qp + 5);
        c50 = _mm256_fmadd_ps(b, w0, c50);
        c51 = _mm256_fmadd_ps(b, w1, c51);
        kp += NR;
        qp += MR;
    }
    _mm256_storeu_ps(s + 0 * TK, c00);
    _mm256_storeu_ps(s + 0 * TK + 8, c01);
    _mm256_storeu_ps(s + 1 * TK, c10);
    _mm256_storeu_ps(s + 1 * TK + 8, c11);
    _mm256_storeu_ps(s + 2 * TK, c20);
    _mm256_storeu_ps(s + 2 * TK + 8, c21);
    _mm256_storeu_ps(s + 3 * TK, c30);
    _mm256_storeu_ps(s + 3 * TK + 8, c31);
    _mm256_storeu_ps(s + 4 * TK, c40);
    _mm256_storeu_ps(s + 4 * TK + 8, c41);
    _mm256_storeu_ps(s + 5 * TK, c50);
    _mm256_storeu_ps(s + 5 * TK + 8, c51);
}

/* row r's accumulators += p[r][j] * (w0, w1) */
#define PV_ROW(r, c0, c1)                                     \
    do {                                                      \
        const __m256 b = _mm256_broadcast_ss(p + (r)*TK + j); \
        c0 = _mm256_fmadd_ps(b, w0, c0);                      \
        c1 = _mm256_fmadd_ps(b, w1, c1);                      \
    } while (0)

TGT static void pv_avx2(float *o, size_t ldo, const float *corr, const float *p, const float *vp,
                        const int *nv, int jf, int jm) {
#define PV_LOAD(r, c0, c1)                                                 \
    const __m256 k##r = _mm256_broadcast_ss(corr + (r));                   \
    __m256 c0 = _mm256_mul_ps(_mm256_loadu_ps(o + (size_t)(r)*ldo), k##r); \
    __m256 c1 = _mm256_mul_ps(_mm256_loadu_ps(o + (size_t)(r)*ldo + 8), k##r)
    PV_LOAD(0, c00, c01);
    PV_LOAD(1, c10, c11);
    PV_LOAD(2, c20, c21);
    PV_LOAD(3, c30, c31);
    PV_LOAD(4, c40, c41);
    PV_LOAD(5, c50, c51);
#undef PV_LOAD
    int j = 0;
#pragma GCC unroll 4
    for (; j < jf; j++) {
        const __m256 w0 = _mm256_loadu_ps(vp + j * NR), w1 = _mm256_loadu_ps(vp + j * NR + 8);
        PV_ROW(0, c00, c01);
        PV_ROW(1, c10, c11);
        PV_ROW(2, c20, c21);
        PV_ROW(3, c30, c31);
        PV_ROW(4, c40, c41);
        PV_ROW(5, c50, c51);
    }
    /* the causal diagonal: a masked key must not reach a row at all (0 * an
     * Inf or NaN value would), so it is skipped, not multiplied by zero */
    for (; j < jm; j++) {
        const __m256 w0 = _mm256_loadu_ps(vp + j * NR), w1 = _mm256_loadu_ps(vp + j * NR + 8);
        if (j < nv[0]) PV_ROW(0, c00, c01);
        if (j < nv[1]) PV_ROW(1, c10, c11);
        if (j < nv[2]) PV_ROW(2, c20, c21);
        if (j < nv[3]) PV_ROW(3, c30, c31);
        if (j < nv[4]) PV_ROW(4, c40, c41);
        if (j < nv[5]) PV_ROW(5, c50, c51);
    }
    _mm256_storeu_ps(o + 0 * ldo, c00);
    _mm256_storeu_ps(o + 0 * ldo + 8, c01);
    _mm256_storeu_ps(o + 1 * ldo, c10);
    _mm256_storeu_ps(o + 1 * ldo + 8, c11);
    _mm256_storeu_ps(o + 2 * ldo, c20);
    _mm256_storeu_ps(o + 2 * ldo + 8, c21);
    _mm256_storeu_ps(o + 3 * ldo, c30);
    _mm256_storeu_ps(o + 3 * ldo + 8, c31);
    _mm256_storeu_ps(o + 4 * ldo, c40);
    _mm256_storeu_ps(o + 4 * ldo + 8, c41);
    _mm256_storeu_ps(o + 5 * ldo, c50);
    _mm256_storeu_ps(o + 5 * ldo + 8, c51);
}
#undef PV_ROW

/* pack_k_scalar's result, 8 keys x 8 dims per register transpose: a scalar
 * transpose cost an eighth of the FMA work it feeds */
TGT static void pack_k_avx2(const float *k, size_t ld, int nk, int hd, float *kp) {
    int j0 = 0;
    for (; j0 + 8 <= nk; j0 += 8) {
        float *dst = kp + (size_t)(j0 / NR) * NR * hd + j0 % NR;
        const float *src = k + (size_t)j0 * ld;
        int d = 0;
        for (; d + 8 <= hd; d += 8) {
            __m256 r[8];
            for (int q = 0; q < 8; q++) r[q] = _mm256_loadu_ps(src + q * ld + d);
            qe_transpose8(r);
            for (int q = 0; q < 8; q++) _mm256_storeu_ps(dst + (size_t)(d + q) * NR, r[q]);
        }
        for (; d < hd; d++)
            for (int q = 0; q < 8; q++) dst[(size_t)d * NR + q] = src[q * ld + d];
    }
    for (; j0 < TK; j0++) {
        float *kpj = kp + (size_t)(j0 / NR) * NR * hd + j0 % NR;
        const float *kj = k + (size_t)j0 * ld;
        for (int d = 0; d < hd; d++) kpj[(size_t)d * NR] = j0 < nk ? kj[d] : 0.0f;
    }
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

__attribute__((target("avx2,fma"))) static float softmax_avx2(float *s, int n, float scale, float m_old,
                                                              float *m_new) {
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

/* AVX-512F bodies: an NR = 16 panel row is one zmm, so a micro-tile is 6
 * accumulators, one vector load and 6 broadcasts per step: half the AVX2
 * body's instructions for the same FMAs, with the same summation order per
 * output (each output one FMA chain over d or j in order), so exact and bf16
 * mode both keep the AVX2 body's results. pack_k stays AVX2 (a copy). */
#define TGT5 __attribute__((target("avx512f,avx2,fma")))

TGT5 static void qk_avx512(const float *qp, const float *kp, int hd, float *s) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
#pragma GCC unroll 4
    for (int d = 0; d < hd; d++) {
        const __m512 w = _mm512_loadu_ps(kp);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(qp[0]), w, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(qp[1]), w, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(qp[2]), w, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(qp[3]), w, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(qp[4]), w, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(qp[5]), w, c5);
        kp += NR;
        qp += MR;
    }
    _mm512_storeu_ps(s + 0 * TK, c0);
    _mm512_storeu_ps(s + 1 * TK, c1);
    _mm512_storeu_ps(s + 2 * TK, c2);
    _mm512_storeu_ps(s + 3 * TK, c3);
    _mm512_storeu_ps(s + 4 * TK, c4);
    _mm512_storeu_ps(s + 5 * TK, c5);
}

TGT5 static void pv_avx512(float *o, size_t ldo, const float *corr, const float *p, const float *vp,
                           const int *nv, int jf, int jm) {
    __m512 c[MR];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
        c[r] = _mm512_mul_ps(_mm512_loadu_ps(o + (size_t)r * ldo), _mm512_set1_ps(corr[r]));
    int j = 0;
#pragma GCC unroll 4
    for (; j < jf; j++) {
        const __m512 w = _mm512_loadu_ps(vp + j * NR);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) c[r] = _mm512_fmadd_ps(_mm512_set1_ps(p[r * TK + j]), w, c[r]);
    }
    /* the causal diagonal: masked keys are skipped, as in pv_avx2 */
    for (; j < jm; j++) {
        const __m512 w = _mm512_loadu_ps(vp + j * NR);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++)
            if (j < nv[r]) c[r] = _mm512_fmadd_ps(_mm512_set1_ps(p[r * TK + j]), w, c[r]);
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) _mm512_storeu_ps(o + (size_t)r * ldo, c[r]);
}

TGT5 static float softmax_avx512(float *s, int n, float scale, float m_old, float *m_new) {
    const __m512 vs = _mm512_set1_ps(scale);
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 x = _mm512_mul_ps(_mm512_loadu_ps(s + j), vs);
        _mm512_storeu_ps(s + j, x);
        vmax = _mm512_max_ps(vmax, x);
    }
    /* reduced as in softmax_avx2 */
    float tmp[16];
    _mm512_storeu_ps(tmp, vmax);
    float tmax = -INFINITY;
    for (int k = 0; k < 16; k++)
        if (tmp[k] > tmax) tmax = tmp[k];
    for (; j < n; j++) {
        s[j] *= scale;
        if (s[j] > tmax) tmax = s[j];
    }
    const float m = m_old > tmax ? m_old : tmax;
    const __m512 vm = _mm512_set1_ps(m);
    __m512 vsum = _mm512_setzero_ps();
    j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 e = qe_exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
        _mm512_storeu_ps(s + j, e);
        vsum = _mm512_add_ps(vsum, e);
    }
    _mm512_storeu_ps(tmp, vsum);
    float ps = 0.0f;
    for (int k = 0; k < 16; k += 4) ps += (tmp[k] + tmp[k + 1]) + (tmp[k + 2] + tmp[k + 3]);
    for (; j < n; j++) {
        s[j] = expf(s[j] - m);
        ps += s[j];
    }
    *m_new = m;
    return ps;
}
#endif

/* The bodies of `isa`; bf16: bf16 mode's vdpbf16ps bodies where the level
 * has them (the caller has ruled out the AMX tile body). */
static attn_vec pick_vec(qe_isa isa, int bf16) {
    attn_vec v = {0, qk_scalar, pv_scalar, softmax_scalar, pack_k_scalar, pack_v_f32, pack_q_f32, NULL};
#ifdef QE_X86
    if (isa >= QE_ISA_AVX2) {
        v.qk = qk_avx2;
        v.pv = pv_avx2;
        v.softmax = softmax_avx2;
        v.pack_k = pack_k_avx2;
    }
    if (isa >= QE_ISA_AVX512) {
        v.qk = qk_avx512;
        v.pv = pv_avx512;
        v.softmax = softmax_avx512;
    }
#if defined(__x86_64__)
    if (bf16 && isa >= QE_ISA_AVX512_BF16) {
        v.pairs = 1;
        v.qk = qe_attn_bf16_qk;
        v.pv = qe_attn_bf16_pv;
        v.pack_k = qe_attn_bf16_pack_k;
        v.pack_v = qe_attn_bf16_pack_v;
        v.pack_q = qe_attn_bf16_pack_q;
        v.round_p = qe_attn_bf16_round_p;
    }
#endif
#endif
    (void)bf16;
    return v;
}

/* Arguments plus the chosen bodies, shared by the tasks of one call. */
typedef struct attn_call {
    const qe_attn_args *a;
    attn_vec vec;
    int n_tasks;
    int amx;    /* 1: the AMX-BF16 body (attention_amx.c) */
    int tile_q; /* query rows per task: QE_ATTN_TILE_Q, or QE_ATTN_AMX_TILE_Q for the AMX body */
} attn_call;

/* One task's geometry: which rows, which heads, where its scratch lies. */
typedef struct attn_tile {
    int hd, group, nvec, np; /* np: MR-vector panels, the last may be partial */
    int qd, vk;              /* depth slots per q/k vector, key slots per value panel (attn_vec.pairs) */
    int r0;                  /* first query row, within the sequence */
    int c0, nk;              /* the current key tile: keys [c0, c0+nk) */
    float *qp, *o, *mx, *sum, *corr, *s, *kp, *vp;
    int *vis; /* (nvec) keys of the current tile each vector sees, <= 0: none */
    /* the next key tile, fetched into cache while this one is computed */
    const float *next_k, *next_v;
    size_t ld;
    int next_lines, next_done, next_step; /* cache lines in all, issued, per kernel call */
} attn_tile;

/* Issues the next step of prefetches of the next tile's key and value rows.
 * Why: rows of one kv head are a few hundred bytes every ldkv floats, out in
 * L3 or memory, and packing them waited on each miss in turn (a fifth of
 * the time); spread over this tile's kernel calls they arrive meanwhile. */
static void prefetch_next(attn_tile *t) {
    const int per_row = (int)round_up((size_t)t->hd * sizeof(float), 64) / 64;
    const int end = t->next_done + t->next_step < t->next_lines ? t->next_done + t->next_step : t->next_lines;
    for (; t->next_done < end; t->next_done++) {
        const int l = t->next_done / 2, row = l / per_row;
        const int col = l % per_row * 16 < t->hd ? l % per_row * 16 : t->hd - 1; /* stays in the row */
        const float *base = t->next_done % 2 ? t->next_v : t->next_k;
        __builtin_prefetch(base + (size_t)row * t->ld + col, 0, 2);
    }
}

/* Keys of the current tile that vector v sees (causal: row r sees keys
 * 0..r), <= 0 when none; 0 for the padding past nvec. */
static int n_visible(const attn_tile *t, int v) {
    return v < t->nvec ? t->vis[v] : 0;
}

/* Keys [c0, c0+nk) of kv head kvh (rows ld floats apart, often 4 KiB, which
 * thrashes L1 sets when walked directly) into kp and vp, and each vector's
 * visible keys into vis. Keys past nk and columns past hd are zero: the
 * kernels compute them, nothing reads them. */
static void pack_kv(attn_tile *t, const attn_vec *vec, const float *k, const float *v, size_t ld) {
    vec->pack_k(k, ld, t->nk, t->hd, t->kp);
    vec->pack_v(v, ld, t->nk, t->hd, t->vp);
    const int c1 = t->c0 + t->nk;
    for (int i = 0; i * t->group < t->nvec; i++) {
        const int r = t->r0 + i;
        const int n = (c1 < r + 1 ? c1 : r + 1) - t->c0;
        for (int g = 0; g < t->group; g++) t->vis[i * t->group + g] = n;
    }
}

/* One key tile for all the task's vectors: S, softmax, O. */
static void attend_tile(attn_tile *t, const attn_vec *vec, float scale) {
    const int hd = t->hd, nd = (int)round_up((size_t)hd, NR) / NR;
    /* S = Q Kt, key panel outermost: its 16 x hd floats stay in L1 while
     * the query panels stream past. Key panels a whole query panel cannot
     * see are skipped (the causal diagonal); nothing reads those scores. */
    for (int jp = 0; jp * NR < t->nk; jp++)
        for (int b = 0; b < t->np; b++) {
            const int last = (b + 1) * MR < t->nvec ? (b + 1) * MR - 1 : t->nvec - 1;
            if (n_visible(t, last) <= jp * NR) continue; /* rows grow with v: last sees most */
            vec->qk(t->qp + (size_t)b * MR * t->qd, t->kp + (size_t)jp * NR * t->qd, t->qd,
                    t->s + (size_t)b * MR * TK + jp * NR);
            prefetch_next(t);
        }
    for (int v = 0; v < t->nvec; v++) {
        const int nv = n_visible(t, v);
        if (nv <= 0) { /* no visible key: the row is left as it is */
            t->corr[v] = 1.0f;
            continue;
        }
        float mnew;
        const float ps = vec->softmax(t->s + (size_t)v * TK, nv, scale, t->mx[v], &mnew);
        if (vec->round_p) vec->round_p(t->s + (size_t)v * TK, nv);
        /* first tile: nothing to rescale (exp(-inf) would be 0 anyway) */
        const float corr = t->mx[v] == -INFINITY ? 0.0f : expf(t->mx[v] - mnew);
        t->corr[v] = corr;
        t->sum[v] = t->sum[v] * corr + ps;
        t->mx[v] = mnew;
    }
    /* O = O * corr + P V, value panel outermost (16 columns x TK keys, in L1) */
    for (int dp = 0; dp < nd; dp++) {
        const float *vp = t->vp + (size_t)dp * t->vk * NR;
        const int nc = hd - dp * NR < NR ? hd - dp * NR : NR;
        for (int b = 0; b < t->np; b++) {
            const int v0 = b * MR, mr = t->nvec - v0 < MR ? t->nvec - v0 : MR;
            int nv[MR], jf = TK, jm = 0;
            float corr[MR];
            for (int r = 0; r < MR; r++) {
                nv[r] = r < mr ? n_visible(t, v0 + r) : 0;
                if (nv[r] < 0) nv[r] = 0;
                if (r < mr && nv[r] < jf) jf = nv[r];
                if (nv[r] > jm) jm = nv[r];
                corr[r] = r < mr ? t->corr[v0 + r] : 0.0f;
            }
            if (jm == 0) continue; /* no row sees a key: corr is 1 for all */
            float *o = t->o + (size_t)v0 * hd + dp * NR;
            const float *p = t->s + (size_t)v0 * TK;
            if (mr == MR && nc == NR) {
                vec->pv(o, (size_t)hd, corr, p, vp, nv, jf, jm);
                continue;
            }
            /* a partial block: through a full one (rows past nvec, columns
             * past hd are the padding and are not copied back) */
            float blk[MR * NR] = {0};
            for (int r = 0; r < mr; r++) memcpy(blk + r * NR, o + (size_t)r * hd, (size_t)nc * sizeof(float));
            vec->pv(blk, NR, corr, p, vp, nv, jf, jm);
            for (int r = 0; r < mr; r++) memcpy(o + (size_t)r * hd, blk + r * NR, (size_t)nc * sizeof(float));
        }
    }
}

/* Task = (query tile, kv head): the TILE_Q rows of one sequence for every
 * query head sharing that kv head (GQA group), so each key/value tile is
 * packed once for TILE_Q x group query vectors. Tasks run largest first (the
 * pool hands them out in order; a causal tile's cost grows with its index),
 * so the last ones to finish are short. The tile index is found in tile_off
 * by binary search (tile_off[s] = first tile of sequence s). */
static void attn_task(void *arg, int task, int thread) {
    const attn_call *call = arg;
    const qe_attn_args *a = call->a;
    task = call->n_tasks - 1 - task;
    const int hd = a->head_dim;
    const int group = a->n_heads / a->n_kv_heads;
    const int kvh = task % a->n_kv_heads;
    const int tile = task / a->n_kv_heads;
    int lo = 0, hi = a->n_seq - 1;
    while (lo < hi) { /* last s with tile_off[s] <= tile */
        int mid = (lo + hi + 1) / 2;
        if (a->tile_off[mid] <= tile)
            lo = mid;
        else
            hi = mid - 1;
    }
    const int s = lo;
    const size_t base = (size_t)a->seq_off[s];
    const int len = a->seq_off[s + 1] - a->seq_off[s];
    int r0, r1; /* query rows within the sequence */
    if (a->last_only) {
        r0 = len - 1;
        r1 = len;
    } else {
        r0 = (tile - a->tile_off[s]) * call->tile_q;
        r1 = r0 + call->tile_q < len ? r0 + call->tile_q : len;
    }
    float *scratch = a->scratch + (size_t)thread * qe_attn_scratch_floats(hd, group);
    if (call->amx) {
        qe_attn_amx_task(a, base, kvh, r0, r1, scratch);
        return;
    }
    const attn_vec *vec = &call->vec;
    attn_tile t = {.hd = hd, .group = group, .nvec = (r1 - r0) * group, .r0 = r0, .ld = a->ldkv};
    t.qd = vec->pairs ? (hd + 1) / 2 : hd;
    t.vk = vec->pairs ? TK / 2 : TK;
    t.np = (t.nvec + MR - 1) / MR;
    const size_t Q = (size_t)QE_ATTN_TILE_Q * group;
    t.qp = scratch;
    t.o = t.qp + round_up(Q, MR) * hd; /* (nvec, hd) */
    t.mx = t.o + Q * hd;               /* (nvec) */
    t.sum = t.mx + Q;                  /* (nvec) */
    t.corr = t.sum + Q;                /* (nvec) */
    t.vis = (int *)(t.corr + Q);       /* (nvec) ints in a float's room */
    t.s = t.corr + 2 * Q;              /* (np*MR, TK) */
    t.kp = t.s + round_up(Q, MR) * TK; /* (TK/NR, hd, NR) */
    t.vp = t.kp + (size_t)TK * hd;     /* (ceil(hd/NR), TK, NR) */

    /* vector v = row r0 + v/group, head kvh*group + v%group: the group's heads
     * are adjacent in a row of q, so vector v starts v*hd floats into it */
    const float *qrow0 = a->q + (base + r0) * a->ldq + (size_t)kvh * group * hd;
    for (int v = 0; v < t.np * MR; v++) {
        float *dst = t.qp + (size_t)(v / MR) * MR * t.qd + v % MR;
        if (v >= t.nvec) {
            vec->pack_q(NULL, hd, dst);
            continue;
        }
        vec->pack_q(qrow0 + (size_t)(v / group) * a->ldq + (size_t)(v % group) * hd, hd, dst);
        memset(t.o + (size_t)v * hd, 0, (size_t)hd * sizeof(float));
        t.mx[v] = -INFINITY;
        t.sum[v] = 0.0f;
    }
    const float scale = 1.0f / sqrtf((float)hd);
    /* Causal: query row r sees keys 0..r; the tile needs keys [0, r1). */
    for (t.c0 = 0; t.c0 < r1; t.c0 += TK) {
        t.nk = t.c0 + TK < r1 ? TK : r1 - t.c0;
        const size_t off = (base + t.c0) * a->ldkv + (size_t)kvh * hd;
        pack_kv(&t, vec, a->k + off, a->v + off, a->ldkv);
        const int next_nk = r1 - (t.c0 + TK) < TK ? r1 - (t.c0 + TK) : TK; /* <= 0: none */
        t.next_lines = 0;
        if (next_nk > 0) {
            t.next_k = a->k + off + TK * a->ldkv;
            t.next_v = a->v + off + TK * a->ldkv;
            t.next_lines = 2 * next_nk * (int)(round_up((size_t)hd * sizeof(float), 64) / 64);
        }
        t.next_done = 0;
        t.next_step = t.next_lines / (t.np * (TK / NR)) + 1;
        attend_tile(&t, vec, scale);
    }
    for (int v = 0; v < t.nvec; v++) {
        float *out = a->q + (base + r0 + v / group) * a->ldq + (size_t)(kvh * group + v % group) * hd;
        const float inv = 1.0f / t.sum[v];
        const float *ov = t.o + (size_t)v * hd;
        for (int d = 0; d < hd; d++) out[d] = ov[d] * inv;
    }
}

void qe_attention(qe_threadpool *pool, const qe_attn_args *a) {
    const int amx = a->bf16 && a->isa >= QE_ISA_AMX && qe_attn_amx_usable();
    const int tq = amx ? QE_ATTN_AMX_TILE_Q : QE_ATTN_TILE_Q;
    int tiles = 0;
    for (int s = 0; s < a->n_seq; s++) {
        a->tile_off[s] = tiles;
        int len = a->seq_off[s + 1] - a->seq_off[s];
        tiles += a->last_only ? 1 : (len + tq - 1) / tq;
    }
    a->tile_off[a->n_seq] = tiles;
    attn_call call = {a, pick_vec(a->isa, a->bf16), tiles * a->n_kv_heads, amx, tq};
    qe_threadpool_run(pool, attn_task, &call, call.n_tasks);
}
