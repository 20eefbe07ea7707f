/* The model's shape and constants, from config.json. Nothing about one model
 * size is hard-coded: every size in the forward pass comes from here. */
#ifndef QE_CONFIG_H
#define QE_CONFIG_H

#include <stdbool.h>

#include "common/error.h"
#include "model/tensor.h"

typedef struct qe_config {
    char architecture[64]; /* "Qwen3ForCausalLM" or "Qwen3Model" */
    char model_type[32];   /* "qwen3" */
    int hidden_size;
    int n_layers;   /* num_hidden_layers */
    int n_heads;    /* num_attention_heads */
    int n_kv_heads; /* num_key_value_heads */
    int head_dim;   /* head_dim, else hidden_size / n_heads */
    int intermediate_size;
    int vocab_size;
    int max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    bool tie_word_embeddings;
    qe_dtype torch_dtype;
} qe_config;

/* Reads and validates config.json (path names the file). Errors name the file
 * and the field. */
qembed_status qe_config_load(const char *path, qe_config *cfg, qembed_error *err);

/* Same from JSON text already in memory (a split manifest embeds the config);
 * `origin` names where it came from, for messages. */
qembed_status qe_config_parse(const char *json, size_t len, const char *origin, qe_config *cfg,
                              qembed_error *err);

#endif
