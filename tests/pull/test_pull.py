#!/usr/bin/python3
"""`qembed pull` against a local stand-in for the Hub (mirror.py, loopback
only, HF_ENDPOINT pointed at it), serving a small synthetic model:

  fresh   a pull into an empty cache; the layout huggingface_hub documents
          (https://huggingface.co/docs/huggingface_hub/guides/manage-cache):
          blobs/<etag> (git blob SHA-1 for regular files, SHA-256 for LFS
          files), snapshots/<commit>/<path> relative symlinks into ../../blobs,
          refs/main = the commit without a newline, .locks/; then `qembed
          embed -m REPO` offline, with the server gone, gives the vectors of the
          original folder; a second pull downloads nothing; HF_HUB_OFFLINE;
          --revision with a tag and refs/pr/1 (refs/<revision>); --include/--exclude;
          404 for a repo and a revision; the message
          `embed -m` gives for a repo not in the cache
  resume  the server cuts the connection in the middle of the weights file:
          with --retries 0 the pull fails and keeps blobs/<etag>.incomplete; the
          next pull asks for the rest with a Range request and the file's
          SHA-256 is right; with retries, one pull does the same by itself; a
          503 is retried; a full disk is reported as one
  errors  a corrupted LFS file and a corrupted regular file are refused and not
          kept; 401 without a token (the message says how to pass one),
          success with HF_TOKEN and with the token file, a wrong token refused,
          no token sent to a CDN on another host, 403 for a gated repo

  test_pull.py --qembed BIN --model DIR --part fresh|resume|errors
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = "qembed-test/tiny"
FOLDER = "models--qembed-test--tiny"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class Mirror:
    """mirror.py in a subprocess, on a free loopback port."""

    def __init__(self, tmp, root, *args):
        self.dir = tempfile.mkdtemp(prefix="mirror-", dir=tmp)
        self.log = os.path.join(self.dir, "log.jsonl")
        port_file = os.path.join(self.dir, "port")
        self.p = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "mirror.py"), "--root", root,
                                   "--port-file", port_file, "--log", self.log] + list(args))
        for _ in range(300):
            if os.path.exists(port_file):
                break
            if self.p.poll() is not None:
                sys.exit("mirror.py exited with %d" % self.p.returncode)
            time.sleep(0.05)
        self.url = "http://127.0.0.1:%s" % open(port_file).read()

    def requests(self):
        if not os.path.exists(self.log):
            return []
        return [json.loads(l) for l in open(self.log)]

    def clear(self):
        if os.path.exists(self.log):
            os.unlink(self.log)

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def base_env(cache, endpoint=None):
    env = {k: v for k, v in os.environ.items()
           if not k.upper().endswith("_PROXY") and not k.startswith("HF_") and k != "HUGGING_FACE_HUB_TOKEN"}
    env["HF_HUB_CACHE"] = cache
    env["HF_HOME"] = os.path.join(os.path.dirname(cache), "hf-home")  # no stray token file
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    env["HF_HUB_DOWNLOAD_TIMEOUT"] = "5"
    return env


def run(args, env, timeout=240):
    p = subprocess.run([Q] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode("utf-8", "replace")


def model_files(model):
    out = {}
    for dp, dn, fn in os.walk(model):
        for f in fn:
            full = os.path.join(dp, f)
            data = open(full, "rb").read()
            out[os.path.relpath(full, model)] = {
                "data_sha256": hashlib.sha256(data).hexdigest(),
                "git": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
                "size": len(data),
                "lfs": f.endswith(".safetensors") or len(data) >= (1 << 20),
            }
    return out


def check_layout(cache, files, commit, what, only=None):
    """The documented huggingface_hub layout, file by file."""
    repo = os.path.join(cache, FOLDER)
    check(sorted(os.listdir(repo)) == ["blobs", "refs", "snapshots"], what + ": repo folder holds blobs, refs, snapshots")
    ref = open(os.path.join(repo, "refs", "main"), "rb").read()
    check(ref == commit.encode(), what + ": refs/main is the commit, no newline (%r)" % ref[:50])
    check(os.listdir(os.path.join(repo, "snapshots")) == [commit], what + ": one snapshot, named by the commit")
    snap = os.path.join(repo, "snapshots", commit)
    want = {p for p in files if only is None or p in only}
    got = set()
    for dp, dn, fn in os.walk(snap):
        for f in fn:
            got.add(os.path.relpath(os.path.join(dp, f), snap))
    check(got == want, what + ": the snapshot holds exactly the selected files (%s)" % sorted(got ^ want))
    blobs_expected = set()
    for p in sorted(want):
        info = files[p]
        etag = info["data_sha256"] if info["lfs"] else info["git"]
        blobs_expected.add(etag)
        link = os.path.join(snap, p)
        target = os.readlink(link) if os.path.islink(link) else None
        depth = p.count("/")
        check(target == "../../" + "../" * depth + "blobs/" + etag,
              what + ": %s -> %s (relative link to blobs/<%s>)" % (p, target, "sha256" if info["lfs"] else "git sha1"))
        data = open(link, "rb").read()
        check(hashlib.sha256(data).hexdigest() == info["data_sha256"], what + ": %s has the original bytes" % p)
    blobs = set(os.listdir(os.path.join(repo, "blobs")))
    check(blobs == blobs_expected, what + ": blobs/ holds one file per etag, no .incomplete (%s)" % sorted(blobs ^ blobs_expected))
    locks = os.path.join(cache, ".locks", FOLDER)
    check(os.path.isdir(locks) and all(l.endswith(".lock") and l[:-5] in blobs_expected for l in os.listdir(locks)),
          what + ": lock files in .locks/%s/<etag>.lock" % FOLDER)


def part_fresh(a, tmp, root, files):
    m = Mirror(tmp, root)
    cache = os.path.join(tmp, "fresh", "hub")
    env = base_env(cache, m.url)
    rc, out, err = run(["pull", REPO], env)
    check(rc == 0, "fresh pull exits 0 (%d: %s)" % (rc, err.strip()[-300:]))
    snap = out.strip()
    commit = os.path.basename(snap)
    check(len(commit) == 40 and snap == os.path.join(cache, FOLDER, "snapshots", commit),
          "prints the snapshot folder (%s)" % snap)
    reqs = m.requests()
    check(reqs[0]["path"] == "/api/models/%s/revision/main?blobs=true" % REPO, "asks the model-info API first")
    check(sum(1 for r in reqs if r["method"] == "GET" and r["status"] in (200, 206)) == 1 + len(files),
          "one GET per file plus the API")
    check(any(r["path"].startswith("/cdn/") for r in reqs), "LFS files followed the redirect to the CDN path")
    check_layout(cache, files, commit, "fresh")

    # Offline, with the server gone: embed from the cache equals embed from the folder.
    m.stop()
    off = base_env(cache)
    off["HF_HUB_OFFLINE"] = "1"
    off["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens: any request would fail
    rc1, v_cache, e1 = run(["embed", "-q", "-m", REPO, "The capital of China is Beijing."], off)
    rc2, v_dir, e2 = run(["embed", "-q", "-m", a.model, "The capital of China is Beijing."], off)
    check(rc1 == 0 and rc2 == 0 and v_cache == v_dir and v_cache.startswith("["),
          "embed -m %s offline from the cache gives the original folder's vector (%d %d %s)" % (REPO, rc1, rc2, e1[-200:]))
    rc, out, err = run(["pull", REPO], off)
    check(rc == 0 and out.strip() == snap, "HF_HUB_OFFLINE: pull of a cached repo succeeds without the network")
    rc, out, err = run(["pull", "qembed-test/other"], off)
    check(rc == 2 and "HF_HUB_OFFLINE" in err, "HF_HUB_OFFLINE: pull of an uncached repo fails and says why (%s)" % err.strip())

    # A repo not in the cache: the message names the command that fetches it.
    rc, out, err = run(["embed", "-m", "Some-Org/not-pulled", "x"], off)
    check(rc == 2 and "qembed pull Some-Org/not-pulled" in err,
          "embed -m of an uncached repo says: qembed pull Some-Org/not-pulled (%s)" % err.strip()[-200:])

    rc, out, err = run(["serve", "-m", "Some-Org/not-pulled", "--port", "0"], off, timeout=60)
    check(rc == 2 and "qembed pull Some-Org/not-pulled" in err,
          "serve -m of an uncached repo says: qembed pull Some-Org/not-pulled (rc %d)" % rc)

    # A second pull: the API is asked (the revision may have moved), no file is fetched.
    m = Mirror(tmp, root)
    env = base_env(cache, m.url)
    before = {b: os.stat(os.path.join(cache, FOLDER, "blobs", b)).st_mtime_ns
              for b in os.listdir(os.path.join(cache, FOLDER, "blobs"))}
    rc, out, err = run(["pull", REPO], env)
    reqs = m.requests()
    check(rc == 0 and out.strip() == snap, "second pull exits 0 with the same snapshot")
    check([r["path"] for r in reqs] == ["/api/models/%s/revision/main?blobs=true" % REPO],
          "second pull makes only the API request (%d requests)" % len(reqs))
    check("0 downloaded" in err, "second pull says nothing was downloaded (%s)" % err.strip()[-200:])
    after = {b: os.stat(os.path.join(cache, FOLDER, "blobs", b)).st_mtime_ns
             for b in os.listdir(os.path.join(cache, FOLDER, "blobs"))}
    check(before == after, "second pull rewrote no blob")

    # The same commit by its hash: nothing fetched, no refs/<hash> written.
    m.clear()
    rc, out, err = run(["pull", REPO, "--revision", commit], env)
    check(rc == 0 and out.strip() == snap and not os.path.exists(os.path.join(cache, FOLDER, "refs", commit)),
          "--revision <commit>: same snapshot, no ref named by a hash (as huggingface_hub)")
    check(all(not r["path"].startswith(("/cdn", "/" + REPO)) for r in m.requests()), "--revision <commit>: no file fetched")

    # A tag and a pull-request ref: refs/<revision> written as huggingface_hub does (refs/refs/pr/1).
    for rev in ("v1.0", "refs/pr/1"):
        m.clear()
        rc, out, err = run(["pull", REPO, "--revision", rev], env)
        ref = os.path.join(cache, FOLDER, "refs", rev)
        check(rc == 0 and out.strip() == snap and os.path.isfile(ref) and open(ref, "rb").read() == commit.encode(),
              "--revision %s: refs/%s holds the commit (%s)" % (rev, rev, err.strip()[-200:]))
        want = "/api/models/%s/revision/%s?blobs=true" % (REPO, rev.replace("/", "%2F"))
        check([r["path"] for r in m.requests()] == [want], "--revision %s: asks %s and fetches nothing" % (rev, want))

    # --include / --exclude into a fresh cache.
    cache2 = os.path.join(tmp, "filter", "hub")
    m.clear()
    rc, out, err = run(["pull", REPO, "--include", "*.json", "--exclude", "tokenizer*", "--progress"], base_env(cache2, m.url))
    sel = {p for p in files if p.endswith(".json") and not p.startswith("tokenizer")}
    check(rc == 0, "--include '*.json' --exclude 'tokenizer*' exits 0 (%s)" % err.strip()[-200:])
    check("\r\033[K[1/5] " in err and "total 100%" in err, "--progress draws the per-file and overall bars")
    check("1_Pooling/config.json" in sel, "(the selection includes a file in a folder: '*' crosses '/')")
    check_layout(cache2, files, commit, "filtered", only=sel)
    check(not any(r["path"].startswith("/cdn/") or r["path"].endswith((".safetensors", "tokenizer.json"))
                  for r in m.requests()), "filtered: excluded files were never requested")
    rc, out, err = run(["pull", REPO, "-I", "*.gguf"], base_env(cache2, m.url))
    check(rc == 2 and "no file matches" in err, "--include matching nothing is an error (%s)" % err.strip())

    # 404: the repo, the revision.
    rc, out, err = run(["pull", "qembed-test/nope"], base_env(cache2, m.url))
    check(rc == 2 and "no such model repo" in err and "qembed-test/nope" in err, "404 repo: %s" % err.strip())
    rc, out, err = run(["pull", REPO, "--revision", "v9"], base_env(cache2, m.url))
    check(rc == 2 and "no revision \"v9\"" in err, "404 revision: %s" % err.strip())
    check(not os.path.exists(os.path.join(cache2, FOLDER, "refs", "v9")), "404 revision: no ref written")

    # Usage errors.
    for args, what in ((["pull"], "no repo"), (["pull", "a/b", "c/d"], "two repos"), (["pull", "../x"], "bad repo id"),
                       (["pull", REPO, "--revision", "../../etc"], "bad revision"), (["pull", REPO, "--bogus"], "unknown option"),
                       (["pull", REPO, "--retries", "x"], "bad --retries"), (["pull", REPO, "--include"], "--include without value")):
        rc, out, err = run(args, base_env(cache2, m.url))
        check(rc == 1 and err.strip(), "usage error, exit 1: %s (%s)" % (what, err.strip()[-100:]))
    rc, out, err = run(["pull", "--help"], base_env(cache2, m.url))
    check(rc == 0 and "usage: qembed pull" in out and "HF_ENDPOINT" in out, "pull --help")
    m.stop()


def part_resume(a, tmp, root, files):
    weights = "model.safetensors"
    size = files[weights]["size"]
    cut = size // 3
    sha = files[weights]["data_sha256"]

    # 1. The pull fails with the connection cut; the partial file stays.
    m = Mirror(tmp, root, "--drop-once", "%s:%d" % (weights, cut))
    cache = os.path.join(tmp, "resume", "hub")
    env = base_env(cache, m.url)
    rc, out, err = run(["pull", REPO, "--retries", "0"], env)
    inc = os.path.join(cache, FOLDER, "blobs", sha + ".incomplete")
    check(rc == 2 and "run the same command again" in err, "cut connection, no retries: exit 2 and how to continue (%s)" % err.strip()[-300:])
    check(os.path.exists(inc) and os.path.getsize(inc) == cut,
          "the partial file blobs/<sha256>.incomplete holds the %d bytes received (%s)" % (cut, os.path.exists(inc) and os.path.getsize(inc)))
    check(not os.path.exists(os.path.join(cache, FOLDER, "blobs", sha)), "the partial file is not in place")
    check(not os.path.exists(os.path.join(cache, FOLDER, "refs", "main")), "no ref to an incomplete snapshot")
    # 2. The next pull asks for the rest only.
    m.clear()
    rc, out, err = run(["pull", REPO], env)
    check(rc == 0, "the next pull succeeds (%s)" % err.strip()[-300:])
    gets = [r for r in m.requests() if r["method"] == "GET" and r["path"] == "/cdn/" + sha]
    check(len(gets) == 1 and gets[0]["range"] == "bytes=%d-" % cut and gets[0]["status"] == 206 and gets[0]["sent"] == size - cut,
          "it continued with Range: bytes=%d- and got only the %d remaining bytes (%s)" % (cut, size - cut, gets))
    blob = os.path.join(cache, FOLDER, "blobs", sha)
    check(os.path.exists(blob) and hashlib.sha256(open(blob, "rb").read()).hexdigest() == sha,
          "the resumed file's SHA-256 is right")
    check(not os.path.exists(inc), "no .incomplete left")
    check_layout(cache, files, os.path.basename(out.strip()), "resumed")
    m.stop()

    # 3. With retries (the default), one pull resumes by itself after a back-off.
    m = Mirror(tmp, root, "--drop-once", "%s:%d" % (weights, cut))
    cache = os.path.join(tmp, "resume-retry", "hub")
    rc, out, err = run(["pull", REPO], base_env(cache, m.url))
    gets = [r for r in m.requests() if r["method"] == "GET" and r["path"] == "/cdn/" + sha]
    check(rc == 0 and "retrying from byte %d" % cut in err, "one pull retries after the cut (%s)" % err.strip()[-300:])
    check(len(gets) == 2 and gets[0]["sent"] == cut and gets[1]["range"] == "bytes=%d-" % cut and gets[1]["sent"] == size - cut,
          "the retry asked for the rest with a Range request (%s)" % gets)
    blob = os.path.join(cache, FOLDER, "blobs", sha)
    check(os.path.exists(blob) and hashlib.sha256(open(blob, "rb").read()).hexdigest() == sha, "and the SHA-256 is right")
    m.stop()

    # 4. Transient server errors (503) are retried.
    m = Mirror(tmp, root, "--fail-first", "2")
    cache = os.path.join(tmp, "retry503", "hub")
    rc, out, err = run(["pull", REPO, "--include", "config.json"], base_env(cache, m.url))
    st = [r["status"] for r in m.requests()]
    check(rc == 0 and st[:3] == [503, 503, 200], "503 twice, then success after back-off (%s)" % st[:4])
    m.stop()

    # 5. A full disk: the partial file is /dev/full.
    m = Mirror(tmp, root)
    cache = os.path.join(tmp, "full", "hub")
    os.makedirs(os.path.join(cache, FOLDER, "blobs"))
    os.symlink("/dev/full", os.path.join(cache, FOLDER, "blobs", sha + ".incomplete"))
    rc, out, err = run(["pull", REPO, "--include", weights], base_env(cache, m.url))
    check(rc == 2 and "disk is full" in err and "No space left" in err, "a full disk is reported as such (%s)" % err.strip()[-300:])
    check(not os.path.exists(os.path.join(cache, FOLDER, "blobs", sha)), "full disk: nothing moved into place")
    m.stop()


def part_errors(a, tmp, root, files):
    # Corrupted LFS file (SHA-256) and corrupted regular file (git blob id).
    for path, kind in (("model.safetensors", "SHA-256"), ("config.json", "git blob SHA-1")):
        m = Mirror(tmp, root, "--corrupt", path)
        cache = os.path.join(tmp, "corrupt-" + path, "hub")
        rc, out, err = run(["pull", REPO], base_env(cache, m.url))
        info = files[path]
        etag = info["data_sha256"] if info["lfs"] else info["git"]
        blobs = os.path.join(cache, FOLDER, "blobs")
        check(rc == 2 and "checksum mismatch" in err and kind in err and "deleted" in err,
              "corrupted %s refused (%s)" % (path, err.strip()[-300:]))
        check(not os.path.exists(os.path.join(blobs, etag)) and not os.path.exists(os.path.join(blobs, etag + ".incomplete")),
              "corrupted %s: neither the blob nor a partial file is kept" % path)
        snaps = os.path.join(cache, FOLDER, "snapshots")
        check(not any(os.path.lexists(os.path.join(snaps, c, path)) for c in (os.listdir(snaps) if os.path.isdir(snaps) else [])),
              "corrupted %s: no snapshot link to it" % path)
        m.stop()

    # Tokens.
    # (the CDN redirects name "localhost": another origin, which must not get the token)
    m = Mirror(tmp, root, "--token", "hf_secret123", "--cdn-host", "localhost")
    cache = os.path.join(tmp, "auth", "hub")
    env = base_env(cache, m.url)
    rc, out, err = run(["pull", REPO, "--include", "config.json"], env)
    check(rc == 2 and "401" in err and "HF_TOKEN=" in err and "huggingface-cli login" in err,
          "401 without a token says how to pass one (%s)" % err.strip())
    env_bad = dict(env, HF_TOKEN="hf_wrong")
    rc, out, err = run(["pull", REPO, "--include", "config.json"], env_bad)
    check(rc == 2 and "refused" in err and "HF_TOKEN" in err and "hf_wrong" not in err,
          "a wrong token is refused, named by its source, never printed (%s)" % err.strip())
    rc, out, err = run(["pull", REPO, "--include", "config.json"], dict(env, HF_TOKEN="hf_secret123"))
    check(rc == 0, "HF_TOKEN: success (%s)" % err.strip()[-200:])
    check(all(r["auth"] for r in m.requests() if not r["path"].startswith("/cdn/") and r["status"] != 401),
          "the token went with every Hub request")
    # The token file huggingface_hub writes: $HF_HOME/token (a trailing newline is fine).
    home = env["HF_HOME"]
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, "token"), "w") as f:
        f.write("hf_secret123\n")
    shutil.rmtree(cache)
    rc, out, err = run(["pull", REPO, "--include", "*.json"], env)
    check(rc == 0 and os.path.exists(os.path.join(out.strip(), "config.json")), "token file $HF_HOME/token: success (%s)" % err.strip()[-200:])
    cdn = [r for r in m.requests() if r["path"].startswith("/cdn/")]
    check(cdn and not any(r["auth"] for r in cdn), "the token was not sent to the CDN's host (%d CDN requests)" % len(cdn))
    m.stop()

    # A gated repo: the token is valid, its account has no access.
    m = Mirror(tmp, root, "--token", "hf_secret123", "--gated")
    rc, out, err = run(["pull", REPO], dict(base_env(os.path.join(tmp, "gated", "hub"), m.url), HF_TOKEN="hf_secret123"))
    check(rc == 2 and "403" in err and "accept its conditions" in err and "HF_TOKEN" in err,
          "403 gated: says to accept the conditions and names the token's source (%s)" % err.strip())
    m.stop()


def main():
    global Q
    ap = argparse.ArgumentParser()
    ap.add_argument("--qembed", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--part", choices=["fresh", "resume", "errors"], required=True)
    a = ap.parse_args()
    Q = os.path.abspath(a.qembed)
    tmp = tempfile.mkdtemp(prefix="qembed-pull-")
    try:
        root = os.path.join(tmp, "mirror-root")
        os.makedirs(os.path.join(root, "qembed-test"))
        os.symlink(os.path.abspath(a.model), os.path.join(root, "qembed-test", "tiny"))
        files = model_files(a.model)
        {"fresh": part_fresh, "resume": part_resume, "errors": part_errors}[a.part](a, tmp, root, files)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
