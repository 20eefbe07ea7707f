/* safetensors files, memory-mapped read-only and validated before use.
 *
 * Format: u64 little-endian header length N, then N bytes of JSON
 *   {"__metadata__": {...}, "name": {"dtype": "BF16", "shape": [r, c],
 *    "data_offsets": [begin, end]}, ...}
 * then the data region; offsets are relative to its start (8 + N).
 * Nothing read from the file is trusted: every length and offset is checked
 * against the real file size before a pointer is formed. */
#include "model/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/file.h"

/* The reference implementation refuses headers over 100 MB. */
#define QE_ST_MAX_HEADER (100u << 20)
/* Any single dimension above this is nonsense for a weight (and keeps the
 * products below 2^63). */
#define QE_ST_MAX_DIM (1ll << 40)
/* Largest index.json accepted (real ones are ~30 KB). */
#define QE_INDEX_MAX_BYTES (64u << 20)

typedef struct ck_file {
    char *path;
    void *map; /* the whole file, PROT_READ, MAP_PRIVATE */
    size_t size;
    void *owned; /* heap data some tensors point into (GGUF Q8_0 dequantized), or NULL */
} ck_file;

typedef struct ck_tensor {
    qe_tensor t; /* first member: qe_checkpoint_file_of casts back */
    int file;
} ck_tensor;

struct qe_checkpoint {
    ck_file *files;
    size_t n_files, cap_files;
    ck_tensor *tensors;
    size_t n_tensors, cap_tensors;
    int sorted;
    char *source; /* the directory or file it was opened from, for messages */
};

qe_checkpoint *qe_checkpoint_new(void) {
    return calloc(1, sizeof(qe_checkpoint));
}

void qe_checkpoint_free(qe_checkpoint *ck) {
    if (!ck) return;
    for (size_t i = 0; i < ck->n_tensors; i++) free((char *)ck->tensors[i].t.name);
    for (size_t i = 0; i < ck->n_files; i++) {
        if (ck->files[i].map) munmap(ck->files[i].map, ck->files[i].size);
        free(ck->files[i].owned);
        free(ck->files[i].path);
    }
    free(ck->tensors);
    free(ck->files);
    free(ck->source);
    free(ck);
}

static int parse_dtype(const char *s, qe_dtype *out) {
    if (!strcmp(s, "BF16"))
        *out = QE_BF16;
    else if (!strcmp(s, "F16"))
        *out = QE_F16;
    else if (!strcmp(s, "F32"))
        *out = QE_F32;
    else
        return 0;
    return 1;
}

/* A JSON number that is a non-negative integer no larger than max. */
static int json_uint(const cJSON *it, int64_t max, int64_t *out) {
    if (!cJSON_IsNumber(it)) return 0;
    double v = it->valuedouble;
    if (!(v >= 0) || v != floor(v) || v > (double)max) return 0;
    *out = (int64_t)v;
    return 1;
}

static void shape_str(int nd, const int64_t *shape, char *buf, size_t n) {
    if (nd == 0)
        snprintf(buf, n, "[]");
    else if (nd == 1)
        snprintf(buf, n, "[%lld]", (long long)shape[0]);
    else
        snprintf(buf, n, "[%lld, %lld]", (long long)shape[0], (long long)shape[1]);
}

static void entries_free(qe_st_entry *e, size_t n) {
    if (!e) return;
    for (size_t i = 0; i < n; i++) free(e[i].name);
    free(e);
}

void qe_safetensors_entries_free(qe_st_entry *entries, size_t n) {
    entries_free(entries, n);
}

qembed_status qe_safetensors_parse(const void *file, size_t size, const char *origin, qe_st_entry **out,
                                   size_t *n_out, size_t *data_start, qembed_error *err) {
    *out = NULL;
    *n_out = 0;
    if (!origin) origin = "safetensors";
    const unsigned char *p = file;
    if (size < 8)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: file is %zu bytes, too short for a safetensors header (expected at least 8)", origin,
                size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > size - 8)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: header length %llu is larger than the file allows (%zu bytes after the 8-byte length): "
                "truncated or not a safetensors file",
                origin, (unsigned long long)hlen, size - 8);
    if (hlen < 2 || hlen > QE_ST_MAX_HEADER)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: header length %llu, expected 2 to %u bytes", origin,
                (unsigned long long)hlen, QE_ST_MAX_HEADER);
    const char *hdr = (const char *)p + 8;
    if (hdr[0] != '{')
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: header does not start with '{' (byte 8 is 0x%02x): not a safetensors file", origin,
                (unsigned char)hdr[0]);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        size_t off = (end && end >= hdr && end <= hdr + hlen) ? (size_t)(end - hdr) + 8 : 8;
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: header is not valid JSON (parse error near byte %zu)",
                origin, off);
    }
    /* Only trailing padding (spaces, as the reference writes) may follow the JSON. */
    for (const char *q = end; q && q < hdr + hlen; q++) {
        if (*q != ' ' && *q != '\n' && *q != '\t' && *q != '\r' && *q != '\0') {
            cJSON_Delete(root);
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                    "%s: unexpected byte 0x%02x after the header JSON at byte %zu", origin, (unsigned char)*q,
                    (size_t)(q - hdr) + 8);
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: header is not a JSON object", origin);
    }
    const uint64_t dstart = 8 + hlen;
    const uint64_t dsize = size - dstart;
    size_t cap = (size_t)cJSON_GetArraySize(root);
    qe_st_entry *e = calloc(cap ? cap : 1, sizeof *e);
    if (!e) {
        cJSON_Delete(root);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu tensor entries", origin, cap);
    }
    size_t n = 0;
    qembed_status st = QEMBED_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        const char *name = it->string ? it->string : "";
        if (!strcmp(name, "__metadata__")) continue; /* free-form strings; not needed */
        if (!name[0]) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, "%s: header has a tensor with an empty name", origin);
            break;
        }
        if (!cJSON_IsObject(it)) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: tensor \"%.200s\": expected an object in the header", origin, name);
            break;
        }
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *jo = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(jd)) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: tensor \"%.200s\": \"dtype\" missing or not a string", origin, name);
            break;
        }
        qe_st_entry *x = &e[n];
        if (!parse_dtype(jd->valuestring, &x->dtype)) {
            st = qe_error(err, QEMBED_ERR_UNSUPPORTED,
                          "%s: tensor \"%.200s\" has dtype \"%.20s\"; supported: BF16, F16, F32", origin,
                          name, jd->valuestring);
            break;
        }
        if (!cJSON_IsArray(js)) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: tensor \"%.200s\": \"shape\" missing or not an array", origin, name);
            break;
        }
        int nd = cJSON_GetArraySize(js);
        if (nd > 2) {
            st = qe_error(err, QEMBED_ERR_UNSUPPORTED,
                          "%s: tensor \"%.200s\" has %d dimensions; weights have 1 or 2", origin, name, nd);
            break;
        }
        x->ndim = nd;
        x->shape[0] = x->shape[1] = 0;
        uint64_t numel = 1;
        int bad = 0;
        for (int d = 0; d < nd; d++) {
            int64_t v;
            if (!json_uint(cJSON_GetArrayItem(js, d), QE_ST_MAX_DIM, &v)) {
                bad = 1;
                break;
            }
            x->shape[d] = v;
            if (__builtin_mul_overflow(numel, (uint64_t)v, &numel)) bad = 2;
        }
        if (bad) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          bad == 2 ? "%s: tensor \"%.200s\": shape has more elements than 2^64"
                                   : "%s: tensor \"%.200s\": shape entries must be integers in [0, 2^40]",
                          origin, name);
            break;
        }
        int64_t b, en;
        if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 ||
            !json_uint(cJSON_GetArrayItem(jo, 0), INT64_C(1) << 53, &b) ||
            !json_uint(cJSON_GetArrayItem(jo, 1), INT64_C(1) << 53, &en)) {
            st =
                qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                         "%s: tensor \"%.200s\": \"data_offsets\" must be [begin, end] non-negative integers",
                         origin, name);
            break;
        }
        if (b > en) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: tensor \"%.200s\": data_offsets [%lld, %lld] begin after they end", origin,
                          name, (long long)b, (long long)en);
            break;
        }
        if ((uint64_t)en > dsize) {
            st =
                qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                         "%s: tensor \"%.200s\": data_offsets [%lld, %lld] lie outside the data region (%llu "
                         "bytes, file offset %llu): file truncated or corrupted",
                         origin, name, (long long)b, (long long)en, (unsigned long long)dsize,
                         (unsigned long long)dstart);
            break;
        }
        uint64_t want = 0;
        if (__builtin_mul_overflow(numel, (uint64_t)qe_dtype_size(x->dtype), &want) ||
            want != (uint64_t)(en - b)) {
            char sh[64];
            shape_str(x->ndim, x->shape, sh, sizeof sh);
            st = qe_error(
                err, QEMBED_ERR_MODEL_FORMAT,
                "%s: tensor \"%.200s\": %s %s needs %llu bytes but data_offsets [%lld, %lld] span %lld",
                origin, name, qe_dtype_name(x->dtype), sh,
                (unsigned long long)(numel * qe_dtype_size(x->dtype)), (long long)b, (long long)en,
                (long long)(en - b));
            break;
        }
        /* Kernels read elements with aligned loads; the reference writer pads
         * the header so every tensor is aligned. */
        if ((dstart + (uint64_t)b) % qe_dtype_size(x->dtype) != 0) {
            st = qe_error(
                err, QEMBED_ERR_MODEL_FORMAT,
                "%s: tensor \"%.200s\" starts at file offset %llu, not aligned to its %zu-byte elements",
                origin, name, (unsigned long long)(dstart + b), qe_dtype_size(x->dtype));
            break;
        }
        x->begin = (uint64_t)b;
        x->end = (uint64_t)en;
        x->name = strdup(name);
        if (!x->name) {
            st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", origin);
            break;
        }
        n++;
    }
    cJSON_Delete(root);
    if (st != QEMBED_OK) {
        entries_free(e, n);
        return st;
    }
    *out = e;
    *n_out = n;
    if (data_start) *data_start = (size_t)dstart;
    return QEMBED_OK;
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const ck_tensor *)a)->t.name, ((const ck_tensor *)b)->t.name);
}

static void ensure_sorted(qe_checkpoint *ck) {
    if (ck->sorted) return;
    qsort(ck->tensors, ck->n_tensors, sizeof *ck->tensors, cmp_tensor);
    ck->sorted = 1;
}

qembed_status qe_checkpoint_add_file(qe_checkpoint *ck, const char *path, qembed_error *err) {
    if (!ck || !path)
        QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "qe_checkpoint_add_file: no checkpoint or path");
    void *map;
    size_t size;
    QE_TRY(
        qe_map_file(path, 8, "too short for a safetensors header (expected at least 8)", &map, &size, err));
#ifdef MADV_HUGEPAGE
    /* Weights are streamed at memory bandwidth; 2 MB pages cut TLB misses.
     * Measured on the dev VM (kernel 6.18): the page cache already uses large
     * folios and maps this file with PMDs without being asked (FilePmdMapped =
     * whole 0.6b file, same read speed with or without this call). On kernels
     * where file THP needs khugepaged (CONFIG_READ_ONLY_THP_FOR_FS, e.g. 6.1)
     * VM_HUGEPAGE is what makes it collapse the mapping. Advisory: failure is
     * fine, and the call is free. */
    (void)madvise(map, size, MADV_HUGEPAGE);
#endif

    qe_st_entry *ents = NULL;
    size_t n = 0, dstart = 0;
    qembed_status st = qe_safetensors_parse(map, size, path, &ents, &n, &dstart, err);
    if (st != QEMBED_OK) {
        munmap(map, size);
        return st;
    }
    if (ck->n_files == ck->cap_files) {
        size_t nc = ck->cap_files ? ck->cap_files * 2 : 4;
        ck_file *nf = realloc(ck->files, nc * sizeof *nf);
        if (!nf) goto oom;
        ck->files = nf;
        ck->cap_files = nc;
    }
    if (ck->n_tensors + n > ck->cap_tensors) {
        size_t nc = ck->cap_tensors ? ck->cap_tensors : 64;
        while (nc < ck->n_tensors + n) nc *= 2;
        ck_tensor *nt = realloc(ck->tensors, nc * sizeof *nt);
        if (!nt) goto oom;
        ck->tensors = nt;
        ck->cap_tensors = nc;
    }
    char *pcopy = strdup(path);
    if (!pcopy) goto oom;
    int fi = (int)ck->n_files;
    ck->files[ck->n_files++] = (ck_file){.path = pcopy, .map = map, .size = size};
    for (size_t i = 0; i < n; i++) {
        ck_tensor *t = &ck->tensors[ck->n_tensors++];
        t->file = fi;
        t->t.data = (const char *)map + dstart + ents[i].begin;
        t->t.dtype = ents[i].dtype;
        t->t.ndim = ents[i].ndim;
        t->t.shape[0] = ents[i].shape[0];
        t->t.shape[1] = ents[i].shape[1];
        t->t.name = ents[i].name; /* ownership moves to the checkpoint */
        ents[i].name = NULL;
    }
    free(ents);
    ck->sorted = 0;
    ensure_sorted(ck);
    /* Names must be unique within and across files: a tensor given twice is
     * an inconsistent checkpoint, not a choice to make silently. */
    for (size_t i = 1; i < ck->n_tensors; i++) {
        if (strcmp(ck->tensors[i - 1].t.name, ck->tensors[i].t.name) != 0) continue;
        const ck_tensor *a = &ck->tensors[i - 1], *b = &ck->tensors[i];
        st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, "%s: tensor \"%.200s\" is given twice (also in %s)", path,
                      a->t.name, ck->files[a->file == fi ? b->file : a->file].path);
        /* roll this file back out */
        size_t w = 0;
        for (size_t r = 0; r < ck->n_tensors; r++) {
            if (ck->tensors[r].file == fi)
                free((char *)ck->tensors[r].t.name);
            else
                ck->tensors[w++] = ck->tensors[r];
        }
        ck->n_tensors = w;
        ck->n_files--;
        free(ck->files[ck->n_files].path);
        munmap(map, size);
        return st;
    }
    return QEMBED_OK;
oom:
    munmap(map, size);
    qe_safetensors_entries_free(ents, n);
    QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
}

qembed_status qe_checkpoint_adopt(qe_checkpoint *ck, const char *path, void *map, size_t size, void *owned,
                                  const qe_tensor *ts, size_t n, qembed_error *err) {
    if (!ck || !path) QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "qe_checkpoint_adopt: no checkpoint or path");
    if (ck->n_tensors != 0 || ck->n_files != 0)
        QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "%s: a GGUF file is a whole model; it cannot join others",
                path);
    ck->files = calloc(1, sizeof *ck->files);
    ck->tensors = calloc(n ? n : 1, sizeof *ck->tensors);
    char *pcopy = strdup(path);
    ck->source = strdup(path);
    if (!ck->files || !ck->tensors || !pcopy || !ck->source) {
        free(pcopy);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    ck->cap_files = 1;
    ck->cap_tensors = n ? n : 1;
    ck->files[0] = (ck_file){.path = pcopy, .map = map, .size = size, .owned = owned};
    ck->n_files = 1;
    for (size_t i = 0; i < n; i++) {
        ck_tensor *t = &ck->tensors[ck->n_tensors];
        t->t = ts[i];
        t->file = 0;
        t->t.name = strdup(ts[i].name);
        if (!t->t.name) QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        ck->n_tensors++;
    }
    ck->sorted = 0;
    ensure_sorted(ck);
    for (size_t i = 1; i < ck->n_tensors; i++)
        if (!strcmp(ck->tensors[i - 1].t.name, ck->tensors[i].t.name))
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: tensor \"%.200s\" is given twice", path,
                    ck->tensors[i].t.name);
    return QEMBED_OK;
}

/* A shard name from index.json must be a plain file name in the model
 * directory: never a path that leaves it. */
static int safe_shard_name(const char *s) {
    return s[0] && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\') && strlen(s) < 512;
}

static qembed_status open_index(qe_checkpoint *ck, const char *dir, const char *ipath, qembed_error *err) {
    qembed_status st = QEMBED_OK;
    size_t len = 0;
    char *text = NULL;
    if ((st = qe_read_file(ipath, QE_INDEX_MAX_BYTES, &text, &len, err))) return st;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: not valid JSON", ipath);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm) || !wm->child) {
        cJSON_Delete(root);
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: field \"weight_map\" missing or empty (expected an object "
                "mapping tensor names to shard files)",
                ipath);
    }
    /* Open each distinct shard once, in order of first mention. */
    const cJSON *it;
    cJSON_ArrayForEach(it, wm) {
        if (!cJSON_IsString(it) || !safe_shard_name(it->valuestring)) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: weight_map[\"%.200s\"] must be a file name in the model directory", ipath,
                          it->string ? it->string : "");
            goto done;
        }
        int seen = 0;
        for (size_t i = 0; i < ck->n_files && !seen; i++) {
            const char *base = strrchr(ck->files[i].path, '/');
            seen = !strcmp(base ? base + 1 : ck->files[i].path, it->valuestring);
        }
        if (seen) continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, it->valuestring) >= (int)sizeof path) {
            st = qe_error(err, QEMBED_ERR_INVALID_ARGUMENT, "%s: shard path too long", ipath);
            goto done;
        }
        if (access(path, F_OK) != 0) {
            st = qe_error(err, QEMBED_ERR_IO, "%s: shard \"%s\" (holding tensor \"%.200s\") is missing: %s",
                          ipath, it->valuestring, it->string ? it->string : "", path);
            goto done;
        }
        st = qe_checkpoint_add_file(ck, path, err);
        if (st != QEMBED_OK) goto done;
    }
    /* Every tensor the index promises must be where it says. */
    cJSON_ArrayForEach(it, wm) {
        const qe_tensor *t = qe_checkpoint_find(ck, it->string);
        const char *file = t ? qe_checkpoint_file_of(ck, t) : NULL;
        const char *base = file ? strrchr(file, '/') : NULL;
        base = base ? base + 1 : file;
        if (!t || !base || strcmp(base, it->valuestring) != 0 || strcmp(t->name, it->string) != 0) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: tensor \"%.200s\" is listed in %s but not found there", ipath, it->string,
                          it->valuestring);
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    return st;
}

qembed_status qe_checkpoint_open_dir(const char *dir, qe_checkpoint **out, qembed_error *err) {
    if (!out) QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "qe_checkpoint_open_dir: no output");
    *out = NULL;
    if (!dir) QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "qe_checkpoint_open_dir: no directory");
    struct stat sb;
    if (stat(dir, &sb) != 0)
        QE_FAIL(err, QEMBED_ERR_IO, "%s: cannot open model directory: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) QE_FAIL(err, QEMBED_ERR_IO, "%s: not a directory", dir);
    char single[4096], index[4096];
    if (snprintf(single, sizeof single, "%s/model.safetensors", dir) >= (int)sizeof single ||
        snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir) >= (int)sizeof index)
        QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
    qe_checkpoint *ck = qe_checkpoint_new();
    if (!ck) QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
    qembed_status st;
    /* The single file wins when both exist (transformers does the same). */
    if (access(single, F_OK) == 0) {
        ck->source = strdup(single);
        st = qe_checkpoint_add_file(ck, single, err);
    } else if (access(index, F_OK) == 0) {
        ck->source = strdup(index);
        st = open_index(ck, dir, index, err);
    } else {
        char bin[4096];
        snprintf(bin, sizeof bin, "%s/pytorch_model.bin", dir);
        if (access(bin, F_OK) == 0)
            st = qe_error(
                err, QEMBED_ERR_UNSUPPORTED,
                "%s: only pytorch_model.bin here; qembed reads safetensors only (model.safetensors or "
                "model.safetensors.index.json): convert the checkpoint to safetensors",
                dir);
        else
            st = qe_error(err, QEMBED_ERR_IO,
                          "%s: no model.safetensors or model.safetensors.index.json in the model directory",
                          dir);
    }
    if (st == QEMBED_OK && ck->n_tensors == 0)
        st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, "%s: the checkpoint holds no tensors",
                      ck->source ? ck->source : dir);
    if (st != QEMBED_OK) {
        qe_checkpoint_free(ck);
        return st;
    }
    *out = ck;
    return QEMBED_OK;
}

static const qe_tensor *find_exact(const qe_checkpoint *ck, const char *name) {
    if (!ck->n_tensors) return NULL;
    ck_tensor key = {.t = {.name = name}};
    /* add_file leaves the table sorted */
    const ck_tensor *t = bsearch(&key, ck->tensors, ck->n_tensors, sizeof key, cmp_tensor);
    return t ? &t->t : NULL;
}

const qe_tensor *qe_checkpoint_find(const qe_checkpoint *ck, const char *name) {
    if (!ck || !name) return NULL;
    const qe_tensor *t = find_exact(ck, name);
    if (t) return t;
    if (!strncmp(name, "model.", 6)) return find_exact(ck, name + 6);
    char buf[512];
    if (snprintf(buf, sizeof buf, "model.%s", name) >= (int)sizeof buf) return NULL;
    return find_exact(ck, buf);
}

size_t qe_checkpoint_n_tensors(const qe_checkpoint *ck) {
    return ck ? ck->n_tensors : 0;
}

const qe_tensor *qe_checkpoint_tensor(const qe_checkpoint *ck, size_t i) {
    return (ck && i < ck->n_tensors) ? &ck->tensors[i].t : NULL;
}

const char *qe_checkpoint_file_of(const qe_checkpoint *ck, const qe_tensor *t) {
    if (!ck || !t || ck->n_tensors == 0) return NULL;
    const ck_tensor *ct = (const ck_tensor *)t;
    if (ct < ck->tensors || ct >= ck->tensors + ck->n_tensors) return NULL;
    return ck->files[ct->file].path;
}

const char *qe_checkpoint_source(const qe_checkpoint *ck) {
    if (!ck) return "";
    if (ck->source) return ck->source;
    return ck->n_files ? ck->files[0].path : "";
}

size_t qe_checkpoint_n_files(const qe_checkpoint *ck) {
    return ck ? ck->n_files : 0;
}

const char *qe_checkpoint_file_path(const qe_checkpoint *ck, size_t i) {
    return (ck && i < ck->n_files) ? ck->files[i].path : NULL;
}
