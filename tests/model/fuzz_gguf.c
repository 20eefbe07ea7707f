/* libFuzzer target: the GGUF parser (and what reads its metadata: the
 * qwen3 config and the tokenizer from tokenizer.ggml.*) on arbitrary bytes
 * taken as a whole file. It must never crash, read outside the buffer, leak,
 * or accept a tensor whose bytes are not inside the buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/gguf.h"
#include "tokenizer/load_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy, so ASan sees reads past the end of the input */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    qembed_error err;
    qe_gguf *g = NULL;
    if (qe_gguf_parse(buf, size, "fuzz.gguf", &g, &err) == QEMBED_OK) {
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const qe_gguf_tensor *t = &g->tensors[i];
            /* the promise made to every caller: the bytes are in the file */
            if (g->data_start + t->offset + t->bytes > size) abort();
            if (t->bytes) {
                volatile uint8_t x = buf[g->data_start + t->offset + t->bytes - 1];
                (void)x;
            }
        }
        for (uint64_t i = 0; i < g->n_kv; i++) {
            const qe_gguf_kv *kv = &g->kv[i];
            if (kv->type == QE_GGUF_ARRAY && kv->arr_type == QE_GGUF_STRING) {
                const uint8_t *c = kv->val;
                for (uint64_t j = 0; j < kv->count; j++) {
                    uint64_t n;
                    const char *s = qe_gguf_next_str(&c, &n);
                    if ((const uint8_t *)s + n > buf + size) abort();
                    if (n) {
                        volatile char x = s[n - 1];
                        (void)x;
                    }
                }
            }
        }
        qe_config cfg;
        (void)qe_gguf_config(g, "fuzz.gguf", &cfg, &err);
        qembed_tokenizer *tk = NULL;
        if (qe_tok_from_gguf(g, "fuzz.gguf", &tk, &err) == QEMBED_OK) qembed_tokenizer_free(tk);
        qe_gguf_free(g);
    } else if (!memchr(err.message, '\0', sizeof err.message)) {
        abort(); /* messages are always terminated */
    }
    free(buf);
    return 0;
}
