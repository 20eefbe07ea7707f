/* bench_stream: how fast this machine streams a buffer far larger than its
 * caches, read the way a 16-row query's AMX product reads its packed weights
 * (matmul_amx.c): sequential 1 KiB tiles, each one tile load, with and
 * without software prefetch at a given distance and hint, one or more
 * streams per thread, on 1..N threads. Gives the memory ceiling a query
 * should approach, and whether another prefetch or a one-stream layout
 * would read faster. (`qembed bench`'s "DRAM read" reads 64 MiB, which a
 * large last-level cache holds: 300 MiB on the Emerald Rapids VM.)
 *
 *   bench_stream [--mib M] [--threads N] [--from F] [--reps R] [--short]
 *
 * Runs F..N threads (F = 1 by default); --short: only hint T0 up to 16 KiB
 * ahead (the forms worth comparing on a busy machine, in more rounds).
 *
 * Forms (each thread reads its own contiguous 1/N of the buffer):
 *   avx512        64-byte vector loads ORed together, no prefetch (the plain
 *                 streaming ceiling of the hardware prefetchers)
 *   tiles, one stream   tile loads of 1 KiB + tdpbf16ps against a fixed A
 *                 tile over the thread's range as one sequential stream,
 *                 prefetch distance D / hint H (what the 1x4 kernel would
 *                 read if a panel pair's k-blocks were interleaved)
 *   tiles, two panels   two 160 KiB streams side by side, prefetched inside
 *                 each panel only (the 1x4 kernel as it is, k = 2560)
 * Prints GB/s (1e9 bytes) of the best of R passes (wall), and beside it
 * each thread's rate while it had a core (CPU time). Not a test; figures go
 * to bench/results with the CPU named. x86-64 with AMX-BF16 only (the tile
 * forms are skipped elsewhere). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "backend/cpu/matmul_amx.h"
#include "common/clock.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))

typedef struct cfg {
    int form;  /* 0 avx512, 1 tile, 2 tile2 */
    int dist;  /* prefetch distance in bytes (0: none) */
    int hint;  /* 0 T0, 1 T1, 2 T2, 3 NTA */
    int panel; /* tile2: bytes of one panel (it walks two panels side by side) */
} cfg;

typedef struct arg {
    const char *p;
    size_t bytes;
    cfg c;
    pthread_barrier_t *bar;
    double t;   /* seconds of the pass (wall) */
    double cpu; /* the thread's CPU seconds in it */
    uint64_t sink;
} arg;

typedef struct tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

TGT static void tiles_on(void) {
    _Alignas(64) tilecfg t;
    memset(&t, 0, sizeof t);
    t.palette = 1;
    for (int i = 0; i < 8; i++) {
        t.colsb[i] = 64;
        t.rows[i] = 16;
    }
    _tile_loadconfig(&t);
}

static inline void pf(const char *p, int hint) {
    switch (hint) {
        case 0: _mm_prefetch(p, _MM_HINT_T0); break;
        case 1: _mm_prefetch(p, _MM_HINT_T1); break;
        case 2: _mm_prefetch(p, _MM_HINT_T2); break;
        default: _mm_prefetch(p, _MM_HINT_NTA); break;
    }
}

TGT static uint64_t read_avx512(const char *p, size_t bytes) {
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    for (size_t i = 0; i < bytes; i += 256) {
        a = _mm512_or_si512(a, _mm512_load_si512((const void *)(p + i)));
        b = _mm512_or_si512(b, _mm512_load_si512((const void *)(p + i + 64)));
        c = _mm512_or_si512(c, _mm512_load_si512((const void *)(p + i + 128)));
        d = _mm512_or_si512(d, _mm512_load_si512((const void *)(p + i + 192)));
    }
    a = _mm512_or_si512(_mm512_or_si512(a, b), _mm512_or_si512(c, d));
    return (uint64_t)_mm512_reduce_or_epi64(a);
}

/* One panel of `bytes` as k_1x2 walks it: 2 KiB blocks of two tiles, an A
 * tile (from L1) per block, prefetching dist ahead inside the panel. */
TGT static void read_tiles(const char *p, size_t bytes, int dist, int hint, const uint16_t *a) {
    _tile_zero(0);
    _tile_zero(1);
    for (size_t i = 0; i < bytes; i += 2048) {
        if (dist && i + (size_t)dist < bytes)
            for (int l = 0; l < 2048; l += 64) pf(p + i + (size_t)dist + (size_t)l, hint);
        _tile_loadd(4, a, 64);
        _tile_loadd(5, p + i, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_loadd(6, p + i + 1024, 64);
        _tile_dpbf16ps(1, 4, 6);
    }
}

/* Two panels side by side as k_1x4 walks them. */
TGT static void read_tiles2(const char *p0, const char *p1, size_t bytes, int dist, int hint,
                            const uint16_t *a) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (size_t i = 0; i < bytes; i += 2048) {
        if (dist && i + (size_t)dist < bytes)
            for (int l = 0; l < 2048; l += 64) {
                pf(p0 + i + (size_t)dist + (size_t)l, hint);
                pf(p1 + i + (size_t)dist + (size_t)l, hint);
            }
        _tile_loadd(4, a, 64);
        _tile_loadd(5, p0 + i, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_loadd(6, p0 + i + 1024, 64);
        _tile_dpbf16ps(1, 4, 6);
        _tile_loadd(7, p1 + i, 64);
        _tile_dpbf16ps(2, 4, 7);
        _tile_loadd(5, p1 + i + 1024, 64);
        _tile_dpbf16ps(3, 4, 5);
    }
}

TGT static void *worker(void *v) {
    arg *g = v;
    _Alignas(64) static _Thread_local uint16_t a[512];
    for (int i = 0; i < 512; i++) a[i] = 0x3f80;
    if (g->c.form) tiles_on();
    pthread_barrier_wait(g->bar);
    double t0 = qe_now_s(), c0 = qe_clock_s(CLOCK_THREAD_CPUTIME_ID);
    if (g->c.form == 0) {
        g->sink = read_avx512(g->p, g->bytes);
    } else {
        size_t pb = (size_t)g->c.panel;
        if (g->c.form == 1)
            read_tiles(g->p, g->bytes, g->c.dist, g->c.hint, a);
        else
            for (size_t o = 0; o + 2 * pb <= g->bytes; o += 2 * pb)
                read_tiles2(g->p + o, g->p + o + pb, pb, g->c.dist, g->c.hint, a);
    }
    g->t = qe_now_s() - t0;
    g->cpu = qe_clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    if (g->c.form) _tile_release();
    return NULL;
}

/* Best GB/s of reps passes over buf with n threads (wall time of the
 * slowest thread); *per_cpu: the best mean over threads of each thread's
 * bytes per CPU second, its rate while it had a core (on a machine shared
 * with other processes a thread descheduled mid-pass lowers the wall
 * figure, not this one; both still share the memory bus with them). */
static double run(const char *buf, size_t bytes, int n, int reps, cfg c, double *per_cpu) {
    double best = 0;
    for (int r = 0; r < reps; r++) {
        pthread_t th[64];
        arg ar[64];
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, (unsigned)n);
        size_t per = bytes / (size_t)n / (2u << 20) * (2u << 20);
        for (int i = 0; i < n; i++) {
            ar[i] = (arg){buf + per * (size_t)i, per, c, &bar, 0, 0, 0};
            pthread_create(&th[i], NULL, worker, &ar[i]);
        }
        double tmax = 0;
        for (int i = 0; i < n; i++) {
            pthread_join(th[i], NULL);
            if (ar[i].t > tmax) tmax = ar[i].t;
        }
        pthread_barrier_destroy(&bar);
        double gbs = (double)per * n / tmax * 1e-9, pc = 0;
        for (int i = 0; i < n; i++) pc += ar[i].cpu > 0 ? (double)per / ar[i].cpu * 1e-9 / n : 0;
        if (gbs > best) best = gbs;
        if (pc > *per_cpu) *per_cpu = pc;
    }
    return best;
}

int main(int argc, char **argv) {
    int mib = 2048, threads = 2, reps = 5, short_list = 0, from = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--short")) {
            short_list = 1;
            continue;
        }
        int *dst = !strcmp(argv[i], "--mib")       ? &mib
                   : !strcmp(argv[i], "--from")    ? &from
                   : !strcmp(argv[i], "--threads") ? &threads
                   : !strcmp(argv[i], "--reps")    ? &reps
                                                   : NULL;
        if (!dst || i + 1 >= argc || (*dst = atoi(argv[++i])) < 1 || threads > 64) {
            fprintf(stderr, "usage: bench_stream [--mib M] [--threads N (<= 64)] [--from F] [--reps R] "
                            "[--short] (all >= 1)\n");
            return 1;
        }
    }
    const size_t bytes = (size_t)mib << 20;
    if ((size_t)mib < 2u * (size_t)threads) {
        fprintf(stderr, "bench_stream: --mib %d is less than 2 MiB per thread (%d threads)\n", mib, threads);
        return 1;
    }
    void *mem = NULL;
    if (posix_memalign(&mem, 2u << 20, bytes) != 0) {
        fprintf(stderr, "bench_stream: out of memory (%d MiB)\n", mib);
        return 1;
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(mem, bytes, MADV_HUGEPAGE); /* as qe_amx_pack's packed weights */
#endif
    memset(mem, 0x3f, bytes);
    const int amx = qe_amx_usable();
    double la[3] = {0, 0, 0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3) la[0] = la[1] = la[2] = 0;
        fclose(f);
    }
    printf("bench_stream: %d MiB, best of %d rounds (every form once per round, so a busy minute hits all "
           "alike); GB/s = 1e9 bytes/s; AMX %s; load average at start %.2f %.2f %.2f\n",
           mib, reps, amx ? "usable" : "not usable (tile forms skipped)", la[0], la[1], la[2]);
    /* the forms: avx512 loads; one stream per thread (prefetch distance x
     * hint); two 160 KiB panels (k = 2560 of the 4B model) as the 1x4 kernel
     * walks them (prefetch 8 KiB T0 inside each panel only) */
    static const char *hn[4] = {"T0", "T1", "T2", "NTA"};
    static const int dists[] = {0, 4096, 8192, 16384, 32768, 65536};
    static const int hints[] = {0, 2, 3};
    cfg list[64];
    int nc = 0;
    list[nc++] = (cfg){0, 0, 0, 0};
    if (amx) {
        for (int di = 0; di < (int)(sizeof dists / sizeof *dists); di++)
            for (int h = 0; h < (dists[di] ? 3 : 1); h++)
                if (!short_list || (h == 0 && dists[di] <= 16384))
                    list[nc++] = (cfg){1, dists[di], hints[h], 0};
        list[nc++] = (cfg){2, 0, 0, 2560 * 64};
        list[nc++] = (cfg){2, 8192, 0, 2560 * 64};
    }
    for (int n = from; n <= threads; n++) {
        double best[64] = {0}, pcpu[64] = {0};
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < nc; i++) {
                double g = run(mem, bytes, n, 1, list[i], &pcpu[i]);
                if (g > best[i]) best[i] = g;
            }
        for (int i = 0; i < nc; i++) {
            const cfg *c = &list[i];
            if (c->form == 0)
                printf("threads %d: avx512 loads                           %5.1f  (%5.1f per thread on a "
                       "core)\n",
                       n, best[i], pcpu[i]);
            else if (c->form == 1)
                printf("threads %d: tiles, one stream, prefetch %5d %-3s     %5.1f  (%5.1f per thread on a "
                       "core)\n",
                       n, c->dist, c->dist ? hn[c->hint] : "", best[i], pcpu[i]);
            else
                printf("threads %d: tiles, two 160 KiB panels, prefetch %4d %-3s %5.1f  (%5.1f per thread on "
                       "a core)\n",
                       n, c->dist, c->dist ? hn[c->hint] : "", best[i], pcpu[i]);
        }
        fflush(stdout);
    }
    free(mem);
    return 0;
}
#else
int main(void) {
    printf("bench_stream: x86-64 only\n");
    return 0;
}
#endif
