/* Engine tests through the public API on the shared tiny model:
 * golden vectors from token ids, batching, threads, limits, errors, the
 * output guard. Usage:
 *   test_engine MODEL_DIR GOLDEN_JSON BROKEN_ZERO_DIR BROKEN_INF_DIR */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qembed.h"

#include "check.h"
#include "cosine.h"

static const char *model_dir, *golden_path, *broken_zero, *broken_inf;

static qembed_model *load_lim(const char *dir, int exact, int threads, size_t max_tokens) {
    qembed_model_params p = qembed_model_default_params();
    p.max_tokens = max_tokens;
    p.exact = exact;
    p.n_threads = threads;
    qembed_model *m = NULL;
    qembed_error e;
    qembed_status s = qembed_model_load(dir, &p, &m, &e);
    if (s != QEMBED_OK) {
        fprintf(stderr, "cannot load %s: %s\n", dir, e.message);
        exit(2);
    }
    return m;
}

static qembed_model *load(const char *dir, int exact, int threads) {
    return load_lim(dir, exact, threads, 0);
}

static qembed_ctx *ctx_of(const qembed_model *m, size_t max_batch) {
    qembed_ctx_params cp = qembed_ctx_default_params();
    cp.max_batch_tokens = max_batch;
    qembed_ctx *c = NULL;
    qembed_error e;
    if (qembed_ctx_create(m, &cp, &c, &e) != QEMBED_OK) {
        fprintf(stderr, "ctx: %s\n", e.message);
        exit(2);
    }
    return c;
}

static int hidden_of(const qembed_model *m) {
    qembed_model_info in;
    qembed_model_get_info(m, &in);
    return in.hidden_size;
}

/* ---- golden vectors from their token ids (independent of the tokenizer) ---- */
static void test_golden_ids(void) {
    FILE *f = fopen(golden_path, "rb");
    CHECK(f, "cannot open %s", golden_path);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    CHECK(fread(buf, 1, (size_t)n, f) == (size_t)n, "short read");
    buf[n] = '\0';
    fclose(f);
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(j, "cases");
    int nc = cJSON_GetArraySize(cases);
    CHECK(nc > 0, "no golden cases");
    if (nc <= 0) {
        cJSON_Delete(j);
        return;
    }
    int32_t **ids = calloc((size_t)nc, sizeof *ids);
    size_t *lens = calloc((size_t)nc, sizeof *lens);
    float **gold = calloc((size_t)nc, sizeof *gold);
    int dims = 0;
    for (int i = 0; i < nc; i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "token_ids");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, "embedding");
        lens[i] = (size_t)cJSON_GetArraySize(t);
        ids[i] = malloc(lens[i] * sizeof(int32_t));
        for (size_t k = 0; k < lens[i]; k++) ids[i][k] = cJSON_GetArrayItem(t, (int)k)->valueint;
        dims = cJSON_GetArraySize(e);
        gold[i] = malloc((size_t)dims * sizeof(float));
        for (int k = 0; k < dims; k++) gold[i][k] = (float)cJSON_GetArrayItem(e, k)->valuedouble;
    }
    cJSON_Delete(j);
    for (int exact = 0; exact < 2; exact++) {
        qembed_model *m = load(model_dir, exact, 2);
        CHECK(hidden_of(m) == dims, "hidden %d vs golden %d", hidden_of(m), dims);
        qembed_ctx *c = ctx_of(m, 0);
        float *out = malloc((size_t)nc * dims * sizeof(float));
        qembed_embed_options o = qembed_embed_default_options();
        qembed_error e;
        qembed_status s =
            qembed_ctx_embed_tokens(c, (const int32_t *const *)ids, lens, (size_t)nc, &o, out, &e);
        CHECK(s == QEMBED_OK, "%s", e.message);
        for (int i = 0; i < nc && s == QEMBED_OK; i++) {
            double cs = cosine(out + (size_t)i * dims, gold[i], dims);
            CHECK(cs >= 0.9999, "golden case %d (exact=%d): cosine %.7f", i, exact, cs);
            if (exact) CHECK(cs >= 0.99999, "golden case %d exact: cosine %.7f", i, cs);
        }
        free(out);
        qembed_ctx_free(c);
        qembed_model_free(m);
    }
    for (int i = 0; i < nc; i++) {
        free(ids[i]);
        free(gold[i]);
    }
    free(ids);
    free(lens);
    free(gold);
}

/* A text of about n_words words, deterministic. */
static char *words(int n_words, unsigned seed) {
    static const char *const w[] = {"river",     "stone", "quantum", "bread",   "北京", "the",   "of",
                                    "embedding", "🙂",  "naïve",   "code();", "42",   "zebra", "Über"};
    char *s = malloc((size_t)n_words * 16 + 1);
    size_t k = 0;
    for (int i = 0; i < n_words; i++) {
        seed = seed * 1103515245u + 12345u;
        const char *x = w[(seed >> 16) % (sizeof w / sizeof w[0])];
        if (i) s[k++] = ' ';
        memcpy(s + k, x, strlen(x));
        k += strlen(x);
    }
    s[k] = '\0';
    return s;
}

/* ---- batched vs one at a time; small passes; threads ---- */
static void test_batching_and_threads(void) {
    enum { N = 7 };
    char *texts[N];
    int sizes[N] = {1, 3, 40, 2, 150, 9, 400};
    for (int i = 0; i < N; i++) texts[i] = words(sizes[i], 7u + (unsigned)i);
    for (int exact = 0; exact < 2; exact++) {
        qembed_model *m1 = load(model_dir, exact, 1);
        qembed_model *m2 = load(model_dir, exact, 2);
        int H = hidden_of(m1);
        qembed_ctx *big = ctx_of(m2, 0);
        /* passes of at most 1100 tokens: the batch is split over several */
        qembed_model *m3 = load_lim(model_dir, exact, 2, 1024);
        qembed_ctx *small = ctx_of(m3, 1100);
        qembed_ctx *one_thread = ctx_of(m1, 0);
        qembed_embed_options o = qembed_embed_default_options();
        float *batch = malloc((size_t)N * H * sizeof(float));
        float *batch1 = malloc((size_t)N * H * sizeof(float));
        float *single = malloc((size_t)H * sizeof(float));
        qembed_error e;
        CHECK(qembed_ctx_embed(big, (const char *const *)texts, NULL, N, &o, batch, &e) == QEMBED_OK, "%s",
              e.message);
        CHECK(qembed_ctx_embed(one_thread, (const char *const *)texts, NULL, N, &o, batch1, &e) == QEMBED_OK,
              "%s", e.message);
        for (int i = 0; i < N; i++) {
            CHECK(qembed_ctx_embed(small, (const char *const *)&texts[i], NULL, 1, &o, single, &e) ==
                      QEMBED_OK,
                  "%s", e.message);
            double cs = cosine(batch + (size_t)i * H, single, H);
            CHECK(cs >= 0.99999, "exact=%d input %d: batched vs alone cosine %.8f", exact, i, cs);
            cs = cosine(batch + (size_t)i * H, batch1 + (size_t)i * H, H);
            CHECK(cs >= 0.99999, "exact=%d input %d: 2 threads vs 1 cosine %.8f", exact, i, cs);
            double nn = 0;
            for (int k = 0; k < H; k++) nn += (double)batch[(size_t)i * H + k] * batch[(size_t)i * H + k];
            CHECK(fabs(nn - 1.0) < 1e-5, "input %d: norm^2 %.8f, expected 1", i, nn);
        }
        free(batch);
        free(batch1);
        free(single);
        qembed_ctx_free(big);
        qembed_ctx_free(small);
        qembed_ctx_free(one_thread);
        qembed_model_free(m3);
        qembed_model_free(m1);
        qembed_model_free(m2);
    }
    for (int i = 0; i < N; i++) free(texts[i]);
}

/* ---- more inputs than one pass takes (QE_MAX_SEQ_PER_PASS is 512) ---- */
static void test_many_inputs(void) {
    enum { N = 600 };
    qembed_model *m = load(model_dir, 0, 2);
    int H = hidden_of(m);
    qembed_ctx *c = ctx_of(m, 0);
    const char **texts = malloc(N * sizeof *texts);
    char(*buf)[16] = malloc(N * sizeof *buf);
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "item %d", i);
        texts[i] = buf[i];
    }
    float *all = malloc((size_t)N * H * sizeof(float)), *one = malloc((size_t)H * sizeof(float));
    qembed_embed_options o = qembed_embed_default_options();
    qembed_error e;
    CHECK(qembed_ctx_embed(c, texts, NULL, N, &o, all, &e) == QEMBED_OK, "%s", e.message);
    int probe[4] = {0, 511, 512, N - 1};
    for (int k = 0; k < 4; k++) {
        CHECK(qembed_ctx_embed(c, &texts[probe[k]], NULL, 1, &o, one, &e) == QEMBED_OK, "%s", e.message);
        CHECK(cosine(all + (size_t)probe[k] * H, one, H) >= 0.99999, "input %d of %d differs", probe[k], N);
    }
    free(all);
    free(one);
    free(texts);
    free(buf);
    qembed_ctx_free(c);
    qembed_model_free(m);
}

/* ---- pipeline: EOS, instruction, embed == embed_tokens(tokenize) ---- */
static void test_pipeline(void) {
    qembed_model *m = load(model_dir, 1, 2);
    int H = hidden_of(m);
    qembed_ctx *c = ctx_of(m, 0);
    qembed_embed_options o = qembed_embed_default_options();
    qembed_error e;
    int32_t *ids = NULL;
    size_t n = 0;

    CHECK(qembed_model_tokenize(m, "Hello world", 11, &o, &ids, &n, &e) == QEMBED_OK, "%s", e.message);
    CHECK(n == 3 && ids[0] == 9707 && ids[1] == 1879 && ids[2] == 151643,
          "Hello world -> %zu ids (expected 9707 1879 151643)", n);
    float *a = malloc((size_t)H * sizeof(float)), *b = malloc((size_t)H * sizeof(float));
    const char *t = "Hello world";
    CHECK(qembed_ctx_embed(c, &t, NULL, 1, &o, a, &e) == QEMBED_OK, "%s", e.message);
    const int32_t *const idp = ids;
    CHECK(qembed_ctx_embed_tokens(c, &idp, &n, 1, &o, b, &e) == QEMBED_OK, "%s", e.message);
    CHECK(cosine(a, b, H) > 0.9999999, "embed vs embed_tokens(tokenize) differ");
    qembed_free(ids);

    /* the literal <|endoftext|> at the end: parsed as the special token, then
     * the post-processor appends another one (as the reference does) */
    const char *lit = "done<|endoftext|>";
    CHECK(qembed_model_tokenize(m, lit, strlen(lit), &o, &ids, &n, &e) == QEMBED_OK, "%s", e.message);
    CHECK(n >= 3 && ids[n - 1] == 151643 && ids[n - 2] == 151643,
          "literal EOS: expected two 151643 at the end");
    qembed_free(ids);
    qembed_embed_options plain = o;
    plain.parse_special = 0;
    CHECK(qembed_model_tokenize(m, lit, strlen(lit), &plain, &ids, &n, &e) == QEMBED_OK, "%s", e.message);
    CHECK(n >= 3 && ids[n - 1] == 151643 && ids[n - 2] != 151643, "parse_special=0: one 151643 at the end");
    for (size_t k = 0; k + 1 < n; k++) CHECK(ids[k] != 151643, "parse_special=0: 151643 inside at %zu", k);
    qembed_free(ids);

    /* instruction = tokenizing the formatted text */
    qembed_embed_options io = o;
    io.instruction = "Given a query, retrieve passages";
    const char *q = "what is rope?";
    const char *full = "Instruct: Given a query, retrieve passages\nQuery:what is rope?";
    int32_t *ids2 = NULL;
    size_t n2 = 0;
    CHECK(qembed_model_tokenize(m, q, strlen(q), &io, &ids, &n, &e) == QEMBED_OK, "%s", e.message);
    CHECK(qembed_model_tokenize(m, full, strlen(full), &o, &ids2, &n2, &e) == QEMBED_OK, "%s", e.message);
    CHECK(n == n2 && memcmp(ids, ids2, n * sizeof *ids) == 0, "instruction formatting differs");
    qembed_free(ids);
    qembed_free(ids2);

    /* Matryoshka: dims = renormalised prefix of the raw pooled vector */
    qembed_embed_options raw = o;
    raw.normalize = 0;
    qembed_embed_options d32 = o;
    d32.dims = 32;
    float *m32 = malloc(32 * sizeof(float));
    CHECK(qembed_ctx_embed(c, &t, NULL, 1, &raw, a, &e) == QEMBED_OK, "%s", e.message);
    CHECK(qembed_ctx_embed(c, &t, NULL, 1, &d32, m32, &e) == QEMBED_OK, "%s", e.message);
    double ss = 0;
    for (int k = 0; k < 32; k++) ss += (double)a[k] * a[k];
    for (int k = 0; k < 32; k++)
        CHECK(fabs(m32[k] - a[k] / sqrt(ss)) < 1e-6, "dims 32: value %d %.7f vs %.7f", k, m32[k],
              a[k] / sqrt(ss));
    free(m32);

    /* bad dims */
    int bad[] = {31, H + 1, -1, 1};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        qembed_embed_options bo = o;
        bo.dims = bad[k];
        CHECK(qembed_ctx_embed(c, &t, NULL, 1, &bo, a, &e) == QEMBED_ERR_INVALID_ARGUMENT, "dims %d accepted",
              bad[k]);
        CHECK(strstr(e.message, "dims") != NULL, "message does not name dims: %s", e.message);
    }
    free(a);
    free(b);
    qembed_ctx_free(c);
    qembed_model_free(m);
}

/* ---- limits: N-1, N, N+1 tokens; empty; invalid UTF-8; bad ids ---- */
static void test_limits_and_errors(void) {
    qembed_model *m = load(model_dir, 0, 2);
    int H = hidden_of(m);
    qembed_ctx *c = ctx_of(m, 0);
    qembed_embed_options o = qembed_embed_default_options();
    qembed_error e;
    char *text = words(30, 99u);
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(qembed_model_tokenize(m, text, strlen(text), &o, &ids, &n, &e) == QEMBED_OK, "%s", e.message);
    float *v = malloc((size_t)H * sizeof(float)), *w = malloc((size_t)H * sizeof(float));
    const char *tp = text;

    qembed_embed_options lim = o;
    lim.max_tokens = n + 1; /* the input has N-1 tokens */
    CHECK(qembed_ctx_embed(c, &tp, NULL, 1, &lim, v, &e) == QEMBED_OK, "N-1: %s", e.message);
    lim.max_tokens = n; /* exactly N */
    CHECK(qembed_ctx_embed(c, &tp, NULL, 1, &lim, v, &e) == QEMBED_OK, "N: %s", e.message);
    lim.max_tokens = n - 1; /* N+1 */
    const char *texts2[2] = {"short", text};
    float *two = malloc(2 * (size_t)H * sizeof(float));
    qembed_status s = qembed_ctx_embed(c, texts2, NULL, 2, &lim, two, &e);
    CHECK(s == QEMBED_ERR_INPUT_TOO_LONG, "N+1 accepted (status %d)", s);
    char want[64];
    snprintf(want, sizeof want, "input 1 has %zu tokens", n);
    CHECK(strstr(e.message, want) != NULL, "message '%s' lacks '%s'", e.message, want);
    free(two);
    /* truncation keeps the first N-2 tokens, then <|endoftext|> */
    lim.truncate = 1;
    int32_t *tids = NULL;
    size_t tn = 0;
    CHECK(qembed_model_tokenize(m, text, strlen(text), &lim, &tids, &tn, &e) == QEMBED_OK, "%s", e.message);
    CHECK(tn == n - 1 && tids[tn - 1] == 151643 && memcmp(tids, ids, (tn - 1) * sizeof *ids) == 0,
          "truncation gave %zu ids", tn);
    CHECK(qembed_ctx_embed(c, &tp, NULL, 1, &lim, v, &e) == QEMBED_OK, "truncate: %s", e.message);
    const int32_t *const tp2 = tids;
    CHECK(qembed_ctx_embed_tokens(c, &tp2, &tn, 1, &o, w, &e) == QEMBED_OK, "%s", e.message);
    CHECK(cosine(v, w, H) > 0.999999, "truncated embedding differs from its ids' embedding");
    qembed_free(tids);
    /* left truncation keeps the last N-2 of the N-1 text tokens, then <|endoftext|>;
     * n_tokens_out gives the length before truncation */
    size_t full = 0;
    lim.truncation_direction = QEMBED_TRUNCATE_LEFT;
    lim.n_tokens_out = &full;
    CHECK(qembed_model_tokenize(m, text, strlen(text), &lim, &tids, &tn, &e) == QEMBED_OK, "%s", e.message);
    CHECK(tn == n - 1 && tids[tn - 1] == 151643 && memcmp(tids, ids + 1, (tn - 1) * sizeof *ids) == 0,
          "left truncation gave %zu ids, not the last %zu text tokens", tn, n - 2);
    CHECK(full == n, "n_tokens_out %zu, want %zu", full, n);
    CHECK(qembed_ctx_embed(c, &tp, NULL, 1, &lim, v, &e) == QEMBED_OK, "left: %s", e.message);
    const int32_t *const tp3 = tids;
    CHECK(qembed_ctx_embed_tokens(c, &tp3, &tn, 1, &o, w, &e) == QEMBED_OK, "%s", e.message);
    CHECK(cosine(v, w, H) > 0.999999, "left-truncated embedding differs from its ids' embedding");
    qembed_free(tids);
    /* caller's ids, cut on the left as they are */
    size_t counts[2] = {0, 0};
    const int32_t *idp[2] = {ids, ids};
    size_t idn[2] = {3, n};
    lim.n_tokens_out = counts;
    CHECK(qembed_ctx_embed_tokens(c, idp, idn, 2, &lim, two = malloc(2 * (size_t)H * sizeof(float)), &e) ==
              QEMBED_OK,
          "%s", e.message);
    const int32_t *last = ids + 1; /* n ids cut to max_tokens = n - 1 */
    size_t lastn = n - 1;
    CHECK(qembed_ctx_embed_tokens(c, &last, &lastn, 1, &o, w, &e) == QEMBED_OK, "%s", e.message);
    CHECK(counts[0] == 3 && counts[1] == n, "token counts %zu %zu, want 3 %zu", counts[0], counts[1], n);
    CHECK(cosine(two + H, w, H) > 0.999999, "ids cut on the left differ from the last ids' embedding");
    free(two);
    /* the count is given for the input that is too long */
    lim.truncate = 0;
    full = 0;
    lim.n_tokens_out = &full;
    CHECK(qembed_model_tokenize(m, text, strlen(text), &lim, &tids, &tn, &e) == QEMBED_ERR_INPUT_TOO_LONG,
          "too long accepted");
    CHECK(full == n, "n_tokens_out %zu for the too-long input, want %zu", full, n);
    lim.truncate = 1;
    lim.truncation_direction = 7;
    CHECK(qembed_model_tokenize(m, text, strlen(text), &lim, &tids, &tn, &e) == QEMBED_ERR_INVALID_ARGUMENT,
          "truncation_direction 7 accepted");
    lim.truncation_direction = QEMBED_TRUNCATE_RIGHT;
    lim.n_tokens_out = NULL;
    /* above max_position_embeddings */
    lim.max_tokens = 1u << 20;
    CHECK(qembed_ctx_embed(c, &tp, NULL, 1, &lim, v, &e) == QEMBED_ERR_INVALID_ARGUMENT,
          "max_tokens above max_position_embeddings accepted");

    /* empty text, named by index; empty batch */
    const char *with_empty[3] = {"a", "", "b"};
    CHECK(qembed_ctx_embed(c, with_empty, NULL, 3, &o, v, &e) == QEMBED_ERR_EMPTY_INPUT, "empty accepted");
    CHECK(strstr(e.message, "input 1") != NULL, "empty: message '%s' lacks the index", e.message);
    CHECK(qembed_ctx_embed(c, with_empty, NULL, 0, &o, v, &e) == QEMBED_ERR_EMPTY_INPUT,
          "empty batch accepted");

    /* invalid UTF-8 */
    const char *bad_utf8[2] = {"ok", "caf\xc3("};
    CHECK(qembed_ctx_embed(c, bad_utf8, NULL, 2, &o, v, &e) == QEMBED_ERR_INVALID_UTF8, "bad UTF-8 accepted");
    CHECK(strstr(e.message, "input 1") != NULL, "UTF-8: message '%s' lacks the index", e.message);

    /* ids outside the vocabulary; empty ids */
    int32_t bad_ids[3] = {5, 151669, 151643};
    const int32_t *const bp = bad_ids;
    size_t bn = 3;
    CHECK(qembed_ctx_embed_tokens(c, &bp, &bn, 1, &o, v, &e) == QEMBED_ERR_INVALID_ARGUMENT,
          "bad id accepted");
    CHECK(strstr(e.message, "151669") != NULL, "bad id: message '%s'", e.message);
    bn = 0;
    CHECK(qembed_ctx_embed_tokens(c, &bp, &bn, 1, &o, v, &e) == QEMBED_ERR_EMPTY_INPUT, "no ids accepted");

    /* NULLs */
    qembed_ctx *nc = NULL;
    CHECK(qembed_ctx_create(NULL, NULL, &nc, &e) == QEMBED_ERR_INVALID_ARGUMENT && !nc,
          "NULL model accepted");
    qembed_model *nm = NULL;
    CHECK(qembed_model_load("/nonexistent/qembed-model", NULL, &nm, &e) != QEMBED_OK && !nm,
          "missing dir loaded");
    qembed_ctx_free(NULL);
    qembed_model_free(NULL);

    qembed_free(ids);
    free(text);
    free(v);
    free(w);
    qembed_ctx_free(c);
    qembed_model_free(m);
}

/* ---- a long input: several attention tiles, packed with a short one ---- */
static void test_long_input(void) {
    qembed_model *m = load(model_dir, 1, 2);
    int H = hidden_of(m);
    qembed_ctx *c = ctx_of(m, 0);
    qembed_embed_options o = qembed_embed_default_options();
    qembed_error e;
    char *lng = words(1500, 3u);
    const char *texts[2] = {"x", lng};
    float *both = malloc(2 * (size_t)H * sizeof(float)), *alone = malloc((size_t)H * sizeof(float));
    CHECK(qembed_ctx_embed(c, texts, NULL, 2, &o, both, &e) == QEMBED_OK, "%s", e.message);
    CHECK(qembed_ctx_embed(c, &texts[1], NULL, 1, &o, alone, &e) == QEMBED_OK, "%s", e.message);
    CHECK(cosine(both + H, alone, H) >= 0.99999, "long input batched vs alone");
    free(lng);
    free(both);
    free(alone);
    qembed_ctx_free(c);
    qembed_model_free(m);
}

/* ---- output guard: a model whose numbers go bad gives an error ---- */
static void test_output_guard(void) {
    const char *dirs[2] = {broken_zero, broken_inf};
    for (int k = 0; k < 2; k++) {
        qembed_model *m = load(dirs[k], 0, 1);
        int H = hidden_of(m);
        qembed_ctx *c = ctx_of(m, 0);
        qembed_embed_options o = qembed_embed_default_options();
        qembed_error e;
        float *v = malloc(2 * (size_t)H * sizeof(float));
        const char *texts[2] = {"first", "second"};
        qembed_status s = qembed_ctx_embed(c, texts, NULL, 2, &o, v, &e);
        CHECK(s == QEMBED_ERR_NUMERIC, "%s: status %d, expected QEMBED_ERR_NUMERIC", dirs[k], s);
        CHECK(strstr(e.message, "input 0") != NULL, "guard message '%s' lacks the index", e.message);
        free(v);
        qembed_ctx_free(c);
        qembed_model_free(m);
    }
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: test_engine MODEL_DIR GOLDEN_JSON BROKEN_ZERO_DIR BROKEN_INF_DIR\n");
        return 2;
    }
    model_dir = argv[1];
    golden_path = argv[2];
    broken_zero = argv[3];
    broken_inf = argv[4];
    test_golden_ids();
    test_batching_and_threads();
    test_many_inputs();
    test_pipeline();
    test_limits_and_errors();
    test_long_input();
    test_output_guard();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("engine tests passed\n");
    return 0;
}
