/* qembed serve: the HTTP embedding service (see server/server.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "commands.h"
#include "server.h"

static const char serve_help[] =
    "usage: qembed serve [options]\n"
    "\n"
    "Serves embeddings over HTTP: POST /v1/embeddings (OpenAI), POST /embed and\n"
    "POST /tokenize (Hugging Face TEI), GET /health, /v1/models, /info, /metrics.\n"
    "Requests that arrive together are batched into one forward pass.\n"
    "\n"
    "Listening:\n"
    "  --host ADDR              bind address (default 127.0.0.1; 0.0.0.0 to expose it)\n"
    "  --port N                 TCP port (default 8080; 0: any free port)\n"
    "  --port-file PATH         write the bound port to PATH once listening\n"
    "  --http-threads N         HTTP I/O threads (default 2)\n"
    "  --max-connections N      open connections at most (default 1024)\n"
    "  --api-key KEY            require 'Authorization: Bearer KEY' on every endpoint but\n"
    "                           /health (default: $QEMBED_API_KEY; unset: no key)\n"
    "Requests:\n"
    "  --served-model-name NAME the model name in responses and /v1/models (default: -m)\n"
    "  --instruction TEXT       default query instruction: texts become\n"
    "                           'Instruct: TEXT\\nQuery:{text}' unless a request says otherwise\n"
    "  --parse-special          treat special-token strings in user text ('<|endoftext|>')\n"
    "                           as special tokens (default: plain text)\n"
    "Limits:\n"
    "  --max-body-bytes N       request body size (default 8M; larger: 413)\n"
    "  --max-body-memory N      bodies being received at once, all together (default\n"
    "                           256M; beyond: 503 with Retry-After)\n"
    "  --max-inputs N           inputs per request (default 2048; more: 413)\n"
    "  --max-tokens N           tokens per input, <|endoftext|> included (default: the\n"
    "                           model's, at most --max-batch-tokens; more: 400 unless the\n"
    "                           request sets \"truncate\": true)\n"
    "  --max-queue N            requests accepted and not yet answered (default 256;\n"
    "                           more: 503 with Retry-After)\n"
    "  --max-queue-tokens N     tokens of those requests (default 4 x --max-batch-tokens;\n"
    "                           a request alone in the queue is always accepted)\n"
    "  --max-request-tokens N   tokens of one request (default and at most\n"
    "                           --max-queue-tokens; more: 413 before any compute)\n"
    "  --pass-seconds S         target time of one forward pass, from the speed measured\n"
    "                           at warm-up (default 0.5; 0: --max-batch-tokens only)\n"
    "  --header-timeout S       a new connection's headers must be complete within S\n"
    "                           seconds (default 10; later requests: --idle-timeout)\n"
    "  --min-body-rate N        bytes/s a request body must average after\n"
    "                           --header-timeout of grace (default 8K; 0: off)\n"
    "  --max-response-memory N  response bytes held for clients that have not read them,\n"
    "                           all together (default 256M; beyond: 503)\n"
    "  --request-timeout S      answer 504 when a request waited S seconds in the queue\n"
    "                           without starting (default 60)\n"
    "  --idle-timeout S         close a connection that sends nothing for S seconds\n"
    "                           (default 60; a request being computed is not idle)\n"
    "  --batch-wait-ms MS       let an idle batcher wait MS for more requests to fill a\n"
    "                           batch (default 0: run at once; batches form while busy)\n"
    "  --shutdown-grace S       on SIGTERM/SIGINT wait at most S seconds for accepted\n"
    "                           requests to finish (default 120)\n"
    "  --log-requests           one log line per request\n";

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_PORT_FILE,
    OPT_API_KEY,
    OPT_SERVED_MODEL_NAME,
    OPT_INSTRUCTION,
    OPT_PARSE_SPECIAL,
    OPT_LOG_REQUESTS,
    OPT_HTTP_THREADS,
    OPT_MAX_CONNECTIONS,
    OPT_MAX_BODY_BYTES,
    OPT_MAX_BODY_MEMORY,
    OPT_MAX_INPUTS,
    OPT_MAX_TOKENS,
    OPT_MAX_QUEUE,
    OPT_MAX_QUEUE_TOKENS,
    OPT_IDLE_TIMEOUT,
    OPT_REQUEST_TIMEOUT,
    OPT_BATCH_WAIT_MS,
    OPT_SHUTDOWN_GRACE,
    OPT_MAX_REQUEST_TOKENS,
    OPT_MAX_RESPONSE_MEMORY,
    OPT_MIN_BODY_RATE,
    OPT_PASS_SECONDS,
    OPT_HEADER_TIMEOUT,
};

static const cli_optdef serve_opts[] = {
    {"help", 'h', 0},
    {"host", OPT_HOST, 1},
    {"port", OPT_PORT, 1},
    {"port-file", OPT_PORT_FILE, 1},
    {"api-key", OPT_API_KEY, 1},
    {"served-model-name", OPT_SERVED_MODEL_NAME, 1},
    {"instruction", OPT_INSTRUCTION, 1},
    {"parse-special", OPT_PARSE_SPECIAL, 0},
    {"log-requests", OPT_LOG_REQUESTS, 0},
    {"http-threads", OPT_HTTP_THREADS, 1},
    {"max-connections", OPT_MAX_CONNECTIONS, 1},
    {"max-body-bytes", OPT_MAX_BODY_BYTES, 1},
    {"max-body-memory", OPT_MAX_BODY_MEMORY, 1},
    {"max-inputs", OPT_MAX_INPUTS, 1},
    {"max-tokens", OPT_MAX_TOKENS, 1},
    {"max-queue", OPT_MAX_QUEUE, 1},
    {"max-queue-tokens", OPT_MAX_QUEUE_TOKENS, 1},
    {"idle-timeout", OPT_IDLE_TIMEOUT, 1},
    {"request-timeout", OPT_REQUEST_TIMEOUT, 1},
    {"batch-wait-ms", OPT_BATCH_WAIT_MS, 1},
    {"shutdown-grace", OPT_SHUTDOWN_GRACE, 1},
    {"max-request-tokens", OPT_MAX_REQUEST_TOKENS, 1},
    {"max-response-memory", OPT_MAX_RESPONSE_MEMORY, 1},
    {"min-body-rate", OPT_MIN_BODY_RATE, 1},
    {"pass-seconds", OPT_PASS_SECONDS, 1},
    {"header-timeout", OPT_HEADER_TIMEOUT, 1},
    {NULL, 0, 0},
};

typedef struct serve_log {
    qembed_log_level min;
} serve_log;

static void log_stderr(qembed_log_level lvl, const char *line, void *user) {
    const serve_log *l = user;
    if (lvl < l->min) return;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ qembed serve %s: %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            names[lvl <= QEMBED_LOG_ERROR ? lvl : QEMBED_LOG_ERROR], line);
}

static int parse_size(const char *flag, const char *v, size_t *out) {
    uint64_t x;
    if (!v || cli_parse_bytes(v, &x) != 0) {
        fprintf(stderr, "qembed serve: %s needs a number (K/M/G suffixes allowed), got '%s'\n", flag,
                v ? v : "");
        return -1;
    }
    *out = (size_t)x;
    return 0;
}

static int parse_double(const char *flag, const char *v, double *out) {
    char *end = NULL;
    errno = 0;
    double d = v ? strtod(v, &end) : 0;
    if (!v || !*v || *end || errno || d < 0) {
        fprintf(stderr, "qembed serve: %s needs a non-negative number, got '%s'\n", flag, v ? v : "");
        return -1;
    }
    *out = d;
    return 0;
}

int cmd_serve(int argc, char **argv) {
    cli_settings s;
    cli_settings_init(&s);
    qs_server_config cfg;
    qs_server_default_config(&cfg);
    const char *env_key = getenv("QEMBED_API_KEY");
    if (env_key && env_key[0]) cfg.api_key = env_key;
    const char *port_file = NULL;
    double grace = 120;

    cli_args ap;
    cli_args_init(&ap, "serve", argc, argv, serve_opts, &s);
    for (int k; (k = cli_args_next(&ap)) != CLI_ARG_END;) {
        const char *a = ap.spelled;
        const char *v = ap.value;
        size_t z;
        double d;
        switch (k) {
            case CLI_ARG_ERROR: return 1;
            case CLI_ARG_OPERAND:
                fprintf(stderr, "qembed serve: unexpected argument '%s' (see qembed serve --help)\n", v);
                return 1;
            case 'h':
                fputs(serve_help, stdout);
                fputs("\n", stdout);
                fputs(cli_settings_help, stdout);
                return 0;
            case OPT_HOST: cfg.host = v; break;
            case OPT_PORT: {
                long p;
                if (cli_parse_long(v, 0, 65535, &p) != 0) {
                    fprintf(stderr, "qembed serve: --port needs 0..65535, got '%s'\n", v);
                    return 1;
                }
                cfg.port = (int)p;
                break;
            }
            case OPT_PORT_FILE: port_file = v; break;
            case OPT_API_KEY: cfg.api_key = v; break;
            case OPT_SERVED_MODEL_NAME: cfg.served_model_name = v; break;
            case OPT_INSTRUCTION: cfg.default_instruction = v; break;
            case OPT_PARSE_SPECIAL: cfg.parse_special = 1; break;
            case OPT_LOG_REQUESTS: cfg.log_requests = 1; break;
            case OPT_HTTP_THREADS:
            case OPT_MAX_CONNECTIONS:
            case OPT_MAX_BODY_BYTES:
            case OPT_MAX_BODY_MEMORY:
            case OPT_MAX_INPUTS:
            case OPT_MAX_TOKENS:
            case OPT_MAX_QUEUE:
            case OPT_MAX_QUEUE_TOKENS:
            case OPT_MAX_REQUEST_TOKENS:
            case OPT_MAX_RESPONSE_MEMORY:
                if (parse_size(a, v, &z) != 0) return 1;
                if (z == 0 && k != OPT_MAX_TOKENS) {
                    fprintf(stderr, "qembed serve: %s must be positive\n", a);
                    return 1;
                }
                if (k == OPT_HTTP_THREADS)
                    cfg.http_threads = z > 256 ? 256 : (int)z;
                else if (k == OPT_MAX_CONNECTIONS)
                    cfg.max_connections = (unsigned)z;
                else if (k == OPT_MAX_BODY_BYTES)
                    cfg.max_body_bytes = z;
                else if (k == OPT_MAX_BODY_MEMORY)
                    cfg.max_body_memory = z;
                else if (k == OPT_MAX_INPUTS)
                    cfg.max_inputs = z;
                else if (k == OPT_MAX_TOKENS)
                    cfg.max_tokens = z;
                else if (k == OPT_MAX_QUEUE)
                    cfg.max_queue = z;
                else if (k == OPT_MAX_REQUEST_TOKENS)
                    cfg.max_request_tokens = z;
                else if (k == OPT_MAX_RESPONSE_MEMORY)
                    cfg.max_response_memory = z;
                else
                    cfg.max_queue_tokens = z;
                break;
            case OPT_IDLE_TIMEOUT:
                if (parse_size(a, v, &z) != 0) return 1;
                cfg.idle_timeout_s = (unsigned)(z > 86400 ? 86400 : z);
                break;
            case OPT_MIN_BODY_RATE:
                if (parse_size(a, v, &z) != 0) return 1;
                cfg.min_body_rate = z;
                break;
            case OPT_REQUEST_TIMEOUT:
            case OPT_BATCH_WAIT_MS:
            case OPT_SHUTDOWN_GRACE:
            case OPT_PASS_SECONDS:
            case OPT_HEADER_TIMEOUT:
                if (parse_double(a, v, &d) != 0) return 1;
                if (k == OPT_REQUEST_TIMEOUT) {
                    if (d <= 0) {
                        fprintf(stderr, "qembed serve: --request-timeout must be positive\n");
                        return 1;
                    }
                    cfg.request_timeout_s = d;
                } else if (k == OPT_BATCH_WAIT_MS) {
                    cfg.batch_wait_ms = d;
                } else if (k == OPT_PASS_SECONDS) {
                    cfg.pass_seconds = d;
                } else if (k == OPT_HEADER_TIMEOUT) {
                    cfg.header_timeout_s = d;
                } else {
                    grace = d;
                }
                break;
        }
    }

    serve_log lg = {s.verbose ? QEMBED_LOG_DEBUG : s.quiet ? QEMBED_LOG_WARN : QEMBED_LOG_INFO};
    cfg.log_fn = log_stderr;
    cfg.log_user = &lg;
    cfg.max_batch_tokens = s.max_batch_tokens;
    cfg.n_threads = s.n_threads;

    /* Signals: every thread created from here on inherits this mask, and the
     * main thread takes SIGINT/SIGTERM with sigwait once the server runs (a
     * signal during the model load waits until it is loaded). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[600];
    qs_server *srv = NULL;
    if (qs_server_create(&cfg, &srv, err, sizeof err) != 0 || qs_server_start(srv, err, sizeof err) != 0) {
        fprintf(stderr, "qembed serve: %s\n", err);
        qs_server_free(srv);
        return 2;
    }
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (!f || fprintf(f, "%d\n", qs_server_port(srv)) < 0 || fclose(f) != 0) {
            fprintf(stderr, "qembed serve: cannot write --port-file %s\n", port_file);
            qs_server_free(srv);
            return 2;
        }
    }

    qembed_model_params mp = cli_settings_model_params(&s);
    /* The library logs every forward pass at INFO: too much for a server
     * under load. Keep its warnings; -v shows everything. */
    if (!s.verbose && mp.log_level < QEMBED_LOG_WARN) mp.log_level = QEMBED_LOG_WARN;
    if (cfg.max_tokens) mp.max_tokens = cfg.max_tokens;
    qembed_model *model = cli_settings_load_model(&s, &mp);
    if (!model) {
        qs_server_shutdown(srv, 0);
        qs_server_free(srv);
        return 2;
    }
    {
        qembed_model_info mi;
        qembed_model_get_info(model, &mi);
        const char *pl = qembed_model_placement(model);
        log_stderr(QEMBED_LOG_INFO, "model loaded; placement:", &lg);
        for (const char *p = pl ? pl : ""; *p;) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            char line[512];
            snprintf(line, sizeof line, "  %.*s", (int)(n < 500 ? n : 500), p);
            log_stderr(QEMBED_LOG_INFO, line, &lg);
            p += n + (nl ? 1 : 0);
        }
    }
    if (qs_server_attach_model(srv, model, err, sizeof err) != 0) {
        fprintf(stderr, "qembed serve: %s\n", err);
        qs_server_shutdown(srv, 0);
        qs_server_free(srv);
        qembed_model_free(model);
        return 2;
    }

    int sig = 0;
    while (sigwait(&set, &sig) != 0) {}
    log_stderr(QEMBED_LOG_INFO, sig == SIGTERM ? "SIGTERM received" : "SIGINT received", &lg);
    qs_server_shutdown(srv, grace);
    qs_server_free(srv);
    qembed_model_free(model);
    return 0;
}
