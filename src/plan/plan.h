/* Devices and the placement planner: where every layer runs is decided up
 * front, from real capacities, before any weight is touched, and shown to the
 * user. Never a silent fallback, never a crash on a model that does not fit.
 *
 * Memory model (what the planner counts, per device that hosts a segment):
 *   weights    the segment's layers in their stored dtype (qe_layer_bytes),
 *              plus the token embedding on the first segment and the final
 *              norm on the last. Weights are memory-mapped (page cache), but a
 *              device must still hold them, so they count in full. On a CPU
 *              with AMX tiles in bf16 mode the CPU segments' bf16 matrices are
 *              packed at load into anonymous memory of the same size (padding
 *              to 32 columns aside; more than 1% of padding and they are not
 *              packed) and their mapped pages dropped, so the count stands
 *              (backend_cpu.c, forward.c qe_fwd_pack_layers).
 *   workspace  one set of activation buffers for T tokens, reused layer after
 *              layer on that device, so counted once per device, not once per
 *              layer. T = max(max_batch_tokens, max input tokens): a context
 *              always fits one input of the maximum length. For the CPU and the
 *              simulated accelerator (both run the CPU kernels) it is what the
 *              CPU backend allocates (qe_fwd_state_bytes) plus the context's
 *              staging; for a GPU, the upper-bound formula of
 *              qe_plan_workspace_bytes (planner.c).
 * The plan covers one qembed_ctx; each further ctx needs its own workspace. */
#ifndef QE_PLAN_H
#define QE_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "common/log.h"
#include "model/config.h"

/* ------------------------------------------------------------------------- */
/* Devices                                                                    */
/* ------------------------------------------------------------------------- */

typedef enum qe_device_kind {
    QE_DEV_CPU = 0,
    QE_DEV_CUDA = 1,      /* found through libcuda at run time */
    QE_DEV_SIM_ACCEL = 2, /* planner test device: a memory budget, runs the CPU backend */
    QE_DEV_VULKAN = 3     /* a Vulkan physical device (backend/vulkan), loader opened at run time */
} qe_device_kind;

#define QE_MAX_DEVICES 16

typedef struct qe_device {
    qe_device_kind kind;
    int index;                 /* among devices of its kind */
    char name[128];            /* "cpu", "cuda:0 NVIDIA H100", "sim-accel (test device)" */
    char detail[160];          /* cores and ISA, or free/total memory, for the logs */
    uint64_t budget;           /* bytes the planner may use on it */
    const char *budget_src;    /* where the budget came from ("--cpu-memory-limit", "MemAvailable", ...) */
    int can_compute;           /* 1 when a backend can run layers on it */
    const qe_backend *backend; /* the table that computes on it; NULL: none (CUDA today) */
    int is_gpu;                /* counts as a GPU for ALL and CPU_AND_GPU */
    char unused_why[160];      /* when !can_compute: why it holds no layers (shown by the planner) */
} qe_device;

typedef struct qe_devices {
    qe_device dev[QE_MAX_DEVICES];
    int n;
} qe_devices;

/* Discovers the CPU (always), CUDA GPUs (only when libcuda can be dlopen'ed;
 * none is a normal outcome, not an error), Vulkan devices (only when
 * libvulkan.so.1 can be dlopen'ed; see backend/vulkan/vk_backend.h) and the simulated accelerator
 * (params->sim_accel_memory > 0). Logs at DEBUG only: qe_plan_make lists the
 * devices at INFO after "Requesting compute units", so the log reads in order. */
qembed_status qe_devices_discover(const qembed_model_params *params, const qe_logger *lg, qe_devices *out,
                                  qembed_error *err);

/* Pieces of discovery, exposed for tests and `qembed info`. */
uint64_t qe_mem_available(const char **src); /* min(MemAvailable, cgroup room); 0 if unknown */
int qe_cuda_count(char names[][128], uint64_t *free_bytes, uint64_t *total_bytes, int max);

/* ------------------------------------------------------------------------- */
/* The plan                                                                   */
/* ------------------------------------------------------------------------- */

#define QE_MAX_SEGMENTS 64

typedef struct qe_plan_segment {
    int first_layer; /* inclusive */
    int end_layer;   /* exclusive */
    int device;      /* index into the qe_devices the plan was made from */
    qe_device_kind kind;
    char device_name[128];
    uint64_t weight_bytes; /* layers (+ embedding on the first, + final norm on the last) */
    uint64_t work_bytes;   /* workspace charged to this device (first segment on it only) */
    int has_embed;
    int has_final_norm;
} qe_plan_segment;

typedef struct qe_plan {
    qembed_compute_units units;
    int n_segments;
    qe_plan_segment seg[QE_MAX_SEGMENTS];
    int degraded;     /* 1 when the preferred device could not hold everything */
    char table[4096]; /* the printed placement table */
} qe_plan;

/* Bytes of one device's activation workspace for T tokens (see plan.h). */
uint64_t qe_plan_workspace_bytes(const qe_config *cfg, size_t max_batch_tokens, int n_threads);
/* The same for the CPU kernels, exactly as a context allocates it
 * (activations, id and pooled-output staging); qembed_ctx_activation_bytes
 * adds the thread pool's packing blocks. */
uint64_t qe_plan_cpu_workspace_bytes(const qe_config *cfg, size_t max_batch_tokens, int n_threads);
/* Embedding table and final norm in their stored dtype. */
uint64_t qe_plan_embed_bytes(const qe_config *cfg, qe_dtype dt);
uint64_t qe_plan_norm_bytes(const qe_config *cfg, qe_dtype dt);

/* Places layers [0, n_layers) on `devs` for `params->compute_units` within
 * each device's budget. The plan is free of a split directory's segment
 * files: every file is memory-mapped, so any layer can run on any device and
 * the files are storage only. Logs "Requesting compute units: X", one WARN line on
 * degradation, and the table. QEMBED_ERR_PLACEMENT (with the numbers) when no
 * allowed device or combination can hold the model. */
qembed_status qe_plan_make(const qe_config *cfg, qe_dtype dt, const qe_devices *devs,
                           const qembed_model_params *params, const qe_logger *lg, qe_plan *out,
                           qembed_error *err);
/* The same with every layer counted as `layer_bytes` (the largest layer's
 * real bytes: a GGUF's layers may mix types, e.g. Q4_K_M's Q6_K attn_v and
 * ffn_down on some layers); qe_plan_make uses qe_layer_bytes(cfg, dt). */
qembed_status qe_plan_make_sized(const qe_config *cfg, qe_dtype dt, uint64_t layer_bytes,
                                 const qe_devices *devs, const qembed_model_params *params,
                                 const qe_logger *lg, qe_plan *out, qembed_error *err);

/* Formats a byte count as "1.23 GiB" into buf. */
const char *qe_fmt_bytes(uint64_t b, char *buf, size_t size);

#endif
