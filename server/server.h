/* qembed serve: the HTTP embedding service (OpenAI- and TEI-compatible).
 *
 * Shape (as in h2o / redis): libmicrohttpd's I/O threads only read, parse,
 * validate and tokenize requests, then queue them; ONE batching thread owns the
 * qembed_ctx and runs every forward pass; a finished request goes back to its
 * connection by message (MHD suspend / resume). No globals: everything lives in
 * a qs_server.
 *
 * Life cycle:
 *   qs_server_create -> qs_server_start (listening; /health answers 503)
 *   -> qs_server_attach_model (batcher starts, warms up, then /health 200)
 *   -> qs_server_shutdown (stop accepting, answer every accepted request)
 *   -> qs_server_free.
 * The server never exits the process and never prints: it logs through
 * config.log_fn. */
#ifndef QE_SERVER_H
#define QE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "qembed.h"

typedef struct qs_server_config {
    const char *host;                /* bind address; default "127.0.0.1" */
    int port;                        /* default 8080; 0: any free port (see qs_server_port) */
    int http_threads;                /* MHD thread-pool size; default 2 */
    unsigned max_connections;        /* default 1024 */
    const char *api_key;             /* NULL/"" : no authentication */
    const char *served_model_name;   /* name reported in responses; NULL: model path */
    const char *default_instruction; /* NULL: none */
    size_t max_body_bytes;           /* 413 above; default 8 MiB */
    size_t max_body_memory;          /* all bodies being received together; 503 above; default 256 MiB */
    size_t max_inputs;               /* inputs per request; default 2048 */
    size_t max_tokens;               /* tokens per input (with <|endoftext|>); 0: the model's */
    size_t max_batch_tokens;         /* tokens per forward pass; 0: the model's (16384) */
    size_t max_queue;                /* requests accepted and not yet answered; default 256 */
    size_t max_queue_tokens;         /* tokens of those; 0: 4 * max_batch_tokens */
    double request_timeout_s;        /* 504 when a request waited longer; default 60 */
    unsigned idle_timeout_s;         /* close connections silent this long (not while a request
                                    is being computed); default 60 */
    double batch_wait_ms;            /* how long an idle batcher waits for more requests; default 0 */
    int parse_special;               /* 1: "<|endoftext|>" in user text is the special token; default 0 */
    int n_threads;                   /* ctx threads; 0: the model's */
    qembed_log_fn log_fn;
    void *log_user;
    int log_requests; /* 1: one INFO line per request */
    /* Hostile traffic (appended fields; 0 takes the default where noted). */
    size_t max_request_tokens;  /* tokens of one request; 0: max_queue_tokens; more: 413 */
    double pass_seconds;        /* target time of one forward pass, measured at warm-up;
                                    default 0.5; 0: passes sized by max_batch_tokens only */
    double header_timeout_s;    /* a new connection's headers complete within this; default 10 */
    size_t min_body_rate;       /* bytes/s a body must average after header_timeout_s of
                                    grace; default 8192; 0: off */
    size_t max_response_memory; /* response bytes held for clients, all together; beyond: 503;
                                    default 256 MiB */
} qs_server_config;

typedef struct qs_server qs_server;

void qs_server_default_config(qs_server_config *cfg);

/* Copies what it needs from cfg. Returns 0, or -1 with a message in err. */
int qs_server_create(const qs_server_config *cfg, qs_server **out, char *err, size_t errlen);

/* Binds and starts the HTTP threads. Until a model is attached every endpoint
 * but /health, /metrics answers 503. */
int qs_server_start(qs_server *srv, char *err, size_t errlen);

/* The port actually bound (useful with port 0). */
int qs_server_port(const qs_server *srv);

/* Hands the model to the server (the caller keeps ownership and frees it after
 * qs_server_free). Creates the ctx and warms up on the batching thread; returns
 * once the server is ready (0) or the warm-up failed (-1, message in err). */
int qs_server_attach_model(qs_server *srv, const qembed_model *model, char *err, size_t errlen);

/* Graceful stop: stops accepting connections, answers every request already
 * accepted (in the queue, in a forward pass or still uploading), then stops
 * the HTTP threads and the batcher. Waits at most `grace_s` seconds for the
 * in-flight requests. Safe to call once from any thread but the server's own. */
void qs_server_shutdown(qs_server *srv, double grace_s);

void qs_server_free(qs_server *srv);

#endif
