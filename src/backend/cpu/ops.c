#include "backend/cpu/ops.h"

#include <math.h>
#include <string.h>

#include "backend/cpu/dequant.h"
#include "backend/cpu/kernels.h"

void qe_op_embed_rows(const void *E, qe_dtype dt, int hidden, const int32_t *ids, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) {
        size_t base = (size_t)ids[i] * (size_t)hidden;
        float *o = out + i * (size_t)hidden;
        switch (dt) {
            case QE_F32: memcpy(o, (const float *)E + base, (size_t)hidden * sizeof(float)); break;
            case QE_BF16: {
                const uint16_t *r = (const uint16_t *)E + base;
                for (int j = 0; j < hidden; j++) o[j] = qe_bf16_to_f32(r[j]);
                break;
            }
            case QE_F16: {
                const uint16_t *r = (const uint16_t *)E + base;
                for (int j = 0; j < hidden; j++) o[j] = qe_f16_to_f32(r[j]);
                break;
            }
            default: /* block types: rows are whole blocks (gguf_model.c checks) */
                qe_dequant_row(dt, (const unsigned char *)E + qe_dtype_bytes(dt, base), o, (size_t)hidden);
                break;
        }
    }
}

void qe_op_rmsnorm_rows(const float *x, size_t ldx, float *y, size_t ldy, size_t r0, size_t r1, int d,
                        const float *w, float eps) {
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        /* The sum of squares in double: the mean is then the correctly rounded
         * f32 value HF gets from its f32 reduction, up to its summation order. */
        double ss = 0.0;
        for (int j = 0; j < d; j++) ss += (double)xr[j] * (double)xr[j];
        float var = (float)(ss / d);
        float inv = 1.0f / sqrtf(var + eps);
        for (int j = 0; j < d; j++) yr[j] = w[j] * (xr[j] * inv);
    }
}

void qe_op_rope_table(double theta, int head_dim, int n_pos, float *cos_t, float *sin_t) {
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        /* HF: inv_freq = 1.0 / (base ** (arange(0, d, 2).float() / d)), all f32. */
        float expo = (float)(2 * i) / (float)head_dim;
        float p = (float)pow(theta, (double)expo);
        float inv_freq = 1.0f / p;
        for (int pos = 0; pos < n_pos; pos++) {
            float ang = (float)pos * inv_freq; /* f32 product, as the f32 matmul in HF */
            cos_t[(size_t)pos * half + i] = (float)cos((double)ang);
            sin_t[(size_t)pos * half + i] = (float)sin((double)ang);
        }
    }
}

void qe_op_rope_head(float *v, int head_dim, const float *c, const float *s) {
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
    }
}

void qe_op_swiglu(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = g[i];
        g[i] = x / (1.0f + expf(-x)) * u[i];
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#include "backend/cpu/avx512_util.h"

__attribute__((target("avx512f"))) static void swiglu_avx512(float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(g + i, qe_silu_mul_avx512(_mm512_loadu_ps(g + i), _mm512_loadu_ps(u + i)));
    }
    qe_op_swiglu(g + i, u + i, n - i);
}

/* qe_op_rmsnorm_rows with 16 lanes: the squares summed in double as there
 * (4 chains of 8 lanes: the order differs, the double sum does not round
 * to a different f32 but in rare last-bit cases), the scaling per element
 * the same f32 operations. The serial double sum was a tenth of a batch.
 * The pieces below are shared by every AVX-512 norm (plain, after a residual
 * add, per head before RoPE), so all of them round alike bit for bit. */

/* The four double chains' step for 32 values v0 (j..j+15), v1 (j+16..j+31). */
QE_AVX512_INL void ss_step32(__m512 v0, __m512 v1, __m512d a[4]) {
    __m512d d0 = _mm512_cvtps_pd(_mm512_castps512_ps256(v0));
    __m512d d1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v0), 1)));
    __m512d d2 = _mm512_cvtps_pd(_mm512_castps512_ps256(v1));
    __m512d d3 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v1), 1)));
    a[0] = _mm512_fmadd_pd(d0, d0, a[0]);
    a[1] = _mm512_fmadd_pd(d1, d1, a[1]);
    a[2] = _mm512_fmadd_pd(d2, d2, a[2]);
    a[3] = _mm512_fmadd_pd(d3, d3, a[3]);
}

/* 1 / sqrt(mean + eps) from the chains, then the tail [j, d) of xr summed
 * serially after them (the reference's scalar form). */
QE_AVX512_INL float ss_inv(const __m512d a[4], const float *xr, int j, int d, float eps) {
    double ss = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a[0], a[1]), _mm512_add_pd(a[2], a[3])));
    for (; j < d; j++) ss += (double)xr[j] * (double)xr[j];
    float var = (float)(ss / d);
    return 1.0f / sqrtf(var + eps);
}

/* yr = w * (xr * inv) over d values. */
QE_AVX512_INL void scale_row(const float *xr, float *yr, int d, const float *w, float inv) {
    const __m512 vi = _mm512_set1_ps(inv);
    int j = 0;
    for (; j + 16 <= d; j += 16)
        _mm512_storeu_ps(yr + j,
                         _mm512_mul_ps(_mm512_loadu_ps(w + j), _mm512_mul_ps(_mm512_loadu_ps(xr + j), vi)));
    for (; j < d; j++) yr[j] = w[j] * (xr[j] * inv);
}

__attribute__((target("avx512f"))) static void rmsnorm_avx512(const float *x, size_t ldx, float *y,
                                                              size_t ldy, size_t r0, size_t r1, int d,
                                                              const float *w, float eps) {
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * ldx;
        __m512d a[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
        int j = 0;
        for (; j + 32 <= d; j += 32) ss_step32(_mm512_loadu_ps(xr + j), _mm512_loadu_ps(xr + j + 16), a);
        scale_row(xr, y + r * ldy, d, w, ss_inv(a, xr, j, d, eps));
    }
}

/* x += delta and the sum of squares of the new x in one read of both; then
 * the scaling (the row is in L1 by then). Each x the same f32 add as
 * qe_op_add, the sum and scaling those of rmsnorm_avx512. */
__attribute__((target("avx512f"))) static void add_rmsnorm_avx512(float *x, size_t ldx, const float *dl,
                                                                  size_t ldd, float *y, size_t ldy, size_t r0,
                                                                  size_t r1, int d, const float *w,
                                                                  float eps) {
    for (size_t r = r0; r < r1; r++) {
        float *xr = x + r * ldx;
        const float *dr = dl + r * ldd;
        __m512d a[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
        int j = 0;
        if (w) {
            for (; j + 32 <= d; j += 32) {
                __m512 v0 = _mm512_add_ps(_mm512_loadu_ps(xr + j), _mm512_loadu_ps(dr + j));
                __m512 v1 = _mm512_add_ps(_mm512_loadu_ps(xr + j + 16), _mm512_loadu_ps(dr + j + 16));
                _mm512_storeu_ps(xr + j, v0);
                _mm512_storeu_ps(xr + j + 16, v1);
                ss_step32(v0, v1, a);
            }
        }
        const int jn = j;
        for (; j + 16 <= d; j += 16)
            _mm512_storeu_ps(xr + j, _mm512_add_ps(_mm512_loadu_ps(xr + j), _mm512_loadu_ps(dr + j)));
        for (; j < d; j++) xr[j] += dr[j];
        if (w) scale_row(xr, y + r * ldy, d, w, ss_inv(a, xr, jn, d, eps));
    }
}

/* RMSNorm then RoPE of one head of d values (d % 32 == 0, d <= 256) held in
 * registers: rmsnorm_avx512's arithmetic, then qe_op_rope_head's (a * c -
 * b * s and b * c + a * s, each a separate rounded f32 multiply and add as
 * in the C there, which is compiled without contraction). Inlined per d so
 * the head stays in zmm registers for the usual 128. */
QE_AVX512_INL void norm_rope_head(float *v, int d, const float *w, float eps, const float *c,
                                  const float *s) {
    __m512 x[16];
    const int nv = d / 16, hv = nv / 2;
    __m512d a[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    for (int i = 0; i < nv; i++) x[i] = _mm512_loadu_ps(v + 16 * i);
    for (int i = 0; i < nv; i += 2) ss_step32(x[i], x[i + 1], a);
    const __m512 vi = _mm512_set1_ps(ss_inv(a, v, d, d, eps));
    for (int i = 0; i < nv; i++) x[i] = _mm512_mul_ps(_mm512_loadu_ps(w + 16 * i), _mm512_mul_ps(x[i], vi));
    for (int i = 0; i < hv; i++) {
        const __m512 ci = _mm512_loadu_ps(c + 16 * i), si = _mm512_loadu_ps(s + 16 * i);
        const __m512 lo = x[i], hi = x[i + hv];
        _mm512_storeu_ps(v + 16 * i, _mm512_sub_ps(_mm512_mul_ps(lo, ci), _mm512_mul_ps(hi, si)));
        _mm512_storeu_ps(v + 16 * (i + hv), _mm512_add_ps(_mm512_mul_ps(hi, ci), _mm512_mul_ps(lo, si)));
    }
}

__attribute__((target("avx512f"))) static void norm_rope_heads_avx512(float *v, int n_heads, int d,
                                                                      const float *w, float eps,
                                                                      const float *c, const float *s) {
    if (d == 128) {
        for (int h = 0; h < n_heads; h++) norm_rope_head(v + (size_t)h * 128, 128, w, eps, c, s);
    } else {
        for (int h = 0; h < n_heads; h++) norm_rope_head(v + (size_t)h * d, d, w, eps, c, s);
    }
}
#endif

void qe_op_swiglu_isa(qe_isa isa, float *g, const float *u, size_t n) {
#if defined(__x86_64__)
    if (isa >= QE_ISA_AVX512) {
        swiglu_avx512(g, u, n);
        return;
    }
#endif
    (void)isa;
    qe_op_swiglu(g, u, n);
}

void qe_op_rmsnorm_rows_isa(qe_isa isa, const float *x, size_t ldx, float *y, size_t ldy, size_t r0,
                            size_t r1, int d, const float *w, float eps) {
#if defined(__x86_64__)
    if (isa >= QE_ISA_AVX512) {
        rmsnorm_avx512(x, ldx, y, ldy, r0, r1, d, w, eps);
        return;
    }
#endif
    (void)isa;
    qe_op_rmsnorm_rows(x, ldx, y, ldy, r0, r1, d, w, eps);
}

void qe_op_add_rmsnorm_rows_isa(qe_isa isa, float *x, size_t ldx, const float *delta, size_t ldd, float *y,
                                size_t ldy, size_t r0, size_t r1, int d, const float *w, float eps) {
#if defined(__x86_64__)
    if (isa >= QE_ISA_AVX512) {
        add_rmsnorm_avx512(x, ldx, delta, ldd, y, ldy, r0, r1, d, w, eps);
        return;
    }
#endif
    for (size_t r = r0; r < r1; r++) qe_op_add(x + r * ldx, delta + r * ldd, (size_t)d);
    if (w) qe_op_rmsnorm_rows_isa(isa, x, ldx, y, ldy, r0, r1, d, w, eps);
}

void qe_op_rmsnorm_rope_heads_isa(qe_isa isa, float *v, int n_heads, int d, const float *w, float eps,
                                  const float *cos_row, const float *sin_row) {
#if defined(__x86_64__)
    if (isa >= QE_ISA_AVX512 && d % 32 == 0 && d <= 256) {
        norm_rope_heads_avx512(v, n_heads, d, w, eps, cos_row, sin_row);
        return;
    }
#endif
    qe_op_rmsnorm_rows_isa(isa, v, (size_t)d, v, (size_t)d, 0, (size_t)n_heads, d, w, eps);
    for (int h = 0; h < n_heads; h++) qe_op_rope_head(v + (size_t)h * d, d, cos_row, sin_row);
}

void qe_op_add(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

float qe_op_dot(const float *a, const float *b, int n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
        s4 += a[i + 4] * b[i + 4];
        s5 += a[i + 5] * b[i + 5];
        s6 += a[i + 6] * b[i + 6];
        s7 += a[i + 7] * b[i + 7];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}
