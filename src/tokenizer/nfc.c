/* NFC, written out by hand because the reference tokenizer normalises with
 * Unicode 9.0 data (see tools/gen/gen_nfc_tables.py); utf8proc would apply
 * newer data and change ids of texts with post-9.0 combining marks. The
 * algorithm is UAX #15's: full canonical decomposition, canonical ordering,
 * canonical composition. Only texts that fail the quick check get here. */
#include "nfc.h"

#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

enum {
    SBASE = 0xAC00,
    LBASE = 0x1100,
    VBASE = 0x1161,
    TBASE = 0x11A7,
    LCOUNT = 19,
    VCOUNT = 21,
    TCOUNT = 28,
    NCOUNT = VCOUNT * TCOUNT,
    SCOUNT = LCOUNT * NCOUNT
};

int qe_nfc_quick(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        i += (size_t)qe_utf8_dec(s, i, &cp);
        if (qe_nfc_unstable(cp)) return 0;
    }
    return 1;
}

/* Full canonical decomposition of cp: pointer into the pool, or NULL. */
static const uint32_t *decomp_of(uint32_t cp, uint32_t *len) {
    size_t lo = 0, hi = qe_nfc_decomp_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (qe_nfc_decomp_index[mid][0] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < qe_nfc_decomp_n && qe_nfc_decomp_index[lo][0] == cp) {
        *len = qe_nfc_decomp_index[lo][2];
        return &qe_nfc_decomp_pool[qe_nfc_decomp_index[lo][1]];
    }
    return NULL;
}

/* Primary composite of (a, b), or 0. */
static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    size_t lo = 0, hi = qe_nfc_comp_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *e = qe_nfc_comp[mid];
        if (e[0] < a || (e[0] == a && e[1] < b))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < qe_nfc_comp_n && qe_nfc_comp[lo][0] == a && qe_nfc_comp[lo][1] == b) return qe_nfc_comp[lo][2];
    return 0;
}

/* Full NFC of one span (valid UTF-8) appended at o; returns the bytes
 * written, or (size_t)-1 when out of memory. cps has room for 4 code points
 * per input byte. */
static size_t nfc_span(const uint8_t *s, size_t n, uint32_t *cps, uint8_t *o) {
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp, dl;
        i += (size_t)qe_utf8_dec(s, i, &cp);
        if (cp >= SBASE && cp < SBASE + SCOUNT) {
            uint32_t si = cp - SBASE;
            cps[m++] = LBASE + si / NCOUNT;
            cps[m++] = VBASE + (si % NCOUNT) / TCOUNT;
            if (si % TCOUNT) cps[m++] = TBASE + si % TCOUNT;
            continue;
        }
        const uint32_t *d = cp >= 0xC0 ? decomp_of(cp, &dl) : NULL;
        if (d) {
            memcpy(cps + m, d, dl * sizeof *d);
            m += dl;
        } else {
            cps[m++] = cp;
        }
    }
    /* Canonical ordering: a stable sort by class of each run of non-starters;
     * insertion sort for short runs, counting sort for long ones (a run of
     * alternating marks would make insertion sort quadratic: untrusted input). */
    for (size_t a = 0; a < m;) {
        if (qe_nfc_ccc(cps[a]) == 0) {
            a++;
            continue;
        }
        size_t b = a;
        while (b < m && qe_nfc_ccc(cps[b]) != 0) b++;
        if (b - a <= 32) {
            for (size_t i = a + 1; i < b; i++) {
                uint32_t x = cps[i];
                int c = qe_nfc_ccc(x);
                size_t j = i;
                while (j > a && qe_nfc_ccc(cps[j - 1]) > c) {
                    cps[j] = cps[j - 1];
                    j--;
                }
                cps[j] = x;
            }
        } else {
            size_t count[257] = {0};
            uint32_t *tmp = malloc((b - a) * sizeof *tmp);
            if (!tmp) return (size_t)-1;
            for (size_t i = a; i < b; i++) count[qe_nfc_ccc(cps[i]) + 1]++;
            for (int c = 1; c < 257; c++) count[c] += count[c - 1];
            for (size_t i = a; i < b; i++) tmp[count[qe_nfc_ccc(cps[i])]++] = cps[i];
            memcpy(cps + a, tmp, (b - a) * sizeof *tmp);
            free(tmp);
        }
        a = b;
    }
    /* Canonical composition (UAX #15 sample algorithm). */
    size_t w = 0;
    if (m > 0) {
        size_t starter = 0;
        int last = qe_nfc_ccc(cps[0]) ? 256 : 0;
        w = 1;
        for (size_t i = 1; i < m; i++) {
            uint32_t ch = cps[i];
            int c = qe_nfc_ccc(ch);
            uint32_t comp = compose(cps[starter], ch);
            if (comp && (last < c || last == 0)) {
                cps[starter] = comp;
            } else {
                if (c == 0) starter = w;
                last = c;
                cps[w++] = ch;
            }
        }
    }
    size_t ol = 0;
    for (size_t i = 0; i < w; i++) ol += (size_t)qe_utf8_enc(cps[i], o + ol);
    return ol;
}

/* Only the spans around unstable code points are normalized: text can be cut
 * before any stable code point (class 0, unchanged by NFC, never the second
 * of a composition), so a span runs from the last stable code point before
 * an unstable run (which may compose with it) to the next stable one. */
int qe_nfc(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len) {
    uint8_t *o = malloc(n * 3 + 4); /* NFC never grows UTF-8 more than 3x */
    uint32_t small[256];
    uint32_t *cps = small;
    size_t cps_cap = sizeof small / sizeof small[0];
    if (!o) return -1;
    size_t ol = 0, seg = 0, last_stable = 0, i = 0;
    while (i < n) {
        uint32_t cp;
        int l = s[i] < 0x80 ? (cp = s[i], 1) : qe_utf8_dec(s, i, &cp);
        if (!qe_nfc_unstable(cp)) {
            last_stable = i;
            i += (size_t)l;
            continue;
        }
        size_t st = last_stable > seg ? last_stable : seg;
        size_t j = i + (size_t)l;
        while (j < n) {
            uint32_t c2;
            int l2 = qe_utf8_dec(s, j, &c2);
            if (!qe_nfc_unstable(c2)) break;
            j += (size_t)l2;
        }
        memcpy(o + ol, s + seg, st - seg);
        ol += st - seg;
        if ((j - st) * 4 > cps_cap) {
            uint32_t *nc = malloc((j - st) * 4 * sizeof *nc);
            if (!nc) {
                if (cps != small) free(cps);
                free(o);
                return -1;
            }
            if (cps != small) free(cps);
            cps = nc;
            cps_cap = (j - st) * 4;
        }
        size_t w = nfc_span(s + st, j - st, cps, o + ol);
        if (w == (size_t)-1) {
            if (cps != small) free(cps);
            free(o);
            return -1;
        }
        ol += w;
        seg = i = j;
    }
    memcpy(o + ol, s + seg, n - seg);
    ol += n - seg;
    if (cps != small) free(cps);
    *out = o;
    *out_len = ol;
    return 0;
}
