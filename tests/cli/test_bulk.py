#!/usr/bin/python3
"""Bulk jobs from the command line, with real processes killed by SIGKILL:

  --resume   a job killed at several points (before its first commit, between
             commits, twice in a row) and run again ends with the same bytes
             as an uninterrupted run (.npy and .jsonl)
  --shard    N parts joined by `qembed merge` equal the unsharded output, a
             killed shard resumes; merge refuses parts out of order,
             incomplete or of another job
  --on-error skip  the report names each bad input's index, line and reason,
             the output keeps a gap row (NaN / null) so row k is input k, and
             the default stays strict (exit 2)

  test_bulk.py --qembed BIN --model DIR
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(args):
    p = subprocess.run([Q] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def state_of(out):
    try:
        with open(out + ".qembed-state") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def kill_at(args, out, when):
    """Starts a job and SIGKILLs it: when = ("time", seconds) or ("rows", n[,
    delay]), the latter as soon as its state file has committed n rows (then
    after delay seconds more: inside the next chunk's work). Returns what
    the state said just after the kill (None: no state yet), and whether the
    process was still running when killed."""
    p = subprocess.Popen([Q] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while p.poll() is None and time.monotonic() - t0 < 120:
        if when[0] == "time" and time.monotonic() - t0 >= when[1]:
            break
        if when[0] == "rows":
            st = state_of(out)
            if st and st["rows"] >= when[1]:
                time.sleep(when[2] if len(when) > 2 else 0)
                break
        time.sleep(0.002)
    alive = p.poll() is None
    if alive:
        p.send_signal(signal.SIGKILL)
    p.wait()
    return state_of(out), alive


def corpus(path, n):
    topics = ["cats", "rust", "北京", "tea", "the sea", "Ünïcödé", "quotes \"x\"", "tabs\tinside"]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            words = " ".join("w%d" % ((i * 7 + k) % 97) for k in range(8 + i % 40))
            f.write(json.dumps("text %d about %s: %s" % (i, topics[i % len(topics)], words)) + "\n")


def main():
    global Q
    ap = argparse.ArgumentParser()
    ap.add_argument("--qembed", required=True)
    ap.add_argument("--model", required=True)
    a = ap.parse_args()
    Q = a.qembed
    M = ["-m", a.model, "-q", "-t", "1"]
    tmp = tempfile.mkdtemp(prefix="qembed-bulk-")
    src = os.path.join(tmp, "corpus.jsonl")
    N = 1100  # 5 chunks of 256 (the last one short)
    corpus(src, N)

    # ---- the uninterrupted reference, with and without --resume ----
    ref = {}
    for ext in ("npy", "jsonl"):
        out = os.path.join(tmp, "ref." + ext)
        rc, _, err = run(["embed", "--input", src, "-o", out] + M)
        check(rc == 0, "uninterrupted %s run (%s)" % (ext, err.strip()[-200:]))
        ref[ext] = open(out, "rb").read()
        out2 = os.path.join(tmp, "ref-resume." + ext)
        rc, _, err = run(["embed", "--input", src, "-o", out2, "--resume"] + M)
        check(rc == 0 and open(out2, "rb").read() == ref[ext],
              "an uninterrupted --resume run writes the same bytes (%s)" % ext)
        st = state_of(out2)
        check(st is not None and st["complete"] and st["rows"] == N and st["texts"] == N,
              "its state file says complete, %d rows" % N)
        rc, _, err = run(["embed", "--input", src, "-o", out2, "--resume"] + M)
        check(rc == 0 and "complete" in err and open(out2, "rb").read() == ref[ext],
              "--resume on a finished job: nothing to do, output untouched")
    v = np.load(os.path.join(tmp, "ref.npy"))
    check(v.shape == (N, 64), "reference shape %s" % (v.shape,))

    # ---- killed with SIGKILL at several points, then resumed ----
    interrupted = 0
    plans = [
        ("npy", [("time", 0.0)]),                    # before anything is committed
        ("npy", [("rows", 1)]),                      # right after the first commit
        ("npy", [("rows", 300), ("rows", 900)]),     # killed twice, mid-job each time
        ("npy", [("rows", 256, 0.02)]),              # inside a chunk: written, not committed
        ("npy", [("time", 0.35)]),                   # anywhere
        ("jsonl", [("rows", 256, 0.01)]),
        ("jsonl", [("time", 0.5), ("rows", 1000, 0.03)]),
    ]
    for i, (ext, kills) in enumerate(plans):
        out = os.path.join(tmp, "killed%d.%s" % (i, ext))
        args = ["embed", "--input", src, "-o", out, "--resume"] + M
        seen = []
        for when in kills:
            st, alive = kill_at(args, out, when)
            rows = st["rows"] if st else None
            seen.append("%s=%s: rows %s%s" % (when[0], when[1:], rows, "" if alive else " (had finished)"))
            if alive and st is not None and not st["complete"] and 0 < st["rows"] < N:
                interrupted += 1
        rc, _, err = run(args)
        got = open(out, "rb").read() if os.path.exists(out) else b""
        check(rc == 0 and got == ref[ext],
              "killed (%s), resumed: %s equals the uninterrupted run byte for byte (%s)"
              % ("; ".join(seen), ext, err.strip()[-200:]))
    # the kills above must have hit running jobs with work left, or they test nothing
    check(interrupted >= 4, "%d kills interrupted a job between its first and last commit" % interrupted)

    # ---- a state file that does not match the run ----
    out = os.path.join(tmp, "mismatch.npy")
    kill_at(["embed", "--input", src, "-o", out, "--resume"] + M, out, ("rows", 256))
    # what a kill between writing a chunk and committing it leaves (a kill
    # rarely lands in that window, so it is made here): bytes past the commit
    st = state_of(out)
    with open(out, "ab") as f:
        f.write(b"\x7f" * 1000)
    check(st is not None and os.path.getsize(out) > st["output_bytes"], "uncommitted bytes after the commit")
    rc, _, err = run(["embed", "--input", src, "-o", out, "--resume", "--dims", "32"] + M)
    check(rc == 2 and "options differ" in err, "resume with other options: exit 2 (%s)" % err.strip()[-160:])
    rc, _, err = run(["embed", "--input", src, "-o", out, "--resume", "--shard", "0/2"] + M)
    check(rc == 2 and "shard" in err, "resume with another --shard: exit 2")
    rc, _, err = run(["embed", "--input", src, "-o", out, "--resume"] + M)
    check(rc == 0 and open(out, "rb").read() == ref["npy"], "then resumed as it was: equal")
    plain = os.path.join(tmp, "plain.npy")
    open(plain, "wb").write(b"not ours")
    rc, _, err = run(["embed", "--input", src, "-o", plain, "--resume"] + M)
    check(rc == 2 and "not an interrupted job" in err and open(plain, "rb").read() == b"not ours",
          "--resume over a file without a state: exit 2, file untouched (%s)" % err.strip()[-120:])
    bad_state = os.path.join(tmp, "badstate.npy")
    open(bad_state + ".qembed-state", "w").write("{\"version\": 1}")
    rc, _, err = run(["embed", "--input", src, "-o", bad_state, "--resume"] + M)
    check(rc == 2 and "not a qembed state file" in err, "a broken state file: exit 2 naming it")

    # ---- shards and merge ----
    for ext, n in (("npy", 3), ("jsonl", 2), ("npy", 5)):
        parts = [os.path.join(tmp, "part%d-of-%d.%s" % (i, n, ext)) for i in range(n)]
        for i, part in enumerate(parts):
            args = ["embed", "--input", src, "-o", part, "--shard", "%d/%d" % (i, n)] + M
            if i == 1:  # one shard is killed and resumed
                kill_at(args + ["--resume"], part, ("rows", 256))
                args = args + ["--resume"]
            rc, _, err = run(args)
            check(rc == 0, "shard %d/%d (%s)" % (i, n, err.strip()[-160:]))
        merged = os.path.join(tmp, "merged-%d.%s" % (n, ext))
        rc, _, err = run(["merge", "-o", merged] + parts)
        check(rc == 0 and open(merged, "rb").read() == ref[ext],
              "%d shards (one killed and resumed) merged equal the unsharded %s (%s)" % (n, ext, err.strip()[-160:]))
        if ext == "npy" and n == 3:
            sizes = [np.load(p).shape[0] for p in parts]
            check(sum(sizes) == N and min(sizes) > 0, "every shard has rows: %s" % sizes)
            rc, _, err = run(["merge", "-o", merged + ".x.npy", parts[1], parts[0], parts[2]])
            check(rc == 2 and "order" in err and not os.path.exists(merged + ".x.npy"),
                  "merge refuses parts out of order, writes nothing")
            rc, _, err = run(["merge", "-o", merged + ".x.npy"] + parts[:2])
            check(rc == 2, "merge refuses a missing part")
            st = json.load(open(parts[2] + ".qembed-state"))
            st["complete"] = False
            json.dump(st, open(parts[2] + ".qembed-state", "w"))
            rc, _, err = run(["merge", "-o", merged + ".x.npy"] + parts)
            check(rc == 2 and "not complete" in err, "merge refuses an incomplete part")
            with open(parts[0], "ab") as f:
                f.write(b"\0" * 256)
            st["complete"] = True
            json.dump(st, open(parts[2] + ".qembed-state", "w"))
            rc, _, err = run(["merge", "-o", merged + ".x.npy"] + parts)
            check(rc == 2, "merge refuses a part longer than its state says (%s)" % err.strip()[-100:])

    # ---- --on-error skip ----
    bad = os.path.join(tmp, "bad.jsonl")
    lines = ['"good one"', '"also good"', '{"text": 1}', 'not json', '""', '"fine"', '', '"last"']
    with open(bad, "w") as f:
        f.write("\n".join(lines) + "\n")
    rc, _, err = run(["embed", "--input", bad, "-o", os.path.join(tmp, "strict.npy")] + M)
    check(rc == 2 and "line 3" in err and not os.path.exists(os.path.join(tmp, "strict.npy")),
          "default stays strict: exit 2 at line 3, no output")
    out = os.path.join(tmp, "skipped.npy")
    rc, _, err = run(["embed", "--input", bad, "-o", out, "--on-error", "skip"] + M)
    rep = [json.loads(l) for l in open(out + ".errors.jsonl")] if rc == 0 else []
    check(rc == 0 and "3 inputs skipped" in err, "skip: exit 0, a summary on stderr (%s)" % err.strip()[-120:])
    check([(r["input"], r["line"]) for r in rep] == [(2, 3), (3, 4), (4, 5)],
          "the report names inputs 2, 3, 4 at lines 3, 4, 5: %s" % rep)
    check(len(rep) == 3 and "JSON" in rep[0]["reason"] and "JSON" in rep[1]["reason"] and "empty" in rep[2]["reason"],
          "with their reasons")
    got = np.load(out) if rc == 0 else np.zeros((0, 64))
    rc2, o2, _ = run(["embed", "-f", "npy"] + M + ["good one", "also good", "fine", "last"])
    want = np.load(__import__("io").BytesIO(o2))
    check(got.shape == (7, 64) and np.isnan(got[2:5]).all() and not np.isnan(got[[0, 1, 5, 6]]).any(),
          "7 rows (the blank line is no input), rows 2-4 are NaN gaps")
    check(got.shape == (7, 64) and np.array_equal(got[[0, 1, 5, 6]], want),
          "the good rows equal their embedding without the bad ones")
    rep_path = os.path.join(tmp, "report.jsonl")
    out = os.path.join(tmp, "skipped.jsonl")
    rc, _, err = run(["embed", "--input", bad, "-o", out, "--on-error", "skip", "--error-report", rep_path,
                      "--resume"] + M)
    rows = [json.loads(l) for l in open(out)] if rc == 0 else []
    check(rc == 0 and rows[2:5] == [None, None, None] and len(rows) == 7 and
          len(open(rep_path).read().splitlines()) == 3,
          "jsonl gaps are null; --error-report FILE; with --resume")

    # ---- usage errors (exit 1) ----
    for args, what in ((["embed", "--input", src, "--resume"], "--resume to standard output"),
                       (["embed", "--input", "-", "-o", os.path.join(tmp, "x.npy"), "--resume"], "--resume from stdin"),
                       (["embed", "--input", src, "-o", os.path.join(tmp, "x.json"), "--resume"], "--resume to .json"),
                       (["embed", "--input", src, "-o", os.path.join(tmp, "x.npy"), "--shard", "3/3"], "--shard 3/3"),
                       (["embed", "--input", src, "-o", os.path.join(tmp, "x.npy"), "--shard", "1"], "--shard 1"),
                       (["embed", "--input", src, "--on-error", "ignore"], "--on-error ignore"),
                       (["embed", "--input", src, "--error-report", "r.jsonl"], "--error-report without skip"),
                       (["merge", "-o", os.path.join(tmp, "x.json"), src], "merge to .json"),
                       (["merge", os.path.join(tmp, "ref.npy")], "merge without -o")):
        rc, _, err = run(args + M if args[0] == "embed" else args)
        check(rc == 1 and err.strip() != "", "%s: exit 1 with a message (%s)" % (what, err.strip()[-120:]))

    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
