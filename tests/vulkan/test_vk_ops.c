/* Every Vulkan shader op against the CPU backend's own function on random
 * inputs of odd sizes (tile tails in every dimension), each within a stated
 * tolerance. Runs on any Vulkan device, the software one (lavapipe) included;
 * without a Vulkan driver it prints why and exits 77 (ctest: skipped). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/attention.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/ops.h"
#include "backend/vulkan/vk_internal.h"
#include "backend/vulkan/vk_loader.h"
#include "check.h"

static qe_vk *vk;
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}
static float *rand_f(size_t n) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

/* Largest |a-b| relative to the largest |b| (a scale-free error). */
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / m;
}

static qe_vk_buf up(const void *data, size_t bytes) {
    qe_vk_buf b;
    qembed_error e;
    if (qe_vk_buf_create(vk, bytes, &b, &e) != QEMBED_OK ||
        qe_vk_upload(vk, &b, 0, data, bytes, &e) != QEMBED_OK) {
        fprintf(stderr, "upload: %s\n", e.message);
        exit(1);
    }
    return b;
}
static void down(const qe_vk_buf *b, void *dst, size_t bytes) {
    qembed_error e;
    if (qe_vk_download(vk, b, 0, dst, bytes, &e) != QEMBED_OK) {
        fprintf(stderr, "download: %s\n", e.message);
        exit(1);
    }
}
static qembed_error E;
#define RUN(op)                                                                                           \
    do {                                                                                                  \
        CHECK(qe_vk_begin(vk, &E) == QEMBED_OK && (op) == QEMBED_OK && qe_vk_submit(vk, &E) == QEMBED_OK, \
              "%s", E.message);                                                                           \
    } while (0)

/* y = x W^T with W stored as f32/f16/bf16, f32 accumulation; tolerance 1e-5
 * relative (both sides sum in f32 from the same widened weights; only the
 * order of the additions differs). Also the accumulate form (y += x W^T). */
static void test_matmul(qe_dtype wt, int M, int K, int N) {
    float *x = rand_f((size_t)M * K), *wf = rand_f((size_t)N * K);
    size_t esz = qe_dtype_size(wt);
    void *w = malloc((size_t)N * K * esz);
    for (size_t i = 0; i < (size_t)N * K; i++) {
        if (wt == QE_F32)
            ((float *)w)[i] = wf[i];
        else if (wt == QE_F16)
            ((uint16_t *)w)[i] = qe_f32_to_f16(wf[i]);
        else
            ((uint16_t *)w)[i] = qe_f32_to_bf16(wf[i]);
    }
    float *ref = malloc((size_t)M * N * sizeof(float)), *got = malloc((size_t)M * N * sizeof(float));
    qe_matmul(NULL, qe_cpu_isa(), QE_MM_EXACT, x, (size_t)K, M, K, w, wt, N, ref, (size_t)N);
    float *y0 = rand_f((size_t)M * N);
    qe_vk_buf bx = up(x, (size_t)M * K * 4), bw = up(w, (size_t)N * K * esz), by = up(y0, (size_t)M * N * 4);
    RUN(qe_vk_matmul(vk, &bx, 0, (uint32_t)K, (uint32_t)M, (uint32_t)K, &bw, wt, (uint32_t)N, &by, 0,
                     (uint32_t)N, 0, &E));
    down(&by, got, (size_t)M * N * 4);
    double r = rel_err(got, ref, (size_t)M * N);
    CHECK(r < 1e-5, "matmul %s %dx%dx%d: relative error %.3g", qe_dtype_name(wt), M, K, N, r);
    /* accumulate: y = y0 + x W^T */
    qe_vk_upload(vk, &by, 0, y0, (size_t)M * N * 4, &E);
    RUN(qe_vk_matmul(vk, &bx, 0, (uint32_t)K, (uint32_t)M, (uint32_t)K, &bw, wt, (uint32_t)N, &by, 0,
                     (uint32_t)N, 1, &E));
    down(&by, got, (size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * N; i++) ref[i] += y0[i];
    r = rel_err(got, ref, (size_t)M * N);
    CHECK(r < 1e-5, "matmul+add %s %dx%dx%d: relative error %.3g", qe_dtype_name(wt), M, K, N, r);
    qe_vk_buf_free(vk, &bx);
    qe_vk_buf_free(vk, &bw);
    qe_vk_buf_free(vk, &by);
    free(x);
    free(wf);
    free(w);
    free(ref);
    free(got);
    free(y0);
}

/* RMSNorm, out of place and in place; 1e-5 relative. */
static void test_rmsnorm(int rows, int d) {
    float *x = rand_f((size_t)rows * d), *w = rand_f((size_t)d);
    float *ref = malloc((size_t)rows * d * 4), *got = malloc((size_t)rows * d * 4);
    qe_op_rmsnorm_rows(x, (size_t)d, ref, (size_t)d, 0, (size_t)rows, d, w, 1e-6f);
    qe_vk_buf bx = up(x, (size_t)rows * d * 4), bw = up(w, (size_t)d * 4), by = up(x, (size_t)rows * d * 4);
    RUN(qe_vk_rmsnorm(vk, &bx, 0, (uint32_t)d, &by, 0, (uint32_t)d, (uint32_t)rows, (uint32_t)d, &bw, 0,
                      1e-6f, &E));
    down(&by, got, (size_t)rows * d * 4);
    double r = rel_err(got, ref, (size_t)rows * d);
    CHECK(r < 1e-5, "rmsnorm %dx%d: relative error %.3g", rows, d, r);
    RUN(qe_vk_rmsnorm(vk, &bx, 0, (uint32_t)d, &bx, 0, (uint32_t)d, (uint32_t)rows, (uint32_t)d, &bw, 0,
                      1e-6f, &E));
    down(&bx, got, (size_t)rows * d * 4);
    r = rel_err(got, ref, (size_t)rows * d);
    CHECK(r < 1e-5, "rmsnorm in place %dx%d: relative error %.3g", rows, d, r);
    qe_vk_buf_free(vk, &bx);
    qe_vk_buf_free(vk, &bw);
    qe_vk_buf_free(vk, &by);
    free(x);
    free(w);
    free(ref);
    free(got);
}

/* RoPE on q and k heads at each row's position, with the CPU's table;
 * 1e-6 relative (the same products, one rounding each). */
static void test_rope(int T, int nh, int nkv, int D) {
    size_t nq = (size_t)T * nh * D, nk = (size_t)T * nkv * D, half = (size_t)D / 2;
    float *q = rand_f(nq), *k = rand_f(nk);
    int *pos = malloc((size_t)T * sizeof(int));
    for (int r = 0; r < T; r++) pos[r] = (r * 7) % 53; /* packed sequences: positions restart */
    float *cs = malloc(64 * half * 4), *sn = malloc(64 * half * 4);
    qe_op_rope_table(1e6, D, 64, cs, sn);
    qe_vk_buf bq = up(q, nq * 4), bk = up(k, nk * 4), bc = up(cs, 64 * half * 4), bs = up(sn, 64 * half * 4),
              bp = up(pos, (size_t)T * 4);
    RUN(qe_vk_rope(vk, &bq, &bk, &bc, &bs, &bp, (uint32_t)T, (uint32_t)nh, (uint32_t)nkv, (uint32_t)D, &E));
    float *gq = malloc(nq * 4), *gk = malloc(nk * 4);
    down(&bq, gq, nq * 4);
    down(&bk, gk, nk * 4);
    for (int r = 0; r < T; r++) {
        for (int h = 0; h < nh; h++)
            qe_op_rope_head(q + ((size_t)r * nh + h) * D, D, cs + pos[r] * half, sn + pos[r] * half);
        for (int h = 0; h < nkv; h++)
            qe_op_rope_head(k + ((size_t)r * nkv + h) * D, D, cs + pos[r] * half, sn + pos[r] * half);
    }
    double r1 = rel_err(gq, q, nq), r2 = rel_err(gk, k, nk);
    CHECK(r1 < 1e-6 && r2 < 1e-6, "rope T=%d D=%d: relative error q %.3g k %.3g", T, D, r1, r2);
    qe_vk_buf_free(vk, &bq);
    qe_vk_buf_free(vk, &bk);
    qe_vk_buf_free(vk, &bc);
    qe_vk_buf_free(vk, &bs);
    qe_vk_buf_free(vk, &bp);
    free(q);
    free(k);
    free(pos);
    free(cs);
    free(sn);
    free(gq);
    free(gk);
}

/* SwiGLU and the residual add; 1e-6 relative (exp may differ in the last ulp). */
static void test_elementwise(size_t n) {
    float *g = rand_f(n), *u = rand_f(n), *got = malloc(n * 4);
    for (size_t i = 0; i < n; i++) g[i] *= 8.0f; /* the saturating ends of silu too */
    qe_vk_buf bg = up(g, n * 4), bu = up(u, n * 4);
    RUN(qe_vk_swiglu(vk, &bg, &bu, (uint32_t)n, &E));
    down(&bg, got, n * 4);
    float *ref = malloc(n * 4);
    memcpy(ref, g, n * 4);
    qe_op_swiglu(ref, u, n);
    double r = rel_err(got, ref, n);
    CHECK(r < 1e-6, "swiglu n=%zu: relative error %.3g", n, r);
    qe_vk_upload(vk, &bg, 0, g, n * 4, &E);
    RUN(qe_vk_add(vk, &bg, &bu, (uint32_t)n, &E));
    down(&bg, got, n * 4);
    memcpy(ref, g, n * 4);
    qe_op_add(ref, u, n);
    r = rel_err(got, ref, n);
    CHECK(r == 0, "add n=%zu: relative error %.3g", n, r);
    qe_vk_buf_free(vk, &bg);
    qe_vk_buf_free(vk, &bu);
    free(g);
    free(u);
    free(got);
    free(ref);
}

/* Causal GQA over a packed batch of sequences of the given lengths, against
 * the CPU backend's attention (one thread); 1e-5 relative. */
static void test_attention(const int *lens, int n_seq, int nh, int nkv, int D) {
    int T = 0;
    int *off = malloc(((size_t)n_seq + 1) * sizeof(int));
    for (int s = 0; s < n_seq; s++) {
        off[s] = T;
        T += lens[s];
    }
    off[n_seq] = T;
    size_t nq = (size_t)T * nh * D, nk = (size_t)T * nkv * D;
    float *q = rand_f(nq), *k = rand_f(nk), *v = rand_f(nk);
    for (size_t i = 0; i < nq; i++) q[i] *= 3.0f; /* peaked softmaxes too */
    int *sst = malloc((size_t)T * sizeof(int));
    for (int s = 0; s < n_seq; s++)
        for (int r = off[s]; r < off[s + 1]; r++) sst[r] = off[s];
    qe_vk_buf bq = up(q, nq * 4), bk = up(k, nk * 4), bv = up(v, nk * 4), bs = up(sst, (size_t)T * 4);
    RUN(qe_vk_attention(vk, &bq, &bk, &bv, &bs, (uint32_t)T, (uint32_t)nh, (uint32_t)nkv, (uint32_t)D, &E));
    float *got = malloc(nq * 4);
    down(&bq, got, nq * 4);
    qe_threadpool *pool = qe_threadpool_create(1);
    float *scratch = malloc(qe_attn_scratch_floats(D, nh / nkv) * sizeof(float));
    int *tile_off = malloc(((size_t)T + 1) * sizeof(int)); /* as forward.c: cap+1 */
    qe_attn_args a = {.q = q,
                      .ldq = (size_t)nh * D,
                      .k = k,
                      .v = v,
                      .ldkv = (size_t)nkv * D,
                      .seq_off = off,
                      .n_seq = n_seq,
                      .n_heads = nh,
                      .n_kv_heads = nkv,
                      .head_dim = D,
                      .last_only = 0,
                      .tile_off = tile_off,
                      .scratch = scratch,
                      .isa = qe_cpu_isa()};
    qe_attention(pool, &a);
    double r = rel_err(got, q, nq);
    CHECK(r < 1e-5, "attention T=%d seqs=%d heads %d/%d D=%d: relative error %.3g", T, n_seq, nh, nkv, D, r);
    qe_threadpool_free(pool);
    qe_vk_buf_free(vk, &bq);
    qe_vk_buf_free(vk, &bk);
    qe_vk_buf_free(vk, &bv);
    qe_vk_buf_free(vk, &bs);
    free(off);
    free(q);
    free(k);
    free(v);
    free(sst);
    free(got);
    free(scratch);
    free(tile_off);
}

int main(void) {
    qe_vk_info inf[8];
    if (qe_vk_list(inf, 8) == 0) {
        const char *why = "";
        qe_vk_load(NULL, &why);
        printf("SKIPPED: no Vulkan device (%s); install mesa-vulkan-drivers for lavapipe\n",
               why[0] ? why : "the driver reports none");
        return 77;
    }
    qembed_error e;
    if (qe_vk_open(0, &vk, &e) != QEMBED_OK) {
        fprintf(stderr, "FAIL: cannot open vulkan0 (%s): %s\n", inf[0].name, e.message);
        return 1;
    }
    printf("device: vulkan0 (%s)\n", inf[0].name);
    const qe_dtype dts[3] = {QE_F32, QE_F16, QE_BF16};
    for (int i = 0; i < 3; i++) {
        test_matmul(dts[i], 1, 17, 5);
        test_matmul(dts[i], 37, 83, 51);
        test_matmul(dts[i], 130, 257, 97);
    }
    test_rmsnorm(1, 64);
    test_rmsnorm(7, 97);
    test_rmsnorm(300, 1024);
    test_rope(13, 4, 2, 16);
    test_rope(29, 16, 8, 128);
    test_elementwise(1);
    test_elementwise(100003);
    const int l1[] = {1}, l2[] = {37, 1, 5, 70}, l3[] = {200, 33};
    test_attention(l1, 1, 4, 2, 16);
    test_attention(l2, 4, 4, 2, 16);
    test_attention(l3, 2, 16, 8, 128);
    test_attention(l2, 4, 8, 1, 64);
    /* one long sequence: the first shader form went wrong on lavapipe past ~1,800 keys */
    const int l4[] = {2100};
    test_attention(l4, 1, 4, 2, 16);
    test_matmul(QE_BF16, 2100, 64, 192);
    test_rmsnorm(8400, 16);
    test_rope(2100, 4, 2, 16);
    qe_vk_close(vk);
    if (failures) return 1;
    printf("vulkan ops: all checks passed\n");
    return 0;
}
