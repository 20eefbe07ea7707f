/* Helpers shared by the model tests (model_util.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "model/checkpoint.h"
#include "model/weights.h"
#include "model_util.h"
#include "qembed.h"

char g_shared[1024];
char g_tmp[1024];

void fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fatal("cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) fatal("cannot read %s", path);
    fclose(f);
    b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

void spit(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) fatal("cannot write %s", path);
}

void run_cmd(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0) fatal("command failed (%d): %s", rc, cmd);
}

void path_join(char *out, size_t n, const char *a, const char *b) {
    if ((size_t)snprintf(out, n, "%s/%s", a, b) >= n) fatal("path too long: %s/%s", a, b);
}

qembed_status load_dir(const char *dir, qe_config *cfg, qembed_error *err) {
    char p[2048];
    path_join(p, sizeof p, dir, "config.json");
    qembed_status st = qe_config_load(p, cfg, err);
    if (st) return st;
    qe_checkpoint *ck = NULL;
    st = qe_checkpoint_open_dir(dir, &ck, err);
    if (st) return st;
    qe_weights w;
    st = qe_weights_bind(ck, cfg, &w, err);
    if (!st) qe_weights_release(&w);
    qe_checkpoint_free(ck);
    return st;
}

void golden_read(const char *path, golden_set *g) {
    char *buf = slurp(path, NULL);
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(j, "cases");
    g->n = cJSON_GetArraySize(cases);
    if (g->n <= 0) fatal("%s: no golden cases", path);
    g->texts = calloc((size_t)g->n, sizeof *g->texts);
    g->vec = calloc((size_t)g->n, sizeof *g->vec);
    g->ids = calloc((size_t)g->n, sizeof *g->ids);
    g->n_ids = calloc((size_t)g->n, sizeof *g->n_ids);
    if (!g->texts || !g->vec || !g->ids || !g->n_ids) fatal("out of memory");
    for (int i = 0; i < g->n; i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "text");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, "embedding");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(c, "token_ids");
        if (!cJSON_IsString(t) || !cJSON_IsArray(e) || !cJSON_IsArray(ids))
            fatal("%s: case %d lacks text, embedding or token_ids", path, i);
        g->texts[i] = strdup(t->valuestring);
        g->dims = cJSON_GetArraySize(e);
        g->vec[i] = malloc((size_t)g->dims * sizeof(float));
        g->n_ids[i] = (size_t)cJSON_GetArraySize(ids);
        g->ids[i] = malloc((g->n_ids[i] + 1) * sizeof(int32_t));
        if (!g->texts[i] || !g->vec[i] || !g->ids[i]) fatal("out of memory");
        for (int k = 0; k < g->dims; k++) g->vec[i][k] = (float)cJSON_GetArrayItem(e, k)->valuedouble;
        for (size_t k = 0; k < g->n_ids[i]; k++) g->ids[i][k] = cJSON_GetArrayItem(ids, (int)k)->valueint;
    }
    cJSON_Delete(j);
}

float *embed_exact(const char *model, char *const *texts, int n, int *dims, qembed_model **keep,
                   qembed_error *err) {
    qembed_model_params p = qembed_model_default_params();
    p.exact = 1;
    p.n_threads = 2;
    p.log_level = QEMBED_LOG_WARN;
    qembed_model *m = NULL;
    if (keep) *keep = NULL;
    if (qembed_model_load(model, &p, &m, err) != QEMBED_OK) return NULL;
    qembed_model_info info;
    qembed_model_get_info(m, &info);
    *dims = info.hidden_size;
    qembed_ctx_params cp = qembed_ctx_default_params();
    qembed_ctx *c = NULL;
    float *out = NULL;
    size_t *lens = calloc((size_t)n, sizeof *lens);
    if (!lens) fatal("out of memory");
    for (int i = 0; i < n; i++) lens[i] = strlen(texts[i]);
    if (qembed_ctx_create(m, &cp, &c, err) == QEMBED_OK) {
        out = calloc((size_t)n * (size_t)info.hidden_size, sizeof(float));
        if (!out) fatal("out of memory");
        qembed_embed_options o = qembed_embed_default_options();
        if (qembed_ctx_embed(c, (const char *const *)texts, lens, (size_t)n, &o, out, err) != QEMBED_OK) {
            free(out);
            out = NULL;
        }
    }
    free(lens);
    qembed_ctx_free(c);
    if (keep)
        *keep = m;
    else
        qembed_model_free(m);
    return out;
}

const char *bad_model_problem(const char *path, const void *bytes, size_t n, const char *words) {
    spit(path, bytes, n);
    qembed_model_params mp = qembed_model_default_params();
    mp.log_level = QEMBED_LOG_WARN;
    qembed_model *m = NULL;
    qembed_error e;
    memset(&e, 0, sizeof e);
    qembed_status s = qembed_model_load(path, &mp, &m, &e);
    qembed_model_free(m);
    static char why[1400];
    if (s == QEMBED_OK) return "it loaded";
    if (!strstr(e.message, path))
        snprintf(why, sizeof why, "the message does not name the file: %s", e.message);
    else if (!strstr(e.message, words))
        snprintf(why, sizeof why, "expected \"%s\" in: %s", words, e.message);
    else
        return NULL;
    return why;
}

int same_bytes(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

size_t gguf_tensor_info_at(const char *b, size_t n, const char *tname) {
    size_t l = strlen(tname);
    uint64_t l64 = l;
    for (size_t i = 8; i + l + 8 < n; i++)
        if (!memcmp(b + i, tname, l) && !memcmp(b + i - 8, &l64, 8)) return i + l;
    return 0;
}

void model_test_init(const char *prog, const char *shared, const char *tmp) {
    struct stat sb;
    if (!shared || stat(shared, &sb) != 0) {
        fprintf(stderr, "%s: the shared tiny model is missing at %s (set QE_SHARED_DIR)\n", prog,
                shared ? shared : "(none)");
        exit(1);
    }
    snprintf(g_shared, sizeof g_shared, "%s", shared);
    if (tmp) {
        snprintf(g_tmp, sizeof g_tmp, "%s", tmp);
        run_cmd("mkdir -p '%s'", g_tmp);
    }
}

int model_test_done(int failures) {
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    else
        printf("all passed\n");
    return failures ? 1 : 0;
}
