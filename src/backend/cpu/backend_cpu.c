/* The CPU behind the backend table: the reference backend. Weights stay where
 * the checkpoint mapped them and the workspace is the context's own CPU
 * forward state, so loading and moving the hidden state cost nothing; run
 * calls forward.c's layer function. On a CPU with AMX tiles (level amx), a
 * segment's bf16 matrices (in bf16 mode) or Q8_0 matrices are packed once at
 * load for the tiles (forward.c, matmul_amx.c, matmul_q8p.c) in place of
 * their mapped pages. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "common/clock.h"
#include "plan/plan.h"

static uint64_t cpu_workspace_bytes(const qe_device *dev, const qe_config *cfg, size_t T, int threads) {
    return qe_plan_cpu_workspace_bytes(cfg, T, threads);
}

static int cpu_supports(const qe_device *dev, const qe_config *cfg, qe_dtype dt, size_t T, char *why,
                        size_t why_size) {
    return 1; /* the reference runs every model the loader accepts */
}

/* Packs layers [first, end) for AMX tiles when that pays and fits: level
 * amx, every matrix bf16 (bf16 mode; not turned off by QEMBED_AMX_PACK=0)
 * or every matrix Q8_0 (every mode: their products are int8 either way;
 * not turned off by QEMBED_Q8_PACK=0), and the packed copy no larger than
 * the mapped matrices it replaces (plus 1% of padding for widths not a
 * multiple of 32): the planner counted the stored bytes against the budget,
 * and the mapped pages are dropped once packed, so the packed copy takes
 * their place in memory. A failure (no memory) leaves the mapped weights in
 * use, with a warning. The layers are packed in parallel on *pool, created
 * here by the load's first segment that packs and reused by the others
 * (seg_load's contract in backend.h). */
static void cpu_pack(const qe_fwd_weights *fw, int first, int end, qe_threadpool **pool,
                     const qe_logger *lg) {
    if (qe_cpu_isa() < QE_ISA_AMX || end <= first) return;
    const int dt = qe_fwd_pack_dtype(fw, first, end);
    if (dt < 0 || (dt == QE_BF16 && fw->exact)) return; /* neither all bf16 nor all Q8_0 */
    const char *what = dt == QE_Q8_0 ? "Q8_0" : "bf16",
               *var = dt == QE_Q8_0 ? "QEMBED_Q8_PACK" : "QEMBED_AMX_PACK";
    const char *env = getenv(var);
    if (env && strcmp(env, "0") == 0) {
        QE_INFO(lg, "cpu: %s matrices of layers %d-%d read as mapped (%s=0)", what, first, end - 1, var);
        return;
    }
    uint64_t stored = 0, bytes = qe_fwd_packed_bytes(fw, first, end, &stored);
    char b1[32], b2[32];
    if (bytes == 0) return;
    if (bytes > stored + stored / 100) {
        QE_INFO(lg, "cpu: %s matrices of layers %d-%d read as mapped: packing them would take %s for %s",
                what, first, end - 1, qe_fmt_bytes(bytes, b1, sizeof b1),
                qe_fmt_bytes(stored, b2, sizeof b2));
        return;
    }
    double t0 = qe_now_s();
    if (!*pool) *pool = qe_threadpool_create(0);
    int rc = *pool ? qe_fwd_pack_layers(fw, first, end, *pool) : -1;
    if (rc != 0) {
        QE_WARN(
            lg,
            "cpu: out of memory packing layers %d-%d for AMX tiles (%s): products read the mapped weights",
            first, end - 1, qe_fmt_bytes(bytes, b1, sizeof b1));
        return;
    }
    QE_INFO(
        lg,
        "cpu: %s matrices of layers %d-%d packed for AMX tiles in %.0f ms: %s in place of their mapped pages",
        what, first, end - 1, (qe_now_s() - t0) * 1e3, qe_fmt_bytes(bytes, b1, sizeof b1));
}

static qembed_status cpu_seg_load(const qe_device *dev, const qe_fwd_weights *fw, int first, int end,
                                  qe_threadpool **pool, const qe_logger *lg, void **seg, qembed_error *err) {
    cpu_pack(fw, first, end, pool, lg);
    *seg = (void *)fw; /* the weights: mapped, or packed in fw */
    return QEMBED_OK;
}

static void cpu_seg_free(void *seg) {}

/* The layers need the weights too: the CPU state does not keep them, so the
 * segment's qe_fwd_weights travels in a small pair. */
typedef struct cpu_run_args {
    qe_fwd_state *st;
    const qe_fwd_weights *fw;
} cpu_run_args;

static qembed_status cpu_run(void *work, qe_hidden *h, int first, int end, qembed_error *err) {
    const cpu_run_args *a = work;
    qe_fwd_state *st = a->st;
    if (st->rows != h->rows) st->xn_layer = -1; /* rows changed elsewhere: xn is stale */
    st->rows = h->rows;
    st->compacted = h->compacted;
    for (int l = first; l < end; l++) qe_fwd_layer(st, a->fw, l);
    h->rows = st->rows;
    h->compacted = st->compacted;
    return QEMBED_OK;
}

/* The workspace is the context's own CPU state (no copy at a boundary),
 * paired with the segment's weights. */
static qembed_status cpu_work_create_pair(void *seg, int cap, qe_fwd_state *host, void **work,
                                          qembed_error *err) {
    cpu_run_args *a = malloc(sizeof *a);
    QE_FAIL_IF(!a, err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory");
    a->st = host;
    a->fw = seg;
    *work = a;
    return QEMBED_OK;
}

static void cpu_work_free_pair(void *work) {
    free(work);
}

const qe_backend qe_backend_cpu = {
    .api_version = QE_BACKEND_API_VERSION,
    .name = "cpu",
    .workspace_bytes = cpu_workspace_bytes,
    .supports = cpu_supports,
    .embed_bytes = qe_plan_embed_bytes,
    .seg_load = cpu_seg_load,
    .seg_free = cpu_seg_free,
    .work_create = cpu_work_create_pair,
    .work_free = cpu_work_free_pair,
    .run = cpu_run,
};
