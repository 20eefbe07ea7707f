# Shared helpers for the server tests (sourced by bash; set -euo pipefail).
# Every process a test starts is recorded and killed on exit, and its temp dir
# removed, whether the test passes or fails.
#
# Usage: source lib.sh QEMBED_BIN MODEL_DIR
set -euo pipefail

QEMBED=${1:?qembed binary}
MODEL=${2:?model directory}
shift 2 || true
[ -x "$QEMBED" ] || { echo "FAIL: qembed binary not found: $QEMBED" >&2; exit 1; }
[ -f "$MODEL/config.json" ] || { echo "FAIL: model not found: $MODEL (is shared/ beside the checkout?)" >&2; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl is missing (scripts/deps.sh installs it)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/qembed-server-test.XXXXXX")
PIDS=()
SERVER_PIDS=()
SERVER_NAMES=()
FAILS=0

cleanup() {
    local rc=$?
    # TERM first: a SIGKILLed nginx master leaves its workers behind as orphans.
    local p t
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for t in $(seq 1 30); do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ $rc -ne 0 ] || [ "$FAILS" -ne 0 ]; then
        for f in "$TMP"/*.log; do [ -f "$f" ] && { echo "---- $f (tail)"; tail -n 30 "$f"; }; done
    fi
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }
# Stops every server still running with SIGTERM and checks that it exits 0
# (under AddressSanitizer this is also where leaks are reported).
stop_servers() {
    local i
    for i in "${!SERVER_PIDS[@]}"; do
        local p=${SERVER_PIDS[$i]} n=${SERVER_NAMES[$i]}
        kill -0 "$p" 2>/dev/null || continue
        kill -TERM "$p"
        local rc=0
        wait "$p" || rc=$?
        if [ "$rc" = 0 ]; then ok "server $n: SIGTERM -> exit 0"; else fail "server $n: exit status $rc after SIGTERM (see $n.log)"; fi
    done
}
finish() {
    stop_servers
    if [ "$FAILS" -ne 0 ]; then echo "$FAILS check(s) failed" >&2; exit 1; fi
    echo "all checks passed"
}

# start_server NAME [serve options...]: starts `qembed serve` on a free
# loopback port, waits (bounded) until /health is 200, and sets
# PORT_<NAME>, PID_<NAME>, URL_<NAME>. Logs go to $TMP/NAME.log.
start_server() {
    local name=$1; shift
    local pf="$TMP/$name.port"
    rm -f "$pf"
    "$QEMBED" serve -m "$MODEL" --port 0 --port-file "$pf" "$@" >"$TMP/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    SERVER_PIDS+=("$pid")
    SERVER_NAMES+=("$name")
    local i port=""
    for i in $(seq 1 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "FAIL: server $name exited during start-up" >&2; tail -n 20 "$TMP/$name.log" >&2; exit 1
        fi
        if [ -z "$port" ] && [ -s "$pf" ]; then port=$(cat "$pf"); fi
        local hs=000
        [ -n "$port" ] && hs=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" || echo 000)
        case $hs in
            000) ;;
            503) printf -v "LOADING503_$name" '%s' 1 ;;
            200) ;;
            *) fail "server $name: /health answered $hs during start-up (want 503 then 200)" ;;
        esac
        if [ "$hs" = 200 ]; then
            printf -v "PORT_$name" '%s' "$port"
            printf -v "PID_$name" '%s' "$pid"
            printf -v "URL_$name" '%s' "http://127.0.0.1:$port"
            return 0
        fi
        sleep 0.1
    done
    echo "FAIL: server $name not healthy after 60 s" >&2; tail -n 20 "$TMP/$name.log" >&2; exit 1
}

# http METHOD URL [curl args...]: prints the status code; the body goes to $TMP/body.
http() {
    local m=$1 u=$2; shift 2
    curl -s -o "$TMP/body" -w '%{http_code}' -X "$m" "$u" "$@" || echo "000"
}

# expect_status WHAT WANT METHOD URL [curl args...]
expect_status() {
    local what=$1 want=$2; shift 2
    local got
    got=$(http "$@")
    if [ "$got" = "$want" ]; then ok "$what -> $got"; else fail "$what: want HTTP $want, got $got: $(head -c 300 "$TMP/body")"; fi
}

# body_has WHAT PATTERN (grep -E on the last body)
body_has() {
    if grep -qE -- "$2" "$TMP/body"; then ok "$1"; else fail "$1: body lacks /$2/: $(head -c 300 "$TMP/body")"; fi
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
