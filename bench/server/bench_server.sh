#!/usr/bin/env bash
# Server benchmark (not a test): with the synthetic 0.6b model,
#  1. throughput of `qembed serve` under 32 concurrent clients, each sending
#     one ~64-token text per request (wrk -c32), against the offline batch
#     throughput of the same 32 texts in one in-process batch (bench_server_offline);
#  2. p50 latency of one 16-token request on an idle server (wrk -c1) against
#     the in-process latency of the same text (qembed_ctx_embed).
# Usage: bench/server/bench_server.sh BUILD_DIR [MODEL_DIR] [SECONDS]
#   BUILD_DIR has qembed, qembed-synth and bench/server/bench_server_offline;
#   MODEL_DIR defaults to BUILD_DIR/bench-models/synth-0.6b (generated once).
# wrk and the server share the machine's cores: the figures include that.
set -euo pipefail
B=$(cd "${1:?build dir}" && pwd)
M=${2:-$B/bench-models/synth-0.6b}
SECS=${3:-10}
QE=$B/qembed
OFF=$B/bench/server/bench_server_offline
for x in "$QE" "$OFF"; do [ -x "$x" ] || { echo "missing $x (make qembed bench_server_offline)" >&2; exit 1; }; done
command -v wrk >/dev/null || { echo "wrk is missing" >&2; exit 1; }
if [ ! -f "$M/config.json" ]; then
    echo "generating the synthetic 0.6b model in $M"
    "$B/qembed-synth" --preset 0.6b -o "$M" -q
fi
TMP=$(mktemp -d); SRV=""
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# 32 distinct texts of about 64 tokens, and one of about 16.
words=(alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa
       quebec romeo sierra tango uniform victor whiskey xray yankee zulu river mountain forest ocean desert city)
for i in $(seq 0 31); do
    t="text $i:"
    for k in $(seq 0 37); do t+=" ${words[$(( (i * 7 + k * 13 + k * k) % 32 ))]}"; done
    echo "$t"
done >"$TMP/texts.txt"
short="a short query about the weather in the mountains this weekend and next week?"

echo "== in-process (public API, same texts) =="
"$OFF" "$M" "$TMP/texts.txt" "$short" "$SECS" | tee "$TMP/off.txt"

"$QE" serve -m "$M" --port 0 --port-file "$TMP/port" -q >"$TMP/serve.log" 2>&1 &
SRV=$!
for _ in $(seq 1 600); do
    [ -s "$TMP/port" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(cat "$TMP/port")/health")" = 200 ] && break
    kill -0 "$SRV" || { cat "$TMP/serve.log"; exit 1; }
    sleep 0.1
done
U="http://127.0.0.1:$(cat "$TMP/port")/v1/embeddings"

# wrk: each connection sends the 32 texts in turn, one per request.
{
    echo 'local bodies = {}'
    while IFS= read -r t; do echo "bodies[#bodies + 1] = '{\"input\":\"$t\"}'"; done <"$TMP/texts.txt"
    cat <<'LUA'
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])
end
LUA
} >"$TMP/texts.lua"
printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n' "'{\"input\":\"$short\"}'" >"$TMP/short.lua"
curl -s -H 'Content-Type: application/json' -d "{\"input\":\"$short\"}" "$U" | grep -o '"prompt_tokens":[0-9]*'

echo "== server: 32 concurrent clients, one ~64-token text per request =="
wrk -t1 -c32 -d2s -s "$TMP/texts.lua" "$U" >/dev/null # warm-up
wrk -t1 -c32 -d"${SECS}s" --latency -s "$TMP/texts.lua" "$U" | tee "$TMP/wrk32.txt"
echo "== server: idle, one 16-token request at a time =="
wrk -t1 -c1 -d"${SECS}s" --latency -s "$TMP/short.lua" "$U" | tee "$TMP/wrk1.txt"

ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else {sub(/s$/,"",v); print v*1000}}'; }
srv_tp=$(awk '/^Requests\/sec/ {print $2}' "$TMP/wrk32.txt")
off_tp=$(awk '/^offline_texts_per_s/ {print $2}' "$TMP/off.txt")
srv_p50=$(awk '$1 == "50%" {print $2}' "$TMP/wrk1.txt" | ms)
inp_p50=$(awk '/^inproc_p50_ms/ {print $2}' "$TMP/off.txt")
echo "== summary ($(nproc) cores; $(date -u +%FT%TZ)) =="
awk -v s="$srv_tp" -v o="$off_tp" 'BEGIN {printf "throughput: server %.2f texts/s, offline batch %.2f texts/s: %.1f%%\n", s, o, 100*s/o}'
awk -v s="$srv_p50" -v i="$inp_p50" 'BEGIN {printf "p50 latency (16 tokens): server %.2f ms, in-process %.2f ms: %+.1f%%\n", s, i, 100*(s-i)/i}'
curl -s "${U%/v1/embeddings}/metrics" | grep -E '^qembed_batch_size_(sum|count)' | tr '\n' ' '; echo
