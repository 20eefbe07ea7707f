/* bf16 mode's attention micro-kernels on AVX512-BF16 (vdpbf16ps), for the
 * tiled attention of attention.c: chosen there (with its softmax_avx512) when
 * args->bf16 is set, the level is QE_ISA_AVX512_BF16 or higher, and the AMX
 * tile body (attention_amx.h) cannot run. Exact mode never runs them.
 *
 * Layouts: attention.c's f32 panels (see there) with the depth of each
 * product halved, each float-sized slot holding a PAIR of bf16 (element 2i
 * in the low half, 2i+1 in the high half), the pair vdpbf16ps multiplies and
 * adds into one f32 lane:
 *   qp: panel [qd][MR] pairs, qd = (hd + 1) / 2: pair i = dims 2i, 2i+1;
 *   kp: panel [qd][NR] pairs of each key;
 *   vp: column panel [TK / 2][NR] pairs: slot (i, c) = keys 2i, 2i+1 of column c;
 *   p:  row [TK / 2] pairs of probabilities, written over the row's scores.
 * Pads (an odd head_dim's last pair, keys past a tile's end, masked keys'
 * probabilities) are zero. Rounding: qe_f32_to_bf16's (nearest even) for q,
 * k, v and p, as attention_amx.c; products accumulate in f32. Only x86-64. */
#ifndef QE_ATTENTION_BF16_H
#define QE_ATTENTION_BF16_H

#include <stddef.h>

/* one query vector (hd floats; NULL: a padding vector, all zero) into its
 * panel column dst: dst[i * MR] = pair i */
void qe_attn_bf16_pack_q(const float *src, int hd, float *dst);

/* keys [0, nk) (rows ld floats apart) into kp's panels; keys nk.. of the
 * last panel zero, panels past nk not written (no kernel reads them) */
void qe_attn_bf16_pack_k(const float *k, size_t ld, int nk, int hd, float *kp);

/* keys [0, nk) of v into vp's column panels (ceil(hd / NR) of them, columns
 * past hd zero); the pair holding key nk - 1 is completed with a zero */
void qe_attn_bf16_pack_v(const float *v, size_t ld, int nk, int hd, float *vp);

/* a row of TK probabilities (keys j < nv valid) to TK / 2 pairs in place,
 * keys >= nv zero (finite: the P V kernel relies on it, see there) */
void qe_attn_bf16_round_p(float *s, int nv);

/* attention.c's qk on pairs: s[r * TK + c] = sum_i qp.pair(i, r) . kp.pair(i, c)
 * over i < qd, one f32 vdpbf16ps chain per output */
void qe_attn_bf16_qk(const float *qp, const float *kp, int qd, float *s);

/* attention.c's pv on pairs: keys j < jf for every row, then jf <= j < jm
 * for the rows with j < nv[r] (a masked key never reaches a row) */
void qe_attn_bf16_pv(float *o, size_t ldo, const float *corr, const float *p, const float *vp, const int *nv,
                     int jf, int jm);

#endif
