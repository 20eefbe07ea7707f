#ifndef QE_VK_NO_HEADERS
/* The forward pass's ops on a Vulkan device: push constants and workgroup
 * counts for each shader in shaders/ (their comments give the maths). */
#include <math.h>

#include "backend/vulkan/vk_internal.h"

/* Element-wise shaders loop over their range (grid-stride), so a capped
 * number of 64-wide groups covers any size within the device's limits. */
static uint32_t groups_1d(const qe_vk *vk, uint64_t n) {
    uint64_t g = (n + 63) / 64;
    uint64_t cap = vk->info.max_groups[0] < 65535 ? vk->info.max_groups[0] : 65535;
    if (g > cap) g = cap;
    return g ? (uint32_t)g : 1;
}

qembed_status qe_vk_matmul(qe_vk *vk, const qe_vk_buf *x, uint32_t xoff, uint32_t ldx, uint32_t M, uint32_t K,
                           const qe_vk_buf *w, qe_dtype wt, uint32_t N, const qe_vk_buf *y, uint32_t yoff,
                           uint32_t ldy, int accumulate, qembed_error *err) {
    struct {
        uint32_t M, N, K, ldx, ldy, xoff, yoff, acc;
    } pc = {M, N, K, ldx, ldy, xoff, yoff, accumulate ? 1u : 0u};
    qe_vk_pipe p = wt == QE_F32 ? QE_VKP_MATMUL_F32 : wt == QE_F16 ? QE_VKP_MATMUL_F16 : QE_VKP_MATMUL_BF16;
    const qe_vk_buf *b[3] = {x, w, y};
    return qe_vk_dispatch(vk, p, b, 3, &pc, sizeof pc, (N + 15) / 16, (M + 15) / 16, err);
}

qembed_status qe_vk_rmsnorm(qe_vk *vk, const qe_vk_buf *x, uint32_t xoff, uint32_t ldx, const qe_vk_buf *y,
                            uint32_t yoff, uint32_t ldy, uint32_t rows, uint32_t d, const qe_vk_buf *wbuf,
                            uint32_t woff, float eps, qembed_error *err) {
    struct {
        uint32_t rows, d, ldx, ldy, xoff, yoff, woff;
        float eps;
    } pc = {rows, d, ldx, ldy, xoff, yoff, woff, eps};
    const qe_vk_buf *b[3] = {x, y, wbuf};
    uint32_t g = rows < 65535 ? rows : 65535;
    if (g > vk->info.max_groups[0]) g = vk->info.max_groups[0];
    return qe_vk_dispatch(vk, QE_VKP_RMSNORM, b, 3, &pc, sizeof pc, g, 1, err);
}

qembed_status qe_vk_rope(qe_vk *vk, const qe_vk_buf *q, const qe_vk_buf *k, const qe_vk_buf *cs,
                         const qe_vk_buf *sn, const qe_vk_buf *pos, uint32_t T, uint32_t nh, uint32_t nkv,
                         uint32_t D, qembed_error *err) {
    struct {
        uint32_t T, nh, nkv, D;
    } pc = {T, nh, nkv, D};
    const qe_vk_buf *b[5] = {q, k, cs, sn, pos};
    return qe_vk_dispatch(vk, QE_VKP_ROPE, b, 5, &pc, sizeof pc,
                          groups_1d(vk, (uint64_t)T * (nh + nkv) * (D / 2)), 1, err);
}

qembed_status qe_vk_swiglu(qe_vk *vk, const qe_vk_buf *g, const qe_vk_buf *u, uint32_t n, qembed_error *err) {
    const qe_vk_buf *b[2] = {g, u};
    return qe_vk_dispatch(vk, QE_VKP_SWIGLU, b, 2, &n, sizeof n, groups_1d(vk, n), 1, err);
}

qembed_status qe_vk_add(qe_vk *vk, const qe_vk_buf *y, const qe_vk_buf *x, uint32_t n, qembed_error *err) {
    const qe_vk_buf *b[2] = {y, x};
    return qe_vk_dispatch(vk, QE_VKP_ADD, b, 2, &n, sizeof n, groups_1d(vk, n), 1, err);
}

qembed_status qe_vk_attention(qe_vk *vk, const qe_vk_buf *q, const qe_vk_buf *k, const qe_vk_buf *v,
                              const qe_vk_buf *seq_start, uint32_t T, uint32_t nh, uint32_t nkv, uint32_t D,
                              qembed_error *err) {
    QE_FAIL_IF(D > QE_VK_MAX_HEAD_DIM || nkv == 0 || nh % nkv, err, QEMBED_ERR_INVALID_ARGUMENT,
               "vulkan attention: head_dim %u (at most %d) or heads %u/%u unsupported", D, QE_VK_MAX_HEAD_DIM,
               nh, nkv);
    struct {
        uint32_t T, nh, nkv, D;
        float scale;
    } pc = {T, nh, nkv, D, 1.0f / sqrtf((float)D)};
    const qe_vk_buf *b[4] = {q, k, v, seq_start};
    return qe_vk_dispatch(vk, QE_VKP_ATTENTION, b, 4, &pc, sizeof pc, (T + 15) / 16, nh, err);
}
#endif
