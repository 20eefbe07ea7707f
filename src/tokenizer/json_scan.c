/* The scanner for model.vocab and model.merges (json_scan.h). */
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "tokenizer/json_scan.h"
#include "tokenizer/tokenizer_internal.h"

/* Why by hand: model.vocab (~150k entries) and model.merges (~150k pairs)
 * are nearly all of tokenizer.json. cJSON would build ~600k nodes for them
 * (about 120 ms and 50 MB of small allocations, over the 150 ms load budget
 * on its own). A scanner finds their byte ranges, the two parsers below read
 * them in place (strings without escapes are not even copied), and cJSON
 * parses the rest of the file with them replaced by {} and []. */
typedef struct jscan {
    const char *p, *end;
} jscan;

void qe_big_free(big_parts *b) {
    free(b->v);
    free(b->arena);
    free(b->mp);
    free(b->marena);
    b->v = NULL;
    b->arena = NULL;
    b->mp = NULL;
    b->marena = NULL;
    b->n = b->cap = b->n_merges = b->mcap = 0;
}

static size_t js_parse_vocab(big_parts *b, const char *start, const char *end, const char **endp);
static size_t js_parse_merges(big_parts *b, const char *start, const char *end, const char **endp);

static void js_ws(jscan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

static int js_skip_string(jscan *s) {
    s->p++;
    while (s->p < s->end) {
        char c = *s->p++;
        if (c == '\\') {
            if (s->p >= s->end) return -1;
            s->p++;
        } else if (c == '"') {
            return 0;
        }
    }
    return -1;
}

/* Skips one value (brackets are balanced; cJSON or the parsers below check
 * the rest). */
static int js_skip(jscan *s) {
    js_ws(s);
    if (s->p >= s->end) return -1;
    char c = *s->p;
    if (c == '"') return js_skip_string(s);
    if (c == '{' || c == '[') {
        int depth = 0;
        while (s->p < s->end) {
            c = *s->p;
            if (c == '"') {
                if (js_skip_string(s)) return -1;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0) {
                s->p++;
                return 0;
            }
            s->p++;
        }
        return -1;
    }
    const char *st = s->p;
    while (s->p < s->end && !strchr(",}] \n\r\t", *s->p)) s->p++;
    return s->p > st ? 0 : -1;
}

static int js_hex4(const char *p, const char *end, uint32_t *v) {
    if (end - p < 4) return -1;
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        x <<= 4;
        if (c >= '0' && c <= '9')
            x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            x |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *v = x;
    return 0;
}

/* The JSON string at s->p: in place when it has no escapes, else unescaped
 * into *arena (never longer than its JSON form). */
static int js_string(jscan *s, char **arena, const char **out, size_t *len) {
    js_ws(s);
    if (s->p >= s->end || *s->p != '"') return -1;
    const char *start = ++s->p, *q = start;
    while (q < s->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
    if (q < s->end && *q == '"') {
        *out = start;
        *len = (size_t)(q - start);
        s->p = q + 1;
        return 0;
    }
    char *o = *arena, *w = o + (q - start);
    memcpy(o, start, (size_t)(q - start));
    while (q < s->end) {
        unsigned char c = (unsigned char)*q;
        if (c == '"') {
            *out = o;
            *len = (size_t)(w - o);
            *arena = w;
            s->p = q + 1;
            return 0;
        }
        if (c < 0x20) return -1;
        if (c != '\\') {
            *w++ = (char)c;
            q++;
            continue;
        }
        if (++q >= s->end) return -1;
        switch (*q) {
            case '"': *w++ = '"'; break;
            case '\\': *w++ = '\\'; break;
            case '/': *w++ = '/'; break;
            case 'b': *w++ = '\b'; break;
            case 'f': *w++ = '\f'; break;
            case 'n': *w++ = '\n'; break;
            case 'r': *w++ = '\r'; break;
            case 't': *w++ = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                if (js_hex4(q + 1, s->end, &cp)) return -1;
                q += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (s->end - q < 7 || q[1] != '\\' || q[2] != 'u' || js_hex4(q + 3, s->end, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return -1;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    q += 6;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return -1;
                }
                w += qe_utf8_enc(cp, (uint8_t *)w);
                break;
            }
            default: return -1;
        }
        q++;
    }
    return -1;
}

static int js_expect(jscan *s, char c) {
    js_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 0;
    }
    return -1;
}

/* Finds model.vocab and model.merges in the top-level object. */
int qe_js_locate(const char *buf, size_t n, big_parts *b) {
    jscan s = {buf, buf + n};
    char *noarena = NULL;
    if (js_expect(&s, '{')) return -1;
    js_ws(&s);
    if (s.p < s.end && *s.p == '}') return 0;
    for (;;) {
        const char *k;
        size_t kl;
        js_ws(&s);
        if (s.p >= s.end || *s.p != '"') return -1;
        const char *kq = s.p;
        if (js_skip_string(&s)) return -1;
        k = kq + 1;
        kl = (size_t)(s.p - kq - 2);
        if (js_expect(&s, ':')) return -1;
        if (kl == 5 && memcmp(k, "model", 5) == 0) {
            js_ws(&s);
            if (s.p < s.end && *s.p == '{') {
                s.p++;
                js_ws(&s);
                if (s.p < s.end && *s.p == '}')
                    s.p++;
                else
                    for (;;) {
                        const char *mk;
                        size_t mkl;
                        (void)noarena;
                        js_ws(&s);
                        if (s.p >= s.end || *s.p != '"') return -1;
                        const char *mq = s.p;
                        if (js_skip_string(&s)) return -1;
                        mk = mq + 1;
                        mkl = (size_t)(s.p - mq - 2);
                        if (js_expect(&s, ':')) return -1;
                        js_ws(&s);
                        const char *vs = s.p, *ve = NULL;
                        int is_vocab = mkl == 5 && memcmp(mk, "vocab", 5) == 0 && vs < s.end && *vs == '{';
                        int is_merges = mkl == 6 && memcmp(mk, "merges", 6) == 0 && vs < s.end && *vs == '[';
                        /* Parsed where found (no second pass over ~10 MB); on a
                         * parse error the error is kept and the value skipped. */
                        if (is_vocab) {
                            b->vocab_err = js_parse_vocab(b, vs, s.end, &ve);
                        } else if (is_merges) {
                            b->merges_err = js_parse_merges(b, vs, s.end, &ve);
                            if (b->merges_err && b->merges_err != (size_t)-1)
                                b->merges_err += (size_t)(vs - buf);
                        }
                        if (ve)
                            s.p = ve;
                        else if (js_skip(&s))
                            return -1;
                        if (is_vocab) {
                            b->vocab = vs;
                            b->vocab_len = (size_t)(s.p - vs);
                        } else if (is_merges) {
                            b->merges = vs;
                            b->merges_len = (size_t)(s.p - vs);
                        }
                        js_ws(&s);
                        if (s.p < s.end && *s.p == ',') {
                            s.p++;
                            continue;
                        }
                        if (js_expect(&s, '}')) return -1;
                        break;
                    }
            } else if (js_skip(&s)) {
                return -1;
            }
        } else if (js_skip(&s)) {
            return -1;
        }
        js_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        return js_expect(&s, '}');
    }
}

/* model.vocab: {"token": id, ...} from start (at '{') into b->v. Returns 0
 * with *endp after the object, or 1 + the offset from start where it is not
 * of that form, or (size_t)-1 when out of memory. */
static size_t js_parse_vocab(big_parts *b, const char *start, const char *end, const char **endp) {
    jscan s = {start, end};
    free(b->v);
    free(b->arena);
    b->n = 0;
    b->cap = 1 << 16;
    b->v = malloc(b->cap * sizeof *b->v);
    b->arena = malloc((size_t)(end - start) + 1); /* only touched for escaped strings */
    if (!b->v || !b->arena) return (size_t)-1;
    char *arena = b->arena;
    s.p++;
    js_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        *endp = s.p + 1;
        return 0;
    }
    for (;;) {
        const char *str;
        size_t sl;
        if (js_string(&s, &arena, &str, &sl) || js_expect(&s, ':')) break;
        js_ws(&s);
        uint64_t id = 0;
        const char *d0 = s.p;
        while (s.p < s.end && *s.p >= '0' && *s.p <= '9' && id < QE_MAX_IDS)
            id = id * 10 + (uint64_t)(*s.p++ - '0');
        if (s.p == d0 || id >= QE_MAX_IDS || (s.p < s.end && (*s.p == '.' || *s.p == 'e' || *s.p == 'E')))
            break;
        if (b->n == b->cap) {
            vocab_entry *nv = realloc(b->v, b->cap * 2 * sizeof *nv);
            if (!nv) return (size_t)-1;
            b->v = nv;
            b->cap *= 2;
        }
        b->v[b->n].s = str;
        b->v[b->n].len = (uint32_t)sl;
        b->v[b->n].id = (int32_t)id;
        b->n++;
        js_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        if (js_expect(&s, '}') == 0) {
            *endp = s.p;
            return 0;
        }
        break;
    }
    return (size_t)(s.p - start) + 1;
}

/* Next entry of model.merges: ["a", "b"] or "a b". Returns 1 with a merge,
 * 0 at the end of the array, -1 when malformed. */
static int js_next_merge(jscan *s, char **arena, int *first, const char **a, size_t *la, const char **b,
                         size_t *lb) {
    js_ws(s);
    if (*first) {
        *first = 0;
        if (s->p < s->end && *s->p == ']') return 0;
    } else {
        if (s->p < s->end && *s->p == ']') return 0;
        if (js_expect(s, ',')) return -1;
        js_ws(s);
    }
    if (s->p < s->end && *s->p == '[') {
        s->p++;
        if (js_string(s, arena, a, la) || js_expect(s, ',') || js_string(s, arena, b, lb) ||
            js_expect(s, ']'))
            return -1;
        return 1;
    }
    const char *str;
    size_t sl;
    if (js_string(s, arena, &str, &sl)) return -1;
    const char *sp = memchr(str, ' ', sl);
    if (!sp || memchr(sp + 1, ' ', sl - (size_t)(sp + 1 - str))) return -1;
    *a = str;
    *la = (size_t)(sp - str);
    *b = sp + 1;
    *lb = sl - *la - 1;
    return 1;
}

/* model.merges from start (at '[') into b->mp: 0 with *endp after the
 * array, or 1 + the offset from start of the malformed entry, or (size_t)-1
 * when out of memory. */
static size_t js_parse_merges(big_parts *b, const char *start, const char *end, const char **endp) {
    jscan ms = {start + 1, end};
    free(b->mp);
    free(b->marena);
    b->n_merges = 0;
    b->mcap = 1 << 16;
    b->mp = malloc(b->mcap * sizeof *b->mp);
    b->marena = malloc((size_t)(end - start) + 1); /* only touched for escaped strings */
    if (!b->mp || !b->marena) return (size_t)-1;
    int first = 1, r;
    char *ar = b->marena;
    const char *a, *bb;
    size_t la, lb;
    for (;;) {
        const char *at = ms.p;
        r = js_next_merge(&ms, &ar, &first, &a, &la, &bb, &lb);
        if (r == 0) {
            ms.p++; /* the closing ']' */
            *endp = ms.p;
            return 0;
        }
        if (r < 0) return (size_t)(at - start) + 1;
        if (b->n_merges == b->mcap) {
            mpair *nm = realloc(b->mp, b->mcap * 2 * sizeof *nm);
            if (!nm) return (size_t)-1;
            b->mp = nm;
            b->mcap *= 2;
        }
        b->mp[b->n_merges].a = a;
        b->mp[b->n_merges].b = bb;
        b->mp[b->n_merges].la = (uint32_t)la;
        b->mp[b->n_merges].lb = (uint32_t)lb;
        b->n_merges++;
    }
}
