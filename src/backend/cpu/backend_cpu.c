/* The CPU behind the backend table: the reference backend. Weights stay where
 * the checkpoint mapped them and the workspace is the context's own CPU
 * forward state, so loading and moving the hidden state cost nothing; run
 * calls forward.c's layer function. */
#include <stdlib.h>

#include "backend/backend.h"
#include "plan/plan.h"

static uint64_t cpu_workspace_bytes(const qe_device *dev, const qe_config *cfg, size_t T, int threads) {
    return qe_plan_cpu_workspace_bytes(cfg, T, threads);
}

static int cpu_supports(const qe_device *dev, const qe_config *cfg, qe_dtype dt, size_t T, char *why,
                        size_t why_size) {
    return 1; /* the reference runs every model the loader accepts */
}

static qembed_status cpu_seg_load(const qe_device *dev, const qe_fwd_weights *fw, int first, int end,
                                  const qe_logger *lg, void **seg, qembed_error *err) {
    *seg = (void *)fw; /* the mapped weights, read in place */
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
