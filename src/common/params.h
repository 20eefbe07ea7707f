/* Reading a caller's params/options struct of the size it was built with
 * ("Structs that grow" in qembed.h). */
#ifndef QE_PARAMS_H
#define QE_PARAMS_H

#include <stddef.h>

#include "qembed.h"

/* The size of a struct laid out up to and including `field`: a released
 * layout's sizeof, written so it stays true after fields are appended. */
#define QE_SIZE_UPTO(type, field)                                                                 \
    ((offsetof(type, field) + sizeof(((type *)0)->field) + _Alignof(type) - 1) / _Alignof(type) * \
     _Alignof(type))

/* dst (dst_size bytes, the library's layout) already holds the defaults.
 * src NULL: keeps them. Else src->size (its first member) must be one of
 * sizes[0..n): that many bytes are copied over the defaults, so fields
 * appended since the caller's header keep their defaults; dst->size becomes
 * dst_size. Any other size is QEMBED_ERR_INVALID_ARGUMENT naming `what`. */
qembed_status qe_params_copy(void *dst, size_t dst_size, const void *src, const size_t *sizes, size_t n,
                             const char *what, qembed_error *err);

/* qembed_params_init's work for one kind: the first `size` bytes of p from
 * the defaults d (d_size bytes; bytes past them zeroed), p->size = size. */
void qe_params_fill(void *p, size_t size, const void *d, size_t d_size);

#endif
