/* Helpers shared by the model tests (model_util.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/checkpoint.h"
#include "model/weights.h"
#include "model_util.h"

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
