/* The Vulkan backend inside its folder: one opened device (queue, pipelines,
 * staging, command buffer), device buffers, and the ops recorded into a
 * batch. Used by vk_backend.c and by the op tests (tests/vulkan).
 *
 * Threading: a qe_vk is used by one thread at a time (a model's segment
 * state and every context on it share it under its mutex).
 * Recording: qe_vk_begin, then ops (each followed by a compute barrier), then
 * qe_vk_submit, which waits. Descriptor sets come from a pool reset at every
 * qe_vk_begin (sized at open; a long batch flushes and continues), so the hot
 * path allocates no memory. */
#ifndef QE_VK_INTERNAL_H
#define QE_VK_INTERNAL_H

#define VK_NO_PROTOTYPES
#include <pthread.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

#include "common/error.h"
#include "model/tensor.h"

/* Shaders built for head_dim up to this (attention keeps 16 query rows in
 * shared memory and two output dimensions per invocation). */
#define QE_VK_MAX_HEAD_DIM 128

typedef struct qe_vk_info {
    char name[256];
    VkPhysicalDeviceType type;
    uint64_t local_heap;        /* bytes of the largest device-local heap */
    uint64_t max_storage_range; /* maxStorageBufferRange */
    uint32_t max_shared;        /* maxComputeSharedMemorySize */
    uint32_t max_groups[3];     /* maxComputeWorkGroupCount */
    uint32_t subgroup;          /* subgroup size (1.1 properties); 0 unknown */
} qe_vk_info;

/* Lists the physical devices (up to max); 0 without a loader or a driver. */
int qe_vk_list(qe_vk_info *out, int max);

typedef struct qe_vk_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    uint64_t size;
} qe_vk_buf;

typedef enum qe_vk_pipe {
    QE_VKP_MATMUL_F32 = 0,
    QE_VKP_MATMUL_F16,
    QE_VKP_MATMUL_BF16,
    QE_VKP_RMSNORM,
    QE_VKP_ROPE,
    QE_VKP_SWIGLU,
    QE_VKP_ADD,
    QE_VKP_ATTENTION,
    QE_VKP_COUNT
} qe_vk_pipe;

typedef struct qe_vk qe_vk;
struct qe_vk {
    qe_vk_info info;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;
    VkFence fence;
    /* Descriptor sets are cached by (pipeline, buffers) and reused across
     * batches: every binding is a whole buffer (offsets go in push
     * constants), so a segment's sets depend only on its weights and its
     * contexts' workspaces. The cache is emptied (pool reset) when it is full
     * and whenever a buffer is freed (a new buffer may reuse the handle). */
    VkDescriptorPool desc_pool;
    uint32_t desc_used, desc_cap;
    struct qe_vk_dset *dcache; /* (2 * desc_cap) open-addressing slots */
    uint64_t n_desc_writes;    /* descriptor sets allocated and written, counted up */
    VkDescriptorSetLayout dsl[QE_VKP_COUNT];
    VkPipelineLayout layout[QE_VKP_COUNT];
    VkPipeline pipe[QE_VKP_COUNT];
    int n_bind[QE_VKP_COUNT];
    qe_vk_buf staging; /* host-visible, for uploads and downloads */
    void *staging_map;
    int recording;
    int lost; /* a submit failed: the device is not used again */
    pthread_mutex_t lock;
    /* What this device handle has allocated (vkAllocateMemory), counted up
     * and never down, so an allocation in the hot path shows even when it is
     * freed again: bytes and calls. Weights, workspaces and staging. */
    uint64_t allocated;
    uint64_t n_allocs;
};

/* Opens physical device `index`: logical device, queue, pipelines (the
 * embedded SPIR-V), staging buffer. A shader that fails to build, a missing
 * loader or device: an error naming it. */
qembed_status qe_vk_open(int index, qe_vk **out, qembed_error *err);
void qe_vk_close(qe_vk *vk);

qembed_status qe_vk_buf_create(qe_vk *vk, uint64_t bytes, qe_vk_buf *b, qembed_error *err);
void qe_vk_buf_free(qe_vk *vk, qe_vk_buf *b);
/* Host <-> device copies through the staging buffer; they submit and wait,
 * so call them outside a recording. */
qembed_status qe_vk_upload(qe_vk *vk, qe_vk_buf *b, uint64_t off, const void *src, uint64_t bytes,
                           qembed_error *err);
qembed_status qe_vk_download(qe_vk *vk, const qe_vk_buf *b, uint64_t off, void *dst, uint64_t bytes,
                             qembed_error *err);

qembed_status qe_vk_begin(qe_vk *vk, qembed_error *err);
qembed_status qe_vk_submit(qe_vk *vk, qembed_error *err);

/* Records one dispatch of `pipe` with its storage buffers (whole-buffer
 * bindings, in binding order), push constants and group counts, then a
 * compute-to-compute barrier. */
qembed_status qe_vk_dispatch(qe_vk *vk, qe_vk_pipe pipe, const qe_vk_buf *const *bufs, int n_bufs,
                             const void *push, uint32_t push_size, uint32_t gx, uint32_t gy,
                             qembed_error *err);
/* Records a buffer-to-buffer copy of regions (bytes), then a barrier. */
qembed_status qe_vk_copy(qe_vk *vk, const qe_vk_buf *src, const qe_vk_buf *dst, const VkBufferCopy *regions,
                         uint32_t n, qembed_error *err);

/* ---- ops (recorded between begin and submit); offsets and strides in elements ---- */

/* y[m][n] (=|+=) sum_k x[m][k] * W[n][k]; W (N, K) in `wt` (weights as
 * stored), f32 accumulation. accumulate=1 adds to y (the residual add). */
qembed_status qe_vk_matmul(qe_vk *vk, const qe_vk_buf *x, uint32_t xoff, uint32_t ldx, uint32_t M, uint32_t K,
                           const qe_vk_buf *w, qe_dtype wt, uint32_t N, const qe_vk_buf *y, uint32_t yoff,
                           uint32_t ldy, int accumulate, qembed_error *err);
/* RMSNorm of `rows` rows of d: y = w * x / sqrt(mean(x^2) + eps); w (d) f32
 * at woff in wbuf. x and y may be the same buffer (in place). */
qembed_status qe_vk_rmsnorm(qe_vk *vk, const qe_vk_buf *x, uint32_t xoff, uint32_t ldx, const qe_vk_buf *y,
                            uint32_t yoff, uint32_t ldy, uint32_t rows, uint32_t d, const qe_vk_buf *wbuf,
                            uint32_t woff, float eps, qembed_error *err);
/* NEOX rotate-half RoPE on every head of q (T, nh*D) and k (T, nkv*D), with
 * the tables cos/sin (positions, D/2) and each row's position in pos (int). */
qembed_status qe_vk_rope(qe_vk *vk, const qe_vk_buf *q, const qe_vk_buf *k, const qe_vk_buf *cs,
                         const qe_vk_buf *sn, const qe_vk_buf *pos, uint32_t T, uint32_t nh, uint32_t nkv,
                         uint32_t D, qembed_error *err);
/* g[i] = silu(g[i]) * u[i] over n values. */
qembed_status qe_vk_swiglu(qe_vk *vk, const qe_vk_buf *g, const qe_vk_buf *u, uint32_t n, qembed_error *err);
/* y[i] += x[i] over n values. */
qembed_status qe_vk_add(qe_vk *vk, const qe_vk_buf *y, const qe_vk_buf *x, uint32_t n, qembed_error *err);
/* Causal grouped-query attention over a packed batch, in place on q:
 * q (T, nh*D), k and v (T, nkv*D); seq_start (T) ints: the first row of each
 * row's sequence. Tiled: one workgroup per 16 rows of one head, keys in
 * tiles of 64; memory is the tiles whatever the length. */
qembed_status qe_vk_attention(qe_vk *vk, const qe_vk_buf *q, const qe_vk_buf *k, const qe_vk_buf *v,
                              const qe_vk_buf *seq_start, uint32_t T, uint32_t nh, uint32_t nkv, uint32_t D,
                              qembed_error *err);

#endif
