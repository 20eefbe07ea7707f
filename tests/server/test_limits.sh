#!/usr/bin/env bash
# server.limits: a full queue answers 503 with Retry-After (and memory stays
# bounded by --max-queue); a request that waits past --request-timeout gets 504.
# --batch-wait-ms holds requests in the queue long enough to make both
# deterministic. Usage: test_limits.sh QEMBED_BIN MODEL_DIR
source "$(dirname "$0")/lib.sh" "$@"

# ---- queue full ----
# (--idle-timeout 1: the two accepted requests wait 2 s in the queue and must
# still be answered: a request being computed is not an idle connection.)
start_server q --max-queue 2 --batch-wait-ms 2000 --idle-timeout 1
CURLS=()
for i in 1 2 3 4 5 6; do
    curl -s -o "$TMP/q$i.body" -D "$TMP/q$i.hdr" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"input\":\"queued text $i\"}" "$URL_q/v1/embeddings" >"$TMP/q$i.code" &
    CURLS+=($!); PIDS+=($!)
    sleep 0.05
done
wait "${CURLS[@]}" 2>/dev/null || true
n200=0; n503=0
for i in 1 2 3 4 5 6; do
    c=$(cat "$TMP/q$i.code")
    case $c in
        200) n200=$((n200 + 1)) ;;
        503) n503=$((n503 + 1))
             grep -qi '^Retry-After: 1' "$TMP/q$i.hdr" || fail "503 without Retry-After"
             grep -q '"code":"queue_full"' "$TMP/q$i.body" || fail "503 body: $(cat "$TMP/q$i.body")" ;;
        *) fail "queued request $i: HTTP $c" ;;
    esac
done
[ "$n200" = 2 ] && ok "2 requests fit the queue (--max-queue 2) and were answered after 2 s (> --idle-timeout)" || fail "$n200 requests answered 200, want 2"
[ "$n503" = 4 ] && ok "4 requests refused 503 + Retry-After" || fail "$n503 requests refused, want 4"
expect_status "serving after a full queue" 200 POST "$URL_q/v1/embeddings" -H 'Content-Type: application/json' -d '{"input":"after"}'
expect_status "metrics after a full queue" 200 GET "$URL_q/metrics"
body_has "rejections counted" 'qembed_rejected_queue_full_total 4'
body_has "queue empty again" 'qembed_queue_depth 0'

# ---- a client that hangs up while its request is queued ----
c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 0.3 -H 'Content-Type: application/json' -d '{"input":"gone"}' "$URL_q/v1/embeddings" || true)
[ "$c" = 000 ] && ok "client gave up while queued" || fail "client that gave up got HTTP $c"
expect_status "serving after a client hung up" 200 POST "$URL_q/v1/embeddings" -H 'Content-Type: application/json' -d '{"input":"after"}'
for _ in $(seq 1 50); do
    [ "$(curl -s "$URL_q/metrics" | awk '/^qembed_requests_in_flight / {print $2}')" = 1 ] && break
    sleep 0.1
done
expect_status "metrics after a hang-up" 200 GET "$URL_q/metrics"
body_has "the abandoned request was completed and freed" '^qembed_requests_in_flight 1$'

# ---- all bodies together stay under --max-body-memory ----
start_server m --max-body-bytes 64K --max-body-memory 64K --max-tokens 64
{ printf '{"truncate":true,"input":"'; head -c 50000 /dev/zero | tr '\0' 'a'; printf '"}'; } >"$TMP/body50k.json"
# A uploads slowly (about 2.5 s); B arrives meanwhile and does not fit beside it.
curl -s -o "$TMP/a.body" -w '%{http_code}' --limit-rate 20K -H 'Content-Type: application/json' \
    --data-binary @"$TMP/body50k.json" "$URL_m/v1/embeddings" >"$TMP/a.code" &
A=$!; PIDS+=($A)
sleep 1
expect_status "second large body while the first uploads" 503 POST "$URL_m/v1/embeddings" -H 'Content-Type: application/json' --data-binary @"$TMP/body50k.json"
body_has "503 names --max-body-memory" 'max-body-memory'
wait $A || true
[ "$(cat "$TMP/a.code")" = 200 ] && ok "the first slow upload was served" || fail "slow upload got HTTP $(cat "$TMP/a.code"): $(head -c 200 "$TMP/a.body")"
expect_status "a large body fits again" 200 POST "$URL_m/v1/embeddings" -H 'Content-Type: application/json' --data-binary @"$TMP/body50k.json"

# (The batching policy itself is unit-tested in server.batching.)

# ---- request timeout ----
start_server t --request-timeout 0.3 --batch-wait-ms 1000
expect_status "request past --request-timeout" 504 POST "$URL_t/v1/embeddings" -H 'Content-Type: application/json' -d '{"input":"slow"}'
body_has "504 body" '"code":"timeout"'
expect_status "TEI request past --request-timeout" 504 POST "$URL_t/embed" -H 'Content-Type: application/json' -d '{"inputs":"slow"}'
body_has "504 TEI body" '"error_type":"Backend"'
expect_status "health after timeouts" 200 GET "$URL_t/health"

finish
