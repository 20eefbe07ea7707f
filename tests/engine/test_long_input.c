/* The model's longest input (32,768 tokens on the tiny model) runs within the
 * memory the context planned: while it runs, peak RSS grows by at most the
 * weights (memory-mapped: their pages count once touched; 32k random ids
 * touch most of the embedding table) plus qembed_ctx_activation_bytes (+ a
 * small slack for the C library). The activations are
 * linear in max_batch_tokens, while a score matrix would be 32768^2 floats
 * (4 GiB) per head. Under AddressSanitizer RSS includes shadow memory, so
 * there only the run itself is checked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qembed.h>

#include "check.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* VmRSS or VmHWM of this process, bytes; 0 when unreadable */
static unsigned long long proc_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long v = 0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') v = strtoull(line + kl + 1, NULL, 10);
    fclose(f);
    return v * 1024;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_long_input MODEL_DIR\n");
        return 2;
    }
    const size_t n = 32768;
    qembed_model_params mp = qembed_model_default_params();
    mp.max_tokens = n;
    mp.n_threads = 2;
    qembed_model *m = NULL;
    qembed_error e;
    CHECK(qembed_model_load(argv[1], &mp, &m, &e) == QEMBED_OK, "load: %s", e.message);
    if (!m) return 1;
    qembed_model_info info;
    qembed_model_get_info(m, &info);
    CHECK(info.max_position_embeddings == (int)n, "the tiny model's limit is %d",
          info.max_position_embeddings);
    qembed_ctx_params cp = qembed_ctx_default_params();
    cp.max_batch_tokens = n;
    qembed_ctx *c = NULL;
    CHECK(qembed_ctx_create(m, &cp, &c, &e) == QEMBED_OK, "ctx: %s", e.message);
    if (!c) return 1;
    const unsigned long long planned = qembed_ctx_activation_bytes(c);
    /* linear in tokens: at most a few hundred bytes per token and hidden unit */
    CHECK(planned > 0 && planned < (unsigned long long)n * (unsigned long long)info.hidden_size * 64,
          "planned activation bytes %llu", planned);

    int32_t *ids = malloc(n * sizeof *ids);
    if (!ids) return 1;
    unsigned s = 12345u;
    for (size_t i = 0; i + 1 < n; i++) {
        s = s * 1103515245u + 12345u;
        ids[i] = (int32_t)((s >> 8) % 150000u);
    }
    ids[n - 1] = 151643; /* <|endoftext|> */
    float *v = malloc((size_t)info.hidden_size * sizeof *v);
    if (!v) return 1;

    /* the peak from here on: clear_refs "5" resets VmHWM to the current RSS */
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    int reset = cr && fputs("5", cr) >= 0;
    if (cr) fclose(cr);
    const unsigned long long rss0 = proc_kb("VmRSS");

    const int32_t *in[1] = {ids};
    const size_t lens[1] = {n};
    qembed_embed_options o = qembed_embed_default_options();
    o.max_tokens = n;
    CHECK(qembed_ctx_embed_tokens(c, in, lens, 1, &o, v, &e) == QEMBED_OK, "embed %zu tokens: %s", n,
          e.message);
    double norm = 0;
    for (int i = 0; i < info.hidden_size; i++) {
        CHECK(isfinite(v[i]), "component %d is not finite", i);
        norm += (double)v[i] * v[i];
    }
    CHECK(fabs(norm - 1.0) < 1e-4, "norm %f", norm);

    const unsigned long long hwm = proc_kb("VmHWM");
#ifdef UNDER_ASAN
    printf("long_input: %zu tokens embedded; planned activations %.1f MiB (RSS not checked under ASan)\n", n,
           planned / 1048576.0);
#else
    const unsigned long long slack = 8ull << 20, bound = info.weights_bytes + planned + slack;
    if (reset && rss0 && hwm) {
        CHECK(hwm - rss0 <= bound,
              "peak RSS grew by %.1f MiB for %zu tokens, over weights %.1f + planned %.1f MiB + 8 MiB",
              (hwm - rss0) / 1048576.0, n, info.weights_bytes / 1048576.0, planned / 1048576.0);
        printf("long_input: %zu tokens, peak RSS +%.1f MiB <= weights %.1f + planned activations %.1f "
               "+ 8 MiB\n",
               n, (hwm - rss0) / 1048576.0, info.weights_bytes / 1048576.0, planned / 1048576.0);
    } else {
        printf("long_input: %zu tokens embedded; RSS not readable here, memory not checked\n", n);
    }
#endif
    free(ids);
    free(v);
    qembed_ctx_free(c);
    qembed_model_free(m);
    return failures ? 1 : 0;
}
