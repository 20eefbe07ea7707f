/* The Hugging Face Hub client behind `qembed pull`: the model-info API, file
 * downloads into the shared Hugging Face cache, and that cache's layout, all
 * as huggingface_hub does them, so Python and qembed share one copy of every
 * file. It belongs to the CLI, not to libqembed (the library never links
 * libcurl). One job per file:
 *   info.c      parses the model-info JSON (untrusted input; fuzzed)
 *   http.c      libcurl requests: endpoint, token, headers, retries, errors
 *   api.c       GET /api/models/{repo}/revision/{rev}?blobs=true
 *   download.c  one file: HEAD, Range-resumed GET into blobs/<etag>.incomplete,
 *               SHA-256 / git-SHA-1 check, move into place, progress bar
 *   cache.c     cache folders, locks, snapshot links, refs
 * Errors are one line written into a caller's buffer (QH_ERR_MAX); every
 * function returns 0 on success and -1 on failure. */
#ifndef QH_HUB_H
#define QH_HUB_H

#include <stddef.h>
#include <stdint.h>

#define QH_ERR_MAX 1024

/* ---- the model-info answer (info.c) ---- */
typedef struct qh_file {
    char *path;          /* "rfilename": a relative path, checked by qh_path_is_safe */
    int64_t size;        /* bytes; -1 when the API did not say */
    char blob_id[41];    /* the git blob SHA-1 ("blobId", 40 hex), "" when absent */
    char lfs_sha256[65]; /* "lfs.sha256" (64 hex) for LFS files, "" otherwise */
} qh_file;

typedef struct qh_info {
    char sha[41];   /* the commit the revision points at (40 lower-case hex) */
    qh_file *files; /* "siblings", in the API's order */
    size_t n_files;
} qh_info;

/* Parses the JSON of GET /api/models/{repo}[/revision/{rev}][?blobs=true]:
 * {"sha": "<40 hex>", "siblings": [{"rfilename": "...", "size": N,
 *  "blobId": "<40 hex>", "lfs": {"sha256": "<64 hex>", "size": N}}, ...]}.
 * Unknown fields are ignored; a sibling with an unsafe path, a malformed
 * hash or a negative size is an error naming it. On success *out owns its
 * memory (qh_info_free). */
int qh_info_parse(const char *json, size_t len, qh_info *out, char *err, size_t err_size);
void qh_info_free(qh_info *info);

/* A relative path inside a snapshot: not empty, not absolute, no "." or ".."
 * or empty component, no backslash or control character, < 1024 bytes. */
int qh_path_is_safe(const char *path);
/* One path component usable as a file name (an etag, a commit): 1..255 bytes
 * of [A-Za-z0-9._-], not "." or "..". */
int qh_name_is_safe(const char *name);
/* "org/name" as the Hub spells repo ids (same rule as the model resolver). */
int qh_repo_id_is_valid(const char *repo);
/* A branch, tag, "refs/pr/N" or commit: no "..", no leading or trailing '/',
 * no empty component, no control character or backslash, < 256 bytes. */
int qh_revision_is_valid(const char *rev);

/* ---- HTTP (http.c) ---- */
typedef struct qh_client {
    char endpoint[1024];  /* HF_ENDPOINT without a trailing '/', default https://huggingface.co */
    char *auth_header;    /* "Authorization: Bearer ..." or NULL; never logged */
    char token_src[1100]; /* where the token came from ("HF_TOKEN", a file), "" when none */
    int retries;          /* extra attempts after a transient failure */
    long timeout_s;       /* a transfer that moves no byte for this long is a transient failure */
    int quiet;
    char user_agent[128]; /* "qembed/<version>" */
} qh_client;

/* What a response said, from its headers (the last response when redirects
 * were followed). */
typedef struct qh_response {
    long status;
    char etag[256];          /* ETag, as sent */
    char linked_etag[256];   /* X-Linked-Etag (LFS files: the SHA-256) */
    char repo_commit[64];    /* X-Repo-Commit */
    char location[4096];     /* Location of a redirect */
    char error_code[64];     /* X-Error-Code (RepositoryNotFound, RevisionNotFound, GatedRepo, ...) */
    char error_message[256]; /* X-Error-Message */
    int64_t linked_size;     /* X-Linked-Size, -1 when absent */
    int64_t content_length;  /* Content-Length, -1 when absent */
    int64_t range_start;     /* the first byte of a 206 answer (Content-Range), -1 otherwise */
} qh_response;

/* Reads HF_ENDPOINT, HF_TOKEN (or HUGGING_FACE_HUB_TOKEN, or the token file:
 * HF_TOKEN_PATH, else $HF_HOME/token, else $XDG_CACHE_HOME/huggingface/token,
 * else ~/.cache/huggingface/token) and HF_HUB_DOWNLOAD_TIMEOUT. token, when
 * not NULL, wins (--token). Calls curl_global_init. */
int qh_client_init(qh_client *c, const char *token, char *err, size_t err_size);
void qh_client_free(qh_client *c);

/* 1 when HF_HUB_OFFLINE is set to a true value (1, ON, YES, TRUE). */
int qh_offline(void);

/* GET url into a NUL-terminated buffer (*body, freed by the caller; at most
 * max_bytes), retrying transient failures. Returns 0 with resp->status set
 * whatever the status (the caller judges it), -1 on a transport failure. */
int qh_get(const qh_client *c, const char *url, size_t max_bytes, char **body, size_t *body_len,
           qh_response *resp, char *err, size_t err_size);

/* HEAD url, following relative redirects only (a renamed repo) and stopping
 * at the first absolute one (the CDN), as huggingface_hub does: the Hub's
 * headers (X-Linked-Etag, X-Repo-Commit) are on that response. */
int qh_head(const qh_client *c, const char *url, qh_response *resp, char *err, size_t err_size);

/* The error line for an HTTP failure answer: 401/403 say how to pass a token,
 * 404 says which of the repo or the revision (or file) is missing. */
void qh_http_error(const qh_client *c, const qh_response *r, const char *repo, const char *revision,
                   const char *what, char *err, size_t err_size);

/* 1 for a failure worth retrying: a 408, 429 or 5xx answer. */
int qh_status_is_transient(long status);
/* Sleeps before retry number attempt (1, 2, ...): 1 s, 2 s, 4 s ... capped at 30 s. */
void qh_backoff(int attempt);

/* For download.c: a libcurl easy handle (CURL *) for url with the settings
 * every request shares (token, user agent, timeouts, header capture into
 * *resp); *hdrs is the header list to free after the transfer. */
struct curl_slist;
void *qh_easy(const qh_client *c, const char *url, qh_response *resp, struct curl_slist **hdrs);
/* 1 for a libcurl result (CURLcode) worth retrying: the network, not the request. */
int qh_curl_is_transient(int code);

/* Percent-encodes s into out: keep_slash leaves '/' as it is (file paths in
 * URLs), otherwise it is encoded too (a revision such as refs/pr/1). */
int qh_url_escape(const char *s, int keep_slash, char *out, size_t out_size);

/* ---- the model-info API (api.c) ---- */
/* GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true, parsed. */
int qh_model_info(const qh_client *c, const char *repo, const char *revision, qh_info *out, char *err,
                  size_t err_size);

/* ---- the cache (cache.c) ---- */
/* The hub cache folder huggingface_hub writes: HF_HUB_CACHE, else
 * $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub; override (--cache-dir) wins when not NULL. */
int qh_cache_dir(const char *override, char *out, size_t out_size, char *err, size_t err_size);

typedef struct qh_repo_cache {
    char root[4096];  /* <cache>/models--org--name */
    char locks[4096]; /* <cache>/.locks/models--org--name */
} qh_repo_cache;

/* Fills the folders for repo (creating nothing). */
int qh_repo_cache_init(qh_repo_cache *rc, const char *cache_dir, const char *repo, char *err,
                       size_t err_size);

/* mkdir -p. */
int qh_mkdirs(const char *path, char *err, size_t err_size);

/* Holds an exclusive lock on <locks>/<etag>.lock (the file huggingface_hub's
 * FileLock uses), so two pulls, or a pull and Python, never write the same
 * blob at once. Returns the descriptor (close it to release) or -1. */
int qh_lock_blob(const qh_repo_cache *rc, const char *etag, char *err, size_t err_size);

/* snapshots/<commit>/<path>: 1 when it exists and its link resolves. */
int qh_snapshot_has(const qh_repo_cache *rc, const char *commit, const char *path);

/* Makes snapshots/<commit>/<path> a relative symlink to ../../blobs/<etag>
 * (one more "../" per folder in path), replacing what was there. */
int qh_link_snapshot(const qh_repo_cache *rc, const char *commit, const char *path, const char *etag,
                     char *err, size_t err_size);

/* Writes refs/<revision> = commit (no newline) when revision is not the commit
 * itself, as huggingface_hub does. */
int qh_write_ref(const qh_repo_cache *rc, const char *revision, const char *commit, char *err,
                 size_t err_size);

/* The commit refs/<revision> names ("" when none), or revision itself when it
 * is a commit hash. */
void qh_read_ref(const qh_repo_cache *rc, const char *revision, char commit[41]);

/* ---- one file (download.c) ---- */
typedef struct qh_progress {
    int enabled;         /* draw bars (stderr is a terminal and not --no-progress) */
    size_t index, count; /* this file's number (1-based) among the files to fetch */
    int64_t total_bytes; /* bytes of every file to fetch; 0 when unknown */
    int64_t done_bytes;  /* bytes of the files already finished */
    double t0;           /* monotonic start of the pull, seconds */
} qh_progress;

typedef struct qh_fetch_result {
    int downloaded; /* 1 when bytes came over the network */
    int64_t bytes;  /* bytes transferred for this file (a resume counts only the rest) */
    int resumed;    /* 1 when a partial file was continued with a Range request */
    char etag[256]; /* the blob's name */
} qh_fetch_result;

/* Puts one file of repo@commit into the cache: HEAD for the etag, reuse a
 * blob that is already there, else GET into blobs/<etag>.incomplete (resumed
 * with Range), check size and hash, rename to blobs/<etag>, link the snapshot.
 * A checksum mismatch deletes the partial file. */
int qh_fetch_file(const qh_client *c, const qh_repo_cache *rc, const char *repo, const char *commit,
                  const qh_file *f, qh_progress *p, qh_fetch_result *res, char *err, size_t err_size);

/* "1.5 GiB", "340 KiB". */
void qh_fmt_bytes(double b, char *out, size_t out_size);

#endif
