/* The Q8 activation block's size: how many bytes of quantized activations
 * the int8 products (Q8_0 weights, and Q4_K/Q6_K outside exact mode) need
 * for a model's shapes, so that a context reserves exactly that on its pool
 * and a model without such weights reserves nothing. */
#include "kernels.h"
#include "matmul_internal.h"
#include "matmul_kq.h"
#include "matmul_q8.h"
#include "model/weights.h"

size_t qe_q8_block_bytes(int k, int rows) {
    if (k <= 0 || k % 32 != 0 || rows <= 0) return 0;
    const size_t per_tile = (size_t)(k / 32) * QE_Q8_REC;
    size_t tiles = QE_MM_Q8ACT / per_tile; /* one chunk's tiles (matmul_q8.c, matmul_kq8.c) */
    size_t row_tiles = ((size_t)rows + QE_Q8_TILE - 1) / QE_Q8_TILE;
    if (row_tiles < tiles) tiles = row_tiles;
    return tiles * per_tile;
}

/* Whether a product on weights of type t packs its activations into the block. */
static int packs_activations(qe_dtype t, int exact) {
    return t == QE_Q8_0 || (!exact && qe_kq8_dtype(t));
}

size_t qe_q8_block_bytes_for(const qe_weights *w, int max_rows, int exact) {
    size_t most = 0;
    for (int l = 0; w && l < w->n_layers; l++) {
        const qe_layer_weights *lw = &w->layers[l];
        const qe_tensor *m[QE_LAYER_MATRICES];
        qe_layer_matrices(lw, m);
        for (int i = 0; i < QE_LAYER_MATRICES; i++) {
            if (!m[i]->data || !packs_activations(m[i]->dtype, exact)) continue;
            size_t b = qe_q8_block_bytes((int)m[i]->shape[1], max_rows);
            if (b > most) most = b;
        }
    }
    return most;
}
