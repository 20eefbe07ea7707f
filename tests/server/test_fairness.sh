#!/usr/bin/env bash
# server.fairness (problem 1): forward passes are sized by time (measured at
# warm-up, --pass-seconds), so a short query sent beside a 2,000-input request
# rides in one of the next passes instead of waiting behind passes of the whole
# --max-batch-tokens. Checked without timing thresholds: the big request runs
# as many passes of at most the pass size /info reports, and the short queries
# are answered while the big request is still in the queue. (--pass-seconds
# 0.005 makes this small model's passes the size a 0.5 s target gives a large
# model; the figures for the README come from bench runs, not from here. The
# big request is ~400,000 tokens so that it outlasts the short queries on a
# fast CPU too: on AMX the tiny model runs ~450,000 tokens/s, and 2,000 inputs
# of 20 tokens were done before the second short query was sent.)
# Usage: test_fairness.sh QEMBED_BIN MODEL_DIR
source "$(dirname "$0")/lib.sh" "$@"
start_server f --pass-seconds 0.005 --max-queue-tokens 1000000
expect_status "info" 200 GET "$URL_f/info"
pt=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["limits"]["pass_tokens"])' "$TMP/body" 2>/dev/null || echo "")
[ -n "$pt" ] && ok "/info reports passes of at most $pt tokens" || fail "/info has no limits.pass_tokens"
/usr/bin/python3 -c 'import json; print(json.dumps({"input": ["document %d: " % i + "some words that make an input about two hundred tokens long, as a passage. " * 12 for i in range(2000)]}))' >"$TMP/big.json"
curl -s -o "$TMP/big.out" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$TMP/big.json" \
    "$URL_f/v1/embeddings" >"$TMP/big.code" &
BIG=$!; PIDS+=($BIG)
for _ in $(seq 1 200); do
    [ "$(curl -s "$URL_f/metrics" | awk '/^qembed_queue_depth / {print $2}')" = 1 ] && break
    sleep 0.02
done
beside=0
for i in 1 2 3 4 5; do
    c=$(curl -s -o "$TMP/s.out" -w '%{http_code}' -H 'Content-Type: application/json' -d "{\"input\":\"short query $i\"}" "$URL_f/v1/embeddings")
    d=$(curl -s "$URL_f/metrics" | awk '/^qembed_queue_depth / {print $2}')
    [ "$c" = 200 ] || fail "short query $i: HTTP $c"
    [ "$d" -ge 1 ] 2>/dev/null && beside=$((beside + 1))
done
wait $BIG || true
[ "$(cat "$TMP/big.code")" = 200 ] && ok "the 2,000-input request was served" || fail "big request: HTTP $(cat "$TMP/big.code")"
[ "$beside" -ge 3 ] && ok "$beside of 5 short queries answered while the big request was still queued" || fail "only $beside of 5 short queries answered before the big request finished"
curl -s "$URL_f/metrics" >"$TMP/m"
passes=$(awk '/^qembed_batches_total / {print $2}' "$TMP/m")
tokens=$(awk '/^qembed_tokens_embedded_total / {print $2}' "$TMP/m")
echo "$passes passes, $tokens tokens, pass size $pt"
[ -n "$pt" ] && [ -n "$passes" ] && [ "$passes" -ge $(( (tokens - 2000) / pt )) ] && ok "$passes passes for $tokens tokens (at most $pt each)" || fail "$passes passes for $tokens tokens, pass size '$pt'"
finish
