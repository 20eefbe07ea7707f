"""Checks the figures of `qembed bench --json` (tests/kernels: kernels.bench_cli).

Not how fast anything is (timings are never asserted), but that every figure
is there, finite, positive, and consistent with the others:
  throughput: tokens_per_s * seconds == tokens, texts_per_s * seconds == texts,
              fraction_of_peak == gflops / machine.peak_compute_gflops
  latency:    min_ms <= p50_ms <= p95_ms <= p99_ms
  cold start: the child's load_s fits inside spawn_to_first_vector_s
  memory:     peak_rss_over_weights == peak_rss_bytes / model.weights_bytes
Usage: check_bench_json.py BENCH.json
"""
import json
import math
import sys

failures = []


def fail(msg):
    failures.append(msg)


def num(obj, path):
    """The number at a dotted path; records a failure (and returns None) when
    it is missing, not a number, or not finite."""
    cur = obj
    for key in path.split("."):
        if not isinstance(cur, dict) or key not in cur:
            fail(f"{path}: missing")
            return None
        cur = cur[key]
    if isinstance(cur, bool) or not isinstance(cur, (int, float)):
        fail(f"{path}: not a number ({cur!r})")
        return None
    if not math.isfinite(cur):
        fail(f"{path}: not finite ({cur!r})")
        return None
    return float(cur)


def positive(obj, *paths):
    out = []
    for p in paths:
        v = num(obj, p)
        if v is not None and not v > 0:
            fail(f"{p}: {v!r}, expected > 0")
        out.append(v)
    return out


def same(what, got, want, rel=1e-9):
    if got is None or want is None:
        return
    if not math.isclose(got, want, rel_tol=rel, abs_tol=0.0):
        fail(f"{what}: {got!r}, expected {want!r}")


def all_finite(x, path="$"):
    if isinstance(x, dict):
        for k, v in x.items():
            all_finite(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            all_finite(v, f"{path}[{i}]")
    elif isinstance(x, float) and not math.isfinite(x):
        fail(f"{path}: not finite ({x!r})")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        d = json.load(f)
    all_finite(d)

    (peak,) = positive(d, "machine.peak_compute_gflops")
    positive(d, "machine.cores", "machine.threads", "machine.peak_f32_fma_gflops", "machine.peak_bf16_dot_gflops",
             "machine.dram_read_gbs")
    (weights,) = positive(d, "model.weights_bytes")
    positive(d, "model.layers", "model.hidden", "model.heads", "model.kv_heads", "model.head_dim",
             "model.intermediate")

    spawn, cload = positive(d, "cold_start.spawn_to_first_vector_s", "cold_start.load_s")
    positive(d, "cold_start.warmup_s", "cold_start.first_inference_s", "load_s")
    if spawn is not None and cload is not None and not cload <= spawn:
        fail(f"cold_start.load_s {cload!r} is longer than spawn_to_first_vector_s {spawn!r}, which contains it")

    positive(d, "query.tokens", "query.runs", "query.gflops_best")
    lat = positive(d, "query.min_ms", "query.p50_ms", "query.p95_ms", "query.p99_ms")
    if None not in lat and lat != sorted(lat):
        fail(f"query latencies out of order: min/p50/p95/p99 = {lat}")

    for part in ("batch", "documents"):
        texts, tokens, secs, tps, xps, gf, frac = positive(
            d, *(f"{part}.{k}" for k in ("texts", "tokens", "seconds", "tokens_per_s", "texts_per_s", "gflops",
                                          "fraction_of_peak")))
        if None not in (tps, secs):
            same(f"{part}.tokens_per_s * seconds", tps * secs, tokens)
            same(f"{part}.texts_per_s * seconds", xps * secs, texts)
        if None not in (gf, peak):
            same(f"{part}.fraction_of_peak", frac, gf / peak)

    if "long_input" in d:
        positive(d, "long_input.tokens", "long_input.seconds", "long_input.gflops", "long_input.peak_rss_bytes")
    positive(d, "activation_bytes_planned")
    rss, ratio = positive(d, "peak_rss_bytes", "peak_rss_over_weights")
    if None not in (rss, weights):
        same("peak_rss_over_weights", ratio, rss / weights)

    for m in failures:
        print(f"FAIL {sys.argv[1]}: {m}", file=sys.stderr)
    if failures:
        return 1
    print(f"ok: {sys.argv[1]}: every figure finite, positive and consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
