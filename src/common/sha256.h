/* SHA-256 for checkpoint and segment manifests. Backed by OpenSSL's libcrypto
 * (Debian libssl-dev), which uses the SHA extensions where the CPU has them:
 * hashing an 8 GB checkpoint takes seconds, not a minute. */
#ifndef QE_SHA256_H
#define QE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define QE_SHA256_LEN 32
#define QE_SHA256_HEX_LEN 65 /* 64 hex digits and the NUL */

/* Incremental hashing. init allocates (can fail: out of memory); final writes
 * the digest and releases, so every successful init is paired with one final
 * (or qe_sha256_abort on an error path). Not thread-safe per state. */
typedef struct qe_sha256 {
    void *impl;
} qe_sha256;

qembed_status qe_sha256_init(qe_sha256 *s, qembed_error *err);
void qe_sha256_update(qe_sha256 *s, const void *data, size_t len);
void qe_sha256_final(qe_sha256 *s, uint8_t digest[QE_SHA256_LEN]);
void qe_sha256_abort(qe_sha256 *s);

/* One-shot helpers. */
qembed_status qe_sha256_buf(const void *data, size_t len, uint8_t digest[QE_SHA256_LEN], qembed_error *err);
/* Hashes a whole file, reading it in large blocks (no mapping, no full copy). */
qembed_status qe_sha256_file(const char *path, uint8_t digest[QE_SHA256_LEN], qembed_error *err);
/* Lower-case hex, NUL-terminated. */
void qe_sha256_hex(const uint8_t digest[QE_SHA256_LEN], char hex[QE_SHA256_HEX_LEN]);

#endif
