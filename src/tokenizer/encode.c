/* Encoding and decoding. The pipeline is the reference's
 * (tokenizers::TokenizerImpl::encode_single_sequence):
 *   1. split the raw text on added tokens that are not `normalized`;
 *   2. normalize (NFC) each remaining part, split it on `normalized` added tokens;
 *   3. pre-tokenize each remaining part (Split stages, then ByteLevel);
 *   4. BPE each piece;
 *   5. post-process (the single-sequence template).
 * All per-call state lives in a scratch struct on the caller's stack, so one
 * tokenizer serves any number of threads. */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/utf8.h"
#include "common/params.h"
#include "tokenizer/nfc.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tokenizer_internal.h"

/* A piece longer than this is refused (BPE positions are int32). */
#define QE_MAX_PIECE ((size_t)1 << 30)

typedef struct bpe_sym {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    int32_t alive;
} bpe_sym;

typedef struct bpe_ent {
    uint32_t rank;
    int32_t pos;
    int32_t new_id;
} bpe_ent;

typedef struct scratch {
    int32_t *out;
    size_t n, cap;
    bpe_sym *sym;
    size_t sym_cap;
    bpe_ent *heap;
    size_t heap_cap;
    pcre2_match_data *md;
    int oom;
} scratch;

static int push(scratch *sc, int32_t id) {
    if (sc->n == sc->cap) {
        size_t nc = sc->cap ? sc->cap * 2 : 64;
        int32_t *no = realloc(sc->out, nc * sizeof *no);
        if (!no) {
            sc->oom = 1;
            return -1;
        }
        sc->out = no;
        sc->cap = nc;
    }
    sc->out[sc->n++] = id;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* BPE                                                                      */
/* ------------------------------------------------------------------------ */

static inline int merge_get(const qembed_tokenizer *t, int32_t a, int32_t b, uint32_t *rank,
                            int32_t *new_id) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & t->merge_mask;;
         i = (i + 1) & t->merge_mask) {
        uint64_t k = t->merges[i].key;
        if (k == key) {
            uint64_t v = t->merges[i].val;
            *rank = (uint32_t)(v >> 32);
            *new_id = (int32_t)(uint32_t)v;
            return 1;
        }
        if (k == UINT64_MAX) return 0;
    }
}

static inline int ent_less(const bpe_ent *a, const bpe_ent *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(bpe_ent *h, size_t *n, bpe_ent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ent_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static bpe_ent heap_pop(bpe_ent *h, size_t *n) {
    bpe_ent top = h[0];
    bpe_ent last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && ent_less(&h[c + 1], &h[c])) c++;
        if (!ent_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

/* The reference's Word::merge_all, step for step (including how it detects
 * stale queue entries: by comparing the pair's merged id), so that even
 * vocabularies whose merges collide give the reference's ids. */
static int bpe_merge(const qembed_tokenizer *t, scratch *sc, const uint8_t *p, size_t n) {
    if (n > sc->sym_cap) {
        size_t nc = n < 64 ? 64 : n * 2;
        bpe_sym *ns = realloc(sc->sym, nc * sizeof *ns);
        if (!ns) return sc->oom = 1, -1;
        sc->sym = ns;
        sc->sym_cap = nc;
        bpe_ent *nh = realloc(sc->heap, nc * 2 * sizeof *nh);
        if (!nh) return sc->oom = 1, -1;
        sc->heap = nh;
        sc->heap_cap = nc * 2;
    }
    bpe_sym *s = sc->sym;
    int32_t m = 0;
    int prev_unk = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[p[i]];
        if (id < 0) {
            /* Not in the vocabulary: the unk token (fused when fuse_unk),
             * or dropped when the model has none, as the reference does. */
            if (t->unk_id < 0) continue;
            if (t->fuse_unk && prev_unk) continue;
            id = t->unk_id;
            prev_unk = 1;
        } else {
            prev_unk = 0;
        }
        s[m].id = id;
        s[m].prev = m - 1;
        s[m].next = m + 1;
        s[m].alive = 1;
        m++;
    }
    if (m == 0) return 0;
    s[m - 1].next = -1;
    bpe_ent *h = sc->heap;
    size_t hn = 0;
    for (int32_t i = 0; i + 1 < m; i++) {
        bpe_ent e;
        if (merge_get(t, s[i].id, s[i + 1].id, &e.rank, &e.new_id)) {
            e.pos = i;
            heap_push(h, &hn, e);
        }
    }
    while (hn > 0) {
        bpe_ent top = heap_pop(h, &hn);
        bpe_sym *cur = &s[top.pos];
        if (!cur->alive || cur->next < 0) continue;
        int32_t nx = cur->next;
        uint32_t r;
        int32_t nid;
        if (!merge_get(t, cur->id, s[nx].id, &r, &nid) || nid != top.new_id) continue;
        cur->id = top.new_id;
        cur->next = s[nx].next;
        s[nx].alive = 0;
        if (cur->next >= 0) s[cur->next].prev = top.pos;
        bpe_ent e;
        if (cur->prev >= 0 && merge_get(t, s[cur->prev].id, cur->id, &e.rank, &e.new_id)) {
            e.pos = cur->prev;
            heap_push(h, &hn, e);
        }
        if (cur->next >= 0 && merge_get(t, cur->id, s[cur->next].id, &e.rank, &e.new_id)) {
            e.pos = top.pos;
            heap_push(h, &hn, e);
        }
    }
    for (int32_t i = 0; i >= 0; i = s[i].next)
        if (push(sc, s[i].id)) return -1;
    return 0;
}

static inline int32_t raw_lookup(const qembed_tokenizer *t, const uint8_t *s, size_t n) {
    return qe_strtab_get(t->raw_hash, t->raw_mask, t->raw_pool, s, n);
}

/* BPE of one pre-tokenized piece (raw bytes; the byte-level mapping is
 * folded into byte_id and the raw table). Fast path: most pieces of prose
 * are one vocabulary token; whether BPE really yields that token is computed
 * once per token and remembered in memo (exact, unlike tiktoken's "piece in
 * vocabulary" rule, which the reference does not follow). */
static int bpe_piece(const qembed_tokenizer *t, scratch *sc, const uint8_t *p, size_t n) {
    if (n == 1 && t->byte_id[p[0]] >= 0) return push(sc, t->byte_id[p[0]]);
    int32_t whole = raw_lookup(t, p, n);
    uint8_t m = 0;
    if (whole >= 0) {
        if (t->ignore_merges) return push(sc, whole);
        m = atomic_load_explicit(&t->memo[whole], memory_order_relaxed);
        if (m == 1) return push(sc, whole);
    }
    size_t start = sc->n;
    if (bpe_merge(t, sc, p, n)) return -1;
    if (whole >= 0 && m == 0) {
        uint8_t v = (sc->n == start + 1 && sc->out[start] == whole) ? 1 : 2;
        atomic_store_explicit(&t->memo[whole], v, memory_order_relaxed);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Pre-tokenization                                                         */
/* ------------------------------------------------------------------------ */

static int pretok_stage(const qembed_tokenizer *t, scratch *sc, size_t k, const uint8_t *s, size_t n);

static int next_stage(const qembed_tokenizer *t, scratch *sc, size_t k, const uint8_t *s, size_t n) {
    if (n == 0) return 0;
    if (k + 1 < t->n_splits) return pretok_stage(t, sc, k + 1, s, n);
    if (n > QE_MAX_PIECE) return -2;
    return bpe_piece(t, sc, s, n);
}

/* Split stage k with behaviour Isolated: matches and the text between them
 * are pieces. */
static int pretok_stage(const qembed_tokenizer *t, scratch *sc, size_t k, const uint8_t *s, size_t n) {
    const qe_split *sp = &t->splits[k];
    int r;
    if (sp->kind == QE_SPLIT_QWEN) {
        for (size_t i = 0; i < n;) {
            size_t e = qe_pretok_qwen_next(s, n, i);
            if ((r = next_stage(t, sc, k, s + i, e - i))) return r;
            i = e;
        }
        return 0;
    }
    if (sp->kind == QE_SPLIT_STRING) {
        size_t last = 0;
        for (size_t i = 0; i + sp->lit_len <= n;) {
            const uint8_t *f = memmem(s + i, n - i, sp->lit, sp->lit_len);
            if (!f) break;
            size_t at = (size_t)(f - s);
            if ((r = next_stage(t, sc, k, s + last, at - last))) return r;
            if ((r = next_stage(t, sc, k, s + at, sp->lit_len))) return r;
            i = last = at + sp->lit_len;
        }
        return next_stage(t, sc, k, s + last, n - last);
    }
    if (!sc->md) {
        sc->md = pcre2_match_data_create(2, NULL);
        if (!sc->md) return sc->oom = 1, -1;
    }
    size_t last = 0, at = 0;
    while (at <= n) {
        int rc = pcre2_match(sp->re, s, n, at, PCRE2_NO_UTF_CHECK, sc->md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* empty match: no piece, move on one character */
            if (ms >= n) break;
            uint32_t cp;
            at = ms + (size_t)qe_utf8_dec(s, ms, &cp);
            continue;
        }
        if ((r = next_stage(t, sc, k, s + last, ms - last))) return r;
        if ((r = next_stage(t, sc, k, s + ms, me - ms))) return r;
        last = at = me;
    }
    return next_stage(t, sc, k, s + last, n - last);
}

/* ------------------------------------------------------------------------ */
/* Added tokens                                                             */
/* ------------------------------------------------------------------------ */

static int is_ws(const uint8_t *s, size_t i, int *len) {
    uint32_t cp;
    *len = qe_utf8_dec(s, i, &cp);
    return qe_pretok_class(cp) == QE_CL_S;
}

static int is_word(uint32_t cp) {
    return qe_pretok_is_word(cp);
}

/* Leftmost-longest match of any token of set at or after `from`. */
static const qe_added *find_added(const qe_addset *set, const uint8_t *s, size_t n, size_t from, size_t *at) {
    for (size_t i = from; i < n; i++) {
        if (set->only_first >= 0) {
            const uint8_t *f = memchr(s + i, set->only_first, n - i);
            if (!f) return NULL;
            i = (size_t)(f - s);
        } else if (!set->first[s[i]]) {
            continue;
        }
        const qe_added *best = NULL;
        for (size_t k = 0; k < set->n; k++) {
            const qe_added *a = &set->v[k];
            if (a->len <= n - i && (!best || a->len > best->len) && memcmp(s + i, a->content, a->len) == 0)
                best = a;
        }
        if (best) {
            *at = i;
            return best;
        }
    }
    return NULL;
}

typedef int (*text_fn)(const qembed_tokenizer *t, scratch *sc, const uint8_t *s, size_t n);

/* The reference's AddedVocabulary::find_matches: non-overlapping
 * leftmost-longest matches, then the single_word / lstrip / rstrip rules;
 * text between matches goes to `text`. With skip_special (parse_special = 0)
 * special tokens are left in the text, as the reference's
 * encode_special_tokens does. */
static int split_added(const qembed_tokenizer *t, scratch *sc, const qe_addset *set, int skip_special,
                       const uint8_t *s, size_t n, text_fn text) {
    size_t start_offset = 0, from = 0, at;
    int r;
    if (set->n == 0) return text(t, sc, s, n);
    const qe_added *a;
    while (from < n && (a = find_added(set, s, n, from, &at)) != NULL) {
        size_t start = at, stop = at + a->len;
        from = stop;
        if (skip_special && a->special) continue;
        if (a->single_word) {
            uint32_t cp;
            int start_space = 1, stop_space = 1;
            if (start > 0) {
                qe_utf8_dec(s, start - (size_t)qe_utf8_prev_len(s, start), &cp);
                start_space = !is_word(cp);
            }
            if (stop < n) {
                qe_utf8_dec(s, stop, &cp);
                stop_space = !is_word(cp);
            }
            if (!start_space || !stop_space) continue;
        }
        if (a->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t pl = (size_t)qe_utf8_prev_len(s, ns);
                int l;
                if (!is_ws(s, ns - pl, &l)) break;
                ns -= pl;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            int l;
            while (stop < n && is_ws(s, stop, &l)) stop += (size_t)l;
        }
        if (start_offset < start && (r = text(t, sc, s + start_offset, start - start_offset))) return r;
        if (push(sc, a->id)) return -1;
        start_offset = stop;
    }
    if (start_offset < n) return text(t, sc, s + start_offset, n - start_offset);
    return 0;
}

static int pretokenize(const qembed_tokenizer *t, scratch *sc, const uint8_t *s, size_t n) {
    return next_stage(t, sc, (size_t)-1, s, n);
}

/* Part of the text between non-normalized added tokens: normalize, then
 * split on normalized added tokens. */
static int normalized_part(const qembed_tokenizer *t, scratch *sc, const uint8_t *s, size_t n,
                           int skip_special) {
    uint8_t *buf = NULL;
    size_t bl = 0;
    if (t->nfc && !qe_nfc_quick(s, n)) {
        if (qe_nfc(s, n, &buf, &bl)) return sc->oom = 1, -1;
        s = buf;
        n = bl;
    }
    int r = split_added(t, sc, &t->norm, skip_special, s, n, pretokenize);
    free(buf);
    return r;
}

static int part_keep_special(const qembed_tokenizer *t, scratch *sc, const uint8_t *s, size_t n) {
    return normalized_part(t, sc, s, n, 0);
}
static int part_skip_special(const qembed_tokenizer *t, scratch *sc, const uint8_t *s, size_t n) {
    return normalized_part(t, sc, s, n, 1);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

qembed_encode_options qe_encode_defaults(void) {
    qembed_encode_options o;
    memset(&o, 0, sizeof o);
    o.add_special_tokens = 1;
    o.parse_special = 1;
    return o;
}

qembed_status qembed_tokenizer_encode(const qembed_tokenizer *t, const char *text, size_t len,
                                      const qembed_encode_options *opts, int32_t **ids, size_t *n_ids,
                                      qembed_error *err) {
    if (ids) *ids = NULL;
    if (n_ids) *n_ids = 0;
    if (!t || !ids || !n_ids || (!text && len))
        QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT,
                "qembed_tokenizer_encode: tokenizer, ids and n_ids are required, "
                "and text unless len is 0");
    static const size_t sizes[] = {QE_SIZE_UPTO(qembed_encode_options, parse_special),
                                   sizeof(qembed_encode_options)};
    qembed_encode_options o = qe_encode_defaults();
    QE_TRY(qe_params_copy(&o, sizeof o, opts, sizes, 2, "qembed_encode_options", err));
    const uint8_t *s = (const uint8_t *)text;
    size_t bad = qe_utf8_first_invalid(s, len);
    if (bad < len)
        QE_FAIL(err, QEMBED_ERR_INVALID_UTF8, "text is not valid UTF-8 at byte offset %zu (byte 0x%02X)", bad,
                s[bad]);

    scratch sc;
    memset(&sc, 0, sizeof sc);
    int r = 0;
    if (o.add_special_tokens)
        for (size_t i = 0; i < t->n_prefix && !r; i++) r = push(&sc, t->prefix[i]);
    size_t model_start = sc.n;
    if (!r && len)
        r = split_added(t, &sc, &t->plain, !o.parse_special, s, len,
                        o.parse_special ? part_keep_special : part_skip_special);
    if (!r && t->trunc_max >= 0) {
        /* The reference truncates before the post-processor, leaving room
         * for the ids the template adds. */
        size_t added = o.add_special_tokens ? t->n_prefix + t->n_suffix : 0;
        size_t limit = (size_t)t->trunc_max > added ? (size_t)t->trunc_max - added : 0;
        size_t n_model = sc.n - model_start;
        if (n_model > limit) {
            if (t->trunc_left) memmove(sc.out + model_start, sc.out + sc.n - limit, limit * sizeof *sc.out);
            sc.n = model_start + limit;
        }
    }
    if (!r && o.add_special_tokens)
        for (size_t i = 0; i < t->n_suffix && !r; i++) r = push(&sc, t->suffix[i]);
    free(sc.sym);
    free(sc.heap);
    if (sc.md) pcre2_match_data_free(sc.md);
    if (r) {
        free(sc.out);
        if (r == -2)
            QE_FAIL(err, QEMBED_ERR_INPUT_TOO_LONG, "text has a pre-token longer than %zu bytes",
                    QE_MAX_PIECE);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory encoding %zu bytes", len);
    }
    if (!sc.out) { /* empty result: still hand back a freeable pointer */
        sc.out = malloc(sizeof *sc.out);
        if (!sc.out) QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory");
    }
    *ids = sc.out;
    *n_ids = sc.n;
    return QEMBED_OK;
}

qembed_status qembed_tokenizer_decode(const qembed_tokenizer *t, const int32_t *ids, size_t n_ids,
                                      int skip_special_tokens, char **text, size_t *len, qembed_error *err) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!t || !text || (!ids && n_ids))
        QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT,
                "qembed_tokenizer_decode: tokenizer, text, and ids unless "
                "n_ids is 0, are required");
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= t->n_ids)
            QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "id %d at index %zu is outside the vocabulary [0, %zu)",
                    ids[i], i, t->n_ids);
        total += t->raw_len[ids[i]];
    }
    /* Bytes, then lossy UTF-8 (Rust's from_utf8_lossy): each maximal
     * ill-formed subpart (>= 1 byte) becomes U+FFFD (3 bytes). */
    uint8_t *raw = malloc(total + 1);
    char *outp = malloc(total * 3 + 1);
    if (!raw || !outp) {
        free(raw);
        free(outp);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory decoding %zu ids", n_ids);
    }
    size_t rn = 0;
    for (size_t i = 0; i < n_ids; i++) {
        uint8_t f = t->flags[ids[i]];
        if (!(f & QE_TOK_PRESENT)) continue; /* an id without a token: skipped, as the reference does */
        if (skip_special_tokens && (f & QE_TOK_SPECIAL)) continue;
        memcpy(raw + rn, t->raw_pool + t->raw_off[ids[i]], t->raw_len[ids[i]]);
        rn += t->raw_len[ids[i]];
    }
    size_t on = 0;
    for (size_t i = 0; i < rn;) {
        int l = qe_utf8_check(raw, rn, i);
        if (l > 0) {
            memcpy(outp + on, raw + i, (size_t)l);
            on += (size_t)l;
            i += (size_t)l;
        } else {
            memcpy(outp + on, "\xEF\xBF\xBD", 3);
            on += 3;
            i += (size_t)-l;
        }
    }
    outp[on] = '\0';
    free(raw);
    *text = outp;
    if (len) *len = on;
    return QEMBED_OK;
}

int32_t qembed_tokenizer_token_to_id(const qembed_tokenizer *t, const char *token) {
    if (!t || !token) return -1;
    return qe_tok_str_lookup(t, (const uint8_t *)token, strlen(token));
}

size_t qembed_tokenizer_n_vocab(const qembed_tokenizer *t) {
    return t ? t->n_ids : 0;
}
