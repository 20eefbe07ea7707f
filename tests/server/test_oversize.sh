#!/usr/bin/env bash
# server.oversize (problem 2): a request with more tokens than the queue may
# ever hold (--max-request-tokens, default --max-queue-tokens) is refused 413
# with the limit named, before any compute; requests within it are served.
# Usage: test_oversize.sh QEMBED_BIN MODEL_DIR
source "$(dirname "$0")/lib.sh" "$@"
start_server o --max-queue-tokens 2000
/usr/bin/python3 -c 'import json; print(json.dumps({"input": ["word number %d and more" % i for i in range(400)]}))' >"$TMP/big.json"
expect_status "a request larger than the whole queue" 413 POST "$URL_o/v1/embeddings" -H 'Content-Type: application/json' --data-binary @"$TMP/big.json"
body_has "413 names the limit" 'limit is 2000 per request \(--max-request-tokens\)'
expect_status "metrics" 200 GET "$URL_o/metrics"
body_has "no forward pass ran for it" '^qembed_inputs_embedded_total 0$'
expect_status "a request within the limit" 200 POST "$URL_o/v1/embeddings" -H 'Content-Type: application/json' -d '{"input":["a","b"]}'
start_server p --max-request-tokens 50
expect_status "--max-request-tokens" 413 POST "$URL_p/embed" -H 'Content-Type: application/json' --data-binary '{"inputs":["'"$(printf 'word %.0s' $(seq 1 80))"'"]}'
body_has "TEI-style 413" '"error_type":"Validation"'
finish
