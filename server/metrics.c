/* The server's counters (requests, passes, rejections by reason) and their
 * Prometheus text exposition (format 0.0.4). */
#include <stdio.h>
#include <string.h>

#include "internal.h"

const char *const qs_endpoint_names[QS_EP_COUNT] = {
    "/v1/embeddings", "/embed", "/tokenize", "/health", "/v1/models", "/info", "/metrics", "other",
};

/* Rejections by reason (the summary line is the guard thread's). */
const char *const qs_reject_names[QS_REJ_COUNT] = {
    "queue_full",    "body_memory",    "response_memory", "request_too_large", "timeout",
    "shutting_down", "header_timeout", "slow_body",       "bad_framing",       "client_gone",
};

void qs_reject(qs_server *srv, int reason) {
    if (reason >= 0 && reason < QS_REJ_COUNT) atomic_fetch_add(&srv->rejected[reason], 1);
}

int qs_reject_reason(const qs_apierr *e) {
    static const struct {
        const char *code;
        int reason;
    } tab[] = {
        {"queue_full", QS_REJ_QUEUE_FULL},
        {"overloaded", QS_REJ_BODY_MEMORY},
        {"response_memory", QS_REJ_RESPONSE_MEMORY},
        {"request_too_many_tokens", QS_REJ_REQUEST_TOO_LARGE},
        {"timeout", QS_REJ_TIMEOUT},
        {"shutting_down", QS_REJ_SHUTTING_DOWN},
        {"bad_framing", QS_REJ_BAD_FRAMING}, /* client_gone: counted by the sweep that saw it */
    };
    if (!e->code) return -1;
    for (size_t i = 0; i < sizeof tab / sizeof *tab; i++)
        if (strcmp(e->code, tab[i].code) == 0) return tab[i].reason;
    return -1;
}

static const double lat_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                    0.5,   1,      2.5,   5,    10,    30,   60};
static const double seq_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
static const double tok_bounds[] = {16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536};

static void hist_init(qs_hist *h, const double *bounds, int n) {
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n = n;
}

static void hist_add(qs_hist *h, double v) {
    int i = 0;
    while (i < h->n && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void qs_metrics_init(qs_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    for (int e = 0; e < QS_EP_COUNT; e++)
        hist_init(&m->latency[e], lat_bounds, (int)(sizeof lat_bounds / sizeof *lat_bounds));
    hist_init(&m->batch_seqs, seq_bounds, (int)(sizeof seq_bounds / sizeof *seq_bounds));
    hist_init(&m->batch_tokens, tok_bounds, (int)(sizeof tok_bounds / sizeof *tok_bounds));
    hist_init(&m->inference, lat_bounds, (int)(sizeof lat_bounds / sizeof *lat_bounds));
}

void qs_metrics_destroy(qs_metrics *m) {
    pthread_mutex_destroy(&m->mu);
}

void qs_metrics_request(qs_metrics *m, int ep, int status, double seconds) {
    if (ep < 0 || ep >= QS_EP_COUNT) ep = QS_EP_OTHER;
    if (status < 0 || status >= 600) status = 500;
    pthread_mutex_lock(&m->mu);
    m->requests[ep][status]++;
    hist_add(&m->latency[ep], seconds);
    pthread_mutex_unlock(&m->mu);
}

void qs_metrics_batch(qs_metrics *m, size_t seqs, size_t tokens, double seconds) {
    pthread_mutex_lock(&m->mu);
    hist_add(&m->batch_seqs, (double)seqs);
    hist_add(&m->batch_tokens, (double)tokens);
    hist_add(&m->inference, seconds);
    m->tokens_embedded += tokens;
    m->inputs_embedded += seqs;
    m->batches++;
    pthread_mutex_unlock(&m->mu);
}

static void render_hist(qs_buf *o, const char *name, const char *labels, const qs_hist *h) {
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i <= h->n; i++) {
        cum += h->counts[i];
        if (i < h->n)
            qs_buf_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, h->bounds[i],
                          (unsigned long long)cum);
        else
            qs_buf_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    }
    if (labels[0]) {
        qs_buf_printf(o, "%s_sum{%s} %.9g\n", name, labels, h->sum);
        qs_buf_printf(o, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
    } else {
        qs_buf_printf(o, "%s_sum %.9g\n", name, h->sum);
        qs_buf_printf(o, "%s_count %llu\n", name, (unsigned long long)h->count);
    }
}

void qs_metrics_render(qs_server *srv, qs_buf *o) {
    qs_metrics *m = &srv->metrics;
    pthread_mutex_lock(&srv->mu);
    size_t qreq = srv->queued_requests, qtok = srv->queued_tokens;
    pthread_mutex_unlock(&srv->mu);

    pthread_mutex_lock(&m->mu);
    qs_buf_puts(o, "# HELP qembed_requests_total HTTP requests answered, by endpoint and status.\n"
                   "# TYPE qembed_requests_total counter\n");
    for (int e = 0; e < QS_EP_COUNT; e++)
        for (int s = 0; s < 600; s++)
            if (m->requests[e][s])
                qs_buf_printf(o, "qembed_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                              qs_endpoint_names[e], s, (unsigned long long)m->requests[e][s]);
    qs_buf_puts(o, "# HELP qembed_request_duration_seconds Time from the request's arrival to its "
                   "response, by endpoint.\n# TYPE qembed_request_duration_seconds histogram\n");
    for (int e = 0; e < QS_EP_COUNT; e++) {
        if (!m->latency[e].count) continue;
        char lab[64];
        snprintf(lab, sizeof lab, "endpoint=\"%s\"", qs_endpoint_names[e]);
        render_hist(o, "qembed_request_duration_seconds", lab, &m->latency[e]);
    }
    qs_buf_puts(o, "# HELP qembed_batch_size Inputs per forward pass.\n"
                   "# TYPE qembed_batch_size histogram\n");
    render_hist(o, "qembed_batch_size", "", &m->batch_seqs);
    qs_buf_puts(o, "# HELP qembed_batch_tokens Tokens per forward pass.\n"
                   "# TYPE qembed_batch_tokens histogram\n");
    render_hist(o, "qembed_batch_tokens", "", &m->batch_tokens);
    qs_buf_puts(o, "# HELP qembed_inference_seconds Time per forward pass.\n"
                   "# TYPE qembed_inference_seconds histogram\n");
    render_hist(o, "qembed_inference_seconds", "", &m->inference);
    qs_buf_printf(o,
                  "# HELP qembed_tokens_embedded_total Tokens run through the model.\n"
                  "# TYPE qembed_tokens_embedded_total counter\n"
                  "qembed_tokens_embedded_total %llu\n"
                  "# HELP qembed_inputs_embedded_total Inputs (sequences) embedded.\n"
                  "# TYPE qembed_inputs_embedded_total counter\n"
                  "qembed_inputs_embedded_total %llu\n"
                  "# HELP qembed_batches_total Forward passes run.\n"
                  "# TYPE qembed_batches_total counter\n"
                  "qembed_batches_total %llu\n",
                  (unsigned long long)m->tokens_embedded, (unsigned long long)m->inputs_embedded,
                  (unsigned long long)m->batches);
    pthread_mutex_unlock(&m->mu);
    /* The two older names stay for existing dashboards. */
    qs_buf_printf(o,
                  "# HELP qembed_rejected_queue_full_total Requests refused with 503 because the "
                  "queue was full.\n"
                  "# TYPE qembed_rejected_queue_full_total counter\n"
                  "qembed_rejected_queue_full_total %llu\n"
                  "# HELP qembed_request_timeouts_total Requests answered 504.\n"
                  "# TYPE qembed_request_timeouts_total counter\n"
                  "qembed_request_timeouts_total %llu\n"
                  "# HELP qembed_rejected_total Requests and connections refused or closed, by reason.\n"
                  "# TYPE qembed_rejected_total counter\n",
                  (unsigned long long)atomic_load(&srv->rejected[QS_REJ_QUEUE_FULL]),
                  (unsigned long long)atomic_load(&srv->rejected[QS_REJ_TIMEOUT]));
    for (int k = 0; k < QS_REJ_COUNT; k++)
        qs_buf_printf(o, "qembed_rejected_total{reason=\"%s\"} %llu\n", qs_reject_names[k],
                      (unsigned long long)atomic_load(&srv->rejected[k]));
    qs_buf_printf(o,
                  "# HELP qembed_response_bytes_held Response bytes held for clients that have not "
                  "read them yet.\n"
                  "# TYPE qembed_response_bytes_held gauge\n"
                  "qembed_response_bytes_held %zu\n"
                  "# HELP qembed_body_bytes_held Request body bytes being received.\n"
                  "# TYPE qembed_body_bytes_held gauge\n"
                  "qembed_body_bytes_held %zu\n",
                  atomic_load(&srv->resp_mem), atomic_load(&srv->body_mem));
    qs_buf_printf(o,
                  "# HELP qembed_queue_depth Embedding requests accepted and not yet answered.\n"
                  "# TYPE qembed_queue_depth gauge\n"
                  "qembed_queue_depth %zu\n"
                  "# HELP qembed_queue_tokens Tokens of those requests.\n"
                  "# TYPE qembed_queue_tokens gauge\n"
                  "qembed_queue_tokens %zu\n"
                  "# HELP qembed_requests_in_flight HTTP requests begun and not yet completed.\n"
                  "# TYPE qembed_requests_in_flight gauge\n"
                  "qembed_requests_in_flight %ld\n"
                  "# HELP qembed_ready 1 once the model is loaded and warmed up.\n"
                  "# TYPE qembed_ready gauge\n"
                  "qembed_ready %d\n",
                  qreq, qtok, atomic_load(&srv->inflight), atomic_load(&srv->ready));
}
