#include "backend/cpu/attention.h"

#include <math.h>
#include <string.h>

#include "backend/cpu/ops.h"

size_t qe_attn_scratch_floats(int head_dim) {
    /* q tile, accumulators, scores, running max and sum */
    return (size_t)QE_ATTN_TILE_Q * head_dim * 2 + (size_t)QE_ATTN_TILE_Q * QE_ATTN_TILE_K +
           2 * QE_ATTN_TILE_Q;
}

/* Task t = (query tile, head): tile index = t / n_heads, found in tile_off by
 * binary search (tile_off[s] = first tile of sequence s). */
static void attn_task(void *arg, int task, int thread) {
    const qe_attn_args *a = arg;
    const int hd = a->head_dim;
    const int h = task % a->n_heads;
    const int tile = task / a->n_heads;
    int lo = 0, hi = a->n_seq - 1;
    while (lo < hi) { /* last s with tile_off[s] <= tile */
        int mid = (lo + hi + 1) / 2;
        if (a->tile_off[mid] <= tile) lo = mid;
        else hi = mid - 1;
    }
    const int s = lo;
    const size_t base = (size_t)a->seq_off[s];
    const int len = a->seq_off[s + 1] - a->seq_off[s];
    int r0, r1; /* query rows within the sequence */
    if (a->last_only) {
        r0 = len - 1;
        r1 = len;
    } else {
        r0 = (tile - a->tile_off[s]) * QE_ATTN_TILE_Q;
        r1 = r0 + QE_ATTN_TILE_Q < len ? r0 + QE_ATTN_TILE_Q : len;
    }
    const int nq = r1 - r0;
    const int kvh = h / (a->n_heads / a->n_kv_heads);
    const float scale = 1.0f / sqrtf((float)hd);

    float *qt = a->scratch + (size_t)thread * qe_attn_scratch_floats(hd); /* (TILE_Q, hd) */
    float *acc = qt + (size_t)QE_ATTN_TILE_Q * hd;                          /* (TILE_Q, hd) */
    float *sc = acc + (size_t)QE_ATTN_TILE_Q * hd;                          /* (TILE_Q, TILE_K) */
    float *mx = sc + (size_t)QE_ATTN_TILE_Q * QE_ATTN_TILE_K;               /* (TILE_Q) */
    float *sum = mx + QE_ATTN_TILE_Q;                                       /* (TILE_Q) */

    for (int i = 0; i < nq; i++) {
        memcpy(qt + (size_t)i * hd, a->q + (base + r0 + i) * a->ldq + (size_t)h * hd,
               (size_t)hd * sizeof(float));
        memset(acc + (size_t)i * hd, 0, (size_t)hd * sizeof(float));
        mx[i] = -INFINITY;
        sum[i] = 0.0f;
    }
    /* Causal: query row r sees keys 0..r; the tile needs keys [0, r1). */
    for (int c0 = 0; c0 < r1; c0 += QE_ATTN_TILE_K) {
        int c1 = c0 + QE_ATTN_TILE_K < r1 ? c0 + QE_ATTN_TILE_K : r1;
        for (int i = 0; i < nq; i++) {
            int r = r0 + i;
            int jend = c1 < r + 1 ? c1 : r + 1; /* keys [c0, jend) visible to row r */
            if (jend <= c0) continue;
            const float *qi = qt + (size_t)i * hd;
            float *si = sc + (size_t)i * QE_ATTN_TILE_K;
            float tmax = -INFINITY;
            for (int j = c0; j < jend; j++) {
                const float *kj = a->k + (base + j) * a->ldkv + (size_t)kvh * hd;
                float x = qe_op_dot(qi, kj, hd) * scale;
                si[j - c0] = x;
                if (x > tmax) tmax = x;
            }
            float mnew = mx[i] > tmax ? mx[i] : tmax;
            /* exp(-inf) = 0 on the first tile; mnew is finite unless the scores are not */
            float corr = mx[i] == -INFINITY ? 0.0f : expf(mx[i] - mnew);
            float *ai = acc + (size_t)i * hd;
            if (corr != 1.0f)
                for (int d = 0; d < hd; d++) ai[d] *= corr;
            float ps = 0.0f;
            for (int j = c0; j < jend; j++) {
                float p = expf(si[j - c0] - mnew);
                ps += p;
                const float *vj = a->v + (base + j) * a->ldkv + (size_t)kvh * hd;
                for (int d = 0; d < hd; d++) ai[d] += p * vj[d];
            }
            sum[i] = sum[i] * corr + ps;
            mx[i] = mnew;
        }
    }
    for (int i = 0; i < nq; i++) {
        float *o = a->q + (base + r0 + i) * a->ldq + (size_t)h * hd;
        float inv = 1.0f / sum[i];
        const float *ai = acc + (size_t)i * hd;
        for (int d = 0; d < hd; d++) o[d] = ai[d] * inv;
    }
}

void qe_attention(qe_pool *pool, const qe_attn_args *a) {
    int tiles = 0;
    for (int s = 0; s < a->n_seq; s++) {
        a->tile_off[s] = tiles;
        int len = a->seq_off[s + 1] - a->seq_off[s];
        tiles += a->last_only ? 1 : (len + QE_ATTN_TILE_Q - 1) / QE_ATTN_TILE_Q;
    }
    a->tile_off[a->n_seq] = tiles;
    qe_pool_run(pool, attn_task, (void *)a, tiles * a->n_heads);
}
