/* The tokenizer's string hash and its lookups (the tables: hashtab.h). */
#include <string.h>

#include "tokenizer/hashtab.h"

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

int32_t qe_strtab_get(const qe_hent *tab, size_t mask, const uint8_t *pool, const uint8_t *s, size_t n) {
    return qe_strtab_get_h(tab, mask, pool, s, n, qe_tok_hash(s, n));
}

int32_t qe_tok_str_lookup(const qembed_tokenizer *t, const uint8_t *s, size_t n) {
    return qe_strtab_get(t->str_hash, t->str_mask, (const uint8_t *)t->str_pool, s, n);
}
