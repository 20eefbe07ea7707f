/* Unit tests of each piece of the tokenizer, as data in / expected out:
 * the pre-tokenizer split, the byte-level mapping, merges, added tokens,
 * NFC, decoding (round trip and U+FFFD), UTF-8 errors, load errors.
 * Expected ids and splits for the Qwen3 tokenizer were taken from the
 * reference (Hugging Face tokenizers 0.23.2); the differential test checks
 * the same on a large corpus.
 *   tok_test_units <qwen3 tokenizer.json> */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qembed.h"
#include "tokenizer/nfc.h"
#include "tokenizer/pretok.h"

#include "check.h"

#define END ((int32_t)-999)
#define MAXP 8

/* ---- pre-tokenizer split ------------------------------------------------ */
static const struct {
    const char *in;
    const char *pieces[MAXP]; /* NULL-terminated */
} split_cases[] = {
    {"Hello world", {"Hello", " world"}},
    {"it's", {"it", "'s"}},
    {"IT'S", {"IT", "'S"}},
    {"it'\u017f", {"it", "'\u017f"}},
    {"we'LL", {"we", "'LL"}},
    {"'sup", {"'s", "up"}},
    {"I'M", {"I", "'M"}},
    {"''s", {"''", "s"}},
    {"  x", {" ", " x"}},
    {"a  \n\n  b", {"a", "  \n\n", " ", " b"}},
    {"x   ", {"x", "   "}},
    {"123", {"1", "2", "3"}},
    {" !!!\n\nx", {" !!!\n\n", "x"}},
    {"\t!", {"\t", "!"}},
    {"(hello", {"(hello"}},
    {"\xe4\xb8\xad\xe6\x96\x87 \xe6\xb5\x8b\xe8\xaf\x95",
     {"\xe4\xb8\xad\xe6\x96\x87", " \xe6\xb5\x8b\xe8\xaf\x95"}},
    {"a\u0301", {"a", "\u0301"}},
    {"\u00a0x", {"\u00a0x"}},
    {"\xc2\x85x", {"\xc2\x85x"}},
    {"\ufeffx", {"\ufeffx"}},
    {"x\r\ny", {"x", "\r\n", "y"}},
    {"x \r\n", {"x", " \r\n"}},
    {"1st", {"1", "st"}},
    {"a1", {"a", "1"}},
    {"x\u3000\u3000y", {"x", "\u3000", "\u3000y"}},
};

static void test_split(void) {
    for (size_t c = 0; c < sizeof split_cases / sizeof split_cases[0]; c++) {
        const char *s = split_cases[c].in;
        size_t n = strlen(s), i = 0, k = 0;
        while (i < n) {
            size_t e = qe_pretok_qwen_next((const uint8_t *)s, n, i);
            const char *want = k < MAXP ? split_cases[c].pieces[k] : NULL;
            CHECK(want && e > i && strlen(want) == e - i && memcmp(want, s + i, e - i) == 0,
                  "split of case %zu: piece %zu is \"%.*s\", want \"%s\"", c, k, (int)(e - i), s + i,
                  want ? want : "(none)");
            if (e <= i) break;
            i = e;
            k++;
        }
        CHECK(k >= MAXP || split_cases[c].pieces[k] == NULL, "split of case %zu: too few pieces (%zu)", c, k);
    }
}

/* ---- NFC (the reference's Unicode 9.0 data) ----------------------------- */
static const struct {
    const char *in, *out;
} nfc_cases[] = {
    {"e\u0301", "\u00e9"},
    {"E\u0323\u0301", "\u1eb8\u0301"}, /* E + dot below composes; no composite takes the acute too */
    {"e\u0301\u0323", "\u1eb9\u0301"}, /* reordered: 0323 (220) before 0301 (230) */
    {"\u1100\u1161\u11a8", "\uac01"},  /* Hangul LVT */
    {"\u1100\u1161", "\uac00"},
    {"\uac00\u11a8", "\uac01"},
    {"\u212b", "\u00c5"}, /* singleton */
    {"\u2126", "\u03a9"},
    {"\u0958", "\u0915\u093c"},        /* composition exclusion */
    {"a\u0315\u0301", "\u00e1\u0315"}, /* ccc 232 after 230 */
    {"\u0344", "\u0308\u0301"},        /* non-starter decomposition */
    {"\xf0\x91\xa4\xb5\xf0\x91\xa4\xb0",
     "\xf0\x91\xa4\xb5\xf0\x91\xa4\xb0"}, /* U+11935 U+11930: Unicode 13, unknown */
    {"a\u1df6\u0301", "a\u1df6\u0301"},   /* U+1DF6: Unicode 10 mark, class 0 for the reference */
    {"\u0301a", "\u0301a"},
    {"Hello", "Hello"},
    {"\ufb01", "\ufb01"}, /* compatibility only: NFC keeps it */
    {"\u00c5", "\u00c5"},
};

static void test_nfc(void) {
    for (size_t c = 0; c < sizeof nfc_cases / sizeof nfc_cases[0]; c++) {
        const char *in = nfc_cases[c].in, *want = nfc_cases[c].out;
        uint8_t *out;
        size_t ol;
        CHECK(qe_nfc((const uint8_t *)in, strlen(in), &out, &ol) == 0, "nfc case %zu: out of memory", c);
        CHECK(ol == strlen(want) && memcmp(out, want, ol) == 0, "nfc case %zu: got \"%.*s\", want \"%s\"", c,
              (int)ol, (const char *)out, want);
        /* The quick check may only say "already NFC" when it is. */
        if (qe_nfc_quick((const uint8_t *)in, strlen(in)))
            CHECK(strcmp(in, want) == 0, "nfc case %zu: quick check passed a text NFC changes", c);
        free(out);
    }
}

/* ---- encoding with the Qwen3 tokenizer ---------------------------------- */
static const struct {
    const char *in;
    int add_special, parse_special;
    int32_t ids[16]; /* END-terminated */
} enc_cases[] = {
    {" ", 0, 1, {220, END}},
    {"\n", 0, 1, {198, END}},
    {"Hello", 0, 1, {9707, END}},
    {" world", 0, 1, {1879, END}},
    {"Hello world", 1, 1, {9707, 1879, 151643, END}},
    {"", 0, 1, {END}},
    {"", 1, 1, {151643, END}},
    {"<|endoftext|>", 0, 1, {151643, END}},
    {"Hello<|im_start|>x", 0, 1, {9707, 151644, 87, END}},
    {"naïve café", 0, 1, {3376, 37572, 586, 51950, END}},
    {"\u212b", 0, 1, {144044, END}}, /* NFC first: the Angstrom sign becomes U+00C5 */
    {"Hello world<|endoftext|> it'S", 1, 1, {9707, 1879, 151643, 432, 13272, 151643, END}},
    {"a\u0301 b  \n\n x", 1, 1, {1953, 293, 18611, 856, 151643, END}},
};

static void check_ids(const char *what, size_t c, const int32_t *got, size_t n, const int32_t *want) {
    size_t wn = 0;
    while (want[wn] != END) wn++;
    int same = n == wn && memcmp(got, want, n * sizeof *got) == 0;
    CHECK(same, "%s case %zu: got %zu ids, want %zu (first got %d)", what, c, n, wn, n ? got[0] : -1);
}

static void test_encode(const qembed_tokenizer *tok) {
    for (size_t c = 0; c < sizeof enc_cases / sizeof enc_cases[0]; c++) {
        qembed_encode_options o = qembed_encode_default_options();
        o.add_special_tokens = enc_cases[c].add_special;
        o.parse_special = enc_cases[c].parse_special;
        int32_t *ids;
        size_t n;
        qembed_error err;
        qembed_status s =
            qembed_tokenizer_encode(tok, enc_cases[c].in, strlen(enc_cases[c].in), &o, &ids, &n, &err);
        CHECK(s == QEMBED_OK, "encode case %zu: %s", c, err.message);
        if (s == QEMBED_OK) check_ids("encode", c, ids, n, enc_cases[c].ids);
        qembed_free(ids);
    }
    /* parse_special = 0: the special token is text, and is not one id. */
    qembed_encode_options o = qembed_encode_default_options();
    o.parse_special = 0;
    o.add_special_tokens = 0;
    int32_t *ids;
    size_t n;
    qembed_error err;
    CHECK(qembed_tokenizer_encode(tok, "<|endoftext|>", 13, &o, &ids, &n, &err) == QEMBED_OK, "%s",
          err.message);
    CHECK(n > 1, "parse_special=0 gave %zu ids for <|endoftext|>", n);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] < 151643, "parse_special=0 produced added id %d", ids[i]);
    qembed_free(ids);
    /* Default options when opts is NULL: the post-processor runs. */
    CHECK(qembed_tokenizer_encode(tok, "Hello", 5, NULL, &ids, &n, &err) == QEMBED_OK, "%s", err.message);
    CHECK(n == 2 && ids[0] == 9707 && ids[1] == 151643, "NULL options: got %zu ids", n);
    qembed_free(ids);
}

/* ---- byte-level mapping and vocabulary lookups ------------------------- */
static void test_byte_level(const qembed_tokenizer *tok) {
    CHECK(qembed_tokenizer_token_to_id(tok, "\xc4\xa0") == 220, "\"\\u0120\" (space) should be id 220");
    CHECK(qembed_tokenizer_token_to_id(tok, "\xc4\x8a") == 198, "\"\\u010a\" (newline) should be id 198");
    CHECK(qembed_tokenizer_token_to_id(tok, "\xc3\xbf") == 187, "\"\\u00ff\" (byte 0xFF) should be id 187");
    CHECK(qembed_tokenizer_token_to_id(tok, "<|endoftext|>") == 151643, "<|endoftext|>");
    CHECK(qembed_tokenizer_token_to_id(tok, "<think>") == 151667, "<think>");
    CHECK(qembed_tokenizer_token_to_id(tok, "no-such-token-qembed") == -1, "absent token");
    CHECK(qembed_tokenizer_n_vocab(tok) == 151669, "n_vocab %zu", qembed_tokenizer_n_vocab(tok));
    /* Every byte alone encodes to its byte-level token and decodes back. */
    for (int b = 1; b < 128; b++) {
        char in[2] = {(char)b, 0};
        int32_t *ids;
        size_t n;
        char *out;
        size_t ol;
        qembed_error err;
        qembed_encode_options o = qembed_encode_default_options();
        o.add_special_tokens = 0;
        CHECK(qembed_tokenizer_encode(tok, in, 1, &o, &ids, &n, &err) == QEMBED_OK && n == 1, "byte %d", b);
        CHECK(qembed_tokenizer_decode(tok, ids, n, 0, &out, &ol, &err) == QEMBED_OK && ol == 1 &&
                  out[0] == in[0],
              "byte %d does not decode back", b);
        qembed_free(ids);
        qembed_free(out);
    }
}

/* ---- decoding ----------------------------------------------------------- */
static const char *roundtrip_cases[] = {
    "Hello world",
    "  leading and trailing  ",
    "tabs\tand\nnewlines\r\n",
    "\xe4\xb8\xad\xe6\x96\x87",
    "emoji \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",
    "\u00e9\u00e8",
    "code: if (a != b) { return; }",
    "",
    "<|im_start|>user<|im_end|>",
};

/* Raw bytes (as byte-level tokens) -> text the reference's lossy decoding gives. */
static const struct {
    const char *bytes, *want;
} lossy_cases[] = {
    {"\xe4\xb8\xad", "\xe4\xb8\xad"},
    {"\xe4\xb8", "\xef\xbf\xbd"},
    {"\xe4\xb8"
     "a",
     "\xef\xbf\xbd"
     "a"},
    {"\xf0\x80", "\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"a\xff"
     "b",
     "a\xef\xbf\xbd"
     "b"},
    {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xf0\x9f\x91", "\xef\xbf\xbd"},
};

static int32_t byte_token(const qembed_tokenizer *tok, unsigned b) {
    /* GPT-2's bytes_to_unicode */
    unsigned cp = b, n = 0;
    int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    if (!printable) {
        for (unsigned x = 0; x < b; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174)) n++;
        cp = 256 + n;
    }
    char s[3];
    if (cp < 0x80) {
        s[0] = (char)cp;
        s[1] = 0;
    } else {
        s[0] = (char)(0xC0 | (cp >> 6));
        s[1] = (char)(0x80 | (cp & 0x3F));
        s[2] = 0;
    }
    return qembed_tokenizer_token_to_id(tok, s);
}

static void test_decode(const qembed_tokenizer *tok) {
    qembed_error err;
    for (size_t c = 0; c < sizeof roundtrip_cases / sizeof roundtrip_cases[0]; c++) {
        const char *in = roundtrip_cases[c];
        qembed_encode_options o = qembed_encode_default_options();
        o.add_special_tokens = 0;
        int32_t *ids;
        size_t n, ol;
        char *out;
        CHECK(qembed_tokenizer_encode(tok, in, strlen(in), &o, &ids, &n, &err) == QEMBED_OK, "%s",
              err.message);
        CHECK(qembed_tokenizer_decode(tok, ids, n, 0, &out, &ol, &err) == QEMBED_OK, "%s", err.message);
        CHECK(ol == strlen(in) && strcmp(out, in) == 0, "round trip %zu: got \"%s\"", c, out);
        qembed_free(ids);
        qembed_free(out);
    }
    for (size_t c = 0; c < sizeof lossy_cases / sizeof lossy_cases[0]; c++) {
        const char *b = lossy_cases[c].bytes;
        int32_t ids[16];
        size_t n = strlen(b);
        for (size_t i = 0; i < n; i++) ids[i] = byte_token(tok, (unsigned char)b[i]);
        char *out;
        size_t ol;
        CHECK(qembed_tokenizer_decode(tok, ids, n, 0, &out, &ol, &err) == QEMBED_OK, "%s", err.message);
        CHECK(ol == strlen(lossy_cases[c].want) && memcmp(out, lossy_cases[c].want, ol) == 0,
              "lossy case %zu: got %zu bytes", c, ol);
        qembed_free(out);
    }
    int32_t sp[] = {9707, 151643, 1879, 151644};
    char *out;
    size_t ol;
    CHECK(qembed_tokenizer_decode(tok, sp, 4, 1, &out, &ol, &err) == QEMBED_OK &&
              strcmp(out, "Hello world") == 0,
          "skip_special_tokens");
    qembed_free(out);
    CHECK(qembed_tokenizer_decode(tok, sp, 4, 0, &out, &ol, &err) == QEMBED_OK &&
              strcmp(out, "Hello<|endoftext|> world<|im_start|>") == 0,
          "special tokens kept");
    qembed_free(out);
    int32_t bad[] = {1, 151669};
    CHECK(qembed_tokenizer_decode(tok, bad, 2, 0, &out, &ol, &err) == QEMBED_ERR_INVALID_ARGUMENT &&
              strstr(err.message, "index 1"),
          "out-of-range id: %s", err.message);
    CHECK(qembed_tokenizer_decode(tok, NULL, 0, 0, &out, &ol, &err) == QEMBED_OK && ol == 0 && out[0] == 0,
          "empty decode");
    qembed_free(out);
}

/* ---- UTF-8 errors ------------------------------------------------------- */
static const struct {
    const char *in;
    size_t len;
    const char *offset_text;
} utf8_cases[] = {
    {"ab\xff"
     "cd",
     5, "byte offset 2"},
    {"\xe4\xb8", 2, "byte offset 0"},
    {"ok \xc0\x80", 5, "byte offset 3"},
    {"\xed\xa0\x80", 3, "byte offset 0"},
    {"0123456789\xf4\x90\x80\x80", 14, "byte offset 10"},
    {"x\x80", 2, "byte offset 1"},
};

static void test_utf8_errors(const qembed_tokenizer *tok) {
    for (size_t c = 0; c < sizeof utf8_cases / sizeof utf8_cases[0]; c++) {
        int32_t *ids = (int32_t *)1;
        size_t n = 7;
        qembed_error err;
        qembed_status s =
            qembed_tokenizer_encode(tok, utf8_cases[c].in, utf8_cases[c].len, NULL, &ids, &n, &err);
        CHECK(s == QEMBED_ERR_INVALID_UTF8 && err.code == s &&
                  strstr(err.message, utf8_cases[c].offset_text) && ids == NULL && n == 0,
              "utf8 case %zu: status %d message \"%s\"", c, (int)s, err.message);
    }
}

/* ---- synthetic tokenizer files: merges and load errors ------------------ */
static const char *write_tmp(const char *json) {
    static char path[256];
    snprintf(path, sizeof path, "/tmp/qembed-tok-unit-%d.json", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    fputs(json, f);
    fclose(f);
    return path;
}

#define TINY_HEAD                                                                                \
    "{\"added_tokens\":[],\"normalizer\":null,"                                                  \
    "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}," \
    "\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},"                              \
    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"bc\":4,\"abc\":5,\"aa\":6},"

static const struct {
    const char *merges, *in;
    int32_t ids[8];
} merge_cases[] = {
    {"[[\"b\",\"c\"],[\"a\",\"b\"]]", "abc", {0, 4, END}}, /* lower rank first */
    {"[[\"a\",\"b\"],[\"b\",\"c\"]]", "abc", {3, 2, END}},
    {"[\"b c\",\"a b\"]", "abc", {0, 4, END}}, /* legacy "a b" strings */
    {"[[\"b\",\"c\"],[\"a\",\"bc\"]]", "abc", {5, END}},
    {"[[\"a\",\"a\"]]", "aaa", {6, 0, END}}, /* ties: leftmost first */
    {"[[\"a\",\"a\"]]", "aaaa", {6, 6, END}},
    {"[]", "cab", {2, 0, 1, END}},
    {"[[\"a\",\"b\"]]", "abxab", {3, 3, END}}, /* 'x' not in vocab, no unk: dropped */
};

static void test_merges(void) {
    for (size_t c = 0; c < sizeof merge_cases / sizeof merge_cases[0]; c++) {
        char json[1024];
        snprintf(json, sizeof json, TINY_HEAD "\"merges\":%s}}", merge_cases[c].merges);
        const char *p = write_tmp(json);
        qembed_tokenizer *t;
        qembed_error err;
        qembed_status s = qembed_tokenizer_load(p, &t, &err);
        CHECK(s == QEMBED_OK, "merge case %zu: load: %s", c, err.message);
        if (s != QEMBED_OK) continue;
        int32_t *ids;
        size_t n;
        CHECK(qembed_tokenizer_encode(t, merge_cases[c].in, strlen(merge_cases[c].in), NULL, &ids, &n,
                                      &err) == QEMBED_OK,
              "%s", err.message);
        check_ids("merge", c, ids, n, merge_cases[c].ids);
        qembed_free(ids);
        qembed_tokenizer_free(t);
        unlink(p);
    }
}

static const struct {
    const char *json;
    qembed_status code;
    const char *words; /* the message must contain this */
} load_cases[] = {
    {"{not json", QEMBED_ERR_MODEL_FORMAT, "not valid JSON"},
    {TINY_HEAD "\"merges\":[[\"a\",\"x\"]]}}", QEMBED_ERR_MODEL_FORMAT, "merges[0]"},
    {TINY_HEAD "\"merges\":[[\"c\",\"c\"]]}}", QEMBED_ERR_MODEL_FORMAT, "merged token"},
    {TINY_HEAD "\"merges\":[42]}}", QEMBED_ERR_MODEL_FORMAT, "merges[0]"},
    {"{\"normalizer\":{\"type\":\"Lowercase\"},\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"use_regex\":false}"
     ","
     "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
     QEMBED_ERR_UNSUPPORTED, "normalizer type \"Lowercase\""},
    {"{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"NFKD\"}]},"
     "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"use_regex\":false},"
     "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
     QEMBED_ERR_UNSUPPORTED, "normalizer.normalizers[1]"},
    {"{\"pre_tokenizer\":{\"type\":\"Metaspace\"},\"decoder\":{\"type\":\"ByteLevel\"},"
     "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
     QEMBED_ERR_UNSUPPORTED, "Metaspace"},
    {"{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"use_regex\":false},\"decoder\":{\"type\":\"ByteLevel\"},"
     "\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}",
     QEMBED_ERR_UNSUPPORTED, "WordPiece"},
    {"{\"added_tokens\":[{\"id\":1,\"content\":\"zz\",\"special\":true}],"
     "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"use_regex\":false},\"decoder\":{\"type\":\"ByteLevel\"},"
     "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[]}}",
     QEMBED_ERR_MODEL_FORMAT, "reuses id 1"},
    {"{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"use_regex\":false},\"decoder\":{\"type\":\"ByteLevel\"},"
     "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]}}",
     QEMBED_ERR_MODEL_FORMAT, "model.vocab: not a"},
};

static void test_load_errors(void) {
    for (size_t c = 0; c < sizeof load_cases / sizeof load_cases[0]; c++) {
        const char *p = write_tmp(load_cases[c].json);
        qembed_tokenizer *t = (qembed_tokenizer *)1;
        qembed_error err;
        memset(&err, 0, sizeof err);
        qembed_status s = qembed_tokenizer_load(p, &t, &err);
        CHECK(s == load_cases[c].code && t == NULL && strstr(err.message, load_cases[c].words),
              "load case %zu: status %d, message \"%s\"", c, (int)s, err.message);
        if (s == QEMBED_OK) qembed_tokenizer_free(t);
        unlink(p);
    }
    qembed_tokenizer *t;
    qembed_error err;
    CHECK(qembed_tokenizer_load("/nonexistent/qembed/tokenizer.json", &t, &err) == QEMBED_ERR_IO &&
              strstr(err.message, "/nonexistent/qembed"),
          "missing file: %s", err.message);
    qembed_tokenizer_free(NULL);
}

/* A directory with tokenizer.json and a tokenizer_config.json that agrees,
 * then one that does not. */
static void test_dir_and_config(void) {
    char dir[128], path[256];
    snprintf(dir, sizeof dir, "/tmp/qembed-tok-unit-dir-%d", (int)getpid());
    if (mkdir(dir, 0700) != 0) {
        CHECK(0, "mkdir %s", dir);
        return;
    }
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    fputs(
        "{\"added_tokens\":[{\"id\":7,\"content\":\"<s>\",\"special\":true,\"normalized\":false}],"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"use_regex\":false},\"decoder\":{\"type\":\"ByteLevel\"},"
        "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\"}},"
        "{\"Sequence\":{\"id\":\"A\"}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[7]}}},"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[]}}",
        f);
    fclose(f);
    char cfg[256];
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    for (int bad = 0; bad < 2; bad++) {
        f = fopen(cfg, "wb");
        fprintf(f, "{\"added_tokens_decoder\":{\"7\":{\"content\":\"%s\"}}}", bad ? "<x>" : "<s>");
        fclose(f);
        qembed_tokenizer *t = NULL;
        qembed_error err;
        qembed_status s = qembed_tokenizer_load(dir, &t, &err);
        if (!bad) {
            CHECK(s == QEMBED_OK, "directory load: %s", err.message);
            int32_t *ids;
            size_t n;
            if (s == QEMBED_OK && qembed_tokenizer_encode(t, "ab", 2, NULL, &ids, &n, &err) == QEMBED_OK) {
                CHECK(n == 3 && ids[0] == 7 && ids[1] == 0 && ids[2] == 1, "template prefix: got %zu ids", n);
                qembed_free(ids);
            }
        } else {
            CHECK(s == QEMBED_ERR_MODEL_FORMAT && strstr(err.message, "added_tokens_decoder"),
                  "conflicting tokenizer_config.json: %s", err.message);
        }
        qembed_tokenizer_free(t);
    }
    unlink(cfg);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s tokenizer.json (Qwen3)\n", argv[0]);
        return 2;
    }
    qembed_tokenizer *tok;
    qembed_error err;
    if (qembed_tokenizer_load(argv[1], &tok, &err) != QEMBED_OK) {
        printf("FAIL: load %s: %s\n", argv[1], err.message);
        return 1;
    }
    test_split();
    test_nfc();
    test_encode(tok);
    test_byte_level(tok);
    test_decode(tok);
    test_utf8_errors(tok);
    test_merges();
    test_load_errors();
    test_dir_and_config();
    qembed_tokenizer_free(tok);
    if (failures) {
        printf("FAIL: %d checks failed\n", failures);
        return 1;
    }
    printf("PASS\n");
    return 0;
}
