/* Work -> response bodies: embeddings (OpenAI float/base64 and TEI
 * shapes), /tokenize's token lists, /v1/models, /info and errors. Writes
 * into a qs_buf; never fails but by running out of memory (b->oom). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int qs_render_embed_response(qs_server *srv, const qs_job *job, const qs_req_opts *ro, qs_buf *o) {
    size_t d = (size_t)job->dims;
    qs_buf_reserve(o, job->n_units * d * (ro->base64 ? 6 : 12) + 256);
    if (ro->tei) {
        qs_buf_put(o, "[", 1);
        for (size_t i = 0; i < job->n_units; i++) {
            qs_buf_puts(o, i ? ",[" : "[");
            for (size_t k = 0; k < d; k++) {
                if (k) qs_buf_put(o, ",", 1);
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
                if (k) qs_buf_put(o, ",", 1);
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
int qs_render_tokenize(qs_server *srv, const qs_toklist *t, qs_buf *o) {
    qs_buf_put(o, "[", 1);
    for (size_t i = 0; i < t->count; i++) {
        const int32_t *ids = t->ids[i];
        size_t nids = t->n[i];
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
    }
    qs_buf_put(o, "]", 1);
    return o->oom ? -1 : 0;
}

void qs_render_models(qs_server *srv, qs_buf *o) {
    qs_buf_puts(o, "{\"object\":\"list\",\"data\":[{\"id\":");
    qs_buf_json_str(o, srv->served_name, strlen(srv->served_name));
    qs_buf_printf(o, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"qembed\"}]}",
                  (long long)srv->started_at);
}

void qs_render_info(qs_server *srv, qs_buf *o) {
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
                  srv->cfg.pass_seconds, srv->pass_tokens, srv->warm_tokens_per_s, srv->cfg.header_timeout_s,
                  srv->cfg.min_body_rate, srv->cfg.max_response_memory);
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
        if (i) qs_buf_put(o, ",", 1);
        qs_buf_json_str(o, srv->prompt_names[i], strlen(srv->prompt_names[i]));
    }
    qs_buf_printf(o, "],\"parse_special\":%s,\"auth\":%s,\"version\":\"%s\"}",
                  srv->cfg.parse_special ? "true" : "false", srv->api_key ? "true" : "false",
                  qembed_version());
}

void qs_render_error(const qs_apierr *e, int tei, qs_buf *o) {
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
