#!/usr/bin/python3
"""The golden cases of ../shared/golden (computed by an implementation that
is not ours): same token ids, and cosine >= 0.9999 in exact and default mode.

  check_golden.py --qembed BIN --golden tiny_golden.json --model DIR
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if p.returncode != 0:
        sys.exit("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr.decode()))
    return p.stdout.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qembed", required=True)
    ap.add_argument("--golden", required=True)
    ap.add_argument("--model", required=True)
    a = ap.parse_args()
    for p in (a.golden, a.model):
        if not os.path.exists(p):
            sys.exit("missing shared reference material: %s (set QE_SHARED_DIR)" % p)
    with open(a.golden) as f:
        cases = json.load(f)["cases"]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "golden.jsonl")
        with open(inp, "w") as f:
            for c in cases:
                f.write(json.dumps(c["text"], ensure_ascii=False) + "\n")
        ids = [json.loads(l) for l in run([a.qembed, "tokenize", "-q", "-m", a.model, "--input", inp]).splitlines()]
        for i, c in enumerate(cases):
            if ids[i] != c["token_ids"]:
                failed += 1
                print("FAIL case %d ids: %s vs golden %s" % (i, ids[i], c["token_ids"]))
        for mode in ([], ["--exact"]):
            out = run([a.qembed, "embed", "-q", "-m", a.model, "--input", inp, "--format", "jsonl"] + mode)
            vecs = [np.array(json.loads(l)) for l in out.splitlines()]
            assert len(vecs) == len(cases)
            for i, (v, c) in enumerate(zip(vecs, cases)):
                g = np.array(c["embedding"])
                cos = float(v @ g / (np.linalg.norm(v) * np.linalg.norm(g)))
                ok = cos >= 0.9999
                failed += not ok
                print("%-4s case %d %s: cosine %.8f" % ("ok" if ok else "FAIL", i, mode or "default", cos))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
