/* The model's weights bound by role, each checked against config.json for
 * name, dtype and shape. Views into the checkpoint's mappings. */
#ifndef QE_WEIGHTS_H
#define QE_WEIGHTS_H

#include "model/checkpoint.h"
#include "model/config.h"

typedef struct qe_layer_weights {
    qe_tensor attn_norm; /* (hidden) input_layernorm */
    qe_tensor wq;        /* (n_heads*head_dim, hidden) */
    qe_tensor wk;        /* (n_kv_heads*head_dim, hidden) */
    qe_tensor wv;        /* (n_kv_heads*head_dim, hidden) */
    qe_tensor wo;        /* (hidden, n_heads*head_dim) */
    qe_tensor q_norm;    /* (head_dim) */
    qe_tensor k_norm;    /* (head_dim) */
    qe_tensor ffn_norm;  /* (hidden) post_attention_layernorm */
    qe_tensor w_gate;    /* (intermediate, hidden) */
    qe_tensor w_up;      /* (intermediate, hidden) */
    qe_tensor w_down;    /* (hidden, intermediate) */
} qe_layer_weights;

/* A layer's seven matrices, always in this order: q, k, v, o, gate, up, down
 * (the loops that treat every matrix alike: packing, sizes, uploads). */
enum { QE_LAYER_MATRICES = 7 };
static inline void qe_layer_matrices(const qe_layer_weights *lw, const qe_tensor *m[QE_LAYER_MATRICES]) {
    m[0] = &lw->wq;
    m[1] = &lw->wk;
    m[2] = &lw->wv;
    m[3] = &lw->wo;
    m[4] = &lw->w_gate;
    m[5] = &lw->w_up;
    m[6] = &lw->w_down;
}

typedef struct qe_weights {
    qe_tensor embed;          /* (vocab, hidden) embed_tokens */
    qe_tensor final_norm;     /* (hidden) norm */
    qe_layer_weights *layers; /* n_layers */
    int n_layers;
} qe_weights;

/* Binds and validates every tensor for layers [first, last) (all layers:
 * 0, n_layers). Unknown extra tensors (lm_head) are ignored. */
qembed_status qe_weights_bind(const qe_checkpoint *ck, const qe_config *cfg, qe_weights *w,
                              qembed_error *err);
void qe_weights_release(qe_weights *w);

/* Bytes of one layer's weights in their stored types. */
uint64_t qe_layer_bytes(const qe_config *cfg, qe_dtype dt);

/* ---- additions (model loading) ---- */

/* What qe_weights_bind_range binds besides the layers. */
#define QE_BIND_EMBED 1u      /* embed_tokens */
#define QE_BIND_FINAL_NORM 2u /* norm */

/* Binds layers [first, last) (the others stay zeroed, data NULL) and, per
 * flags, the embedding and the final norm: for a segment of a split model.
 * w->layers always has cfg->n_layers entries. Also refuses a checkpoint with
 * tensors of a layer >= num_hidden_layers (config and weights disagree). */
qembed_status qe_weights_bind_range(const qe_checkpoint *ck, const qe_config *cfg, int first, int last,
                                    unsigned flags, qe_weights *w, qembed_error *err);

/* Elements of one layer (all 11 tensors). */
uint64_t qe_layer_elems(const qe_config *cfg);
/* Bytes of one bound layer in the dtypes actually stored (mixed dtypes ok). */
uint64_t qe_layer_bytes_bound(const qe_layer_weights *L);
/* numel x dtype size; 0 for an unbound tensor (data NULL). */
uint64_t qe_tensor_bytes(const qe_tensor *t);
/* embed + final norm + all layers (tied: no lm_head). */
uint64_t qe_model_n_params(const qe_config *cfg);

#endif
