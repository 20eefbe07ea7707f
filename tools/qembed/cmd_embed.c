/* qembed embed: texts -> vectors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "cli_io.h"
#include "commands.h"

#define CHUNK_TEXTS 256 /* texts read, embedded and written at a time: constant memory */

static const char *const embed_help =
    "usage: qembed embed [options] TEXT...\n"
    "       qembed embed [options] --input FILE\n"
    "\n"
    "Embeds texts with a Qwen3-Embedding model: one L2-normalised vector per text, in input order.\n"
    "\n"
    "Input:\n"
    "  TEXT...                 texts to embed, one per argument\n"
    "  -i, --input FILE        one text per line; FILE.jsonl: one JSON string per line (texts may\n"
    "                          hold newlines); '-' reads standard input. Streams in constant memory.\n"
    "      --input-format F    text | jsonl (default: from the file name)\n"
    "Output:\n"
    "  -o, --output FILE       write here (default standard output); format from the extension\n"
    "                          (.json, .jsonl, .npy, .tsv) unless --format is given\n"
    "  -f, --format F          json | jsonl | npy | tsv (default jsonl)\n"
    "Embedding:\n"
    "      --instruct TASK     format each text as \"Instruct: TASK\\nQuery:TEXT\" (queries)\n"
    "      --dims N            Matryoshka: keep the first N dimensions (32..hidden), re-normalised\n"
    "      --max-tokens N      longest input in tokens, counting the appended <|endoftext|>\n"
    "                          (default 8192, at most the model's max_position_embeddings)\n"
    "      --truncate          keep the first max-tokens-1 tokens of longer inputs (then\n"
    "                          <|endoftext|>) instead of failing\n"
    "      --exact             f32 activations everywhere (slower; the reference numerics)\n"
    "      --no-special        treat special-token text such as <|endoftext|> as plain text\n"
    "      --progress, --no-progress  force the progress bar on or off (default: on when\n"
    "                          stderr is a terminal and --input is used)\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: 0 success, 1 usage error, 2 input or model error.\n";

enum {
    OPT_INPUT_FORMAT = 256,
    OPT_INSTRUCT,
    OPT_DIMS,
    OPT_MAX_TOKENS,
    OPT_TRUNCATE,
    OPT_EXACT,
    OPT_NO_SPECIAL,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
};

static const qe_optdef embed_opts[] = {
    {"help", 'h', 0},
    {"input", 'i', 1},
    {"input-format", OPT_INPUT_FORMAT, 1},
    {"output", 'o', 1},
    {"format", 'f', 1},
    {"instruct", OPT_INSTRUCT, 1},
    {"dims", OPT_DIMS, 1},
    {"max-tokens", OPT_MAX_TOKENS, 1},
    {"truncate", OPT_TRUNCATE, 0},
    {"exact", OPT_EXACT, 0},
    {"no-special", OPT_NO_SPECIAL, 0},
    {"progress", OPT_PROGRESS, 0},
    {"no-progress", OPT_NO_PROGRESS, 0},
    {NULL, 0, 0},
};

static int parse_size(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One line on stderr, redrawn in place: count, tokens/s, time left. */
static void progress(size_t done, long total, uint64_t tokens, double t0, int final) {
    double el = now_s() - t0;
    double tps = el > 0 ? (double)tokens / el : 0.0;
    char eta[32] = "?";
    if (total > 0 && done > 0) {
        double left = el / (double)done * (double)((size_t)total - done);
        snprintf(eta, sizeof eta, "%d:%02d", (int)(left / 60), (int)left % 60);
    }
    char bar[33];
    int fill = total > 0 ? (int)(32.0 * (double)done / (double)total) : 0;
    for (int i = 0; i < 32; i++) bar[i] = i < fill ? '#' : '.';
    bar[32] = '\0';
    if (total > 0)
        fprintf(stderr, "\r[%s] %zu/%ld texts  %.0f tokens/s  ETA %s ", bar, done, total, tps, eta);
    else
        fprintf(stderr, "\r%zu texts  %.0f tokens/s ", done, tps);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

int cmd_embed(int argc, char **argv) {
    qe_settings s;
    qe_settings_init(&s);
    const char *input = NULL, *input_format = NULL, *output = NULL, *format = NULL;
    qembed_embed_options opts = qembed_embed_default_options();
    long dims = 0, max_tokens = 0;
    int exact = 0, show_progress = -1;
    char **texts = calloc((size_t)argc + 1, sizeof *texts);
    int n_texts = 0, rc = 1;
    if (!texts) {
        fprintf(stderr, "qembed embed: out of memory\n");
        return 2;
    }
    qembed_model *model = NULL;
    qembed_ctx *ctx = NULL;
    qe_reader rd;
    memset(&rd, 0, sizeof rd);
    qe_chunk chunk;
    memset(&chunk, 0, sizeof chunk);
    qe_writer wr;
    memset(&wr, 0, sizeof wr);
    int writer_open = 0;
    float *vec = NULL;

    qe_args ap;
    qe_args_init(&ap, "embed", argc, argv, embed_opts, &s);
    for (int k; (k = qe_args_next(&ap)) != QE_ARG_END;) {
        const char *v = ap.value;
        switch (k) {
        case QE_ARG_ERROR: goto out;
        case QE_ARG_OPERAND: texts[n_texts++] = (char *)v; break;
        case 'h':
            fputs(embed_help, stdout);
            fputc('\n', stdout);
            fputs(qe_settings_help, stdout);
            rc = 0;
            goto out;
        case 'i': input = v; break;
        case OPT_INPUT_FORMAT: input_format = v; break;
        case 'o': output = v; break;
        case 'f': format = v; break;
        case OPT_INSTRUCT: opts.instruction = v; break;
        case OPT_DIMS:
            if (parse_size(v, 1, 1 << 20, &dims) != 0) {
                fprintf(stderr, "qembed embed: --dims '%s': expected a whole number (32..hidden size)\n", v);
                goto out;
            }
            break;
        case OPT_MAX_TOKENS:
            if (parse_size(v, 1, 1 << 24, &max_tokens) != 0) {
                fprintf(stderr, "qembed embed: --max-tokens '%s': expected a positive whole number\n", v);
                goto out;
            }
            break;
        case OPT_TRUNCATE: opts.truncate = 1; break;
        case OPT_EXACT: exact = 1; break;
        case OPT_NO_SPECIAL: opts.parse_special = 0; break;
        case OPT_PROGRESS: show_progress = 1; break;
        case OPT_NO_PROGRESS: show_progress = 0; break;
        }
    }
    if (!input && n_texts == 0) {
        fprintf(stderr, "qembed embed: no input: give texts as arguments or --input FILE (see --help)\n");
        goto out;
    }
    if (input && n_texts > 0) {
        fprintf(stderr, "qembed embed: give texts as arguments or --input FILE, not both\n");
        goto out;
    }
    qe_out_fmt fmt = QE_OUT_JSONL;
    if (format) {
        if (qe_out_fmt_parse(format, &fmt) != 0) {
            fprintf(stderr, "qembed embed: --format '%s': expected json, jsonl, npy or tsv\n", format);
            goto out;
        }
    } else if (output && strcmp(output, "-") != 0 && qe_out_fmt_from_name(output, &fmt) != 0) {
        fprintf(stderr, "qembed embed: --output '%s': cannot tell the format from the extension; "
                        "use .json, .jsonl, .npy or .tsv, or --format\n", output);
        goto out;
    }
    if (input_format && strcmp(input_format, "text") && strcmp(input_format, "jsonl")) {
        fprintf(stderr, "qembed embed: --input-format '%s': expected text or jsonl\n", input_format);
        goto out;
    }

    /* From here on, failures are input or model errors. */
    rc = 2;
    if (qe_reader_open(&rd, input, input_format, texts, n_texts) != 0) {
        fprintf(stderr, "qembed embed: %s\n", rd.err);
        goto out;
    }
    int bar = show_progress >= 0 ? show_progress : (input && isatty(2) && !s.quiet);
    qembed_model_params mp = qe_settings_model_params(&s);
    mp.exact = exact;
    /* The bar redraws one terminal line; per-pass INFO lines would break it
     * (-v still shows them). */
    if (bar && !s.verbose && mp.log_level < QEMBED_LOG_WARN) mp.log_level = QEMBED_LOG_WARN;
    model = qe_settings_load_model(&s, &mp);
    if (!model) goto out;
    qembed_model_info info;
    qembed_model_get_info(model, &info);
    if (info.synthetic)
        fprintf(stderr, "warning: %s is a synthetic model with random weights: its vectors carry "
                        "no meaning (useful for testing and timing only)\n", info.resolved_path);
    if (dims && (dims < 32 || dims > info.hidden_size)) {
        fprintf(stderr, "qembed embed: --dims %ld is out of range: expected 32..%d (the model's hidden size)\n",
                dims, info.hidden_size);
        rc = 1;
        goto out;
    }
    if (max_tokens > info.max_position_embeddings) {
        fprintf(stderr, "qembed embed: --max-tokens %ld exceeds the model's max_position_embeddings %d\n",
                max_tokens, info.max_position_embeddings);
        rc = 1;
        goto out;
    }
    opts.max_tokens = (size_t)max_tokens;
    opts.dims = (int)dims;
    int out_dims = dims ? (int)dims : info.hidden_size;

    qembed_error err = {0};
    qembed_ctx_params cp = qembed_ctx_default_params();
    /* a --max-tokens input must fit one forward pass */
    if ((size_t)max_tokens > mp.max_batch_tokens) cp.max_batch_tokens = (size_t)max_tokens;
    if (qembed_ctx_create(model, &cp, &ctx, &err) != QEMBED_OK) {
        fprintf(stderr, "qembed embed: %s\n", err.message);
        goto out;
    }
    long total = -1;
    if (fmt == QE_OUT_NPY || bar) {
        total = qe_reader_count(&rd);
        if (total < 0 && rd.err[0]) {
            fprintf(stderr, "qembed embed: %s\n", rd.err);
            goto out;
        }
    }
    if (qe_writer_open(&wr, output, fmt, out_dims, total) != 0) goto out;
    writer_open = 1;
    vec = malloc((size_t)CHUNK_TEXTS * (size_t)out_dims * sizeof(float));
    if (!vec) {
        fprintf(stderr, "qembed embed: out of memory\n");
        goto out;
    }
    size_t done = 0;
    uint64_t tokens = 0;
    double t0 = now_s();
    for (;;) {
        /* smaller chunks with the bar, so it moves on big models */
        int k = qe_reader_chunk(&rd, &chunk, bar ? CHUNK_TEXTS / 4 : CHUNK_TEXTS, done);
        if (k < 0) {
            fprintf(stderr, "qembed embed: %s\n", rd.err);
            goto out;
        }
        if (k == 0) break;
        if (qembed_ctx_embed(ctx, (const char *const *)chunk.texts, chunk.lens, chunk.n, &opts, vec,
                             &err) != QEMBED_OK) {
            if (bar) fputc('\n', stderr);
            qe_report_input_error("embed", &rd, &chunk, &err);
            rc = err.code == QEMBED_ERR_INVALID_ARGUMENT ? 1 : 2;
            goto out;
        }
        if (qe_writer_rows(&wr, vec, chunk.n) != 0) {
            fprintf(stderr, "qembed embed: error writing the output: %m\n");
            goto out;
        }
        done += chunk.n;
        if (bar) {
            /* Token counts for the bar only (a second tokenization, cheap
             * next to the model). */
            for (size_t j = 0; j < chunk.n; j++) {
                int32_t *ids = NULL;
                size_t n = 0;
                if (qembed_model_tokenize(model, chunk.texts[j], chunk.lens[j], &opts, &ids, &n,
                                          NULL) == QEMBED_OK)
                    tokens += n;
                qembed_free(ids);
            }
            progress(done, total, tokens, t0, 0);
        }
    }
    if (bar) progress(done, total, tokens, t0, 1);
    writer_open = 0;
    if (qe_writer_close(&wr) != 0) goto out;
    rc = 0;
out:
    if (writer_open) {
        qe_writer_close(&wr);
        /* no half-written output file left behind to be mistaken for a result */
        if (output && strcmp(output, "-") != 0) unlink(output);
    }
    free(vec);
    qe_chunk_free(&chunk);
    qe_reader_close(&rd);
    qembed_ctx_free(ctx);
    qembed_model_free(model);
    free(texts);
    return rc;
}
