/* A model loads and binds right.
 *   test_model_load SHARED_MODEL_DIR        the shared tiny model: its config, the bound
 *                                           tensors' shapes, dtypes and values
 *   test_model_load DIR PRESET              a generated preset (0.6b) loads, binds, and has
 *                                           the published model's size */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/sha256.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/weights.h"

#include "check.h"
#include "model_util.h"

/* ---- the shared tiny model loads, and what it binds is right ---- */

static void test_load(void) {
    qembed_error err = {0};
    qe_config cfg;
    char p[2048];
    path_join(p, sizeof p, g_shared, "config.json");
    qembed_status st = qe_config_load(p, &cfg, &err);
    CHECK(st == QEMBED_OK, "%s", err.message);
    CHECK(cfg.hidden_size == 64 && cfg.n_layers == 2 && cfg.n_heads == 4 && cfg.n_kv_heads == 2 &&
              cfg.head_dim == 16 && cfg.intermediate_size == 192 && cfg.vocab_size == 151669 &&
              cfg.max_position_embeddings == 32768 && cfg.tie_word_embeddings && cfg.torch_dtype == QE_BF16,
          "config values");
    CHECK(cfg.rms_norm_eps == 1e-6 && cfg.rope_theta == 1e6, "eps %g theta %g", cfg.rms_norm_eps,
          cfg.rope_theta);
    CHECK(!strcmp(cfg.architecture, "Qwen3ForCausalLM") && !strcmp(cfg.model_type, "qwen3"), "arch");

    qe_checkpoint *ck = NULL;
    st = qe_checkpoint_open_dir(g_shared, &ck, &err);
    CHECK(st == QEMBED_OK, "%s", err.message);
    if (st) return;
    CHECK(qe_checkpoint_n_tensors(ck) == 24, "n tensors %zu", qe_checkpoint_n_tensors(ck));
    /* both spellings find the same tensor */
    const qe_tensor *a = qe_checkpoint_find(ck, "layers.1.mlp.down_proj.weight");
    const qe_tensor *b = qe_checkpoint_find(ck, "model.layers.1.mlp.down_proj.weight");
    CHECK(a && a == b, "prefix lookup");
    CHECK(qe_checkpoint_find(ck, "lm_head.weight") == NULL, "no lm_head");
    CHECK(strstr(qe_checkpoint_file_of(ck, a), "model.safetensors") != NULL, "file_of");

    qe_weights w;
    st = qe_weights_bind(ck, &cfg, &w, &err);
    CHECK(st == QEMBED_OK, "%s", err.message);
    if (!st) {
        CHECK(w.embed.shape[0] == 151669 && w.embed.shape[1] == 64 && w.embed.dtype == QE_BF16, "embed");
        CHECK(w.layers[1].wk.shape[0] == 32 && w.layers[1].wk.shape[1] == 64, "wk shape");
        CHECK(w.layers[0].w_down.shape[0] == 64 && w.layers[0].w_down.shape[1] == 192, "w_down shape");
        CHECK(w.layers[1].q_norm.ndim == 1 && w.layers[1].q_norm.shape[0] == 16, "q_norm");
        /* views into the mapping, not copies: the embedding's first bytes are
         * the file's data region start (offset 0 in the header) */
        size_t n = 0;
        char *file = NULL;
        path_join(p, sizeof p, g_shared, "model.safetensors");
        file = slurp(p, &n);
        uint64_t hl = 0;
        memcpy(&hl, file, 8);
        CHECK(!memcmp(w.embed.data, file + 8 + hl, 4096), "embed bytes equal the file's data region");
        CHECK(!memcmp(w.final_norm.data, file + n - 128, 128), "norm.weight is the file's last 128 bytes");
        free(file);
        CHECK(qe_layer_bytes(&cfg, QE_BF16) == qe_layer_bytes_bound(&w.layers[0]), "layer bytes %llu vs %llu",
              (unsigned long long)qe_layer_bytes(&cfg, QE_BF16),
              (unsigned long long)qe_layer_bytes_bound(&w.layers[0]));
        qe_weights_release(&w);
    }
    /* n_params and sha256 agree with the manifest written by another tool */
    path_join(p, sizeof p, g_shared, "synth_manifest.json");
    char *mt = slurp(p, NULL);
    cJSON *m = cJSON_Parse(mt);
    free(mt);
    CHECK(m != NULL, "manifest JSON");
    if (m) {
        CHECK((double)qe_model_n_params(&cfg) == cJSON_GetObjectItem(m, "n_params")->valuedouble,
              "n_params %llu", (unsigned long long)qe_model_n_params(&cfg));
        uint8_t d[32];
        char hex[65];
        path_join(p, sizeof p, g_shared, "model.safetensors");
        CHECK(qe_sha256_file(p, d, &err) == QEMBED_OK, "%s", err.message);
        qe_sha256_hex(d, hex);
        CHECK(!strcmp(hex, cJSON_GetObjectItem(m, "model_safetensors_sha256")->valuestring), "sha256 %s",
              hex);
        cJSON_Delete(m);
    }
    /* SHA-256 known answers (FIPS 180-2) */
    uint8_t d[32];
    char hex[65];
    qe_sha256_buf("abc", 3, d, &err);
    qe_sha256_hex(d, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256(abc) %s",
          hex);
    qe_sha256_buf("", 0, d, &err);
    qe_sha256_hex(d, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256('') %s",
          hex);
    qe_checkpoint_free(ck);
}

/* A generated preset loads, binds, and has the published model's size. */
static void test_check(const char *dir, const char *preset) {
    qembed_error err = {0};
    qe_config cfg;
    qembed_status st = load_dir(dir, &cfg, &err);
    CHECK(st == QEMBED_OK, "%s: %s", dir, err.message);
    if (st) return;
    if (!strcmp(preset, "0.6b")) {
        /* Qwen3-Embedding-0.6B: 595,776,512 parameters (1,191,553,024 bytes in bf16) */
        CHECK(qe_model_n_params(&cfg) == 595776512ull, "n_params %llu",
              (unsigned long long)qe_model_n_params(&cfg));
        CHECK(cfg.hidden_size == 1024 && cfg.n_layers == 28 && cfg.n_heads == 16 && cfg.n_kv_heads == 8 &&
                  cfg.head_dim == 128 && cfg.intermediate_size == 3072 && cfg.vocab_size == 151669 &&
                  cfg.max_position_embeddings == 32768 && cfg.rope_theta == 1e6 && cfg.rms_norm_eps == 1e-6 &&
                  cfg.tie_word_embeddings,
              "0.6b config");
    }
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: test_model_load SHARED_MODEL | test_model_load DIR PRESET\n");
        return 1;
    }
    if (argc == 3) {
        test_check(argv[1], argv[2]);
    } else {
        model_test_init("test_model_load", argv[1], NULL);
        test_load();
    }
    return model_test_done(failures);
}
