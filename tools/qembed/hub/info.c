/* Parses the Hub's model-info answer (untrusted bytes from the network or a
 * mirror) into a file list, and the name checks every path taken from it
 * must pass before it touches the file system. Keeps no state; fuzzed by
 * tests/pull/fuzz_hub_info.c. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"

static int is_hex(const char *s, size_t n) {
    if (strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

int qh_path_is_safe(const char *p) {
    size_t n = strlen(p);
    if (n == 0 || n >= 1024 || p[0] == '/') return 0;
    const char *c = p;
    while (1) {
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        if (len == 0 || len > 255) return 0;
        if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.')) return 0;
        if (!e) break;
        c = e + 1;
    }
    for (const char *q = p; *q; q++)
        if (*q == '\\' || (unsigned char)*q < 0x20 || *q == 0x7f) return 0;
    return 1;
}

int qh_name_is_safe(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 255 || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
    for (const char *q = s; *q; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '.' ||
              *q == '_' || *q == '-'))
            return 0;
    return 1;
}

int qh_repo_id_is_valid(const char *s) {
    const char *sl = strchr(s, '/');
    if (!sl || sl == s || !sl[1] || strchr(sl + 1, '/') || strlen(s) >= 200) return 0;
    if (s[0] == '.' || sl[1] == '.' || strstr(s, "..") || strstr(s, "--")) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '_' || *p == '-' || *p == '/'))
            return 0;
    return 1;
}

int qh_revision_is_valid(const char *r) {
    size_t n = strlen(r);
    if (n == 0 || n >= 256 || r[n - 1] == '/') return 0;
    return qh_path_is_safe(r) && !strstr(r, "..");
}

void qh_info_free(qh_info *info) {
    if (!info) return;
    for (size_t i = 0; i < info->n_files; i++) free(info->files[i].path);
    free(info->files);
    info->files = NULL;
    info->n_files = 0;
}

/* A JSON size: a non-negative integer that a double holds exactly. */
static int get_size(const cJSON *o, const char *key, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 1; /* absent: leave *out */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return 0;
    *out = (int64_t)v->valuedouble;
    return 1;
}

int qh_info_parse(const char *json, size_t len, qh_info *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        snprintf(err, err_size, "the model-info answer is not JSON (near byte %ld)",
                 cJSON_GetErrorPtr() ? (long)(cJSON_GetErrorPtr() - json) : -1L);
        return -1;
    }
    int rc = -1;
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(root, "sha");
    const cJSON *sib = cJSON_GetObjectItemCaseSensitive(root, "siblings");
    if (!cJSON_IsObject(root)) {
        snprintf(err, err_size, "the model-info answer is not a JSON object");
        goto done;
    }
    if (!cJSON_IsString(sha) || !is_hex(sha->valuestring, 40)) {
        snprintf(err, err_size, "the model-info answer has no \"sha\" commit (40 lower-case hex digits)");
        goto done;
    }
    memcpy(out->sha, sha->valuestring, 41);
    if (!cJSON_IsArray(sib)) {
        snprintf(err, err_size, "the model-info answer has no \"siblings\" file list");
        goto done;
    }
    int n = cJSON_GetArraySize(sib);
    out->files = calloc(n > 0 ? (size_t)n : 1, sizeof *out->files);
    if (!out->files) {
        snprintf(err, err_size, "out of memory for %d files", n);
        goto done;
    }
    int i = 0;
    for (const cJSON *s = sib->child; s; s = s->next, i++) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(s, "rfilename");
        if (!cJSON_IsObject(s) || !cJSON_IsString(name)) {
            snprintf(err, err_size, "siblings[%d]: no \"rfilename\" string", i);
            goto done;
        }
        if (!qh_path_is_safe(name->valuestring)) {
            snprintf(err, err_size,
                     "siblings[%d]: unsafe file name \"%.200s\" (absolute, \"..\" or odd characters)", i,
                     name->valuestring);
            goto done;
        }
        for (size_t k = 0; k < out->n_files; k++)
            if (!strcmp(out->files[k].path, name->valuestring)) {
                snprintf(err, err_size, "siblings[%d]: \"%.200s\" is listed twice", i, name->valuestring);
                goto done;
            }
        qh_file *f = &out->files[out->n_files];
        f->size = -1;
        if (!get_size(s, "size", &f->size)) {
            snprintf(err, err_size, "siblings[%d] (%.200s): \"size\" is not a byte count", i,
                     name->valuestring);
            goto done;
        }
        const cJSON *blob = cJSON_GetObjectItemCaseSensitive(s, "blobId");
        if (blob && !cJSON_IsNull(blob)) {
            if (!cJSON_IsString(blob) || !is_hex(blob->valuestring, 40)) {
                snprintf(err, err_size, "siblings[%d] (%.200s): \"blobId\" is not 40 hex digits", i,
                         name->valuestring);
                goto done;
            }
            memcpy(f->blob_id, blob->valuestring, 41);
        }
        const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(s, "lfs");
        if (lfs && !cJSON_IsNull(lfs)) {
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(lfs, "sha256");
            if (!cJSON_IsObject(lfs) || !cJSON_IsString(h) || !is_hex(h->valuestring, 64)) {
                snprintf(err, err_size, "siblings[%d] (%.200s): \"lfs.sha256\" is not 64 hex digits", i,
                         name->valuestring);
                goto done;
            }
            memcpy(f->lfs_sha256, h->valuestring, 65);
            /* lfs.size is the file's size; "size" is too in the Hub's answer,
             * but a mirror may give only one of them. */
            int64_t ls = -1;
            if (!get_size(lfs, "size", &ls)) {
                snprintf(err, err_size, "siblings[%d] (%.200s): \"lfs.size\" is not a byte count", i,
                         name->valuestring);
                goto done;
            }
            if (ls >= 0) {
                if (f->size >= 0 && f->size != ls) {
                    snprintf(err, err_size,
                             "siblings[%d] (%.200s): \"size\" %lld and \"lfs.size\" %lld differ", i,
                             name->valuestring, (long long)f->size, (long long)ls);
                    goto done;
                }
                f->size = ls;
            }
        }
        f->path = strdup(name->valuestring);
        if (!f->path) {
            snprintf(err, err_size, "out of memory");
            goto done;
        }
        out->n_files++;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc != 0) qh_info_free(out);
    return rc;
}
