/* Writing a split directory (`qembed split`, qembed_model_split): a model's
 * layers cut into self-contained safetensors segments, config and tokenizer
 * files copied beside them, and manifest.json with every file's SHA-256. See
 * segments.h for the layout; checking one at load is segments.c. */
#include "model/segments.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"
#include "common/params.h"
#include "common/sha256.h"
#include "model/resolve.h"

#define CONFIG_MAX (4u << 20)
#define QE_MAX_SPLIT 1024
/* Header room counted per tensor when sizing segments (name, dtype, shape,
 * offsets in JSON): a generous bound, so --max-segment-bytes holds. */
#define HEADER_PER_TENSOR 256

/* Files copied beside the segments when the source has them: config.json and
 * the tokenizer are required to load; the rest keep `qembed info` and the
 * sentence-transformers metadata the same as the source's. */
static const char *const required_files[] = {"config.json", "tokenizer.json", "tokenizer_config.json"};
static const char *const optional_files[] = {"synth_manifest.json", "modules.json",
                                             "config_sentence_transformers.json", "special_tokens_map.json",
                                             "generation_config.json"};

qembed_split_params qe_split_defaults(void) {
    qembed_split_params p;
    memset(&p, 0, sizeof p);
    p.max_segments = 0;
    p.max_segment_bytes = 0;
    p.log_level = QEMBED_LOG_INFO;
    return p;
}

static uint64_t tensor_bytes(const qe_tensor *t) {
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return qe_dtype_bytes(t->dtype, n);
}

static const char *st_dtype(qe_dtype d) {
    switch (d) {
        case QE_F32: return "F32";
        case QE_F16: return "F16";
        case QE_BF16: return "BF16";
        default: break; /* block types are not safetensors dtypes: qembed_model_split refuses them first */
    }
    return "?";
}

typedef struct seg_plan {
    int first, end;
    const qe_tensor **t; /* tensors of this segment, sorted by name */
    size_t n_t, cap_t;
    uint64_t data_bytes;
    char file[64];
    char sha[QE_SHA256_HEX_LEN];
    uint64_t file_bytes;
} seg_plan;

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp((*(const qe_tensor *const *)a)->name, (*(const qe_tensor *const *)b)->name);
}

static int seg_push(seg_plan *s, const qe_tensor *t) {
    if (s->n_t == s->cap_t) {
        size_t cap = s->cap_t ? s->cap_t * 2 : 64;
        const qe_tensor **nt = realloc(s->t, cap * sizeof *nt);
        if (!nt) return -1;
        s->t = nt;
        s->cap_t = cap;
    }
    s->t[s->n_t++] = t;
    s->data_bytes += tensor_bytes(t);
    return 0;
}

static qembed_status write_all(int fd, const void *buf, size_t n, const char *path, qe_sha256 *h,
                               qembed_error *err) {
    const char *p = buf;
    qe_sha256_update(h, buf, n);
    while (n) {
        /* Chunks of 64 MiB: write() may stop short on large requests anyway. */
        size_t chunk = n > (64u << 20) ? (64u << 20) : n;
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        QE_FAIL_IF(w <= 0, err, QEMBED_ERR_IO, "%s: write failed: %s", path,
                   w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
    }
    return QEMBED_OK;
}

/* One self-contained safetensors file: 8-byte little-endian header length,
 * the JSON header padded with spaces to a multiple of 8 (so data stays
 * aligned), then the tensors back to back in header order. */
static qembed_status write_segment(const char *dir, seg_plan *s, int index, int n_segs, qembed_error *err) {
    qsort(s->t, s->n_t, sizeof *s->t, cmp_tensor_name);
    cJSON *hdr = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(hdr, "__metadata__");
    char buf[64];
    cJSON_AddStringToObject(meta, "format", "pt");
    snprintf(buf, sizeof buf, "%d", index);
    cJSON_AddStringToObject(meta, "qembed_segment", buf);
    snprintf(buf, sizeof buf, "%d-%d", s->first, s->end - 1);
    cJSON_AddStringToObject(meta, "qembed_layers", buf);
    uint64_t off = 0;
    for (size_t k = 0; k < s->n_t; k++) {
        const qe_tensor *t = s->t[k];
        cJSON *o = cJSON_AddObjectToObject(hdr, t->name);
        cJSON_AddStringToObject(o, "dtype", st_dtype(t->dtype));
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(o, "data_offsets");
        uint64_t nb = tensor_bytes(t);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
    }
    char *json = cJSON_PrintUnformatted(hdr);
    cJSON_Delete(hdr);
    QE_FAIL_IF(!json, err, QEMBED_ERR_OUT_OF_MEMORY, "split: cannot build a segment header");
    size_t jl = strlen(json);
    size_t padded = (jl + 7) & ~(size_t)7;
    char *h = malloc(8 + padded);
    if (!h) {
        free(json);
        QE_FAIL(err, QEMBED_ERR_OUT_OF_MEMORY, "split: out of memory");
    }
    uint64_t hl = padded;
    for (int b = 0; b < 8; b++) h[b] = (char)((hl >> (8 * b)) & 0xff);
    memcpy(h + 8, json, jl);
    memset(h + 8 + jl, ' ', padded - jl);
    free(json);

    snprintf(s->file, sizeof s->file, "segment-%02d-of-%02d.safetensors", index, n_segs);
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%s", dir, s->file);
    snprintf(tmp, sizeof tmp, "%s.partial", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(h);
        QE_FAIL(err, QEMBED_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    qe_sha256 sh;
    qembed_status st = qe_sha256_init(&sh, err);
    if (st) {
        free(h);
        close(fd);
        unlink(tmp);
        return st;
    }
    st = write_all(fd, h, 8 + padded, tmp, &sh, err);
    free(h);
    for (size_t k = 0; k < s->n_t && !st; k++)
        st = write_all(fd, s->t[k]->data, tensor_bytes(s->t[k]), tmp, &sh, err);
    if (!st && fsync(fd) != 0)
        st = qe_error(err, QEMBED_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && !st)
        st = qe_error(err, QEMBED_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    uint8_t d[QE_SHA256_LEN];
    if (st) {
        qe_sha256_abort(&sh);
        unlink(tmp);
        return st;
    }
    qe_sha256_final(&sh, d);
    qe_sha256_hex(d, s->sha);
    if (rename(tmp, path) != 0) {
        st = qe_error(err, QEMBED_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return st;
    }
    s->file_bytes = 8 + padded + s->data_bytes;
    return QEMBED_OK;
}

static qembed_status copy_file(const char *src, const char *dst, cJSON *files, const char *name,
                               qembed_error *err) {
    qembed_status st = QEMBED_OK;
    size_t len = 0;
    /* Tokenizer files are ~11 MB; 256 MiB bounds a hostile source. */
    char *data = NULL;
    QE_TRY(qe_read_file(src, 256u << 20, &data, &len, err));
    uint8_t d[QE_SHA256_LEN];
    char hex[QE_SHA256_HEX_LEN];
    st = qe_sha256_buf(data, len, d, err);
    if (!st) {
        FILE *f = fopen(dst, "wb");
        if (!f || fwrite(data, 1, len, f) != len) {
            st = qe_error(err, QEMBED_ERR_IO, "%s: cannot write: %s", dst, strerror(errno));
        }
        if (f && fclose(f) != 0 && !st)
            st = qe_error(err, QEMBED_ERR_IO, "%s: cannot write: %s", dst, strerror(errno));
    }
    free(data);
    if (st) return st;
    qe_sha256_hex(d, hex);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "bytes", (double)len);
    cJSON_AddStringToObject(o, "sha256", hex);
    cJSON_AddItemToArray(files, o);
    return QEMBED_OK;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Cuts layers into segments. Balanced by bytes for max_segments (the first
 * segment carries the embedding, so it gets fewer layers); greedy under the
 * cap for max_segment_bytes. Returns the number of segments or -1 (err set). */
static int cut_layers(const uint64_t *layer_bytes, int L, uint64_t head, uint64_t tail,
                      const qembed_split_params *p, int *ends, qembed_error *err) {
    uint64_t total = head + tail;
    for (int l = 0; l < L; l++) total += layer_bytes[l];
    int n = 0;
    if (p->max_segments > 0) {
        int N = p->max_segments < L ? p->max_segments : L;
        uint64_t acc = head;
        for (int l = 0; l < L; l++) {
            acc += layer_bytes[l] + (l == L - 1 ? tail : 0);
            int left_layers = L - 1 - l, left_segs = N - n - 1;
            /* Cut when this segment reached its share, or when every later
             * segment needs one of the remaining layers. */
            int cut = (double)acc >= (double)total * (n + 1) / N || left_layers == left_segs;
            if (l == L - 1 || (cut && left_segs > 0 && left_layers >= left_segs)) ends[n++] = l + 1;
        }
        return n;
    }
    uint64_t cap = p->max_segment_bytes;
    uint64_t cur = head;
    int cur_layers = 0;
    for (int l = 0; l < L; l++) {
        uint64_t add = layer_bytes[l] + (l == L - 1 ? tail : 0);
        if (cur_layers > 0 && cur + add > cap) {
            ends[n++] = l;
            cur = 0;
            cur_layers = 0;
        }
        if (cur + add > cap) {
            qe_error(err, QEMBED_ERR_INVALID_ARGUMENT,
                     "split: layer %d needs %" PRIu64 " bytes%s, more than --max-segment-bytes %" PRIu64, l,
                     cur + add, l == 0 ? " with the token embedding" : "", cap);
            return -1;
        }
        cur += add;
        cur_layers++;
        if (n >= QE_MAX_SPLIT) {
            qe_error(err, QEMBED_ERR_INVALID_ARGUMENT, "split: more than %d segments", QE_MAX_SPLIT);
            return -1;
        }
    }
    ends[n++] = L;
    return n;
}

qembed_status qembed_model_split(const char *model, const char *out_dir, const qembed_split_params *params,
                                 qembed_error *err) {
    QE_FAIL_IF(!model || !out_dir || !params, err, QEMBED_ERR_INVALID_ARGUMENT, "split: NULL argument");
    static const size_t sizes[] = {QE_SIZE_UPTO(qembed_split_params, log_level), sizeof(qembed_split_params)};
    qembed_split_params p = qe_split_defaults();
    QE_TRY(qe_params_copy(&p, sizeof p, params, sizes, 2, "qembed_split_params", err));
    params = &p;
    QE_FAIL_IF(params->max_segments < 0 || (params->max_segments == 0 && params->max_segment_bytes == 0), err,
               QEMBED_ERR_INVALID_ARGUMENT, "split: give max_segments (>= 1) or max_segment_bytes (> 0)");
    qe_logger lg = {params->log_fn, params->log_user, params->log_level};
    char dir[4096];
    QE_TRY(qe_resolve_model_path(model, dir, sizeof dir, err));

    char path[4300], dst[4300];
    qe_config cfg;
    qe_checkpoint *ck = NULL;
    qembed_status st;
    int src_split = qe_segments_is_split_dir(dir);
    snprintf(path, sizeof path, "%s/config.json", dir);
    QE_TRY(qe_config_load(path, &cfg, err));
    if (src_split)
        st = qe_segments_open(dir, 1, &lg, &ck, NULL, err);
    else
        st = qe_checkpoint_open_dir(dir, &ck, err);
    if (st) return st;

    /* Refuse to overwrite a split (or write into the source). */
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        qe_checkpoint_free(ck);
        QE_FAIL(err, QEMBED_ERR_IO, "split: cannot create %s: %s", out_dir, strerror(errno));
    }
    snprintf(path, sizeof path, "%s/%s", out_dir, QE_SPLIT_MANIFEST);
    if (file_exists(path)) {
        qe_checkpoint_free(ck);
        QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT,
                "split: %s already exists: choose an empty output directory", path);
    }
    {
        struct stat a, b;
        if (stat(dir, &a) == 0 && stat(out_dir, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            qe_checkpoint_free(ck);
            QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "split: the output directory %s is the model directory",
                    out_dir);
        }
    }

    const int L = cfg.n_layers;
    uint64_t *lbytes = calloc((size_t)L, sizeof *lbytes);
    int *ends = calloc((size_t)L + 1, sizeof *ends);
    seg_plan *segs = NULL;
    cJSON *man = NULL;
    int n = 0;
    st = QEMBED_OK;
    if (!lbytes || !ends) {
        st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "split: out of memory");
        goto done;
    }
    /* Bytes per layer from the checkpoint's own tensors (not from the
     * config), so what is written is what is counted. */
    uint64_t head = 0, tail = 0;
    size_t nt = qe_checkpoint_n_tensors(ck);
    for (size_t k = 0; k < nt; k++) {
        const qe_tensor *t = qe_checkpoint_tensor(ck, k);
        int l = qe_tensor_layer(t->name);
        uint64_t b = tensor_bytes(t) + HEADER_PER_TENSOR;
        if (l >= L) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: tensor \"%.200s\" is for layer %d but config.json has %d layers",
                          qe_checkpoint_file_of(ck, t), t->name, l, L);
            goto done;
        }
        if (l >= 0)
            lbytes[l] += b;
        else if (qe_tensor_is_embed(t->name))
            head += b;
        else
            tail += b;
    }
    n = cut_layers(lbytes, L, head, tail, params, ends, err);
    if (n < 0) {
        st = err ? err->code : QEMBED_ERR_INVALID_ARGUMENT;
        goto done;
    }
    segs = calloc((size_t)n, sizeof *segs);
    if (!segs) {
        st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "split: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        segs[i].first = i ? ends[i - 1] : 0;
        segs[i].end = ends[i];
    }
    for (size_t k = 0; k < nt; k++) {
        const qe_tensor *t = qe_checkpoint_tensor(ck, k);
        int l = qe_tensor_layer(t->name);
        int s = n - 1;
        if (l >= 0) {
            for (s = 0; s < n && l >= segs[s].end; s++) {}
        } else if (qe_tensor_is_embed(t->name)) {
            s = 0;
        }
        if (seg_push(&segs[s], t)) {
            st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "split: out of memory");
            goto done;
        }
    }

    for (int i = 0; i < n; i++) {
        if ((st = write_segment(out_dir, &segs[i], i, n, err))) goto done;
        QE_INFO(&lg, "split: %s: layers %d-%d%s%s, %zu tensors, %.1f MiB", segs[i].file, segs[i].first,
                segs[i].end - 1, i == 0 ? " + embedding" : "", i == n - 1 ? " + final norm" : "", segs[i].n_t,
                (double)segs[i].file_bytes / (1 << 20));
    }

    man = cJSON_CreateObject();
    cJSON_AddStringToObject(man, "format", QE_SPLIT_FORMAT);
    cJSON_AddNumberToObject(man, "format_version", QE_SPLIT_FORMAT_VERSION);
    cJSON_AddStringToObject(man, "source", model);
    cJSON_AddNumberToObject(man, "n_layers", L);
    {
        size_t len = 0;
        snprintf(path, sizeof path, "%s/config.json", dir);
        char *ctext = NULL;
        if ((st = qe_read_file(path, CONFIG_MAX, &ctext, &len, err))) goto done;
        cJSON *c = cJSON_ParseWithLength(ctext, len);
        free(ctext);
        if (!c) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, "%s: not valid JSON", path);
            goto done;
        }
        cJSON_AddItemToObject(man, "config", c);
    }
    cJSON *files = cJSON_AddArrayToObject(man, "files");
    for (size_t k = 0; k < sizeof required_files / sizeof *required_files; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, required_files[k]);
        snprintf(dst, sizeof dst, "%s/%s", out_dir, required_files[k]);
        if ((st = copy_file(path, dst, files, required_files[k], err))) goto done;
    }
    for (size_t k = 0; k < sizeof optional_files / sizeof *optional_files; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, optional_files[k]);
        if (!file_exists(path)) continue;
        snprintf(dst, sizeof dst, "%s/%s", out_dir, optional_files[k]);
        if ((st = copy_file(path, dst, files, optional_files[k], err))) goto done;
    }
    cJSON *js = cJSON_AddArrayToObject(man, "segments");
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", i);
        cJSON_AddStringToObject(o, "file", segs[i].file);
        cJSON_AddNumberToObject(o, "first_layer", segs[i].first);
        cJSON_AddNumberToObject(o, "end_layer", segs[i].end);
        cJSON_AddBoolToObject(o, "embedding", i == 0);
        cJSON_AddBoolToObject(o, "final_norm", i == n - 1);
        cJSON_AddNumberToObject(o, "tensors", (double)segs[i].n_t);
        cJSON_AddNumberToObject(o, "bytes", (double)segs[i].file_bytes);
        cJSON_AddStringToObject(o, "sha256", segs[i].sha);
        cJSON_AddItemToArray(js, o);
    }
    {
        char *text = cJSON_Print(man);
        if (!text) {
            st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "split: cannot print the manifest");
            goto done;
        }
        /* The manifest is written last: a directory without one is an
         * unfinished split, never mistaken for a complete one. */
        snprintf(path, sizeof path, "%s/%s", out_dir, QE_SPLIT_MANIFEST);
        FILE *f = fopen(path, "wb");
        size_t tl = strlen(text);
        if (!f || fwrite(text, 1, tl, f) != tl || fputc('\n', f) == EOF)
            st = qe_error(err, QEMBED_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        if (f && fclose(f) != 0 && !st)
            st = qe_error(err, QEMBED_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        free(text);
        if (!st) QE_INFO(&lg, "split: wrote %d segments and %s", n, path);
    }
done:
    if (segs)
        for (int i = 0; i < n; i++) free(segs[i].t);
    free(segs);
    free(lbytes);
    free(ends);
    cJSON_Delete(man);
    qe_checkpoint_free(ck);
    return st;
}
