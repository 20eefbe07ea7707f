#!/usr/bin/env bash
# server.openai: the official openai npm client and curl against `qembed
# serve`; vectors equal `qembed embed`'s for the same inputs (cosine >= 0.99999).
# Usage: test_openai.sh QEMBED_BIN MODEL_DIR NODE_MODULES_DIR
source "$(dirname "$0")/lib.sh" "$1" "$2"
NM=${3:?node_modules dir}
command -v node >/dev/null || { echo "FAIL: node is missing (scripts/deps.sh installs it)" >&2; exit 1; }
[ -d "$NM/openai" ] || { echo "FAIL: $NM/openai is missing (run scripts/deps.sh: npm ci in tests/node)" >&2; exit 1; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

texts=("hello world" "The quick brown fox jumps over the lazy dog." "Ünïcödé text, 日本語のテキスト, and an emoji 🙂"
       "a much longer passage about embeddings: each input becomes one vector, and requests that arrive together share one forward pass"
       $'two\nlines' "x")
task="Given a web search query, retrieve relevant passages that answer the query"
printf '%s' "$task" >"$TMP/task.txt"
"$PY" -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${texts[@]}" >"$TMP/texts.json"
"$QEMBED" embed -q -m "$MODEL" -f json -o "$TMP/ref.json" "${texts[@]}" || { echo "FAIL: qembed embed failed" >&2; exit 1; }
"$QEMBED" embed -q -m "$MODEL" -f json --instruct "$task" -o "$TMP/ref_instr.json" "${texts[@]}" || { echo "FAIL: qembed embed --instruct failed" >&2; exit 1; }

start_server oai --api-key k3y --served-model-name qwen3-tiny-synth
U=$URL_oai

# ---- curl: float and base64 against the same reference ----
"$PY" -c 'import json,sys; print(json.dumps({"input": json.load(open(sys.argv[1])), "model": "m"}))' "$TMP/texts.json" >"$TMP/req.json"
for fmt in float base64; do
    "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); r["encoding_format"]=sys.argv[2]; print(json.dumps(r))' "$TMP/req.json" "$fmt" >"$TMP/req_$fmt.json"
    code=$(curl -s -o "$TMP/resp_$fmt.json" -w '%{http_code}' -H 'Authorization: Bearer k3y' -H 'Content-Type: application/json' \
        --data-binary @"$TMP/req_$fmt.json" "$U/v1/embeddings" || echo 000)
    [ "$code" = 200 ] || { fail "curl $fmt: HTTP $code"; continue; }
    if "$PY" - "$TMP/resp_$fmt.json" "$TMP/ref.json" "$fmt" <<'EOF'
import base64, json, math, struct, sys
resp = json.load(open(sys.argv[1])); ref = json.load(open(sys.argv[2])); fmt = sys.argv[3]
rows = resp["data"]
assert len(rows) == len(ref), (len(rows), len(ref))
worst = 1.0
for i, row in enumerate(rows):
    assert row["index"] == i and row["object"] == "embedding"
    v = row["embedding"]
    if fmt == "base64":
        raw = base64.b64decode(v); v = list(struct.unpack("<%df" % (len(raw) // 4), raw))
    w = ref[i]
    assert len(v) == len(w), (len(v), len(w))
    c = sum(a * b for a, b in zip(v, w)) / math.sqrt(sum(a * a for a in v) * sum(b * b for b in w))
    worst = min(worst, c)
print("min cosine %.7f" % worst)
sys.exit(0 if worst >= 0.99999 else 1)
EOF
    then ok "curl $fmt equals qembed embed"; else fail "curl $fmt differs from qembed embed"; fi
done

# ---- curl, TEI /embed: plain, and prompt_name "query" (the model's
# sentence-transformers prompt is "Instruct: <task>\nQuery:", so it must
# equal `qembed embed --instruct <task>`) ----
cmp_tei() { # cmp_tei WHAT REQUEST_JSON REF
    local code
    code=$(curl -s -o "$TMP/tei.json" -w '%{http_code}' -H 'Authorization: Bearer k3y' -H 'Content-Type: application/json' \
        --data-binary "$2" "$U/embed" || echo 000)
    [ "$code" = 200 ] || { fail "$1: HTTP $code"; return; }
    if "$PY" - "$TMP/tei.json" "$3" <<'EOF2'
import json, math, sys
got = json.load(open(sys.argv[1])); ref = json.load(open(sys.argv[2]))
assert len(got) == len(ref)
w = min(sum(a * b for a, b in zip(v, r)) / math.sqrt(sum(a * a for a in v) * sum(b * b for b in r)) for v, r in zip(got, ref))
print("min cosine %.7f" % w); sys.exit(0 if w >= 0.99999 else 1)
EOF2
    then ok "$1 equals qembed embed"; else fail "$1 differs from qembed embed"; fi
}
cmp_tei "TEI /embed" "$("$PY" -c 'import json,sys; print(json.dumps({"inputs": json.load(open(sys.argv[1]))}))' "$TMP/texts.json")" "$TMP/ref.json"
cmp_tei "TEI /embed prompt_name=query" "$("$PY" -c 'import json,sys; print(json.dumps({"inputs": json.load(open(sys.argv[1])), "prompt_name": "query"}))' "$TMP/texts.json")" "$TMP/ref_instr.json"
grep -q 'retrieve relevant passages' "$MODEL/config_sentence_transformers.json" || fail "the model's query prompt is not the task this test assumes"

# ---- the openai client ----
if node "$(dirname "$0")/openai_client.mjs" "$NM" "$U/v1" k3y "$TMP"; then ok "openai client"; else fail "openai client"; fi

finish
