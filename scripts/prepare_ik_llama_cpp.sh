#!/usr/bin/env bash
# Pack ik_llama.cpp's source (the llama.cpp fork for MoE on CPU+GPU: -fmoe, -rtr, -mla, IQ*_K
# quants, llama-sweep-bench) into a small tarball for scripts/build_llama_cpp.sh.
# Why this sdist: ik-llama-cpp-python vendors the whole ik_llama.cpp tree, server included, so pip
# fetches a pinned fork where git cannot; its sha256 is pinned so a re-upload cannot slip in.
# Usage: scripts/prepare_ik_llama_cpp.sh [OUT.tar.gz]
# Env: PYTHON=path of a python with pip (default python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/llama_source.sh
. "$here/llama_source.sh"
out=${1:-.carry/ik_llama.cpp.tar.gz}
version=0.1.5
sha256=33c67eb99e4dcab5e611050433243815709b8b3067753f9ce18375013cf002ad  # observed 2026-12-06

trim_source() {  # 42 MB sdist -> ~7 MB: no web-UI sources, Android/iOS demos, issue archive
  local src=$1 server=$1/examples/server
  rm -rf "$src/github-data" "$src/examples/llama.android" "$src/examples/llama.swiftui" "$src/tests"
  rm -rf "$src"/ggml/src/{kompute,kompute-shaders,vulkan-shaders,ggml-sycl,ggml-cann}  # backends we never enable
  # the server embeds public/index.html.gz and public_llamacpp/{index_llamacpp.html.gz,loading.html}
  rm -rf "$server"/{webui,webui_llamacpp,public_legacy,public_mikupad,public_simplechat,themes,tests,bench}
  find "$server/public" -mindepth 1 ! -name index.html.gz -delete
  find "$server/public_llamacpp" -mindepth 1 ! -name index_llamacpp.html.gz ! -name loading.html -delete
  # the sdist lacks the script that writes common/build-info.cpp; without it the build stops there
  mkdir -p "$src/common/cmake"
  cp "$here/ik_build_info.cmake" "$src/common/cmake/build-info-gen-cpp.cmake"
}
BUILD_COMMIT=ik-$version pack_vendored_source ik-llama-cpp-python "$version" vendor/ik_llama.cpp "$sha256" "$out"
