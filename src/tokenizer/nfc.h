/* Unicode NFC with the normalisation data of the reference tokenizer
 * (Unicode 9.0; see tools/gen/gen_nfc_tables.py for why not utf8proc). */
#ifndef QE_NFC_H
#define QE_NFC_H

#include <stddef.h>
#include <stdint.h>

extern const uint16_t qe_nfc_ccc_stage1[8704];
extern const uint8_t qe_nfc_ccc_stage2[][128];
extern const uint16_t qe_nfc_unstable_stage1[8704];
extern const uint8_t qe_nfc_unstable_stage2[][128];
extern const uint32_t qe_nfc_decomp_n;
extern const uint32_t qe_nfc_decomp_index[][3];
extern const uint32_t qe_nfc_decomp_pool[];
extern const uint32_t qe_nfc_comp_n;
extern const uint32_t qe_nfc_comp[][3];

static inline int qe_nfc_ccc(uint32_t cp) {
    return qe_nfc_ccc_stage2[qe_nfc_ccc_stage1[cp >> 7]][cp & 127];
}
/* 0 when NFC of any text made only of such code points is the text itself. */
static inline int qe_nfc_unstable(uint32_t cp) {
    return qe_nfc_unstable_stage2[qe_nfc_unstable_stage1[cp >> 7]][cp & 127];
}

/* Returns 1 when the valid UTF-8 s[0..n) is already NFC by the quick check
 * (every code point stable), so the caller can skip qe_nfc. */
int qe_nfc_quick(const uint8_t *s, size_t n);

/* NFC of the valid UTF-8 s[0..n) into a malloc'ed buffer *out (length
 * *out_len). Returns 0, or -1 when out of memory. */
int qe_nfc(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len);

#endif
