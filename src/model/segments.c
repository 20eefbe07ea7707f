/* Split directories at load: the manifest checked (format, order, layer
 * ranges, sizes, SHA-256) and the segments opened as one checkpoint. See
 * segments.h for the layout; the writer (`qembed split`) is segments_write.c. */
#include "common/clock.h"
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

#include "common/file.h"
#include "common/sha256.h"
#include "model/resolve.h"

#define MANIFEST_MAX (16u << 20)

int qe_tensor_layer(const char *name) {
    const char *p = strstr(name, "layers.");
    if (!p || (p != name && p[-1] != '.')) return -1;
    p += 7;
    if (!isdigit((unsigned char)*p)) return -1;
    long v = 0;
    while (isdigit((unsigned char)*p) && v < 1000000) v = v * 10 + (*p++ - '0');
    return *p == '.' ? (int)v : -1;
}

int qe_tensor_is_embed(const char *name) {
    return !strcmp(name, "embed_tokens.weight") || !strcmp(name, "model.embed_tokens.weight");
}

int qe_tensor_is_final_norm(const char *name) {
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

static qembed_status check_size(const char *dir, const seg_entry *e, const char *where, qembed_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->file);
    struct stat st;
    if (stat(path, &st) != 0)
        QE_FAIL(err, QEMBED_ERR_IO, "%s: segment file %s (layers %d-%d) is missing: %s", where, e->file,
                e->first, e->end - 1, strerror(errno));
    QE_FAIL_IF(!S_ISREG(st.st_mode), err, QEMBED_ERR_IO, "%s: segment %s is not a regular file", where,
               e->file);
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
    QE_FAIL_IF(n <= 0, err, QEMBED_ERR_MODEL_FORMAT, "%s: field \"segments\" is missing or empty", mpath);
    QE_FAIL_IF(n > n_layers, err, QEMBED_ERR_MODEL_FORMAT, "%s: %d segments for %" PRId64 " layers", mpath, n,
               n_layers);
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
        if (!*e[i].file || strchr(e[i].file, '/') || !strcmp(e[i].file, "..") || !strcmp(e[i].file, ".")) {
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, "%s: file \"%.200s\" is not a plain file name", where,
                          e[i].file);
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
                st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, "%s: segment file %s is listed twice", where,
                              e[i].file);
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
    double t0 = qe_now_ms();
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
            st = qe_error(err, QEMBED_ERR_IO, "%s: %s, listed in the manifest, is missing: %s", dir, fe.file,
                          strerror(errno));
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
                              "%s: %s does not match the manifest's SHA-256 (changed after the split)", dir,
                              fe.file);
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
                qe_now_ms() - t0);
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
        int ok = s >= 0 && (layer >= 0                         ? layer >= e[s].first && layer < e[s].end
                            : qe_tensor_is_embed(t->name)      ? e[s].embedding
                            : qe_tensor_is_final_norm(t->name) ? e[s].final_norm
                                                               : 1);
        if (!ok) {
            char owner[32];
            if (layer >= 0)
                snprintf(owner, sizeof owner, "layer %d", layer);
            else
                snprintf(owner, sizeof owner, "the %s segment",
                         qe_tensor_is_embed(t->name) ? "first" : "last");
            st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                          "%s: segment %s holds tensor \"%.200s\" which belongs to %s, outside its "
                          "layers %d-%d (segment files swapped?)",
                          dir, file, t->name, owner, s >= 0 ? e[s].first : -1, s >= 0 ? e[s].end - 1 : -1);
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

qembed_status qe_segments_open(const char *dir, int verify, const qe_logger *lg, qe_checkpoint **out,
                               qe_config *cfg, qembed_error *err) {
    QE_FAIL_IF(!dir || !out, err, QEMBED_ERR_INVALID_ARGUMENT, "segments: NULL argument");
    *out = NULL;
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s/%s", dir, QE_SPLIT_MANIFEST);
    qembed_status st = QEMBED_OK;
    size_t len = 0;
    char *text = NULL;
    QE_TRY(qe_read_file(mpath, MANIFEST_MAX, &text, &len, err));
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
