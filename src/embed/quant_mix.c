/* The per-tensor type mixture of llama.cpp's quantizer (llama-quant.cpp,
 * llama_tensor_get_type, read at llama.cpp as vendored by Ollama f63eea3d27),
 * for the file types qembed writes, restated for Qwen3 (one expert, not
 * Falcon, no importance matrix, no output.weight):
 *  - token_embd, standing in for the output: Q6_K for every quantized type
 *    but Q8_0 (Q8_0 stays); Q8_0 when rows are not whole 256-blocks;
 *  - Q4_K_M: default Q4_K; attn_v and ffn_down Q6_K on the layers of
 *    use_more_bits (the first and last eighth, and every third between);
 *  - Q5_K_M: default Q5_K; the same two Q6_K on the same layers;
 *  - Q6_K, Q4_0, Q5_0, Q8_0: their type everywhere else;
 *  - a K-quant on rows that are not whole 256-blocks falls back as
 *    llama.cpp's: Q4_K -> Q5_0, Q5_K -> Q5_1 (which qembed does not write:
 *    Q5_0 here, a documented difference), Q6_K -> Q8_0; then F16 when rows
 *    are not whole 32-blocks either.
 * tests/model/test_gguf_kquant.c holds it to the layout of a Q4_K_M file
 * that llama.cpp's llama-quantize wrote from the same 0.6B-shape model. */
#include "embed/quant_mix.h"

#include <string.h>

#include "model/gguf.h"

int qe_ftype_parse(const char *s, qe_ftype *out) {
    static const struct {
        const char *name;
        qe_ftype ft;
    } t[] = {{"f32", QE_FT_F32},       {"f16", QE_FT_F16},       {"bf16", QE_FT_BF16},
             {"q8_0", QE_FT_Q8_0},     {"q4_0", QE_FT_Q4_0},     {"q5_0", QE_FT_Q5_0},
             {"q4_k_m", QE_FT_Q4_K_M}, {"q5_k_m", QE_FT_Q5_K_M}, {"q6_k", QE_FT_Q6_K}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(s, t[i].name)) {
            *out = t[i].ft;
            return 0;
        }
    return -1;
}

uint32_t qe_ftype_gguf(qe_ftype ft) {
    switch (ft) {
        case QE_FT_F32: return 0;
        case QE_FT_F16: return 1;
        case QE_FT_Q4_0: return 2;
        case QE_FT_Q8_0: return 7;
        case QE_FT_Q5_0: return 8;
        case QE_FT_Q4_K_M: return 15;
        case QE_FT_Q5_K_M: return 17;
        case QE_FT_Q6_K: return 18;
        case QE_FT_BF16: return 32;
    }
    return 0;
}

static int use_more_bits(int il, int n) {
    return il < n / 8 || il >= 7 * n / 8 || (il - n / 8) % 3 == 2;
}

uint32_t qe_quant_mix_type(qe_ftype ft, const char *role, int il, int n_layers, int64_t ne0) {
    uint32_t t;
    switch (ft) {
        case QE_FT_F32: return QE_GGML_F32;
        case QE_FT_F16: return QE_GGML_F16;
        case QE_FT_BF16: return QE_GGML_BF16;
        case QE_FT_Q8_0: t = QE_GGML_Q8_0; break;
        case QE_FT_Q4_0: t = QE_GGML_Q4_0; break;
        case QE_FT_Q5_0: t = QE_GGML_Q5_0; break;
        case QE_FT_Q4_K_M: t = QE_GGML_Q4_K; break;
        case QE_FT_Q5_K_M: t = QE_GGML_Q5_K; break;
        case QE_FT_Q6_K: t = QE_GGML_Q6_K; break;
        default: return QE_GGML_F16;
    }
    if (!strcmp(role, "token_embd")) {
        if (t != QE_GGML_Q8_0) t = ne0 % 256 ? QE_GGML_Q8_0 : QE_GGML_Q6_K;
    } else if ((ft == QE_FT_Q4_K_M || ft == QE_FT_Q5_K_M) &&
               (!strcmp(role, "attn_v") || !strcmp(role, "ffn_down")) && use_more_bits(il, n_layers)) {
        t = QE_GGML_Q6_K;
    }
    if ((t == QE_GGML_Q4_K || t == QE_GGML_Q5_K || t == QE_GGML_Q6_K) && ne0 % 256)
        t = t == QE_GGML_Q6_K ? QE_GGML_Q8_0 : QE_GGML_Q5_0;
    if (ne0 % 32) t = QE_GGML_F16;
    return t;
}
