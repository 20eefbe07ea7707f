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
    const __m512 one = _mm512_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(g + i);
        __m512 e = qe_exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), x));
        _mm512_storeu_ps(g + i,
                         _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i)));
    }
    qe_op_swiglu(g + i, u + i, n - i);
}
#endif

/* qe_op_rmsnorm_rows with 16 lanes: the squares summed in double as there
 * (4 chains of 8 lanes: the order differs, the double sum does not round
 * to a different f32 but in rare last-bit cases), the scaling per element
 * the same f32 operations. The serial double sum was a tenth of a batch. */
__attribute__((target("avx512f"))) static void rmsnorm_avx512(const float *x, size_t ldx, float *y,
                                                              size_t ldy, size_t r0, size_t r1, int d,
                                                              const float *w, float eps) {
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
        int j = 0;
        for (; j + 32 <= d; j += 32) {
            __m512 v0 = _mm512_loadu_ps(xr + j), v1 = _mm512_loadu_ps(xr + j + 16);
            __m512d d0 = _mm512_cvtps_pd(_mm512_castps512_ps256(v0));
            __m512d d1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v0), 1)));
            __m512d d2 = _mm512_cvtps_pd(_mm512_castps512_ps256(v1));
            __m512d d3 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v1), 1)));
            a0 = _mm512_fmadd_pd(d0, d0, a0);
            a1 = _mm512_fmadd_pd(d1, d1, a1);
            a2 = _mm512_fmadd_pd(d2, d2, a2);
            a3 = _mm512_fmadd_pd(d3, d3, a3);
        }
        double ss = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
        for (; j < d; j++) ss += (double)xr[j] * (double)xr[j];
        float var = (float)(ss / d);
        float inv = 1.0f / sqrtf(var + eps);
        const __m512 vi = _mm512_set1_ps(inv);
        j = 0;
        for (; j + 16 <= d; j += 16)
            _mm512_storeu_ps(
                yr + j, _mm512_mul_ps(_mm512_loadu_ps(w + j), _mm512_mul_ps(_mm512_loadu_ps(xr + j), vi)));
        for (; j < d; j++) yr[j] = w[j] * (xr[j] * inv);
    }
}

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
