/* The embedding pipeline, as the reference (sentence-transformers with the
 * Qwen3-Embedding tokenizer) does it:
 *
 *   text -> "Instruct: {task}\nQuery:{text}" when an instruction is given
 *        -> tokenizer.json's pre-tokenizer, BPE and post-processor, which for
 *           Qwen3-Embedding appends <|endoftext|> (151643). When a tokenizer's
 *           post-processor does not append it (the plain ByteLevel one of the
 *           base Qwen3 tokenizer), it is appended here, once. It is never the
 *           config's eos_token <|im_end|> (151645).
 *        -> packed batches of at most max_batch_tokens tokens (no padding)
 *        -> forward pass, last-token pooling
 *        -> Matryoshka slice to `dims`, L2 normalisation, output guard.
 *
 * Text that itself ends with the literal "<|endoftext|>": with parse_special=1
 * (the default, as the reference) the literal becomes id 151643 and the
 * post-processor appends another, so the input ends with two 151643 tokens,
 * exactly as the reference gives. With parse_special=0 the literal is plain
 * text (several ordinary tokens) and one 151643 is appended.
 *
 * Limits: max_tokens counts the appended <|endoftext|>. Longer input is
 * QEMBED_ERR_INPUT_TOO_LONG unless truncate is set; truncation keeps the first
 * (truncation_direction right) or the last (left) max_tokens-1 tokens of the
 * text and then <|endoftext|>, so the pooled token is still the end-of-text
 * token the model was trained to pool (as the Hugging Face tokenizer does:
 * it truncates before its post-processor appends the token). Caller's token
 * ids are cut the same way but taken as they are: nothing is kept specially.
 * n_tokens_out gives each input's length before truncation (usage counts).
 * An empty text is QEMBED_ERR_EMPTY_INPUT (the reference would embed the lone
 * <|endoftext|>; a vector of nothing is almost always a caller's bug). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/params.h"
#include "embed/embed.h"

qembed_embed_options qe_embed_defaults(void) {
    qembed_embed_options o;
    memset(&o, 0, sizeof o);
    o.instruction = NULL;
    o.dims = 0;
    o.normalize = 1;
    o.truncate = 0;
    o.max_tokens = 0;
    o.parse_special = 1;
    return o;
}

/* The caller's options over the defaults, as far as its size goes. */
static qembed_status embed_options_in(qembed_embed_options *o, const qembed_embed_options *opts,
                                      qembed_error *err) {
    static const size_t sizes[] = {QE_SIZE_UPTO(qembed_embed_options, parse_special),
                                   sizeof(qembed_embed_options)};
    return qe_params_copy(o, sizeof *o, opts, sizes, 2, "qembed_embed_options", err);
}

static qembed_status check_options(const qembed_model *m, const qembed_embed_options *o, size_t *max_tokens,
                                   int *dims, qembed_error *err) {
    const int H = m->cfg.hidden_size;
    *dims = o->dims ? o->dims : H;
    int lo = H < 32 ? H : 32;
    QE_FAIL_IF(*dims < lo || *dims > H, err, QEMBED_ERR_INVALID_ARGUMENT,
               "dims %d is out of range: expected %d..%d (the model's hidden size)", o->dims, lo, H);
    *max_tokens = o->max_tokens ? o->max_tokens : m->max_tokens;
    QE_FAIL_IF(*max_tokens > (size_t)m->cfg.max_position_embeddings, err, QEMBED_ERR_INVALID_ARGUMENT,
               "max_tokens %zu exceeds the model's max_position_embeddings %d", *max_tokens,
               m->cfg.max_position_embeddings);
    return QEMBED_OK;
}

/* Tokenizes input `index` as the pipeline does; *ids is malloc'ed. */
static qembed_status tokenize_one(const qembed_model *m, const char *text, size_t len,
                                  const qembed_embed_options *o, size_t max_tokens, size_t index,
                                  int32_t **ids_out, size_t *n_out, qembed_error *err) {
    *ids_out = NULL;
    *n_out = 0;
    QE_FAIL_IF(!text, err, QEMBED_ERR_INVALID_ARGUMENT, "input %zu: text is NULL", index);
    QE_FAIL_IF(len == 0, err, QEMBED_ERR_EMPTY_INPUT, "input %zu: the text is empty", index);

    char *formatted = NULL;
    const char *src = text;
    size_t src_len = len;
    QE_FAIL_IF(o->truncation_direction != QEMBED_TRUNCATE_RIGHT &&
                   o->truncation_direction != QEMBED_TRUNCATE_LEFT,
               err, QEMBED_ERR_INVALID_ARGUMENT,
               "truncation_direction %d: expected QEMBED_TRUNCATE_RIGHT or QEMBED_TRUNCATE_LEFT",
               o->truncation_direction);
    if (o->instruction) {
        static const char p1[] = "Instruct: ", p2[] = "\nQuery:";
        size_t il = strlen(o->instruction);
        src_len = sizeof p1 - 1 + il + sizeof p2 - 1 + len;
        formatted = malloc(src_len + 1);
        QE_FAIL_IF(!formatted, err, QEMBED_ERR_OUT_OF_MEMORY, "input %zu: out of memory", index);
        char *w = formatted;
        memcpy(w, p1, sizeof p1 - 1);
        w += sizeof p1 - 1;
        memcpy(w, o->instruction, il);
        w += il;
        memcpy(w, p2, sizeof p2 - 1);
        w += sizeof p2 - 1;
        memcpy(w, text, len);
        w += len;
        *w = '\0';
        src = formatted;
    }
    qembed_encode_options eo = qembed_encode_default_options();
    eo.add_special_tokens = 1;
    eo.parse_special = o->parse_special;
    int32_t *ids = NULL;
    size_t n = 0;
    qembed_status s = qembed_tokenizer_encode(m->tok, src, src_len, &eo, &ids, &n, err);
    free(formatted);
    if (s != QEMBED_OK)
        return qe_error_prefix(err, s, "input %zu%s: ", index,
                               o->instruction ? " (formatted with the instruction)" : "");
    if (!m->tokenizer_appends) {
        int32_t *grown = realloc(ids, (n + 1) * sizeof *ids);
        if (!grown) {
            qembed_free(ids);
            QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "input %zu: out of memory", index);
        }
        ids = grown;
        ids[n++] = m->eos_id;
    }
    /* A tokenizer with more ids than the checkpoint's embedding rows (a
     * mismatched tokenizer.json) must not index past the table. */
    for (size_t k = 0; k < n; k++) {
        if (ids[k] < 0 || ids[k] >= m->cfg.vocab_size) {
            int32_t bad = ids[k];
            qembed_free(ids);
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                    "input %zu: token %zu has id %d, outside the model's vocabulary (vocab_size %d "
                    "in config.json): tokenizer.json does not match the checkpoint",
                    index, k, (int)bad, m->cfg.vocab_size);
        }
    }
    if (o->n_tokens_out) o->n_tokens_out[index] = n;
    if (n > max_tokens) {
        if (!o->truncate) {
            qembed_free(ids);
            QE_FAIL(err, QEMBED_ERR_INPUT_TOO_LONG,
                    "input %zu has %zu tokens (with the appended <|endoftext|>); the maximum is %zu "
                    "(raise max_tokens or ask for truncation)",
                    index, n, max_tokens);
        }
        /* The text's tokens are ids[0, n-1); the appended <|endoftext|> is last. */
        if (o->truncation_direction == QEMBED_TRUNCATE_LEFT && max_tokens > 1)
            memmove(ids, ids + (n - max_tokens), (max_tokens - 1) * sizeof *ids);
        n = max_tokens;
        ids[n - 1] = m->eos_id;
    }
    *ids_out = ids;
    *n_out = n;
    return QEMBED_OK;
}

qembed_status qembed_model_tokenize(const qembed_model *m, const char *text, size_t len,
                                    const qembed_embed_options *opts, int32_t **ids, size_t *n_ids,
                                    qembed_error *err) {
    QE_FAIL_IF(!m || !ids || !n_ids, err, QEMBED_ERR_INVALID_ARGUMENT,
               "qembed_model_tokenize: model, ids and n_ids must not be NULL");
    qembed_embed_options o = qe_embed_defaults();
    QE_TRY(embed_options_in(&o, opts, err));
    /* No model runs here: max_tokens may exceed the model's positions (a
     * caller listing or counting the tokens of a long text). */
    size_t max_tokens = o.max_tokens ? o.max_tokens : m->max_tokens;
    return tokenize_one(m, text, len, &o, max_tokens, 0, ids, n_ids, err);
}

/* Pooled row -> output row: slice to dims, guard, normalise. */
static qembed_status finish_row(const float *pooled, int hidden, int dims, int normalize, size_t index,
                                float *out, qembed_error *err) {
    for (int j = 0; j < hidden; j++)
        QE_FAIL_IF(!isfinite(pooled[j]), err, QEMBED_ERR_NUMERIC,
                   "input %zu: the model produced a non-finite value (%s at dimension %d); no "
                   "vector is returned",
                   index, isnan(pooled[j]) ? "NaN" : "Inf", j);
    double ss = 0.0;
    for (int j = 0; j < dims; j++) ss += (double)pooled[j] * (double)pooled[j];
    QE_FAIL_IF(!(ss > 0.0) || !isfinite(ss), err, QEMBED_ERR_NUMERIC,
               "input %zu: the embedding has %s norm; no vector is returned", index,
               ss == 0.0 ? "zero" : "a non-finite");
    double inv = normalize ? 1.0 / sqrt(ss) : 1.0;
    for (int j = 0; j < dims; j++) {
        out[j] = (float)(pooled[j] * inv);
        QE_FAIL_IF(!isfinite(out[j]), err, QEMBED_ERR_NUMERIC,
                   "input %zu: dimension %d is not finite after normalisation", index, j);
    }
    return QEMBED_OK;
}

/* Where the inputs come from: texts (tokenized here) or caller's ids. */
typedef struct source {
    const char *const *texts;
    const size_t *lens;
    const int32_t *const *ids;
    const size_t *n_ids;
} source;

static qembed_status get_ids(qembed_ctx *c, const source *src, size_t i, const qembed_embed_options *o,
                             size_t max_tokens, int32_t **ids, size_t *n, int *owned, qembed_error *err) {
    const qembed_model *m = c->model;
    if (src->texts) {
        const char *t = src->texts[i];
        size_t len = src->lens ? src->lens[i] : (t ? strlen(t) : 0);
        *owned = 1;
        return tokenize_one(m, t, len, o, max_tokens, i, ids, n, err);
    }
    *owned = 0;
    QE_FAIL_IF(!src->ids[i], err, QEMBED_ERR_INVALID_ARGUMENT, "input %zu: ids is NULL", i);
    QE_FAIL_IF(src->n_ids[i] == 0, err, QEMBED_ERR_EMPTY_INPUT, "input %zu: no token ids", i);
    for (size_t k = 0; k < src->n_ids[i]; k++)
        QE_FAIL_IF(src->ids[i][k] < 0 || src->ids[i][k] >= m->cfg.vocab_size, err,
                   QEMBED_ERR_INVALID_ARGUMENT,
                   "input %zu: token %zu has id %d, outside the vocabulary [0, %d)", i, k,
                   (int)src->ids[i][k], m->cfg.vocab_size);
    size_t len = src->n_ids[i];
    size_t skip = 0;
    if (o->n_tokens_out) o->n_tokens_out[i] = len;
    if (len > max_tokens) {
        QE_FAIL_IF(!o->truncate, err, QEMBED_ERR_INPUT_TOO_LONG,
                   "input %zu has %zu tokens; the maximum is %zu (raise max_tokens or ask for "
                   "truncation)",
                   i, len, max_tokens);
        QE_FAIL_IF(o->truncation_direction != QEMBED_TRUNCATE_RIGHT &&
                       o->truncation_direction != QEMBED_TRUNCATE_LEFT,
                   err, QEMBED_ERR_INVALID_ARGUMENT,
                   "truncation_direction %d: expected QEMBED_TRUNCATE_RIGHT or QEMBED_TRUNCATE_LEFT",
                   o->truncation_direction);
        /* ids are the caller's: cut as they are (no <|endoftext|> kept specially) */
        if (o->truncation_direction == QEMBED_TRUNCATE_LEFT) skip = len - max_tokens;
        len = max_tokens;
    }
    *ids = (int32_t *)src->ids[i] + skip;
    *n = len;
    return QEMBED_OK;
}

static qembed_status run(qembed_ctx *c, const source *src, size_t n, const qembed_embed_options *opts,
                         float *out, qembed_error *err) {
    QE_FAIL_IF(!c, err, QEMBED_ERR_INVALID_ARGUMENT, "embed: ctx is NULL");
    QE_FAIL_IF(n == 0, err, QEMBED_ERR_EMPTY_INPUT, "embed: the batch is empty (no inputs)");
    QE_FAIL_IF(!out, err, QEMBED_ERR_INVALID_ARGUMENT, "embed: out is NULL");
    const qembed_model *m = c->model;
    qembed_embed_options o = qe_embed_defaults();
    QE_TRY(embed_options_in(&o, opts, err));
    size_t max_tokens = 0;
    int dims = 0;
    QE_TRY(check_options(m, &o, &max_tokens, &dims, err));
    QE_FAIL_IF(max_tokens > (size_t)c->cap, err, QEMBED_ERR_INVALID_ARGUMENT,
               "max_tokens %zu exceeds this context's %d tokens per pass (max_batch_tokens)", max_tokens,
               c->cap);
    const int H = m->cfg.hidden_size;

    size_t i = 0;         /* next input to fetch */
    int32_t *pend = NULL; /* fetched input that did not fit the previous pass */
    size_t pend_n = 0;
    int pend_owned = 0;
    qembed_status s = QEMBED_OK;
    while (i < n || pend) {
        size_t first = i - (pend ? 1 : 0); /* index of the pass's first input */
        int n_seq = 0;
        size_t t = 0;
        while (n_seq < QE_MAX_SEQ_PER_PASS) {
            if (!pend) {
                if (i >= n) break;
                s = get_ids(c, src, i, &o, max_tokens, &pend, &pend_n, &pend_owned, err);
                if (s != QEMBED_OK) return s;
                i++;
            }
            if (t + pend_n > (size_t)c->cap) break; /* starts the next pass */
            memcpy(c->ids + t, pend, pend_n * sizeof(int32_t));
            c->lens[n_seq++] = pend_n;
            t += pend_n;
            if (pend_owned) qembed_free(pend);
            pend = NULL;
        }
        qe_ctx_forward(c, c->ids, c->lens, n_seq);
        for (int k = 0; k < n_seq; k++) {
            s = finish_row(c->pooled + (size_t)k * H, H, dims, o.normalize, first + (size_t)k,
                           out + (first + (size_t)k) * (size_t)dims, err);
            if (s != QEMBED_OK) {
                if (pend && pend_owned) qembed_free(pend);
                return s;
            }
        }
    }
    return QEMBED_OK;
}

qembed_status qembed_ctx_embed(qembed_ctx *ctx, const char *const *texts, const size_t *lens, size_t n,
                               const qembed_embed_options *opts, float *out, qembed_error *err) {
    QE_FAIL_IF(n && !texts, err, QEMBED_ERR_INVALID_ARGUMENT, "embed: texts is NULL");
    source src = {.texts = texts, .lens = lens};
    return run(ctx, &src, n, opts, out, err);
}

qembed_status qembed_ctx_embed_tokens(qembed_ctx *ctx, const int32_t *const *ids, const size_t *n_ids,
                                      size_t n, const qembed_embed_options *opts, float *out,
                                      qembed_error *err) {
    QE_FAIL_IF(n && (!ids || !n_ids), err, QEMBED_ERR_INVALID_ARGUMENT,
               "embed_tokens: ids and n_ids must not be NULL");
    source src = {.ids = ids, .n_ids = n_ids};
    return run(ctx, &src, n, opts, out, err);
}
