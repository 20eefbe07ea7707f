/* UTF-8 helpers: decoding and encoding code points, and the validator.
 * Header-only and dependency-free (the standard C headers only): besides the
 * library, the server includes it for qe_utf8_first_invalid. Decoding
 * functions assume text that qe_utf8_first_invalid accepted. */
#ifndef QE_UTF8_H
#define QE_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Decodes the code point at s[i] (valid UTF-8); returns its byte length. */
static inline int qe_utf8_dec(const uint8_t *s, size_t i, uint32_t *cp) {
    uint8_t c = s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xE0) {
        *cp = ((uint32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
          ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
    return 4;
}

/* Byte length of the code point that ends just before s[i] (i > 0). */
static inline int qe_utf8_prev_len(const uint8_t *s, size_t i) {
    int l = 1;
    while (l < 4 && i >= (size_t)l + 1 && (s[i - l] & 0xC0) == 0x80) l++;
    return l;
}

static inline int qe_utf8_enc(uint32_t cp, uint8_t *o) {
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the well-formed sequence at s[i..n) (Unicode Table 3-7), or, when
 * ill-formed, -(length of its maximal subpart), at least 1: the unit that one
 * U+FFFD replaces, as Rust's String::from_utf8_lossy does. */
static inline int qe_utf8_check(const uint8_t *s, size_t n, size_t i) {
    uint8_t c = s[i];
    if (c < 0x80) return 1;
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c == 0xE0) {
        need = 2;
        lo = 0xA0;
    } else if (c >= 0xE1 && c <= 0xEC)
        need = 2;
    else if (c == 0xED) {
        need = 2;
        hi = 0x9F;
    } else if (c >= 0xEE && c <= 0xEF)
        need = 2;
    else if (c == 0xF0) {
        need = 3;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3)
        need = 3;
    else if (c == 0xF4) {
        need = 3;
        hi = 0x8F;
    } else
        return -1;
    int k = 1;
    if (i + 1 >= n || s[i + 1] < lo || s[i + 1] > hi) return -1;
    k = 2;
    while (k <= need) {
        if (i + (size_t)k >= n || (s[i + k] & 0xC0) != 0x80) return -k;
        k++;
    }
    return need + 1;
}

/* Byte offset of the first ill-formed sequence of s[0..n), or n when all of
 * it is well-formed UTF-8 (Table 3-7: no overlongs, no surrogates, nothing
 * above U+10FFFF). The one validator of the project: the tokenizer's input
 * check, the loader's token strings and the server's request fields, so the
 * server accepts exactly what the library does. ASCII is skipped eight bytes
 * at a time (most text is ASCII; inputs run to megabytes). */
static inline size_t qe_utf8_first_invalid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (!(v & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        int l = qe_utf8_check(s, n, i);
        if (l < 0) return i;
        i += (size_t)l;
    }
    return n;
}

#endif
