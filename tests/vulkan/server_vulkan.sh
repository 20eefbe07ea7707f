#!/usr/bin/env bash
# vulkan.server: `qembed serve` with its model on the Vulkan device
# (QEMBED_VULKAN_SOFTWARE=1 --compute-units CPU_AND_GPU): /info's placement
# names vulkan0, and /v1/embeddings gives the CPU-only server's vectors
# (cosine >= 0.99999) for single and batched requests. Exit 77 (skipped, with
# the reason) when this machine has no Vulkan device.
# Usage: server_vulkan.sh QEMBED_BIN MODEL_DIR PYTHON
q=$1 m=$2 py=${3:?python}
if ! QEMBED_VULKAN_SOFTWARE=1 "$q" info -m "$m" 2>&1 | grep -q "vulkan0 ("; then
    echo "SKIPPED: no Vulkan device on this machine (install mesa-vulkan-drivers for lavapipe)"
    exit 77
fi
source "$(dirname "$0")/../server/lib.sh" "$q" "$m"

QEMBED_VULKAN_SOFTWARE=1 start_server gpu --compute-units CPU_AND_GPU
start_server cpu --compute-units CPU_ONLY
J=(-H 'Content-Type: application/json')

expect_status "GET /info (gpu server)" 200 GET "$URL_gpu/info"
body_has "the gpu server's placement puts the layers on vulkan0" '"placement":"[^"]*\\n +0 +0-[0-9]+ +vulkan0 \('
expect_status "GET /info (cpu server)" 200 GET "$URL_cpu/info"
# (its placement may list vulkan0 as unused, but no segment runs there)
if grep -Eq '\\n +[0-9]+ +[0-9]+-[0-9]+ +vulkan0 \(' "$TMP/body"; then fail "the CPU-only server has a segment on vulkan0"; else ok "the CPU-only server has no segment on vulkan0"; fi
body_has "the CPU-only server's layers are on the cpu" '\\n +0 +0-[0-9]+ +cpu '

long=$(printf 'a longer text about embeddings, %.0s' $(seq 1 40))
reqs=(
    '{"input":"The quick brown fox jumps over the lazy dog."}'
    '{"input":["Vulkan","hello world","'"$long"'","x"]}'
    '{"input":["'"$long"'","short one","ünïcödé text 日本語"]}'
    '{"input":[[9707,1879,151643],[9707]]}'
)
i=0
for r in "${reqs[@]}"; do
    i=$((i + 1))
    expect_status "request $i on vulkan0" 200 POST "$URL_gpu/v1/embeddings" "${J[@]}" -d "$r"
    cp "$TMP/body" "$TMP/gpu$i.json"
    expect_status "request $i on the cpu" 200 POST "$URL_cpu/v1/embeddings" "${J[@]}" -d "$r"
    cp "$TMP/body" "$TMP/cpu$i.json"
    if out=$("$py" - "$TMP/gpu$i.json" "$TMP/cpu$i.json" 2>&1 <<'PY'
import json, math, sys
a = json.load(open(sys.argv[1]))["data"]
b = json.load(open(sys.argv[2]))["data"]
assert len(a) == len(b) and len(a) > 0, (len(a), len(b))
worst = 1.0
for x, y in zip(a, b):
    assert x["index"] == y["index"]
    u, v = x["embedding"], y["embedding"]
    assert len(u) == len(v) > 0
    c = sum(p * q for p, q in zip(u, v)) / math.sqrt(sum(p * p for p in u) * sum(q * q for q in v))
    worst = min(worst, c)
print("%d vector(s), lowest cosine %.8f vulkan0 vs cpu" % (len(a), worst))
assert worst >= 0.99999, worst
PY
    ); then ok "request $i: $out"; else fail "request $i: vulkan0 vectors differ from the CPU's: $out"; fi
done
# The gpu server computed the requests on vulkan0 (its start-up placement says so).
grep -Eq "info: +0 +0-[0-9]+ +vulkan0 \(" "$TMP/gpu.log" && ok "gpu server log: layers on vulkan0" ||
    fail "the gpu server's placement table does not put the layers on vulkan0"
finish
