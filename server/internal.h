/* Internal to the server: the structures shared by its files.
 * Locking: srv->mu guards the queue (pending list, counters, job states and
 * refcounts); metrics have their own mutex; ready/stopping are atomics. */
#ifndef QE_SERVER_INTERNAL_H
#define QE_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "qembed.h"
#include "server.h"

struct MHD_Connection;
struct MHD_Daemon;

/* ---- growable byte buffer (util.c); on allocation failure `oom` is set and
 * further appends are ignored, so callers check once at the end. ---- */
typedef struct qs_buf {
    char *p;
    size_t len, cap;
    int oom;
} qs_buf;

void qs_buf_reserve(qs_buf *b, size_t extra);
void qs_buf_put(qs_buf *b, const void *s, size_t n);
void qs_buf_puts(qs_buf *b, const char *s);
void qs_buf_printf(qs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qs_buf_json_str(qs_buf *b, const char *s, size_t n); /* quoted, escaped */
void qs_buf_float(qs_buf *b, float v);                    /* shortest round-trip-ish (%.9g) */
void qs_buf_base64(qs_buf *b, const void *data, size_t n);
void qs_buf_free(qs_buf *b);

/* First invalid byte offset of s[0..n), or -1 when valid UTF-8 (no overlongs,
 * no surrogates, <= U+10FFFF). */
long qs_utf8_invalid_at(const char *s, size_t n);
double qs_now(void); /* CLOCK_MONOTONIC seconds */
/* Constant-time (in the length of `expected`) comparison; 1 when equal. */
int qs_secret_equal(const char *expected, const char *given);

/* ---- API errors: rendered OpenAI-style or TEI-style by the endpoint ---- */
typedef struct qs_apierr {
    int status;           /* HTTP status */
    int close;            /* close the connection after the answer (bad framing) */
    const char *type;     /* OpenAI "type": invalid_request_error, server_error, ... */
    const char *code;     /* OpenAI "code" or NULL */
    const char *tei_type; /* TEI "error_type": Validation, Overloaded, Unhealthy, Backend, ... */
    char param[64];       /* OpenAI "param" or "" */
    char message[640];
} qs_apierr;

void qs_err_set(qs_apierr *e, int status, const char *type, const char *code, const char *tei_type,
                const char *param, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
#define QS_ERR_BAD(e, param, ...) \
    qs_err_set((e), 400, "invalid_request_error", NULL, "Validation", (param), __VA_ARGS__)

/* ---- endpoints (metrics labels) ---- */
enum {
    QS_EP_EMBEDDINGS,
    QS_EP_EMBED,
    QS_EP_TOKENIZE,
    QS_EP_HEALTH,
    QS_EP_MODELS,
    QS_EP_INFO,
    QS_EP_METRICS,
    QS_EP_OTHER,
    QS_EP_COUNT
};
extern const char *const qs_endpoint_names[QS_EP_COUNT];

/* ---- metrics (metrics.c) ---- */
#define QS_HIST_MAX 20
typedef struct qs_hist {
    int n;                /* number of finite bounds */
    const double *bounds; /* upper bounds, ascending; +Inf implied */
    uint64_t counts[QS_HIST_MAX + 1];
    double sum;
    uint64_t count;
} qs_hist;

typedef struct qs_metrics {
    pthread_mutex_t mu;
    uint64_t requests[QS_EP_COUNT][600]; /* [endpoint][HTTP status] */
    qs_hist latency[QS_EP_COUNT];        /* seconds, from first byte handled to response queued */
    qs_hist batch_seqs;                  /* inputs per forward pass */
    qs_hist batch_tokens;                /* tokens per forward pass */
    qs_hist inference;                   /* seconds per forward pass */
    uint64_t tokens_embedded, inputs_embedded, batches;
} qs_metrics;

/* ---- rejections (metrics.c): counted for /metrics, and summarised in the
 * log at most once a second by the guard thread instead of one line each (a
 * flood of refusals must not become a flood of log lines). ---- */
enum {
    QS_REJ_QUEUE_FULL,
    QS_REJ_BODY_MEMORY,
    QS_REJ_RESPONSE_MEMORY,
    QS_REJ_REQUEST_TOO_LARGE,
    QS_REJ_TIMEOUT,
    QS_REJ_SHUTTING_DOWN,
    QS_REJ_HEADER_TIMEOUT,
    QS_REJ_SLOW_BODY,
    QS_REJ_BAD_FRAMING,
    QS_REJ_CLIENT_GONE,
    QS_REJ_COUNT
};
extern const char *const qs_reject_names[QS_REJ_COUNT];
void qs_reject(qs_server *srv, int reason);
/* The reason an error answer counts as, from its code; -1 for none. */
int qs_reject_reason(const qs_apierr *e);

void qs_metrics_init(qs_metrics *m);
void qs_metrics_destroy(qs_metrics *m);
void qs_metrics_request(qs_metrics *m, int ep, int status, double seconds);
void qs_metrics_batch(qs_metrics *m, size_t seqs, size_t tokens, double seconds);
void qs_metrics_render(qs_server *srv, qs_buf *out);

/* ---- queue ---- */
typedef struct qs_unit {
    int32_t *ids; /* owned */
    size_t n_ids;
    int taken; /* handed to a forward pass */
} qs_unit;

enum { QS_JOB_QUEUED = 0, QS_JOB_DONE = 1, QS_JOB_FAILED = 2 };

typedef struct qs_job {
    /* set by the I/O thread before queueing, then read-only */
    struct MHD_Connection *conn;
    qs_unit *units;
    size_t n_units;
    size_t total_tokens;
    int dims; /* output dims (<= hidden) */
    int normalize;
    double deadline; /* qs_now() seconds; 504 after it if not started */
    /* guarded by srv->mu */
    int refs; /* the connection + the queue */
    int state;
    size_t n_untaken, n_done;
    size_t cursor;              /* units before it are all taken (selection hint) */
    int started;                /* at least one unit is in a forward pass */
    int cancelled;              /* the client went away: drop the untaken units */
    struct qs_job *next, *prev; /* pending list: jobs with untaken units */
    /* written by the batcher only (before state leaves QUEUED) */
    float *vecs; /* n_units * dims */
    qs_apierr err;
} qs_job;

struct qs_server {
    qs_server_config cfg; /* strings below are owned copies */
    char *host, *api_key, *served_name, *default_instruction;
    struct MHD_Daemon *daemon;
    int port;
    double started_at; /* wall clock (time()) */

    /* model: set once by attach, before `ready` becomes 1 */
    const qembed_model *model;
    const qembed_tokenizer *tok;
    qembed_model_info info;
    int32_t eos_id;
    size_t n_vocab;
    size_t max_tokens, max_batch_tokens, max_queue_tokens, max_request_tokens;
    size_t pass_tokens; /* tokens per forward pass: max_batch_tokens capped by
                               --pass-seconds x the speed measured at warm-up */
    double warm_tokens_per_s;
    char **prompt_names, **prompt_texts; /* config_sentence_transformers.json "prompts" */
    size_t n_prompts;

    atomic_int ready;
    atomic_int stopping;
    atomic_long inflight;   /* requests begun and not completed (MHD notify) */
    atomic_size_t body_mem; /* bytes of request bodies buffered now */

    pthread_mutex_t mu;
    pthread_cond_t cv_work;  /* batcher waits for work */
    pthread_cond_t cv_state; /* warm-up done, queue drained */
    qs_job *head, *tail;     /* pending jobs, arrival order */
    size_t queued_requests;  /* accepted jobs not yet answered */
    size_t queued_tokens;
    int batcher_running, batcher_stop;
    int batcher_abort; /* shutdown grace is over: fail what is queued, run nothing more */
    pthread_t batcher;
    int warm_state; /* 0 pending, 1 ok, -1 failed */
    char warm_err[1024];

    qs_metrics metrics;
    atomic_size_t resp_mem; /* bytes of responses held by MHD for clients now */
    _Atomic uint64_t rejected[QS_REJ_COUNT];

    /* guard.c: every open connection, for the deadlines (conn_mu) */
    pthread_mutex_t conn_mu;
    struct qs_conn *conns;
    pthread_t guard;
    int guard_running;
    atomic_int guard_stop;
};

/* ---- connection deadlines (guard.c) ----
 * A connection moves HEADERS -> BODY -> WAIT (queued, suspended) -> REPLY ->
 * IDLE (kept alive) -> BODY ... The guard thread closes (shutdown(2), which
 * MHD then sees as the client's close) a connection whose headers are late,
 * whose body is slower than --min-body-rate, or whose client hung up while
 * its job waits (the job is cancelled: its untaken inputs are dropped). */
enum { QS_PH_HEADERS, QS_PH_BODY, QS_PH_WAIT, QS_PH_REPLY, QS_PH_IDLE };
typedef struct qs_conn {
    int fd;
    int phase;
    double since;      /* qs_now() at the start of the phase */
    size_t body_bytes; /* received in this phase */
    int eof_seen;      /* BODY: the client's end of stream seen at the last sweep */
    size_t eof_bytes;  /* body_bytes then */
    qs_job *job;       /* WAIT: the queued job (the request holds a ref) */
    int closed_by_us;
    int poisoned; /* MHD refused a request here itself: what follows is not trusted */
    struct qs_conn *next, *prev;
} qs_conn;
void qs_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context, int code);
void qs_conn_phase(qs_server *srv, struct MHD_Connection *c, int phase, qs_job *job);
void qs_conn_body(qs_server *srv, struct MHD_Connection *c, size_t n);
/* MHD answered a request itself (malformed: e.g. "Content-Length: 1, 1") and
 * may go on to parse its body as a next request: close the connection, and
 * refuse any request already read from it. */
void qs_conn_poison(qs_server *srv, struct MHD_Connection *c);
int qs_conn_poisoned(qs_server *srv, struct MHD_Connection *c);
int qs_guard_start(qs_server *srv);
void qs_guard_stop(qs_server *srv);
/* Cancels a queued job whose client went away (guard.c -> batcher.c). */
void qs_job_cancel(qs_server *srv, qs_job *job);

/* ---- strict framing (framing.c): checks MHD cannot be asked to make ---- */
typedef struct qs_framing {
    int n_cl, n_te, te_chunked, te_other;
    int status; /* 0 ok, 400 or 501 */
    char msg[200];
} qs_framing;
/* The raw request target (before percent-decoding): NUL and control bytes,
 * written raw or %-escaped, are refused. */
void qs_framing_uri(qs_framing *f, const char *raw, size_t len);
/* One header line as MHD parsed it (name and value with their lengths). */
void qs_framing_header(qs_framing *f, const char *name, size_t nlen, const char *value, size_t vlen);
/* After every header: Content-Length and Transfer-Encoding together. */
void qs_framing_finish(qs_framing *f);

/* util.c: through the configured log_fn (any thread). */
void qs_log(qs_server *srv, qembed_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* http.c: takes the model's tokenizer, info and limits (attach without the
 * batcher; the fuzzer uses it alone). */
int qs_bind_model(qs_server *srv, const qembed_model *model, char *err, size_t errlen);

/* batcher.c */
int qs_batcher_start(qs_server *srv, char *err, size_t errlen);
void qs_batcher_stop(qs_server *srv);
/* Ends every queued job with 503 at the next pass boundary (grace is over). */
void qs_batcher_abort(qs_server *srv);
/* Queues a job (refs must be 2). Returns 0, or fills e (503 full, 503 stopping). */
int qs_enqueue(qs_server *srv, qs_job *job, qs_apierr *e);
void qs_job_release(qs_server *srv, qs_job *job); /* drops one ref, frees at 0 */
void qs_job_free(qs_job *job);

/* One forward pass being formed (batcher.c). */
typedef struct qs_batch {
    qs_job **job;        /* (n) owner of each unit */
    size_t *unit;        /* (n) unit index in its job */
    const int32_t **ids; /* (n) */
    size_t *n_ids;       /* (n) */
    size_t n, cap, tokens;
    qs_job **done; /* jobs to resume after this round */
    size_t n_done, cap_done;
    float *out; /* (n, hidden) */
    size_t out_cap;
} qs_batch;
/* Picks the next forward pass from the pending jobs (srv->mu held):
 * round-robin over the jobs in arrival order, each job's first waiting input
 * that fits, up to srv->max_batch_tokens. Exposed for the unit test. */
void qs_select_locked(qs_server *srv, qs_batch *b);
void qs_batch_free(qs_batch *b);

/* parse.c: request bodies -> jobs (validated, tokenized); render.c: jobs ->
 * response bodies; prompts.c: sentence-transformers prompts. */
typedef struct qs_req_opts {
    int tei;    /* error style + response shape */
    int base64; /* OpenAI encoding_format */
    char model[256];
} qs_req_opts;
/* Parses an /v1/embeddings (tei=0) or /embed (tei=1) body; on success *job is
 * ready to queue. */
int qs_parse_embed_request(qs_server *srv, int tei, const char *body, size_t len, qs_job **job,
                           qs_req_opts *ro, qs_apierr *e);
int qs_render_embed_response(qs_server *srv, const qs_job *job, const qs_req_opts *ro, qs_buf *out);
/* /tokenize: each text's ids (parse.c), then its JSON (render.c). */
typedef struct qs_toklist {
    int32_t **ids; /* (count) qembed_free-able */
    size_t *n;     /* (count) */
    size_t count;
} qs_toklist;
int qs_parse_tokenize(qs_server *srv, const char *body, size_t len, qs_toklist *out, qs_apierr *e);
int qs_render_tokenize(qs_server *srv, const qs_toklist *t, qs_buf *out);
void qs_toklist_free(qs_toklist *t);
void qs_render_models(qs_server *srv, qs_buf *out);
void qs_render_info(qs_server *srv, qs_buf *out);
void qs_render_error(const qs_apierr *e, int tei, qs_buf *out);
int qs_load_prompts(qs_server *srv);
void qs_free_prompts(qs_server *srv);
const char *qs_find_prompt(const qs_server *srv, const char *name); /* NULL: none */

#endif
