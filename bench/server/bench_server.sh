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
echo "== server: 32 concurrent clients, one ~64-token text per request =="
"$PY" "$HERE/client.py" tp "$U" "$TMP/texts.txt" 32 "$ROUNDS" | tee "$TMP/tp.txt"
curl -s "${U%/v1/embeddings}/metrics" | grep -E '^qembed_batch_size_(sum|count)' | tr '\n' ' '; echo
echo "== server: idle, one 16-token request at a time =="
"$PY" "$HERE/client.py" lat "$U" "$short" "$LAT" | tee "$TMP/lat.txt"

v() { awk -v k="$1" '$1 == k {print $2}' "$TMP"/*.txt; }
echo "== summary =="
awk -v s="$(v server_texts_per_s)" -v o="$(v offline_texts_per_s)" \
    'BEGIN {printf "throughput: server %.2f texts/s, offline batch %.2f texts/s: %.1f%%\n", s, o, 100*s/o}'
awk -v s="$(v server_p50_ms)" -v i="$(v inproc_p50_ms)" -v n="$(v inproc_short_tokens)" \
    'BEGIN {printf "p50 latency (%d tokens): server %.2f ms, in-process %.2f ms: %+.1f%%\n", n, s, i, 100*(s-i)/i}'
