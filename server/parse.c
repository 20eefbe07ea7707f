/* Request bodies -> work: JSON parsing and validation of /v1/embeddings,
 * /embed and /tokenize bodies, and tokenization through the library (the
 * prompt format and truncation live there, in qembed_model_tokenize). Runs on
 * the I/O threads; uses the model and tokenizer only (both immutable, so any
 * number of threads may use them at once). Rendering answers: render.c. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* ---- parsing helpers ---- */

/* cJSON turns "\u0000" into a NUL that silently ends the C string; refuse it
 * rather than embed a cut text. Counts the backslashes before the 'u' so that
 * "\\u0000" (an escaped backslash, then text) is not refused. */
static long find_escaped_nul(const char *s, size_t n) {
    for (size_t i = 0; i + 6 <= n; i++) {
        if (s[i] != '\\' || memcmp(s + i + 1, "u0000", 5) != 0) continue;
        size_t k = 0;
        while (k < i && s[i - 1 - k] == '\\') k++;
        if (k % 2 == 0) return (long)i;
    }
    return -1;
}

static cJSON *parse_body(const char *body, size_t len, qs_apierr *e, int tei) {
    (void)tei;
    if (len == 0) {
        QS_ERR_BAD(e, "", "the request body is empty; send a JSON object");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        QS_ERR_BAD(e, "", "the request body is not valid JSON (error near byte %zu)", at);
        return NULL;
    }
    /* Only whitespace may follow the value. */
    for (const char *p = end; p && p < body + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            QS_ERR_BAD(e, "", "the request body is not valid JSON (extra data at byte %zu)",
                       (size_t)(p - body));
            cJSON_Delete(root);
            return NULL;
        }
    }
    if (!cJSON_IsObject(root)) {
        QS_ERR_BAD(e, "", "the request body must be a JSON object");
        cJSON_Delete(root);
        return NULL;
    }
    long nul = find_escaped_nul(body, len);
    if (nul >= 0) {
        QS_ERR_BAD(e, "", "\\u0000 (NUL) at byte %ld of the body is not accepted in text", nul);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* An optional string field: 0 absent/null, 1 present, -1 error (e filled). */
static int opt_string(const cJSON *root, const char *name, const char **out, qs_apierr *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) {
        QS_ERR_BAD(e, name, "'%s' must be a string", name);
        return -1;
    }
    long bad = qs_utf8_invalid_at(v->valuestring, strlen(v->valuestring));
    if (bad >= 0) {
        QS_ERR_BAD(e, name, "'%s' is not valid UTF-8 (byte offset %ld)", name, bad);
        return -1;
    }
    *out = v->valuestring;
    return 1;
}

static int opt_bool(const cJSON *root, const char *name, int *out, qs_apierr *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) {
        QS_ERR_BAD(e, name, "'%s' must be true or false", name);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 1;
}

static int is_int(const cJSON *v, double lo, double hi) {
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= lo &&
           v->valuedouble <= hi;
}

/* Tokenization settings shared by every text of one request. */
typedef struct tok_plan {
    const char *instruction; /* "Instruct: {i}\nQuery:{text}" via the library */
    const char *prefix;      /* a sentence-transformers prompt prepended verbatim */
    int truncate;
    int left; /* truncation_direction Left */
} tok_plan;

/* Tokenizes text i with one library call: the instruction format, the
 * appended <|endoftext|>, truncation (direction, <|endoftext|> kept) and the
 * length before truncation all come from qembed_model_tokenize. Returns 0,
 * or -1 with e filled. */
static int tokenize_full(qs_server *srv, const tok_plan *tp, size_t idx, const char *text, size_t len,
                         size_t limit, int32_t **ids_out, size_t *n_out, qs_apierr *e) {
    char *joined = NULL;
    if (tp->prefix) {
        size_t pl = strlen(tp->prefix);
        joined = malloc(pl + len + 1);
        if (!joined) {
            qs_err_set(e, 500, "server_error", NULL, "Backend", "", "out of memory");
            return -1;
        }
        memcpy(joined, tp->prefix, pl);
        memcpy(joined + pl, text, len);
        text = joined;
        len += pl;
    }
    qembed_embed_options o = qembed_embed_default_options();
    o.instruction = tp->instruction;
    o.parse_special = srv->cfg.parse_special;
    o.truncate = tp->truncate;
    o.truncation_direction = tp->left ? QEMBED_TRUNCATE_LEFT : QEMBED_TRUNCATE_RIGHT;
    o.max_tokens = limit;
    size_t full = 0;
    o.n_tokens_out = &full;
    int32_t *ids = NULL;
    size_t n = 0;
    qembed_error err = {0};
    qembed_status st = qembed_model_tokenize(srv->model, text, len, &o, &ids, &n, &err);
    free(joined);
    if (st != QEMBED_OK) {
        if (st == QEMBED_ERR_INPUT_TOO_LONG)
            QS_ERR_BAD(e, "input",
                       "input[%zu] has %zu tokens, more than the limit of %zu "
                       "(%s)",
                       idx, full, limit,
                       limit == srv->max_tokens ? "--max-tokens; send \"truncate\": true to cut it"
                                                : "the model's positions");
        else if (st == QEMBED_ERR_INVALID_UTF8 || st == QEMBED_ERR_EMPTY_INPUT ||
                 st == QEMBED_ERR_INVALID_ARGUMENT)
            QS_ERR_BAD(e, "input", "input[%zu]: %s", idx, err.message);
        else
            qs_err_set(e, 500, "server_error", NULL, "Tokenizer", "input", "input[%zu]: %s", idx,
                       err.message);
        qembed_free(ids);
        return -1;
    }
    *ids_out = ids;
    *n_out = n;
    return 0;
}

static int tokenize_text(qs_server *srv, const tok_plan *tp, size_t idx, const char *text, size_t len,
                         int32_t **ids_out, size_t *n_out, qs_apierr *e) {
    long bad = qs_utf8_invalid_at(text, len);
    if (bad >= 0) {
        QS_ERR_BAD(e, "input", "input[%zu] is not valid UTF-8 (byte offset %ld)", idx, bad);
        return -1;
    }
    if (len == 0) {
        QS_ERR_BAD(e, "input", "input[%zu] is an empty string", idx);
        return -1;
    }
    return tokenize_full(srv, tp, idx, text, len, srv->max_tokens, ids_out, n_out, e);
}

/* Token-id input i (an array of integers), copied into a qembed_free-able
 * array (the library's allocator is malloc, as qembed_free documents). */
static int token_input(qs_server *srv, const tok_plan *tp, size_t idx, const cJSON *arr, int32_t **ids_out,
                       size_t *n_out, qs_apierr *e) {
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n == 0) {
        QS_ERR_BAD(e, "input", "input[%zu] is an empty array of token ids", idx);
        return -1;
    }
    int32_t *ids = malloc(n * sizeof *ids);
    if (!ids) {
        qs_err_set(e, 500, "server_error", NULL, "Backend", "", "out of memory");
        return -1;
    }
    size_t k = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        if (!is_int(v, 0, (double)srv->n_vocab - 1)) {
            if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble))
                QS_ERR_BAD(e, "input", "input[%zu][%zu]: token id %.0f is out of range [0, %zu)", idx, k,
                           v->valuedouble, srv->n_vocab);
            else
                QS_ERR_BAD(e, "input", "input[%zu][%zu] must be an integer token id", idx, k);
            free(ids);
            return -1;
        }
        ids[k++] = (int32_t)v->valuedouble;
    }
    if (n > srv->max_tokens) {
        if (!tp->truncate) {
            QS_ERR_BAD(e, "input",
                       "input[%zu] has %zu tokens, more than the limit of %zu "
                       "(--max-tokens); send \"truncate\": true to cut it",
                       idx, n, srv->max_tokens);
            free(ids);
            return -1;
        }
        /* Token inputs are taken as they are: no <|endoftext|> is kept specially. */
        if (tp->left) memmove(ids, ids + (n - srv->max_tokens), srv->max_tokens * sizeof *ids);
        n = srv->max_tokens;
    }
    *ids_out = ids;
    *n_out = n;
    return 0;
}

int qs_parse_embed_request(qs_server *srv, int tei, const char *body, size_t len, qs_job **job_out,
                           qs_req_opts *ro, qs_apierr *e) {
    *job_out = NULL;
    memset(ro, 0, sizeof *ro);
    ro->tei = tei;
    cJSON *root = parse_body(body, len, e, tei);
    if (!root) return -1;
    qs_job *job = NULL;
    int rc = -1;
    const char *in_name = tei ? "inputs" : "input";
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, in_name);
    const char *model = NULL, *fmt = NULL, *user = NULL, *instr = NULL, *prompt_name = NULL,
               *direction = NULL;
    int normalize = 1, truncate = 0;
    if (opt_string(root, "model", &model, e) < 0 || opt_string(root, "user", &user, e) < 0 ||
        opt_string(root, "encoding_format", &fmt, e) < 0 || opt_string(root, "instruction", &instr, e) < 0 ||
        opt_string(root, "prompt_name", &prompt_name, e) < 0 ||
        opt_string(root, "truncation_direction", &direction, e) < 0 ||
        opt_bool(root, "truncate", &truncate, e) < 0 || opt_bool(root, "normalize", &normalize, e) < 0)
        goto out;
    if (!tei) normalize = 1; /* OpenAI vectors are always unit length */
    if (fmt && strcmp(fmt, "float") != 0 && strcmp(fmt, "base64") != 0) {
        QS_ERR_BAD(e, "encoding_format", "'encoding_format' must be \"float\" or \"base64\", not \"%.40s\"",
                   fmt);
        goto out;
    }
    ro->base64 = fmt && strcmp(fmt, "base64") == 0;
    snprintf(ro->model, sizeof ro->model, "%s", srv->served_name);

    int hidden = srv->info.hidden_size;
    int dims = hidden, dmin = hidden < 32 ? 1 : 32;
    const cJSON *dv = cJSON_GetObjectItemCaseSensitive(root, "dimensions");
    if (dv && !cJSON_IsNull(dv)) {
        if (!is_int(dv, dmin, hidden)) {
            QS_ERR_BAD(e, "dimensions", "'dimensions' must be an integer from %d to %d", dmin, hidden);
            goto out;
        }
        dims = (int)dv->valuedouble;
    }

    tok_plan tp = {0};
    tp.truncate = truncate;
    if (direction) {
        if (strcasecmp(direction, "left") == 0)
            tp.left = 1;
        else if (strcasecmp(direction, "right") != 0) {
            QS_ERR_BAD(e, "truncation_direction", "'truncation_direction' must be \"Left\" or \"Right\"");
            goto out;
        }
    }
    /* Instruction precedence: prompt_name > instruction > --instruction.
     * "instruction": "" turns the default off for this request. */
    if (prompt_name) {
        const char *p = qs_find_prompt(srv, prompt_name);
        if (p) {
            if (p[0]) tp.prefix = p;
        } else if (prompt_name[0]) {
            tp.instruction = prompt_name;
        }
    } else if (instr) {
        tp.instruction = instr[0] ? instr : NULL;
    } else {
        tp.instruction = srv->default_instruction;
    }

    if (!input || cJSON_IsNull(input)) {
        QS_ERR_BAD(e, in_name, "missing required field '%s'", in_name);
        goto out;
    }
    /* Shapes: "text" | ["text", ...] | [id, ...] | [[id, ...], ...]. */
    size_t n;
    int kind; /* 0 one string, 1 strings, 2 one id list, 3 id lists */
    if (cJSON_IsString(input)) {
        kind = 0;
        n = 1;
    } else if (cJSON_IsArray(input)) {
        n = (size_t)cJSON_GetArraySize(input);
        if (n == 0) {
            QS_ERR_BAD(e, in_name, "'%s' is an empty array", in_name);
            goto out;
        }
        const cJSON *first = input->child;
        if (cJSON_IsString(first))
            kind = 1;
        else if (cJSON_IsNumber(first))
            kind = 2;
        else if (cJSON_IsArray(first))
            kind = 3;
        else {
            QS_ERR_BAD(e, in_name,
                       "'%s' must be a string, an array of strings, an array of token "
                       "ids or an array of arrays of token ids",
                       in_name);
            goto out;
        }
        if (kind == 2) n = 1;
    } else {
        QS_ERR_BAD(e, in_name,
                   "'%s' must be a string, an array of strings, an array of token ids "
                   "or an array of arrays of token ids",
                   in_name);
        goto out;
    }
    if (n > srv->cfg.max_inputs) {
        qs_err_set(e, 413, "invalid_request_error", "too_many_inputs", "Validation", in_name,
                   "%zu inputs in one request; the limit is %zu (--max-inputs)", n, srv->cfg.max_inputs);
        goto out;
    }
    job = calloc(1, sizeof *job);
    if (job) job->units = calloc(n, sizeof *job->units);
    if (!job || !job->units) {
        qs_err_set(e, 500, "server_error", NULL, "Backend", "", "out of memory");
        goto out;
    }
    job->dims = dims;
    job->normalize = normalize;
    if (kind == 0) {
        if (tokenize_text(srv, &tp, 0, input->valuestring, strlen(input->valuestring), &job->units[0].ids,
                          &job->units[0].n_ids, e) != 0)
            goto out;
        job->n_units = 1;
    } else if (kind == 2) {
        if (token_input(srv, &tp, 0, input, &job->units[0].ids, &job->units[0].n_ids, e) != 0) goto out;
        job->n_units = 1;
    } else {
        const cJSON *it;
        size_t i = 0;
        cJSON_ArrayForEach(it, input) {
            int ok = kind == 1 ? cJSON_IsString(it) : cJSON_IsArray(it);
            if (!ok) {
                QS_ERR_BAD(e, in_name, "%s[%zu] must be %s like %s[0]", in_name, i,
                           kind == 1 ? "a string" : "an array of token ids", in_name);
                goto out;
            }
            int r = kind == 1 ? tokenize_text(srv, &tp, i, it->valuestring, strlen(it->valuestring),
                                              &job->units[i].ids, &job->units[i].n_ids, e)
                              : token_input(srv, &tp, i, it, &job->units[i].ids, &job->units[i].n_ids, e);
            if (r != 0) goto out;
            job->n_units = ++i;
        }
    }
    for (size_t i = 0; i < job->n_units; i++) job->total_tokens += job->units[i].n_ids;
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc != 0) {
        qs_job_free(job);
        job = NULL;
    }
    *job_out = job;
    return rc;
}

/* POST /tokenize (TEI): each text's token ids, as /embed would tokenize it
 * (instruction or prompt, <|endoftext|> unless add_special_tokens is false),
 * through the same library call; the whole text, not truncated. Returns 0 with *out filled (qs_toklist_free), or -1
 * with e filled. */
int qs_parse_tokenize(qs_server *srv, const char *body, size_t len, qs_toklist *out, qs_apierr *e) {
    memset(out, 0, sizeof *out);
    cJSON *root = parse_body(body, len, e, 1);
    if (!root) return -1;
    int rc = -1, add_special = 1;
    const char *instr = NULL, *prompt_name = NULL;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (opt_bool(root, "add_special_tokens", &add_special, e) < 0 ||
        opt_string(root, "instruction", &instr, e) < 0 ||
        opt_string(root, "prompt_name", &prompt_name, e) < 0)
        goto out;
    const char *prefix = NULL, *instruction = NULL;
    if (prompt_name) {
        const char *p = qs_find_prompt(srv, prompt_name);
        if (p)
            prefix = p[0] ? p : NULL;
        else if (prompt_name[0])
            instruction = prompt_name;
    } else if (instr ? instr[0] : srv->default_instruction != NULL) {
        instruction = instr ? instr : srv->default_instruction;
    }
    size_t n;
    if (cJSON_IsString(input))
        n = 1;
    else if (cJSON_IsArray(input) && (n = (size_t)cJSON_GetArraySize(input)) > 0) {
        const cJSON *it;
        cJSON_ArrayForEach(it, input) {
            if (!cJSON_IsString(it)) {
                QS_ERR_BAD(e, "inputs", "'inputs' must be a string or an array of strings");
                goto out;
            }
        }
    } else {
        QS_ERR_BAD(e, "inputs", "'inputs' must be a string or a non-empty array of strings");
        goto out;
    }
    if (n > srv->cfg.max_inputs) {
        qs_err_set(e, 413, "invalid_request_error", "too_many_inputs", "Validation", "inputs",
                   "%zu inputs in one request; the limit is %zu (--max-inputs)", n, srv->cfg.max_inputs);
        goto out;
    }
    out->ids = calloc(n, sizeof *out->ids);
    out->n = calloc(n, sizeof *out->n);
    if (!out->ids || !out->n) {
        qs_err_set(e, 500, "server_error", NULL, "Backend", "", "out of memory");
        goto out;
    }
    /* The whole text, however long (the body limit bounds it). */
    size_t positions = SIZE_MAX;
    tok_plan tp = {.instruction = instruction, .prefix = prefix};
    for (size_t i = 0; i < n; i++) {
        const char *text =
            cJSON_IsString(input) ? input->valuestring : cJSON_GetArrayItem(input, (int)i)->valuestring;
        size_t tl = strlen(text);
        long bad = qs_utf8_invalid_at(text, tl);
        if (bad >= 0) {
            QS_ERR_BAD(e, "inputs", "inputs[%zu] is not valid UTF-8 (byte offset %ld)", i, bad);
            goto out;
        }
        if (tl == 0 && !prefix && !instruction) {
            out->count = i + 1; /* nothing to tokenize: an empty list (with add_special, <|endoftext|>) */
            if (add_special) {
                out->ids[i] = malloc(sizeof *out->ids[i]);
                if (!out->ids[i]) {
                    qs_err_set(e, 500, "server_error", NULL, "Backend", "", "out of memory");
                    goto out;
                }
                out->ids[i][0] = srv->eos_id;
                out->n[i] = 1;
            }
            continue;
        }
        if (tokenize_full(srv, &tp, i, text, tl, positions, &out->ids[i], &out->n[i], e) != 0) goto out;
        out->count = i + 1;
        /* The library appends <|endoftext|> (Qwen3's post-processor: "$A
         * <|endoftext|>", nothing else); without special tokens it is dropped. */
        if (!add_special && out->n[i] > 0) out->n[i]--;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc != 0) qs_toklist_free(out);
    return rc;
}

void qs_toklist_free(qs_toklist *t) {
    for (size_t i = 0; i < t->count; i++) qembed_free(t->ids[i]);
    free(t->ids);
    free(t->n);
    memset(t, 0, sizeof *t);
}
