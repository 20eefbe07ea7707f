/* Split directories end to end, through the public API:
 *   test_split tiny MODEL_DIR WORK_DIR   split the (shared) tiny model; split and unsplit vectors
 *                                        equal with the segments on two devices; corrupted,
 *                                        missing, truncated, reordered and gapped segments give
 *                                        clear errors before inference
 *   test_split 0.6b MODEL_DIR WORK_DIR   split the generated 0.6b model into 4 segments; vectors
 *                                        equal the unsplit model's with a forced 2-device plan;
 *                                        prints the SHA-256 verification time
 * Placement is forced with the simulated accelerator's budget, computed here
 * from the planner's own sizes so the cut is known in advance. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/config.h"
#include "model/weights.h"
#include "plan/plan.h"
#include "qembed.h"

#include "check.h"

#define N_THREADS 2

static char verify_line[512];
static int n_warn;
static void capture(qembed_log_level level, const char *line, void *user) {
    (void)user;
    if (strstr(line, "SHA-256 verified")) snprintf(verify_line, sizeof verify_line, "%s", line);
    if (level == QEMBED_LOG_WARN && !strstr(line, "synthetic")) n_warn++;
    if (getenv("QE_TEST_VERBOSE")) fprintf(stderr, "  log: %s\n", line);
}

static void sh(const char *fmt, const char *a, const char *b) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    if (system(cmd) != 0) {
        fprintf(stderr, "FAIL: command failed: %s\n", cmd);
        failures++;
    }
}

static qembed_model_params mparams(uint64_t sim) {
    qembed_model_params p = qembed_model_default_params();
    p.n_threads = N_THREADS;
    p.sim_accel_memory = sim;
    p.cpu_memory_limit = 64ull << 30; /* deterministic: not this machine's free memory */
    p.log_fn = capture;
    p.log_level = QEMBED_LOG_INFO;
    return p;
}

/* A sim-accel budget that holds the embedding and exactly `k` layers beside
 * its workspace, for a model loaded with mparams(). */
static uint64_t budget_for_layers(const char *model_dir, int k) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    qe_config cfg;
    qembed_error e;
    if (qe_config_load(path, &cfg, &e) != QEMBED_OK) {
        fprintf(stderr, "FAIL: %s\n", e.message);
        failures++;
        return 0;
    }
    qembed_model_params p = mparams(0);
    /* As the loader plans: at least one input of max_tokens (8192, or the
     * model's limit) per pass. */
    size_t T = p.max_batch_tokens;
    size_t mt = cfg.max_position_embeddings < 8192 ? (size_t)cfg.max_position_embeddings : 8192;
    if (T < mt) T = mt;
    p.max_batch_tokens = T;
    qe_devices d;
    memset(&d, 0, sizeof d);
    d.n = 1;
    d.dev[0].kind = QE_DEV_SIM_ACCEL;
    d.dev[0].budget = 1ull << 40;
    d.dev[0].can_compute = 1;
    snprintf(d.dev[0].name, sizeof d.dev[0].name, "probe");
    p.compute_units = QEMBED_UNITS_CPU_AND_GPU;
    qe_plan pl;
    p.log_fn = NULL;
    if (qe_plan_make(&cfg, QE_BF16, &d, &p, NULL, &pl, &e) != QEMBED_OK) {
        fprintf(stderr, "FAIL: probe plan: %s\n", e.message);
        failures++;
        return 0;
    }
    uint64_t lb = qe_layer_bytes(&cfg, QE_BF16);
    return pl.seg[0].work_bytes + qe_plan_embed_bytes(&cfg, QE_BF16) + (uint64_t)k * lb + lb / 2;
}

static const char *const texts[] = {
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Segments of layers may run on different devices; the vectors must not change.",
    "短いテキスト",
};
/* All texts for tiny; the two short ones for 0.6b (keeps the test in seconds). */
static size_t N_TEXTS = sizeof texts / sizeof texts[0];

/* Loads and embeds; returns malloc'ed (N_TEXTS x hidden) or NULL (err set). */
static float *embed_all(const char *dir, const qembed_model_params *p, int *hidden, char *placement,
                        size_t psize, qembed_status *st, qembed_error *err) {
    qembed_model *m = NULL;
    memset(err, 0, sizeof *err);
    *st = qembed_model_load(dir, p, &m, err);
    if (*st != QEMBED_OK) return NULL;
    qembed_model_info info;
    qembed_model_get_info(m, &info);
    *hidden = info.hidden_size;
    if (placement) snprintf(placement, psize, "%s", qembed_model_placement(m));
    qembed_ctx *c = NULL;
    float *out = NULL;
    *st = qembed_ctx_create(m, NULL, &c, err);
    if (*st == QEMBED_OK) {
        out = malloc(N_TEXTS * (size_t)*hidden * sizeof(float));
        qembed_embed_options o = qembed_embed_default_options();
        *st = qembed_ctx_embed(c, texts, NULL, N_TEXTS, &o, out, err);
        if (*st != QEMBED_OK) {
            free(out);
            out = NULL;
        }
    }
    qembed_ctx_free(c);
    qembed_model_free(m);
    return out;
}

static void compare(const float *a, const float *b, int hidden, const char *what) {
    for (size_t i = 0; i < N_TEXTS; i++) {
        double dot = 0, na = 0, nb = 0;
        for (int j = 0; j < hidden; j++) {
            dot += (double)a[i * hidden + j] * b[i * hidden + j];
            na += (double)a[i * hidden + j] * a[i * hidden + j];
            nb += (double)b[i * hidden + j] * b[i * hidden + j];
        }
        double cos = dot / (sqrt(na) * sqrt(nb));
        CHECK(cos >= 0.99999, "%s: text %zu cosine %.7f", what, i, cos);
    }
}

static qembed_status do_split(const char *model, const char *out, int n, uint64_t max_bytes,
                              qembed_error *err) {
    qembed_split_params sp = qembed_split_default_params();
    sp.max_segments = n;
    sp.max_segment_bytes = max_bytes;
    memset(err, 0, sizeof *err);
    return qembed_model_split(model, out, &sp, err);
}

/* Splits, loads split and unsplit (the split one across two devices), compares. */
static void split_and_compare(const char *model, const char *out, int n_segments, int layers_on_accel,
                              const char *what) {
    qembed_error e;
    qembed_status st = do_split(model, out, n_segments, 0, &e);
    CHECK(st == QEMBED_OK, "%s: split: %s", what, e.message);
    if (st) return;
    int h1 = 0, h2 = 0;
    qembed_model_params p = mparams(0);
    p.compute_units = QEMBED_UNITS_CPU_ONLY;
    float *a = embed_all(model, &p, &h1, NULL, 0, &st, &e);
    CHECK(a, "%s: unsplit: %s", what, e.message);
    qembed_model_params q = mparams(budget_for_layers(model, layers_on_accel));
    char placement[4096];
    verify_line[0] = '\0';
    n_warn = 0;
    float *b = embed_all(out, &q, &h2, placement, sizeof placement, &st, &e);
    CHECK(b, "%s: split: %s", what, e.message);
    if (a && b) {
        CHECK(h1 == h2, "hidden sizes");
        compare(a, b, h1, what);
        CHECK(strstr(placement, "sim-accel") && strstr(placement, "cpu"), "%s: segments on two devices:\n%s",
              what, placement);
        char want[64];
        snprintf(want, sizeof want, "0-%d ", layers_on_accel - 1);
        CHECK(strstr(placement, want), "%s: accelerator holds layers %s:\n%s", what, want, placement);
        CHECK(n_warn == 1, "%s: %d WARN lines (one for the degraded plan)", what, n_warn);
        CHECK(verify_line[0], "%s: no verification line", what);
        printf("%s: %s\n%s", what, verify_line, placement);
    }
    free(a);
    free(b);
}

/* ---- damaging a split directory ---- */

static int g_no_verify = 0;
static void expect_load_error(const char *dir, qembed_status want, const char *must1, const char *must2,
                              const char *what) {
    qembed_model_params p = mparams(0);
    p.no_verify = g_no_verify;
    qembed_model *m = NULL;
    qembed_error e;
    memset(&e, 0, sizeof e);
    qembed_status st = qembed_model_load(dir, &p, &m, &e);
    CHECK(st == want, "%s: status %d (%s), expected %d: %s", what, st, qembed_status_str(st), want,
          e.message);
    CHECK(m == NULL, "%s: a model was returned", what);
    CHECK(strstr(e.message, must1) && (!must2 || strstr(e.message, must2)),
          "%s: message should name '%s'%s%s: %s", what, must1, must2 ? " and " : "", must2 ? must2 : "",
          e.message);
    printf("%s -> %s\n", what, e.message);
    qembed_model_free(m);
}

static cJSON *read_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return cJSON_Parse(buf);
}

static void write_json(const char *path, cJSON *j) {
    char *t = cJSON_Print(j);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(t, f);
        fclose(f);
    }
    free(t);
}

static void flip_byte(const char *path, long from_end) {
    FILE *f = fopen(path, "r+b");
    if (!f) {
        failures++;
        return;
    }
    fseek(f, -from_end, SEEK_END);
    int c = fgetc(f);
    fseek(f, -from_end, SEEK_END);
    fputc(c ^ 0x01, f);
    fclose(f);
}

static void damage_tests(const char *model, const char *work) {
    char dir[4200], path[4400];
    qembed_error e;
    const char *seg1 = "segment-01-of-02.safetensors";

    /* A byte flipped in the last tensor's data. */
    snprintf(dir, sizeof dir, "%s/corrupt", work);
    CHECK(do_split(model, dir, 2, 0, &e) == QEMBED_OK, "%s", e.message);
    snprintf(path, sizeof path, "%s/%s", dir, seg1);
    flip_byte(path, 3);
    expect_load_error(dir, QEMBED_ERR_MODEL_FORMAT, seg1, "corrupted", "corrupted segment");
    /* Not verifying skips the hash (documented), so the flipped byte loads. */
    {
        qembed_model_params p = mparams(0);
        p.no_verify = 1;
        qembed_model *m = NULL;
        CHECK(qembed_model_load(dir, &p, &m, &e) == QEMBED_OK, "no_verify load: %s", e.message);
        qembed_model_free(m);
    }

    /* A missing segment. */
    snprintf(dir, sizeof dir, "%s/missing", work);
    CHECK(do_split(model, dir, 2, 0, &e) == QEMBED_OK, "%s", e.message);
    snprintf(path, sizeof path, "%s/%s", dir, seg1);
    CHECK(unlink(path) == 0, "unlink");
    expect_load_error(dir, QEMBED_ERR_IO, seg1, "missing", "missing segment");

    /* A truncated segment (size check, before hashing). */
    snprintf(dir, sizeof dir, "%s/truncated", work);
    CHECK(do_split(model, dir, 2, 0, &e) == QEMBED_OK, "%s", e.message);
    snprintf(path, sizeof path, "%s/%s", dir, seg1);
    CHECK(truncate(path, 1000) == 0, "truncate");
    expect_load_error(dir, QEMBED_ERR_MODEL_FORMAT, seg1, "truncated", "truncated segment");

    /* Manifest entries swapped. */
    snprintf(dir, sizeof dir, "%s/reordered", work);
    CHECK(do_split(model, dir, 2, 0, &e) == QEMBED_OK, "%s", e.message);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    cJSON *j = read_json(path);
    CHECK(j, "manifest parses");
    if (j) {
        cJSON *segs = cJSON_GetObjectItem(j, "segments");
        cJSON *first = cJSON_DetachItemFromArray(segs, 0);
        cJSON_AddItemToArray(segs, first);
        write_json(path, j);
        cJSON_Delete(j);
    }
    expect_load_error(dir, QEMBED_ERR_MODEL_FORMAT, seg1, "out of order", "reordered manifest");

    /* Swapped and renumbered (indices consistent): the layer ranges catch it. */
    j = read_json(path);
    if (j) {
        cJSON *segs = cJSON_GetObjectItem(j, "segments");
        for (int i = 0; i < 2; i++)
            cJSON_SetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(segs, i), "index"), i);
        write_json(path, j);
        cJSON_Delete(j);
    }
    expect_load_error(dir, QEMBED_ERR_MODEL_FORMAT, seg1, "contiguous", "renumbered swap");

    /* Segment files swapped on disk behind a correct manifest: size/hash. */
    snprintf(dir, sizeof dir, "%s/swapped", work);
    CHECK(do_split(model, dir, 2, 0, &e) == QEMBED_OK, "%s", e.message);
    sh("cd '%s' && mv segment-00-of-02.safetensors x && mv segment-01-of-02.safetensors "
       "segment-00-of-02.safetensors && mv x segment-01-of-02.safetensors%s",
       dir, "");
    expect_load_error(dir, QEMBED_ERR_MODEL_FORMAT, "segment-00-of-02.safetensors", "bytes", "swapped files");

    /* The same swap with the manifest's sizes edited to match and hashing
     * off: the per-tensor range check still names the swapped files. */
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    cJSON *jm = read_json(path);
    if (jm) {
        cJSON *segs = cJSON_GetObjectItem(jm, "segments");
        cJSON *b0 = cJSON_GetObjectItem(cJSON_GetArrayItem(segs, 0), "bytes");
        cJSON *b1 = cJSON_GetObjectItem(cJSON_GetArrayItem(segs, 1), "bytes");
        double t = b0->valuedouble;
        cJSON_SetNumberValue(b0, b1->valuedouble);
        cJSON_SetNumberValue(b1, t);
        write_json(path, jm);
        cJSON_Delete(jm);
    }
    g_no_verify = 1;
    expect_load_error(dir, QEMBED_ERR_MODEL_FORMAT, "segment files swapped", NULL,
                      "swapped files, sizes edited, no_verify");
    g_no_verify = 0;

    /* config.json edited after the split. */
    snprintf(dir, sizeof dir, "%s/config-edited", work);
    CHECK(do_split(model, dir, 2, 0, &e) == QEMBED_OK, "%s", e.message);
    sh("cd '%s' && printf ' ' >> config.json%s", dir, "");
    expect_load_error(dir, QEMBED_ERR_MODEL_FORMAT, "config.json", "changed after the split",
                      "edited config.json");

    /* A manifest that does not cover every layer. */
    snprintf(dir, sizeof dir, "%s/gap", work);
    CHECK(do_split(model, dir, 2, 0, &e) == QEMBED_OK, "%s", e.message);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    j = read_json(path);
    if (j) {
        cJSON *segs = cJSON_GetObjectItem(j, "segments");
        cJSON_DeleteItemFromArray(segs, 1);
        cJSON_ReplaceItemInObject(cJSON_GetArrayItem(segs, 0), "final_norm", cJSON_CreateTrue());
        write_json(path, j);
        cJSON_Delete(j);
    }
    expect_load_error(dir, QEMBED_ERR_MODEL_FORMAT, "layers", "no segment", "incomplete ranges");

    /* A manifest that is not JSON. */
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs("{\"format\": \"qembed-split\", ", f);
        fclose(f);
    }
    expect_load_error(dir, QEMBED_ERR_MODEL_FORMAT, "manifest.json", "JSON", "broken manifest");

    /* A path in the manifest must not escape the directory. */
    snprintf(dir, sizeof dir, "%s/escape", work);
    CHECK(do_split(model, dir, 2, 0, &e) == QEMBED_OK, "%s", e.message);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    j = read_json(path);
    if (j) {
        cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "segments"), 0);
        cJSON_ReplaceItemInObject(s0, "file", cJSON_CreateString("../../etc/passwd"));
        write_json(path, j);
        cJSON_Delete(j);
    }
    expect_load_error(dir, QEMBED_ERR_MODEL_FORMAT, "not a plain file name", NULL, "path escape");

    /* Splitting into a directory that already holds a split is refused. */
    CHECK(do_split(model, dir, 2, 0, &e) == QEMBED_ERR_INVALID_ARGUMENT &&
              strstr(e.message, "already exists"),
          "overwrite refused: %s", e.message);
    /* --max-segment-bytes: too small for layer 0 with the embedding. */
    snprintf(dir, sizeof dir, "%s/toosmall", work);
    CHECK(do_split(model, dir, 0, 1 << 20, &e) == QEMBED_ERR_INVALID_ARGUMENT && strstr(e.message, "layer 0"),
          "max-segment-bytes too small: %s", e.message);
    /* A cap that fits: every file at most the cap, all layers covered. */
    snprintf(dir, sizeof dir, "%s/capped", work);
    uint64_t cap = 20ull << 20;
    CHECK(do_split(model, dir, 0, cap, &e) == QEMBED_OK, "capped split: %s", e.message);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    j = read_json(path);
    if (j) {
        cJSON *s;
        int next = 0;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(j, "segments")) {
            CHECK(cJSON_GetObjectItem(s, "bytes")->valuedouble <= (double)cap, "segment over cap");
            CHECK(cJSON_GetObjectItem(s, "first_layer")->valueint == next, "contiguous");
            next = cJSON_GetObjectItem(s, "end_layer")->valueint;
        }
        CHECK(next == cJSON_GetObjectItem(j, "n_layers")->valueint, "complete");
        cJSON_Delete(j);
    }
    qembed_model_params p = mparams(0);
    qembed_model *m = NULL;
    CHECK(qembed_model_load(dir, &p, &m, &e) == QEMBED_OK, "capped split loads: %s", e.message);
    qembed_model_free(m);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test_split tiny|0.6b MODEL_DIR WORK_DIR\n");
        return 2;
    }
    const char *which = argv[1], *model = argv[2], *work = argv[3];
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%s/config.json", model);
    if (access(cfg, R_OK) != 0) {
        fprintf(stderr, "FAIL: model %s not found (%s): the test needs it\n", model, cfg);
        return 1;
    }
    sh("rm -rf '%s' && mkdir -p '%s'", work, work);
    char out[4200];
    snprintf(out, sizeof out, "%s/split", work);
    if (!strcmp(which, "tiny")) {
        /* 2 layers: layer 0 on the accelerator, layer 1 on the CPU. */
        split_and_compare(model, out, 2, 1, "tiny");
        damage_tests(model, work);
    } else {
        N_TEXTS = 2;
        /* 28 layers in 4 files; the accelerator takes 9, so its boundary
         * falls inside a file (plans are free of the file boundaries). */
        split_and_compare(model, out, 4, 9, "0.6b");
    }
    sh("rm -rf '%s'%s", work, "");
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("split %s: all checks passed\n", which);
    return 0;
}
