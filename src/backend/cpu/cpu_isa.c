/* Instruction-set detection: cpuid for what the core implements, xgetbv for
 * what the operating system saves on a context switch (a hypervisor may
 * report AVX-512 in cpuid yet leave the ZMM state disabled in XCR0; then the
 * instructions fault, so XCR0 decides).
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

#include <stdio.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static qe_isa detect_hw(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return QE_ISA_SCALAR;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return QE_ISA_SCALAR;
    unsigned long long xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return QE_ISA_SCALAR; /* XMM and YMM state */
    if (__get_cpuid_max(0, NULL) < 7) return QE_ISA_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    if (!(avx2 && fma && f16c)) return QE_ISA_SCALAR;
    /* opmask, ZMM0-15 upper halves and ZMM16-31 state */
    if ((xcr0 & 0xe0) != 0xe0 || !(avx512f && avx512bw && avx512vl)) return QE_ISA_AVX2;
    unsigned max7 = a; /* leaf 7 subleaf 0: eax = highest subleaf */
    int amx = ((d >> 22) & 1) && ((d >> 24) & 1); /* AMX-BF16 and AMX-TILE */
    int bf16 = 0;
    if (max7 >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        bf16 = (a >> 5) & 1;
    }
    if (!bf16) return QE_ISA_AVX512;
    /* XTILECFG and XTILEDATA state (Linux also wants a per-process request,
     * which oneDNN makes), and the library that drives the tiles */
    if (amx && (xcr0 & 0x60000) == 0x60000 && qe_onednn_available()) return QE_ISA_AMX;
    return QE_ISA_AVX512_BF16;
}
#else
static qe_isa detect_hw(void) { return QE_ISA_SCALAR; }
#endif

static qe_isa g_hw = QE_ISA_SCALAR, g_capped = QE_ISA_SCALAR;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static char g_note[256];

static void detect_once(void) {
    g_hw = detect_hw();
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
        snprintf(g_note, sizeof g_note,
                 "the CPU offers %s, but the %s matrix products disagree with the scalar reference on it: "
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
