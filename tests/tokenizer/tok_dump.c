/* Differential-test driver: encodes (or decodes) every line of a JSONL file
 * with qembed and prints one JSON result per line, for diff_test.js to
 * compare with the reference library.
 *
 *   tok_dump <tokenizer.json|dir> <corpus.jsonl> [--no-parse-special] [--no-add-special]
 *
 * Input lines: {"text": "..."} or {"ids": [...]}.
 * Output lines: {"ids": [...], "dec": "hex", "dec_skip": "hex"} (decodes of
 * the ids, as hex bytes since they may hold U+0000: ours for text lines, the
 * given ids for id lines), or
 * {"error": code, "message": "..."}. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qembed.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s tokenizer.json corpus.jsonl [--no-parse-special] [--no-add-special]\n",
                argv[0]);
        return 2;
    }
    qembed_encode_options opts = qembed_encode_default_options();
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--no-parse-special") == 0)
            opts.parse_special = 0;
        else if (strcmp(argv[i], "--no-add-special") == 0)
            opts.add_special_tokens = 0;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    qembed_error err;
    qembed_tokenizer *tok;
    if (qembed_tokenizer_load(argv[1], &tok, &err) != QEMBED_OK) {
        fprintf(stderr, "load: %s\n", err.message);
        return 1;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        lineno++;
        cJSON *in = cJSON_ParseWithLength(line, (size_t)got);
        if (!in) {
            fprintf(stderr, "%s:%ld: bad JSON\n", argv[2], lineno);
            return 1;
        }
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(in, "text");
        const cJSON *idsj = cJSON_GetObjectItemCaseSensitive(in, "ids");
        cJSON *out = cJSON_CreateObject();
        int32_t *ids = NULL;
        size_t n = 0;
        int ok = 1;
        if (cJSON_IsString(text)) {
            /* cJSON strings are NUL-terminated: texts with U+0000 are not in the corpus */
            qembed_status s = qembed_tokenizer_encode(tok, text->valuestring, strlen(text->valuestring),
                                                      &opts, &ids, &n, &err);
            if (s != QEMBED_OK) {
                cJSON_AddNumberToObject(out, "error", s);
                cJSON_AddStringToObject(out, "message", err.message);
                ok = 0;
            } else {
                cJSON *arr = cJSON_AddArrayToObject(out, "ids");
                for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
            }
        } else if (cJSON_IsArray(idsj)) {
            n = (size_t)cJSON_GetArraySize(idsj);
            ids = malloc((n + 1) * sizeof *ids);
            size_t i = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, idsj) ids[i++] = (int32_t)x->valuedouble;
        } else {
            fprintf(stderr, "%s:%ld: needs \"text\" or \"ids\"\n", argv[2], lineno);
            return 1;
        }
        if (ok) {
            for (int skip = 0; skip < 2; skip++) {
                char *dec;
                size_t dl;
                if (qembed_tokenizer_decode(tok, ids, n, skip, &dec, &dl, &err) != QEMBED_OK) {
                    cJSON_AddStringToObject(out, skip ? "dec_skip_error" : "dec_error", err.message);
                } else {
                    char *hex = malloc(dl * 2 + 1);
                    for (size_t i = 0; i < dl; i++) sprintf(hex + 2 * i, "%02x", (unsigned char)dec[i]);
                    hex[dl * 2] = '\0';
                    cJSON_AddStringToObject(out, skip ? "dec_skip" : "dec", hex);
                    free(hex);
                    qembed_free(dec);
                }
            }
        }
        qembed_free(ids);
        char *o = cJSON_PrintUnformatted(out);
        puts(o);
        free(o);
        cJSON_Delete(out);
        cJSON_Delete(in);
    }
    free(line);
    fclose(f);
    qembed_tokenizer_free(tok);
    return 0;
}
