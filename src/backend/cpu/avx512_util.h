/* Small AVX-512 helpers shared by attention (softmax; the bf16 packing of
 * attention_amx.c and attention_bf16.c), the ops (SwiGLU) and the AMX
 * kernels' gate+up epilogues (x86-64 only; include inside
 * #if defined(__x86_64__)). Inlined into their callers, whose
 * target attributes include avx512f (and avx512bw for the _BW ones). */
#ifndef QE_AVX512_UTIL_H
#define QE_AVX512_UTIL_H

#include <immintrin.h>

#define QE_AVX512_INL __attribute__((target("avx512f"))) static inline __attribute__((always_inline))
#define QE_AVX512BW_INL \
    __attribute__((target("avx512f,avx512bw"))) static inline __attribute__((always_inline))

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

/* SwiGLU's product on 16 lanes: silu(x) * u = x / (1 + exp(-x)) * u with the
 * exp above (ops.c's AVX-512 SwiGLU and the AMX kernels' gate+up epilogues
 * compute it this one way, so their results agree bit for bit). */
QE_AVX512_INL __m512 qe_silu_mul_avx512(__m512 x, __m512 u) {
    __m512 e = qe_exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}

/* g = silu(g) * u over `cols` values (1..16), masked for a tail. */
QE_AVX512_INL void qe_silu_mul16_avx512(float *g, const float *u, int cols) {
    __mmask16 mk = (__mmask16)((1u << cols) - 1);
    __m512 r = qe_silu_mul_avx512(_mm512_maskz_loadu_ps(mk, g), _mm512_maskz_loadu_ps(mk, u));
    _mm512_mask_storeu_ps(g, mk, r);
}

/* qe_f32_to_bf16's rounding on 16 lanes (nearest even, NaN quieted; not
 * vcvtneps2bf16, which flushes denormals, which the reference keeps): each
 * 32-bit lane's high half is the bf16, its low half is left as the rounding
 * add made it. */
QE_AVX512_INL __m512i qe_bf16_round_avx512(__m512 v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i r =
        _mm512_add_epi32(u, _mm512_add_epi32(_mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)),
                                             _mm512_set1_epi32(0x7fff)));
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_blend_epi32(nan, r, _mm512_or_si512(u, _mm512_set1_epi32(0x00400000)));
}

/* 16 floats to 16 bf16 with that rounding, as the products. */
QE_AVX512_INL __m256i qe_bf16x16_avx512(__m512 v) {
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(qe_bf16_round_avx512(v), 16));
}

/* 32 floats from src (n < 32 of them valid, the rest read as 0, not read at
 * all) as 32 bf16 in order: as 16 32-bit lanes, lane p holds elements 2p (low
 * half) and 2p+1, the pair vdpbf16ps and tdpbf16ps multiply together. */
QE_AVX512_INL __m512i qe_bf16x32_load_avx512(const float *src, int n) {
    const __mmask16 m0 = n >= 16 ? 0xffff : (__mmask16)((1u << (n > 0 ? n : 0)) - 1);
    const __mmask16 m1 = n >= 32 ? 0xffff : (__mmask16)((1u << (n > 16 ? n - 16 : 0)) - 1);
    const __m256i lo = qe_bf16x16_avx512(_mm512_maskz_loadu_ps(m0, src));
    const __m256i hi = qe_bf16x16_avx512(_mm512_maskz_loadu_ps(m1, src + 16));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* 16 bf16 of row a and 16 of row b as 16 pairs, lane c = (a[c] low, b[c]
 * high): two keys of a value column side by side, the depth pair of the
 * P V product. */
QE_AVX512BW_INL __m512i qe_bf16_interleave_avx512(__m256i a, __m256i b) {
    const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23,
                                           7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(inter, _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1));
}

/* r[i] lane j <- r[j] lane i, 32-bit lanes (64 shuffles): 16 keys' rows of
 * bf16 pairs to 16 rows of one pair for each key. */
QE_AVX512_INL void qe_transpose16_avx512(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int k = 0; k < 8; k++) {
        t[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
    }
    /* u[4k + m], 128-bit lane L: column 4L + m of rows 4k..4k+3 */
    for (int k = 0; k < 4; k++) {
        u[4 * k] = _mm512_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 1] = _mm512_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 2] = _mm512_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
        u[4 * k + 3] = _mm512_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
    }
    /* then a 4 x 4 transpose of 128-bit lanes for each m */
    for (int m = 0; m < 4; m++) {
        const __m512i x0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x44);
        const __m512i x1 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xee);
        const __m512i x2 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x44);
        const __m512i x3 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xee);
        r[m] = _mm512_shuffle_i32x4(x0, x2, 0x88);
        r[4 + m] = _mm512_shuffle_i32x4(x0, x2, 0xdd);
        r[8 + m] = _mm512_shuffle_i32x4(x1, x3, 0x88);
        r[12 + m] = _mm512_shuffle_i32x4(x1, x3, 0xdd);
    }
}

#endif
