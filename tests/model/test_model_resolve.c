/* Hugging Face cache resolution against fake caches:
 *   test_model_resolve SHARED_MODEL_DIR TMPDIR */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/config.h"
#include "model/resolve.h"

#include "check.h"
#include "model_util.h"

/* ---- Hugging Face cache resolution ---- */

static void set_env(const char *k, const char *v) {
    if (v)
        setenv(k, v, 1);
    else
        unsetenv(k);
}

static void make_cache(const char *hub, const char *repo_folder, const char *rev, int with_ref) {
    /* as huggingface_hub lays it out: blobs by hash, snapshot files are
     * relative symlinks into them */
    run_cmd("mkdir -p '%s/%s/blobs' '%s/%s/snapshots/%s' '%s/%s/refs'", hub, repo_folder, hub, repo_folder,
            rev, hub, repo_folder);
    run_cmd("cp '%s/config.json' '%s/%s/blobs/c0ffee01'", g_shared, hub, repo_folder);
    run_cmd("ln -sf '%s/model.safetensors' '%s/%s/blobs/c0ffee02'", g_shared, hub, repo_folder);
    run_cmd(
        "cd '%s/%s/snapshots/%s' && ln -sf ../../blobs/c0ffee01 config.json && ln -sf ../../blobs/c0ffee02 "
        "model.safetensors",
        hub, repo_folder, rev);
    if (with_ref) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s/refs/main", hub, repo_folder);
        spit(p, rev, strlen(rev)); /* no newline, as huggingface_hub writes it */
    }
}

static void test_resolve(void) {
    char home[2048], out[4096], want[4096];
    qembed_error err = {0};
    path_join(home, sizeof home, g_tmp, "home");
    run_cmd("rm -rf '%s' && mkdir -p '%s'", home, home);
    set_env("HOME", home);
    set_env("HF_HOME", NULL);
    set_env("HF_HUB_CACHE", NULL);
    set_env("XDG_CACHE_HOME", NULL);
    const char *rev = "0123456789abcdef0123456789abcdef01234567";

    /* a directory is used as it is */
    CHECK(qe_resolve_model_path(g_shared, out, sizeof out, &err) == QEMBED_OK && !strcmp(out, g_shared),
          "dir");
    /* a file is not a model */
    char f[2048];
    path_join(f, sizeof f, g_shared, "config.json");
    CHECK(qe_resolve_model_path(f, out, sizeof out, &err) == QEMBED_ERR_INVALID_ARGUMENT &&
              strstr(err.message, "not a directory"),
          "file: %s", err.message);

    /* not found: names the repo and every place it looked */
    qembed_status st = qe_resolve_model_path("Qwen/Qwen3-Embedding-0.6B", out, sizeof out, &err);
    CHECK(st == QEMBED_ERR_NOT_FOUND && strstr(err.message, "Qwen/Qwen3-Embedding-0.6B") &&
              strstr(err.message, "/.cache/huggingface/hub/models--Qwen--Qwen3-Embedding-0.6B"),
          "not found: %s", err.message);
    st = qe_resolve_model_path("no-such-dir-or-repo", out, sizeof out, &err);
    CHECK(st == QEMBED_ERR_NOT_FOUND && strstr(err.message, "no-such-dir-or-repo"), "plain name: %s",
          err.message);

    /* ~/.cache/huggingface/hub with refs/main */
    char hub[2048];
    path_join(hub, sizeof hub, home, ".cache/huggingface/hub");
    make_cache(hub, "models--Qwen--Qwen3-Embedding-0.6B", rev, 1);
    /* a second, newer snapshot that refs/main does not name must not win */
    make_cache(hub, "models--Qwen--Qwen3-Embedding-0.6B", "ffffffffffffffffffffffffffffffffffffffff", 0);
    snprintf(want, sizeof want, "%s/models--Qwen--Qwen3-Embedding-0.6B/snapshots/%s", hub, rev);
    st = qe_resolve_model_path("Qwen/Qwen3-Embedding-0.6B", out, sizeof out, &err);
    CHECK(st == QEMBED_OK && !strcmp(out, want), "home cache: %s / %s", out, err.message);
    /* and the model behind the symlinks loads */
    qe_config cfg;
    st = load_dir(out, &cfg, &err);
    CHECK(st == QEMBED_OK, "load via cache: %s", err.message);

    /* no refs/main: the only snapshot */
    char hub2[2048];
    path_join(hub2, sizeof hub2, g_tmp, "xdg/huggingface/hub");
    make_cache(hub2, "models--org--tiny", rev, 0);
    char xdg[2048];
    path_join(xdg, sizeof xdg, g_tmp, "xdg");
    set_env("XDG_CACHE_HOME", xdg);
    snprintf(want, sizeof want, "%s/models--org--tiny/snapshots/%s", hub2, rev);
    st = qe_resolve_model_path("org/tiny", out, sizeof out, &err);
    CHECK(st == QEMBED_OK && !strcmp(out, want), "xdg cache: %s / %s", out, err.message);

    /* HF_HOME takes precedence over XDG and HOME */
    char hfhome[2048], hub3[2048];
    path_join(hfhome, sizeof hfhome, g_tmp, "hfhome");
    path_join(hub3, sizeof hub3, hfhome, "hub");
    make_cache(hub3, "models--org--tiny", "1111111111111111111111111111111111111111", 1);
    set_env("HF_HOME", hfhome);
    snprintf(want, sizeof want, "%s/models--org--tiny/snapshots/1111111111111111111111111111111111111111",
             hub3);
    st = qe_resolve_model_path("org/tiny", out, sizeof out, &err);
    CHECK(st == QEMBED_OK && !strcmp(out, want), "HF_HOME: %s / %s", out, err.message);

    /* HF_HUB_CACHE before all */
    char hub4[2048];
    path_join(hub4, sizeof hub4, g_tmp, "hubcache");
    make_cache(hub4, "models--org--tiny", "2222222222222222222222222222222222222222", 1);
    set_env("HF_HUB_CACHE", hub4);
    snprintf(want, sizeof want, "%s/models--org--tiny/snapshots/2222222222222222222222222222222222222222",
             hub4);
    st = qe_resolve_model_path("org/tiny", out, sizeof out, &err);
    CHECK(st == QEMBED_OK && !strcmp(out, want), "HF_HUB_CACHE: %s / %s", out, err.message);

    /* refs/main naming a snapshot that is not there: fall back to the newest */
    char ref[4096];
    snprintf(ref, sizeof ref, "%s/models--org--tiny/refs/main", hub4);
    spit(ref, "deadbeef\n", 9);
    st = qe_resolve_model_path("org/tiny", out, sizeof out, &err);
    CHECK(st == QEMBED_OK && !strcmp(out, want), "stale ref: %s / %s", out, err.message);

    /* repo ids with path tricks are not looked up */
    st = qe_resolve_model_path("../qembed-no-such-model", out, sizeof out, &err);
    CHECK(st == QEMBED_ERR_NOT_FOUND, "../qembed-no-such-model: %s", err.message);
    st = qe_resolve_model_path("org/../x", out, sizeof out, &err);
    CHECK(st == QEMBED_ERR_NOT_FOUND, "org/../x: %s", err.message);
    run_cmd("rm -rf '%s' '%s' '%s' '%s'", home, xdg, hfhome, hub4);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_model_resolve SHARED_MODEL TMPDIR\n");
        return 1;
    }
    model_test_init("test_model_resolve", argv[1], argv[2]);
    test_resolve();
    return model_test_done(failures);
}
