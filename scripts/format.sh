#!/usr/bin/env bash
# Formats every C file of the project with the committed .clang-format (Debian's clang-format 14).
# The generated Unicode tables (src/tokenizer/nfc_tables.c, pretok_classes.c) stay as their generators
# in tools/gen/ write them. `scripts/format.sh --check` lists the files that differ and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
cf=$(command -v clang-format-14 || command -v clang-format)
mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v -E '^src/tokenizer/(nfc_tables|pretok_classes)\.c$')
if [ "${1:-}" = --check ]; then
  bad=0
  for f in "${files[@]}"; do "$cf" "$f" | cmp -s - "$f" || { echo "$f"; bad=1; }; done
  exit $bad
fi
"$cf" -i "${files[@]}"
