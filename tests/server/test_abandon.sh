#!/usr/bin/env bash
# server.abandon (problem 4): uploads that announce a large body, send most of
# it and close must give their body memory back (the next request is served,
# not 503 "too many request bodies"), and a client that hangs up while its
# request is queued has that work dropped.
# Usage: test_abandon.sh QEMBED_BIN MODEL_DIR
source "$(dirname "$0")/lib.sh" "$@"
PY=/usr/bin/python3
start_server a --max-body-bytes 2M --max-body-memory 4M --header-timeout 2 --min-body-rate 1K
if $PY "$(dirname "$0")/hostile.py" abandon "$PORT_a" 8 1500000; then ok "served after abandoned uploads"; else fail "abandoned uploads"; fi
for _ in $(seq 1 50); do
    [ "$(curl -s "$URL_a/metrics" | awk '/^qembed_body_bytes_held / {print $2}')" = 0 ] && break
    sleep 0.1
done
expect_status "metrics" 200 GET "$URL_a/metrics"
body_has "no body memory held after the uploads were abandoned" '^qembed_body_bytes_held 0$'

# A queued request whose client hangs up: its inputs are not run.
start_server w --batch-wait-ms 3000 --header-timeout 2
curl -s -o /dev/null --max-time 0.5 -H 'Content-Type: application/json' \
    -d '{"input":["gone 1","gone 2","gone 3"]}' "$URL_w/v1/embeddings" || true
for _ in $(seq 1 60); do
    [ "$(curl -s "$URL_w/metrics" | awk '/^qembed_queue_depth / {print $2}')" = 0 ] && break
    sleep 0.1
done
expect_status "metrics after the hang-up" 200 GET "$URL_w/metrics"
body_has "the abandoned job left the queue before its batch wait ended" '^qembed_queue_depth 0$'
body_has "its inputs were never run" '^qembed_inputs_embedded_total 0$'
body_has "counted as client_gone" 'qembed_rejected_total\{reason="client_gone"\} 1'
finish
