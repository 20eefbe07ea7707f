/* The Vulkan backend behind the backend table: discovery for the planner,
 * sizes and limits, weight upload at load (in their stored dtype), the
 * workspace planned once per context for `cap` tokens, and a segment's layers
 * recorded into one command buffer per batch. The token embedding lookup and
 * the final norm stay on the host (backend.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/vulkan/vk_backend.h"

#ifndef QE_VK_NO_HEADERS
#include "backend/cpu/ops.h"
#include "backend/vulkan/vk_internal.h"
#include "backend/vulkan/vk_loader.h"

/* Rows per MLP chunk: gate and up are (chunk, intermediate), as on the CPU. */
#define VK_MLP_ROWS 512
/* Device memory left to the driver and other programs. */
#define VK_MARGIN_MIN ((uint64_t)256 << 20)

static int software_allowed(void) {
    const char *v = getenv("QEMBED_VULKAN_SOFTWARE");
    return v && !strcmp(v, "1");
}

/* Test hook (documented in the README as such): QEMBED_VULKAN_TEST_FAULT=load,
 * work or run makes that step fail as a device error would (an allocation
 * failure, a lost device), so the tests can show each CPU fallback. */
static int test_fault(const char *where, qembed_error *err) {
    const char *v = getenv("QEMBED_VULKAN_TEST_FAULT");
    if (!v || strcmp(v, where)) return 0;
    qe_error(err, QEMBED_ERR_INTERNAL, "vulkan: injected fault (QEMBED_VULKAN_TEST_FAULT=%s)", where);
    return 1;
}

int qe_vk_discover(const qembed_model_params *params, const qe_logger *lg, qe_devices *out) {
    qe_vk_info inf[8];
    int n = qe_vk_list(inf, 8);
    if (n == 0) {
        const char *why = "";
        qe_vk_load(NULL, &why);
        QE_DEBUG(lg, "device: no Vulkan device (%s)", why[0] ? why : "the driver reports none");
    }
    char b1[32];
    for (int i = 0; i < n && out->n < QE_MAX_DEVICES; i++) {
        qe_device *d = &out->dev[out->n++];
        memset(d, 0, sizeof *d);
        d->kind = QE_DEV_VULKAN;
        d->index = i;
        d->backend = &qe_backend_vulkan;
        snprintf(d->name, sizeof d->name, "vulkan%d (%.100s)", i, inf[i].name);
        const char *type = "other";
        switch (inf[i].type) {
            case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: type = "discrete GPU"; break;
            case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: type = "integrated GPU"; break;
            case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: type = "virtual GPU"; break;
            case VK_PHYSICAL_DEVICE_TYPE_CPU: type = "software (CPU type)"; break;
            default: break;
        }
        uint64_t heap = inf[i].local_heap;
        uint64_t margin = heap / 10 > VK_MARGIN_MIN ? heap / 10 : VK_MARGIN_MIN;
        d->budget = heap > margin ? heap - margin : 0;
        d->budget_src = "device-local heap less a margin";
        if (params->gpu_memory_limit && params->gpu_memory_limit < d->budget) {
            d->budget = params->gpu_memory_limit;
            d->budget_src = "gpu_memory_limit";
        }
        snprintf(d->detail, sizeof d->detail, "Vulkan %s, %s device-local, subgroup %u", type,
                 qe_fmt_bytes(heap, b1, sizeof b1), inf[i].subgroup);
        int gpu = inf[i].type == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU ||
                  inf[i].type == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
                  inf[i].type == VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU;
#ifdef QE_VK_NO_SHADERS
        (void)gpu;
        (void)software_allowed;
        snprintf(d->unused_why, sizeof d->unused_why,
                 "this build has no Vulkan shaders (glslc was not found when it was built)");
#else
        if (gpu) {
            d->can_compute = 1;
            d->is_gpu = 1;
        } else if (inf[i].type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
            if (software_allowed()) {
                d->can_compute = 1;
                d->is_gpu = 1; /* asked for: placed where a GPU would be */
            } else {
                snprintf(d->unused_why, sizeof d->unused_why,
                         "a software Vulkan device (CPU type) is used only with "
                         "QEMBED_VULKAN_SOFTWARE=1");
            }
        } else {
            snprintf(d->unused_why, sizeof d->unused_why, "Vulkan device type %s is not used", type);
        }
#endif
        QE_DEBUG(lg, "discovered: %s (%s)%s%s", d->name, d->detail,
                 d->can_compute ? "" : "; unused: ", d->unused_why);
    }
    return n;
}

/* ---- sizes and limits ---- */

typedef struct vk_sizes {
    uint64_t x, q, kv, mlp, rope, ints, norms;
} vk_sizes;

static vk_sizes sizes_for(const qe_config *cfg, size_t T) {
    const uint64_t H = (uint64_t)cfg->hidden_size, D = (uint64_t)cfg->head_dim;
    const uint64_t R = T < VK_MLP_ROWS ? T : VK_MLP_ROWS;
    const uint64_t L = (uint64_t)cfg->n_layers;
    vk_sizes s = {
        .x = 4 * T * H,
        .q = 4 * T * (uint64_t)cfg->n_heads * D,
        .kv = 4 * T * (uint64_t)cfg->n_kv_heads * D,
        .mlp = 4 * R * (uint64_t)cfg->intermediate_size,
        .rope = 4 * T * (D / 2),
        .ints = 4 * T,
        .norms = 4 * (L * (2 * H + 2 * D) + H),
    };
    return s;
}

/* Device buffers of one context (x, xn, q, k, v, gate, up, cos, sin, pos,
 * seq_start) plus the norm weights widened to f32 and the staging buffer. */
static uint64_t vk_workspace_bytes(const qe_device *dev, const qe_config *cfg, size_t T, int threads) {
    vk_sizes s = sizes_for(cfg, T);
    return 2 * s.x + s.q + 2 * s.kv + 2 * s.mlp + 2 * s.rope + 2 * s.ints + s.norms + ((uint64_t)16 << 20);
}

static int vk_supports(const qe_device *dev, const qe_config *cfg, qe_dtype dt, size_t T, char *why,
                       size_t why_size) {
    qe_vk_info inf[8];
    int n = qe_vk_list(inf, 8);
    if (dev->index >= n) {
        snprintf(why, why_size, "the device is gone");
        return 0;
    }
    const qe_vk_info *v = &inf[dev->index];
    if (dt != QE_F32 && dt != QE_F16 && dt != QE_BF16) {
        /* The shaders read f32, f16 and bf16 weights; block-quantized ones
         * (Q8_0, Q4_K, ... from a GGUF) run on the CPU's products only. */
        snprintf(why, why_size, "its shaders take f32, f16 and bf16 weights, not %s", qe_dtype_name(dt));
        return 0;
    }
    if (cfg->head_dim > QE_VK_MAX_HEAD_DIM || cfg->head_dim % 2 || cfg->n_kv_heads <= 0 ||
        cfg->n_heads % cfg->n_kv_heads) {
        snprintf(why, why_size,
                 "head_dim %d (the shaders take even values up to %d) or %d heads "
                 "over %d kv heads",
                 cfg->head_dim, QE_VK_MAX_HEAD_DIM, cfg->n_heads, cfg->n_kv_heads);
        return 0;
    }
    if (v->max_shared < 2 * 16 * 17 * 4) { /* matmul's two 16x17 tiles, the largest */
        snprintf(why, why_size, "%u bytes of shared memory per workgroup, the shaders need %d", v->max_shared,
                 2 * 16 * 17 * 4);
        return 0;
    }
    vk_sizes s = sizes_for(cfg, T);
    const uint64_t H = (uint64_t)cfg->hidden_size, I = (uint64_t)cfg->intermediate_size;
    const uint64_t QD = (uint64_t)cfg->n_heads * (uint64_t)cfg->head_dim;
    uint64_t biggest = s.x;
    uint64_t cand[] = {s.q, s.kv, s.mlp, s.rope, I * H * qe_dtype_size(dt), QD * H * qe_dtype_size(dt)};
    for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++)
        if (cand[i] > biggest) biggest = cand[i];
    if (biggest > v->max_storage_range) {
        char b1[32], b2[32];
        snprintf(why, why_size,
                 "a buffer of %s for %zu batch tokens exceeds its "
                 "maxStorageBufferRange %s (lower --max-batch-tokens)",
                 qe_fmt_bytes(biggest, b1, sizeof b1), T, qe_fmt_bytes(v->max_storage_range, b2, sizeof b2));
        return 0;
    }
    if ((T + 15) / 16 > v->max_groups[1] || (uint64_t)cfg->n_heads > v->max_groups[1] ||
        (T + 15) / 16 > v->max_groups[0]) {
        snprintf(why, why_size, "%zu batch tokens need more workgroups than it allows", T);
        return 0;
    }
    return 1;
}

static uint64_t vk_embed_bytes(const qe_config *cfg, qe_dtype dt) {
    return 0;
}

/* ---- model level: the segment's weights on the device ---- */

enum { W_Q, W_K, W_V, W_O, W_GATE, W_UP, W_DOWN, W_COUNT };
_Static_assert((int)W_COUNT == (int)QE_LAYER_MATRICES, "qe_layer_matrices' order");

typedef struct vk_seg {
    qe_vk *vk;
    const qe_fwd_weights *fw;
    int first, end;
    qe_vk_buf norms;         /* fw->norm_data, f32 */
    qe_vk_buf (*w)[W_COUNT]; /* (end - first) layers */
} vk_seg;

static const qe_tensor *layer_tensor(const qe_layer_weights *lw, int i) {
    const qe_tensor *t[QE_LAYER_MATRICES];
    qe_layer_matrices(lw, t);
    return t[i];
}

static void vk_seg_free(void *p) {
    vk_seg *s = p;
    if (!s) return;
    if (s->vk) {
        if (s->w)
            for (int l = 0; l < s->end - s->first; l++)
                for (int i = 0; i < W_COUNT; i++) qe_vk_buf_free(s->vk, &s->w[l][i]);
        qe_vk_buf_free(s->vk, &s->norms);
        qe_vk_close(s->vk);
    }
    free(s->w);
    free(s);
}

static qembed_status seg_upload(vk_seg *s, qembed_error *err) {
    const qe_config *cfg = s->fw->cfg;
    const uint64_t H = (uint64_t)cfg->hidden_size, D = (uint64_t)cfg->head_dim;
    const uint64_t nb = 4 * ((uint64_t)cfg->n_layers * (2 * H + 2 * D) + H);
    QE_TRY(qe_vk_buf_create(s->vk, nb, &s->norms, err));
    QE_TRY(qe_vk_upload(s->vk, &s->norms, 0, s->fw->norm_data, nb, err));
    for (int l = s->first; l < s->end; l++) {
        for (int i = 0; i < W_COUNT; i++) {
            const qe_tensor *t = layer_tensor(&s->fw->w->layers[l], i);
            /* vk_supports judged the embedding's dtype; a GGUF may mix types
             * (an F16 embedding over Q4_K layers): refuse here too, and the
             * segment falls back to the CPU */
            QE_FAIL_IF(t->dtype != QE_F32 && t->dtype != QE_F16 && t->dtype != QE_BF16, err,
                       QEMBED_ERR_UNSUPPORTED,
                       "tensor \"%s\" is %s; the Vulkan shaders take f32, f16 and bf16 weights", t->name,
                       qe_dtype_name(t->dtype));
            uint64_t bytes = qe_tensor_bytes(t);
            qe_vk_buf *b = &s->w[l - s->first][i];
            QE_TRY(qe_vk_buf_create(s->vk, bytes, b, err));
            QE_TRY(qe_vk_upload(s->vk, b, 0, t->data, bytes, err));
        }
    }
    return QEMBED_OK;
}

static qembed_status vk_seg_load(const qe_device *dev, const qe_fwd_weights *fw, int first, int end,
                                 qe_threadpool **pool, const qe_logger *lg, void **out, qembed_error *err) {
    *out = NULL;
    if (test_fault("load", err)) return QEMBED_ERR_INTERNAL;
    vk_seg *s = calloc(1, sizeof *s);
    QE_FAIL_IF(!s, err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory");
    s->fw = fw;
    s->first = first;
    s->end = end;
    s->w = calloc((size_t)(end - first > 0 ? end - first : 1), sizeof *s->w);
    qembed_status st =
        s->w ? qe_vk_open(dev->index, &s->vk, err) : qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == QEMBED_OK) st = seg_upload(s, err);
    if (st != QEMBED_OK) {
        vk_seg_free(s);
        return st;
    }
    char b1[32];
    QE_INFO(lg, "%s: layers %d-%d uploaded (%s of device memory)", dev->name, first, end - 1,
            qe_fmt_bytes(s->vk->allocated, b1, sizeof b1));
    *out = s;
    return QEMBED_OK;
}

void qe_vk_seg_stats(const void *seg, qe_vk_stats *out) {
    const vk_seg *s = seg;
    memset(out, 0, sizeof *out);
    if (!s || !s->vk) return;
    pthread_mutex_lock(&s->vk->lock);
    out->bytes = s->vk->allocated;
    out->allocs = s->vk->n_allocs;
    out->desc_writes = s->vk->n_desc_writes;
    pthread_mutex_unlock(&s->vk->lock);
}

/* ---- context level: the workspace ---- */

typedef struct vk_work {
    vk_seg *seg;
    int cap;
    int mlp_rows;
    qe_vk_buf x, xn, q, k, v, gate, up, cs, sn, pos, sst;
    int *pos_h, *sst_h;    /* (cap) host staging of the batch's row tables */
    VkBufferCopy *regions; /* (cap) last-row copies of the last layer */
} vk_work;

static void vk_work_free(void *p) {
    vk_work *w = p;
    if (!w) return;
    qe_vk *vk = w->seg->vk;
    qe_vk_buf *all[] = {&w->x,  &w->xn, &w->q,  &w->k,   &w->v,  &w->gate,
                        &w->up, &w->cs, &w->sn, &w->pos, &w->sst};
    /* Under the lock: freeing a buffer empties the device's descriptor cache,
     * which another context on this segment may be using. */
    pthread_mutex_lock(&vk->lock);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) qe_vk_buf_free(vk, all[i]);
    pthread_mutex_unlock(&vk->lock);
    free(w->pos_h);
    free(w->sst_h);
    free(w->regions);
    free(w);
}

static qembed_status work_alloc(vk_work *w, qembed_error *err) {
    qe_vk *vk = w->seg->vk;
    const qe_config *cfg = w->seg->fw->cfg;
    vk_sizes s = sizes_for(cfg, (size_t)w->cap);
    QE_TRY(qe_vk_buf_create(vk, s.x, &w->x, err));
    QE_TRY(qe_vk_buf_create(vk, s.x, &w->xn, err));
    QE_TRY(qe_vk_buf_create(vk, s.q, &w->q, err));
    QE_TRY(qe_vk_buf_create(vk, s.kv, &w->k, err));
    QE_TRY(qe_vk_buf_create(vk, s.kv, &w->v, err));
    QE_TRY(qe_vk_buf_create(vk, s.mlp, &w->gate, err));
    QE_TRY(qe_vk_buf_create(vk, s.mlp, &w->up, err));
    QE_TRY(qe_vk_buf_create(vk, s.rope, &w->cs, err));
    QE_TRY(qe_vk_buf_create(vk, s.rope, &w->sn, err));
    QE_TRY(qe_vk_buf_create(vk, s.ints, &w->pos, err));
    QE_TRY(qe_vk_buf_create(vk, s.ints, &w->sst, err));
    w->pos_h = malloc((size_t)w->cap * sizeof(int));
    w->sst_h = malloc((size_t)w->cap * sizeof(int));
    w->regions = malloc((size_t)w->cap * sizeof(VkBufferCopy));
    QE_FAIL_IF(!w->pos_h || !w->sst_h || !w->regions, err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory");
    /* The CPU's own RoPE table, so both backends rotate by the same angles. */
    float *c = malloc(s.rope), *sn = malloc(s.rope);
    qembed_status st = QEMBED_ERR_OUT_OF_MEMORY;
    if (c && sn) {
        qe_op_rope_table(cfg->rope_theta, cfg->head_dim, w->cap, c, sn);
        st = qe_vk_upload(vk, &w->cs, 0, c, s.rope, err);
        if (st == QEMBED_OK) st = qe_vk_upload(vk, &w->sn, 0, sn, s.rope, err);
    } else {
        qe_error(err, st, "out of memory for the RoPE tables");
    }
    free(c);
    free(sn);
    return st;
}

static qembed_status vk_work_create(void *seg, int cap, qe_fwd_state *host, void **out, qembed_error *err) {
    *out = NULL;
    if (test_fault("work", err)) return QEMBED_ERR_OUT_OF_MEMORY;
    vk_work *w = calloc(1, sizeof *w);
    QE_FAIL_IF(!w, err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory");
    w->seg = seg;
    w->cap = cap;
    w->mlp_rows = cap < VK_MLP_ROWS ? cap : VK_MLP_ROWS;
    pthread_mutex_lock(&w->seg->vk->lock);
    qembed_status st = work_alloc(w, err);
    pthread_mutex_unlock(&w->seg->vk->lock);
    if (st != QEMBED_OK) {
        vk_work_free(w);
        return st;
    }
    *out = w;
    return QEMBED_OK;
}

/* ---- one batch through the segment's layers ---- */

static qembed_status record_layer(vk_work *w, int l, uint32_t T, qembed_error *err) {
    const vk_seg *s = w->seg;
    qe_vk *vk = s->vk;
    const qe_fwd_weights *fw = s->fw;
    const qe_config *cfg = fw->cfg;
    const qe_layer_weights *lw = &fw->w->layers[l];
    const qe_layer_norms *ln = &fw->layers[l];
    const qe_vk_buf *W = s->w[l - s->first];
    const uint32_t H = (uint32_t)cfg->hidden_size, D = (uint32_t)cfg->head_dim;
    const uint32_t I = (uint32_t)cfg->intermediate_size;
    const uint32_t nh = (uint32_t)cfg->n_heads, nkv = (uint32_t)cfg->n_kv_heads;
    const uint32_t QD = nh * D, KD = nkv * D;
    const float eps = (float)cfg->rms_norm_eps;
#define NOFF(p) ((uint32_t)((p)-fw->norm_data))

    /* attention block */
    QE_TRY(qe_vk_rmsnorm(vk, &w->x, 0, H, &w->xn, 0, H, T, H, &s->norms, NOFF(ln->attn), eps, err));
    QE_TRY(qe_vk_matmul(vk, &w->xn, 0, H, T, H, &W[W_Q], lw->wq.dtype, QD, &w->q, 0, QD, 0, err));
    QE_TRY(qe_vk_matmul(vk, &w->xn, 0, H, T, H, &W[W_K], lw->wk.dtype, KD, &w->k, 0, KD, 0, err));
    QE_TRY(qe_vk_matmul(vk, &w->xn, 0, H, T, H, &W[W_V], lw->wv.dtype, KD, &w->v, 0, KD, 0, err));
    QE_TRY(qe_vk_rmsnorm(vk, &w->q, 0, D, &w->q, 0, D, T * nh, D, &s->norms, NOFF(ln->q), eps, err));
    QE_TRY(qe_vk_rmsnorm(vk, &w->k, 0, D, &w->k, 0, D, T * nkv, D, &s->norms, NOFF(ln->k), eps, err));
    QE_TRY(qe_vk_rope(vk, &w->q, &w->k, &w->cs, &w->sn, &w->pos, T, nh, nkv, D, err));
    QE_TRY(qe_vk_attention(vk, &w->q, &w->k, &w->v, &w->sst, T, nh, nkv, D, err));
    /* o projection added onto the residual stream */
    QE_TRY(qe_vk_matmul(vk, &w->q, 0, QD, T, QD, &W[W_O], lw->wo.dtype, H, &w->x, 0, H, 1, err));

    /* MLP block in row chunks; the down projection adds onto the residual */
    QE_TRY(qe_vk_rmsnorm(vk, &w->x, 0, H, &w->xn, 0, H, T, H, &s->norms, NOFF(ln->ffn), eps, err));
    for (uint32_t r0 = 0; r0 < T; r0 += (uint32_t)w->mlp_rows) {
        uint32_t m = T - r0 < (uint32_t)w->mlp_rows ? T - r0 : (uint32_t)w->mlp_rows;
        QE_TRY(qe_vk_matmul(vk, &w->xn, r0 * H, H, m, H, &W[W_GATE], lw->w_gate.dtype, I, &w->gate, 0, I, 0,
                            err));
        QE_TRY(qe_vk_matmul(vk, &w->xn, r0 * H, H, m, H, &W[W_UP], lw->w_up.dtype, I, &w->up, 0, I, 0, err));
        QE_TRY(qe_vk_swiglu(vk, &w->gate, &w->up, m * I, err));
        QE_TRY(qe_vk_matmul(vk, &w->gate, 0, I, m, I, &W[W_DOWN], lw->w_down.dtype, H, &w->x, r0 * H, H, 1,
                            err));
    }
#undef NOFF
    return QEMBED_OK;
}

static qembed_status run_locked(vk_work *w, qe_hidden *h, int first, int end, qembed_error *err) {
    qe_vk *vk = w->seg->vk;
    const qe_config *cfg = w->seg->fw->cfg;
    const uint32_t H = (uint32_t)cfg->hidden_size;
    QE_FAIL_IF(h->compacted || h->rows != h->n_tok || h->n_tok > w->cap, err, QEMBED_ERR_INTERNAL,
               "vulkan: a batch of %d rows (compacted %d) for a workspace of %d tokens", h->rows,
               h->compacted, w->cap);
    const uint32_t T = (uint32_t)h->n_tok;
    for (int s = 0; s < h->n_seq; s++)
        for (int r = h->seq_off[s]; r < h->seq_off[s + 1]; r++) {
            w->pos_h[r] = r - h->seq_off[s];
            w->sst_h[r] = h->seq_off[s];
        }
    QE_TRY(qe_vk_upload(vk, &w->pos, 0, w->pos_h, (uint64_t)T * sizeof(int), err));
    QE_TRY(qe_vk_upload(vk, &w->sst, 0, w->sst_h, (uint64_t)T * sizeof(int), err));
    QE_TRY(qe_vk_upload(vk, &w->x, 0, h->x, (uint64_t)T * H * sizeof(float), err));
    QE_TRY(qe_vk_begin(vk, err));
    for (int l = first; l < end; l++) QE_TRY(record_layer(w, l, T, err));
    const int last = end == cfg->n_layers;
    if (last) {
        /* Only each sequence's last row leaves the device: gathered into xn. */
        for (int s = 0; s < h->n_seq; s++)
            w->regions[s] = (VkBufferCopy){.srcOffset = (uint64_t)(h->seq_off[s + 1] - 1) * H * sizeof(float),
                                           .dstOffset = (uint64_t)s * H * sizeof(float),
                                           .size = (uint64_t)H * sizeof(float)};
        QE_TRY(qe_vk_copy(vk, &w->x, &w->xn, w->regions, (uint32_t)h->n_seq, err));
    }
    QE_TRY(qe_vk_submit(vk, err));
    if (last) {
        QE_TRY(qe_vk_download(vk, &w->xn, 0, h->x, (uint64_t)h->n_seq * H * sizeof(float), err));
        h->rows = h->n_seq;
        h->compacted = 1;
    } else {
        QE_TRY(qe_vk_download(vk, &w->x, 0, h->x, (uint64_t)T * H * sizeof(float), err));
    }
    return QEMBED_OK;
}

static qembed_status vk_run(void *work, qe_hidden *h, int first, int end, qembed_error *err) {
    vk_work *w = work;
    if (test_fault("run", err)) return QEMBED_ERR_INTERNAL;
    pthread_mutex_lock(&w->seg->vk->lock);
    qembed_status s = run_locked(w, h, first, end, err);
    pthread_mutex_unlock(&w->seg->vk->lock);
    return s;
}

const qe_backend qe_backend_vulkan = {
    .api_version = QE_BACKEND_API_VERSION,
    .name = "vulkan",
    .workspace_bytes = vk_workspace_bytes,
    .supports = vk_supports,
    .embed_bytes = vk_embed_bytes,
    .seg_load = vk_seg_load,
    .seg_free = vk_seg_free,
    .work_create = vk_work_create,
    .work_free = vk_work_free,
    .run = vk_run,
};

#else /* built without the Vulkan headers: no Vulkan devices */

int qe_vk_discover(const qembed_model_params *params, const qe_logger *lg, qe_devices *out) {
    QE_DEBUG(lg, "device: this build has no Vulkan support (no Vulkan headers at build time)");
    return 0;
}

const qe_backend qe_backend_vulkan = {.api_version = QE_BACKEND_API_VERSION, .name = "vulkan"};

void qe_vk_seg_stats(const void *seg, qe_vk_stats *out) {
    (void)seg;
    memset(out, 0, sizeof *out);
}

#endif
