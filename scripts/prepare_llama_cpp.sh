#!/usr/bin/env bash
# Pack llama.cpp's source into a small tarball for a machine with no internet (a GPU box, the lab).
# Why: the llama-cpp-python sdist on PyPI vendors the full llama.cpp tree, so pip can fetch a
# pinned llama.cpp where git cannot; trimmed of docs, vocab files and UI sources it packs to ~9 MB.
# The default version's sdist is sha256-pinned; another version is fetched unpinned (say so).
# Usage: scripts/prepare_llama_cpp.sh [OUT.tar.gz] [LLAMA_CPP_PYTHON_VERSION]
# Env: PYTHON=path of a python with pip (default python3; Debian's python3 may lack pip).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/llama_source.sh
. "$here/llama_source.sh"
out=${1:-.carry/llama.cpp.tar.gz}
version=${2:-0.3.36}
sha256=-
if [ "$version" = 0.3.36 ]; then
  sha256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e  # observed 2026-12-06
else
  echo "note: llama-cpp-python $version has no pinned sha256 here; its bytes are not checked" >&2
fi

trim_source() {  # keep only what CMake needs from the UI (LLAMA_USE_PREBUILT_UI=OFF builds without it)
  find "$1/tools/ui" -mindepth 1 -maxdepth 1 ! -name CMakeLists.txt ! -name '*.in' ! -name '*.cmake' \
    -exec rm -rf {} +
}
BUILD_COMMIT=lcp-$version pack_vendored_source llama-cpp-python "$version" vendor/llama.cpp "$sha256" "$out"
