/* Q8_0 products on weights packed at load (layout and contract in
 * matmul_q8p.h). Why a packed copy: the products on the weights as stored
 * (matmul_q8_amx.c) load each tile's 16 rows x 32 bytes from 16 places a
 * row apart, 34-byte blocks straddling cache lines, and gather the f16
 * scales of each 32-row panel first (about a quarter of a query's product
 * time); a packed group is read front to back, and every product of a layer
 * (q, k and v; gate and up with silu) is one hand-off to the pool instead of
 * two per matrix (quantize, multiply) plus one for silu.
 *
 * Tile product: one tdpbssd per Q8_0 block, K = 32 bytes, since each
 * block's int32 sums need their own scale d_w * d_x (summing two blocks in
 * one tile product, K = 64, would be exact only where both blocks' d_w * d_x
 * are equal, which no Q8_0 file promises):
 *   A = 16 weight rows x 32 bytes of one block (the packed group),
 *   B = one packed activation record (matmul_q8.h: 16 activation rows),
 *   C = 16 weight rows x 16 activation rows, int32,
 * with A and B alternating between two registers and C rotating over four,
 * the products issued two blocks ahead of the AVX-512 work that converts
 * each stored C, scales it and adds it into 16 f32 accumulators (as
 * matmul_q8_amx.c). The activations are quantized by matmul_q8.c's packer
 * (qe_q8_pack_avx2), so every integer sum equals the scalar reference's. */
#include "matmul_q8p.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "matmul_q8.h"

size_t qe_q8p_packed_bytes(int n, int k) {
    if (n < 1 || k < 1 || k % QE_Q8_BLOCK) return 0;
    const size_t groups = ((size_t)n + 15) / 16, pairs = ((size_t)k / QE_Q8_BLOCK + 1) / 2;
    return groups * pairs * QE_Q8P_PAIR;
}

void qe_q8p_free(qe_q8p_w *w) {
    if (!w) return;
    free(w->data);
    memset(w, 0, sizeof *w);
}

/* Group g of W (n rows of nb blocks) into dst: every byte of the group
 * written once, front to back (zeros for rows past n and a last odd block),
 * reading the group's 16 rows as 16 streams. */
static void pack_group_c(uint8_t *dst, const uint8_t *w, int n, int nb, int g) {
    const size_t wrow = (size_t)nb * QE_Q8_BYTES;
    const int rows = n - 16 * g < 16 ? n - 16 * g : 16;
    for (int p = 0; p < (nb + 1) / 2; p++) {
        uint8_t *rec = dst + (size_t)p * QE_Q8P_PAIR;
        for (int h = 0; h < 2; h++) {
            const int b = 2 * p + h;
            uint8_t *q = rec + h * 512, *d = rec + 1024 + h * 32;
            for (int r = 0; r < 16; r++) {
                if (r < rows && b < nb) {
                    const uint8_t *blk = w + (size_t)(16 * g + r) * wrow + (size_t)b * QE_Q8_BYTES;
                    memcpy(q + r * 32, blk + 2, 32);
                    memcpy(d + r * 2, blk, 2);
                } else {
                    memset(q + r * 32, 0, 32);
                    memset(d + r * 2, 0, 2);
                }
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
/* The same for a whole group (16 rows inside W, nb even) with streaming
 * stores: the packed copy is read back from memory by the products anyway,
 * and the stores then skip reading each destination line first (the copy
 * was bound by those reads). */
__attribute__((target("avx2"))) static void pack_group_nt(uint8_t *dst, const uint8_t *w, int nb, int g) {
    const size_t wrow = (size_t)nb * QE_Q8_BYTES;
    const uint8_t *src = w + (size_t)(16 * g) * wrow;
    for (int p = 0; p < nb / 2; p++) {
        uint8_t *rec = dst + (size_t)p * QE_Q8P_PAIR;
        _Alignas(32) uint16_t d[2][16];
        for (int r = 0; r < 16; r++) {
            const uint8_t *blk = src + (size_t)r * wrow + (size_t)(2 * p) * QE_Q8_BYTES;
            _mm256_stream_si256((__m256i *)(rec + r * 32), _mm256_loadu_si256((const __m256i *)(blk + 2)));
            _mm256_stream_si256((__m256i *)(rec + 512 + r * 32),
                                _mm256_loadu_si256((const __m256i *)(blk + QE_Q8_BYTES + 2)));
            memcpy(&d[0][r], blk, 2);
            memcpy(&d[1][r], blk + QE_Q8_BYTES, 2);
        }
        _mm256_stream_si256((__m256i *)(rec + 1024), _mm256_load_si256((const __m256i *)d[0]));
        _mm256_stream_si256((__m256i *)(rec + 1056), _mm256_load_si256((const __m256i *)d[1]));
    }
    _mm_sfence();
}
#endif

static void pack_group(uint8_t *dst, const uint8_t *w, int n, int nb, int g) {
#if defined(__x86_64__)
    if (16 * g + 16 <= n && nb % 2 == 0 && __builtin_cpu_supports("avx2")) {
        pack_group_nt(dst, w, nb, g);
        return;
    }
#endif
    pack_group_c(dst, w, n, nb, g);
}

int qe_q8p_pack(qe_q8p_w *out, const uint8_t *wg, const uint8_t *wu, int n, int k) {
    memset(out, 0, sizeof *out);
    const size_t one = qe_q8p_packed_bytes(n, k);
    if (one == 0 || !wg) return -1;
    const int nb = k / QE_Q8_BLOCK, glu = wu != NULL, ng = (n + 15) / 16;
    const size_t gstride = (size_t)(nb + 1) / 2 * QE_Q8P_PAIR, bytes = one * (glu ? 2 : 1);
    /* 2 MiB pages for the larger matrices (as matmul_amx.c): a query streams
     * every packed byte once, and huge pages spare it a TLB miss per 4 KiB.
     * Only the whole 2 MiB pages inside the matrix: Q8_0 sizes are rarely
     * multiples of 2 MiB, and a rounded-up last page per matrix cost the
     * 0.6B model 169 MiB of resident memory */
    const size_t huge = (size_t)2 << 20, align = bytes >= huge ? huge : 64;
    const size_t alloc = (bytes + 4095) / 4096 * 4096;
    void *mem = NULL;
    if (posix_memalign(&mem, align, alloc) != 0) return -1;
#ifdef MADV_HUGEPAGE
    if (align == huge) (void)madvise(mem, bytes / huge * huge, MADV_HUGEPAGE);
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
    /* all its pages in one call rather than a fault each (Linux 5.14+) */
    (void)madvise(mem, alloc, MADV_POPULATE_WRITE);
    uint8_t *d = mem;
    for (int g = 0; g < ng; g++) {
        if (glu) {
            pack_group(d + (size_t)(2 * g) * gstride, wg, n, nb, g);
            pack_group(d + (size_t)(2 * g + 1) * gstride, wu, n, nb, g);
        } else {
            pack_group(d + (size_t)g * gstride, wg, n, nb, g);
        }
    }
    *out = (qe_q8p_w){n, k, glu ? 2 * ng : ng, glu, gstride, d};
    return 0;
}

#if defined(__x86_64__)
#include <immintrin.h>

#include "avx512_util.h"
#include "amx_tiles.h"

#define TGT __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,amx-tile,amx-int8")))

int qe_q8p_usable(void) {
    return qe_q8_variant_available(QE_Q8_AMX);
}

TGT static void tiles_begin(void) {
    _Alignas(64) qe_amx_tilecfg cfg;
    qe_amx_tiles_q8(&cfg);
    _tile_loadconfig(&cfg);
}

/* How far ahead (bytes of the group stream) a one-tile product prefetches. */
#define PF_AHEAD 4096

/* One packed group (grp, nb blocks) x one packed activation tile (pk):
 * y[l][c] for activation rows l < valid and columns c < cols (row stride
 * ldy). With pf, the group is read once (a query): its bytes PF_AHEAD ahead
 * are prefetched while each record computes. */
TGT static void group_tile(const uint8_t *grp, const uint8_t *pk, int nb, float *y, size_t ldy, int valid,
                           int cols, int pf) {
    _Alignas(64) int32_t cb[4][256];
    _Alignas(64) float dws[16];
    __m512 acc[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
/* block b's 16 weight rows x 32 bytes: half of record b / 2, rows 32 bytes apart */
#define A_AT(b) (grp + (size_t)((b) >> 1) * QE_Q8P_PAIR + (size_t)((b)&1) * 512)
#define ISSUE1(b) QE_AMX_Q8_ISSUE(b, A_AT, 32, pk, cb)
    ISSUE1(0);
    if (nb > 1) ISSUE1(1);
    for (int b = 0; b < nb; b++) {
        if (b + 2 < nb) ISSUE1(b + 2);
        const uint8_t *rec = grp + (size_t)(b >> 1) * QE_Q8P_PAIR;
        if (pf && !(b & 1))
            for (int l = 0; l < QE_Q8P_PAIR; l += 64)
                _mm_prefetch((const char *)(rec + PF_AHEAD + l), _MM_HINT_T0);
        _mm512_store_ps(dws, _mm512_cvtph_ps(_mm256_load_si256((const void *)(rec + 1024 + (b & 1) * 32))));
        const int32_t *c = cb[b & 3];
        __m512 dx = _mm512_load_ps((const void *)(pk + (size_t)b * QE_Q8_REC + QE_Q8_OFF_D));
#pragma GCC unroll 16
        for (int r = 0; r < 16; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512((const void *)(c + 16 * r))),
                                     _mm512_mul_ps(dx, _mm512_set1_ps(dws[r])), acc[r]);
    }
#undef ISSUE1
#undef A_AT
    /* acc[r] lane l is y[l][r]: transposed through memory */
    _Alignas(64) float o[256];
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) _mm512_store_ps(o + 16 * r, acc[r]);
    const __m512i col =
        _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
    const __mmask16 mk = (__mmask16)((1u << cols) - 1);
    for (int l = 0; l < 16 && l < valid; l++)
        _mm512_mask_storeu_ps(y + (size_t)l * ldy, mk, _mm512_i32gather_ps(col, o + l, 4));
}

/* ---- one call: chunks of rows, tasks over column groups of every output ---- */

typedef struct job {
    const qe_q8p_out *outs;
    int n_outs;
    int units[8 + 1]; /* prefix sums of each output's units (16-column groups; glu: gate+up pairs) */
    qe_mm_args a;     /* x, ldx, m, k for the packer */
    uint8_t *pack;    /* the chunk's packed activation tiles */
    int nb, i0, rows, n_tiles;
    int n_tasks;
} job;

static void pack_task(void *arg, int task, int thread) {
    (void)thread;
    const job *jb = arg;
    const long units = (long)jb->n_tiles * jb->nb;
    long u0 = units * task / jb->n_tasks, u1 = units * (task + 1) / jb->n_tasks;
    while (u0 < u1) {
        int t = (int)(u0 / jb->nb), b0 = (int)(u0 % jb->nb);
        int b1 = (long)t * jb->nb + jb->nb <= u1 ? jb->nb : (int)(u1 - (long)t * jb->nb);
        qe_q8_pack_avx2(&jb->a, jb->i0, jb->rows, jb->pack, t, b0, b1);
        u0 = (long)t * jb->nb + b1;
    }
}

TGT static void product_task(void *arg, int task, int thread) {
    (void)thread;
    const job *jb = arg;
    const int total = jb->units[jb->n_outs];
    int u0, u1;
    qe_mm_split(total, jb->n_tasks, 1, task, &u0, &u1);
    if (u0 >= u1) return;
    const size_t ts = (size_t)jb->nb * QE_Q8_REC;
    const int pf = jb->n_tiles == 1;
    _Alignas(64) float gs[256], us[256];
    tiles_begin();
    int o = 0;
    for (int u = u0; u < u1; u++) {
        while (u >= jb->units[o + 1]) o++;
        const qe_q8p_out *out = &jb->outs[o];
        const qe_q8p_w *w = out->w;
        const int g = u - jb->units[o], c = 16 * g, cols = w->n - c < 16 ? w->n - c : 16;
        float *y = out->y + (size_t)jb->i0 * out->ldy + c;
        if (!w->glu) {
            const uint8_t *grp = w->data + (size_t)g * w->gstride;
            for (int t = 0; t < jb->n_tiles; t++)
                group_tile(grp, jb->pack + (size_t)t * ts, jb->nb, y + (size_t)16 * t * out->ldy, out->ldy,
                           jb->rows - 16 * t, cols, pf);
            continue;
        }
        const uint8_t *gg = w->data + (size_t)(2 * g) * w->gstride, *gu = gg + w->gstride;
        for (int t = 0; t < jb->n_tiles; t++) {
            const int valid = jb->rows - 16 * t < 16 ? jb->rows - 16 * t : 16;
            group_tile(gg, jb->pack + (size_t)t * ts, jb->nb, gs, 16, valid, cols, pf);
            group_tile(gu, jb->pack + (size_t)t * ts, jb->nb, us, 16, valid, cols, pf);
            for (int l = 0; l < valid; l++) {
                qe_silu_mul16_avx512(gs + 16 * l, us + 16 * l, cols);
                memcpy(y + (size_t)(16 * t + l) * out->ldy, gs + 16 * l, (size_t)cols * sizeof(float));
            }
        }
    }
    _tile_release();
}

int qe_matmul_q8p(qe_threadpool *pool, const float *x, size_t ldx, int m, int k, const qe_q8p_out *outs,
                  int n_outs) {
    if (m <= 0 || n_outs <= 0) return 0;
    if (n_outs > 8 || k < QE_Q8_BLOCK || k % QE_Q8_BLOCK || !qe_q8p_usable()) return -1;
    job jb;
    memset(&jb, 0, sizeof jb);
    jb.outs = outs;
    jb.n_outs = n_outs;
    jb.nb = k / QE_Q8_BLOCK;
    for (int i = 0; i < n_outs; i++) {
        const qe_q8p_w *w = outs[i].w;
        if (!w || w->k != k || !w->data) return -1;
        jb.units[i + 1] = jb.units[i] + (w->glu ? w->groups / 2 : w->groups);
    }
    const size_t per_tile = (size_t)jb.nb * QE_Q8_REC;
    const int chunk_tiles = (int)(QE_MM_Q8ACT / per_tile);
    if (chunk_tiles < 1) return -1;
    uint8_t *pack = qe_threadpool_q8_block(pool, qe_q8_block_bytes(k, m));
    void *own = NULL;
    if (!pack) { /* no block on the pool (no pool, none reserved): a block for this call */
        if (posix_memalign(&own, 64, QE_MM_Q8ACT) != 0) return -1;
        pack = own;
    }
    jb.pack = pack;
    jb.a = (qe_mm_args){pool, QE_MM_BF16, x, ldx, m, k, NULL, QE_Q8_0, 0, NULL, 0};
    const int threads = qe_threadpool_size(pool), total = jb.units[n_outs];
    for (int i0 = 0; i0 < m; i0 += chunk_tiles * 16) {
        jb.i0 = i0;
        jb.rows = m - i0 < chunk_tiles * 16 ? m - i0 : chunk_tiles * 16;
        jb.n_tiles = (jb.rows + 15) / 16;
        const long units = (long)jb.n_tiles * jb.nb;
        /* a query's rows (16 x 3072 at most: a few us) are quantized faster
         * than a hand-off */
        if ((size_t)jb.rows * (size_t)k < 65536 || threads <= 1) {
            jb.n_tasks = 1;
            pack_task(&jb, 0, 0);
        } else {
            jb.n_tasks = units < threads ? (int)units : threads;
            qe_threadpool_run(pool, pack_task, &jb, jb.n_tasks);
        }
        jb.n_tasks = qe_mm_unit_tasks(pool, total);
        qe_threadpool_run(pool, product_task, &jb, jb.n_tasks);
    }
    free(own);
    return 0;
}

#else
int qe_q8p_usable(void) {
    return 0;
}
int qe_matmul_q8p(qe_threadpool *pool, const float *x, size_t ldx, int m, int k, const qe_q8p_out *outs,
                  int n_outs) {
    (void)pool, (void)x, (void)ldx, (void)m, (void)k, (void)outs, (void)n_outs;
    return -1;
}
#endif
