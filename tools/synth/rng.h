/* Seeded, counter-based random numbers for synthetic weights: element i of a
 * tensor depends only on (seed, tensor name, i), so the values do not change
 * with sharding, tensor order, chunk size or threads. */
#ifndef QE_SYNTH_RNG_H
#define QE_SYNTH_RNG_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* splitmix64's output function applied to a counter (Steele et al.). */
static inline uint64_t qs_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t qs_splitmix(uint64_t key, uint64_t counter) {
    return qs_mix64(key + (counter + 1) * 0x9E3779B97F4A7C15ull);
}

/* FNV-1a, to turn a tensor name into part of its key. */
static inline uint64_t qs_fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

#if defined(__clang__)
/* a*b+c must stay two roundings in every path (clang could fuse it where FMA
 * is available), or the SIMD and scalar weights would differ */
#pragma STDC FP_CONTRACT OFF
#endif

/* ln(x) for x in (0, 1], ~1 ulp (Cephes logf), in plain float operations.
 * Not libm: glibc picks FMA or non-FMA variants by CPU, which may differ in
 * the last bit, while this gives the same bits on every machine and in the
 * AVX2 path (normals.c) (same operations, same order), so a seed gives the same
 * checkpoint and SHA-256 everywhere. */
static inline float qs_logf(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    int32_t e = (int32_t)((u >> 23) & 0xFF) - 126; /* x = m * 2^e, m in [0.5, 1) */
    u = (u & 0x807FFFFFu) | 0x3F000000u;
    float m;
    memcpy(&m, &u, 4);
    int lo = m < 0.707106781186547524f;
    e -= lo;
    m = (lo ? m + m : m) - 1.0f;
    float z = m * m;
    float y = 7.0376836292E-2f;
    y = y * m + -1.1514610310E-1f;
    y = y * m + 1.1676998740E-1f;
    y = y * m + -1.2420140846E-1f;
    y = y * m + 1.4249322787E-1f;
    y = y * m + -1.6668057665E-1f;
    y = y * m + 2.0000714765E-1f;
    y = y * m + -2.4999993993E-1f;
    y = y * m + 3.3333331174E-1f;
    y = (y * m) * z;
    float fe = (float)e;
    y = y + -2.12194440E-4f * fe;
    y = y + -0.5f * z;
    return (m + y) + 0.693359375f * fe;
}

/* sin and cos of 2*pi*u for u = k / 2^24 in [0, 1): exact reduction by
 * quarter turns to [-pi/4, pi/4], Cephes sinf/cosf polynomials, and the
 * quadrant applied by selects (q is random: no branches). */
static inline void qs_sincos_turns(float u, float *s, float *c) {
    int32_t q = (int32_t)(u * 4.0f + 0.5f);                 /* nearest quarter turn, 0..4 */
    float x = (u - 0.25f * (float)q) * 6.2831853071795864f; /* the subtraction is exact */
    float z = x * x;
    float sx = ((((-1.9515295891E-4f * z) + 8.3321608736E-3f) * z + -1.6666654611E-1f) * z) * x + x;
    float cx =
        ((((2.443315711809948E-5f * z) + -1.388731625493765E-3f) * z + 4.166664568298827E-2f) * z) * z -
        0.5f * z + 1.0f;
    float sm = (q & 1) ? cx : sx, cm = (q & 1) ? sx : cx;
    *s = (q & 2) ? -sm : sm;
    *c = ((q + 1) & 2) ? -cm : cm;
}

/* Box-Muller on one 64-bit draw: two 24-bit uniforms give two N(0,1) values
 * in float (|z| <= 5.8; plenty for random weights). out[0], out[1] = values
 * 2j, 2j+1 of the stream. */
static inline void qs_normal_pair(uint64_t key, uint64_t j, float out[2]) {
    uint64_t r = qs_splitmix(key, j);
    /* via int32: exact, and cheaper than converting an unsigned 64-bit value */
    float u1 = (float)(int32_t)((r >> 40) + 1) * (1.0f / 16777216.0f);        /* (0, 1] */
    float u2 = (float)(int32_t)((r >> 16) & 0xFFFFFF) * (1.0f / 16777216.0f); /* [0, 1) */
    float rad = sqrtf(-2.0f * qs_logf(u1));
    float s, c;
    qs_sincos_turns(u2, &s, &c);
    out[0] = rad * c;
    out[1] = rad * s;
}

/* float -> bf16, round to nearest even (inputs here are finite). */
static inline uint16_t qs_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* float -> IEEE half, round to nearest even, with subnormals, overflow to
 * inf and NaN kept (F. Giesen's float_to_half_fast3_rtne). */
static inline uint16_t qs_f32_to_f16(float f) {
    const uint32_t f32infty = 255u << 23, f16max = (127u + 16u) << 23;
    const uint32_t denorm_magic_u = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = u & 0x80000000u;
    u ^= sign;
    uint16_t o;
    if (u >= f16max) {
        o = (u > f32infty) ? 0x7E00 : 0x7C00;
    } else if (u < (113u << 23)) {
        float t, dm;
        memcpy(&t, &u, 4);
        memcpy(&dm, &denorm_magic_u, 4);
        t += dm;
        uint32_t tu;
        memcpy(&tu, &t, 4);
        o = (uint16_t)(tu - denorm_magic_u);
    } else {
        uint32_t mant_odd = (u >> 13) & 1u;
        u += (uint32_t)(15 - 127) * (1u << 23) + 0xFFFu;
        u += mant_odd;
        o = (uint16_t)(u >> 13);
    }
    return (uint16_t)(o | (sign >> 16));
}

#endif
