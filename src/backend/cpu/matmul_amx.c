/* Hand-written AMX-BF16 products on weights packed once at load (layout and
 * contract in matmul_amx.h). Why not oneDNN's matmul here (matmul_onednn.c
 * still serves unpacked weights): on weights as stored it re-lays every
 * weight into its tile layout on every call, which for a 16-row query reads
 * and writes the weights twice more than the product does; its own packed
 * ("any") format is chosen per shape (rows included) and slicing it per
 * thread is not part of its contract. The tile kernel itself is small: a
 * 16x16 f32 accumulator tile += A (16 rows x 32 bf16) x B (16 pairs x 16
 * columns), 8 tiles in all.
 *
 * Kernels (rows of activations x columns of one or two 32-column panels):
 *   2x2: 32 rows x 1 panel, 4 accumulators, each loaded A and B tile used
 *        twice: the batch form (compute-bound).
 *   1x4: 16 rows x 2 panels: a query's form (bound by reading the weights;
 *        two panels are two sequential streams, prefetched ahead).
 *   1x2: 16 rows x 1 panel (a last odd panel).
 * Activations are rounded to bf16 once per call into the pool's conversion
 * block (rows padded with zeros to a multiple of 16, k to 32), in chunks of
 * rows that fit it. Each pool task takes a range of panel pairs of the
 * outputs and every row of the chunk, walking rows in L2-sized blocks. */
#include "matmul_amx.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "matmul_internal.h"

#define PANEL 32                 /* columns per panel */
#define TILE_BF16 512            /* one B tile: 16 pairs x 16 columns x 2 */
#define BLOCK_BF16 1024          /* one k-block of a panel: two tiles */
#define L2_ROWS_BYTES (1u << 20) /* activation rows kept in L2 across panels */

size_t qe_amx_packed_bytes(int n, int k) {
    if (n < 1 || k < 1) return 0;
    size_t panels = ((size_t)n + PANEL - 1) / PANEL, kp = ((size_t)k + 31) / 32 * 32;
    return panels * kp * PANEL * sizeof(uint16_t);
}

void qe_amx_free(qe_amx_w *w) {
    if (!w) return;
    free(w->data);
    memset(w, 0, sizeof *w);
}

/* One 16-column tile of k-block b: columns c.. of W (n, k), zero past n and k. */
static void pack_tile_scalar(uint16_t *tile, const uint16_t *w, int n, int k, int c, int b) {
    for (int j = 0; j < 16; j++) {
        const uint16_t *src = c + j < n ? w + (size_t)(c + j) * k + (size_t)b * 32 : NULL;
        int valid = src ? (k - b * 32 < 32 ? k - b * 32 : 32) : 0;
        for (int q = 0; q < 32; q++) tile[(q >> 1) * 32 + j * 2 + (q & 1)] = q < valid ? src[q] : 0;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
/* The same for a whole tile (16 columns, 32 k values, all inside W): each
 * column's 16 k-pairs are one 64-byte load, scattered down the tile's rows.
 * (Packing 1.1 GB at load: the scalar copy cost ~1 s.) */
__attribute__((target("avx512f"))) static void pack_tile_avx512(uint16_t *tile, const uint16_t *w, int k,
                                                                int c, int b) {
    const __m512i rows = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(16));
    for (int j = 0; j < 16; j++) {
        __m512i v = _mm512_loadu_si512((const void *)(w + (size_t)(c + j) * k + (size_t)b * 32));
        _mm512_i32scatter_epi32((int *)tile + j, rows, v, 4);
    }
}
#endif

/* Panel c0.. of W (n, k) into dst (kp/32 blocks of two tiles). */
static void pack_panel(uint16_t *dst, const uint16_t *w, int n, int k, int kp, int c0) {
#if defined(__x86_64__)
    const int fast = __builtin_cpu_supports("avx512f");
#endif
    for (int b = 0; b < kp / 32; b++)
        for (int t = 0; t < 2; t++) {
            uint16_t *tile = dst + (size_t)b * BLOCK_BF16 + (size_t)t * TILE_BF16;
            const int c = c0 + t * 16;
#if defined(__x86_64__)
            if (fast && c + 16 <= n && b * 32 + 32 <= k) {
                pack_tile_avx512(tile, w, k, c, b);
                continue;
            }
#endif
            pack_tile_scalar(tile, w, n, k, c, b);
        }
}

int qe_amx_pack(qe_amx_w *out, const uint16_t *wg, const uint16_t *wu, int n, int k) {
    memset(out, 0, sizeof *out);
    if (n < 1 || k < 1 || !wg) return -1;
    const int kp = (k + 31) / 32 * 32, np = (n + PANEL - 1) / PANEL, glu = wu != NULL;
    const size_t panel = (size_t)kp * PANEL, bytes = qe_amx_packed_bytes(n, k) * (glu ? 2 : 1);
    /* whole 2 MiB pages for the larger matrices: a query streams every
     * packed byte once, and transparent huge pages spare it a TLB miss per
     * 4 KiB (and the load a page fault per 4 KiB) */
    const size_t huge = (size_t)2 << 20, align = bytes >= huge ? huge : 64;
    void *mem = NULL;
    if (posix_memalign(&mem, align, (bytes + align - 1) / align * align) != 0) return -1;
#ifdef MADV_HUGEPAGE
    if (align == huge) (void)madvise(mem, (bytes + align - 1) / align * align, MADV_HUGEPAGE);
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
    /* all its pages in one call rather than a fault each (Linux 5.14+) */
    (void)madvise(mem, (bytes + align - 1) / align * align, MADV_POPULATE_WRITE);
    uint16_t *d = mem;
    for (int p = 0; p < np; p++) {
        if (glu) {
            pack_panel(d + (size_t)(2 * p) * panel, wg, n, k, kp, p * PANEL);
            pack_panel(d + (size_t)(2 * p + 1) * panel, wu, n, k, kp, p * PANEL);
        } else {
            pack_panel(d + (size_t)p * panel, wg, n, k, kp, p * PANEL);
        }
    }
    *out = (qe_amx_w){n, k, kp, glu ? 2 * np : np, glu, d};
    return 0;
}

#if defined(__x86_64__)
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "avx512_util.h"
#include "amx_tiles.h"

#define TGT __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl")))

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_usable;

static void probe(void) {
    int amx = 0;
    qe_cpu_features(&amx);
    if (!amx || !__builtin_cpu_supports("avx512bw")) return;
        /* Linux grants the 8 KiB tile state per process on request (5.16+) */
#if defined(SYS_arch_prctl)
    g_usable = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
#endif
}

int qe_amx_usable(void) {
    pthread_once(&g_once, probe);
    return g_usable;
}

/* Every tile 16 rows x 64 bytes (A: 16 x 32 bf16; B: 16 pairs x 16; C: 16 x 16 f32). */
TGT static void tiles_begin(void) {
    _Alignas(64) qe_amx_tilecfg cfg;
    qe_amx_tilecfg_init(&cfg);
    qe_amx_tiles_set(&cfg, 0, 8, 16, 64);
    _tile_loadconfig(&cfg);
}

/* Where a kernel stores one accumulator tile. */
typedef struct dst {
    float *p;
    size_t ld; /* bytes */
} dst;

/* How far ahead (bytes of one panel) the 1x4 form prefetches its weights. */
#define PF_AHEAD 8192

TGT static void k_2x2(const uint16_t *a, size_t lda, const uint16_t *b, int nkb, const dst *d) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const uint16_t *a1 = a + 16 * lda / 2;
    for (int kb = 0; kb < nkb; kb++) {
        _tile_loadd(4, a + (size_t)kb * 32, lda);
        _tile_loadd(5, a1 + (size_t)kb * 32, lda);
        _tile_loadd(6, b + (size_t)kb * BLOCK_BF16, 64);
        _tile_loadd(7, b + (size_t)kb * BLOCK_BF16 + TILE_BF16, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, d[0].p, d[0].ld);
    _tile_stored(1, d[1].p, d[1].ld);
    _tile_stored(2, d[2].p, d[2].ld);
    _tile_stored(3, d[3].p, d[3].ld);
}

TGT static void k_1x4(const uint16_t *a, size_t lda, const uint16_t *b0, const uint16_t *b1, int nkb,
                      const dst *d) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int kb = 0; kb < nkb; kb++) {
        const char *p0 = (const char *)(b0 + (size_t)kb * BLOCK_BF16) + PF_AHEAD;
        const char *p1 = (const char *)(b1 + (size_t)kb * BLOCK_BF16) + PF_AHEAD;
        if (kb * BLOCK_BF16 * 2 + PF_AHEAD < nkb * BLOCK_BF16 * 2)
            for (int l = 0; l < BLOCK_BF16 * 2; l += 64) {
                _mm_prefetch(p0 + l, _MM_HINT_T0);
                _mm_prefetch(p1 + l, _MM_HINT_T0);
            }
        _tile_loadd(4, a + (size_t)kb * 32, lda);
        _tile_loadd(5, b0 + (size_t)kb * BLOCK_BF16, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_loadd(6, b0 + (size_t)kb * BLOCK_BF16 + TILE_BF16, 64);
        _tile_dpbf16ps(1, 4, 6);
        _tile_loadd(7, b1 + (size_t)kb * BLOCK_BF16, 64);
        _tile_dpbf16ps(2, 4, 7);
        _tile_loadd(5, b1 + (size_t)kb * BLOCK_BF16 + TILE_BF16, 64);
        _tile_dpbf16ps(3, 4, 5);
    }
    _tile_stored(0, d[0].p, d[0].ld);
    _tile_stored(1, d[1].p, d[1].ld);
    _tile_stored(2, d[2].p, d[2].ld);
    _tile_stored(3, d[3].p, d[3].ld);
}

TGT static void k_1x2(const uint16_t *a, size_t lda, const uint16_t *b, int nkb, const dst *d) {
    _tile_zero(0);
    _tile_zero(1);
    for (int kb = 0; kb < nkb; kb++) {
        _tile_loadd(4, a + (size_t)kb * 32, lda);
        _tile_loadd(5, b + (size_t)kb * BLOCK_BF16, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_loadd(6, b + (size_t)kb * BLOCK_BF16 + TILE_BF16, 64);
        _tile_dpbf16ps(1, 4, 6);
    }
    _tile_stored(0, d[0].p, d[0].ld);
    _tile_stored(1, d[1].p, d[1].ld);
}

/* Rows of x to bf16 with row stride ldd (elements), zeros from k to ldd: the
 * rounding of qe_f32_to_bf16 (nearest even, NaN quieted), 16 lanes at a
 * time. (Not vcvtneps2bf16: it flushes denormals, which the reference keeps.) */
__attribute__((target("avx512f,avx512bw"))) void qe_mm_to_bf16_rows(const float *x, size_t ldx, int rows,
                                                                    int k, uint16_t *dst, size_t ldd) {
    const int full = k / 16 * 16;
    for (int r = 0; r < rows; r++) {
        const float *src = x + (size_t)r * ldx;
        uint16_t *d = dst + (size_t)r * ldd;
        for (int p = 0; p < full; p += 16)
            _mm256_storeu_si256((__m256i *)(d + p), qe_bf16x16_avx512(_mm512_loadu_ps(src + p)));
        for (int p = full; p < k; p++) d[p] = qe_f32_to_bf16(src[p]);
        for (size_t p = (size_t)k; p < ldd; p++) d[p] = 0;
    }
}

/* ---- one call: chunks of rows, tasks over panel pairs of every output ---- */

typedef struct job {
    const qe_amx_out *outs;
    int n_outs;
    int units[8 + 1]; /* prefix sums of each output's units (panel pairs; glu: gate+up pairs) */
    const float *x;
    size_t ldx;
    int k, kp;
    uint16_t *xb;   /* the chunk's rows in bf16, stride kp, padded to a multiple of 16 rows */
    int i0, mc, mp; /* chunk's first row, rows, padded rows */
    int n_tasks;
} job;

static void convert_task(void *arg, int t, int thread) {
    (void)thread;
    job *jb = arg;
    int r0 = (int)((long long)jb->mp * t / jb->n_tasks),
        r1 = (int)((long long)jb->mp * (t + 1) / jb->n_tasks);
    int real = r1 < jb->mc ? r1 : jb->mc;
    if (real > r0)
        qe_mm_to_bf16_rows(jb->x + (size_t)(jb->i0 + r0) * jb->ldx, jb->ldx, real - r0, jb->k,
                           jb->xb + (size_t)r0 * jb->kp, (size_t)jb->kp);
    for (int r = real > r0 ? real : r0; r < r1; r++)
        memset(jb->xb + (size_t)r * jb->kp, 0, (size_t)jb->kp * 2);
}

/* Per-thread staging of accumulator tiles that are not stored straight into
 * y (a partial tile; glu's up half). */
typedef struct stage {
    _Alignas(64) float c[4][256];
    _Alignas(64) float up[4][256];
} stage;

/* Destination of the tile covering rows [r, r+16) x columns [c, c+16) of
 * y (m rows, n columns): y itself when whole, else the staging tile. */
static dst tile_dst(float *y, size_t ldy, int m, int n, int r, int c, float *tmp) {
    if (r + 16 <= m && c + 16 <= n) return (dst){y + (size_t)r * ldy + c, ldy * sizeof(float)};
    return (dst){tmp, 64};
}

/* Copies the valid part of a staged tile into y. */
static void tile_out(const dst *d, const float *tmp, float *y, size_t ldy, int m, int n, int r, int c) {
    if (d->p != tmp) return;
    for (int i = 0; i < 16 && r + i < m; i++)
        for (int j = 0; j < 16 && c + j < n; j++) y[(size_t)(r + i) * ldy + c + j] = tmp[i * 16 + j];
}

/* Rows [r, r+rt*16) of the chunk times `np` (1 or 2) consecutive panels
 * starting at panel p of output o, into its y; glu outputs take their gate
 * and up panels as the pair. */
TGT static void block(const job *jb, const qe_amx_out *o, int p, int np, int r, int rt, stage *sg) {
    const qe_amx_w *w = o->w;
    const size_t lda = (size_t)jb->kp * 2, panel = (size_t)w->kp * PANEL;
    const uint16_t *a = jb->xb + (size_t)r * jb->kp;
    const int nkb = w->kp / 32, m = jb->mc, yr = r; /* rows of y relative to the chunk */
    float *y = o->y + (size_t)jb->i0 * o->ldy;
    const size_t ldy = o->ldy;
    if (w->glu) {
        /* panels 2q (gate) and 2q+1 (up) give output columns [32q, 32q+32) */
        const int q = p / 2, c = q * PANEL, n = w->n;
        const uint16_t *bg = w->data + (size_t)(2 * q) * panel, *bu = bg + panel;
        if (rt == 2) {
            /* 32 rows: the batch form on each half, every B tile used twice
             * (the 1x4 form below reads each tile once per 16 rows) */
            dst d[4] = {tile_dst(y, ldy, m, n, yr, c, sg->c[0]), tile_dst(y, ldy, m, n, yr, c + 16, sg->c[1]),
                        tile_dst(y, ldy, m, n, yr + 16, c, sg->c[2]),
                        tile_dst(y, ldy, m, n, yr + 16, c + 16, sg->c[3])};
            k_2x2(a, lda, bg, nkb, d);
            for (int t = 0; t < 4; t++)
                tile_out(&d[t], sg->c[t], y, ldy, m, n, yr + 16 * (t / 2), c + 16 * (t % 2));
            dst du[4] = {{sg->up[0], 64}, {sg->up[1], 64}, {sg->up[2], 64}, {sg->up[3], 64}};
            k_2x2(a, lda, bu, nkb, du);
            for (int h = 0; h < 2; h++)
                for (int i = 0; i < 16 && yr + 16 * h + i < m; i++)
                    for (int t = 0; t < 2; t++) {
                        int cc = c + 16 * t, cols = n - cc < 16 ? n - cc : 16;
                        if (cols > 0)
                            qe_silu_mul16_avx512(y + (size_t)(yr + 16 * h + i) * ldy + cc,
                                                 sg->up[2 * h + t] + i * 16, cols);
                    }
            return;
        }
        for (int h = 0; h < rt; h++) {
            int rr = yr + 16 * h;
            dst d[4] = {tile_dst(y, ldy, m, n, rr, c, sg->c[0]),
                        tile_dst(y, ldy, m, n, rr, c + 16, sg->c[1]),
                        {sg->up[0], 64},
                        {sg->up[1], 64}};
            k_1x4(a + (size_t)16 * h * jb->kp, lda, bg, bu, nkb, d);
            tile_out(&d[0], sg->c[0], y, ldy, m, n, rr, c);
            tile_out(&d[1], sg->c[1], y, ldy, m, n, rr, c + 16);
            for (int i = 0; i < 16 && rr + i < m; i++)
                for (int t = 0; t < 2; t++) {
                    int cc = c + 16 * t, cols = n - cc < 16 ? n - cc : 16;
                    if (cols > 0)
                        qe_silu_mul16_avx512(y + (size_t)(rr + i) * ldy + cc, sg->up[t] + i * 16, cols);
                }
        }
        return;
    }
    const int n = w->n;
    const uint16_t *b0 = w->data + (size_t)p * panel;
    const int c = p * PANEL;
    if (rt == 2) {
        for (int t = 0; t < np; t++) {
            int cc = c + t * PANEL;
            dst d[4] = {tile_dst(y, ldy, m, n, yr, cc, sg->c[0]),
                        tile_dst(y, ldy, m, n, yr, cc + 16, sg->c[1]),
                        tile_dst(y, ldy, m, n, yr + 16, cc, sg->c[2]),
                        tile_dst(y, ldy, m, n, yr + 16, cc + 16, sg->c[3])};
            k_2x2(a, lda, b0 + (size_t)t * panel, nkb, d);
            tile_out(&d[0], sg->c[0], y, ldy, m, n, yr, cc);
            tile_out(&d[1], sg->c[1], y, ldy, m, n, yr, cc + 16);
            tile_out(&d[2], sg->c[2], y, ldy, m, n, yr + 16, cc);
            tile_out(&d[3], sg->c[3], y, ldy, m, n, yr + 16, cc + 16);
        }
    } else if (np == 2) {
        dst d[4] = {tile_dst(y, ldy, m, n, yr, c, sg->c[0]), tile_dst(y, ldy, m, n, yr, c + 16, sg->c[1]),
                    tile_dst(y, ldy, m, n, yr, c + 32, sg->c[2]),
                    tile_dst(y, ldy, m, n, yr, c + 48, sg->c[3])};
        k_1x4(a, lda, b0, b0 + panel, nkb, d);
        for (int t = 0; t < 4; t++) tile_out(&d[t], sg->c[t], y, ldy, m, n, yr, c + 16 * t);
    } else {
        dst d[2] = {tile_dst(y, ldy, m, n, yr, c, sg->c[0]), tile_dst(y, ldy, m, n, yr, c + 16, sg->c[1])};
        k_1x2(a, lda, b0, nkb, d);
        tile_out(&d[0], sg->c[0], y, ldy, m, n, yr, c);
        tile_out(&d[1], sg->c[1], y, ldy, m, n, yr, c + 16);
    }
}

/* Units of an output: pairs of panels (the last may be single); for glu one
 * unit is one gate+up pair. */
static int units_of(const qe_amx_w *w) {
    return w->glu ? w->panels / 2 : (w->panels + 1) / 2;
}

TGT static void product_task(void *arg, int t, int thread) {
    (void)thread;
    const job *jb = arg;
    const int total = jb->units[jb->n_outs];
    int u0, u1;
    qe_mm_split(total, jb->n_tasks, 1, t, &u0, &u1);
    if (u0 >= u1) return;
    _Alignas(64) stage sg;
    tiles_begin();
    /* rows in L2-sized blocks (re-read for every panel), the panels of the
     * task inside: a panel stays in L2 across a block's row tiles */
    int rb = (int)(L2_ROWS_BYTES / ((size_t)jb->kp * 2)) / 32 * 32;
    if (rb < 32) rb = 32;
    for (int r0 = 0; r0 < jb->mp; r0 += rb) {
        int r1 = r0 + rb < jb->mp ? r0 + rb : jb->mp;
        int o = 0;
        for (int u = u0; u < u1; u++) {
            while (u >= jb->units[o + 1]) o++;
            const qe_amx_out *out = &jb->outs[o];
            const int local = u - jb->units[o];
            int p, np;
            if (out->w->glu) {
                p = 2 * local;
                np = 2;
            } else {
                p = 2 * local;
                np = out->w->panels - p < 2 ? 1 : 2;
            }
            int r = r0;
            for (; r + 32 <= r1; r += 32) block(jb, out, p, np, r, 2, &sg);
            if (r < r1) block(jb, out, p, np, r, 1, &sg); /* 16 rows left (mp is a multiple of 16) */
        }
    }
    _tile_release();
}

int qe_matmul_amx(qe_threadpool *pool, const float *x, size_t ldx, int m, int k, const qe_amx_out *outs,
                  int n_outs) {
    if (m <= 0 || n_outs <= 0) return 0;
    if (n_outs > 8 || !qe_amx_usable()) return -1;
    job jb;
    memset(&jb, 0, sizeof jb);
    jb.outs = outs;
    jb.n_outs = n_outs;
    jb.x = x;
    jb.ldx = ldx;
    jb.k = k;
    jb.kp = (k + 31) / 32 * 32;
    for (int i = 0; i < n_outs; i++) {
        if (!outs[i].w || outs[i].w->k != k || !outs[i].w->data) return -1;
        jb.units[i + 1] = jb.units[i] + units_of(outs[i].w);
    }
    const size_t row_bytes = (size_t)jb.kp * 2;
    if (row_bytes * 32 > QE_MM_CONV) return -1; /* k > 65536: not a model's width */
    int chunk = (int)(QE_MM_CONV / row_bytes) / 32 * 32;
    int mp_all = (m + 15) / 16 * 16;
    if (chunk > mp_all) chunk = mp_all;
    uint16_t *buf = pool ? qe_threadpool_conv_block(pool) : NULL;
    void *own = NULL;
    if (!buf) {
        if (posix_memalign(&own, 64, (size_t)chunk * row_bytes) != 0) return -1;
        buf = own;
    }
    jb.xb = buf;
    const int threads = qe_threadpool_size(pool), total = jb.units[n_outs];
    for (int i0 = 0; i0 < m; i0 += chunk) {
        jb.i0 = i0;
        jb.mc = m - i0 < chunk ? m - i0 : chunk;
        jb.mp = (jb.mc + 15) / 16 * 16;
        /* a query's rows (16 x 1024: ~5 us) convert faster than a hand-off */
        jb.n_tasks = (size_t)jb.mc * (size_t)k < 65536 ? 1 : threads;
        if (jb.n_tasks == 1)
            convert_task(&jb, 0, 0);
        else
            qe_threadpool_run(pool, convert_task, &jb, jb.n_tasks);
        jb.n_tasks = qe_mm_unit_tasks(pool, total);
        qe_threadpool_run(pool, product_task, &jb, jb.n_tasks);
    }
    free(own);
    return 0;
}

#else
int qe_amx_usable(void) {
    return 0;
}
int qe_matmul_amx(qe_threadpool *pool, const float *x, size_t ldx, int m, int k, const qe_amx_out *outs,
                  int n_outs) {
    return -1;
}
#endif
