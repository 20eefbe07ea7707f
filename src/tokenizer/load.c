/* Loading a Hugging Face tokenizer.json (byte-level BPE) into the immutable
 * qembed_tokenizer: this file reads the file, builds the BPE model (the
 * vocabulary, merges and added tokens with their flags) and calls the other
 * parts in order. Everything that defines the ids comes from the file.
 * Parts of the format that qembed does not implement are refused with
 * QEMBED_ERR_UNSUPPORTED naming the field, never silently ignored.
 *
 * The loader's other files: json_scan.c (model.vocab and model.merges,
 * parsed without cJSON), hashtab.[ch] (the lookup tables), load_sections.c
 * (normalizer, pre-tokenizer, post-processor, decoder, truncation/padding),
 * config_check.c (tokenizer_config.json). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/file.h"
#include "common/utf8.h"
#include "tokenizer/hashtab.h"
#include "tokenizer/load_internal.h"
#include "tokenizer/nfc.h"
#include "tokenizer/tokenizer_internal.h"

/* ------------------------------------------------------------------------ */
/* Byte-level alphabet (GPT-2's bytes_to_unicode)                           */
/* ------------------------------------------------------------------------ */

/* Code point standing for byte b: printable Latin-1 bytes stand for
 * themselves, the others for 256, 257, ... in byte order. */
static void byte_level_map(uint32_t cp_of_byte[256], int16_t byte_of_cp[324]) {
    int n = 0;
    for (int i = 0; i < 324; i++) byte_of_cp[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        cp_of_byte[b] = printable ? (uint32_t)b : (uint32_t)(256 + n++);
        byte_of_cp[cp_of_byte[b]] = (int16_t)b;
    }
}

/* Loading is bound by cache misses on the ~4 MB tables (one per key), so
 * keys are inserted and looked up in blocks: hash a block, prefetch its
 * slots, then probe. */
#define QE_BLOCK 32

typedef struct added_src {
    const char *content;
    int32_t id;
    uint8_t special, lstrip, rstrip, single_word, normalized;
} added_src;

static qembed_status addset_push(loader *L, qe_addset *set, const uint8_t *content, size_t len,
                                 const added_src *a) {
    qe_added *nv = realloc(set->v, (set->n + 1) * sizeof *nv);
    if (!nv) QE_FAIL(L->err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", L->file);
    set->v = nv;
    qe_added *d = &set->v[set->n];
    d->content = malloc(len ? len : 1);
    if (!d->content) QE_FAIL(L->err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", L->file);
    memcpy(d->content, content, len);
    d->len = len;
    d->id = a->id;
    d->special = a->special;
    d->lstrip = a->lstrip;
    d->rstrip = a->rstrip;
    d->single_word = a->single_word;
    set->n++;
    return QEMBED_OK;
}

static void addset_finish(qe_addset *set) {
    memset(set->first, 0, sizeof set->first);
    set->only_first = -1;
    int distinct = 0;
    for (size_t i = 0; i < set->n; i++) {
        uint8_t b = set->v[i].content[0];
        if (!set->first[b]) distinct++;
        set->first[b] = 1;
        set->only_first = b;
    }
    if (distinct != 1) set->only_first = -1;
}

qembed_status qe_tok_build(loader *L, const cJSON *root) {
    qembed_tokenizer *t = L->t;
    const char *file = L->file;
    qembed_error *err = L->err;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: no \"model\" object", file);
    const char *mtype = jtype(model);
    if (mtype && strcmp(mtype, "BPE") != 0)
        QE_FAIL(err, QEMBED_ERR_UNSUPPORTED, "%s: model.type \"%s\" is not supported (qembed implements BPE)",
                file, mtype);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble != 0.0)
        QE_FAIL(err, QEMBED_ERR_UNSUPPORTED, "%s: model.dropout %g is not supported", file,
                dropout->valuedouble);
    const char *strfields[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, strfields[i]);
        if (cJSON_IsString(v) && v->valuestring[0])
            QE_FAIL(err, QEMBED_ERR_UNSUPPORTED, "%s: model.%s \"%s\" is not supported", file, strfields[i],
                    v->valuestring);
    }
    if (jbool(model, "byte_fallback", 0))
        QE_FAIL(err, QEMBED_ERR_UNSUPPORTED, "%s: model.byte_fallback true is not supported", file);
    t->fuse_unk = jbool(model, "fuse_unk", 0);
    t->ignore_merges = jbool(model, "ignore_merges", 0);

    big_parts *big = L->big;
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!big->vocab) QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: model.vocab is not an object", file);
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: added_tokens is not an array", file);
    size_t bad = big->vocab_err;
    if (bad == (size_t)-1) QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
    if (bad)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: model.vocab: not a {\"token\": id} object with integer ids in "
                "[0, %u) (near byte %zu of the file)",
                file, QE_MAX_IDS, (size_t)(big->vocab - L->buf) + bad - 1);

    /* Pass 1: sizes, ids, string pool size. */
    size_t n_vocab = big->n, pool = 0;
    int32_t max_id = -1;
    const cJSON *e;
    for (size_t i = 0; i < n_vocab; i++) {
        if (big->v[i].id > max_id) max_id = big->v[i].id;
        pool += big->v[i].len;
    }
    size_t n_added = 0;
    added_src *as = NULL;
    if (cJSON_IsArray(added)) {
        n_added = (size_t)cJSON_GetArraySize(added);
        as = calloc(n_added ? n_added : 1, sizeof *as);
        if (!as) QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
        size_t i = 0;
        cJSON_ArrayForEach(e, added) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
            if (!cJSON_IsString(c) || !c->valuestring[0] ||
                !jid(cJSON_GetObjectItemCaseSensitive(e, "id"), &as[i].id)) {
                free(as);
                QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                        "%s: added_tokens[%zu]: needs a non-empty \"content\" and an "
                        "integer \"id\"",
                        file, i);
            }
            as[i].content = c->valuestring;
            as[i].special = (uint8_t)jbool(e, "special", 0);
            as[i].lstrip = (uint8_t)jbool(e, "lstrip", 0);
            as[i].rstrip = (uint8_t)jbool(e, "rstrip", 0);
            as[i].single_word = (uint8_t)jbool(e, "single_word", 0);
            as[i].normalized = (uint8_t)jbool(e, "normalized", !as[i].special);
            if (as[i].id > max_id) max_id = as[i].id;
            pool += strlen(c->valuestring);
            i++;
        }
    }
    if (max_id < 0) {
        free(as);
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: empty vocabulary", file);
    }
    if (pool >= UINT32_MAX / 4) {
        free(as);
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: vocabulary strings too large", file);
    }
    t->n_ids = (size_t)max_id + 1;
    size_t N = t->n_ids;
    t->str_pool = malloc(pool + 1);
    t->str_off = calloc(N, sizeof *t->str_off);
    t->str_len = calloc(N, sizeof *t->str_len);
    t->raw_pool =
        malloc(pool * 2 + 1); /* a byte-level char is >= 1 byte and yields 1 byte; raw UTF-8 <= 1x */
    t->raw_off = calloc(N, sizeof *t->raw_off);
    t->raw_len = calloc(N, sizeof *t->raw_len);
    t->flags = calloc(N, 1);
    t->memo = calloc(N, sizeof *t->memo);
    t->str_mask = qe_strtab_size(n_vocab + n_added) - 1;
    t->raw_mask = qe_strtab_size(n_vocab) - 1;
    t->str_hash = calloc(t->str_mask + 1, sizeof *t->str_hash);
    t->raw_hash = calloc(t->raw_mask + 1, sizeof *t->raw_hash);
    if (!t->str_pool || !t->str_off || !t->str_len || !t->raw_pool || !t->raw_off || !t->raw_len ||
        !t->flags || !t->memo || !t->str_hash || !t->raw_hash) {
        free(as);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu ids", file, N);
    }

    uint32_t cp_of_byte[256];
    int16_t byte_of_cp[324];
    byte_level_map(cp_of_byte, byte_of_cp);

    /* Stores a token string and its decoded bytes for id. */
    size_t spos = 0, rpos = 0;
#define STORE_TOKEN(idv, sv, lenv)                                               \
    do {                                                                         \
        const uint8_t *s_ = (const uint8_t *)(sv);                               \
        size_t l_ = (lenv);                                                      \
        t->str_off[idv] = (uint32_t)spos;                                        \
        t->str_len[idv] = (uint32_t)l_;                                          \
        memcpy(t->str_pool + spos, s_, l_);                                      \
        spos += l_;                                                              \
        /* ByteLevel decoder: every char maps to its byte, else the raw UTF-8 */ \
        size_t r0_ = rpos, i_ = 0;                                               \
        int pure_ = 1;                                                           \
        while (i_ < l_) {                                                        \
            uint32_t cp_;                                                        \
            i_ += (size_t)qe_utf8_dec(s_, i_, &cp_);                             \
            if (cp_ >= 324 || byte_of_cp[cp_] < 0) {                             \
                pure_ = 0;                                                       \
                break;                                                           \
            }                                                                    \
            t->raw_pool[rpos++] = (uint8_t)byte_of_cp[cp_];                      \
        }                                                                        \
        if (!pure_) {                                                            \
            rpos = r0_;                                                          \
            memcpy(t->raw_pool + rpos, s_, l_);                                  \
            rpos += l_;                                                          \
        }                                                                        \
        t->raw_off[idv] = (uint32_t)r0_;                                         \
        t->raw_len[idv] = (uint32_t)(rpos - r0_);                                \
        pure_out = pure_;                                                        \
    } while (0)

    for (size_t vi = 0; vi < n_vocab; vi++) {
        int32_t id = big->v[vi].id;
        const char *str = big->v[vi].s;
        size_t l = big->v[vi].len;
        int pure_out = 0;
        if (t->flags[id] & QE_TOK_PRESENT) {
            free(as);
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: model.vocab: id %d is used twice (\"%.*s\")", file, id,
                    (int)(t->str_len[id] < 60 ? t->str_len[id] : 60), t->str_pool + t->str_off[id]);
        }
        if (qe_utf8_first_invalid((const uint8_t *)str, l) != l) {
            free(as);
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: model.vocab: token with id %d is not valid UTF-8",
                    file, id);
        }
        STORE_TOKEN(id, str, l);
        t->flags[id] = QE_TOK_PRESENT;
        if (pure_out) t->flags[id] |= QE_TOK_PURE;
    }
    for (size_t b0 = 0; b0 < n_vocab; b0 += QE_BLOCK) {
        size_t nb = n_vocab - b0 < QE_BLOCK ? n_vocab - b0 : QE_BLOCK;
        uint64_t hs[QE_BLOCK], hr[QE_BLOCK];
        for (size_t j = 0; j < nb; j++) {
            int32_t id = big->v[b0 + j].id;
            hs[j] = qe_tok_hash((const uint8_t *)t->str_pool + t->str_off[id], t->str_len[id]);
            __builtin_prefetch(&t->str_hash[hs[j] & t->str_mask], 1);
            if (t->flags[id] & QE_TOK_PURE) {
                hr[j] = qe_tok_hash(t->raw_pool + t->raw_off[id], t->raw_len[id]);
                __builtin_prefetch(&t->raw_hash[hr[j] & t->raw_mask], 1);
            }
        }
        for (size_t j = 0; j < nb; j++) {
            int32_t id = big->v[b0 + j].id;
            qe_strtab_put_h(t->str_hash, t->str_mask, (const uint8_t *)t->str_pool, t->str_off[id],
                            t->str_len[id], id, hs[j]);
            if (t->flags[id] & QE_TOK_PURE)
                qe_strtab_put_h(t->raw_hash, t->raw_mask, t->raw_pool, t->raw_off[id], t->raw_len[id], id,
                                hr[j]);
        }
    }

    for (int b = 0; b < 256; b++) {
        uint8_t u[4];
        int l = qe_utf8_enc(cp_of_byte[b], u);
        t->byte_id[b] = qe_tok_str_lookup(t, u, (size_t)l);
    }
    t->unk_id = -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(unk)) {
        t->unk_id = qe_tok_str_lookup(t, (const uint8_t *)unk->valuestring, strlen(unk->valuestring));
        if (t->unk_id < 0) {
            free(as);
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: model.unk_token \"%.60s\" is not in the vocabulary",
                    file, unk->valuestring);
        }
    }

    /* Merges: ["a", "b"] pairs or legacy "a b" strings; rank = position.
     * qe_js_locate parsed them into a list; inserted here in blocks. */
    if (big->merges_err == (size_t)-1) {
        free(as);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
    }
    if (big->merges_err) {
        free(as);
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: model.merges[%zu] is neither [\"a\", \"b\"] nor \"a b\" "
                "(near byte %zu of the file)",
                file, big->n_merges, big->merges_err - 1);
    }
    size_t n_merges = big->n_merges;
    const mpair *mp = big->mp;
    t->merge_mask = qe_table_size(n_merges) - 1;
    t->merges = malloc((t->merge_mask + 1) * sizeof *t->merges);
    if (!t->merges) {
        free(as);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu merges", file, n_merges);
    }
    memset(t->merges, 0xFF, (t->merge_mask + 1) * sizeof *t->merges);
    for (size_t b0 = 0; b0 < n_merges; b0 += QE_BLOCK) {
        size_t nb = n_merges - b0 < QE_BLOCK ? n_merges - b0 : QE_BLOCK;
        uint64_t ha[QE_BLOCK], hb[QE_BLOCK], hn[QE_BLOCK], key[QE_BLOCK];
        int32_t ia[QE_BLOCK], ib[QE_BLOCK], inew[QE_BLOCK];
        char cat[QE_BLOCK][64];
        const mpair *m = mp + b0;
        for (size_t j = 0; j < nb; j++) {
            ha[j] = qe_tok_hash((const uint8_t *)m[j].a, m[j].la);
            hb[j] = qe_tok_hash((const uint8_t *)m[j].b, m[j].lb);
            __builtin_prefetch(&t->str_hash[ha[j] & t->str_mask]);
            __builtin_prefetch(&t->str_hash[hb[j] & t->str_mask]);
        }
        for (size_t j = 0; j < nb; j++) {
            ia[j] = qe_strtab_get_h(t->str_hash, t->str_mask, (const uint8_t *)t->str_pool,
                                    (const uint8_t *)m[j].a, m[j].la, ha[j]);
            ib[j] = qe_strtab_get_h(t->str_hash, t->str_mask, (const uint8_t *)t->str_pool,
                                    (const uint8_t *)m[j].b, m[j].lb, hb[j]);
            if (m[j].la + m[j].lb <= sizeof cat[0]) {
                memcpy(cat[j], m[j].a, m[j].la);
                memcpy(cat[j] + m[j].la, m[j].b, m[j].lb);
                hn[j] = qe_tok_hash((const uint8_t *)cat[j], m[j].la + m[j].lb);
                __builtin_prefetch(&t->str_hash[hn[j] & t->str_mask]);
            }
        }
        for (size_t j = 0; j < nb; j++) {
            size_t ln = (size_t)m[j].la + m[j].lb;
            if (ln <= sizeof cat[0]) {
                inew[j] = qe_strtab_get_h(t->str_hash, t->str_mask, (const uint8_t *)t->str_pool,
                                          (const uint8_t *)cat[j], ln, hn[j]);
            } else { /* a long merged token: rare, done directly */
                char *c = malloc(ln);
                inew[j] = -1;
                if (c) {
                    memcpy(c, m[j].a, m[j].la);
                    memcpy(c + m[j].la, m[j].b, m[j].lb);
                    inew[j] = qe_tok_str_lookup(t, (const uint8_t *)c, ln);
                    free(c);
                }
            }
            key[j] = ((uint64_t)(uint32_t)ia[j] << 32) | (uint32_t)ib[j];
            __builtin_prefetch(&t->merges[qe_merge_slot(key[j], t->merge_mask)], 1);
        }
        for (size_t j = 0; j < nb; j++) {
            if (ia[j] < 0 || ib[j] < 0 || inew[j] < 0) {
                qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                         "%s: model.merges[%zu]: \"%.*s\" + \"%.*s\": %s is not in the vocabulary", file,
                         b0 + j, (int)(m[j].la < 40 ? m[j].la : 40), m[j].a,
                         (int)(m[j].lb < 40 ? m[j].lb : 40), m[j].b,
                         ia[j] < 0   ? "the left part"
                         : ib[j] < 0 ? "the right part"
                                     : "the merged token");
                free(as);
                return QEMBED_ERR_MODEL_FORMAT;
            }
            qe_merge_put(t, key[j], ((uint64_t)(b0 + j) << 32) | (uint32_t)inew[j]);
        }
    }

    /* Normalizer before added tokens: normalized tokens match in normalized form. */
    qembed_status st =
        qe_tok_load_normalizer(L, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "normalizer");
    if (st != QEMBED_OK) {
        free(as);
        return st;
    }

    /* Added tokens: special ones first, then the others, each in file order
     * (the reference's matching order; with leftmost-longest matching the
     * order only breaks exact ties, which cannot happen between distinct
     * contents). */
    for (int pass = 0; pass < 2 && st == QEMBED_OK; pass++) {
        for (size_t i = 0; i < n_added && st == QEMBED_OK; i++) {
            added_src *a = &as[i];
            if ((pass == 0) != (a->special != 0)) continue;
            size_t l = strlen(a->content);
            int32_t vid = qe_tok_str_lookup(t, (const uint8_t *)a->content, l);
            if (qe_utf8_first_invalid((const uint8_t *)a->content, l) != l) {
                st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, "%s: added token id %d is not valid UTF-8", file,
                              a->id);
                break;
            }
            if (vid >= 0 && vid != a->id && !(t->flags[vid] & QE_TOK_ADDED)) {
                st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                              "%s: added token \"%.60s\" has id %d but the vocabulary gives it id %d", file,
                              a->content, a->id, vid);
                break;
            }
            if ((t->flags[a->id] & QE_TOK_PRESENT) &&
                !(t->str_len[a->id] == l && memcmp(t->str_pool + t->str_off[a->id], a->content, l) == 0)) {
                st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                              "%s: added token \"%.60s\" reuses id %d of another token", file, a->content,
                              a->id);
                break;
            }
            /* A normalized token is matched, and decoded (as the reference
             * does), in its normalized form. NFC never grows text more than
             * 3x, which the pool was not sized for: such a token keeps its
             * written form for decoding when it would not fit. */
            uint8_t *nb = NULL;
            size_t nl = 0;
            if (a->normalized && t->nfc && qe_nfc((const uint8_t *)a->content, l, &nb, &nl) != 0) {
                st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
                break;
            }
            if (!(t->flags[a->id] & QE_TOK_PRESENT)) {
                int pure_out = 0;
                if (nb && nl <= l)
                    STORE_TOKEN(a->id, nb, nl);
                else
                    STORE_TOKEN(a->id, a->content, l);
                (void)pure_out;
            }
            t->flags[a->id] |= QE_TOK_PRESENT | QE_TOK_ADDED | (a->special ? QE_TOK_SPECIAL : 0);
            qe_strtab_put(t->str_hash, t->str_mask, (const uint8_t *)t->str_pool, t->str_off[a->id],
                          t->str_len[a->id], a->id);
            if (nb) {
                st = nl ? addset_push(L, &t->norm, nb, nl, a) : QEMBED_OK;
                free(nb);
            } else if (a->normalized) {
                st = addset_push(L, &t->norm, (const uint8_t *)a->content, l, a);
            } else {
                st = addset_push(L, &t->plain, (const uint8_t *)a->content, l, a);
            }
        }
    }
#undef STORE_TOKEN
    free(as);
    if (st != QEMBED_OK) return st;
    addset_finish(&t->plain);
    addset_finish(&t->norm);

    QE_TRY(qe_tok_load_pre_tokenizer(L, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer")));
    QE_TRY(qe_tok_load_post(L, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), "post_processor"));
    QE_TRY(qe_tok_load_decoder(L, cJSON_GetObjectItemCaseSensitive(root, "decoder"), "decoder"));
    QE_TRY(qe_tok_load_trunc_pad(L, root));
    for (size_t i = 0; i < t->n_prefix; i++)
        QE_FAIL_IF((size_t)t->prefix[i] >= N || !(t->flags[t->prefix[i]] & QE_TOK_PRESENT), err,
                   QEMBED_ERR_MODEL_FORMAT, "%s: post_processor adds id %d, which has no token", file,
                   t->prefix[i]);
    for (size_t i = 0; i < t->n_suffix; i++)
        QE_FAIL_IF((size_t)t->suffix[i] >= N || !(t->flags[t->suffix[i]] & QE_TOK_PRESENT), err,
                   QEMBED_ERR_MODEL_FORMAT, "%s: post_processor adds id %d, which has no token", file,
                   t->suffix[i]);
    return QEMBED_OK;
}

void qembed_tokenizer_free(qembed_tokenizer *t) {
    if (!t) return;
    free(t->str_pool);
    free(t->str_off);
    free(t->str_len);
    free(t->raw_pool);
    free(t->raw_off);
    free(t->raw_len);
    free(t->flags);
    free(t->memo);
    free(t->str_hash);
    free(t->raw_hash);
    free(t->merges);
    qe_addset *sets[2] = {&t->plain, &t->norm};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < sets[k]->n; i++) free(sets[k]->v[i].content);
        free(sets[k]->v);
    }
    for (size_t i = 0; i < t->n_splits; i++) {
        pcre2_code_free(t->splits[i].re);
        free(t->splits[i].lit);
    }
    free(t->splits);
    free(t->prefix);
    free(t->suffix);
    free(t);
}

qembed_status qembed_tokenizer_load(const char *path, qembed_tokenizer **out, qembed_error *err) {
    if (!path || !out)
        QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "qembed_tokenizer_load: path and out are required");
    *out = NULL;
    size_t pl = strlen(path);
    if (pl > 5 && !strcmp(path + pl - 5, ".gguf")) return qe_tok_load_gguf(path, out, err);
    char file[4096], config[4096];
    struct stat st;
    if (stat(path, &st) != 0) QE_FAIL(err, QEMBED_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        snprintf(file, sizeof file, "%s/tokenizer.json", path);
        snprintf(config, sizeof config, "%s/tokenizer_config.json", path);
    } else {
        snprintf(file, sizeof file, "%s", path);
        const char *slash = strrchr(path, '/');
        int dir_len = slash ? (int)(slash - path) : 1;
        snprintf(config, sizeof config, "%.*s/tokenizer_config.json", dir_len, slash ? path : ".");
    }
    char *buf;
    size_t len;
    QE_TRY(qe_read_file(file, SIZE_MAX, &buf, &len, err));
    big_parts big;
    memset(&big, 0, sizeof big);
    cJSON *root = NULL;
    const char *ep = NULL;
    if (qe_js_locate(buf, len, &big) == 0) {
        /* The rest of the file, with the two big members emptied. */
        const char *sp[2] = {big.vocab, big.merges};
        size_t sl[2] = {big.vocab_len, big.merges_len};
        if (sp[0] && sp[1] && sp[1] < sp[0]) {
            const char *x = sp[0];
            sp[0] = sp[1];
            sp[1] = x;
            size_t y = sl[0];
            sl[0] = sl[1];
            sl[1] = y;
        }
        char *rest = malloc(len + 1);
        if (rest) {
            size_t rn = 0, from = 0;
            for (int k = 0; k < 2; k++) {
                if (!sp[k]) continue;
                size_t at = (size_t)(sp[k] - buf);
                memcpy(rest + rn, buf + from, at - from);
                rn += at - from;
                rest[rn++] = sp[k][0];
                rest[rn++] = sp[k][0] == '{' ? '}' : ']';
                from = at + sl[k];
            }
            memcpy(rest + rn, buf + from, len - from);
            rn += len - from;
            root = cJSON_ParseWithLengthOpts(rest, rn, &ep, 0);
            free(rest);
            if (!root) ep = NULL; /* its offsets are not the file's: report cJSON's on the whole file */
        }
    }
    if (!root) {
        cJSON *whole = cJSON_ParseWithLengthOpts(buf, len, &ep, 0);
        size_t off = ep && ep >= buf ? (size_t)(ep - buf) : 0;
        free(buf);
        qe_big_free(&big);
        if (whole) { /* valid JSON that the scanner did not follow: cannot happen for an object */
            cJSON_Delete(whole);
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: top level is not a JSON object", file);
        }
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: not valid JSON (near byte %zu)", file, off);
    }
    qembed_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        cJSON_Delete(root);
        free(buf);
        qe_big_free(&big);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
    }
    loader L = {t, file, err, &big, buf};
    qembed_status s = qe_tok_build(&L, root);
    cJSON_Delete(root);
    qe_big_free(&big);
    free(buf);
    if (s == QEMBED_OK) s = qe_tok_check_config(t, config, err);
    if (s != QEMBED_OK) {
        qembed_tokenizer_free(t);
        return s;
    }
    *out = t;
    return QEMBED_OK;
}
