#!/usr/bin/env bash
# server.load: wrk with 64 connections (QEMBED_LOAD_SECONDS, default 10):
# zero failed requests (non-2xx or socket errors), batches of more than one
# input formed, and RSS at the end within 10% of RSS after warm-up (server
# warm-up plus a 3 s load warm-up, so every thread's allocator arena exists).
# Usage: test_load.sh QEMBED_BIN MODEL_DIR
source "$(dirname "$0")/lib.sh" "$@"
command -v wrk >/dev/null || { echo "FAIL: wrk is missing (scripts/deps.sh installs it)" >&2; exit 1; }
SECS=${QEMBED_LOAD_SECONDS:-10}
LUA="$(dirname "$0")/post.lua"

# Under AddressSanitizer freed memory sits in a quarantine (256 MiB by
# default) that would read as growth; keep it small so RSS means something.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"
start_server load
U=$URL_load
wrk -t2 -c64 -d3s --timeout 10s -s "$LUA" "$U/v1/embeddings" >"$TMP/warm.txt" 2>&1 || { cat "$TMP/warm.txt"; fail "wrk warm-up"; }
rss0=$(rss_kb "$PID_load")
wrk -t2 -c64 -d"${SECS}s" --timeout 10s -s "$LUA" "$U/v1/embeddings" >"$TMP/wrk.txt" 2>&1 || fail "wrk exited non-zero"
rss1=$(rss_kb "$PID_load")
cat "$TMP/wrk.txt"
reqs=$(awk '/requests in/ {print $1}' "$TMP/wrk.txt")
[ -n "$reqs" ] && [ "$reqs" -gt 0 ] && ok "$reqs requests in ${SECS}s" || fail "no requests completed"
if grep -q 'Non-2xx' "$TMP/wrk.txt"; then fail "failed requests: $(grep Non-2xx "$TMP/wrk.txt")"; else ok "zero non-2xx responses"; fi
if grep -q 'Socket errors' "$TMP/wrk.txt"; then fail "socket errors: $(grep 'Socket errors' "$TMP/wrk.txt")"; else ok "zero socket errors"; fi
echo "RSS after warm-up ${rss0} KiB, after load ${rss1} KiB"
if [ "$rss1" -le $((rss0 + rss0 / 10)) ]; then ok "RSS stable (${rss0} -> ${rss1} KiB, limit +10%)"; else fail "RSS grew from ${rss0} to ${rss1} KiB (> 10%)"; fi
curl -s "$U/metrics" >"$TMP/body"
one=$(awk '/^qembed_batch_size_bucket\{le="1"\}/ {print $2}' "$TMP/body")
all=$(awk '/^qembed_batch_size_count/ {print $2}' "$TMP/body")
[ "$all" -gt "$one" ] && ok "dynamic batching: $((all - one)) of $all forward passes held more than one input" || fail "no forward pass held more than one input ($one of $all)"
# Requests wrk left open when it stopped are still answered: the queue drains.
for _ in $(seq 1 100); do
    grep -q '^qembed_queue_depth 0$' "$TMP/body" && break
    sleep 0.1; curl -s "$U/metrics" >"$TMP/body"
done
body_has "queue drained after the load" '^qembed_queue_depth 0$'
if grep -qE 'qembed_requests_total\{endpoint="/v1/embeddings",status="[^2]' "$TMP/body"; then fail "non-200 embeddings counted: $(grep 'status="[^2]' "$TMP/body")"; else ok "metrics: only 200s"; fi
expect_status "healthy after load" 200 GET "$U/health"

finish
