/* libFuzzer target for the server's request parsers (untrusted HTTP bodies):
 * qs_parse_embed_request (OpenAI and TEI shapes, with tokenization),
 * qs_parse_tokenize + qs_render_tokenize, on the shared tiny model, and the
 * framing checks (framing.c: a request target line, then "name: value"
 * lines). The first byte picks the parser (>= 0xf0: framing, else % 3); the
 * rest is the body. Any crash, leak or sanitizer report is a bug;
 * errors are the expected outcome for most inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static qs_server *srv;
static qembed_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("QE_TINY_MODEL");
    if (!dir) dir = QE_TINY_MODEL_DEFAULT;
    qembed_model_params mp = qembed_model_default_params();
    mp.max_batch_tokens = 256;
    qembed_error err = {0};
    if (qembed_model_load(dir, &mp, &model, &err) != QEMBED_OK) {
        fprintf(stderr, "fuzz_request: cannot load %s: %s\n", dir, err.message);
        exit(1);
    }
    qs_server_config cfg;
    qs_server_default_config(&cfg);
    cfg.max_inputs = 16;
    cfg.max_tokens = 64;
    cfg.max_batch_tokens = 256;
    cfg.default_instruction = "fuzz";
    char e[256];
    if (qs_server_create(&cfg, &srv, e, sizeof e) != 0 || qs_bind_model(srv, model, e, sizeof e) != 0) {
        fprintf(stderr, "fuzz_request: %s\n", e);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (size < 1 || size > 65536) return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    qs_apierr e = {0};
    if (data[0] >= 0xf0) {
        qs_framing f = {0};
        const char *end = body + len, *line = body;
        int first = 1;
        while (line < end) {
            const char *nl = memchr(line, '\n', (size_t)(end - line));
            const char *le = nl ? nl : end;
            if (first) {
                qs_framing_uri(&f, line, (size_t)(le - line));
                first = 0;
            } else {
                const char *colon = memchr(line, ':', (size_t)(le - line));
                if (colon)
                    qs_framing_header(&f, line, (size_t)(colon - line), colon + 1, (size_t)(le - colon - 1));
            }
            line = le + 1;
        }
        qs_framing_finish(&f);
        if (f.status != 0 && f.status != 400 && f.status != 501) abort();
        if (f.status && (!f.msg[0] || !memchr(f.msg, 0, sizeof f.msg))) abort(); /* every refusal says why */
        return 0;
    }
    if (data[0] % 3 == 2) {
        qs_toklist t;
        if (qs_parse_tokenize(srv, body, len, &t, &e) == 0) {
            qs_buf out = {0};
            qs_render_tokenize(srv, &t, &out);
            qs_toklist_free(&t);
            qs_buf_free(&out);
        } else if (e.status < 400 || e.status > 599 || !e.message[0]) {
            abort();
        }
        return 0;
    }
    qs_job *job = NULL;
    qs_req_opts ro;
    if (qs_parse_embed_request(srv, data[0] % 3, body, len, &job, &ro, &e) == 0) {
        /* Every accepted job must respect the limits the parser enforces. */
        if (!job || job->n_units == 0 || job->n_units > 16) abort();
        for (size_t i = 0; i < job->n_units; i++)
            if (job->units[i].n_ids == 0 || job->units[i].n_ids > 64) abort();
        qs_job_free(job);
    } else if (e.status < 400 || e.status > 599 || !e.message[0]) {
        abort(); /* every refusal carries a status and a message */
    }
    return 0;
}
