/* qe_read_file: a whole small file into memory (see file.h). */
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

qembed_status qe_read_file(const char *path, size_t max, char **buf, size_t *len, qembed_error *err) {
    *buf = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) QE_FAIL(err, QEMBED_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        QE_FAIL(err, QEMBED_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    if (n > max) {
        fclose(f);
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: %zu bytes, more than the %zu allowed", path, n, max);
    }
    char *b = malloc(n + 1);
    if (!b) {
        fclose(f);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(b, 1, n, f);
    int bad = ferror(f);
    fclose(f);
    if (got != n || bad) {
        free(b);
        QE_FAIL(err, QEMBED_ERR_IO, "%s: read %zu of %zu bytes", path, got, n);
    }
    b[n] = '\0';
    *buf = b;
    if (len) *len = n;
    return QEMBED_OK;
}

qembed_status qe_map_file(const char *path, size_t min_size, const char *too_short, void **map, size_t *size,
                          qembed_error *err) {
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) QE_FAIL(err, QEMBED_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        QE_FAIL(err, QEMBED_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    if (n < min_size) {
        close(fd);
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: file is %zu bytes, %s", path, n, too_short);
    }
    void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file alive */
    if (m == MAP_FAILED) QE_FAIL(err, QEMBED_ERR_IO, "%s: cannot mmap %zu bytes: %s", path, n, strerror(e));
    *map = m;
    *size = n;
    return QEMBED_OK;
}
