/* The whole model on the Vulkan device, through the public API, against the
 * golden vectors and the CPU backend (exact mode: f32 activations, what the
 * shaders compute): the shared tiny model's golden cases, the tiny model in
 * f32/f16/bf16, a split across vulkan0 and cpu, batched versus one at a time,
 * a 4,500-token input, and the fall-backs (a device too small, a software
 * device not asked for). Software devices (lavapipe) are allowed here with
 * QEMBED_VULKAN_SOFTWARE=1. Exit 77 (skipped) without a Vulkan device.
 *
 * usage: test_vk_model TINY_DIR GOLDEN_JSON TINY_F32 TINY_F16 TINY_BF16 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/vulkan/vk_backend.h"
#include "backend/vulkan/vk_internal.h"
#include "backend/vulkan/vk_loader.h"
#include "check.h"
#include "cosine.h"
#include "common/clock.h"
#include "embed/embed.h"
#include "qembed.h"

static char warns[8192];
static void on_log(qembed_log_level lv, const char *line, void *user) {
    if (lv == QEMBED_LOG_WARN && strlen(warns) + strlen(line) + 2 < sizeof warns) {
        strcat(warns, line);
        strcat(warns, "\n");
    }
}

typedef struct opts {
    qembed_compute_units units;
    int exact;
    uint64_t gpu_limit;
    size_t max_tokens;
} opts;

static qembed_model *load(const char *dir, opts o) {
    qembed_model_params p = qembed_model_default_params();
    p.compute_units = o.units;
    p.exact = o.exact;
    p.n_threads = 2;
    p.gpu_memory_limit = o.gpu_limit;
    p.max_tokens = o.max_tokens ? o.max_tokens : 512;
    p.max_batch_tokens = p.max_tokens;
    p.log_fn = on_log;
    warns[0] = '\0';
    qembed_model *m = NULL;
    qembed_error e;
    if (qembed_model_load(dir, &p, &m, &e) != QEMBED_OK) {
        fprintf(stderr, "FAIL: cannot load %s: %s\n", dir, e.message);
        failures++;
        return NULL;
    }
    return m;
}

/* Embeds n id sequences; out: (n, hidden), L2-normalised. */
static int embed(const qembed_model *m, const int32_t *const *ids, const size_t *lens, size_t n, float *out) {
    qembed_ctx *c = NULL;
    qembed_error e;
    int ok = qembed_ctx_create(m, NULL, &c, &e) == QEMBED_OK;
    if (ok) ok = qembed_ctx_embed_tokens(c, ids, lens, n, NULL, out, &e) == QEMBED_OK;
    if (!ok) fprintf(stderr, "embed: %s\n", e.message);
    qembed_ctx_free(c);
    return ok;
}

/* A few inputs of odd lengths with deterministic ids. */
#define N_IN 5
static const size_t in_lens[N_IN] = {1, 7, 50, 3, 301};
static int32_t *in_ids[N_IN];
static void make_inputs(int vocab) {
    uint64_t s = 12345;
    for (int i = 0; i < N_IN; i++) {
        in_ids[i] = malloc(in_lens[i] * sizeof(int32_t));
        for (size_t k = 0; k < in_lens[i]; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            in_ids[i][k] = (int32_t)((s >> 33) % (uint64_t)vocab);
        }
    }
}

static int hidden(const qembed_model *m) {
    qembed_model_info in;
    qembed_model_get_info(m, &in);
    return in.hidden_size;
}

static int on_vulkan(const qembed_model *m) {
    return strstr(qembed_model_placement(m), "vulkan0 (") && strstr(qembed_model_placement(m), "layers") &&
           m->plan.seg[0].kind == QE_DEV_VULKAN;
}

/* Vulkan (all layers) against the CPU backend, exact mode. */
static void compare_with_cpu(const char *dir, const char *what, double min_cos) {
    qembed_model *g = load(dir, (opts){QEMBED_UNITS_CPU_AND_GPU, 1, 0, 0});
    qembed_model *c = load(dir, (opts){QEMBED_UNITS_CPU_ONLY, 1, 0, 0});
    if (!g || !c) goto out;
    CHECK(on_vulkan(g) && g->plan.n_segments == 1, "%s: not placed on vulkan0:\n%s", what,
          qembed_model_placement(g));
    int H = hidden(g);
    float *a = malloc((size_t)N_IN * H * 4), *b = malloc((size_t)N_IN * H * 4);
    CHECK(embed(g, (const int32_t *const *)in_ids, in_lens, N_IN, a) &&
              embed(c, (const int32_t *const *)in_ids, in_lens, N_IN, b),
          "%s: embed", what);
    for (int i = 0; i < N_IN; i++) {
        double cs = cosine(a + (size_t)i * H, b + (size_t)i * H, H);
        CHECK(cs >= min_cos, "%s: input %d (%zu tokens): cosine %.8f vulkan vs cpu", what, i, in_lens[i], cs);
    }
    free(a);
    free(b);
out:
    qembed_model_free(g);
    qembed_model_free(c);
}

/* ---- the golden cases on the Vulkan device ---- */
static void test_golden(const char *dir, const char *golden_path) {
    FILE *f = fopen(golden_path, "rb");
    CHECK(f, "cannot open %s", golden_path);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    buf[fread(buf, 1, (size_t)sz, f)] = '\0';
    fclose(f);
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(j, "cases");
    int nc = cJSON_GetArraySize(cases);
    CHECK(nc > 0, "no golden cases");
    qembed_model *m = load(dir, (opts){QEMBED_UNITS_CPU_AND_GPU, 1, 0, 0});
    if (m) {
        CHECK(on_vulkan(m), "golden: not on vulkan0:\n%s", qembed_model_placement(m));
        int H = hidden(m);
        float *out = malloc((size_t)H * 4), *gold = malloc((size_t)H * 4);
        for (int i = 0; i < nc; i++) {
            const cJSON *c = cJSON_GetArrayItem(cases, i);
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "token_ids");
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, "embedding");
            size_t n = (size_t)cJSON_GetArraySize(t);
            CHECK(cJSON_GetArraySize(e) == H, "golden case %d: %d dims", i, cJSON_GetArraySize(e));
            if (cJSON_GetArraySize(e) != H || n == 0) continue;
            int32_t *ids = malloc(n * sizeof(int32_t));
            for (size_t k = 0; k < n; k++) ids[k] = cJSON_GetArrayItem(t, (int)k)->valueint;
            for (int k = 0; k < H; k++) gold[k] = (float)cJSON_GetArrayItem(e, k)->valuedouble;
            const int32_t *ip[1] = {ids};
            if (embed(m, ip, &n, 1, out)) {
                double cs = cosine(out, gold, H);
                CHECK(cs >= 0.9999, "golden case %d on vulkan0: cosine %.8f", i, cs);
            } else {
                CHECK(0, "golden case %d: embed failed", i);
            }
            free(ids);
        }
        free(out);
        free(gold);
        printf("golden: %d cases on vulkan0\n", nc);
    }
    qembed_model_free(m);
    cJSON_Delete(j);
}

/* ---- a split: about half the layers on vulkan0, the rest on the cpu ---- */
static void test_split(const char *dir) {
    qembed_model *c = load(dir, (opts){QEMBED_UNITS_CPU_ONLY, 1, 0, 0});
    if (!c) return;
    const qe_config *cfg = &c->cfg;
    /* The Vulkan workspace for 512 tokens plus half the layers and a bit. */
    uint64_t ws = qe_backend_vulkan.workspace_bytes(NULL, cfg, 512, 2);
    uint64_t lb = qe_layer_bytes(cfg, c->w.embed.dtype);
    int half = cfg->n_layers / 2 > 0 ? cfg->n_layers / 2 : 1;
    uint64_t limit = ws + (uint64_t)half * lb + lb / 2;
    qembed_model *g = load(dir, (opts){QEMBED_UNITS_CPU_AND_GPU, 1, limit, 0});
    if (g) {
        const char *pl = qembed_model_placement(g);
        CHECK(g->plan.n_segments == 2 && g->plan.seg[0].kind == QE_DEV_VULKAN &&
                  g->plan.seg[1].kind == QE_DEV_CPU && g->plan.seg[0].end_layer == half,
              "split placement:\n%s", pl);
        CHECK(strstr(pl, "vulkan0 (") && strstr(pl, " cpu "), "placement names both:\n%s", pl);
        CHECK(strstr(warns, "placement degraded"), "a split says so: %s", warns);
        printf("split:\n%s", pl);
        int H = hidden(g);
        float *a = malloc((size_t)N_IN * H * 4), *b = malloc((size_t)N_IN * H * 4);
        CHECK(embed(g, (const int32_t *const *)in_ids, in_lens, N_IN, a) &&
                  embed(c, (const int32_t *const *)in_ids, in_lens, N_IN, b),
              "split: embed");
        for (int i = 0; i < N_IN; i++) {
            double cs = cosine(a + (size_t)i * H, b + (size_t)i * H, H);
            CHECK(cs >= 0.99999, "split: input %d: cosine %.8f vs cpu only", i, cs);
        }
        free(a);
        free(b);
    }
    qembed_model_free(g);
    /* A device too small for one layer: the documented fallback, the cpu. */
    g = load(dir, (opts){QEMBED_UNITS_CPU_AND_GPU, 1, 4096, 0});
    if (g) {
        CHECK(g->plan.n_segments == 1 && g->plan.seg[0].kind == QE_DEV_CPU, "too small: placement:\n%s",
              qembed_model_placement(g));
        CHECK(strstr(warns, "vulkan0") && strstr(warns, "cannot hold"), "too small: WARN: %s", warns);
    }
    qembed_model_free(g);
    qembed_model_free(c);
}

/* ---- batched equals one at a time on the device ---- */
static void test_batched(const char *dir) {
    qembed_model *g = load(dir, (opts){QEMBED_UNITS_CPU_AND_GPU, 1, 0, 0});
    if (!g) return;
    int H = hidden(g);
    float *a = malloc((size_t)N_IN * H * 4), *b = malloc((size_t)H * 4);
    CHECK(embed(g, (const int32_t *const *)in_ids, in_lens, N_IN, a), "batched: embed");
    for (int i = 0; i < N_IN; i++) {
        const int32_t *ip[1] = {in_ids[i]};
        CHECK(embed(g, ip, &in_lens[i], 1, b), "one: embed");
        double cs = cosine(a + (size_t)i * H, b, H);
        CHECK(cs >= 0.999999, "batched vs alone: input %d: cosine %.8f", i, cs);
    }
    free(a);
    free(b);
    qembed_model_free(g);
}

/* ---- a long input (4,500 tokens) on the device, against the cpu ---- */
static void test_long(const char *dir) {
    const size_t n = 4500;
    qembed_model *g = load(dir, (opts){QEMBED_UNITS_CPU_AND_GPU, 1, 0, 4608});
    qembed_model *c = load(dir, (opts){QEMBED_UNITS_CPU_ONLY, 1, 0, 4608});
    if (g && c) {
        CHECK(on_vulkan(g), "long: not on vulkan0:\n%s", qembed_model_placement(g));
        int H = hidden(g);
        int32_t *ids = malloc(n * sizeof(int32_t));
        for (size_t k = 0; k < n; k++) ids[k] = (int32_t)((k * 7919u + 13u) % 151000u);
        float *a = malloc((size_t)H * 4), *b = malloc((size_t)H * 4);
        const int32_t *ip[1] = {ids};
        CHECK(embed(c, ip, &n, 1, b), "long: embed on the cpu");
        /* One context, ten batches: the device holds what the planner planned
         * for the segment (weights + workspace), and the hot path allocates
         * nothing (the counts, which only grow, are the same after the first
         * batch and after the tenth). Batches 2-9 are short ones of other
         * shapes (the long one costs ~20 s on lavapipe); the tenth is the long
         * one again, which also reuses the first one's descriptor sets. */
        qembed_ctx *ctx = NULL;
        qembed_error e;
        CHECK(qembed_ctx_create(g, NULL, &ctx, &e) == QEMBED_OK, "long: ctx: %s", e.message);
        qe_vk_stats s1 = {0}, s10 = {0};
        float *sh = malloc(3 * (size_t)H * 4);
        for (int it = 0; ctx && sh && it < 10; it++) {
            int ok;
            if (it == 0 || it == 9) {
                ok = qembed_ctx_embed_tokens(ctx, ip, &n, 1, NULL, a, &e) == QEMBED_OK;
            } else {
                const int32_t *sp[3] = {ids + it, ids + 100 * it, ids + 7};
                size_t sl[3] = {(size_t)(3 + it), (size_t)(40 * it), 200};
                ok = qembed_ctx_embed_tokens(ctx, sp, sl, (size_t)(1 + it % 3), NULL, sh, &e) == QEMBED_OK;
            }
            CHECK(ok, "long: batch %d on vulkan0: %s", it + 1, e.message);
            if (!ok) break;
            if (it == 0) {
                double cs = cosine(a, b, H);
                CHECK(cs >= 0.99999, "long input %zu tokens: cosine %.8f vulkan vs cpu", n, cs);
                printf("long: %zu tokens, cosine %.8f\n", n, cs);
                qe_vk_seg_stats(g->seg_state[0], &s1);
            }
            if (it == 9) qe_vk_seg_stats(g->seg_state[0], &s10);
        }
        free(sh);
        qembed_ctx_free(ctx);
        const uint64_t planned = g->plan.seg[0].weight_bytes + g->plan.seg[0].work_bytes;
        printf("long: device memory allocated %llu bytes in %llu allocations; planned %llu "
               "(weights %llu + workspace %llu); after the 10th batch %llu bytes, %llu "
               "allocations; descriptor sets written %llu after batch 1, %llu after batch 10\n",
               (unsigned long long)s1.bytes, (unsigned long long)s1.allocs, (unsigned long long)planned,
               (unsigned long long)g->plan.seg[0].weight_bytes, (unsigned long long)g->plan.seg[0].work_bytes,
               (unsigned long long)s10.bytes, (unsigned long long)s10.allocs,
               (unsigned long long)s1.desc_writes, (unsigned long long)s10.desc_writes);
        CHECK(s1.bytes > 0 && s1.allocs > 0, "long: the device counted no allocation");
        CHECK(s1.bytes <= planned, "long: %llu device bytes allocated > %llu planned",
              (unsigned long long)s1.bytes, (unsigned long long)planned);
        CHECK(s10.bytes == s1.bytes && s10.allocs == s1.allocs,
              "long: the hot path allocated device memory (%llu B in %llu after batch 1, %llu B "
              "in %llu after batch 10)",
              (unsigned long long)s1.bytes, (unsigned long long)s1.allocs, (unsigned long long)s10.bytes,
              (unsigned long long)s10.allocs);
        /* The same batch shape again reuses the descriptor sets of the first. */
        CHECK(s1.desc_writes > 0 && s10.desc_writes == s1.desc_writes,
              "long: descriptor sets rewritten in the hot path (%llu after batch 1, %llu after "
              "batch 10)",
              (unsigned long long)s1.desc_writes, (unsigned long long)s10.desc_writes);
        free(ids);
        free(a);
        free(b);
    }
    qembed_model_free(g);
    qembed_model_free(c);
}

/* ---- the documented CPU fall-backs: a device that fails at upload, at
 * workspace allocation, or mid-batch (a lost device) ---- */
static void test_faults(const char *dir) {
    qembed_model *c = load(dir, (opts){QEMBED_UNITS_CPU_ONLY, 1, 0, 0});
    if (!c) return;
    int H = hidden(c);
    float *ref = malloc((size_t)N_IN * H * 4), *got = malloc((size_t)N_IN * H * 4);
    CHECK(embed(c, (const int32_t *const *)in_ids, in_lens, N_IN, ref), "faults: cpu embed");
    static const char *const where[3] = {"load", "work", "run"};
    static const char *const says[3] = {"falling back: they run on the cpu",
                                        "falling back: layers 0-1 run on the cpu in this context",
                                        "falling back to the cpu for every layer of this context"};
    for (int i = 0; i < 3; i++) {
        setenv("QEMBED_VULKAN_TEST_FAULT", where[i], 1);
        qembed_model *g = load(dir, (opts){QEMBED_UNITS_CPU_AND_GPU, 1, 0, 0});
        if (g) {
            if (i == 0)
                CHECK(strstr(qembed_model_placement(g), "fallback: layers 0-1 run on the cpu"),
                      "fault %s: placement:\n%s", where[i], qembed_model_placement(g));
            memset(got, 0, (size_t)N_IN * H * 4);
            CHECK(embed(g, (const int32_t *const *)in_ids, in_lens, N_IN, got), "fault %s: embed", where[i]);
            CHECK(strstr(warns, says[i]), "fault %s: the WARN: %s", where[i], warns);
            for (int k = 0; k < N_IN; k++) {
                double cs = cosine(got + (size_t)k * H, ref + (size_t)k * H, H);
                CHECK(cs >= 0.99999, "fault %s: input %d: cosine %.8f vs cpu", where[i], k, cs);
            }
        }
        qembed_model_free(g);
    }
    unsetenv("QEMBED_VULKAN_TEST_FAULT");
    free(ref);
    free(got);
    qembed_model_free(c);
}

/* ---- a software device is not used unless asked for ---- */
static void test_software_gate(const char *dir, int is_software) {
    if (!is_software) return;
    unsetenv("QEMBED_VULKAN_SOFTWARE");
    qembed_model *g = load(dir, (opts){QEMBED_UNITS_CPU_AND_GPU, 1, 0, 0});
    if (g) {
        const char *pl = qembed_model_placement(g);
        CHECK(g->plan.seg[0].kind == QE_DEV_CPU && strstr(pl, "unused: vulkan0 (") &&
                  strstr(pl, "QEMBED_VULKAN_SOFTWARE=1"),
              "software device without the variable:\n%s", pl);
    }
    qembed_model_free(g);
    setenv("QEMBED_VULKAN_SOFTWARE", "1", 1);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s TINY GOLDEN TINY_F32 TINY_F16 TINY_BF16\n", argv[0]);
        return 2;
    }
    qe_vk_info inf[8];
    if (qe_vk_list(inf, 8) == 0) {
        const char *why = "";
        qe_vk_load(NULL, &why);
        printf("SKIPPED: no Vulkan device (%s); install mesa-vulkan-drivers for lavapipe\n",
               why[0] ? why : "the driver reports none");
        return 77;
    }
    printf("device: vulkan0 (%s)\n", inf[0].name);
    setenv("QEMBED_VULKAN_SOFTWARE", "1", 1);
    make_inputs(151000);
    double t0 = qe_now_ms();
#define STEP(call)                                                   \
    do {                                                             \
        call;                                                        \
        printf("  %-50s %.1f s\n", #call, (qe_now_ms() - t0) / 1e3); \
        t0 = qe_now_ms();                                            \
    } while (0)
    STEP(test_golden(argv[1], argv[2]));
    STEP(compare_with_cpu(argv[3], "tiny f32", 0.99999));
    STEP(compare_with_cpu(argv[4], "tiny f16", 0.99999));
    STEP(compare_with_cpu(argv[5], "tiny bf16", 0.99999));
    STEP(test_split(argv[1]));
    STEP(test_batched(argv[1]));
    STEP(test_long(argv[1]));
    STEP(test_faults(argv[1]));
    STEP(test_software_gate(argv[1], inf[0].type == VK_PHYSICAL_DEVICE_TYPE_CPU));
    for (int i = 0; i < N_IN; i++) free(in_ids[i]);
    if (failures) return 1;
    printf("vulkan model: all checks passed\n");
    return 0;
}
