/* Binding checkpoint tensors to their roles in the Qwen3 forward pass, each
 * checked against config.json before any kernel reads it. */
#include "model/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void shape_text(const qe_tensor *t, char *buf, size_t n) {
    if (t->ndim == 0)
        snprintf(buf, n, "[]");
    else if (t->ndim == 1)
        snprintf(buf, n, "[%lld]", (long long)t->shape[0]);
    else
        snprintf(buf, n, "[%lld, %lld]", (long long)t->shape[0], (long long)t->shape[1]);
}

/* Finds `name` (with or without "model.") and checks its shape: rows x cols
 * for a matrix (cols < 0: a vector of `rows`). `what` says where the expected
 * shape comes from in config.json. */
static qembed_status bind_one(const qe_checkpoint *ck, const char *name, int64_t rows, int64_t cols,
                              const char *what, qe_tensor *dst, qembed_error *err) {
    const qe_tensor *t = qe_checkpoint_find(ck, name);
    /* Both spellings present: which one is meant is a guess; refuse. */
    char other[160];
    snprintf(other, sizeof other, "model.%s", name);
    const qe_tensor *u = qe_checkpoint_find(ck, other);
    if (t && u && t != u)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: tensor \"%s\" is present both with and without the \"model.\" prefix (in %s and %s)",
                qe_checkpoint_source(ck), name, qe_checkpoint_file_of(ck, t), qe_checkpoint_file_of(ck, u));
    if (!t)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: tensor \"%s\" is missing (looked for it with and without the \"model.\" prefix)",
                qe_checkpoint_source(ck), name);
    int want_nd = cols < 0 ? 1 : 2;
    if (t->ndim != want_nd || t->shape[0] != rows || (want_nd == 2 && t->shape[1] != cols)) {
        char found[64], want[64];
        shape_text(t, found, sizeof found);
        if (want_nd == 1)
            snprintf(want, sizeof want, "[%lld]", (long long)rows);
        else
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)rows, (long long)cols);
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: tensor \"%s\" has shape %s, expected %s (%s from config.json)",
                qe_checkpoint_file_of(ck, t), t->name, found, want, what);
    }
    /* dtype was checked when the header was read (BF16, F16 or F32 only);
     * mixed dtypes across tensors are fine: kernels dispatch per tensor. */
    *dst = *t;
    return QEMBED_OK;
}

/* Parses "layers.<i>." at the start of a (prefix-stripped) tensor name. */
static int layer_of(const char *name) {
    if (!strncmp(name, "model.", 6)) name += 6;
    if (strncmp(name, "layers.", 7) != 0) return -1;
    name += 7;
    long v = 0;
    int digits = 0;
    while (*name >= '0' && *name <= '9' && digits < 9) v = v * 10 + (*name++ - '0'), digits++;
    return (digits && *name == '.') ? (int)v : -1;
}

qembed_status qe_weights_bind_range(const qe_checkpoint *ck, const qe_config *cfg, int first, int last,
                                    unsigned flags, qe_weights *w, qembed_error *err) {
    if (!ck || !cfg || !w) QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "qe_weights_bind: missing argument");
    memset(w, 0, sizeof *w);
    if (first < 0 || last > cfg->n_layers || first > last)
        QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "qe_weights_bind: layer range [%d, %d) outside [0, %d)",
                first, last, cfg->n_layers);
    const int64_t H = cfg->hidden_size, D = cfg->head_dim, F = cfg->intermediate_size;
    const int64_t QD = (int64_t)cfg->n_heads * D, KD = (int64_t)cfg->n_kv_heads * D;

    /* A layer index at or beyond num_hidden_layers means config and
     * checkpoint disagree about the model's depth. */
    for (size_t i = 0; i < qe_checkpoint_n_tensors(ck); i++) {
        const qe_tensor *t = qe_checkpoint_tensor(ck, i);
        int l = layer_of(t->name);
        if (l >= cfg->n_layers)
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                    "%s: tensor \"%s\" belongs to layer %d, but config.json has num_hidden_layers = %d",
                    qe_checkpoint_file_of(ck, t), t->name, l, cfg->n_layers);
    }

    w->layers = calloc((size_t)cfg->n_layers, sizeof *w->layers);
    if (!w->layers) QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "qe_weights_bind: out of memory");
    w->n_layers = cfg->n_layers;
    qembed_status st = QEMBED_OK;
    if (flags & QE_BIND_EMBED)
        st = bind_one(ck, "embed_tokens.weight", cfg->vocab_size, H, "vocab_size x hidden_size", &w->embed,
                      err);
    if (st == QEMBED_OK && (flags & QE_BIND_FINAL_NORM))
        st = bind_one(ck, "norm.weight", H, -1, "hidden_size", &w->final_norm, err);
    for (int l = first; l < last && st == QEMBED_OK; l++) {
        qe_layer_weights *L = &w->layers[l];
        const struct {
            const char *suffix;
            int64_t rows, cols;
            const char *what;
            qe_tensor *dst;
        } roles[] = {
            {"input_layernorm.weight", H, -1, "hidden_size", &L->attn_norm},
            {"self_attn.q_proj.weight", QD, H, "num_attention_heads*head_dim x hidden_size", &L->wq},
            {"self_attn.k_proj.weight", KD, H, "num_key_value_heads*head_dim x hidden_size", &L->wk},
            {"self_attn.v_proj.weight", KD, H, "num_key_value_heads*head_dim x hidden_size", &L->wv},
            {"self_attn.o_proj.weight", H, QD, "hidden_size x num_attention_heads*head_dim", &L->wo},
            {"self_attn.q_norm.weight", D, -1, "head_dim", &L->q_norm},
            {"self_attn.k_norm.weight", D, -1, "head_dim", &L->k_norm},
            {"post_attention_layernorm.weight", H, -1, "hidden_size", &L->ffn_norm},
            {"mlp.gate_proj.weight", F, H, "intermediate_size x hidden_size", &L->w_gate},
            {"mlp.up_proj.weight", F, H, "intermediate_size x hidden_size", &L->w_up},
            {"mlp.down_proj.weight", H, F, "hidden_size x intermediate_size", &L->w_down},
        };
        for (size_t r = 0; r < sizeof roles / sizeof roles[0] && st == QEMBED_OK; r++) {
            char name[128];
            snprintf(name, sizeof name, "layers.%d.%s", l, roles[r].suffix);
            st = bind_one(ck, name, roles[r].rows, roles[r].cols, roles[r].what, roles[r].dst, err);
        }
    }
    if (st != QEMBED_OK) qe_weights_release(w);
    return st;
}

qembed_status qe_weights_bind(const qe_checkpoint *ck, const qe_config *cfg, qe_weights *w,
                              qembed_error *err) {
    if (!cfg) QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "qe_weights_bind: no config");
    return qe_weights_bind_range(ck, cfg, 0, cfg->n_layers, QE_BIND_EMBED | QE_BIND_FINAL_NORM, w, err);
}

void qe_weights_release(qe_weights *w) {
    if (!w) return;
    free(w->layers);
    memset(w, 0, sizeof *w);
}

uint64_t qe_layer_elems(const qe_config *cfg) {
    const uint64_t H = (uint64_t)cfg->hidden_size, D = (uint64_t)cfg->head_dim,
                   F = (uint64_t)cfg->intermediate_size;
    const uint64_t QD = (uint64_t)cfg->n_heads * D, KD = (uint64_t)cfg->n_kv_heads * D;
    return 2 * H        /* input_layernorm, post_attention_layernorm */
           + QD * H     /* q_proj */
           + 2 * KD * H /* k_proj, v_proj */
           + H * QD     /* o_proj */
           + 2 * D      /* q_norm, k_norm */
           + 3 * F * H; /* gate, up, down */
}

uint64_t qe_layer_bytes(const qe_config *cfg, qe_dtype dt) {
    return cfg ? qe_dtype_bytes(dt, qe_layer_elems(cfg)) : 0;
}

uint64_t qe_layer_bytes_bound(const qe_layer_weights *L) {
    const qe_tensor *ts[] = {&L->attn_norm, &L->wq,       &L->wk,     &L->wv,   &L->wo,    &L->q_norm,
                             &L->k_norm,    &L->ffn_norm, &L->w_gate, &L->w_up, &L->w_down};
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) sum += qe_tensor_bytes(ts[i]);
    return sum;
}

uint64_t qe_tensor_bytes(const qe_tensor *t) {
    if (!t || !t->data) return 0;
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return qe_dtype_bytes(t->dtype, n);
}

uint64_t qe_model_n_params(const qe_config *cfg) {
    return (uint64_t)cfg->vocab_size * (uint64_t)cfg->hidden_size + (uint64_t)cfg->hidden_size +
           (uint64_t)cfg->n_layers * qe_layer_elems(cfg);
}
