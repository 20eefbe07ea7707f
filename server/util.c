/* Small helpers for the server: byte buffers, JSON output, UTF-8 checks, the log. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "internal.h"
/* Two header-only, dependency-free helpers of src/common/, the only ones the
 * server sees (CMakeLists.txt): the library's UTF-8 validator, so that the
 * server accepts exactly the text the tokenizer does, and its monotonic
 * clock. Everything else comes from qembed.h. */
#include "clock.h"
#include "utf8.h"

void qs_buf_reserve(qs_buf *b, size_t extra) {
    if (b->oom) return;
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

void qs_buf_put(qs_buf *b, const void *s, size_t n) {
    qs_buf_reserve(b, n);
    if (b->oom) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void qs_buf_puts(qs_buf *b, const char *s) {
    qs_buf_put(b, s, strlen(s));
}

void qs_buf_printf(qs_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        qs_buf_put(b, tmp, (size_t)n);
        return;
    }
    qs_buf_reserve(b, (size_t)n);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* The text is already valid UTF-8 (checked at parse time); only JSON's
 * mandatory escapes are applied. */
void qs_buf_json_str(qs_buf *b, const char *s, size_t n) {
    qs_buf_reserve(b, n + 2);
    qs_buf_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        qs_buf_put(b, s + run, i - run);
        run = i + 1;
        switch (c) {
            case '"': qs_buf_put(b, "\\\"", 2); break;
            case '\\': qs_buf_put(b, "\\\\", 2); break;
            case '\n': qs_buf_put(b, "\\n", 2); break;
            case '\r': qs_buf_put(b, "\\r", 2); break;
            case '\t': qs_buf_put(b, "\\t", 2); break;
            default: qs_buf_printf(b, "\\u%04x", c); break;
        }
    }
    qs_buf_put(b, s + run, n - run);
    qs_buf_put(b, "\"", 1);
}

/* %.9g round-trips every float32; JSON has no NaN/Inf, and the batcher never
 * lets a non-finite vector through, but print 0 rather than invalid JSON. */
void qs_buf_float(qs_buf *b, float v) {
    char tmp[32];
    if (!isfinite(v)) {
        qs_buf_put(b, "0", 1);
        return;
    }
    int n = snprintf(tmp, sizeof tmp, "%.9g", (double)v);
    qs_buf_put(b, tmp, (size_t)n);
}

/* RFC 4648 base64 by libcrypto (already linked for SHA-256). EVP_EncodeBlock
 * takes an int length and writes a NUL after its output: fed in slices of a
 * multiple of 3 bytes, so no padding appears mid-stream. */
void qs_buf_base64(qs_buf *b, const void *data, size_t n) {
    const unsigned char *s = data;
    qs_buf_reserve(b, (n + 2) / 3 * 4 + 1);
    if (b->oom) return;
    const size_t slice = (size_t)3 << 20;
    for (size_t i = 0; i < n; i += slice) {
        size_t m = n - i < slice ? n - i : slice;
        int w = EVP_EncodeBlock((unsigned char *)b->p + b->len, s + i, (int)m);
        b->len += (size_t)w;
    }
    b->p[b->len] = 0; /* as every qs_buf append keeps it */
}

void qs_buf_free(qs_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

long qs_utf8_invalid_at(const char *str, size_t n) {
    size_t bad = qe_utf8_first_invalid((const uint8_t *)str, n);
    return bad < n ? (long)bad : -1;
}

double qs_now(void) {
    return qe_now_s();
}

/* Runs over every byte of `expected` whatever `given` is, so the time taken
 * does not tell an attacker how many leading bytes were right. */
int qs_secret_equal(const char *expected, const char *given) {
    size_t le = strlen(expected), lg = strlen(given);
    unsigned diff = (unsigned)(le ^ lg);
    for (size_t i = 0; i < le; i++) {
        unsigned char g = lg ? (unsigned char)given[i % lg] : 0;
        diff |= (unsigned)((unsigned char)expected[i] ^ g);
    }
    return diff == 0;
}

void qs_err_set(qs_apierr *e, int status, const char *type, const char *code, const char *tei_type,
                const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    e->tei_type = tei_type;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void qs_log(qs_server *srv, qembed_log_level lvl, const char *fmt, ...) {
    if (!srv->cfg.log_fn) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    srv->cfg.log_fn(lvl, line, srv->cfg.log_user);
}
