#!/usr/bin/python3
"""qembed against the independent numpy reference (qwen3_ref.py).

Runs `qembed tokenize` and `qembed embed` on a set of inputs (plain, with an
instruction, Matryoshka dims, a few hundred tokens long), embeds the same
token ids with the reference, and asserts the cosine of every vector.

  check_reference.py --qembed BIN --model DIR --min-cos C [--exact] [--quick]
--quick: two short inputs only (the 0.6b model, to keep the test to seconds).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen3_ref  # noqa: E402

EOS = 151643


def long_text(n_words, seed):
    words = ["river", "stone", "quantum", "bread", "北京", "the", "of", "embedding",
             "naïve", "code();", "42", "zebra", "Über", "λ", "🙂"]
    rng = np.random.default_rng(seed)
    return " ".join(words[i] for i in rng.integers(0, len(words), n_words))


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    if p.returncode != 0:
        sys.exit("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr.decode()))
    return p.stdout.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qembed", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--min-cos", type=float, required=True)
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if not os.path.isdir(a.model):
        sys.exit("model directory missing: %s (its fixture should have generated it)" % a.model)

    if a.quick:
        texts = ["Hello world", "What is the capital of France?"]
        configs = [dict(instruct=None, dims=None)]
    else:
        texts = ["Hello world", "a", "北京是中华人民共和国的首都。",
                 "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
                 "  spaces\tand\ttabs  ", long_text(300, 1), long_text(120, 2)]
        configs = [dict(instruct=None, dims=None),
                   dict(instruct="Given a web search query, retrieve relevant passages", dims=None),
                   dict(instruct=None, dims=32)]
    ref = qwen3_ref.Qwen3Ref(a.model)
    worst = 1.0
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "in.jsonl")
        with open(inp, "w") as f:
            for t in texts:
                f.write(json.dumps(t, ensure_ascii=False) + "\n")
        for cfg in configs:
            extra = []
            if cfg["instruct"]:
                extra += ["--instruct", cfg["instruct"]]
            ids = [json.loads(l) for l in run([a.qembed, "tokenize", "-q", "-m", a.model, "--input", inp] + extra).splitlines()]
            assert len(ids) == len(texts), "tokenize gave %d rows for %d texts" % (len(ids), len(texts))
            for i, s in enumerate(ids):
                assert s[-1] == EOS, "input %d does not end with <|endoftext|>" % i
            emb_cmd = [a.qembed, "embed", "-q", "-m", a.model, "--input", inp, "--format", "jsonl"] + extra
            if cfg["dims"]:
                emb_cmd += ["--dims", str(cfg["dims"])]
            if a.exact:
                emb_cmd.append("--exact")
            got = [np.array(json.loads(l)) for l in run(emb_cmd).splitlines()]
            assert len(got) == len(texts), "embed gave %d rows for %d texts" % (len(got), len(texts))
            want = ref.embed_many(ids, cfg["dims"])
            for i, (g, w) in enumerate(zip(got, want)):
                assert g.shape == w.shape, "input %d: %s vs %s" % (i, g.shape, w.shape)
                c = float(g @ w / (np.linalg.norm(g) * np.linalg.norm(w)))
                worst = min(worst, c)
                status = "ok" if c >= a.min_cos else "FAIL"
                if c < a.min_cos:
                    failed += 1
                print("%-4s %s input %d (%d tokens): cosine %.8f" % (status, cfg, i, len(ids[i]), c))
    print("worst cosine %.8f (required %.6f)" % (worst, a.min_cos))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
