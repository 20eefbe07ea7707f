/* The CLI's one monotonic clock (progress bars, the bench, pull's retries and
 * rates). The library's src/common/clock.h is not visible here: the CLI is held
 * to include/qembed.h, and a clock is not the embedding API. */
#include <time.h>

#include "commands.h"

double cli_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
