/* Tokenizer benchmark (not a test): load time of tokenizer.json, then
 * single-thread encode throughput per corpus file (documents separated by
 * 0x1E), best of --reps runs. Prints one line per measurement.
 *   bench_tokenizer <tokenizer.json> [--reps N] <file>... */
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

/* CPU time of the process: on a shared machine wall time also measures the
 * neighbours; both are reported. */
static double cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s tokenizer.json [--reps N] file...\n", argv[0]);
        return 2;
    }
    int reps = 3, first = 2;
    if (argc > 4 && strcmp(argv[2], "--reps") == 0) {
        reps = atoi(argv[3]);
        first = 4;
    }
    qembed_error err;
    qembed_tokenizer *tok = NULL;
    double best_load = 1e9, best_load_cpu = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = now(), c0 = cpu();
        if (qembed_tokenizer_load(argv[1], &tok, &err) != QEMBED_OK) {
            fprintf(stderr, "load: %s\n", err.message);
            return 1;
        }
        double dt = now() - t0, dc = cpu() - c0;
        if (dt < best_load) best_load = dt;
        if (dc < best_load_cpu) best_load_cpu = dc;
        if (r < 4) qembed_tokenizer_free(tok);
    }
    printf("qembed load_ms=%.1f load_cpu_ms=%.1f\n", best_load * 1e3, best_load_cpu * 1e3);
    for (int fi = first; fi < argc; fi++) {
        size_t len;
        char *buf = slurp(argv[fi], &len);
        if (!buf) {
            perror(argv[fi]);
            return 1;
        }
        double best = 1e9, best_cpu = 1e9;
        size_t tokens = 0;
        for (int r = 0; r < reps; r++) {
            size_t ntok = 0;
            double t0 = now(), c0 = cpu();
            for (size_t i = 0; i < len;) {
                const char *e = memchr(buf + i, 0x1e, len - i);
                size_t dl = e ? (size_t)(e - (buf + i)) : len - i;
                int32_t *ids;
                size_t n;
                qembed_encode_options o = qembed_encode_default_options();
                if (qembed_tokenizer_encode(tok, buf + i, dl, &o, &ids, &n, &err) != QEMBED_OK) {
                    fprintf(stderr, "%s: %s\n", argv[fi], err.message);
                    return 1;
                }
                ntok += n;
                qembed_free(ids);
                i += dl + 1;
            }
            double dt = now() - t0, dc = cpu() - c0;
            if (dt < best) best = dt;
            if (dc < best_cpu) best_cpu = dc;
            tokens = ntok;
        }
        const char *name = strrchr(argv[fi], '/') ? strrchr(argv[fi], '/') + 1 : argv[fi];
        printf("qembed file=%s bytes=%zu tokens=%zu seconds=%.4f MB/s=%.2f tokens/s=%.0f cpu_seconds=%.4f "
               "cpu_MB/s=%.2f cpu_tokens/s=%.0f\n",
               name, len, tokens, best, (double)len / best / 1e6, (double)tokens / best, best_cpu,
               (double)len / best_cpu / 1e6, (double)tokens / best_cpu);
        free(buf);
    }
    qembed_tokenizer_free(tok);
    return 0;
}
