/* Run-time check of the SIMD matrix products against the scalar reference,
 * once per process before the first product, on the CPU that will run them.
 *
 * Why: the AVX-512 and AVX512-BF16 variants could not be run on the machines
 * qembed was developed and tested on (AVX2 only), and a wrong product gives
 * plausible-looking but wrong vectors, silently. So every level this CPU
 * offers above scalar is first tried on a few small products (tails in m, k
 * and n; dot and GEMM forms; several k-blocks; every weight dtype; both
 * modes) and compared with the scalar reference under the kernel tests'
 * tolerance. The highest level that passes is used; a level that fails is
 * reported (qe_cpu_isa_note) and never used. About 3 ms per level. Levels
 * from AVX512-BF16 up also check bf16 mode's attention with vdpbf16ps
 * (attention_bf16.c), the AMX level its attention on tiles (attention_amx.c),
 * and the avx512bf16 level its oneDNN route (oneDNN without AMX, matmul.c)
 * where it can take it; from AVX-512 on, the fused norm bodies bf16 mode runs
 * between the products (ops.c) are checked too. */
#include "isa_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "attention_amx.h"
#include "matmul_amx.h"
#include "matmul_internal.h"
#include "matmul_kq.h"
#include "matmul_q8p.h"
#include "ops.h"

typedef struct shape {
    int m, k, n;
} shape;

/* 97 rows reach the AVX2 GEMM form (>= 80), 1100 > one AVX-512 k-block */
static const shape g_shapes[] = {{1, 67, 9}, {5, 1100, 13}, {97, 160, 19}};

static unsigned long long g_rng = 0x9e3779b97f4a7c15ull;
static float rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* One product by `variant` against the scalar reference: 0 when within
 * 1e-5 * sum |x w| everywhere (as tests/kernels), -1 otherwise. */
static int check_one(qe_mm_variant variant, const shape *s, qe_dtype dt, qe_mm_mode mode, float *x, void *w,
                     float *y, float *yr) {
    const size_t nx = (size_t)s->m * s->k, nw = (size_t)s->n * s->k, ny = (size_t)s->m * s->n;
    for (size_t i = 0; i < nx; i++) x[i] = rnd();
    for (size_t i = 0; i < nw; i++) {
        float v = rnd();
        if (dt == QE_BF16)
            ((uint16_t *)w)[i] = qe_f32_to_bf16(v);
        else if (dt == QE_F16)
            ((uint16_t *)w)[i] = qe_f32_to_f16(v);
        else
            ((float *)w)[i] = v;
    }
    qe_mm_args a = {NULL, mode, x, (size_t)s->k, s->m, s->k, w, dt, s->n, yr, (size_t)s->n};
    qe_matmul_scalar(&a);
    for (size_t i = 0; i < ny; i++) y[i] = NAN;
    a.y = y;
    if (variant(&a) != 0)
        return 0; /* not applicable (e.g. vdpbf16ps needs bf16 weights): the caller falls back */
    for (int i = 0; i < s->m; i++)
        for (int j = 0; j < s->n; j++) {
            double b = 0;
            for (int p = 0; p < s->k; p++)
                b += fabs((double)x[(size_t)i * s->k + p] * qe_tensor_get_f32(w, dt, (size_t)j * s->k + p));
            double d = fabs((double)y[(size_t)i * s->n + j] - (double)yr[(size_t)i * s->n + j]);
            if (!(d <= 1e-5 * b + 1e-30)) return -1; /* NaN fails too */
        }
    return 0;
}

int qe_q8_check(qe_q8_variant v, qe_threadpool *pool) {
    /* odd m, n and block counts; n of 33 and 70 reach the AMX kernel's
     * 32-row panels and their tails, m of 33 and 70 its tile pairs and a
     * lone tile */
    static const shape q8_shapes[] = {{1, 32, 1}, {3, 96, 13}, {17, 1184, 9}, {70, 64, 33}, {33, 160, 70}};
    if (!qe_q8_variant_available(v)) return 0;
    int rc = 0;
    for (size_t si = 0; rc == 0 && si < sizeof q8_shapes / sizeof *q8_shapes; si++) {
        const shape *s = &q8_shapes[si];
        const size_t nb = (size_t)s->k / 32;
        float *x = malloc((size_t)s->m * s->k * sizeof *x);
        uint8_t *w = malloc((size_t)s->n * nb * 34);
        float *y = malloc((size_t)s->m * s->n * sizeof *y), *yr = malloc((size_t)s->m * s->n * sizeof *yr);
        if (!x || !w || !y || !yr) rc = 1;
        for (size_t i = 0; rc == 0 && i < (size_t)s->m * s->k; i++) x[i] = rnd();
        for (size_t b = 0; rc == 0 && b < (size_t)s->n * nb; b++) {
            uint16_t d = qe_f32_to_f16(0.001f + 0.01f * fabsf(rnd()));
            memcpy(w + b * 34, &d, 2);
            /* -128 included: every variant must be exact for it too */
            for (int i = 0; i < 32; i++) w[b * 34 + 2 + i] = (uint8_t)(int8_t)(int)floorf(rnd() * 128.f);
        }
        if (rc == 0) {
            qe_mm_args a = {NULL, QE_MM_EXACT, x,    (size_t)s->k, s->m,        s->k,
                            w,    QE_Q8_0,     s->n, yr,           (size_t)s->n};
            rc = qe_matmul_q8(&a, QE_Q8_SCALAR) ? 1 : 0;
            for (size_t i = 0; i < (size_t)s->m * s->n; i++) y[i] = NAN;
            a.pool = pool;
            a.y = y;
            if (rc == 0 && qe_matmul_q8(&a, v) != 0) rc = 1;
            for (int i = 0; rc == 0 && i < s->m; i++)
                for (int j = 0; j < s->n; j++) {
                    double bnd = 0;
                    for (int p = 0; p < s->k; p++)
                        bnd += fabs((double)x[(size_t)i * s->k + p] *
                                    qe_tensor_get_f32(w, QE_Q8_0, (size_t)j * s->k + p));
                    double d = fabs((double)y[(size_t)i * s->n + j] - (double)yr[(size_t)i * s->n + j]);
                    if (!(d <= 1e-5 * bnd + 1e-30)) rc = -1;
                }
        }
        free(x);
        free(w);
        free(y);
        free(yr);
    }
    return rc;
}

/* The packed AMX product (matmul_amx.c) as a variant: packs W for the call.
 * Only bf16 mode on bf16 weights (what the forward pass packs). */
static int amx_packed_variant(const qe_mm_args *a) {
    if (a->mode != QE_MM_BF16 || a->wt != QE_BF16) return -1;
    qe_amx_w pw;
    if (qe_amx_pack(&pw, a->w, NULL, a->n, a->k) != 0) return -1;
    qe_amx_out o = {&pw, a->y, a->ldy};
    int rc = qe_matmul_amx(a->pool, a->x, a->ldx, a->m, a->k, &o, 1);
    qe_amx_free(&pw);
    return rc;
}

/* Its forms on pairs of panels (the variant check's n < 32 reaches only a
 * single panel): 16 rows (the 1x4 form over a pair, with its prefetch, and
 * the 1x2 form on a last odd panel: n = 72) and 40 rows (the 2x2 form on
 * both panels of a pair, then 1x4); k = 40 ends in a partial k-block. Small
 * shapes: this runs at every start. 0 agrees, -1 does not, 1 could not
 * check. */
static int amx_pairs_check(void) {
    static const shape sh[] = {{16, 40, 72}, {40, 40, 72}};
    float *x = malloc(sizeof(float) * 40 * 40), *w = malloc(sizeof(float) * 72 * 40);
    float *y = malloc(sizeof(float) * 40 * 72), *yr = malloc(sizeof(float) * 40 * 72);
    int rc = (!x || !w || !y || !yr) ? 1 : 0;
    for (int i = 0; rc == 0 && i < 2; i++)
        rc = check_one(amx_packed_variant, &sh[i], QE_BF16, QE_MM_BF16, x, w, y, yr);
    free(x);
    free(w);
    free(y);
    free(yr);
    return rc;
}

/* Its glu form (gate and up packed together, silu(gate) * up written) on a
 * product with tails in k and n, m rows (19: the 2x2 form; 16: the 1x4
 * form): 0 agrees with the scalar products and the formula in double, -1
 * does not, 1 could not check. */
static int amx_glu_check(int m) {
    const int k = 96, n = 37;
    float *x = malloc(sizeof(float) * m * k), *g = malloc(sizeof(float) * m * n);
    float *gr = malloc(sizeof(float) * m * n), *ur = malloc(sizeof(float) * m * n);
    uint16_t *wg = malloc(2 * (size_t)n * k), *wu = malloc(2 * (size_t)n * k);
    qe_amx_w pw = {0};
    int rc = (!x || !g || !gr || !ur || !wg || !wu) ? 1 : 0;
    if (rc == 0) {
        for (int i = 0; i < m * k; i++) x[i] = rnd();
        for (int i = 0; i < n * k; i++) {
            wg[i] = qe_f32_to_bf16(rnd());
            wu[i] = qe_f32_to_bf16(rnd());
        }
        qe_mm_args a = {NULL, QE_MM_BF16, x, (size_t)k, m, k, wg, QE_BF16, n, gr, (size_t)n};
        qe_matmul_scalar(&a);
        a.w = wu;
        a.y = ur;
        qe_matmul_scalar(&a);
        qe_amx_out o = {&pw, g, (size_t)n};
        if (qe_amx_pack(&pw, wg, wu, n, k) != 0)
            rc = 1;
        else if (qe_matmul_amx(NULL, x, (size_t)k, m, k, &o, 1) != 0)
            rc = -1;
        /* |x| < 1, |w| < 1: each product is off by at most ~1e-5 * k */
        for (int i = 0; rc == 0 && i < m * n; i++) {
            double want = gr[i] / (1.0 + exp(-(double)gr[i])) * ur[i];
            if (!(fabs(g[i] - want) <= 1e-4 * (1.0 + fabs(want)))) rc = -1;
        }
    }
    qe_amx_free(&pw);
    free(x);
    free(g);
    free(gr);
    free(ur);
    free(wg);
    free(wu);
    return rc;
}

/* The packed Q8_0 product (matmul_q8p.c) as the forward pass calls it: a
 * plain output and a glu output (gate and up packed together) in one call,
 * tails in m, k (an odd block count) and n: 0 agrees with the scalar Q8_0
 * products (and silu(gate) * up in double), -1 does not, 1 could not check.
 * (Its single-output form is checked as q8 variant QE_Q8_AMXP.) */
static int q8p_glu_check(void) {
    const int m = 19, k = 96, n = 37;
    const size_t wb = (size_t)n * (size_t)(k / 32) * 34;
    float *x = malloc(sizeof(float) * m * k), *g = malloc(sizeof(float) * m * n);
    float *yp = malloc(sizeof(float) * m * n), *gr = malloc(sizeof(float) * m * n);
    float *ur = malloc(sizeof(float) * m * n);
    uint8_t *wg = malloc(wb), *wu = malloc(wb);
    qe_q8p_w pp = {0}, pg = {0};
    int rc = (!x || !g || !yp || !gr || !ur || !wg || !wu) ? 1 : 0;
    if (rc == 0) {
        for (int i = 0; i < m * k; i++) x[i] = rnd();
        for (size_t b = 0; b < wb / 34; b++)
            for (int t = 0; t < 2; t++) {
                uint8_t *blk = (t ? wu : wg) + b * 34;
                uint16_t d = qe_f32_to_f16(0.001f + 0.01f * fabsf(rnd()));
                memcpy(blk, &d, 2);
                for (int i = 0; i < 32; i++) blk[2 + i] = (uint8_t)(int8_t)(int)floorf(rnd() * 128.f);
            }
        qe_mm_args a = {NULL, QE_MM_BF16, x, (size_t)k, m, k, wg, QE_Q8_0, n, gr, (size_t)n};
        rc = qe_matmul_q8(&a, QE_Q8_SCALAR) ? 1 : 0;
        a.w = wu;
        a.y = ur;
        if (rc == 0) rc = qe_matmul_q8(&a, QE_Q8_SCALAR) ? 1 : 0;
        if (rc == 0 && (qe_q8p_pack(&pp, wg, NULL, n, k) != 0 || qe_q8p_pack(&pg, wg, wu, n, k) != 0)) rc = 1;
        qe_q8p_out o[2] = {{&pp, yp, (size_t)n}, {&pg, g, (size_t)n}};
        if (rc == 0 && qe_matmul_q8p(NULL, x, (size_t)k, m, k, o, 2) != 0) rc = -1;
        /* |x| < 1, |w| < 1.3: each product is off by at most ~1e-5 * k */
        for (int i = 0; rc == 0 && i < m * n; i++) {
            double want = gr[i] / (1.0 + exp(-(double)gr[i])) * ur[i];
            if (!(fabs(yp[i] - gr[i]) <= 1e-4 * (1.0 + fabs(gr[i])))) rc = -1;
            if (!(fabs(g[i] - want) <= 1e-4 * (1.0 + fabs(want)))) rc = -1;
        }
    }
    qe_q8p_free(&pp);
    qe_q8p_free(&pg);
    free(x);
    free(g);
    free(yp);
    free(gr);
    free(ur);
    free(wg);
    free(wu);
    return rc;
}

/* bf16 mode's attention bodies against the formula in double on the same
 * bf16-rounded q, k, v: the vdpbf16ps one (attention_bf16.c, run at level
 * avx512bf16) and, with tiles (1), also the AMX one (attention_amx.c, level
 * amx with the tile state granted). Two sequences of one packed batch
 * (lengths off the 16/32/64/128 grids, one odd), GQA group 2, head_dim 64,
 * all rows and then last_only. Bound as tests/engine/test_attention.c:
 * 2^-7 * max |v| (the rounding of the probabilities). 0 agrees, -1 does
 * not, 1 could not check. */
static int attn_bf16_check(int tiles) {
    enum { NH = 4, NKV = 2, HD = 64, T = 45 + 150, QD = NH * HD, KD = NKV * HD };
    const int off[3] = {0, 45, T};
    int tile_off[3];
    float *q = malloc(sizeof(float) * T * QD), *got = malloc(sizeof(float) * T * QD);
    float *want = malloc(sizeof(float) * T * QD);
    float *k = malloc(sizeof(float) * T * KD), *v = malloc(sizeof(float) * T * KD);
    float *scratch = malloc(sizeof(float) * qe_attn_scratch_floats(HD, NH / NKV));
    double *p = malloc(sizeof(double) * T);
    int rc = (!q || !got || !want || !k || !v || !scratch || !p) ? 1 : 0;
    for (int i = 0; rc == 0 && i < T * QD; i++) q[i] = qe_bf16_to_f32(qe_f32_to_bf16(2.0f * rnd()));
    for (int i = 0; rc == 0 && i < T * KD; i++) {
        k[i] = qe_bf16_to_f32(qe_f32_to_bf16(2.0f * rnd()));
        v[i] = qe_bf16_to_f32(qe_f32_to_bf16(rnd()));
    }
    for (int s = 0; rc == 0 && s < 2; s++) /* the formula, once for every body */
        for (int i = off[s]; i < off[s + 1]; i++)
            for (int h = 0; h < NH; h++) {
                const int kh = h / (NH / NKV), n = i - off[s] + 1;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < n; j++) {
                    double d = 0;
                    for (int x = 0; x < HD; x++)
                        d += (double)q[i * QD + h * HD + x] * k[(off[s] + j) * KD + kh * HD + x];
                    p[j] = d / sqrt((double)HD);
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < n; j++) sum += (p[j] = exp(p[j] - mx));
                for (int x = 0; x < HD; x++) {
                    double o = 0;
                    for (int j = 0; j < n; j++) o += p[j] * v[(off[s] + j) * KD + kh * HD + x];
                    want[i * QD + h * HD + x] = (float)(o / sum);
                }
            }
    for (int body = 0; rc == 0 && body <= tiles; body++)
        for (int last_only = 0; rc == 0 && last_only <= 1; last_only++) {
            memcpy(got, q, sizeof(float) * T * QD);
            qe_attn_args a = {.q = got,
                              .ldq = QD,
                              .k = k,
                              .v = v,
                              .ldkv = KD,
                              .seq_off = off,
                              .n_seq = 2,
                              .n_heads = NH,
                              .n_kv_heads = NKV,
                              .head_dim = HD,
                              .last_only = last_only,
                              .tile_off = tile_off,
                              .scratch = scratch,
                              .isa = body ? QE_ISA_AMX : QE_ISA_AVX512_BF16,
                              .bf16 = 1};
            qe_attention(NULL, &a);
            for (int s = 0; s < 2; s++)
                for (int i = last_only ? off[s + 1] - 1 : off[s]; i < off[s + 1]; i++)
                    for (int x = 0; x < QD; x++)
                        if (!(fabs(got[i * QD + x] - want[i * QD + x]) <= 7.8e-3))
                            rc = -1; /* NaN fails too */
        }
    free(q);
    free(got);
    free(want);
    free(k);
    free(v);
    free(scratch);
    free(p);
    return rc;
}

/* bf16 mode's fused norm bodies at this level (ops.c: residual add + RMSNorm
 * over a width with tails of 32 and 16; q/k RMSNorm + RoPE on 128-value
 * heads) against the scalar ops they fuse: a wrong body would move every
 * vector a little, silently. The norms' double sums differ in order only,
 * so a few ulp of each value (of the pair, after RoPE). */
static int ops_check(qe_isa isa) {
    enum { D = 1030, R = 2, HD = 128, NH = 3, HALF = HD / 2 };
    float *buf = malloc(sizeof(float) * (5 * R * D + D + 3 * NH * HD + 6 * HALF));
    if (!buf) return -1;
    float *x = buf, *xr = x + R * D, *dl = xr + R * D, *y = dl + R * D, *yr = y + R * D, *w = yr + R * D;
    float *v = w + D, *vn = v + NH * HD, *vr = vn + NH * HD, *ct = vr + NH * HD, *st = ct + 3 * HALF;
    for (int i = 0; i < R * D; i++) {
        x[i] = xr[i] = 4.0f * rnd();
        dl[i] = rnd();
    }
    for (int i = 0; i < D; i++) w[i] = rnd();
    for (int i = 0; i < NH * HD; i++) v[i] = vn[i] = 3.0f * rnd();
    qe_op_rope_table(1000000.0, HD, 3, ct, st);
    qe_op_add_rmsnorm_rows_isa(isa, x, D, dl, D, y, D, 0, R, D, w, 1e-6f);
    for (int r = 0; r < R; r++) qe_op_add(xr + r * D, dl + r * D, D);
    qe_op_rmsnorm_rows(xr, D, yr, D, 0, R, D, w, 1e-6f);
    int rc = 0;
    for (int i = 0; i < R * D; i++)
        if (!(x[i] == xr[i]) || !(fabsf(y[i] - yr[i]) <= 4e-7f * fabsf(yr[i]) + 1e-30f)) rc = -1;
    const float *c = ct + 2 * HALF, *s = st + 2 * HALF; /* position 2 */
    qe_op_rmsnorm_rope_heads_isa(isa, v, NH, HD, w, 1e-6f, c, s);
    qe_op_rmsnorm_rows(vn, HD, vn, HD, 0, NH, HD, w, 1e-6f);
    memcpy(vr, vn, sizeof(float) * NH * HD);
    for (int h = 0; h < NH; h++) qe_op_rope_head(vr + h * HD, HD, c, s);
    for (int h = 0; h < NH; h++)
        for (int i = 0; i < HD; i++) {
            const float *n = vn + h * HD;
            float tol = 1e-6f * (fabsf(n[i % HALF]) + fabsf(n[i % HALF + HALF])) + 1e-30f;
            if (!(fabsf(v[h * HD + i] - vr[h * HD + i]) <= tol)) rc = -1;
        }
    free(buf);
    return rc;
}

int qe_isa_check(qe_isa isa) {
    int rc = 0;
    switch (isa) {
        case QE_ISA_AMX:
            rc = qe_mm_variant_check(qe_matmul_onednn);
            /* the products on packed weights that bf16 mode runs at this level */
            if (rc == 0 && qe_amx_usable()) rc = qe_mm_variant_check(amx_packed_variant);
            if (rc == 0 && qe_amx_usable()) rc = amx_pairs_check();
            if (rc == 0 && qe_amx_usable()) rc = amx_glu_check(19);
            if (rc == 0 && qe_amx_usable()) rc = amx_glu_check(16);
            break;
        case QE_ISA_AVX512_BF16:
            rc = qe_mm_variant_check(qe_matmul_avx512bf16);
            /* its many-row products through oneDNN held below AMX (matmul.c) */
            if (rc == 0 && qe_onednn_without_amx()) rc = qe_mm_variant_check(qe_matmul_onednn);
            break;
        case QE_ISA_AVX512: rc = qe_mm_variant_check(qe_matmul_avx512); break;
        case QE_ISA_AVX2: rc = qe_mm_variant_check(qe_matmul_avx2); break;
        case QE_ISA_SCALAR: break;
    }
    /* bf16 mode's attention: vdpbf16ps from this level up (at amx it runs
     * when the OS withholds the tile state), and the tile body at amx */
    if (rc == 0 && isa >= QE_ISA_AVX512_BF16) rc = attn_bf16_check(isa >= QE_ISA_AMX && qe_attn_amx_usable());
    /* the int8 products this level would use for Q8_0 weights */
    if (rc == 0 && isa >= QE_ISA_AVX2) rc = qe_q8_check(QE_Q8_AVX2, NULL);
    if (rc == 0 && isa >= QE_ISA_AVX512) rc = qe_q8_check(QE_Q8_VNNI, NULL);
    if (rc == 0 && isa >= QE_ISA_AMX) rc = qe_q8_check(QE_Q8_AMX, NULL);
    /* and on Q8_0 weights packed at load (matmul_q8p.c) */
    if (rc == 0 && isa >= QE_ISA_AMX) rc = qe_q8_check(QE_Q8_AMXP, NULL);
    if (rc == 0 && isa >= QE_ISA_AMX && qe_q8p_usable()) rc = q8p_glu_check();
    /* and for the 4-6 bit block types (matmul_kq.c) */
    if (rc == 0 && isa >= QE_ISA_AVX2) rc = qe_kq_check(QE_KQ_AVX2, NULL);
    if (rc == 0 && isa >= QE_ISA_AVX512) rc = qe_kq_check(QE_KQ_AVX512, NULL);
    if (rc == 0 && isa >= QE_ISA_AVX2) rc = qe_kq8_check(QE_KQ8_AVX2, NULL);
    if (rc == 0 && isa >= QE_ISA_AVX512) rc = qe_kq8_check(QE_KQ8_VNNI, NULL);
    /* and the fused norm bodies bf16 mode runs between the products */
    if (rc == 0 && isa >= QE_ISA_AVX512) rc = ops_check(isa);
    return rc;
}

int qe_mm_variant_check(qe_mm_variant variant) {
    size_t mx = 0, my = 0;
    for (size_t i = 0; i < sizeof g_shapes / sizeof *g_shapes; i++) {
        const shape *s = &g_shapes[i];
        size_t a = (size_t)s->m * s->k, b = (size_t)s->n * s->k, c = (size_t)s->m * s->n;
        if (a > mx) mx = a;
        if (b > mx) mx = b;
        if (c > my) my = c;
    }
    float *x = malloc(mx * sizeof *x), *w = malloc(mx * sizeof *w);
    float *y = malloc(my * sizeof *y), *yr = malloc(my * sizeof *yr);
    int rc = 0;
    if (!x || !w || !y || !yr) {
        rc = 1; /* cannot check: say so, the caller keeps the level */
    } else {
        for (size_t i = 0; rc == 0 && i < sizeof g_shapes / sizeof *g_shapes; i++)
            for (int dt = 0; rc == 0 && dt < 3; dt++)
                for (int mode = 0; rc == 0 && mode < 2; mode++)
                    rc = check_one(variant, &g_shapes[i], (qe_dtype)dt, (qe_mm_mode)mode, x, w, y, yr);
    }
    free(x);
    free(w);
    free(y);
    free(yr);
    return rc;
}
