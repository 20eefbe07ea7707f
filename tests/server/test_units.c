/* server.units: the server's pure parts, without HTTP or a model.
 *  - the batching policy (qs_select_locked), as declarative cases: each case
 *    queues jobs of given input lengths and lists the passes it must form;
 *  - the UTF-8 validator against a reference written from the Unicode
 *    standard's table of well-formed byte sequences (exhaustive up to 3 bytes,
 *    every lead byte with sampled tails for 4);
 *  - base64 (RFC 4648 test vectors), JSON string escaping, the constant-time
 *    key comparison. */
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
    {"short inputs ride past a long one that does not fit", 64,
     {5, 0, -1, 61, 0, -1, 5, 0, -1, 5, 0, -1, 5, 0, -1, 5, 0, -2},
     "0.0 2.0 3.0 4.0 5.0|1.0"},
    {"the oldest input goes first even when long", 64,
     {61, 0, -1, 5, 0, -1, 5, 0, -2},
     "0.0|1.0 2.0"},
    {"a request larger than one pass is split, in order", 10,
     {4, 4, 4, 4, 0, -2},
     "0.0 0.1|0.2 0.3"},
    {"an exact fill stops the pass", 10,
     {6, 4, 0, -1, 6, 4, 0, -2},
     "0.0 1.1|0.1 1.0"},
    {"round-robin, then first-fit inside a request", 10,
     {6, 6, 3, 0, -1, 1, 0, -2},
     "0.0 1.0 0.2|0.1"},
    {"a small request is not held behind a big one", 10,
     {5, 5, 5, 5, 5, 5, 0, -1, 2, 0, -2},
     "0.0 1.0|0.1 0.2|0.3 0.4|0.5"},
    {"requests take turns", 12,
     {4, 4, 4, 0, -1, 4, 4, 4, 0, -1, 4, 4, 4, 0, -2},
     "0.0 1.0 2.0|0.1 1.1 2.1|0.2 1.2 2.2"},
    {"inputs of exactly the budget", 8,
     {8, 0, -1, 8, 0, -1, 1, 0, -2},
     "0.0|1.0|2.0"},
};

static void run_policy_case(const policy_case *pc)
{
    qe_server_config cfg;
    qe_server_default_config(&cfg);
    qe_server *srv = NULL;
    char err[256];
    if (qe_server_create(&cfg, &srv, err, sizeof err) != 0) {
        CHECK(0, "qe_server_create: %s", err);
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
        if (*p == -1)
            p++;
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
        if (b.n == 0)
            break;
        CHECK(b.tokens <= pc->budget, "%s: pass %d has %zu tokens > budget %zu", pc->name, pass,
              b.tokens, pc->budget);
        if (pass)
            strcat(got, "|");
        for (size_t i = 0; i < b.n; i++) {
            size_t ji = 0;
            while (ji < nj && jobs[ji] != b.job[i])
                ji++;
            char lab[32];
            snprintf(lab, sizeof lab, "%s%zu.%zu", i ? " " : "", ji, b.unit[i]);
            strcat(got, lab);
        }
    }
    CHECK(strcmp(got, pc->passes) == 0, "%s: passes \"%s\", want \"%s\"", pc->name, got, pc->passes);
    if (strcmp(got, pc->passes) == 0)
        printf("ok: policy: %s (%s)\n", pc->name, got);
    CHECK(srv->head == NULL, "%s: jobs left pending", pc->name);
    qs_batch_free(&b);
    for (size_t i = 0; i < nj; i++)
        qs_job_free(jobs[i]);
    srv->batcher_running = 0;
    qe_server_free(srv);
}

/* ---- UTF-8 ---- */

/* The Unicode standard's Table 3-7 (well-formed UTF-8 byte sequences): the
 * length of the well-formed sequence at s, or 0 when ill-formed. */
static int ref_seq(const unsigned char *s, size_t n)
{
    static const struct { unsigned char lo0, hi0, lo1, hi1; int len; } t[] = {
        {0x00, 0x7F, 0, 0, 1},       {0xC2, 0xDF, 0x80, 0xBF, 2}, {0xE0, 0xE0, 0xA0, 0xBF, 3},
        {0xE1, 0xEC, 0x80, 0xBF, 3}, {0xED, 0xED, 0x80, 0x9F, 3}, {0xEE, 0xEF, 0x80, 0xBF, 3},
        {0xF0, 0xF0, 0x90, 0xBF, 4}, {0xF1, 0xF3, 0x80, 0xBF, 4}, {0xF4, 0xF4, 0x80, 0x8F, 4},
    };
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        if (s[0] < t[k].lo0 || s[0] > t[k].hi0)
            continue;
        if ((size_t)t[k].len > n)
            return 0;
        if (t[k].len == 1)
            return 1;
        if (s[1] < t[k].lo1 || s[1] > t[k].hi1)
            return 0;
        for (int i = 2; i < t[k].len; i++)
            if (s[i] < 0x80 || s[i] > 0xBF)
                return 0;
        return t[k].len;
    }
    return 0;
}

static long ref_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        int l = ref_seq(s + i, n - i);
        if (!l)
            return (long)i;
        i += (size_t)l;
    }
    return -1;
}

static void utf8_checks(void)
{
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
                        CHECK(0, "utf8 %02x %02x %02x %02x: got %ld want %ld", a, b, tails[c], tails[d],
                              got, want);
                }
    CHECK(bad == 0, "utf8: %ld of %ld strings disagree with the reference", bad, checked);
    if (!bad)
        printf("ok: utf8 validator agrees with Table 3-7 on %ld strings\n", checked);
}

static void misc_checks(void)
{
    static const char *const b64[][2] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
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

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        run_policy_case(&cases[i]);
    utf8_checks();
    misc_checks();
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
