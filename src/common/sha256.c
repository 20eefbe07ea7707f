#include "common/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

qembed_status qe_sha256_init(qe_sha256 *s, qembed_error *err) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c) QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "sha256: cannot allocate a digest context");
    if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c);
        QE_FAIL(err, QEMBED_ERR_INTERNAL, "sha256: EVP_DigestInit_ex failed");
    }
    s->impl = c;
    return QEMBED_OK;
}

void qe_sha256_update(qe_sha256 *s, const void *data, size_t len) {
    if (len) EVP_DigestUpdate((EVP_MD_CTX *)s->impl, data, len);
}

void qe_sha256_final(qe_sha256 *s, uint8_t digest[QE_SHA256_LEN]) {
    unsigned int n = 0;
    EVP_DigestFinal_ex((EVP_MD_CTX *)s->impl, digest, &n);
    EVP_MD_CTX_free((EVP_MD_CTX *)s->impl);
    s->impl = NULL;
}

void qe_sha256_abort(qe_sha256 *s) {
    EVP_MD_CTX_free((EVP_MD_CTX *)s->impl);
    s->impl = NULL;
}

qembed_status qe_sha256_buf(const void *data, size_t len, uint8_t digest[QE_SHA256_LEN], qembed_error *err) {
    qe_sha256 s;
    QE_TRY(qe_sha256_init(&s, err));
    qe_sha256_update(&s, data, len);
    qe_sha256_final(&s, digest);
    return QEMBED_OK;
}

qembed_status qe_sha256_file(const char *path, uint8_t digest[QE_SHA256_LEN], qembed_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) QE_FAIL(err, QEMBED_ERR_IO, "%s: cannot open for hashing: %s", path, strerror(errno));
    enum { BLOCK = 4 << 20 };
    unsigned char *buf = malloc(BLOCK);
    if (!buf) {
        close(fd);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: cannot allocate a read buffer", path);
    }
    qe_sha256 s;
    qembed_status st = qe_sha256_init(&s, err);
    if (st != QEMBED_OK) {
        free(buf);
        close(fd);
        return st;
    }
    for (;;) {
        ssize_t n = read(fd, buf, BLOCK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            qe_sha256_abort(&s);
            free(buf);
            close(fd);
            QE_FAIL(err, QEMBED_ERR_IO, "%s: read error while hashing: %s", path, strerror(e));
        }
        if (n == 0) break;
        qe_sha256_update(&s, buf, (size_t)n);
    }
    qe_sha256_final(&s, digest);
    free(buf);
    close(fd);
    return QEMBED_OK;
}

void qe_sha256_hex(const uint8_t digest[QE_SHA256_LEN], char hex[QE_SHA256_HEX_LEN]) {
    static const char xd[] = "0123456789abcdef";
    for (int i = 0; i < QE_SHA256_LEN; i++) {
        hex[2 * i] = xd[digest[i] >> 4];
        hex[2 * i + 1] = xd[digest[i] & 15];
    }
    hex[64] = '\0';
}
