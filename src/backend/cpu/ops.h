/* Element-wise and row-wise operations of the Qwen3 forward pass, in f32.
 * Plain C: these are a few percent of the work next to the matrix products
 * (qe_matmul). Each "rows" function handles rows [r0, r1) so callers can split
 * rows over the thread pool. */
#ifndef QE_OPS_H
#define QE_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/kernels.h"
#include "model/tensor.h"

/* Copies embedding rows: out[i] = E[ids[i]] widened to f32.
 * E: (vocab, hidden) in `dt`; out: (n, hidden). ids must be in range. */
void qe_op_embed_rows(const void *E, qe_dtype dt, int hidden, const int32_t *ids, size_t n, float *out);

/* RMSNorm as Hugging Face Qwen3RMSNorm: y = w * (x / sqrt(mean(x^2) + eps)),
 * the weight multiplying directly (not 1 + w). x and y may alias.
 * x, y: (rows, d) with row strides ldx, ldy; w: (d), widened to f32 once at load. */
void qe_op_rmsnorm_rows(const float *x, size_t ldx, float *y, size_t ldy, size_t r0, size_t r1, int d,
                        const float *w, float eps);

/* The same with the SIMD body of `isa` (AVX-512F from QE_ISA_AVX512 on):
 * the squares' sum in double in another order, so the result may differ
 * from qe_op_rmsnorm_rows in the last bit; the forward pass uses it in bf16
 * mode only (exact mode keeps qe_op_rmsnorm_rows). Tested against it in
 * tests/kernels. */
void qe_op_rmsnorm_rows_isa(qe_isa isa, const float *x, size_t ldx, float *y, size_t ldy, size_t r0,
                            size_t r1, int d, const float *w, float eps);

/* The RoPE tables: cos/sin (n_pos, head_dim/2) for positions 0..n_pos-1,
 * computed as Hugging Face does in float32: inv_freq[i] = 1 / theta^(2i/d),
 * angle = (float)pos * inv_freq[i]. */
void qe_op_rope_table(double theta, int head_dim, int n_pos, float *cos_t, float *sin_t);

/* Rotate-half (NEOX) RoPE on one head vector v (head_dim) at the given table
 * row (half = head_dim/2): v[i], v[i+half] rotated by angle i. */
void qe_op_rope_head(float *v, int head_dim, const float *cos_row, const float *sin_row);

/* SwiGLU: g[i] = silu(g[i]) * u[i], over n values. */
void qe_op_swiglu(float *g, const float *u, size_t n);
/* The same with the SIMD body of `isa` (AVX-512F from QE_ISA_AVX512 on, else
 * qe_op_swiglu): exp by a Cephes polynomial within 2 ulp of expf, 16 lanes;
 * it was a tenth of a batch's time between the products (libm expf per
 * element). Tested against qe_op_swiglu in tests/kernels. */
void qe_op_swiglu_isa(qe_isa isa, float *g, const float *u, size_t n);

/* The residual add then the next RMSNorm of the same rows: x += delta, and
 * when w is given y = RMSNorm(x) with the body of `isa`, in one pass over
 * x and delta (no pass at all between the add and the norm's sum). The
 * result is bit for bit that of qe_op_add on each row then
 * qe_op_rmsnorm_rows_isa (tests/kernels checks it). x, delta, y: rows
 * [r0, r1) of d values with strides ldx, ldd, ldy; y may alias delta (the
 * forward pass writes the norm over the product it adds), not x. */
void qe_op_add_rmsnorm_rows_isa(qe_isa isa, float *x, size_t ldx, const float *delta, size_t ldd, float *y,
                                size_t ldy, size_t r0, size_t r1, int d, const float *w, float eps);

/* Qwen3's q/k step for one token's row of n_heads head vectors (d each,
 * contiguous), in place: RMSNorm of each head (weight w, d values) then
 * RoPE at the table row cos_row/sin_row. Bit for bit qe_op_rmsnorm_rows_isa
 * over the heads then qe_op_rope_head on each (tests/kernels checks it);
 * the AVX-512 form (d a multiple of 32 up to 256) keeps a head in
 * registers between the two, and RoPE in 16 lanes was a scalar pass. */
void qe_op_rmsnorm_rope_heads_isa(qe_isa isa, float *v, int n_heads, int d, const float *w, float eps,
                                  const float *cos_row, const float *sin_row);

/* y[i] += x[i] over n values. */
void qe_op_add(float *y, const float *x, size_t n);

/* Dot product with several independent accumulators (f32). */
float qe_op_dot(const float *a, const float *b, int n);

#endif
