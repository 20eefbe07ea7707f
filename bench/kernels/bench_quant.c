/* bench_quant: the matrix products of a 0.6B forward pass (q, k, v, o, gate,
 * up, down per layer; distinct weights per layer, so that they stream from
 * memory as in the model) for m activation rows, with the weights stored as
 * bf16, Q8_0, Q4_K, Q6_K, Q5_K, Q5_0 and Q4_0, in one run: each repetition
 * runs every type once in turn (A/B alternation, so that another process
 * slowing the machine for a while hits every type alike), and the best time
 * of each type is printed with its ratio to bf16 and to Q8_0.
 *
 *   bench_quant [--rows M] [--layers L] [--reps R] [--threads N]
 *
 * bf16 runs in BF16 mode (the default numerics); Q8_0 quantizes activations
 * to int8; Q4_K and Q6_K run twice: in BF16 mode (int8 products on the
 * blocks where the CPU has AVX512-VNNI, matmul_kq8.c) and in exact mode
 * (rows "Q4_K/x", "Q6_K/x": dequantized tiles with f32 FMA, matmul_kq.c, the
 * path before the int8 products); the other types are dequantized tiles in
 * either mode.
 * Weights are random bytes with small finite scales: values do not matter to
 * the speed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/kernels.h"
#include "common/clock.h"

static unsigned long long g_s = 0x9e3779b97f4a7c15ull;
static unsigned long long nxt(void) {
    g_s ^= g_s << 13;
    g_s ^= g_s >> 7;
    g_s ^= g_s << 17;
    return g_s;
}

static void put_half(unsigned char *p, float v) {
    uint16_t h = qe_f32_to_f16(v);
    p[0] = (unsigned char)h, p[1] = (unsigned char)(h >> 8);
}

/* n elements of random weights of type t */
static void *make_weights(qe_dtype t, size_t n) {
    const size_t bytes = (size_t)qe_dtype_bytes(t, n);
    unsigned char *w = malloc(bytes);
    if (!w) return NULL;
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        unsigned long long r = nxt();
        memcpy(w + i, &r, 8);
    }
    if (t == QE_BF16) {
        for (size_t i = 0; i < n; i++) ((uint16_t *)w)[i] = (uint16_t)(0x3c00u + (((uint16_t *)w)[i] >> 11));
        return w;
    }
    const size_t bb = qe_dtype_block_bytes(t), nb = bytes / bb;
    for (size_t b = 0; b < nb; b++) {
        unsigned char *p = w + b * bb;
        put_half(t == QE_Q6_K ? p + 208 : p, 0.001f);
        if (t == QE_Q4_K || t == QE_Q5_K) put_half(p + 2, 0.0005f);
    }
    return w;
}

int main(int argc, char **argv) {
    int m = 16, layers = 28, reps = 3, threads = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int *dst = !strcmp(a, "--rows")      ? &m
                   : !strcmp(a, "--layers")  ? &layers
                   : !strcmp(a, "--reps")    ? &reps
                   : !strcmp(a, "--threads") ? &threads
                                             : NULL;
        if (!dst || i + 1 >= argc || (*dst = atoi(argv[++i])) < 1) {
            fprintf(stderr,
                    "usage: bench_quant [--rows M] [--layers L] [--reps R] [--threads N] (all >= 1)\n");
            return 1;
        }
    }
    static const int sh[7][2] = {{1024, 2048}, {1024, 1024}, {1024, 1024}, {2048, 1024},
                                 {1024, 3072}, {1024, 3072}, {3072, 1024}}; /* (k, n) */
    static const qe_dtype types[] = {QE_BF16, QE_Q8_0, QE_Q4_K, QE_Q4_K, QE_Q6_K,
                                     QE_Q6_K, QE_Q5_K, QE_Q5_0, QE_Q4_0};
    static const qe_mm_mode modes[] = {QE_MM_BF16,  QE_MM_BF16, QE_MM_BF16, QE_MM_EXACT, QE_MM_BF16,
                                       QE_MM_EXACT, QE_MM_BF16, QE_MM_BF16, QE_MM_BF16};
    enum { NT = sizeof types / sizeof types[0] };
    size_t per_layer = 0;
    for (int i = 0; i < 7; i++) per_layer += (size_t)sh[i][0] * (size_t)sh[i][1];
    void *w[NT];
    for (int t = 0; t < NT; t++) {
        w[t] = make_weights(types[t], per_layer * (size_t)layers);
        if (!w[t]) {
            fprintf(stderr, "bench_quant: out of memory\n");
            return 1;
        }
    }
    float *x = malloc((size_t)m * 3072 * sizeof *x), *y = malloc((size_t)m * 3072 * sizeof *y);
    qe_threadpool *pool = qe_threadpool_create(threads);
    if (!x || !y || !pool) {
        fprintf(stderr, "bench_quant: out of memory\n");
        return 1;
    }
    for (int i = 0; i < m * 3072; i++) x[i] = (float)(i % 7) * 0.1f - 0.3f;
    const qe_isa isa = qe_cpu_isa();
    double best[NT];
    for (int t = 0; t < NT; t++) best[t] = 1e30;
    for (int r = 0; r < reps; r++)
        for (int t = 0; t < NT; t++) {
            double t0 = qe_clock_s(CLOCK_MONOTONIC);
            size_t off = 0;
            for (int l = 0; l < layers; l++)
                for (int i = 0; i < 7; i++) {
                    const void *wl = (const unsigned char *)w[t] + qe_dtype_bytes(types[t], off);
                    qe_matmul(pool, isa, modes[t], x, (size_t)sh[i][0], m, sh[i][0], wl, types[t], sh[i][1],
                              y, (size_t)sh[i][1]);
                    off += (size_t)sh[i][0] * (size_t)sh[i][1];
                }
            double dt = qe_clock_s(CLOCK_MONOTONIC) - t0;
            if (dt < best[t]) best[t] = dt;
        }
    const double flop = 2.0 * m * (double)per_layer * layers;
    printf("0.6B products, rows %d, %d layers, threads %d, isa %s, best of %d (types alternating):\n", m,
           layers, qe_threadpool_size(pool), qe_isa_name(isa), reps);
    for (int t = 0; t < NT; t++)
        printf("  %-4s%-2s %8.1f ms  %7.1f GFLOP/s  %6.1f MB weights  x%.2f bf16's time  x%.2f Q8_0's\n",
               qe_dtype_name(types[t]), modes[t] == QE_MM_EXACT ? "/x" : "", best[t] * 1e3,
               flop / best[t] * 1e-9, (double)qe_dtype_bytes(types[t], per_layer * (size_t)layers) / 1e6,
               best[t] / best[0], best[t] / best[1]);
    qe_threadpool_free(pool);
    for (int t = 0; t < NT; t++) free(w[t]);
    free(x);
    free(y);
    return 0;
}
