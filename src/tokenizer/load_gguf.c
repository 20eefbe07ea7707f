/* The tokenizer from a GGUF file's own vocabulary (tokenizer.ggml.*), built
 * by the same code as tokenizer.json (qe_tok_build), so that ids are the
 * Hugging Face ids, NFC normalisation included (llama.cpp skips NFC).
 *
 * tokenizer.ggml.model must be "gpt2" (byte-level BPE) and .pre "qwen2"
 * (Qwen's split pattern). Token types (llama.cpp's): 1 normal -> model.vocab,
 * 3 control -> a special added token (but for Qwen's six FIM/repository
 * tokens, control only by their spelling: tokenizer.json has them
 * non-special), 4 user-defined -> a non-special added token, 5 unused ->
 * skipped. Merges are "left right" strings. With
 * add_eos_token true, the post-processor appends the eos token, as
 * Qwen3-Embedding's tokenizer.json does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>

#include "model/gguf.h"
#include "tokenizer/load_internal.h"

/* Qwen2's pre-tokenizer regex exactly as its tokenizer.json writes it. */
static const char qwen2_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static int has_affixes(const char *s, size_t n, const char *pre, const char *suf) {
    size_t lp = strlen(pre), ls = strlen(suf);
    return n >= lp + ls && !memcmp(s, pre, lp) && !memcmp(s + n - ls, suf, ls);
}

/* convert_hf_to_gguf.py's does_token_look_special, on the token's bytes. */
static int looks_special(const char *s, size_t n) {
    static const char *const names[] = {"<pad>", "<mask>", "<2mass>", "[@BOS@]"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (n == strlen(names[i]) && !memcmp(s, names[i], n)) return 1;
    return has_affixes(s, n, "<|", "|>") || has_affixes(s, n, "<\xef\xbd\x9c", "\xef\xbd\x9c>") /* <｜ ｜> */
           || has_affixes(s, n, "<unused", ">");
}

int qe_tok_gguf_type(const qembed_tokenizer *t, size_t i) {
    uint8_t f = t->flags[i];
    if (!(f & QE_TOK_PRESENT)) return QE_GGUF_TOK_UNUSED;
    if (!(f & QE_TOK_ADDED)) return QE_GGUF_TOK_NORMAL;
    if ((f & QE_TOK_SPECIAL) || looks_special(t->str_pool + t->str_off[i], t->str_len[i]))
        return QE_GGUF_TOK_CONTROL;
    return QE_GGUF_TOK_USER_DEFINED;
}

int qe_tok_qwen2_plain_control(const char *s, size_t n) {
    /* tokenizer.json: "special": false for each (Qwen2, Qwen2.5, Qwen3) */
    static const char *const fim[] = {"<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                                      "<|fim_pad|>",    "<|repo_name|>",  "<|file_sep|>"};
    for (size_t i = 0; i < sizeof fim / sizeof fim[0]; i++)
        if (n == strlen(fim[i]) && !memcmp(s, fim[i], n)) return 1;
    return 0;
}

static cJSON *byte_level(void) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "ByteLevel");
    cJSON_AddBoolToObject(b, "add_prefix_space", 0);
    cJSON_AddBoolToObject(b, "trim_offsets", 0);
    cJSON_AddBoolToObject(b, "use_regex", 0);
    return b;
}

qembed_status qe_tok_from_gguf(const qe_gguf *g, const char *file, qembed_tokenizer **out,
                               qembed_error *err) {
    const char *s;
    size_t n;
    if (!qe_gguf_get_str(g, "tokenizer.ggml.model", &s, &n))
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: metadata \"tokenizer.ggml.model\" is missing (no vocabulary)", file);
    if (n != 4 || memcmp(s, "gpt2", 4))
        QE_FAIL(err, QEMBED_ERR_UNSUPPORTED,
                "%s: tokenizer.ggml.model is \"%.*s\"; qembed reads \"gpt2\" (byte-level BPE)", file,
                (int)(n > 40 ? 40 : n), s);
    if (qe_gguf_get_str(g, "tokenizer.ggml.pre", &s, &n) && !(n == 5 && !memcmp(s, "qwen2", 5)))
        QE_FAIL(err, QEMBED_ERR_UNSUPPORTED,
                "%s: tokenizer.ggml.pre is \"%.*s\"; qembed implements \"qwen2\"", file,
                (int)(n > 40 ? 40 : n), s);
    const qe_gguf_kv *tok = qe_gguf_find(g, "tokenizer.ggml.tokens");
    const qe_gguf_kv *typ = qe_gguf_find(g, "tokenizer.ggml.token_type");
    const qe_gguf_kv *mer = qe_gguf_find(g, "tokenizer.ggml.merges");
    if (!tok || tok->type != QE_GGUF_ARRAY || tok->arr_type != QE_GGUF_STRING || tok->count == 0 ||
        tok->count >= QE_MAX_IDS)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: tokenizer.ggml.tokens missing or not a string array",
                file);
    if (typ && (typ->type != QE_GGUF_ARRAY ||
                (typ->arr_type != QE_GGUF_I32 && typ->arr_type != QE_GGUF_U32) || typ->count != tok->count))
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: tokenizer.ggml.token_type must be an i32 array as long as tokenizer.ggml.tokens", file);
    if (!mer || mer->type != QE_GGUF_ARRAY || mer->arr_type != QE_GGUF_STRING)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: tokenizer.ggml.merges missing or not a string array",
                file);
    int64_t eos = -1, add_eos = 0;
    qe_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &eos);
    qe_gguf_get_int(g, "tokenizer.ggml.add_eos_token", &add_eos);
    if (eos >= (int64_t)tok->count)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: tokenizer.ggml.eos_token_id %lld is outside the %llu tokens", file, (long long)eos,
                (unsigned long long)tok->count);

    qembed_status st = QEMBED_OK;
    big_parts big;
    memset(&big, 0, sizeof big);
    cJSON *root = cJSON_CreateObject();
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    big.v = calloc((size_t)tok->count, sizeof *big.v);
    big.mp = calloc(mer->count ? (size_t)mer->count : 1, sizeof *big.mp);
    if (!root || !added || !big.v || !big.mp) {
        st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
        goto done;
    }
    big.vocab = big.merges = file; /* present (only used in messages) */
    const uint8_t *cur = tok->val;
    const char *eos_str = NULL;
    uint64_t eos_len = 0;
    for (uint64_t i = 0; i < tok->count; i++) {
        uint64_t len;
        const char *ts = qe_gguf_next_str(&cur, &len);
        int32_t ty = 1;
        if (typ) memcpy(&ty, typ->val + 4 * i, 4);
        if ((int64_t)i == eos) eos_str = ts, eos_len = len;
        if (len == 0 || len > 4096 || memchr(ts, '\0', (size_t)len)) {
            if (ty == 5) continue;
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: tokenizer.ggml.tokens[%llu] is empty, over 4096 bytes "
                          "or holds NUL",
                          file, (unsigned long long)i);
            goto done;
        }
        if (ty == 3 || ty == 4) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddItemToArray(added, a);
            cJSON_AddNumberToObject(a, "id", (double)i);
            char *c = strndup(ts, (size_t)len);
            if (!c) {
                st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
                goto done;
            }
            cJSON_AddStringToObject(a, "content", c);
            free(c);
            cJSON_AddBoolToObject(a, "single_word", 0);
            cJSON_AddBoolToObject(a, "lstrip", 0);
            cJSON_AddBoolToObject(a, "rstrip", 0);
            cJSON_AddBoolToObject(a, "normalized", 0);
            cJSON_AddBoolToObject(a, "special",
                                  ty == QE_GGUF_TOK_CONTROL && !qe_tok_qwen2_plain_control(ts, (size_t)len));
        } else if (ty != 5) {
            big.v[big.n++] = (vocab_entry){.s = ts, .len = (uint32_t)len, .id = (int32_t)i};
        }
    }
    cur = mer->val;
    for (uint64_t i = 0; i < mer->count; i++) {
        uint64_t len;
        const char *ms = qe_gguf_next_str(&cur, &len);
        const char *sp = memchr(ms, ' ', (size_t)len);
        if (!sp || sp == ms || sp == ms + len - 1 || len > 8192) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: tokenizer.ggml.merges[%llu] is not \"left right\"", file,
                          (unsigned long long)i);
            goto done;
        }
        big.mp[big.n_merges++] =
            (mpair){.a = ms, .la = (uint32_t)(sp - ms), .b = sp + 1, .lb = (uint32_t)(ms + len - sp - 1)};
    }
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddObjectToObject(root, "normalizer")
        ? (void)cJSON_AddStringToObject(cJSON_GetObjectItem(root, "normalizer"), "type", "NFC")
        : (void)0;
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "Sequence");
    cJSON *pl = cJSON_AddArrayToObject(pre, "pretokenizers");
    cJSON *split = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", qwen2_pattern);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", 0);
    cJSON_AddItemToArray(pl, split);
    cJSON_AddItemToArray(pl, byte_level());
    cJSON_AddItemToObject(root, "decoder", byte_level());
    if (add_eos && eos_str) {
        /* The single-sequence template Qwen3-Embedding's tokenizer.json has:
         * $A <eos>. */
        char *e = strndup(eos_str, (size_t)eos_len);
        if (!e) {
            st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
            goto done;
        }
        cJSON *tp = cJSON_AddObjectToObject(root, "post_processor");
        cJSON_AddStringToObject(tp, "type", "TemplateProcessing");
        cJSON *single = cJSON_AddArrayToObject(tp, "single");
        cJSON *a = cJSON_CreateObject();
        cJSON *seq = cJSON_AddObjectToObject(a, "Sequence");
        cJSON_AddStringToObject(seq, "id", "A");
        cJSON_AddNumberToObject(seq, "type_id", 0);
        cJSON_AddItemToArray(single, a);
        cJSON *b = cJSON_CreateObject();
        cJSON *sp = cJSON_AddObjectToObject(b, "SpecialToken");
        cJSON_AddStringToObject(sp, "id", e);
        cJSON_AddNumberToObject(sp, "type_id", 0);
        cJSON_AddItemToArray(single, b);
        cJSON *stoks = cJSON_AddObjectToObject(tp, "special_tokens");
        cJSON *ent = cJSON_AddObjectToObject(stoks, e);
        cJSON_AddStringToObject(ent, "id", e);
        cJSON_AddItemToObject(ent, "ids", cJSON_CreateIntArray((const int[]){(int)eos}, 1));
        cJSON_AddItemToObject(ent, "tokens", cJSON_CreateStringArray((const char *const[]){e}, 1));
        free(e);
    }
    qembed_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
        goto done;
    }
    loader L = {t, file, err, &big, file};
    st = qe_tok_build(&L, root);
    if (st != QEMBED_OK)
        qembed_tokenizer_free(t);
    else
        *out = t;
done:
    cJSON_Delete(root);
    qe_big_free(&big);
    return st;
}

qembed_status qe_tok_load_gguf(const char *path, qembed_tokenizer **out, qembed_error *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) QE_FAIL(err, QEMBED_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 24) {
        close(fd);
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: not a GGUF file (too short or not a regular file)", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) QE_FAIL(err, QEMBED_ERR_IO, "%s: cannot mmap: %s", path, strerror(e));
    qe_gguf *g = NULL;
    qembed_status st = qe_gguf_parse(map, size, path, &g, err);
    if (st == QEMBED_OK) st = qe_tok_from_gguf(g, path, out, err);
    qe_gguf_free(g);
    munmap(map, size);
    return st;
}
