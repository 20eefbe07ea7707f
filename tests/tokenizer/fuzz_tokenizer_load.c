/* libFuzzer target for qembed_tokenizer_load: the input is a whole
 * tokenizer.json (the loader's own JSON scanner and parsers for model.vocab
 * and model.merges are hand-written). A file that loads is also used once to
 * encode and decode. The API loads from a path, so each input goes through a
 * temporary file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qembed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/qembed-fuzz-load-%d.json", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    qembed_tokenizer *t = NULL;
    qembed_error err;
    qembed_status s = qembed_tokenizer_load(path, &t, &err);
    if (s == QEMBED_OK) {
        int32_t *ids;
        size_t n;
        if (qembed_tokenizer_encode(t, "Hello wor\xc3\xa9ld 123 <|endoftext|>\n\n", 28, NULL, &ids, &n,
                                    &err) == QEMBED_OK) {
            char *out;
            size_t ol;
            if (qembed_tokenizer_decode(t, ids, n, 1, &out, &ol, &err) == QEMBED_OK) qembed_free(out);
            qembed_free(ids);
        }
        qembed_tokenizer_free(t);
    } else if (t != NULL || err.message[0] == '\0') {
        abort(); /* a failure must leave *out NULL and say why */
    }
    unlink(path);
    return 0;
}
