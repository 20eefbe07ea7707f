/* qembed tokenize: texts -> token ids, exactly as `embed` feeds the model. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "cli_io.h"
#include "commands.h"

static const char *const tokenize_help =
    "usage: qembed tokenize [options] TEXT...\n"
    "       qembed tokenize [options] --input FILE\n"
    "\n"
    "Prints, per input and in input order, one JSON array of the token ids the model sees (with the\n"
    "appended <|endoftext|>, the instruction and truncation applied as `embed` does).\n"
    "\n"
    "  -i, --input FILE        one text per line; FILE.jsonl: one JSON string per line; '-' stdin\n"
    "      --input-format F    text | jsonl (default: from the file name)\n"
    "      --instruct TASK     format as \"Instruct: TASK\\nQuery:TEXT\"\n"
    "      --max-tokens N      longest input (default 8192, counting <|endoftext|>)\n"
    "      --truncate          truncate longer inputs instead of failing\n"
    "      --no-special        treat special-token text as plain text\n"
    "  -f, --format F          jsonl (default): one JSON array of ids per line; json: one array\n"
    "                          of those arrays; tsv: the ids separated by tabs, one input a line\n"
    "      --decode            print each input's ids decoded back to text (a JSON string per\n"
    "                          line, or a JSON array of strings with --format json)\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: 0 success, 1 usage error, 2 input or model error.\n";

enum {
    OPT_INPUT_FORMAT = 256,
    OPT_INSTRUCT,
    OPT_MAX_TOKENS,
    OPT_TRUNCATE,
    OPT_NO_SPECIAL,
    OPT_DECODE,
};

static const cli_optdef tokenize_opts[] = {
    {"help", 'h', 0},
    {"input", 'i', 1},
    {"input-format", OPT_INPUT_FORMAT, 1},
    {"format", 'f', 1},
    {"instruct", OPT_INSTRUCT, 1},
    {"max-tokens", OPT_MAX_TOKENS, 1},
    {"truncate", OPT_TRUNCATE, 0},
    {"no-special", OPT_NO_SPECIAL, 0},
    {"decode", OPT_DECODE, 0},
    {NULL, 0, 0},
};

/* Rows: jsonl and tsv one input per line; json one array of the rows, its
 * brackets written by row_start (input i) and after the last row. */
static void row_end(cli_out_fmt fmt) {
    if (fmt != CLI_OUT_JSON) putchar('\n');
}

static void row_start(cli_out_fmt fmt, size_t i) {
    if (fmt == CLI_OUT_JSON) fputs(i ? ",\n" : "[\n", stdout);
}

int cmd_tokenize(int argc, char **argv) {
    cli_settings s;
    cli_settings_init(&s);
    const char *input = NULL, *input_format = NULL;
    qembed_embed_options opts = qembed_embed_default_options();
    long max_tokens = 0;
    int decode = 0, rc = 1, n_texts = 0;
    const char *format = NULL;
    char **texts = calloc((size_t)argc + 1, sizeof *texts);
    if (!texts) return 2;
    qembed_model *model = NULL;
    cli_reader rd;
    memset(&rd, 0, sizeof rd);
    cli_chunk chunk;
    memset(&chunk, 0, sizeof chunk);

    cli_args ap;
    cli_args_init(&ap, "tokenize", argc, argv, tokenize_opts, &s);
    for (int k; (k = cli_args_next(&ap)) != CLI_ARG_END;) {
        const char *v = ap.value;
        switch (k) {
            case CLI_ARG_ERROR: goto out;
            case CLI_ARG_OPERAND: texts[n_texts++] = (char *)v; break;
            case 'h':
                fputs(tokenize_help, stdout);
                fputc('\n', stdout);
                fputs(cli_settings_help, stdout);
                rc = 0;
                goto out;
            case 'i': input = v; break;
            case 'f': format = v; break;
            case OPT_INPUT_FORMAT: input_format = v; break;
            case OPT_INSTRUCT: opts.instruction = v; break;
            case OPT_MAX_TOKENS:
                if (cli_parse_long(v, 1, LONG_MAX, &max_tokens) != 0) {
                    fprintf(stderr, "qembed tokenize: --max-tokens '%s': expected a positive whole number\n",
                            v);
                    goto out;
                }
                break;
            case OPT_TRUNCATE: opts.truncate = 1; break;
            case OPT_NO_SPECIAL: opts.parse_special = 0; break;
            case OPT_DECODE: decode = 1; break;
        }
    }
    if (!input && n_texts == 0) {
        fprintf(stderr, "qembed tokenize: no input: give texts as arguments or --input FILE (see --help)\n");
        goto out;
    }
    if (input && n_texts > 0) {
        fprintf(stderr, "qembed tokenize: give texts as arguments or --input FILE, not both\n");
        goto out;
    }
    cli_out_fmt fmt = CLI_OUT_JSONL;
    if (format && (cli_out_fmt_parse(format, &fmt) != 0 || fmt == CLI_OUT_NPY)) {
        fprintf(stderr, "qembed tokenize: --format '%s': expected jsonl, json or tsv\n", format);
        goto out;
    }
    if (decode && fmt == CLI_OUT_TSV) {
        fprintf(stderr, "qembed tokenize: --decode writes JSON strings: use --format jsonl or json\n");
        goto out;
    }
    if (input_format && strcmp(input_format, "text") && strcmp(input_format, "jsonl")) {
        fprintf(stderr, "qembed tokenize: --input-format '%s': expected text or jsonl\n", input_format);
        goto out;
    }
    rc = 2;
    if (cli_reader_open(&rd, input, input_format, texts, n_texts) != 0) {
        fprintf(stderr, "qembed tokenize: %s\n", rd.err);
        goto out;
    }
    qembed_model_params mp = cli_settings_model_params(&s);
    model = cli_settings_load_model(&s, &mp);
    if (!model) goto out;
    qembed_model_info info;
    qembed_model_get_info(model, &info);
    if (max_tokens > info.max_position_embeddings) {
        fprintf(stderr, "qembed tokenize: --max-tokens %ld exceeds the model's max_position_embeddings %d\n",
                max_tokens, info.max_position_embeddings);
        rc = 1;
        goto out;
    }
    opts.max_tokens = (size_t)max_tokens;
    size_t done = 0;
    for (;;) {
        int k = cli_reader_chunk(&rd, &chunk, 256, done);
        if (k < 0) {
            fprintf(stderr, "qembed tokenize: %s\n", rd.err);
            goto out;
        }
        if (k == 0) break;
        for (size_t j = 0; j < chunk.n; j++) {
            int32_t *ids = NULL;
            size_t n = 0;
            qembed_error err = {0};
            if (qembed_model_tokenize(model, chunk.texts[j], chunk.lens[j], &opts, &ids, &n, &err) !=
                QEMBED_OK) {
                /* one text per call: the library names it input 0 of a
                 * one-text view of the chunk */
                cli_chunk one = {.texts = chunk.texts + j,
                                 .lens = chunk.lens + j,
                                 .lines = chunk.lines + j,
                                 .first = chunk.first + j,
                                 .n = 1};
                cli_report_input_error("tokenize", &rd, &one, &err);
                goto out;
            }
            row_start(fmt, done + j);
            if (decode) {
                char *text = NULL;
                size_t len = 0;
                if (qembed_tokenizer_decode(qembed_model_tokenizer(model), ids, n, 0, &text, &len, &err) !=
                    QEMBED_OK) {
                    qembed_free(ids);
                    fprintf(stderr, "qembed tokenize: input %zu: %s\n", done + j, err.message);
                    goto out;
                }
                cJSON *js = cJSON_CreateString(text);
                char *p = js ? cJSON_PrintUnformatted(js) : NULL;
                if (p) fputs(p, stdout);
                row_end(fmt);
                free(p);
                cJSON_Delete(js);
                qembed_free(text);
            } else {
                const char *sep = fmt == CLI_OUT_TSV ? "\t%d" : ",%d";
                if (fmt != CLI_OUT_TSV) putchar('[');
                for (size_t t = 0; t < n; t++) printf(t ? sep : "%d", (int)ids[t]);
                if (fmt != CLI_OUT_TSV) putchar(']');
                row_end(fmt);
            }
            qembed_free(ids);
        }
        done += chunk.n;
    }
    if (fmt == CLI_OUT_JSON) fputs(done ? "\n]\n" : "[]\n", stdout);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "qembed tokenize: error writing the output\n");
        goto out;
    }
    rc = 0;
out:
    cli_chunk_free(&chunk);
    cli_reader_close(&rd);
    qembed_model_free(model);
    free(texts);
    return rc;
}
