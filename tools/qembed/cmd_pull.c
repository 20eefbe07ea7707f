/* `qembed pull REPO`: downloads a model from the Hugging Face Hub (or the
 * mirror HF_ENDPOINT names) into the Hugging Face cache, laid out exactly as
 * huggingface_hub lays it out, so Python tools and qembed share the files and
 * `qembed embed -m REPO` then works offline. The client is in hub/. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "hub/hub.h"

static const char *const pull_usage =
    "usage: qembed pull REPO [--revision REV] [--include GLOB]... [--exclude GLOB]...\n"
    "\n"
    "Downloads the model repo REPO (org/name, e.g. Qwen/Qwen3-Embedding-0.6B) from the Hugging\n"
    "Face Hub into the Hugging Face cache that huggingface_hub, sentence-transformers and qembed\n"
    "share (models--org--name/{blobs,snapshots,refs}), then prints the snapshot folder. Files\n"
    "already there are not downloaded again; an interrupted download continues where it stopped;\n"
    "LFS files are checked against their SHA-256, other files against their git blob id.\n"
    "\n"
    "  -r, --revision REV    branch, tag or commit (default main)\n"
    "  -I, --include GLOB    only files matching GLOB (fnmatch, '*' crosses '/'); repeatable\n"
    "  -X, --exclude GLOB    not files matching GLOB; repeatable\n"
    "      --cache-dir DIR   the hub cache folder (default: HF_HUB_CACHE, $HF_HOME/hub,\n"
    "                        $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub)\n"
    "      --token TOKEN     access token (prefer HF_TOKEN or the token file: arguments show in ps)\n"
    "      --retries N       attempts after a transient network failure (default 5; back-off 1 s, 2 s, 4 s "
    "...)\n"
    "      --progress, --no-progress   progress bars (default: when stderr is a terminal)\n"
    "  -q, --quiet           only errors\n"
    "\n"
    "Variables: HF_ENDPOINT (a mirror; default https://huggingface.co), HF_TOKEN, HF_TOKEN_PATH\n"
    "(default $HF_HOME/token, which `huggingface-cli login` writes), HF_HUB_CACHE, HF_HOME,\n"
    "HF_HUB_OFFLINE=1 (no network: succeeds only when the revision is cached),\n"
    "HF_HUB_DOWNLOAD_TIMEOUT (seconds without a byte before a retry, default 10),\n"
    "HF_HUB_DISABLE_PROGRESS_BARS=1, and libcurl's "
    "https_proxy, http_proxy, all_proxy, no_proxy.\n"
    "Exit status: 0 success, 1 usage error, 2 download error (one line on stderr).\n";

/* huggingface_hub's filter_repo_objects: a pattern ending in '/' means the
 * whole folder; fnmatch without FNM_PATHNAME, so '*' also matches '/'. */
static int matches(const char *path, char **globs, int n) {
    for (int i = 0; i < n; i++) {
        char g[1100];
        size_t l = strlen(globs[i]);
        snprintf(g, sizeof g, "%s%s", globs[i], l && globs[i][l - 1] == '/' ? "*" : "");
        if (fnmatch(g, path, 0) == 0) return 1;
    }
    return 0;
}

static int snapshot_dir_exists(const char *root, const char *commit, char *out, size_t n) {
    snprintf(out, n, "%s/snapshots/%s", root, commit);
    struct stat sb;
    return stat(out, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int cmd_pull(int argc, char **argv) {
    const char *revision = "main", *cache_override = NULL, *token = NULL;
    char **inc = calloc((size_t)argc, sizeof *inc), **exc = calloc((size_t)argc, sizeof *exc);
    int n_inc = 0, n_exc = 0, quiet = 0, progress = -1, retries = 5, rc = 1;
    if (!inc || !exc) {
        fprintf(stderr, "qembed pull: out of memory\n");
        free(inc);
        free(exc);
        return 2;
    }
    enum { O_CACHE = 256, O_TOKEN, O_RETRIES, O_PROGRESS, O_NO_PROGRESS };
    static const cli_optdef pull_opts[] = {{"revision", 'r', 1},
                                           {"include", 'I', 1},
                                           {"exclude", 'X', 1},
                                           {"cache-dir", O_CACHE, 1},
                                           {"token", O_TOKEN, 1},
                                           {"retries", O_RETRIES, 1},
                                           {"progress", O_PROGRESS, 0},
                                           {"no-progress", O_NO_PROGRESS, 0},
                                           {"quiet", 'q', 0},
                                           {"help", 'h', 0},
                                           {NULL, 0, 0}};
    const char *repo = NULL;
    int n_repos = 0;
    cli_args ap;
    cli_args_init(&ap, "pull", argc, argv, pull_opts, NULL);
    for (int o; (o = cli_args_next(&ap)) != CLI_ARG_END;) {
        const char *optarg_ = ap.value;
        switch (o) {
            case CLI_ARG_ERROR: goto done;
            case CLI_ARG_OPERAND:
                if (n_repos++ == 0) repo = optarg_;
                break;
            case 'r': revision = optarg_; break;
            case 'I': inc[n_inc++] = (char *)optarg_; break;
            case 'X': exc[n_exc++] = (char *)optarg_; break;
            case O_CACHE: cache_override = optarg_; break;
            case O_TOKEN: token = optarg_; break;
            case O_RETRIES: {
                long v;
                if (cli_parse_long(optarg_, 0, 100, &v) != 0) {
                    fprintf(stderr, "qembed pull: --retries: '%s' is not a count (0 to 100)\n", optarg_);
                    goto done;
                }
                retries = (int)v;
                break;
            }
            case O_PROGRESS: progress = 1; break;
            case O_NO_PROGRESS: progress = 0; break;
            case 'q': quiet = 1; break;
            case 'h':
                fputs(pull_usage, stdout);
                rc = 0;
                goto done;
        }
    }
    if (n_repos != 1) {
        if (n_repos == 0)
            fprintf(stderr, "qembed pull: name one repo (org/name); see qembed pull --help\n");
        else
            fprintf(stderr, "qembed pull: one repo at a time (got '%s' and more)\n", repo);
        goto done;
    }
    if (!qh_repo_id_is_valid(repo)) {
        fprintf(stderr, "qembed pull: '%s' is not a repo id (org/name, letters, digits, '-', '_', '.')\n",
                repo);
        goto done;
    }
    if (!qh_revision_is_valid(revision)) {
        fprintf(stderr, "qembed pull: --revision '%s' is not a branch, tag or commit name\n", revision);
        goto done;
    }
    rc = 2;
    char err[QH_ERR_MAX], cache[4096];
    if (qh_cache_dir(cache_override, cache, sizeof cache, err, sizeof err) != 0) {
        fprintf(stderr, "qembed pull: %s\n", err);
        goto done;
    }
    qh_repo_cache rcache;
    if (qh_repo_cache_init(&rcache, cache, repo, err, sizeof err) != 0) {
        fprintf(stderr, "qembed pull: %s\n", err);
        goto done;
    }
    char snap[4800];
    if (qh_offline()) {
        char commit[41];
        qh_read_ref(&rcache, revision, commit);
        if (commit[0] && snapshot_dir_exists(rcache.root, commit, snap, sizeof snap)) {
            if (!quiet)
                fprintf(stderr, "qembed pull: HF_HUB_OFFLINE is set; %s@%s is in the cache\n", repo,
                        revision);
            printf("%s\n", snap);
            rc = 0;
        } else {
            fprintf(
                stderr,
                "qembed pull: HF_HUB_OFFLINE is set and %s@%s is not in the cache (%s); unset HF_HUB_OFFLINE "
                "to download it\n",
                repo, revision, rcache.root);
        }
        goto done;
    }

    qh_client client;
    if (qh_client_init(&client, token, err, sizeof err) != 0) {
        fprintf(stderr, "qembed pull: %s\n", err);
        qh_client_free(&client);
        goto done;
    }
    client.retries = retries;
    client.quiet = quiet;
    qh_info info;
    if (qh_model_info(&client, repo, revision, &info, err, sizeof err) != 0) {
        fprintf(stderr, "qembed pull: %s\n", err);
        qh_client_free(&client);
        goto done;
    }
    /* The selection, and what is left to fetch (a file whose snapshot link
     * resolves is done: a commit's files never change). */
    size_t *todo = calloc(info.n_files ? info.n_files : 1, sizeof *todo);
    size_t n_sel = 0, n_todo = 0;
    int64_t need = 0;
    if (!todo) {
        fprintf(stderr, "qembed pull: out of memory\n");
        goto free_all;
    }
    for (size_t i = 0; i < info.n_files; i++) {
        const char *path = info.files[i].path;
        if ((n_inc && !matches(path, inc, n_inc)) || matches(path, exc, n_exc)) continue;
        n_sel++;
        if (qh_snapshot_has(&rcache, info.sha, path)) continue;
        todo[n_todo++] = i;
        if (info.files[i].size > 0) need += info.files[i].size;
    }
    if (!n_sel) {
        fprintf(stderr, "qembed pull: %s@%s: %s\n", repo, revision,
                info.n_files ? "no file matches --include/--exclude" : "the repo has no files");
        goto free_all;
    }
    if (qh_mkdirs(rcache.root, err, sizeof err) != 0) {
        fprintf(stderr, "qembed pull: %s\n", err);
        goto free_all;
    }
    /* Fail before the first byte rather than after gigabytes when the disk
     * cannot hold what is left (partial files already there count as had). */
    struct statvfs vfs;
    if (need > 0 && statvfs(rcache.root, &vfs) == 0) {
        int64_t have = 0;
        char blobs[4200];
        snprintf(blobs, sizeof blobs, "%s/blobs", rcache.root);
        for (size_t k = 0; k < n_todo; k++) {
            const qh_file *f = &info.files[todo[k]];
            const char *guess = f->lfs_sha256[0] ? f->lfs_sha256 : f->blob_id;
            char p[4600];
            struct stat sb;
            if (!guess[0] || f->size <= 0) continue;
            snprintf(p, sizeof p, "%s/%s", blobs, guess);
            if (stat(p, &sb) == 0)
                have += f->size;
            else if (snprintf(p, sizeof p, "%s/%s.incomplete", blobs, guess) > 0 && stat(p, &sb) == 0 &&
                     S_ISREG(sb.st_mode))
                have += sb.st_size < f->size ? sb.st_size : f->size;
        }
        int64_t free_b = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
        if (need - have > free_b) {
            char a[32], b[32];
            qh_fmt_bytes((double)(need - have), a, sizeof a);
            qh_fmt_bytes((double)free_b, b, sizeof b);
            fprintf(stderr, "qembed pull: %s: not enough disk space in %s: %s to download, %s free\n", repo,
                    cache, a, b);
            goto free_all;
        }
    }

    if (progress < 0) {
        const char *d = getenv("HF_HUB_DISABLE_PROGRESS_BARS");
        int off = d && (!strcasecmp(d, "1") || !strcasecmp(d, "true") || !strcasecmp(d, "yes") ||
                        !strcasecmp(d, "on"));
        progress = !quiet && !off && isatty(2);
    }
    qh_progress prog = {.enabled = progress, .count = n_todo, .total_bytes = need, .t0 = cli_now_s()};
    int64_t downloaded = 0;
    size_t n_dl = 0, n_resumed = 0;
    for (size_t k = 0; k < n_todo; k++) {
        const qh_file *f = &info.files[todo[k]];
        prog.index = k + 1;
        qh_fetch_result fr;
        if (qh_fetch_file(&client, &rcache, repo, info.sha, f, &prog, &fr, err, sizeof err) != 0) {
            if (prog.enabled) fputs("\r\033[K", stderr);
            fprintf(stderr, "qembed pull: %s\n", err);
            goto free_all;
        }
        downloaded += fr.bytes;
        n_dl += fr.downloaded;
        n_resumed += fr.resumed;
        if (f->size > 0) prog.done_bytes += f->size;
        if (!quiet) {
            char a[32];
            qh_fmt_bytes(f->size >= 0 ? (double)f->size : (double)fr.bytes, a, sizeof a);
            if (prog.enabled) fputs("\r\033[K", stderr);
            fprintf(stderr, "  %s  %s%s\n", f->path, a,
                    !fr.downloaded ? " (already in the cache)"
                    : fr.resumed   ? " (resumed)"
                                   : "");
        }
    }
    if (qh_write_ref(&rcache, revision, info.sha, err, sizeof err) != 0) {
        fprintf(stderr, "qembed pull: %s\n", err);
        goto free_all;
    }
    snapshot_dir_exists(rcache.root, info.sha, snap, sizeof snap);
    if (!quiet) {
        char a[32];
        qh_fmt_bytes((double)downloaded, a, sizeof a);
        fprintf(
            stderr,
            "qembed pull: %s@%s (commit %.12s): %zu files, %zu downloaded (%s%s), %zu already in the cache\n",
            repo, revision, info.sha, n_sel, n_dl, a, n_resumed ? ", resumed" : "", n_sel - n_dl);
    }
    printf("%s\n", snap);
    rc = 0;
free_all:
    free(todo);
    qh_info_free(&info);
    qh_client_free(&client);
done:
    free(inc);
    free(exc);
    return rc;
}
