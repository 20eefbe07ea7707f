/* Request bodies -> jobs (validation, tokenization) and jobs -> response
 * bodies, for the OpenAI (/v1/embeddings) and TEI (/embed, /tokenize) shapes.
 * Runs on the I/O threads; uses the model and tokenizer only (both immutable,
 * so any number of threads may use them at once). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* ---- prompts (sentence-transformers) ---- */

int qs_load_prompts(qe_server *srv)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/config_sentence_transformers.json", srv->info.resolved_path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0; /* optional file */
    char *buf = NULL;
    size_t len = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && n < (1 << 20) && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)))
            len = fread(buf, 1, (size_t)n, f);
    }
    fclose(f);
    cJSON *root = buf ? cJSON_ParseWithLength(buf, len) : NULL;
    free(buf);
    cJSON *prompts = cJSON_GetObjectItemCaseSensitive(root, "prompts");
    if (!cJSON_IsObject(prompts)) {
        if (root)
            qs_log(srv, QEMBED_LOG_WARN, "%s: no \"prompts\" object; prompt_name will be used as "
                   "instruction text", path);
        cJSON_Delete(root);
        return 0;
    }
    int n = cJSON_GetArraySize(prompts);
    srv->prompt_names = calloc((size_t)n + 1, sizeof(char *));
    srv->prompt_texts = calloc((size_t)n + 1, sizeof(char *));
    if (!srv->prompt_names || !srv->prompt_texts) {
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, prompts)
    {
        if (!cJSON_IsString(it) || !it->string)
            continue;
        srv->prompt_names[srv->n_prompts] = strdup(it->string);
        srv->prompt_texts[srv->n_prompts] = strdup(it->valuestring);
        if (srv->prompt_names[srv->n_prompts] && srv->prompt_texts[srv->n_prompts])
            srv->n_prompts++;
    }
    cJSON_Delete(root);
    qs_log(srv, QEMBED_LOG_INFO, "%zu prompt(s) from %s", srv->n_prompts, path);
    return 0;
}

void qs_free_prompts(qe_server *srv)
{
    for (size_t i = 0; i < srv->n_prompts; i++) {
        free(srv->prompt_names[i]);
        free(srv->prompt_texts[i]);
    }
    free(srv->prompt_names);
    free(srv->prompt_texts);
    srv->prompt_names = srv->prompt_texts = NULL;
    srv->n_prompts = 0;
}

static const char *find_prompt(const qe_server *srv, const char *name)
{
    for (size_t i = 0; i < srv->n_prompts; i++)
        if (strcmp(srv->prompt_names[i], name) == 0)
            return srv->prompt_texts[i];
    return NULL;
}

/* ---- parsing helpers ---- */

/* cJSON turns "\u0000" into a NUL that silently ends the C string; refuse it
 * rather than embed a cut text. Counts the backslashes before the 'u' so that
 * "\\u0000" (an escaped backslash, then text) is not refused. */
static long find_escaped_nul(const char *s, size_t n)
{
    for (size_t i = 0; i + 6 <= n; i++) {
        if (s[i] != '\\' || memcmp(s + i + 1, "u0000", 5) != 0)
            continue;
        size_t k = 0;
        while (k < i && s[i - 1 - k] == '\\')
            k++;
        if (k % 2 == 0)
            return (long)i;
    }
    return -1;
}

static cJSON *parse_body(const char *body, size_t len, qs_apierr *e, int tei)
{
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
static int opt_string(const cJSON *root, const char *name, const char **out, qs_apierr *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
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

static int opt_bool(const cJSON *root, const char *name, int *out, qs_apierr *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v)) {
        QS_ERR_BAD(e, name, "'%s' must be true or false", name);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 1;
}

static int is_int(const cJSON *v, double lo, double hi)
{
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= lo &&
           v->valuedouble <= hi;
}

/* Tokenization settings shared by every text of one request. */
typedef struct tok_plan {
    const char *instruction; /* "Instruct: {i}\nQuery:{text}" via the library */
    const char *prefix;      /* a sentence-transformers prompt prepended verbatim */
    int truncate;
    int left;                /* truncation_direction Left */
} tok_plan;

/* Cuts ids to `limit`, keeping the appended <|endoftext|> (as the Hugging Face
 * tokenizer does: truncation happens before the post-processor). */
static void truncate_ids(int32_t *ids, size_t *n, size_t limit, int left, int32_t eos)
{
    if (*n <= limit)
        return;
    int keep_eos = eos >= 0 && ids[*n - 1] == eos && limit >= 1;
    size_t body = keep_eos ? limit - 1 : limit;
    size_t total_body = keep_eos ? *n - 1 : *n;
    if (left)
        memmove(ids, ids + (total_body - body), body * sizeof *ids);
    if (keep_eos)
        ids[body] = eos;
    *n = limit;
}

/* Tokenizes text i. Returns 0, or -1 with e filled. */
static int tokenize_text(qe_server *srv, const tok_plan *tp, size_t idx, const char *text, size_t len,
                         int32_t **ids_out, size_t *n_out, qs_apierr *e)
{
    long bad = qs_utf8_invalid_at(text, len);
    if (bad >= 0) {
        QS_ERR_BAD(e, "input", "input[%zu] is not valid UTF-8 (byte offset %ld)", idx, bad);
        return -1;
    }
    if (len == 0) {
        QS_ERR_BAD(e, "input", "input[%zu] is an empty string", idx);
        return -1;
    }
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
    o.truncate = 0;
    /* Tokenize in full (up to the model's positions) so that usage counts and
     * truncation direction are ours to decide. */
    size_t cap = srv->info.max_position_embeddings > 0 ? (size_t)srv->info.max_position_embeddings
                                                        : srv->max_tokens;
    o.max_tokens = cap > srv->max_tokens ? cap : srv->max_tokens;
    int32_t *ids = NULL;
    size_t n = 0;
    qembed_error err = {0};
    qembed_status st = qembed_model_tokenize(srv->model, text, len, &o, &ids, &n, &err);
    if (st == QEMBED_ERR_INPUT_TOO_LONG && tp->truncate) {
        /* Longer than the model's positions: tokenize with the bare tokenizer
         * (same text the library would build) and cut it ourselves. */
        qembed_encode_options eo = qembed_encode_default_options();
        eo.parse_special = srv->cfg.parse_special;
        char *full = NULL;
        const char *t2 = text;
        size_t l2 = len;
        if (tp->instruction) {
            size_t il = strlen(tp->instruction);
            full = malloc(il + len + 32);
            if (!full) {
                free(joined);
                qs_err_set(e, 500, "server_error", NULL, "Backend", "", "out of memory");
                return -1;
            }
            int hl = sprintf(full, "Instruct: %s\nQuery:", tp->instruction);
            memcpy(full + hl, text, len);
            t2 = full;
            l2 = (size_t)hl + len;
        }
        st = qembed_tokenizer_encode(srv->tok, t2, l2, &eo, &ids, &n, &err);
        free(full);
    }
    free(joined);
    if (st != QEMBED_OK) {
        if (st == QEMBED_ERR_INPUT_TOO_LONG)
            QS_ERR_BAD(e, "input", "input[%zu] has more than %zu tokens (the limit is %zu; send "
                       "\"truncate\": true to cut it)", idx, o.max_tokens, srv->max_tokens);
        else if (st == QEMBED_ERR_INVALID_UTF8 || st == QEMBED_ERR_EMPTY_INPUT ||
                 st == QEMBED_ERR_INVALID_ARGUMENT)
            QS_ERR_BAD(e, "input", "input[%zu]: %s", idx, err.message);
        else
            qs_err_set(e, 500, "server_error", NULL, "Tokenizer", "input", "input[%zu]: %s", idx,
                       err.message);
        qembed_free(ids);
        return -1;
    }
    if (n > srv->max_tokens) {
        if (!tp->truncate) {
            QS_ERR_BAD(e, "input", "input[%zu] has %zu tokens, more than the limit of %zu "
                       "(--max-tokens); send \"truncate\": true to cut it", idx, n, srv->max_tokens);
            qembed_free(ids);
            return -1;
        }
        truncate_ids(ids, &n, srv->max_tokens, tp->left, srv->eos_id);
    }
    *ids_out = ids;
    *n_out = n;
    return 0;
}

/* Token-id input i (an array of integers), copied into a qembed_free-able
 * array (the library's allocator is malloc, as qembed_free documents). */
static int token_input(qe_server *srv, const tok_plan *tp, size_t idx, const cJSON *arr,
                       int32_t **ids_out, size_t *n_out, qs_apierr *e)
{
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
    cJSON_ArrayForEach(v, arr)
    {
        if (!is_int(v, 0, (double)srv->n_vocab - 1)) {
            if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble))
                QS_ERR_BAD(e, "input", "input[%zu][%zu]: token id %.0f is out of range [0, %zu)",
                           idx, k, v->valuedouble, srv->n_vocab);
            else
                QS_ERR_BAD(e, "input", "input[%zu][%zu] must be an integer token id", idx, k);
            free(ids);
            return -1;
        }
        ids[k++] = (int32_t)v->valuedouble;
    }
    if (n > srv->max_tokens) {
        if (!tp->truncate) {
            QS_ERR_BAD(e, "input", "input[%zu] has %zu tokens, more than the limit of %zu "
                       "(--max-tokens); send \"truncate\": true to cut it", idx, n, srv->max_tokens);
            free(ids);
            return -1;
        }
        /* Token inputs are taken as they are: no <|endoftext|> is kept specially. */
        if (tp->left)
            memmove(ids, ids + (n - srv->max_tokens), srv->max_tokens * sizeof *ids);
        n = srv->max_tokens;
    }
    *ids_out = ids;
    *n_out = n;
    return 0;
}

int qs_parse_embed_request(qe_server *srv, int tei, const char *body, size_t len, qs_job **job_out,
                           qs_req_opts *ro, qs_apierr *e)
{
    *job_out = NULL;
    memset(ro, 0, sizeof *ro);
    ro->tei = tei;
    cJSON *root = parse_body(body, len, e, tei);
    if (!root)
        return -1;
    qs_job *job = NULL;
    int rc = -1;
    const char *in_name = tei ? "inputs" : "input";
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, in_name);
    const char *model = NULL, *fmt = NULL, *user = NULL, *instr = NULL, *prompt_name = NULL,
               *direction = NULL;
    int normalize = 1, truncate = 0;
    if (opt_string(root, "model", &model, e) < 0 || opt_string(root, "user", &user, e) < 0 ||
        opt_string(root, "encoding_format", &fmt, e) < 0 ||
        opt_string(root, "instruction", &instr, e) < 0 ||
        opt_string(root, "prompt_name", &prompt_name, e) < 0 ||
        opt_string(root, "truncation_direction", &direction, e) < 0 ||
        opt_bool(root, "truncate", &truncate, e) < 0 || opt_bool(root, "normalize", &normalize, e) < 0)
        goto out;
    if (!tei)
        normalize = 1; /* OpenAI vectors are always unit length */
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
        const char *p = find_prompt(srv, prompt_name);
        if (p) {
            if (p[0])
                tp.prefix = p;
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
            QS_ERR_BAD(e, in_name, "'%s' must be a string, an array of strings, an array of token "
                       "ids or an array of arrays of token ids", in_name);
            goto out;
        }
        if (kind == 2)
            n = 1;
    } else {
        QS_ERR_BAD(e, in_name, "'%s' must be a string, an array of strings, an array of token ids "
                   "or an array of arrays of token ids", in_name);
        goto out;
    }
    if (n > srv->cfg.max_inputs) {
        qs_err_set(e, 413, "invalid_request_error", "too_many_inputs", "Validation", in_name,
                   "%zu inputs in one request; the limit is %zu (--max-inputs)", n, srv->cfg.max_inputs);
        goto out;
    }
    job = calloc(1, sizeof *job);
    if (job)
        job->units = calloc(n, sizeof *job->units);
    if (!job || !job->units) {
        qs_err_set(e, 500, "server_error", NULL, "Backend", "", "out of memory");
        goto out;
    }
    job->dims = dims;
    job->normalize = normalize;
    if (kind == 0) {
        if (tokenize_text(srv, &tp, 0, input->valuestring, strlen(input->valuestring),
                          &job->units[0].ids, &job->units[0].n_ids, e) != 0)
            goto out;
        job->n_units = 1;
    } else if (kind == 2) {
        if (token_input(srv, &tp, 0, input, &job->units[0].ids, &job->units[0].n_ids, e) != 0)
            goto out;
        job->n_units = 1;
    } else {
        const cJSON *it;
        size_t i = 0;
        cJSON_ArrayForEach(it, input)
        {
            int ok = kind == 1 ? cJSON_IsString(it) : cJSON_IsArray(it);
            if (!ok) {
                QS_ERR_BAD(e, in_name, "%s[%zu] must be %s like %s[0]", in_name, i,
                           kind == 1 ? "a string" : "an array of token ids", in_name);
                goto out;
            }
            int r = kind == 1 ? tokenize_text(srv, &tp, i, it->valuestring, strlen(it->valuestring),
                                              &job->units[i].ids, &job->units[i].n_ids, e)
                              : token_input(srv, &tp, i, it, &job->units[i].ids,
                                            &job->units[i].n_ids, e);
            if (r != 0)
                goto out;
            job->n_units = ++i;
        }
    }
    for (size_t i = 0; i < job->n_units; i++)
        job->total_tokens += job->units[i].n_ids;
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

int qs_render_embed_response(qe_server *srv, const qs_job *job, const qs_req_opts *ro, qs_buf *o)
{
    size_t d = (size_t)job->dims;
    qs_buf_reserve(o, job->n_units * d * (ro->base64 ? 6 : 12) + 256);
    if (ro->tei) {
        qs_buf_put(o, "[", 1);
        for (size_t i = 0; i < job->n_units; i++) {
            qs_buf_puts(o, i ? ",[" : "[");
            for (size_t k = 0; k < d; k++) {
                if (k)
                    qs_buf_put(o, ",", 1);
                qs_buf_float(o, job->vecs[i * d + k]);
            }
            qs_buf_put(o, "]", 1);
        }
        qs_buf_put(o, "]", 1);
        return o->oom ? -1 : 0;
    }
    qs_buf_puts(o, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < job->n_units; i++) {
        qs_buf_printf(o, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        if (ro->base64) {
            /* OpenAI's base64 is the little-endian float32 bytes; x86-64 and
             * aarch64 are little-endian, so the memory is already that. */
            qs_buf_put(o, "\"", 1);
            qs_buf_base64(o, job->vecs + i * d, d * sizeof(float));
            qs_buf_put(o, "\"", 1);
        } else {
            qs_buf_put(o, "[", 1);
            for (size_t k = 0; k < d; k++) {
                if (k)
                    qs_buf_put(o, ",", 1);
                qs_buf_float(o, job->vecs[i * d + k]);
            }
            qs_buf_put(o, "]", 1);
        }
        qs_buf_put(o, "}", 1);
    }
    qs_buf_puts(o, "],\"model\":");
    qs_buf_json_str(o, ro->model, strlen(ro->model));
    qs_buf_printf(o, ",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}", job->total_tokens,
                  job->total_tokens);
    (void)srv;
    return o->oom ? -1 : 0;
}

/* POST /tokenize (TEI): [[{"id","text","special","start","stop"}, ...], ...].
 * start/stop (character offsets) are null: the public API gives no offsets. */
int qs_handle_tokenize(qe_server *srv, const char *body, size_t len, qs_buf *o, qs_apierr *e)
{
    cJSON *root = parse_body(body, len, e, 1);
    if (!root)
        return -1;
    int rc = -1, add_special = 1;
    const char *instr = NULL, *prompt_name = NULL;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (opt_bool(root, "add_special_tokens", &add_special, e) < 0 ||
        opt_string(root, "instruction", &instr, e) < 0 ||
        opt_string(root, "prompt_name", &prompt_name, e) < 0)
        goto out;
    const char *prefix_fmt = NULL, *prefix_arg = NULL;
    if (prompt_name) {
        const char *p = find_prompt(srv, prompt_name);
        if (p)
            prefix_fmt = "%s", prefix_arg = p;
        else if (prompt_name[0])
            prefix_fmt = "Instruct: %s\nQuery:", prefix_arg = prompt_name;
    } else if (instr ? instr[0] : srv->default_instruction != NULL) {
        prefix_fmt = "Instruct: %s\nQuery:";
        prefix_arg = instr ? instr : srv->default_instruction;
    }
    size_t n;
    if (cJSON_IsString(input))
        n = 1;
    else if (cJSON_IsArray(input) && (n = (size_t)cJSON_GetArraySize(input)) > 0) {
        const cJSON *it;
        cJSON_ArrayForEach(it, input)
        {
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
    qs_buf_put(o, "[", 1);
    for (size_t i = 0; i < n; i++) {
        const char *text = cJSON_IsString(input) ? input->valuestring
                                                 : cJSON_GetArrayItem(input, (int)i)->valuestring;
        size_t tl = strlen(text);
        long bad = qs_utf8_invalid_at(text, tl);
        if (bad >= 0) {
            QS_ERR_BAD(e, "inputs", "inputs[%zu] is not valid UTF-8 (byte offset %ld)", i, bad);
            goto out;
        }
        qs_buf full = {0};
        if (prefix_fmt)
            qs_buf_printf(&full, prefix_fmt, prefix_arg);
        qs_buf_put(&full, text, tl);
        if (full.oom) {
            qs_buf_free(&full);
            qs_err_set(e, 500, "server_error", NULL, "Backend", "", "out of memory");
            goto out;
        }
        qembed_encode_options eo = qembed_encode_default_options();
        eo.parse_special = srv->cfg.parse_special;
        eo.add_special_tokens = add_special;
        int32_t *ids = NULL;
        size_t nids = 0;
        qembed_error err = {0};
        qembed_status st = qembed_tokenizer_encode(srv->tok, full.p ? full.p : "", full.len, &eo, &ids,
                                                   &nids, &err);
        qs_buf_free(&full);
        if (st != QEMBED_OK) {
            QS_ERR_BAD(e, "inputs", "inputs[%zu]: %s", i, err.message);
            goto out;
        }
        qs_buf_puts(o, i ? ",[" : "[");
        for (size_t k = 0; k < nids; k++) {
            char *t1 = NULL, *t2 = NULL;
            size_t l1 = 0, l2 = 0;
            qembed_tokenizer_decode(srv->tok, &ids[k], 1, 0, &t1, &l1, NULL);
            qembed_tokenizer_decode(srv->tok, &ids[k], 1, 1, &t2, &l2, NULL);
            int special = l1 > 0 && l2 == 0;
            qs_buf_printf(o, "%s{\"id\":%d,\"text\":", k ? "," : "", (int)ids[k]);
            /* A single byte-level token may be part of a UTF-8 sequence; the
             * decoder then gives U+FFFD, which is valid JSON text. */
            if (t1 && qs_utf8_invalid_at(t1, l1) < 0)
                qs_buf_json_str(o, t1, l1);
            else
                qs_buf_puts(o, "\"\"");
            qs_buf_printf(o, ",\"special\":%s,\"start\":null,\"stop\":null}", special ? "true" : "false");
            qembed_free(t1);
            qembed_free(t2);
        }
        qs_buf_put(o, "]", 1);
        qembed_free(ids);
    }
    qs_buf_put(o, "]", 1);
    rc = o->oom ? -1 : 0;
    if (o->oom)
        qs_err_set(e, 500, "server_error", NULL, "Backend", "", "out of memory");
out:
    cJSON_Delete(root);
    return rc;
}

void qs_render_models(qe_server *srv, qs_buf *o)
{
    qs_buf_puts(o, "{\"object\":\"list\",\"data\":[{\"id\":");
    qs_buf_json_str(o, srv->served_name, strlen(srv->served_name));
    qs_buf_printf(o, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"qembed\"}]}",
                  (long long)srv->started_at);
}

void qs_render_info(qe_server *srv, qs_buf *o)
{
    const qembed_model_info *mi = &srv->info;
    const char *placement = qembed_model_placement(srv->model);
    qs_buf_puts(o, "{\"model_id\":");
    qs_buf_json_str(o, srv->served_name, strlen(srv->served_name));
    qs_buf_puts(o, ",\"model\":{\"name\":");
    qs_buf_json_str(o, mi->name, strlen(mi->name));
    qs_buf_puts(o, ",\"resolved_path\":");
    qs_buf_json_str(o, mi->resolved_path, strlen(mi->resolved_path));
    qs_buf_puts(o, ",\"architecture\":");
    qs_buf_json_str(o, mi->architecture, strlen(mi->architecture));
    qs_buf_puts(o, ",\"dtype\":");
    qs_buf_json_str(o, mi->dtype, strlen(mi->dtype));
    qs_buf_printf(o,
                  ",\"hidden_size\":%d,\"n_layers\":%d,\"n_heads\":%d,\"n_kv_heads\":%d,"
                  "\"vocab_size\":%d,\"max_position_embeddings\":%d,\"n_params\":%llu,"
                  "\"weights_bytes\":%llu,\"synthetic\":%s}",
                  mi->hidden_size, mi->n_layers, mi->n_heads, mi->n_kv_heads, mi->vocab_size,
                  mi->max_position_embeddings, (unsigned long long)mi->n_params,
                  (unsigned long long)mi->weights_bytes, mi->synthetic ? "true" : "false");
    qs_buf_puts(o, ",\"placement\":");
    if (placement && qs_utf8_invalid_at(placement, strlen(placement)) < 0)
        qs_buf_json_str(o, placement, strlen(placement));
    else
        qs_buf_puts(o, "null");
    qs_buf_printf(o,
                  ",\"limits\":{\"max_body_bytes\":%zu,\"max_inputs\":%zu,\"max_tokens\":%zu,"
                  "\"max_batch_tokens\":%zu,\"max_queue\":%zu,\"max_queue_tokens\":%zu,"
                  "\"request_timeout_s\":%g,\"batch_wait_ms\":%g,\"max_body_memory\":%zu,"
                  "\"max_request_tokens\":%zu,\"pass_seconds\":%g,\"pass_tokens\":%zu,"
                  "\"warm_tokens_per_s\":%.0f,\"header_timeout_s\":%g,\"min_body_rate\":%zu,"
                  "\"max_response_memory\":%zu}",
                  srv->cfg.max_body_bytes, srv->cfg.max_inputs, srv->max_tokens, srv->max_batch_tokens,
                  srv->cfg.max_queue, srv->max_queue_tokens, srv->cfg.request_timeout_s,
                  srv->cfg.batch_wait_ms, srv->cfg.max_body_memory, srv->max_request_tokens,
                  srv->cfg.pass_seconds, srv->pass_tokens, srv->warm_tokens_per_s,
                  srv->cfg.header_timeout_s, srv->cfg.min_body_rate, srv->cfg.max_response_memory);
    /* TEI's /info field names, for clients that read them. */
    qs_buf_printf(o, ",\"max_client_batch_size\":%zu,\"max_input_length\":%zu,\"max_batch_tokens\":%zu",
                  srv->cfg.max_inputs, srv->max_tokens, srv->max_batch_tokens);
    qs_buf_puts(o, ",\"default_instruction\":");
    if (srv->default_instruction)
        qs_buf_json_str(o, srv->default_instruction, strlen(srv->default_instruction));
    else
        qs_buf_puts(o, "null");
    qs_buf_puts(o, ",\"prompts\":[");
    for (size_t i = 0; i < srv->n_prompts; i++) {
        if (i)
            qs_buf_put(o, ",", 1);
        qs_buf_json_str(o, srv->prompt_names[i], strlen(srv->prompt_names[i]));
    }
    qs_buf_printf(o, "],\"parse_special\":%s,\"auth\":%s,\"version\":\"%s\"}",
                  srv->cfg.parse_special ? "true" : "false", srv->api_key ? "true" : "false",
                  qembed_version());
}

void qs_render_error(const qs_apierr *e, int tei, qs_buf *o)
{
    if (tei) {
        qs_buf_puts(o, "{\"error\":");
        qs_buf_json_str(o, e->message, strlen(e->message));
        qs_buf_puts(o, ",\"error_type\":");
        const char *t = e->tei_type ? e->tei_type : "Validation";
        qs_buf_json_str(o, t, strlen(t));
        qs_buf_puts(o, "}");
        return;
    }
    qs_buf_puts(o, "{\"error\":{\"message\":");
    qs_buf_json_str(o, e->message, strlen(e->message));
    qs_buf_puts(o, ",\"type\":");
    const char *t = e->type ? e->type : "invalid_request_error";
    qs_buf_json_str(o, t, strlen(t));
    qs_buf_puts(o, ",\"param\":");
    if (e->param[0])
        qs_buf_json_str(o, e->param, strlen(e->param));
    else
        qs_buf_puts(o, "null");
    qs_buf_puts(o, ",\"code\":");
    if (e->code)
        qs_buf_json_str(o, e->code, strlen(e->code));
    else
        qs_buf_puts(o, "null");
    qs_buf_puts(o, "}}");
}
