/* qembed bench: the speed figures people compare engines by, in one run,
 * beside this machine's own measured limits (issue 6). Public API only.
 *
 *   cold start   a new process (this binary re-executed): load, warm-up and
 *                first vector, and the wall time from spawning it
 *   short query  one 16-token query, p50/p95/p99 over --query-runs runs
 *   batch        64 texts of ~128 tokens; 8 documents of ~2,000 tokens
 *   long input   one 8,192-token input: time and peak RSS
 *   limits       achieved GFLOP/s (from the model's FLOP count) as a fraction
 *                of the peak of the instructions in use (measured here by
 *                qembed_measure_peak), peak RSS against the weights' size
 *
 * Texts are deterministic word sequences trimmed with the model's own
 * tokenizer to the token counts above (counts include the appended
 * <|endoftext|>). The FLOP count of a sequence of L tokens is
 *   2 L (linear weights per layer) x layers  +  4 L(L+1)/2 heads head_dim x layers
 * (the matrix products, and causal attention's QK^T and AV). */
#define QEMBED_TEST_AND_BENCH_API /* qembed_measure_peak */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "commands.h"

static const char *const bench_help =
    "usage: qembed bench -m MODEL [--threads N] [--json FILE] [options]\n"
    "\n"
    "Measures cold start, a 16-token query (p50/p95/p99), batch throughput (64 x 128 and\n"
    "8 x 2,000 tokens), one 8,192-token input, and the achieved GFLOP/s against this machine's\n"
    "peak, measured by the bench itself. Prints a table; --json writes every figure.\n"
    "\n"
    "      --json FILE         write the figures, the machine and the model's shape as JSON\n"
    "      --exact             f32 activations (the reference mode; default: bf16 activations)\n"
    "      --query-runs N      runs of the 16-token query (default 60, at least 50 for p99)\n"
    "      --batch-texts N     texts in the 128-token batch (default 64)\n"
    "      --docs N            documents of ~2,000 tokens (default 8)\n"
    "      --long-tokens N     length of the long input (default 8192; 0 skips it)\n"
    "      --no-cold           skip the cold-start child process\n"
    "      --quick             small sizes (8 texts, 1 document, 1,024-token long input,\n"
    "                          20 query runs): a smoke test, not figures to publish\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: 0 success, 1 usage error, 2 model error.\n";

enum {
    OPT_JSON = 256,
    OPT_EXACT,
    OPT_COLD_CHILD,
    OPT_NO_COLD,
    OPT_QUICK,
    OPT_QUERY_RUNS,
    OPT_BATCH_TEXTS,
    OPT_DOCS,
    OPT_LONG_TOKENS,
};

static const cli_optdef bench_opts[] = {
    {"help", 'h', 0},
    {"json", OPT_JSON, 1},
    {"exact", OPT_EXACT, 0},
    {"cold-child", OPT_COLD_CHILD, 0}, /* internal: the cold-start child process */
    {"no-cold", OPT_NO_COLD, 0},
    {"quick", OPT_QUICK, 0},
    {"query-runs", OPT_QUERY_RUNS, 1},
    {"batch-texts", OPT_BATCH_TEXTS, 1},
    {"docs", OPT_DOCS, 1},
    {"long-tokens", OPT_LONG_TOKENS, 1},
    {NULL, 0, 0},
};

static void cpu_model(char *buf, size_t n) {
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) snprintf(buf, n, "%s", c + 2);
            buf[strcspn(buf, "\n")] = 0;
            break;
        }
    fclose(f);
}

/* ---- deterministic texts of a given token count ---- */

static const char *const g_words[] = {
    "the",       "model",   "reads",  "a",     "long",    "document", "about",  "rivers", "and",
    "mountains", "where",   "people", "build", "small",   "houses",   "near",   "water",  "while",
    "children",  "play",    "in",     "green", "fields",  "under",    "bright", "summer", "skies",
    "every",     "morning", "birds",  "sing",  "over",    "quiet",    "roads",  "that",   "lead",
    "to",        "old",     "towns",  "with",  "markets", "selling",  "bread",  "fruit",  "fish",
    "cheese",    "books",   "tools",  "for",   "work",    "at",       "home",
};
#define N_WORDS (sizeof g_words / sizeof g_words[0])

typedef struct textbuf {
    char *s;
    size_t len, cap;
} textbuf;

static int tb_add_word(textbuf *t, const char *w) {
    size_t wl = strlen(w);
    if (t->len + wl + 2 > t->cap) {
        size_t nc = (t->cap ? t->cap * 2 : 256) + wl + 2;
        char *ns = realloc(t->s, nc);
        if (!ns) return -1;
        t->s = ns;
        t->cap = nc;
    }
    if (t->len) t->s[t->len++] = ' ';
    memcpy(t->s + t->len, w, wl);
    t->len += wl;
    t->s[t->len] = 0;
    return 0;
}

static size_t count_tokens(const qembed_model *m, const char *s, size_t len) {
    qembed_embed_options o = qembed_embed_default_options();
    o.max_tokens = 32768; /* the model family's limit: longer than any text made here */
    int32_t *ids = NULL;
    size_t n = 0;
    qembed_error e;
    memset(&e, 0, sizeof e);
    qembed_status st = qembed_model_tokenize(m, s, len, &o, &ids, &n, &e);
    if (st != QEMBED_OK) {
        fprintf(stderr, "qembed bench: tokenizing a generated text: %s: %s\n", qembed_status_str(st),
                e.message);
        return 0;
    }
    qembed_free(ids);
    return n;
}

/* A text of exactly `target` tokens when the words allow it (else the
 * nearest below), different for each seed. Grows by whole words estimated
 * from the current count, then trims one word at a time. */
static char *make_text(const qembed_model *m, size_t target, unsigned seed, size_t *n_tokens) {
    textbuf t = {0};
    unsigned x = seed * 2654435761u + 12345u;
    size_t n = 0;
    size_t *ends = NULL, n_words = 0, cap_words = 0;
    while (n < target) {
        size_t add = target - n;
        if (add > 8) add = add * 9 / 10; /* most words are one token: approach from below */
        for (size_t i = 0; i < add; i++) {
            x = x * 1103515245u + 12345u;
            if (tb_add_word(&t, g_words[(x >> 16) % N_WORDS]) != 0) goto fail;
            if (n_words == cap_words) {
                cap_words = cap_words ? cap_words * 2 : 256;
                size_t *ne = realloc(ends, cap_words * sizeof *ends);
                if (!ne) goto fail;
                ends = ne;
            }
            ends[n_words++] = t.len;
        }
        n = count_tokens(m, t.s, t.len);
        if (n == 0) goto fail;
    }
    while (n > target && n_words > 1) {
        n_words--;
        t.len = ends[n_words - 1];
        t.s[t.len] = 0;
        n = count_tokens(m, t.s, t.len);
    }
    free(ends);
    *n_tokens = n;
    return t.s;
fail:
    free(ends);
    free(t.s);
    return NULL;
}

/* ---- FLOPs ---- */

static double seq_flops(const qembed_model_info *in, double L) {
    double h = in->hidden_size, qd = (double)in->n_heads * in->head_dim,
           kvd = (double)in->n_kv_heads * in->head_dim, inter = in->intermediate_size;
    double lin = h * qd + 2 * h * kvd + qd * h + 3 * h * inter;
    return in->n_layers * (2.0 * L * lin + 4.0 * (L * (L + 1) / 2) * qd);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *sorted, int n, double p) {
    if (n <= 0) return 0;
    double r = p / 100.0 * (n - 1);
    int lo = (int)floor(r), hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (r - lo);
}

/* Embeds texts; returns seconds, or -1 on error (printed). */
static double timed_embed_max(qembed_ctx *ctx, char **texts, size_t n, int dims, const char *what,
                              size_t max_tokens) {
    float *out = malloc(sizeof(float) * n * (size_t)dims);
    if (!out) return -1;
    qembed_embed_options o = qembed_embed_default_options();
    o.max_tokens = max_tokens; /* 0: the model's default (8192) */
    qembed_error e;
    memset(&e, 0, sizeof e);
    double t0 = cli_now_s();
    qembed_status st = qembed_ctx_embed(ctx, (const char *const *)texts, NULL, n, &o, out, &e);
    double t = cli_now_s() - t0;
    free(out);
    if (st != QEMBED_OK) {
        fprintf(stderr, "qembed bench: %s: %s: %s\n", what, qembed_status_str(st), e.message);
        return -1;
    }
    return t;
}

static double timed_embed(qembed_ctx *ctx, char **texts, size_t n, int dims, const char *what) {
    return timed_embed_max(ctx, texts, n, dims, what, 0);
}

/* ---- cold start child: prints "load warm first" seconds on stdout ---- */

static int cold_child(const cli_settings *s, int exact) {
    double t0 = cli_now_s();
    qembed_model_params mp = cli_settings_model_params(s);
    mp.log_level = QEMBED_LOG_ERROR;
    mp.exact = exact;
    qembed_model *m = cli_settings_load_model(s, &mp);
    if (!m) return 2;
    qembed_ctx *ctx = NULL;
    qembed_ctx_params cp = qembed_ctx_default_params();
    cp.n_threads = s->n_threads;
    if (qembed_ctx_create(m, &cp, &ctx, NULL) != QEMBED_OK) {
        qembed_model_free(m);
        return 2;
    }
    double t1 = cli_now_s();
    qembed_model_info in;
    qembed_model_get_info(m, &in);
    char *warm = "warm up";
    double tw = timed_embed(ctx, &warm, 1, in.hidden_size, "cold start warm-up");
    char *q = "what is the capital of the country with the longest river";
    double tq = timed_embed(ctx, &q, 1, in.hidden_size, "cold start first vector");
    printf("%.6f %.6f %.6f\n", t1 - t0, tw, tq);
    qembed_ctx_free(ctx);
    qembed_model_free(m);
    return tw < 0 || tq < 0 ? 2 : 0;
}

typedef struct cold {
    int ok;
    double spawn_to_vector, load, warm, first;
} cold;

static cold run_cold(const cli_settings *s, int exact) {
    cold c = {0, 0, 0, 0, 0};
    int fd[2];
    if (pipe(fd) != 0) return c;
    char thr[32];
    snprintf(thr, sizeof thr, "%d", s->n_threads);
    fflush(stdout);
    double t0 = cli_now_s();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        if (exact)
            execl("/proc/self/exe", "qembed", "bench", "--cold-child", "-m", s->model, "--threads", thr,
                  "--exact", (char *)NULL);
        else
            execl("/proc/self/exe", "qembed", "bench", "--cold-child", "-m", s->model, "--threads", thr,
                  (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    if (pid < 0) {
        close(fd[0]);
        return c;
    }
    char buf[256] = {0};
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(fd[0], buf + got, sizeof buf - 1 - got)) > 0) {
        got += (size_t)r;
        if (memchr(buf, '\n', got)) break;
    }
    c.spawn_to_vector = cli_now_s() - t0;
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
        sscanf(buf, "%lf %lf %lf", &c.load, &c.warm, &c.first) == 3)
        c.ok = 1;
    return c;
}

/* One throughput figure of the --json output (batch, documents). */
static void add_throughput(cJSON *root, const char *name, double texts, double tokens, double seconds,
                           double gflops, double peak_gflops) {
    cJSON *o = cJSON_AddObjectToObject(root, name);
    cJSON_AddNumberToObject(o, "texts", texts);
    cJSON_AddNumberToObject(o, "tokens", tokens);
    cJSON_AddNumberToObject(o, "seconds", seconds);
    cJSON_AddNumberToObject(o, "tokens_per_s", seconds > 0 ? tokens / seconds : 0);
    cJSON_AddNumberToObject(o, "texts_per_s", seconds > 0 ? texts / seconds : 0);
    cJSON_AddNumberToObject(o, "gflops", gflops);
    cJSON_AddNumberToObject(o, "fraction_of_peak", gflops / peak_gflops);
}

int cmd_bench(int argc, char **argv) {
    cli_settings s;
    cli_settings_init(&s);
    const char *json_path = NULL;
    int exact = 0, child = 0, no_cold = 0, quick = 0;
    long query_runs = 60, batch_texts = 64, docs = 8, long_tokens = 8192;
    cli_args ap;
    cli_args_init(&ap, "bench", argc, argv, bench_opts, &s);
    for (int k; (k = cli_args_next(&ap)) != CLI_ARG_END;) {
        const char *val = ap.value;
        switch (k) {
            case CLI_ARG_ERROR: return 1;
            case CLI_ARG_OPERAND:
                fprintf(stderr, "qembed bench: unknown argument '%s' (see qembed bench --help)\n", val);
                return 1;
            case 'h':
                fputs(bench_help, stdout);
                fputc('\n', stdout);
                fputs(cli_settings_help, stdout);
                return 0;
            case OPT_JSON: json_path = val; break;
            case OPT_EXACT: exact = 1; break;
            case OPT_COLD_CHILD: child = 1; break;
            case OPT_NO_COLD: no_cold = 1; break;
            case OPT_QUICK:
                quick = 1;
                query_runs = 20;
                batch_texts = 8;
                docs = 1;
                long_tokens = 1024;
                break;
            default: { /* the four counts */
                long v;
                if (cli_parse_long(val, 0, 1000000, &v) != 0) {
                    fprintf(stderr, "qembed bench: %s wants a count, got '%s'\n", ap.spelled, val);
                    return 1;
                }
                if (k == OPT_QUERY_RUNS)
                    query_runs = v;
                else if (k == OPT_BATCH_TEXTS)
                    batch_texts = v;
                else if (k == OPT_DOCS)
                    docs = v;
                else
                    long_tokens = v;
                break;
            }
        }
    }
    if (child) return cold_child(&s, exact);
    if (query_runs < 1) query_runs = 1;

    /* cold start first: nothing of this process is warm yet */
    cold cs = {0, 0, 0, 0, 0};
    if (!no_cold && s.model[0]) {
        fprintf(stderr, "bench: cold start (new process)...\n");
        cs = run_cold(&s, exact);
        if (!cs.ok) fprintf(stderr, "qembed bench: the cold-start child failed (see above)\n");
    }

    qembed_model_params mp = cli_settings_model_params(&s);
    mp.exact = exact;
    if (mp.log_level < QEMBED_LOG_WARN && !s.verbose) mp.log_level = QEMBED_LOG_WARN;
    /* the long input must fit one pass: plan the context for it (the
     * planner and the activation memory follow) */
    if (long_tokens > 0 && (size_t)long_tokens > mp.max_batch_tokens)
        mp.max_batch_tokens = (size_t)long_tokens;
    double tl0 = cli_now_s();
    qembed_model *m = cli_settings_load_model(&s, &mp);
    if (!m) return 2;
    double load_s = cli_now_s() - tl0;
    qembed_model_info in;
    qembed_model_get_info(m, &in);
    qembed_ctx *ctx = NULL;
    qembed_ctx_params cp = qembed_ctx_default_params();
    cp.n_threads = s.n_threads;
    qembed_error e;
    memset(&e, 0, sizeof e);
    if (qembed_ctx_create(m, &cp, &ctx, &e) != QEMBED_OK) {
        fprintf(stderr, "qembed bench: cannot create a context: %s\n", e.message);
        qembed_model_free(m);
        return 2;
    }
    int rc = 2;
    int dims = in.hidden_size;
    char *query = NULL;
    char **batch = NULL, **docv = NULL;
    char *longt = NULL;
    size_t q_tok = 0, batch_tok = 0, doc_tok = 0, long_tok = 0;
    double *qt = calloc((size_t)query_runs, sizeof *qt);
    batch = calloc((size_t)batch_texts + 1, sizeof *batch);
    docv = calloc((size_t)docs + 1, sizeof *docv);
    if (!qt || !batch || !docv) goto out;

    fprintf(stderr, "bench: model %s (%s, %d layers, hidden %d), preparing texts...\n", in.name, in.dtype,
            in.n_layers, in.hidden_size);
    query = make_text(m, 16, 1, &q_tok);
    if (!query) {
        fprintf(stderr, "qembed bench: cannot make the benchmark texts\n");
        goto out;
    }
    for (long i = 0; i < batch_texts; i++) {
        size_t n = 0;
        if (!(batch[i] = make_text(m, 128, 100 + (unsigned)i, &n))) goto out;
        batch_tok += n;
    }
    for (long i = 0; i < docs; i++) {
        size_t n = 0;
        if (!(docv[i] = make_text(m, 2000, 1000 + (unsigned)i, &n))) goto out;
        doc_tok += n;
    }
    if (long_tokens > 0 && !(longt = make_text(m, (size_t)long_tokens, 7, &long_tok))) goto out;

    /* warm-up: first use of the planned buffers, outside every timing */
    if (timed_embed(ctx, &query, 1, dims, "warm-up") < 0) goto out;

    fprintf(stderr, "bench: 16-token query x %ld...\n", query_runs);
    for (long r = 0; r < query_runs; r++)
        if ((qt[r] = timed_embed(ctx, &query, 1, dims, "query")) < 0) goto out;
    qsort(qt, (size_t)query_runs, sizeof *qt, cmp_d);

    fprintf(stderr, "bench: batch %ld x ~128 tokens...\n", batch_texts);
    double tb = batch_texts ? timed_embed(ctx, batch, (size_t)batch_texts, dims, "batch") : 0;
    if (tb < 0) goto out;
    fprintf(stderr, "bench: %ld documents x ~2000 tokens...\n", docs);
    double td = docs ? timed_embed(ctx, docv, (size_t)docs, dims, "documents") : 0;
    if (td < 0) goto out;
    double rss_before_long = (double)cli_proc_status_bytes("VmHWM");
    double tlong = 0;
    if (longt) {
        fprintf(stderr, "bench: one %zu-token input...\n", long_tok);
        if ((tlong = timed_embed_max(ctx, &longt, 1, dims, "long input", long_tok > 8192 ? long_tok : 0)) < 0)
            goto out;
    }
    double hwm = (double)cli_proc_status_bytes("VmHWM");

    fprintf(stderr, "bench: measuring this machine's peak...\n");
    qembed_machine_peak pk;
    if (qembed_measure_peak(s.n_threads, exact, &pk, &e) != QEMBED_OK) {
        fprintf(stderr, "qembed bench: peak measurement failed: %s\n", e.message);
        goto out;
    }

    double f_q = seq_flops(&in, (double)q_tok);
    double f_b = seq_flops(&in, (double)batch_tok / (batch_texts ? batch_texts : 1)) * batch_texts;
    double f_d = seq_flops(&in, (double)doc_tok / (docs ? docs : 1)) * docs;
    double f_l = seq_flops(&in, (double)long_tok);
    double g_b = tb > 0 ? f_b / tb * 1e-9 : 0, g_d = td > 0 ? f_d / td * 1e-9 : 0;
    double g_q = f_q / qt[0] * 1e-9, g_l = tlong > 0 ? f_l / tlong * 1e-9 : 0;
    double w_bytes = (double)in.weights_bytes;
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    long ncores = sysconf(_SC_NPROCESSORS_ONLN);
    double la[3] = {0, 0, 0};
    getloadavg(la, 3);

    printf("\nqembed bench  %s\n", quick ? "(--quick: smoke-test sizes, not figures to publish)" : "");
    printf("machine  %s, %ld cores, isa %s, %d threads, load average %.2f\n", cpu, ncores, pk.isa,
           pk.n_threads, la[0]);
    printf("model    %s  %s  %d layers  hidden %d  heads %d/%d x %d  ffn %d  %.2f GB weights%s\n", in.name,
           in.dtype, in.n_layers, in.hidden_size, in.n_heads, in.n_kv_heads, in.head_dim,
           in.intermediate_size, w_bytes * 1e-9, in.synthetic ? "  (synthetic)" : "");
    /* Which device ran which layers: every figure below is for this placement. */
    const char *placement = qembed_model_placement(m);
    int on_vulkan = 0; /* a segment line names a Vulkan device (not the "unused:" line) */
    for (const char *pl = placement; *pl;) {
        const char *nl = strchr(pl, '\n');
        int len = nl ? (int)(nl - pl) : (int)strlen(pl);
        if (len > 2 && pl[0] == ' ' && pl[2] >= '0' && pl[2] <= '9') {
            printf("device   %.*s\n", len - 2, pl + 2);
            char seg[512];
            snprintf(seg, sizeof seg, "%.*s", len, pl);
            if (strstr(seg, " vulkan")) on_vulkan = 1;
        }
        pl += len + (nl ? 1 : 0);
    }
    if (on_vulkan)
        printf("         (layers on a Vulkan device: the peak and the achieved percentages below are "
               "the CPU's; on a software device such as lavapipe the figures only show the path works)\n");
    printf("mode     %s activations\n\n", on_vulkan ? "f32 on the Vulkan device,"
                                          : exact   ? "f32 (exact)"
                                                    : "bf16");
    printf("%-30s %s\n", "figure", "value");
    if (cs.ok)
        printf("%-30s %.3f s  (load %.3f, warm-up %.3f, first vector %.3f; rest is process start)\n",
               "cold start to first vector", cs.spawn_to_vector, cs.load, cs.warm, cs.first);
    else if (!no_cold)
        printf("%-30s failed\n", "cold start to first vector");
    printf("%-30s %.3f s (this process, page cache warm)\n", "load", load_s);
    printf("%-30s p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  (min %.1f, %ld runs)\n", "query (16 tokens)",
           pct(qt, (int)query_runs, 50) * 1e3, pct(qt, (int)query_runs, 95) * 1e3,
           pct(qt, (int)query_runs, 99) * 1e3, qt[0] * 1e3, query_runs);
    {
        char label[64];
        snprintf(label, sizeof label, "batch %ld x ~128 tokens", batch_texts);
        if (batch_texts)
            printf("%-30s %.1f tokens/s  %.2f texts/s  (%zu tokens, %.2f s)\n", label, batch_tok / tb,
                   batch_texts / tb, batch_tok, tb);
        snprintf(label, sizeof label, "documents %ld x ~2000 tokens", docs);
        if (docs)
            printf("%-30s %.1f tokens/s  %.2f texts/s  (%zu tokens, %.2f s)\n", label, doc_tok / td,
                   docs / td, doc_tok, td);
    }
    if (longt)
        printf("%-30s %.2f s (%zu tokens)  peak RSS %.0f MiB (before it %.0f MiB)\n", "long input", tlong,
               long_tok, hwm / 1048576.0, rss_before_long / 1048576.0);
    char bf16_peak[64];
    if (pk.bf16_dot_gflops > 0)
        snprintf(bf16_peak, sizeof bf16_peak, "%.1f", pk.bf16_dot_gflops);
    else
        snprintf(bf16_peak, sizeof bf16_peak, "n/a (no AVX512-BF16)");
    printf("%-30s %.1f GFLOP/s f32 FMA, bf16 dot %s, DRAM read %.1f GB/s (%.1f huge pages)\n",
           "machine peak (measured)", pk.f32_fma_gflops, bf16_peak, pk.dram_read_gbs,
           pk.dram_read_hugepage_gbs);
    printf("%-30s %.1f MiB for %zu tokens per pass (planned at start: the most a pass adds, whatever its "
           "length)\n",
           "activation memory", (double)qembed_ctx_activation_bytes(ctx) / 1048576.0, mp.max_batch_tokens);
    /* Against the peak of the instructions the products run (pk.isa: "amx"
     * is the tile peak, tdpbf16ps); a figure that was not run reads n/a. */
    char ach[3][64];
    const double gs[3] = {g_b, g_d, g_q};
    for (int k = 0; k < 3; k++) {
        if (gs[k] > 0)
            snprintf(ach[k], sizeof ach[k], "%.1f = %.0f%%", gs[k], 100 * gs[k] / pk.compute_gflops);
        else
            snprintf(ach[k], sizeof ach[k], "n/a");
    }
    printf("%-30s batch %s; docs %s; query %s (GFLOP/s, %% of the %s peak %.1f)\n", "achieved", ach[0],
           ach[1], ach[2], pk.isa, pk.compute_gflops);
    printf("%-30s %.0f MiB = %.2f x the weights (%.0f MiB)\n", "peak RSS", hwm / 1048576.0,
           w_bytes > 0 ? hwm / w_bytes : 0, w_bytes / 1048576.0);

    if (json_path) {
        cJSON *root = cJSON_CreateObject();
        cJSON *mach = cJSON_AddObjectToObject(root, "machine");
        cJSON_AddStringToObject(mach, "cpu", cpu);
        cJSON_AddNumberToObject(mach, "cores", (double)ncores);
        cJSON_AddStringToObject(mach, "isa", pk.isa);
        cJSON_AddNumberToObject(mach, "threads", pk.n_threads);
        cJSON_AddNumberToObject(mach, "load_average", la[0]);
        cJSON_AddNumberToObject(mach, "peak_f32_fma_gflops", pk.f32_fma_gflops);
        cJSON_AddNumberToObject(mach, "peak_bf16_dot_gflops", pk.bf16_dot_gflops);
        cJSON_AddNumberToObject(mach, "peak_compute_gflops", pk.compute_gflops);
        cJSON_AddNumberToObject(mach, "dram_read_gbs", pk.dram_read_gbs);
        cJSON_AddNumberToObject(mach, "dram_read_hugepage_gbs", pk.dram_read_hugepage_gbs);
        cJSON_AddStringToObject(root, "placement", placement);
        cJSON *mo = cJSON_AddObjectToObject(root, "model");
        cJSON_AddStringToObject(mo, "name", in.name);
        cJSON_AddStringToObject(mo, "dtype", in.dtype);
        cJSON_AddNumberToObject(mo, "layers", in.n_layers);
        cJSON_AddNumberToObject(mo, "hidden", in.hidden_size);
        cJSON_AddNumberToObject(mo, "heads", in.n_heads);
        cJSON_AddNumberToObject(mo, "kv_heads", in.n_kv_heads);
        cJSON_AddNumberToObject(mo, "head_dim", in.head_dim);
        cJSON_AddNumberToObject(mo, "intermediate", in.intermediate_size);
        cJSON_AddNumberToObject(mo, "weights_bytes", w_bytes);
        cJSON_AddBoolToObject(mo, "synthetic", in.synthetic);
        cJSON_AddStringToObject(root, "mode", exact ? "exact" : "bf16");
        cJSON_AddBoolToObject(root, "quick", quick);
        if (cs.ok) {
            cJSON *c = cJSON_AddObjectToObject(root, "cold_start");
            cJSON_AddNumberToObject(c, "spawn_to_first_vector_s", cs.spawn_to_vector);
            cJSON_AddNumberToObject(c, "load_s", cs.load);
            cJSON_AddNumberToObject(c, "warmup_s", cs.warm);
            cJSON_AddNumberToObject(c, "first_inference_s", cs.first);
        }
        cJSON_AddNumberToObject(root, "load_s", load_s);
        cJSON *q = cJSON_AddObjectToObject(root, "query");
        cJSON_AddNumberToObject(q, "tokens", (double)q_tok);
        cJSON_AddNumberToObject(q, "runs", (double)query_runs);
        cJSON_AddNumberToObject(q, "p50_ms", pct(qt, (int)query_runs, 50) * 1e3);
        cJSON_AddNumberToObject(q, "p95_ms", pct(qt, (int)query_runs, 95) * 1e3);
        cJSON_AddNumberToObject(q, "p99_ms", pct(qt, (int)query_runs, 99) * 1e3);
        cJSON_AddNumberToObject(q, "min_ms", qt[0] * 1e3);
        cJSON_AddNumberToObject(q, "gflops_best", g_q);
        add_throughput(root, "batch", (double)batch_texts, (double)batch_tok, tb, g_b, pk.compute_gflops);
        add_throughput(root, "documents", (double)docs, (double)doc_tok, td, g_d, pk.compute_gflops);
        if (longt) {
            cJSON *l = cJSON_AddObjectToObject(root, "long_input");
            cJSON_AddNumberToObject(l, "tokens", (double)long_tok);
            cJSON_AddNumberToObject(l, "seconds", tlong);
            cJSON_AddNumberToObject(l, "gflops", g_l);
            cJSON_AddNumberToObject(l, "peak_rss_bytes", hwm);
        }
        cJSON_AddNumberToObject(root, "activation_bytes_planned", (double)qembed_ctx_activation_bytes(ctx));
        cJSON_AddNumberToObject(root, "peak_rss_bytes", hwm);
        cJSON_AddNumberToObject(root, "peak_rss_over_weights", w_bytes > 0 ? hwm / w_bytes : 0);
        char *txt = cJSON_Print(root);
        FILE *f = txt ? fopen(json_path, "w") : NULL;
        if (!f || fputs(txt, f) < 0 || fputc('\n', f) < 0 || fclose(f) != 0) {
            fprintf(stderr, "qembed bench: cannot write %s\n", json_path);
            if (f) fclose(f);
            cJSON_free(txt);
            cJSON_Delete(root);
            goto out;
        }
        cJSON_free(txt);
        cJSON_Delete(root);
        printf("\nwrote %s\n", json_path);
    }
    rc = 0;
out:
    free(qt);
    free(query);
    if (batch)
        for (long i = 0; i < batch_texts; i++) free(batch[i]);
    if (docv)
        for (long i = 0; i < docs; i++) free(docv[i]);
    free(batch);
    free(docv);
    free(longt);
    qembed_ctx_free(ctx);
    qembed_model_free(m);
    return rc;
}
