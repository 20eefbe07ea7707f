/* A scanner for the two big members of tokenizer.json, model.vocab and
 * model.merges, which it parses in place without cJSON (why: json_scan.c).
 * The loader then hands the rest of the file to cJSON with those two
 * replaced by {} and []. */
#ifndef QE_TOK_JSON_SCAN_H
#define QE_TOK_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

typedef struct vocab_entry {
    const char *s;
    uint32_t len;
    int32_t id;
} vocab_entry;

typedef struct mpair {
    const char *a, *b;
    uint32_t la, lb;
} mpair;

/* Filled by qe_js_locate, which parses the two members where it finds them. */
typedef struct big_parts {
    const char *vocab, *merges; /* spans in the file buffer, NULL when absent */
    size_t vocab_len, merges_len;
    vocab_entry *v; /* model.vocab */
    size_t n, cap;
    char *arena;      /* its unescaped strings */
    size_t vocab_err; /* 0; or 1 + offset in the span where it is not {"token": id}; (size_t)-1: no memory */
    mpair *mp;        /* model.merges */
    size_t n_merges, mcap;
    char *marena;
    size_t merges_err; /* 0; or 1 + offset in the file where an entry is malformed; (size_t)-1: no memory */
} big_parts;

/* Finds model.vocab and model.merges in the top-level object of buf[0..n)
 * and parses them into b (errors in them are kept in b->vocab_err and
 * b->merges_err, for the loader to report). Returns 0, or -1 when buf is not
 * a JSON object the scanner can follow. */
int qe_js_locate(const char *buf, size_t n, big_parts *b);

/* Frees what qe_js_locate allocated in b; b stays usable (empty). */
void qe_big_free(big_parts *b);

#endif
