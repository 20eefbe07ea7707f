/* Shared by the files of the tokenizer loader (load.c, load_sections.c,
 * config_check.c): the loader's state, cJSON accessors, and the sections
 * of tokenizer.json that load_sections.c translates. Each section loader
 * records an error naming the file and the field, and refuses what qembed
 * does not implement (QEMBED_ERR_UNSUPPORTED) rather than ignore it. */
#ifndef QE_TOK_LOAD_INTERNAL_H
#define QE_TOK_LOAD_INTERNAL_H

#include <cjson/cJSON.h>

#include "common/error.h"
#include "tokenizer/json_scan.h"
#include "tokenizer/tokenizer_internal.h"

typedef struct loader {
    qembed_tokenizer *t;
    const char *file; /* for messages */
    qembed_error *err;
    big_parts *big;  /* model.vocab and model.merges, parsed apart */
    const char *buf; /* the file's text */
} loader;

static inline int jbool(const cJSON *obj, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

static inline const char *jtype(const cJSON *obj) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A JSON number that is an integer id in [0, QE_MAX_IDS). */
static inline int jid(const cJSON *v, int32_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d < QE_MAX_IDS) || d != (double)(int64_t)d) return 0;
    *out = (int32_t)d;
    return 1;
}

/* The sections around the model (load_sections.c). Sequences recurse; where
 * names the field for messages ("normalizer.normalizers[1]"). */
qembed_status qe_tok_load_normalizer(loader *L, const cJSON *n, const char *where);
qembed_status qe_tok_load_pre_tokenizer(loader *L, const cJSON *p);
qembed_status qe_tok_load_post(loader *L, const cJSON *p, const char *where);
qembed_status qe_tok_load_decoder(loader *L, const cJSON *d, const char *where);
qembed_status qe_tok_load_trunc_pad(loader *L, const cJSON *root);

/* Builds the tokenizer from a parsed tokenizer.json (root, with model.vocab
 * and model.merges in L->big): load.c for tokenizer.json, load_gguf.c for a
 * GGUF's tokenizer.ggml.* translated into the same shape. */
qembed_status qe_tok_build(loader *L, const cJSON *root);

/* A .gguf file's tokenizer.ggml.* vocabulary (load_gguf.c). */
qembed_status qe_tok_load_gguf(const char *path, qembed_tokenizer **out, qembed_error *err);
/* The same from a parsed file (the fuzz target drives it). */
struct qe_gguf;
qembed_status qe_tok_from_gguf(const struct qe_gguf *g, const char *file, qembed_tokenizer **out,
                               qembed_error *err);

/* tokenizer_config.json beside tokenizer.json, when present (config_check.c). */
qembed_status qe_tok_check_config(const qembed_tokenizer *t, const char *path, qembed_error *err);

#endif
