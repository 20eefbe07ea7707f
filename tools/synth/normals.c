/* Blocks of standard normals for the generator: the scalar reference
 * (rng.h) and an AVX2 body doing the very same float operations in the same
 * order, 8 pairs at a time (no FMA: two roundings, as in the scalar code), so
 * both give identical bits (checked by
 * model.synth: QEMBED_SYNTH_SCALAR=1 must not change the file). */
#include "normals.h"

#include <immintrin.h>
#include <stdlib.h>

#include "rng.h"

static void normals_scalar(uint64_t key, uint64_t j0, size_t n_pairs, float *out) {
    for (size_t k = 0; k < n_pairs; k++) qs_normal_pair(key, j0 + k, out + 2 * k);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define QS_AVX2 __attribute__((target("avx2")))

QS_AVX2 static __m256 c8(float v) {
    return _mm256_set1_ps(v);
}

/* qs_logf, lane-wise */
QS_AVX2 static __m256 log8(__m256 x) {
    __m256i u = _mm256_castps_si256(x);
    __m256i e = _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(u, 23), _mm256_set1_epi32(0xFF)),
                                 _mm256_set1_epi32(126));
    u = _mm256_or_si256(_mm256_and_si256(u, _mm256_set1_epi32((int)0x807FFFFFu)),
                        _mm256_set1_epi32(0x3F000000));
    __m256 m = _mm256_castsi256_ps(u);
    __m256 lo = _mm256_cmp_ps(m, c8(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm256_add_epi32(e, _mm256_castps_si256(lo)); /* lanes of lo are -1 */
    m = _mm256_blendv_ps(m, _mm256_add_ps(m, m), lo);
    m = _mm256_sub_ps(m, c8(1.0f));
    __m256 z = _mm256_mul_ps(m, m);
    __m256 y = c8(7.0376836292E-2f);
    y = _mm256_add_ps(_mm256_mul_ps(y, m), c8(-1.1514610310E-1f));
    y = _mm256_add_ps(_mm256_mul_ps(y, m), c8(1.1676998740E-1f));
    y = _mm256_add_ps(_mm256_mul_ps(y, m), c8(-1.2420140846E-1f));
    y = _mm256_add_ps(_mm256_mul_ps(y, m), c8(1.4249322787E-1f));
    y = _mm256_add_ps(_mm256_mul_ps(y, m), c8(-1.6668057665E-1f));
    y = _mm256_add_ps(_mm256_mul_ps(y, m), c8(2.0000714765E-1f));
    y = _mm256_add_ps(_mm256_mul_ps(y, m), c8(-2.4999993993E-1f));
    y = _mm256_add_ps(_mm256_mul_ps(y, m), c8(3.3333331174E-1f));
    y = _mm256_mul_ps(_mm256_mul_ps(y, m), z);
    __m256 fe = _mm256_cvtepi32_ps(e);
    y = _mm256_add_ps(y, _mm256_mul_ps(c8(-2.12194440E-4f), fe));
    y = _mm256_add_ps(y, _mm256_mul_ps(c8(-0.5f), z));
    return _mm256_add_ps(_mm256_add_ps(m, y), _mm256_mul_ps(c8(0.693359375f), fe));
}

/* qs_sincos_turns, lane-wise */
QS_AVX2 static void sincos8(__m256 u, __m256 *s, __m256 *co) {
    __m256i q = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(u, c8(4.0f)), c8(0.5f)));
    __m256 x = _mm256_mul_ps(_mm256_sub_ps(u, _mm256_mul_ps(c8(0.25f), _mm256_cvtepi32_ps(q))),
                             c8(6.2831853071795864f));
    __m256 z = _mm256_mul_ps(x, x);
    __m256 sx = _mm256_mul_ps(c8(-1.9515295891E-4f), z);
    sx = _mm256_add_ps(sx, c8(8.3321608736E-3f));
    sx = _mm256_add_ps(_mm256_mul_ps(sx, z), c8(-1.6666654611E-1f));
    sx = _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(sx, z), x), x);
    __m256 cx = _mm256_mul_ps(c8(2.443315711809948E-5f), z);
    cx = _mm256_add_ps(cx, c8(-1.388731625493765E-3f));
    cx = _mm256_add_ps(_mm256_mul_ps(cx, z), c8(4.166664568298827E-2f));
    cx = _mm256_mul_ps(_mm256_mul_ps(cx, z), z);
    cx = _mm256_add_ps(_mm256_sub_ps(cx, _mm256_mul_ps(c8(0.5f), z)), c8(1.0f));
    __m256 odd = _mm256_castsi256_ps(
        _mm256_cmpeq_epi32(_mm256_and_si256(q, _mm256_set1_epi32(1)), _mm256_set1_epi32(1)));
    __m256 sm = _mm256_blendv_ps(sx, cx, odd), cm = _mm256_blendv_ps(cx, sx, odd);
    /* bit 1 of q (of q + 1) moved to the sign bit */
    __m256 ss = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(q, _mm256_set1_epi32(2)), 30));
    __m256 cs = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_and_si256(_mm256_add_epi32(q, _mm256_set1_epi32(1)), _mm256_set1_epi32(2)), 30));
    *s = _mm256_xor_ps(sm, ss);
    *co = _mm256_xor_ps(cm, cs);
}

/* splitmix64 stays scalar (AVX2 has no 64-bit multiply); the
 * transcendental part, nearly all the time, runs 8 lanes wide. */
QS_AVX2 static void normals_avx2(uint64_t key, uint64_t j0, size_t n_pairs, float *out) {
    size_t k = 0;
    for (; k + 8 <= n_pairs; k += 8) {
        int32_t a1[8], a2[8];
        for (int l = 0; l < 8; l++) {
            uint64_t r = qs_splitmix(key, j0 + k + (uint64_t)l);
            a1[l] = (int32_t)((r >> 40) + 1);
            a2[l] = (int32_t)((r >> 16) & 0xFFFFFF);
        }
        __m256 u1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)a1)),
                                  c8(1.0f / 16777216.0f));
        __m256 u2 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)a2)),
                                  c8(1.0f / 16777216.0f));
        __m256 rad = _mm256_sqrt_ps(_mm256_mul_ps(c8(-2.0f), log8(u1)));
        __m256 s, co;
        sincos8(u2, &s, &co);
        __m256 zc = _mm256_mul_ps(rad, co), zs = _mm256_mul_ps(rad, s);
        __m256 lo = _mm256_unpacklo_ps(zc, zs); /* c0 s0 c1 s1 | c4 s4 c5 s5 */
        __m256 hi = _mm256_unpackhi_ps(zc, zs); /* c2 s2 c3 s3 | c6 s6 c7 s7 */
        _mm256_storeu_ps(out + 2 * k, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(out + 2 * k + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
    normals_scalar(key, j0 + k, n_pairs - k, out + 2 * k);
}
#endif

qs_normals_fn qs_pick_normals(const char **name) {
    const char *force = getenv("QEMBED_SYNTH_SCALAR");
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (!(force && force[0] == '1') && __builtin_cpu_supports("avx2")) {
        if (name) *name = "avx2";
        return normals_avx2;
    }
#endif
    (void)force;
    if (name) *name = "scalar";
    return normals_scalar;
}
