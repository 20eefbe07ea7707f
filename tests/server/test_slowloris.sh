#!/usr/bin/env bash
# server.slowloris (problem 3): more slow-header connections than
# --max-connections (each sends one byte a second, and reopens when closed)
# must not keep /health from answering: headers are due --header-timeout after
# the connection opens, however many bytes trickle in.
# Usage: test_slowloris.sh QEMBED_BIN MODEL_DIR
source "$(dirname "$0")/lib.sh" "$@"
start_server s --max-connections 16 --header-timeout 2
if /usr/bin/python3 "$(dirname "$0")/hostile.py" slowloris "$PORT_s" 24 15; then
    ok "/health served beside 24 slow connections (--max-connections 16)"
else
    fail "slowloris"
fi
expect_status "metrics" 200 GET "$URL_s/metrics"
body_has "header timeouts counted" 'qembed_rejected_total\{reason="header_timeout"\} [1-9]'
finish
