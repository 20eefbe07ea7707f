/* The sections of tokenizer.json around the BPE model, each into the
 * tokenizer: normalizer, pre-tokenizer, post-processor (the template of
 * special tokens), decoder, truncation and padding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/load_internal.h"
#include "tokenizer/pretok.h"

/* A "Sequence" node: each element of its array `key` loaded by `one`, named
 * "<where>.<key>[i]" in messages (nested sequences recurse through `one`).
 * nonempty: an empty array is refused too. */
typedef qembed_status (*section_fn)(loader *L, const cJSON *node, const char *where);
static qembed_status load_sequence(loader *L, const cJSON *node, const char *key, const char *where,
                                   int nonempty, section_fn one) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(node, key);
    if (!cJSON_IsArray(list) || (nonempty && cJSON_GetArraySize(list) == 0))
        QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s.%s is not %s", L->file, where, key,
                nonempty ? "a non-empty array" : "an array");
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        char sub[128];
        snprintf(sub, sizeof sub, "%s.%s[%d]", where, key, i++);
        QE_TRY(one(L, e, sub));
    }
    return QEMBED_OK;
}

qembed_status qe_tok_load_normalizer(loader *L, const cJSON *n, const char *where) {
    if (!n || cJSON_IsNull(n)) return QEMBED_OK;
    const char *type = jtype(n);
    if (!type) QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s has no \"type\"", L->file, where);
    if (strcmp(type, "NFC") == 0) {
        L->t->nfc = 1;
        return QEMBED_OK;
    }
    if (strcmp(type, "Sequence") == 0)
        return load_sequence(L, n, "normalizers", where, 0, qe_tok_load_normalizer);
    QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED,
            "%s: %s type \"%s\" is not supported (qembed implements NFC and Sequence)", L->file, where, type);
}

static qembed_status add_split(loader *L, int kind, const char *pattern, size_t plen, const char *where) {
    qembed_tokenizer *t = L->t;
    qe_split *ns = realloc(t->splits, (t->n_splits + 1) * sizeof *ns);
    if (!ns) QE_FAIL(L->err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", L->file);
    t->splits = ns;
    qe_split *sp = &t->splits[t->n_splits];
    memset(sp, 0, sizeof *sp);
    if (kind == QE_SPLIT_STRING) {
        if (plen == 0) QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s: empty split string", L->file, where);
        sp->lit = malloc(plen);
        if (!sp->lit) QE_FAIL(L->err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", L->file);
        memcpy(sp->lit, pattern, plen);
        sp->lit_len = plen;
    } else if (plen == strlen(qe_qwen_pattern) && memcmp(pattern, qe_qwen_pattern, plen) == 0) {
        sp->kind = QE_SPLIT_QWEN;
    } else {
        /* Any other pattern: PCRE2 (UTF + Unicode properties), close to the
         * reference's Oniguruma for the patterns tokenizers use; only the
         * Qwen pattern above is proven identical by the differential test. */
        int ec;
        PCRE2_SIZE eo;
        sp->re = pcre2_compile((PCRE2_SPTR)pattern, plen, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
        if (!sp->re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED, "%s: %s: regex does not compile at offset %zu: %s",
                    L->file, where, (size_t)eo, (const char *)msg);
        }
        pcre2_jit_compile(sp->re, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
        sp->kind = QE_SPLIT_PCRE2;
    }
    t->n_splits++;
    return QEMBED_OK;
}

/* GPT-2's pattern, used by ByteLevel when use_regex is true. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static qembed_status load_pre_one(loader *L, const cJSON *p, const char *where, int *seen_bytelevel) {
    const char *type = jtype(p);
    if (!type) QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s has no \"type\"", L->file, where);
    if (*seen_bytelevel)
        QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED, "%s: %s: qembed needs ByteLevel to be the last pre-tokenizer",
                L->file, where);
    if (strcmp(type, "ByteLevel") == 0) {
        if (jbool(p, "add_prefix_space", 0))
            QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED, "%s: %s.add_prefix_space true is not supported", L->file,
                    where);
        if (jbool(p, "use_regex", 1))
            QE_TRY(add_split(L, QE_SPLIT_PCRE2, gpt2_pattern, strlen(gpt2_pattern), where));
        *seen_bytelevel = 1;
        return QEMBED_OK;
    }
    if (strcmp(type, "Split") == 0) {
        const cJSON *beh = cJSON_GetObjectItemCaseSensitive(p, "behavior");
        if (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") != 0)
            QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED, "%s: %s.behavior \"%s\" is not supported (only Isolated)",
                    L->file, where, cJSON_IsString(beh) ? beh->valuestring : "?");
        if (jbool(p, "invert", 0))
            QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED, "%s: %s.invert true is not supported", L->file, where);
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
        if (cJSON_IsString(re))
            return add_split(L, QE_SPLIT_PCRE2, re->valuestring, strlen(re->valuestring), where);
        if (cJSON_IsString(str))
            return add_split(L, QE_SPLIT_STRING, str->valuestring, strlen(str->valuestring), where);
        QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s.pattern has neither Regex nor String", L->file,
                where);
    }
    QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED,
            "%s: %s type \"%s\" is not supported (qembed implements Split, ByteLevel, Sequence)", L->file,
            where, type);
}

qembed_status qe_tok_load_pre_tokenizer(loader *L, const cJSON *p) {
    int seen = 0;
    if (!p || cJSON_IsNull(p))
        QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED, "%s: pre_tokenizer is null; qembed needs a ByteLevel one",
                L->file);
    const char *type = jtype(p);
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        if (!cJSON_IsArray(list))
            QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: pre_tokenizer.pretokenizers is not an array",
                    L->file);
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, list) {
            char where[64];
            snprintf(where, sizeof where, "pre_tokenizer.pretokenizers[%d]", i++);
            QE_TRY(load_pre_one(L, e, where, &seen));
        }
    } else {
        QE_TRY(load_pre_one(L, p, "pre_tokenizer", &seen));
    }
    if (!seen)
        QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED,
                "%s: pre_tokenizer has no ByteLevel step; qembed implements "
                "byte-level BPE only",
                L->file);
    return QEMBED_OK;
}

static qembed_status push_ids(loader *L, int32_t **arr, size_t *n, const int32_t *ids, size_t k, int front) {
    if (k == 0) return QEMBED_OK;
    int32_t *a = realloc(*arr, (*n + k + 1) * sizeof *a);
    if (!a) QE_FAIL(L->err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", L->file);
    if (front) {
        memmove(a + k, a, *n * sizeof *a);
        memcpy(a, ids, k * sizeof *a);
    } else {
        memcpy(a + *n, ids, k * sizeof *a);
    }
    *arr = a;
    *n += k;
    return QEMBED_OK;
}

/* Appends (front = 0) or prepends the ids of a token given by name. */
static qembed_status special_by_name(loader *L, const cJSON *pair, const char *where, int front,
                                     int32_t **arr, size_t *n) {
    /* BertProcessing / RobertaProcessing: ["</s>", 2] */
    const cJSON *id = cJSON_GetArrayItem(pair, 1);
    int32_t v;
    if (!cJSON_IsArray(pair) || !jid(id, &v))
        QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s is not a [token, id] pair", L->file, where);
    return push_ids(L, arr, n, &v, 1, front);
}

static qembed_status load_template(loader *L, const cJSON *p, int32_t **pre, size_t *npre, int32_t **suf,
                                   size_t *nsuf, const char *where) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    if (!cJSON_IsArray(single))
        QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s.single is not an array", L->file, where);
    int seen_a = 0, i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, single) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(e, "Sequence");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(e, "SpecialToken");
        if (seq) {
            const cJSON *sid = cJSON_GetObjectItemCaseSensitive(seq, "id");
            if (!cJSON_IsString(sid) || strcmp(sid->valuestring, "A") != 0 || seen_a)
                QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED,
                        "%s: %s.single[%d]: only one Sequence \"A\" is supported in a single template",
                        L->file, where, i);
            seen_a = 1;
        } else if (sp) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp, "id");
            const cJSON *def =
                cJSON_IsString(name) ? cJSON_GetObjectItemCaseSensitive(specials, name->valuestring) : NULL;
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
            if (!cJSON_IsArray(ids))
                QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT,
                        "%s: %s.single[%d]: special token \"%s\" has no ids in special_tokens", L->file,
                        where, i, cJSON_IsString(name) ? name->valuestring : "?");
            const cJSON *x;
            cJSON_ArrayForEach(x, ids) {
                int32_t v;
                if (!jid(x, &v))
                    QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s.special_tokens: bad id", L->file, where);
                if (seen_a)
                    QE_TRY(push_ids(L, suf, nsuf, &v, 1, 0));
                else
                    QE_TRY(push_ids(L, pre, npre, &v, 1, 0));
            }
        } else {
            QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s.single[%d] is neither Sequence nor SpecialToken",
                    L->file, where, i);
        }
        i++;
    }
    if (!seen_a)
        QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s.single has no Sequence \"A\"", L->file, where);
    return QEMBED_OK;
}

/* Processors in a Sequence apply in order, each wrapping the previous
 * result: the later one's prefix goes in front. */
qembed_status qe_tok_load_post(loader *L, const cJSON *p, const char *where) {
    qembed_tokenizer *t = L->t;
    if (!p || cJSON_IsNull(p)) return QEMBED_OK;
    const char *type = jtype(p);
    if (!type) QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s has no \"type\"", L->file, where);
    if (strcmp(type, "ByteLevel") == 0) return QEMBED_OK; /* only trims offsets; ids unchanged */
    if (strcmp(type, "Sequence") == 0) return load_sequence(L, p, "processors", where, 0, qe_tok_load_post);
    if (strcmp(type, "TemplateProcessing") == 0) {
        int32_t *pre = NULL, *suf = NULL;
        size_t npre = 0, nsuf = 0;
        qembed_status st = load_template(L, p, &pre, &npre, &suf, &nsuf, where);
        if (st == QEMBED_OK) st = push_ids(L, &t->prefix, &t->n_prefix, pre, npre, 1);
        if (st == QEMBED_OK) st = push_ids(L, &t->suffix, &t->n_suffix, suf, nsuf, 0);
        free(pre);
        free(suf);
        return st;
    }
    if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0) {
        char sub[160];
        snprintf(sub, sizeof sub, "%s.cls", where);
        QE_TRY(
            special_by_name(L, cJSON_GetObjectItemCaseSensitive(p, "cls"), sub, 1, &t->prefix, &t->n_prefix));
        snprintf(sub, sizeof sub, "%s.sep", where);
        return special_by_name(L, cJSON_GetObjectItemCaseSensitive(p, "sep"), sub, 0, &t->suffix,
                               &t->n_suffix);
    }
    QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED,
            "%s: %s type \"%s\" is not supported (qembed implements ByteLevel, TemplateProcessing, "
            "BertProcessing, RobertaProcessing, Sequence)",
            L->file, where, type);
}

qembed_status qe_tok_load_decoder(loader *L, const cJSON *d, const char *where) {
    const char *type = d && !cJSON_IsNull(d) ? jtype(d) : NULL;
    if (type && strcmp(type, "ByteLevel") == 0) return QEMBED_OK;
    if (type && strcmp(type, "Sequence") == 0)
        return load_sequence(L, d, "decoders", where, 1, qe_tok_load_decoder);
    QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED,
            "%s: %s type \"%s\" is not supported (qembed decodes ByteLevel only)", L->file, where,
            type ? type : "null");
}

/* truncation applies inside the reference's encode, so it is honoured;
 * padding changes a single encoding only with a fixed length or a multiple,
 * which qembed refuses rather than ignore. */
qembed_status qe_tok_load_trunc_pad(loader *L, const cJSON *root) {
    qembed_tokenizer *t = L->t;
    t->trunc_max = -1;
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "truncation");
    if (tr && !cJSON_IsNull(tr)) {
        int32_t max;
        const cJSON *dir = cJSON_GetObjectItemCaseSensitive(tr, "direction");
        if (!jid(cJSON_GetObjectItemCaseSensitive(tr, "max_length"), &max))
            QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT,
                    "%s: truncation.max_length is not a non-negative integer", L->file);
        t->trunc_max = max;
        t->trunc_left = cJSON_IsString(dir) && strcmp(dir->valuestring, "Left") == 0;
    }
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(root, "padding");
    if (pad && !cJSON_IsNull(pad)) {
        const cJSON *strat = cJSON_GetObjectItemCaseSensitive(pad, "strategy");
        const cJSON *mult = cJSON_GetObjectItemCaseSensitive(pad, "pad_to_multiple_of");
        if (!(cJSON_IsString(strat) && strcmp(strat->valuestring, "BatchLongest") == 0) ||
            (mult && !cJSON_IsNull(mult)))
            QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED,
                    "%s: padding to a fixed length or a multiple is not supported "
                    "(an embedding input is never padded)",
                    L->file);
    }
    return QEMBED_OK;
}
