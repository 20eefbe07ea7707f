#!/usr/bin/env bash
# server.shutdown: SIGTERM with requests in flight: every accepted request is
# answered (200, full body), new connections are refused, exit status 0.
# --batch-wait-ms keeps the requests queued when the signal arrives.
# Usage: test_shutdown.sh QEMBED_BIN MODEL_DIR
source "$(dirname "$0")/lib.sh" "$@"

for sig in TERM INT; do
    start_server s --batch-wait-ms 1500
    N=12
    CURLS=()
    for i in $(seq 1 $N); do
        curl -s -o "$TMP/s$i.body" -w '%{http_code}' -H 'Content-Type: application/json' \
            -d "{\"input\":[\"in flight $i\",\"second $i\"]}" "$URL_s/v1/embeddings" >"$TMP/s$i.code" &
        CURLS+=($!); PIDS+=($!)
    done
    # Wait (bounded) until all N are queued.
    for _ in $(seq 1 100); do
        d=$(curl -s "$URL_s/metrics" | awk '/^qembed_queue_depth / {print $2}')
        [ "$d" = "$N" ] && break
        sleep 0.05
    done
    [ "$d" = "$N" ] && ok "$N requests queued before SIG$sig" || fail "queue depth $d before SIG$sig, want $N"
    kill -$sig "$PID_s"
    sleep 0.3
    c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL_s/health" || true)
    [ "$c" = 000 ] && ok "new connections refused while draining" || fail "new connection during drain got HTTP $c"
    wait "${CURLS[@]}" || true
    rc=0; wait "$PID_s" || rc=$?
    [ "$rc" = 0 ] && ok "SIG$sig: exit status 0" || fail "SIG$sig: exit status $rc"
    good=0
    for i in $(seq 1 $N); do
        if [ "$(cat "$TMP/s$i.code")" = 200 ] && grep -q '"index":1,' "$TMP/s$i.body"; then good=$((good + 1)); fi
    done
    [ "$good" = "$N" ] && ok "SIG$sig: all $N in-flight requests answered" || fail "SIG$sig: $good of $N in-flight requests answered"
    grep -q "SIG$sig received" "$TMP/s.log" && ok "SIG$sig logged" || fail "no 'SIG$sig received' in the log"
done

finish
