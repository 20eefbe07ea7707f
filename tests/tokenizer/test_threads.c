/* One tokenizer shared by several threads: every thread encodes the whole
 * corpus (in a different order) and must get exactly the single-threaded
 * ids. Exercises the BPE memo's concurrent first writes.
 *   tok_test_threads <tokenizer.json> <corpus.jsonl> [min_texts]
 * The corpus must give texts to encode: an empty or unreadable corpus, a
 * line that is not a JSON object, fewer than min_texts texts (default 1) or
 * texts that encode to no ids at all fail the test rather than pass it
 * vacuously. Lines without "text" (the corpus's decode cases) are skipped. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qembed.h"

#define N_THREADS 4

static char **texts;
static size_t n_texts;
static int32_t **want;
static size_t *want_n;
static const qembed_tokenizer *tok;

static void *worker(void *arg) {
    size_t k = (size_t)arg, bad = 0;
    for (size_t j = 0; j < n_texts; j++) {
        size_t i = (j * (2 * k + 1) + k * 977) % n_texts; /* a different order per thread */
        int32_t *ids;
        size_t n;
        qembed_error err;
        if (qembed_tokenizer_encode(tok, texts[i], strlen(texts[i]), NULL, &ids, &n, &err) != QEMBED_OK ||
            n != want_n[i] || memcmp(ids, want[i], n * sizeof *ids) != 0) {
            if (bad++ < 3)
                fprintf(stderr, "thread %zu: text %zu differs from the single-threaded ids\n", k, i);
        }
        if (ids) qembed_free(ids);
    }
    return (void *)bad;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s tokenizer.json corpus.jsonl [min_texts]\n", argv[0]);
        return 2;
    }
    size_t min_texts = argc == 4 ? strtoul(argv[3], NULL, 10) : 1;
    if (min_texts == 0) min_texts = 1;
    qembed_error err;
    qembed_tokenizer *t;
    if (qembed_tokenizer_load(argv[1], &t, &err) != QEMBED_OK) {
        fprintf(stderr, "FAIL: load: %s\n", err.message);
        return 1;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0, tcap = 0;
    ssize_t got;
    size_t lineno = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        lineno++;
        cJSON *j = cJSON_ParseWithLength(line, (size_t)got);
        if (!cJSON_IsObject(j)) {
            fprintf(stderr, "FAIL: %s:%zu is not a JSON object\n", argv[2], lineno);
            return 1;
        }
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "text");
        if (cJSON_IsString(s)) {
            if (n_texts == tcap) {
                tcap = tcap ? tcap * 2 : 1024;
                texts = realloc(texts, tcap * sizeof *texts);
            }
            texts[n_texts++] = strdup(s->valuestring);
        }
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    if (n_texts < min_texts) {
        fprintf(stderr, "FAIL: %s has %zu texts, fewer than the %zu required\n", argv[2], n_texts, min_texts);
        return 1;
    }
    /* The reference ids: a fresh tokenizer (empty memo), one thread. */
    qembed_tokenizer *t1;
    if (qembed_tokenizer_load(argv[1], &t1, &err) != QEMBED_OK) return 1;
    want = calloc(n_texts, sizeof *want);
    want_n = calloc(n_texts, sizeof *want_n);
    for (size_t i = 0; i < n_texts; i++)
        if (qembed_tokenizer_encode(t1, texts[i], strlen(texts[i]), NULL, &want[i], &want_n[i], &err) !=
            QEMBED_OK) {
            fprintf(stderr, "FAIL: text %zu: %s\n", i, err.message);
            return 1;
        }
    qembed_tokenizer_free(t1);
    size_t total_ids = 0;
    for (size_t i = 0; i < n_texts; i++) total_ids += want_n[i];
    if (total_ids == 0) {
        fprintf(stderr, "FAIL: the %zu texts encode to no ids: nothing for the threads to compare\n",
                n_texts);
        return 1;
    }
    tok = t;
    pthread_t th[N_THREADS];
    for (size_t k = 0; k < N_THREADS; k++) pthread_create(&th[k], NULL, worker, (void *)k);
    size_t bad = 0;
    for (size_t k = 0; k < N_THREADS; k++) {
        void *r;
        pthread_join(th[k], &r);
        bad += (size_t)r;
    }
    for (size_t i = 0; i < n_texts; i++) {
        free(texts[i]);
        qembed_free(want[i]);
    }
    free(texts);
    free(want);
    free(want_n);
    qembed_tokenizer_free(t);
    if (bad) {
        printf("FAIL: %zu mismatches across %d threads\n", bad, N_THREADS);
        return 1;
    }
    printf("PASS: %zu texts (%zu ids) x %d threads, identical ids\n", n_texts, total_ids, N_THREADS);
    return 0;
}
