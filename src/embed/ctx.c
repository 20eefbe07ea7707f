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

qembed_status qembed_ctx_create(const qembed_model *model, const qembed_ctx_params *params, qembed_ctx **out,
                                qembed_error *err) {
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
    c->pool = qe_threadpool_create(n_threads);
    if (!c->pool) {
        free(c);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "cannot start a thread pool of %d threads", n_threads);
    }
    /* The int8 products' activation block, sized from the model's shapes and
     * this context's batch (none for a model without Q8_0/K-quant weights). */
    size_t q8 = qe_q8_block_bytes_for(model->fw.w, c->cap, model->params.exact);
    if (qe_threadpool_reserve_q8(c->pool, q8) != 0) {
        qe_threadpool_free(c->pool);
        free(c);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory for %zu bytes of quantized activations", q8);
    }
    qembed_status s = qe_fwd_state_init(&c->st, &model->fw, c->cap, c->pool,
                                        model->params.exact ? QE_MM_EXACT : QE_MM_BF16, err);
    /* Each segment's workspace on its backend; one that cannot be had (a
     * device out of memory) falls back to the CPU for this context, with a
     * WARN, before any input is embedded. */
    for (int i = 0; s == QEMBED_OK && i < model->plan.n_segments; i++) {
        const qe_backend *be = model->seg_backend[i];
        qembed_error e;
        memset(&e, 0, sizeof e);
        qembed_status ws = be->work_create(model->seg_state[i], c->cap, &c->st, &c->seg_work[i], &e);
        if (ws != QEMBED_OK && be != &qe_backend_cpu) {
            QE_WARN(&model->log,
                    "%s: no workspace for %d tokens (%s); falling back: layers %d-%d run "
                    "on the cpu in this context",
                    model->plan.seg[i].device_name, c->cap, e.message, model->plan.seg[i].first_layer,
                    model->plan.seg[i].end_layer - 1);
            be = &qe_backend_cpu;
            ws = be->work_create((void *)&model->fw, c->cap, &c->st, &c->seg_work[i], &e);
        }
        if (ws != QEMBED_OK) {
            if (err) *err = e;
            s = ws;
            break;
        }
        c->seg_backend[i] = be;
    }
    if (s == QEMBED_OK) {
        c->ids = malloc(cap * sizeof(int32_t));
        c->pooled = malloc((size_t)QE_MAX_SEQ_PER_PASS * (size_t)model->cfg.hidden_size * sizeof(float));
        if (!c->ids || !c->pooled)
            s = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory for a batch of %zu tokens", cap);
    }
    if (s != QEMBED_OK) {
        qembed_ctx_free(c);
        return s;
    }
    QE_DEBUG(&model->log, "context: %d threads, %d tokens per pass, %llu activation bytes",
             qe_threadpool_size(c->pool), c->cap,
             (unsigned long long)qe_fwd_state_bytes(&model->cfg, c->cap, qe_threadpool_size(c->pool)));
    *out = c;
    return QEMBED_OK;
}

uint64_t qembed_ctx_activation_bytes(const qembed_ctx *c) {
    if (!c) return 0;
    return qe_plan_cpu_workspace_bytes(&c->model->cfg, (size_t)c->cap, qe_threadpool_size(c->pool)) +
           (uint64_t)qe_threadpool_scratch_bytes(c->pool);
}

void qembed_ctx_free(qembed_ctx *c) {
    if (!c) return;
    for (int i = 0; i < QE_MAX_SEGMENTS; i++)
        if (c->seg_backend[i]) c->seg_backend[i]->work_free(c->seg_work[i]);
    qe_fwd_state_free(&c->st);
    qe_threadpool_free(c->pool);
    free(c->ids);
    free(c->pooled);
    free(c);
}

/* Runs every segment on its backend; the hidden state crosses into and out
 * of a device once per segment. A backend that fails mid-batch (a lost
 * device) is the documented fallback: WARN, every segment of this context
 * moves to the CPU backend for good, and the batch is rerun from the
 * embedding, so no input is lost or half-computed. */
static qembed_status run_segments(qembed_ctx *c, const int32_t *ids, const size_t *lens, int n_seq,
                                  qembed_error *e) {
    const qembed_model *m = c->model;
    qe_fwd_begin(&c->st, &m->fw, ids, lens, n_seq);
    qe_hidden h = {.x = c->st.x,
                   .rows = c->st.rows,
                   .n_tok = c->st.n_tok,
                   .n_seq = n_seq,
                   .seq_off = c->st.seq_off,
                   .pos = c->st.pos,
                   .compacted = 0};
    for (int s = 0; s < m->plan.n_segments; s++) {
        qembed_status st = c->seg_backend[s]->run(c->seg_work[s], &h, m->plan.seg[s].first_layer,
                                                  m->plan.seg[s].end_layer, e);
        if (st != QEMBED_OK) return st;
    }
    c->st.rows = h.rows;
    c->st.compacted = h.compacted;
    return QEMBED_OK;
}

static void fall_back_to_cpu(qembed_ctx *c, const char *why) {
    const qembed_model *m = c->model;
    QE_WARN(&m->log,
            "falling back to the cpu for every layer of this context: %s; the batch is "
            "rerun",
            why);
    for (int s = 0; s < m->plan.n_segments; s++) {
        if (c->seg_backend[s] == &qe_backend_cpu) continue;
        c->seg_backend[s]->work_free(c->seg_work[s]);
        c->seg_work[s] = NULL;
        c->seg_backend[s] = NULL;
        qembed_error e;
        if (qe_backend_cpu.work_create((void *)&m->fw, c->cap, &c->st, &c->seg_work[s], &e) == QEMBED_OK)
            c->seg_backend[s] = &qe_backend_cpu;
    }
}

void qe_ctx_forward(qembed_ctx *c, const int32_t *ids, const size_t *lens, int n_seq) {
    const qembed_model *m = c->model;
    double t0 = qe_now_ms();
    qembed_error e;
    memset(&e, 0, sizeof e);
    if (run_segments(c, ids, lens, n_seq, &e) != QEMBED_OK) {
        fall_back_to_cpu(c, e.message);
        /* The CPU backend cannot fail (its workspace exists already); the
         * NULL check covers an allocation of its few bytes failing. */
        int ok = 1;
        for (int s = 0; s < m->plan.n_segments; s++) ok = ok && c->seg_backend[s];
        if (!ok || run_segments(c, ids, lens, n_seq, &e) != QEMBED_OK) {
            /* Leave a pooled output the guard refuses (NaN), never garbage. */
            for (size_t i = 0; i < (size_t)n_seq * (size_t)m->cfg.hidden_size; i++)
                c->pooled[i] = __builtin_nanf("");
            QE_WARN(&m->log, "the cpu fallback could not run either");
            return;
        }
    }
    qe_fwd_end(&c->st, &m->fw, c->pooled);
    c->n_inference++;
    QE_INFO(&m->log, "inference #%llu completed in %.1f ms (batch=%d, tokens=%d)",
            (unsigned long long)c->n_inference, qe_now_ms() - t0, n_seq, c->st.n_tok);
}
