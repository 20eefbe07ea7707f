/* Hand-written matcher for the Qwen2/Qwen3 split regex
 *
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * Why by hand: it is on the hot path (every byte of input goes through it),
 * a direct scan is several times faster than PCRE2's JIT here, and its
 * character classes must be the reference's (Unicode 16 via Oniguruma), not
 * PCRE2 10.42's Unicode 14. The classes come from pretok_classes.c, generated
 * by probing the reference itself. The tokenizer uses this matcher only when
 * tokenizer.json's Split pattern is exactly this string (other patterns go to
 * PCRE2), and tests/tokenizer's differential test proves it identical on the
 * corpus.
 *
 * Every code point is \p{L}, \p{N}, \s or other, so some alternative matches
 * at every position: the pieces tile the text and the matcher only has to
 * find where the match that starts at i ends, trying the alternatives in
 * order as the regex engine would (leftmost-first, greedy). */
#include "pretok.h"

#include "common/utf8.h"

const char qe_qwen_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static inline int cls_at(const uint8_t *s, size_t i, uint32_t *cp, int *len) {
    if (s[i] < 0x80) {
        *cp = s[i];
        *len = 1;
    } else {
        *len = qe_utf8_dec(s, i, cp);
    }
    return qe_pretok_class(*cp);
}

/* The ASCII letter a code point folds to for the contraction group, or 0. */
static int fold(uint32_t cp) {
    size_t lo = 0, hi = qe_pretok_nfold;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (qe_pretok_fold[mid][0] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < qe_pretok_nfold && qe_pretok_fold[lo][0] == cp ? (int)qe_pretok_fold[lo][1] : 0;
}

static size_t skip_class(const uint8_t *s, size_t n, size_t j, int k) {
    while (j < n) {
        uint32_t cp;
        int l;
        if (cls_at(s, j, &cp, &l) != k) break;
        j += (size_t)l;
    }
    return j;
}

size_t qe_pretok_qwen_next(const uint8_t *s, size_t n, size_t i) {
    uint32_t c, c2;
    int l, l2;
    int k = cls_at(s, i, &c, &l);
    size_t j = i + (size_t)l;

    /* (?i:'s|'t|'re|'ve|'m|'ll|'d) */
    if (c == '\'' && j < n) {
        cls_at(s, j, &c2, &l2);
        int f = fold(c2);
        if (f == 's') return j + (size_t)l2;
        if (f == 'r' || f == 'l') {
            size_t j3 = j + (size_t)l2;
            if (j3 < n) {
                uint32_t c3;
                int l3;
                cls_at(s, j3, &c3, &l3);
                int f3 = fold(c3);
                if ((f == 'r' && f3 == 'e') || (f == 'l' && f3 == 'l')) return j3 + (size_t)l3;
            }
        }
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (k == QE_CL_L) return skip_class(s, n, j, QE_CL_L);
    if (k != QE_CL_N && c != '\r' && c != '\n' && j < n && cls_at(s, j, &c2, &l2) == QE_CL_L)
        return skip_class(s, n, j + (size_t)l2, QE_CL_L);
    /* \p{N} */
    if (k == QE_CL_N) return j;
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t o = (size_t)-1;
    if (k == QE_CL_O)
        o = i;
    else if (c == ' ' && j < n && cls_at(s, j, &c2, &l2) == QE_CL_O)
        o = j;
    if (o != (size_t)-1) {
        size_t e = skip_class(s, n, o, QE_CL_O);
        while (e < n && (s[e] == '\r' || s[e] == '\n')) e++;
        return e;
    }
    /* Here c is \s. \s*[\r\n]+ ends after the last \r or \n of the whitespace
     * run; \s+(?!\S) leaves the run's last character to the next piece unless
     * the run ends the text; \s+ takes a lone space before non-space. */
    size_t e = i, last_nl = (size_t)-1, last_start = i;
    while (e < n) {
        uint32_t cp;
        int cl;
        if (cls_at(s, e, &cp, &cl) != QE_CL_S) break;
        if (cp == '\r' || cp == '\n') last_nl = e;
        last_start = e;
        e += (size_t)cl;
    }
    if (last_nl != (size_t)-1) return last_nl + 1;
    if (e == n) return e;
    if (last_start > i) return last_start;
    return j;
}
