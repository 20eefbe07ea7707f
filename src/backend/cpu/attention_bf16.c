/* bf16 mode's attention micro-kernels on AVX512-BF16 (contract and layouts
 * in attention_bf16.h; the tiling, masks and softmax are attention.c's).
 *
 * Why: where bf16 mode cannot run attention on AMX tiles (no AMX, as AMD
 * Zen 4, or the tile state not granted), its two products ran as f32 FMAs.
 * vdpbf16ps does two multiply-adds per f32 lane, so on a CPU where it issues
 * at the f32 FMA's rate (Zen 4) the products take half the instructions. On
 * Intel cores it issues at half that rate (measured: bench/results/), so
 * there it saves only the loads and the bytes of the packed tiles.
 *
 * Same micro-tile as the f32 AVX-512F body: MR vectors x 16 keys (or 16
 * output columns), one zmm of 16 f32 accumulators per vector, the 16-wide
 * operand (key pairs, value pairs) loaded once per depth pair, the other
 * broadcast (one 32-bit pair). */
#include "backend/cpu/attention_bf16.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/attention.h"
#include "backend/cpu/avx512_util.h"
#include "backend/cpu/kernels.h"

#define MR QE_ATTN_MR
#define NR QE_ATTN_NR
#define TK QE_ATTN_TILE_K
#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

#if NR != 16 || TK % 32 != 0
#error "one zmm of pairs per 16 keys or columns; probability rows in whole 32-key loads"
#endif

/* a float-sized slot holding a bf16 pair, broadcast to 16 lanes (only moved,
 * never computed on as a float: its bits are kept) */
#define BCAST(slot) ((__m512bh)_mm512_set1_ps(slot))

void qe_attn_bf16_pack_q(const float *src, int hd, float *dst) {
    for (int i = 0; i < (hd + 1) / 2; i++) {
        uint32_t pair = 0;
        if (src) {
            const uint32_t lo = qe_f32_to_bf16(src[2 * i]);
            const uint32_t hi = 2 * i + 1 < hd ? qe_f32_to_bf16(src[2 * i + 1]) : 0;
            pair = lo | hi << 16;
        }
        memcpy(dst + (size_t)i * MR, &pair, sizeof pair);
    }
}

/* 16 keys x 32 dims per step: each key's 32 dims are 16 pairs in one zmm,
 * and a 16 x 16 transpose of 32-bit lanes gives 16 panel rows (one pair of
 * dims for 16 keys), as attention_amx.c packs its key tiles. */
TGT void qe_attn_bf16_pack_k(const float *k, size_t ld, int nk, int hd, float *kp) {
    const int qd = (hd + 1) / 2;
    for (int jp = 0; jp * NR < nk; jp++) {
        float *panel = kp + (size_t)jp * NR * qd;
        for (int b = 0; 16 * b < qd; b++) {
            __m512i r[16];
            for (int j = 0; j < 16; j++) {
                const int key = jp * NR + j;
                r[j] = key < nk ? qe_bf16x32_load_avx512(k + (size_t)key * ld + 32 * b, hd - 32 * b)
                                : _mm512_setzero_si512();
            }
            qe_transpose16_avx512(r);
            for (int p = 0; p < 16 && 16 * b + p < qd; p++)
                _mm512_storeu_si512(panel + (size_t)(16 * b + p) * NR, r[p]);
        }
    }
}

TGT void qe_attn_bf16_pack_v(const float *v, size_t ld, int nk, int hd, float *vp) {
    const int nc = (hd + NR - 1) / NR;
    for (int j = 0; j < nk; j += 2) {
        const float *v0 = v + (size_t)j * ld, *v1 = v0 + ld;
        for (int c = 0; c < nc; c++) {
            const int n = hd - c * NR < NR ? hd - c * NR : NR;
            const __mmask16 m = (__mmask16)((1u << n) - 1);
            const __m256i a = qe_bf16x16_avx512(_mm512_maskz_loadu_ps(m, v0 + c * NR));
            const __m256i b = j + 1 < nk ? qe_bf16x16_avx512(_mm512_maskz_loadu_ps(m, v1 + c * NR))
                                         : _mm256_setzero_si256();
            _mm512_storeu_si512(vp + ((size_t)c * (TK / 2) + (size_t)j / 2) * NR,
                                qe_bf16_interleave_avx512(a, b));
        }
    }
}

/* In place: step i reads floats [32i, 32i + 32) and writes slots [16i, 16i +
 * 16), which earlier steps have already read. */
TGT void qe_attn_bf16_round_p(float *s, int nv) {
    for (int i = 0; i < TK / 32; i++)
        _mm512_storeu_si512(s + 16 * i, qe_bf16x32_load_avx512(s + 32 * i, nv - 32 * i));
}

TGT void qe_attn_bf16_qk(const float *qp, const float *kp, int qd, float *s) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
#pragma GCC unroll 4
    for (int i = 0; i < qd; i++) {
        const __m512bh w = (__m512bh)_mm512_loadu_ps(kp);
        c0 = _mm512_dpbf16_ps(c0, BCAST(qp[0]), w);
        c1 = _mm512_dpbf16_ps(c1, BCAST(qp[1]), w);
        c2 = _mm512_dpbf16_ps(c2, BCAST(qp[2]), w);
        c3 = _mm512_dpbf16_ps(c3, BCAST(qp[3]), w);
        c4 = _mm512_dpbf16_ps(c4, BCAST(qp[4]), w);
        c5 = _mm512_dpbf16_ps(c5, BCAST(qp[5]), w);
        kp += NR;
        qp += MR;
    }
    _mm512_storeu_ps(s + 0 * TK, c0);
    _mm512_storeu_ps(s + 1 * TK, c1);
    _mm512_storeu_ps(s + 2 * TK, c2);
    _mm512_storeu_ps(s + 3 * TK, c3);
    _mm512_storeu_ps(s + 4 * TK, c4);
    _mm512_storeu_ps(s + 5 * TK, c5);
}

/* Pairs of keys every row sees (both keys < jf) in one loop; then the
 * causal diagonal per row: a pair whose two keys the row sees, a pair whose
 * low key only it sees (the high key's value zeroed: 0 * an Inf or NaN value
 * would be NaN; its probability is already 0), or none. */
TGT void qe_attn_bf16_pv(float *o, size_t ldo, const float *corr, const float *p, const float *vp,
                         const int *nv, int jf, int jm) {
    __m512 c[MR];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
        c[r] = _mm512_mul_ps(_mm512_loadu_ps(o + (size_t)r * ldo), _mm512_set1_ps(corr[r]));
    int i = 0;
#pragma GCC unroll 4
    for (; i < jf / 2; i++) {
        const __m512bh w = (__m512bh)_mm512_loadu_ps(vp + i * NR);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) c[r] = _mm512_dpbf16_ps(c[r], BCAST(p[r * TK + i]), w);
    }
    const __m512i low = _mm512_set1_epi32(0xffff);
    for (; 2 * i < jm; i++) {
        const __m512i w = _mm512_loadu_si512(vp + i * NR);
        const __m512bh wl = (__m512bh)_mm512_and_si512(w, low);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            if (2 * i + 1 < nv[r])
                c[r] = _mm512_dpbf16_ps(c[r], BCAST(p[r * TK + i]), (__m512bh)w);
            else if (2 * i < nv[r])
                c[r] = _mm512_dpbf16_ps(c[r], BCAST(p[r * TK + i]), wl);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) _mm512_storeu_ps(o + (size_t)r * ldo, c[r]);
}
#endif
