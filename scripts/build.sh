#!/usr/bin/env bash
# Configures and builds qembed into a build folder.
#   scripts/build.sh [release|asan|fuzz]   (default release -> build/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-release}
case "$mode" in
  release) dir="$root/build"; flags=() ;;
  asan)    dir="$root/build-asan"; flags=(-DQEMBED_SANITIZE=ON -DQEMBED_BENCH=OFF) ;;
  fuzz)    dir="$root/build-fuzz"; flags=(-DQEMBED_FUZZ=ON -DQEMBED_BENCH=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++) ;;
  *) echo "usage: scripts/build.sh [release|asan|fuzz]" >&2; exit 1 ;;
esac
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
