/* qembed_model_load: opens the model (model.c), then runs the optional
 * warm-up inference through a context (ctx.c, pipeline.c). It sits on top so
 * that the folder's files depend one way: model.c <- ctx.c <- pipeline.c <-
 * load.c. */
#include <stdlib.h>

#include "common/clock.h"
#include "embed/embed.h"

/* One inference of one token on a small context: pages in the weights and
 * starts the pool's threads before the first request. */
static qembed_status warmup(qembed_model *m, qembed_error *err) {
    qembed_ctx_params cp = qembed_ctx_default_params();
    cp.max_batch_tokens = 16;
    qembed_ctx *ctx = NULL;
    QE_TRY(qembed_ctx_create(m, &cp, &ctx, err));
    int32_t id = m->eos_id;
    const int32_t *ids[1] = {&id};
    size_t n = 1;
    float *out = malloc((size_t)m->cfg.hidden_size * sizeof(float));
    qembed_status s = QEMBED_ERR_OUT_OF_MEMORY;
    if (out) {
        qembed_embed_options o = qembed_embed_default_options();
        s = qembed_ctx_embed_tokens(ctx, ids, &n, 1, &o, out, err);
        if (s != QEMBED_OK) qe_error_prefix(err, s, "warm-up inference: ");
    } else {
        qe_error(err, s, "out of memory for the warm-up inference");
    }
    free(out);
    qembed_ctx_free(ctx);
    return s;
}

qembed_status qembed_model_load(const char *path, const qembed_model_params *params, qembed_model **out,
                                qembed_error *err) {
    double t0 = qe_now_ms();
    QE_TRY(qe_model_open(path, params, out, err));
    qembed_model *m = *out;
    if (m->params.warmup) {
        double tw = qe_now_ms();
        qembed_status s = warmup(m, err);
        if (s != QEMBED_OK) {
            qembed_model_free(m);
            *out = NULL;
            return s;
        }
        QE_INFO(&m->log, "warm-up inference completed in %.1f ms", qe_now_ms() - tw);
    }
    QE_INFO(&m->log, "Model loaded successfully with %s in %.0f ms",
            qembed_compute_units_name(m->params.compute_units), qe_now_ms() - t0);
    /* INFO, not WARN: front ends say it in their own words (the CLI prints
     * a plain warning, the server reports it in /info). */
    if (m->synthetic)
        QE_INFO(&m->log, "%s is a synthetic checkpoint (random weights): its vectors carry no meaning",
                m->resolved);
    return QEMBED_OK;
}
