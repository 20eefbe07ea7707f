/* Small AVX-512 helpers shared by attention (softmax) and the ops (SwiGLU)
 * (x86-64 only; include inside #if defined(__x86_64__)). Inlined into their
 * callers, whose target attributes include avx512f. */
#ifndef QE_AVX512_UTIL_H
#define QE_AVX512_UTIL_H

#include <immintrin.h>

#define QE_AVX512_INL __attribute__((target("avx512f"))) static inline __attribute__((always_inline))

/* Cephes expf on 16 lanes (attention.c's exp_avx2, widened), for any x: clamped
 * to the f32 range first, so exp(-large) is 0 and exp(large) is finite-huge
 * (silu then gives -0 and x, as expf's 0 and Inf do). */
QE_AVX512_INL __m512 qe_exp_avx512(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(88.3762626647949f), x);
    x = _mm512_max_ps(_mm512_set1_ps(-87.3365447504f), x);
    __m512 fx = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f));
    fx = _mm512_roundscale_ps(fx, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    __m512i n = _mm512_add_epi32(_mm512_cvttps_epi32(fx), _mm512_set1_epi32(127));
    return _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(n, 23)));
}

#endif
