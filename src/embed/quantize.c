/* qembed_model_quantize: writes any model qembed loads as one GGUF v3 file
 * (alignment 32) that qembed and llama.cpp load: qwen3 metadata, the
 * tokenizer as tokenizer.ggml.* (gpt2/qwen2, tokens, types, merges in rank
 * order, eos/padding ids, add_eos_token), and the tensors under llama.cpp's
 * names in the requested type. Norm vectors stay F32 (as llama.cpp writes
 * them); matrices take the type, or for q4_k_m, q5_k_m, q6_k, q4_0 and
 * q5_0 llama.cpp's per-tensor mixture (quant_mix.c) encoded by
 * quant_encode.c. Q8_0 is llama.cpp's: per 32 values, d = max|x| / 127
 * stored as f16, q = round(x / d). */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/dequant.h"
#include "embed/embed.h"
#include "embed/quant_encode.h"
#include "embed/quant_mix.h"
#include "model/gguf.h"
#include "tokenizer/tokenizer_internal.h"

typedef struct wr {
    FILE *f;
    int bad;
} wr;

static void put(wr *w, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, w->f) != n) w->bad = 1;
}
static void put_u32(wr *w, uint32_t v) {
    put(w, &v, 4);
} /* x86-64/aarch64: little-endian */
static void put_u64(wr *w, uint64_t v) {
    put(w, &v, 8);
}
static void put_str(wr *w, const char *s, size_t n) {
    put_u64(w, n);
    put(w, s, n);
}
static void kv_str(wr *w, const char *k, const char *v) {
    put_str(w, k, strlen(k));
    put_u32(w, QE_GGUF_STRING);
    put_str(w, v, strlen(v));
}
static void kv_u32(wr *w, const char *k, uint32_t v) {
    put_str(w, k, strlen(k));
    put_u32(w, QE_GGUF_U32);
    put_u32(w, v);
}
static void kv_f32(wr *w, const char *k, float v) {
    put_str(w, k, strlen(k));
    put_u32(w, QE_GGUF_F32);
    put(w, &v, 4);
}
static void kv_bool(wr *w, const char *k, int v) {
    put_str(w, k, strlen(k));
    put_u32(w, QE_GGUF_BOOL);
    uint8_t b = (uint8_t)(v != 0);
    put(w, &b, 1);
}

typedef struct wt {
    char name[96];
    const qe_tensor *t;
    uint32_t type;
    uint64_t bytes, offset;
} wt;

/* Q8_0 as llama.cpp makes it: per 32 values d = max|x| / 127 (f16),
 * q = round(x / d); n a multiple of 32. */
static void enc_q8_0(const float *v, size_t n, uint8_t *out) {
    for (size_t b = 0; b < n / 32; b++, v += 32, out += 34) {
        float amax = 0;
        for (int k = 0; k < 32; k++)
            if (fabsf(v[k]) > amax) amax = fabsf(v[k]);
        float d = amax / 127.f, id = d ? 1.f / d : 0.f;
        uint16_t dh = qe_f32_to_f16(d);
        memcpy(out, &dh, 2);
        for (int k = 0; k < 32; k++) out[2 + k] = (uint8_t)(int8_t)lroundf(v[k] * id);
    }
}

/* Encoding runs on a thread pool, a tensor at a time in chunks of rows: the
 * chunk's rows are split between the threads, each encoding its rows into
 * their place in the chunk's buffer, then the chunk is written. A row's
 * encoding depends on that row alone, so the file is byte-identical for any
 * number of threads (model.gguf compares 1 and 2). A chunk is at most
 * ENC_CHUNK bytes of output (a row more when one row is larger). */
#define ENC_CHUNK ((size_t)32 << 20)

typedef struct enc_job {
    const wt *x;
    qe_dtype bt;   /* the block type for qe_quant_row, or QE_F32: encoded here */
    size_t cols;   /* values per row */
    uint64_t sb;   /* source bytes per row */
    size_t ob;     /* encoded bytes per row */
    size_t r0, nr; /* this chunk: rows [r0, r0 + nr) */
    uint8_t *buf;  /* (nr, ob) */
    float **row;   /* per pool thread: (cols) f32 */
    int n_tasks;
    atomic_int bad; /* an encoder refused a row */
} enc_job;

/* Encoded bytes of one row of `cols` values in GGUF type x->type. */
static size_t row_bytes(const wt *x, qe_dtype bt, size_t cols) {
    if (bt != QE_F32) return (size_t)qe_dtype_bytes(bt, cols);
    if (x->type == QE_GGML_Q8_0) return cols / 32 * 34;
    return x->type == QE_GGML_F32 ? cols * 4 : cols * 2;
}

/* Task t of n: its share of the chunk's rows, each (any dtype qembed loads,
 * block types included) widened to f32 once, then encoded. */
static void enc_task(void *arg, int task, int thread) {
    enc_job *j = arg;
    const size_t a = j->nr * (size_t)task / (size_t)j->n_tasks,
                 b = j->nr * (size_t)(task + 1) / (size_t)j->n_tasks;
    float *row = j->row[thread];
    for (size_t r = a; r < b; r++) {
        const qe_tensor *t = j->x->t;
        uint8_t *out = j->buf + r * j->ob;
        qe_dequant_row(t->dtype, (const uint8_t *)t->data + (j->r0 + r) * j->sb, row, j->cols);
        if (j->bt != QE_F32) {
            if (qe_quant_row(j->bt, row, out, j->cols) != 0) atomic_store(&j->bad, 1);
        } else if (j->x->type == QE_GGML_Q8_0) {
            enc_q8_0(row, j->cols, out);
        } else if (j->x->type == QE_GGML_F32) {
            memcpy(out, row, j->cols * 4);
        } else {
            for (size_t k = 0; k < j->cols; k++) {
                uint16_t h = j->x->type == QE_GGML_BF16 ? qe_f32_to_bf16(row[k]) : qe_f32_to_f16(row[k]);
                memcpy(out + 2 * k, &h, 2);
            }
        }
    }
}

/* Writes one tensor's data in its GGUF type, encoded on `pool`; row[thread]
 * is each pool thread's f32 row of at least the tensor's width. */
static void put_tensor(wr *w, const wt *x, qe_threadpool *pool, float **row) {
    const qe_tensor *t = x->t;
    const size_t rows = t->ndim == 2 ? (size_t)t->shape[0] : 1;
    const size_t cols = (size_t)t->shape[t->ndim == 2 ? 1 : 0];
    const qe_dtype bt = x->type == QE_GGML_Q4_0   ? QE_Q4_0
                        : x->type == QE_GGML_Q5_0 ? QE_Q5_0
                        : x->type == QE_GGML_Q4_K ? QE_Q4_K
                        : x->type == QE_GGML_Q5_K ? QE_Q5_K
                        : x->type == QE_GGML_Q6_K ? QE_Q6_K
                                                  : QE_F32; /* QE_F32: not one of the five */
    enc_job j = {.x = x, .bt = bt, .cols = cols, .sb = qe_dtype_bytes(t->dtype, cols), .row = row};
    j.ob = row_bytes(x, bt, cols);
    size_t chunk = j.ob ? ENC_CHUNK / j.ob : rows;
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = rows;
    j.buf = malloc(chunk * j.ob + 1);
    if (!j.buf) w->bad = 1;
    const int threads = qe_threadpool_size(pool);
    for (size_t r0 = 0; r0 < rows && !w->bad; r0 += chunk) {
        j.r0 = r0;
        j.nr = rows - r0 < chunk ? rows - r0 : chunk;
        /* a few tasks per thread: a thread slowed by another process does not hold the rest up */
        j.n_tasks = j.nr < (size_t)threads * 4 ? (int)j.nr : threads * 4;
        atomic_init(&j.bad, 0);
        qe_threadpool_run(pool, enc_task, &j, j.n_tasks);
        if (atomic_load(&j.bad)) w->bad = 1;
        put(w, j.buf, j.nr * j.ob);
    }
    free(j.buf);
}

static int cmp_rank(const void *a, const void *b) {
    uint64_t x = ((const qe_merge *)a)->val >> 32, y = ((const qe_merge *)b)->val >> 32;
    return x < y ? -1 : x > y;
}

static qembed_status write_gguf(const qembed_model *m, const char *out, qe_ftype ft, qe_threadpool *pool,
                                qembed_error *err) {
    const qe_config *c = &m->cfg;
    const qembed_tokenizer *tk = m->tok;
    size_t nt = 2 + (size_t)c->n_layers * 11;
    wt *ts = calloc(nt, sizeof *ts);
    qe_merge *mg = calloc(tk->merge_mask + 1, sizeof *mg);
    if (!ts || !mg) {
        free(ts);
        free(mg);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory");
    }
    static const char *const roles[] = {"attn_norm",   "attn_q",      "attn_k",      "attn_v",
                                        "attn_output", "attn_q_norm", "attn_k_norm", "ffn_norm",
                                        "ffn_gate",    "ffn_up",      "ffn_down"};
    size_t k = 0;
    snprintf(ts[k].name, sizeof ts[k].name, "token_embd.weight");
    ts[k++].t = &m->w.embed;
    snprintf(ts[k].name, sizeof ts[k].name, "output_norm.weight");
    ts[k++].t = &m->w.final_norm;
    for (int l = 0; l < c->n_layers; l++) {
        const qe_layer_weights *L = &m->w.layers[l];
        const qe_tensor *lt[] = {&L->attn_norm, &L->wq,       &L->wk,     &L->wv,   &L->wo,    &L->q_norm,
                                 &L->k_norm,    &L->ffn_norm, &L->w_gate, &L->w_up, &L->w_down};
        for (int r = 0; r < 11; r++) {
            snprintf(ts[k].name, sizeof ts[k].name, "blk.%d.%s.weight", l, roles[r]);
            ts[k++].t = lt[r];
        }
    }
    uint64_t off = 0;
    for (size_t i = 0; i < nt; i++) {
        const qe_tensor *t = ts[i].t;
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
        int il = -1;
        char role[32] = "token_embd";
        if (i >= 2) il = (int)(i - 2) / 11, snprintf(role, sizeof role, "%s", roles[(i - 2) % 11]);
        /* rows not in whole blocks fall back as llama.cpp's (quant_mix.c) */
        ts[i].type = t->ndim == 1 ? QE_GGML_F32 : qe_quant_mix_type(ft, role, il, c->n_layers, t->shape[1]);
        uint64_t blck = 1, bb = 4;
        qe_ggml_type_info(ts[i].type, &blck, &bb);
        ts[i].bytes = numel / blck * bb;
        ts[i].offset = off;
        off = (off + ts[i].bytes + 31) / 32 * 32;
    }
    /* merges in rank order */
    size_t nm = 0;
    for (size_t i = 0; i <= tk->merge_mask; i++)
        if (tk->merges[i].key != UINT64_MAX) mg[nm++] = tk->merges[i];
    qsort(mg, nm, sizeof *mg, cmp_rank);

    wr w = {fopen(out, "wb"), 0};
    if (!w.f) {
        free(ts);
        free(mg);
        QE_FAIL(err, QEMBED_ERR_IO, "%s: cannot create: %s", out, strerror(errno));
    }
    int file_type = (int)qe_ftype_gguf(ft);
    const uint64_t n_kv = 25; /* the kv_* and put_str(key) calls below */
    put(&w, "GGUF", 4);
    put_u32(&w, 3);
    put_u64(&w, nt);
    put_u64(&w, n_kv);
    kv_str(&w, "general.architecture", "qwen3");
    kv_str(&w, "general.name", "qembed quantize");
    kv_u32(&w, "general.alignment", 32);
    kv_u32(&w, "general.file_type", (uint32_t)file_type);
    kv_u32(&w, "general.quantization_version", 2); /* ggml's block formats, as llama.cpp writes */
    kv_u32(&w, "qwen3.block_count", (uint32_t)c->n_layers);
    kv_u32(&w, "qwen3.context_length", (uint32_t)c->max_position_embeddings);
    kv_u32(&w, "qwen3.embedding_length", (uint32_t)c->hidden_size);
    kv_u32(&w, "qwen3.feed_forward_length", (uint32_t)c->intermediate_size);
    kv_u32(&w, "qwen3.attention.head_count", (uint32_t)c->n_heads);
    kv_u32(&w, "qwen3.attention.head_count_kv", (uint32_t)c->n_kv_heads);
    kv_u32(&w, "qwen3.attention.key_length", (uint32_t)c->head_dim);
    kv_u32(&w, "qwen3.attention.value_length", (uint32_t)c->head_dim);
    kv_f32(&w, "qwen3.attention.layer_norm_rms_epsilon", (float)c->rms_norm_eps);
    kv_f32(&w, "qwen3.rope.freq_base", (float)c->rope_theta);
    kv_u32(&w, "qwen3.pooling_type", 3); /* last token */
    kv_str(&w, "tokenizer.ggml.model", "gpt2");
    kv_str(&w, "tokenizer.ggml.pre", "qwen2");
    /* tokens: every id below n_ids; an id the tokenizer lacks is [PADn], unused */
    put_str(&w, "tokenizer.ggml.tokens", 21);
    put_u32(&w, QE_GGUF_ARRAY);
    put_u32(&w, QE_GGUF_STRING);
    put_u64(&w, tk->n_ids);
    for (size_t i = 0; i < tk->n_ids; i++) {
        if (tk->flags[i] & QE_TOK_PRESENT)
            put_str(&w, tk->str_pool + tk->str_off[i], tk->str_len[i]);
        else {
            char pad[32];
            int n = snprintf(pad, sizeof pad, "[PAD%zu]", i);
            put_str(&w, pad, (size_t)n);
        }
    }
    put_str(&w, "tokenizer.ggml.token_type", 25);
    put_u32(&w, QE_GGUF_ARRAY);
    put_u32(&w, QE_GGUF_I32);
    put_u64(&w, tk->n_ids);
    for (size_t i = 0; i < tk->n_ids; i++) {
        int32_t ty = qe_tok_gguf_type(tk, i); /* as llama.cpp's converter types it */
        put(&w, &ty, 4);
    }
    put_str(&w, "tokenizer.ggml.merges", 21);
    put_u32(&w, QE_GGUF_ARRAY);
    put_u32(&w, QE_GGUF_STRING);
    put_u64(&w, nm);
    for (size_t i = 0; i < nm; i++) {
        uint32_t a = (uint32_t)(mg[i].key >> 32), b = (uint32_t)mg[i].key;
        put_u64(&w, (uint64_t)tk->str_len[a] + 1 + tk->str_len[b]);
        put(&w, tk->str_pool + tk->str_off[a], tk->str_len[a]);
        put(&w, " ", 1);
        put(&w, tk->str_pool + tk->str_off[b], tk->str_len[b]);
    }
    kv_u32(&w, "tokenizer.ggml.eos_token_id", (uint32_t)m->eos_id);
    kv_u32(&w, "tokenizer.ggml.padding_token_id", (uint32_t)m->eos_id);
    kv_bool(&w, "tokenizer.ggml.add_eos_token", m->tokenizer_appends);
    kv_bool(&w, "tokenizer.ggml.add_bos_token", 0);
    for (size_t i = 0; i < nt; i++) {
        const qe_tensor *t = ts[i].t;
        put_str(&w, ts[i].name, strlen(ts[i].name));
        put_u32(&w, (uint32_t)t->ndim);
        /* ne[0] is the innermost (row length) */
        if (t->ndim == 2) {
            put_u64(&w, (uint64_t)t->shape[1]);
            put_u64(&w, (uint64_t)t->shape[0]);
        } else
            put_u64(&w, (uint64_t)t->shape[0]);
        put_u32(&w, ts[i].type);
        put_u64(&w, ts[i].offset);
    }
    static const uint8_t zeros[32];
    long pos = ftell(w.f);
    if (pos < 0)
        w.bad = 1;
    else
        put(&w, zeros, (size_t)((32 - pos % 32) % 32));
    /* each pool thread's f32 row, as wide as the widest tensor */
    size_t widest = 1;
    for (size_t i = 0; i < nt; i++) {
        size_t cols = (size_t)ts[i].t->shape[ts[i].t->ndim == 2 ? 1 : 0];
        if (cols > widest) widest = cols;
    }
    const int threads = qe_threadpool_size(pool);
    float **rows = calloc((size_t)threads, sizeof *rows);
    if (!rows) w.bad = 1;
    for (int i = 0; rows && i < threads; i++)
        if (!(rows[i] = malloc(widest * sizeof(float)))) w.bad = 1;
    uint64_t at = 0;
    for (size_t i = 0; i < nt && !w.bad; i++) {
        put(&w, zeros, (size_t)(ts[i].offset - at));
        put_tensor(&w, &ts[i], pool, rows);
        at = ts[i].offset + ts[i].bytes;
    }
    for (int i = 0; rows && i < threads; i++) free(rows[i]);
    free(rows);
    int e = errno;
    if (fclose(w.f) != 0) w.bad = 1;
    free(ts);
    free(mg);
    if (w.bad) {
        remove(out);
        QE_FAIL(err, QEMBED_ERR_IO, "%s: write failed: %s", out, strerror(e));
    }
    return QEMBED_OK;
}

qembed_status qembed_model_quantize(const char *model, const char *out, const char *type, qembed_error *err) {
    return qe_model_quantize(model, out, type, 0, err);
}

qembed_status qe_model_quantize(const char *model, const char *out, const char *type, int n_threads,
                                qembed_error *err) {
    QE_FAIL_IF(!model || !out || !type, err, QEMBED_ERR_INVALID_ARGUMENT,
               "qembed_model_quantize: model, out and type are required");
    qe_ftype gt;
    if (qe_ftype_parse(type, &gt) != 0)
        QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "quantize: type \"%s\"; expected " QE_FTYPE_NAMES, type);
    qembed_model_params p = qembed_model_default_params();
    p.log_level = QEMBED_LOG_WARN;
    qembed_model *m = NULL;
    p.n_threads = n_threads;
    p.exact = 1; /* no forward pass runs here: skip packing the matrices for AMX tiles at load */
    QE_TRY(qe_model_open(model, &p, &m, err));
    qe_threadpool *pool = qe_threadpool_create(n_threads);
    qembed_status st =
        pool ? write_gguf(m, out, gt, pool, err)
             : qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "cannot start a thread pool of %d threads", n_threads);
    qe_threadpool_free(pool);
    qembed_model_free(m);
    return st;
}
