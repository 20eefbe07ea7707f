/* Run-time check of the SIMD matrix products against the scalar reference,
 * once per process before the first product, on the CPU that will run them.
 *
 * Why: the AVX-512 and AVX512-BF16 variants could not be run on the machines
 * qembed was developed and tested on (AVX2 only), and a wrong product gives
 * plausible-looking but wrong vectors, silently. So every level this CPU
 * offers above scalar is first tried on a few small products (tails in m, k
 * and n; dot and GEMM forms; several k-blocks; every weight dtype; both
 * modes) and compared with the scalar reference under the kernel tests'
 * tolerance. The highest level that passes is used; a level that fails is
 * reported (qe_cpu_isa_note) and never used. About 3 ms per level. */
#include "isa_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matmul_internal.h"

typedef struct shape {
    int m, k, n;
} shape;

/* 97 rows reach the AVX2 GEMM form (>= 80), 1100 > one AVX-512 k-block */
static const shape g_shapes[] = {{1, 67, 9}, {5, 1100, 13}, {97, 160, 19}};

static unsigned long long g_rng = 0x9e3779b97f4a7c15ull;
static float rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* One product by `variant` against the scalar reference: 0 when within
 * 1e-5 * sum |x w| everywhere (as tests/kernels), -1 otherwise. */
static int check_one(qe_mm_variant variant, const shape *s, qe_dtype dt, qe_mm_mode mode, float *x, void *w, float *y,
                     float *yr) {
    const size_t nx = (size_t)s->m * s->k, nw = (size_t)s->n * s->k, ny = (size_t)s->m * s->n;
    for (size_t i = 0; i < nx; i++) x[i] = rnd();
    for (size_t i = 0; i < nw; i++) {
        float v = rnd();
        if (dt == QE_BF16) ((uint16_t *)w)[i] = qe_f32_to_bf16(v);
        else if (dt == QE_F16) ((uint16_t *)w)[i] = qe_f32_to_f16(v);
        else ((float *)w)[i] = v;
    }
    qe_mm_args a = {NULL, mode, x, (size_t)s->k, s->m, s->k, w, dt, s->n, yr, (size_t)s->n};
    qe_matmul_scalar(&a);
    for (size_t i = 0; i < ny; i++) y[i] = NAN;
    a.y = y;
    if (variant(&a) != 0) return 0; /* not applicable (e.g. vdpbf16ps needs bf16 weights): the caller falls back */
    for (int i = 0; i < s->m; i++)
        for (int j = 0; j < s->n; j++) {
            double b = 0;
            for (int p = 0; p < s->k; p++)
                b += fabs((double)x[(size_t)i * s->k + p] * qe_tensor_get_f32(w, dt, (size_t)j * s->k + p));
            double d = fabs((double)y[(size_t)i * s->n + j] - (double)yr[(size_t)i * s->n + j]);
            if (!(d <= 1e-5 * b + 1e-30)) return -1; /* NaN fails too */
        }
    return 0;
}

int qe_isa_check(qe_isa isa) {
    switch (isa) {
    case QE_ISA_AMX: return qe_mm_variant_check(qe_matmul_onednn);
    case QE_ISA_AVX512_BF16: return qe_mm_variant_check(qe_matmul_avx512bf16);
    case QE_ISA_AVX512: return qe_mm_variant_check(qe_matmul_avx512);
    case QE_ISA_AVX2: return qe_mm_variant_check(qe_matmul_avx2);
    case QE_ISA_SCALAR: break;
    }
    return 0;
}

int qe_mm_variant_check(qe_mm_variant variant) {
    size_t mx = 0, my = 0;
    for (size_t i = 0; i < sizeof g_shapes / sizeof *g_shapes; i++) {
        const shape *s = &g_shapes[i];
        size_t a = (size_t)s->m * s->k, b = (size_t)s->n * s->k, c = (size_t)s->m * s->n;
        if (a > mx) mx = a;
        if (b > mx) mx = b;
        if (c > my) my = c;
    }
    float *x = malloc(mx * sizeof *x), *w = malloc(mx * sizeof *w);
    float *y = malloc(my * sizeof *y), *yr = malloc(my * sizeof *yr);
    int rc = 0;
    if (!x || !w || !y || !yr) {
        rc = 1; /* cannot check: say so, the caller keeps the level */
    } else {
        for (size_t i = 0; rc == 0 && i < sizeof g_shapes / sizeof *g_shapes; i++)
            for (int dt = 0; rc == 0 && dt < 3; dt++)
                for (int mode = 0; rc == 0 && mode < 2; mode++)
                    rc = check_one(variant, &g_shapes[i], (qe_dtype)dt, (qe_mm_mode)mode, x, w, y, yr);
    }
    free(x);
    free(w);
    free(y);
    free(yr);
    return rc;
}
