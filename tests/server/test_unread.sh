#!/usr/bin/env bash
# server.unread (problem 5): clients that send /tokenize with a large text and
# never read the answer (about 12 bytes out per byte in) hold at most
# --max-response-memory of responses together; past it, large answers are
# replaced by 503. The bound stated: response bytes held <= the limit, and
# the server's RSS grows by less than 4 x the limit (not checked under
# AddressSanitizer, whose quarantine keeps freed memory).
# Usage: test_unread.sh QEMBED_BIN MODEL_DIR
source "$(dirname "$0")/lib.sh" "$@"
start_server u --max-response-memory 8M --max-body-bytes 2M --idle-timeout 30
rss0=$(rss_kb "$PID_u")
SIG="$TMP/unread.sig"
UNREAD_SIGNAL="$SIG" UNREAD_HOLD_S=3 /usr/bin/python3 "$(dirname "$0")/hostile.py" unread "$PORT_u" 16 400000 &
HP=$!; PIDS+=($HP)
for _ in $(seq 1 300); do [ -e "$SIG" ] && break; sleep 0.1; done
[ -e "$SIG" ] || fail "the non-reading clients did not get going"
rss1=$(rss_kb "$PID_u")
held=$(curl -s "$URL_u/metrics" | awk '/^qembed_response_bytes_held / {print $2}')
refused=$(curl -s "$URL_u/metrics" | awk -F' ' '/reason="response_memory"/ {print $2}')
touch "$SIG.done"
wait $HP && ok "/health answered beside the non-reading clients" || fail "hostile client checks"
echo "RSS before ${rss0} KiB, beside 16 non-reading clients ${rss1} KiB; response bytes held ${held}; refused ${refused}"
[ -n "$held" ] && [ "$held" -le $((8 << 20)) ] && ok "response bytes held ($held) <= --max-response-memory" || fail "response bytes held: '$held'"
[ -n "$refused" ] && [ "$refused" -ge 1 ] && ok "$refused large answers refused 503 past the limit" || fail "no answer refused for response memory: '$refused'"
if [ -n "${ASAN_OPTIONS:-}" ] || nm -D "$QEMBED" 2>/dev/null | grep -q __asan_init; then
    ok "RSS not checked under AddressSanitizer (its quarantine keeps freed memory): grew by $((rss1 - rss0)) KiB"
else
    [ $((rss1 - rss0)) -lt $((4 * 8 << 10)) ] && ok "RSS grew by $((rss1 - rss0)) KiB (< 4 x the limit)" || fail "RSS grew by $((rss1 - rss0)) KiB"
fi
# The clients close with the answers unread: the answers' memory comes back
# now, not at --idle-timeout (30 s here).
for _ in $(seq 1 50); do
    h2=$(curl -s "$URL_u/metrics" | awk '/^qembed_response_bytes_held / {print $2}')
    [ "$h2" = 0 ] && break
    sleep 0.1
done
[ "$h2" = 0 ] && ok "no response bytes held once the clients closed" || fail "response bytes still held after the clients closed: $h2"
finish
