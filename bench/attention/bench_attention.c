/* Causal attention speed on one long sequence, the 0.6b model's shape
 * (16 query heads, 8 kv heads, head_dim 128) unless told otherwise:
 *   bench_attention [tokens...] [-t threads] [-r runs] [-s scalar] [-b bf16 mode] [-c compare]
 * Prints GFLOP/s, counting 2 FLOPs per multiply-add of Q K^T and P V over
 * the causal triangle: n_heads * 2 * 2 * head_dim * L(L+1)/2, per second of
 * wall time and per second of CPU time of all threads (cpu GFLOP/s: less
 * disturbed by other processes on a shared machine; idle pool threads spin
 * a little, which counts). The best of `runs` is reported. -b: bf16 mode (the
 * AMX-BF16 body at level amx, the vdpbf16ps one at avx512bf16, otherwise the
 * same f32 bodies). -c: exact and bf16 mode at the same level, alternating
 * call by call (so that a busy minute slows both alike), and their ratio. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/attention.h"
#include "common/clock.h"

int main(int argc, char **argv) {
    int lens[16], n_lens = 0, threads = 2, runs = 3, nh = 16, nkv = 8, hd = 128, bf16 = 0, compare = 0;
    qe_isa isa = qe_cpu_isa();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-s"))
            isa = QE_ISA_SCALAR;
        else if (!strcmp(argv[i], "-b"))
            bf16 = 1;
        else if (!strcmp(argv[i], "-c"))
            compare = 1;
        else if (n_lens < 16)
            lens[n_lens++] = atoi(argv[i]);
    }
    if (n_lens == 0) {
        lens[0] = 2048;
        lens[1] = 4096;
        n_lens = 2;
    }
    qe_threadpool *pool = qe_threadpool_create(threads);
    if (!pool) return 1;
    unsigned x = 12345;
    for (int li = 0; li < n_lens; li++) {
        const int L = lens[li];
        const size_t QD = (size_t)nh * hd, KD = (size_t)nkv * hd;
        float *q = malloc((size_t)L * QD * sizeof(float)), *q0 = malloc((size_t)L * QD * sizeof(float));
        float *k = malloc((size_t)L * KD * sizeof(float)), *v = malloc((size_t)L * KD * sizeof(float));
        float *scratch = malloc((size_t)threads * qe_attn_scratch_floats(hd, nh / nkv) * sizeof(float));
        if (!q || !q0 || !k || !v || !scratch) return 1;
        for (size_t i = 0; i < (size_t)L * QD; i++)
            q0[i] = (float)((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
        for (size_t i = 0; i < (size_t)L * KD; i++)
            k[i] = (float)((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
        for (size_t i = 0; i < (size_t)L * KD; i++)
            v[i] = (float)((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
        int off[2] = {0, L}, tile_off[2];
        /* modes run: m = 0 exact, 1 bf16 */
        const int m0 = compare ? 0 : bf16, m1 = compare ? 1 : bf16;
        double best[2] = {1e30, 1e30}, best_cpu[2] = {1e30, 1e30}, sum[2] = {0, 0};
        for (int r = 0; r < runs; r++)
            for (int m = m0; m <= m1; m++) {
                memcpy(q, q0, (size_t)L * QD * sizeof(float));
                qe_attn_args a = {.q = q,
                                  .ldq = QD,
                                  .k = k,
                                  .v = v,
                                  .ldkv = KD,
                                  .seq_off = off,
                                  .n_seq = 1,
                                  .n_heads = nh,
                                  .n_kv_heads = nkv,
                                  .head_dim = hd,
                                  .tile_off = tile_off,
                                  .scratch = scratch,
                                  .isa = isa,
                                  .bf16 = m};
                double t0 = qe_clock_s(CLOCK_MONOTONIC), c0 = qe_clock_s(CLOCK_PROCESS_CPUTIME_ID);
                qe_attention(pool, &a);
                double dt = qe_clock_s(CLOCK_MONOTONIC) - t0, dc = qe_clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
                if (dt < best[m]) best[m] = dt;
                if (dc < best_cpu[m]) best_cpu[m] = dc;
                sum[m] = 0;
                for (size_t i = 0; i < (size_t)L * QD; i++) sum[m] += q[i];
            }
        double flops = (double)nh * 2 * 2 * hd * ((double)L * (L + 1) / 2);
        for (int m = m0; m <= m1; m++)
            printf("L %5d  %s%s  threads %d  best of %d: %8.3f ms  %6.1f GFLOP/s  per cpu-s %6.1f GFLOP"
                   "  (checksum %.6g)\n",
                   L, qe_isa_name(isa), m ? " bf16" : "", threads, runs, best[m] * 1e3,
                   flops / best[m] * 1e-9, flops / best_cpu[m] * 1e-9, sum[m]);
        if (compare)
            printf("L %5d  bf16/exact time: wall %.2fx, cpu %.2fx\n", L, best[1] / best[0],
                   best_cpu[1] / best_cpu[0]);
        free(q);
        free(q0);
        free(k);
        free(v);
        free(scratch);
    }
    qe_threadpool_free(pool);
    return 0;
}
