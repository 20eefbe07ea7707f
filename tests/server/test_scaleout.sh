#!/usr/bin/env bash
# server.scaleout: two `qembed serve` replicas behind nginx (its own config in
# a temp dir, loopback ports); one replica is killed (SIGKILL) during a wrk
# load run through nginx, and the clients see no failed request: nginx
# retries on the other replica (proxy_next_upstream error timeout http_502
# http_503 non_idempotent; POST needs non_idempotent, and embedding requests
# are safe to repeat). Usage: test_scaleout.sh QEMBED_BIN MODEL_DIR
source "$(dirname "$0")/lib.sh" "$@"
command -v wrk >/dev/null || { echo "FAIL: wrk is missing (scripts/deps.sh installs it)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "FAIL: nginx is missing (scripts/deps.sh installs it)" >&2; exit 1; }
SECS=${QEMBED_LOAD_SECONDS:-10}
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3

start_server a
start_server b
# A free loopback port for nginx (nginx cannot bind port 0).
NPORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<CONF
worker_processes 1;
error_log $TMP/nginx-error.log warn;
pid $TMP/nginx/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    upstream qembed {
        server 127.0.0.1:$PORT_a max_fails=1 fail_timeout=30s;
        server 127.0.0.1:$PORT_b max_fails=1 fail_timeout=30s;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$NPORT;
        location / {
            proxy_pass http://qembed;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
        }
    }
}
CONF
"$NGINX" -e "$TMP/nginx-error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' >"$TMP/nginx.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NPORT/health")" = 200 ] && break
    sleep 0.1
done
expect_status "health through nginx" 200 GET "http://127.0.0.1:$NPORT/health"

wrk -t2 -c64 -d"${SECS}s" --timeout 10s -s "$(dirname "$0")/post.lua" "http://127.0.0.1:$NPORT/v1/embeddings" >"$TMP/wrk.txt" 2>&1 &
WRK=$!; PIDS+=($WRK)
sleep $((SECS / 3))
sa=$(curl -s "$URL_a/metrics" | awk '/^qembed_requests_total\{endpoint="\/v1\/embeddings",status="200"\}/ {print $2}')
kill -9 "$PID_a"
ok "replica a killed (SIGKILL) mid-run after serving ${sa:-0} requests"
wait "$WRK" || fail "wrk exited non-zero"
cat "$TMP/wrk.txt"
reqs=$(awk '/requests in/ {print $1}' "$TMP/wrk.txt")
[ -n "$reqs" ] && [ "$reqs" -gt 0 ] && ok "$reqs requests through nginx" || fail "no requests completed"
if grep -q 'Non-2xx' "$TMP/wrk.txt"; then fail "clients saw failures: $(grep Non-2xx "$TMP/wrk.txt")"; else ok "zero non-2xx responses at the client"; fi
if grep -q 'Socket errors' "$TMP/wrk.txt"; then fail "socket errors: $(grep 'Socket errors' "$TMP/wrk.txt")"; else ok "zero socket errors at the client"; fi
[ "${sa:-0}" -gt 0 ] && ok "both replicas served (a: $sa before the kill)" || fail "replica a served nothing before the kill"
# The kill must have hit nginx's traffic (else this test proved nothing).
if grep -qE 'connect\(\) failed|prematurely closed|reset by peer|upstream' "$TMP/nginx-error.log"; then
    ok "nginx saw replica a fail and retried: $(grep -cE 'upstream' "$TMP/nginx-error.log") upstream error line(s)"
else
    fail "nginx logged no upstream error: the kill did not hit any request"
fi
sb=$(curl -s "$URL_b/metrics" | awk '/^qembed_requests_total\{endpoint="\/v1\/embeddings",status="200"\}/ {print $2}')
[ "${sb:-0}" -gt 0 ] && ok "replica b served $sb requests" || fail "replica b served nothing"

finish
