/* qembed_ctx: one worker's thread pool and activation memory, planned once. */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/params.h"
#include "embed/embed.h"

qembed_ctx_params qe_ctx_defaults(void) {
    qembed_ctx_params p;
    memset(&p, 0, sizeof p);
    return p;
}

qembed_status qembed_ctx_create(const qembed_model *model, const qembed_ctx_params *params,
                                qembed_ctx **out, qembed_error *err) {
    QE_FAIL_IF(!out, err, QEMBED_ERR_INVALID_ARGUMENT, "qembed_ctx_create: out is NULL");
    *out = NULL;
    QE_FAIL_IF(!model, err, QEMBED_ERR_INVALID_ARGUMENT, "qembed_ctx_create: model is NULL");
    static const size_t sizes[] = {QE_SIZE_UPTO(qembed_ctx_params, max_batch_tokens),
                                   sizeof(qembed_ctx_params)};
    qembed_ctx_params p = qe_ctx_defaults();
    QE_TRY(qe_params_copy(&p, sizeof p, params, sizes, 2, "qembed_ctx_params", err));
    int n_threads = p.n_threads > 0 ? p.n_threads : model->params.n_threads;
    size_t cap = p.max_batch_tokens ? p.max_batch_tokens : model->params.max_batch_tokens;
    /* One input of the model's maximum length must always fit in one pass. */
    if (cap < model->max_tokens) cap = model->max_tokens;
    QE_FAIL_IF(cap > (size_t)1 << 24, err, QEMBED_ERR_INVALID_ARGUMENT,
               "max_batch_tokens %zu is too large (at most 16777216)", cap);

    qembed_ctx *c = calloc(1, sizeof *c);
    QE_FAIL_IF(!c, err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory");
    c->model = model;
    c->cap = (int)cap;
    c->pool = qe_pool_create(n_threads);
    if (!c->pool) {
        free(c);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "cannot start a thread pool of %d threads",
                n_threads);
    }
    qembed_status s = qe_fwd_state_init(&c->st, &model->fw, c->cap, c->pool,
                                        model->params.exact ? QE_MM_EXACT : QE_MM_BF16, err);
    if (s == QEMBED_OK) {
        c->ids = malloc(cap * sizeof(int32_t));
        c->pooled = malloc((size_t)QE_MAX_SEQ_PER_PASS * (size_t)model->cfg.hidden_size * sizeof(float));
        if (!c->ids || !c->pooled)
            s = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory for a batch of %zu tokens",
                         cap);
    }
    if (s != QEMBED_OK) {
        qembed_ctx_free(c);
        return s;
    }
    QE_DEBUG(&model->log, "context: %d threads, %d tokens per pass, %llu activation bytes",
             qe_pool_size(c->pool), c->cap,
             (unsigned long long)qe_fwd_state_bytes(&model->cfg, c->cap, qe_pool_size(c->pool)));
    *out = c;
    return QEMBED_OK;
}

uint64_t qembed_ctx_activation_bytes(const qembed_ctx *c) {
    if (!c) return 0;
    return qe_plan_cpu_workspace_bytes(&c->model->cfg, (size_t)c->cap, qe_pool_size(c->pool)) +
           (uint64_t)qe_pool_scratch_bytes(c->pool);
}

void qembed_ctx_free(qembed_ctx *c) {
    if (!c) return;
    qe_fwd_state_free(&c->st);
    qe_pool_free(c->pool);
    free(c->ids);
    free(c->pooled);
    free(c);
}

void qe_ctx_forward(qembed_ctx *c, const int32_t *ids, const size_t *lens, int n_seq) {
    const qembed_model *m = c->model;
    double t0 = qe_now_ms();
    qe_fwd_begin(&c->st, &m->fw, ids, lens, n_seq);
    /* Segment by segment, as placed. CPU and sim-accel segments both run the
     * CPU kernels on the host-resident hidden state; a device with its own
     * memory would take x in and hand it back at its segment's ends. */
    for (int s = 0; s < m->plan.n_segments; s++)
        for (int l = m->plan.seg[s].first_layer; l < m->plan.seg[s].end_layer; l++)
            qe_fwd_layer(&c->st, &m->fw, l);
    qe_fwd_end(&c->st, &m->fw, c->pooled);
    c->n_inference++;
    QE_INFO(&m->log, "inference #%llu completed in %.1f ms (batch=%d, tokens=%d)",
            (unsigned long long)c->n_inference, qe_now_ms() - t0, n_seq, c->st.n_tok);
}
