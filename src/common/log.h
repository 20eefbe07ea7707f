/* Internal logging: the library prints nothing unless the user gave a
 * callback. A logger is a small value copied into each handle. */
#ifndef QE_LOG_H
#define QE_LOG_H

#include "error.h"

typedef struct qe_logger {
    qembed_log_fn fn;
    void *user;
    qembed_log_level min_level;
} qe_logger;

void qe_log(const qe_logger *lg, qembed_log_level level, const char *fmt, ...) QE_PRINTF(3, 4);

#define QE_INFO(lg, ...) qe_log((lg), QEMBED_LOG_INFO, __VA_ARGS__)
#define QE_WARN(lg, ...) qe_log((lg), QEMBED_LOG_WARN, __VA_ARGS__)
#define QE_DEBUG(lg, ...) qe_log((lg), QEMBED_LOG_DEBUG, __VA_ARGS__)

#endif
