/* The qembed-synth generator: deterministic, the shapes, dtypes and value
 * statistics it promises, sharded and prefixed variants:
 *   test_model_synth SYNTH_EXE SHARED_MODEL_DIR TMPDIR */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <math.h>

#include <cjson/cJSON.h>

#include "common/sha256.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/weights.h"

#include "check.h"
#include "model_util.h"

/* ---- the generator ---- */

static cJSON *load_json(const char *dir, const char *name) {
    char p[2048];
    path_join(p, sizeof p, dir, name);
    size_t n;
    char *t = slurp(p, &n);
    cJSON *j = cJSON_ParseWithLength(t, n);
    free(t);
    if (!j) fatal("%s is not JSON", p);
    return j;
}

static int cmp_key(const void *x, const void *y) {
    return strcmp((*(cJSON *const *)x)->string, (*(cJSON *const *)y)->string);
}

/* Sorts every object's keys, recursively, so two documents that mean the
 * same print the same. (cJSON_Compare is quadratic in an object's size: the
 * tokenizer's 151k-entry vocabulary would take minutes.) */
static void sort_keys(cJSON *j) {
    size_t n = 0;
    for (cJSON *c = j->child; c; c = c->next) sort_keys(c), n++;
    if (!cJSON_IsObject(j) || n < 2) return;
    cJSON **v = malloc(n * sizeof *v);
    size_t i = 0;
    for (cJSON *c = j->child; c; c = c->next) v[i++] = c;
    qsort(v, n, sizeof *v, cmp_key);
    for (i = 0; i < n; i++) {
        v[i]->prev = i ? v[i - 1] : v[n - 1]; /* cJSON: child->prev is the last item */
        v[i]->next = i + 1 < n ? v[i + 1] : NULL;
    }
    j->child = v[0];
    free(v);
}

static void same_json(const char *a_dir, const char *b_dir, const char *name) {
    cJSON *a = load_json(a_dir, name), *b = load_json(b_dir, name);
    sort_keys(a);
    sort_keys(b);
    char *ta = cJSON_PrintUnformatted(a), *tb = cJSON_PrintUnformatted(b);
    CHECK(ta && tb && !strcmp(ta, tb), "%s differs from the shared model's", name);
    free(ta);
    free(tb);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void sha_of(const char *dir, const char *name, char hex[65]) {
    char p[2048];
    uint8_t d[32];
    qembed_error err;
    path_join(p, sizeof p, dir, name);
    if (qe_sha256_file(p, d, &err) != QEMBED_OK) fatal("%s", err.message);
    qe_sha256_hex(d, hex);
}

/* mean and standard deviation of a bound bf16/f16/f32 tensor's values */
static float to_f32(const qe_tensor *t, size_t i) {
    if (t->dtype == QE_F32) return ((const float *)t->data)[i];
    uint16_t h = ((const uint16_t *)t->data)[i];
    if (t->dtype == QE_BF16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    /* f16 -> f32 for normal numbers and zero (all these weights are) */
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
    uint32_t u = e ? s | ((e + 112) << 23) | (m << 13) : s;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void stats(const qe_tensor *t, double *mean, double *sd) {
    size_t n = (size_t)t->shape[0] * (t->ndim == 2 ? (size_t)t->shape[1] : 1);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double v = to_f32(t, i);
        s += v, s2 += v * v;
    }
    *mean = s / n;
    *sd = sqrt(s2 / n - *mean * *mean);
}

static void check_generated(const char *dir, qe_dtype want_dt, const char *what) {
    qembed_error err = {0};
    qe_config cfg;
    char p[2048];
    path_join(p, sizeof p, dir, "config.json");
    CHECK(qe_config_load(p, &cfg, &err) == QEMBED_OK, "%s: %s", what, err.message);
    CHECK(cfg.torch_dtype == want_dt, "%s: torch_dtype", what);
    qe_checkpoint *ck = NULL;
    if (qe_checkpoint_open_dir(dir, &ck, &err) != QEMBED_OK) {
        CHECK(0, "%s: %s", what, err.message);
        return;
    }
    qe_weights w;
    if (qe_weights_bind(ck, &cfg, &w, &err) != QEMBED_OK) {
        CHECK(0, "%s: %s", what, err.message);
        qe_checkpoint_free(ck);
        return;
    }
    double m, sd;
    stats(&w.embed, &m, &sd);
    CHECK(fabs(m) < 1e-3 && fabs(sd - 0.02) < 5e-4, "%s: embed mean %g sd %g, expected N(0, 0.02)", what, m,
          sd);
    stats(&w.layers[1].w_down, &m, &sd);
    CHECK(fabs(m) < 2e-3 && fabs(sd - 0.02) < 2e-3, "%s: w_down mean %g sd %g", what, m, sd);
    stats(&w.final_norm, &m, &sd);
    CHECK(fabs(m - 1) < 0.05 && fabs(sd - 0.1) < 0.04, "%s: norm mean %g sd %g, expected 1 + 0.1 N(0,1)",
          what, m, sd);
    CHECK(w.embed.dtype == want_dt && w.layers[0].wq.dtype == want_dt, "%s: dtype", what);
    qe_weights_release(&w);
    qe_checkpoint_free(ck);
}

static void test_synth(const char *synth) {
    char a[2048], b[2048], c[2048], sh[2048], px[2048], f16[2048], f32[2048];
    path_join(a, sizeof a, g_tmp, "synth-a");
    path_join(b, sizeof b, g_tmp, "synth-b");
    path_join(c, sizeof c, g_tmp, "synth-c");
    path_join(sh, sizeof sh, g_tmp, "synth-shards");
    path_join(px, sizeof px, g_tmp, "synth-prefix");
    path_join(f16, sizeof f16, g_tmp, "synth-f16");
    path_join(f32, sizeof f32, g_tmp, "synth-f32");
    run_cmd("rm -rf '%s' '%s' '%s' '%s' '%s' '%s' '%s'", a, b, c, sh, px, f16, f32);
    run_cmd("'%s' -q --preset tiny -o '%s'", synth, a);
    run_cmd("'%s' -q --preset tiny -j 1 -o '%s'", synth, b);
    run_cmd("'%s' -q --preset tiny --seed 7 -o '%s'", synth, c);
    run_cmd("'%s' -q --preset tiny --shard-bytes 64K -o '%s'", synth, sh);
    run_cmd("'%s' -q --preset tiny --prefix model. -o '%s'", synth, px);
    run_cmd("'%s' -q --preset tiny --dtype f16 -o '%s'", synth, f16);
    run_cmd("'%s' -q --preset tiny --dtype f32 -o '%s'", synth, f32);
    /* the SIMD generator and the scalar reference give the same bits (f32:
     * no rounding to hide a last-bit difference) */
    char f32s[2048];
    path_join(f32s, sizeof f32s, g_tmp, "synth-f32-scalar");
    run_cmd("rm -rf '%s' && QEMBED_SYNTH_SCALAR=1 '%s' -q --preset tiny --dtype f32 -o '%s'", f32s, synth,
            f32s);
    char h1[65], h2[65];
    sha_of(f32, "model.safetensors", h1);
    sha_of(f32s, "model.safetensors", h2);
    CHECK(!strcmp(h1, h2), "SIMD and scalar generators differ: %s vs %s", h1, h2);
    run_cmd("rm -rf '%s'", f32s);

    /* the same files as the shared model, except the (random) weights */
    same_json(a, g_shared, "tokenizer.json");
    same_json(a, g_shared, "tokenizer_config.json");
    same_json(a, g_shared, "config.json");
    same_json(a, g_shared, "modules.json");
    same_json(a, g_shared, "config_sentence_transformers.json");
    same_json(a, g_shared, "1_Pooling/config.json");

    /* deterministic: same seed, any thread count -> same bytes; another seed differs */
    char ha[65], hb[65], hc[65];
    sha_of(a, "model.safetensors", ha);
    sha_of(b, "model.safetensors", hb);
    sha_of(c, "model.safetensors", hc);
    CHECK(!strcmp(ha, hb), "same seed, different threads: %s vs %s", ha, hb);
    CHECK(strcmp(ha, hc) != 0, "different seeds gave the same weights");

    /* the manifest says what it is */
    cJSON *m = load_json(a, "synth_manifest.json");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(m, "synthetic")), "manifest synthetic");
    CHECK(!strcmp(cJSON_GetObjectItem(m, "model_safetensors_sha256")->valuestring, ha), "manifest sha256");
    CHECK(!strcmp(cJSON_GetObjectItem(m, "preset")->valuestring, "tiny"), "manifest preset");
    CHECK(cJSON_GetObjectItem(m, "seed")->valuedouble == 20250605, "manifest seed");
    CHECK(cJSON_GetObjectItem(m, "n_params")->valuedouble == 9805504, "manifest n_params");
    CHECK(strstr(cJSON_GetObjectItem(m, "note")->valuestring, "no meaning") != NULL, "manifest note");
    cJSON_Delete(m);

    check_generated(a, QE_BF16, "bf16");
    check_generated(sh, QE_BF16, "sharded");
    check_generated(px, QE_BF16, "model. prefix");
    check_generated(f16, QE_F16, "f16");
    check_generated(f32, QE_F32, "f32");

    /* sharding and the prefix change the layout, not the values */
    qembed_error err = {0};
    qe_checkpoint *k1 = NULL, *k2 = NULL, *k3 = NULL;
    CHECK(qe_checkpoint_open_dir(a, &k1, &err) == QEMBED_OK, "%s", err.message);
    CHECK(qe_checkpoint_open_dir(sh, &k2, &err) == QEMBED_OK, "%s", err.message);
    CHECK(qe_checkpoint_open_dir(px, &k3, &err) == QEMBED_OK, "%s", err.message);
    if (k1 && k2 && k3) {
        CHECK(qe_checkpoint_n_files(k2) >= 3, "shards: %zu files", qe_checkpoint_n_files(k2));
        CHECK(qe_checkpoint_find(k3, "norm.weight") &&
                  !strcmp(qe_checkpoint_find(k3, "norm.weight")->name, "model.norm.weight"),
              "prefixed names");
        for (size_t i = 0; i < qe_checkpoint_n_tensors(k1); i++) {
            const qe_tensor *t = qe_checkpoint_tensor(k1, i);
            const qe_tensor *t2 = qe_checkpoint_find(k2, t->name), *t3 = qe_checkpoint_find(k3, t->name);
            size_t bytes = (size_t)qe_tensor_bytes(t);
            CHECK(t2 && t3 && !memcmp(t->data, t2->data, bytes) && !memcmp(t->data, t3->data, bytes),
                  "tensor %s differs between layouts", t->name);
        }
        /* f32 and bf16 hold the same draws: bf16 is f32 rounded to nearest even */
        qe_checkpoint *k4 = NULL;
        CHECK(qe_checkpoint_open_dir(f32, &k4, &err) == QEMBED_OK, "%s", err.message);
        if (k4) {
            const qe_tensor *x = qe_checkpoint_find(k1, "layers.0.self_attn.q_proj.weight");
            const qe_tensor *y = qe_checkpoint_find(k4, "layers.0.self_attn.q_proj.weight");
            int bad = 0;
            for (size_t i = 0; i < 4096; i++) {
                uint32_t u;
                float f = ((const float *)y->data)[i];
                memcpy(&u, &f, 4);
                uint16_t want = (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
                bad += ((const uint16_t *)x->data)[i] != want;
            }
            CHECK(bad == 0, "%d bf16 values are not the f32 values rounded", bad);
            qe_checkpoint_free(k4);
        }
    }
    qe_checkpoint_free(k1);
    qe_checkpoint_free(k2);
    qe_checkpoint_free(k3);

    /* the 8b preset's shape (issue 14), without its 16 GB of weights */
    {
        char e8[1024], st[1100];
        path_join(e8, sizeof e8, g_tmp, "synth-8b");
        run_cmd("'%s' -q --preset 8b --config-only -o '%s'", synth, e8);
        cJSON *cf = load_json(e8, "config.json");
        static const struct {
            const char *key;
            double v;
        } want[] = {{"hidden_size", 4096},       {"num_hidden_layers", 36},
                    {"num_attention_heads", 32}, {"num_key_value_heads", 8},
                    {"head_dim", 128},           {"intermediate_size", 12288},
                    {"vocab_size", 151665},      {"max_position_embeddings", 40960}};
        for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
            cJSON *v = cJSON_GetObjectItem(cf, want[i].key);
            CHECK(cJSON_IsNumber(v) && v->valuedouble == want[i].v, "8b config %s", want[i].key);
        }
        CHECK(cJSON_IsFalse(cJSON_GetObjectItem(cf, "tie_word_embeddings")), "8b config is untied");
        cJSON_Delete(cf);
        snprintf(st, sizeof st, "%s/model.safetensors", e8);
        CHECK(access(st, F_OK) != 0, "--config-only wrote no weights");
    }

    /* usage errors: exit 1, a missing tokenizer: exit 2 with the path named */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' --preset huge -o '%s/x' 2>/dev/null", synth, g_tmp);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "unknown preset: rc %d", rc);
    snprintf(cmd, sizeof cmd,
             "'%s' --preset tiny --tokenizer /nonexistent-tok -o '%s/x' 2>&1 | grep -q "
             "nonexistent-tok/tokenizer.json",
             synth, g_tmp);
    CHECK(system(cmd) == 0, "missing tokenizer is named");
    snprintf(cmd, sizeof cmd, "'%s' --preset tiny --tokenizer /nonexistent-tok -o '%s/x' 2>/dev/null", synth,
             g_tmp);
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "missing tokenizer: rc %d", rc);
    run_cmd("rm -rf '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s/x'", a, b, c, sh, px, f16, f32, g_tmp);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test_model_synth SYNTH_EXE SHARED_MODEL TMPDIR\n");
        return 1;
    }
    model_test_init("test_model_synth", argv[2], argv[3]);
    test_synth(argv[1]);
    return model_test_done(failures);
}
