/* libFuzzer target for qembed_tokenizer_encode and _decode.
 * The tokenizer file comes from $QE_FUZZ_TOKENIZER (ctest sets it to the tiny
 * model's tokenizer.json). Input: byte 0 picks the options, the rest is the
 * text (any bytes: invalid UTF-8 must give QEMBED_ERR_INVALID_UTF8, never a
 * crash). The ids are decoded again, and the input is also read as raw ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qembed.h"
#include "tokenizer/tokenizer_internal.h"

static qembed_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *p = getenv("QE_FUZZ_TOKENIZER");
    qembed_error err;
    if (!p || qembed_tokenizer_load(p, &tok, &err) != QEMBED_OK) {
        fprintf(stderr, "fuzz_tokenizer: set QE_FUZZ_TOKENIZER to a tokenizer.json (%s)\n",
                p ? err.message : "unset");
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    /* The library's own defaults: this target compiles the tokenizer sources
     * alone, without qembed_params_init (which sees every layer) behind the
     * header's inline constructor. */
    qembed_encode_options o = qe_encode_defaults();
    o.size = sizeof o; /* what qembed_params_init sets; the internal defaults leave it 0 */
    o.add_special_tokens = data[0] & 1;
    o.parse_special = (data[0] >> 1) & 1;
    int skip = (data[0] >> 2) & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int32_t *ids = NULL;
    size_t n = 0;
    qembed_error err;
    qembed_status s = qembed_tokenizer_encode(tok, text, len, &o, &ids, &n, &err);
    if (s == QEMBED_OK) {
        char *out;
        size_t ol;
        if (qembed_tokenizer_decode(tok, ids, n, skip, &out, &ol, &err) != QEMBED_OK) abort();
        /* Without specials parsed or added, decoding gives back NFC(text):
         * at least as many bytes as a third of the input (NFC shrinks at
         * most 3x). A cheap invariant that catches lost pieces. */
        if (!o.add_special_tokens && !o.parse_special && ol * 3 < len) abort();
        qembed_free(out);
        qembed_free(ids);
    } else if (s != QEMBED_ERR_INVALID_UTF8) {
        abort();
    }
    /* The same bytes as ids (some out of range: must be refused cleanly). */
    size_t k = len / 4;
    int32_t *raw = malloc((k ? k : 1) * sizeof *raw);
    if (!raw) return 0;
    memcpy(raw, text, k * sizeof *raw);
    for (size_t i = 0; i < k; i++)
        if (data[0] & 8) raw[i] = (int32_t)((uint32_t)raw[i] % (uint32_t)qembed_tokenizer_n_vocab(tok));
    char *out;
    size_t ol;
    s = qembed_tokenizer_decode(tok, raw, k, skip, &out, &ol, &err);
    if (s == QEMBED_OK)
        qembed_free(out);
    else if (s != QEMBED_ERR_INVALID_ARGUMENT)
        abort();
    free(raw);
    return 0;
}
