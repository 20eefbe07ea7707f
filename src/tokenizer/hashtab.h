/* The tokenizer's open-addressing hash tables: token string -> id (a
 * qe_hent table keyed by bytes in a pool) and merge pair -> (rank, new id).
 * Built by the loader, read by the encoder. The probes are inline: loading
 * is ~600k of them, bound by cache misses (see QE_BLOCK in load.c). */
#ifndef QE_TOK_HASHTAB_H
#define QE_TOK_HASHTAB_H

#include <string.h>

#include "tokenizer/tokenizer_internal.h"

static inline size_t qe_table_size(size_t n) {
    size_t s = 1024;
    while (s < n * 2) s <<= 1;
    return s;
}

static inline size_t qe_strtab_size(size_t n) {
    size_t s = 1024;
    while (s < n + n / 2) s <<= 1;
    return s;
}

/* Inserts id under the key pool[off..off+len) (replacing an entry with equal
 * bytes); h is qe_tok_hash of the key. */
static inline void qe_strtab_put_h(qe_hent *tab, size_t mask, const uint8_t *pool, uint32_t off, uint32_t len,
                                   int32_t id, uint64_t h) {
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

static inline void qe_strtab_put(qe_hent *tab, size_t mask, const uint8_t *pool, uint32_t off, uint32_t len,
                                 int32_t id) {
    qe_strtab_put_h(tab, mask, pool, off, len, id, qe_tok_hash(pool + off, len));
}

static inline int32_t qe_strtab_get_h(const qe_hent *tab, size_t mask, const uint8_t *pool, const uint8_t *s,
                                      size_t n, uint64_t h) {
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const qe_hent *e = &tab[i];
        if (e->id1 == 0) return -1;
        if (e->tag == tag && e->len == n && memcmp(pool + e->off, s, n) == 0) return e->id1 - 1;
    }
}

static inline size_t qe_merge_slot(uint64_t key, size_t mask) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
}

/* Later duplicates win, as in the reference's HashMap collect. */
static inline void qe_merge_put(qembed_tokenizer *t, uint64_t key, uint64_t val) {
    for (size_t i = qe_merge_slot(key, t->merge_mask);; i = (i + 1) & t->merge_mask) {
        if (t->merges[i].key == UINT64_MAX || t->merges[i].key == key) {
            t->merges[i].key = key;
            t->merges[i].val = val;
            return;
        }
    }
}

#endif
