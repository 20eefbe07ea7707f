/* The Hub's model-info API: which files a revision holds, their sizes and
 * hashes, and the commit the revision points at, in one request:
 *   GET {endpoint}/api/models/{org}/{name}/revision/{rev}?blobs=true
 * (rev percent-encoded, '/' included, as huggingface_hub's HfApi.model_info
 * does; blobs=true adds each file's size, blobId and lfs.sha256). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"

/* A generous bound: the answer for a repo of thousands of files is a few MB. */
#define QH_INFO_MAX_BYTES (64u << 20)

int qh_model_info(const qh_client *c, const char *repo, const char *revision, qh_info *out, char *err,
                  size_t err_size) {
    char rev[800], url[2048];
    if (qh_url_escape(revision, 0, rev, sizeof rev) != 0 ||
        (size_t)snprintf(url, sizeof url, "%s/api/models/%s/revision/%s?blobs=true", c->endpoint, repo,
                         rev) >= sizeof url) {
        snprintf(err, err_size, "%s: revision or endpoint too long", repo);
        return -1;
    }
    char *body = NULL;
    size_t len = 0;
    qh_response r;
    if (qh_get(c, url, QH_INFO_MAX_BYTES, &body, &len, &r, err, err_size) != 0) return -1;
    if (r.status != 200) {
        free(body);
        qh_http_error(c, &r, repo, revision, "model info", err, err_size);
        return -1;
    }
    char perr[QH_ERR_MAX];
    int rc = qh_info_parse(body, len, out, perr, sizeof perr);
    free(body);
    if (rc != 0) snprintf(err, err_size, "%s: %s (from %s)", repo, perr, url);
    return rc;
}
