#!/bin/sh
# Tokenizer benchmark: builds the corpus (deterministic, ~11 MB: English
# prose, multilingual text, code), then tokenizes it single-threaded with
# qembed and with the reference (Hugging Face tokenizers via node) in one run.
#   bench/tokenizer/run_bench.sh <build-dir> [tokenizer.json] [reps]
# The build dir must have bench_tokenizer built:
#   cmake -S . -B build && make -C build bench_tokenizer
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:?usage: run_bench.sh build-dir [tokenizer.json] [reps]}
tok=${2:-$root/.deps/qwen3-tokenizer/tokenizer.json}
reps=${3:-3}
corpus=$build/bench-tokenizer-corpus
[ -f "$corpus/code.txt" ] || node "$here/gen_bench_corpus.js" "$corpus"
files="$corpus/english.txt $corpus/multilingual.txt $corpus/code.txt"
echo "tokenizer: $tok"
echo "machine: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/tokenizer/bench_tokenizer" "$tok" --reps "$reps" $files
RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false NODE_PATH="$root/tests/node/node_modules" \
  node "$here/ref_bench.js" "$tok" --reps "$reps" $files
