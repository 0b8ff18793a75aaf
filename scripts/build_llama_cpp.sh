#!/usr/bin/env bash
# Build llama-server (and benchmarks) from a tarball made by prepare_llama_cpp.sh (mainline
# llama.cpp) or prepare_ik_llama_cpp.sh (the ik_llama.cpp fork): one script, the same flags.
# Why a script: users with a GPU box need the exact same flags we benchmark with. Never set
# GGML_CUDA_NO_VMM=ON (a user measured a 3x slowdown from such builds).
# Usage: scripts/build_llama_cpp.sh TARBALL BUILD_DIR [CUDA_ARCHS]
#   CUDA_ARCHS: 90a (H100/H200), 120a (RTX 5090 / RTX PRO 6000 Blackwell), "90a;120a" for both.
# Env: OMNI_LLAMA_CPU_ONLY=1 builds without CUDA; JOBS=N parallel jobs (default nproc);
#   TARGETS="llama-server" builds only those CMake targets (default "llama-server llama-bench",
#   plus llama-sweep-bench for ik_llama.cpp); CMAKE_EXTRA="-DX=Y ..." more configure flags;
#   OMNI_LLAMA_TEST_BUILD=1 a portable, lightly optimised CPU binary for tests (see below).
set -euo pipefail
tarball=${1:?usage: build_llama_cpp.sh TARBALL BUILD_DIR [CUDA_ARCHS]}
build=${2:?usage: build_llama_cpp.sh TARBALL BUILD_DIR [CUDA_ARCHS]}
archs=${3:-90a}
jobs=${JOBS:-$(nproc)}
[ -f "$tarball" ] || { echo "error: $tarball not found: run scripts/prepare_llama_cpp.sh (or prepare_ik_llama_cpp.sh) first" >&2; exit 1; }
tree=$(tar tzf "$tarball" | awk -F/ 'NR == 1 {print $1}')  # llama.cpp or ik_llama.cpp
extra=()
case "$tree" in
  llama.cpp) default_targets="llama-server llama-bench"
    extra=(-DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_EXAMPLES=OFF) ;;
  ik_llama.cpp) default_targets="llama-server llama-sweep-bench llama-bench"
    # the fork keeps its server and sweep-bench under examples/: configure them, build only TARGETS
    extra=(-DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_CURL=OFF) ;;
  *) echo "error: $tarball holds $tree/, not llama.cpp/ or ik_llama.cpp/: make it with scripts/prepare_*llama_cpp.sh" >&2; exit 1 ;;
esac
read -ra targets <<<"${TARGETS:-$default_targets}"
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
if [ "${OMNI_LLAMA_TEST_BUILD:-0}" = 1 ]; then
  # Tests serve a 5 MB model: compile time matters, speed does not. Portable AVX2 code (the
  # binary also runs on a CI runner other than the one that built it) at -O1; for the fork, only
  # the f16/q8_0 iqk flash-attention kernels (GGML_IQK_FLASH_ATTENTION=OFF does not link in
  # ik-llama-cpp-python 0.1.5: ggml.c calls iqk_flash_attn_noalibi regardless). Never measure with it.
  extra+=(-DGGML_NATIVE=OFF -DGGML_IQK_FA_ALL_QUANTS=OFF "-DCMAKE_C_FLAGS_RELEASE=-O1 -DNDEBUG"
          "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG")
fi
read -ra more <<<"${CMAKE_EXTRA:-}"
commit=$(sed -n 's/^build_commit=//p' "$build/$tree/OMNI_SOURCE")
start=$(date +%s)
cmake -S "$build/$tree" -B "$build/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda[@]}" \
  -DLLAMA_BUILD_TESTS=OFF "${extra[@]}" "${more[@]}" \
  -DLLAMA_BUILD_COMMIT="$commit" -DLLAMA_BUILD_NUMBER=0 >"$build/cmake.log" 2>&1 \
  || { tail -30 "$build/cmake.log" >&2; exit 1; }
cmake --build "$build/cmake" -j "$jobs" --target "${targets[@]}" >"$build/build.log" 2>&1 \
  || { tail -40 "$build/build.log" >&2; exit 1; }
mkdir -p "$build/bin"
cp -a "$build/cmake/bin/." "$build/bin/"
touch "$build/.stamp"
echo "built ${targets[*]} in $(( $(date +%s) - start )) s: $build/bin ($("$build/bin/llama-server" --version 2>&1 | head -2 | tr '\n' ' '))"
