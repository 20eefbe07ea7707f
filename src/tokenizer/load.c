/* Loading a Hugging Face tokenizer.json (byte-level BPE) into the immutable
 * qembed_tokenizer. Everything that defines the ids comes from the file:
 * vocabulary, merges, added tokens and their flags, normalizer,
 * pre-tokenizer, post-processor template, decoder. Parts of the format that
 * qembed does not implement are refused with QEMBED_ERR_UNSUPPORTED naming
 * the field, never silently ignored. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/file.h"
#include "tokenizer/nfc.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/utf8.h"

/* Ids beyond this are refused: they would only come from a malformed file
 * and would make us allocate per-id arrays of absurd size. */
#define QE_MAX_IDS (1u << 24)

uint64_t qe_tok_hash(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    if (n) memcpy(&v, p, n);
    h = (h ^ v) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return h;
}

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

/* ------------------------------------------------------------------------ */
/* Hash tables                                                              */
/* ------------------------------------------------------------------------ */

static size_t table_size(size_t n) {
    size_t s = 1024;
    while (s < n * 2) s <<= 1;
    return s;
}

static size_t strtab_size(size_t n) {
    size_t s = 1024;
    while (s < n + n / 2) s <<= 1;
    return s;
}

/* Inserts id under the key pool[off..off+len) (replacing an entry with equal
 * bytes); h is qe_tok_hash of the key. */
static void strtab_put_h(qe_hent *tab, size_t mask, const uint8_t *pool, uint32_t off, uint32_t len, int32_t id,
                         uint64_t h) {
    const uint8_t *s = pool + off;
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        qe_hent *e = &tab[i];
        if (e->id1 == 0 || (e->tag == tag && e->len == len && memcmp(pool + e->off, s, len) == 0)) {
            e->tag = tag;
            e->id1 = id + 1;
            e->off = off;
            e->len = len;
            return;
        }
    }
}

static void strtab_put(qe_hent *tab, size_t mask, const uint8_t *pool, uint32_t off, uint32_t len, int32_t id) {
    strtab_put_h(tab, mask, pool, off, len, id, qe_tok_hash(pool + off, len));
}

static int32_t strtab_get_h(const qe_hent *tab, size_t mask, const uint8_t *pool, const uint8_t *s, size_t n,
                            uint64_t h) {
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const qe_hent *e = &tab[i];
        if (e->id1 == 0) return -1;
        if (e->tag == tag && e->len == n && memcmp(pool + e->off, s, n) == 0) return e->id1 - 1;
    }
}

int32_t qe_strtab_get(const qe_hent *tab, size_t mask, const uint8_t *pool, const uint8_t *s, size_t n) {
    return strtab_get_h(tab, mask, pool, s, n, qe_tok_hash(s, n));
}

/* Loading is bound by cache misses on the ~4 MB tables (one per key), so
 * keys are inserted and looked up in blocks: hash a block, prefetch its
 * slots, then probe. */
#define QE_BLOCK 32

int32_t qe_tok_str_lookup(const qembed_tokenizer *t, const uint8_t *s, size_t n) {
    return qe_strtab_get(t->str_hash, t->str_mask, (const uint8_t *)t->str_pool, s, n);
}

static inline size_t merge_slot(uint64_t key, size_t mask) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
}

/* Later duplicates win, as in the reference's HashMap collect. */
static void merge_put(qembed_tokenizer *t, uint64_t key, uint64_t val) {
    for (size_t i = merge_slot(key, t->merge_mask);; i = (i + 1) & t->merge_mask) {
        if (t->merges[i].key == UINT64_MAX || t->merges[i].key == key) {
            t->merges[i].key = key;
            t->merges[i].val = val;
            return;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* JSON helpers                                                             */
/* ------------------------------------------------------------------------ */

struct big_parts;
typedef struct loader {
    qembed_tokenizer *t;
    const char *file; /* for messages */
    qembed_error *err;
    struct big_parts *big; /* model.vocab and model.merges, parsed apart */
    const char *buf;       /* the file's text */
} loader;

static int jbool(const cJSON *obj, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

static const char *jtype(const cJSON *obj) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A JSON number that is an integer id in [0, QE_MAX_IDS). */
static int jid(const cJSON *v, int32_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d < QE_MAX_IDS) || d != (double)(int64_t)d) return 0;
    *out = (int32_t)d;
    return 1;
}

static int utf8_valid(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int l = qe_utf8_check((const uint8_t *)s, n, i);
        if (l < 0) return 0;
        i += (size_t)l;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Sections                                                                 */
/* ------------------------------------------------------------------------ */

static qembed_status load_normalizer(loader *L, const cJSON *n, const char *where) {
    if (!n || cJSON_IsNull(n)) return QEMBED_OK;
    const char *type = jtype(n);
    if (!type) QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s has no \"type\"", L->file, where);
    if (strcmp(type, "NFC") == 0) {
        L->t->nfc = 1;
        return QEMBED_OK;
    }
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(list))
            QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s.normalizers is not an array", L->file, where);
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, list) {
            char sub[128];
            snprintf(sub, sizeof sub, "%s.normalizers[%d]", where, i++);
            QE_TRY(load_normalizer(L, e, sub));
        }
        return QEMBED_OK;
    }
    QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED,
            "%s: %s type \"%s\" is not supported (qembed implements NFC and Sequence)", L->file, where,
            type);
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
        if (jbool(p, "use_regex", 1)) QE_TRY(add_split(L, QE_SPLIT_PCRE2, gpt2_pattern, strlen(gpt2_pattern), where));
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
        if (cJSON_IsString(re)) return add_split(L, QE_SPLIT_PCRE2, re->valuestring, strlen(re->valuestring), where);
        if (cJSON_IsString(str))
            return add_split(L, QE_SPLIT_STRING, str->valuestring, strlen(str->valuestring), where);
        QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s.pattern has neither Regex nor String", L->file, where);
    }
    QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED,
            "%s: %s type \"%s\" is not supported (qembed implements Split, ByteLevel, Sequence)", L->file,
            where, type);
}

static qembed_status load_pre_tokenizer(loader *L, const cJSON *p) {
    int seen = 0;
    if (!p || cJSON_IsNull(p))
        QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED, "%s: pre_tokenizer is null; qembed needs a ByteLevel one",
                L->file);
    const char *type = jtype(p);
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        if (!cJSON_IsArray(list))
            QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: pre_tokenizer.pretokenizers is not an array", L->file);
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
        QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED, "%s: pre_tokenizer has no ByteLevel step; qembed implements "
                "byte-level BPE only", L->file);
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
                        "%s: %s.single[%d]: only one Sequence \"A\" is supported in a single template", L->file,
                        where, i);
            seen_a = 1;
        } else if (sp) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp, "id");
            const cJSON *def = cJSON_IsString(name) ? cJSON_GetObjectItemCaseSensitive(specials, name->valuestring)
                                                    : NULL;
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
            if (!cJSON_IsArray(ids))
                QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT,
                        "%s: %s.single[%d]: special token \"%s\" has no ids in special_tokens", L->file, where,
                        i, cJSON_IsString(name) ? name->valuestring : "?");
            const cJSON *x;
            cJSON_ArrayForEach(x, ids) {
                int32_t v;
                if (!jid(x, &v))
                    QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s.special_tokens: bad id", L->file, where);
                if (seen_a) QE_TRY(push_ids(L, suf, nsuf, &v, 1, 0));
                else QE_TRY(push_ids(L, pre, npre, &v, 1, 0));
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
static qembed_status load_post(loader *L, const cJSON *p, const char *where) {
    qembed_tokenizer *t = L->t;
    if (!p || cJSON_IsNull(p)) return QEMBED_OK;
    const char *type = jtype(p);
    if (!type) QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s has no \"type\"", L->file, where);
    if (strcmp(type, "ByteLevel") == 0) return QEMBED_OK; /* only trims offsets; ids unchanged */
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "processors");
        if (!cJSON_IsArray(list))
            QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s.processors is not an array", L->file, where);
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, list) {
            char sub[128];
            snprintf(sub, sizeof sub, "%s.processors[%d]", where, i++);
            QE_TRY(load_post(L, e, sub));
        }
        return QEMBED_OK;
    }
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
        QE_TRY(special_by_name(L, cJSON_GetObjectItemCaseSensitive(p, "cls"), sub, 1, &t->prefix, &t->n_prefix));
        snprintf(sub, sizeof sub, "%s.sep", where);
        return special_by_name(L, cJSON_GetObjectItemCaseSensitive(p, "sep"), sub, 0, &t->suffix, &t->n_suffix);
    }
    QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED,
            "%s: %s type \"%s\" is not supported (qembed implements ByteLevel, TemplateProcessing, "
            "BertProcessing, RobertaProcessing, Sequence)",
            L->file, where, type);
}

static qembed_status load_decoder(loader *L, const cJSON *d, const char *where) {
    const char *type = d && !cJSON_IsNull(d) ? jtype(d) : NULL;
    if (type && strcmp(type, "ByteLevel") == 0) return QEMBED_OK;
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(d, "decoders");
        int i = 0;
        const cJSON *e;
        if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
            QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: %s.decoders is not a non-empty array", L->file, where);
        cJSON_ArrayForEach(e, list) {
            char sub[128];
            snprintf(sub, sizeof sub, "%s.decoders[%d]", where, i++);
            QE_TRY(load_decoder(L, e, sub));
        }
        return QEMBED_OK;
    }
    QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED, "%s: %s type \"%s\" is not supported (qembed decodes ByteLevel only)",
            L->file, where, type ? type : "null");
}

/* truncation applies inside the reference's encode, so it is honoured;
 * padding changes a single encoding only with a fixed length or a multiple,
 * which qembed refuses rather than ignore. */
static qembed_status load_trunc_pad(loader *L, const cJSON *root) {
    qembed_tokenizer *t = L->t;
    t->trunc_max = -1;
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "truncation");
    if (tr && !cJSON_IsNull(tr)) {
        int32_t max;
        const cJSON *dir = cJSON_GetObjectItemCaseSensitive(tr, "direction");
        if (!jid(cJSON_GetObjectItemCaseSensitive(tr, "max_length"), &max))
            QE_FAIL(L->err, QEMBED_ERR_MODEL_FORMAT, "%s: truncation.max_length is not a non-negative integer", L->file);
        t->trunc_max = max;
        t->trunc_left = cJSON_IsString(dir) && strcmp(dir->valuestring, "Left") == 0;
    }
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(root, "padding");
    if (pad && !cJSON_IsNull(pad)) {
        const cJSON *strat = cJSON_GetObjectItemCaseSensitive(pad, "strategy");
        const cJSON *mult = cJSON_GetObjectItemCaseSensitive(pad, "pad_to_multiple_of");
        if (!(cJSON_IsString(strat) && strcmp(strat->valuestring, "BatchLongest") == 0) ||
            (mult && !cJSON_IsNull(mult)))
            QE_FAIL(L->err, QEMBED_ERR_UNSUPPORTED, "%s: padding to a fixed length or a multiple is not supported "
                    "(an embedding input is never padded)", L->file);
    }
    return QEMBED_OK;
}

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


/* ------------------------------------------------------------------------ */
/* Whole file                                                               */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* The two big members, parsed without cJSON                                */
/* ------------------------------------------------------------------------ */

/* Why by hand: model.vocab (~150k entries) and model.merges (~150k pairs)
 * are nearly all of tokenizer.json. cJSON would build ~600k nodes for them
 * (about 120 ms and 50 MB of small allocations, over the 150 ms load budget
 * on its own). A scanner finds their byte ranges, the two parsers below read
 * them in place (strings without escapes are not even copied), and cJSON
 * parses the rest of the file with them replaced by {} and []. */
typedef struct jscan {
    const char *p, *end;
} jscan;

typedef struct vocab_entry {
    const char *s;
    uint32_t len;
    int32_t id;
} vocab_entry;

typedef struct mpair {
    const char *a, *b;
    uint32_t la, lb;
} mpair;

/* Filled by js_locate, which parses the two members where it finds them. */
typedef struct big_parts {
    const char *vocab, *merges; /* spans in the file buffer, NULL when absent */
    size_t vocab_len, merges_len;
    vocab_entry *v; /* model.vocab */
    size_t n, cap;
    char *arena; /* its unescaped strings */
    size_t vocab_err; /* 0; or 1 + offset in the span where it is not {"token": id}; (size_t)-1: no memory */
    mpair *mp; /* model.merges */
    size_t n_merges, mcap;
    char *marena;
    size_t merges_err; /* 0; or 1 + offset in the file where an entry is malformed; (size_t)-1: no memory */
} big_parts;

static void big_free(big_parts *b) {
    free(b->v);
    free(b->arena);
    free(b->mp);
    free(b->marena);
    b->v = NULL;
    b->arena = NULL;
    b->mp = NULL;
    b->marena = NULL;
    b->n = b->cap = b->n_merges = b->mcap = 0;
}

static size_t js_parse_vocab(big_parts *b, const char *start, const char *end, const char **endp);
static size_t js_parse_merges(big_parts *b, const char *start, const char *end, const char **endp);

static void js_ws(jscan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

static int js_skip_string(jscan *s) {
    s->p++;
    while (s->p < s->end) {
        char c = *s->p++;
        if (c == '\\') {
            if (s->p >= s->end) return -1;
            s->p++;
        } else if (c == '"') {
            return 0;
        }
    }
    return -1;
}

/* Skips one value (brackets are balanced; cJSON or the parsers below check
 * the rest). */
static int js_skip(jscan *s) {
    js_ws(s);
    if (s->p >= s->end) return -1;
    char c = *s->p;
    if (c == '"') return js_skip_string(s);
    if (c == '{' || c == '[') {
        int depth = 0;
        while (s->p < s->end) {
            c = *s->p;
            if (c == '"') {
                if (js_skip_string(s)) return -1;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            else if ((c == '}' || c == ']') && --depth == 0) {
                s->p++;
                return 0;
            }
            s->p++;
        }
        return -1;
    }
    const char *st = s->p;
    while (s->p < s->end && !strchr(",}] \n\r\t", *s->p)) s->p++;
    return s->p > st ? 0 : -1;
}

static int js_hex4(const char *p, const char *end, uint32_t *v) {
    if (end - p < 4) return -1;
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *v = x;
    return 0;
}

/* The JSON string at s->p: in place when it has no escapes, else unescaped
 * into *arena (never longer than its JSON form). */
static int js_string(jscan *s, char **arena, const char **out, size_t *len) {
    js_ws(s);
    if (s->p >= s->end || *s->p != '"') return -1;
    const char *start = ++s->p, *q = start;
    while (q < s->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
    if (q < s->end && *q == '"') {
        *out = start;
        *len = (size_t)(q - start);
        s->p = q + 1;
        return 0;
    }
    char *o = *arena, *w = o + (q - start);
    memcpy(o, start, (size_t)(q - start));
    while (q < s->end) {
        unsigned char c = (unsigned char)*q;
        if (c == '"') {
            *out = o;
            *len = (size_t)(w - o);
            *arena = w;
            s->p = q + 1;
            return 0;
        }
        if (c < 0x20) return -1;
        if (c != '\\') {
            *w++ = (char)c;
            q++;
            continue;
        }
        if (++q >= s->end) return -1;
        switch (*q) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (js_hex4(q + 1, s->end, &cp)) return -1;
            q += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (s->end - q < 7 || q[1] != '\\' || q[2] != 'u' || js_hex4(q + 3, s->end, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                q += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return -1;
            }
            w += qe_utf8_enc(cp, (uint8_t *)w);
            break;
        }
        default: return -1;
        }
        q++;
    }
    return -1;
}

static int js_expect(jscan *s, char c) {
    js_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 0;
    }
    return -1;
}

/* Finds model.vocab and model.merges in the top-level object. */
static int js_locate(const char *buf, size_t n, big_parts *b) {
    jscan s = {buf, buf + n};
    char *noarena = NULL;
    if (js_expect(&s, '{')) return -1;
    js_ws(&s);
    if (s.p < s.end && *s.p == '}') return 0;
    for (;;) {
        const char *k;
        size_t kl;
        js_ws(&s);
        if (s.p >= s.end || *s.p != '"') return -1;
        const char *kq = s.p;
        if (js_skip_string(&s)) return -1;
        k = kq + 1;
        kl = (size_t)(s.p - kq - 2);
        if (js_expect(&s, ':')) return -1;
        if (kl == 5 && memcmp(k, "model", 5) == 0) {
            js_ws(&s);
            if (s.p < s.end && *s.p == '{') {
                s.p++;
                js_ws(&s);
                if (s.p < s.end && *s.p == '}') s.p++;
                else
                    for (;;) {
                        const char *mk;
                        size_t mkl;
                        (void)noarena;
                        js_ws(&s);
                        if (s.p >= s.end || *s.p != '"') return -1;
                        const char *mq = s.p;
                        if (js_skip_string(&s)) return -1;
                        mk = mq + 1;
                        mkl = (size_t)(s.p - mq - 2);
                        if (js_expect(&s, ':')) return -1;
                        js_ws(&s);
                        const char *vs = s.p, *ve = NULL;
                        int is_vocab = mkl == 5 && memcmp(mk, "vocab", 5) == 0 && vs < s.end && *vs == '{';
                        int is_merges = mkl == 6 && memcmp(mk, "merges", 6) == 0 && vs < s.end && *vs == '[';
                        /* Parsed where found (no second pass over ~10 MB); on a
                         * parse error the error is kept and the value skipped. */
                        if (is_vocab) {
                            b->vocab_err = js_parse_vocab(b, vs, s.end, &ve);
                        } else if (is_merges) {
                            b->merges_err = js_parse_merges(b, vs, s.end, &ve);
                            if (b->merges_err && b->merges_err != (size_t)-1) b->merges_err += (size_t)(vs - buf);
                        }
                        if (ve) s.p = ve;
                        else if (js_skip(&s)) return -1;
                        if (is_vocab) {
                            b->vocab = vs;
                            b->vocab_len = (size_t)(s.p - vs);
                        } else if (is_merges) {
                            b->merges = vs;
                            b->merges_len = (size_t)(s.p - vs);
                        }
                        js_ws(&s);
                        if (s.p < s.end && *s.p == ',') {
                            s.p++;
                            continue;
                        }
                        if (js_expect(&s, '}')) return -1;
                        break;
                    }
            } else if (js_skip(&s)) {
                return -1;
            }
        } else if (js_skip(&s)) {
            return -1;
        }
        js_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        return js_expect(&s, '}');
    }
}

/* model.vocab: {"token": id, ...} from start (at '{') into b->v. Returns 0
 * with *endp after the object, or 1 + the offset from start where it is not
 * of that form, or (size_t)-1 when out of memory. */
static size_t js_parse_vocab(big_parts *b, const char *start, const char *end, const char **endp) {
    jscan s = {start, end};
    free(b->v);
    free(b->arena);
    b->n = 0;
    b->cap = 1 << 16;
    b->v = malloc(b->cap * sizeof *b->v);
    b->arena = malloc((size_t)(end - start) + 1); /* only touched for escaped strings */
    if (!b->v || !b->arena) return (size_t)-1;
    char *arena = b->arena;
    s.p++;
    js_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        *endp = s.p + 1;
        return 0;
    }
    for (;;) {
        const char *str;
        size_t sl;
        if (js_string(&s, &arena, &str, &sl) || js_expect(&s, ':')) break;
        js_ws(&s);
        uint64_t id = 0;
        const char *d0 = s.p;
        while (s.p < s.end && *s.p >= '0' && *s.p <= '9' && id < QE_MAX_IDS) id = id * 10 + (uint64_t)(*s.p++ - '0');
        if (s.p == d0 || id >= QE_MAX_IDS || (s.p < s.end && (*s.p == '.' || *s.p == 'e' || *s.p == 'E'))) break;
        if (b->n == b->cap) {
            vocab_entry *nv = realloc(b->v, b->cap * 2 * sizeof *nv);
            if (!nv) return (size_t)-1;
            b->v = nv;
            b->cap *= 2;
        }
        b->v[b->n].s = str;
        b->v[b->n].len = (uint32_t)sl;
        b->v[b->n].id = (int32_t)id;
        b->n++;
        js_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        if (js_expect(&s, '}') == 0) {
            *endp = s.p;
            return 0;
        }
        break;
    }
    return (size_t)(s.p - start) + 1;
}

/* Next entry of model.merges: ["a", "b"] or "a b". Returns 1 with a merge,
 * 0 at the end of the array, -1 when malformed. */
static int js_next_merge(jscan *s, char **arena, int *first, const char **a, size_t *la, const char **b,
                         size_t *lb) {
    js_ws(s);
    if (*first) {
        *first = 0;
        if (s->p < s->end && *s->p == ']') return 0;
    } else {
        if (s->p < s->end && *s->p == ']') return 0;
        if (js_expect(s, ',')) return -1;
        js_ws(s);
    }
    if (s->p < s->end && *s->p == '[') {
        s->p++;
        if (js_string(s, arena, a, la) || js_expect(s, ',') || js_string(s, arena, b, lb) || js_expect(s, ']'))
            return -1;
        return 1;
    }
    const char *str;
    size_t sl;
    if (js_string(s, arena, &str, &sl)) return -1;
    const char *sp = memchr(str, ' ', sl);
    if (!sp || memchr(sp + 1, ' ', sl - (size_t)(sp + 1 - str))) return -1;
    *a = str;
    *la = (size_t)(sp - str);
    *b = sp + 1;
    *lb = sl - *la - 1;
    return 1;
}

/* model.merges from start (at '[') into b->mp: 0 with *endp after the
 * array, or 1 + the offset from start of the malformed entry, or (size_t)-1
 * when out of memory. */
static size_t js_parse_merges(big_parts *b, const char *start, const char *end, const char **endp) {
    jscan ms = {start + 1, end};
    free(b->mp);
    free(b->marena);
    b->n_merges = 0;
    b->mcap = 1 << 16;
    b->mp = malloc(b->mcap * sizeof *b->mp);
    b->marena = malloc((size_t)(end - start) + 1); /* only touched for escaped strings */
    if (!b->mp || !b->marena) return (size_t)-1;
    int first = 1, r;
    char *ar = b->marena;
    const char *a, *bb;
    size_t la, lb;
    for (;;) {
        const char *at = ms.p;
        r = js_next_merge(&ms, &ar, &first, &a, &la, &bb, &lb);
        if (r == 0) {
            ms.p++; /* the closing ']' */
            *endp = ms.p;
            return 0;
        }
        if (r < 0) return (size_t)(at - start) + 1;
        if (b->n_merges == b->mcap) {
            mpair *nm = realloc(b->mp, b->mcap * 2 * sizeof *nm);
            if (!nm) return (size_t)-1;
            b->mp = nm;
            b->mcap *= 2;
        }
        b->mp[b->n_merges].a = a;
        b->mp[b->n_merges].b = bb;
        b->mp[b->n_merges].la = (uint32_t)la;
        b->mp[b->n_merges].lb = (uint32_t)lb;
        b->n_merges++;
    }
}

static qembed_status build(loader *L, const cJSON *root) {
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
        QE_FAIL(err, QEMBED_ERR_UNSUPPORTED, "%s: model.dropout %g is not supported", file, dropout->valuedouble);
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
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: model.vocab: not a {\"token\": id} object with integer ids in "
                "[0, %u) (near byte %zu of the file)", file, QE_MAX_IDS, (size_t)(big->vocab - L->buf) + bad - 1);

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
            if (!cJSON_IsString(c) || !c->valuestring[0] || !jid(cJSON_GetObjectItemCaseSensitive(e, "id"), &as[i].id)) {
                free(as);
                QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: added_tokens[%zu]: needs a non-empty \"content\" and an "
                        "integer \"id\"", file, i);
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
    t->raw_pool = malloc(pool * 2 + 1); /* a byte-level char is >= 1 byte and yields 1 byte; raw UTF-8 <= 1x */
    t->raw_off = calloc(N, sizeof *t->raw_off);
    t->raw_len = calloc(N, sizeof *t->raw_len);
    t->flags = calloc(N, 1);
    t->memo = calloc(N, sizeof *t->memo);
    t->str_mask = strtab_size(n_vocab + n_added) - 1;
    t->raw_mask = strtab_size(n_vocab) - 1;
    t->str_hash = calloc(t->str_mask + 1, sizeof *t->str_hash);
    t->raw_hash = calloc(t->raw_mask + 1, sizeof *t->raw_hash);
    if (!t->str_pool || !t->str_off || !t->str_len || !t->raw_pool || !t->raw_off || !t->raw_len || !t->flags ||
        !t->memo || !t->str_hash || !t->raw_hash) {
        free(as);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu ids", file, N);
    }

    uint32_t cp_of_byte[256];
    int16_t byte_of_cp[324];
    byte_level_map(cp_of_byte, byte_of_cp);

    /* Stores a token string and its decoded bytes for id. */
    size_t spos = 0, rpos = 0;
#define STORE_TOKEN(idv, sv, lenv)                                                                  \
    do {                                                                                            \
        const uint8_t *s_ = (const uint8_t *)(sv);                                                  \
        size_t l_ = (lenv);                                                                         \
        t->str_off[idv] = (uint32_t)spos;                                                           \
        t->str_len[idv] = (uint32_t)l_;                                                             \
        memcpy(t->str_pool + spos, s_, l_);                                                         \
        spos += l_;                                                                                 \
        /* ByteLevel decoder: every char maps to its byte, else the raw UTF-8 */                   \
        size_t r0_ = rpos, i_ = 0;                                                                  \
        int pure_ = 1;                                                                              \
        while (i_ < l_) {                                                                           \
            uint32_t cp_;                                                                           \
            i_ += (size_t)qe_utf8_dec(s_, i_, &cp_);                                               \
            if (cp_ >= 324 || byte_of_cp[cp_] < 0) { pure_ = 0; break; }                            \
            t->raw_pool[rpos++] = (uint8_t)byte_of_cp[cp_];                                        \
        }                                                                                           \
        if (!pure_) {                                                                               \
            rpos = r0_;                                                                             \
            memcpy(t->raw_pool + rpos, s_, l_);                                                     \
            rpos += l_;                                                                             \
        }                                                                                           \
        t->raw_off[idv] = (uint32_t)r0_;                                                            \
        t->raw_len[idv] = (uint32_t)(rpos - r0_);                                                   \
        pure_out = pure_;                                                                           \
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
        if (!utf8_valid(str, l)) {
            free(as);
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: model.vocab: token with id %d is not valid UTF-8", file, id);
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
            strtab_put_h(t->str_hash, t->str_mask, (const uint8_t *)t->str_pool, t->str_off[id], t->str_len[id], id,
                         hs[j]);
            if (t->flags[id] & QE_TOK_PURE)
                strtab_put_h(t->raw_hash, t->raw_mask, t->raw_pool, t->raw_off[id], t->raw_len[id], id, hr[j]);
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
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: model.unk_token \"%.60s\" is not in the vocabulary", file,
                    unk->valuestring);
        }
    }

    /* Merges: ["a", "b"] pairs or legacy "a b" strings; rank = position.
     * js_locate parsed them into a list; inserted here in blocks. */
    if (big->merges_err == (size_t)-1) {
        free(as);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
    }
    if (big->merges_err) {
        free(as);
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: model.merges[%zu] is neither [\"a\", \"b\"] nor \"a b\" "
                "(near byte %zu of the file)", file, big->n_merges, big->merges_err - 1);
    }
    size_t n_merges = big->n_merges;
    const mpair *mp = big->mp;
    t->merge_mask = table_size(n_merges) - 1;
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
            ia[j] = strtab_get_h(t->str_hash, t->str_mask, (const uint8_t *)t->str_pool, (const uint8_t *)m[j].a,
                                 m[j].la, ha[j]);
            ib[j] = strtab_get_h(t->str_hash, t->str_mask, (const uint8_t *)t->str_pool, (const uint8_t *)m[j].b,
                                 m[j].lb, hb[j]);
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
                inew[j] = strtab_get_h(t->str_hash, t->str_mask, (const uint8_t *)t->str_pool,
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
            __builtin_prefetch(&t->merges[merge_slot(key[j], t->merge_mask)], 1);
        }
        for (size_t j = 0; j < nb; j++) {
            if (ia[j] < 0 || ib[j] < 0 || inew[j] < 0) {
                qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                         "%s: model.merges[%zu]: \"%.*s\" + \"%.*s\": %s is not in the vocabulary", file, b0 + j,
                         (int)(m[j].la < 40 ? m[j].la : 40), m[j].a, (int)(m[j].lb < 40 ? m[j].lb : 40), m[j].b,
                         ia[j] < 0 ? "the left part" : ib[j] < 0 ? "the right part" : "the merged token");
                free(as);
                return QEMBED_ERR_MODEL_FORMAT;
            }
            merge_put(t, key[j], ((uint64_t)(b0 + j) << 32) | (uint32_t)inew[j]);
        }
    }

    /* Normalizer before added tokens: normalized tokens match in normalized form. */
    qembed_status st = load_normalizer(L, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "normalizer");
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
            if (!utf8_valid(a->content, l)) {
                st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, "%s: added token id %d is not valid UTF-8", file, a->id);
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
                              "%s: added token \"%.60s\" reuses id %d of another token", file, a->content, a->id);
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
                if (nb && nl <= l) STORE_TOKEN(a->id, nb, nl);
                else STORE_TOKEN(a->id, a->content, l);
                (void)pure_out;
            }
            t->flags[a->id] |= QE_TOK_PRESENT | QE_TOK_ADDED | (a->special ? QE_TOK_SPECIAL : 0);
            strtab_put(t->str_hash, t->str_mask, (const uint8_t *)t->str_pool, t->str_off[a->id], t->str_len[a->id], a->id);
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

    QE_TRY(load_pre_tokenizer(L, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer")));
    QE_TRY(load_post(L, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), "post_processor"));
    QE_TRY(load_decoder(L, cJSON_GetObjectItemCaseSensitive(root, "decoder"), "decoder"));
    QE_TRY(load_trunc_pad(L, root));
    for (size_t i = 0; i < t->n_prefix; i++)
        QE_FAIL_IF((size_t)t->prefix[i] >= N || !(t->flags[t->prefix[i]] & QE_TOK_PRESENT), err,
                   QEMBED_ERR_MODEL_FORMAT, "%s: post_processor adds id %d, which has no token", file, t->prefix[i]);
    for (size_t i = 0; i < t->n_suffix; i++)
        QE_FAIL_IF((size_t)t->suffix[i] >= N || !(t->flags[t->suffix[i]] & QE_TOK_PRESENT), err,
                   QEMBED_ERR_MODEL_FORMAT, "%s: post_processor adds id %d, which has no token", file, t->suffix[i]);
    return QEMBED_OK;
}

/* tokenizer_config.json is optional: the reference's ids do not depend on
 * it. When present it must be JSON, and its added_tokens_decoder must agree
 * with tokenizer.json (a mismatch means the two files do not belong
 * together). */
static qembed_status check_config(const qembed_tokenizer *t, const char *path, qembed_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return QEMBED_OK;
    char *buf;
    size_t len;
    QE_TRY(qe_read_file(path, SIZE_MAX, &buf, &len, err));
    cJSON *root = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!root) QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: not valid JSON", path);
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "added_tokens_decoder");
    const cJSON *e;
    qembed_status s = QEMBED_OK;
    cJSON_ArrayForEach(e, dec) {
        char *end;
        long id = strtol(e->string, &end, 10);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (*end || id < 0 || !cJSON_IsString(c)) continue;
        size_t l = strlen(c->valuestring);
        if ((size_t)id >= t->n_ids || t->str_len[id] != l ||
            memcmp(t->str_pool + t->str_off[id], c->valuestring, l) != 0) {
            s = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                         "%s: added_tokens_decoder[\"%ld\"] is \"%.60s\", which tokenizer.json does not have at "
                         "that id", path, id, c->valuestring);
            break;
        }
    }
    cJSON_Delete(root);
    return s;
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
    if (!path || !out) QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "qembed_tokenizer_load: path and out are required");
    *out = NULL;
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
    if (js_locate(buf, len, &big) == 0) {
        /* The rest of the file, with the two big members emptied. */
        const char *sp[2] = {big.vocab, big.merges};
        size_t sl[2] = {big.vocab_len, big.merges_len};
        if (sp[0] && sp[1] && sp[1] < sp[0]) {
            const char *x = sp[0]; sp[0] = sp[1]; sp[1] = x;
            size_t y = sl[0]; sl[0] = sl[1]; sl[1] = y;
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
        big_free(&big);
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
        big_free(&big);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
    }
    loader L = {t, file, err, &big, buf};
    qembed_status s = build(&L, root);
    cJSON_Delete(root);
    big_free(&big);
    free(buf);
    if (s == QEMBED_OK) s = check_config(t, config, err);
    if (s != QEMBED_OK) {
        qembed_tokenizer_free(t);
        return s;
    }
    *out = t;
    return QEMBED_OK;
}
