/* Params/options structs of the size the caller was built with (params.h). */
#include "common/params.h"

#include <string.h>

#include "common/error.h"

qembed_status qe_params_copy(void *dst, size_t dst_size, const void *src, const size_t *sizes, size_t n,
                             const char *what, qembed_error *err) {
    if (!src) return QEMBED_OK;
    size_t size;
    memcpy(&size, src, sizeof size);
    for (size_t i = 0; i < n; i++) {
        if (size != sizes[i] || size > dst_size) continue;
        memcpy(dst, src, size);
        memcpy(dst, &dst_size, sizeof dst_size);
        return QEMBED_OK;
    }
    QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT,
            "%s: size %zu is not a size of this struct that this library knows (this version's is "
            "%zu)%s",
            what, size, dst_size,
            size > dst_size ? ": built against a newer qembed.h than the library, or not "
                              "initialised"
                            : ": make it with its *_default_*() constructor");
}

void qe_params_fill(void *p, size_t size, const void *d, size_t d_size) {
    if (!p || size < sizeof(size_t)) return;
    size_t k = size < d_size ? size : d_size;
    memcpy(p, d, k);
    if (size > k) memset((char *)p + k, 0, size - k);
    memcpy(p, &size, sizeof size);
}
