/* Internal error plumbing: errors start once, with a message naming what and
 * where, and travel up unchanged (zstd's RETURN_ERROR_IF / FORWARD_IF_ERROR). */
#ifndef QE_ERROR_H
#define QE_ERROR_H

#include "qembed.h"

#if defined(__GNUC__)
#define QE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QE_PRINTF(a, b)
#endif

/* Records code and message in err (when not NULL); returns code. */
qembed_status qe_error(qembed_error *err, qembed_status code, const char *fmt, ...) QE_PRINTF(3, 4);

/* Prefixes err's message with context ("model.safetensors: "), keeps the code. */
qembed_status qe_error_prefix(qembed_error *err, qembed_status code, const char *fmt, ...) QE_PRINTF(3, 4);

#define QE_FAIL(err, code, ...) return qe_error((err), (code), __VA_ARGS__)
#define QE_FAIL_IF(cond, err, code, ...)                       \
    do {                                                       \
        if (cond) return qe_error((err), (code), __VA_ARGS__); \
    } while (0)
#define QE_TRY(expr)                          \
    do {                                      \
        qembed_status qe_s_ = (expr);         \
        if (qe_s_ != QEMBED_OK) return qe_s_; \
    } while (0)

#endif
