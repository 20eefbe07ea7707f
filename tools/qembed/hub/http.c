/* libcurl plumbing for the Hub client: where to connect (HF_ENDPOINT), which
 * token to send (HF_TOKEN, the token file huggingface_hub writes), the Hub's
 * response headers, retries with back-off, and the error line for a failed
 * answer. libcurl itself honours the usual proxy variables (https_proxy,
 * http_proxy, all_proxy, no_proxy) and, on a redirect to another host, drops
 * the Authorization header, so a token never reaches the CDN. */
#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hub.h"
#include "qembed.h"

int qh_offline(void) {
    const char *v = getenv("HF_HUB_OFFLINE");
    if (!v) return 0;
    return !strcasecmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true");
}

/* The token file's path, in huggingface_hub's order. */
static int token_path(char *out, size_t n) {
    const char *v;
    if ((v = getenv("HF_TOKEN_PATH")) && v[0]) return (size_t)snprintf(out, n, "%s", v) < n;
    if ((v = getenv("HF_HOME")) && v[0]) return (size_t)snprintf(out, n, "%s/token", v) < n;
    if ((v = getenv("XDG_CACHE_HOME")) && v[0])
        return (size_t)snprintf(out, n, "%s/huggingface/token", v) < n;
    if ((v = getenv("HOME")) && v[0]) return (size_t)snprintf(out, n, "%s/.cache/huggingface/token", v) < n;
    return 0;
}

/* Trims whitespace; a token must then be printable ASCII without spaces (it
 * goes into a header line). */
static int clean_token(char *t) {
    size_t n = strlen(t);
    while (n && isspace((unsigned char)t[n - 1])) t[--n] = '\0';
    size_t s = 0;
    while (t[s] && isspace((unsigned char)t[s])) s++;
    memmove(t, t + s, n - s + 1);
    for (const char *p = t; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) return 0;
    return 1;
}

int qh_client_init(qh_client *c, const char *token, char *err, size_t err_size) {
    memset(c, 0, sizeof *c);
    c->retries = 5;
    c->timeout_s = 10;
    snprintf(c->user_agent, sizeof c->user_agent, "qembed/%s; libcurl/%s", qembed_version(),
             curl_version_info(CURLVERSION_NOW)->version);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, err_size, "libcurl failed to initialise");
        return -1;
    }
    const char *ep = getenv("HF_ENDPOINT");
    if (!ep || !ep[0]) ep = "https://huggingface.co";
    if ((size_t)snprintf(c->endpoint, sizeof c->endpoint, "%s", ep) >= sizeof c->endpoint ||
        (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8))) {
        snprintf(err, err_size, "HF_ENDPOINT=%.200s is not an http:// or https:// URL", ep);
        return -1;
    }
    size_t el = strlen(c->endpoint);
    while (el && c->endpoint[el - 1] == '/') c->endpoint[--el] = '\0';
    const char *t = getenv("HF_HUB_DOWNLOAD_TIMEOUT");
    if (t && t[0]) {
        char *end;
        long v = strtol(t, &end, 10);
        if (*end || v < 1 || v > 3600) {
            snprintf(err, err_size, "HF_HUB_DOWNLOAD_TIMEOUT=%.50s is not a number of seconds (1 to 3600)",
                     t);
            return -1;
        }
        c->timeout_s = v;
    }

    char tok[4096] = "";
    if (token) {
        snprintf(tok, sizeof tok, "%s", token);
        snprintf(c->token_src, sizeof c->token_src, "--token");
    } else if ((t = getenv("HF_TOKEN")) && t[0]) {
        snprintf(tok, sizeof tok, "%s", t);
        snprintf(c->token_src, sizeof c->token_src, "HF_TOKEN");
    } else if ((t = getenv("HUGGING_FACE_HUB_TOKEN")) && t[0]) {
        snprintf(tok, sizeof tok, "%s", t);
        snprintf(c->token_src, sizeof c->token_src, "HUGGING_FACE_HUB_TOKEN");
    } else {
        char path[1024];
        FILE *f = token_path(path, sizeof path) ? fopen(path, "r") : NULL;
        if (f) {
            size_t n = fread(tok, 1, sizeof tok - 1, f);
            fclose(f);
            tok[n] = '\0';
            snprintf(c->token_src, sizeof c->token_src, "the token file %s", path);
        }
    }
    if (!clean_token(tok)) {
        snprintf(err, err_size, "the token from %s has spaces or non-ASCII characters inside", c->token_src);
        return -1;
    }
    if (tok[0]) {
        size_t n = strlen(tok) + 32;
        c->auth_header = malloc(n);
        if (!c->auth_header) {
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        snprintf(c->auth_header, n, "Authorization: Bearer %s", tok);
    } else {
        c->token_src[0] = '\0';
    }
    memset(tok, 0, sizeof tok);
    return 0;
}

void qh_client_free(qh_client *c) {
    if (c->auth_header) {
        memset(c->auth_header, 0, strlen(c->auth_header));
        free(c->auth_header);
        c->auth_header = NULL;
    }
    curl_global_cleanup();
}

int qh_url_escape(const char *s, int keep_slash, char *out, size_t out_size) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int plain =
            isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/');
        if (o + (plain ? 1 : 3) >= out_size) return -1;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o >= out_size) return -1;
    out[o] = '\0';
    return 0;
}

int qh_status_is_transient(long s) {
    return s == 408 || s == 429 || (s >= 500 && s <= 599);
}

void qh_backoff(int attempt) {
    double d = 1.0;
    for (int i = 1; i < attempt && d < 30; i++) d *= 2;
    if (d > 30) d = 30;
    struct timespec ts = {(time_t)d, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Copies a header's value (trimmed) when the line is "Name: value". */
static int header_value(const char *line, size_t n, const char *name, char *out, size_t out_size) {
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) || line[nl] != ':') return 0;
    const char *v = line + nl + 1;
    const char *e = line + n;
    while (v < e && (*v == ' ' || *v == '\t')) v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ')) e--;
    size_t len = (size_t)(e - v);
    if (len >= out_size) len = out_size - 1;
    memcpy(out, v, len);
    out[len] = '\0';
    return 1;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *user) {
    qh_response *r = user;
    size_t n = size * nitems;
    char tmp[64];
    if (n >= 5 && !strncmp(buf, "HTTP/", 5)) {
        /* A new response (after a redirect, or a 100 Continue): start over. */
        long keep_status = 0;
        const char *sp = memchr(buf, ' ', n);
        if (sp) keep_status = strtol(sp + 1, NULL, 10);
        memset(r, 0, sizeof *r);
        r->status = keep_status;
        r->linked_size = r->content_length = r->range_start = -1;
        return n;
    }
    header_value(buf, n, "ETag", r->etag, sizeof r->etag);
    header_value(buf, n, "X-Linked-Etag", r->linked_etag, sizeof r->linked_etag);
    header_value(buf, n, "X-Repo-Commit", r->repo_commit, sizeof r->repo_commit);
    header_value(buf, n, "Location", r->location, sizeof r->location);
    header_value(buf, n, "X-Error-Code", r->error_code, sizeof r->error_code);
    header_value(buf, n, "X-Error-Message", r->error_message, sizeof r->error_message);
    if (header_value(buf, n, "X-Linked-Size", tmp, sizeof tmp)) r->linked_size = strtoll(tmp, NULL, 10);
    if (header_value(buf, n, "Content-Length", tmp, sizeof tmp)) r->content_length = strtoll(tmp, NULL, 10);
    if (header_value(buf, n, "Content-Range", tmp, sizeof tmp) && !strncmp(tmp, "bytes ", 6))
        r->range_start = strtoll(tmp + 6, NULL, 10);
    return n;
}

void *qh_easy(const qh_client *c, const char *url, qh_response *resp, struct curl_slist **hdrs) {
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    *hdrs = NULL;
    if (c->auth_header) *hdrs = curl_slist_append(*hdrs, c->auth_header);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A transfer that moves nothing for timeout_s is stalled: give up on it
     * (and retry) rather than wait forever on a dead connection. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    memset(resp, 0, sizeof *resp);
    resp->linked_size = resp->content_length = resp->range_start = -1;
    return h;
}

int qh_curl_is_transient(int code) {
    switch ((CURLcode)code) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM: return 1;
        default: return 0;
    }
}

typedef struct membuf {
    char *p;
    size_t n, cap, max;
    int too_big;
} membuf;

static size_t mem_write(char *data, size_t size, size_t nmemb, void *user) {
    membuf *m = user;
    size_t n = size * nmemb;
    if (m->n + n + 1 > m->max) {
        m->too_big = 1;
        return 0;
    }
    if (m->n + n + 1 > m->cap) {
        size_t cap = m->cap ? m->cap : 16384;
        while (cap < m->n + n + 1) cap *= 2;
        char *q = realloc(m->p, cap);
        if (!q) return 0;
        m->p = q;
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, n);
    m->n += n;
    m->p[m->n] = '\0';
    return n;
}

int qh_get(const qh_client *c, const char *url, size_t max_bytes, char **body, size_t *body_len,
           qh_response *resp, char *err, size_t err_size) {
    *body = NULL;
    *body_len = 0;
    for (int attempt = 0;; attempt++) {
        membuf m = {NULL, 0, 0, max_bytes, 0};
        struct curl_slist *hdrs;
        CURL *h = qh_easy(c, url, resp, &hdrs);
        if (!h) {
            snprintf(err, err_size, "libcurl: cannot create a handle");
            return -1;
        }
        char cerr[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, mem_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &m);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* JSON compresses well */
        CURLcode rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        curl_easy_cleanup(h);
        curl_slist_free_all(hdrs);
        int transient = rc != CURLE_OK ? qh_curl_is_transient(rc) : qh_status_is_transient(resp->status);
        if (rc == CURLE_OK && !transient) {
            *body = m.p ? m.p : calloc(1, 1);
            *body_len = m.n;
            return 0;
        }
        free(m.p);
        if (m.too_big) {
            snprintf(err, err_size, "%s: the answer is larger than %zu bytes", url, max_bytes);
            return -1;
        }
        if (!transient || attempt >= c->retries) {
            if (rc != CURLE_OK)
                snprintf(err, err_size, "%s: %s%s", url, cerr[0] ? cerr : curl_easy_strerror(rc),
                         attempt ? " (after retries)" : "");
            else
                snprintf(err, err_size, "%s: HTTP %ld%s", url, resp->status,
                         attempt ? " (after retries)" : "");
            if (rc == CURLE_OK) return 0; /* a final 5xx: the caller words it */
            return -1;
        }
        if (!c->quiet)
            fprintf(stderr, "qembed pull: %s: %s; retrying (%d of %d)\n", url,
                    rc != CURLE_OK ? (cerr[0] ? cerr : curl_easy_strerror(rc)) : "server error", attempt + 1,
                    c->retries);
        qh_backoff(attempt + 1);
    }
}

int qh_head(const qh_client *c, const char *url, qh_response *resp, char *err, size_t err_size) {
    char cur[8192];
    snprintf(cur, sizeof cur, "%s", url);
    int hops = 0;
    for (int attempt = 0;;) {
        struct curl_slist *hdrs;
        CURL *h = qh_easy(c, cur, resp, &hdrs);
        if (!h) {
            snprintf(err, err_size, "libcurl: cannot create a handle");
            return -1;
        }
        char cerr[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
        /* identity: the ETag and Content-Length must describe the file itself */
        hdrs = curl_slist_append(hdrs, "Accept-Encoding: identity");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        CURLcode rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        curl_easy_cleanup(h);
        curl_slist_free_all(hdrs);
        if (rc == CURLE_OK && resp->status >= 300 && resp->status < 400 && resp->location[0] &&
            resp->location[0] == '/' && resp->location[1] != '/') {
            /* a relative redirect: the repo was renamed or moved; follow it */
            if (++hops > 10) {
                snprintf(err, err_size, "%s: too many redirects", url);
                return -1;
            }
            /* relative to the server the request went to: scheme://host of cur */
            const char *cp = strstr(cur, "://");
            const char *cs = cp ? strchr(cp + 3, '/') : NULL;
            int hostlen = cs ? (int)(cs - cur) : (int)strlen(cur);
            char next[8192];
            if ((size_t)snprintf(next, sizeof next, "%.*s%s", hostlen, cur, resp->location) >= sizeof next) {
                snprintf(err, err_size, "%s: redirect too long", url);
                return -1;
            }
            snprintf(cur, sizeof cur, "%s", next);
            continue;
        }
        int transient = rc != CURLE_OK ? qh_curl_is_transient(rc) : qh_status_is_transient(resp->status);
        if (!transient) {
            if (rc != CURLE_OK) {
                snprintf(err, err_size, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
                return -1;
            }
            return 0;
        }
        if (attempt >= c->retries) {
            if (rc != CURLE_OK) {
                snprintf(err, err_size, "%s: %s (after %d retries)", url,
                         cerr[0] ? cerr : curl_easy_strerror(rc), attempt);
                return -1;
            }
            return 0;
        }
        attempt++;
        if (!c->quiet)
            fprintf(stderr, "qembed pull: %s: %s; retrying (%d of %d)\n", url,
                    rc != CURLE_OK ? (cerr[0] ? cerr : curl_easy_strerror(rc)) : "server error", attempt,
                    c->retries);
        qh_backoff(attempt);
    }
}

void qh_http_error(const qh_client *c, const qh_response *r, const char *repo, const char *revision,
                   const char *what, char *err, size_t err_size) {
    const char *hub_msg = r->error_message[0] ? r->error_message : NULL;
    if (r->status == 401 || (r->status == 403 && !c->auth_header)) {
        if (c->auth_header)
            snprintf(err, err_size,
                     "%s: %s: HTTP 401: the token (from %s) was refused, or the repo does not exist. Check "
                     "the repo id "
                     "and the token (a read token from https://huggingface.co/settings/tokens)",
                     repo, what, c->token_src);
        else
            snprintf(err, err_size,
                     "%s: %s: HTTP %ld: the repo is private or gated, or does not exist. If it exists, pass "
                     "a token: "
                     "HF_TOKEN=hf_... qembed pull %s (or save one with `huggingface-cli login`, which writes "
                     "$HF_HOME/token, or --token TOKEN)",
                     repo, what, r->status, repo);
    } else if (r->status == 403) {
        snprintf(err, err_size,
                 "%s: %s: HTTP 403: access denied with the token from %s%s%s%s. For a gated repo, accept its "
                 "conditions at %s/%s and use a token of that account with read access",
                 repo, what, c->token_src, hub_msg ? " (the Hub says: \"" : "", hub_msg ? hub_msg : "",
                 hub_msg ? "\")" : "", c->endpoint, repo);
    } else if (r->status == 404) {
        if (!strcmp(r->error_code, "RevisionNotFound"))
            snprintf(err, err_size, "%s: no revision \"%s\" (branch, tag or commit) in this repo (HTTP 404)",
                     repo, revision);
        else if (!strcmp(r->error_code, "EntryNotFound"))
            snprintf(err, err_size, "%s: %s: no such file at revision \"%s\" (HTTP 404)", repo, what,
                     revision);
        else if (!strcmp(r->error_code, "RepositoryNotFound"))
            snprintf(err, err_size, "%s: no such model repo on %s (HTTP 404); check the id (org/name)", repo,
                     c->endpoint);
        else
            snprintf(err, err_size, "%s: no such model repo or revision \"%s\" on %s (HTTP 404)", repo,
                     revision, c->endpoint);
    } else {
        snprintf(err, err_size, "%s: %s: HTTP %ld from %s%s%s", repo, what, r->status, c->endpoint,
                 hub_msg ? ": " : "", hub_msg ? hub_msg : "");
    }
}
