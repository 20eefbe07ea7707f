/* One file of a pull, the way huggingface_hub's hf_hub_download does it: a
 * HEAD on {endpoint}/{repo}/resolve/{commit}/{path} gives the blob's name (the
 * ETag, or X-Linked-Etag for an LFS file: its SHA-256) and, for LFS files, a
 * redirect to the CDN; the bytes go to blobs/<etag>.incomplete, continued
 * with a Range request after any interruption (in this run after a back-off,
 * or in the next run); only a complete file whose size and hash are right is
 * renamed to blobs/<etag> and linked from the snapshot. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../commands.h" /* cli_now_s */
#include "hub.h"

void qh_fmt_bytes(double b, char *out, size_t n) {
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) b /= 1024, u++;
    snprintf(out, n, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

/* huggingface_hub's _normalize_etag: drop a weak "W/" prefix and the quotes. */
static void normalize_etag(const char *in, char *out, size_t n) {
    if (!strncmp(in, "W/", 2)) in += 2;
    size_t len = strlen(in);
    while (len && *in == '"') in++, len--;
    while (len && in[len - 1] == '"') len--;
    if (len >= n) len = n - 1;
    memcpy(out, in, len);
    out[len] = '\0';
}

static int is_hex64(const char *s) {
    if (strlen(s) != 64) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
    return 1;
}

/* scheme://host[:port] of a and b are the same. */
static int same_origin(const char *a, const char *b) {
    const char *pa = strstr(a, "://"), *pb = strstr(b, "://");
    if (!pa || !pb) return 0;
    size_t la = strcspn(pa + 3, "/?#") + (size_t)(pa + 3 - a),
           lb = strcspn(pb + 3, "/?#") + (size_t)(pb + 3 - b);
    return la == lb && !strncasecmp(a, b, la);
}

/* The file's hash as hex: SHA-256 of the bytes, or (git=1) the git blob
 * SHA-1, which hashes "blob <size>\0" and then the bytes. */
static int hash_file(const char *path, int git, char *hex, size_t hex_size, char *err, size_t err_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(err, err_size, "cannot read %s to check it: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20);
    int rc = -1;
    if (!md || !buf || !EVP_DigestInit_ex(md, git ? EVP_sha1() : EVP_sha256(), NULL)) {
        snprintf(err, err_size, "cannot start a hash (out of memory)");
        goto done;
    }
    if (git) {
        char head[64];
        int hn = snprintf(head, sizeof head, "blob %lld", (long long)sb.st_size);
        EVP_DigestUpdate(md, head, (size_t)hn + 1); /* with its NUL */
    }
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 20);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(err, err_size, "cannot read %s to check it: %s", path, strerror(errno));
            goto done;
        }
        if (n == 0) break;
        EVP_DigestUpdate(md, buf, (size_t)n);
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dn = 0;
    EVP_DigestFinal_ex(md, d, &dn);
    if (hex_size < 2 * (size_t)dn + 1) goto done;
    for (unsigned i = 0; i < dn; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    rc = 0;
done:
    EVP_MD_CTX_free(md);
    free(buf);
    close(fd);
    return rc;
}

/* ---- the transfer ---- */
typedef struct xfer {
    int fd;
    CURL *h;
    int64_t offset;      /* bytes in the file when this request started */
    int64_t written;     /* bytes written by this request */
    int restart_checked; /* the status of this answer was looked at */
    int discard;         /* an error answer: its body is not the file */
    int write_errno;     /* a failed write (ENOSPC ...) */
    const char *name;
    int64_t size; /* expected file size, -1 unknown */
    qh_progress *p;
    double last_draw;
} xfer;

static void draw(xfer *x, int final) {
    qh_progress *p = x->p;
    if (!p || !p->enabled) return;
    double now = cli_now_s();
    if (!final && now - x->last_draw < 0.1) return;
    x->last_draw = now;
    int64_t have = x->offset + x->written;
    char a[32], b[32], sp[32];
    qh_fmt_bytes((double)have, a, sizeof a);
    qh_fmt_bytes(x->size >= 0 ? (double)x->size : 0, b, sizeof b);
    double el = now - p->t0;
    qh_fmt_bytes(el > 0 ? (double)(p->done_bytes + have) / el : 0, sp, sizeof sp);
    int pct = x->size > 0 ? (int)(100.0 * (double)have / (double)x->size) : 0;
    int tot = p->total_bytes > 0 ? (int)(100.0 * (double)(p->done_bytes + have) / (double)p->total_bytes) : 0;
    if (pct > 100) pct = 100;
    if (tot > 100) tot = 100;
    char bar[21];
    int fill = pct / 5;
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
    bar[20] = '\0';
    fprintf(stderr, "\r\033[K[%zu/%zu] %.40s [%s] %3d%% %s/%s  %s/s  total %3d%%", p->index, p->count,
            x->name, bar, pct, a, b, sp, tot);
    fflush(stderr);
}

static int xferinfo(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    draw(user, 0);
    return 0;
}

static size_t file_write(char *data, size_t size, size_t nmemb, void *user) {
    xfer *x = user;
    size_t n = size * nmemb;
    if (!x->restart_checked) {
        x->restart_checked = 1;
        long status = 0;
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status > 299) {
            x->discard = 1;
        } else if (status == 200 && x->offset > 0) {
            /* the server ignored the Range header: the whole file comes again */
            if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0) {
                x->write_errno = errno;
                return 0;
            }
            x->offset = 0;
        }
    }
    if (x->discard) return n;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(x->fd, data + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            x->write_errno = w < 0 ? errno : ENOSPC;
            return 0; /* libcurl stops with CURLE_WRITE_ERROR */
        }
        done += (size_t)w;
    }
    x->written += (int64_t)n;
    return n;
}

int qh_fetch_file(const qh_client *c, const qh_repo_cache *rc, const char *repo, const char *commit,
                  const qh_file *f, qh_progress *p, qh_fetch_result *res, char *err, size_t err_size) {
    memset(res, 0, sizeof *res);
    char epath[3200], url[4800];
    if (qh_url_escape(f->path, 1, epath, sizeof epath) != 0 ||
        (size_t)snprintf(url, sizeof url, "%s/%s/resolve/%s/%s", c->endpoint, repo, commit, epath) >=
            sizeof url) {
        snprintf(err, err_size, "%s: %s: path too long", repo, f->path);
        return -1;
    }
    qh_response r;
    if (qh_head(c, url, &r, err, err_size) != 0) return -1;
    if (r.status < 200 || r.status >= 400) {
        qh_http_error(c, &r, repo, commit, f->path, err, err_size);
        return -1;
    }
    normalize_etag(r.linked_etag[0] ? r.linked_etag : r.etag, res->etag, sizeof res->etag);
    if (!res->etag[0]) {
        snprintf(err, err_size,
                 "%s: %s: the server sent no ETag, so the file cannot be named in the cache (%s)", repo,
                 f->path, url);
        return -1;
    }
    if (!qh_name_is_safe(res->etag)) {
        snprintf(err, err_size, "%s: %s: the server's ETag \"%.80s\" is not a usable file name", repo,
                 f->path, res->etag);
        return -1;
    }
    int64_t size = f->size;
    if (size < 0) size = r.linked_size >= 0 ? r.linked_size : (r.status == 200 ? r.content_length : -1);
    /* An LFS file is checked against its SHA-256 (the API's lfs.sha256, which
     * is also its X-Linked-Etag); any other file against its git blob id. */
    char want_sha256[65] = "", want_git[41] = "";
    if (f->lfs_sha256[0])
        snprintf(want_sha256, sizeof want_sha256, "%s", f->lfs_sha256);
    else if (r.linked_etag[0] && is_hex64(res->etag))
        snprintf(want_sha256, sizeof want_sha256, "%s", res->etag);
    else if (f->blob_id[0])
        snprintf(want_git, sizeof want_git, "%s", f->blob_id);
    /* HEAD stopped at an absolute redirect (the CDN): download from there. */
    const char *dl_url = (r.status >= 300 && r.location[0] && strstr(r.location, "://")) ? r.location : url;
    char dl[4800];
    snprintf(dl, sizeof dl, "%s", dl_url);
    /* The token is for the Hub: a CDN on another host gets a signed URL and
     * no Authorization header. */
    qh_client nc = *c;
    if (!same_origin(dl, c->endpoint)) nc.auth_header = NULL;
    c = &nc;

    char blobs[4200], blob[4500], inc[4600];
    snprintf(blobs, sizeof blobs, "%s/blobs", rc->root);
    snprintf(blob, sizeof blob, "%s/%s", blobs, res->etag);
    snprintf(inc, sizeof inc, "%s.incomplete", blob);
    if (qh_mkdirs(blobs, err, err_size) != 0) return -1;
    int lock = qh_lock_blob(rc, res->etag, err, err_size);
    if (lock < 0) return -1;
    int ret = -1, fd = -1;
    struct stat sb;
    if (stat(blob, &sb) == 0 && S_ISREG(sb.st_mode)) {
        /* another revision, or another tool, already stored these bytes */
        ret = qh_link_snapshot(rc, commit, f->path, res->etag, err, err_size);
        goto out;
    }
    fd = open(inc, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        snprintf(err, err_size, "cannot write %s: %s", inc, strerror(errno));
        goto out;
    }
    int tried_from_zero = 0;
    for (int attempt = 0;; attempt++) {
        off_t end = lseek(fd, 0, SEEK_END);
        if (end < 0) end = 0;
        if (size >= 0 && end > size) { /* longer than the file: not a prefix of it */
            if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
                snprintf(err, err_size, "cannot truncate %s: %s", inc, strerror(errno));
                goto out;
            }
            end = 0;
        }
        if (size >= 0 && end == size && end > 0) break; /* complete already; check it below */
        xfer x = {.fd = fd, .offset = end, .name = f->path, .size = size, .p = p};
        struct curl_slist *hdrs;
        qh_response gr;
        CURL *h = qh_easy(c, dl, &gr, &hdrs);
        if (!h) {
            snprintf(err, err_size, "libcurl: cannot create a handle");
            goto out;
        }
        x.h = h;
        char range[64], cerr[CURL_ERROR_SIZE] = "";
        if (end > 0) {
            snprintf(range, sizeof range, "%lld-", (long long)end);
            curl_easy_setopt(h, CURLOPT_RANGE, range);
            res->resumed = 1;
        }
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, file_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
        CURLcode cc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &gr.status);
        curl_easy_cleanup(h);
        curl_slist_free_all(hdrs);
        res->bytes += x.written;
        if (x.written) res->downloaded = 1;
        draw(&x, 1);
        if (x.write_errno) {
            if (p && p->enabled) fputs("\n", stderr);
            if (x.write_errno == ENOSPC || x.write_errno == EDQUOT)
                snprintf(err, err_size,
                         "%s: %s: the disk is full (writing %s: %s). Free some space and run the same "
                         "command again: "
                         "it continues from the %lld bytes already written",
                         repo, f->path, inc, strerror(x.write_errno), (long long)(x.offset + x.written));
            else
                snprintf(err, err_size, "%s: %s: cannot write %s: %s", repo, f->path, inc,
                         strerror(x.write_errno));
            goto out;
        }
        if (cc == CURLE_OK && gr.status == 206 && gr.range_start >= 0 && gr.range_start != x.offset) {
            /* an answer for other bytes than asked: start the file over */
            if (ftruncate(fd, 0) != 0) {
                snprintf(err, err_size, "cannot truncate %s: %s", inc, strerror(errno));
                goto out;
            }
            if (tried_from_zero++) {
                snprintf(err, err_size, "%s: %s: the server answers Range requests with the wrong bytes",
                         repo, f->path);
                goto out;
            }
            continue;
        }
        if (cc == CURLE_OK && gr.status >= 200 && gr.status < 300) {
            off_t now_end = lseek(fd, 0, SEEK_END);
            if (size < 0 || now_end == size) break;
            /* the connection ended early without libcurl noticing: resume */
            if (now_end > size || attempt >= c->retries) {
                snprintf(err, err_size, "%s: %s: got %lld bytes, expected %lld", repo, f->path,
                         (long long)now_end, (long long)size);
                if (now_end > size) unlink(inc);
                goto out;
            }
            qh_backoff(attempt + 1);
            continue;
        }
        if (cc == CURLE_OK && gr.status == 416 && !tried_from_zero++) {
            /* the partial file does not fit the server's file: start over */
            if (ftruncate(fd, 0) != 0) {
                snprintf(err, err_size, "cannot truncate %s: %s", inc, strerror(errno));
                goto out;
            }
            continue;
        }
        int transient = cc != CURLE_OK ? qh_curl_is_transient(cc) : qh_status_is_transient(gr.status);
        if (!transient || attempt >= c->retries) {
            if (p && p->enabled) fputs("\n", stderr);
            if (cc != CURLE_OK)
                snprintf(
                    err, err_size,
                    "%s: %s: download failed: %s%s. The %lld bytes received are kept in %s; run the same "
                    "command again to continue",
                    repo, f->path, cerr[0] ? cerr : curl_easy_strerror(cc), attempt ? " (after retries)" : "",
                    (long long)lseek(fd, 0, SEEK_END), inc);
            else
                qh_http_error(c, &gr, repo, commit, f->path, err, err_size);
            goto out;
        }
        if (!c->quiet) {
            if (p && p->enabled) fputs("\n", stderr);
            fprintf(stderr, "qembed pull: %s: %s; retrying from byte %lld (%d of %d)\n", f->path,
                    cc != CURLE_OK ? (cerr[0] ? cerr : curl_easy_strerror(cc)) : "server error",
                    (long long)lseek(fd, 0, SEEK_END), attempt + 1, c->retries);
        }
        qh_backoff(attempt + 1);
    }
    if (fsync(fd) != 0 && errno != EINVAL) {
        snprintf(err, err_size, "%s: %s: cannot write %s: %s", repo, f->path, inc, strerror(errno));
        goto out;
    }
    off_t got = lseek(fd, 0, SEEK_END);
    close(fd);
    fd = -1;
    if (size >= 0 && got != size) {
        snprintf(err, err_size, "%s: %s: got %lld bytes, expected %lld; the file was not kept", repo, f->path,
                 (long long)got, (long long)size);
        unlink(inc);
        goto out;
    }
    if (want_sha256[0] || want_git[0]) {
        char hex[129];
        if (hash_file(inc, want_git[0] != 0, hex, sizeof hex, err, err_size) != 0) goto out;
        const char *want = want_sha256[0] ? want_sha256 : want_git;
        if (strcmp(hex, want)) {
            unlink(inc);
            snprintf(
                err, err_size,
                "%s: %s: checksum mismatch: %s %s expected, %s received; the corrupted file was deleted (a "
                "mirror or proxy changed it, or the repo is broken). Run the command again to retry",
                repo, f->path, want_sha256[0] ? "SHA-256" : "git blob SHA-1", want, hex);
            goto out;
        }
    }
    if (rename(inc, blob) != 0) {
        snprintf(err, err_size, "cannot move %s to %s: %s", inc, blob, strerror(errno));
        goto out;
    }
    ret = qh_link_snapshot(rc, commit, f->path, res->etag, err, err_size);
out:
    if (fd >= 0) close(fd);
    close(lock);
    return ret;
}
