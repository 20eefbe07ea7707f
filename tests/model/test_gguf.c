/* GGUF models (issue 14): qembed_model_quantize writes the tiny model as
 * f32/bf16/f16/q8_0 GGUF; each loads as a model (config, tensors and the
 * tokenizer from the file alone) and gives the vectors of the safetensors it
 * came from (cosine >= 0.99999; q8_0 >= 0.9995 against the golden f32
 * reference); the GGUF vocabulary gives the tokenizer.json ids on the
 * tokenizer's differential corpus; and every kind of bad file is refused
 * with a message naming the file and what is wrong.
 * usage: test_gguf TINY_MODEL GOLDEN.json CORPUS.jsonl TMPDIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "qembed.h"

static const char *model_dir, *golden_path, *corpus_path, *tmp;

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    if (fread(b, 1, (size_t)sz, f) != (size_t)sz) sz = 0;
    b[sz] = '\0';
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void spit(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

static double cosine(const float *a, const float *b, int n) {
    double d = 0, na = 0, nb = 0;
    for (int i = 0; i < n; i++)
        d += (double)a[i] * b[i], na += (double)a[i] * a[i], nb += (double)b[i] * b[i];
    return d / sqrt(na * nb);
}

/* The golden cases: texts, ids and f32 reference vectors. */
static int nc, dims;
static char **texts;
static float **gold;
static int32_t **gold_ids;
static size_t *gold_n;

static void read_golden(void) {
    size_t n;
    char *buf = slurp(golden_path, &n);
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(j, "cases");
    nc = cJSON_GetArraySize(cases);
    texts = calloc((size_t)nc, sizeof *texts);
    gold = calloc((size_t)nc, sizeof *gold);
    gold_ids = calloc((size_t)nc, sizeof *gold_ids);
    gold_n = calloc((size_t)nc, sizeof *gold_n);
    for (int i = 0; i < nc; i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, "embedding");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "token_ids");
        texts[i] = strdup(cJSON_GetObjectItemCaseSensitive(c, "text")->valuestring);
        dims = cJSON_GetArraySize(e);
        gold[i] = malloc((size_t)dims * sizeof(float));
        for (int k = 0; k < dims; k++) gold[i][k] = (float)cJSON_GetArrayItem(e, k)->valuedouble;
        gold_n[i] = (size_t)cJSON_GetArraySize(t);
        gold_ids[i] = malloc(gold_n[i] * sizeof(int32_t));
        for (size_t k = 0; k < gold_n[i]; k++) gold_ids[i][k] = cJSON_GetArrayItem(t, (int)k)->valueint;
    }
    cJSON_Delete(j);
}

/* Embeds the golden texts (through the model's own tokenizer), exact f32
 * activations so that only the weights differ between runs. */
static float *embed_all(const char *model) {
    qembed_model_params p = qembed_model_default_params();
    p.exact = 1;
    p.n_threads = 2;
    p.log_level = QEMBED_LOG_WARN;
    qembed_model *m = NULL;
    qembed_error e;
    if (qembed_model_load(model, &p, &m, &e) != QEMBED_OK) {
        CHECK(0, "cannot load %s: %s", model, e.message);
        return NULL;
    }
    qembed_ctx_params cp = qembed_ctx_default_params();
    qembed_ctx *c = NULL;
    CHECK(qembed_ctx_create(m, &cp, &c, &e) == QEMBED_OK, "ctx: %s", e.message);
    float *out = calloc((size_t)nc * (size_t)dims, sizeof(float));
    size_t *lens = calloc((size_t)nc, sizeof *lens);
    for (int i = 0; i < nc; i++) lens[i] = strlen(texts[i]);
    qembed_embed_options o = qembed_embed_default_options();
    qembed_status s = qembed_ctx_embed(c, (const char *const *)texts, lens, (size_t)nc, &o, out, &e);
    CHECK(s == QEMBED_OK, "%s: embed: %s", model, e.message);
    /* the tokenizer the file carries gives the golden ids */
    const qembed_tokenizer *tk = qembed_model_tokenizer(m);
    for (int i = 0; i < nc; i++) {
        qembed_encode_options eo = qembed_encode_default_options();
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(qembed_tokenizer_encode(tk, texts[i], lens[i], &eo, &ids, &n, &e) == QEMBED_OK, "%s",
              e.message);
        CHECK(n == gold_n[i] && !memcmp(ids, gold_ids[i], n * sizeof *ids),
              "%s: case %d: ids differ from golden", model, i);
        qembed_free(ids);
    }
    free(lens);
    qembed_ctx_free(c);
    qembed_model_free(m);
    return out;
}

static void path_of(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmp, name);
}

static void test_fidelity(void) {
    float *ref = embed_all(model_dir);
    if (!ref) return;
    static const char *const types[] = {"f32", "bf16", "f16", "q8_0"};
    for (int t = 0; t < 4; t++) {
        char out[1024];
        snprintf(out, sizeof out, "%s/tiny-%s.gguf", tmp, types[t]);
        qembed_error e;
        qembed_status s = qembed_model_quantize(model_dir, out, types[t], &e);
        CHECK(s == QEMBED_OK, "quantize %s: %s", types[t], e.message);
        if (s) continue;
        float *v = embed_all(out);
        if (!v) continue;
        double worst = 1, worst_gold = 1;
        for (int i = 0; i < nc; i++) {
            double c1 = cosine(v + (size_t)i * dims, ref + (size_t)i * dims, dims);
            double c2 = cosine(v + (size_t)i * dims, gold[i], dims);
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
    if (b) spit(file, b, n);
    float *v = embed_all(dir);
    if (v) CHECK(cosine(v, ref, dims) >= 0.99999, "folder with one gguf");
    free(v);
    /* two: which one is meant is a guess */
    snprintf(file, sizeof file, "%s/other.gguf", dir);
    if (b) spit(file, b, n);
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
    CHECK(buf, "cannot read %s", corpus_path);
    int lines = 0, diff = 0;
    for (char *line = buf ? strtok(buf, "\n") : NULL; line; line = strtok(NULL, "\n")) {
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
    spit(p, b, n);
    qembed_model_params mp = qembed_model_default_params();
    mp.log_level = QEMBED_LOG_WARN;
    qembed_model *m = NULL;
    qembed_error e;
    memset(&e, 0, sizeof e);
    qembed_status s = qembed_model_load(p, &mp, &m, &e);
    CHECK(s != QEMBED_OK, "%s: loaded", name);
    CHECK(strstr(e.message, p) != NULL, "%s: message does not name the file: %s", name, e.message);
    CHECK(strstr(e.message, words) != NULL, "%s: expected \"%s\" in: %s", name, words, e.message);
    qembed_model_free(m);
}

/* Offset of a tensor info's fields after its name (n_dims). */
static size_t info_of(const char *b, size_t n, const char *tname) {
    size_t l = strlen(tname);
    for (size_t i = 8; i + l + 8 < n; i++)
        if (!memcmp(b + i, tname, l) && !memcmp(b + i - 8, &(uint64_t){l}, 8)) return i + l;
    return 0;
}

static void test_bad(void) {
    char g[1024];
    path_of(g, sizeof g, "tiny-bf16.gguf");
    base = slurp(g, &base_n);
    CHECK(base && base_n > 4096, "no bf16 gguf");
    if (!base) return;
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
    size_t q = info_of(base, base_n, "blk.1.ffn_up.weight");
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
    model_dir = argv[1], golden_path = argv[2], corpus_path = argv[3], tmp = argv[4];
    char mk[1024];
    snprintf(mk, sizeof mk, "%s", tmp);
    for (char *c = mk + 1; *c; c++)
        if (*c == '/') *c = '\0', mkdir(mk, 0755), *c = '/';
    mkdir(tmp, 0755);
    read_golden();
    test_fidelity();
    test_tokenizer();
    test_bad();
    if (failures) fprintf(stderr, "%d failure(s)\n", failures);
    return failures != 0;
}
