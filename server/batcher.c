/* The batching thread: the only thread that touches the qembed_ctx.
 *
 * Requests are queued as jobs (one unit per input, already tokenized by the
 * I/O thread). A pass is filled round-robin over the waiting requests in
 * arrival order: each round gives every request its first waiting input that
 * still fits (first-fit), until the pass holds --max-batch-tokens or nothing
 * more fits. So the oldest input always goes first (nothing starves), a small
 * request arriving behind a 2000-input one rides in the very next pass instead
 * of waiting for all of it, and short inputs behind a long one that does not
 * fit go ahead of it; the long one is the oldest next pass. The engine costs
 * what the tokens cost (no padding), so a pass that is not quite full costs
 * little, and no length sorting is needed beyond
 * that. Finished jobs go back to their connection with MHD_resume_connection.
 */
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Bounds the work of one selection pass over a long queue. */
#define QS_SCAN_MAX 16384

void qs_job_free(qs_job *job) {
    if (!job) return;
    for (size_t i = 0; i < job->n_units; i++) qembed_free(job->units[i].ids);
    free(job->units);
    free(job->vecs);
    free(job);
}

void qs_job_release(qs_server *srv, qs_job *job) {
    pthread_mutex_lock(&srv->mu);
    int left = --job->refs;
    pthread_mutex_unlock(&srv->mu);
    if (left == 0) qs_job_free(job);
}

static void list_remove_locked(qs_server *srv, qs_job *j) {
    if (j->prev)
        j->prev->next = j->next;
    else
        srv->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        srv->tail = j->prev;
    j->next = j->prev = NULL;
}

int qs_enqueue(qs_server *srv, qs_job *job, qs_apierr *e) {
    pthread_mutex_lock(&srv->mu);
    if (srv->batcher_stop || !srv->batcher_running) {
        pthread_mutex_unlock(&srv->mu);
        qs_err_set(e, 503, "server_error", "shutting_down", "Unhealthy", NULL, "the server is shutting down");
        return -1;
    }
    /* Both bounds keep memory proportional to the limits: ids are held per
     * queued token, result vectors per queued input (<= tokens). */
    if (srv->queued_requests + 1 > srv->cfg.max_queue ||
        (srv->queued_requests > 0 && srv->queued_tokens + job->total_tokens > srv->max_queue_tokens)) {
        size_t q = srv->queued_requests, t = srv->queued_tokens;
        pthread_mutex_unlock(&srv->mu);
        qs_err_set(e, 503, "server_error", "queue_full", "Overloaded", NULL,
                   "the queue is full (%zu requests, %zu tokens waiting; limits --max-queue %zu, "
                   "--max-queue-tokens %zu): retry later",
                   q, t, srv->cfg.max_queue, srv->max_queue_tokens);
        return -1;
    }
    job->state = QS_JOB_QUEUED;
    job->n_untaken = job->n_units;
    job->n_done = 0;
    job->prev = srv->tail;
    job->next = NULL;
    if (srv->tail)
        srv->tail->next = job;
    else
        srv->head = job;
    srv->tail = job;
    srv->queued_requests++;
    srv->queued_tokens += job->total_tokens;
    pthread_cond_signal(&srv->cv_work);
    pthread_mutex_unlock(&srv->mu);
    return 0;
}

/* A job leaves the queue: the caller resumes its connection after unlocking
 * (MHD takes its own locks) and then drops the queue's reference. */
static void finish_locked(qs_server *srv, qs_job *j, int state) {
    if (j->n_untaken) list_remove_locked(srv, j);
    j->n_untaken = 0;
    j->state = state;
    srv->queued_requests--;
    srv->queued_tokens -= j->total_tokens;
    if (srv->queued_requests == 0) pthread_cond_broadcast(&srv->cv_state);
}

static void resume_and_release(qs_server *srv, qs_job **list, size_t n) {
    for (size_t i = 0; i < n; i++) {
        MHD_resume_connection(list[i]->conn);
        qs_job_release(srv, list[i]);
    }
}

static int batch_grow(qs_batch *b) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    void *p1 = realloc(b->job, cap * sizeof *b->job);
    if (p1) b->job = p1;
    void *p2 = realloc(b->unit, cap * sizeof *b->unit);
    if (p2) b->unit = p2;
    void *p3 = realloc(b->ids, cap * sizeof *b->ids);
    if (p3) b->ids = p3;
    void *p4 = realloc(b->n_ids, cap * sizeof *b->n_ids);
    if (p4) b->n_ids = p4;
    if (!p1 || !p2 || !p3 || !p4) return -1;
    b->cap = cap;
    return 0;
}

static int done_push(qs_batch *b, qs_job *j) {
    if (b->n_done == b->cap_done) {
        size_t cap = b->cap_done ? b->cap_done * 2 : 64;
        void *p = realloc(b->done, cap * sizeof *b->done);
        if (!p) return -1;
        b->done = p;
        b->cap_done = cap;
    }
    b->done[b->n_done++] = j;
    return 0;
}

void qs_job_cancel(qs_server *srv, qs_job *job) {
    pthread_mutex_lock(&srv->mu);
    job->cancelled = 1;
    pthread_cond_signal(&srv->cv_work);
    pthread_mutex_unlock(&srv->mu);
}

/* Between passes (no unit is in a forward pass, so every unfinished job is
 * in the pending list): jobs whose client went away, and every job once the
 * shutdown grace is over, end now without running their untaken inputs. */
static void drop_locked(qs_server *srv, qs_batch *b) {
    qs_job *j = srv->head;
    while (j) {
        qs_job *next = j->next;
        if ((j->cancelled || srv->batcher_abort) && j->state == QS_JOB_QUEUED && b->n_done < b->cap_done) {
            if (j->cancelled)
                qs_err_set(&j->err, 499, "invalid_request_error", "client_gone", "Validation", NULL,
                           "the client closed the connection");
            else
                qs_err_set(&j->err, 503, "server_error", "shutting_down", "Unhealthy", NULL,
                           "the server is shutting down (--shutdown-grace is over)");
            finish_locked(srv, j, QS_JOB_FAILED);
            b->done[b->n_done++] = j;
        }
        j = next;
    }
}

/* Jobs not started before their deadline are answered 504 now. Called with
 * srv->mu held. */
static void expire_locked(qs_server *srv, qs_batch *b, double now) {
    drop_locked(srv, b);
    qs_job *j = srv->head;
    while (j) {
        qs_job *next = j->next;
        if (!j->started && now > j->deadline && b->n_done < b->cap_done) {
            qs_err_set(&j->err, 504, "server_error", "timeout", "Backend", NULL,
                       "the request waited more than --request-timeout %.3g s in the queue",
                       srv->cfg.request_timeout_s);
            finish_locked(srv, j, QS_JOB_FAILED);
            b->done[b->n_done++] = j;
        }
        j = next;
    }
}

/* Round-robin over the pending requests in arrival order, one input per
 * request per round, each the request's first waiting input that still fits
 * (first-fit); rounds repeat until the pass is full or nothing more fits (see
 * the file comment). */
void qs_select_locked(qs_server *srv, qs_batch *b) {
    size_t budget = srv->pass_tokens ? srv->pass_tokens : srv->max_batch_tokens, scanned = 0;
    b->n = 0;
    b->tokens = 0;
    int progress = 1;
    while (progress && b->tokens < budget && scanned < QS_SCAN_MAX) {
        progress = 0;
        for (qs_job *j = srv->head; j && b->tokens < budget && scanned < QS_SCAN_MAX;) {
            qs_job *next = j->next;
            while (j->cursor < j->n_units && j->units[j->cursor].taken)
                j->cursor++; /* inputs before the cursor are all taken */
            for (size_t u = j->cursor; u < j->n_units && scanned < QS_SCAN_MAX; u++) {
                qs_unit *un = &j->units[u];
                if (un->taken) continue;
                scanned++;
                /* An input longer than the time budget (but within
                 * --max-batch-tokens, as every input is) runs alone. */
                if (b->tokens + un->n_ids > budget && b->n > 0) continue;
                if (b->n == b->cap && batch_grow(b) != 0) return;
                un->taken = 1;
                j->n_untaken--;
                j->started = 1;
                b->job[b->n] = j;
                b->unit[b->n] = u;
                b->ids[b->n] = un->ids;
                b->n_ids[b->n] = un->n_ids;
                b->n++;
                b->tokens += un->n_ids;
                progress = 1;
                break; /* one input per request per round */
            }
            if (j->n_untaken == 0) list_remove_locked(srv, j);
            j = next;
        }
    }
}

/* Slices the pooled vector to the job's dims and normalises it when asked
 * (Matryoshka: slice, then L2-normalise). Returns 0, or -1 for a non-finite
 * or zero vector. */
static int store_vector(qs_job *j, size_t u, const float *v) {
    float *dst = j->vecs + u * (size_t)j->dims;
    double ss = 0;
    for (int k = 0; k < j->dims; k++) {
        if (!isfinite(v[k])) return -1;
        ss += (double)v[k] * v[k];
    }
    if (j->normalize) {
        if (!(ss > 0)) return -1;
        double inv = 1.0 / sqrt(ss);
        for (int k = 0; k < j->dims; k++) dst[k] = (float)(v[k] * inv);
    } else {
        memcpy(dst, v, (size_t)j->dims * sizeof *dst);
    }
    return 0;
}

static void unit_failed(qs_job *j, size_t u, int status, const char *fmt, const char *detail) {
    if (j->err.status) return; /* keep the first error */
    qs_err_set(&j->err, status, status >= 500 ? "server_error" : "invalid_request_error", NULL,
               status >= 500 ? "Backend" : "Validation", "input", fmt, u, detail);
}

static int status_for(qembed_status s) {
    switch (s) {
        case QEMBED_ERR_INVALID_ARGUMENT:
        case QEMBED_ERR_INVALID_UTF8:
        case QEMBED_ERR_INPUT_TOO_LONG:
        case QEMBED_ERR_EMPTY_INPUT: return 400;
        default: return 500;
    }
}

static void run_batch(qs_server *srv, qembed_ctx *ctx, qs_batch *b) {
    size_t hidden = (size_t)srv->info.hidden_size;
    if (b->out_cap < b->n * hidden) {
        float *p = realloc(b->out, b->n * hidden * sizeof *p);
        if (!p) {
            for (size_t i = 0; i < b->n; i++)
                unit_failed(b->job[i], b->unit[i], 500, "input[%zu]: %s", "out of memory");
            return;
        }
        b->out = p;
        b->out_cap = b->n * hidden;
    }
    qembed_embed_options o = qembed_embed_default_options();
    o.normalize = 0; /* per-request dims and normalisation are applied in store_vector */
    o.dims = 0;
    o.truncate = 0;
    o.max_tokens = srv->max_tokens;
    qembed_error err = {0};
    double t0 = qs_now();
    qembed_status st = qembed_ctx_embed_tokens(ctx, b->ids, b->n_ids, b->n, &o, b->out, &err);
    double t1 = qs_now();
    if (st != QEMBED_OK && b->n > 1) {
        /* One bad input must not fail its neighbours: redo them one by one. */
        qs_log(srv, QEMBED_LOG_WARN, "batch of %zu failed (%s); retrying one by one", b->n, err.message);
        for (size_t i = 0; i < b->n; i++) {
            qembed_error e1 = {0};
            qembed_status s1 =
                qembed_ctx_embed_tokens(ctx, &b->ids[i], &b->n_ids[i], 1, &o, b->out + i * hidden, &e1);
            if (s1 != QEMBED_OK)
                unit_failed(b->job[i], b->unit[i], status_for(s1), "input[%zu]: %s", e1.message);
        }
        t1 = qs_now();
    } else if (st != QEMBED_OK) {
        unit_failed(b->job[0], b->unit[0], status_for(st), "input[%zu]: %s", err.message);
    }
    qs_metrics_batch(&srv->metrics, b->n, b->tokens, t1 - t0);
    for (size_t i = 0; i < b->n; i++) {
        qs_job *j = b->job[i];
        if (j->err.status) continue;
        if (!j->vecs) {
            j->vecs = malloc(j->n_units * (size_t)j->dims * sizeof *j->vecs);
            if (!j->vecs) {
                unit_failed(j, b->unit[i], 500, "input[%zu]: %s", "out of memory for the result");
                continue;
            }
        }
        if (store_vector(j, b->unit[i], b->out + i * hidden) != 0)
            unit_failed(j, b->unit[i], 500, "input[%zu]: %s",
                        "the model produced a non-finite or zero vector");
    }
}

/* Waits on cv_work (srv->mu held) until `inputs` inputs or a full pass of
 * tokens are pending, the batcher is stopped, or `seconds` have passed. */
static void wait_for_inputs(qs_server *srv, size_t inputs, double seconds) {
    double until = qs_now() + seconds;
    for (;;) {
        size_t n = 0, t = 0;
        for (qs_job *j = srv->head; j && n < inputs && t < srv->pass_tokens; j = j->next)
            for (size_t u = j->cursor; u < j->n_units && n < inputs && t < srv->pass_tokens; u++)
                if (!j->units[u].taken) {
                    n++;
                    t += j->units[u].n_ids;
                }
        if (srv->batcher_stop || srv->batcher_abort || n >= inputs || t >= srv->pass_tokens) return;
        double left = until - qs_now();
        if (left <= 0) return;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double at = (double)ts.tv_sec + ts.tv_nsec * 1e-9 + left;
        ts.tv_sec = (time_t)at;
        ts.tv_nsec = (long)((at - (double)ts.tv_sec) * 1e9);
        if (pthread_cond_timedwait(&srv->cv_work, &srv->mu, &ts) == ETIMEDOUT) return;
    }
}

/* Measures this machine's forward-pass speed and sizes passes by time: a
 * pass cannot be interrupted, so its length is the wait of every request
 * that arrives while it runs. Passes of 64-token inputs, doubled until one
 * takes 50 ms (or reaches --max-batch-tokens), then the median of three runs
 * of that size; pass_tokens = --pass-seconds x
 * the tokens/s measured, within [64, --max-batch-tokens]. Attention makes
 * long inputs cost more per token than this measures, so a pass of long
 * inputs runs somewhat over the target. On a busy machine the measurement is
 * low and passes come out smaller than they could be (latency kept,
 * throughput given up). Returns 0, or -1 with warm_err set. */
static int measure_speed(qs_server *srv, qembed_ctx *ctx, const int32_t *seed, size_t n_seed) {
    size_t L = srv->max_tokens < 64 ? srv->max_tokens : 64;
    srv->pass_tokens = srv->max_batch_tokens;
    if (srv->cfg.pass_seconds <= 0 || L == 0) return 0;
    size_t kmax = srv->max_batch_tokens / L;
    if (kmax == 0 || n_seed == 0) return 0;
    size_t hidden = (size_t)srv->info.hidden_size;
    int32_t *ids = malloc(L * sizeof *ids);
    const int32_t **pid = malloc(kmax * sizeof *pid);
    size_t *lens = malloc(kmax * sizeof *lens);
    float *out = malloc(kmax * hidden * sizeof *out);
    int rc = -1;
    if (!ids || !pid || !lens || !out) {
        snprintf(srv->warm_err, sizeof srv->warm_err, "out of memory measuring the pass speed");
        goto out;
    }
    for (size_t i = 0; i < L; i++) ids[i] = seed[i % n_seed];
    for (size_t i = 0; i < kmax; i++) {
        pid[i] = ids;
        lens[i] = L;
    }
    qembed_embed_options o = qembed_embed_default_options();
    o.max_tokens = srv->max_tokens;
    double dt = 0, runs[3];
    size_t k = 1;
    int n_runs = 0;
    for (;;) {
        qembed_error err = {0};
        double t0 = qs_now();
        if (qembed_ctx_embed_tokens(ctx, pid, lens, k, &o, out, &err) != QEMBED_OK) {
            snprintf(srv->warm_err, sizeof srv->warm_err, "warm-up inference failed: %s", err.message);
            goto out;
        }
        dt = qs_now() - t0;
        if (n_runs > 0 || dt >= 0.05 || k == kmax) {
            /* At the final size: the median of three, as one run on a busy
             * machine can be far off either way. */
            runs[n_runs++] = dt;
            if (n_runs == 3) break;
            continue;
        }
        k = k * 2 < kmax ? k * 2 : kmax;
    }
    for (int a = 0; a < 3; a++)
        for (int b = a + 1; b < 3; b++)
            if (runs[b] < runs[a]) {
                double t = runs[a];
                runs[a] = runs[b];
                runs[b] = t;
            }
    dt = runs[1];
    srv->warm_tokens_per_s = (double)(k * L) / (dt > 1e-6 ? dt : 1e-6);
    double want = srv->cfg.pass_seconds * srv->warm_tokens_per_s;
    size_t pt = want >= (double)srv->max_batch_tokens ? srv->max_batch_tokens : (size_t)want;
    srv->pass_tokens = pt < 64 ? 64 : pt;
    if (srv->pass_tokens > srv->max_batch_tokens) srv->pass_tokens = srv->max_batch_tokens;
    qs_log(srv, QEMBED_LOG_INFO,
           "warm-up: %zu tokens in %.1f ms (%.0f tokens/s): passes of at most %zu "
           "tokens (--pass-seconds %.3g)",
           k * L, dt * 1e3, srv->warm_tokens_per_s, srv->pass_tokens, srv->cfg.pass_seconds);
    rc = 0;
out:
    free(ids);
    free(pid);
    free(lens);
    free(out);
    return rc;
}

static int warm_up(qs_server *srv, qembed_ctx *ctx) {
    qembed_embed_options o = qembed_embed_default_options();
    o.parse_special = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    qembed_error err = {0};
    static const char text[] = "qembed warm-up";
    if (qembed_model_tokenize(srv->model, text, sizeof text - 1, &o, &ids, &n, &err) != QEMBED_OK) {
        snprintf(srv->warm_err, sizeof srv->warm_err, "warm-up tokenization failed: %s", err.message);
        return -1;
    }
    float *out = malloc((size_t)srv->info.hidden_size * sizeof *out);
    const int32_t *pid = ids;
    double t0 = qs_now();
    qembed_status st =
        out ? qembed_ctx_embed_tokens(ctx, &pid, &n, 1, &o, out, &err) : QEMBED_ERR_OUT_OF_MEMORY;
    double dt = qs_now() - t0;
    free(out);
    if (st != QEMBED_OK) {
        qembed_free(ids);
        snprintf(srv->warm_err, sizeof srv->warm_err, "warm-up inference failed: %s",
                 out ? err.message : "out of memory");
        return -1;
    }
    qs_log(srv, QEMBED_LOG_INFO, "warm-up: first inference (%zu tokens) took %.2f ms", n, dt * 1e3);
    int rc = measure_speed(srv, ctx, ids, n);
    qembed_free(ids);
    return rc;
}

static void *batcher_main(void *arg) {
    qs_server *srv = arg;
    qembed_ctx_params cp = qembed_ctx_default_params();
    cp.n_threads = srv->cfg.n_threads;
    cp.max_batch_tokens = srv->max_batch_tokens;
    qembed_ctx *ctx = NULL;
    qembed_error err = {0};
    int ok = 0;
    if (qembed_ctx_create(srv->model, &cp, &ctx, &err) != QEMBED_OK)
        snprintf(srv->warm_err, sizeof srv->warm_err, "cannot create the context: %s", err.message);
    else
        ok = warm_up(srv, ctx) == 0;

    qs_batch b = {0};
    /* expire_locked pushes without growing, so keep room for every job. */
    b.cap_done = srv->cfg.max_queue + 1;
    b.done = malloc(b.cap_done * sizeof *b.done);
    if (ok && !b.done) {
        snprintf(srv->warm_err, sizeof srv->warm_err, "out of memory");
        ok = 0;
    }

    pthread_mutex_lock(&srv->mu);
    srv->warm_state = ok ? 1 : -1;
    srv->batcher_running = ok;
    pthread_cond_broadcast(&srv->cv_state);
    pthread_mutex_unlock(&srv->mu);

    size_t last_n = 0;  /* inputs in the previous pass */
    double last_dt = 0; /* its duration, seconds */
    while (ok) {
        pthread_mutex_lock(&srv->mu);
        while (!srv->head && !srv->batcher_stop) pthread_cond_wait(&srv->cv_work, &srv->mu);
        if (!srv->head) {
            pthread_mutex_unlock(&srv->mu);
            break;
        }
        if (srv->cfg.batch_wait_ms > 0) {
            /* Optional: let an idle server gather a fuller batch. */
            wait_for_inputs(srv, SIZE_MAX, srv->cfg.batch_wait_ms * 1e-3);
        } else if (last_n > 1) {
            /* Under load, the clients of the pass that just ended send their
             * next requests soon after: wait for them (at most a tenth of the
             * last pass, at most 100 ms) until as many inputs as it held are
             * waiting, so that passes stay full instead of alternating between
             * a lone early request and everything else. An idle server (last
             * pass of one input) never waits. */
            double w = last_dt * 0.1;
            wait_for_inputs(srv, last_n, w < 0.100 ? w : 0.100);
        }
        b.n_done = 0;
        expire_locked(srv, &b, qs_now());
        qs_select_locked(srv, &b);
        pthread_mutex_unlock(&srv->mu);

        last_n = b.n;
        if (b.n) {
            double t0 = qs_now();
            run_batch(srv, ctx, &b);
            last_dt = qs_now() - t0;
            pthread_mutex_lock(&srv->mu);
            for (size_t i = 0; i < b.n; i++) {
                qs_job *j = b.job[i];
                j->n_done++;
                if (j->state != QS_JOB_QUEUED) continue;
                if (j->err.status) j->n_done += j->n_untaken; /* its other inputs will not be run */
                if (j->n_done >= j->n_units) {
                    finish_locked(srv, j, j->err.status ? QS_JOB_FAILED : QS_JOB_DONE);
                    if (done_push(&b, j) != 0) {
                        /* Cannot happen with cap_done = max_queue + 1, but never lose a job. */
                        pthread_mutex_unlock(&srv->mu);
                        MHD_resume_connection(j->conn);
                        qs_job_release(srv, j);
                        pthread_mutex_lock(&srv->mu);
                    }
                }
            }
            pthread_mutex_unlock(&srv->mu);
        }
        resume_and_release(srv, b.done, b.n_done);
    }

    qs_batch_free(&b);
    qembed_ctx_free(ctx);
    return NULL;
}

int qs_batcher_start(qs_server *srv, char *err, size_t errlen) {
    srv->warm_state = 0;
    srv->batcher_stop = 0;
    if (pthread_create(&srv->batcher, NULL, batcher_main, srv) != 0) {
        snprintf(err, errlen, "cannot start the batching thread");
        return -1;
    }
    pthread_mutex_lock(&srv->mu);
    while (srv->warm_state == 0) pthread_cond_wait(&srv->cv_state, &srv->mu);
    int ok = srv->warm_state == 1;
    pthread_mutex_unlock(&srv->mu);
    if (!ok) {
        pthread_join(srv->batcher, NULL);
        snprintf(err, errlen, "%s", srv->warm_err);
        return -1;
    }
    return 0;
}

void qs_batch_free(qs_batch *b) {
    free(b->job);
    free(b->unit);
    free(b->ids);
    free(b->n_ids);
    free(b->done);
    free(b->out);
    memset(b, 0, sizeof *b);
}

void qs_batcher_abort(qs_server *srv) {
    pthread_mutex_lock(&srv->mu);
    srv->batcher_abort = 1;
    pthread_cond_broadcast(&srv->cv_work);
    pthread_mutex_unlock(&srv->mu);
}

void qs_batcher_stop(qs_server *srv) {
    pthread_mutex_lock(&srv->mu);
    int running = srv->batcher_running;
    srv->batcher_stop = 1;
    pthread_cond_broadcast(&srv->cv_work);
    pthread_mutex_unlock(&srv->mu);
    if (running) pthread_join(srv->batcher, NULL);
    pthread_mutex_lock(&srv->mu);
    srv->batcher_running = 0;
    pthread_mutex_unlock(&srv->mu);
}
