/* Peak microbenchmarks (see peak.h). Each thread runs the same independent
 * instruction stream; the figure is total work over the wall time of the
 * slowest thread, best of the rounds that fit in the budget. */
#define QEMBED_TEST_AND_BENCH_API /* qembed_measure_peak */
#include "common/clock.h"
#include "peak.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "amx_tiles.h"
#include "matmul_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* Each loop body issues NACC independent accumulations (enough to cover the
 * latency of two pipes: 4-5 cycles x 2 per cycle) and returns a value that
 * depends on all of them, so nothing can be optimized away. */
#define NACC 12

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static float loop_avx2(long iters) {
    __m256 acc[NACC];
    for (int i = 0; i < NACC; i++) acc[i] = _mm256_set1_ps((float)i * 1e-3f);
    __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-4f);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < NACC; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    __m256 s = acc[0];
    for (int i = 1; i < NACC; i++) s = _mm256_add_ps(s, acc[i]);
    return _mm256_cvtss_f32(s);
}

__attribute__((target("avx512f"))) static float loop_avx512(long iters) {
    __m512 acc[NACC];
    for (int i = 0; i < NACC; i++) acc[i] = _mm512_set1_ps((float)i * 1e-3f);
    __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-4f);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < NACC; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    __m512 s = acc[0];
    for (int i = 1; i < NACC; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx512f,avx512bf16"))) static float loop_bf16(long iters) {
    __m512 acc[NACC];
    for (int i = 0; i < NACC; i++) acc[i] = _mm512_set1_ps((float)i * 1e-3f);
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3800);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < NACC; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    }
    __m512 s = acc[0];
    for (int i = 1; i < NACC; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}
#endif

/* AMX-BF16 (what oneDNN runs at level QE_ISA_AMX): 4 independent tile
 * accumulators (16 x 16 f32) each += A (16 x 32 bf16) x B (16 pairs x 16),
 * 16 x 16 x 32 multiply-adds per tdpbf16ps; 4 in flight cover its latency.
 * Linux hands out the tile state only after a per-process request. */
static int amx_permit(void) {
#if defined(SYS_arch_prctl)
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0 ? 0 : -1;
#else
    return -1;
#endif
}

__attribute__((target("amx-tile,amx-bf16"))) static float loop_amx(long iters) {
    _Alignas(64) qe_amx_tilecfg cfg;
    qe_amx_tilecfg_init(&cfg);
    qe_amx_tiles_set(&cfg, 0, 8, 16, 64);
    _Alignas(64) static const uint16_t ones[16 * 32] = {0}; /* zeros: the sum stays finite */
    _Alignas(64) float out[16 * 16];
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, ones, 64);
    _tile_loadd(5, ones, 64);
    _tile_loadd(6, ones, 64);
    _tile_loadd(7, ones, 64);
    /* 4 tile products per iteration (flops_per_iter) */
    for (long it = 0; it < iters; it++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    _tile_release();
    return out[0] + out[255];
}

static float loop_scalar(long iters) {
    volatile float seed = 0.999f;
    float acc[NACC], a = seed, b = 1e-4f;
    for (int i = 0; i < NACC; i++) acc[i] = (float)i * 1e-3f;
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < NACC; i++) acc[i] = acc[i] * a + b; /* fmaf would be a libm call */
    float s = 0;
    for (int i = 0; i < NACC; i++) s += acc[i];
    return s;
}

typedef struct flop_job {
    qe_isa isa;
    long iters;
    volatile float sink;
} flop_job;

static void flop_task(void *arg, int task, int thread) {
    flop_job *j = arg;
    float r = 0;
    switch (j->isa) {
#if defined(__x86_64__)
        case QE_ISA_AMX: r = loop_amx(j->iters); break;
        case QE_ISA_AVX512_BF16: r = loop_bf16(j->iters); break;
        case QE_ISA_AVX512: r = loop_avx512(j->iters); break;
        case QE_ISA_AVX2: r = loop_avx2(j->iters); break;
#endif
        default: r = loop_scalar(j->iters); break;
    }
    j->sink = r;
}

static double flops_per_iter(qe_isa isa) {
    switch (isa) {
        case QE_ISA_AMX: return 4 * 16.0 * 16.0 * 32.0 * 2.0;
        case QE_ISA_AVX512_BF16: return NACC * 16.0 * 4.0;
        case QE_ISA_AVX512: return NACC * 16.0 * 2.0;
        case QE_ISA_AVX2: return NACC * 8.0 * 2.0;
        case QE_ISA_SCALAR: break;
    }
    return NACC * 2.0;
}

double qe_peak_gflops(qe_threadpool *pool, qe_isa isa, double budget_ms) {
    qe_isa hw = qe_cpu_isa_hw();
    if (isa > hw) isa = hw;
#if !defined(__x86_64__)
    isa = QE_ISA_SCALAR;
#else
    if (isa == QE_ISA_AMX && amx_permit() != 0) isa = QE_ISA_AVX512_BF16;
#endif
    int threads = qe_threadpool_size(pool);
    flop_job job = {isa, 1000, 0};
    /* calibrate: grow the round until it lasts ~1/8 of the budget */
    double round_s = budget_ms > 0 ? budget_ms * 1e-3 / 8 : 0.0125;
    double t = 0;
    for (;;) {
        double t0 = qe_now_s();
        qe_threadpool_run(pool, flop_task, &job, threads);
        t = qe_now_s() - t0;
        if (t >= round_s * 0.5 || job.iters > (1L << 40)) break;
        job.iters *= t > 1e-6 ? (long)fmax(2.0, round_s / t) : 16;
    }
    double best = job.iters * flops_per_iter(isa) * threads / t;
    double end = qe_now_s() + budget_ms * 1e-3 * 0.75;
    while (qe_now_s() < end) {
        double t0 = qe_now_s();
        qe_threadpool_run(pool, flop_task, &job, threads);
        double g = job.iters * flops_per_iter(isa) * threads / (qe_now_s() - t0);
        if (g > best) best = g;
    }
    return best * 1e-9;
}

typedef struct read_job {
    const uint64_t *buf;
    size_t n_words;
    int n_tasks;
    uint64_t sink[64];
} read_job;

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint64_t *p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        a = _mm256_xor_si256(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(p + i + 4)));
        c = _mm256_xor_si256(c, _mm256_load_si256((const __m256i *)(p + i + 8)));
        d = _mm256_xor_si256(d, _mm256_load_si256((const __m256i *)(p + i + 12)));
    }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    return (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
}
#endif

static void read_task(void *arg, int task, int thread) {
    read_job *j = arg;
    size_t per = j->n_words / (size_t)j->n_tasks / 16 * 16;
    const uint64_t *p = j->buf + per * (size_t)task;
    uint64_t x = 0;
#if defined(__x86_64__)
    if (qe_cpu_isa_hw() >= QE_ISA_AVX2) {
        x = read_avx2(p, per);
    } else
#endif
    {
        for (size_t i = 0; i < per; i++) x ^= p[i];
    }
    j->sink[task & 63] = x;
}

/* The buffer the read rate is measured on: four times the last-level cache
 * (a 64 MiB buffer fitted in the 300 MiB L3 of an Emerald Rapids machine
 * and read 45-60 GB/s, a cache rate, where weights streamed from memory read
 * at 13-16 GB/s a core), at least 256 MiB, at most 2 GiB. */
static size_t dram_buffer_bytes(void) {
    size_t bytes = (size_t)256 << 20;
#ifdef _SC_LEVEL3_CACHE_SIZE
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0 && (size_t)l3 * 4 > bytes) bytes = (size_t)l3 * 4;
#endif
    if (bytes > (size_t)2 << 30) bytes = (size_t)2 << 30;
    return bytes / (2u << 20) * (2u << 20); /* whole huge pages */
}

double qe_peak_dram_read_gbs(qe_threadpool *pool, int huge_pages, double budget_ms) {
    const size_t bytes = dram_buffer_bytes();
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return 0;
#ifdef MADV_HUGEPAGE
    if (huge_pages) madvise(mem, bytes, MADV_HUGEPAGE);
#endif
    memset(mem, 1, bytes); /* real pages, not the shared zero page */
    int threads = qe_threadpool_size(pool);
    read_job job = {mem, bytes / 8, threads, {0}};
    double best = 0;
    double end = qe_now_s() + budget_ms * 1e-3;
    int rounds = 0;
    while (rounds < 2 || (qe_now_s() < end && rounds < 100)) {
        double t0 = qe_now_s();
        qe_threadpool_run(pool, read_task, &job, threads);
        double t = qe_now_s() - t0;
        double per = (double)(bytes / 8 / (size_t)threads / 16 * 16) * 8.0 * threads;
        if (t > 0 && per / t > best) best = per / t;
        rounds++;
    }
    munmap(mem, bytes);
    return best * 1e-9;
}

/* ---- public: qembed_measure_peak (include/qembed.h) ---- */
#include <stdio.h>

#include "common/error.h"

qembed_status qembed_measure_peak(int n_threads, int exact, qembed_machine_peak *out, qembed_error *err) {
    QE_FAIL_IF(!out, err, QEMBED_ERR_INVALID_ARGUMENT, "qembed_measure_peak: out is NULL");
    memset(out, 0, sizeof *out);
    qe_threadpool *pool = qe_threadpool_create(n_threads);
    QE_FAIL_IF(!pool, err, QEMBED_ERR_OUT_OF_MEMORY,
               "qembed_measure_peak: cannot create a pool of %d threads", n_threads);
    qe_isa isa = qe_cpu_isa();
    snprintf(out->isa, sizeof out->isa, "%s", qe_isa_name(isa));
    out->n_threads = qe_threadpool_size(pool);
    qe_isa fma_isa = isa >= QE_ISA_AVX512 ? QE_ISA_AVX512 : isa;
    out->f32_fma_gflops = qe_peak_gflops(pool, fma_isa, 150);
    if (isa >= QE_ISA_AVX512_BF16) out->bf16_dot_gflops = qe_peak_gflops(pool, QE_ISA_AVX512_BF16, 150);
    /* what the products run: in bf16 mode (bf16 weights) AMX tiles through
     * oneDNN, else vdpbf16ps; exact mode f32 FMA. bf16_dot_gflops stays the
     * vdpbf16ps figure, so a bench can state both. */
    if (!exact && isa >= QE_ISA_AMX)
        out->compute_gflops = qe_peak_gflops(pool, QE_ISA_AMX, 150);
    else
        out->compute_gflops =
            (!exact && isa >= QE_ISA_AVX512_BF16) ? out->bf16_dot_gflops : out->f32_fma_gflops;
    out->dram_read_gbs = qe_peak_dram_read_gbs(pool, 0, 100);
    out->dram_read_hugepage_gbs = qe_peak_dram_read_gbs(pool, 1, 100);
    qe_threadpool_free(pool);
    return QEMBED_OK;
}
