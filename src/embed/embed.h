/* The library's model and context handles (internal layout).
 *
 * qembed_model is immutable after qembed_model_load: config, the checkpoint's
 * mappings, the bound weights, the tokenizer, the placement text and the
 * logger. Any number of threads may share it.
 * qembed_ctx is one worker's state: the thread pool, the activation buffers
 * planned once for max_batch_tokens, the batch staging buffers and an
 * inference counter. One thread at a time.
 *
 * The folder's files depend one way: model.c (the model) <- ctx.c (a
 * context on a model) <- pipeline.c (embedding through a context) <- load.c
 * (qembed_model_load: open, then warm up through a context). */
#ifndef QE_EMBED_H
#define QE_EMBED_H

#include <stdint.h>

#include "backend/backend.h"
#include "backend/cpu/forward.h"
#include "common/log.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/weights.h"
#include "plan/plan.h"

/* Most sequences in one forward pass (bounds the pooled-output buffer; a pass
 * of this many sequences already fills the matrix units). */
#define QE_MAX_SEQ_PER_PASS 512

struct qembed_model {
    qembed_model_params params;
    qe_logger log;
    qe_config cfg;
    qe_checkpoint *ck;
    qe_weights w;
    int weights_bound;
    qe_fwd_weights fw;
    qembed_tokenizer *tok;
    char *placement; /* one line per segment */
    qe_plan plan;    /* which device runs which layers (src/plan) */
    qe_devices devs; /* the devices the plan was made from */
    /* one backend and its model-level state (uploaded weights) per planned
     * segment; a segment whose device failed to load runs the CPU backend */
    const qe_backend *seg_backend[QE_MAX_SEGMENTS];
    void *seg_state[QE_MAX_SEGMENTS];
    size_t max_tokens;     /* effective default input limit */
    int32_t eos_id;        /* <|endoftext|> */
    int tokenizer_appends; /* 1: the tokenizer's post-processor appends eos_id itself */
    int synthetic;
    uint64_t n_params;
    uint64_t weights_bytes;
    char name[256];
    char resolved[1024];
};

struct qembed_ctx {
    const qembed_model *model;
    qe_threadpool *pool;
    qe_fwd_state st; /* the CPU state: embedding, final norm, the hand-off buffer, CPU layers */
    const qe_backend *seg_backend[QE_MAX_SEGMENTS]; /* per segment; CPU after a fallback */
    void *seg_work[QE_MAX_SEGMENTS];                /* per segment workspace (backend's) */
    int cap;                                        /* tokens per forward pass */
    int32_t *ids;                                   /* (cap) the pass's packed ids */
    size_t lens[QE_MAX_SEQ_PER_PASS];
    float *pooled; /* (QE_MAX_SEQ_PER_PASS, hidden) */
    uint64_t n_inference;
};

/* Runs one forward pass over n_seq packed sequences (ids: sum of lens) and
 * writes each sequence's final-normed last-token state to ctx->pooled.
 * Logs "inference #N completed in X ms (batch=B, tokens=T)". */
void qe_ctx_forward(qembed_ctx *ctx, const int32_t *ids, const size_t *lens, int n_seq);

/* qembed_model_load without the warm-up and the closing log lines (model.c;
 * load.c adds them). */
qembed_status qe_model_open(const char *path, const qembed_model_params *params, qembed_model **out,
                            qembed_error *err);
/* The library's defaults (qembed_params_init, params.c). */
qembed_model_params qe_model_defaults(void);
/* qembed_model_quantize with the encoding on n_threads threads (<= 0: every
 * online core, as qembed_model_quantize does); the file is the same for any
 * n_threads (quantize.c). */
qembed_status qe_model_quantize(const char *model, const char *out, const char *type, int n_threads,
                                qembed_error *err);
qembed_ctx_params qe_ctx_defaults(void);
qembed_embed_options qe_embed_defaults(void);

#endif
