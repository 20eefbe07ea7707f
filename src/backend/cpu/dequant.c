/* Dequantization of ggml's block types, our own code written from the
 * format as ggml defines it (ggml-common.h block_q4_0 ... block_q6_K and the
 * reference dequantize_row_* in ggml-quants.c, ggml commit d99724f2b1).
 * Byte layouts (little-endian f16 "half"):
 *   Q8_0  34 B / 32:  d | qs[32] int8                 v = d * q
 *   Q4_0  18 B / 32:  d | qs[16]                      v = (q - 8) * d, q = nibble;
 *                     element j < 16 is the low nibble of qs[j], j >= 16 the high one of qs[j-16]
 *   Q5_0  22 B / 32:  d | qh[4] (u32) | qs[16]        as Q4_0 with bit 4 of element j at qh bit j, minus 16
 *   Q4_K 144 B / 256: d | dmin | scales[12] | qs[128] eight sub-blocks of 32, each with a 6-bit scale sc
 *                     and min m (packed: get_scale_min below); v = (d*sc) * q - (dmin*m)
 *                     qs: per 64 elements, 32 bytes, low nibbles the first 32, high the next
 *   Q5_K 176 B / 256: d | dmin | scales[12] | qh[32] | qs[128]   as Q4_K plus a fifth bit: for the
 *                     64-element chunk c, bit 2c of qh[l] (first 32) and 2c+1 (next 32)
 *   Q6_K 210 B / 256: ql[128] | qh[64] | scales[16] int8 | d    sixteen sub-blocks of 16,
 *                     v = (d * sc) * (q - 32), q six bits (ql nibble | two bits of qh)
 * Bit-exact with ggml: the same float operations in the same order, and no
 * contraction into FMA (the project builds ISO C11, where GCC does not
 * contract; ggml's reference is compiled without FMA too). */
#include "dequant.h"

#include <string.h>

#include "kernels.h"

/* The per-block loops are plain C written to vectorize: GCC compiles each
 * one for AVX-512, AVX2 and baseline x86-64 and picks at load time
 * (target_clones), vectorized as at -O3. Vector mul/sub round exactly as
 * the scalar ones and nothing is contracted, so every clone gives the same
 * bits (the fixture test runs the clone of the CPU at hand). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define DEQ_FN                                                                                    \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("tree-" \
                                                                                          "vectorize")))
#else
#define DEQ_FN
#endif

static float half(const unsigned char *p) {
    return qe_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

DEQ_FN static void deq_q8_0(const unsigned char *b, float *y) {
    const float d = half(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(signed char)b[2 + j] * d;
}

DEQ_FN static void deq_q4_0(const unsigned char *b, float *y) {
    const float d = half(b);
    const unsigned char *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((qs[j] & 0x0F) - 8) * d;
        y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
    }
}

DEQ_FN static void deq_q5_0(const unsigned char *b, float *y) {
    const float d = half(b);
    const uint32_t qh = (uint32_t)b[2] | (uint32_t)b[3] << 8 | (uint32_t)b[4] << 16 | (uint32_t)b[5] << 24;
    const unsigned char *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int h0 = (int)((qh >> j) & 1u) << 4, h1 = (int)((qh >> (j + 16)) & 1u) << 4;
        y[j] = (float)(((qs[j] & 0x0F) | h0) - 16) * d;
        y[j + 16] = (float)(((qs[j] >> 4) | h1) - 16) * d;
    }
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block: for
 * j < 4 the low 6 bits of s[j] and s[j+4]; for j >= 4 the nibbles of s[j+4]
 * with the top two bits of s[j-4] (scale) and s[j] (min) above them. */
static void get_scale_min(int j, const unsigned char *s, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

DEQ_FN static void deq_q4_k(const unsigned char *b, float *y) {
    const float d = half(b), dmin = half(b + 2);
    const unsigned char *sc6 = b + 4, *q = b + 16;
    for (int c = 0; c < 4; c++, q += 32, y += 64) {
        int sc, m;
        get_scale_min(2 * c, sc6, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        get_scale_min(2 * c + 1, sc6, &sc, &m);
        const float d2 = d * (float)sc, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++) y[l] = d1 * (float)(q[l] & 0x0F) - m1;
        for (int l = 0; l < 32; l++) y[32 + l] = d2 * (float)(q[l] >> 4) - m2;
    }
}

DEQ_FN static void deq_q5_k(const unsigned char *b, float *y) {
    const float d = half(b), dmin = half(b + 2);
    const unsigned char *sc6 = b + 4, *qh = b + 16, *ql = b + 48;
    for (int c = 0; c < 4; c++, ql += 32, y += 64) {
        int sc, m;
        get_scale_min(2 * c, sc6, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        get_scale_min(2 * c + 1, sc6, &sc, &m);
        const float d2 = d * (float)sc, m2 = dmin * (float)m;
        const unsigned u1 = 1u << (2 * c), u2 = 2u << (2 * c);
        for (int l = 0; l < 32; l++) y[l] = d1 * (float)((ql[l] & 0x0F) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) y[32 + l] = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
}

DEQ_FN static void deq_q6_k(const unsigned char *b, float *y) {
    const float d = half(b + 208);
    const unsigned char *ql = b, *qh = b + 128;
    const signed char *sc = (const signed char *)(b + 192);
    /* per 128: four runs of 32 outputs, each two sub-blocks of 16 with their
     * own scale; (d * sc) * q as ggml's d * sc * q (left to right) */
    for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, y += 128)
        for (int g = 0; g < 2; g++) {
            const float s1 = d * (float)sc[g], s2 = d * (float)sc[g + 2];
            const float s3 = d * (float)sc[g + 4], s4 = d * (float)sc[g + 6];
            for (int l = 16 * g; l < 16 * g + 16; l++)
                y[l] = s1 * (float)(((ql[l] & 0x0F) | ((qh[l] >> 0) & 3) << 4) - 32);
            for (int l = 16 * g; l < 16 * g + 16; l++)
                y[l + 32] = s2 * (float)(((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32);
            for (int l = 16 * g; l < 16 * g + 16; l++)
                y[l + 64] = s3 * (float)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
            for (int l = 16 * g; l < 16 * g + 16; l++)
                y[l + 96] = s4 * (float)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
        }
}

void qe_dequant_blocks(qe_dtype t, const void *src, float *dst, size_t nblocks) {
    void (*f)(const unsigned char *, float *) = NULL;
    switch (t) {
        case QE_Q8_0: f = deq_q8_0; break;
        case QE_Q4_0: f = deq_q4_0; break;
        case QE_Q5_0: f = deq_q5_0; break;
        case QE_Q4_K: f = deq_q4_k; break;
        case QE_Q5_K: f = deq_q5_k; break;
        case QE_Q6_K: f = deq_q6_k; break;
        default: return; /* not a block type: the caller's contract */
    }
    const size_t bb = qe_dtype_block_bytes(t), be = qe_dtype_block(t);
    const unsigned char *s = src;
    for (size_t i = 0; i < nblocks; i++) f(s + i * bb, dst + i * be);
}

void qe_dequant_row(qe_dtype t, const void *src, float *dst, size_t n) {
    switch (t) {
        case QE_F32: memcpy(dst, src, n * sizeof(float)); return;
        case QE_BF16:
            for (size_t j = 0; j < n; j++) dst[j] = qe_bf16_to_f32(((const uint16_t *)src)[j]);
            return;
        case QE_F16:
            for (size_t j = 0; j < n; j++) dst[j] = qe_f16_to_f32(((const uint16_t *)src)[j]);
            return;
        default: qe_dequant_blocks(t, src, dst, n / qe_dtype_block(t)); return;
    }
}
