/* The tokenizer's internal state: immutable after qembed_tokenizer_load
 * (except the BPE memo, which only ever caches a pure function of the input
 * with relaxed atomics), so any number of threads may encode at once. */
#ifndef QE_TOKENIZER_INTERNAL_H
#define QE_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "qembed.h"

/* Ids beyond this are refused: they would only come from a malformed file
 * and would make us allocate per-id arrays of absurd size. */
#define QE_MAX_IDS (1u << 24)

enum {
    QE_TOK_PRESENT = 1,
    QE_TOK_ADDED = 2,
    QE_TOK_SPECIAL = 4,
    QE_TOK_PURE = 8 /* only byte-level chars */
};

typedef struct qe_added {
    uint8_t *content; /* as matched: normalized tokens hold their normalized form */
    size_t len;
    int32_t id;
    uint8_t special, lstrip, rstrip, single_word;
} qe_added;

/* One matching set of added tokens (the reference keeps two: tokens matched
 * on the raw text, and `normalized` ones matched after normalization). */
typedef struct qe_addset {
    qe_added *v;
    size_t n;
    uint8_t first[256]; /* 1 when some token starts with this byte */
    int only_first;     /* the single first byte of every token, or -1 */
} qe_addset;

enum { QE_SPLIT_QWEN = 0, QE_SPLIT_PCRE2 = 1, QE_SPLIT_STRING = 2 };

/* One Split stage of the pre-tokenizer, behaviour Isolated. */
typedef struct qe_split {
    int kind;
    pcre2_code *re; /* QE_SPLIT_PCRE2 */
    uint8_t *lit;   /* QE_SPLIT_STRING */
    size_t lit_len;
} qe_split;

typedef struct qe_hent {
    uint32_t tag;      /* high bits of the hash */
    int32_t id1;       /* id + 1; 0: empty slot */
    uint32_t off, len; /* the key in the table's pool */
} qe_hent;

typedef struct qe_merge {
    uint64_t key, val;
} qe_merge;

struct qembed_tokenizer {
    size_t n_ids; /* highest id + 1 */

    /* Per id: the token's string as in tokenizer.json (byte-level alphabet
     * for the model vocabulary), and its bytes as the ByteLevel decoder
     * produces them. */
    char *str_pool;
    uint32_t *str_off, *str_len;
    uint8_t *raw_pool;
    uint32_t *raw_off, *raw_len;
    uint8_t *flags; /* QE_TOK_* */

    /* Open-addressing tables. str: token string -> id (added tokens win over
     * the model's, as in the reference). raw: bytes -> id of model tokens
     * made only of byte-level characters, for the whole-piece shortcut.
     * Entries carry the key's place in its pool, so a probe touches the
     * table and the key only (load time is mostly these probes). */
    qe_hent *str_hash;
    size_t str_mask;
    qe_hent *raw_hash;
    size_t raw_mask;

    /* Merges: key (left id << 32 | right id) -> (rank << 32 | new id),
     * side by side so that a probe is one cache miss. Empty keys are
     * UINT64_MAX. */
    qe_merge *merges;
    size_t merge_mask;

    int32_t byte_id[256]; /* id of each byte's byte-level character, or -1 */
    int32_t unk_id;       /* -1 when the model has no unk_token */
    int fuse_unk;
    int ignore_merges;

    /* memo[id]: 0 unknown, 1 "BPE of this token's bytes is this token",
     * 2 it is not. Written with relaxed atomics; racing writers store the
     * same value. */
    _Atomic uint8_t *memo;

    qe_addset plain; /* matched on the raw text */
    qe_addset norm;  /* matched on the normalized text */
    int nfc;         /* the normalizer is NFC (or a Sequence of NFCs) */

    qe_split *splits;
    size_t n_splits;

    int32_t *prefix, *suffix; /* the post-processor's single-sequence template */
    size_t n_prefix, n_suffix;

    int32_t trunc_max; /* tokenizer.json "truncation".max_length, or -1 */
    int trunc_left;    /* direction Left: keep the last ids */
};

uint64_t qe_tok_hash(const uint8_t *p, size_t n);
int32_t qe_strtab_get(const qe_hent *tab, size_t mask, const uint8_t *pool, const uint8_t *s, size_t n);
/* Model or added token id of a string, or -1. */
int32_t qe_tok_str_lookup(const qembed_tokenizer *t, const uint8_t *s, size_t n);

/* GGUF token types (tokenizer.ggml.token_type, llama.cpp's numbering). */
enum {
    QE_GGUF_TOK_NORMAL = 1,
    QE_GGUF_TOK_CONTROL = 3,
    QE_GGUF_TOK_USER_DEFINED = 4,
    QE_GGUF_TOK_UNUSED = 5
};
/* The type llama.cpp's converter (convert_hf_to_gguf.py, get_vocab_base)
 * writes for token id i: unused for an id the vocabulary lacks, normal for a
 * model token, and for an added token control when tokenizer.json marks it
 * special or when its spelling looks special (does_token_look_special:
 * "<|...|>", "<｜...｜>", "<unused...>", <pad>, <mask>, <2mass>, [@BOS@]),
 * else user-defined (load_gguf.c). */
int qe_tok_gguf_type(const qembed_tokenizer *t, size_t i);
/* Whether an added token that a GGUF types control is nevertheless not
 * special in the Hugging Face tokenizer.json of the Qwen2 vocabulary (the
 * only one a GGUF may carry here): Qwen's six FIM/repository tokens, which
 * llama.cpp's converter types control by their spelling alone. The loader
 * keeps them non-special so that the ids are tokenizer.json's (load_gguf.c). */
int qe_tok_qwen2_plain_control(const char *s, size_t n);

/* The defaults of qembed_encode_options (qembed_params_init). */
qembed_encode_options qe_encode_defaults(void);

#endif
