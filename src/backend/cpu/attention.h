/* Grouped-query causal self-attention over a PACKED batch: the tokens of all
 * sequences lie one after another in the rows of q/k/v, and each sequence
 * attends only to its own earlier tokens (no padding, no mask tensor).
 *
 * Computed in tiles with an online softmax (flash-attention style): memory is
 * a few tiles per thread, linear in nothing, and an 8192-token input never
 * materialises an n x n score matrix. Scores and softmax in f32; in bf16 mode
 * the two products run in bf16: on AMX tiles (attention_amx.h), or with
 * vdpbf16ps at level avx512bf16 (attention_bf16.h). */
#ifndef QE_ATTENTION_H
#define QE_ATTENTION_H

#include <stddef.h>

#include "backend/cpu/kernels.h"

/* Query rows per task and keys per tile. 128 rows: each key/value tile is
 * gathered (from rows ldkv apart, in L3 or memory for long inputs) and packed
 * once per 128 x group query vectors (with 64 rows, gathering and packing
 * took about a fifth of the time on 2048 tokens; see attention.c). The f32 bodies' per-thread scratch is ~390 KiB at head_dim 128,
 * group 2 (qe_attn_scratch_floats), still inside a 512 KiB L2. */
#define QE_ATTN_TILE_Q 128
#define QE_ATTN_TILE_K 64

/* The micro-tile of the bodies in attention.c and attention_bf16.c: MR query
 * vectors x NR keys (or NR output columns). */
#define QE_ATTN_MR 6
#define QE_ATTN_NR 16

typedef struct qe_attn_args {
    float *q; /* (T, n_heads*head_dim), row stride ldq; RoPE applied. The output
                          replaces q in place: (T, n_heads*head_dim) attention result. */
    size_t ldq;
    const float *k; /* (T, n_kv_heads*head_dim), row stride ldkv; RoPE applied */
    const float *v; /* (T, n_kv_heads*head_dim), row stride ldkv */
    size_t ldkv;
    const int *seq_off; /* n_seq+1 row offsets: sequence s is rows [seq_off[s], seq_off[s+1]) */
    int n_seq;
    int n_heads, n_kv_heads, head_dim;
    int last_only;  /* 1: only each sequence's last row is computed (the last layer,
                          where only the pooled token matters); other rows are left as they are */
    int *tile_off;  /* scratch, n_seq+1 ints */
    float *scratch; /* qe_attn_scratch_floats(head_dim, group) floats per pool thread */
    qe_isa isa;     /* picks the inner-loop bodies (scalar, AVX2+FMA, AVX-512F, AVX512-BF16) */
    int bf16;       /* 1 (bf16 mode): q, k, v and the probabilities rounded to bf16 for
                          the products: at level QE_ISA_AMX with the tile state granted the
                          AMX-BF16 body (attention_amx.c), else at QE_ISA_AVX512_BF16 or
                          above the vdpbf16ps kernels (attention_bf16.c); below that, and
                          always when 0 (exact mode), the f32 bodies */
} qe_attn_args;

/* Per-thread scratch size in floats (enough for every body); group = n_heads / n_kv_heads. */
size_t qe_attn_scratch_floats(int head_dim, int group);

void qe_attention(qe_threadpool *pool, const qe_attn_args *a);

#endif
