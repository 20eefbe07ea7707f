#!/usr/bin/env bash
# The main job on a default model: installs what is missing, builds, then embeds
# two queries and two documents (the Qwen3-Embedding model card's example) and
# prints their similarity scores.
#
# The model: the one you name (-m DIR|REPO, or QEMBED_MODEL / PAPR_COREML_MODEL /
# PAPR_EMBEDDING_MODEL), else Qwen/Qwen3-Embedding-0.6B from your Hugging Face
# cache, else a synthetic model with the real 0.6B shape and RANDOM weights,
# generated once into models/synth-0.6b (its vectors and scores mean nothing;
# it is there so that everything runs on a machine without real weights).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh
bash scripts/build.sh release >/dev/null
echo "built: build/qembed ($(build/qembed --version))"

model_args=("$@")
hf_hub=${HF_HUB_CACHE:-${HF_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/huggingface}/hub}
if [ ${#model_args[@]} -eq 0 ] && [ -z "${QEMBED_MODEL:-}${PAPR_COREML_MODEL:-}${PAPR_EMBEDDING_MODEL:-}" ] &&
   [ ! -d "$hf_hub/models--Qwen--Qwen3-Embedding-0.6B/snapshots" ]; then
  if [ ! -f models/synth-0.6b/model.safetensors ]; then
    echo "No real Qwen3-Embedding model found; generating a synthetic one (random weights) in models/synth-0.6b"
    build/qembed-synth --preset 0.6b -o models/synth-0.6b
  fi
  model_args=(-m models/synth-0.6b)
fi

task="Given a web search query, retrieve relevant passages that answer the query"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
build/qembed embed "${model_args[@]}" --instruct "$task" -o "$out/q.npy" \
  "What is the capital of China?" "Explain gravity"
build/qembed embed "${model_args[@]}" -q -o "$out/d.npy" \
  "The capital of China is Beijing." \
  "Gravity is a force that attracts two bodies towards each other. It gives weight to physical objects and is responsible for the movement of planets around the sun."
/usr/bin/python3 - "$out" <<'PY'
import sys, numpy as np
q = np.load(sys.argv[1] + "/q.npy"); d = np.load(sys.argv[1] + "/d.npy")
print(f"queries {q.shape}, documents {d.shape}; scores (query x document):")
print(np.array2string(q @ d.T, precision=4))
PY
