#!/usr/bin/env bash
# Pack llama.cpp's source into a small tarball for a machine with no internet (a GPU box, the lab).
# Why: the llama-cpp-python sdist on PyPI vendors the full llama.cpp tree, so pip can fetch a
# pinned llama.cpp where git cannot; trimmed of docs, vocab files and UI sources it packs to ~9 MB.
# Usage: scripts/prepare_llama_cpp.sh [OUT.tar.gz] [LLAMA_CPP_PYTHON_VERSION]
# Env: PYTHON=path of a python with pip (default python3; Debian's python3 may lack pip).
set -euo pipefail
out=${1:-.carry/llama.cpp.tar.gz}
version=${2:-0.3.36}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"
echo "fetching llama-cpp-python==$version sdist ..."
"${PYTHON:-python3}" -m pip download -q --no-deps --no-binary llama-cpp-python -d "$work" "llama-cpp-python==$version"
tar xzf "$work"/llama_cpp_python-"$version".tar.gz -C "$work"
src="$work/llama_cpp_python-$version/vendor/llama.cpp"
[ -f "$src/CMakeLists.txt" ] || { echo "error: $src has no CMakeLists.txt: the sdist layout changed, pick another version" >&2; exit 1; }
rm -rf "$src/.git" "$src/.github" "$src/docs" "$src/media"
find "$src/models" -name '*.gguf' -delete
# keep only what CMake needs from the UI (LLAMA_USE_PREBUILT_UI=OFF builds without the web assets)
find "$src/tools/ui" -mindepth 1 -maxdepth 1 ! -name CMakeLists.txt ! -name '*.in' ! -name '*.cmake' -exec rm -rf {} +
printf 'source=llama-cpp-python==%s (vendor/llama.cpp)\nbuild_commit=lcp-%s\nprepared=%s\n' \
  "$version" "$version" "$(date -u +%FT%TZ)" >"$src/OMNI_SOURCE"
tar czf "$out" -C "$src/.." llama.cpp
echo "wrote $out ($(du -h "$out" | cut -f1), sha256 $(sha256sum "$out" | cut -c1-16)...)"
