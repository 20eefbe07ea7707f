#include "backend/cpu/forward.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/cpu/attention.h"
#include "backend/cpu/ops.h"

#define QE_MLP_ROWS 512

/* ---------------------------------------------------------------- weights */

static void widen(const qe_tensor *t, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = qe_tensor_get_f32(t->data, t->dtype, i);
}

qembed_status qe_fwd_weights_init(qe_fwd_weights *fw, const qe_config *cfg, const qe_weights *w,
                                  qembed_error *err) {
    memset(fw, 0, sizeof *fw);
    const size_t H = (size_t)cfg->hidden_size, D = (size_t)cfg->head_dim;
    const size_t L = (size_t)cfg->n_layers;
    fw->norm_data = malloc((L * (2 * H + 2 * D) + H) * sizeof(float));
    fw->layers = calloc(L ? L : 1, sizeof *fw->layers);
    fw->packed = calloc(L ? L : 1, sizeof *fw->packed);
    if (!fw->norm_data || !fw->layers || !fw->packed) {
        qe_fwd_weights_free(fw);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory widening the norm weights");
    }
    fw->cfg = cfg;
    fw->w = w;
    float *p = fw->norm_data;
    for (size_t l = 0; l < L; l++) {
        const qe_layer_weights *lw = &w->layers[l];
        widen(&lw->attn_norm, p, H);
        fw->layers[l].attn = p;
        p += H;
        widen(&lw->ffn_norm, p, H);
        fw->layers[l].ffn = p;
        p += H;
        widen(&lw->q_norm, p, D);
        fw->layers[l].q = p;
        p += D;
        widen(&lw->k_norm, p, D);
        fw->layers[l].k = p;
        p += D;
    }
    widen(&w->final_norm, p, H);
    fw->final_norm = p;
    return QEMBED_OK;
}

static void packed_free(qe_fwd_packed *pk) {
    for (int i = 0; i < QE_PK_N; i++) {
        qe_q8p_free(&pk->q8[i]);
        qe_amx_free(&pk->bf16[i]);
    }
    pk->is_q8 = 0;
    pk->ready = 0;
}

void qe_fwd_weights_free(qe_fwd_weights *fw) {
    if (!fw) return;
    if (fw->packed && fw->cfg)
        for (int l = 0; l < fw->cfg->n_layers; l++) packed_free(&fw->packed[l]);
    free(fw->packed);
    free(fw->norm_data);
    free(fw->layers);
    memset(fw, 0, sizeof *fw);
}

/* ------------------------------------------------- weights packed for AMX */

/* The type of t when the layer's matrices could be packed as it: bf16 or
 * Q8_0 with whole blocks per row (the loader refuses anything else), or -1. */
static int packable(const qe_tensor *t) {
    if (!t->data || t->ndim != 2) return -1;
    if (t->dtype == QE_BF16) return QE_BF16;
    if (t->dtype == QE_Q8_0 && t->shape[1] % 32 == 0) return QE_Q8_0;
    return -1;
}

int qe_fwd_pack_dtype(const qe_fwd_weights *fw, int first, int end) {
    int dt = -1;
    for (int l = first; l < end; l++) {
        const qe_layer_weights *lw = &fw->w->layers[l];
        const qe_tensor *m[QE_LAYER_MATRICES];
        qe_layer_matrices(lw, m);
        for (int i = 0; i < QE_LAYER_MATRICES; i++) {
            int t = packable(m[i]);
            if (t < 0 || (dt >= 0 && t != dt)) return -1;
            dt = t;
        }
    }
    return dt;
}

uint64_t qe_fwd_packed_bytes(const qe_fwd_weights *fw, int first, int end, uint64_t *stored) {
    const int dt = qe_fwd_pack_dtype(fw, first, end);
    if (dt < 0) return 0;
    uint64_t p = 0, s = 0;
    for (int l = first; l < end; l++) {
        const qe_layer_weights *lw = &fw->w->layers[l];
        const qe_tensor *m[QE_LAYER_MATRICES];
        qe_layer_matrices(lw, m);
        for (int i = 0; i < QE_LAYER_MATRICES; i++) {
            int n = (int)m[i]->shape[0], k = (int)m[i]->shape[1];
            p += dt == QE_Q8_0 ? qe_q8p_packed_bytes(n, k) : qe_amx_packed_bytes(n, k);
            s += qe_tensor_bytes(m[i]);
        }
    }
    if (stored) *stored = s;
    return p;
}

/* The whole pages inside t's data, given back to the kernel: a read-only
 * private file mapping (the checkpoint's) refills them from the file. */
static void drop_pages(const qe_tensor *t) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)t->data + page - 1) & ~(page - 1);
    uintptr_t b = ((uintptr_t)t->data + (uintptr_t)qe_tensor_bytes(t)) & ~(page - 1);
    if (b > a) (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

typedef struct pack_job {
    const qe_fwd_weights *fw;
    int first;
    atomic_int failed;
} pack_job;

/* Faults t's mapped pages in with one call (Linux 5.14+; elsewhere the copy
 * faults them page by page): packing 8 GB page by page spent most of its
 * time in the fault path. */
static void populate(const qe_tensor *t) {
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)t->data & ~(page - 1), b = (uintptr_t)t->data + (uintptr_t)qe_tensor_bytes(t);
    (void)madvise((void *)a, b - a, MADV_POPULATE_READ);
}

/* Where each pack (QE_PK_*) comes from: its matrix's index in
 * qe_layer_matrices' order, and the up matrix packed with it as one glu
 * weight (gate's pack), else -1. */
static const struct {
    int m, up;
} pack_src[QE_PK_N] = {
    [QE_PK_Q] = {0, -1}, [QE_PK_K] = {1, -1}, [QE_PK_V] = {2, -1},
    [QE_PK_O] = {3, -1}, [QE_PK_GU] = {4, 5}, [QE_PK_DOWN] = {6, -1},
};
_Static_assert(QE_PK_N + 1 == QE_LAYER_MATRICES, "every matrix is in one pack: gate and up share one");

/* Packs layer first + task in QE_PK_* order: the bf16 form (qe_amx_pack) or
 * the Q8_0 form (qe_q8p_pack), the same loop for both. */
static void pack_task(void *arg, int task, int thread) {
    (void)thread;
    pack_job *j = arg;
    const int l = j->first + task;
    qe_fwd_packed *pk = &j->fw->packed[l];
    const qe_tensor *m[QE_LAYER_MATRICES];
    qe_layer_matrices(&j->fw->w->layers[l], m);
    pk->is_q8 = m[0]->dtype == QE_Q8_0;
    for (int i = 0; i < QE_PK_N; i++) {
        const qe_tensor *t = m[pack_src[i].m], *up = pack_src[i].up >= 0 ? m[pack_src[i].up] : NULL;
        const int n = (int)t->shape[0], k = (int)t->shape[1];
        populate(t);
        if (up) populate(up);
        if (pk->is_q8 ? qe_q8p_pack(&pk->q8[i], t->data, up ? up->data : NULL, n, k)
                      : qe_amx_pack(&pk->bf16[i], t->data, up ? up->data : NULL, n, k)) {
            atomic_store(&j->failed, 1);
            return;
        }
    }
    for (int i = 0; i < QE_LAYER_MATRICES; i++) drop_pages(m[i]);
    pk->ready = 1;
}

int qe_fwd_pack_layers(const qe_fwd_weights *fw, int first, int end, qe_threadpool *pool) {
    if (end <= first) return 0;
    const int dt = qe_fwd_pack_dtype(fw, first, end);
    if (dt < 0 || !(dt == QE_Q8_0 ? qe_q8p_usable() : qe_amx_usable())) return -1;
    pack_job j = {fw, first, 0};
    qe_threadpool_run(pool, pack_task, &j, end - first);
    if (atomic_load(&j.failed)) {
        for (int l = first; l < end; l++) packed_free(&fw->packed[l]);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ state */

static void state_sizes(const qe_config *cfg, int cap, int n_threads, size_t sz[12]) {
    const size_t C = (size_t)cap, H = (size_t)cfg->hidden_size, D = (size_t)cfg->head_dim;
    const size_t QD = (size_t)cfg->n_heads * D, KD = (size_t)cfg->n_kv_heads * D;
    const size_t R = (size_t)(cap < QE_MLP_ROWS ? cap : QE_MLP_ROWS);
    sz[0] = C * H;                              /* x */
    sz[1] = C * H;                              /* xn */
    sz[2] = C * QD;                             /* q */
    sz[3] = C * KD;                             /* k */
    sz[4] = C * KD;                             /* v */
    sz[5] = R * (size_t)cfg->intermediate_size; /* gate */
    sz[6] = sz[5];                              /* up */
    sz[7] = C * (D / 2);                        /* rope_cos */
    sz[8] = C * (D / 2);                        /* rope_sin */
    sz[9] = (size_t)(n_threads > 0 ? n_threads : 1) *
            qe_attn_scratch_floats((int)D, cfg->n_heads / cfg->n_kv_heads);
}

uint64_t qe_fwd_state_bytes(const qe_config *cfg, int cap, int n_threads) {
    size_t sz[12];
    state_sizes(cfg, cap, n_threads, sz);
    uint64_t b = 0;
    for (int i = 0; i < 10; i++) b += (uint64_t)sz[i] * sizeof(float);
    return b + (uint64_t)cap * 3 * sizeof(int);
}

qembed_status qe_fwd_state_init(qe_fwd_state *st, const qe_fwd_weights *fw, int cap, qe_threadpool *pool,
                                qe_mm_mode mode, qembed_error *err) {
    memset(st, 0, sizeof *st);
    QE_FAIL_IF(cap < 1, err, QEMBED_ERR_INVALID_ARGUMENT, "max_batch_tokens must be at least 1");
    const qe_config *cfg = fw->cfg;
    size_t sz[12];
    state_sizes(cfg, cap, qe_threadpool_size(pool), sz);
    float **bufs[10] = {&st->x,    &st->xn, &st->q,        &st->k,        &st->v,
                        &st->gate, &st->up, &st->rope_cos, &st->rope_sin, &st->attn_scratch};
    int ok = 1;
    for (int i = 0; i < 10; i++) {
        /* malloc, not calloc: pages are touched only as far as a batch reaches */
        *bufs[i] = malloc((sz[i] ? sz[i] : 1) * sizeof(float));
        ok = ok && *bufs[i];
    }
    st->pos = malloc((size_t)cap * sizeof(int));
    st->seq_off = malloc(((size_t)cap + 1) * sizeof(int));
    st->tile_off = malloc(((size_t)cap + 1) * sizeof(int));
    if (!ok || !st->pos || !st->seq_off || !st->tile_off) {
        qe_fwd_state_free(st);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY,
                "out of memory planning activations for %d tokens (%llu bytes)", cap,
                (unsigned long long)qe_fwd_state_bytes(cfg, cap, qe_threadpool_size(pool)));
    }
    st->cap = cap;
    st->mlp_rows = cap < QE_MLP_ROWS ? cap : QE_MLP_ROWS;
    st->pool = pool;
    st->isa = qe_cpu_isa();
    st->mode = mode;
    /* Positions restart at 0 for every sequence, so one table of cap rows
     * serves every batch. */
    qe_op_rope_table(cfg->rope_theta, cfg->head_dim, cap, st->rope_cos, st->rope_sin);
    return QEMBED_OK;
}

void qe_fwd_state_free(qe_fwd_state *st) {
    if (!st) return;
    free(st->x);
    free(st->xn);
    free(st->q);
    free(st->k);
    free(st->v);
    free(st->gate);
    free(st->up);
    free(st->rope_cos);
    free(st->rope_sin);
    free(st->attn_scratch);
    free(st->pos);
    free(st->seq_off);
    free(st->tile_off);
    memset(st, 0, sizeof *st);
}

/* ------------------------------------------------------- row-parallel ops */

/* Row ops are split into a few chunks per thread and run on the pool. */
typedef struct row_job {
    qe_fwd_state *st;
    const qe_fwd_weights *fw;
    const qe_layer_norms *ln;
    const float *src;
    float *dst;
    const float *w;
    int rows;
    int n_chunks;
} row_job;

/* The norms' SIMD body in bf16 mode; exact mode keeps the reference loop
 * (ops.h: the SIMD sum may differ in the last bit). */
static qe_isa norm_isa(const qe_fwd_state *st) {
    return st->mode == QE_MM_BF16 ? st->isa : QE_ISA_SCALAR;
}

static void chunk_range(const row_job *j, int task, int *r0, int *r1) {
    long per = (j->rows + j->n_chunks - 1) / j->n_chunks;
    long a = (long)task * per, b = a + per;
    if (a > j->rows) a = j->rows;
    if (b > j->rows) b = j->rows;
    *r0 = (int)a;
    *r1 = (int)b;
}

static int n_chunks_for(const qe_fwd_state *st, int rows) {
    int n = qe_threadpool_size(st->pool) * 4;
    return rows < n ? (rows > 0 ? rows : 1) : n;
}

static void rmsnorm_task(void *arg, int task, int thread) {
    const row_job *j = arg;
    int r0, r1;
    chunk_range(j, task, &r0, &r1);
    const int H = j->fw->cfg->hidden_size;
    qe_op_rmsnorm_rows_isa(norm_isa(j->st), j->src, (size_t)H, j->dst, (size_t)H, (size_t)r0, (size_t)r1, H,
                           j->w, (float)j->fw->cfg->rms_norm_eps);
}

/* The residual add (x += delta) over the pool, and when w is given the next
 * RMSNorm of the same rows in the same task (dst = norm(x)): one pass and one
 * hand-off instead of a single-threaded add then a pooled norm. The same
 * arithmetic per element as qe_op_add then qe_op_rmsnorm_rows (ops.h). */
static void add_rmsnorm_task(void *arg, int task, int thread) {
    (void)thread;
    const row_job *j = arg;
    int r0, r1;
    chunk_range(j, task, &r0, &r1);
    const int H = j->fw->cfg->hidden_size;
    qe_op_add_rmsnorm_rows_isa(norm_isa(j->st), j->st->x, (size_t)H, j->src, (size_t)H, j->dst, (size_t)H,
                               (size_t)r0, (size_t)r1, H, j->w, (float)j->fw->cfg->rms_norm_eps);
}

static void add_rmsnorm_rows(qe_fwd_state *st, const qe_fwd_weights *fw, const float *delta, float *dst,
                             const float *w, int rows) {
    row_job j = {.st = st,
                 .fw = fw,
                 .src = delta,
                 .dst = dst,
                 .w = w,
                 .rows = rows,
                 .n_chunks = n_chunks_for(st, rows)};
    qe_threadpool_run(st->pool, add_rmsnorm_task, &j, j.n_chunks);
}

static void rmsnorm_rows(qe_fwd_state *st, const qe_fwd_weights *fw, const float *src, float *dst,
                         const float *w, int rows) {
    row_job j = {
        .st = st, .fw = fw, .src = src, .dst = dst, .w = w, .rows = rows, .n_chunks = n_chunks_for(st, rows)};
    qe_threadpool_run(st->pool, rmsnorm_task, &j, j.n_chunks);
}

/* Per-head RMSNorm of q and k (q_norm, k_norm over head_dim), then RoPE: the
 * order Qwen3 uses (norm before rotation). */
static void qk_norm_rope_task(void *arg, int task, int thread) {
    const row_job *j = arg;
    qe_fwd_state *st = j->st;
    const qe_config *cfg = j->fw->cfg;
    const int D = cfg->head_dim, half = D / 2;
    const size_t ldq = (size_t)cfg->n_heads * D, ldk = (size_t)cfg->n_kv_heads * D;
    const float eps = (float)cfg->rms_norm_eps;
    int r0, r1;
    chunk_range(j, task, &r0, &r1);
    for (int r = r0; r < r1; r++) {
        const float *c = st->rope_cos + (size_t)st->pos[r] * half;
        const float *s = st->rope_sin + (size_t)st->pos[r] * half;
        qe_op_rmsnorm_rope_heads_isa(norm_isa(st), st->q + (size_t)r * ldq, cfg->n_heads, D, j->ln->q, eps, c,
                                     s);
        qe_op_rmsnorm_rope_heads_isa(norm_isa(st), st->k + (size_t)r * ldk, cfg->n_kv_heads, D, j->ln->k, eps,
                                     c, s);
    }
}

/* silu(gate) * up over rows of the MLP chunk: tens of millions of expf per
 * layer on long batches, so it is spread over the pool too. */
typedef struct swiglu_job {
    qe_isa isa;
    float *g;
    const float *u;
    size_t n;
    int n_chunks;
} swiglu_job;

static void swiglu_task(void *arg, int task, int thread) {
    const swiglu_job *j = arg;
    size_t per = (j->n + (size_t)j->n_chunks - 1) / (size_t)j->n_chunks;
    size_t a = (size_t)task * per, b = a + per;
    if (a > j->n) a = j->n;
    if (b > j->n) b = j->n;
    qe_op_swiglu_isa(j->isa, j->g + a, j->u + a, b - a);
}

/* ----------------------------------------------------------------- passes */

static void matmul(qe_fwd_state *st, const float *x, size_t ldx, int m, int k, const qe_tensor *w, float *y,
                   size_t ldy) {
    qe_matmul(st->pool, st->isa, st->mode, x, ldx, m, k, w->data, w->dtype, (int)w->shape[0], y, ldy);
}

/* The layer's packed matrices when this pass uses them: level amx (a
 * QEMBED_ISA cap below it means the mapped ones), and for bf16 weights bf16
 * mode. */
static const qe_fwd_packed *packed_for(const qe_fwd_state *st, const qe_fwd_weights *fw, int layer) {
    if (!fw->packed || !fw->packed[layer].ready || st->isa < QE_ISA_AMX) return NULL;
    if (!fw->packed[layer].is_q8 && st->mode != QE_MM_BF16) return NULL;
    return &fw->packed[layer];
}

/* Products on packed weights: y[i] = x W_which[i]^T (n <= 3); 0 when done
 * (else the caller runs qe_matmul). */
static int packed_mm(qe_fwd_state *st, const qe_fwd_packed *pk, const float *x, size_t ldx, int m, int k,
                     const int *which, float *const *y, const size_t *ldy, int n) {
    if (!pk) return -1;
    if (pk->is_q8) {
        qe_q8p_out o[3];
        for (int i = 0; i < n; i++) o[i] = (qe_q8p_out){&pk->q8[which[i]], y[i], ldy[i]};
        return qe_matmul_q8p(st->pool, x, ldx, m, k, o, n) != 0 ? -1 : 0;
    }
    qe_amx_out o[3];
    for (int i = 0; i < n; i++) o[i] = (qe_amx_out){&pk->bf16[which[i]], y[i], ldy[i]};
    return qe_matmul_amx(st->pool, x, ldx, m, k, o, n) != 0 ? -1 : 0;
}

void qe_fwd_begin(qe_fwd_state *st, const qe_fwd_weights *fw, const int32_t *ids, const size_t *lens,
                  int n_seq) {
    int t = 0;
    for (int s = 0; s < n_seq; s++) {
        st->seq_off[s] = t;
        for (size_t i = 0; i < lens[s]; i++) st->pos[t + (int)i] = (int)i;
        t += (int)lens[s];
    }
    st->seq_off[n_seq] = t;
    st->n_seq = n_seq;
    st->n_tok = t;
    st->rows = t;
    st->compacted = 0;
    st->xn_layer = -1;
    qe_op_embed_rows(fw->w->embed.data, fw->w->embed.dtype, fw->cfg->hidden_size, ids, (size_t)t, st->x);
}

void qe_fwd_layer(qe_fwd_state *st, const qe_fwd_weights *fw, int layer) {
    const qe_config *cfg = fw->cfg;
    const qe_layer_weights *lw = &fw->w->layers[layer];
    const qe_layer_norms *ln = &fw->layers[layer];
    const int H = cfg->hidden_size, D = cfg->head_dim, I = cfg->intermediate_size;
    const size_t QD = (size_t)cfg->n_heads * D, KD = (size_t)cfg->n_kv_heads * D;
    const int last = layer == cfg->n_layers - 1;
    int T = st->rows;

    const qe_fwd_packed *pk = packed_for(st, fw, layer);

    /* attention block */
    if (st->xn_layer != layer) rmsnorm_rows(st, fw, st->x, st->xn, ln->attn, T);
    st->xn_layer = -1;
    /* packed: q, k and v in one hand-off (x converted once) */
    const int w_qkv[3] = {QE_PK_Q, QE_PK_K, QE_PK_V};
    float *const y_qkv[3] = {st->q, st->k, st->v};
    const size_t ld_qkv[3] = {QD, KD, KD};
    if (packed_mm(st, pk, st->xn, (size_t)H, T, H, w_qkv, y_qkv, ld_qkv, 3) != 0) {
        matmul(st, st->xn, (size_t)H, T, H, &lw->wq, st->q, QD);
        matmul(st, st->xn, (size_t)H, T, H, &lw->wk, st->k, KD);
        matmul(st, st->xn, (size_t)H, T, H, &lw->wv, st->v, KD);
    }
    row_job j = {.st = st, .fw = fw, .ln = ln, .rows = T, .n_chunks = n_chunks_for(st, T)};
    qe_threadpool_run(st->pool, qk_norm_rope_task, &j, j.n_chunks);

    qe_attn_args a = {.q = st->q,
                      .ldq = QD,
                      .k = st->k,
                      .v = st->v,
                      .ldkv = KD,
                      .seq_off = st->seq_off,
                      .n_seq = st->n_seq,
                      .n_heads = cfg->n_heads,
                      .n_kv_heads = cfg->n_kv_heads,
                      .head_dim = D,
                      .last_only = last,
                      .tile_off = st->tile_off,
                      .scratch = st->attn_scratch,
                      .isa = st->isa,
                      .bf16 = st->mode == QE_MM_BF16};
    qe_attention(st->pool, &a);

    if (last) {
        /* Only each sequence's last token is pooled: from here on the last
         * layer carries just those rows (their keys and values were needed
         * above; their o-projection and MLP are all that is left). Row s
         * moves down from seq_off[s+1]-1 >= s, so the copies never clobber a
         * row still to be read. */
        for (int s = 0; s < st->n_seq; s++) {
            int src = st->seq_off[s + 1] - 1;
            if (src == s) continue;
            memmove(st->q + (size_t)s * QD, st->q + (size_t)src * QD, QD * sizeof(float));
            memmove(st->x + (size_t)s * H, st->x + (size_t)src * H, (size_t)H * sizeof(float));
        }
        T = st->rows = st->n_seq;
        st->compacted = 1;
    }

    const int w_o = QE_PK_O;
    const size_t ld_h = (size_t)H, ld_i = (size_t)I;
    if (packed_mm(st, pk, st->q, QD, T, (int)QD, &w_o, &st->xn, &ld_h, 1) != 0)
        matmul(st, st->q, QD, T, (int)QD, &lw->wo, st->xn, (size_t)H);
    /* x += o-projection, then the MLP's norm of x into xn (row by row: a
     * row's norm reads only its own, already added, row) */
    add_rmsnorm_rows(st, fw, st->xn, st->xn, ln->ffn, T);

    /* MLP block, in chunks of rows so gate/up stay small */
    for (int r0 = 0; r0 < T; r0 += st->mlp_rows) {
        int m = T - r0 < st->mlp_rows ? T - r0 : st->mlp_rows;
        float *xin = st->xn + (size_t)r0 * H;
        /* packed: gate and up in one product that writes silu(gate) * up */
        const int w_gu = QE_PK_GU, w_dn = QE_PK_DOWN;
        if (packed_mm(st, pk, xin, (size_t)H, m, H, &w_gu, &st->gate, &ld_i, 1) != 0) {
            matmul(st, xin, (size_t)H, m, H, &lw->w_gate, st->gate, (size_t)I);
            matmul(st, xin, (size_t)H, m, H, &lw->w_up, st->up, (size_t)I);
            swiglu_job sj = {.isa = st->isa,
                             .g = st->gate,
                             .u = st->up,
                             .n = (size_t)m * I,
                             .n_chunks = qe_threadpool_size(st->pool) * 4};
            qe_threadpool_run(st->pool, swiglu_task, &sj, sj.n_chunks);
        }
        /* xin is consumed: the down projection's output reuses its rows */
        if (packed_mm(st, pk, st->gate, (size_t)I, m, I, &w_dn, &xin, &ld_h, 1) != 0)
            matmul(st, st->gate, (size_t)I, m, I, &lw->w_down, xin, (size_t)H);
    }
    /* x += down projection, and with it the next layer's attention norm
     * (one pass and one hand-off instead of two; if another device runs the
     * next layer, xn is simply not used) */
    const int next = last ? -1 : layer + 1;
    add_rmsnorm_rows(st, fw, st->xn, next >= 0 ? st->xn : NULL, next >= 0 ? fw->layers[next].attn : NULL, T);
    st->xn_layer = next;
}

void qe_fwd_end(qe_fwd_state *st, const qe_fwd_weights *fw, float *out) {
    const int H = fw->cfg->hidden_size;
    const float eps = (float)fw->cfg->rms_norm_eps;
    /* The final norm only for the pooled rows: the others are never read. */
    for (int s = 0; s < st->n_seq; s++) {
        int r = st->compacted ? s : st->seq_off[s + 1] - 1;
        qe_op_rmsnorm_rows(st->x + (size_t)r * H, (size_t)H, out + (size_t)s * H, (size_t)H, 0, 1, H,
                           fw->final_norm, eps);
    }
}
