/* libFuzzer target: the safetensors header parser on arbitrary bytes taken
 * as a whole file. It must never crash, read outside the buffer, leak, or
 * accept an entry whose byte range is not inside the buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy, so ASan sees reads past the end of the input */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    qembed_error err;
    qe_st_entry *e = NULL;
    size_t n = 0, start = 0;
    if (qe_safetensors_parse(buf, size, "fuzz.safetensors", &e, &n, &start, &err) == QEMBED_OK) {
        for (size_t i = 0; i < n; i++) {
            /* the promise made to every caller: the range is in the file */
            if (e[i].begin > e[i].end || start + e[i].end > size) abort();
            if (e[i].end > e[i].begin) {
                volatile uint8_t x = buf[start + e[i].end - 1];
                (void)x;
            }
        }
        qe_safetensors_entries_free(e, n);
    } else if (!memchr(err.message, '\0', sizeof err.message)) {
        abort(); /* messages are always terminated */
    }
    free(buf);
    return 0;
}
