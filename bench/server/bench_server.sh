#!/usr/bin/env bash
# Server benchmark (not a test): with the synthetic 0.6b model,
#  1. throughput of `qembed serve` under 32 concurrent clients, each sending
#     one ~64-token text per request (client.py, one keep-alive connection per
#     client), against the offline batch throughput of the same 32 texts in one
#     in-process batch (bench_server_offline, public API);
#  2. p50 latency of one 16-token request on an idle server against the
#     in-process latency of the same text (qembed_ctx_embed, tokenization
#     included, as the CLI does).
# Usage: bench/server/bench_server.sh BUILD_DIR [MODEL_DIR] [ROUNDS] [LAT_RUNS]
#   BUILD_DIR holds qembed, qembed-synth and bench/server/bench_server_offline;
#   MODEL_DIR defaults to BUILD_DIR/bench-models/synth-0.6b (generated once).
#   ROUNDS (default 3): timed requests per client = timed offline batches.
#   LAT_RUNS (default 30): latency samples on each side.
# The client shares the machine's cores with the server: the figures include that.
set -euo pipefail
B=$(cd "${1:?build dir}" && pwd)
M=${2:-$B/bench-models/synth-0.6b}
ROUNDS=${3:-3}
LAT=${4:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
QE=$B/qembed
OFF=$B/bench/server/bench_server_offline
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
for x in "$QE" "$OFF"; do [ -x "$x" ] || { echo "missing $x (make qembed bench_server_offline)" >&2; exit 1; }; done
if [ ! -f "$M/config.json" ]; then
    echo "generating the synthetic 0.6b model in $M"
    "$B/qembed-synth" --preset 0.6b -o "$M" -q
fi
TMP=$(mktemp -d); SRV=""
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# 32 distinct texts of about 64 tokens (<|endoftext|> included), and one of 16.
words=(alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa
       quebec romeo sierra tango uniform victor whiskey xray yankee zulu river mountain forest ocean desert city)
for i in $(seq 0 31); do
    t="text $i:"
    for k in $(seq 0 37); do t+=" ${words[$(( (i * 7 + k * 13 + k * k) % 32 ))]}"; done
    echo "$t"
done >"$TMP/texts.txt"
short="a short query about the weather in the mountains this weekend and next week?"

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ) =="
echo "== in-process (public API, same texts) =="
"$OFF" "$M" "$TMP/texts.txt" "$short" "$ROUNDS" "$LAT" | tee "$TMP/off.txt"

# (--idle-timeout: with a slow engine a client may wait minutes between requests.)
"$QE" serve -m "$M" --port 0 --port-file "$TMP/port" -q --idle-timeout 3600 >"$TMP/serve.log" 2>&1 &
SRV=$!
for _ in $(seq 1 3000); do
    [ -s "$TMP/port" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(cat "$TMP/port")/health")" = 200 ] && break
    kill -0 "$SRV" || { cat "$TMP/serve.log"; exit 1; }
    sleep 0.1
done
U="http://127.0.0.1:$(cat "$TMP/port")/v1/embeddings"
MET="${U%/v1/embeddings}/metrics"
m() { curl -s "$MET" | awk -v k="$1" '$1 == k {print $2}'; }
snap() { # snap PREFIX: inference seconds, forward passes, request seconds, requests
    printf '%s_inf %s\n%s_passes %s\n%s_req %s\n%s_n %s\n' "$1" "$(m qembed_inference_seconds_sum)" "$1" "$(m qembed_batches_total)" \
        "$1" "$(m 'qembed_request_duration_seconds_sum{endpoint="/v1/embeddings"}')" "$1" "$(m 'qembed_request_duration_seconds_count{endpoint="/v1/embeddings"}')"
}
echo "== server: 32 concurrent clients, one ~64-token text per request =="
"$PY" "$HERE/client.py" tp "$U" "$TMP/texts.txt" 32 "$ROUNDS" | tee "$TMP/tp.txt"
curl -s "$MET" | grep -E '^qembed_batch_size_bucket' | awk '{printf "%s ", $2} END {print "(passes by size, cumulative: le 1 2 4 8 16 32 ...; warm-up included)"}'
echo "== server: idle, one 16-token request at a time =="
snap lat0 >"$TMP/m_lat0.txt"
"$PY" "$HERE/client.py" lat "$U" "$short" "$LAT" | tee "$TMP/lat.txt"
snap lat1 >"$TMP/m_lat1.txt"
echo "== in-process latency again (the machine is shared: the two sides are measured close together) =="
"$OFF" "$M" "$TMP/texts.txt" "$short" 0 "$LAT" | awk '$1 == "inproc_p50_ms" {print "inproc2_p50_ms", $2}' | tee "$TMP/off2.txt"

v() { awk -v k="$1" '$1 == k {print $2}' "$TMP"/*.txt; }
echo "== summary =="
awk -v s="$(v server_texts_per_s)" -v o="$(v offline_texts_per_s)" \
    'BEGIN {printf "throughput: server %.3f texts/s, offline batch %.3f texts/s: %.1f%%\n", s, o, 100*s/o}'
# How much of the timed wall time the batcher spent in forward passes, and the
# engine's own rate inside the server (texts per second of forward pass).
awk -v b="$(v server_busy_s)" -v w="$(v server_seconds)" -v p="$(v server_passes)" -v n="$(v server_requests)" -v o="$(v offline_texts_per_s)" \
    'BEGIN {printf "  server: forward passes busy %.1f%% of the wall time, %d passes (%.1f texts each); %.3f texts per second of forward pass (%.1f%% of offline)\n", 100*b/w, p, n/p, n/b, 100*(n/b)/o}'
i1=$(v inproc_p50_ms); i2=$(v inproc2_p50_ms)
awk -v s="$(v server_p50_ms)" -v i1="$i1" -v i2="$i2" -v n="$(v inproc_short_tokens)" \
    'BEGIN {i=(i1+i2)/2; printf "p50 latency (%d tokens): server %.2f ms, in-process %.2f ms (%.2f before, %.2f after): %+.1f%%\n", n, s, i, i1, i2, 100*(s-i)/i}'
awk -v r0="$(v lat0_req)" -v r1="$(v lat1_req)" -v n0="$(v lat0_n)" -v n1="$(v lat1_n)" -v f0="$(v lat0_inf)" -v f1="$(v lat1_inf)" \
    'BEGIN {n=n1-n0; printf "  server overhead per idle request (request time - forward pass, from /metrics): %.2f ms of %.2f ms\n", 1000*((r1-r0)-(f1-f0))/n, 1000*(r1-r0)/n}'
