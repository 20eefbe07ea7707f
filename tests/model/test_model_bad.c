/* Every bad model file of issue 2: test_model_bad SHARED_MODEL_DIR TMPDIR
 *
 * Each case is data (the BAD table): how to break the tiny model, which
 * status code is expected, and which words the message must contain (the
 * file, the tensor or the field, and what was expected). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "model/checkpoint.h"
#include "model/config.h"
#include "model/weights.h"

#include "check.h"
#include "model_util.h"

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
static void m_no_hidden(cJSON *c) {
    cJSON_DeleteItemFromObject(c, "hidden_size");
}
static void mk_config_missing_field(const char *d) {
    with_config(d, m_no_hidden);
}
static void m_layers_str(cJSON *c) {
    cJSON_ReplaceItemInObject(c, "num_hidden_layers", cJSON_CreateString("2"));
}
static void mk_config_wrong_type(const char *d) {
    with_config(d, m_layers_str);
}
static void m_llama(cJSON *c) {
    cJSON_ReplaceItemInObject(c, "architectures",
                              cJSON_CreateStringArray((const char *[]){"LlamaForCausalLM"}, 1));
}
static void mk_config_unknown_arch(const char *d) {
    with_config(d, m_llama);
}
static void m_mt(cJSON *c) {
    cJSON_ReplaceItemInObject(c, "model_type", cJSON_CreateString("qwen2"));
}
static void mk_config_model_type(const char *d) {
    with_config(d, m_mt);
}
static void m_kv3(cJSON *c) {
    cJSON_ReplaceItemInObject(c, "num_key_value_heads", cJSON_CreateNumber(3));
}
static void mk_config_kv_div(const char *d) {
    with_config(d, m_kv3);
}
static void m_neg(cJSON *c) {
    cJSON_ReplaceItemInObject(c, "intermediate_size", cJSON_CreateNumber(-192));
}
static void mk_config_negative(const char *d) {
    with_config(d, m_neg);
}
static void m_huge(cJSON *c) {
    cJSON_ReplaceItemInObject(c, "vocab_size", cJSON_CreateNumber(1e15));
}
static void mk_config_absurd(const char *d) {
    with_config(d, m_huge);
}
static void m_frac(cJSON *c) {
    cJSON_ReplaceItemInObject(c, "hidden_size", cJSON_CreateNumber(64.5));
}
static void mk_config_fraction(const char *d) {
    with_config(d, m_frac);
}
static void m_eps0(cJSON *c) {
    cJSON_ReplaceItemInObject(c, "rms_norm_eps", cJSON_CreateNumber(0));
}
static void mk_config_eps0(const char *d) {
    with_config(d, m_eps0);
}
static void m_dtype(cJSON *c) {
    cJSON_ReplaceItemInObject(c, "torch_dtype", cJSON_CreateString("int8"));
}
static void mk_config_dtype(const char *d) {
    with_config(d, m_dtype);
}
static void m_rope(cJSON *c) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "rope_type", "yarn");
    cJSON_ReplaceItemInObject(c, "rope_scaling", r);
}
static void mk_config_rope_scaling(const char *d) {
    with_config(d, m_rope);
}
static void mk_config_array(const char *d) {
    char p[2048];
    path_join(p, sizeof p, d, "config.json");
    spit(p, "[1, 2]", 6);
}
static void m_hidden128(cJSON *c) {
    cJSON_ReplaceItemInObject(c, "hidden_size", cJSON_CreateNumber(128));
}
static void mk_config_shape_mismatch(const char *d) {
    with_config(d, m_hidden128);
}
static void m_layers3(cJSON *c) {
    cJSON_ReplaceItemInObject(c, "num_hidden_layers", cJSON_CreateNumber(3));
}
static void mk_config_more_layers(const char *d) {
    with_config(d, m_layers3);
}
static void m_layers1(cJSON *c) {
    cJSON_ReplaceItemInObject(c, "num_hidden_layers", cJSON_CreateNumber(1));
}
static void mk_config_fewer_layers(const char *d) {
    with_config(d, m_layers1);
}

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
static void mk_st_tiny_file(const char *d) {
    raw_model_file(d, "\x10\0\0", 3);
}
static void mk_st_empty(const char *d) {
    raw_model_file(d, "", 0);
}
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
    const char h[] =
        "{\"embed_tokens.weight\": {\"dtype\": \"BF16\", \"shape\": [1, 2], \"data_offsets\": [0, 4]";
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
    b[0] = 0x40, b[1] = 0, b[2] = 0, b[3] = 0,
    b[4] = b[5] = b[6] = b[7] = 0; /* 64 bytes of noise as header */
    raw_model_file(d, b, sizeof b);
}
static cJSON *tensor(cJSON *h, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(h, name);
}
static void set_offsets(cJSON *t, double b, double e) {
    cJSON *o = cJSON_CreateArray();
    cJSON_AddItemToArray(o, cJSON_CreateNumber(b));
    cJSON_AddItemToArray(o, cJSON_CreateNumber(e));
    cJSON_ReplaceItemInObject(t, "data_offsets", o);
}
static void m_off_out(cJSON *h) {
    set_offsets(tensor(h, "norm.weight"), (double)g_data_size - 64, (double)g_data_size + 64);
}
static void mk_st_offsets_outside(const char *d) {
    with_header(d, m_off_out);
}
static void m_off_rev(cJSON *h) {
    set_offsets(tensor(h, "layers.0.self_attn.k_norm.weight"), 19487648, 19487616);
}
static void mk_st_offsets_reversed(const char *d) {
    with_header(d, m_off_rev);
}
static void m_off_neg(cJSON *h) {
    set_offsets(tensor(h, "layers.0.self_attn.k_norm.weight"), -32, 0);
}
static void mk_st_offsets_negative(const char *d) {
    with_header(d, m_off_neg);
}
static void m_size(cJSON *h) {
    /* 32 x 64 BF16 needs 4096 bytes; give it 4094 */
    set_offsets(tensor(h, "layers.1.self_attn.v_proj.weight"), 19606784, 19606784 + 4094);
}
static void mk_st_wrong_size(const char *d) {
    with_header(d, m_size);
}
static void m_shape_big(cJSON *h) {
    cJSON *s = cJSON_CreateArray();
    cJSON_AddItemToArray(s, cJSON_CreateNumber(1e12));
    cJSON_AddItemToArray(s, cJSON_CreateNumber(1e12));
    cJSON_ReplaceItemInObject(tensor(h, "layers.0.mlp.up_proj.weight"), "shape", s);
}
static void mk_st_shape_overflow(const char *d) {
    with_header(d, m_shape_big);
}
static void m_dtype_f64(cJSON *h) {
    cJSON_ReplaceItemInObject(tensor(h, "layers.0.mlp.up_proj.weight"), "dtype", cJSON_CreateString("F64"));
}
static void mk_st_dtype_f64(const char *d) {
    with_header(d, m_dtype_f64);
}
static void m_dtype_i8(cJSON *h) {
    cJSON_ReplaceItemInObject(tensor(h, "norm.weight"), "dtype", cJSON_CreateString("I8"));
}
static void mk_st_dtype_i8(const char *d) {
    with_header(d, m_dtype_i8);
}
static void m_dtype_f32(cJSON *h) {
    /* a 64-element norm as F32 needs 256 bytes, not 128 */
    cJSON_ReplaceItemInObject(tensor(h, "norm.weight"), "dtype", cJSON_CreateString("F32"));
}
static void mk_st_dtype_size(const char *d) {
    with_header(d, m_dtype_f32);
}
static void m_misalign(cJSON *h) {
    /* an F32 view of 32 bytes starting 2 bytes into an aligned region */
    cJSON *t = tensor(h, "layers.0.self_attn.k_norm.weight");
    cJSON_ReplaceItemInObject(t, "dtype", cJSON_CreateString("F32"));
    cJSON *s = cJSON_CreateArray();
    cJSON_AddItemToArray(s, cJSON_CreateNumber(7));
    cJSON_ReplaceItemInObject(t, "shape", s);
    set_offsets(t, 19487618, 19487618 + 28);
}
static void mk_st_misaligned(const char *d) {
    with_header(d, m_misalign);
}
static void m_shape_t(cJSON *h) {
    /* transposed q_proj is the classic converter bug; here [64, 64] -> k_proj [64, 32] */
    cJSON *s = cJSON_CreateArray();
    cJSON_AddItemToArray(s, cJSON_CreateNumber(64));
    cJSON_AddItemToArray(s, cJSON_CreateNumber(32));
    cJSON_ReplaceItemInObject(tensor(h, "layers.1.self_attn.k_proj.weight"), "shape", s);
}
static void mk_st_shape_vs_config(const char *d) {
    with_header(d, m_shape_t);
}
static void m_norm_2d(cJSON *h) {
    cJSON *s = cJSON_CreateArray();
    cJSON_AddItemToArray(s, cJSON_CreateNumber(1));
    cJSON_AddItemToArray(s, cJSON_CreateNumber(16));
    cJSON_ReplaceItemInObject(tensor(h, "layers.0.self_attn.q_norm.weight"), "shape", s);
}
static void mk_st_rank_vs_config(const char *d) {
    with_header(d, m_norm_2d);
}
static void m_3d(cJSON *h) {
    cJSON *s = cJSON_CreateArray();
    cJSON_AddItemToArray(s, cJSON_CreateNumber(2));
    cJSON_AddItemToArray(s, cJSON_CreateNumber(4));
    cJSON_AddItemToArray(s, cJSON_CreateNumber(8));
    cJSON_ReplaceItemInObject(tensor(h, "layers.0.self_attn.q_norm.weight"), "shape", s);
}
static void mk_st_rank3(const char *d) {
    with_header(d, m_3d);
}
static void m_missing_t(cJSON *h) {
    cJSON_DeleteItemFromObject(h, "layers.1.mlp.up_proj.weight");
}
static void mk_st_missing_tensor(const char *d) {
    with_header(d, m_missing_t);
}
static void m_no_dtype(cJSON *h) {
    cJSON_DeleteItemFromObject(tensor(h, "norm.weight"), "dtype");
}
static void mk_st_no_dtype(const char *d) {
    with_header(d, m_no_dtype);
}
static void m_entry_str(cJSON *h) {
    cJSON_ReplaceItemInObject(h, "norm.weight", cJSON_CreateString("x"));
}
static void mk_st_entry_not_object(const char *d) {
    with_header(d, m_entry_str);
}
static void m_dup_prefix(cJSON *h) {
    /* the same tensor under both spellings: ambiguous, so an error */
    cJSON_AddItemToObject(h, "model.norm.weight", cJSON_Duplicate(tensor(h, "norm.weight"), 1));
}
static void mk_st_both_spellings(const char *d) {
    with_header(d, m_dup_prefix);
}

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
static void mk_idx_missing_shard(const char *d) {
    make_shards(d, 1, 0, 0);
}
static void mk_idx_traversal(const char *d) {
    make_shards(d, 0, 1, 0);
}
static void mk_idx_lies(const char *d) {
    make_shards(d, 0, 0, 1);
}
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
    cJSON_AddItemToObject(h2, "embed_tokens.weight",
                          cJSON_Duplicate(tensor(g_hdr, "embed_tokens.weight"), 1));
    char p[2048];
    path_join(p, sizeof p, d, "model-00002-of-00002.safetensors");
    write_st(p, h2, g_data_size);
    cJSON_Delete(h2);
}

static const bad_case BAD[] = {
    /* config.json */
    {"config missing", mk_no_config, QEMBED_ERR_IO, {"config.json", "cannot open"}},
    {"config not JSON",
     mk_config_not_json,
     QEMBED_ERR_MODEL_FORMAT,
     {"config.json", "not valid JSON", "byte"}},
    {"config top level array", mk_config_array, QEMBED_ERR_MODEL_FORMAT, {"config.json", "object"}},
    {"config lacks hidden_size",
     mk_config_missing_field,
     QEMBED_ERR_MODEL_FORMAT,
     {"config.json", "\"hidden_size\"", "missing", "integer"}},
    {"config field of wrong type",
     mk_config_wrong_type,
     QEMBED_ERR_MODEL_FORMAT,
     {"config.json", "\"num_hidden_layers\"", "a string", "integer"}},
    {"config unknown architecture",
     mk_config_unknown_arch,
     QEMBED_ERR_UNSUPPORTED,
     {"config.json", "LlamaForCausalLM", "Qwen3ForCausalLM"}},
    {"config model_type qwen2",
     mk_config_model_type,
     QEMBED_ERR_UNSUPPORTED,
     {"config.json", "model_type", "qwen2"}},
    {"config heads not a multiple of kv heads",
     mk_config_kv_div,
     QEMBED_ERR_MODEL_FORMAT,
     {"config.json", "num_attention_heads", "num_key_value_heads", "multiple"}},
    {"config negative size",
     mk_config_negative,
     QEMBED_ERR_MODEL_FORMAT,
     {"config.json", "intermediate_size", "-192"}},
    {"config absurd vocab",
     mk_config_absurd,
     QEMBED_ERR_MODEL_FORMAT,
     {"config.json", "vocab_size", "expected"}},
    {"config fractional size",
     mk_config_fraction,
     QEMBED_ERR_MODEL_FORMAT,
     {"config.json", "hidden_size", "64.5"}},
    {"config zero eps", mk_config_eps0, QEMBED_ERR_MODEL_FORMAT, {"config.json", "rms_norm_eps"}},
    {"config int8 torch_dtype",
     mk_config_dtype,
     QEMBED_ERR_UNSUPPORTED,
     {"config.json", "torch_dtype", "int8"}},
    {"config rope_scaling", mk_config_rope_scaling, QEMBED_ERR_UNSUPPORTED, {"config.json", "rope_scaling"}},
    {"config hidden_size vs weights",
     mk_config_shape_mismatch,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "embed_tokens.weight", "[151669, 64]", "[151669, 128]"}},
    {"config more layers than weights",
     mk_config_more_layers,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.2.input_layernorm.weight", "missing"}},
    {"config fewer layers than weights",
     mk_config_fewer_layers,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.1.", "num_hidden_layers = 1"}},
    /* model.safetensors */
    {"weights missing", mk_no_weights, QEMBED_ERR_IO, {"model.safetensors", "model.safetensors.index.json"}},
    {"only pytorch_model.bin", mk_pytorch_bin, QEMBED_ERR_UNSUPPORTED, {"pytorch_model.bin", "safetensors"}},
    {"file of 3 bytes", mk_st_tiny_file, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors", "too short"}},
    {"empty file", mk_st_empty, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors", "0 bytes"}},
    {"truncated data",
     mk_st_truncated,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "tensor \"", "outside the data region", "truncated"}},
    {"truncated inside the header",
     mk_st_truncated_in_header,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "header length 2440", "larger than the file"}},
    {"header length 2^62",
     mk_st_hlen_huge,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "header length 4611686018427387904"}},
    {"header length past the end",
     mk_st_hlen_past_end,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "header length 33"}},
    {"header not JSON", mk_st_not_json, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors", "not valid JSON"}},
    {"header not an object", mk_st_not_object, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors", "'{'"}},
    {"random bytes", mk_st_garbage, QEMBED_ERR_MODEL_FORMAT, {"model.safetensors"}},
    {"offsets outside the file",
     mk_st_offsets_outside,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "\"norm.weight\"", "outside the data region"}},
    {"offsets reversed",
     mk_st_offsets_reversed,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.0.self_attn.k_norm.weight", "[19487648, 19487616]", "begin after"}},
    {"offsets negative",
     mk_st_offsets_negative,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.0.self_attn.k_norm.weight", "data_offsets"}},
    {"size not dtype x shape",
     mk_st_wrong_size,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.1.self_attn.v_proj.weight", "needs 4096 bytes", "span 4094"}},
    {"shape overflows",
     mk_st_shape_overflow,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.0.mlp.up_proj.weight", "more elements than 2^64"}},
    {"dtype F64",
     mk_st_dtype_f64,
     QEMBED_ERR_UNSUPPORTED,
     {"model.safetensors", "layers.0.mlp.up_proj.weight", "\"F64\"", "BF16, F16, F32"}},
    {"dtype I8", mk_st_dtype_i8, QEMBED_ERR_UNSUPPORTED, {"model.safetensors", "\"norm.weight\"", "\"I8\""}},
    {"dtype changed, size not",
     mk_st_dtype_size,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "\"norm.weight\"", "F32", "needs 256 bytes"}},
    {"misaligned tensor",
     mk_st_misaligned,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.0.self_attn.k_norm.weight", "aligned"}},
    {"shape vs config",
     mk_st_shape_vs_config,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.1.self_attn.k_proj.weight", "[64, 32]", "expected [32, 64]"}},
    {"vector stored as matrix",
     mk_st_rank_vs_config,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.0.self_attn.q_norm.weight", "[1, 16]", "expected [16]"}},
    {"3-d tensor",
     mk_st_rank3,
     QEMBED_ERR_UNSUPPORTED,
     {"model.safetensors", "layers.0.self_attn.q_norm.weight", "3 dimensions"}},
    {"tensor missing",
     mk_st_missing_tensor,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "layers.1.mlp.up_proj.weight", "missing", "model."}},
    {"entry without dtype",
     mk_st_no_dtype,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "\"norm.weight\"", "dtype"}},
    {"entry not an object",
     mk_st_entry_not_object,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "\"norm.weight\""}},
    /* both spellings of one tensor in one checkpoint */
    {"tensor under both prefixes",
     mk_st_both_spellings,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors", "\"norm.weight\"", "both with and without", "prefix"}},
    /* sharded */
    {"index names a missing shard",
     mk_idx_missing_shard,
     QEMBED_ERR_IO,
     {"model.safetensors.index.json", "model-00002-of-00002.safetensors", "missing"}},
    {"index path traversal",
     mk_idx_traversal,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors.index.json", "weight_map", "file name"}},
    {"index lists an absent tensor",
     mk_idx_lies,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors.index.json", "layers.7.mlp.up_proj.weight", "model-00002-of-00002.safetensors"}},
    {"index not JSON",
     mk_idx_not_json,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors.index.json", "not valid JSON"}},
    {"index without weight_map",
     mk_idx_no_map,
     QEMBED_ERR_MODEL_FORMAT,
     {"model.safetensors.index.json", "weight_map"}},
    {"tensor in two shards",
     mk_idx_duplicate,
     QEMBED_ERR_MODEL_FORMAT,
     {"model-0000", "embed_tokens.weight", "twice"}},
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
            CHECK(w.layers[0].q_norm.dtype == QE_F32 && w.layers[0].k_norm.dtype == QE_BF16,
                  "mixed dtypes bound");
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
    CHECK(st == QEMBED_ERR_MODEL_FORMAT && strstr(err.message, "inline") &&
              strstr(err.message, "architectures"),
          "empty config: %s", err.message);
    cJSON_Delete(g_hdr);
    run_cmd("rm -rf '%s'", dir);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_model_bad SHARED_MODEL TMPDIR\n");
        return 1;
    }
    model_test_init("test_model_bad", argv[1], argv[2]);
    test_bad();
    return model_test_done(failures);
}
