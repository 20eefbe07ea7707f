/* bf16-mode attention body on AMX-BF16 tiles (contract in attention_amx.h).
 *
 * Why: with the products on tiles (matmul_amx.c, ~1 TFLOP/s on batches) the
 * f32 attention (attention.c, FMA micro-tiles) was most of a long input's
 * time: 4,096 tokens spent ~3/4 of their time there. Here both of
 * attention's products run on tiles, and what is left per score is the
 * softmax in AVX-512 f32.
 *
 * Per task (query tile of up to QE_ATTN_AMX_TILE_Q rows x the `group` query
 * heads of one kv head = nvec vectors, vector v = row r0 + v / group, head
 * kvh * group + v % group, as in attention.c), per key block of KB keys:
 *   pack K: bf16, each 16-key x 32-dim tile transposed as 16 x 16 pairs of
 *           bf16 (the tdpbf16ps B layout: row p = dims 2p, 2p+1 of keys 0-15);
 *   pack V: bf16, 32-key x 16-column tiles, row p = keys 2p and 2p+1 of each
 *           column interleaved (the B layout again, keys as the depth);
 *   then per row group of RG = 32 vectors (two 16-row tiles):
 *     S (32 x KB) = Q Kt         tiles, 2 x 2 accumulators per 32 keys;
 *     per row: scale, causal mask, online softmax in f32, P rounded to bf16;
 *     O (32 x hd) += P V         tiles, loaded from and stored back to O.
 * Rescaling is lazy: a row's reference maximum m moves only when a block's
 * maximum exceeds it by more than LAZY (then O and the sum are multiplied by
 * exp(m_old - m_new)), so probabilities stay <= e^LAZY and O is rescaled
 * rarely instead of per block; the result is the same softmax (the final
 * division uses the same m for numerator and sum).
 *
 * Masked keys (the causal diagonal, keys past a block's end) get probability
 * exactly 0; but a tile product would still multiply that 0 by their value,
 * and 0 * Inf or NaN is NaN. So a block whose values hold a non-finite bf16
 * takes, for the row groups that mask some of its keys, a plain loop over
 * the visible keys only: a NaN reaches the rows that see it and no other,
 * as in the f32 bodies. */
#include "backend/cpu/attention_amx.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Keys per block. 128, not the f32 bodies' 64: the PV product loads and
 * stores its output tiles once per block, and the softmax reduces each row
 * once per block; 128 keys halve both per key (about 1.1x per CPU-second on
 * 4,096 tokens in one comparison on a busy machine; 256 measured no better). */
#define KB 128
#define RG 32     /* vectors per row group: two 16-row tiles */
#define LAZY 8.0f /* the max may grow this much (natural log) before a rescale */
#define TILE 512  /* bf16 per 16 x 64-byte tile */

#if KB % 32 != 0
#error "key blocks must be whole 32-key depths of the P V product"
#endif

static size_t round_up(size_t x, size_t m) {
    return (x + m - 1) / m * m;
}

/* The scratch layout, in floats; every region a multiple of 16 floats. */
typedef struct amx_layout {
    size_t qa, o, mx, sum, vis, s, p, kp, vp, total;
} amx_layout;

static amx_layout layout(int head_dim, int group) {
    const size_t nvp = round_up((size_t)QE_ATTN_AMX_TILE_Q * (size_t)group, RG);
    const size_t hdp = round_up((size_t)head_dim, 32), hdc = round_up((size_t)head_dim, 16);
    amx_layout l;
    size_t at = 0;
    l.qa = at;
    at += nvp * hdp / 2; /* (nvp, hdp) bf16 */
    l.o = at;
    at += nvp * hdc; /* (nvp, hdc) f32 */
    l.mx = at;
    at += nvp;
    l.sum = at;
    at += nvp;
    l.vis = at;
    at += nvp; /* ints in floats' room */
    l.s = at;
    at += (size_t)RG * KB; /* (RG, KB) f32 */
    l.p = at;
    at += (size_t)RG * KB / 2; /* (RG, KB) bf16 */
    l.kp = at;
    at += (size_t)KB * hdp / 2; /* (KB/16 key tiles, hdp/32 depth tiles, TILE) bf16 */
    l.vp = at;
    at += (size_t)KB * hdc / 2; /* (hdc/16 column tiles, KB/32 depth tiles, TILE) bf16 */
    l.total = at;
    return l;
}

size_t qe_attn_amx_scratch_floats(int head_dim, int group) {
    return layout(head_dim, group).total;
}

#if defined(__x86_64__)
#include <immintrin.h>

#include "backend/cpu/avx512_util.h"
#include "backend/cpu/matmul_amx.h"
#include "backend/cpu/matmul_internal.h"
#include "backend/cpu/amx_tiles.h"

int qe_attn_amx_usable(void) {
    return qe_amx_usable();
}

#define TGT __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq")))

/* Every tile 16 rows x 64 bytes (as matmul_amx.c; each task loads its own
 * configuration, the products' tasks load theirs). */
TGT static void tiles_begin(void) {
    _Alignas(64) qe_amx_tilecfg cfg;
    qe_amx_tilecfg_init(&cfg);
    qe_amx_tiles_set(&cfg, 0, 8, 16, 64);
    _tile_loadconfig(&cfg);
}

/* Keys [0, nk) of k (rows ld floats apart) into kp: tile (kt, b) at
 * kp + (kt * nd + b) * TILE, element (pair p, key j, e) = K[16 kt + j][32 b + 2p + e]. */
TGT static void pack_k(const float *k, size_t ld, int nk, int hd, int nd, uint16_t *kp) {
    for (int kt = 0; kt < KB / 16; kt++)
        for (int b = 0; b < nd; b++) {
            __m512i r[16];
            for (int j = 0; j < 16; j++) {
                const int key = kt * 16 + j;
                r[j] = key < nk ? qe_bf16x32_load_avx512(k + (size_t)key * ld + b * 32, hd - b * 32)
                                : _mm512_setzero_si512();
            }
            qe_transpose16_avx512(r);
            uint16_t *tile = kp + ((size_t)kt * nd + b) * TILE;
            for (int p = 0; p < 16; p++) _mm512_storeu_si512(tile + p * 32, r[p]);
        }
}

/* Keys [0, nk) of v into vp: tile (c, h) at vp + (c * KB/32 + h) * TILE,
 * element (pair p, column j, e) = V[32 h + 2p + e][16 c + j]. Returns 1
 * when a packed value is Inf or NaN. */
TGT static int pack_v(const float *v, size_t ld, int nk, int hd, int nc, uint16_t *vp) {
    const __m512i expo = _mm512_set1_epi16(0x7f80);
    __mmask32 bad = 0;
    for (int j = 0; j < KB; j += 2) {
        const float *v0 = v + (size_t)j * ld, *v1 = v0 + ld;
        for (int c = 0; c < nc; c++) {
            const int n = hd - c * 16 < 16 ? hd - c * 16 : 16;
            const __mmask16 m = (__mmask16)((1u << n) - 1);
            const __m256i a =
                j < nk ? qe_bf16x16_avx512(_mm512_maskz_loadu_ps(m, v0 + c * 16)) : _mm256_setzero_si256();
            const __m256i b = j + 1 < nk ? qe_bf16x16_avx512(_mm512_maskz_loadu_ps(m, v1 + c * 16))
                                         : _mm256_setzero_si256();
            const __m512i x = qe_bf16_interleave_avx512(a, b);
            bad |= _mm512_cmpeq_epi16_mask(_mm512_and_si512(x, expo), expo);
            _mm512_storeu_si512(vp + ((size_t)c * (KB / 32) + j / 32) * TILE + (j % 32) / 2 * 32, x);
        }
    }
    return bad != 0;
}

/* S (32 x 32) = Q (32 vectors, nd depth tiles, row stride lda bf16) x the
 * two key tiles kb0, kb1 (16 keys each); s row stride KB floats. */
TGT static void qk_tiles(const uint16_t *qa, size_t lda, const uint16_t *kb0, const uint16_t *kb1, int nd,
                         float *s) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const uint16_t *qa1 = qa + 16 * lda;
    for (int b = 0; b < nd; b++) {
        _tile_loadd(4, qa + b * 32, (int)(lda * 2));
        _tile_loadd(5, qa1 + b * 32, (int)(lda * 2));
        _tile_loadd(6, kb0 + (size_t)b * TILE, 64);
        _tile_loadd(7, kb1 + (size_t)b * TILE, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, s, KB * 4);
    _tile_stored(1, s + 16, KB * 4);
    _tile_stored(2, s + 16 * KB, KB * 4);
    _tile_stored(3, s + 16 * KB + 16, KB * 4);
}

/* O (32 rows, columns 16c.. and 16(c+1).., row stride ldo floats) += P (32
 * x 32 nh keys, bf16, row stride KB) V for column tiles c and c + 1 (two: 1). */
TGT static void pv_tiles(float *o, size_t ldo, const uint16_t *p, const uint16_t *vp, int c, int two,
                         int nh) {
    const int ld = (int)(ldo * 4);
    float *o1 = o + 16 * ldo;
    _tile_loadd(0, o + c * 16, ld);
    _tile_loadd(2, o1 + c * 16, ld);
    if (two) {
        _tile_loadd(1, o + c * 16 + 16, ld);
        _tile_loadd(3, o1 + c * 16 + 16, ld);
    }
    for (int h = 0; h < nh; h++) {
        _tile_loadd(4, p + h * 32, KB * 2);
        _tile_loadd(5, p + 16 * KB + h * 32, KB * 2);
        _tile_loadd(6, vp + ((size_t)c * (KB / 32) + h) * TILE, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(2, 5, 6);
        if (two) {
            _tile_loadd(7, vp + ((size_t)(c + 1) * (KB / 32) + h) * TILE, 64);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(3, 5, 7);
        }
    }
    _tile_stored(0, o + c * 16, ld);
    _tile_stored(2, o1 + c * 16, ld);
    if (two) {
        _tile_stored(1, o + c * 16 + 16, ld);
        _tile_stored(3, o1 + c * 16 + 16, ld);
    }
}

/* pv_tiles' sum for one row over only its n visible keys (the path for a
 * block holding a non-finite value; see the top comment). */
static void pv_row_visible(float *o, const uint16_t *p, const uint16_t *vp, int n, int hd) {
    for (int c = 0; c < hd; c++) {
        float acc = 0.0f;
        for (int j = 0; j < n; j++) {
            const uint16_t vb =
                vp[((size_t)(c / 16) * (KB / 32) + j / 32) * TILE + (j % 32) / 2 * 32 + c % 16 * 2 + j % 2];
            acc += qe_bf16_to_f32(p[j]) * qe_bf16_to_f32(vb);
        }
        o[c] += acc;
    }
}

/* One score row (the first w = 32 or 64 of s) to probabilities in p: keys
 * j >= n masked (exactly 0), the running max/sum of the row updated and its
 * output row o (hdc floats) rescaled when the max moves (see LAZY). */
TGT static void softmax_row(const float *s, uint16_t *p, int n, int w, float scale, float *mx, float *sum,
                            float *o, int hdc) {
    __m512 x[KB / 16];
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    const int nv = w / 16;
    for (int i = 0; i < nv; i++) {
        const int left = n - 16 * i;
        const __mmask16 m = left >= 16 ? 0xffff : (__mmask16)((1u << (left > 0 ? left : 0)) - 1);
        /* a masked score is -inf whatever it was (NaN included) */
        x[i] = _mm512_mask_mul_ps(_mm512_set1_ps(-INFINITY), m, _mm512_loadu_ps(s + 16 * i),
                                  _mm512_set1_ps(scale));
        vmax = _mm512_max_ps(vmax, x[i]);
    }
    const float tmax = _mm512_reduce_max_ps(vmax);
    float m_ref = *mx;
    if (tmax > m_ref + LAZY) { /* also the first block a row sees (m_ref = -inf) */
        if (m_ref != -INFINITY) {
            const float corr = expf(m_ref - tmax);
            const __m512 vc = _mm512_set1_ps(corr);
            for (int c = 0; c < hdc; c += 16)
                _mm512_storeu_ps(o + c, _mm512_mul_ps(_mm512_loadu_ps(o + c), vc));
            *sum *= corr;
        }
        m_ref = tmax;
        *mx = m_ref;
    }
    const __m512 vm = _mm512_set1_ps(m_ref);
    __m512 vsum = _mm512_setzero_ps();
    for (int i = 0; i < nv; i++) {
        const int left = n - 16 * i;
        const __mmask16 m = left >= 16 ? 0xffff : (__mmask16)((1u << (left > 0 ? left : 0)) - 1);
        const __m256i b = qe_bf16x16_avx512(_mm512_maskz_mov_ps(m, qe_exp_avx512(_mm512_sub_ps(x[i], vm))));
        _mm256_storeu_si256((__m256i *)(p + 16 * i), b);
        /* the sum of the rounded probabilities: the weights P V really used */
        vsum = _mm512_add_ps(vsum, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16)));
    }
    *sum += _mm512_reduce_add_ps(vsum);
}

TGT void qe_attn_amx_task(const qe_attn_args *a, size_t base, int kvh, int r0, int r1, float *scratch) {
    const int hd = a->head_dim, group = a->n_heads / a->n_kv_heads;
    const int hdp = (int)round_up((size_t)hd, 32), hdc = (int)round_up((size_t)hd, 16);
    const int nd = hdp / 32, nc = hdc / 16;
    const int nvec = (r1 - r0) * group, nvp = (int)round_up((size_t)nvec, RG);
    const amx_layout l = layout(hd, group);
    uint16_t *qa = (uint16_t *)(scratch + l.qa), *p = (uint16_t *)(scratch + l.p);
    uint16_t *kp = (uint16_t *)(scratch + l.kp), *vp = (uint16_t *)(scratch + l.vp);
    float *o = scratch + l.o, *mx = scratch + l.mx, *sum = scratch + l.sum, *s = scratch + l.s;
    int *vis = (int *)(scratch + l.vis);

    /* vector v = row r0 + v / group, head kvh * group + v % group: the group's
     * heads are adjacent in a row of q, so vector v starts v * hd floats in */
    const float *qrow0 = a->q + (base + (size_t)r0) * a->ldq + (size_t)kvh * group * hd;
    for (int v = 0; v < nvp; v++) {
        if (v < nvec)
            qe_mm_to_bf16_rows(qrow0 + (size_t)(v / group) * a->ldq + (size_t)(v % group) * hd, 0, 1, hd,
                               qa + (size_t)v * hdp, (size_t)hdp);
        else
            memset(qa + (size_t)v * hdp, 0, (size_t)hdp * sizeof *qa);
        mx[v] = -INFINITY;
        sum[v] = 0.0f;
    }
    memset(o, 0, (size_t)nvp * hdc * sizeof *o);
    const float scale = 1.0f / sqrtf((float)hd);

    tiles_begin();
    for (int c0 = 0; c0 < r1; c0 += KB) {
        const int nk = c0 + KB < r1 ? KB : r1 - c0, c1 = c0 + nk;
        const size_t off = (base + (size_t)c0) * a->ldkv + (size_t)kvh * hd;
        pack_k(a->k + off, a->ldkv, nk, hd, nd, kp);
        const int vbad = pack_v(a->v + off, a->ldkv, nk, hd, nc, vp);
        for (int v = 0; v < nvp; v++) { /* keys of this block vector v sees (causal), <= 0: none */
            const int r = r0 + v / group;
            vis[v] = v < nvec ? (c1 < r + 1 ? c1 : r + 1) - c0 : 0;
        }
        for (int v0 = 0; v0 < nvec; v0 += RG) {
            const int vl = v0 + RG - 1 < nvec ? v0 + RG - 1 : nvec - 1; /* rows grow with v: sees most */
            const int jm = vis[vl];
            if (jm <= 0) continue;         /* no vector of the group sees a key of the block */
            const int nh = (jm + 31) / 32; /* 32-key halves anyone sees */
            for (int h = 0; h < nh; h++)
                qk_tiles(qa + (size_t)v0 * hdp, (size_t)hdp, kp + (size_t)(2 * h) * nd * TILE,
                         kp + (size_t)(2 * h + 1) * nd * TILE, nd, s + h * 32);
            for (int i = 0; i < RG; i++) {
                uint16_t *pi = p + (size_t)i * KB;
                if (vis[v0 + i] <= 0) { /* padding, or a row before the block: nothing seen */
                    memset(pi, 0, (size_t)nh * 32 * sizeof *pi);
                    continue;
                }
                softmax_row(s + (size_t)i * KB, pi, vis[v0 + i], nh * 32, scale, mx + v0 + i, sum + v0 + i,
                            o + (size_t)(v0 + i) * hdc, hdc);
            }
            if (vbad && vis[v0] < nk) { /* a non-finite value some row must not see */
                for (int i = 0; i < RG && v0 + i < nvec; i++)
                    if (vis[v0 + i] > 0)
                        pv_row_visible(o + (size_t)(v0 + i) * hdc, p + (size_t)i * KB, vp, vis[v0 + i], hd);
                continue;
            }
            for (int c = 0; c < nc; c += 2)
                pv_tiles(o + (size_t)v0 * hdc, (size_t)hdc, p, vp, c, c + 1 < nc, nh);
        }
    }
    _tile_release();

    for (int v = 0; v < nvec; v++) {
        float *out = a->q + (base + (size_t)r0 + (size_t)(v / group)) * a->ldq +
                     (size_t)(kvh * group + v % group) * hd;
        const float inv = 1.0f / sum[v];
        const float *ov = o + (size_t)v * hdc;
        for (int d = 0; d < hd; d++) out[d] = ov[d] * inv;
    }
}

#else
int qe_attn_amx_usable(void) {
    return 0;
}

void qe_attn_amx_task(const qe_attn_args *a, size_t base, int kvh, int r0, int r1, float *scratch) {
    (void)a, (void)base, (void)kvh, (void)r0, (void)r1, (void)scratch;
}
#endif
