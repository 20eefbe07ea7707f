#!/bin/sh
# The issue's "done when", through the command line: with QEMBED_VULKAN_SOFTWARE=1
# `qembed embed --compute-units CPU_AND_GPU` computes on vulkan0 and gives the
# CPU's vectors; without the variable a software device is listed as unused with
# the reason; without any Vulkan driver there is no Vulkan device and no error.
# Exit 77 (skipped) when this machine has no Vulkan device.
# usage: cli_vulkan.sh QEMBED MODEL_DIR PYTHON
set -u
q=$1 m=$2 py=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

QEMBED_VULKAN_SOFTWARE=1 "$q" info -m "$m" >"$tmp/info_sw" 2>&1 || fail "qembed info: $(tail -3 "$tmp/info_sw")"
if ! grep -q "vulkan0 (" "$tmp/info_sw"; then
  echo "SKIPPED: no Vulkan device on this machine (install mesa-vulkan-drivers for lavapipe)"
  exit 77
fi

# 1. A software device without the variable: listed, unused, and why.
if grep -q "vulkan0 (.*software (CPU type)" "$tmp/info_sw"; then
  env -u QEMBED_VULKAN_SOFTWARE "$q" info -m "$m" >"$tmp/info" 2>&1 || fail "qembed info"
  grep -q "unused: vulkan0 (.*QEMBED_VULKAN_SOFTWARE=1" "$tmp/info" ||
    fail "a software device without QEMBED_VULKAN_SOFTWARE=1 is not shown as unused: $(grep -i vulkan "$tmp/info")"
fi

# 2. On vulkan0, the CPU's vectors.
set -- "The quick brown fox jumps over the lazy dog." "Vulkan" "$(printf 'a longer text, %.0s' $(seq 1 60))"
QEMBED_VULKAN_SOFTWARE=1 "$q" embed --compute-units CPU_AND_GPU -m "$m" "$@" >"$tmp/gpu.jsonl" 2>"$tmp/gpu.log" ||
  fail "embed on vulkan0: $(tail -3 "$tmp/gpu.log")"
grep -Eq "^qembed INFO: +0 +0-[0-9]+ +vulkan0 \(" "$tmp/gpu.log" ||
  fail "the placement does not put the layers on vulkan0: $(grep -A3 placement "$tmp/gpu.log")"
"$q" embed --compute-units CPU_ONLY --exact -m "$m" "$@" >"$tmp/cpu.jsonl" 2>/dev/null || fail "embed on the cpu"
"$py" - "$tmp/gpu.jsonl" "$tmp/cpu.jsonl" <<'PY' || fail "vulkan0 vectors differ from the CPU's"
import json, math, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 3, (len(a), len(b))
for i, (x, y) in enumerate(zip(a, b)):
    c = sum(p * q for p, q in zip(x, y)) / math.sqrt(sum(p * p for p in x) * sum(q * q for q in y))
    print("input %d: cosine %.8f vulkan0 vs cpu" % (i, c))
    assert c >= 0.99999, c
PY

# 3. No Vulkan driver at all: no Vulkan device, no error, the CPU computes.
VK_ICD_FILENAMES=/nonexistent QEMBED_VULKAN_SOFTWARE=1 "$q" embed --compute-units CPU_AND_GPU -m "$m" "x" \
  >"$tmp/nodrv.jsonl" 2>"$tmp/nodrv.log" || fail "without a driver: $(tail -3 "$tmp/nodrv.log")"
grep -q "vulkan" "$tmp/nodrv.log" && fail "a Vulkan device without a driver: $(grep vulkan "$tmp/nodrv.log")"
grep -q "no usable GPU" "$tmp/nodrv.log" || fail "CPU_AND_GPU without a GPU does not say so"
# 4. A Q8_0 GGUF (int8 weights, CPU products only): vulkan0 is refused with the reason, the CPU computes.
"$q" quantize -m "$m" -o "$tmp/q8.gguf" --type q8_0 >/dev/null 2>&1 || fail "quantize to q8_0"
QEMBED_VULKAN_SOFTWARE=1 "$q" embed --compute-units CPU_AND_GPU -m "$tmp/q8.gguf" "x" >"$tmp/q8.jsonl" 2>"$tmp/q8.log" ||
  fail "embed a Q8_0 GGUF with vulkan0 allowed: $(tail -3 "$tmp/q8.log")"
grep -q "vulkan0 .*cannot run this model: its shaders take f32, f16 and bf16 weights, not Q8_0" "$tmp/q8.log" ||
  fail "vulkan0 is not refused for Q8_0 weights: $(grep -i vulkan "$tmp/q8.log")"
grep -Eq "^qembed INFO: +0 +0-[0-9]+ +cpu " "$tmp/q8.log" || fail "the Q8_0 model's layers are not on the cpu"
echo "cli vulkan: all checks passed"
