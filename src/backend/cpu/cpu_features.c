/* What the CPU and the operating system offer, from cpuid and xgetbv only:
 * cpuid for what the core implements, xgetbv for what the operating system
 * saves on a context switch (a hypervisor may report AVX-512 in cpuid yet
 * leave the ZMM state disabled in XCR0; then the instructions fault, so XCR0
 * decides). The bottom of the folder's dependency order (see mm_common.c):
 * no self-check, no library, no cap; cpu_isa.c builds the level on it. */
#include "matmul_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

qe_isa qe_cpu_features(int *amx_out) {
    unsigned a, b, c, d;
    if (amx_out) *amx_out = 0;
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
    unsigned max7 = a;                            /* leaf 7 subleaf 0: eax = highest subleaf */
    int amx = ((d >> 22) & 1) && ((d >> 24) & 1); /* AMX-BF16 and AMX-TILE */
    int bf16 = 0;
    if (max7 >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        bf16 = (a >> 5) & 1;
    }
    if (!bf16) return QE_ISA_AVX512;
    /* XTILECFG and XTILEDATA state (Linux also wants a per-process request,
     * which oneDNN and the peak bench make) */
    if (amx_out) *amx_out = amx && (xcr0 & 0x60000) == 0x60000;
    return QE_ISA_AVX512_BF16;
}
#else
qe_isa qe_cpu_features(int *amx_out) {
    if (amx_out) *amx_out = 0;
    return QE_ISA_SCALAR;
}
#endif
