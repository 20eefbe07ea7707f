/* bench_layers: the matrix products of a whole 0.6B forward pass for m rows,
 * with distinct weights per layer (28 layers, 0.88 GB of bf16), so that they
 * stream from memory as in the model; unlike bench_kernels, whose weights of
 * one shape stay in the caches between repetitions. This is the workload of
 * a short query (m = 17: 16 tokens and <|endoftext|>).
 *
 *   bench_layers [--rows M] [--threads N] [--reps R] [--layers L]
 *
 * Prints the best wall time of R passes, its GFLOP/s, and the calling
 * thread's CPU time (less disturbed by other processes on a shared machine
 * when --threads 1). Weights are random bf16 in [1, 2) x 2^-k, activations a
 * fixed pattern: the values do not matter to the speed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/kernels.h"
#include "common/clock.h"

int main(int argc, char **argv) {
    int m = 17, threads = 1, reps = 3, layers = 28;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int *dst = !strcmp(a, "--rows")      ? &m
                   : !strcmp(a, "--threads") ? &threads
                   : !strcmp(a, "--reps")    ? &reps
                   : !strcmp(a, "--layers")  ? &layers
                                             : NULL;
        if (!dst || i + 1 >= argc || (*dst = atoi(argv[++i])) < 1) {
            fprintf(stderr,
                    "usage: bench_layers [--rows M] [--threads N] [--reps R] [--layers L] (all >= 1)\n");
            return 1;
        }
    }
    /* (k, n) of q, k, v, o, gate, up, down in Qwen3-Embedding-0.6B */
    static const int sh[7][2] = {{1024, 2048}, {1024, 1024}, {1024, 1024}, {2048, 1024},
                                 {1024, 3072}, {1024, 3072}, {3072, 1024}};
    size_t per_layer = 0;
    for (int i = 0; i < 7; i++) per_layer += (size_t)sh[i][0] * (size_t)sh[i][1];
    uint16_t *w = malloc(per_layer * (size_t)layers * sizeof *w);
    float *x = malloc((size_t)m * 3072 * sizeof *x), *y = malloc((size_t)m * 3072 * sizeof *y);
    qe_threadpool *pool = qe_threadpool_create(threads);
    if (!w || !x || !y || !pool) {
        fprintf(stderr, "bench_layers: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < per_layer * (size_t)layers; i++)
        w[i] = (uint16_t)(0x3c00u + ((uint32_t)(i * 2654435761u) >> 27));
    for (int i = 0; i < m * 3072; i++) x[i] = (float)(i % 7) * 0.1f;
    const double flop = 2.0 * m * (double)per_layer * layers;
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = qe_clock_s(CLOCK_MONOTONIC), c0 = qe_clock_s(CLOCK_THREAD_CPUTIME_ID);
        size_t off = 0;
        for (int l = 0; l < layers; l++)
            for (int i = 0; i < 7; i++) {
                qe_matmul(pool, qe_cpu_isa(), QE_MM_BF16, x, (size_t)sh[i][0], m, sh[i][0], w + off, QE_BF16,
                          sh[i][1], y, (size_t)sh[i][1]);
                off += (size_t)sh[i][0] * (size_t)sh[i][1];
            }
        double t = qe_clock_s(CLOCK_MONOTONIC) - t0, c = qe_clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
        if (t < best) best = t;
        if (c < best_cpu) best_cpu = c;
    }
    printf("rows %d, threads %d, layers %d, isa %s: best of %d %.1f ms = %.1f GFLOP/s; calling thread CPU "
           "%.1f ms\n",
           m, qe_threadpool_size(pool), layers, qe_isa_name(qe_cpu_isa()), reps, best * 1e3,
           flop / best * 1e-9, best_cpu * 1e3);
    qe_threadpool_free(pool);
    free(w);
    free(x);
    free(y);
    return 0;
}
