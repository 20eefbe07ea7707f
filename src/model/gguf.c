/* GGUF v3 files: the header parsed and validated before any tensor is used,
 * the qwen3 metadata read into a qe_config, and the tensors exposed under
 * Hugging Face names (see gguf.h for the contract).
 *
 * Layout (little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 * n_kv x (string key, u32 type, value), n_tensors x (string name, u32 n_dims,
 * u64 ne[n_dims], u32 ggml type, u64 offset), padding to general.alignment
 * (default 32), then the data region; offsets are relative to its start.
 * A string is u64 length + bytes. Hand-written: Debian has no C GGUF reader
 * outside ggml itself, and every count here comes from an untrusted file. */
#include "model/gguf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bounds no real model comes near; they keep every product below 2^63. */
#define GG_MAX_TENSORS (1u << 20)
#define GG_MAX_KV (1u << 20)
#define GG_MAX_NAME 255
#define GG_MAX_DIM (INT64_C(1) << 40)

int qe_ggml_type_info(uint32_t type, uint64_t *blck, uint64_t *bytes) {
    uint64_t b = 0, s = 0;
    switch (type) {
        case QE_GGML_F32: b = 1, s = 4; break;
        case QE_GGML_F16: b = 1, s = 2; break;
        case QE_GGML_BF16: b = 1, s = 2; break;
        case QE_GGML_Q4_0: b = 32, s = 18; break;
        case QE_GGML_Q4_1: b = 32, s = 20; break;
        case QE_GGML_Q5_0: b = 32, s = 22; break;
        case QE_GGML_Q5_1: b = 32, s = 24; break;
        case QE_GGML_Q8_0: b = 32, s = 34; break;
        case QE_GGML_Q8_1: b = 32, s = 36; break;
        case QE_GGML_Q2_K: b = 256, s = 84; break;
        case QE_GGML_Q3_K: b = 256, s = 110; break;
        case QE_GGML_Q4_K: b = 256, s = 144; break;
        case QE_GGML_Q5_K: b = 256, s = 176; break;
        case QE_GGML_Q6_K: b = 256, s = 210; break;
        case QE_GGML_Q8_K: b = 256, s = 292; break;
        default: return 0;
    }
    if (blck) *blck = b;
    if (bytes) *bytes = s;
    return 1;
}

const char *qe_ggml_type_name(uint32_t type) {
    switch (type) {
        case QE_GGML_F32: return "F32";
        case QE_GGML_F16: return "F16";
        case QE_GGML_BF16: return "BF16";
        case QE_GGML_Q4_0: return "Q4_0";
        case QE_GGML_Q4_1: return "Q4_1";
        case QE_GGML_Q5_0: return "Q5_0";
        case QE_GGML_Q5_1: return "Q5_1";
        case QE_GGML_Q8_0: return "Q8_0";
        case QE_GGML_Q8_1: return "Q8_1";
        case QE_GGML_Q2_K: return "Q2_K";
        case QE_GGML_Q3_K: return "Q3_K";
        case QE_GGML_Q4_K: return "Q4_K";
        case QE_GGML_Q5_K: return "Q5_K";
        case QE_GGML_Q6_K: return "Q6_K";
        case QE_GGML_Q8_K: return "Q8_K";
    }
    return "unknown";
}

/* A bounded reader over the file: every read checks the remaining bytes. */
typedef struct rd {
    const uint8_t *p;
    size_t size, pos;
} rd;

static int rd_u32(rd *r, uint32_t *v) {
    if (r->size - r->pos < 4) return 0;
    const uint8_t *b = r->p + r->pos;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    r->pos += 4;
    return 1;
}

static int rd_u64(rd *r, uint64_t *v) {
    if (r->size - r->pos < 8) return 0;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = x << 8 | r->p[r->pos + (size_t)i];
    *v = x;
    r->pos += 8;
    return 1;
}

/* A string: u64 length, then that many bytes, all inside the file. */
static int rd_str(rd *r, const char **s, uint64_t *len) {
    uint64_t n;
    if (!rd_u64(r, &n)) return 0;
    if (n > r->size - r->pos) return -1;
    *s = (const char *)r->p + r->pos;
    *len = n;
    r->pos += (size_t)n;
    return 1;
}

static uint64_t scalar_size(uint32_t t) {
    switch (t) {
        case QE_GGUF_U8:
        case QE_GGUF_I8:
        case QE_GGUF_BOOL: return 1;
        case QE_GGUF_U16:
        case QE_GGUF_I16: return 2;
        case QE_GGUF_U32:
        case QE_GGUF_I32:
        case QE_GGUF_F32: return 4;
        case QE_GGUF_U64:
        case QE_GGUF_I64:
        case QE_GGUF_F64: return 8;
    }
    return 0;
}

void qe_gguf_free(qe_gguf *g) {
    if (!g) return;
    free(g->kv);
    free(g->tensors);
    free(g);
}

static int cmp_off(const void *a, const void *b) {
    const qe_gguf_tensor *x = *(const qe_gguf_tensor *const *)a, *y = *(const qe_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

#define GG_FAIL(...)                                              \
    do {                                                          \
        st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, __VA_ARGS__); \
        goto fail;                                                \
    } while (0)

qembed_status qe_gguf_parse(const void *file, size_t size, const char *origin, qe_gguf **out,
                            qembed_error *err) {
    if (!out) QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "qe_gguf_parse: no output");
    *out = NULL;
    if (!origin) origin = "gguf";
    if (!file && size) QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "%s: no data", origin);
    rd r = {.p = file, .size = size, .pos = 0};
    qembed_status st = QEMBED_OK;
    qe_gguf_tensor **by_off = NULL;
    qe_gguf *g = calloc(1, sizeof *g);
    if (!g) QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", origin);
    if (size < 24)
        GG_FAIL("%s: file is %zu bytes, too short for a GGUF header (24 bytes): truncated or not a GGUF file",
                origin, size);
    if (memcmp(file, "GGUF", 4) != 0)
        GG_FAIL("%s: bad magic %02x %02x %02x %02x (expected \"GGUF\"): not a GGUF file", origin, r.p[0],
                r.p[1], r.p[2], r.p[3]);
    r.pos = 4;
    uint32_t version;
    rd_u32(&r, &version);
    if (version != 3) {
        st = qe_error(err, QEMBED_ERR_UNSUPPORTED, "%s: GGUF version %u; qembed reads version 3", origin,
                      version);
        goto fail;
    }
    rd_u64(&r, &g->n_tensors);
    rd_u64(&r, &g->n_kv);
    if (g->n_tensors > GG_MAX_TENSORS)
        GG_FAIL("%s: header declares %llu tensors (at most %u accepted): corrupted count", origin,
                (unsigned long long)g->n_tensors, GG_MAX_TENSORS);
    if (g->n_kv > GG_MAX_KV)
        GG_FAIL("%s: header declares %llu metadata entries (at most %u accepted): corrupted count", origin,
                (unsigned long long)g->n_kv, GG_MAX_KV);
    /* Each entry needs at least 12 bytes (kv) / 24 bytes (tensor): a count the
     * file cannot hold is refused before anything is allocated for it. */
    if (g->n_kv * 12 > size - r.pos || g->n_tensors * 24 > size - r.pos)
        GG_FAIL("%s: header declares %llu metadata entries and %llu tensors, more than the %zu-byte file can "
                "hold: truncated or corrupted",
                origin, (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors, size);
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) {
        st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", origin);
        goto fail;
    }
    g->alignment = 32;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        qe_gguf_kv *kv = &g->kv[i];
        const char *k;
        uint64_t klen;
        int rs = rd_str(&r, &k, &klen);
        if (rs <= 0)
            GG_FAIL("%s: metadata entry %llu: key %s at byte %zu", origin, (unsigned long long)i,
                    rs == 0 ? "runs past the end of the file (truncated)" : "is longer than the file", r.pos);
        if (klen == 0 || klen > 65535)
            GG_FAIL("%s: metadata entry %llu: key length %llu", origin, (unsigned long long)i,
                    (unsigned long long)klen);
        kv->key = k;
        kv->key_len = (size_t)klen;
        if (!rd_u32(&r, &kv->type)) GG_FAIL("%s: metadata \"%.*s\": truncated", origin, (int)klen, k);
        uint64_t es;
        if (kv->type == QE_GGUF_STRING) {
            const char *s;
            uint64_t n;
            rs = rd_str(&r, &s, &n);
            if (rs <= 0)
                GG_FAIL("%s: metadata \"%.*s\": string %s", origin, (int)klen, k,
                        rs == 0 ? "truncated" : "longer than the file");
            kv->val = (const uint8_t *)s;
            kv->count = n;
        } else if (kv->type == QE_GGUF_ARRAY) {
            uint64_t n;
            if (!rd_u32(&r, &kv->arr_type) || !rd_u64(&r, &n))
                GG_FAIL("%s: metadata \"%.*s\": truncated array header", origin, (int)klen, k);
            kv->val = r.p + r.pos;
            kv->count = n;
            if (kv->arr_type == QE_GGUF_STRING) {
                if (n > (r.size - r.pos) / 8)
                    GG_FAIL("%s: metadata \"%.*s\": %llu strings cannot fit in the file", origin, (int)klen,
                            k, (unsigned long long)n);
                for (uint64_t j = 0; j < n; j++) {
                    const char *s;
                    uint64_t sl;
                    rs = rd_str(&r, &s, &sl);
                    if (rs <= 0)
                        GG_FAIL("%s: metadata \"%.*s\": string %llu %s", origin, (int)klen, k,
                                (unsigned long long)j, rs == 0 ? "truncated" : "longer than the file");
                }
            } else if ((es = scalar_size(kv->arr_type)) != 0) {
                if (n > (r.size - r.pos) / es)
                    GG_FAIL("%s: metadata \"%.*s\": array of %llu elements runs past the end of the file",
                            origin, (int)klen, k, (unsigned long long)n);
                r.pos += (size_t)(n * es);
            } else {
                GG_FAIL(
                    "%s: metadata \"%.*s\": array element type %u not supported (nested arrays are not used "
                    "by models)",
                    origin, (int)klen, k, kv->arr_type);
            }
        } else if ((es = scalar_size(kv->type)) != 0) {
            if (r.size - r.pos < es) GG_FAIL("%s: metadata \"%.*s\": truncated value", origin, (int)klen, k);
            kv->val = r.p + r.pos;
            kv->count = 1;
            r.pos += (size_t)es;
        } else {
            GG_FAIL("%s: metadata \"%.*s\": unknown value type %u", origin, (int)klen, k, kv->type);
        }
        if (klen == 17 && !memcmp(k, "general.alignment", 17)) {
            if (kv->type != QE_GGUF_U32)
                GG_FAIL("%s: general.alignment has type %u, expected u32", origin, kv->type);
            uint32_t a = (uint32_t)kv->val[0] | (uint32_t)kv->val[1] << 8 | (uint32_t)kv->val[2] << 16 |
                         (uint32_t)kv->val[3] << 24;
            if (a == 0 || (a & (a - 1)) || a > 65536)
                GG_FAIL("%s: general.alignment is %u, expected a power of two up to 65536", origin, a);
            g->alignment = a;
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        qe_gguf_tensor *t = &g->tensors[i];
        const char *nm;
        uint64_t nl;
        int rs = rd_str(&r, &nm, &nl);
        if (rs <= 0)
            GG_FAIL("%s: tensor info %llu: name %s", origin, (unsigned long long)i,
                    rs == 0 ? "truncated" : "longer than the file");
        if (nl == 0 || nl > GG_MAX_NAME || memchr(nm, '\0', (size_t)nl))
            GG_FAIL("%s: tensor info %llu: name of %llu bytes (expected 1 to %d, no NUL)", origin,
                    (unsigned long long)i, (unsigned long long)nl, GG_MAX_NAME);
        memcpy(t->name, nm, (size_t)nl);
        t->name[nl] = '\0';
        if (!rd_u32(&r, &t->n_dims)) GG_FAIL("%s: tensor \"%s\": truncated", origin, t->name);
        if (t->n_dims < 1 || t->n_dims > 4)
            GG_FAIL("%s: tensor \"%s\": %u dimensions (expected 1 to 4)", origin, t->name, t->n_dims);
        uint64_t numel = 1;
        for (uint32_t d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t v;
            if (!rd_u64(&r, &v)) GG_FAIL("%s: tensor \"%s\": truncated", origin, t->name);
            if (v > (uint64_t)GG_MAX_DIM)
                GG_FAIL("%s: tensor \"%s\": dimension %u is %llu (at most 2^40)", origin, t->name, d,
                        (unsigned long long)v);
            t->ne[d] = (int64_t)v;
            if (__builtin_mul_overflow(numel, v, &numel))
                GG_FAIL("%s: tensor \"%s\": element count overflows", origin, t->name);
        }
        if (!rd_u32(&r, &t->type) || !rd_u64(&r, &t->offset))
            GG_FAIL("%s: tensor \"%s\": truncated", origin, t->name);
        uint64_t blck, bb;
        if (!qe_ggml_type_info(t->type, &blck, &bb)) {
            st = qe_error(err, QEMBED_ERR_UNSUPPORTED,
                          "%s: tensor \"%s\" has ggml type %u, which qembed does not know", origin, t->name,
                          t->type);
            goto fail;
        }
        if (t->ne[0] % (int64_t)blck != 0)
            GG_FAIL("%s: tensor \"%s\": row of %lld elements is not a multiple of the %s block (%llu)",
                    origin, t->name, (long long)t->ne[0], qe_ggml_type_name(t->type),
                    (unsigned long long)blck);
        if (__builtin_mul_overflow(numel / blck, bb, &t->bytes))
            GG_FAIL("%s: tensor \"%s\": byte size overflows", origin, t->name);
        if (t->offset % g->alignment != 0)
            GG_FAIL("%s: tensor \"%s\": offset %llu is not aligned to %llu bytes", origin, t->name,
                    (unsigned long long)t->offset, (unsigned long long)g->alignment);
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(g->tensors[j].name, t->name))
                GG_FAIL("%s: tensor \"%s\" is declared twice", origin, t->name);
    }
    uint64_t ds = ((uint64_t)r.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (ds > size && g->n_tensors)
        GG_FAIL("%s: the data region would start at byte %llu, past the end of the %zu-byte file (truncated)",
                origin, (unsigned long long)ds, size);
    g->data_start = ds;
    uint64_t dsize = ds <= size ? size - ds : 0;
    /* Each range inside the data region, and no two overlap. */
    by_off = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *by_off);
    if (!by_off) {
        st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", origin);
        goto fail;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        qe_gguf_tensor *t = &g->tensors[i];
        if (t->offset > dsize || t->bytes > dsize - t->offset)
            GG_FAIL("%s: tensor \"%s\": bytes [%llu, %llu) of the data region lie past its end (%llu bytes): "
                    "file truncated or corrupted",
                    origin, t->name, (unsigned long long)t->offset,
                    (unsigned long long)(t->offset + t->bytes), (unsigned long long)dsize);
        by_off[i] = t;
    }
    qsort(by_off, (size_t)g->n_tensors, sizeof *by_off, cmp_off);
    for (uint64_t i = 1; i < g->n_tensors; i++)
        if (by_off[i - 1]->offset + by_off[i - 1]->bytes > by_off[i]->offset)
            GG_FAIL("%s: tensors \"%s\" and \"%s\" overlap (bytes %llu+%llu and %llu)", origin,
                    by_off[i - 1]->name, by_off[i]->name, (unsigned long long)by_off[i - 1]->offset,
                    (unsigned long long)by_off[i - 1]->bytes, (unsigned long long)by_off[i]->offset);
    free(by_off);
    *out = g;
    return QEMBED_OK;
fail:
    free(by_off);
    qe_gguf_free(g);
    return st;
}

const qe_gguf_kv *qe_gguf_find(const qe_gguf *g, const char *key) {
    if (!g || !key) return NULL;
    size_t n = strlen(key);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key_len == n && !memcmp(g->kv[i].key, key, n)) return &g->kv[i];
    return NULL;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--) x = x << 8 | p[i];
    return x;
}

int qe_gguf_get_int(const qe_gguf *g, const char *key, int64_t *out) {
    const qe_gguf_kv *kv = qe_gguf_find(g, key);
    if (!kv) return 0;
    uint64_t u;
    switch (kv->type) {
        case QE_GGUF_U8:
        case QE_GGUF_BOOL: *out = kv->val[0]; return 1;
        case QE_GGUF_I8: *out = (int8_t)kv->val[0]; return 1;
        case QE_GGUF_U16: *out = (int64_t)le(kv->val, 2); return 1;
        case QE_GGUF_I16: *out = (int16_t)le(kv->val, 2); return 1;
        case QE_GGUF_U32: *out = (int64_t)le(kv->val, 4); return 1;
        case QE_GGUF_I32: *out = (int32_t)le(kv->val, 4); return 1;
        case QE_GGUF_U64:
            u = le(kv->val, 8);
            if (u > INT64_MAX) return 0;
            *out = (int64_t)u;
            return 1;
        case QE_GGUF_I64: *out = (int64_t)le(kv->val, 8); return 1;
    }
    return 0;
}

int qe_gguf_get_f64(const qe_gguf *g, const char *key, double *out) {
    const qe_gguf_kv *kv = qe_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type == QE_GGUF_F32) {
        uint32_t b = (uint32_t)le(kv->val, 4);
        float f;
        memcpy(&f, &b, 4);
        *out = f;
        return 1;
    }
    if (kv->type == QE_GGUF_F64) {
        uint64_t b = le(kv->val, 8);
        memcpy(out, &b, 8);
        return 1;
    }
    int64_t i;
    if (qe_gguf_get_int(g, key, &i)) {
        *out = (double)i;
        return 1;
    }
    return 0;
}

int qe_gguf_get_str(const qe_gguf *g, const char *key, const char **s, size_t *len) {
    const qe_gguf_kv *kv = qe_gguf_find(g, key);
    if (!kv || kv->type != QE_GGUF_STRING) return 0;
    *s = (const char *)kv->val;
    *len = (size_t)kv->count;
    return 1;
}

const char *qe_gguf_next_str(const uint8_t **cursor, uint64_t *len) {
    uint64_t n = le(*cursor, 8);
    const char *s = (const char *)*cursor + 8;
    *cursor += 8 + n;
    *len = n;
    return s;
}
