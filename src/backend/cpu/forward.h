/* The Qwen3 forward pass on the CPU, for a PACKED batch (sequences of
 * different lengths one after another, no padding), run in three steps so
 * that a planner can run segments of layers on different devices:
 *
 *   qe_fwd_begin   token embeddings -> hidden state x (T, hidden)
 *   qe_fwd_layer   one decoder layer, x -> x (any device that holds x can run
 *                  layer l; the last layer keeps only each sequence's last row)
 *   qe_fwd_end     final RMSNorm of each sequence's last token -> (n_seq, hidden)
 *
 * The hidden state x is the only thing that crosses a segment boundary.
 * qe_fwd_weights is immutable and shared by every context of a model;
 * qe_fwd_state belongs to one context (one thread at a time) and is planned
 * once for `cap` tokens: nothing is allocated per pass. */
#ifndef QE_FORWARD_H
#define QE_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_amx.h"
#include "backend/cpu/matmul_q8p.h"
#include "common/error.h"
#include "model/config.h"
#include "model/weights.h"

typedef struct qe_layer_norms {
    const float *attn; /* (hidden) input_layernorm */
    const float *ffn;  /* (hidden) post_attention_layernorm */
    const float *q;    /* (head_dim) q_norm */
    const float *k;    /* (head_dim) k_norm */
} qe_layer_norms;

/* Which of a layer's packed matrices (the index into qe_fwd_packed.bf16 and
 * .q8 alike): qe_layer_matrices' order, gate and up packed as one. */
enum { QE_PK_Q, QE_PK_K, QE_PK_V, QE_PK_O, QE_PK_GU, QE_PK_DOWN, QE_PK_N };

/* One layer's matrices packed for AMX tiles, used instead of the mapped ones
 * at level amx: q, k, v, o; gate and up as one glu weight (the product
 * writes silu(gate) * up); down. bf16 weights (matmul_amx.h, bf16 mode
 * only) or Q8_0 weights (matmul_q8p.h, every mode: their activations are
 * int8 in every mode). */
typedef struct qe_fwd_packed {
    int ready;
    int is_q8;              /* 1: the Q8_0 form (q8[]) holds the layer; 0: the bf16 form (bf16[]) */
    qe_amx_w bf16[QE_PK_N]; /* indexed by QE_PK_* */
    qe_q8p_w q8[QE_PK_N];   /* indexed by QE_PK_* */
} qe_fwd_packed;

typedef struct qe_fwd_weights {
    const qe_config *cfg;    /* borrowed from the model */
    const qe_weights *w;     /* borrowed from the model */
    float *norm_data;        /* every norm vector widened to f32 (small), owned */
    qe_layer_norms *layers;  /* (n_layers), owned */
    const float *final_norm; /* (hidden), inside norm_data */
    int exact;               /* the model runs exact mode only: nothing to pack (set by the model) */
    qe_fwd_packed *packed;   /* (n_layers), owned; an entry is filled by qe_fwd_pack_layers */
} qe_fwd_weights;

/* Widens the norm weights of bound weights `w` to f32. Fails on allocation only. */
qembed_status qe_fwd_weights_init(qe_fwd_weights *fw, const qe_config *cfg, const qe_weights *w,
                                  qembed_error *err);
void qe_fwd_weights_free(qe_fwd_weights *fw);

/* Bytes qe_fwd_pack_layers would allocate for layers [first, end), and in
 * *stored the bytes of the same matrices as mapped; 0 when those layers
 * cannot be packed (not every matrix bf16, or not every one Q8_0; a layer
 * not bound). */
uint64_t qe_fwd_packed_bytes(const qe_fwd_weights *fw, int first, int end, uint64_t *stored);
/* Packs the matrices of layers [first, end) for AMX tiles, the layers in
 * parallel on `pool`, and drops the mapped pages they came from (the
 * checkpoint maps every tensor read-only from its file, so a page read
 * again later, by another mode or device, comes back from the file): the
 * packed copy replaces them in memory rather than adding to them. 0 done,
 * -1 out of memory (nothing stays packed). Not thread-safe against forward
 * passes on those layers: called at load, before any context runs. */
int qe_fwd_pack_layers(const qe_fwd_weights *fw, int first, int end, qe_threadpool *pool);
/* The matrices' type of layers [first, end) when they can be packed: QE_BF16
 * or QE_Q8_0 (every matrix of every layer that type), else -1. */
int qe_fwd_pack_dtype(const qe_fwd_weights *fw, int first, int end);

typedef struct qe_fwd_state {
    int cap;             /* most tokens in one pass (sum over the batch's sequences) */
    int mlp_rows;        /* rows per MLP chunk */
    qe_threadpool *pool; /* borrowed from the context */
    qe_isa isa;
    qe_mm_mode mode;
    /* activations, planned for cap tokens */
    float *x;            /* (cap, hidden) residual stream */
    float *xn;           /* (cap, hidden) normed input of a block; also the o/down output */
    float *q;            /* (cap, n_heads*head_dim) queries, then the attention output */
    float *k;            /* (cap, n_kv_heads*head_dim) */
    float *v;            /* (cap, n_kv_heads*head_dim) */
    float *gate;         /* (mlp_rows, intermediate) */
    float *up;           /* (mlp_rows, intermediate) */
    float *rope_cos;     /* (cap, head_dim/2) */
    float *rope_sin;     /* (cap, head_dim/2) */
    float *attn_scratch; /* per pool thread */
    int *pos;            /* (cap) position of each row within its sequence */
    int *seq_off;        /* (cap+1) current batch's row offsets */
    int *tile_off;       /* (cap+1) attention scratch */
    /* the batch in flight */
    int n_seq;
    int n_tok;
    int rows;      /* rows of x in use: n_tok, or n_seq after the last layer */
    int compacted; /* 1 once the last layer kept only the last rows */
    int xn_layer;  /* xn already holds this layer's attention-normed x (the previous
                    * layer's last add computed it in the same pass); -1: none */
} qe_fwd_state;

qembed_status qe_fwd_state_init(qe_fwd_state *st, const qe_fwd_weights *fw, int cap, qe_threadpool *pool,
                                qe_mm_mode mode, qembed_error *err);
void qe_fwd_state_free(qe_fwd_state *st);

/* Bytes qe_fwd_state_init allocates for `cap` tokens (for memory planning). */
uint64_t qe_fwd_state_bytes(const qe_config *cfg, int cap, int n_threads);

/* ids: (sum of lens) token ids, all in [0, vocab); lens: n_seq lengths, each
 * >= 1, summing to at most cap (the caller checks). */
void qe_fwd_begin(qe_fwd_state *st, const qe_fwd_weights *fw, const int32_t *ids, const size_t *lens,
                  int n_seq);
void qe_fwd_layer(qe_fwd_state *st, const qe_fwd_weights *fw, int layer);
/* out: (n_seq, hidden), the final-normed last-token state of each sequence
 * (not L2-normalised). */
void qe_fwd_end(qe_fwd_state *st, const qe_fwd_weights *fw, float *out);

#endif
