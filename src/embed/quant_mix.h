/* Which ggml type each tensor gets in a file of a given file type: the
 * per-tensor mixture of llama.cpp's llama-quantize for the types qembed
 * writes (quant_mix.c). */
#ifndef QE_QUANT_MIX_H
#define QE_QUANT_MIX_H

#include <stdint.h>

typedef enum qe_ftype {
    QE_FT_F32,
    QE_FT_F16,
    QE_FT_BF16,
    QE_FT_Q8_0,
    QE_FT_Q4_0,
    QE_FT_Q5_0,
    QE_FT_Q4_K_M,
    QE_FT_Q5_K_M,
    QE_FT_Q6_K
} qe_ftype;

/* "q4_k_m" ... -> file type; 0 on success, -1 unknown. */
int qe_ftype_parse(const char *s, qe_ftype *out);
/* The spellings qe_ftype_parse takes, for messages. */
#define QE_FTYPE_NAMES "q8_0, q6_k, q5_k_m, q4_k_m, q5_0, q4_0, bf16, f16 or f32"
/* general.file_type (llama.cpp's llama_ftype numbering). */
uint32_t qe_ftype_gguf(qe_ftype ft);

/* ggml type id of the 2-D tensor `role` (llama.cpp's name between "blk.N."
 * and ".weight", or "token_embd") of layer il (-1 for token_embd) of
 * n_layers, with rows of ne0 elements. The file has no output.weight (the
 * embedding is the output, as llama.cpp treats tied models). */
uint32_t qe_quant_mix_type(qe_ftype ft, const char *role, int il, int n_layers, int64_t ne0);

#endif
