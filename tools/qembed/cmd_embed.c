/* qembed embed: texts -> vectors, streamed in chunks; with --resume or
 * --shard a bulk job whose progress is committed chunk by chunk
 * (job_state.h), with --on-error skip one that records bad inputs as gaps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "cli_io.h"
#include "commands.h"
#include "job_state.h"

/* Texts read, embedded and written at a time: constant memory. The same as a
 * bulk job's chunk, so a plain run and a bulk job batch alike. */
#define CHUNK_TEXTS CLI_JOB_CHUNK

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
    "Bulk jobs (see README, \"Bulk jobs\"):\n"
    "      --resume            commit progress every 256 texts (output fsynced, state in\n"
    "                          OUTPUT.qembed-state); run the same command again after a kill to\n"
    "                          continue where it stopped. Needs --input FILE and -o FILE (.npy,\n"
    "                          .jsonl or .tsv)\n"
    "      --shard I/N         embed only part I of N (0 <= I < N): chunks of 256 texts dealt\n"
    "                          round-robin; join the parts with qembed merge. Commits as --resume\n"
    "      --on-error MODE     strict (default): a bad input stops the job (exit 2); skip: record\n"
    "                          it (input, line, reason) in the report and leave a gap, a row of\n"
    "                          NaN (.npy, .tsv) or null (.json, .jsonl), so row k stays input k\n"
    "      --error-report FILE where skip writes its report (JSON lines; default OUTPUT.errors.jsonl,\n"
    "                          or standard error when writing to standard output)\n"
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
    OPT_RESUME,
    OPT_SHARD,
    OPT_ON_ERROR,
    OPT_ERROR_REPORT,
};

static const cli_optdef embed_opts[] = {
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
    {"resume", OPT_RESUME, 0},
    {"shard", OPT_SHARD, 1},
    {"on-error", OPT_ON_ERROR, 1},
    {"error-report", OPT_ERROR_REPORT, 1},
    {NULL, 0, 0},
};

/* One line on stderr, redrawn in place: count, tokens/s, time left. The
 * estimate is by bytes of a file input (pos of size): the input is read once,
 * never counted first. */
static void progress(size_t done, long long pos, long long size, uint64_t tokens, double t0, int final) {
    double el = cli_now_s() - t0;
    double tps = el > 0 ? (double)tokens / el : 0.0;
    double frac = size > 0 && pos >= 0 ? (double)pos / (double)size : -1.0;
    if (frac > 1.0) frac = 1.0;
    char eta[32] = "?";
    if (frac > 0) {
        double left = el / frac * (1.0 - frac);
        snprintf(eta, sizeof eta, "%d:%02d", (int)(left / 60), (int)left % 60);
    }
    char bar[33];
    int fill = frac > 0 ? (int)(32.0 * frac) : 0;
    for (int i = 0; i < 32; i++) bar[i] = i < fill ? '#' : '.';
    bar[32] = '\0';
    if (frac >= 0)
        fprintf(stderr, "\r[%s] %3.0f%%  %zu texts  %.0f tokens/s  ETA %s ", bar, 100.0 * frac, done, tps,
                eta);
    else
        fprintf(stderr, "\r%zu texts  %.0f tokens/s ", done, tps);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

/* The --on-error skip report: one JSON object per skipped input. */
static int report_skip(FILE *f, size_t input, size_t line, const char *reason) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "input", (double)input);
    if (line)
        cJSON_AddNumberToObject(o, "line", (double)line);
    else
        cJSON_AddNumberToObject(o, "argument", (double)input + 1);
    cJSON_AddStringToObject(o, "reason", reason);
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    int rc = t && fprintf(f, "%s\n", t) > 0 ? 0 : -1;
    free(t);
    return rc;
}

/* A library error that names one input of the batch ("input K: ...") and is
 * about that input, not the run: with --on-error skip it becomes a gap. */
static int input_error(const qembed_error *e, size_t n, size_t *k, const char **reason) {
    switch (e->code) {
        case QEMBED_ERR_INVALID_ARGUMENT:
        case QEMBED_ERR_INVALID_UTF8:
        case QEMBED_ERR_INPUT_TOO_LONG:
        case QEMBED_ERR_EMPTY_INPUT:
        case QEMBED_ERR_NUMERIC: break;
        default: return 0;
    }
    int used = 0;
    if (sscanf(e->message, "input %zu%n", k, &used) != 1 || used <= 0 || *k >= n) return 0;
    const char *r = e->message + used;
    while (*r == ':' || *r == ' ') r++;
    *reason = *r ? r : e->message;
    return 1;
}

/* Embeds a chunk into vec (row i for chunk text i). With skip, an input the
 * library refuses is marked in c->why and the rest embedded again without it
 * (the same batch whether or not the job was interrupted: byte-identical
 * results). Rows of marked texts are left undefined. Returns 0, or the
 * library's status with err set (err naming the input as chunk index). */
/* Embeds the chunk's texts (in skip mode: all but the bad ones, marking each
 * bad one and retrying). *tokens grows by the tokens embedded, as the library
 * counts them (n_tokens_out; capped at max_tokens when truncating), for the
 * progress bar: one tokenization per text. */
static qembed_status embed_chunk(qembed_ctx *ctx, cli_chunk *c, const qembed_embed_options *opts,
                                 size_t max_tokens, int skip, int dims, float *vec, float *tmp,
                                 uint64_t *tokens, qembed_error *err) {
    const char *ptrs[CHUNK_TEXTS];
    size_t lens[CHUNK_TEXTS], idx[CHUNK_TEXTS], ntok[CHUNK_TEXTS];
    qembed_embed_options o = *opts;
    o.n_tokens_out = ntok;
    for (;;) {
        size_t m = 0;
        for (size_t i = 0; i < c->n; i++) {
            if (c->why && c->why[i]) continue;
            ptrs[m] = c->texts[i];
            lens[m] = c->lens[i];
            idx[m++] = i;
        }
        if (m == 0) return QEMBED_OK;
        qembed_status st = qembed_ctx_embed(ctx, ptrs, lens, m, &o, skip ? tmp : vec, err);
        if (st == QEMBED_OK) {
            for (size_t j = 0; j < m; j++) *tokens += ntok[j] < max_tokens ? ntok[j] : max_tokens;
            if (skip)
                for (size_t j = 0; j < m; j++)
                    memcpy(vec + idx[j] * (size_t)dims, tmp + j * (size_t)dims, (size_t)dims * sizeof(float));
            return QEMBED_OK;
        }
        size_t k;
        const char *reason;
        if (!skip || !input_error(err, m, &k, &reason)) {
            int used = 0;
            if (skip && sscanf(err->message, "input %zu%n", &k, &used) == 1 && used > 0 && k < m) {
                /* name the input by its index in the chunk, as strict mode does */
                char msg[sizeof err->message];
                snprintf(msg, sizeof msg, "input %zu%s", idx[k], err->message + used);
                snprintf(err->message, sizeof err->message, "%s", msg);
            }
            return st;
        }
        if (!(c->why[idx[k]] = strdup(reason))) {
            snprintf(err->message, sizeof err->message, "out of memory");
            err->code = QEMBED_ERR_OUT_OF_MEMORY;
            return QEMBED_ERR_OUT_OF_MEMORY;
        }
    }
}

/* What the vectors depend on, for the state file: a resumed job must match. */
static void job_options(char *buf, size_t n, const qembed_model_info *info, const char *fmt, int dims,
                        const qembed_embed_options *o, int exact, size_t max_batch, int skip) {
    snprintf(buf, n,
             "model=%s format=%s dims=%d instruct=%s max_tokens=%zu truncate=%d special=%d "
             "exact=%d max_batch_tokens=%zu on_error=%s",
             info->resolved_path, fmt, dims, o->instruction ? o->instruction : "(none)", o->max_tokens,
             o->truncate, o->parse_special, exact, max_batch, skip ? "skip" : "strict");
}

/* The report file: created, or reopened and cut back to what was committed. */
static FILE *open_report(const char *path, long long committed) {
    if (committed <= 0) return fopen(path, "wb");
    FILE *f = fopen(path, "r+b");
    if (!f) return NULL;
    if (ftruncate(fileno(f), (off_t)committed) != 0 || fseeko(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    return f;
}

int cmd_embed(int argc, char **argv) {
    cli_settings s;
    cli_settings_init(&s);
    const char *input = NULL, *input_format = NULL, *output = NULL, *format = NULL;
    qembed_embed_options opts = qembed_embed_default_options();
    long dims = 0, max_tokens = 0;
    int exact = 0, show_progress = -1, resume = 0, skip = 0, shard_i = 0, shard_n = 0, bulk = 0;
    const char *report_path = NULL;
    char **texts = calloc((size_t)argc + 1, sizeof *texts);
    int n_texts = 0, rc = 1;
    if (!texts) {
        fprintf(stderr, "qembed embed: out of memory\n");
        return 2;
    }
    qembed_model *model = NULL;
    qembed_ctx *ctx = NULL;
    cli_reader rd;
    memset(&rd, 0, sizeof rd);
    cli_chunk chunk;
    memset(&chunk, 0, sizeof chunk);
    cli_writer wr;
    memset(&wr, 0, sizeof wr);
    int writer_open = 0;
    float *vec = NULL;
    FILE *report = NULL;

    cli_args ap;
    cli_args_init(&ap, "embed", argc, argv, embed_opts, &s);
    for (int k; (k = cli_args_next(&ap)) != CLI_ARG_END;) {
        const char *v = ap.value;
        switch (k) {
            case CLI_ARG_ERROR: goto out;
            case CLI_ARG_OPERAND: texts[n_texts++] = (char *)v; break;
            case 'h':
                fputs(embed_help, stdout);
                fputc('\n', stdout);
                fputs(cli_settings_help, stdout);
                rc = 0;
                goto out;
            case 'i': input = v; break;
            case OPT_INPUT_FORMAT: input_format = v; break;
            case 'o': output = v; break;
            case 'f': format = v; break;
            case OPT_INSTRUCT: opts.instruction = v; break;
            case OPT_DIMS:
                if (cli_parse_long(v, 1, 1 << 20, &dims) != 0) {
                    fprintf(stderr, "qembed embed: --dims '%s': expected a whole number (32..hidden size)\n",
                            v);
                    goto out;
                }
                break;
            case OPT_MAX_TOKENS:
                if (cli_parse_long(v, 1, 1 << 24, &max_tokens) != 0) {
                    fprintf(stderr, "qembed embed: --max-tokens '%s': expected a positive whole number\n", v);
                    goto out;
                }
                break;
            case OPT_TRUNCATE: opts.truncate = 1; break;
            case OPT_EXACT: exact = 1; break;
            case OPT_NO_SPECIAL: opts.parse_special = 0; break;
            case OPT_PROGRESS: show_progress = 1; break;
            case OPT_NO_PROGRESS: show_progress = 0; break;
            case OPT_RESUME: resume = 1; break;
            case OPT_SHARD:
                if (cli_job_parse_shard(v, &shard_i, &shard_n) != 0) {
                    fprintf(stderr, "qembed embed: --shard '%s': expected I/N with 0 <= I < N (e.g. 0/4)\n",
                            v);
                    goto out;
                }
                break;
            case OPT_ON_ERROR:
                if (strcmp(v, "skip") && strcmp(v, "strict")) {
                    fprintf(stderr, "qembed embed: --on-error '%s': expected strict or skip\n", v);
                    goto out;
                }
                skip = !strcmp(v, "skip");
                break;
            case OPT_ERROR_REPORT: report_path = v; break;
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
    cli_out_fmt fmt = CLI_OUT_JSONL;
    if (format) {
        if (cli_out_fmt_parse(format, &fmt) != 0) {
            fprintf(stderr, "qembed embed: --format '%s': expected json, jsonl, npy or tsv\n", format);
            goto out;
        }
    } else if (output && strcmp(output, "-") != 0 && cli_out_fmt_from_name(output, &fmt) != 0) {
        fprintf(stderr,
                "qembed embed: --output '%s': cannot tell the format from the extension; "
                "use .json, .jsonl, .npy or .tsv, or --format\n",
                output);
        goto out;
    }
    if (input_format && strcmp(input_format, "text") && strcmp(input_format, "jsonl")) {
        fprintf(stderr, "qembed embed: --input-format '%s': expected text or jsonl\n", input_format);
        goto out;
    }
    bulk = resume || shard_n > 0;
    if (!shard_n) shard_n = 1;
    int to_file = output && strcmp(output, "-") != 0;
    if (bulk && (!input || !strcmp(input, "-") || !to_file)) {
        fprintf(stderr, "qembed embed: --resume and --shard need --input FILE (not standard input) "
                        "and -o FILE\n");
        goto out;
    }
    if (bulk && fmt == CLI_OUT_JSON) {
        fprintf(stderr, "qembed embed: --resume and --shard write .npy, .jsonl or .tsv (a JSON "
                        "array cannot be appended to)\n");
        goto out;
    }
    if (report_path && !skip) {
        fprintf(stderr, "qembed embed: --error-report needs --on-error skip\n");
        goto out;
    }
    char state_path[4096] = "", report_buf[4096];
    if (bulk) cli_job_state_path(state_path, sizeof state_path, output);
    if (skip && !report_path && to_file) {
        snprintf(report_buf, sizeof report_buf, "%s.errors.jsonl", output);
        report_path = report_buf;
    }

    /* From here on, failures are input or model errors. */
    rc = 2;
    if (cli_reader_open(&rd, input, input_format, texts, n_texts) != 0) {
        fprintf(stderr, "qembed embed: %s\n", rd.err);
        goto out;
    }
    rd.skip_bad = skip;
    if (bulk && rd.size <= 0) {
        fprintf(stderr, "qembed embed: --resume and --shard need a regular --input file: %s is not\n", input);
        goto out;
    }
    int bar = show_progress >= 0 ? show_progress : (input && isatty(2) && !s.quiet);
    qembed_model_params mp = cli_settings_model_params(&s);
    mp.exact = exact;
    /* The bar redraws one terminal line; per-pass INFO lines would break it
     * (-v still shows them). */
    if (bar && !s.verbose && mp.log_level < QEMBED_LOG_WARN) mp.log_level = QEMBED_LOG_WARN;
    model = cli_settings_load_model(&s, &mp);
    if (!model) goto out;
    qembed_model_info info;
    qembed_model_get_info(model, &info);
    if (info.synthetic)
        fprintf(stderr,
                "warning: %s is a synthetic model with random weights: its vectors carry "
                "no meaning (useful for testing and timing only)\n",
                info.resolved_path);
    if (dims && (dims < 32 || dims > info.hidden_size)) {
        fprintf(stderr,
                "qembed embed: --dims %ld is out of range: expected 32..%d (the model's hidden size)\n", dims,
                info.hidden_size);
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
    size_t max_tokens_eff = opts.max_tokens ? opts.max_tokens : info.max_tokens;
    int out_dims = dims ? (int)dims : info.hidden_size;

    qembed_error err = {0};
    qembed_ctx_params cp = qembed_ctx_default_params();
    /* a --max-tokens input must fit one forward pass */
    if ((size_t)max_tokens > mp.max_batch_tokens) cp.max_batch_tokens = (size_t)max_tokens;
    if (qembed_ctx_create(model, &cp, &ctx, &err) != QEMBED_OK) {
        fprintf(stderr, "qembed embed: %s\n", err.message);
        goto out;
    }

    /* The job: a new one, or the committed state of an interrupted one. */
    cli_job job;
    memset(&job, 0, sizeof job);
    if (bulk) {
        static const char *const fmt_names[] = {"json", "jsonl", "npy", "tsv"};
        char opt_s[sizeof job.options];
        job_options(opt_s, sizeof opt_s, &info, fmt_names[fmt], out_dims, &opts, exact,
                    cp.max_batch_tokens ? cp.max_batch_tokens : mp.max_batch_tokens, skip);
        struct stat in_st;
        if (stat(input, &in_st) != 0) {
            fprintf(stderr, "qembed embed: %s: %m\n", input);
            goto out;
        }
        long long in_mtime = (long long)in_st.st_mtim.tv_sec * 1000000000LL + in_st.st_mtim.tv_nsec;
        char e[700];
        int have = resume ? cli_job_load(state_path, &job, e, sizeof e) : 0;
        if (have < 0) {
            fprintf(stderr, "qembed embed: %s\n", e);
            goto out;
        }
        if (have) {
            const char *why = strcmp(job.options, opt_s)                         ? "its options differ"
                              : job.shard_i != shard_i || job.shard_n != shard_n ? "its --shard differs"
                              : strcmp(job.input, input)                         ? "its --input differs"
                              : job.input_size != (long long)in_st.st_size || job.input_mtime != in_mtime
                                  ? "the input file changed since it started"
                                  : NULL;
            if (why) {
                fprintf(stderr,
                        "qembed embed: cannot resume %s: %s (state: %s, this run: %s); "
                        "remove %s and the output to start over\n",
                        output, why, job.options, opt_s, state_path);
                goto out;
            }
            if (job.complete) {
                fprintf(stderr, "qembed embed: %s is complete (%zu rows); nothing to do\n", output, job.rows);
                rc = 0;
                goto out;
            }
            if (!s.quiet)
                fprintf(stderr, "qembed embed: resuming %s at input %zu (line %zu), %zu rows done\n", output,
                        job.texts, job.input_line, job.rows);
        } else {
            if (resume && access(output, F_OK) == 0) {
                fprintf(stderr,
                        "qembed embed: --resume: %s exists but %s does not, so it is not an "
                        "interrupted job's; remove it, or run without --resume to overwrite it\n",
                        output, state_path);
                goto out;
            }
            snprintf(job.options, sizeof job.options, "%s", opt_s);
            snprintf(job.input, sizeof job.input, "%s", input);
            job.shard_i = shard_i;
            job.shard_n = shard_n;
            job.input_size = (long long)in_st.st_size;
            job.input_mtime = in_mtime;
            /* saved before the output exists: a kill from here on finds a state */
            if (cli_job_save(state_path, &job, e, sizeof e) != 0) {
                fprintf(stderr, "qembed embed: %s\n", e);
                goto out;
            }
        }
        if (job.input_offset > 0 && cli_reader_seek(&rd, job.input_offset, job.input_line) != 0) {
            fprintf(stderr, "qembed embed: %s\n", rd.err);
            goto out;
        }
    }

    if (bulk) {
        if (cli_writer_reopen(&wr, output, fmt, out_dims, job.rows, job.output_bytes) != 0) goto out;
    } else {
        /* only .npy to a pipe needs the count first: elsewhere its header is
         * patched at the end, and the bar goes by the file's bytes */
        long total = -1;
        if (fmt == CLI_OUT_NPY && to_file == 0 && !isatty(1)) {
            struct stat ost;
            if (fstat(1, &ost) != 0 || !S_ISREG(ost.st_mode)) {
                total = cli_reader_count(&rd);
                if (total < 0 && rd.err[0]) {
                    fprintf(stderr, "qembed embed: %s\n", rd.err);
                    goto out;
                }
            }
        }
        if (cli_writer_open(&wr, output, fmt, out_dims, total) != 0) goto out;
    }
    writer_open = 1;
    if (skip) {
        report = report_path ? open_report(report_path, job.report_bytes) : stderr;
        if (!report) {
            fprintf(stderr, "qembed embed: %s: cannot write the error report: %m\n", report_path);
            goto out;
        }
    }
    vec = malloc((size_t)2 * CHUNK_TEXTS * (size_t)out_dims * sizeof(float));
    if (!vec) {
        fprintf(stderr, "qembed embed: out of memory\n");
        goto out;
    }
    size_t done = job.texts, skipped = job.skipped;
    uint64_t tokens = 0;
    double t0 = cli_now_s();
    /* bulk chunks are fixed (their boundaries make the result); a plain run
     * with the bar takes smaller ones so the bar moves on big models */
    size_t chunk_max = bulk || !bar ? CHUNK_TEXTS : CHUNK_TEXTS / 4;
    for (;;) {
        if (shard_n > 1 && (done / CHUNK_TEXTS) % (size_t)shard_n != (size_t)shard_i) {
            long n = cli_reader_skip(&rd, CHUNK_TEXTS); /* another shard's chunk */
            if (n < 0) {
                fprintf(stderr, "qembed embed: %s\n", rd.err);
                goto out;
            }
            if (n == 0) break;
            done += (size_t)n;
            continue;
        }
        int k = cli_reader_chunk(&rd, &chunk, chunk_max, done);
        if (k < 0) {
            fprintf(stderr, "qembed embed: %s\n", rd.err);
            goto out;
        }
        if (k == 0) break;
        if (embed_chunk(ctx, &chunk, &opts, max_tokens_eff, skip, out_dims, vec,
                        vec + (size_t)CHUNK_TEXTS * out_dims, &tokens, &err) != QEMBED_OK) {
            if (bar) fputc('\n', stderr);
            cli_report_input_error("embed", &rd, &chunk, &err);
            rc = err.code == QEMBED_ERR_INVALID_ARGUMENT ? 1 : 2;
            goto out;
        }
        for (size_t i = 0; i < chunk.n; i++) {
            int bad = chunk.why && chunk.why[i];
            if (bad) {
                skipped++;
                if (report_skip(report, done + i, chunk.lines[i], chunk.why[i]) != 0) {
                    fprintf(stderr, "qembed embed: error writing the error report\n");
                    goto out;
                }
            }
            if (bad ? cli_writer_gap(&wr) : cli_writer_rows(&wr, vec + i * (size_t)out_dims, 1)) {
                fprintf(stderr, "qembed embed: error writing the output: %m\n");
                goto out;
            }
        }
        done += chunk.n;
        if (bulk) {
            /* commit: the output and the report durable first, then the state */
            char e[700];
            job.input_offset = cli_reader_tell(&rd);
            job.input_line = rd.line;
            job.texts = done;
            job.rows = wr.rows;
            job.skipped = skipped;
            if (cli_writer_commit(&wr, &job.output_bytes) != 0 ||
                (report && report != stderr &&
                 (fflush(report) != 0 || fsync(fileno(report)) != 0 ||
                  (job.report_bytes = (long long)ftello(report)) < 0))) {
                fprintf(stderr, "qembed embed: error writing the output: %m\n");
                goto out;
            }
            if (cli_job_save(state_path, &job, e, sizeof e) != 0) {
                fprintf(stderr, "qembed embed: %s\n", e);
                goto out;
            }
        }
        if (bar) progress(done, cli_reader_tell(&rd), rd.size, tokens, t0, 0);
    }
    if (bar) progress(done, cli_reader_tell(&rd), rd.size, tokens, t0, 1);
    writer_open = 0;
    if (cli_writer_close(&wr) != 0) goto out;
    if (report && report != stderr) {
        int bad = fflush(report) != 0 || fsync(fileno(report)) != 0;
        bad |= fclose(report) != 0;
        report = NULL;
        if (bad) {
            fprintf(stderr, "qembed embed: error writing the error report\n");
            goto out;
        }
    }
    if (bulk) {
        struct stat ost;
        char e[700];
        job.complete = 1;
        job.texts = done; /* every shard's count of the whole input: merge checks them */
        job.rows = wr.rows;
        job.skipped = skipped;
        job.output_bytes = stat(output, &ost) == 0 ? (long long)ost.st_size : 0;
        if (cli_job_save(state_path, &job, e, sizeof e) != 0) {
            fprintf(stderr, "qembed embed: %s\n", e);
            goto out;
        }
    }
    if (skipped)
        fprintf(stderr, "qembed embed: %zu input%s skipped (gaps in the output): see %s\n", skipped,
                skipped == 1 ? "" : "s", report_path ? report_path : "the lines above");
    rc = 0;
out:
    if (writer_open) {
        cli_writer_close(&wr);
        /* no half-written output file left behind to be mistaken for a
         * result; a bulk job's stays, with its state, to be resumed */
        if (output && strcmp(output, "-") != 0 && !bulk) unlink(output);
    }
    if (report && report != stderr) fclose(report);
    free(vec);
    cli_chunk_free(&chunk);
    cli_reader_close(&rd);
    qembed_ctx_free(ctx);
    qembed_model_free(model);
    free(texts);
    return rc;
}
