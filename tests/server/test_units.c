/* server.units: the server's pure parts, without HTTP or a model.
 *  - the batching policy (qs_select_locked), as declarative cases: each case
 *    queues jobs of given input lengths and lists the passes it must form;
 *  - the UTF-8 validator against a reference written from the Unicode
 *    standard's table of well-formed byte sequences (exhaustive up to 3 bytes,
 *    every lead byte with sampled tails for 4);
 *  - base64 (RFC 4648 test vectors), JSON string escaping, the constant-time
 *    key comparison;
 *  - the strict framing checks (framing.c), as declarative cases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#include "check.h"

/* ---- batching policy ---- */

typedef struct policy_case {
    const char *name;
    size_t budget;
    /* jobs in arrival order: input lengths in tokens, 0-terminated per job,
     * jobs separated by a -1 entry and the list ended by -2 */
    int jobs[32];
    /* expected passes: "job.unit" labels, passes separated by "|" */
    const char *passes;
} policy_case;

static const policy_case cases[] = {
    {"short inputs ride past a long one that does not fit",
     64,
     {5, 0, -1, 61, 0, -1, 5, 0, -1, 5, 0, -1, 5, 0, -1, 5, 0, -2},
     "0.0 2.0 3.0 4.0 5.0|1.0"},
    {"the oldest input goes first even when long", 64, {61, 0, -1, 5, 0, -1, 5, 0, -2}, "0.0|1.0 2.0"},
    {"a request larger than one pass is split, in order", 10, {4, 4, 4, 4, 0, -2}, "0.0 0.1|0.2 0.3"},
    {"an exact fill stops the pass", 10, {6, 4, 0, -1, 6, 4, 0, -2}, "0.0 1.1|0.1 1.0"},
    {"round-robin, then first-fit inside a request", 10, {6, 6, 3, 0, -1, 1, 0, -2}, "0.0 1.0 0.2|0.1"},
    {"a small request is not held behind a big one",
     10,
     {5, 5, 5, 5, 5, 5, 0, -1, 2, 0, -2},
     "0.0 1.0|0.1 0.2|0.3 0.4|0.5"},
    {"an input longer than the (time) budget runs alone", 10, {12, 0, -1, 3, 0, -2}, "0.0|1.0"},
    {"requests take turns",
     12,
     {4, 4, 4, 0, -1, 4, 4, 4, 0, -1, 4, 4, 4, 0, -2},
     "0.0 1.0 2.0|0.1 1.1 2.1|0.2 1.2 2.2"},
    {"inputs of exactly the budget", 8, {8, 0, -1, 8, 0, -1, 1, 0, -2}, "0.0|1.0|2.0"},
};

static void run_policy_case(const policy_case *pc) {
    qs_server_config cfg;
    qs_server_default_config(&cfg);
    qs_server *srv = NULL;
    char err[256];
    if (qs_server_create(&cfg, &srv, err, sizeof err) != 0) {
        CHECK(0, "qs_server_create: %s", err);
        return;
    }
    srv->max_batch_tokens = pc->budget;
    srv->max_queue_tokens = 1u << 30;
    srv->batcher_running = 1; /* no thread: the test forms the passes itself */
    qs_job *jobs[16];
    size_t nj = 0;
    const int *p = pc->jobs;
    while (*p != -2) {
        qs_job *j = calloc(1, sizeof *j);
        j->units = calloc(16, sizeof *j->units);
        while (*p > 0) {
            qs_unit *u = &j->units[j->n_units++];
            u->n_ids = (size_t)*p;
            u->ids = calloc(u->n_ids, sizeof *u->ids);
            j->total_tokens += u->n_ids;
            p++;
        }
        p++; /* the 0 */
        if (*p == -1) p++;
        j->refs = 2;
        qs_apierr e;
        CHECK(qs_enqueue(srv, j, &e) == 0, "%s: enqueue: %s", pc->name, e.message);
        jobs[nj++] = j;
    }
    char got[512] = "";
    qs_batch b = {0};
    for (int pass = 0; pass < 20; pass++) {
        pthread_mutex_lock(&srv->mu);
        qs_select_locked(srv, &b);
        pthread_mutex_unlock(&srv->mu);
        if (b.n == 0) break;
        CHECK(b.tokens <= pc->budget || b.n == 1, "%s: pass %d has %zu tokens > budget %zu", pc->name, pass,
              b.tokens, pc->budget); /* (one input alone may exceed it) */
        if (pass) strcat(got, "|");
        for (size_t i = 0; i < b.n; i++) {
            size_t ji = 0;
            while (ji < nj && jobs[ji] != b.job[i]) ji++;
            char lab[32];
            snprintf(lab, sizeof lab, "%s%zu.%zu", i ? " " : "", ji, b.unit[i]);
            strcat(got, lab);
        }
    }
    CHECK(strcmp(got, pc->passes) == 0, "%s: passes \"%s\", want \"%s\"", pc->name, got, pc->passes);
    if (strcmp(got, pc->passes) == 0) printf("ok: policy: %s (%s)\n", pc->name, got);
    CHECK(srv->head == NULL, "%s: jobs left pending", pc->name);
    qs_batch_free(&b);
    for (size_t i = 0; i < nj; i++) qs_job_free(jobs[i]);
    srv->batcher_running = 0;
    qs_server_free(srv);
}

/* ---- UTF-8 ---- */

/* The Unicode standard's Table 3-7 (well-formed UTF-8 byte sequences): the
 * length of the well-formed sequence at s, or 0 when ill-formed. */
static int ref_seq(const unsigned char *s, size_t n) {
    static const struct {
        unsigned char lo0, hi0, lo1, hi1;
        int len;
    } t[] = {
        {0x00, 0x7F, 0, 0, 1},       {0xC2, 0xDF, 0x80, 0xBF, 2}, {0xE0, 0xE0, 0xA0, 0xBF, 3},
        {0xE1, 0xEC, 0x80, 0xBF, 3}, {0xED, 0xED, 0x80, 0x9F, 3}, {0xEE, 0xEF, 0x80, 0xBF, 3},
        {0xF0, 0xF0, 0x90, 0xBF, 4}, {0xF1, 0xF3, 0x80, 0xBF, 4}, {0xF4, 0xF4, 0x80, 0x8F, 4},
    };
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        if (s[0] < t[k].lo0 || s[0] > t[k].hi0) continue;
        if ((size_t)t[k].len > n) return 0;
        if (t[k].len == 1) return 1;
        if (s[1] < t[k].lo1 || s[1] > t[k].hi1) return 0;
        for (int i = 2; i < t[k].len; i++)
            if (s[i] < 0x80 || s[i] > 0xBF) return 0;
        return t[k].len;
    }
    return 0;
}

static long ref_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int l = ref_seq(s + i, n - i);
        if (!l) return (long)i;
        i += (size_t)l;
    }
    return -1;
}

static void utf8_checks(void) {
    unsigned char buf[6];
    long bad = 0, checked = 0;
    /* every 1-, 2- and 3-byte string, after a valid 'a' (offsets shift by 1) */
    buf[0] = 'a';
    for (unsigned a = 0; a < 256; a++) {
        buf[1] = (unsigned char)a;
        for (int len = 1; len <= 3; len++) {
            unsigned lim1 = len >= 2 ? 256 : 1, lim2 = len >= 3 ? 256 : 1;
            for (unsigned b = 0; b < lim1; b++)
                for (unsigned c = 0; c < lim2; c++) {
                    buf[2] = (unsigned char)b;
                    buf[3] = (unsigned char)c;
                    size_t n = 1 + (size_t)len;
                    long want = ref_invalid_at(buf, n), got = qs_utf8_invalid_at((char *)buf, n);
                    checked++;
                    if (want != got && bad++ < 5)
                        CHECK(0, "utf8 %02x %02x %02x (len %d): got %ld want %ld", a, b, c, len, got, want);
                }
        }
    }
    /* 4 bytes: every lead byte, every second byte, tails at the edges */
    static const unsigned tails[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0xBF, 0xC0, 0xFF};
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++)
            for (size_t c = 0; c < 8; c++)
                for (size_t d = 0; d < 8; d++) {
                    buf[0] = (unsigned char)a;
                    buf[1] = (unsigned char)b;
                    buf[2] = (unsigned char)tails[c];
                    buf[3] = (unsigned char)tails[d];
                    long want = ref_invalid_at(buf, 4), got = qs_utf8_invalid_at((char *)buf, 4);
                    checked++;
                    if (want != got && bad++ < 10)
                        CHECK(0, "utf8 %02x %02x %02x %02x: got %ld want %ld", a, b, tails[c], tails[d], got,
                              want);
                }
    CHECK(bad == 0, "utf8: %ld of %ld strings disagree with the reference", bad, checked);
    if (!bad) printf("ok: utf8 validator agrees with Table 3-7 on %ld strings\n", checked);
}

static void misc_checks(void) {
    static const char *const b64[][2] = {{"", ""},
                                         {"f", "Zg=="},
                                         {"fo", "Zm8="},
                                         {"foo", "Zm9v"},
                                         {"foob", "Zm9vYg=="},
                                         {"fooba", "Zm9vYmE="},
                                         {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof b64 / sizeof *b64; i++) {
        qs_buf b = {0};
        qs_buf_base64(&b, b64[i][0], strlen(b64[i][0]));
        CHECK(strcmp(b.p ? b.p : "", b64[i][1]) == 0, "base64(\"%s\") = \"%s\", want \"%s\"", b64[i][0],
              b.p ? b.p : "", b64[i][1]);
        qs_buf_free(&b);
    }
    float f[2] = {1.0f, -2.0f}; /* little-endian bytes 00 00 80 3f 00 00 00 c0 */
    qs_buf b = {0};
    qs_buf_base64(&b, f, sizeof f);
    CHECK(strcmp(b.p, "AACAPwAAAMA=") == 0, "base64 of float32 {1,-2} = %s", b.p);
    qs_buf_free(&b);

    const char s[] = "a\"b\\c\n\x01\xc3\xa9";
    qs_buf_json_str(&b, s, sizeof s - 1);
    CHECK(strcmp(b.p, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"") == 0, "json escape: %s", b.p);
    qs_buf_free(&b);

    CHECK(qs_secret_equal("s3cret", "s3cret"), "equal keys");
    CHECK(!qs_secret_equal("s3cret", "s3cre"), "prefix key");
    CHECK(!qs_secret_equal("s3cret", "s3cret!"), "longer key");
    CHECK(!qs_secret_equal("s3cret", ""), "empty key");
    CHECK(!qs_secret_equal("s3cret", "S3cret"), "case");
    CHECK(!qs_secret_equal("ab", "abab"), "repeated key");
    printf("ok: base64, JSON escaping, key comparison\n");
}

/* ---- strict framing (framing.c), as data: a target, header lines
 * "Name: value" separated by '\n', and the status wanted ---- */
typedef struct framing_case {
    const char *target;
    const char *headers;
    size_t headers_len; /* 0: strlen (cases with a NUL give it) */
    int want;
} framing_case;

static const framing_case framing_cases[] = {
    {"/v1/embeddings", "Host: t\nContent-Length: 13", 0, 0},
    {"/v1/embeddings", "Transfer-Encoding: chunked", 0, 0},
    {"/v1/embeddings", "Transfer-Encoding:  Chunked ", 0, 0},
    {"/health?x=%41", "Host: t", 0, 0},
    {"/v1/embeddings", "Content-Length: 0\nContent-Length: 33", 0, 400},
    {"/v1/embeddings", "Content-Length: 13\nContent-Length: 13", 0, 400},
    {"/v1/embeddings", "Content-Length: 13, 13", 0, 400},
    {"/v1/embeddings", "Content-Length: +13", 0, 400},
    {"/v1/embeddings", "Transfer-Encoding: chunked\nContent-Length: 4", 0, 400},
    {"/v1/embeddings", "Transfer-Encoding: chunked\nTransfer-Encoding: chunked", 0, 400},
    {"/v1/embeddings", "Transfer-Encoding: gzip", 0, 501},
    {"/v1/embeddings", "Transfer-Encoding: gzip, chunked", 0, 501},
    {"/health%00x", "Host: t", 0, 400},
    {"/health%1f", "Host: t", 0, 400},
    {"/health%7F", "Host: t", 0, 400},
    {"/health\x01", "Host: t", 0, 400},
    {"/health", "X-A: a\x01b", 0, 400},
    {"/health", "X-A: a\0b", 8, 400},
    {"/health", "X-A: tab\tok", 0, 0},
};

static void framing_checks(void) {
    for (size_t i = 0; i < sizeof framing_cases / sizeof *framing_cases; i++) {
        const framing_case *fc = &framing_cases[i];
        qs_framing f = {0};
        qs_framing_uri(&f, fc->target, strlen(fc->target));
        const char *h = fc->headers, *end = h + (fc->headers_len ? fc->headers_len : strlen(h));
        while (h < end) {
            const char *nl = memchr(h, '\n', (size_t)(end - h));
            const char *le = nl ? nl : end;
            const char *colon = memchr(h, ':', (size_t)(le - h));
            const char *v = colon + 1;
            while (v < le && *v == ' ') v++;
            qs_framing_header(&f, h, (size_t)(colon - h), v, (size_t)(le - v));
            h = le + 1;
        }
        qs_framing_finish(&f);
        CHECK(f.status == fc->want, "framing case %zu (%s | %s): status %d, want %d (%s)", i, fc->target,
              fc->headers, f.status, fc->want, f.msg);
    }
}

int main(void) {
    framing_checks();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_policy_case(&cases[i]);
    utf8_checks();
    misc_checks();
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
