#!/usr/bin/python3
"""The qembed command line: help, exit codes (0 ok, 1 usage, 2 input/model),
messages that name the input, output formats, streaming input, limits.

  test_cli.py --qembed BIN --model DIR
"""
import argparse
import io
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(args, stdin=None, env=None):
    p = subprocess.run([Q] + args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=300, env=env)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def vecs_jsonl(out):
    return np.array([json.loads(l) for l in out.decode().splitlines()])


def main():
    global Q
    ap = argparse.ArgumentParser()
    ap.add_argument("--qembed", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--part", choices=["usage", "io"], required=True,
                    help="usage: help, exit codes, messages; io: formats, inputs, limits")
    a = ap.parse_args()
    Q = a.qembed
    M = ["-m", a.model, "-q"]
    if not os.path.isdir(a.model):
        sys.exit("model directory missing: " + a.model)
    tmp = tempfile.mkdtemp(prefix="qembed-cli-")

    if a.part == "usage":
        part_usage(a, M, tmp)
    else:
        part_io(a, M, tmp)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    return 0


def part_usage(a, M, tmp):
    # ---- help and usage errors ----
    for cmd in (["--help"], ["embed", "--help"], ["tokenize", "--help"], ["info", "--help"]):
        rc, out, _ = run(cmd)
        check(rc == 0 and b"usage" in out, "%s exits 0 with usage text" % " ".join(cmd))
    for args, what in ((["frobnicate"], "unknown command"),
                       ([], "no command"),
                       (["embed"] + M, "embed without input"),
                       (["embed", "--bogus"] + M + ["x"], "unknown option"),
                       (["embed", "--dims", "abc"] + M + ["x"], "--dims not a number"),
                       (["embed", "--dims", "16"] + M + ["x"], "--dims below 32"),
                       (["embed", "--dims", "65"] + M + ["x"], "--dims above hidden"),
                       (["embed", "--format", "xml"] + M + ["x"], "unknown format"),
                       (["embed", "-o", os.path.join(tmp, "x.bin")] + M + ["x"], "unknown output extension"),
                       (["embed", "--max-tokens", "0"] + M + ["x"], "--max-tokens 0"),
                       (["embed", "--max-tokens", "99999999"] + M + ["x"], "--max-tokens above max positions"),
                       (["embed", "--input"], "--input without value"),
                       (["tokenize", "--nope"] + M + ["x"], "tokenize unknown option"),
                       (["info", "extra"] + M, "info stray argument")):
        rc, out, err = run(args)
        check(rc == 1 and err.strip() != "", "%s: exit 1 with a message (rc=%d: %s)" % (what, rc, err.strip()[-120:]))

    # ---- one parser for every command: the same forms everywhere ----
    for args, what in ((["embed", "--truncate=1"] + M + ["x"], "a flag given a value"),
                       (["embed", "--dim", "40"] + M + ["x"], "an abbreviated option"),
                       (["embed", "-z"] + M + ["x"], "an unknown short option"),
                       (["embed", "-qz"] + M + ["x"], "an unknown short option in a cluster"),
                       (["tokenize", "--max-tokens"], "tokenize: a value missing at the end"),
                       (["tokenize", "-f", "npy"] + M + ["x"], "tokenize: npy is for vectors"),
                       (["tokenize", "--decode", "-f", "tsv"] + M + ["x"], "tokenize: --decode as tsv"),
                       (["split", "-m", a.model, "-o", os.path.join(tmp, "s"), "stray"], "split stray argument"),
                       (["serve", "stray"], "serve stray argument"),
                       (["bench", "--docs"], "bench: a value missing")):
        rc, out, err = run(args)
        check(rc == 1 and err.strip() != "", "%s: exit 1 with a message (rc=%d: %s)" % (what, rc, err.strip()[-120:]))
    rc, ref, _ = run(["embed", "--format", "json", "--dims", "32"] + M + ["alpha"])
    for args, what in ((["embed", "--format=json", "--dims=32"], "--x=v"),
                       (["embed", "-fjson", "--dims", "32"], "-xv"),
                       (["embed", "-qfjson", "--dims=32"], "clustered -qfjson"),
                       (["embed", "--dims", "32", "-m" + a.model, "-f", "json"], "-mDIR")):
        rc, out, err = run(args + M + ["alpha"])
        check(rc == 0 and out == ref, "embed %s gives the same output as the long forms" % what)
    rc, out, err = run(["embed", "-f", "json"] + M + ["--", "-beta", "--dims"])
    check(rc == 0 and len(json.loads(out)) == 2, "after --, '-beta' and '--dims' are texts (%s)" % err.strip()[-100:])
    rc, out, err = run(["embed", "alpha", "-f", "json"] + M + ["beta"])
    check(rc == 0 and len(json.loads(out)) == 2, "texts before and after options")
    rc, out, err = run(["info", "--threads=1", "-t1"] + M)
    check(rc == 0 and "(--threads)" in out.decode(), "info --threads=1 -t1")
    rc, out, err = run(["tokenize", "-fjson"] + M + ["Hello world", "hi"])
    j = json.loads(out) if rc == 0 else None
    check(j is not None and j[0] == [9707, 1879, 151643] and len(j) == 2, "tokenize -fjson: one array of rows")
    rc, out, err = run(["tokenize", "--format=tsv"] + M + ["Hello world"])
    check(rc == 0 and out == b"9707\t1879\t151643\n", "tokenize --format=tsv (%r)" % out)
    rc, out, err = run(["tokenize", "--format", "jsonl"] + M + ["Hello world"])
    check(rc == 0 and json.loads(out) == [9707, 1879, 151643], "tokenize --format jsonl (the default)")
    rc, out, err = run(["tokenize", "-f", "json", "--decode"] + M + ["Hello world"])
    check(rc == 0 and json.loads(out) == ["Hello world<|endoftext|>"], "tokenize --decode -f json")

    # ---- input and model errors: exit 2, one clear line ----
    bad = os.path.join(tmp, "bad.txt")
    with open(bad, "wb") as f:
        f.write(b"fine\ncaf\xc3(\nalso fine\n")
    rc, out, err = run(["embed", "--input", bad] + M)
    check(rc == 2 and "UTF-8" in err and "line 2" in err and "input 1" in err,
          "invalid UTF-8: exit 2 naming line and input (%s)" % err.strip())
    rc, out, err = run(["tokenize", "--input", bad] + M)
    check(rc == 2 and "UTF-8" in err and "line 2" in err, "tokenize invalid UTF-8: exit 2 (%s)" % err.strip())
    rc, out, err = run(["embed"] + M + ["ok", b"caf\xc3("])
    check(rc == 2 and "UTF-8" in err and "argument 2" in err, "invalid UTF-8 argument: exit 2 (%s)" % err.strip())
    empty = os.path.join(tmp, "empty-line.txt")
    with open(empty, "w") as f:
        f.write("one\n\nthree\n")
    rc, out, err = run(["embed", "--input", empty] + M)
    check(rc == 2 and "empty" in err and "line 2" in err, "empty line: exit 2 naming it (%s)" % err.strip())
    partial = os.path.join(tmp, "partial.npy")
    rc, out, err = run(["embed", "--input", empty, "-o", partial] + M)
    check(rc == 2 and not os.path.exists(partial), "failed run leaves no output file behind")
    rc, out, err = run(["embed"] + M + [""])
    check(rc == 2 and "empty" in err, "empty argument: exit 2 (%s)" % err.strip())
    rc, out, err = run(["embed", "--input", os.path.join(tmp, "missing.txt")] + M)
    check(rc == 2 and "missing.txt" in err, "missing input file: exit 2 naming it (%s)" % err.strip())
    rc, out, err = run(["embed", "-m", os.path.join(tmp, "no-model"), "x"])
    check(rc == 2 and "no-model" in err, "missing model: exit 2 naming it (%s)" % err.strip())
    badjson = os.path.join(tmp, "bad.jsonl")
    with open(badjson, "w") as f:
        f.write('"ok"\n{"text": 1}\n')
    rc, out, err = run(["embed", "--input", badjson] + M)
    check(rc == 2 and "line 2" in err and "JSON string" in err, "JSONL non-string: exit 2 (%s)" % err.strip())

    # ---- the synthetic-model warning ----
    rc, out, err = run(["embed", "-m", a.model, "hello"])
    check(rc == 0 and "synthetic" in err and "no meaning" in err, "synthetic model warning on stderr")
    check(b"synthetic" not in out, "warning not on stdout")



def part_io(a, M, tmp):
    # ---- formats ----
    texts = ["Hello world", "second text", "北京", "line with \"quotes\" and \\ backslash"]
    rc, out, err = run(["embed"] + M + texts)
    check(rc == 0, "embed args: exit 0 (%s)" % err.strip())
    base = vecs_jsonl(out)
    check(base.shape == (4, 64), "jsonl to stdout: shape %s" % (base.shape,))
    check(np.allclose(np.linalg.norm(base, axis=1), 1.0, atol=1e-5), "vectors are unit length")
    rc, out, err = run(["embed", "--format", "json"] + M + texts)
    j = np.array(json.loads(out))
    check(rc == 0 and j.shape == (4, 64) and np.allclose(j, base, atol=1e-7), "json format")
    rc, out, err = run(["embed", "--format", "tsv"] + M + texts)
    t = np.array([[float(x) for x in l.split("\t")] for l in out.decode().splitlines()])
    check(rc == 0 and t.shape == (4, 64) and np.allclose(t, base, atol=1e-7), "tsv format")
    rc, out, err = run(["embed", "--format", "npy"] + M + texts)
    n = np.load(io.BytesIO(out)) if rc == 0 else None
    check(n is not None and n.shape == (4, 64) and n.dtype == np.float32 and np.allclose(n, base, atol=1e-7),
          "npy to a pipe from arguments")
    for ext in ("json", "jsonl", "npy", "tsv"):
        p = os.path.join(tmp, "out." + ext)
        rc, out, err = run(["embed", "-o", p] + M + texts)
        ok = rc == 0 and out == b""
        if ok and ext == "npy":
            v = np.load(p)
            ok = v.shape == (4, 64) and np.allclose(v, base, atol=1e-7)
        elif ok and ext == "json":
            ok = np.allclose(np.array(json.load(open(p))), base, atol=1e-7)
        elif ok and ext == "jsonl":
            ok = np.allclose(vecs_jsonl(open(p, "rb").read()), base, atol=1e-7)
        elif ok:
            ok = np.allclose(np.loadtxt(p, delimiter="\t"), base, atol=1e-7)
        check(ok, "--output out.%s parses and matches" % ext)

    # ---- inputs: text file, JSONL with newlines, stdin; streaming over chunks ----
    many = os.path.join(tmp, "many.txt")
    lines = ["sentence number %d about %s" % (i, ["cats", "rust", "北京", "tea"][i % 4]) for i in range(300)]
    with open(many, "w") as f:
        f.write("\n".join(lines) + "\n")
    out_npy = os.path.join(tmp, "many.npy")
    rc, out, err = run(["embed", "--input", many, "-o", out_npy] + M)
    v = np.load(out_npy) if rc == 0 else None
    check(v is not None and v.shape == (300, 64), "300 lines (two chunks) stream to .npy (shape %s)" % (None if v is None else v.shape,))
    rc, out, err = run(["embed", "--input", many, "--format", "npy"] + M)
    v2 = np.load(io.BytesIO(out)) if rc == 0 else None
    check(v2 is not None and v2.shape == (300, 64) and np.allclose(v, v2), "npy to a pipe from a file (counted first)")
    rc, out, err = run(["embed"] + M + [lines[255], lines[299]])
    one = vecs_jsonl(out)
    check(v is not None and np.allclose(v[255], one[0], atol=1e-5) and np.allclose(v[299], one[1], atol=1e-5),
          "lines 256 and 300 (second chunk) equal their embedding alone")
    rc, out, err = run(["embed", "--input", "-"] + M, stdin="\n".join(texts).encode() + b"\n")
    check(rc == 0 and np.allclose(vecs_jsonl(out), base, atol=1e-7), "stdin input")
    jl = os.path.join(tmp, "nl.jsonl")
    with open(jl, "w") as f:
        f.write(json.dumps("first line\nsecond line") + "\n\n" + json.dumps("tab\there") + "\n")
    rc, out, err = run(["embed", "--input", jl] + M)
    rc2, out2, _ = run(["embed"] + M + ["first line\nsecond line", "tab\there"])
    check(rc == 0 and rc2 == 0 and np.allclose(vecs_jsonl(out), vecs_jsonl(out2), atol=1e-7),
          "JSONL texts with newlines equal the same texts as arguments (blank line skipped)")
    crlf = os.path.join(tmp, "crlf.txt")
    with open(crlf, "wb") as f:
        f.write(b"Hello world\r\nsecond text\r\n")
    rc, out, err = run(["embed", "--input", crlf] + M)
    check(rc == 0 and np.allclose(vecs_jsonl(out), base[:2], atol=1e-7), "CRLF lines")

    # ---- instruct, dims ----
    rc, out, err = run(["embed", "--instruct", "Find docs"] + M + ["query"])
    rc2, out2, _ = run(["embed"] + M + ["Instruct: Find docs\nQuery:query"])
    check(rc == 0 and np.allclose(vecs_jsonl(out), vecs_jsonl(out2), atol=1e-7), "--instruct formats the query")
    rc, out, err = run(["embed", "--dims", "32"] + M + texts)
    d = vecs_jsonl(out)
    want = base[:, :32] / np.linalg.norm(base[:, :32], axis=1, keepdims=True)
    check(rc == 0 and d.shape == (4, 32) and np.allclose(d, want, atol=1e-5), "--dims 32 = renormalised prefix")

    # ---- tokenize and the max-tokens boundary ----
    rc, out, err = run(["tokenize"] + M + ["Hello world"])
    check(rc == 0 and json.loads(out) == [9707, 1879, 151643], "tokenize Hello world (%s)" % out)
    rc, out, err = run(["tokenize", "--decode"] + M + ["Hello world"])
    check(rc == 0 and json.loads(out) == "Hello world<|endoftext|>", "tokenize --decode (%s)" % out)
    text = "one two three four five six seven"
    rc, out, _ = run(["tokenize"] + M + [text])
    n = len(json.loads(out))
    rc, out, err = run(["embed", "--max-tokens", str(n)] + M + [text])
    check(rc == 0, "N tokens with --max-tokens N: ok")
    rc, out, err = run(["embed", "--max-tokens", str(n + 1)] + M + [text])
    check(rc == 0, "N-1 tokens: ok")
    rc, out, err = run(["embed", "--max-tokens", str(n - 1)] + M + [text])
    check(rc == 2 and ("%d tokens" % n) in err and "input 0" in err, "N+1 tokens: exit 2 naming the count (%s)" % err.strip())
    rc, out, err = run(["embed", "--max-tokens", str(n - 1), "--truncate"] + M + [text])
    check(rc == 0 and vecs_jsonl(out).shape == (1, 64), "N+1 tokens with --truncate: ok")
    rc, out, _ = run(["tokenize", "--max-tokens", str(n - 1), "--truncate"] + M + [text])
    ids = json.loads(out)
    check(len(ids) == n - 1 and ids[-1] == 151643, "truncation keeps N-2 tokens then <|endoftext|>")

    # ---- info ----
    rc, out, err = run(["info"] + M)
    o = out.decode()
    check(rc == 0 and "hidden_size" in o and "parameters" in o and "synthetic" in o and "placement" in o
          and "(--model)" in o, "info prints config, size, placement, settings with sources")



if __name__ == "__main__":
    sys.exit(main())
