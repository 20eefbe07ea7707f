/* Structs that grow ("Structs that grow" in qembed.h): every params/options
 * struct carries the size the caller was built with. Checked here:
 *  - the inline constructors set size = sizeof, qembed_params_init writes
 *    only the caller's bytes;
 *  - a struct of an older size (a heap block of exactly that many bytes, so
 *    ASan catches any read past it) is accepted and the fields appended
 *    since take their defaults: with a test layout v1 -> v2 through the
 *    library's own copier, and through the public API at each struct's first
 *    released size (today its whole size; after fields are appended, an
 *    older layout);
 *  - 0, garbage and a size from a newer header are refused by every entry
 *    point with a message naming the struct.
 *   test_params TINY_MODEL_DIR SCRATCH_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/params.h"
#include "qembed.h"

/* A struct at release 1 and after a field was appended. */
typedef struct v1 {
    size_t size;
    int a;
} v1;
typedef struct v2 {
    size_t size;
    int a;
    double b;
} v2;

static void test_mechanism(void) {
    v1 *old = malloc(sizeof *old); /* exactly v1's bytes */
    old->size = sizeof *old;
    old->a = 7;
    v2 d = {0, 1, 2.5};
    const size_t sizes[] = {QE_SIZE_UPTO(v2, a), sizeof(v2)};
    CHECK(sizes[0] == sizeof(v1), "the v1 size from the v2 layout: %zu", sizes[0]);
    qembed_error e = {0};
    CHECK(qe_params_copy(&d, sizeof d, old, sizes, 2, "v2", &e) == QEMBED_OK, "%s", e.message);
    CHECK(d.a == 7 && d.b == 2.5 && d.size == sizeof d, "v1 fields taken, b keeps its default: %d %g", d.a,
          d.b);
    old->size = 12;
    CHECK(qe_params_copy(&d, sizeof d, old, sizes, 2, "v2", &e) == QEMBED_ERR_INVALID_ARGUMENT &&
              strstr(e.message, "v2: size 12"),
          "garbage size refused: %s", e.message);
    free(old);
    CHECK(qe_params_copy(&d, sizeof d, NULL, sizes, 2, "v2", &e) == QEMBED_OK, "NULL: defaults");

    /* qembed_params_init writes only the bytes it is told, zeroes the rest */
    unsigned char buf[512];
    memset(buf, 0xAB, sizeof buf);
    qembed_params_init(QEMBED_PARAMS_MODEL, buf, 16);
    size_t sz;
    memcpy(&sz, buf, sizeof sz);
    CHECK(sz == 16 && buf[16] == 0xAB, "init of 16 bytes: size %zu, byte 16 %02x", sz, buf[16]);
    memset(buf, 0xAB, sizeof buf);
    qembed_params_init(QEMBED_PARAMS_CTX, buf, sizeof(qembed_ctx_params) + 8);
    CHECK(buf[sizeof(qembed_ctx_params)] == 0 && buf[sizeof(qembed_ctx_params) + 8] == 0xAB,
          "a newer header's extra bytes are zeroed, nothing past them touched");
}

/* A heap copy of the first `size` bytes of a struct, its size field set. */
static void *old_copy(const void *s, size_t size) {
    void *p = malloc(size);
    memcpy(p, s, size);
    memcpy(p, &size, sizeof size);
    return p;
}

static int refused(qembed_status st, const qembed_error *e, const char *what) {
    return st == QEMBED_ERR_INVALID_ARGUMENT && strstr(e->message, what) && strstr(e->message, "size");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_params TINY_MODEL_DIR SCRATCH_DIR\n");
        return 2;
    }
    test_mechanism();
    const char *dir = argv[1];

    qembed_model_params mp = qembed_model_default_params();
    qembed_ctx_params cp = qembed_ctx_default_params();
    qembed_embed_options eo = qembed_embed_default_options();
    qembed_encode_options no = qembed_encode_default_options();
    qembed_split_params sp = qembed_split_default_params();
    CHECK(mp.size == sizeof mp && cp.size == sizeof cp && eo.size == sizeof eo && no.size == sizeof no &&
              sp.size == sizeof sp,
          "constructors set size = sizeof");
    CHECK(mp.max_batch_tokens == 16384 && mp.log_level == QEMBED_LOG_INFO && eo.normalize == 1 &&
              eo.parse_special == 1 && no.add_special_tokens == 1 && sp.log_level == QEMBED_LOG_INFO,
          "constructors give the library's defaults");
    mp.n_threads = 1;
    mp.log_fn = NULL;

    /* the first released size of each struct (the layout of this header's
     * first release with `size`); heap blocks of exactly that size */
    qembed_model_params *mp1 = old_copy(&mp, QE_SIZE_UPTO(qembed_model_params, no_verify));
    qembed_model *m = NULL;
    qembed_error e = {0};
    CHECK(qembed_model_load(dir, mp1, &m, &e) == QEMBED_OK, "model params of the first size: %s", e.message);
    free(mp1);
    if (!m) return 1;
    qembed_ctx_params *cp1 = old_copy(&cp, QE_SIZE_UPTO(qembed_ctx_params, max_batch_tokens));
    qembed_ctx *c = NULL;
    CHECK(qembed_ctx_create(m, cp1, &c, &e) == QEMBED_OK, "ctx params of the first size: %s", e.message);
    free(cp1);
    qembed_embed_options *eo1 = old_copy(&eo, QE_SIZE_UPTO(qembed_embed_options, parse_special));
    float ref[64], got[64];
    const char *text = "Hello world";
    CHECK(c && qembed_ctx_embed(c, &text, NULL, 1, &eo, ref, &e) == QEMBED_OK, "%s", e.message);
    CHECK(c && qembed_ctx_embed(c, &text, NULL, 1, eo1, got, &e) == QEMBED_OK &&
              !memcmp(ref, got, sizeof ref),
          "embed options of the first size: the same vector (%s)", e.message);
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(qembed_model_tokenize(m, text, strlen(text), eo1, &ids, &n, &e) == QEMBED_OK && n == 3,
          "tokenize with options of the first size: %s", e.message);
    qembed_free(ids);
    free(eo1);
    qembed_encode_options *no1 = old_copy(&no, QE_SIZE_UPTO(qembed_encode_options, parse_special));
    const qembed_tokenizer *tok = qembed_model_tokenizer(m);
    CHECK(qembed_tokenizer_encode(tok, text, strlen(text), no1, &ids, &n, &e) == QEMBED_OK && n == 3,
          "encode options of the first size: %s", e.message);
    qembed_free(ids);
    free(no1);

    /* garbage, zero (not from a constructor), a newer header's size */
    const size_t bad[] = {0, 3, 12345, 0};
    for (int i = 0; i < 4; i++) {
        size_t b = bad[i];
        qembed_model_params xm = mp;
        xm.size = i == 3 ? sizeof xm + 8 : b;
        qembed_model *m2 = NULL;
        CHECK(refused(qembed_model_load(dir, &xm, &m2, &e), &e, "qembed_model_params") && !m2,
              "model params size %zu: %s", xm.size, e.message);
        qembed_ctx_params xc = cp;
        xc.size = i == 3 ? sizeof xc + 8 : b;
        qembed_ctx *c2 = NULL;
        CHECK(refused(qembed_ctx_create(m, &xc, &c2, &e), &e, "qembed_ctx_params") && !c2,
              "ctx params size %zu: %s", xc.size, e.message);
        qembed_embed_options xe = eo;
        xe.size = i == 3 ? sizeof xe + 8 : b;
        CHECK(refused(qembed_ctx_embed(c, &text, NULL, 1, &xe, got, &e), &e, "qembed_embed_options"),
              "embed options size %zu: %s", xe.size, e.message);
        CHECK(refused(qembed_model_tokenize(m, text, 11, &xe, &ids, &n, &e), &e, "qembed_embed_options"),
              "tokenize options size %zu", xe.size);
        qembed_encode_options xn = no;
        xn.size = i == 3 ? sizeof xn + 8 : b;
        CHECK(refused(qembed_tokenizer_encode(tok, text, 11, &xn, &ids, &n, &e), &e, "qembed_encode_options"),
              "encode options size %zu: %s", xn.size, e.message);
        qembed_split_params xs = sp;
        xs.max_segments = 2;
        xs.size = i == 3 ? sizeof xs + 8 : b;
        CHECK(refused(qembed_model_split(dir, argv[2], &xs, &e), &e, "qembed_split_params"),
              "split params size %zu: %s", xs.size, e.message);
    }
    qembed_model_params newer = mp;
    newer.size = sizeof newer + 8;
    qembed_model *m3 = NULL;
    qembed_model_load(dir, &newer, &m3, &e);
    CHECK(strstr(e.message, "newer qembed.h"), "a newer header is named as such: %s", e.message);
    mp.size = 0;
    qembed_model_load(dir, &mp, &m3, &e);
    CHECK(strstr(e.message, "constructor"), "size 0 points at the constructor: %s", e.message);

    qembed_ctx_free(c);
    qembed_model_free(m);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("params: all checks passed\n");
    return 0;
}
