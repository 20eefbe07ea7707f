/* Clocks for durations (log lines, benchmarks): CLOCK_MONOTONIC, so a step
 * of the wall clock never makes a duration negative. Header-only and
 * dependency-free (the standard headers only), like utf8.h: the library, the
 * server, qembed-synth and the kernel benchmarks share it. The programs held
 * to qembed.h alone (the qembed CLI, bench/tokenizer, bench/server) keep their
 * own four-line copy: a clock is not the embedding API, so it does not belong
 * in qembed.h, and they do not see src/. */
#ifndef QE_CLOCK_H
#define QE_CLOCK_H

#include <time.h>

/* Seconds on the given clock (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
 * ...); only differences mean anything. */
static inline double qe_clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Monotonic seconds and milliseconds. */
static inline double qe_now_s(void) {
    return qe_clock_s(CLOCK_MONOTONIC);
}
static inline double qe_now_ms(void) {
    return qe_clock_s(CLOCK_MONOTONIC) * 1e3;
}

#endif
