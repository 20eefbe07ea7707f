/* Compute units: the names users already know from CoreML's MLComputeUnits. */
#include <strings.h>

#include "common/error.h"

static const char *const unit_names[] = {"ALL", "CPU_AND_GPU", "CPU_AND_NE", "CPU_ONLY"};

qembed_status qembed_compute_units_parse(const char *s, qembed_compute_units *out, qembed_error *err) {
    if (s) {
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(s, unit_names[i]) == 0) {
                if (out) *out = (qembed_compute_units)i;
                return QEMBED_OK;
            }
        }
    }
    QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT,
            "compute units: unknown value '%s' (valid: ALL, CPU_AND_GPU, CPU_AND_NE, CPU_ONLY; "
            "case-insensitive)",
            s ? s : "(null)");
}

const char *qembed_compute_units_name(qembed_compute_units u) {
    if ((int)u >= 0 && (int)u < 4) return unit_names[u];
    return "UNKNOWN";
}
