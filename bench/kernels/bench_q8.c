/* bench_q8: the Q8_0 product variants against the bf16 products that the
 * same level runs, on the Qwen3-Embedding-0.6B shapes, at 16 and 512 rows,
 * alternating A/B in one run (this machine is shared: compare ratios).
 * Prints GFLOP/s (best and median of repeated calls) and GFLOP per second of
 * this process's CPU time (less sensitive to other processes on the cores;
 * a waiting pool thread's short spin counts too).
 *
 * "bf16 packed" is the AMX-BF16 product on weights packed at load
 * (matmul_amx.c) and "q8 amx packed" the AMX-INT8 one (matmul_q8p.c), each
 * packed once before timing, as the forward pass runs them at level amx.
 *
 *   bench_q8 [--seconds S] [--threads N] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_internal.h"
#include "backend/cpu/matmul_amx.h"
#include "backend/cpu/matmul_q8p.h"
#include "common/clock.h"

static double g_seconds = 0.4;

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float rnd_unit(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct run {
    qe_threadpool *pool;
    int q8; /* -1: bf16 via qe_matmul at `isa`; else a qe_q8_variant */
    qe_isa isa;
    const float *x;
    int m, k, n;
    const void *w;
    float *y;
    const qe_q8p_w *pw; /* q8 amx packed: the weights packed once, before timing (as at load) */
    const qe_amx_w *bw; /* q8 == -2: bf16 on weights packed for AMX-BF16 (matmul_amx.c), as at load */
} run;

static void once(const run *r) {
    if (r->q8 == -2) {
        qe_amx_out o = {r->bw, r->y, (size_t)r->n};
        qe_matmul_amx(r->pool, r->x, (size_t)r->k, r->m, r->k, &o, 1);
    } else if (r->q8 < 0) {
        qe_matmul(r->pool, r->isa, QE_MM_BF16, r->x, (size_t)r->k, r->m, r->k, r->w, QE_BF16, r->n, r->y,
                  (size_t)r->n);
    } else if (r->q8 == QE_Q8_AMXP) {
        qe_q8p_out o = {r->pw, r->y, (size_t)r->n};
        qe_matmul_q8p(r->pool, r->x, (size_t)r->k, r->m, r->k, &o, 1);
    } else {
        qe_mm_args a = {r->pool, QE_MM_BF16, r->x, (size_t)r->k, r->m,        r->k,
                        r->w,    QE_Q8_0,    r->n, r->y,         (size_t)r->n};
        qe_matmul_q8(&a, (qe_q8_variant)r->q8);
    }
}

int main(int argc, char **argv) {
    int threads = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            g_seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--seconds S] [--threads N]\n", argv[0]);
            return 1;
        }
    }
    qe_threadpool *pool = qe_threadpool_create(threads);
    if (!pool) return 2;
    qe_isa isa = qe_cpu_isa();
    double la[3] = {0, 0, 0};
    getloadavg(la, 3);
    printf("bench_q8: threads %d, isa %s, load average %.2f %.2f %.2f\n", qe_threadpool_size(pool),
           qe_isa_name(isa), la[0], la[1], la[2]);
    printf("%-12s %4s  %-14s %8s %8s %8s\n", "shape k x n", "m", "variant", "best", "median", "per CPU-s");
    static const int shapes[][2] = {{1024, 2048}, {1024, 3072}, {3072, 1024}};
    static const int ms[] = {16, 512};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int k = shapes[s][0], n = shapes[s][1], nb = k / 32;
        uint16_t *wb = malloc(sizeof(uint16_t) * (size_t)n * k);
        uint8_t *wq = malloc((size_t)n * nb * 34);
        float *x = malloc(sizeof(float) * 512 * (size_t)k), *y = malloc(sizeof(float) * 512 * (size_t)n);
        if (!wb || !wq || !x || !y) return 2;
        for (size_t i = 0; i < (size_t)n * k; i++) wb[i] = qe_f32_to_bf16(rnd_unit() * 0.05f);
        for (size_t b = 0; b < (size_t)n * nb; b++) {
            uint16_t d = qe_f32_to_f16(0.0004f);
            memcpy(wq + b * 34, &d, 2);
            for (int i = 0; i < 32; i++) wq[b * 34 + 2 + i] = (uint8_t)(int8_t)(int)(rnd_unit() * 127.f);
        }
        for (size_t i = 0; i < 512 * (size_t)k; i++) x[i] = rnd_unit();
        qe_q8p_w pw = {0};
        qe_amx_w bw = {0};
        if (isa >= QE_ISA_AMX && qe_amx_usable() && qe_amx_pack(&bw, wb, NULL, n, k) != 0) return 2;
        if (qe_q8_variant_available(QE_Q8_AMXP) && qe_q8p_pack(&pw, wq, NULL, n, k) != 0) return 2;
        for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++) {
            int m = ms[mi];
            run rs[QE_Q8_N_VARIANTS + 1];
            const char *names[QE_Q8_N_VARIANTS + 1];
            int nr = 0;
            rs[nr] = (run){pool, -1, isa, x, m, k, n, wb, y, NULL, NULL};
            names[nr++] = "bf16";
            if (bw.data) {
                rs[nr] = (run){pool, -2, isa, x, m, k, n, wb, y, NULL, &bw};
                names[nr++] = "bf16 packed";
            }
            for (int v = QE_Q8_AVX2; v < QE_Q8_N_VARIANTS; v++) {
                if (!qe_q8_variant_available((qe_q8_variant)v)) continue;
                rs[nr] = (run){pool, v, isa, x, m, k, n, wq, y, &pw, NULL};
                names[nr++] = v == QE_Q8_AVX2   ? "q8 avx2"
                              : v == QE_Q8_VNNI ? "q8 vnni"
                              : v == QE_Q8_AMX  ? "q8 amx"
                                                : "q8 amx packed";
            }
            /* alternate the variants, one call each per round */
            enum { MAXR = 4000 };
            double *t = malloc(sizeof(double) * MAXR * (QE_Q8_N_VARIANTS + 1)),
                   cpu[QE_Q8_N_VARIANTS + 1] = {0};
            int cnt = 0;
            for (int r = 0; r < nr; r++) once(&rs[r]); /* warm */
            double t0 = qe_now_s();
            while (cnt < MAXR && qe_now_s() - t0 < g_seconds * nr) {
                for (int r = 0; r < nr; r++) {
                    double a = qe_now_s(), c0 = qe_clock_s(CLOCK_PROCESS_CPUTIME_ID);
                    once(&rs[r]);
                    t[(size_t)r * MAXR + cnt] = qe_now_s() - a;
                    cpu[r] += qe_clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
                }
                cnt++;
            }
            for (int r = 0; r < nr; r++) {
                qsort(t + (size_t)r * MAXR, (size_t)cnt, sizeof(double), cmp_d);
                double fl = 2.0 * m * k * n;
                printf("%5d x %-5d %4d  %-14s %8.1f %8.1f %8.1f  (%d calls)\n", k, n, m, names[r],
                       fl / t[(size_t)r * MAXR] * 1e-9, fl / t[(size_t)r * MAXR + cnt / 2] * 1e-9,
                       fl * cnt / cpu[r] * 1e-9, cnt);
            }
            free(t);
        }
        free(wb);
        free(wq);
        qe_q8p_free(&pw);
        qe_amx_free(&bw);
        free(x);
        free(y);
    }
    qe_threadpool_free(pool);
    return 0;
}
