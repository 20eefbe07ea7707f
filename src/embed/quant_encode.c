/* Encoders for ggml's 4-, 5- and 6-bit block types (Q4_0, Q5_0, Q4_K,
 * Q5_K, Q6_K), our own code: the layouts are ggml's (ggml-common.h, and the
 * comment at the top of backend/cpu/dequant.c), the choice of scales is ours
 * and simpler than llama.cpp's (no importance matrix, no iterative search):
 *   Q4_0/Q5_0  d from the value of largest magnitude, which maps to -8 / -16;
 *   Q4_K/Q5_K  per sub-block of 32 the range [min(0, lo), hi] spread over
 *              0..15 (0..31), then the eight scales and mins quantized to six
 *              bits against the block's d and dmin, each sub-block trying its
 *              six-bit scale and min one step either side and keeping the
 *              pair of least squared error; the codes use the six-bit values;
 *   Q6_K       per sub-block of 16 the largest magnitude maps to -32, the
 *              sixteen scales to int8 against the block's d.
 * Any such encoding is valid: the dequantizer (ggml's or ours) reads the
 * stored fields, whatever rule chose them. Error is bounded by half a code
 * step of each sub-block (tests/kernels/test_dequant.c checks it against the
 * error of ggml's reference quantizer on the same inputs). */
#include "embed/quant_encode.h"

#include <math.h>
#include <string.h>

#include "backend/cpu/dequant.h"
#include "backend/cpu/kernels.h"

static void put_half(unsigned char *p, float v) {
    uint16_t h = qe_f32_to_f16(v);
    p[0] = (unsigned char)(h & 0xff);
    p[1] = (unsigned char)(h >> 8);
}

static float get_half(const unsigned char *p) {
    return qe_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

static int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* v clamped to [0, hi] and rounded to nearest (ties up); NaN -> 0. The
 * callers shift their code range to start at 0. Plain comparisons rather
 * than lrintf/fmaxf (library calls here): this is the writer's inner loop. */
static int qround(float v, int hi) {
    v = v > 0.0f ? v : 0.0f;
    v = v < (float)hi ? v : (float)hi;
    return (int)(v + 0.5f);
}

/* The signed value of largest magnitude in x[0..n). */
static float signed_max(const float *x, int n) {
    float amax = 0, m = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), m = x[i];
    return m;
}

/* Q4_0 (bits = 4) and Q5_0 (bits = 5): one block of 32. */
static void enc_q_0(const float *x, unsigned char *b, int bits) {
    const int half_range = 1 << (bits - 1); /* 8 or 16 */
    put_half(b, signed_max(x, 32) / (float)-half_range);
    const float d = get_half(b), id = d != 0.0f ? 1.0f / d : 0.0f;
    int q[32];
    for (int j = 0; j < 32; j++) q[j] = qround(x[j] * id + (float)half_range, 2 * half_range - 1);
    unsigned char *qs = b + (bits == 5 ? 6 : 2);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (unsigned char)((q[j] & 0x0F) | (q[j + 16] & 0x0F) << 4);
        qh |= (uint32_t)(q[j] >> 4 & 1) << j | (uint32_t)(q[j + 16] >> 4 & 1) << (j + 16);
    }
    if (bits == 5)
        for (int i = 0; i < 4; i++) b[2 + i] = (unsigned char)(qh >> (8 * i));
}

/* Packs six-bit scale ls and min lm of sub-block j into scales[12] (the
 * inverse of dequant.c's get_scale_min). */
static void put_scale_min(unsigned char *s, int j, int ls, int lm) {
    if (j < 4) {
        s[j] = (unsigned char)((s[j] & 0xC0) | ls);
        s[j + 4] = (unsigned char)((s[j + 4] & 0xC0) | lm);
    } else {
        s[j + 4] = (unsigned char)((ls & 0x0F) | (lm & 0x0F) << 4);
        s[j - 4] = (unsigned char)((s[j - 4] & 0x3F) | (ls >> 4) << 6);
        s[j] = (unsigned char)((s[j] & 0x3F) | (lm >> 4) << 6);
    }
}

/* Codes of sub-block x[0..32) for value = a*q - m (a > 0), q in [0, qmax];
 * returns the squared error. */
static double codes(const float *x, float a, float m, int qmax, int *q) {
    double e = 0;
    const float ia = a > 0 ? 1.0f / a : 0.0f;
    for (int l = 0; l < 32; l++) {
        q[l] = qround((x[l] + m) * ia, qmax);
        double r = (double)a * q[l] - m - x[l];
        e += r * r;
    }
    return e;
}

/* Q4_K (qmax 15) and Q5_K (qmax 31): one block of 256. */
static void enc_k(const float *x, unsigned char *b, int qmax) {
    float scale[8], mins[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float lo = 0, hi = x[32 * j]; /* lo <= 0: mins are stored as non-negative */
        for (int l = 0; l < 32; l++) {
            const float v = x[32 * j + l];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        if (hi < lo) hi = lo;
        scale[j] = (hi - lo) / (float)qmax;
        mins[j] = -lo;
        max_scale = fmaxf(max_scale, scale[j]);
        max_min = fmaxf(max_min, mins[j]);
    }
    memset(b, 0, 16);
    put_half(b, max_scale / 63.0f);
    put_half(b + 2, max_min / 63.0f);
    const float d = get_half(b), dmin = get_half(b + 2);
    int q[256];
    for (int j = 0; j < 8; j++) {
        int ls = d > 0 ? qround(scale[j] / d, 63) : 0;
        int lm = dmin > 0 ? qround(mins[j] / dmin, 63) : 0;
        /* the six-bit values round to nearest: one step either side may fit better */
        double best = codes(x + 32 * j, d * (float)ls, dmin * (float)lm, qmax, q + 32 * j);
        int t[32];
        for (int ds = -1; ds <= 1; ds++)
            for (int dm = -1; dm <= 1; dm++) {
                int s2 = clampi(ls + ds, 0, 63), m2 = clampi(lm + dm, 0, 63);
                double e = codes(x + 32 * j, d * (float)s2, dmin * (float)m2, qmax, t);
                if (e < best) best = e, ls = s2, lm = m2, memcpy(q + 32 * j, t, sizeof t);
            }
        put_scale_min(b + 4, j, ls, lm);
    }
    if (qmax == 15) {
        unsigned char *qs = b + 16;
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                qs[32 * c + l] = (unsigned char)(q[64 * c + l] | q[64 * c + 32 + l] << 4);
    } else {
        unsigned char *qh = b + 16, *ql = b + 48;
        memset(qh, 0, 32);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int a = q[64 * c + l], e = q[64 * c + 32 + l];
                ql[32 * c + l] = (unsigned char)((a & 0x0F) | (e & 0x0F) << 4);
                qh[l] |= (unsigned char)((a >> 4) << (2 * c) | (e >> 4) << (2 * c + 1));
            }
    }
}

/* Q6_K: one block of 256. */
static void enc_q6_k(const float *x, unsigned char *b) {
    float scale[16], big = 0;
    for (int j = 0; j < 16; j++) {
        scale[j] = signed_max(x + 16 * j, 16) / -32.0f;
        big = fmaxf(big, fabsf(scale[j]));
    }
    memset(b, 0, 210);
    put_half(b + 208, big / 127.0f);
    const float d = get_half(b + 208);
    signed char *sc = (signed char *)(b + 192);
    int q[256];
    for (int j = 0; j < 16; j++) {
        sc[j] = (signed char)(d > 0 ? qround(scale[j] / d + 128.0f, 255) - 128 : 0);
        const float a = d * (float)sc[j];
        for (int l = 0; l < 16; l++) q[16 * j + l] = a != 0 ? qround(x[16 * j + l] / a + 32.0f, 63) : 32;
    }
    unsigned char *ql = b, *qh = b + 128;
    for (int h = 0; h < 2; h++, ql += 64, qh += 32)
        for (int l = 0; l < 32; l++) {
            const int *p = q + 128 * h + l;
            ql[l] = (unsigned char)((p[0] & 0x0F) | (p[64] & 0x0F) << 4);
            ql[l + 32] = (unsigned char)((p[32] & 0x0F) | (p[96] & 0x0F) << 4);
            qh[l] = (unsigned char)((p[0] >> 4) | (p[32] >> 4) << 2 | (p[64] >> 4) << 4 | (p[96] >> 4) << 6);
        }
}

int qe_quant_row(qe_dtype t, const float *x, void *dst, size_t n) {
    const size_t be = qe_dtype_block(t), bb = qe_dtype_block_bytes(t);
    if (be < 32 || t == QE_Q8_0 || n % be) return -1;
    unsigned char *b = dst;
    for (size_t i = 0; i < n / be; i++, x += be, b += bb) {
        switch (t) {
            case QE_Q4_0: enc_q_0(x, b, 4); break;
            case QE_Q5_0: enc_q_0(x, b, 5); break;
            case QE_Q4_K: enc_k(x, b, 15); break;
            case QE_Q5_K: enc_k(x, b, 31); break;
            case QE_Q6_K: enc_q6_k(x, b); break;
            default: return -1;
        }
    }
    return 0;
}
