#!/usr/bin/env bash
# server.logflood (problem 6): refusals under overload are counted in
# /metrics and summarised in the log at most once a second, not one line each.
# Usage: test_logflood.sh QEMBED_BIN MODEL_DIR
source "$(dirname "$0")/lib.sh" "$@"
start_server l --max-queue 1 --batch-wait-ms 1500
t0=$(date +%s)
seq 1 300 | xargs -P 16 -I{} curl -s -o /dev/null -H 'Content-Type: application/json' -d '{"input":"flood {}"}' "$URL_l/v1/embeddings"
sleep 1.2  # the last summary line
t1=$(date +%s)
n=$(curl -s "$URL_l/metrics" | awk '/^qembed_rejected_queue_full_total / {print $2}')
lines=$(grep -c 'queue' "$TMP/l.log" || true)
secs=$((t1 - t0 + 1))
echo "$n refusals in about $secs s; $lines log lines about the queue"
[ -n "$n" ] && [ "$n" -ge 100 ] && ok "$n refusals counted" || fail "refusals counted: '$n'"
[ "$lines" -le $((secs + 1)) ] && ok "$lines log lines for $n refusals (at most one a second)" || fail "$lines log lines for $n refusals in $secs s"
grep -q 'rejected in the last second: queue_full' "$TMP/l.log" && ok "summary line" || fail "no summary line"
finish
