/* GGUF files with ggml's 4-6 bit block types (issue 14):
 *  - layout: llama.cpp's Q4_K_M and Q5_K_M mixtures as qembed's writer
 *    chooses them (quant_mix.c) are, tensor for tensor, the layouts of the
 *    files llama.cpp's own llama-quantize wrote from the 0.6B-shape model
 *    (data/q4_k_m-0.6b-layout.txt, data/q5_k_m-0.6b-layout.txt);
 *  - tiny: `qembed_model_quantize` writes the tiny model as q4_k_m, q5_k_m,
 *    q6_k, q5_0 and q4_0; each file's tensor types are llama.cpp's (its rows
 *    of 64 are not whole 256-blocks, so the K-quants fall back to Q5_0/Q8_0
 *    as llama.cpp's do), it loads, and its vectors are within a stated
 *    cosine of the golden f32 reference;
 *  - 0.6b (when its path is given): the 0.6B-shape model written as q4_k_m
 *    has exactly the llama.cpp file's tensor types, and its vectors (Q4_K
 *    and Q6_K products through the whole model) are within a stated cosine
 *    of the bf16 checkpoint's;
 *  - bad files: a K-quant tensor whose rows are not whole 256-blocks, and one
 *    whose size runs past the data, are refused naming the tensor.
 * usage: test_gguf_kquant TINY_MODEL GOLDEN.json LAYOUT.txt TMPDIR [MODEL_0_6B] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "embed/embed.h"
#include "embed/quant_mix.h"
#include "model/gguf.h"
#include "model_util.h"
#include "qembed.h"

static golden_set gold;

/* Embeds the first n golden texts with exact f32 activations (only the
 * weights differ between runs); *dim_out gets the model's width. */
static float *embed_texts(const char *model, int n, int *dim_out) {
    qembed_error e;
    float *out = embed_exact(model, gold.texts, n, dim_out, NULL, &e);
    CHECK(out, "%s: %s", model, e.message);
    return out;
}

/* ---- llama.cpp's layout ---- */

typedef struct lay {
    char name[64];
    char type[8];
} lay;
static lay *layout;
static int n_layout;

static int read_layout_file(const char *path, lay **out) {
    size_t n;
    char *buf = slurp(path, &n);
    lay *l = calloc(512, sizeof *l);
    int k = 0;
    for (char *line = strtok(buf, "\n"); line && k < 512; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        if (sscanf(line, "%63s %7s", l[k].name, l[k].type) == 2) k++;
    }
    free(buf);
    CHECK(k == 310, "%s has %d tensors, expected 310 (28 layers x 11 + 2)", path, k);
    *out = l;
    return k;
}

static void read_layout(const char *path) {
    n_layout = read_layout_file(path, &layout);
}

/* "blk.N.role.weight" -> role, N; "token_embd.weight" -> token_embd, -1. 0 for 1-D names. */
static int role_of(const char *name, char *role, size_t rn, int *il) {
    *il = -1;
    if (!strncmp(name, "blk.", 4)) {
        char *end;
        *il = (int)strtol(name + 4, &end, 10);
        name = end + 1;
    }
    const char *dot = strstr(name, ".weight");
    if (!dot || (size_t)(dot - name) >= rn) return 0;
    memcpy(role, name, (size_t)(dot - name));
    role[dot - name] = '\0';
    return strstr(role, "norm") == NULL;
}

/* Our mixture for the 0.6B shape (28 layers; rows of 1024, 2048 or 3072)
 * against llama.cpp's file of that type. */
static void check_layout(const lay *l, int n, qe_ftype ft, const char *what) {
    int checked = 0;
    for (int i = 0; i < n; i++) {
        char role[32];
        int il;
        if (!role_of(l[i].name, role, sizeof role, &il)) continue; /* norms: F32, not quantized */
        CHECK(strcmp(l[i].type, "F32") != 0, "%s: %s is F32 in llama.cpp's file", what, l[i].name);
        int64_t ne0 = !strcmp(role, "attn_output") ? 2048 : !strcmp(role, "ffn_down") ? 3072 : 1024;
        uint32_t t = qe_quant_mix_type(ft, role, il, 28, ne0);
        CHECK(!strcmp(qe_ggml_type_name(t), l[i].type), "%s: %s: ours %s, llama.cpp's %s", what, l[i].name,
              qe_ggml_type_name(t), l[i].type);
        checked++;
    }
    printf("layout: %d quantized tensors of llama.cpp's 0.6B %s file, our mixture agrees on each\n", checked,
           what);
    CHECK(checked == 28 * 7 + 1, "%s: checked %d tensors", what, checked);
}

static void test_layout(const char *q4_path) {
    check_layout(layout, n_layout, QE_FT_Q4_K_M, "Q4_K_M");
    /* the Q5_K_M file's layout sits beside the Q4_K_M one */
    char p[1024];
    snprintf(p, sizeof p, "%s", q4_path);
    char *at = strstr(p, "q4_k_m");
    CHECK(at != NULL, "layout path %s does not name q4_k_m", q4_path);
    if (!at) return;
    memcpy(at, "q5_k_m", 6);
    lay *l5 = NULL;
    int n5 = read_layout_file(p, &l5);
    if (l5) check_layout(l5, n5, QE_FT_Q5_K_M, "Q5_K_M");
    free(l5);
}

/* The types in a written file, by tensor name (NULL when absent). */
static const char *type_in(const qe_gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return qe_ggml_type_name(g->tensors[i].type);
    return NULL;
}

static qe_gguf *parse_file(const char *path, char **buf) {
    size_t n;
    *buf = slurp(path, &n);
    qe_gguf *g = NULL;
    qembed_error e;
    CHECK(qe_gguf_parse(*buf, n, path, &g, &e) == QEMBED_OK, "%s: cannot parse: %s", path, e.message);
    return g;
}

/* ---- the tiny model in each type ---- */

typedef struct tiny_case {
    const char *type;
    /* types of token_embd, layer 0's attn_v / ffn_down / attn_q, layer 1's attn_v / ffn_down / ffn_up:
     * llama.cpp's rules with its fallbacks for rows of 64 and 192 */
    const char *want[7];
    double min_cos; /* worst cosine against the golden f32 vectors */
} tiny_case;

static void test_tiny(const char *model_dir) {
    /* 2 layers: use_more_bits is true for layer 1 only (7*2/8 = 1) */
    static const tiny_case cases[] = {
        {"q4_k_m", {"Q8_0", "Q5_0", "Q5_0", "Q5_0", "Q8_0", "Q8_0", "Q5_0"}, 0.995},
        {"q5_k_m", {"Q8_0", "Q5_0", "Q5_0", "Q5_0", "Q8_0", "Q8_0", "Q5_0"}, 0.995},
        {"q6_k", {"Q8_0", "Q8_0", "Q8_0", "Q8_0", "Q8_0", "Q8_0", "Q8_0"}, 0.9995},
        {"q5_0", {"Q8_0", "Q5_0", "Q5_0", "Q5_0", "Q5_0", "Q5_0", "Q5_0"}, 0.995},
        {"q4_0", {"Q8_0", "Q4_0", "Q4_0", "Q4_0", "Q4_0", "Q4_0", "Q4_0"}, 0.98},
    };
    static const char *const names[] = {"token_embd.weight",   "blk.0.attn_v.weight", "blk.0.ffn_down.weight",
                                        "blk.0.attn_q.weight", "blk.1.attn_v.weight", "blk.1.ffn_down.weight",
                                        "blk.1.ffn_up.weight"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char out[2048];
        snprintf(out, sizeof out, "%s/tiny-%s.gguf", g_tmp, cases[c].type);
        qembed_error e;
        qembed_status s = qembed_model_quantize(model_dir, out, cases[c].type, &e);
        CHECK(s == QEMBED_OK, "quantize %s: %s", cases[c].type, e.message);
        if (s) continue;
        /* the encoding on one thread gives the same bytes (quantize.c) */
        char one[2048];
        snprintf(one, sizeof one, "%s/tiny-%s-t1.gguf", g_tmp, cases[c].type);
        CHECK(qe_model_quantize(model_dir, one, cases[c].type, 1, &e) == QEMBED_OK, "%s: %s", cases[c].type,
              e.message);
        CHECK(same_bytes(out, one), "%s: the file written on one thread differs", cases[c].type);
        remove(one);
        char *buf;
        qe_gguf *g = parse_file(out, &buf);
        for (int k = 0; g && k < 7; k++) {
            const char *t = type_in(g, names[k]);
            CHECK(t && !strcmp(t, cases[c].want[k]), "%s: %s is %s, expected %s", cases[c].type, names[k],
                  t ? t : "missing", cases[c].want[k]);
        }
        CHECK(g && !strcmp(type_in(g, "blk.1.ffn_norm.weight"), "F32"), "%s: norms must stay F32",
              cases[c].type);
        qe_gguf_free(g);
        free(buf);
        int d = 0;
        float *v = embed_texts(out, gold.n, &d);
        if (!v) continue;
        CHECK(d == gold.dims, "%s: width %d, golden %d", cases[c].type, d, gold.dims);
        double worst = 1;
        for (int i = 0; d == gold.dims && i < gold.n; i++) {
            double cs = cosine(v + (size_t)i * d, gold.vec[i], d);
            if (cs < worst) worst = cs;
        }
        printf("tiny %-6s: worst cosine vs golden f32 over %d cases %.6f (at least %.4f required)\n",
               cases[c].type, gold.n, worst, cases[c].min_cos);
        CHECK(worst >= cases[c].min_cos, "%s: worst cosine %.6f", cases[c].type, worst);
        free(v);
    }
}

/* ---- the 0.6B shape as Q4_K_M ---- */

static void test_06b(const char *model_dir) {
    char out[2048];
    snprintf(out, sizeof out, "%s/synth-0.6b-q4_k_m.gguf", g_tmp);
    qembed_error e;
    qembed_status s = qembed_model_quantize(model_dir, out, "q4_k_m", &e);
    CHECK(s == QEMBED_OK, "quantize 0.6b: %s", e.message);
    if (s) return;
    char *buf;
    qe_gguf *g = parse_file(out, &buf);
    if (g) {
        CHECK(g->n_tensors == (uint64_t)n_layout, "%llu tensors, llama.cpp's file has %d",
              (unsigned long long)g->n_tensors, n_layout);
        int same = 0;
        for (int i = 0; i < n_layout; i++) {
            const char *t = type_in(g, layout[i].name);
            CHECK(t && !strcmp(t, layout[i].type), "0.6b q4_k_m: %s is %s, llama.cpp's is %s", layout[i].name,
                  t ? t : "missing", layout[i].type);
            same += t && !strcmp(t, layout[i].type);
        }
        printf("0.6b q4_k_m: %d of %d tensor types as in llama.cpp's Q4_K_M file\n", same, n_layout);
    }
    qe_gguf_free(g);
    free(buf);
    /* vectors against the checkpoint's own (bf16 weights, f32 activations) */
    const int n = gold.n < 8 ? gold.n : 8;
    int d1 = 0, d2 = 0;
    float *ref = embed_texts(model_dir, n, &d1), *v = embed_texts(out, n, &d2);
    if (ref && v && d1 == d2) {
        double worst = 1;
        for (int i = 0; i < n; i++) {
            double cs = cosine(v + (size_t)i * d1, ref + (size_t)i * d1, d1);
            if (cs < worst) worst = cs;
        }
        printf(
            "0.6b q4_k_m: worst cosine vs the bf16 checkpoint over %d cases %.6f (at least 0.95 required)\n",
            n, worst);
        CHECK(worst >= 0.95, "0.6b q4_k_m: worst cosine %.6f", worst);
    }
    free(ref);
    free(v);
    remove(out); /* 380 MB */
}

/* ---- bad files ---- */

static void expect_bad(const char *name, const void *b, size_t n, const char *words) {
    char p[1024];
    path_join(p, sizeof p, g_tmp, name);
    const char *why = bad_model_problem(p, b, n, words);
    CHECK(!why, "%s: %s", name, why);
}

static void test_bad(void) {
    char p[1024];
    path_join(p, sizeof p, g_tmp, "tiny-q4_0.gguf");
    size_t n;
    char *base = slurp(p, &n);
    CHECK(n > 4096, "no q4_0 gguf");
    char *b = malloc(n);
    /* n_dims u32, ne[2] u64, type u32, offset u64 */
    size_t q = gguf_tensor_info_at(base, n, "blk.1.ffn_up.weight");
    CHECK(q > 0, "tensor info not found");
    if (q) {
        memcpy(b, base, n), b[q + 4 + 16] = 12; /* Q4_K on rows of 64 */
        expect_bad("kq-rowlen.gguf", b, n,
                   "\"blk.1.ffn_up.weight\": row of 64 elements is not a multiple of the Q4_K block (256)");
    }
    /* the tensor written last, retyped Q4_K with rows of 256: its bytes run past the data */
    q = gguf_tensor_info_at(base, n, "blk.1.ffn_down.weight");
    CHECK(q > 0, "tensor info not found");
    if (q) {
        memcpy(b, base, n), b[q + 4 + 16] = 12;
        uint64_t ne0 = 256;
        memcpy(b + q + 4, &ne0, 8);
        expect_bad("kq-size.gguf", b, n, "\"blk.1.ffn_down.weight\": bytes");
    }
    free(b);
    free(base);
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: test_gguf_kquant TINY_MODEL GOLDEN.json LAYOUT.txt TMPDIR [MODEL_0_6B]\n");
        return 2;
    }
    model_test_init(argv[0], argv[1], argv[4]);
    golden_read(argv[2], &gold);
    read_layout(argv[3]);
    test_layout(argv[3]);
    if (argc == 6) {
        test_06b(argv[5]);
    } else {
        test_tiny(argv[1]);
        test_bad();
    }
    return model_test_done(failures);
}
