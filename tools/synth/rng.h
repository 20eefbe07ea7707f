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

/* Box-Muller on one 64-bit draw: two 24-bit uniforms give two N(0,1) values
 * in float (|z| <= 5.8; plenty for random weights, and twice as fast as
 * doubles). out[0], out[1] = values 2j, 2j+1 of the stream. */
static inline void qs_normal_pair(uint64_t key, uint64_t j, float out[2]) {
    uint64_t r = qs_splitmix(key, j);
    /* via int32: exact, and cheaper than converting an unsigned 64-bit value */
    float u1 = (float)(int32_t)((r >> 40) + 1) * (1.0f / 16777216.0f); /* (0, 1] */
    float u2 = (float)(int32_t)((r >> 16) & 0xFFFFFF) * (1.0f / 16777216.0f); /* [0, 1) */
    float rad = sqrtf(-2.0f * logf(u1));
    float s, c;
    sincosf(6.2831853071795864f * u2, &s, &c);
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
