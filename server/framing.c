/* Strict request framing: the checks libmicrohttpd 0.9.75 does not make.
 *
 * MHD keeps the first of two Content-Length headers, accepts Transfer-Encoding
 * beside Content-Length, waits forever for a body in an unknown transfer
 * coding, and decodes "%00" in the path into a NUL that silently ends it. Each
 * of those lets one peer (a proxy) and this server frame the same bytes
 * differently, which is how requests are smuggled. So the HTTP layer feeds the
 * raw target and every header line here before it accepts a byte of body, and
 * answers 400 (501 for a coding we do not implement) with Connection: close.
 * Pure functions: no state beyond the qs_framing the caller owns, and lengths
 * are taken from MHD (values may hold NUL bytes). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

static void refuse(qs_framing *f, int status, const char *fmt, const char *what) {
    if (f->status) return; /* keep the first reason */
    f->status = status;
    snprintf(f->msg, sizeof f->msg, fmt, what);
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

void qs_framing_uri(qs_framing *f, const char *raw, size_t len) {
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)raw[i];
        if (c == '%' && i + 2 < len && hexval(raw[i + 1]) >= 0 && hexval(raw[i + 2]) >= 0)
            c = hexval(raw[i + 1]) * 16 + hexval(raw[i + 2]);
        if (c < 0x20 || c == 0x7f) {
            refuse(f, 400, "%s", "the request target holds a NUL or control byte (raw or %-escaped)");
            return;
        }
    }
}

/* Content-Length is 1*DIGIT (RFC 9110 8.6); a list or a sign is refused. */
static int digits_only(const char *v, size_t n) {
    size_t a = 0, b = n;
    while (a < b && (v[a] == ' ' || v[a] == '\t')) a++;
    while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t')) b--;
    if (a == b || b - a > 19) return 0;
    for (size_t i = a; i < b; i++)
        if (v[i] < '0' || v[i] > '9') return 0;
    return 1;
}

void qs_framing_header(qs_framing *f, const char *name, size_t nlen, const char *value, size_t vlen) {
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c == 0x7f || c == ':') {
            refuse(f, 400, "%s", "a header name holds a control byte or a space");
            return;
        }
    }
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            if (!f->status) {
                f->status = 400;
                snprintf(f->msg, sizeof f->msg, "header '%.*s' holds a NUL or control byte",
                         (int)(nlen < 60 ? nlen : 60), name);
            }
            return;
        }
    }
    if (nlen == 14 && strncasecmp(name, "Content-Length", 14) == 0) {
        if (++f->n_cl > 1)
            refuse(f, 400, "%s", "more than one Content-Length header");
        else if (!digits_only(value, vlen))
            refuse(f, 400, "%s", "Content-Length must be one decimal number");
    } else if (nlen == 17 && strncasecmp(name, "Transfer-Encoding", 17) == 0) {
        f->n_te++;
        /* Only "chunked", alone: we implement no other coding. */
        size_t a = 0, b = vlen;
        while (a < b && (value[a] == ' ' || value[a] == '\t')) a++;
        while (b > a && (value[b - 1] == ' ' || value[b - 1] == '\t')) b--;
        if (b - a == 7 && strncasecmp(value + a, "chunked", 7) == 0)
            f->te_chunked++;
        else
            f->te_other++;
    }
}

void qs_framing_finish(qs_framing *f) {
    if (f->te_other)
        refuse(f, 501, "%s", "Transfer-Encoding other than 'chunked' is not implemented");
    else if (f->n_te > 1)
        refuse(f, 400, "%s", "more than one Transfer-Encoding header");
    else if (f->n_te && f->n_cl)
        refuse(f, 400, "%s", "Transfer-Encoding and Content-Length together");
}
