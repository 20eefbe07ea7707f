/* The Hugging Face cache layout, exactly as huggingface_hub writes it
 * (https://huggingface.co/docs/huggingface_hub/guides/manage-cache):
 *   <cache>/models--org--name/blobs/<etag>                 the file's bytes
 *   <cache>/models--org--name/blobs/<etag>.incomplete      a download in progress
 *   <cache>/models--org--name/snapshots/<commit>/<path>    relative symlink to ../../blobs/<etag>
 *   <cache>/models--org--name/refs/<revision>              the commit, no newline
 *   <cache>/.locks/models--org--name/<etag>.lock           the per-blob lock file
 * so a file is stored once whichever tool fetched it and whichever revisions
 * hold it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub.h"

int qh_cache_dir(const char *override, char *out, size_t out_size, char *err, size_t err_size) {
    const char *v;
    int n;
    if (override && override[0])
        n = snprintf(out, out_size, "%s", override);
    else if ((v = getenv("HF_HUB_CACHE")) && v[0])
        n = snprintf(out, out_size, "%s", v);
    else if ((v = getenv("HF_HOME")) && v[0])
        n = snprintf(out, out_size, "%s/hub", v);
    else if ((v = getenv("XDG_CACHE_HOME")) && v[0])
        n = snprintf(out, out_size, "%s/huggingface/hub", v);
    else if ((v = getenv("HOME")) && v[0])
        n = snprintf(out, out_size, "%s/.cache/huggingface/hub", v);
    else {
        snprintf(err, err_size, "no cache folder: set HF_HUB_CACHE or HF_HOME (HOME is unset too)");
        return -1;
    }
    if (n < 0 || (size_t)n >= out_size - 600) { /* room for the repo folder and file paths */
        snprintf(err, err_size, "the cache folder's path is too long");
        return -1;
    }
    return 0;
}

int qh_repo_cache_init(qh_repo_cache *rc, const char *cache_dir, const char *repo, char *err,
                       size_t err_size) {
    const char *sl = strchr(repo, '/');
    if (!sl) {
        snprintf(err, err_size, "%s: not a repo id (org/name)", repo);
        return -1;
    }
    int a =
        snprintf(rc->root, sizeof rc->root, "%s/models--%.*s--%s", cache_dir, (int)(sl - repo), repo, sl + 1);
    int b = snprintf(rc->locks, sizeof rc->locks, "%s/.locks/models--%.*s--%s", cache_dir, (int)(sl - repo),
                     repo, sl + 1);
    if (a < 0 || b < 0 || (size_t)a >= sizeof rc->root - 1500 || (size_t)b >= sizeof rc->locks - 300) {
        snprintf(err, err_size, "%s: the cache path is too long", repo);
        return -1;
    }
    return 0;
}

int qh_mkdirs(const char *path, char *err, size_t err_size) {
    char p[4096];
    if ((size_t)snprintf(p, sizeof p, "%s", path) >= sizeof p) {
        snprintf(err, err_size, "%.200s: path too long", path);
        return -1;
    }
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                snprintf(err, err_size, "cannot create folder %s: %s", p, strerror(errno));
                return -1;
            }
            *s = c;
            if (!c) break;
        }
    }
    struct stat sb;
    if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, err_size, "%s: exists and is not a folder", p);
        return -1;
    }
    return 0;
}

int qh_lock_blob(const qh_repo_cache *rc, const char *etag, char *err, size_t err_size) {
    if (qh_mkdirs(rc->locks, err, err_size) != 0) return -1;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.lock", rc->locks, etag);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        snprintf(err, err_size, "cannot open the lock file %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "qembed pull: waiting for another download of the same file (%s)\n", path);
        while (flock(fd, LOCK_EX) != 0) {
            if (errno != EINTR) {
                snprintf(err, err_size, "cannot lock %s: %s", path, strerror(errno));
                close(fd);
                return -1;
            }
        }
    }
    return fd;
}

int qh_snapshot_has(const qh_repo_cache *rc, const char *commit, const char *path) {
    char p[6000];
    if ((size_t)snprintf(p, sizeof p, "%s/snapshots/%s/%s", rc->root, commit, path) >= sizeof p) return 0;
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode); /* stat follows the link: a dangling one is absent */
}

int qh_link_snapshot(const qh_repo_cache *rc, const char *commit, const char *path, const char *etag,
                     char *err, size_t err_size) {
    char link[6000], dir[6000], target[2048];
    snprintf(link, sizeof link, "%s/snapshots/%s/%s", rc->root, commit, path);
    snprintf(dir, sizeof dir, "%s", link);
    *strrchr(dir, '/') = '\0';
    if (qh_mkdirs(dir, err, err_size) != 0) return -1;
    /* os.path.relpath(blob, dirname(link)): up out of the path's folders,
     * then out of snapshots/<commit>, into blobs. */
    size_t o = 0;
    o += (size_t)snprintf(target + o, sizeof target - o, "../../");
    for (const char *s = path; *s; s++)
        if (*s == '/') o += (size_t)snprintf(target + o, sizeof target - o, "../");
    if ((size_t)snprintf(target + o, sizeof target - o, "blobs/%s", etag) >= sizeof target - o) {
        snprintf(err, err_size, "%s: path too deep", path);
        return -1;
    }
    if (unlink(link) != 0 && errno != ENOENT) {
        snprintf(err, err_size, "cannot replace %s: %s", link, strerror(errno));
        return -1;
    }
    if (symlink(target, link) != 0) {
        snprintf(err, err_size, "cannot create the link %s -> %s: %s", link, target, strerror(errno));
        return -1;
    }
    return 0;
}

static int is_commit(const char *s) {
    if (strlen(s) != 40) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
    return 1;
}

int qh_write_ref(const qh_repo_cache *rc, const char *revision, const char *commit, char *err,
                 size_t err_size) {
    if (!strcmp(revision, commit)) return 0;
    char path[4800], dir[4800];
    snprintf(path, sizeof path, "%s/refs/%s", rc->root, revision);
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    if (qh_mkdirs(dir, err, err_size) != 0) return -1;
    char cur[41];
    qh_read_ref(rc, revision, cur);
    if (!strcmp(cur, commit)) return 0;
    /* write beside, then rename: a reader never sees half a hash */
    char tmp[4900];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, err_size, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    int bad = fputs(commit, f) < 0;
    if (fclose(f) != 0) bad = 1;
    if (bad) {
        snprintf(err, err_size, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

void qh_read_ref(const qh_repo_cache *rc, const char *revision, char commit[41]) {
    commit[0] = '\0';
    if (is_commit(revision)) {
        memcpy(commit, revision, 41);
        return;
    }
    char path[4800];
    snprintf(path, sizeof path, "%s/refs/%s", rc->root, revision);
    FILE *f = fopen(path, "r");
    if (!f) return;
    char buf[64] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = '\0';
    if (is_commit(buf)) memcpy(commit, buf, 41);
}
