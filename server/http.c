/* HTTP front end on libmicrohttpd: routing, authentication, body limits, and
 * the suspend/resume hand-off to the batching thread.
 *
 * MHD calls on_request several times per request: once after the headers
 * (we route, authenticate and check Content-Length, answering early on
 * error), then once per chunk of body (we copy it, bounded by
 * --max-body-bytes), then once with no data (the body is complete: we parse,
 * tokenize and queue, and suspend the connection), and once more after the
 * batcher resumes it (we send the result). */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

typedef struct qs_req {
    int ep;
    double t0;
    int status;   /* what we answered (for metrics) */
    int tei;      /* error style */
    int answered; /* a response is queued */
    char *body;
    size_t len, cap;
    int too_big;
    int overloaded; /* the server-wide body budget was exhausted */
    size_t charged; /* bytes of body buffer counted in srv->body_mem */
    qs_job *job;    /* queued (or refused) embedding job */
    int enqueued;
    qs_req_opts ro;
    qs_apierr err;      /* set when enqueue failed after suspending */
    int headers_seen;   /* on_request has been called once */
    qs_framing framing; /* the raw target's check, then the headers' */
} qs_req;

static int route(const char *url) {
    static const struct {
        const char *path;
        int ep;
    } tab[] = {
        {"/v1/embeddings", QS_EP_EMBEDDINGS},
        {"/embeddings", QS_EP_EMBEDDINGS},
        {"/embed", QS_EP_EMBED},
        {"/tokenize", QS_EP_TOKENIZE},
        {"/health", QS_EP_HEALTH},
        {"/v1/models", QS_EP_MODELS},
        {"/info", QS_EP_INFO},
        {"/metrics", QS_EP_METRICS},
    };
    for (size_t i = 0; i < sizeof tab / sizeof *tab; i++)
        if (strcmp(url, tab[i].path) == 0) return tab[i].ep;
    return QS_EP_OTHER;
}

/* Request bodies are buffered whole; all of them together stay under
 * --max-body-memory so that many slow uploads cannot exhaust memory. */
static int body_charge(qs_server *srv, qs_req *r, size_t new_cap) {
    size_t delta = new_cap - r->charged;
    size_t before = atomic_fetch_add(&srv->body_mem, delta);
    if (before + delta > srv->cfg.max_body_memory) {
        atomic_fetch_sub(&srv->body_mem, delta);
        return -1;
    }
    r->charged = new_cap;
    return 0;
}

static void body_release(qs_server *srv, qs_req *r) {
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    atomic_fetch_sub(&srv->body_mem, r->charged);
    r->charged = 0;
}

static int is_post_ep(int ep) {
    return ep == QS_EP_EMBEDDINGS || ep == QS_EP_EMBED || ep == QS_EP_TOKENIZE;
}

/* A response body MHD holds until the client has read it: counted in
 * srv->resp_mem from creation to MHD's free callback. */
typedef struct held_resp {
    qs_server *srv;
    char *p;
    size_t n;
} held_resp;

static void held_free(void *cls) {
    held_resp *h = cls;
    atomic_fetch_sub(&h->srv->resp_mem, h->n);
    free(h->p);
    free(h);
}

/* Responses up to this size are always sent (errors, /health, a few
 * vectors), so that the response budget never silences the small answers. */
#define QS_SMALL_RESPONSE (64u << 10)

static enum MHD_Result send_buf(qs_server *srv, struct MHD_Connection *c, qs_req *r, int status, qs_buf *b,
                                const char *ctype, int retry_after, int close_after) {
    if (b->oom) {
        qs_buf_free(b);
        qs_buf_puts(b, "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                       "\"param\":null,\"code\":null}}");
        status = 500;
    }
    /* Clients that do not read keep their responses in memory until the idle
     * timeout closes them: all such bytes together stay under
     * --max-response-memory; past it a large answer is replaced by a 503. */
    if (b->len > QS_SMALL_RESPONSE) {
        size_t before = atomic_fetch_add(&srv->resp_mem, b->len);
        atomic_fetch_sub(&srv->resp_mem, b->len);
        if (before + b->len > srv->cfg.max_response_memory) {
            qs_buf_free(b);
            qs_apierr e;
            qs_err_set(&e, 503, "server_error", "response_memory", "Overloaded", NULL,
                       "responses waiting to be read hold %zu bytes (--max-response-memory %zu): "
                       "retry later",
                       before, srv->cfg.max_response_memory);
            qs_reject(srv, QS_REJ_RESPONSE_MEMORY);
            qs_render_error(&e, r->tei, b);
            status = 503;
            retry_after = 1;
        }
    }
    held_resp *h = malloc(sizeof *h);
    struct MHD_Response *resp = NULL;
    if (h) {
        h->srv = srv;
        h->p = b->p ? b->p : strdup("");
        h->n = b->len;
        if (h->p) resp = MHD_create_response_from_buffer_with_free_callback_cls(h->n, h->p, held_free, h);
    }
    if (!resp) {
        if (h && h->p != b->p) free(h->p);
        free(h);
        qs_buf_free(b);
        return MHD_NO;
    }
    atomic_fetch_add(&srv->resp_mem, h->n);
    b->p = NULL; /* MHD owns it now */
    qs_buf_free(b);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (retry_after) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, is_post_ep(r->ep) ? "POST" : "GET");
    if (status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    /* While stopping, close keep-alive connections after this answer so that
     * clients (and proxies) reconnect to another replica. */
    if (atomic_load(&srv->stopping) || close_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    r->answered = 1;
    qs_conn_phase(srv, c, QS_PH_REPLY, NULL);
    return ret;
}

static enum MHD_Result send_json(qs_server *srv, struct MHD_Connection *c, qs_req *r, int status, qs_buf *b) {
    return send_buf(srv, c, r, status, b, "application/json", 0, 0);
}

static enum MHD_Result send_error(qs_server *srv, struct MHD_Connection *c, qs_req *r, const qs_apierr *e) {
    qs_buf b = {0};
    qs_render_error(e, r->tei, &b);
    /* Refusals under load are counted and summarised once a second by the
     * guard thread; one line each would flood the log. */
    int reason = qs_reject_reason(e);
    if (reason >= 0) qs_reject(srv, reason);
    if (srv->cfg.log_requests || (e->status >= 500 && reason < 0))
        qs_log(srv, e->status >= 500 ? QEMBED_LOG_WARN : QEMBED_LOG_INFO, "%s -> %d: %s",
               qs_endpoint_names[r->ep], e->status, e->message);
    return send_buf(srv, c, r, e->status, &b, "application/json", e->status == 503, e->close);
}

static int authorized(qs_server *srv, struct MHD_Connection *c) {
    if (!srv->api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    h += 7;
    while (*h == ' ') h++;
    return qs_secret_equal(srv->api_key, h);
}

static enum MHD_Result not_ready(qs_server *srv, struct MHD_Connection *c, qs_req *r) {
    qs_apierr e;
    if (atomic_load(&srv->stopping))
        qs_err_set(&e, 503, "server_error", "shutting_down", "Unhealthy", NULL,
                   "the server is shutting down");
    else
        qs_err_set(&e, 503, "server_error", "loading", "Unhealthy", NULL,
                   "the model is still loading; retry when GET /health answers 200");
    return send_error(srv, c, r, &e);
}

/* The body is complete: answer what needs no model, or queue the job. */
static enum MHD_Result dispatch(qs_server *srv, struct MHD_Connection *c, qs_req *r) {
    qs_apierr e = {0};
    qs_buf b = {0};
    switch (r->ep) {
        case QS_EP_HEALTH: {
            int ok = atomic_load(&srv->ready) && !atomic_load(&srv->stopping);
            qs_buf_puts(&b, ok                            ? "{\"status\":\"ok\"}"
                            : atomic_load(&srv->stopping) ? "{\"status\":\"stopping\"}"
                                                          : "{\"status\":\"loading\"}");
            return send_buf(srv, c, r, ok ? 200 : 503, &b, "application/json", !ok, 0);
        }
        case QS_EP_METRICS:
            qs_metrics_render(srv, &b);
            return send_buf(srv, c, r, 200, &b, "text/plain; version=0.0.4; charset=utf-8", 0, 0);
        default: break;
    }
    if (!atomic_load(&srv->ready)) return not_ready(srv, c, r);
    switch (r->ep) {
        case QS_EP_MODELS: qs_render_models(srv, &b); return send_json(srv, c, r, 200, &b);
        case QS_EP_INFO: qs_render_info(srv, &b); return send_json(srv, c, r, 200, &b);
        case QS_EP_TOKENIZE: {
            qs_toklist t;
            if (qs_parse_tokenize(srv, r->body, r->len, &t, &e) != 0) return send_error(srv, c, r, &e);
            body_release(srv, r);
            qs_render_tokenize(srv, &t, &b); /* out of memory: b.oom, answered 500 by send_buf */
            qs_toklist_free(&t);
            return send_json(srv, c, r, 200, &b);
        }
        case QS_EP_EMBEDDINGS:
        case QS_EP_EMBED: break;
        default:
            qs_err_set(&e, 500, "server_error", NULL, "Backend", NULL, "unroutable request");
            return send_error(srv, c, r, &e);
    }
    qs_job *job = NULL;
    if (qs_parse_embed_request(srv, r->ep == QS_EP_EMBED, r->body, r->len, &job, &r->ro, &e) != 0)
        return send_error(srv, c, r, &e);
    /* The body is no longer needed while the job waits. */
    body_release(srv, r);
    if (job->total_tokens > srv->max_request_tokens) {
        /* More than the queue may ever hold: refused before any compute
         * (accepted alone, it would lock every other client out). */
        qs_err_set(&e, 413, "invalid_request_error", "request_too_many_tokens", "Validation", "input",
                   "the request has %zu tokens; the limit is %zu per request (--max-request-tokens): "
                   "split it",
                   job->total_tokens, srv->max_request_tokens);
        qs_job_free(job);
        return send_error(srv, c, r, &e);
    }
    job->conn = c;
    job->refs = 2; /* this request + the queue */
    job->deadline = r->t0 + srv->cfg.request_timeout_s;
    r->job = job;
    /* Suspend before queueing: the batcher may resume the connection as soon
     * as the job is in the queue. */
    qs_conn_phase(srv, c, QS_PH_WAIT, job);
    MHD_suspend_connection(c);
    if (qs_enqueue(srv, job, &r->err) != 0) {
        job->refs = 1;
        r->enqueued = 0;
        MHD_resume_connection(c);
        return MHD_YES;
    }
    r->enqueued = 1;
    return MHD_YES;
}

static enum MHD_Result on_resumed(qs_server *srv, struct MHD_Connection *c, qs_req *r) {
    qs_job *job = r->job;
    if (!r->enqueued) return send_error(srv, c, r, &r->err);
    pthread_mutex_lock(&srv->mu);
    int state = job->state;
    pthread_mutex_unlock(&srv->mu);
    if (state == QS_JOB_QUEUED) {
        /* Not ours to answer yet (spurious resume): wait again. */
        MHD_suspend_connection(c);
        return MHD_YES;
    }
    if (state == QS_JOB_FAILED) return send_error(srv, c, r, &job->err);
    qs_buf b = {0};
    qs_render_embed_response(srv, job, &r->ro, &b);
    if (srv->cfg.log_requests)
        qs_log(srv, QEMBED_LOG_INFO, "%s -> 200: %zu input(s), %zu tokens, %.1f ms", qs_endpoint_names[r->ep],
               job->n_units, job->total_tokens, (qs_now() - r->t0) * 1e3);
    return send_json(srv, c, r, 200, &b);
}

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                      const char *value, size_t value_size) {
    (void)kind;
    qs_framing_header(cls, key, key_size, value ? value : "", value ? value_size : 0);
    return MHD_YES;
}

/* MHD_OPTION_URI_LOG_CALLBACK: the first call for each request, with the
 * target as sent (before %-decoding); what it returns becomes *con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
    qs_server *srv = cls;
    qs_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    atomic_fetch_add(&srv->inflight, 1);
    r->t0 = qs_now();
    if (qs_conn_poisoned(srv, c)) {
        r->framing.status = 400;
        snprintf(r->framing.msg, sizeof r->framing.msg,
                 "a previous request on this connection was malformed");
    }
    qs_framing_uri(&r->framing, uri ? uri : "", uri ? strlen(uri) : 0);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls) {
    qs_server *srv = cls;
    qs_req *r = *con_cls;
    if (!r) return MHD_NO; /* on_uri makes it; NULL only when out of memory */
    if (!r->headers_seen) {
        r->headers_seen = 1;
        qs_conn_phase(srv, c, QS_PH_BODY, NULL);
        r->ep = route(url);
        r->tei = r->ep == QS_EP_EMBED || r->ep == QS_EP_TOKENIZE;
        qs_apierr e = {0};
        MHD_get_connection_values_n(c, MHD_HEADER_KIND, framing_header, &r->framing);
        qs_framing_finish(&r->framing);
        if (r->framing.status) {
            qs_err_set(&e, r->framing.status, "invalid_request_error", "bad_framing", "Validation", NULL,
                       "%s", r->framing.msg);
            e.close = 1; /* the rest of these bytes cannot be trusted to frame a next request */
            return send_error(srv, c, r, &e);
        }
        int is_post = strcmp(method, "POST") == 0;
        int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        if (r->ep == QS_EP_OTHER) {
            qs_err_set(&e, 404, "invalid_request_error", "unknown_url", "Validation", NULL,
                       "no such endpoint: %s %.200s", method, url);
        } else if (is_post_ep(r->ep) ? !is_post : !is_get) {
            qs_err_set(&e, 405, "invalid_request_error", "method_not_allowed", "Validation", NULL,
                       "%s %.200s is not allowed; use %s", method, url, is_post_ep(r->ep) ? "POST" : "GET");
        } else if (r->ep != QS_EP_HEALTH && !authorized(srv, c)) {
            qs_err_set(&e, 401, "invalid_request_error", "invalid_api_key", "Unauthorized", NULL,
                       "missing or wrong API key: send the header 'Authorization: Bearer <key>'");
        } else {
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (cl && strtoull(cl, NULL, 10) > srv->cfg.max_body_bytes)
                qs_err_set(&e, 413, "invalid_request_error", "request_too_large", "Validation", NULL,
                           "the body has %s bytes; the limit is %zu (--max-body-bytes)", cl,
                           srv->cfg.max_body_bytes);
        }
        if (e.status) return send_error(srv, c, r, &e); /* MHD drops the unread body and closes */
        return MHD_YES;
    }
    if (r->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        qs_conn_body(srv, c, n);
        if (r->too_big || r->overloaded || r->len + n > srv->cfg.max_body_bytes) {
            /* Chunked bodies have no Content-Length: drop the rest as it comes. */
            if (!r->overloaded) r->too_big = 1;
            body_release(srv, r);
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n) cap *= 2;
            if (cap > srv->cfg.max_body_bytes) cap = srv->cfg.max_body_bytes;
            if (body_charge(srv, r, cap) != 0) {
                r->overloaded = 1;
                body_release(srv, r);
                return MHD_YES;
            }
            char *p = realloc(r->body, cap);
            if (!p) return MHD_NO;
            r->body = p;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->job) return on_resumed(srv, c, r);
    if (r->overloaded) {
        qs_apierr e;
        qs_err_set(&e, 503, "server_error", "overloaded", "Overloaded", NULL,
                   "too many request bodies are being received at once (--max-body-memory %zu): "
                   "retry later",
                   srv->cfg.max_body_memory);
        return send_error(srv, c, r, &e);
    }
    if (r->too_big) {
        qs_apierr e;
        qs_err_set(&e, 413, "invalid_request_error", "request_too_large", "Validation", NULL,
                   "the body is larger than %zu bytes (--max-body-bytes)", srv->cfg.max_body_bytes);
        return send_error(srv, c, r, &e);
    }
    return dispatch(srv, c, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    qs_server *srv = cls;
    qs_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (!r->headers_seen && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        qs_conn_poison(srv, c); /* MHD refused it without asking us */
    if (r->status) qs_metrics_request(&srv->metrics, r->ep, r->status, qs_now() - r->t0);
    /* The guard must not see the job once our reference is gone. */
    qs_conn_phase(srv, c, QS_PH_IDLE, NULL);
    if (r->job) qs_job_release(srv, r->job);
    body_release(srv, r);
    free(r);
    atomic_fetch_sub(&srv->inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    qs_server *srv = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    qs_log(srv, QEMBED_LOG_DEBUG, "microhttpd: %s", line);
}

/* ---- life cycle ---- */

void qs_server_default_config(qs_server_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->host = "127.0.0.1";
    cfg->port = 8080;
    cfg->http_threads = 2;
    cfg->max_connections = 1024;
    cfg->max_body_bytes = 8u << 20;
    cfg->max_body_memory = (size_t)256 << 20;
    cfg->max_inputs = 2048;
    cfg->max_queue = 256;
    cfg->request_timeout_s = 60;
    cfg->idle_timeout_s = 60;
    cfg->pass_seconds = 0.5;
    cfg->header_timeout_s = 10;
    cfg->min_body_rate = 8192;
    cfg->max_response_memory = (size_t)256 << 20;
}

static char *dup_or_null(const char *s) {
    return s && s[0] ? strdup(s) : NULL;
}

int qs_server_create(const qs_server_config *cfg, qs_server **out, char *err, size_t errlen) {
    *out = NULL;
    if (cfg->max_inputs == 0 || cfg->max_queue == 0 || cfg->max_body_bytes == 0 ||
        cfg->max_body_memory < cfg->max_body_bytes || cfg->request_timeout_s <= 0 || cfg->http_threads < 1 ||
        cfg->pass_seconds < 0 || cfg->header_timeout_s < 0) {
        snprintf(err, errlen,
                 "invalid server limits (max_inputs, max_queue, max_body_bytes (at most max_body_memory), "
                 "request_timeout and http_threads must be positive)");
        return -1;
    }
    qs_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv->cfg = *cfg;
    srv->host = strdup(cfg->host ? cfg->host : "127.0.0.1");
    srv->api_key = dup_or_null(cfg->api_key);
    srv->served_name = dup_or_null(cfg->served_model_name);
    srv->default_instruction = dup_or_null(cfg->default_instruction);
    srv->cfg.host = srv->host;
    srv->cfg.api_key = srv->api_key;
    srv->cfg.default_instruction = srv->default_instruction;
    srv->cfg.served_model_name = NULL;
    pthread_mutex_init(&srv->mu, NULL);
    pthread_mutex_init(&srv->conn_mu, NULL);
    pthread_cond_init(&srv->cv_work, NULL);
    pthread_cond_init(&srv->cv_state, NULL);
    qs_metrics_init(&srv->metrics);
    srv->started_at = (double)time(NULL);
    *out = srv;
    return 0;
}

int qs_server_start(qs_server *srv, char *err, size_t errlen) {
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", srv->cfg.port);
    int gai = getaddrinfo(srv->host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, errlen, "--host %s: %s", srv->host, gai_strerror(gai));
        return -1;
    }
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)srv->cfg.http_threads, MHD_OPTION_CONNECTION_LIMIT, srv->cfg.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)srv->cfg.idle_timeout_s, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)1024, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
        qs_conn_notify, srv, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        srv, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d (address in use or not available?)", srv->host,
                 srv->cfg.port);
        return -1;
    }
    if (qs_guard_start(srv) != 0) {
        MHD_stop_daemon(srv->daemon);
        srv->daemon = NULL;
        snprintf(err, errlen, "cannot start the connection guard thread");
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : srv->cfg.port;
    qs_log(srv, QEMBED_LOG_INFO, "listening on http://%s:%d (%d HTTP threads)", srv->host, srv->port,
           srv->cfg.http_threads);
    return 0;
}

int qs_server_port(const qs_server *srv) {
    return srv->port;
}

int qs_bind_model(qs_server *srv, const qembed_model *model, char *err, size_t errlen) {
    srv->model = model;
    srv->tok = qembed_model_tokenizer(model);
    qembed_model_get_info(model, &srv->info);
    if (!srv->tok || srv->info.hidden_size <= 0) {
        snprintf(err, errlen, "the model has no tokenizer or no hidden size");
        return -1;
    }
    srv->eos_id = qembed_tokenizer_token_to_id(srv->tok, "<|endoftext|>");
    srv->n_vocab = qembed_tokenizer_n_vocab(srv->tok);
    if (srv->info.vocab_size > 0 && (size_t)srv->info.vocab_size < srv->n_vocab)
        srv->n_vocab = (size_t)srv->info.vocab_size; /* ids past the embedding table are invalid */
    srv->max_batch_tokens = srv->cfg.max_batch_tokens ? srv->cfg.max_batch_tokens : 16384;
    srv->max_tokens = srv->cfg.max_tokens ? srv->cfg.max_tokens : srv->info.max_tokens;
    if (srv->max_tokens == 0) srv->max_tokens = 8192;
    if (srv->max_tokens > srv->max_batch_tokens) {
        /* One input must fit one forward pass. */
        qs_log(srv, QEMBED_LOG_WARN, "--max-tokens %zu lowered to --max-batch-tokens %zu", srv->max_tokens,
               srv->max_batch_tokens);
        srv->max_tokens = srv->max_batch_tokens;
    }
    srv->max_queue_tokens = srv->cfg.max_queue_tokens ? srv->cfg.max_queue_tokens : 4 * srv->max_batch_tokens;
    srv->max_request_tokens =
        srv->cfg.max_request_tokens ? srv->cfg.max_request_tokens : srv->max_queue_tokens;
    if (srv->max_request_tokens > srv->max_queue_tokens) {
        qs_log(srv, QEMBED_LOG_WARN, "--max-request-tokens %zu lowered to --max-queue-tokens %zu",
               srv->max_request_tokens, srv->max_queue_tokens);
        srv->max_request_tokens = srv->max_queue_tokens;
    }
    srv->pass_tokens = srv->max_batch_tokens; /* until the warm-up measures the speed */
    if (!srv->served_name) {
        srv->served_name = strdup(srv->info.name[0] ? srv->info.name : "qembed");
        if (!srv->served_name) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    qs_load_prompts(srv);
    return 0;
}

int qs_server_attach_model(qs_server *srv, const qembed_model *model, char *err, size_t errlen) {
    if (qs_bind_model(srv, model, err, errlen) != 0) return -1;
    if (qs_batcher_start(srv, err, errlen) != 0) return -1;
    atomic_store(&srv->ready, 1);
    qs_log(srv, QEMBED_LOG_INFO, "ready: model %s, hidden %d, max tokens %zu, max batch tokens %zu",
           srv->served_name, srv->info.hidden_size, srv->max_tokens, srv->max_batch_tokens);
    return 0;
}

void qs_server_shutdown(qs_server *srv, double grace_s) {
    if (atomic_exchange(&srv->stopping, 1)) return;
    qs_log(srv, QEMBED_LOG_INFO, "shutting down: no new connections; finishing %ld request(s)",
           atomic_load(&srv->inflight));
    MHD_socket lfd = MHD_INVALID_SOCKET;
    if (srv->daemon) {
        lfd = MHD_quiesce_daemon(srv->daemon);
        /* MHD stops polling the socket but keeps it open until stop; shutting
         * down its read side makes the kernel refuse new connections now
         * instead of queueing them in the backlog. */
        if (lfd != MHD_INVALID_SOCKET) shutdown(lfd, SHUT_RDWR);
        /* Everything begun must end: queued jobs, forward passes, uploads. A
         * request counts from its headers; requests on kept-alive connections
         * are still served (their responses carry Connection: close). */
        double until = qs_now() + grace_s;
        int quiet = 0;
        while (qs_now() < until) {
            if (atomic_load(&srv->inflight) == 0) {
                if (++quiet >= 5) /* stays at zero for 50 ms */
                    break;
            } else {
                quiet = 0;
            }
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        long left = atomic_load(&srv->inflight);
        if (left) {
            qs_log(srv, QEMBED_LOG_WARN, "%ld request(s) still open after %.0f s; closing them", left,
                   grace_s);
            /* Queued jobs are answered 503 at once (not run); the batcher
             * finishes only the pass it is in (at most about --pass-seconds),
             * so no job is left pointing at a connection MHD is about to
             * free. Then at most 0.5 s for those answers to be written. */
            qs_batcher_abort(srv);
            qs_batcher_stop(srv);
            for (int i = 0; i < 50 && atomic_load(&srv->inflight); i++) {
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        }
        MHD_stop_daemon(srv->daemon);
        srv->daemon = NULL;
        if (lfd != MHD_INVALID_SOCKET) close(lfd);
    }
    qs_guard_stop(srv);
    qs_batcher_stop(srv);
    atomic_store(&srv->ready, 0);
    qs_log(srv, QEMBED_LOG_INFO, "stopped");
}

void qs_server_free(qs_server *srv) {
    if (!srv) return;
    if (srv->daemon) {
        MHD_stop_daemon(srv->daemon);
        srv->daemon = NULL;
    }
    qs_guard_stop(srv);
    qs_batcher_stop(srv);
    qs_free_prompts(srv);
    qs_metrics_destroy(&srv->metrics);
    pthread_cond_destroy(&srv->cv_work);
    pthread_cond_destroy(&srv->cv_state);
    pthread_mutex_destroy(&srv->mu);
    pthread_mutex_destroy(&srv->conn_mu);
    free(srv->host);
    free(srv->api_key);
    free(srv->served_name);
    free(srv->default_instruction);
    free(srv);
}
