/* Split directories: writing (`qembed split`) and validating on load. See
 * segments.h for the layout. */
#include "model/segments.h"

#include "common/params.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/sha256.h"
#include "model/resolve.h"

#define MANIFEST_MAX (16u << 20)
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
                                             "config_sentence_transformers.json",
                                             "special_tokens_map.json", "generation_config.json"};

int qe_tensor_layer(const char *name) {
    const char *p = strstr(name, "layers.");
    if (!p || (p != name && p[-1] != '.')) return -1;
    p += 7;
    if (!isdigit((unsigned char)*p)) return -1;
    long v = 0;
    while (isdigit((unsigned char)*p) && v < 1000000) v = v * 10 + (*p++ - '0');
    return *p == '.' ? (int)v : -1;
}

static int is_embed(const char *name) {
    return !strcmp(name, "embed_tokens.weight") || !strcmp(name, "model.embed_tokens.weight");
}

static int is_final_norm(const char *name) {
    return !strcmp(name, "norm.weight") || !strcmp(name, "model.norm.weight");
}

static const char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

int qe_segments_is_split_dir(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%.4000s/%s", dir, QE_SPLIT_MANIFEST);
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *read_file(const char *path, size_t max, size_t *len, qembed_error *err,
                       qembed_status *st) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        *st = qe_error(err, QEMBED_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        if (sz < 0 || (size_t)sz > max) {
            *st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, "%s: %ld bytes, more than the %zu allowed",
                           path, sz, max);
            fclose(f);
            return NULL;
        }
        rewind(f);
        buf = malloc((size_t)sz + 1);
        if (!buf) {
            *st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: cannot allocate %ld bytes", path, sz);
            fclose(f);
            return NULL;
        }
        n = fread(buf, 1, (size_t)sz, f);
        if (n != (size_t)sz) {
            *st = qe_error(err, QEMBED_ERR_IO, "%s: short read (%zu of %ld bytes)", path, n, sz);
            free(buf);
            fclose(f);
            return NULL;
        }
        buf[n] = '\0';
    }
    fclose(f);
    if (!buf) *st = qe_error(err, QEMBED_ERR_IO, "%s: cannot read", path);
    if (len) *len = n;
    return buf;
}

/* ------------------------------------------------------------------------- */
/* Loading                                                                    */
/* ------------------------------------------------------------------------- */

typedef struct seg_entry {
    const char *file;
    int first, end;
    int embedding, final_norm;
    uint64_t bytes;
    const char *sha256;
} seg_entry;

static qembed_status get_int_field(const cJSON *o, const char *key, const char *where, int64_t *out,
                                   qembed_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    QE_FAIL_IF(!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 9.0e15 ||
                   it->valuedouble != (double)(int64_t)it->valuedouble,
               err, QEMBED_ERR_MODEL_FORMAT, "%s: field \"%s\" is missing or not a non-negative integer",
               where, key);
    *out = (int64_t)it->valuedouble;
    return QEMBED_OK;
}

static qembed_status check_size(const char *dir, const seg_entry *e, const char *where,
                                qembed_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->file);
    struct stat st;
    if (stat(path, &st) != 0)
        QE_FAIL(err, QEMBED_ERR_IO, "%s: segment file %s (layers %d-%d) is missing: %s", where,
                e->file, e->first, e->end - 1, strerror(errno));
    QE_FAIL_IF(!S_ISREG(st.st_mode), err, QEMBED_ERR_IO, "%s: segment %s is not a regular file",
               where, e->file);
    QE_FAIL_IF((uint64_t)st.st_size != e->bytes, err, QEMBED_ERR_MODEL_FORMAT,
               "%s: segment file %s has %" PRIu64 " bytes, the manifest says %" PRIu64
               " (truncated or replaced)",
               where, e->file, (uint64_t)st.st_size, e->bytes);
    return QEMBED_OK;
}

/* Hashing runs one thread per segment file, up to the cores: on a warm page
 * cache it is CPU-bound (OpenSSL with the SHA extensions: about 1.5 GB/s per
 * core), so a 4B model's 7.5 GiB verifies in a few seconds, not a dozen. */
typedef struct hash_job {
    const char *dir;
    const seg_entry *e;
    int n;
    atomic_int next;
    uint8_t (*digest)[QE_SHA256_LEN];
    qembed_status *status;
    qembed_error *errs;
} hash_job;

static void *hash_worker(void *arg) {
    hash_job *j = arg;
    for (;;) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n) break;
        char path[4200];
        snprintf(path, sizeof path, "%.4000s/%s", j->dir, j->e[i].file);
        j->status[i] = qe_sha256_file(path, j->digest[i], &j->errs[i]);
    }
    return NULL;
}

static qembed_status hash_segments(const char *dir, const seg_entry *e, int n, qembed_error *err) {
    hash_job j;
    j.dir = dir;
    j.e = e;
    j.n = n;
    atomic_init(&j.next, 0);
    j.digest = calloc((size_t)n, sizeof *j.digest);
    j.status = calloc((size_t)n, sizeof *j.status);
    j.errs = calloc((size_t)n, sizeof *j.errs);
    qembed_status st = QEMBED_OK;
    if (!j.digest || !j.status || !j.errs) {
        st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory for hashing", dir);
        goto done;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = n < cores ? n : (int)cores;
    if (nt > 8) nt = 8;
    if (nt < 1) nt = 1;
    pthread_t th[8];
    int started = 0;
    for (int t = 1; t < nt; t++) {
        if (pthread_create(&th[started], NULL, hash_worker, &j) != 0) break; /* fewer threads is fine */
        started++;
    }
    hash_worker(&j);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    /* Report in segment order, so the message does not depend on scheduling. */
    for (int i = 0; i < n && st == QEMBED_OK; i++) {
        char hex[QE_SHA256_HEX_LEN];
        if (j.status[i] != QEMBED_OK) {
            st = qe_error(err, j.status[i], "%s", j.errs[i].message);
            break;
        }
        qe_sha256_hex(j.digest[i], hex);
        if (strcasecmp(hex, e[i].sha256) != 0)
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: segment file %s (layers %d-%d) is corrupted: SHA-256 %s, the manifest "
                          "says %s",
                          dir, e[i].file, e[i].first, e[i].end - 1, hex, e[i].sha256);
    }
done:
    free(j.digest);
    free(j.status);
    free(j.errs);
    return st;
}

static qembed_status open_segments(const char *dir, const cJSON *root, const char *mpath, int verify,
                                   const qe_logger *lg, qe_checkpoint **out, qe_config *cfg_out,
                                   qembed_error *err) {
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    QE_FAIL_IF(!cJSON_IsString(fmt) || strcmp(fmt->valuestring, QE_SPLIT_FORMAT) != 0, err,
               QEMBED_ERR_MODEL_FORMAT, "%s: field \"format\" is not \"%s\": not a qembed split manifest",
               mpath, QE_SPLIT_FORMAT);
    int64_t ver = 0, n_layers = 0;
    QE_TRY(get_int_field(root, "format_version", mpath, &ver, err));
    QE_FAIL_IF(ver != QE_SPLIT_FORMAT_VERSION, err, QEMBED_ERR_UNSUPPORTED,
               "%s: format_version %" PRId64 " (this qembed reads version %d)", mpath, ver,
               QE_SPLIT_FORMAT_VERSION);
    QE_TRY(get_int_field(root, "n_layers", mpath, &n_layers, err));

    /* The embedded config must agree with the manifest's layer count. */
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(root, "config");
    QE_FAIL_IF(!cJSON_IsObject(jc), err, QEMBED_ERR_MODEL_FORMAT,
               "%s: field \"config\" is missing or not an object", mpath);
    char *ctext = cJSON_PrintUnformatted(jc);
    QE_FAIL_IF(!ctext, err, QEMBED_ERR_OUT_OF_MEMORY, "%s: cannot print the config", mpath);
    char origin[4200];
    snprintf(origin, sizeof origin, "%s (config)", mpath);
    qe_config cfg;
    qembed_status st = qe_config_parse(ctext, strlen(ctext), origin, &cfg, err);
    free(ctext);
    QE_TRY(st);
    QE_FAIL_IF(cfg.n_layers != n_layers, err, QEMBED_ERR_MODEL_FORMAT,
               "%s: n_layers %" PRId64 " but the config says num_hidden_layers %d", mpath, n_layers,
               cfg.n_layers);

    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(root, "segments");
    int n = cJSON_IsArray(segs) ? cJSON_GetArraySize(segs) : 0;
    QE_FAIL_IF(n <= 0, err, QEMBED_ERR_MODEL_FORMAT, "%s: field \"segments\" is missing or empty",
               mpath);
    QE_FAIL_IF(n > n_layers, err, QEMBED_ERR_MODEL_FORMAT,
               "%s: %d segments for %" PRId64 " layers", mpath, n, n_layers);
    seg_entry *e = calloc((size_t)n, sizeof *e);
    QE_FAIL_IF(!e, err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", mpath);

    /* Order and coverage first (cheap, and a reordered manifest is reported
     * as such rather than as a hash mismatch). */
    int i = 0;
    int expect = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, segs) {
        char where[4300];
        snprintf(where, sizeof where, "%s: segments[%d]", mpath, i);
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(it, "file");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(it, "sha256");
        int64_t idx, first, end, bytes;
        if (!cJSON_IsObject(it) || !cJSON_IsString(f) || !cJSON_IsString(h)) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: not an object with string fields \"file\" and \"sha256\"", where);
            goto fail;
        }
        if ((st = get_int_field(it, "index", where, &idx, err)) ||
            (st = get_int_field(it, "first_layer", where, &first, err)) ||
            (st = get_int_field(it, "end_layer", where, &end, err)) ||
            (st = get_int_field(it, "bytes", where, &bytes, err)))
            goto fail;
        e[i].file = f->valuestring;
        e[i].sha256 = h->valuestring;
        e[i].first = (int)first;
        e[i].end = (int)end;
        e[i].bytes = (uint64_t)bytes;
        e[i].embedding = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "embedding"));
        e[i].final_norm = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "final_norm"));
        /* A file name, never a path: the manifest must not reach outside dir. */
        if (!*e[i].file || strchr(e[i].file, '/') || !strcmp(e[i].file, "..") ||
            !strcmp(e[i].file, ".")) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, "%s: file \"%.200s\" is not a plain file name",
                          where, e[i].file);
            goto fail;
        }
        if (idx != i) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: segment %s is index %" PRId64 " but listed at position %d: the "
                          "segments are out of order",
                          where, e[i].file, idx, i);
            goto fail;
        }
        if (first != expect || end <= first || end > n_layers) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: segment %s covers layers [%" PRId64 ", %" PRId64 ") but the next "
                          "layer is %d of %" PRId64 ": ranges must be contiguous and complete",
                          where, e[i].file, first, end, expect, n_layers);
            goto fail;
        }
        if (e[i].embedding != (i == 0) || e[i].final_norm != (i == n - 1)) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: segment %s: the embedding belongs to the first segment and the final "
                          "norm to the last (embedding=%d, final_norm=%d)",
                          where, e[i].file, e[i].embedding, e[i].final_norm);
            goto fail;
        }
        for (int j = 0; j < i; j++) {
            if (!strcmp(e[j].file, e[i].file)) {
                st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, "%s: segment file %s is listed twice",
                              where, e[i].file);
                goto fail;
            }
        }
        expect = (int)end;
        i++;
    }
    if (expect != n_layers) {
        st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                      "%s: the segments cover layers 0-%d of %" PRId64 ": layers %d-%" PRId64
                      " are in no segment",
                      mpath, expect - 1, n_layers, expect, n_layers - 1);
        goto fail;
    }

    /* Sizes, then hashes (each file streamed once, in parallel: see the log line). */
    double t0 = now_ms();
    /* config.json and the tokenizer files beside the segments are what the
     * loader reads: they must be the ones the manifest lists. */
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
    cJSON_ArrayForEach(it, files) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(it, "sha256");
        int64_t bytes = 0;
        if (!cJSON_IsString(nm) || !cJSON_IsString(h) || strchr(nm->valuestring, '/') ||
            !strcmp(nm->valuestring, "..")) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: an entry of \"files\" lacks a plain \"name\" or a \"sha256\"", mpath);
            goto fail;
        }
        if ((st = get_int_field(it, "bytes", mpath, &bytes, err))) goto fail;
        seg_entry fe = {nm->valuestring, 0, 1, 0, 0, (uint64_t)bytes, h->valuestring};
        char path[4200];
        snprintf(path, sizeof path, "%.4000s/%s", dir, fe.file);
        struct stat fst;
        if (stat(path, &fst) != 0) {
            st = qe_error(err, QEMBED_ERR_IO, "%s: %s, listed in the manifest, is missing: %s", dir,
                          fe.file, strerror(errno));
            goto fail;
        }
        if ((uint64_t)fst.st_size != fe.bytes || verify) {
            uint8_t d[QE_SHA256_LEN];
            char hex[QE_SHA256_HEX_LEN];
            if ((uint64_t)fst.st_size != fe.bytes) {
                st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                              "%s: %s has %" PRIu64 " bytes, the manifest says %" PRIu64
                              " (changed after the split)",
                              dir, fe.file, (uint64_t)fst.st_size, fe.bytes);
                goto fail;
            }
            if ((st = qe_sha256_file(path, d, err))) goto fail;
            qe_sha256_hex(d, hex);
            if (strcasecmp(hex, fe.sha256) != 0) {
                st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                              "%s: %s does not match the manifest's SHA-256 (changed after the split)",
                              dir, fe.file);
                goto fail;
            }
        }
    }
    uint64_t total = 0;
    for (i = 0; i < n; i++) {
        char where[4300];
        snprintf(where, sizeof where, "%s", dir);
        if ((st = check_size(dir, &e[i], where, err))) goto fail;
        total += e[i].bytes;
    }
    if (verify && (st = hash_segments(dir, e, n, err))) goto fail;
    char b[32];
    snprintf(b, sizeof b, "%.2f GiB", (double)total / (1u << 30));
    if (verify)
        QE_INFO(lg, "split directory %s: %d segments, %s, SHA-256 verified in %.0f ms", dir, n, b,
                now_ms() - t0);
    else
        QE_WARN(lg, "split directory %s: %d segments, %s, SHA-256 NOT verified (no_verify)", dir, n, b);

    /* Open every segment into one checkpoint, then check each tensor lies in
     * the range its segment declares (catches swapped files when not verifying). */
    qe_checkpoint *ck = qe_checkpoint_new();
    if (!ck) {
        st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
        goto fail;
    }
    for (i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e[i].file);
        if ((st = qe_checkpoint_add_file(ck, path, err))) {
            qe_checkpoint_free(ck);
            goto fail;
        }
    }
    size_t nt = qe_checkpoint_n_tensors(ck);
    for (size_t k = 0; k < nt; k++) {
        const qe_tensor *t = qe_checkpoint_tensor(ck, k);
        const char *file = base_name(qe_checkpoint_file_of(ck, t));
        int s = -1;
        for (i = 0; i < n; i++)
            if (!strcmp(e[i].file, file)) s = i;
        int layer = qe_tensor_layer(t->name);
        int ok = s >= 0 && (layer >= 0             ? layer >= e[s].first && layer < e[s].end
                            : is_embed(t->name)      ? e[s].embedding
                            : is_final_norm(t->name) ? e[s].final_norm
                                                     : 1);
        if (!ok) {
            char owner[32];
            if (layer >= 0)
                snprintf(owner, sizeof owner, "layer %d", layer);
            else
                snprintf(owner, sizeof owner, "the %s segment", is_embed(t->name) ? "first" : "last");
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: segment %s holds tensor \"%.200s\" which belongs to %s, outside its "
                          "layers %d-%d (segment files swapped?)",
                          dir, file, t->name, owner, s >= 0 ? e[s].first : -1,
                          s >= 0 ? e[s].end - 1 : -1);
            qe_checkpoint_free(ck);
            goto fail;
        }
    }
    free(e);
    if (cfg_out) *cfg_out = cfg;
    *out = ck;
    return QEMBED_OK;
fail:
    free(e);
    return st;
}

qembed_status qe_segments_open(const char *dir, int verify, const qe_logger *lg,
                               qe_checkpoint **out, qe_config *cfg, qembed_error *err) {
    QE_FAIL_IF(!dir || !out, err, QEMBED_ERR_INVALID_ARGUMENT, "segments: NULL argument");
    *out = NULL;
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s/%s", dir, QE_SPLIT_MANIFEST);
    qembed_status st = QEMBED_OK;
    size_t len = 0;
    char *text = read_file(mpath, MANIFEST_MAX, &len, err, &st);
    if (!text) return st;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *ep = cJSON_GetErrorPtr();
        st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, "%s: not valid JSON (near byte %ld)", mpath,
                      ep && ep >= text && ep <= text + len ? (long)(ep - text) : -1L);
        free(text);
        return st;
    }
    st = open_segments(dir, root, mpath, verify, lg, out, cfg, err);
    cJSON_Delete(root);
    free(text);
    return st;
}

/* ------------------------------------------------------------------------- */
/* Writing                                                                    */
/* ------------------------------------------------------------------------- */

qembed_split_params qe_split_defaults(void) {
    qembed_split_params p;
    memset(&p, 0, sizeof p);
    p.max_segments = 0;
    p.max_segment_bytes = 0;
    p.log_level = QEMBED_LOG_INFO;
    return p;
}

static uint64_t tensor_bytes(const qe_tensor *t) {
    uint64_t n = qe_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
}

static const char *st_dtype(qe_dtype d) {
    switch (d) {
    case QE_F32: return "F32";
    case QE_F16: return "F16";
    case QE_BF16: return "BF16";
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

static qembed_status write_all(int fd, const void *buf, size_t n, const char *path,
                               qe_sha256 *h, qembed_error *err) {
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
static qembed_status write_segment(const char *dir, seg_plan *s, int index, int n_segs,
                                   qembed_error *err) {
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
    char *data = read_file(src, 256u << 20, &len, err, &st);
    if (!data) return st;
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
                     "split: layer %d needs %" PRIu64 " bytes%s, more than --max-segment-bytes %" PRIu64,
                     l, cur + add, l == 0 ? " with the token embedding" : "", cap);
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

qembed_status qembed_model_split(const char *model, const char *out_dir,
                                 const qembed_split_params *params, qembed_error *err) {
    QE_FAIL_IF(!model || !out_dir || !params, err, QEMBED_ERR_INVALID_ARGUMENT,
               "split: NULL argument");
    static const size_t sizes[] = {QE_SIZE_UPTO(qembed_split_params, log_level),
                                   sizeof(qembed_split_params)};
    qembed_split_params p = qe_split_defaults();
    QE_TRY(qe_params_copy(&p, sizeof p, params, sizes, 2, "qembed_split_params", err));
    params = &p;
    QE_FAIL_IF(params->max_segments < 0 || (params->max_segments == 0 && params->max_segment_bytes == 0),
               err, QEMBED_ERR_INVALID_ARGUMENT,
               "split: give max_segments (>= 1) or max_segment_bytes (> 0)");
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
        if (stat(dir, &a) == 0 && stat(out_dir, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            qe_checkpoint_free(ck);
            QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT,
                    "split: the output directory %s is the model directory", out_dir);
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
        else if (is_embed(t->name))
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
        } else if (is_embed(t->name)) {
            s = 0;
        }
        if (seg_push(&segs[s], t)) {
            st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "split: out of memory");
            goto done;
        }
    }

    for (int i = 0; i < n; i++) {
        if ((st = write_segment(out_dir, &segs[i], i, n, err))) goto done;
        QE_INFO(&lg, "split: %s: layers %d-%d%s%s, %zu tensors, %.1f MiB", segs[i].file,
                segs[i].first, segs[i].end - 1, i == 0 ? " + embedding" : "",
                i == n - 1 ? " + final norm" : "", segs[i].n_t,
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
        char *ctext = read_file(path, CONFIG_MAX, &len, err, &st);
        if (!ctext) goto done;
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
