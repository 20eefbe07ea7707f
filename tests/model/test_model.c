/* Model loading: config.json, safetensors (single and sharded), weight
 * binding, HF cache resolution and the qembed-synth generator.
 *
 *   test_model load   SHARED_MODEL_DIR
 *   test_model bad    SHARED_MODEL_DIR TMPDIR      every bad model file of issue 2
 *   test_model resolve SHARED_MODEL_DIR TMPDIR     fake Hugging Face caches
 *   test_model synth  SYNTH_EXE SHARED_MODEL_DIR TMPDIR
 *
 * Each bad-input case is data: how to break the tiny model, which status
 * code is expected, and which words the message must contain (the file, the
 * tensor or the field, and what was expected). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <math.h>

#include <cjson/cJSON.h>

#include "common/sha256.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/resolve.h"
#include "model/weights.h"

static char g_shared[1024]; /* the shared tiny model */
static char g_tmp[1024];

#include "check.h"

/* ---- small file helpers (test code: failures are fatal) ---- */

static void fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fatal("cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) fatal("cannot read %s", path);
    fclose(f);
    b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

static void spit(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) fatal("cannot write %s", path);
}

static void run_cmd(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0) fatal("command failed (%d): %s", rc, cmd);
}

static void path_join(char *out, size_t n, const char *a, const char *b) {
    if ((size_t)snprintf(out, n, "%s/%s", a, b) >= n) fatal("path too long: %s/%s", a, b);
}

/* Loads dir the way qembed_model_load does: config, checkpoint, bind. */
static qembed_status load_dir(const char *dir, qe_config *cfg, qembed_error *err) {
    char p[2048];
    path_join(p, sizeof p, dir, "config.json");
    qembed_status st = qe_config_load(p, cfg, err);
    if (st) return st;
    qe_checkpoint *ck = NULL;
    st = qe_checkpoint_open_dir(dir, &ck, err);
    if (st) return st;
    qe_weights w;
    st = qe_weights_bind(ck, cfg, &w, err);
    if (!st) qe_weights_release(&w);
    qe_checkpoint_free(ck);
    return st;
}

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
    CHECK(cfg.rms_norm_eps == 1e-6 && cfg.rope_theta == 1e6, "eps %g theta %g", cfg.rms_norm_eps, cfg.rope_theta);
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
        CHECK(!strcmp(hex, cJSON_GetObjectItem(m, "model_safetensors_sha256")->valuestring), "sha256 %s", hex);
        cJSON_Delete(m);
    }
    /* SHA-256 known answers (FIPS 180-2) */
    uint8_t d[32];
    char hex[65];
    qe_sha256_buf("abc", 3, d, &err);
    qe_sha256_hex(d, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256(abc) %s", hex);
    qe_sha256_buf("", 0, d, &err);
    qe_sha256_hex(d, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256('') %s", hex);
    qe_checkpoint_free(ck);
}

/* ---- bad inputs ---- */

/* The tiny model's safetensors header, as JSON, and its data size. Broken
 * copies keep the data region's size but write it sparse (ftruncate): no
 * 20 MB copies. */
static cJSON *g_hdr;
static uint64_t g_data_size;

static void read_tiny_header(void) {
    char p[2048];
    path_join(p, sizeof p, g_shared, "model.safetensors");
    size_t n;
    char *f = slurp(p, &n);
    uint64_t hl;
    memcpy(&hl, f, 8);
    g_hdr = cJSON_ParseWithLength(f + 8, hl);
    if (!g_hdr) fatal("tiny header");
    g_data_size = n - 8 - hl;
    free(f);
}

/* Writes a safetensors file from a header object (padded to 8) and a sparse
 * data region of data_size bytes. */
static void write_st(const char *path, const cJSON *hdr, uint64_t data_size) {
    char *h = cJSON_PrintUnformatted(hdr);
    size_t hl = strlen(h);
    size_t padded = (hl + 7) & ~(size_t)7;
    FILE *f = fopen(path, "wb");
    if (!f) fatal("create %s", path);
    uint64_t L = padded;
    fwrite(&L, 8, 1, f);
    fwrite(h, 1, hl, f);
    for (size_t i = hl; i < padded; i++) fputc(' ', f);
    fclose(f);
    free(h);
    if (truncate(path, (off_t)(8 + padded + data_size)) != 0) fatal("truncate %s", path);
}

typedef struct bad_case {
    const char *name;
    void (*make)(const char *dir); /* writes the broken part(s) into dir */
    qembed_status code;
    const char *words[4]; /* every one must appear in the message */
} bad_case;

static char g_cfg_text[8192];

/* A fresh copy of the tiny model (config + sparse weights) in dir. */
static void base_model(const char *dir) {
    run_cmd("rm -rf '%s' && mkdir -p '%s'", dir, dir);
    char p[2048];
    path_join(p, sizeof p, dir, "config.json");
    spit(p, g_cfg_text, strlen(g_cfg_text));
    path_join(p, sizeof p, dir, "model.safetensors");
    write_st(p, g_hdr, g_data_size);
}

static void with_config(const char *dir, void (*mut)(cJSON *)) {
    cJSON *c = cJSON_Parse(g_cfg_text);
    mut(c);
    char *t = cJSON_Print(c);
    char p[2048];
    path_join(p, sizeof p, dir, "config.json");
    spit(p, t, strlen(t));
    free(t);
    cJSON_Delete(c);
}

static void with_header(const char *dir, void (*mut)(cJSON *)) {
    cJSON *h = cJSON_Duplicate(g_hdr, 1);
    mut(h);
    char p[2048];
    path_join(p, sizeof p, dir, "model.safetensors");
    write_st(p, h, g_data_size);
    cJSON_Delete(h);
}

static void raw_model_file(const char *dir, const void *bytes, size_t n) {
    char p[2048];
    path_join(p, sizeof p, dir, "model.safetensors");
    spit(p, bytes, n);
}

/* config.json cases */
static void mk_no_config(const char *d) {
    char p[2048];
    path_join(p, sizeof p, d, "config.json");
    unlink(p);
}
static void mk_config_not_json(const char *d) {
    char p[2048];
    path_join(p, sizeof p, d, "config.json");
    spit(p, "{\"hidden_size\": 64,, }", 22);
}
static void m_no_hidden(cJSON *c) { cJSON_DeleteItemFromObject(c, "hidden_size"); }
static void mk_config_missing_field(const char *d) { with_config(d, m_no_hidden); }
static void m_layers_str(cJSON *c) { cJSON_ReplaceItemInObject(c, "num_hidden_layers", cJSON_CreateString("2")); }
static void mk_config_wrong_type(const char *d) { with_config(d, m_layers_str); }
static void m_llama(cJSON *c) {
    cJSON_ReplaceItemInObject(c, "architectures", cJSON_CreateStringArray((const char *[]){"LlamaForCausalLM"}, 1));
}
static void mk_config_unknown_arch(const char *d) { with_config(d, m_llama); }
static void m_mt(cJSON *c) { cJSON_ReplaceItemInObject(c, "model_type", cJSON_CreateString("qwen2")); }
static void mk_config_model_type(const char *d) { with_config(d, m_mt); }
static void m_kv3(cJSON *c) { cJSON_ReplaceItemInObject(c, "num_key_value_heads", cJSON_CreateNumber(3)); }
static void mk_config_kv_div(const char *d) { with_config(d, m_kv3); }
static void m_neg(cJSON *c) { cJSON_ReplaceItemInObject(c, "intermediate_size", cJSON_CreateNumber(-192)); }
static void mk_config_negative(const char *d) { with_config(d, m_neg); }
static void m_huge(cJSON *c) { cJSON_ReplaceItemInObject(c, "vocab_size", cJSON_CreateNumber(1e15)); }
static void mk_config_absurd(const char *d) { with_config(d, m_huge); }
static void m_frac(cJSON *c) { cJSON_ReplaceItemInObject(c, "hidden_size", cJSON_CreateNumber(64.5)); }
static void mk_config_fraction(const char *d) { with_config(d, m_frac); }
static void m_eps0(cJSON *c) { cJSON_ReplaceItemInObject(c, "rms_norm_eps", cJSON_CreateNumber(0)); }
static void mk_config_eps0(const char *d) { with_config(d, m_eps0); }
static void m_dtype(cJSON *c) { cJSON_ReplaceItemInObject(c, "torch_dtype", cJSON_CreateString("int8")); }
static void mk_config_dtype(const char *d) { with_config(d, m_dtype); }
static void m_rope(cJSON *c) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "rope_type", "yarn");
    cJSON_ReplaceItemInObject(c, "rope_scaling", r);
}
static void mk_config_rope_scaling(const char *d) { with_config(d, m_rope); }
static void mk_config_array(const char *d) {
    char p[2048];
    path_join(p, sizeof p, d, "config.json");
    spit(p, "[1, 2]", 6);
}
static void m_hidden128(cJSON *c) { cJSON_ReplaceItemInObject(c, "hidden_size", cJSON_CreateNumber(128)); }
static void mk_config_shape_mismatch(const char *d) { with_config(d, m_hidden128); }
static void m_layers3(cJSON *c) { cJSON_ReplaceItemInObject(c, "num_hidden_layers", cJSON_CreateNumber(3)); }
static void mk_config_more_layers(const char *d) { with_config(d, m_layers3); }
static void m_layers1(cJSON *c) { cJSON_ReplaceItemInObject(c, "num_hidden_layers", cJSON_CreateNumber(1)); }
static void mk_config_fewer_layers(const char *d) { with_config(d, m_layers1); }

/* safetensors cases */
static void mk_no_weights(const char *d) {
    char p[2048];
    path_join(p, sizeof p, d, "model.safetensors");
    unlink(p);
}
static void mk_pytorch_bin(const char *d) {
    mk_no_weights(d);
    char p[2048];
    path_join(p, sizeof p, d, "pytorch_model.bin");
    spit(p, "PK", 2);
}
static void mk_st_tiny_file(const char *d) { raw_model_file(d, "\x10\0\0", 3); }
static void mk_st_empty(const char *d) { raw_model_file(d, "", 0); }
static void mk_st_truncated(const char *d) {
    char p[2048];
    path_join(p, sizeof p, d, "model.safetensors");
    struct stat sb;
    stat(p, &sb);
    if (truncate(p, sb.st_size / 2) != 0) fatal("truncate");
}
static void mk_st_truncated_in_header(const char *d) {
    char p[2048];
    path_join(p, sizeof p, d, "model.safetensors");
    if (truncate(p, 100) != 0) fatal("truncate");
}
static void mk_st_hlen_huge(const char *d) {
    unsigned char b[64] = {0};
    uint64_t L = 1ull << 62;
    memcpy(b, &L, 8);
    memcpy(b + 8, "{}", 2);
    raw_model_file(d, b, sizeof b);
}
static void mk_st_hlen_past_end(const char *d) {
    unsigned char b[40] = {0};
    uint64_t L = 33; /* 8 + 33 > 40 */
    memcpy(b, &L, 8);
    memset(b + 8, ' ', 32);
    b[8] = '{';
    raw_model_file(d, b, sizeof b);
}
static void mk_st_not_json(const char *d) {
    const char h[] = "{\"embed_tokens.weight\": {\"dtype\": \"BF16\", \"shape\": [1, 2], \"data_offsets\": [0, 4]";
    unsigned char b[256] = {0};
    uint64_t L = sizeof h - 1;
    memcpy(b, &L, 8);
    memcpy(b + 8, h, L);
    raw_model_file(d, b, 8 + L + 16);
}
static void mk_st_not_object(const char *d) {
    unsigned char b[32] = {0};
    uint64_t L = 8;
    memcpy(b, &L, 8);
    memcpy(b + 8, "[1,2,3] ", 8);
    raw_model_file(d, b, 16);
}
static void mk_st_garbage(const char *d) {
    unsigned char b[4096];
    for (size_t i = 0; i < sizeof b; i++) b[i] = (unsigned char)(i * 2654435761u >> 13);
    b[0] = 0x40, b[1] = 0, b[2] = 0, b[3] = 0, b[4] = b[5] = b[6] = b[7] = 0; /* 64 bytes of noise as header */
    raw_model_file(d, b, sizeof b);
}
static cJSON *tensor(cJSON *h, const char *name) { return cJSON_GetObjectItemCaseSensitive(h, name); }
static void set_offsets(cJSON *t, double b, double e) {
    cJSON *o = cJSON_CreateArray();
    cJSON_AddItemToArray(o, cJSON_CreateNumber(b));
    cJSON_AddItemToArray(o, cJSON_CreateNumber(e));
    cJSON_ReplaceItemInObject(t, "data_offsets", o);
}
static void m_off_out(cJSON *h) {
    set_offsets(tensor(h, "norm.weight"), (double)g_data_size - 64, (double)g_data_size + 64);
}
static void mk_st_offsets_outside(const char *d) { with_header(d, m_off_out); }
static void m_off_rev(cJSON *h) { set_offsets(tensor(h, "layers.0.self_attn.k_norm.weight"), 19487648, 19487616); }
static void mk_st_offsets_reversed(const char *d) { with_header(d, m_off_rev); }
static void m_off_neg(cJSON *h) { set_offsets(tensor(h, "layers.0.self_attn.k_norm.weight"), -32, 0); }
static void mk_st_offsets_negative(const char *d) { with_header(d, m_off_neg); }
static void m_size(cJSON *h) {
    /* 32 x 64 BF16 needs 4096 bytes; give it 4094 */
    set_offsets(tensor(h, "layers.1.self_attn.v_proj.weight"), 19606784, 19606784 + 4094);
}
static void mk_st_wrong_size(const char *d) { with_header(d, m_size); }
static void m_shape_big(cJSON *h) {
    cJSON *s = cJSON_CreateArray();
    cJSON_AddItemToArray(s, cJSON_CreateNumber(1e12));
    cJSON_AddItemToArray(s, cJSON_CreateNumber(1e12));
    cJSON_ReplaceItemInObject(tensor(h, "layers.0.mlp.up_proj.weight"), "shape", s);
}
static void mk_st_shape_overflow(const char *d) { with_header(d, m_shape_big); }
static void m_dtype_f64(cJSON *h) {
    cJSON_ReplaceItemInObject(tensor(h, "layers.0.mlp.up_proj.weight"), "dtype", cJSON_CreateString("F64"));
}
static void mk_st_dtype_f64(const char *d) { with_header(d, m_dtype_f64); }
static void m_dtype_i8(cJSON *h) {
    cJSON_ReplaceItemInObject(tensor(h, "norm.weight"), "dtype", cJSON_CreateString("I8"));
}
static void mk_st_dtype_i8(const char *d) { with_header(d, m_dtype_i8); }
static void m_dtype_f32(cJSON *h) {
    /* a 64-element norm as F32 needs 256 bytes, not 128 */
    cJSON_ReplaceItemInObject(tensor(h, "norm.weight"), "dtype", cJSON_CreateString("F32"));
}
static void mk_st_dtype_size(const char *d) { with_header(d, m_dtype_f32); }
static void m_misalign(cJSON *h) {
    /* an F32 view of 32 bytes starting 2 bytes into an aligned region */
    cJSON *t = tensor(h, "layers.0.self_attn.k_norm.weight");
    cJSON_ReplaceItemInObject(t, "dtype", cJSON_CreateString("F32"));
    cJSON *s = cJSON_CreateArray();
    cJSON_AddItemToArray(s, cJSON_CreateNumber(7));
    cJSON_ReplaceItemInObject(t, "shape", s);
    set_offsets(t, 19487618, 19487618 + 28);
}
static void mk_st_misaligned(const char *d) { with_header(d, m_misalign); }
static void m_shape_t(cJSON *h) {
    /* transposed q_proj is the classic converter bug; here [64, 64] -> k_proj [64, 32] */
    cJSON *s = cJSON_CreateArray();
    cJSON_AddItemToArray(s, cJSON_CreateNumber(64));
    cJSON_AddItemToArray(s, cJSON_CreateNumber(32));
    cJSON_ReplaceItemInObject(tensor(h, "layers.1.self_attn.k_proj.weight"), "shape", s);
}
static void mk_st_shape_vs_config(const char *d) { with_header(d, m_shape_t); }
static void m_norm_2d(cJSON *h) {
    cJSON *s = cJSON_CreateArray();
    cJSON_AddItemToArray(s, cJSON_CreateNumber(1));
    cJSON_AddItemToArray(s, cJSON_CreateNumber(16));
    cJSON_ReplaceItemInObject(tensor(h, "layers.0.self_attn.q_norm.weight"), "shape", s);
}
static void mk_st_rank_vs_config(const char *d) { with_header(d, m_norm_2d); }
static void m_3d(cJSON *h) {
    cJSON *s = cJSON_CreateArray();
    cJSON_AddItemToArray(s, cJSON_CreateNumber(2));
    cJSON_AddItemToArray(s, cJSON_CreateNumber(4));
    cJSON_AddItemToArray(s, cJSON_CreateNumber(8));
    cJSON_ReplaceItemInObject(tensor(h, "layers.0.self_attn.q_norm.weight"), "shape", s);
}
static void mk_st_rank3(const char *d) { with_header(d, m_3d); }
static void m_missing_t(cJSON *h) { cJSON_DeleteItemFromObject(h, "layers.1.mlp.up_proj.weight"); }
static void mk_st_missing_tensor(const char *d) { with_header(d, m_missing_t); }
static void m_no_dtype(cJSON *h) { cJSON_DeleteItemFromObject(tensor(h, "norm.weight"), "dtype"); }
static void mk_st_no_dtype(const char *d) { with_header(d, m_no_dtype); }
static void m_entry_str(cJSON *h) { cJSON_ReplaceItemInObject(h, "norm.weight", cJSON_CreateString("x")); }
static void mk_st_entry_not_object(const char *d) { with_header(d, m_entry_str); }
static void m_dup_prefix(cJSON *h) {
    /* the same tensor under both spellings: ambiguous, so an error */
    cJSON_AddItemToObject(h, "model.norm.weight", cJSON_Duplicate(tensor(h, "norm.weight"), 1));
}
static void mk_st_both_spellings(const char *d) { with_header(d, m_dup_prefix); }

/* sharded cases: two shards split at the layers */
static void make_shards(const char *d, int drop_second, int bad_name, int lie) {
    char p[2048];
    path_join(p, sizeof p, d, "model.safetensors");
    unlink(p);
    cJSON *h1 = cJSON_CreateObject(), *h2 = cJSON_CreateObject(), *wm = cJSON_CreateObject();
    const cJSON *it;
    cJSON_ArrayForEach(it, g_hdr) {
        if (!strcmp(it->string, "__metadata__")) continue;
        int second = !strncmp(it->string, "layers.1.", 9) || !strcmp(it->string, "norm.weight");
        cJSON_AddItemToObject(second ? h2 : h1, it->string, cJSON_Duplicate(it, 1));
        const char *f = second ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
        if (bad_name && second) f = "../model-00002-of-00002.safetensors";
        cJSON_AddStringToObject(wm, it->string, f);
    }
    if (lie) cJSON_AddStringToObject(wm, "layers.7.mlp.up_proj.weight", "model-00002-of-00002.safetensors");
    path_join(p, sizeof p, d, "model-00001-of-00002.safetensors");
    write_st(p, h1, g_data_size);
    if (!drop_second) {
        path_join(p, sizeof p, d, "model-00002-of-00002.safetensors");
        write_st(p, h2, g_data_size);
    }
    cJSON *idx = cJSON_CreateObject();
    cJSON_AddItemToObject(idx, "metadata", cJSON_CreateObject());
    cJSON_AddItemToObject(idx, "weight_map", wm);
    char *t = cJSON_Print(idx);
    path_join(p, sizeof p, d, "model.safetensors.index.json");
    spit(p, t, strlen(t));
    free(t);
    cJSON_Delete(idx);
    cJSON_Delete(h1);
    cJSON_Delete(h2);
}
static void mk_idx_missing_shard(const char *d) { make_shards(d, 1, 0, 0); }
static void mk_idx_traversal(const char *d) { make_shards(d, 0, 1, 0); }
static void mk_idx_lies(const char *d) { make_shards(d, 0, 0, 1); }
static void mk_idx_not_json(const char *d) {
    make_shards(d, 0, 0, 0);
    char p[2048];
    path_join(p, sizeof p, d, "model.safetensors.index.json");
    spit(p, "{\"weight_map\": {", 16);
}
static void mk_idx_no_map(const char *d) {
    make_shards(d, 0, 0, 0);
    char p[2048];
    path_join(p, sizeof p, d, "model.safetensors.index.json");
    spit(p, "{\"metadata\": {}}", 16);
}
static void mk_idx_duplicate(const char *d) {
    /* a tensor present in both shards */
    make_shards(d, 0, 0, 0);
    cJSON *h2 = cJSON_CreateObject();
    cJSON_AddItemToObject(h2, "norm.weight", cJSON_Duplicate(tensor(g_hdr, "norm.weight"), 1));
    cJSON_AddItemToObject(h2, "embed_tokens.weight", cJSON_Duplicate(tensor(g_hdr, "embed_tokens.weight"), 1));
    char p[2048];
    path_join(p, sizeof p, d, "model-00002-of-00002.safetensors");
    write_st(p, h2, g_data_size);
    cJSON_Delete(h2);
}

static const bad_case BAD[] = {
    /* config.json */
    {"config missing", mk_no_config, QEMBED_ERR_IO, {"config.json", "cannot open"}},
    {"config not JSON", mk_config_not_json, QEMBED_ERR_MODEL_FORMAT, {"config.json", "not valid JSON", "byte"}},
    {"config top level array", mk_config_array, QEMBED_ERR_MODEL_FORMAT, {"config.json", "object"}},
    {"config lacks hidden_size", mk_config_missing_field, QEMBED_ERR_MODEL_FORMAT,
     {"config.json", "\"hidden_size\"", "missing", "integer"}},
    {"config field of wrong type", mk_config_wrong_type, QEMBED_ERR_MODEL_FORMAT,
     {"config.json", "\"num_hidden_layers\"", "a string", "integer"}},
    {"config unknown architecture", mk_config_unknown_arch, QEMBED_ERR_UNSUPPORTED,
     {"config.json", "LlamaForCausalLM", "Qwen3ForCausalLM"}},
    {"config model_type qwen2", mk_config_model_type, QEMBED_ERR_UNSUPPORTED, {"config.json", "model_type", "qwen2"}},
    {"config heads not a multiple of kv heads", mk_config_kv_div, QEMBED_ERR_MODEL_FORMAT,
     {"config.json", "num_attention_heads", "num_key_value_heads", "multiple"}},
    {"config negative size", mk_config_negative, QEMBED_ERR_MODEL_FORMAT, {"config.json", "intermediate_size", "-192"}},
    {"config absurd vocab", mk_config_absurd, QEMBED_ERR_MODEL_FORMAT, {"config.json", "vocab_size", "expected"}},
    {"config fractional size", mk_config_fraction, QEMBED_ERR_MODEL_FORMAT, {"config.json", "hidden_size", "64.5"}},
    {"config zero eps", mk_config_eps0, QEMBED_ERR_MODEL_FORMAT, {"config.json", "rms_norm_eps"}},
    {"config int8 torch_dtype", mk_config_dtype, QEMBED_ERR_UNSUPPORTED, {"config.json", "torch_dtype", "int8"}},
    {"config rope_scaling", mk_config_rope_scaling, QEMBED_ERR_UNSUPPORTED, {"config.json", "rope_scaling"}},
    {"config hidden_size vs weights", mk_config_shape_mismatch, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "embed_tokens.weight", "[151669, 64]", "[151669, 128]"}},
    {"config more layers than weights", mk_config_more_layers, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.2.input_layernorm.weight", "missing"}},
    {"config fewer layers than weights", mk_config_fewer_layers, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.1.", "num_hidden_layers = 1"}},
    /* model.safetensors */
    {"weights missing", mk_no_weights, QEMBED_ERR_IO, {"model.safetensors", "model.safetensors.index.json"}},
    {"only pytorch_model.bin", mk_pytorch_bin, QEMBED_ERR_UNSUPPORTED, {"pytorch_model.bin", "safetensors"}},
    {"file of 3 bytes", mk_st_tiny_file, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors", "too short"}},
    {"empty file", mk_st_empty, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors", "0 bytes"}},
    {"truncated data", mk_st_truncated, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "tensor \"", "outside the data region", "truncated"}},
    {"truncated inside the header", mk_st_truncated_in_header, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "header length 2440", "larger than the file"}},
    {"header length 2^62", mk_st_hlen_huge, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors", "header length 4611686018427387904"}},
    {"header length past the end", mk_st_hlen_past_end, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors", "header length 33"}},
    {"header not JSON", mk_st_not_json, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors", "not valid JSON"}},
    {"header not an object", mk_st_not_object, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors", "'{'"}},
    {"random bytes", mk_st_garbage, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors"}},
    {"offsets outside the file", mk_st_offsets_outside, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "\"norm.weight\"", "outside the data region"}},
    {"offsets reversed", mk_st_offsets_reversed, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.0.self_attn.k_norm.weight", "[19487648, 19487616]", "begin after"}},
    {"offsets negative", mk_st_offsets_negative, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.0.self_attn.k_norm.weight", "data_offsets"}},
    {"size not dtype x shape", mk_st_wrong_size, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.1.self_attn.v_proj.weight", "needs 4096 bytes", "span 4094"}},
    {"shape overflows", mk_st_shape_overflow, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.0.mlp.up_proj.weight", "more elements than 2^64"}},
    {"dtype F64", mk_st_dtype_f64, QEMBED_ERR_UNSUPPORTED,
     {"model.safetensors", "layers.0.mlp.up_proj.weight", "\"F64\"", "BF16, F16, F32"}},
    {"dtype I8", mk_st_dtype_i8, QEMBED_ERR_UNSUPPORTED, {"model.safetensors", "\"norm.weight\"", "\"I8\""}},
    {"dtype changed, size not", mk_st_dtype_size, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "\"norm.weight\"", "F32", "needs 256 bytes"}},
    {"misaligned tensor", mk_st_misaligned, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.0.self_attn.k_norm.weight", "aligned"}},
    {"shape vs config", mk_st_shape_vs_config, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.1.self_attn.k_proj.weight", "[64, 32]", "expected [32, 64]"}},
    {"vector stored as matrix", mk_st_rank_vs_config, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.0.self_attn.q_norm.weight", "[1, 16]", "expected [16]"}},
    {"3-d tensor", mk_st_rank3, QEMBED_ERR_UNSUPPORTED, {"model.safetensors", "layers.0.self_attn.q_norm.weight", "3 dimensions"}},
    {"tensor missing", mk_st_missing_tensor, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.1.mlp.up_proj.weight", "missing", "model."}},
    {"entry without dtype", mk_st_no_dtype, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors", "\"norm.weight\"", "dtype"}},
    {"entry not an object", mk_st_entry_not_object, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors", "\"norm.weight\""}},
    /* both spellings of one tensor in one checkpoint */
    {"tensor under both prefixes", mk_st_both_spellings, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "\"norm.weight\"", "both with and without", "prefix"}},
    /* sharded */
    {"index names a missing shard", mk_idx_missing_shard, QEMBED_ERR_IO,
     {"model.safetensors.index.json", "model-00002-of-00002.safetensors", "missing"}},
    {"index path traversal", mk_idx_traversal, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors.index.json", "weight_map", "file name"}},
    {"index lists an absent tensor", mk_idx_lies, QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors.index.json", "layers.7.mlp.up_proj.weight", "model-00002-of-00002.safetensors"}},
    {"index not JSON", mk_idx_not_json, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors.index.json", "not valid JSON"}},
    {"index without weight_map", mk_idx_no_map, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors.index.json", "weight_map"}},
    {"tensor in two shards", mk_idx_duplicate, QEMBED_ERR_MODEL_FORMAT, {"model-0000", "embed_tokens.weight", "twice"}},
};

static void test_bad(void) {
    read_tiny_header();
    char p[2048];
    path_join(p, sizeof p, g_shared, "config.json");
    char *c = slurp(p, NULL);
    snprintf(g_cfg_text, sizeof g_cfg_text, "%s", c);
    free(c);
    char dir[2048];
    path_join(dir, sizeof dir, g_tmp, "bad");

    /* the unbroken base loads: so each failure below is the breakage's */
    base_model(dir);
    qembed_error err = {0};
    qe_config cfg;
    qembed_status st = load_dir(dir, &cfg, &err);
    CHECK(st == QEMBED_OK, "base model: %s", err.message);
    /* and so does its sharded form */
    make_shards(dir, 0, 0, 0);
    st = load_dir(dir, &cfg, &err);
    CHECK(st == QEMBED_OK, "sharded base model: %s", err.message);

    /* accepted variations: an lm_head (ignored), and mixed dtypes per tensor */
    base_model(dir);
    {
        cJSON *h = cJSON_Duplicate(g_hdr, 1);
        cJSON *lm = cJSON_Duplicate(tensor(h, "embed_tokens.weight"), 1);
        cJSON_AddItemToObject(h, "lm_head.weight", lm);
        cJSON *q = tensor(h, "layers.0.self_attn.q_norm.weight");
        cJSON_ReplaceItemInObject(q, "dtype", cJSON_CreateString("F32"));
        set_offsets(q, (double)g_data_size, (double)g_data_size + 64); /* 16 x 4 bytes, appended */
        path_join(p, sizeof p, dir, "model.safetensors");
        write_st(p, h, g_data_size + 64);
        cJSON_Delete(h);
        qe_checkpoint *ck = NULL;
        st = qe_config_load(strcat(strcpy(p, dir), "/config.json"), &cfg, &err);
        if (!st) st = qe_checkpoint_open_dir(dir, &ck, &err);
        qe_weights w;
        if (!st) st = qe_weights_bind(ck, &cfg, &w, &err);
        CHECK(st == QEMBED_OK, "lm_head + mixed dtypes: %s", err.message);
        if (!st) {
            CHECK(w.layers[0].q_norm.dtype == QE_F32 && w.layers[0].k_norm.dtype == QE_BF16, "mixed dtypes bound");
            CHECK(qe_layer_bytes_bound(&w.layers[0]) == qe_layer_bytes(&cfg, QE_BF16) + 32, "bound bytes");
            qe_weights_release(&w);
        }
        qe_checkpoint_free(ck);
    }

    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        const bad_case *bc = &BAD[i];
        base_model(dir);
        bc->make(dir);
        memset(&err, 0, sizeof err);
        st = load_dir(dir, &cfg, &err);
        int ok = st == bc->code && err.code == st;
        for (int w = 0; w < 4 && bc->words[w]; w++) ok &= strstr(err.message, bc->words[w]) != NULL;
        CHECK(ok, "case \"%s\": got %d (%s) \"%s\"; expected %d with the words given", bc->name, st,
              qembed_status_str(st), err.message, bc->code);
        if (ok) printf("ok   %-42s %s\n", bc->name, err.message);
    }
    /* the pure parser on bytes that are not a file at all */
    qe_st_entry *e = NULL;
    size_t n = 7, ds = 0;
    st = qe_safetensors_parse("", 0, NULL, &e, &n, &ds, &err);
    CHECK(st == QEMBED_ERR_MODEL_FORMAT && e == NULL && n == 0, "empty buffer");
    st = qe_config_parse("{}", 2, "inline", &cfg, &err);
    CHECK(st == QEMBED_ERR_MODEL_FORMAT && strstr(err.message, "inline") && strstr(err.message, "architectures"),
          "empty config: %s", err.message);
    cJSON_Delete(g_hdr);
    run_cmd("rm -rf '%s'", dir);
}

/* ---- Hugging Face cache resolution ---- */

static void set_env(const char *k, const char *v) {
    if (v) setenv(k, v, 1);
    else unsetenv(k);
}

static void make_cache(const char *hub, const char *repo_folder, const char *rev, int with_ref) {
    /* as huggingface_hub lays it out: blobs by hash, snapshot files are
     * relative symlinks into them */
    run_cmd("mkdir -p '%s/%s/blobs' '%s/%s/snapshots/%s' '%s/%s/refs'", hub, repo_folder, hub, repo_folder, rev, hub,
            repo_folder);
    run_cmd("cp '%s/config.json' '%s/%s/blobs/c0ffee01'", g_shared, hub, repo_folder);
    run_cmd("ln -sf '%s/model.safetensors' '%s/%s/blobs/c0ffee02'", g_shared, hub, repo_folder);
    run_cmd("cd '%s/%s/snapshots/%s' && ln -sf ../../blobs/c0ffee01 config.json && ln -sf ../../blobs/c0ffee02 "
            "model.safetensors",
            hub, repo_folder, rev);
    if (with_ref) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s/refs/main", hub, repo_folder);
        spit(p, rev, strlen(rev)); /* no newline, as huggingface_hub writes it */
    }
}

static void test_resolve(void) {
    char home[2048], out[4096], want[4096];
    qembed_error err = {0};
    path_join(home, sizeof home, g_tmp, "home");
    run_cmd("rm -rf '%s' && mkdir -p '%s'", home, home);
    set_env("HOME", home);
    set_env("HF_HOME", NULL);
    set_env("HF_HUB_CACHE", NULL);
    set_env("XDG_CACHE_HOME", NULL);
    const char *rev = "0123456789abcdef0123456789abcdef01234567";

    /* a directory is used as it is */
    CHECK(qe_resolve_model_path(g_shared, out, sizeof out, &err) == QEMBED_OK && !strcmp(out, g_shared), "dir");
    /* a file is not a model */
    char f[2048];
    path_join(f, sizeof f, g_shared, "config.json");
    CHECK(qe_resolve_model_path(f, out, sizeof out, &err) == QEMBED_ERR_INVALID_ARGUMENT &&
              strstr(err.message, "not a directory"),
          "file: %s", err.message);

    /* not found: names the repo and every place it looked */
    qembed_status st = qe_resolve_model_path("Qwen/Qwen3-Embedding-0.6B", out, sizeof out, &err);
    CHECK(st == QEMBED_ERR_NOT_FOUND && strstr(err.message, "Qwen/Qwen3-Embedding-0.6B") &&
              strstr(err.message, "/.cache/huggingface/hub/models--Qwen--Qwen3-Embedding-0.6B"),
          "not found: %s", err.message);
    st = qe_resolve_model_path("no-such-dir-or-repo", out, sizeof out, &err);
    CHECK(st == QEMBED_ERR_NOT_FOUND && strstr(err.message, "no-such-dir-or-repo"), "plain name: %s", err.message);

    /* ~/.cache/huggingface/hub with refs/main */
    char hub[2048];
    path_join(hub, sizeof hub, home, ".cache/huggingface/hub");
    make_cache(hub, "models--Qwen--Qwen3-Embedding-0.6B", rev, 1);
    /* a second, newer snapshot that refs/main does not name must not win */
    make_cache(hub, "models--Qwen--Qwen3-Embedding-0.6B", "ffffffffffffffffffffffffffffffffffffffff", 0);
    snprintf(want, sizeof want, "%s/models--Qwen--Qwen3-Embedding-0.6B/snapshots/%s", hub, rev);
    st = qe_resolve_model_path("Qwen/Qwen3-Embedding-0.6B", out, sizeof out, &err);
    CHECK(st == QEMBED_OK && !strcmp(out, want), "home cache: %s / %s", out, err.message);
    /* and the model behind the symlinks loads */
    qe_config cfg;
    st = load_dir(out, &cfg, &err);
    CHECK(st == QEMBED_OK, "load via cache: %s", err.message);

    /* no refs/main: the only snapshot */
    char hub2[2048];
    path_join(hub2, sizeof hub2, g_tmp, "xdg/huggingface/hub");
    make_cache(hub2, "models--org--tiny", rev, 0);
    char xdg[2048];
    path_join(xdg, sizeof xdg, g_tmp, "xdg");
    set_env("XDG_CACHE_HOME", xdg);
    snprintf(want, sizeof want, "%s/models--org--tiny/snapshots/%s", hub2, rev);
    st = qe_resolve_model_path("org/tiny", out, sizeof out, &err);
    CHECK(st == QEMBED_OK && !strcmp(out, want), "xdg cache: %s / %s", out, err.message);

    /* HF_HOME takes precedence over XDG and HOME */
    char hfhome[2048], hub3[2048];
    path_join(hfhome, sizeof hfhome, g_tmp, "hfhome");
    path_join(hub3, sizeof hub3, hfhome, "hub");
    make_cache(hub3, "models--org--tiny", "1111111111111111111111111111111111111111", 1);
    set_env("HF_HOME", hfhome);
    snprintf(want, sizeof want, "%s/models--org--tiny/snapshots/1111111111111111111111111111111111111111", hub3);
    st = qe_resolve_model_path("org/tiny", out, sizeof out, &err);
    CHECK(st == QEMBED_OK && !strcmp(out, want), "HF_HOME: %s / %s", out, err.message);

    /* HF_HUB_CACHE before all */
    char hub4[2048];
    path_join(hub4, sizeof hub4, g_tmp, "hubcache");
    make_cache(hub4, "models--org--tiny", "2222222222222222222222222222222222222222", 1);
    set_env("HF_HUB_CACHE", hub4);
    snprintf(want, sizeof want, "%s/models--org--tiny/snapshots/2222222222222222222222222222222222222222", hub4);
    st = qe_resolve_model_path("org/tiny", out, sizeof out, &err);
    CHECK(st == QEMBED_OK && !strcmp(out, want), "HF_HUB_CACHE: %s / %s", out, err.message);

    /* refs/main naming a snapshot that is not there: fall back to the newest */
    char ref[4096];
    snprintf(ref, sizeof ref, "%s/models--org--tiny/refs/main", hub4);
    spit(ref, "deadbeef\n", 9);
    st = qe_resolve_model_path("org/tiny", out, sizeof out, &err);
    CHECK(st == QEMBED_OK && !strcmp(out, want), "stale ref: %s / %s", out, err.message);

    /* repo ids with path tricks are not looked up */
    st = qe_resolve_model_path("../qembed-no-such-model", out, sizeof out, &err);
    CHECK(st == QEMBED_ERR_NOT_FOUND, "../qembed-no-such-model: %s", err.message);
    st = qe_resolve_model_path("org/../x", out, sizeof out, &err);
    CHECK(st == QEMBED_ERR_NOT_FOUND, "org/../x: %s", err.message);
    run_cmd("rm -rf '%s' '%s' '%s' '%s'", home, xdg, hfhome, hub4);
}

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
    CHECK(fabs(m) < 1e-3 && fabs(sd - 0.02) < 5e-4, "%s: embed mean %g sd %g, expected N(0, 0.02)", what, m, sd);
    stats(&w.layers[1].w_down, &m, &sd);
    CHECK(fabs(m) < 2e-3 && fabs(sd - 0.02) < 2e-3, "%s: w_down mean %g sd %g", what, m, sd);
    stats(&w.final_norm, &m, &sd);
    CHECK(fabs(m - 1) < 0.05 && fabs(sd - 0.1) < 0.04, "%s: norm mean %g sd %g, expected 1 + 0.1 N(0,1)", what, m, sd);
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
    run_cmd("rm -rf '%s' && QEMBED_SYNTH_SCALAR=1 '%s' -q --preset tiny --dtype f32 -o '%s'", f32s, synth, f32s);
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
        CHECK(qe_checkpoint_find(k3, "norm.weight") && !strcmp(qe_checkpoint_find(k3, "norm.weight")->name,
                                                              "model.norm.weight"),
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

    /* usage errors: exit 1, a missing tokenizer: exit 2 with the path named */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' --preset huge -o '%s/x' 2>/dev/null", synth, g_tmp);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "unknown preset: rc %d", rc);
    snprintf(cmd, sizeof cmd, "'%s' --preset tiny --tokenizer /nonexistent-tok -o '%s/x' 2>&1 | grep -q nonexistent-tok/tokenizer.json",
             synth, g_tmp);
    CHECK(system(cmd) == 0, "missing tokenizer is named");
    snprintf(cmd, sizeof cmd, "'%s' --preset tiny --tokenizer /nonexistent-tok -o '%s/x' 2>/dev/null", synth, g_tmp);
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "missing tokenizer: rc %d", rc);
    run_cmd("rm -rf '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s/x'", a, b, c, sh, px, f16, f32, g_tmp);
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
        CHECK(qe_model_n_params(&cfg) == 595776512ull, "n_params %llu", (unsigned long long)qe_model_n_params(&cfg));
        CHECK(cfg.hidden_size == 1024 && cfg.n_layers == 28 && cfg.n_heads == 16 && cfg.n_kv_heads == 8 &&
                  cfg.head_dim == 128 && cfg.intermediate_size == 3072 && cfg.vocab_size == 151669 &&
                  cfg.max_position_embeddings == 32768 && cfg.rope_theta == 1e6 && cfg.rms_norm_eps == 1e-6 &&
                  cfg.tie_word_embeddings,
              "0.6b config");
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_model load|bad|resolve SHARED_MODEL [TMPDIR] | synth SYNTH SHARED_MODEL TMPDIR\n");
        return 1;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "check")) {
        test_check(argv[2], argc > 3 ? argv[3] : "");
        if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
        else printf("all passed\n");
        return failures ? 1 : 0;
    }
    int synth = !strcmp(mode, "synth");
    const char *shared = argv[synth ? 3 : 2];
    struct stat sb;
    if (!shared || stat(shared, &sb) != 0) {
        fprintf(stderr, "test_model: the shared tiny model is missing at %s (set QE_SHARED_DIR)\n",
                shared ? shared : "(none)");
        return 1;
    }
    snprintf(g_shared, sizeof g_shared, "%s", shared);
    const char *tmp = argv[synth ? 4 : 3];
    if (tmp) {
        snprintf(g_tmp, sizeof g_tmp, "%s", tmp);
        run_cmd("mkdir -p '%s'", g_tmp);
    } else if (strcmp(mode, "load")) {
        fprintf(stderr, "test_model %s: TMPDIR needed\n", mode);
        return 1;
    }
    if (!strcmp(mode, "load")) test_load();
    else if (!strcmp(mode, "bad")) test_bad();
    else if (!strcmp(mode, "resolve")) test_resolve();
    else if (synth) test_synth(argv[2]);
    else {
        fprintf(stderr, "test_model: unknown mode %s\n", mode);
        return 1;
    }
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    else printf("all passed\n");
    return failures ? 1 : 0;
}
