/* qembed tokenize: texts -> token ids, exactly as `embed` feeds the model. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

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
    "      --decode            print each input's ids decoded back to text (a JSON string per line)\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: 0 success, 1 usage error, 2 input or model error.\n";

int cmd_tokenize(int argc, char **argv) {
    qe_settings s;
    qe_settings_init(&s);
    const char *input = NULL, *input_format = NULL;
    qembed_embed_options opts = qembed_embed_default_options();
    long max_tokens = 0;
    int decode = 0, only_texts = 0, rc = 1, n_texts = 0;
    char **texts = calloc((size_t)argc + 1, sizeof *texts);
    if (!texts) return 2;
    qembed_model *model = NULL;
    qe_reader rd;
    memset(&rd, 0, sizeof rd);
    qe_chunk chunk;
    memset(&chunk, 0, sizeof chunk);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_texts || a[0] != '-' || strcmp(a, "-") == 0) {
            texts[n_texts++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) { only_texts = 1; continue; }
        int k = qe_settings_flag(&s, argc, argv, &i);
        if (k < 0) goto out;
        if (k > 0) continue;
        const char *v = NULL;
        int needs = !strcmp(a, "-i") || !strcmp(a, "--input") || !strcmp(a, "--input-format") ||
                    !strcmp(a, "--instruct") || !strcmp(a, "--max-tokens");
        if (needs) {
            if (i + 1 >= argc) {
                fprintf(stderr, "qembed tokenize: %s needs a value (see --help)\n", a);
                goto out;
            }
            v = argv[++i];
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(tokenize_help, stdout);
            fputc('\n', stdout);
            fputs(qe_settings_help, stdout);
            rc = 0;
            goto out;
        } else if (!strcmp(a, "-i") || !strcmp(a, "--input")) {
            input = v;
        } else if (!strcmp(a, "--input-format")) {
            input_format = v;
        } else if (!strcmp(a, "--instruct")) {
            opts.instruction = v;
        } else if (!strcmp(a, "--max-tokens")) {
            char *end;
            errno = 0;
            max_tokens = strtol(v, &end, 10);
            if (errno || *end || max_tokens < 1) {
                fprintf(stderr, "qembed tokenize: --max-tokens '%s': expected a positive whole number\n", v);
                goto out;
            }
        } else if (!strcmp(a, "--truncate")) {
            opts.truncate = 1;
        } else if (!strcmp(a, "--no-special")) {
            opts.parse_special = 0;
        } else if (!strcmp(a, "--decode")) {
            decode = 1;
        } else {
            fprintf(stderr, "qembed tokenize: unknown option '%s' (see qembed tokenize --help)\n", a);
            goto out;
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
    if (input_format && strcmp(input_format, "text") && strcmp(input_format, "jsonl")) {
        fprintf(stderr, "qembed tokenize: --input-format '%s': expected text or jsonl\n", input_format);
        goto out;
    }
    rc = 2;
    if (qe_reader_open(&rd, input, input_format, texts, n_texts) != 0) {
        fprintf(stderr, "qembed tokenize: %s\n", rd.err);
        goto out;
    }
    qembed_model_params mp = qe_settings_model_params(&s);
    model = qe_settings_load_model(&s, &mp);
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
        int k = qe_reader_chunk(&rd, &chunk, 256, done);
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
                qe_chunk one = {.texts = chunk.texts + j, .lens = chunk.lens + j,
                                .lines = chunk.lines + j, .first = chunk.first + j, .n = 1};
                qe_report_input_error("tokenize", &rd, &one, &err);
                goto out;
            }
            if (decode) {
                char *text = NULL;
                size_t len = 0;
                if (qembed_tokenizer_decode(qembed_model_tokenizer(model), ids, n, 0, &text, &len,
                                            &err) != QEMBED_OK) {
                    qembed_free(ids);
                    fprintf(stderr, "qembed tokenize: input %zu: %s\n", done + j, err.message);
                    goto out;
                }
                cJSON *js = cJSON_CreateString(text);
                char *p = js ? cJSON_PrintUnformatted(js) : NULL;
                if (p) puts(p);
                free(p);
                cJSON_Delete(js);
                qembed_free(text);
            } else {
                putchar('[');
                for (size_t t = 0; t < n; t++) printf(t ? ",%d" : "%d", (int)ids[t]);
                fputs("]\n", stdout);
            }
            qembed_free(ids);
        }
        done += chunk.n;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "qembed tokenize: error writing the output\n");
        goto out;
    }
    rc = 0;
out:
    qe_chunk_free(&chunk);
    qe_reader_close(&rd);
    qembed_model_free(model);
    free(texts);
    return rc;
}
