/* qembed_model: open (resolve, config, checkpoint, tokenizer, placement,
 * weights), info and free. The warm-up is load.c's. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/params.h"
#include "embed/embed.h"
#include "model/gguf.h"
#include "model/resolve.h"
#include "model/segments.h"

#define QE_DEFAULT_MAX_TOKENS 8192

qembed_model_params qe_model_defaults(void) {
    qembed_model_params p;
    memset(&p, 0, sizeof p);
    p.compute_units = QEMBED_UNITS_ALL;
    p.n_threads = 0;
    p.max_batch_tokens = 16384;
    p.max_tokens = 0;
    p.exact = 0;
    p.warmup = 0;
    p.log_fn = NULL;
    p.log_user = NULL;
    p.log_level = QEMBED_LOG_INFO;
    return p;
}

/* A checkpoint is synthetic when a synth_manifest.json beside it says so (our
 * generator and the shared fixtures write one): a JSON object, unless it
 * states "synthetic": false. */
static int read_synthetic(const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/synth_manifest.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    int syn = 0;
    if (j && cJSON_IsObject(j)) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "synthetic");
        syn = !(s && cJSON_IsFalse(s));
    } else {
        syn = 1; /* the file exists: its writer meant random weights */
    }
    cJSON_Delete(j);
    return syn;
}

static uint64_t tensor_elems(const qe_tensor *t) {
    return t->ndim == 2 ? (uint64_t)t->shape[0] * (uint64_t)t->shape[1] : (uint64_t)t->shape[0];
}

static void count_params(qembed_model *m) {
    const qe_tensor *all[2] = {&m->w.embed, &m->w.final_norm};
    uint64_t n = 0, b = 0;
    for (int i = 0; i < 2; i++) {
        n += tensor_elems(all[i]);
        b += qe_dtype_bytes(all[i]->dtype, tensor_elems(all[i]));
    }
    for (int l = 0; l < m->w.n_layers; l++) {
        const qe_layer_weights *lw = &m->w.layers[l];
        const qe_tensor *ts[] = {&lw->attn_norm, &lw->wq,     &lw->wk,     &lw->wv,
                                 &lw->wo,        &lw->q_norm, &lw->k_norm, &lw->ffn_norm,
                                 &lw->w_gate,    &lw->w_up,   &lw->w_down};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
            n += tensor_elems(ts[i]);
            b += qe_dtype_bytes(ts[i]->dtype, tensor_elems(ts[i]));
        }
    }
    m->n_params = n;
    m->weights_bytes = b;
}

/* Does the tokenizer's post-processor append <|endoftext|>? Asked of the
 * tokenizer itself rather than parsed from tokenizer.json, so the answer is
 * the one encode will give. */
static qembed_status probe_eos(qembed_model *m, qembed_error *err) {
    m->eos_id = qembed_tokenizer_token_to_id(m->tok, "<|endoftext|>");
    QE_FAIL_IF(m->eos_id < 0, err, QEMBED_ERR_MODEL_FORMAT,
               "%s/tokenizer.json: no <|endoftext|> token (Qwen3-Embedding appends it to every input)",
               m->resolved);
    QE_FAIL_IF(m->eos_id >= m->cfg.vocab_size, err, QEMBED_ERR_MODEL_FORMAT,
               "%s/tokenizer.json: <|endoftext|> has id %d, outside the model's vocab_size %d", m->resolved,
               m->eos_id, m->cfg.vocab_size);
    qembed_encode_options o = qembed_encode_default_options();
    o.add_special_tokens = 1;
    int32_t *ids = NULL;
    size_t n = 0;
    QE_TRY(qembed_tokenizer_encode(m->tok, "a", 1, &o, &ids, &n, err));
    m->tokenizer_appends = n >= 1 && ids[n - 1] == m->eos_id;
    qembed_free(ids);
    return QEMBED_OK;
}

/* The largest layer's bytes as stored: the checkpoint's tensors named
 * "[model.]layers.N." summed per N (headers only, no weight page read);
 * 0 when there are none. */
static uint64_t largest_layer_bytes(const qe_checkpoint *ck, int n_layers) {
    uint64_t *sum = calloc(n_layers > 0 ? (size_t)n_layers : 1, sizeof *sum), best = 0;
    if (!sum) return 0;
    for (size_t i = 0; i < qe_checkpoint_n_tensors(ck); i++) {
        const qe_tensor *t = qe_checkpoint_tensor(ck, i);
        const char *nm = t->name;
        if (!strncmp(nm, "model.", 6)) nm += 6;
        char *end;
        if (strncmp(nm, "layers.", 7) != 0) continue;
        long l = strtol(nm + 7, &end, 10);
        if (end == nm + 7 || *end != '.' || l < 0 || l >= n_layers) continue;
        sum[l] += qe_tensor_bytes(t);
        if (sum[l] > best) best = sum[l];
    }
    free(sum);
    return best;
}

static qembed_status plan_placement(qembed_model *m, qembed_error *err) {
    /* The planner (src/plan) decides from config sizes and device budgets
     * alone; the embedding is counted in its stored dtype, every layer as the
     * largest layer's real bytes (a GGUF may mix block types across layers). */
    const qe_tensor *e = qe_checkpoint_find(m->ck, "embed_tokens.weight");
    qe_dtype dt = e ? e->dtype : m->cfg.torch_dtype;
    uint64_t lb = largest_layer_bytes(m->ck, m->cfg.n_layers);
    if (lb == 0) lb = qe_layer_bytes(&m->cfg, dt);
    qembed_model_params p = m->params;
    /* A context plans for at least one input of max_tokens (ctx.c). */
    if (p.max_batch_tokens < m->max_tokens) p.max_batch_tokens = m->max_tokens;
    QE_TRY(qe_devices_discover(&p, &m->log, &m->devs, err));
    QE_TRY(qe_plan_make_sized(&m->cfg, dt, lb, &m->devs, &p, &m->log, &m->plan, err));
    m->placement = strdup(m->plan.table);
    QE_FAIL_IF(!m->placement, err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory");
    return QEMBED_OK;
}

/* Each segment's backend takes its layers (uploads them to its device). A
 * device that fails here (allocation, a shader that does not build, a lost
 * device) is the documented fallback case: WARN, and the segment runs on the
 * CPU backend, whose weights are the mapped checkpoint. Decided at load,
 * before any input is embedded. */
static qembed_status load_segments_on(qembed_model *m, qe_threadpool **pool, qembed_error *err) {
    for (int i = 0; i < m->plan.n_segments; i++) {
        const qe_plan_segment *sg = &m->plan.seg[i];
        const qe_device *d = &m->devs.dev[sg->device];
        const qe_backend *be = d->backend ? d->backend : &qe_backend_cpu;
        void *st = NULL;
        qembed_error e;
        memset(&e, 0, sizeof e);
        qembed_status s = be->seg_load(d, &m->fw, sg->first_layer, sg->end_layer, pool, &m->log, &st, &e);
        if (s != QEMBED_OK && be != &qe_backend_cpu) {
            QE_WARN(&m->log, "%s could not take layers %d-%d (%s); falling back: they run on the cpu",
                    d->name, sg->first_layer, sg->end_layer - 1, e.message);
            char line[QEMBED_ERROR_MESSAGE_MAX + 200];
            snprintf(line, sizeof line, "  fallback: layers %d-%d run on the cpu: %s failed: %s\n",
                     sg->first_layer, sg->end_layer - 1, d->name, e.message);
            size_t n = strlen(m->placement), add = strlen(line);
            char *grown = realloc(m->placement, n + add + 1);
            QE_FAIL_IF(!grown, err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory");
            memcpy(grown + n, line, add + 1);
            m->placement = grown;
            be = &qe_backend_cpu;
            s = be->seg_load(d, &m->fw, sg->first_layer, sg->end_layer, pool, &m->log, &st, &e);
        }
        if (s != QEMBED_OK) {
            if (err) *err = e;
            return s;
        }
        m->seg_backend[i] = be;
        m->seg_state[i] = st;
    }
    return QEMBED_OK;
}

/* The segments share one pool of CPU threads for their loading (packing),
 * created by the first that needs it and freed once all are loaded. */
static qembed_status load_segments(qembed_model *m, qembed_error *err) {
    qe_threadpool *pool = NULL;
    qembed_status s = load_segments_on(m, &pool, err);
    qe_threadpool_free(pool);
    return s;
}

static qembed_status load(qembed_model *m, const char *path, qembed_error *err) {
    const qembed_model_params *p = &m->params;
    /* A .gguf file, or a folder holding exactly one, is a whole model:
     * config from its metadata, tensors from its data region (gguf.c). */
    char gguf[1024];
    qembed_status gst;
    int is_gguf = qe_gguf_locate(path, gguf, sizeof gguf, err, &gst);
    QE_TRY(gst);
    char file[1200];
    if (is_gguf) {
        snprintf(m->resolved, sizeof m->resolved, "%s", gguf);
        snprintf(file, sizeof file, "%s", gguf);
        QE_TRY(qe_gguf_open(gguf, &m->ck, &m->cfg, err));
    } else {
        QE_TRY(qe_resolve_model_path(path, m->resolved, sizeof m->resolved, err));
        snprintf(file, sizeof file, "%s/config.json", m->resolved);
        QE_TRY(qe_config_load(file, &m->cfg, err));
    }

    size_t cap = QE_DEFAULT_MAX_TOKENS;
    if ((size_t)m->cfg.max_position_embeddings < cap) cap = (size_t)m->cfg.max_position_embeddings;
    if (p->max_tokens) {
        QE_FAIL_IF(p->max_tokens > (size_t)m->cfg.max_position_embeddings, err, QEMBED_ERR_INVALID_ARGUMENT,
                   "max_tokens %zu exceeds the model's max_position_embeddings %d (%s)", p->max_tokens,
                   m->cfg.max_position_embeddings, file);
        cap = p->max_tokens;
    }
    m->max_tokens = cap;
    QE_FAIL_IF(p->max_batch_tokens > (size_t)1 << 24, err, QEMBED_ERR_INVALID_ARGUMENT,
               "max_batch_tokens %zu is too large (at most 16777216)", p->max_batch_tokens);

    /* tokenizer: a directory holding tokenizer.json (and tokenizer_config.json);
     * for a GGUF, its own vocabulary (tokenizer.ggml.*) */
    QE_TRY(qembed_tokenizer_load(m->resolved, &m->tok, err));
    QE_TRY(probe_eos(m, err));
    if (!is_gguf) m->synthetic = read_synthetic(m->resolved);

    /* A split directory (qembed split) is validated segment by segment
     * (order, ranges, sizes, SHA-256) before any tensor is used. */
    if (is_gguf)
        ;
    else if (qe_segments_is_split_dir(m->resolved))
        QE_TRY(qe_segments_open(m->resolved, !p->no_verify, &m->log, &m->ck, NULL, err));
    else
        QE_TRY(qe_checkpoint_open_dir(m->resolved, &m->ck, err));

    /* ---- plan placement before binding weights ----
     * Nothing has touched a weight page yet: the placement decides which
     * device holds which layers, from config sizes alone. */
    QE_TRY(plan_placement(m, err));

    QE_TRY(qe_weights_bind(m->ck, &m->cfg, &m->w, err));
    m->weights_bound = 1;
    QE_TRY(qe_fwd_weights_init(&m->fw, &m->cfg, &m->w, err));
    m->fw.exact = p->exact; /* the CPU segments pack their matrices for bf16 mode only */
    count_params(m);
    return load_segments(m, err);
}

/* qembed_model_load but the warm-up and the closing log lines: load.c adds
 * them on top of a context, so that this file depends on neither ctx.c nor
 * pipeline.c. On failure *out is NULL and nothing is left allocated. */
qembed_status qe_model_open(const char *path, const qembed_model_params *params, qembed_model **out,
                            qembed_error *err) {
    QE_FAIL_IF(!out, err, QEMBED_ERR_INVALID_ARGUMENT, "qembed_model_load: out is NULL");
    *out = NULL;
    QE_FAIL_IF(!path || !*path, err, QEMBED_ERR_INVALID_ARGUMENT,
               "qembed_model_load: no model path or repo id given");
    static const size_t sizes[] = {QE_SIZE_UPTO(qembed_model_params, no_verify), sizeof(qembed_model_params)};
    qembed_model_params mp = qe_model_defaults();
    QE_TRY(qe_params_copy(&mp, sizeof mp, params, sizes, 2, "qembed_model_params", err));
    qembed_model *m = calloc(1, sizeof *m);
    QE_FAIL_IF(!m, err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory");
    m->params = mp;
    if (m->params.max_batch_tokens == 0) m->params.max_batch_tokens = 16384;
    m->log.fn = m->params.log_fn;
    m->log.user = m->params.log_user;
    m->log.min_level = m->params.log_level;
    snprintf(m->name, sizeof m->name, "%s", path);

    qembed_status s = load(m, path, err);
    if (s != QEMBED_OK) {
        qembed_model_free(m);
        return s;
    }
    *out = m;
    return QEMBED_OK;
}

void qembed_model_free(qembed_model *m) {
    if (!m) return;
    for (int i = 0; i < QE_MAX_SEGMENTS; i++)
        if (m->seg_backend[i]) m->seg_backend[i]->seg_free(m->seg_state[i]);
    qe_fwd_weights_free(&m->fw);
    if (m->weights_bound) qe_weights_release(&m->w);
    qe_checkpoint_free(m->ck);
    qembed_tokenizer_free(m->tok);
    free(m->placement);
    free(m);
}

void qembed_model_get_info(const qembed_model *m, qembed_model_info *info) {
    if (!info) return;
    memset(info, 0, sizeof *info);
    if (!m) return;
    snprintf(info->name, sizeof info->name, "%s", m->name);
    snprintf(info->resolved_path, sizeof info->resolved_path, "%s", m->resolved);
    snprintf(info->architecture, sizeof info->architecture, "%s", m->cfg.architecture);
    /* "bf16", "f16", "f32" or "q8_0", as the header documents */
    snprintf(info->dtype, sizeof info->dtype, "%s", qe_dtype_name(m->w.embed.dtype));
    for (char *d = info->dtype; *d; d++) *d = (char)tolower((unsigned char)*d);
    info->hidden_size = m->cfg.hidden_size;
    info->n_layers = m->cfg.n_layers;
    info->n_heads = m->cfg.n_heads;
    info->n_kv_heads = m->cfg.n_kv_heads;
    info->head_dim = m->cfg.head_dim;
    info->intermediate_size = m->cfg.intermediate_size;
    info->vocab_size = m->cfg.vocab_size;
    info->max_position_embeddings = m->cfg.max_position_embeddings;
    info->max_tokens = m->max_tokens;
    info->n_params = m->n_params;
    info->weights_bytes = m->weights_bytes;
    info->synthetic = m->synthetic;
}

const qembed_tokenizer *qembed_model_tokenizer(const qembed_model *m) {
    return m ? m->tok : NULL;
}

const char *qembed_model_placement(const qembed_model *m) {
    return m && m->placement ? m->placement : "";
}
