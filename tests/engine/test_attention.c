/* The tiled online-softmax attention against a direct softmax over the full
 * score row, on random packed batches: several sequence lengths (one token,
 * tile edges, several tiles), grouped-query heads, every ISA body the CPU
 * has, last_only mode, and 1 vs 2 threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/attention.h"

static unsigned long long rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* out (T, nh*hd) by the plain formula */
static void naive(const float *q, const float *k, const float *v, const int *off, int n_seq, int nh,
                  int nkv, int hd, float *out) {
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
                        d += (double)q[(size_t)i * QD + h * hd + x] * k[(size_t)(off[s] + j) * KD + kh * hd + x];
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

int main(void) {
    const int lens[] = {1, 31, 63, 64, 65, 129, 150, 7};
    const int n_seq = sizeof lens / sizeof lens[0];
    const int nh = 4, nkv = 2, hd = 24; /* hd not a multiple of 16: the tails run too */
    int off[16], T = 0;
    for (int s = 0; s < n_seq; s++) {
        off[s] = T;
        T += lens[s];
    }
    off[n_seq] = T;
    size_t QD = (size_t)nh * hd, KD = (size_t)nkv * hd;
    float *q = malloc((size_t)T * QD * sizeof(float)), *k = malloc((size_t)T * KD * sizeof(float));
    float *v = malloc((size_t)T * KD * sizeof(float)), *want = malloc((size_t)T * QD * sizeof(float));
    float *got = malloc((size_t)T * QD * sizeof(float));
    for (size_t i = 0; i < (size_t)T * QD; i++) q[i] = 2.0f * frand();
    for (size_t i = 0; i < (size_t)T * KD; i++) k[i] = 2.0f * frand();
    for (size_t i = 0; i < (size_t)T * KD; i++) v[i] = frand();
    naive(q, k, v, off, n_seq, nh, nkv, hd, want);

    int failures = 0;
    int tile_off[17];
    qe_isa best = qe_cpu_isa();
    for (int isa = QE_ISA_SCALAR; isa <= (int)best; isa++)
        for (int threads = 1; threads <= 2; threads++)
            for (int last_only = 0; last_only <= 1; last_only++) {
                qe_pool *pool = qe_pool_create(threads);
                float *scratch = malloc((size_t)threads * qe_attn_scratch_floats(hd, nh / nkv) * sizeof(float));
                memcpy(got, q, (size_t)T * QD * sizeof(float));
                qe_attn_args a = {.q = got, .ldq = QD, .k = k, .v = v, .ldkv = KD, .seq_off = off,
                                  .n_seq = n_seq, .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd,
                                  .last_only = last_only, .tile_off = tile_off, .scratch = scratch,
                                  .isa = (qe_isa)isa};
                qe_attention(pool, &a);
                double worst = 0;
                for (int s = 0; s < n_seq; s++)
                    for (int i = off[s]; i < off[s + 1]; i++) {
                        int is_last = i == off[s + 1] - 1;
                        for (size_t x = 0; x < QD; x++) {
                            float expect = last_only && !is_last ? q[(size_t)i * QD + x] : want[(size_t)i * QD + x];
                            double d = fabs((double)got[(size_t)i * QD + x] - expect);
                            if (d > worst) worst = d;
                        }
                    }
                if (worst > 2e-5) {
                    failures++;
                    fprintf(stderr, "FAIL isa %s threads %d last_only %d: max error %.3g\n",
                            qe_isa_name((qe_isa)isa), threads, last_only, worst);
                } else {
                    printf("ok isa %s threads %d last_only %d: max error %.3g\n", qe_isa_name((qe_isa)isa),
                           threads, last_only, worst);
                }
                free(scratch);
                qe_pool_free(pool);
            }
    free(q);
    free(k);
    free(v);
    free(want);
    free(got);
    return failures ? 1 : 0;
}
