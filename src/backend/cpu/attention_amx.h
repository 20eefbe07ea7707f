/* bf16-mode attention on AMX-BF16 tiles (attention_amx.c): one task of
 * qe_attention (attention.h), chosen there when args->bf16 is set, the level
 * is QE_ISA_AMX and the OS granted the tile state. Exact mode never runs it. */
#ifndef QE_ATTENTION_AMX_H
#define QE_ATTENTION_AMX_H

#include <stddef.h>

#include "backend/cpu/attention.h"

/* Query rows per task of the tile body. Why more than QE_ATTN_TILE_Q: each
 * task packs (rounds, transposes) every key/value block it reads, and with
 * the products on tiles that packing was a third of the time at 128 rows
 * (perf, 4,096 tokens); 512 rows pack each block a quarter as often. The
 * scratch (~0.85 MiB per thread at head_dim 128, group 2) stays in L2. */
#define QE_ATTN_AMX_TILE_Q 512

/* 1 when the tile body can run on this CPU and OS (x86-64, AMX usable). */
int qe_attn_amx_usable(void);

/* Per-thread scratch of the tile body in floats (64-byte multiples). */
size_t qe_attn_amx_scratch_floats(int head_dim, int group);

/* Query rows [r0, r1) (within the sequence whose first packed row is
 * `base`) for every query head of kv head kvh, over keys [0, r1): writes
 * their attention result over their q. Q, K and V are rounded to bf16 (as
 * qe_f32_to_bf16), scores, softmax and the output accumulate in f32, the
 * probabilities are rounded to bf16 for the PV product. scratch:
 * qe_attn_amx_scratch_floats(head_dim, group) floats. */
void qe_attn_amx_task(const qe_attn_args *a, size_t base, int kvh, int r0, int r1, float *scratch);

#endif
