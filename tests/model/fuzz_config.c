/* libFuzzer target: config.json parsing and validation on arbitrary bytes.
 * Accepted configs must satisfy the invariants the engine relies on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    qe_config cfg;
    qembed_error err;
    if (qe_config_parse(buf, size, "fuzz/config.json", &cfg, &err) == QEMBED_OK) {
        if (cfg.hidden_size < 1 || cfg.n_layers < 1 || cfg.n_heads < 1 || cfg.n_kv_heads < 1 ||
            cfg.n_heads % cfg.n_kv_heads != 0 || cfg.head_dim < 2 || cfg.head_dim % 2 != 0 ||
            cfg.intermediate_size < 1 || cfg.vocab_size < 1 || cfg.max_position_embeddings < 1 ||
            !(cfg.rms_norm_eps > 0) || !(cfg.rope_theta > 0))
            abort();
    }
    free(buf);
    return 0;
}
