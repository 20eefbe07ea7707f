/* Short microbenchmarks of this machine's own limits, for `qembed bench`:
 * the peak of the instructions a matmul variant uses (vdpbf16ps, f32 FMA),
 * over all threads of a pool, and the DRAM read bandwidth. A bench reports
 * its achieved GFLOP/s as a fraction of these. Each call takes roughly
 * budget_ms (on an idle machine) and returns the best of several rounds;
 * on a shared machine the figures are lower bounds of the true peak. */
#ifndef QE_PEAK_H
#define QE_PEAK_H

#include "kernels.h"

/* GFLOP/s of the compute instructions of `isa`'s matmul variant, counting a
 * multiply-add as 2 flops (vdpbf16ps: 2 pairs per lane = 4 flops per lane):
 *   QE_ISA_AMX: AMX tdpbf16ps (16x16x32 per tile product; what oneDNN runs);
 *   QE_ISA_AVX512_BF16: zmm vdpbf16ps;  QE_ISA_AVX512: zmm vfmadd (f32);
 *   QE_ISA_AVX2: ymm vfmadd (f32);       QE_ISA_SCALAR: scalar f32 multiply + add.
 * isa is lowered to what the CPU supports. 0 on failure. */
double qe_peak_gflops(qe_threadpool *pool, qe_isa isa, double budget_ms);

/* GB/s (1e9 bytes) reading a buffer of four times the last-level cache
 * (256 MiB to 2 GiB: memory, not a cache) with all threads. huge_pages: advise transparent huge pages for the
 * buffer (as the loader may for the weights). 0 on failure. */
double qe_peak_dram_read_gbs(qe_threadpool *pool, int huge_pages, double budget_ms);

#endif
