/* The tiled online-softmax attention against a direct softmax over the full
 * score row, on random packed batches: sequence lengths around the tile
 * edges (63/64/65 keys, 127/128/129 queries) and shorter than a 6-vector
 * micro-tile, GQA groups 1 to 4, head dims from 2 (the least a config allows)
 * to 128, every ISA body the CPU has, last_only mode, 1 vs 2 threads, and a
 * NaN in a key or value: it reaches the rows that see it and no other.
 *
 * bf16 mode's two bf16 bodies, where the CPU runs them, are checked against
 * the same formula on q, k and v rounded to bf16 as they round them. What
 * they round beyond that is each probability (relative error <= 2^-8):
 *  - the AMX-BF16 body (attention_amx.c) divides by the sum of the rounded
 *    probabilities, so the normalised weights move by at most 2 * 2^-8 of
 *    their sum and an output by at most 2^-7 * max |v| = 7.8e-3 (|v| <= 1
 *    here);
 *  - the vdpbf16ps body (attention_bf16.c, level avx512bf16) divides by the
 *    sum of the unrounded ones (attention.c's softmax), so an output moves
 *    by at most 2^-8 * max |v| = 3.9e-3; bound 4e-3 (the f32 bodies' own
 *    error, 2e-5 here, on top).
 * Big scores (qscale 6) make rows' maxima jump between key tiles, so the
 * rescaling of the output runs too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/attention.h"
#include "backend/cpu/attention_amx.h"
#include "backend/cpu/matmul_internal.h"

static unsigned long long rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* out (T, nh*hd) by the plain formula */
static void naive(const float *q, const float *k, const float *v, const int *off, int n_seq, int nh, int nkv,
                  int hd, float *out) {
    int QD = nh * hd, KD = nkv * hd;
    for (int s = 0; s < n_seq; s++)
        for (int i = off[s]; i < off[s + 1]; i++)
            for (int h = 0; h < nh; h++) {
                int kh = h / (nh / nkv);
                int n = i - off[s] + 1;
                double *p = malloc((size_t)n * sizeof(double));
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < n; j++) {
                    double d = 0;
                    for (int x = 0; x < hd; x++)
                        d += (double)q[(size_t)i * QD + h * hd + x] *
                             k[(size_t)(off[s] + j) * KD + kh * hd + x];
                    p[j] = d / sqrt((double)hd);
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < n; j++) sum += (p[j] = exp(p[j] - mx));
                for (int x = 0; x < hd; x++) {
                    double o = 0;
                    for (int j = 0; j < n; j++) o += p[j] * v[(size_t)(off[s] + j) * KD + kh * hd + x];
                    out[(size_t)i * QD + h * hd + x] = (float)(o / sum);
                }
                free(p);
            }
}

typedef struct attn_case {
    int nh, nkv, hd;
    int lens[12];     /* ends at 0 */
    int nan_k, nan_v; /* a token whose key (kv head 1 % nkv) / value (kv head 0) is NaN; -1: none */
    float qscale;     /* q drawn from [-2, 2] times this (0: 1) */
} attn_case;

static const attn_case cases[] = {
    {4, 2, 24, {1, 31, 63, 64, 65, 129, 150, 7}, -1, -1, 0.0f},
    {2, 2, 16, {2, 5, 6, 127, 128, 129, 3}, -1, -1, 0.0f},
    {16, 8, 128, {1, 130, 260}, -1, -1, 0.0f},
    {8, 2, 64, {200, 1, 65}, -1, -1, 0.0f},
    {3, 1, 2, {70, 4}, -1, -1, 0.0f},
    {6, 3, 36, {66, 13, 140}, -1, -1, 0.0f},
    {4, 2, 24, {70, 9}, 68, 69, 0.0f}, /* NaN key, NaN value: only later rows see them */
    {16, 8, 128, {333, 17, 200}, -1, -1, 6.0f},
    {8, 2, 48, {97, 190}, 150, 40, 6.0f},
    {4, 1, 10, {97, 33, 1}, -1, 95, 0.0f}, /* NaN value at an odd key: row 94 sees its pair's other key */
    {2, 1, 7, {40, 3, 66}, -1, -1, 6.0f},  /* odd head_dim: a half-filled last pair */
};

/* x rounded to bf16 and back, as the AMX body rounds its inputs */
static void round_bf16(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = qe_bf16_to_f32(qe_f32_to_bf16(x[i]));
}

static int nan_of(double x) {
    return x != x;
}

/* 0: every ISA, thread count and last_only mode agree with naive() */
static int run_case(const attn_case *c) {
    const int nh = c->nh, nkv = c->nkv, hd = c->hd;
    int off[13], n_seq = 0, T = 0;
    for (; c->lens[n_seq]; n_seq++) {
        off[n_seq] = T;
        T += c->lens[n_seq];
    }
    off[n_seq] = T;
    size_t QD = (size_t)nh * hd, KD = (size_t)nkv * hd;
    float *q = malloc((size_t)T * QD * sizeof(float)), *k = malloc((size_t)T * KD * sizeof(float));
    float *v = malloc((size_t)T * KD * sizeof(float)), *want = malloc((size_t)T * QD * sizeof(float));
    float *got = malloc((size_t)T * QD * sizeof(float));
    for (size_t i = 0; i < (size_t)T * QD; i++) q[i] = 2.0f * (c->qscale > 0 ? c->qscale : 1.0f) * frand();
    for (size_t i = 0; i < (size_t)T * KD; i++) k[i] = 2.0f * frand();
    for (size_t i = 0; i < (size_t)T * KD; i++) v[i] = frand();
    if (c->nan_k >= 0) k[(size_t)c->nan_k * KD + (size_t)(1 % nkv) * hd + 3 % hd] = NAN;
    if (c->nan_v >= 0) v[(size_t)c->nan_v * KD + 1 % hd] = NAN;
    naive(q, k, v, off, n_seq, nh, nkv, hd, want);
    /* the bf16 body's reference: the formula on the rounded inputs */
    float *qb = malloc((size_t)T * QD * sizeof(float)), *kb = malloc((size_t)T * KD * sizeof(float));
    float *vb = malloc((size_t)T * KD * sizeof(float)), *want_b = malloc((size_t)T * QD * sizeof(float));
    memcpy(qb, q, (size_t)T * QD * sizeof(float));
    memcpy(kb, k, (size_t)T * KD * sizeof(float));
    memcpy(vb, v, (size_t)T * KD * sizeof(float));
    round_bf16(qb, (size_t)T * QD);
    round_bf16(kb, (size_t)T * KD);
    round_bf16(vb, (size_t)T * KD);
    naive(qb, kb, vb, off, n_seq, nh, nkv, hd, want_b);

    int failures = 0;
    int tile_off[13];
    /* every ISA's f32 bodies (bf16 = 0), then bf16 mode's bodies wherever the
     * CPU has their instructions, even when the start-up check turned the
     * level down (then this test shows why): vdpbf16ps (level avx512bf16),
     * tiles (level amx) */
    const qe_isa best = qe_cpu_isa();
    int amx_hw = 0;
    const int has_dpbf16 = qe_cpu_features(&amx_hw) >= QE_ISA_AVX512_BF16;
    const int n_f32 = (int)best + 1, n_body = n_f32 + 2;
    for (int body = 0; body < n_body; body++)
        for (int threads = 1; threads <= 2; threads++)
            for (int last_only = 0; last_only <= 1; last_only++) {
                const int bf16 = body >= n_f32, tiles = body == n_f32 + 1;
                if (bf16 && !(tiles ? qe_attn_amx_usable() : has_dpbf16)) continue;
                qe_threadpool *pool = qe_threadpool_create(threads);
                float *scratch =
                    malloc((size_t)threads * qe_attn_scratch_floats(hd, nh / nkv) * sizeof(float));
                const float *ref = bf16 ? want_b : want;
                const double tol = !bf16 ? 2e-5 : tiles ? 7.8e-3 : 4e-3;
                memcpy(got, q, (size_t)T * QD * sizeof(float));
                qe_attn_args a = {.q = got,
                                  .ldq = QD,
                                  .k = k,
                                  .v = v,
                                  .ldkv = KD,
                                  .seq_off = off,
                                  .n_seq = n_seq,
                                  .n_heads = nh,
                                  .n_kv_heads = nkv,
                                  .head_dim = hd,
                                  .last_only = last_only,
                                  .tile_off = tile_off,
                                  .scratch = scratch,
                                  .isa = !bf16   ? (qe_isa)body
                                         : tiles ? QE_ISA_AMX
                                                 : QE_ISA_AVX512_BF16,
                                  .bf16 = bf16};
                qe_attention(pool, &a);
                double worst = 0;
                int nan_wrong = 0;
                for (int s = 0; s < n_seq; s++)
                    for (int i = off[s]; i < off[s + 1]; i++) {
                        int is_last = i == off[s + 1] - 1;
                        for (size_t x = 0; x < QD; x++) {
                            float expect =
                                last_only && !is_last ? q[(size_t)i * QD + x] : ref[(size_t)i * QD + x];
                            float g = got[(size_t)i * QD + x];
                            if (nan_of(expect) || nan_of(g)) {
                                nan_wrong += nan_of(expect) != nan_of(g);
                                continue;
                            }
                            double d = fabs((double)g - expect);
                            if (d > worst) worst = d;
                        }
                    }
                char what[160];
                snprintf(what, sizeof what, "heads %d/%d hd %d isa %s%s threads %d last_only %d", nh, nkv, hd,
                         qe_isa_name(a.isa),
                         !bf16   ? ""
                         : tiles ? " bf16 (tiles)"
                                 : " bf16 (vdpbf16ps)",
                         threads, last_only);
                if (!(worst <= tol) || nan_wrong) {
                    failures++;
                    fprintf(stderr,
                            "FAIL %s: max error %.3g, %d values NaN where they should not be or not NaN "
                            "where they should\n",
                            what, worst, nan_wrong);
                } else {
                    printf("ok %s: max error %.3g\n", what, worst);
                }
                free(scratch);
                qe_threadpool_free(pool);
            }
    free(q);
    free(k);
    free(v);
    free(want);
    free(got);
    free(qb);
    free(kb);
    free(vb);
    free(want_b);
    return failures;
}

int main(void) {
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) failures += run_case(&cases[i]);
    return failures ? 1 : 0;
}
