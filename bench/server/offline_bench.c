/* The in-process side of bench/server/bench_server.sh, on the public API only:
 *  - offline batch throughput: the texts (one per line in TEXTS_FILE), all in
 *    one qembed_ctx_embed_tokens call (as `qembed bench` batches them),
 *    REPS times after one untimed warm-up pass; prints texts/s;
 *  - in-process latency of one short text through qembed_ctx_embed
 *    (tokenization included, as the CLI does), LAT_RUNS times; prints the
 *    p50 in ms.
 * usage: bench_server_offline MODEL_DIR TEXTS_FILE SHORT_TEXT REPS LAT_RUNS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qembed.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODEL_DIR TEXTS_FILE SHORT_TEXT REPS LAT_RUNS\n", argv[0]);
        return 1;
    }
    int reps_want = atoi(argv[4]), lat_runs = atoi(argv[5]);
    if (reps_want < 0) reps_want = 0; /* 0: latency only */
    if (lat_runs < 1 || lat_runs > 2000) lat_runs = 2000;
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", argv[2]);
        return 1;
    }
    char *texts[256];
    size_t n = 0;
    char line[8192];
    while (n < 256 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (line[0]) texts[n++] = strdup(line);
    }
    fclose(f);

    qembed_model_params mp = qembed_model_default_params();
    qembed_model *m = NULL;
    qembed_error err = {0};
    if (qembed_model_load(argv[1], &mp, &m, &err) != QEMBED_OK) {
        fprintf(stderr, "load: %s\n", err.message);
        return 2;
    }
    qembed_ctx_params cp = qembed_ctx_default_params();
    qembed_ctx *ctx = NULL;
    if (qembed_ctx_create(m, &cp, &ctx, &err) != QEMBED_OK) {
        fprintf(stderr, "ctx: %s\n", err.message);
        return 2;
    }
    qembed_model_info mi;
    qembed_model_get_info(m, &mi);
    qembed_embed_options o = qembed_embed_default_options();
    o.parse_special = 0;
    int32_t *ids[256];
    size_t nids[256], tokens = 0;
    for (size_t i = 0; i < n; i++) {
        if (qembed_model_tokenize(m, texts[i], strlen(texts[i]), &o, &ids[i], &nids[i], &err) != QEMBED_OK) {
            fprintf(stderr, "tokenize: %s\n", err.message);
            return 2;
        }
        tokens += nids[i];
    }
    float *out = malloc(n * (size_t)mi.hidden_size * sizeof *out);
    const int32_t *const *pids = (const int32_t *const *)ids;
    if (reps_want == 0) goto latency;
    /* warm-up */
    if (qembed_ctx_embed_tokens(ctx, pids, nids, n, &o, out, &err) != QEMBED_OK) {
        fprintf(stderr, "embed: %s\n", err.message);
        return 2;
    }
    double t0 = now();
    size_t reps = 0;
    for (; reps < (size_t)reps_want; reps++) qembed_ctx_embed_tokens(ctx, pids, nids, n, &o, out, &err);
    double tp = (double)(reps * n) / (now() - t0);
    printf("offline_batch_texts %zu\noffline_avg_tokens %.1f\noffline_texts_per_s %.2f\n", n,
           (double)tokens / (double)n, tp);

latency:;
    const char *short_text = argv[3];
    int32_t *sids = NULL;
    size_t sn = 0;
    qembed_model_tokenize(m, short_text, strlen(short_text), &o, &sids, &sn, &err);
    double lat[2000];
    size_t k = 0;
    qembed_ctx_embed(ctx, &short_text, NULL, 1, &o, out, &err); /* warm-up */
    while (k < (size_t)lat_runs) {
        double a = now();
        qembed_ctx_embed(ctx, &short_text, NULL, 1, &o, out, &err);
        lat[k++] = now() - a;
    }
    qsort(lat, k, sizeof *lat, cmp_d);
    printf("inproc_short_tokens %zu\ninproc_runs %zu\ninproc_p50_ms %.3f\n", sn, k, lat[k / 2] * 1e3);
    qembed_free(sids);
    for (size_t i = 0; i < n; i++) {
        qembed_free(ids[i]);
        free(texts[i]);
    }
    free(out);
    qembed_ctx_free(ctx);
    qembed_model_free(m);
    return 0;
}
