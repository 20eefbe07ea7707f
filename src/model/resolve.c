/* Model name -> directory. A path that exists is used as it is; otherwise a
 * repo id "org/name" is looked up the way huggingface_hub lays out its cache:
 *   <cache>/models--org--name/refs/main           (a commit hash)
 *   <cache>/models--org--name/snapshots/<hash>/   (symlinks into ../../blobs)
 * so a model a Python user already downloaded just works. */
#include "model/resolve.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* "org/name": one slash, both parts non-empty, no path tricks. */
static int looks_like_repo_id(const char *s) {
    const char *sl = strchr(s, '/');
    if (!sl || sl == s || !sl[1] || strchr(sl + 1, '/')) return 0;
    if (s[0] == '.' || sl[1] == '.' || strstr(s, "..")) return 0;
    for (const char *p = s; *p; p++)
        if (*p == '\\' || *p == ' ' || (unsigned char)*p < 0x20) return 0;
    return strlen(s) < 200;
}

/* The snapshot a cache entry points at: refs/main when it names an existing
 * snapshot, else the only (or most recently modified) snapshot. */
static int pick_snapshot(const char *repo_dir, char *out, size_t out_size) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/refs/main", repo_dir) >= sizeof path) return 0;
    FILE *f = fopen(path, "r");
    if (f) {
        char rev[128] = {0};
        size_t n = fread(rev, 1, sizeof rev - 1, f);
        fclose(f);
        rev[n] = '\0';
        while (n && (rev[n - 1] == '\n' || rev[n - 1] == '\r' || rev[n - 1] == ' ')) rev[--n] = '\0';
        if (n && !strchr(rev, '/') && strcmp(rev, ".") && strcmp(rev, "..")) {
            if ((size_t)snprintf(path, sizeof path, "%s/snapshots/%s", repo_dir, rev) < sizeof path &&
                is_dir(path) && (size_t)snprintf(out, out_size, "%s", path) < out_size)
                return 1;
        }
    }
    if ((size_t)snprintf(path, sizeof path, "%s/snapshots", repo_dir) >= sizeof path) return 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    char best[4096] = "";
    struct timespec best_t = {0, 0};
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", path, e->d_name) >= sizeof p) continue;
        struct stat sb;
        if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
        if (!best[0] || sb.st_mtim.tv_sec > best_t.tv_sec ||
            (sb.st_mtim.tv_sec == best_t.tv_sec && sb.st_mtim.tv_nsec > best_t.tv_nsec)) {
            snprintf(best, sizeof best, "%s", p);
            best_t = sb.st_mtim;
        }
    }
    closedir(d);
    if (!best[0]) return 0;
    return (size_t)snprintf(out, out_size, "%s", best) < out_size;
}

qembed_status qe_resolve_model_path(const char *name, char *out, size_t out_size, qembed_error *err) {
    if (!name || !name[0] || !out || out_size == 0)
        QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "no model path or repo id given");
    if (is_dir(name)) {
        if ((size_t)snprintf(out, out_size, "%s", name) >= out_size)
            QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "%s: path too long", name);
        return QEMBED_OK;
    }
    struct stat sb;
    if (stat(name, &sb) == 0)
        QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT,
                "%s: not a directory (expected a model directory or a repo id)", name);
    if (!looks_like_repo_id(name))
        QE_FAIL(err, QEMBED_ERR_NOT_FOUND,
                "%s: no such model directory (and not a repo id of the form org/name)", name);

    /* Candidate hub caches, in huggingface_hub's order of precedence. */
    char cands[4][2048];
    int nc = 0;
    const char *v;
    /* (an over-long variable is skipped rather than truncated into a wrong path) */
    if ((v = getenv("HF_HUB_CACHE")) && v[0] &&
        (size_t)snprintf(cands[nc], sizeof cands[0], "%s", v) < sizeof cands[0])
        nc++;
    if ((v = getenv("HF_HOME")) && v[0] &&
        (size_t)snprintf(cands[nc], sizeof cands[0], "%s/hub", v) < sizeof cands[0])
        nc++;
    if ((v = getenv("XDG_CACHE_HOME")) && v[0] &&
        (size_t)snprintf(cands[nc], sizeof cands[0], "%s/huggingface/hub", v) < sizeof cands[0])
        nc++;
    if ((v = getenv("HOME")) && v[0] &&
        (size_t)snprintf(cands[nc], sizeof cands[0], "%s/.cache/huggingface/hub", v) < sizeof cands[0])
        nc++;

    char folder[512];
    const char *slash = strchr(name, '/');
    snprintf(folder, sizeof folder, "models--%.*s--%s", (int)(slash - name), name, slash + 1);

    char looked[QEMBED_ERROR_MESSAGE_MAX] = "";
    size_t ll = 0;
    for (int i = 0; i < nc; i++) {
        int dup = 0;
        for (int j = 0; j < i; j++) dup |= !strcmp(cands[i], cands[j]);
        if (dup) continue;
        char repo[2048 + 512 + 2];
        if ((size_t)snprintf(repo, sizeof repo, "%s/%s", cands[i], folder) >= sizeof repo) continue;
        if (is_dir(repo) && pick_snapshot(repo, out, out_size)) return QEMBED_OK;
        int w = snprintf(looked + ll, sizeof looked - ll, "%s%s", ll ? ", " : "", repo);
        if (w > 0) ll = (ll + (size_t)w < sizeof looked) ? ll + (size_t)w : sizeof looked - 1;
    }
    /* The one command that fixes it, spelled out (`qembed pull` writes the
     * first of these caches). */
    QE_FAIL(
        err, QEMBED_ERR_NOT_FOUND,
        "model \"%s\" is neither a directory nor in the Hugging Face cache; download it with: qembed pull %s "
        "(looked in: %s)",
        name, name, ll ? looked : "no cache: HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME and HOME are unset");
}
