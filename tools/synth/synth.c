/* qembed-synth: writes a deterministic, seeded, random-weight Qwen3-Embedding
 * checkpoint in exact Hugging Face layout (config.json, model.safetensors or
 * shards + index, tokenizer files, sentence-transformers files), plus
 * synth_manifest.json saying plainly that the weights are random.
 *
 * The weights are streamed to disk in large blocks and hashed on the way:
 * the model is never held in memory. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/clock.h"
#include "common/sha256.h"
#include "normals.h"
#include "rng.h"
#include "qembed.h"

#ifndef QE_DEFAULT_TOKENIZER_DIR
#define QE_DEFAULT_TOKENIZER_DIR ".deps/qwen3-tokenizer"
#endif

typedef enum { DT_BF16, DT_F16, DT_F32 } out_dtype;

typedef struct preset {
    const char *name;
    int hidden, layers, heads, kv_heads, head_dim, intermediate, vocab, max_pos;
    double theta, eps;
    int tied;
} preset;

/* Shapes of the real Qwen3-Embedding checkpoints (see shared/README.md);
 * tiny is the shared test model's shape; 0.6b-2l is the 0.6B's widths with 2
 * of its 28 layers (every shape a kernel sees, at a CI-sized cost). */
static const preset PRESETS[] = {
    {"tiny", 64, 2, 4, 2, 16, 192, 151669, 32768, 1e6, 1e-6, 1},
    {"0.6b", 1024, 28, 16, 8, 128, 3072, 151669, 32768, 1e6, 1e-6, 1},
    {"0.6b-2l", 1024, 2, 16, 8, 128, 3072, 151669, 32768, 1e6, 1e-6, 1},
    {"4b", 2560, 36, 32, 8, 128, 9728, 151669, 40960, 1e6, 1e-6, 1},
    /* untied as the published 8B's config says; like every preset it writes
     * no lm_head (an embedding model never reads one) */
    {"8b", 4096, 36, 32, 8, 128, 12288, 151665, 40960, 1e6, 1e-6, 0},
};

typedef struct tensor_spec {
    char name[112]; /* as written (with the chosen prefix) */
    char base[96];  /* without prefix: the RNG key, so values do not depend on it */
    int ndim;
    int64_t shape[2];
    int is_norm; /* 1 + 0.1 N(0,1) instead of N(0, 0.02) */
    uint64_t nbytes;
    int shard;
    uint64_t begin; /* offset in its shard's data region */
} tensor_spec;

typedef struct opts {
    const preset *p;
    uint64_t seed;
    out_dtype dtype;
    uint64_t shard_bytes; /* 0: one file */
    const char *prefix;   /* "" or "model." */
    const char *out;
    const char *tok_dir;
} opts;

static void die(const char *fmt, ...) QE_PRINTF(1, 2);
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("qembed-synth: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static size_t dt_size(out_dtype d) {
    return d == DT_F32 ? 4 : 2;
}
static const char *dt_st(out_dtype d) {
    return d == DT_F32 ? "F32" : d == DT_F16 ? "F16" : "BF16";
}
static const char *dt_torch(out_dtype d) {
    return d == DT_F32 ? "float32" : d == DT_F16 ? "float16" : "bfloat16";
}

static int cmp_spec(const void *a, const void *b) {
    return strcmp(((const tensor_spec *)a)->name, ((const tensor_spec *)b)->name);
}

/* The tensor list in safetensors order (sorted by name, as the reference
 * writer does). */
static tensor_spec *make_specs(const opts *o, size_t *n_out) {
    const preset *p = o->p;
    size_t n = 2 + 11 * (size_t)p->layers;
    tensor_spec *t = calloc(n, sizeof *t);
    if (!t) die("out of memory");
    size_t k = 0;
#define ADD(norm, nd, r, c, ...)                                                   \
    do {                                                                           \
        snprintf(t[k].base, sizeof t[k].base, __VA_ARGS__);                        \
        snprintf(t[k].name, sizeof t[k].name, "%s%s", o->prefix, t[k].base);       \
        t[k].is_norm = norm, t[k].ndim = nd, t[k].shape[0] = r, t[k].shape[1] = c; \
        k++;                                                                       \
    } while (0)
    const int64_t H = p->hidden, D = p->head_dim, F = p->intermediate;
    const int64_t QD = (int64_t)p->heads * D, KD = (int64_t)p->kv_heads * D;
    ADD(0, 2, p->vocab, H, "embed_tokens.weight");
    ADD(1, 1, H, 0, "norm.weight");
    for (int l = 0; l < p->layers; l++) {
        ADD(1, 1, H, 0, "layers.%d.input_layernorm.weight", l);
        ADD(0, 2, QD, H, "layers.%d.self_attn.q_proj.weight", l);
        ADD(0, 2, KD, H, "layers.%d.self_attn.k_proj.weight", l);
        ADD(0, 2, KD, H, "layers.%d.self_attn.v_proj.weight", l);
        ADD(0, 2, H, QD, "layers.%d.self_attn.o_proj.weight", l);
        ADD(1, 1, D, 0, "layers.%d.self_attn.q_norm.weight", l);
        ADD(1, 1, D, 0, "layers.%d.self_attn.k_norm.weight", l);
        ADD(1, 1, H, 0, "layers.%d.post_attention_layernorm.weight", l);
        ADD(0, 2, F, H, "layers.%d.mlp.gate_proj.weight", l);
        ADD(0, 2, F, H, "layers.%d.mlp.up_proj.weight", l);
        ADD(0, 2, H, F, "layers.%d.mlp.down_proj.weight", l);
    }
#undef ADD
    for (size_t i = 0; i < n; i++) {
        uint64_t numel = (uint64_t)t[i].shape[0] * (t[i].ndim == 2 ? (uint64_t)t[i].shape[1] : 1);
        t[i].nbytes = numel * dt_size(o->dtype);
    }
    qsort(t, n, sizeof *t, cmp_spec);
    *n_out = n;
    return t;
}

/* ---- buffered, hashed output ---- */

typedef struct out_file {
    int fd;
    const char *path;
    unsigned char *buf;
    size_t len, cap;
    qe_sha256 sha;
    uint64_t written;
} out_file;

static void of_flush(out_file *f) {
    size_t off = 0;
    while (off < f->len) {
        ssize_t w = write(f->fd, f->buf + off, f->len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) die("%s: write failed: %s", f->path, strerror(errno));
        off += (size_t)w;
    }
    qe_sha256_update(&f->sha, f->buf, f->len);
    f->written += f->len;
    f->len = 0;
}

static void of_write(out_file *f, const void *p, size_t n) {
    const unsigned char *s = p;
    while (n) {
        size_t k = f->cap - f->len < n ? f->cap - f->len : n;
        memcpy(f->buf + f->len, s, k);
        f->len += k, s += k, n -= k;
        if (f->len == f->cap) of_flush(f);
    }
}

static qs_normals_fn g_normals; /* chosen once in main */

/* One worker's share of a chunk: elements [i0, i1) of the tensor (i0 even)
 * written to dst. Normals are made a block at a time into floats, then
 * converted in a separate, branch-free loop the compiler vectorises. */
typedef struct gen_job {
    uint64_t key;
    uint64_t i0, i1;
    float scale, shift;
    out_dtype dtype;
    unsigned char *dst;
} gen_job;

static void *gen_run(void *arg) {
    const gen_job *g = arg;
    enum { BLK = 4096 }; /* even */
    float v[BLK];
    for (uint64_t i = g->i0; i < g->i1; i += BLK) {
        uint64_t m = g->i1 - i < BLK ? g->i1 - i : BLK;
        /* i is even: element i + k is half k & 1 of pair (i + k) / 2 */
        g_normals(g->key, i >> 1, (size_t)((m + 1) >> 1), v);
        for (uint64_t k = 0; k < m; k++) v[k] = g->shift + g->scale * v[k];
        unsigned char *d = g->dst + (i - g->i0) * (g->dtype == DT_F32 ? 4 : 2);
        if (g->dtype == DT_F32) {
            memcpy(d, v, m * 4);
        } else {
            uint16_t h[BLK];
            if (g->dtype == DT_BF16)
                for (uint64_t k = 0; k < m; k++) h[k] = qs_f32_to_bf16(v[k]);
            else
                for (uint64_t k = 0; k < m; k++) h[k] = qs_f32_to_f16(v[k]);
            memcpy(d, h, m * 2);
        }
    }
    return NULL;
}

static int g_threads = 1;

/* Generates one tensor's values straight into the output buffer, a buffer's
 * worth at a time, split over g_threads workers. */
static void gen_tensor(out_file *f, const tensor_spec *t, const opts *o) {
    const size_t es = dt_size(o->dtype);
    const uint64_t numel = t->nbytes / es;
    gen_job base = {.key = qs_mix64(o->seed ^ qs_fnv1a(t->base)),
                    .scale = t->is_norm ? 0.1f : 0.02f,
                    .shift = t->is_norm ? 1.0f : 0.0f,
                    .dtype = o->dtype};
    uint64_t i = 0;
    while (i < numel) {
        if (f->cap - f->len < 2 * es) of_flush(f);
        /* even, so a pair never straddles two chunks or workers: the values
         * do not depend on buffer size or thread count */
        uint64_t room = ((f->cap - f->len) / es) & ~(uint64_t)1;
        uint64_t todo = numel - i < room ? numel - i : room;
        unsigned char *dst = f->buf + f->len;
        int nt = (todo >= (1u << 16)) ? g_threads : 1;
        gen_job jobs[64];
        pthread_t tids[64];
        int launched[64] = {0};
        uint64_t per = ((todo / (uint64_t)nt) + 1) & ~(uint64_t)1;
        int nw = 0;
        for (int w = 0; w < nt; w++) {
            uint64_t a = (uint64_t)w * per, b = a + per;
            if (a >= todo) break;
            if (b > todo) b = todo;
            jobs[w] = base;
            jobs[w].i0 = i + a, jobs[w].i1 = i + b;
            jobs[w].dst = dst + a * es;
            nw++;
        }
        for (int w = 1; w < nw; w++) launched[w] = pthread_create(&tids[w], NULL, gen_run, &jobs[w]) == 0;
        gen_run(&jobs[0]);
        for (int w = 1; w < nw; w++) {
            if (launched[w])
                pthread_join(tids[w], NULL);
            else
                gen_run(&jobs[w]); /* no thread to be had: do it here */
        }
        f->len += todo * es;
        i += todo;
    }
}

/* The Qwen3-Embedding post-processor (appends <|endoftext|>, 151643), written
 * exactly as in the published checkpoints' tokenizer.json, indented for its
 * place as a top-level value. */
static const char EMBED_POST_PROCESSOR[] = "{\n"
                                           "    \"type\": \"Sequence\",\n"
                                           "    \"processors\": [\n"
                                           "      {\n"
                                           "        \"type\": \"ByteLevel\",\n"
                                           "        \"add_prefix_space\": false,\n"
                                           "        \"trim_offsets\": false,\n"
                                           "        \"use_regex\": false\n"
                                           "      },\n"
                                           "      {\n"
                                           "        \"type\": \"TemplateProcessing\",\n"
                                           "        \"single\": [\n"
                                           "          {\n"
                                           "            \"Sequence\": {\n"
                                           "              \"id\": \"A\",\n"
                                           "              \"type_id\": 0\n"
                                           "            }\n"
                                           "          },\n"
                                           "          {\n"
                                           "            \"SpecialToken\": {\n"
                                           "              \"id\": \"<|endoftext|>\",\n"
                                           "              \"type_id\": 0\n"
                                           "            }\n"
                                           "          }\n"
                                           "        ],\n"
                                           "        \"pair\": [\n"
                                           "          {\n"
                                           "            \"Sequence\": {\n"
                                           "              \"id\": \"A\",\n"
                                           "              \"type_id\": 0\n"
                                           "            }\n"
                                           "          },\n"
                                           "          {\n"
                                           "            \"Sequence\": {\n"
                                           "              \"id\": \"B\",\n"
                                           "              \"type_id\": 0\n"
                                           "            }\n"
                                           "          },\n"
                                           "          {\n"
                                           "            \"SpecialToken\": {\n"
                                           "              \"id\": \"<|endoftext|>\",\n"
                                           "              \"type_id\": 0\n"
                                           "            }\n"
                                           "          }\n"
                                           "        ],\n"
                                           "        \"special_tokens\": {\n"
                                           "          \"<|endoftext|>\": {\n"
                                           "            \"id\": \"<|endoftext|>\",\n"
                                           "            \"ids\": [\n"
                                           "              151643\n"
                                           "            ],\n"
                                           "            \"tokens\": [\n"
                                           "              \"<|endoftext|>\"\n"
                                           "            ]\n"
                                           "          }\n"
                                           "        }\n"
                                           "      }\n"
                                           "    ]\n"
                                           "  }";

/* Skips one JSON value starting at s[i] (after whitespace); returns the index
 * just past it, or 0 on malformed input. Enough to find the extent of a
 * top-level value: strings (with escapes), nesting of {} and []. */
static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++;
    return i;
}

static size_t skip_string(const char *s, size_t n, size_t i) {
    /* s[i] == '"' */
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return 0;
}

static size_t skip_value(const char *s, size_t n, size_t i) {
    i = skip_ws(s, n, i);
    if (i >= n) return 0;
    if (s[i] == '"') return skip_string(s, n, i);
    if (s[i] != '{' && s[i] != '[') {
        while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n') i++;
        return i;
    }
    int depth = 0;
    for (; i < n; i++) {
        if (s[i] == '"') {
            size_t j = skip_string(s, n, i);
            if (!j) return 0;
            i = j - 1;
        } else if (s[i] == '{' || s[i] == '[') {
            depth++;
        } else if (s[i] == '}' || s[i] == ']') {
            if (--depth == 0) return i + 1;
        }
    }
    return 0;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) die("%s: cannot seek", path);
    long sz = ftell(f);
    if (sz < 0) die("%s: cannot tell size", path);
    rewind(f);
    char *buf = malloc((size_t)sz + 1);
    if (!buf) die("out of memory reading %s", path);
    if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) die("%s: short read", path);
    fclose(f);
    buf[sz] = '\0';
    *len = (size_t)sz;
    return buf;
}

static void write_text(const char *dir, const char *name, const char *text, size_t len) {
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) die("%s: cannot create: %s", tmp, strerror(errno));
    if (fwrite(text, 1, len, f) != len || fclose(f) != 0) die("%s: write failed", tmp);
    if (rename(tmp, path) != 0) die("%s: cannot rename: %s", path, strerror(errno));
}

/* tokenizer.json: the real Qwen3 tokenizer with its post_processor value
 * replaced by the embedding one; every other byte is kept as it is. */
static void write_tokenizer(const opts *o) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tokenizer.json", o->tok_dir);
    size_t n = 0;
    char *s = read_file(path, &n);
    if (!s)
        die("%s: cannot read the Qwen3 tokenizer (%s); run scripts/deps.sh, or pass --tokenizer DIR or set "
            "QEMBED_TOKENIZER_DIR to a directory with tokenizer.json and tokenizer_config.json",
            path, strerror(errno));
    cJSON *check = cJSON_ParseWithLength(s, n);
    if (!check || !cJSON_GetObjectItemCaseSensitive(check, "post_processor"))
        die("%s: not a tokenizer.json (not JSON, or no post_processor)", path);
    cJSON_Delete(check);
    /* walk the top-level object's keys to find "post_processor" */
    size_t i = skip_ws(s, n, 0), vb = 0, ve = 0;
    if (i >= n || s[i] != '{') die("%s: expected a JSON object", path);
    i++;
    for (;;) {
        i = skip_ws(s, n, i);
        if (i >= n || s[i] != '"') die("%s: unexpected byte at %zu", path, i);
        size_t ke = skip_string(s, n, i);
        if (!ke) die("%s: unterminated key", path);
        int hit = (ke - i == 16 && !memcmp(s + i, "\"post_processor\"", 16));
        i = skip_ws(s, n, ke);
        if (i >= n || s[i] != ':') die("%s: expected ':' at %zu", path, i);
        size_t b = skip_ws(s, n, i + 1);
        size_t e = skip_value(s, n, b);
        if (!e) die("%s: malformed value at %zu", path, b);
        if (hit) {
            vb = b, ve = e;
            break;
        }
        i = skip_ws(s, n, e);
        if (i >= n || s[i] != ',') die("%s: post_processor not found", path);
        i++;
    }
    size_t pl = strlen(EMBED_POST_PROCESSOR);
    size_t outn = vb + pl + (n - ve);
    char *out = malloc(outn);
    if (!out) die("out of memory");
    memcpy(out, s, vb);
    memcpy(out + vb, EMBED_POST_PROCESSOR, pl);
    memcpy(out + vb + pl, s + ve, n - ve);
    write_text(o->out, "tokenizer.json", out, outn);
    free(out);
    free(s);

    snprintf(path, sizeof path, "%s/tokenizer_config.json", o->tok_dir);
    s = read_file(path, &n);
    if (!s) die("%s: cannot read: %s", path, strerror(errno));
    write_text(o->out, "tokenizer_config.json", s, n);
    free(s);
}

static void write_config(const opts *o) {
    const preset *p = o->p;
    char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "{\n"
                     "  \"architectures\": [\n"
                     "    \"Qwen3ForCausalLM\"\n"
                     "  ],\n"
                     "  \"attention_bias\": false,\n"
                     "  \"attention_dropout\": 0.0,\n"
                     "  \"bos_token_id\": 151643,\n"
                     "  \"eos_token_id\": 151643,\n"
                     "  \"head_dim\": %d,\n"
                     "  \"hidden_act\": \"silu\",\n"
                     "  \"hidden_size\": %d,\n"
                     "  \"initializer_range\": 0.02,\n"
                     "  \"intermediate_size\": %d,\n"
                     "  \"max_position_embeddings\": %d,\n"
                     "  \"max_window_layers\": %d,\n"
                     "  \"model_type\": \"qwen3\",\n"
                     "  \"num_attention_heads\": %d,\n"
                     "  \"num_hidden_layers\": %d,\n"
                     "  \"num_key_value_heads\": %d,\n"
                     "  \"rms_norm_eps\": %g,\n"
                     "  \"rope_scaling\": null,\n"
                     "  \"rope_theta\": %.1f,\n"
                     "  \"sliding_window\": null,\n"
                     "  \"tie_word_embeddings\": %s,\n"
                     "  \"torch_dtype\": \"%s\",\n"
                     "  \"transformers_version\": \"4.51.3\",\n"
                     "  \"use_cache\": true,\n"
                     "  \"use_sliding_window\": false,\n"
                     "  \"vocab_size\": %d\n"
                     "}",
                     p->head_dim, p->hidden, p->intermediate, p->max_pos, p->layers, p->heads, p->layers,
                     p->kv_heads, p->eps, p->theta, p->tied ? "true" : "false", dt_torch(o->dtype), p->vocab);
    write_text(o->out, "config.json", buf, (size_t)n);
}

static void write_st_files(const opts *o) {
    static const char modules[] =
        "[\n  {\n    \"idx\": 0,\n    \"name\": \"0\",\n    \"path\": \"\",\n"
        "    \"type\": \"sentence_transformers.models.Transformer\"\n  },\n"
        "  {\n    \"idx\": 1,\n    \"name\": \"1\",\n    \"path\": \"1_Pooling\",\n"
        "    \"type\": \"sentence_transformers.models.Pooling\"\n  },\n"
        "  {\n    \"idx\": 2,\n    \"name\": \"2\",\n    \"path\": \"2_Normalize\",\n"
        "    \"type\": \"sentence_transformers.models.Normalize\"\n  }\n]";
    static const char st_cfg[] =
        "{\n  \"prompts\": {\n    \"query\": \"Instruct: Given a web search query, retrieve relevant "
        "passages "
        "that answer the query\\nQuery:\",\n    \"document\": \"\"\n  },\n  \"default_prompt_name\": null,\n"
        "  \"similarity_fn_name\": \"cosine\"\n}";
    write_text(o->out, "modules.json", modules, sizeof modules - 1);
    write_text(o->out, "config_sentence_transformers.json", st_cfg, sizeof st_cfg - 1);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/1_Pooling", o->out);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) die("%s: cannot create: %s", dir, strerror(errno));
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "{\n  \"word_embedding_dimension\": %d,\n  \"pooling_mode_cls_token\": false,\n"
                     "  \"pooling_mode_mean_tokens\": false,\n  \"pooling_mode_max_tokens\": false,\n"
                     "  \"pooling_mode_mean_sqrt_len_tokens\": false,\n"
                     "  \"pooling_mode_weightedmean_tokens\": false,\n  \"pooling_mode_lasttoken\": true,\n"
                     "  \"include_prompt\": true\n}",
                     o->p->hidden);
    write_text(dir, "config.json", buf, (size_t)n);
}

/* Writes the weights: one file or shards of at most shard_bytes of data
 * (a tensor larger than that gets a shard of its own). Returns the shard
 * count and fills names/hashes. */
typedef struct shard_out {
    char name[64];
    char sha[QE_SHA256_HEX_LEN];
    uint64_t bytes;
} shard_out;

static int plan_shards(tensor_spec *t, size_t n, uint64_t shard_bytes) {
    int shard = 0;
    uint64_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (shard_bytes && used > 0 && used + t[i].nbytes > shard_bytes) shard++, used = 0;
        t[i].shard = shard;
        t[i].begin = used;
        used += t[i].nbytes;
    }
    return shard + 1;
}

static void write_weights(const opts *o, tensor_spec *t, size_t n, int n_shards, shard_out *so) {
    out_file f = {0};
    f.cap = 16u << 20;
    f.buf = malloc(f.cap);
    if (!f.buf) die("out of memory");
    for (int s = 0; s < n_shards; s++) {
        if (n_shards == 1)
            snprintf(so[s].name, sizeof so[s].name, "model.safetensors");
        else
            snprintf(so[s].name, sizeof so[s].name, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        /* header */
        size_t hcap = 256 + n * 200, hl = 0;
        char *h = malloc(hcap);
        if (!h) die("out of memory");
        hl += (size_t)snprintf(h + hl, hcap - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
        for (size_t i = 0; i < n; i++) {
            if (t[i].shard != s) continue;
            char shape[64];
            if (t[i].ndim == 2)
                snprintf(shape, sizeof shape, "[%" PRId64 ",%" PRId64 "]", t[i].shape[0], t[i].shape[1]);
            else
                snprintf(shape, sizeof shape, "[%" PRId64 "]", t[i].shape[0]);
            hl += (size_t)snprintf(h + hl, hcap - hl,
                                   ",\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%" PRIu64
                                   ",%" PRIu64 "]}",
                                   t[i].name, dt_st(o->dtype), shape, t[i].begin, t[i].begin + t[i].nbytes);
        }
        hl += (size_t)snprintf(h + hl, hcap - hl, "}");
        /* pad with spaces so the data region (and every tensor) is 8-aligned */
        while (hl % 8) h[hl++] = ' ';
        char path[PATH_MAX], tmp[PATH_MAX + 8];
        snprintf(path, sizeof path, "%s/%s", o->out, so[s].name);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        f.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (f.fd < 0) die("%s: cannot create: %s", tmp, strerror(errno));
        f.path = tmp;
        f.written = 0;
        qembed_error err = {0};
        if (qe_sha256_init(&f.sha, &err) != QEMBED_OK) die("%s", err.message);
        unsigned char len8[8];
        for (int b = 0; b < 8; b++) len8[b] = (unsigned char)((uint64_t)hl >> (8 * b));
        of_write(&f, len8, 8);
        of_write(&f, h, hl);
        free(h);
        for (size_t i = 0; i < n; i++)
            if (t[i].shard == s) gen_tensor(&f, &t[i], o);
        of_flush(&f);
        uint8_t dg[QE_SHA256_LEN];
        qe_sha256_final(&f.sha, dg);
        qe_sha256_hex(dg, so[s].sha);
        so[s].bytes = f.written;
        if (close(f.fd) != 0) die("%s: close failed: %s", tmp, strerror(errno));
        if (rename(tmp, path) != 0) die("%s: cannot rename: %s", path, strerror(errno));
    }
    free(f.buf);
}

static void write_index(const opts *o, const tensor_spec *t, size_t n, const shard_out *so) {
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += t[i].nbytes;
    size_t cap = 256 + n * 200, l = 0;
    char *s = malloc(cap);
    if (!s) die("out of memory");
    l += (size_t)snprintf(s + l, cap - l,
                          "{\n  \"metadata\": {\n    \"total_size\": %" PRIu64 "\n  },\n  \"weight_map\": {",
                          total);
    for (size_t i = 0; i < n; i++)
        l += (size_t)snprintf(s + l, cap - l, "%s\n    \"%s\": \"%s\"", i ? "," : "", t[i].name,
                              so[t[i].shard].name);
    l += (size_t)snprintf(s + l, cap - l, "\n  }\n}\n");
    write_text(o->out, "model.safetensors.index.json", s, l);
    free(s);
}

static void write_manifest(const opts *o, const tensor_spec *t, size_t n, int n_shards, const shard_out *so,
                           double seconds) {
    uint64_t numel = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += t[i].nbytes, numel += t[i].nbytes / dt_size(o->dtype);
    cJSON *m = cJSON_CreateObject();
    cJSON_AddBoolToObject(m, "synthetic", 1);
    cJSON_AddStringToObject(
        m, "note",
        "RANDOM WEIGHTS: this checkpoint was generated by qembed-synth; its vectors carry no "
        "meaning. It has the exact shape and file layout of Qwen3-Embedding for testing and "
        "benchmarking only.");
    cJSON_AddStringToObject(m, "generator", "qembed-synth " QEMBED_VERSION_STRING);
    cJSON_AddStringToObject(m, "preset", o->p->name);
    cJSON_AddNumberToObject(m, "seed", (double)o->seed);
    cJSON_AddStringToObject(m, "dtype", dt_st(o->dtype));
    cJSON_AddStringToObject(m, "tensor_name_prefix", o->prefix);
    cJSON_AddNumberToObject(m, "rope_theta", o->p->theta);
    cJSON_AddStringToObject(m, "tokenizer_post_processor", "qwen3-embedding (appends <|endoftext|> 151643)");
    cJSON_AddNumberToObject(m, "n_params", (double)numel);
    cJSON_AddNumberToObject(m, "weights_bytes", (double)bytes);
    if (n_shards == 1) {
        cJSON_AddStringToObject(m, "model_safetensors_sha256", so[0].sha);
    } else {
        cJSON *fs = cJSON_AddObjectToObject(m, "files_sha256");
        for (int s = 0; s < n_shards; s++) cJSON_AddStringToObject(fs, so[s].name, so[s].sha);
    }
    cJSON_AddStringToObject(
        m, "rng",
        "element i of tensor T: pair j = i/2 takes r = splitmix64 output of counter j under "
        "key mix64(seed ^ fnv1a64(T without prefix)); u1 = ((r>>40)+1)/2^24, u2 = ((r>>16) & "
        "0xffffff)/2^24; Box-Muller in float: even i -> sqrt(-2 ln u1) cos(2 pi u2), odd i -> "
        "sin; ln, sin, cos by Cephes float polynomials (tools/synth/rng.h), bit-identical on "
        "every CPU");
    cJSON *init = cJSON_AddObjectToObject(m, "init");
    cJSON_AddStringToObject(init, "matrices", "N(0, 0.02)");
    cJSON_AddStringToObject(init, "norms", "1 + 0.1*N(0,1)");
    cJSON_AddStringToObject(init, "storage",
                            o->dtype == DT_F32   ? "f32"
                            : o->dtype == DT_F16 ? "f16 RNE"
                                                 : "bf16 RNE");
    (void)seconds; /* not recorded: the manifest must be identical run to run */
    char *text = cJSON_Print(m);
    cJSON_Delete(m);
    if (!text) die("out of memory");
    write_text(o->out, "synth_manifest.json", text, strlen(text));
    free(text);
}

static void usage(FILE *f) {
    fputs("usage: qembed-synth --preset tiny|0.6b|0.6b-2l|4b|8b -o DIR [options]\n"
          "\n"
          "Writes a deterministic random-weight Qwen3-Embedding checkpoint in Hugging Face layout.\n"
          "Its vectors carry no meaning: it is for tests and benchmarks.\n"
          "\n"
          "  -p, --preset NAME      tiny (hidden 64, 2 layers), 0.6b, 4b or 8b (the real model shapes),\n"
          "                         0.6b-2l (the 0.6b widths, 2 layers)\n"
          "  -o, --output DIR       directory to write (created if missing)\n"
          "  -s, --seed N           RNG seed (default 20250605)\n"
          "  -d, --dtype T          bf16 (default), f16 or f32\n"
          "      --shard-bytes B    split weights into shards of at most B bytes + index.json\n"
          "                         (suffixes K, M, G accepted; default: one model.safetensors)\n"
          "      --prefix P         tensor name prefix: none (default, as Qwen3-Embedding) or model.\n"
          "      --tokenizer DIR    directory with the real tokenizer.json and tokenizer_config.json\n"
          "                         (default: $QEMBED_TOKENIZER_DIR, else " QE_DEFAULT_TOKENIZER_DIR ")\n"
          "  -j, --threads N        generator threads (default: all cores, at most 64)\n"
          "      --config-only      write config.json, the tokenizer and the sentence-transformers\n"
          "                         files but no weights (to check a preset's shape cheaply)\n"
          "  -q, --quiet            no progress line\n"
          "  -h, --help\n",
          f);
}

static uint64_t parse_bytes(const char *s) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-') die("--shard-bytes: \"%s\" is not a byte count", s);
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1ull << 10, end++;
    else if (*end == 'M' || *end == 'm')
        mul = 1ull << 20, end++;
    else if (*end == 'G' || *end == 'g')
        mul = 1ull << 30, end++;
    if (*end) die("--shard-bytes: \"%s\" is not a byte count", s);
    if (v == 0 || v > (UINT64_MAX >> 30)) die("--shard-bytes: %s is out of range", s);
    return v * mul;
}

int main(int argc, char **argv) {
    opts o = {.seed = 20250605, .dtype = DT_BF16, .prefix = ""};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    g_threads = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu;
    int quiet = 0, config_only = 0;
    static const struct option lo[] = {{"preset", required_argument, 0, 'p'},
                                       {"output", required_argument, 0, 'o'},
                                       {"seed", required_argument, 0, 's'},
                                       {"dtype", required_argument, 0, 'd'},
                                       {"shard-bytes", required_argument, 0, 'B'},
                                       {"prefix", required_argument, 0, 'P'},
                                       {"tokenizer", required_argument, 0, 'T'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {"config-only", no_argument, 0, 'C'},
                                       {"threads", required_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "p:o:s:d:j:qh", lo, NULL)) != -1) {
        switch (c) {
            case 'p':
                for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
                    if (!strcmp(optarg, PRESETS[i].name)) o.p = &PRESETS[i];
                if (!o.p) {
                    fprintf(stderr,
                            "qembed-synth: unknown preset \"%s\" (expected tiny, 0.6b, 0.6b-2l, 4b or 8b)\n",
                            optarg);
                    return 1;
                }
                break;
            case 'o': o.out = optarg; break;
            case 's': {
                char *end;
                errno = 0;
                o.seed = strtoull(optarg, &end, 0);
                if (errno || *end || !optarg[0] || optarg[0] == '-') {
                    fprintf(stderr, "qembed-synth: --seed: \"%s\" is not a non-negative integer\n", optarg);
                    return 1;
                }
                break;
            }
            case 'd':
                if (!strcmp(optarg, "bf16"))
                    o.dtype = DT_BF16;
                else if (!strcmp(optarg, "f16"))
                    o.dtype = DT_F16;
                else if (!strcmp(optarg, "f32"))
                    o.dtype = DT_F32;
                else {
                    fprintf(stderr, "qembed-synth: --dtype: \"%s\" (expected bf16, f16 or f32)\n", optarg);
                    return 1;
                }
                break;
            case 'B': o.shard_bytes = parse_bytes(optarg); break;
            case 'P':
                if (!strcmp(optarg, "none") || !optarg[0])
                    o.prefix = "";
                else if (!strcmp(optarg, "model.") || !strcmp(optarg, "model"))
                    o.prefix = "model.";
                else {
                    fprintf(stderr, "qembed-synth: --prefix: \"%s\" (expected none or model.)\n", optarg);
                    return 1;
                }
                break;
            case 'T': o.tok_dir = optarg; break;
            case 'q': quiet = 1; break;
            case 'C': config_only = 1; break;
            case 'j': {
                char *end;
                long v = strtol(optarg, &end, 10);
                if (*end || v < 1 || v > 64) {
                    fprintf(stderr, "qembed-synth: --threads: \"%s\" (expected 1 to 64)\n", optarg);
                    return 1;
                }
                g_threads = (int)v;
                break;
            }
            case 'h': usage(stdout); return 0;
            default: usage(stderr); return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qembed-synth: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 1;
    }
    if (!o.p || !o.out) {
        fprintf(stderr, "qembed-synth: --preset and -o are required\n");
        usage(stderr);
        return 1;
    }
    if (!o.tok_dir) o.tok_dir = getenv("QEMBED_TOKENIZER_DIR");
    if (!o.tok_dir || !o.tok_dir[0]) o.tok_dir = QE_DEFAULT_TOKENIZER_DIR;

    /* mkdir -p */
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", o.out) >= (int)sizeof dir) die("%s: path too long", o.out);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) die("%s: cannot create: %s", dir, strerror(errno));
        *p = '/';
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) die("%s: cannot create: %s", dir, strerror(errno));

    const char *simd = "";
    g_normals = qs_pick_normals(&simd);
    double t0 = qe_now_s();
    /* Tokenizer first: a missing tokenizer fails before minutes of writing. */
    write_tokenizer(&o);
    if (config_only) {
        write_config(&o);
        write_st_files(&o);
        return 0;
    }
    size_t n = 0;
    tensor_spec *t = make_specs(&o, &n);
    int n_shards = plan_shards(t, n, o.shard_bytes);
    shard_out *so = calloc((size_t)n_shards, sizeof *so);
    if (!so) die("out of memory");
    /* Remove a previous run's other layout so the directory is unambiguous. */
    char old[PATH_MAX];
    snprintf(old, sizeof old, "%s/%s", o.out,
             n_shards == 1 ? "model.safetensors.index.json" : "model.safetensors");
    unlink(old);
    snprintf(old, sizeof old, "%s/synth_manifest.json", o.out);
    unlink(old);
    write_weights(&o, t, n, n_shards, so);
    if (n_shards > 1) write_index(&o, t, n, so);
    write_config(&o);
    write_st_files(&o);
    double secs = qe_now_s() - t0;
    write_manifest(&o, t, n, n_shards, so, secs);
    uint64_t bytes = 0;
    for (int s = 0; s < n_shards; s++) bytes += so[s].bytes;
    if (!quiet)
        fprintf(stderr,
                "qembed-synth: wrote %s (preset %s, %s, %d file%s, %.1f MB of weights) in %.1f s (%d "
                "threads, %s); random weights: vectors carry no meaning\n",
                o.out, o.p->name, dt_st(o.dtype), n_shards, n_shards > 1 ? "s" : "", bytes / 1e6, secs,
                g_threads, simd);
    free(so);
    free(t);
    return 0;
}
