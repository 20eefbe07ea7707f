#include "log.h"

#include <stdarg.h>
#include <stdio.h>

void qe_log(const qe_logger *lg, qembed_log_level level, const char *fmt, ...) {
    if (!lg || !lg->fn || level < lg->min_level) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    lg->fn(level, line, lg->user);
}
