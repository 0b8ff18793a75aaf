#!/usr/bin/env bash
# Build llama-server and llama-bench with CUDA from a tarball made by prepare_llama_cpp.sh.
# Why a script: users with a GPU box need the exact same flags we benchmark with. Never set
# GGML_CUDA_NO_VMM=ON (a user measured a 3x slowdown from such builds).
# Usage: scripts/build_llama_cpp.sh TARBALL BUILD_DIR [CUDA_ARCHS]
#   CUDA_ARCHS: 90a (H100/H200), 120a (RTX 5090 / RTX PRO 6000 Blackwell), "90a;120a" for both.
# Env: OMNI_LLAMA_CPU_ONLY=1 builds without CUDA; JOBS=N parallel jobs (default nproc);
#   TARGETS="llama-server" builds only those CMake targets (default "llama-server llama-bench").
set -euo pipefail
tarball=${1:?usage: build_llama_cpp.sh TARBALL BUILD_DIR [CUDA_ARCHS]}
build=${2:?usage: build_llama_cpp.sh TARBALL BUILD_DIR [CUDA_ARCHS]}
archs=${3:-90a}
jobs=${JOBS:-$(nproc)}
read -ra targets <<<"${TARGETS:-llama-server llama-bench}"
[ -f "$tarball" ] || { echo "error: $tarball not found: run scripts/prepare_llama_cpp.sh first" >&2; exit 1; }
mkdir -p "$build"
build=$(cd "$build" && pwd)
built=1
for t in "${targets[@]}"; do [ -x "$build/bin/$t" ] || built=0; done
if [ "$built" = 1 ] && [ "$build/.stamp" -nt "$tarball" ]; then
  echo "${targets[*]} already built in $build/bin"; exit 0
fi
tar xzf "$tarball" -C "$build"
cuda=(-DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$archs")
[ "${OMNI_LLAMA_CPU_ONLY:-0}" = 1 ] && cuda=(-DGGML_CUDA=OFF)
commit=$(sed -n 's/^build_commit=//p' "$build/llama.cpp/OMNI_SOURCE")
start=$(date +%s)
cmake -S "$build/llama.cpp" -B "$build/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda[@]}" \
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_COMMIT="$commit" -DLLAMA_BUILD_NUMBER=0 >"$build/cmake.log" 2>&1 \
  || { tail -30 "$build/cmake.log" >&2; exit 1; }
cmake --build "$build/cmake" -j "$jobs" --target "${targets[@]}" >"$build/build.log" 2>&1 \
  || { tail -40 "$build/build.log" >&2; exit 1; }
mkdir -p "$build/bin"
cp -a "$build/cmake/bin/." "$build/bin/"
touch "$build/.stamp"
echo "built ${targets[*]} in $(( $(date +%s) - start )) s: $build/bin ($("$build/bin/llama-server" --version 2>&1 | head -2 | tr '\n' ' '))"
