/* GGUF models (issue 14): qembed_model_quantize writes the tiny model as
 * f32/bf16/f16/q8_0 GGUF; each loads as a model (config, tensors and the
 * tokenizer from the file alone) and gives the vectors of the safetensors it
 * came from (cosine >= 0.99999; q8_0 >= 0.9995 against the golden f32
 * reference); the GGUF vocabulary gives the tokenizer.json ids on the
 * tokenizer's differential corpus; and every kind of bad file is refused
 * with a message naming the file and what is wrong.
 * usage: test_gguf TINY_MODEL GOLDEN.json CORPUS.jsonl TMPDIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "embed/embed.h"
#include "model/gguf.h"
#include "model_util.h"
#include "qembed.h"

static const char *model_dir, *corpus_path;
static golden_set gold;

/* Embeds the golden texts (through the model's own tokenizer); the tokenizer
 * the file carries must give the golden ids. */
static float *embed_all(const char *model) {
    qembed_error e;
    int d = 0;
    qembed_model *m = NULL;
    float *out = embed_exact(model, gold.texts, gold.n, &d, &m, &e);
    CHECK(out, "%s: %s", model, e.message);
    if (!out) {
        qembed_model_free(m);
        return NULL;
    }
    CHECK(d == gold.dims, "%s: width %d, golden %d", model, d, gold.dims);
    const qembed_tokenizer *tk = qembed_model_tokenizer(m);
    for (int i = 0; i < gold.n; i++) {
        qembed_encode_options eo = qembed_encode_default_options();
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(qembed_tokenizer_encode(tk, gold.texts[i], strlen(gold.texts[i]), &eo, &ids, &n, &e) ==
                  QEMBED_OK,
              "%s", e.message);
        CHECK(n == gold.n_ids[i] && !memcmp(ids, gold.ids[i], n * sizeof *ids),
              "%s: case %d: ids differ from golden", model, i);
        qembed_free(ids);
    }
    qembed_model_free(m);
    if (d != gold.dims) {
        free(out);
        return NULL;
    }
    return out;
}

static void path_of(char *buf, size_t n, const char *name) {
    path_join(buf, n, g_tmp, name);
}

static void test_fidelity(void) {
    float *ref = embed_all(model_dir);
    if (!ref) return;
    static const char *const types[] = {"f32", "bf16", "f16", "q8_0"};
    for (int t = 0; t < 4; t++) {
        char out[2048];
        snprintf(out, sizeof out, "%s/tiny-%s.gguf", g_tmp, types[t]);
        qembed_error e;
        qembed_status s = qembed_model_quantize(model_dir, out, types[t], &e);
        CHECK(s == QEMBED_OK, "quantize %s: %s", types[t], e.message);
        if (s) continue;
        float *v = embed_all(out);
        if (!v) continue;
        double worst = 1, worst_gold = 1;
        for (int i = 0; i < gold.n; i++) {
            double c1 = cosine(v + (size_t)i * gold.dims, ref + (size_t)i * gold.dims, gold.dims);
            double c2 = cosine(v + (size_t)i * gold.dims, gold.vec[i], gold.dims);
            if (c1 < worst) worst = c1;
            if (c2 < worst_gold) worst_gold = c2;
        }
        printf("gguf %-4s: worst cosine vs safetensors %.7f, vs golden f32 %.7f\n", types[t], worst,
               worst_gold);
        if (t < 3)
            CHECK(worst >= 0.99999, "%s GGUF vs safetensors: cosine %.7f", types[t], worst);
        else
            CHECK(worst_gold >= 0.9995, "q8_0 GGUF vs golden f32: cosine %.7f", worst_gold);
        free(v);
    }
    /* a folder holding exactly one .gguf is the model too */
    char dir[1024], file[1100];
    path_of(dir, sizeof dir, "onegguf");
    mkdir(dir, 0755);
    snprintf(file, sizeof file, "%s/other.gguf", dir);
    remove(file); /* from an earlier run */
    snprintf(file, sizeof file, "%s/model.gguf", dir);
    char src[1024];
    path_of(src, sizeof src, "tiny-bf16.gguf");
    size_t n;
    char *b = slurp(src, &n);
    spit(file, b, n);
    float *v = embed_all(dir);
    if (v) CHECK(cosine(v, ref, gold.dims) >= 0.99999, "folder with one gguf");
    free(v);
    /* two: which one is meant is a guess */
    snprintf(file, sizeof file, "%s/other.gguf", dir);
    spit(file, b, n);
    free(b);
    qembed_model_params p = qembed_model_default_params();
    p.log_level = QEMBED_LOG_WARN;
    qembed_model *m = NULL;
    qembed_error e;
    qembed_status s = qembed_model_load(dir, &p, &m, &e);
    CHECK(s != QEMBED_OK && strstr(e.message, "2 .gguf files"), "two ggufs: %s", e.message);
    qembed_model_free(m);
    free(ref);
}

/* The encoding runs on a thread pool; the file must not depend on how many
 * threads: each type written on 1 and on 3 threads (an uneven split of the
 * rows; f32's token_embd, 38 MB, also spans two of the writer's 32 MiB
 * chunks) is byte for byte the file test_fidelity wrote (every core). */
static void test_quantize_threads(void) {
    static const char *const types[] = {"f32", "bf16", "f16", "q8_0"};
    for (int t = 0; t < 4; t++) {
        char all[2048], one[2048];
        snprintf(all, sizeof all, "%s/tiny-%s.gguf", g_tmp, types[t]);
        for (int threads = 1; threads <= 3; threads += 2) {
            snprintf(one, sizeof one, "%s/tiny-%s-t%d.gguf", g_tmp, types[t], threads);
            qembed_error e;
            CHECK(qe_model_quantize(model_dir, one, types[t], threads, &e) == QEMBED_OK,
                  "%s on %d threads: %s", types[t], threads, e.message);
            CHECK(same_bytes(all, one), "%s: the file written on %d threads differs", types[t], threads);
            remove(one);
        }
    }
}

/* A context's activation bytes of the model in `file` (in tmp), for batches
 * of 40 tokens on one thread. */
static uint64_t ctx_bytes(const char *file) {
    char path[2048];
    path_of(path, sizeof path, file);
    qembed_model_params p = qembed_model_default_params();
    p.log_level = QEMBED_LOG_WARN;
    p.max_tokens = 32;
    qembed_model *m = NULL;
    qembed_ctx *c = NULL;
    qembed_error e;
    qembed_ctx_params cp = qembed_ctx_default_params();
    cp.n_threads = 1;
    cp.max_batch_tokens = 40;
    CHECK(qembed_model_load(path, &p, &m, &e) == QEMBED_OK && qembed_ctx_create(m, &cp, &c, &e) == QEMBED_OK,
          "%s: %s", file, e.message);
    uint64_t b = qembed_ctx_activation_bytes(c);
    qembed_ctx_free(c);
    qembed_model_free(m);
    return b;
}

/* The int8 products' activation block is the context's only when a product
 * needs it, sized from the model's shapes: the f32 and bf16 files have none,
 * the q8_0 file one chunk of 3 tiles (40 rows) of the widest Q8_0 product's
 * k/32 records (ffn_down: k 192, 6 records of 640 bytes). */
static void test_q8_block(void) {
    uint64_t f32 = ctx_bytes("tiny-f32.gguf"), bf16 = ctx_bytes("tiny-bf16.gguf");
    uint64_t q8 = ctx_bytes("tiny-q8_0.gguf");
    printf("context bytes, 40 tokens: f32 %llu, bf16 %llu, q8_0 %llu\n", (unsigned long long)f32,
           (unsigned long long)bf16, (unsigned long long)q8);
    CHECK(f32 > 0 && bf16 == f32, "bf16 %llu vs f32 %llu: no Q8 block for either", (unsigned long long)bf16,
          (unsigned long long)f32);
    CHECK(q8 == bf16 + 3 * 6 * 640, "q8_0 %llu: expected bf16's %llu + 11520", (unsigned long long)q8,
          (unsigned long long)bf16);
}

/* The token types the writer gives the added tokens (ids 151643-151668):
 * llama.cpp's converter's (convert_hf_to_gguf.py get_vocab_base): control
 * when tokenizer.json says special or the spelling is "<|...|>", else
 * user-defined. The six FIM/repository tokens are the case in point:
 * "special": false in tokenizer.json, control in llama.cpp's files. */
static const struct {
    const char *text;
    int hf_special, type;
} added_types[] = {
    {"<|endoftext|>", 1, 3},
    {"<|im_start|>", 1, 3},
    {"<|im_end|>", 1, 3},
    {"<|object_ref_start|>", 1, 3},
    {"<|object_ref_end|>", 1, 3},
    {"<|box_start|>", 1, 3},
    {"<|box_end|>", 1, 3},
    {"<|quad_start|>", 1, 3},
    {"<|quad_end|>", 1, 3},
    {"<|vision_start|>", 1, 3},
    {"<|vision_end|>", 1, 3},
    {"<|vision_pad|>", 1, 3},
    {"<|image_pad|>", 1, 3},
    {"<|video_pad|>", 1, 3},
    {"<tool_call>", 0, 4},
    {"</tool_call>", 0, 4},
    {"<|fim_prefix|>", 0, 3},
    {"<|fim_middle|>", 0, 3},
    {"<|fim_suffix|>", 0, 3},
    {"<|fim_pad|>", 0, 3},
    {"<|repo_name|>", 0, 3},
    {"<|file_sep|>", 0, 3},
    {"<tool_response>", 0, 4},
    {"</tool_response>", 0, 4},
    {"<think>", 0, 4},
    {"</think>", 0, 4},
};

static void test_token_types(void) {
    /* the table's premise: tokenizer.json's added tokens and special flags */
    char p[2048];
    path_join(p, sizeof p, model_dir, "tokenizer.json");
    char *js = slurp(p, NULL);
    cJSON *j = cJSON_Parse(js);
    free(js);
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(j, "added_tokens");
    const int n_added = (int)(sizeof added_types / sizeof added_types[0]);
    CHECK(cJSON_GetArraySize(added) == n_added, "tokenizer.json has %d added tokens",
          cJSON_GetArraySize(added));
    for (int i = 0; i < n_added && i < cJSON_GetArraySize(added); i++) {
        const cJSON *a = cJSON_GetArrayItem(added, i);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "content");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        CHECK(cJSON_IsString(c) && !strcmp(c->valuestring, added_types[i].text) && id->valueint == 151643 + i,
              "added token %d", i);
        CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "special")) == added_types[i].hf_special,
              "%s: tokenizer.json special", added_types[i].text);
    }
    cJSON_Delete(j);

    path_of(p, sizeof p, "tiny-bf16.gguf");
    size_t n;
    char *buf = slurp(p, &n);
    qe_gguf *g = NULL;
    qembed_error e;
    CHECK(qe_gguf_parse(buf, n, p, &g, &e) == QEMBED_OK, "%s", e.message);
    const qe_gguf_kv *tok = g ? qe_gguf_find(g, "tokenizer.ggml.tokens") : NULL;
    const qe_gguf_kv *typ = g ? qe_gguf_find(g, "tokenizer.ggml.token_type") : NULL;
    CHECK(tok && typ && typ->arr_type == QE_GGUF_I32 && typ->count == tok->count && tok->count > 151668,
          "no token types");
    if (tok && typ && typ->count == tok->count && tok->count > 151668) {
        const uint8_t *cur = tok->val;
        int checked = 0, normal = 0;
        for (uint64_t i = 0; i < tok->count; i++) {
            uint64_t len;
            const char *ts = qe_gguf_next_str(&cur, &len);
            int32_t ty;
            memcpy(&ty, typ->val + 4 * i, 4);
            if (i < 151643) {
                normal += ty == 1;
                continue;
            }
            int k = (int)(i - 151643);
            if (k >= n_added) {
                CHECK(ty == 5, "id %llu past the vocabulary: type %d, expected 5 (unused)",
                      (unsigned long long)i, ty);
                continue;
            }
            CHECK(len == strlen(added_types[k].text) && !memcmp(ts, added_types[k].text, len),
                  "id %llu: %.*s", (unsigned long long)i, (int)len, ts);
            CHECK(ty == added_types[k].type, "%s: type %d, expected %d", added_types[k].text, ty,
                  added_types[k].type);
            checked++;
        }
        printf("token types: %d normal, %d added tokens as llama.cpp's converter types them\n", normal,
               checked);
        CHECK(normal == 151643 && checked == n_added, "%d normal, %d added checked", normal, checked);
    }
    qe_gguf_free(g);
    free(buf);
}

/* The GGUF vocabulary against tokenizer.json on the differential corpus. */
static void test_tokenizer(void) {
    qembed_tokenizer *a = NULL, *b = NULL;
    qembed_error e;
    char g[1024];
    path_of(g, sizeof g, "tiny-bf16.gguf");
    CHECK(qembed_tokenizer_load(model_dir, &a, &e) == QEMBED_OK, "%s", e.message);
    CHECK(qembed_tokenizer_load(g, &b, &e) == QEMBED_OK, "%s", e.message);
    if (!a || !b) return;
    CHECK(qembed_tokenizer_n_vocab(a) == qembed_tokenizer_n_vocab(b), "n_vocab %zu vs %zu",
          qembed_tokenizer_n_vocab(a), qembed_tokenizer_n_vocab(b));
    size_t n;
    char *buf = slurp(corpus_path, &n);
    int lines = 0, diff = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text");
        if (cJSON_IsString(t)) {
            size_t len = strlen(t->valuestring);
            for (int special = 0; special < 2; special++) {
                qembed_encode_options o = qembed_encode_default_options();
                o.add_special_tokens = special;
                o.parse_special = special;
                int32_t *x = NULL, *y = NULL;
                size_t nx = 0, ny = 0;
                qembed_status sa = qembed_tokenizer_encode(a, t->valuestring, len, &o, &x, &nx, &e);
                qembed_status sb = qembed_tokenizer_encode(b, t->valuestring, len, &o, &y, &ny, &e);
                if (sa != sb || nx != ny || (nx && memcmp(x, y, nx * sizeof *x))) {
                    if (diff++ < 5)
                        fprintf(stderr, "FAIL ids differ on corpus line %d: %.80s\n", lines + 1, line);
                }
                qembed_free(x);
                qembed_free(y);
            }
            lines++;
        }
        cJSON_Delete(j);
    }
    free(buf);
    printf("tokenizer: %d corpus texts x 2 modes, %d differ\n", lines, diff);
    CHECK(lines > 1000 && diff == 0, "%d of %d corpus texts differ", diff, lines);
    qembed_tokenizer_free(a);
    qembed_tokenizer_free(b);
}

/* ---- bad files: each a copy of the bf16 file with one thing broken ---- */
static char *base;
static size_t base_n;

static void expect_bad(const char *name, const void *b, size_t n, const char *words) {
    char p[1024];
    path_of(p, sizeof p, name);
    const char *why = bad_model_problem(p, b, n, words);
    CHECK(!why, "%s: %s", name, why);
}

static void test_bad(void) {
    char g[1024];
    path_of(g, sizeof g, "tiny-bf16.gguf");
    base = slurp(g, &base_n);
    CHECK(base_n > 4096, "no bf16 gguf");
    char *b = malloc(base_n);
    expect_bad("trunc-header.gguf", base, 20, "too short");
    expect_bad("trunc-data.gguf", base, base_n - 100, "past its end");
    memcpy(b, base, base_n), memcpy(b, "GGUG", 4);
    expect_bad("magic.gguf", b, base_n, "bad magic");
    memcpy(b, base, base_n), b[4] = 2;
    expect_bad("version.gguf", b, base_n, "version 2");
    memcpy(b, base, base_n), memset(b + 8, 0xff, 8);
    expect_bad("count.gguf", b, base_n, "tensors");
    memcpy(b, base, base_n), memset(b + 16, 0x7f, 7);
    expect_bad("kvcount.gguf", b, base_n, "metadata entries");
    /* the first key's length far beyond the file */
    memcpy(b, base, base_n), memset(b + 24 + 4, 0x7f, 4);
    expect_bad("keylen.gguf", b, base_n, "longer than the file");
    /* architecture llama (same length) */
    memcpy(b, base, base_n);
    char *a = memmem(b, 4096, "qwen3", 5);
    if (a) memcpy(a, "llama", 5);
    expect_bad("arch.gguf", b, base_n, "architecture \"llama\"");
    size_t q = gguf_tensor_info_at(base, base_n, "blk.1.ffn_up.weight");
    CHECK(q > 0, "tensor info not found");
    if (!q) return;
    /* n_dims u32, ne[2] u64, type u32, offset u64 */
    memcpy(b, base, base_n), b[q - 2] = 'X';
    expect_bad("missing.gguf", b, base_n, "\"blk.1.ffn_up.weight\" is missing");
    memcpy(b, base, base_n), b[q + 4 + 16 + 4] ^= 0x08;
    expect_bad("misaligned.gguf", b, base_n, "not aligned");
    memcpy(b, base, base_n), memset(b + q + 4 + 16 + 4, 0, 8);
    expect_bad("overlap.gguf", b, base_n, "overlap");
    memcpy(b, base, base_n), b[q + 4 + 16] = 3; /* Q4_1: smaller, known, not run */
    expect_bad("q4_1.gguf", b, base_n, "\"blk.1.ffn_up.weight\" has type Q4_1");
    memcpy(b, base, base_n), b[q + 4 + 16] = 99;
    expect_bad("type99.gguf", b, base_n, "ggml type 99");
    memcpy(b, base, base_n), memset(b + q + 4, 0xff, 8);
    expect_bad("dim.gguf", b, base_n, "dimension 0");
    free(b);
    free(base);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: test_gguf TINY_MODEL GOLDEN.json CORPUS.jsonl TMPDIR\n");
        return 2;
    }
    model_test_init(argv[0], argv[1], argv[4]);
    model_dir = argv[1], corpus_path = argv[3];
    golden_read(argv[2], &gold);
    test_fidelity();
    test_quantize_threads();
    test_q8_block();
    test_token_types();
    test_tokenizer();
    test_bad();
    return model_test_done(failures);
}
