#!/usr/bin/env bash
# server.api: every endpoint answers; bad requests get the right 4xx with the
# right error shape, and the server keeps serving after each of them.
# Usage: test_api.sh QEMBED_BIN MODEL_DIR
source "$(dirname "$0")/lib.sh" "$@"

start_server api --max-body-bytes 64K --max-inputs 8 --max-tokens 16
# /health is 503 until the model is loaded and warmed up; whether a poll
# lands in that window depends on load speed, so it is reported, not asserted
# (start_server fails on any status other than 503 or 200).
[ -n "${LOADING503_api:-}" ] && echo "note: /health answered 503 while the model loaded" || echo "note: the model loaded before the first /health poll"
U=$URL_api
J=(-H 'Content-Type: application/json')

# ---- endpoints ----
expect_status "GET /health" 200 GET "$U/health"
expect_status "GET /v1/models" 200 GET "$U/v1/models"
body_has "models list" '"object":"list".*"object":"model"'
expect_status "GET /info" 200 GET "$U/info"
body_has "info has limits and version" '"limits":\{"max_body_bytes":65536,"max_inputs":8,"max_tokens":16'
body_has "info has placement" '"placement":'
expect_status "POST /v1/embeddings (string)" 200 POST "$U/v1/embeddings" "${J[@]}" -d '{"input":"hello world","model":"x"}'
body_has "embeddings response shape" '^\{"object":"list","data":\[\{"object":"embedding","index":0,"embedding":\[.*\]\}\],"model":".*","usage":\{"prompt_tokens":[0-9]+,"total_tokens":[0-9]+\}\}$'
expect_status "POST /v1/embeddings (4 strings, base64)" 200 POST "$U/v1/embeddings" "${J[@]}" -d '{"input":["a","b","c","d"],"encoding_format":"base64","user":"u1"}'
body_has "four base64 rows in order" '"index":0,"embedding":"[A-Za-z0-9+/=]+"\}.*"index":1,.*"index":2,.*"index":3,'
expect_status "POST /v1/embeddings (dimensions 32)" 200 POST "$U/v1/embeddings" "${J[@]}" -d '{"input":"hello","dimensions":32}'
n=$(grep -o '"embedding":\[[^]]*\]' "$TMP/body" | tr ',' '\n' | wc -l)
[ "$n" = 32 ] && ok "dimensions 32 gives 32 values" || fail "dimensions 32 gave $n values"
expect_status "POST /v1/embeddings (token ids)" 200 POST "$U/v1/embeddings" "${J[@]}" -d '{"input":[[9707,1879,151643],[9707]]}'
body_has "token-id usage counts the ids" '"prompt_tokens":4,'
expect_status "POST /embed (TEI)" 200 POST "$U/embed" "${J[@]}" -d '{"inputs":["hello","world"],"normalize":false}'
body_has "TEI shape: array of arrays" '^\[\[[-0-9.e]+(,[-0-9.e]+)*\],\[[-0-9.e]+(,[-0-9.e]+)*\]\]$'
expect_status "POST /embed (prompt_name query)" 200 POST "$U/embed" "${J[@]}" -d '{"inputs":"what is x","prompt_name":"query","truncate":true}'
expect_status "POST /tokenize" 200 POST "$U/tokenize" "${J[@]}" -d '{"inputs":"hello world"}'
body_has "tokenize ends with <|endoftext|> as special" '"id":151643,"text":"<\|endoftext\|>","special":true'
# Special-token strings in user text are plain text by default.
expect_status "POST /tokenize special text" 200 POST "$U/tokenize" "${J[@]}" -d '{"inputs":"a<|endoftext|>b","add_special_tokens":false}'
if grep -q '"id":151643' "$TMP/body"; then fail "<|endoftext|> in user text became the special token"; else ok "<|endoftext|> in user text is plain text"; fi
expect_status "GET /metrics" 200 GET "$U/metrics"
body_has "metrics: requests by endpoint and status" 'qembed_requests_total\{endpoint="/v1/embeddings",status="200"\} [1-9]'
body_has "metrics: latency histogram" 'qembed_request_duration_seconds_bucket\{endpoint="/v1/embeddings",le="\+Inf"\}'
body_has "metrics: batch-size histogram" 'qembed_batch_size_bucket\{le="1"\}'
body_has "metrics: tokens embedded" 'qembed_tokens_embedded_total [1-9]'
body_has "metrics: queue depth" 'qembed_queue_depth 0'
body_has "metrics: inference time" 'qembed_inference_seconds_count [1-9]'

# ---- bad requests: status, error shape, and still serving ----
good() { # the server must still answer a good request after each bad one
    local s; s=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/v1/embeddings" "${J[@]}" -d '{"input":"still here"}' || echo 000)
    [ "$s" = 200 ] || fail "server stopped serving after: $1 (got $s)"
}
bad() { # bad WHAT STATUS PATTERN METHOD URL curl-args...
    local what=$1 want=$2 pat=$3; shift 3
    expect_status "$what" "$want" "$@"
    body_has "$what: error body" "$pat"
    good "$what"
}
OAI='^\{"error":\{"message":"([^"\\]|\\.)+","type":"[a-z_]+","param":(null|"[a-z_]*"),"code":(null|"[a-z_]+")\}\}$'
TEI='^\{"error":"([^"\\]|\\.)+","error_type":"[A-Za-z]+"\}$'
bad "invalid JSON" 400 "$OAI" POST "$U/v1/embeddings" "${J[@]}" -d '{"input": "abc"'
bad "trailing garbage" 400 "$OAI" POST "$U/v1/embeddings" "${J[@]}" -d '{"input": "abc"} x'
bad "body not an object" 400 "$OAI" POST "$U/v1/embeddings" "${J[@]}" -d '["abc"]'
bad "empty body" 400 "$OAI" POST "$U/v1/embeddings" "${J[@]}"
bad "missing input" 400 'missing required field' POST "$U/v1/embeddings" "${J[@]}" -d '{"model":"m"}'
bad "input is a number" 400 '"param":"input"' POST "$U/v1/embeddings" "${J[@]}" -d '{"input":5}'
bad "input is an object" 400 "$OAI" POST "$U/v1/embeddings" "${J[@]}" -d '{"input":{"a":1}}'
bad "empty string" 400 'input\[0\] is an empty string' POST "$U/v1/embeddings" "${J[@]}" -d '{"input":""}'
bad "empty array" 400 'empty array' POST "$U/v1/embeddings" "${J[@]}" -d '{"input":[]}'
bad "empty token list" 400 'input\[0\] is an empty array' POST "$U/v1/embeddings" "${J[@]}" -d '{"input":[[]]}'
bad "mixed array" 400 'input\[1\] must be a string' POST "$U/v1/embeddings" "${J[@]}" -d '{"input":["a",1]}'
bad "token id out of range" 400 'out of range' POST "$U/v1/embeddings" "${J[@]}" -d '{"input":[[1,2,999999999]]}'
bad "token id not an integer" 400 'must be an integer' POST "$U/v1/embeddings" "${J[@]}" -d '{"input":[1.5]}'
bad "model not a string" 400 '"param":"model"' POST "$U/v1/embeddings" "${J[@]}" -d '{"input":"a","model":3}'
bad "bad encoding_format" 400 '"param":"encoding_format"' POST "$U/v1/embeddings" "${J[@]}" -d '{"input":"a","encoding_format":"hex"}'
bad "dimensions too small" 400 '"param":"dimensions"' POST "$U/v1/embeddings" "${J[@]}" -d '{"input":"a","dimensions":0}'
bad "dimensions too large" 400 '"param":"dimensions"' POST "$U/v1/embeddings" "${J[@]}" -d '{"input":"a","dimensions":100000}'
bad "escaped NUL" 400 'NUL' POST "$U/v1/embeddings" "${J[@]}" -d '{"input":"a\u0000b"}'
printf '{"input":["ok","ab\xff\xfe"]}' >"$TMP/badutf8.json"
bad "invalid UTF-8 names index and offset" 400 'input\[1\] is not valid UTF-8 \(byte offset 2\)' POST "$U/v1/embeddings" "${J[@]}" --data-binary @"$TMP/badutf8.json"
printf '{"input":["\xed\xa0\x80"]}' >"$TMP/surrogate.json"
bad "UTF-8 surrogate" 400 'input\[0\] is not valid UTF-8 \(byte offset 0\)' POST "$U/v1/embeddings" "${J[@]}" --data-binary @"$TMP/surrogate.json"
bad "too many inputs" 413 'limit is 8' POST "$U/v1/embeddings" "${J[@]}" -d '{"input":["1","2","3","4","5","6","7","8","9"]}'
long=$(printf 'word %.0s' $(seq 1 60))
bad "over-long input" 400 'more than the limit of 16' POST "$U/v1/embeddings" "${J[@]}" -d "{\"input\":[\"short\",\"$long\"]}"
expect_status "over-long input with truncate" 200 POST "$U/v1/embeddings" "${J[@]}" -d "{\"input\":\"$long\",\"truncate\":true}"
body_has "truncated to 16 tokens" '"prompt_tokens":16,'
expect_status "TEI truncate Left" 200 POST "$U/embed" "${J[@]}" -d "{\"inputs\":\"$long\",\"truncate\":true,\"truncation_direction\":\"Left\"}"
bad "TEI bad truncation_direction" 400 "$TEI" POST "$U/embed" "${J[@]}" -d '{"inputs":"a","truncation_direction":"Up"}'
bad "TEI wrong type" 400 "$TEI" POST "$U/embed" "${J[@]}" -d '{"inputs":7}'
bad "TEI normalize not bool" 400 "$TEI" POST "$U/embed" "${J[@]}" -d '{"inputs":"a","normalize":"yes"}'
bad "tokenize wrong type" 400 "$TEI" POST "$U/tokenize" "${J[@]}" -d '{"inputs":[1]}'
head -c 100000 /dev/zero | tr '\0' 'a' >"$TMP/big.txt"
bad "huge body (Content-Length)" 413 'request_too_large' POST "$U/v1/embeddings" "${J[@]}" --data-binary @"$TMP/big.txt"
bad "huge body (chunked)" 413 'request_too_large' POST "$U/v1/embeddings" "${J[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/big.txt"
bad "unknown path" 404 'unknown_url' GET "$U/v2/nothing"
bad "unknown POST path" 404 "$OAI" POST "$U/v1/completions" "${J[@]}" -d '{}'
bad "GET on a POST endpoint" 405 'method_not_allowed' GET "$U/v1/embeddings"
bad "DELETE /health" 405 "$OAI" DELETE "$U/health"
bad "POST /v1/models" 405 "$OAI" POST "$U/v1/models" -d '{}'
expect_status "still healthy" 200 GET "$U/health"

# ---- API key (from the environment) ----
QEMBED_API_KEY=s3cret start_server auth
A=$URL_auth
bad_auth() {
    expect_status "$1" 401 "${@:2}"
    body_has "$1: error" 'invalid_api_key|"error_type":"Unauthorized"'
}
bad_auth "no key" POST "$A/v1/embeddings" "${J[@]}" -d '{"input":"a"}'
bad_auth "wrong key" POST "$A/v1/embeddings" "${J[@]}" -H 'Authorization: Bearer s3cre' -d '{"input":"a"}'
bad_auth "longer wrong key" POST "$A/v1/embeddings" "${J[@]}" -H 'Authorization: Bearer s3cret!' -d '{"input":"a"}'
bad_auth "not Bearer" POST "$A/v1/embeddings" "${J[@]}" -H 'Authorization: Basic s3cret' -d '{"input":"a"}'
bad_auth "TEI no key" POST "$A/embed" "${J[@]}" -d '{"inputs":"a"}'
bad_auth "metrics no key" GET "$A/metrics"
expect_status "right key" 200 POST "$A/v1/embeddings" "${J[@]}" -H 'Authorization: Bearer s3cret' -d '{"input":"a"}'
expect_status "health needs no key" 200 GET "$A/health"

finish
