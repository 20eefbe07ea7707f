/* The backend table: what the planner and the engine know about a device
 * that computes. A backend is a table of functions plus a `void *` state per
 * planned segment (model level: uploaded weights) and per context (workspace),
 * with an API version (ggml-backend and ONNX Runtime's execution providers are
 * the models). The CPU backend (backend/cpu/backend_cpu.c) is the reference;
 * Vulkan (backend/vulkan/) is the first accelerator. A CUDA backend later adds
 * src/backend/cuda/ and one line in qe_devices_discover, nothing else.
 *
 * The hand-off between segments is the packed batch's hidden state in host
 * memory (qe_hidden): a backend with its own memory moves it in at the start
 * of its segment and back at the end, once per segment and batch.
 * The token embedding lookup and the final norm run on the host (the CPU
 * forward's qe_fwd_begin / qe_fwd_end) whatever the placement: they are a
 * gather and one row per sequence, and a 0.6B embedding table (310 MB) does
 * not fit one storage binding on every device. */
#ifndef QE_BACKEND_H
#define QE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/forward.h"
#include "common/log.h"
#include "model/config.h"
#include "model/weights.h"

#define QE_BACKEND_API_VERSION 1

struct qe_device;

/* The batch's hidden state in host memory, as it crosses a segment boundary. */
typedef struct qe_hidden {
    float *x; /* (cap, hidden) host buffer; rows [0, rows) are live */
    int rows; /* n_tok, or n_seq once compacted */
    int n_tok;
    int n_seq;
    const int *seq_off; /* (n_seq+1) row offsets of the sequences */
    const int *pos;     /* (n_tok) position of each row within its sequence */
    int compacted;      /* 1 after the last layer: row s is sequence s's last token */
} qe_hidden;

typedef struct qe_backend {
    int api_version;  /* QE_BACKEND_API_VERSION the table was built for */
    const char *name; /* "cpu", "vulkan" */
    /* Planner sizes for one device. T = tokens per pass, threads = CPU threads. */
    uint64_t (*workspace_bytes)(const struct qe_device *dev, const qe_config *cfg, size_t T, int threads);
    /* 1 when the device can run this model's layers for T tokens per pass;
     * otherwise 0 and why (a device limit, a dtype). */
    int (*supports)(const struct qe_device *dev, const qe_config *cfg, qe_dtype dt, size_t T, char *why,
                    size_t why_size);
    /* Bytes of the embedding the device must hold when it runs the first
     * segment (0: the lookup stays on the host). */
    uint64_t (*embed_bytes)(const qe_config *cfg, qe_dtype dt);
    /* Model level: uploads (or binds) layers [first, end) of `fw`. `pool`:
     * CPU threads for the load's own work (the CPU backend packs with them),
     * one set for every segment of a model load: *pool is NULL until a
     * segment needs threads, which creates the pool there for the later
     * segments to reuse; the caller frees *pool after the last segment. */
    qembed_status (*seg_load)(const struct qe_device *dev, const qe_fwd_weights *fw, int first, int end,
                              qe_threadpool **pool, const qe_logger *lg, void **seg, qembed_error *err);
    void (*seg_free)(void *seg);
    /* Context level: the workspace for `cap` tokens. `host` is the context's
     * CPU state (its x is the qe_hidden buffer; the CPU backend computes in it). */
    qembed_status (*work_create)(void *seg, int cap, qe_fwd_state *host, void **work, qembed_error *err);
    void (*work_free)(void *work);
    /* Runs layers [first, end) on h: moves h->x in, computes, moves it back
     * (only each sequence's last row when `end` is the model's last layer,
     * then h->compacted = 1). An error leaves h unusable; the caller reruns
     * the batch on the CPU (see qe_ctx_forward). */
    qembed_status (*run)(void *work, qe_hidden *h, int first, int end, qembed_error *err);
} qe_backend;

extern const qe_backend qe_backend_cpu;
extern const qe_backend qe_backend_vulkan;

#endif
