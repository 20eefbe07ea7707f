#!/usr/bin/env bash
# server.framing (issue: problem 7): conflicting or repeated Content-Length,
# Transfer-Encoding with Content-Length, unknown codings, NUL/control bytes in
# the target or headers, and non-HTTP bytes get 400/501 and a closed
# connection, never a second request from the same bytes; then a bounded
# fuzz of raw request bytes, after which the server still answers.
# Usage: test_framing.sh QEMBED_BIN MODEL_DIR
source "$(dirname "$0")/lib.sh" "$@"
PY=/usr/bin/python3
H="$(dirname "$0")/hostile.py"

start_server f --header-timeout 2 --min-body-rate 1K
if $PY "$H" framing "$PORT_f" 6; then ok "framing cases"; else fail "framing cases (see above)"; fi
expect_status "metrics" 200 GET "$URL_f/metrics"
body_has "bad framing counted" 'qembed_rejected_total\{reason="bad_framing"\} [1-9]'
if $PY "$H" fuzz "$PORT_f" "${QEMBED_HTTP_FUZZ_SECONDS:-10}" 1; then ok "raw-byte fuzz"; else fail "raw-byte fuzz"; fi
expect_status "a normal request after the fuzz" 200 POST "$URL_f/v1/embeddings" -H 'Content-Type: application/json' -d '{"input":"after"}'
finish
