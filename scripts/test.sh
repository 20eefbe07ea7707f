#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test.
#   scripts/test.sh            normal build (build/)
#   scripts/test.sh --asan     the same suite under AddressSanitizer + UBSan (build-asan/)
#   scripts/test.sh --fuzz     the libFuzzer targets, each for a bounded time (build-fuzz/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=release
case "${1:-}" in
  "") ;;
  --asan) mode=asan ;;
  --fuzz) mode=fuzz ;;
  *) echo "usage: scripts/test.sh [--asan|--fuzz]" >&2; exit 1 ;;
esac
bash scripts/deps.sh
# The model tests write about 3 GB (synthetic 0.6B checkpoints and the files
# derived from them): say so before a full disk turns into a failed write.
free_kb=$(df -Pk . | awk 'NR == 2 {print $4}')
if [ "${free_kb:-0}" -lt $((4 * 1024 * 1024)) ]; then
  echo "warning: $((free_kb / 1024)) MiB free here; the model tests need about 3 GB" >&2
fi
bash scripts/build.sh "$mode"
dir=build; [ "$mode" = asan ] && dir=build-asan; [ "$mode" = fuzz ] && dir=build-fuzz
if [ "$mode" = asan ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
label=()
[ "$mode" = fuzz ] && label=(-L fuzz --no-tests=error)
ctest --test-dir "$dir" --output-on-failure --timeout 900 "${label[@]}"
