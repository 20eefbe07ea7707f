/* Planner unit tests: configs and budgets in, plans out. Pure: the devices
 * are made up here, so the outcomes do not depend on this machine. Logs are
 * captured through the callback to check the warnings said exactly once. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/weights.h"
#include "plan/plan.h"
#include "qembed.h"

#include "check.h"

/* ---- log capture ---- */
#define MAX_LINES 256
static struct {
    int n;
    qembed_log_level level[MAX_LINES];
    char line[MAX_LINES][1024];
} logs;

static void capture(qembed_log_level level, const char *line, void *user) {
    (void)user;
    if (logs.n < MAX_LINES) {
        logs.level[logs.n] = level;
        snprintf(logs.line[logs.n], sizeof logs.line[0], "%s", line);
        logs.n++;
    }
}
static int count_level(qembed_log_level lv) {
    int n = 0;
    for (int i = 0; i < logs.n; i++) n += logs.level[i] == lv;
    return n;
}
static int count_containing(const char *s) {
    int n = 0;
    for (int i = 0; i < logs.n; i++) n += strstr(logs.line[i], s) != NULL;
    return n;
}
static const char *first_warn(void) {
    for (int i = 0; i < logs.n; i++)
        if (logs.level[i] == QEMBED_LOG_WARN) return logs.line[i];
    return "(none)";
}

static const qe_logger lg = {capture, NULL, QEMBED_LOG_DEBUG};

/* ---- model shapes (from the Qwen3-Embedding configs) ---- */
static qe_config cfg_of(int hidden, int layers, int heads, int kv, int head_dim, int inter) {
    qe_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.architecture, sizeof c.architecture, "Qwen3ForCausalLM");
    c.hidden_size = hidden;
    c.n_layers = layers;
    c.n_heads = heads;
    c.n_kv_heads = kv;
    c.head_dim = head_dim;
    c.intermediate_size = inter;
    c.vocab_size = 151669;
    c.max_position_embeddings = 32768;
    c.rms_norm_eps = 1e-6;
    c.rope_theta = 1e6;
    c.tie_word_embeddings = true;
    c.torch_dtype = QE_BF16;
    return c;
}
#define CFG_0_6B cfg_of(1024, 28, 16, 8, 128, 3072)
#define CFG_4B cfg_of(2560, 36, 32, 8, 128, 9728)

static const uint64_t GiB = 1ull << 30;

static qe_devices devices(uint64_t cpu_budget, uint64_t sim_budget, int fake_cuda) {
    qe_devices d;
    memset(&d, 0, sizeof d);
    qe_device *c = &d.dev[d.n++];
    c->kind = QE_DEV_CPU;
    snprintf(c->name, sizeof c->name, "cpu");
    c->budget = cpu_budget;
    c->budget_src = "test";
    c->can_compute = 1;
    if (fake_cuda) {
        /* A GPU that discovery found but no backend can run: never planned. */
        qe_device *g = &d.dev[d.n++];
        g->kind = QE_DEV_CUDA;
        snprintf(g->name, sizeof g->name, "cuda:0 fake");
        g->budget = 80 * GiB;
        g->budget_src = "test";
        g->can_compute = 0;
    }
    if (sim_budget) {
        qe_device *s = &d.dev[d.n++];
        s->kind = QE_DEV_SIM_ACCEL;
        snprintf(s->name, sizeof s->name, "sim-accel (test device)");
        s->budget = sim_budget;
        s->budget_src = "test";
        s->can_compute = 1;
    }
    return d;
}

static qembed_model_params params(qembed_compute_units u, size_t batch) {
    qembed_model_params p;
    memset(&p, 0, sizeof p);
    p.compute_units = u;
    p.n_threads = 2; /* fixed: the workspace depends on it */
    p.max_batch_tokens = batch;
    return p;
}

/* Invariants every successful plan keeps: contiguous, complete, embedding on
 * the first segment and final norm on the last, each device within budget. */
static void check_plan_invariants(const qe_plan *pl, const qe_config *cfg, const qe_devices *d,
                                  const char *what) {
    CHECK(pl->n_segments >= 1, "%s: no segments", what);
    int next = 0;
    uint64_t used[QE_MAX_DEVICES] = {0};
    for (int i = 0; i < pl->n_segments; i++) {
        const qe_plan_segment *s = &pl->seg[i];
        CHECK(s->first_layer == next, "%s: segment %d starts at %d, expected %d", what, i, s->first_layer,
              next);
        CHECK(s->end_layer > s->first_layer, "%s: empty segment %d", what, i);
        CHECK(s->has_embed == (i == 0), "%s: embedding flag on segment %d", what, i);
        CHECK(s->has_final_norm == (i == pl->n_segments - 1), "%s: final norm flag on %d", what, i);
        CHECK(d->dev[s->device].can_compute, "%s: segment %d on a device without a backend", what, i);
        used[s->device] += s->weight_bytes + s->work_bytes;
        next = s->end_layer;
    }
    CHECK(next == cfg->n_layers, "%s: plan covers %d of %d layers", what, next, cfg->n_layers);
    for (int i = 0; i < d->n; i++)
        CHECK(used[i] <= d->dev[i].budget, "%s: device %s uses %" PRIu64 " > budget %" PRIu64, what,
              d->dev[i].name, used[i], d->dev[i].budget);
}

static qembed_status plan(const qe_config *cfg, const qe_devices *d, qembed_compute_units u, size_t batch,
                          qe_plan *pl, qembed_error *err) {
    logs.n = 0;
    qembed_model_params p = params(u, batch);
    memset(err, 0, sizeof *err);
    return qe_plan_make(cfg, QE_BF16, d, &p, &lg, pl, err);
}

static void test_compute_units(void) {
    static const struct {
        const char *s;
        qembed_status st;
        qembed_compute_units u;
    } cases[] = {
        {"ALL", QEMBED_OK, QEMBED_UNITS_ALL},
        {"all", QEMBED_OK, QEMBED_UNITS_ALL},
        {"CPU_AND_GPU", QEMBED_OK, QEMBED_UNITS_CPU_AND_GPU},
        {"cpu_and_gpu", QEMBED_OK, QEMBED_UNITS_CPU_AND_GPU},
        {"CPU_AND_NE", QEMBED_OK, QEMBED_UNITS_CPU_AND_NE},
        {"Cpu_And_Ne", QEMBED_OK, QEMBED_UNITS_CPU_AND_NE},
        {"CPU_ONLY", QEMBED_OK, QEMBED_UNITS_CPU_ONLY},
        {"cpu_only", QEMBED_OK, QEMBED_UNITS_CPU_ONLY},
        {"", QEMBED_ERR_INVALID_ARGUMENT, 0},
        {"GPU", QEMBED_ERR_INVALID_ARGUMENT, 0},
        {"CPU", QEMBED_ERR_INVALID_ARGUMENT, 0},
        {"CPU-ONLY", QEMBED_ERR_INVALID_ARGUMENT, 0},
        {"ALL ", QEMBED_ERR_INVALID_ARGUMENT, 0},
        {" ALL", QEMBED_ERR_INVALID_ARGUMENT, 0},
        {"CPU_AND_NEURAL_ENGINE", QEMBED_ERR_INVALID_ARGUMENT, 0},
        {"cpuAndGPU", QEMBED_ERR_INVALID_ARGUMENT, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qembed_compute_units u = (qembed_compute_units)99;
        qembed_error e;
        memset(&e, 0, sizeof e);
        qembed_status st = qembed_compute_units_parse(cases[i].s, &u, &e);
        CHECK(st == cases[i].st, "parse('%s') = %d", cases[i].s, st);
        if (st == QEMBED_OK) {
            CHECK(u == cases[i].u, "parse('%s') gave %d", cases[i].s, u);
            CHECK(strcasecmp(qembed_compute_units_name(u), cases[i].s) == 0, "name round trip '%s'",
                  cases[i].s);
        } else {
            CHECK(e.code == QEMBED_ERR_INVALID_ARGUMENT, "err code for '%s'", cases[i].s);
            CHECK(strstr(e.message, "ALL") && strstr(e.message, "CPU_AND_GPU") &&
                      strstr(e.message, "CPU_AND_NE") && strstr(e.message, "CPU_ONLY"),
                  "message lists the valid values: %s", e.message);
            CHECK(u == (qembed_compute_units)99, "out untouched on error for '%s'", cases[i].s);
        }
    }
    qembed_error e;
    CHECK(qembed_compute_units_parse(NULL, NULL, &e) == QEMBED_ERR_INVALID_ARGUMENT, "NULL input");
    CHECK(!strcmp(qembed_compute_units_name((qembed_compute_units)7), "UNKNOWN"), "bad name");
}

/* Every compute-units value on a machine with a CPU and a roomy simulated
 * accelerator: ALL and CPU_AND_GPU use the accelerator; CPU_ONLY and
 * CPU_AND_NE the CPU, CPU_AND_NE with one warning. */
static void test_every_units_value(void) {
    qe_config cfg = CFG_0_6B;
    qe_devices d = devices(64 * GiB, 32 * GiB, 1);
    qe_plan pl;
    qembed_error e;
    const qembed_compute_units all[] = {QEMBED_UNITS_ALL, QEMBED_UNITS_CPU_AND_GPU, QEMBED_UNITS_CPU_AND_NE,
                                        QEMBED_UNITS_CPU_ONLY};
    for (int i = 0; i < 4; i++) {
        qembed_compute_units u = all[i];
        const char *nm = qembed_compute_units_name(u);
        CHECK(plan(&cfg, &d, u, 1024, &pl, &e) == QEMBED_OK, "%s: %s", nm, e.message);
        check_plan_invariants(&pl, &cfg, &d, nm);
        CHECK(pl.n_segments == 1, "%s: %d segments", nm, pl.n_segments);
        char want[64];
        snprintf(want, sizeof want, "Requesting compute units: %s", nm);
        CHECK(count_containing(want) == 1, "%s: logs '%s' once", nm, want);
        qe_device_kind k = pl.seg[0].kind;
        if (u == QEMBED_UNITS_ALL || u == QEMBED_UNITS_CPU_AND_GPU) {
            CHECK(k == QE_DEV_SIM_ACCEL, "%s: runs on %s", nm, pl.seg[0].device_name);
            CHECK(count_level(QEMBED_LOG_WARN) == 0, "%s: unexpected WARN %s", nm, first_warn());
        } else {
            CHECK(k == QE_DEV_CPU, "%s: runs on %s", nm, pl.seg[0].device_name);
        }
        if (u == QEMBED_UNITS_CPU_AND_NE) {
            CHECK(count_level(QEMBED_LOG_WARN) == 1, "CPU_AND_NE: %d WARN lines",
                  count_level(QEMBED_LOG_WARN));
            CHECK(strstr(first_warn(), "neural engine") && strstr(first_warn(), "CPU"),
                  "CPU_AND_NE warning says what is missing and what is used: %s", first_warn());
        }
        if (u == QEMBED_UNITS_CPU_ONLY)
            CHECK(count_level(QEMBED_LOG_WARN) == 0, "CPU_ONLY: unexpected WARN %s", first_warn());
        CHECK(!pl.degraded, "%s: degraded", nm);
        CHECK(strstr(pl.table, "layers") && strstr(pl.table, pl.seg[0].device_name),
              "%s: table names the device:\n%s", nm, pl.table);
    }
    /* An out-of-range enum value is refused, not planned. */
    CHECK(plan(&cfg, &d, (qembed_compute_units)9, 1024, &pl, &e) == QEMBED_ERR_INVALID_ARGUMENT,
          "units 9 accepted");
}

/* CPU_AND_NE on Linux without any accelerator: the CPU, one warning. */
static void test_cpu_and_ne_fallback(void) {
    qe_config cfg = CFG_0_6B;
    qe_devices d = devices(64 * GiB, 0, 0);
    qe_plan pl;
    qembed_error e;
    CHECK(plan(&cfg, &d, QEMBED_UNITS_CPU_AND_NE, 2048, &pl, &e) == QEMBED_OK, "%s", e.message);
    check_plan_invariants(&pl, &cfg, &d, "CPU_AND_NE");
    CHECK(pl.n_segments == 1 && pl.seg[0].kind == QE_DEV_CPU, "CPU_AND_NE on cpu");
    CHECK(count_level(QEMBED_LOG_WARN) == 1, "%d WARN lines", count_level(QEMBED_LOG_WARN));
    CHECK(count_containing("no neural engine") == 1, "warning text: %s", first_warn());
}

/* CPU_AND_GPU with no usable GPU (one found, no backend): CPU, one warning. */
static void test_cpu_and_gpu_without_gpu(void) {
    qe_config cfg = CFG_0_6B;
    qe_devices d = devices(64 * GiB, 0, 1);
    qe_plan pl;
    qembed_error e;
    CHECK(plan(&cfg, &d, QEMBED_UNITS_CPU_AND_GPU, 2048, &pl, &e) == QEMBED_OK, "%s", e.message);
    CHECK(pl.n_segments == 1 && pl.seg[0].kind == QE_DEV_CPU, "on cpu");
    CHECK(count_level(QEMBED_LOG_WARN) == 1 && strstr(first_warn(), "no usable GPU") &&
              strstr(first_warn(), "no CUDA backend"),
          "warning: %s", first_warn());
    /* ALL in the same situation is not a degradation: INFO, no WARN. */
    CHECK(plan(&cfg, &d, QEMBED_UNITS_ALL, 2048, &pl, &e) == QEMBED_OK, "%s", e.message);
    CHECK(count_level(QEMBED_LOG_WARN) == 0, "ALL warned: %s", first_warn());
}

/* A small simulated accelerator forces a split: it takes the embedding and as
 * many layers as fit beside its workspace, the CPU the rest; one WARN line
 * with the numbers. The expected cut is computed from the same sizes. */
static void test_split_forced_by_small_accel(void) {
    qe_config cfg = CFG_0_6B;
    const size_t T = 2048;
    uint64_t lb = qe_layer_bytes(&cfg, QE_BF16);
    uint64_t eb = qe_plan_embed_bytes(&cfg, QE_BF16);
    /* Room for exactly 10 layers and a half. */
    qe_devices probe = devices(64 * GiB, 64 * GiB, 0);
    qe_plan pl;
    qembed_error e;
    CHECK(plan(&cfg, &probe, QEMBED_UNITS_ALL, T, &pl, &e) == QEMBED_OK, "%s", e.message);
    uint64_t W = pl.seg[0].work_bytes;
    CHECK(W > 0, "workspace counted");
    qe_devices d = devices(64 * GiB, W + eb + 10 * lb + lb / 2, 0);
    CHECK(plan(&cfg, &d, QEMBED_UNITS_ALL, T, &pl, &e) == QEMBED_OK, "%s", e.message);
    check_plan_invariants(&pl, &cfg, &d, "small accel");
    CHECK(pl.n_segments == 2, "%d segments", pl.n_segments);
    CHECK(pl.seg[0].kind == QE_DEV_SIM_ACCEL && pl.seg[0].first_layer == 0 && pl.seg[0].end_layer == 10,
          "first segment %d-%d on %s", pl.seg[0].first_layer, pl.seg[0].end_layer, pl.seg[0].device_name);
    CHECK(pl.seg[1].kind == QE_DEV_CPU && pl.seg[1].end_layer == 28, "second on cpu");
    CHECK(pl.degraded, "degraded flag");
    CHECK(count_level(QEMBED_LOG_WARN) == 1, "%d WARN lines", count_level(QEMBED_LOG_WARN));
    CHECK(strstr(first_warn(), "sim-accel") && strstr(first_warn(), "GiB") &&
              strstr(first_warn(), "layers 0-9") && strstr(first_warn(), "layers 10-27"),
          "warning carries the numbers: %s", first_warn());

    /* Larger batches need more workspace: the accelerator then holds fewer layers. */
    CHECK(plan(&cfg, &d, QEMBED_UNITS_ALL, 4 * T, &pl, &e) == QEMBED_OK, "%s", e.message);
    check_plan_invariants(&pl, &cfg, &d, "bigger batch");
    CHECK(pl.seg[0].kind != QE_DEV_SIM_ACCEL || pl.seg[0].end_layer < 10,
          "bigger batch still puts %d layers on the accelerator", pl.seg[0].end_layer);

    /* The 4b model on a 3 GiB accelerator (the scenario). */
    qe_config c4 = CFG_4B;
    qe_devices d4 = devices(64 * GiB, 3 * GiB, 0);
    CHECK(plan(&c4, &d4, QEMBED_UNITS_ALL, 8192, &pl, &e) == QEMBED_OK, "%s", e.message);
    check_plan_invariants(&pl, &c4, &d4, "4b on 3 GiB");
    CHECK(pl.n_segments == 2 && pl.seg[0].kind == QE_DEV_SIM_ACCEL && pl.degraded,
          "4b: %d segments, first on %s", pl.n_segments, pl.seg[0].device_name);
}

/* An accelerator too small for the embedding and one layer is skipped: the
 * whole model falls back to the CPU, with one WARN saying so. */
static void test_fallback_when_accel_too_small(void) {
    qe_config cfg = CFG_0_6B;
    qe_devices d = devices(64 * GiB, 64ull << 20, 0);
    qe_plan pl;
    qembed_error e;
    CHECK(plan(&cfg, &d, QEMBED_UNITS_CPU_AND_GPU, 2048, &pl, &e) == QEMBED_OK, "%s", e.message);
    check_plan_invariants(&pl, &cfg, &d, "fallback");
    CHECK(pl.n_segments == 1 && pl.seg[0].kind == QE_DEV_CPU, "fell back to the CPU");
    CHECK(pl.degraded, "degraded flag");
    CHECK(count_level(QEMBED_LOG_WARN) == 1 && strstr(first_warn(), "falling back") &&
              strstr(first_warn(), "64.00 MiB"),
          "warning: %s", first_warn());
}

/* Larger than every budget: QEMBED_ERR_PLACEMENT naming the need and every
 * budget, never a crash, never a partial plan used. */
static void test_too_big(void) {
    qe_config cfg = CFG_4B;
    qe_devices d = devices(2 * GiB, 1 * GiB, 1);
    qe_plan pl;
    qembed_error e;
    qembed_status st = plan(&cfg, &d, QEMBED_UNITS_ALL, 8192, &pl, &e);
    CHECK(st == QEMBED_ERR_PLACEMENT, "status %d", st);
    CHECK(e.code == QEMBED_ERR_PLACEMENT, "err code");
    CHECK(strstr(e.message, "needs") && strstr(e.message, "cpu 2.00 GiB") &&
              strstr(e.message, "sim-accel (test device) 1.00 GiB"),
          "message: %s", e.message);
    /* CPU_ONLY with a tiny CPU budget. */
    qe_devices d2 = devices(100ull << 20, 0, 0);
    st = plan(&cfg, &d2, QEMBED_UNITS_CPU_ONLY, 8192, &pl, &e);
    CHECK(st == QEMBED_ERR_PLACEMENT && strstr(e.message, "cpu 100.00 MiB"), "cpu only: %s", e.message);
    /* A budget of zero (unknown available memory) is the same clear error. */
    qe_devices d3 = devices(0, 0, 0);
    st = plan(&cfg, &d3, QEMBED_UNITS_ALL, 8192, &pl, &e);
    CHECK(st == QEMBED_ERR_PLACEMENT, "zero budget: %d", st);
}

/* Discovery on this machine: a CPU always; the sim-accel only when asked;
 * a GPU, if libcuda reports one, is listed but never computes. */
static void test_discovery(void) {
    qembed_model_params p = params(QEMBED_UNITS_ALL, 1024);
    qe_devices d;
    qembed_error e;
    logs.n = 0;
    CHECK(qe_devices_discover(&p, &lg, &d, &e) == QEMBED_OK, "%s", e.message);
    CHECK(d.n >= 1 && d.dev[0].kind == QE_DEV_CPU && d.dev[0].can_compute, "cpu first");
    int sims = 0;
    for (int i = 0; i < d.n; i++) {
        sims += d.dev[i].kind == QE_DEV_SIM_ACCEL;
        if (d.dev[i].kind == QE_DEV_CUDA) CHECK(!d.dev[i].can_compute, "GPU without a backend");
    }
    CHECK(sims == 0, "sim-accel present without being asked");
    char names[8][128];
    uint64_t fr[8], tot[8];
    /* Vulkan devices (when a driver is installed) are named vulkanN (<name>);
     * a software one computes only with QEMBED_VULKAN_SOFTWARE=1 and says so. */
    int n_vk = 0;
    const char *sw = getenv("QEMBED_VULKAN_SOFTWARE");
    for (int i = 0; i < d.n; i++) {
        const qe_device *v = &d.dev[i];
        if (v->kind != QE_DEV_VULKAN) continue;
        char want[32];
        snprintf(want, sizeof want, "vulkan%d (", n_vk);
        CHECK(!strncmp(v->name, want, strlen(want)), "vulkan device name '%s'", v->name);
        if (strstr(v->detail, "software") && !(sw && !strcmp(sw, "1")))
            CHECK(!v->can_compute && strstr(v->unused_why, "QEMBED_VULKAN_SOFTWARE=1"),
                  "a software Vulkan device is unused unless asked for: '%s'", v->unused_why);
        n_vk++;
    }
    CHECK(d.n == 1 + qe_cuda_count(names, fr, tot, 8) + n_vk, "device count");

    p.cpu_memory_limit = 5 * GiB;
    p.sim_accel_memory = 3 * GiB;
    CHECK(qe_devices_discover(&p, &lg, &d, &e) == QEMBED_OK, "%s", e.message);
    CHECK(d.dev[0].budget == 5 * GiB, "cpu budget from the limit");
    const qe_device *s = &d.dev[d.n - 1];
    CHECK(s->kind == QE_DEV_SIM_ACCEL && s->budget == 3 * GiB &&
              !strcmp(s->name, "sim-accel (test device)") && s->can_compute,
          "sim-accel device");
    const char *src = NULL;
    uint64_t avail = qe_mem_available(&src);
    CHECK(avail > 0 && src, "available memory is known on Linux");
}

static void test_workspace_formula(void) {
    qe_config cfg = CFG_0_6B;
    /* Monotonic in the batch, and the stated formula for one value. */
    uint64_t a = qe_plan_workspace_bytes(&cfg, 1000, 2), b = qe_plan_workspace_bytes(&cfg, 2000, 2);
    CHECK(b > a, "workspace grows with the batch");
    uint64_t T = 1000, H = 1024, Q = 2048, KV = 1024, I = 3072, D = 128, P = 2;
    uint64_t want = 4 * T * (2 * H + Q + 2 * KV + Q + 2 * I) + 2 * T * I + 4 * P * T + 4 * T * D;
    CHECK(a == want, "formula %" PRIu64 " vs %" PRIu64, a, want);
}

int main(void) {
    test_compute_units();
    test_every_units_value();
    test_cpu_and_ne_fallback();
    test_cpu_and_gpu_without_gpu();
    test_split_forced_by_small_accel();
    test_fallback_when_accel_too_small();
    test_too_big();
    test_discovery();
    test_workspace_formula();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("planner: all checks passed\n");
    return 0;
}
