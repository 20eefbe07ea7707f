/* The instruction-set level the kernels use: what the CPU offers
 * (cpu_features.c), plus oneDNN for the AMX level, lowered past any level
 * whose products fail the start-up check, capped by QEMBED_ISA.
 *
 * QEMBED_ISA=scalar|avx2|avx512|avx512bf16|amx caps the level (never raises it
 * above what the CPU supports): to compare variants or to work around a
 * suspected kernel bug without rebuilding. An unknown value is ignored.
 *
 * Before a SIMD level is used its products are checked once against the
 * scalar reference on this CPU (isa_check.c); a level that disagrees is
 * skipped for the next lower one and reported by qe_cpu_isa_note. */
#include "isa_check.h"
#include "kernels.h"
#include "matmul_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static qe_isa g_hw = QE_ISA_SCALAR, g_capped = QE_ISA_SCALAR;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static char g_note[256];

static void detect_once(void) {
    int amx = 0;
    g_hw = qe_cpu_features(&amx);
    /* the tiles are driven through oneDNN: the level needs the library */
    if (g_hw == QE_ISA_AVX512_BF16 && amx && qe_onednn_available()) g_hw = QE_ISA_AMX;
    /* the self-check: g_hw is lowered past any level that fails, so that no
     * caller (not even one forcing a level, as the tests do) can reach it */
    qe_isa found = g_hw;
    char failed[64] = ""; /* at most "amx, avx512bf16, avx512, avx2" */
    while (g_hw > QE_ISA_SCALAR && qe_isa_check(g_hw) < 0) {
        size_t used = strlen(failed);
        snprintf(failed + used, sizeof failed - used, "%s%s", used ? ", " : "", qe_isa_name(g_hw));
        g_hw = (qe_isa)(g_hw - 1);
    }
    if (failed[0]) {
        snprintf(
            g_note, sizeof g_note,
            "the CPU offers %s, but the %s kernels (products, attention or norms) disagree with the scalar "
            "reference on it: "
            "using %s",
            qe_isa_name(found), failed, qe_isa_name(g_hw));
    }
    g_capped = g_hw;
    const char *env = getenv("QEMBED_ISA");
    if (env && *env) {
        qe_isa cap = g_hw;
        if (qe_isa_parse(env, &cap) == 0 && cap < g_hw) g_capped = cap;
    }
}

qe_isa qe_cpu_isa(void) {
    pthread_once(&g_once, detect_once);
    return g_capped;
}

const char *qe_cpu_isa_note(void) {
    pthread_once(&g_once, detect_once);
    return g_note;
}

qe_isa qe_cpu_isa_hw(void) {
    pthread_once(&g_once, detect_once);
    return g_hw;
}

const char *qe_isa_name(qe_isa isa) {
    switch (isa) {
        case QE_ISA_SCALAR: return "scalar";
        case QE_ISA_AVX2: return "avx2";
        case QE_ISA_AVX512: return "avx512";
        case QE_ISA_AVX512_BF16: return "avx512bf16";
        case QE_ISA_AMX: return "amx";
    }
    return "unknown";
}

int qe_isa_parse(const char *s, qe_isa *out) {
    static const qe_isa all[] = {QE_ISA_SCALAR, QE_ISA_AVX2, QE_ISA_AVX512, QE_ISA_AVX512_BF16, QE_ISA_AMX};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, qe_isa_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}
