/* Scalar bf16/f16 <-> f32 conversions, exact IEEE round-to-nearest-even.
 * Hand-written rather than F16C/AVX512_BF16 intrinsics so that the portable
 * build has them and so that they are the reference the SIMD packing code is
 * tested against. Bit patterns go through memcpy (no aliasing tricks). */
#include "dequant.h"
#include "kernels.h"

#include <string.h>

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float qe_bf16_to_f32(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

uint16_t qe_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign and payload top, force quiet */
        return (uint16_t)((u >> 16) | 0x0040u);
    /* round to nearest, ties to even; overflow rounds to inf as it should */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float qe_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / NaN */
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        /* subnormal: value = man * 2^-24, exact in f32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t qe_f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* NaN, quiet */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (a < 0x38800000u) {
        /* below the smallest normal f16 (2^-14): subnormal or zero.
         * Scale so the f16 subnormal unit (2^-24) becomes 1, round by adding
         * 0.5 with the f32 adder's own ties-to-even (magic number trick). */
        float v = bits_f32(a) + 0.5f; /* 0.5 = 2^-1: puts bit 2^-24 at the f32 ulp */
        /* bits_f32(a) < 2^-14, so v in [0.5, 0.5+2^-14): ulp of v is 2^-24 */
        uint32_t r = f32_bits(v) - f32_bits(0.5f);
        return (uint16_t)(sign | r);
    }
    /* normal: rebias exponent, round the 13 dropped bits to nearest even */
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
    r -= (uint32_t)(127 - 15) << 23;
    return (uint16_t)(sign | (r >> 13));
}

float qe_tensor_get_f32(const void *data, qe_dtype dt, size_t i) {
    switch (dt) {
        case QE_F32: return ((const float *)data)[i];
        case QE_F16: return qe_f16_to_f32(((const uint16_t *)data)[i]);
        case QE_BF16: return qe_bf16_to_f32(((const uint16_t *)data)[i]);
        case QE_Q8_0: {
            const uint8_t *blk = (const uint8_t *)data + i / 32 * 34;
            return qe_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8)) * (float)(int8_t)blk[2 + i % 32];
        }
        default: { /* other block types: the whole block (slow; tests and checks only) */
            float v[QE_MAX_BLOCK];
            const size_t be = qe_dtype_block(dt);
            qe_dequant_blocks(dt, (const uint8_t *)data + i / be * qe_dtype_block_bytes(dt), v, 1);
            return v[i % be];
        }
    }
    return 0.0f;
}
