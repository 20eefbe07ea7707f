/* bench_kernels: qembed's matmul variants, oneDNN's matmul and OpenBLAS on
 * the Qwen3-Embedding-0.6B shapes, in one run; prints GFLOP/s (best and
 * median of repeated calls) beside this machine's measured peaks.
 *
 *   bench_kernels [--seconds S] [--threads N] [--qembed-only] [--packed-only]
 *                 [--bf16-route ROUNDS]
 *
 * --qembed-only: peaks and qembed's rows only (no oneDNN/OpenBLAS), for quick
 * A/B runs of the kernels.
 * --packed-only: peaks and the AMX products on weights packed at load
 * (matmul_amx.c, what the forward pass runs in bf16 mode at level amx), at
 * 16 to 4096 rows: the batch products' fraction of the AMX peak.
 * --bf16-route R: bf16 mode on bf16 weights at 16 to 512 rows, R
 * rounds alternating (A) qembed's vdpbf16ps kernel (qe_matmul_avx512bf16),
 * (B) qembed's oneDNN route (qe_matmul_onednn: f32 rows rounded in the call,
 * one oneDNN call per column slice per pool thread) and (C) oneDNN's matmul
 * on its own OpenMP threads, bf16 activations, weights as stored; prints the
 * median over rounds of each round's median and the ratios B/A, C/A, with
 * the instruction set oneDNN runs (capped by ONEDNN_MAX_CPU_ISA, or by the
 * library itself when QEMBED_ISA is below amx): how level avx512bf16 picks
 * its route per shape (matmul.c).
 *
 * y (m x n, f32) = x (m x k) W^T, W (n x k) as stored in the checkpoint.
 * Fairness notes, printed with the results:
 *  - qembed takes f32 activations and rounds them to bf16 inside the call
 *    (BF16 mode); oneDNN's bf16 matmul is handed activations already in bf16.
 *  - oneDNN "as-stored" uses the weights in their checkpoint layout;
 *    "reordered" lets oneDNN pick a blocked layout, reordered once untimed
 *    (a copy of the weights the engine would have to keep).
 *  - oneDNN f32 and OpenBLAS sgemm get f32 copies of the weights (twice the
 *    memory; qembed never makes one).
 *  - OpenBLAS reads OPENBLAS_CORETYPE when it is loaded, so its rows come
 *    from child processes of this program: one with the environment as it
 *    is, one with the variable unset (or set to Haswell if it was unset). */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_amx.h"
#include "backend/cpu/matmul_internal.h"
#include "backend/cpu/peak.h"
#include "common/clock.h"

#ifdef QE_HAVE_DNNL
#include <dnnl.h>
#endif
#ifdef QE_HAVE_OPENBLAS
#include <cblas.h>
#endif

typedef struct shape {
    const char *name;
    int k, n;
} shape;

/* Qwen3-Embedding-0.6B: hidden 1024, 16 q heads x 128, 8 kv heads x 128,
 * intermediate 3072. */
static const shape g_shapes[] = {
    {"q    1024->2048", 1024, 2048}, {"k/v  1024->1024", 1024, 1024}, {"gate 1024->3072", 1024, 3072},
    {"o    2048->1024", 2048, 1024}, {"down 3072->1024", 3072, 1024},
};
static const int g_ms[] = {16, 64, 128, 512};
#define N_SHAPES (int)(sizeof g_shapes / sizeof g_shapes[0])
#define N_MS (int)(sizeof g_ms / sizeof g_ms[0])

static double g_seconds = 0.25; /* per measurement */

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef void (*run_fn)(void *ctx);

/* Calls fn until g_seconds have passed (at least 3 times, after one warm-up
 * call); prints the best and median rate (nothing when impl is NULL) and
 * returns the median rate. */
static double measure(const char *shape_name, int m, const char *impl, double flops, run_fn fn, void *ctx) {
    double times[4096];
    int n = 0;
    fn(ctx);
    double end = qe_now_s() + g_seconds;
    while (n < 3 || (qe_now_s() < end && n < 4096)) {
        double t0 = qe_now_s();
        fn(ctx);
        times[n++] = qe_now_s() - t0;
    }
    qsort(times, (size_t)n, sizeof times[0], cmp_d);
    double best = times[0], med = times[n / 2];
    if (impl) {
        printf("%-16s %4d  %-34s %8.1f %8.1f %9.3f  %5d\n", shape_name, m, impl, flops / best * 1e-9,
               flops / med * 1e-9, best * 1e3, n);
        fflush(stdout);
    }
    return flops / med * 1e-9;
}

static uint64_t g_rng = 0x243f6a8885a308d3ull;
static float rnd_unit(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* ---- qembed ---- */
typedef struct qe_ctx {
    qe_threadpool *pool;
    qe_isa isa;
    qe_mm_mode mode;
    const float *x;
    int m, k, n;
    const uint16_t *w;
    float *y;
} qe_ctx;

static void run_qe(void *p) {
    qe_ctx *c = p;
    qe_matmul(c->pool, c->isa, c->mode, c->x, (size_t)c->k, c->m, c->k, c->w, QE_BF16, c->n, c->y,
              (size_t)c->n);
}

/* the packed AMX product (bf16 mode, f32 activations rounded in the call) */
typedef struct amx_ctx {
    qe_threadpool *pool;
    const float *x;
    int m, k;
    qe_amx_out out;
} amx_ctx;

static void run_amx(void *p) {
    amx_ctx *c = p;
    qe_matmul_amx(c->pool, c->x, (size_t)c->k, c->m, c->k, &c->out, 1);
}

/* ---- oneDNN ---- */
#ifdef QE_HAVE_DNNL
typedef struct dnnl_ctx {
    dnnl_primitive_t prim;
    dnnl_stream_t stream;
    dnnl_exec_arg_t args[3];
} dnnl_ctx;

static void run_dnnl(void *p) {
    dnnl_ctx *c = p;
    dnnl_primitive_execute(c->prim, c->stream, 3, c->args);
    dnnl_stream_wait(c->stream);
}

/* One oneDNN matmul row: dt is dnnl_bf16 or dnnl_f32 for src and weights;
 * reorder: weights in oneDNN's chosen layout (reordered untimed). */
static void bench_dnnl(dnnl_engine_t eng, dnnl_stream_t st, const char *sname, int m, int k, int n,
                       dnnl_data_type_t dt, int reorder, void *src_data, void *w_data, float *y) {
    char label[96];
    dnnl_memory_desc_t src_md, w_md, w_any_md, dst_md;
    dnnl_dims_t sd = {m, k}, wd = {k, n}, dd = {m, n};
    dnnl_memory_desc_init_by_tag(&src_md, 2, sd, dt, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&w_md, 2, wd, dt, dnnl_ba); /* (n,k) row-major = (k,n) "ba" */
    dnnl_memory_desc_init_by_tag(&w_any_md, 2, wd, dt, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t md;
    dnnl_matmul_desc_init(&md, &src_md, reorder ? &w_any_md : &w_md, NULL, &dst_md);
    dnnl_primitive_desc_t pd = NULL;
    const char *dts = dt == dnnl_bf16 ? "bf16" : "f32";
    const char *lay = reorder ? "reordered" : "as-stored";
    if (dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) != dnnl_success) {
        snprintf(label, sizeof label, "onednn %s %s: unsupported", dts, lay);
        printf("%-16s %4d  %-34s %8s\n", sname, m, label, "-");
        return;
    }
    const char *impl = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(label, sizeof label, "onednn %s %s [%s]", dts, lay, impl);
    if (strncmp(impl, "ref", 3) == 0) {
        /* the reference implementation takes seconds per call here */
        printf("%-16s %4d  %-34s %8s (reference impl, not timed)\n", sname, m, label, "-");
        dnnl_primitive_desc_destroy(pd);
        return;
    }
    const dnnl_memory_desc_t *wq = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t src_m, w_m, w_user, dst_m;
    dnnl_memory_create(&src_m, &src_md, eng, src_data);
    dnnl_memory_create(&w_user, &w_md, eng, w_data);
    dnnl_memory_create(&dst_m, &dst_md, eng, y);
    if (reorder) {
        dnnl_memory_create(&w_m, wq, eng, DNNL_MEMORY_ALLOCATE);
        dnnl_primitive_desc_t rpd;
        dnnl_primitive_t rp;
        dnnl_reorder_primitive_desc_create(&rpd, &w_md, eng, wq, eng, NULL);
        dnnl_primitive_create(&rp, rpd);
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, w_user}, {DNNL_ARG_TO, w_m}};
        dnnl_primitive_execute(rp, st, 2, ra);
        dnnl_stream_wait(st);
        dnnl_primitive_destroy(rp);
        dnnl_primitive_desc_destroy(rpd);
    } else {
        w_m = w_user;
    }
    dnnl_ctx c;
    dnnl_primitive_create(&c.prim, pd);
    c.stream = st;
    c.args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, src_m};
    c.args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, w_m};
    c.args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, dst_m};
    if (strlen(label) > 34) label[34] = 0;
    measure(sname, m, label, 2.0 * m * k * n, run_dnnl, &c);
    dnnl_primitive_destroy(c.prim);
    dnnl_primitive_desc_destroy(pd);
    if (reorder) dnnl_memory_destroy(w_m);
    dnnl_memory_destroy(w_user);
    dnnl_memory_destroy(src_m);
    dnnl_memory_destroy(dst_m);
}

/* ---- --bf16-route: the routes level avx512bf16 can take, alternating ---- */
typedef struct var_ctx {
    qe_mm_args a;
    int (*fn)(const qe_mm_args *);
    int failed;
} var_ctx;

static void run_var(void *p) {
    var_ctx *c = p;
    if (c->fn(&c->a) != 0) c->failed = 1;
}

static const char *dnnl_isa_name(dnnl_cpu_isa_t i) {
    switch (i) {
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
        case dnnl_cpu_isa_avx512_core: return "avx512_core";
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
        case dnnl_cpu_isa_avx2: return "avx2";
        default: return "other";
    }
}

static double median_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

static void bf16_route(qe_threadpool *pool, dnnl_engine_t eng, dnnl_stream_t st, int rounds) {
    static const int ms[] = {16, 32, 64, 128, 512};
    enum { NM = 5, MAXR = 64 };
    if (rounds > MAXR) rounds = MAXR;
    double tot_f[NM] = {0}, tot_t[3][NM] = {{0}};
    printf("bf16 mode, bf16 weights as stored; %d rounds of A, B, C alternating, %.2f s each; oneDNN isa: "
           "%s\n",
           rounds, g_seconds, dnnl_isa_name(dnnl_get_effective_cpu_isa()));
    printf("A = qembed vdpbf16ps kernel (qe_matmul_avx512bf16), B = qembed oneDNN route (qe_matmul_onednn), "
           "C = oneDNN matmul on its own threads (bf16 activations given)\n");
    printf("%-16s %4s  %9s %9s %9s  %6s %6s  %s\n", "shape k->n", "m", "A GFLOP/s", "B GFLOP/s", "C GFLOP/s",
           "B/A", "C/A", "C impl");
    for (int s = 0; s < N_SHAPES; s++) {
        int k = g_shapes[s].k, n = g_shapes[s].n, mmax = ms[NM - 1];
        uint16_t *wb = malloc(sizeof(uint16_t) * (size_t)n * k),
                 *xb = malloc(sizeof(uint16_t) * (size_t)mmax * k);
        float *x = malloc(sizeof(float) * (size_t)mmax * k), *y = malloc(sizeof(float) * (size_t)mmax * n);
        if (!wb || !xb || !x || !y) {
            fprintf(stderr, "bench_kernels: out of memory\n");
            exit(2);
        }
        for (size_t i = 0; i < (size_t)n * k; i++) wb[i] = qe_f32_to_bf16(rnd_unit() * 0.05f);
        for (size_t i = 0; i < (size_t)mmax * k; i++) {
            x[i] = rnd_unit();
            xb[i] = qe_f32_to_bf16(x[i]);
        }
        for (int mi = 0; mi < NM; mi++) {
            int m = ms[mi];
            double flops = 2.0 * m * k * n;
            dnnl_memory_desc_t smd, wmd, dmd;
            dnnl_dims_t sd = {m, k}, wd = {k, n}, dd = {m, n};
            dnnl_memory_desc_init_by_tag(&smd, 2, sd, dnnl_bf16, dnnl_ab);
            dnnl_memory_desc_init_by_tag(&wmd, 2, wd, dnnl_bf16, dnnl_ba);
            dnnl_memory_desc_init_by_tag(&dmd, 2, dd, dnnl_f32, dnnl_ab);
            dnnl_matmul_desc_t md;
            dnnl_matmul_desc_init(&md, &smd, &wmd, NULL, &dmd);
            dnnl_primitive_desc_t pd = NULL;
            if (dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) != dnnl_success) {
                printf("%-16s %4d  oneDNN refused the shape\n", g_shapes[s].name, m);
                continue;
            }
            const char *impl = "?";
            dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
            dnnl_memory_t sm, wm, dm;
            dnnl_memory_create(&sm, &smd, eng, xb);
            dnnl_memory_create(&wm, &wmd, eng, wb);
            dnnl_memory_create(&dm, &dmd, eng, y);
            dnnl_ctx c;
            dnnl_primitive_create(&c.prim, pd);
            c.stream = st;
            c.args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, sm};
            c.args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, wm};
            c.args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, dm};
            qe_mm_args a = {pool, QE_MM_BF16, x, (size_t)k, m, k, wb, QE_BF16, n, y, (size_t)n};
            var_ctx va = {a, qe_matmul_avx512bf16, 0}, vb = {a, qe_matmul_onednn, 0};
            double r[3][MAXR];
            for (int it = 0; it < rounds; it++) {
                r[0][it] = measure(NULL, m, NULL, flops, run_var, &va);
                r[1][it] = measure(NULL, m, NULL, flops, run_var, &vb);
                r[2][it] = measure(NULL, m, NULL, flops, run_dnnl, &c);
            }
            double med[3];
            for (int v = 0; v < 3; v++) {
                med[v] = median_of(r[v], rounds);
                tot_t[v][mi] += flops / med[v];
            }
            tot_f[mi] += flops;
            printf("%-16s %4d  %9.1f %9.1f %9.1f  %6.3f %6.3f  %s%s%s\n", g_shapes[s].name, m, med[0], med[1],
                   med[2], med[1] / med[0], med[2] / med[0], impl, va.failed ? " (A declined!)" : "",
                   vb.failed ? " (B declined!)" : "");
            fflush(stdout);
            dnnl_primitive_destroy(c.prim);
            dnnl_primitive_desc_destroy(pd);
            dnnl_memory_destroy(sm);
            dnnl_memory_destroy(wm);
            dnnl_memory_destroy(dm);
        }
        free(wb);
        free(xb);
        free(x);
        free(y);
    }
    printf("\nall five shapes (a layer's products; q, k/v, gate counted once each):\n");
    for (int mi = 0; mi < NM; mi++) {
        double a = tot_f[mi] / tot_t[0][mi], b = tot_f[mi] / tot_t[1][mi], c = tot_f[mi] / tot_t[2][mi];
        printf("%-16s %4d  %9.1f %9.1f %9.1f  %6.3f %6.3f\n", "together", ms[mi], a, b, c, b / a, c / a);
    }
}
#endif

/* ---- OpenBLAS ---- */
#ifdef QE_HAVE_OPENBLAS
typedef struct blas_ctx {
    int m, k, n;
    const float *x, *wf;
    const uint16_t *xb, *wb;
    float *y;
    void (*sbgemm)(int, int, int, int, int, int, float, const uint16_t *, int, const uint16_t *, int, float,
                   float *, int);
} blas_ctx;

static void run_sgemm(void *p) {
    blas_ctx *c = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->m, c->n, c->k, 1.0f, c->x, c->k, c->wf, c->k,
                0.0f, c->y, c->n);
}

static void run_sbgemm(void *p) {
    blas_ctx *c = p;
    c->sbgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->m, c->n, c->k, 1.0f, c->xb, c->k, c->wb, c->k, 0.0f,
              c->y, c->n);
}
#endif

static void header(void) {
    printf("%-16s %4s  %-34s %8s %8s %9s  %5s\n", "shape k->n", "m", "implementation", "best", "median",
           "best ms", "calls");
    printf("%-16s %4s  %-34s %8s %8s\n", "", "", "", "GFLOP/s", "GFLOP/s");
}

int main(int argc, char **argv) {
    int threads = 0, blas_only = 0, qe_only = 0, packed_only = 0, route_rounds = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            g_seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--qembed-only") == 0) {
            qe_only = 1;
        } else if (strcmp(argv[i], "--packed-only") == 0) {
            packed_only = qe_only = 1;
        } else if (strcmp(argv[i], "--bf16-route") == 0 && i + 1 < argc) {
            route_rounds = atoi(argv[++i]);
            if (route_rounds < 1) route_rounds = 1;
        } else if (strcmp(argv[i], "--openblas-only") == 0) {
            blas_only = 1;
        } else {
            fprintf(
                stderr,
                "usage: %s [--seconds S] [--threads N] [--qembed-only] [--packed-only] [--bf16-route R]\n",
                argv[0]);
            return 1;
        }
    }
    qe_threadpool *pool = qe_threadpool_create(threads);
    if (!pool) {
        fprintf(stderr, "bench_kernels: cannot create the thread pool\n");
        return 2;
    }
    threads = qe_threadpool_size(pool);
    qe_isa isa = qe_cpu_isa();

    if (!blas_only) {
        char model[256] = "unknown";
        FILE *f = fopen("/proc/cpuinfo", "r");
        if (f) {
            char line[512];
            while (fgets(line, sizeof line, f)) {
                if (strncmp(line, "model name", 10) == 0) {
                    char *c = strchr(line, ':');
                    if (c) snprintf(model, sizeof model, "%s", c + 2);
                    model[strcspn(model, "\n")] = 0;
                    break;
                }
            }
            fclose(f);
        }
        double la[3] = {0, 0, 0};
        getloadavg(la, 3);
        time_t t = time(NULL);
        char date[64];
        strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
        const char *ct = getenv("OPENBLAS_CORETYPE");
        printf("bench_kernels  %s\n", date);
        printf("cpu: %s, %ld online, qembed threads %d, isa %s (QEMBED_ISA=%s)\n", model,
               sysconf(_SC_NPROCESSORS_ONLN), threads, qe_isa_name(isa),
               getenv("QEMBED_ISA") ? getenv("QEMBED_ISA") : "unset");
        printf("load average at start: %.2f %.2f %.2f (other processes share these cores)\n", la[0], la[1],
               la[2]);
        printf("OPENBLAS_CORETYPE=%s  OMP_NUM_THREADS=%s\n", ct ? ct : "(unset)",
               getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "(unset)");
        printf("\npeaks (best of ~150 ms each, %d threads):\n", threads);
        if (route_rounds) qe_only = 1; /* no OpenBLAS children */
        for (int i = QE_ISA_AVX2; i <= (int)isa; i++)
            printf("  %-12s %8.1f GFLOP/s  (%s)\n", qe_isa_name((qe_isa)i),
                   qe_peak_gflops(pool, (qe_isa)i, 150),
                   i == QE_ISA_AMX           ? "AMX tdpbf16ps tiles, what oneDNN runs for bf16"
                   : i == QE_ISA_AVX512_BF16 ? "zmm vdpbf16ps"
                   : i == QE_ISA_AVX512      ? "zmm f32 FMA"
                                             : "ymm f32 FMA");
        printf("  DRAM read    %8.1f GB/s (4 KiB pages), %.1f GB/s (huge pages advised)\n\n",
               qe_peak_dram_read_gbs(pool, 0, 150), qe_peak_dram_read_gbs(pool, 1, 150));
        if (!route_rounds) header();
    }

#ifdef QE_HAVE_DNNL
    dnnl_engine_t eng = NULL;
    dnnl_stream_t st = NULL;
    if (!blas_only) {
        dnnl_engine_create(&eng, dnnl_cpu, 0);
        dnnl_stream_create(&st, eng, dnnl_stream_default_flags);
    }
#endif
#ifdef QE_HAVE_OPENBLAS
    void *sb = dlsym(RTLD_DEFAULT, "cblas_sbgemm");
#endif
    if (route_rounds) {
#ifdef QE_HAVE_DNNL
        bf16_route(pool, eng, st, route_rounds);
        dnnl_stream_destroy(st);
        dnnl_engine_destroy(eng);
#else
        printf("--bf16-route: built without oneDNN\n");
#endif
        qe_threadpool_free(pool);
        return 0;
    }

    static const int packed_ms[] = {16, 64, 128, 512, 1024, 2048, 4096};
    const int *ms = packed_only ? packed_ms : g_ms;
    const int n_ms = packed_only ? (int)(sizeof packed_ms / sizeof *packed_ms) : N_MS;
    for (int s = 0; s < N_SHAPES; s++) {
        int k = g_shapes[s].k, n = g_shapes[s].n, mmax = ms[n_ms - 1];
        uint16_t *wb = malloc(sizeof(uint16_t) * (size_t)n * k);
        float *wf = malloc(sizeof(float) * (size_t)n * k);
        float *x = malloc(sizeof(float) * (size_t)mmax * k);
        uint16_t *xb = malloc(sizeof(uint16_t) * (size_t)mmax * k);
        float *y = malloc(sizeof(float) * (size_t)mmax * n);
        if (!wb || !wf || !x || !xb || !y) {
            fprintf(stderr, "bench_kernels: out of memory\n");
            return 2;
        }
        for (size_t i = 0; i < (size_t)n * k; i++) {
            wb[i] = qe_f32_to_bf16(rnd_unit() * 0.05f);
            wf[i] = qe_bf16_to_f32(wb[i]);
        }
        for (size_t i = 0; i < (size_t)mmax * k; i++) {
            x[i] = rnd_unit();
            xb[i] = qe_f32_to_bf16(x[i]);
        }
        memset(y, 0, sizeof(float) * (size_t)mmax * n);
        qe_amx_w pw;
        int packed = isa >= QE_ISA_AMX && !blas_only && qe_amx_pack(&pw, wb, NULL, n, k) == 0;
        for (int mi = 0; mi < n_ms; mi++) {
            int m = ms[mi];
            double flops = 2.0 * m * k * n;
            const char *sn = g_shapes[s].name;
            if (packed) {
                amx_ctx c = {pool, x, m, k, {&pw, y, (size_t)n}};
                measure(sn, m, "qembed amx packed bf16-mode", flops, run_amx, &c);
            }
            if (packed_only) continue;
            if (!blas_only) {
                for (int v = QE_ISA_AVX2; v <= (int)isa; v++) {
                    for (int mode = 0; mode <= 1; mode++) {
                        qe_ctx c = {pool, (qe_isa)v, (qe_mm_mode)mode, x, m, k, n, wb, y};
                        char label[64];
                        snprintf(label, sizeof label, "qembed %s %s", qe_isa_name((qe_isa)v),
                                 mode ? "bf16-mode" : "exact");
                        measure(sn, m, label, flops, run_qe, &c);
                    }
                }
                if (m == g_ms[0]) {
                    qe_ctx c = {pool, QE_ISA_SCALAR, QE_MM_EXACT, x, m, k, n, wb, y};
                    double save = g_seconds;
                    g_seconds = 0; /* 3 calls: the reference is slow */
                    measure(sn, m, "qembed scalar exact", flops, run_qe, &c);
                    g_seconds = save;
                }
#ifdef QE_HAVE_DNNL
                if (!qe_only) {
                    bench_dnnl(eng, st, sn, m, k, n, dnnl_bf16, 0, xb, wb, y);
                    bench_dnnl(eng, st, sn, m, k, n, dnnl_bf16, 1, xb, wb, y);
                    bench_dnnl(eng, st, sn, m, k, n, dnnl_f32, 0, x, wf, y);
                    bench_dnnl(eng, st, sn, m, k, n, dnnl_f32, 1, x, wf, y);
                }
#endif
            } else {
#ifdef QE_HAVE_OPENBLAS
                const char *ct = getenv("OPENBLAS_CORETYPE");
                char label[64];
                blas_ctx c = {m, k, n, x, wf, xb, wb, y, (void *)0};
                snprintf(label, sizeof label, "openblas sgemm (CORETYPE=%s)", ct ? ct : "unset");
                measure(sn, m, label, flops, run_sgemm, &c);
                if (sb) {
                    *(void **)&c.sbgemm = sb;
                    snprintf(label, sizeof label, "openblas sbgemm (CORETYPE=%s)", ct ? ct : "unset");
                    measure(sn, m, label, flops, run_sbgemm, &c);
                }
#endif
            }
        }
        if (packed) qe_amx_free(&pw);
        free(wb);
        free(wf);
        free(x);
        free(xb);
        free(y);
    }
#ifdef QE_HAVE_DNNL
    if (!blas_only) {
        dnnl_stream_destroy(st);
        dnnl_engine_destroy(eng);
    }
#endif
    qe_threadpool_free(pool);

    if (!blas_only && !qe_only) {
#ifdef QE_HAVE_OPENBLAS
        printf("\nOpenBLAS %s; cblas_sbgemm %s in this libopenblas\n", OPENBLAS_VERSION,
               sb ? "present" : "absent (Debian builds it without BUILD_BFLOAT16)");
        /* OpenBLAS picks its kernels when loaded: rerun this program for its
         * rows, with the environment as is and with the core type changed */
        const char *ct = getenv("OPENBLAS_CORETYPE");
        char *saved = ct ? strdup(ct) : NULL;
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) {
                if (saved)
                    unsetenv("OPENBLAS_CORETYPE");
                else
                    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
            }
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                char thr[16];
                snprintf(thr, sizeof thr, "%d", threads);
                char sec[32];
                snprintf(sec, sizeof sec, "%g", g_seconds);
                execl("/proc/self/exe", argv[0], "--openblas-only", "--threads", thr, "--seconds", sec,
                      (char *)NULL);
                _exit(127);
            }
            int status = 0;
            if (pid > 0) waitpid(pid, &status, 0);
        }
        if (saved)
            setenv("OPENBLAS_CORETYPE", saved, 1);
        else
            unsetenv("OPENBLAS_CORETYPE");
        free(saved);
#else
        printf("\nOpenBLAS: not built in\n");
#endif
        double la[3] = {0, 0, 0};
        getloadavg(la, 3);
        printf("\nload average at end: %.2f %.2f %.2f\n", la[0], la[1], la[2]);
        printf("notes: qembed takes f32 activations (bf16-mode rounds them inside the call); "
               "onednn bf16 gets bf16 activations; onednn f32 and openblas sgemm get an f32 copy "
               "of the weights.\n");
    }
    return 0;
}
