#!/usr/bin/env bash
# ik_llama.cpp beside mainline llama.cpp on a GPU box (reports/examples/ik-vs-mainline/): build
# both with CUDA from their pinned sources, sweep the same placements with each, check each sweep
# against the server's own timings and the engine's own benchmark, and compare the engines.
# Every stage is idempotent, so a second call on the same machine skips what is done.
# Budget it: on a 16-core H100 box (nvcc 13.0, sm_90a) the two CUDA builds side by side (-j 8 each)
# had done 140/362 (mainline) and 93/309 (ik) steps after 290 s: the whole run needs about 15-20
# minutes, more than one 10-minute call (the fork's IQK mmq template instances take 60-130 s each).
#
# Usage: scripts/ik_vs_mainline.sh STAGE... with STAGE in: setup build model sweep truth compare
# Env:   CACHE (builds, models, sweeps; default .cache; keep it outside a git checkout: the fork's
#        build info would otherwise read that repository's commit), ARCHS (default 90a), JOBS (per
#        build, default half the cores: both engines build at once), CARRY (the tarballs from
#        scripts/prepare_llama_cpp.sh and prepare_ik_llama_cpp.sh, default .carry), WHEELS (offline
#        wheels, default .whl), SWEEP_TIMEOUT (seconds per sweep, default 300), SPECS (the mainline
#        and the ik spec, default bench/specs/ik-vs-mainline.toml and ik-vs-mainline-ik.toml),
#        MAINLINE_TARGETS (default "llama-server llama-bench")
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=${CACHE:-$root/.cache}
out=$cache/out
archs=${ARCHS:-90a}
jobs=${JOBS:-$(( $(nproc) / 2 ))}
carry=${CARRY:-.carry}
wheels=${WHEELS:-.whl}
read -r spec_main spec_ik <<<"${SPECS:-bench/specs/ik-vs-mainline.toml bench/specs/ik-vs-mainline-ik.toml}"
mkdir -p "$out" "$cache/models"
export OMNI_MODEL_CACHE=$cache/models PYTHONUNBUFFERED=1
# shellcheck source=scripts/device_env.sh
. "$root/scripts/device_env.sh"   # py, PYTHONPATH with the wheelhouse, log, unpack_wheels

stage_setup() {
  log setup
  unpack_wheels
  "$py" -c "import pydantic, gguf, psutil, rich, pandas, jinja2; print('imports ok')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
  nvcc --version | tail -2 | tee "$out/nvcc.txt"
}

stage_build() {  # both at once, each with half the cores; each returns at once when already built
  log "build (CUDA $archs, -j $jobs each)"
  TARGETS=${MAINLINE_TARGETS:-llama-server llama-bench} JOBS=$jobs bash scripts/build_llama_cpp.sh \
    "$carry/llama.cpp.tar.gz" "$cache/mainline" "$archs" >"$out/build-mainline.txt" 2>&1 &
  local m=$!
  TARGETS="llama-server llama-sweep-bench" JOBS=$jobs bash scripts/build_llama_cpp.sh \
    "$carry/ik_llama.cpp.tar.gz" "$cache/ik" "$archs" >"$out/build-ik.txt" 2>&1 &
  local k=$!
  wait $m; echo "mainline rc=$?"; wait $k; echo "ik rc=$?"
  cat "$out/build-mainline.txt" "$out/build-ik.txt"
}

stage_model() {  # may run beside the build: it only needs the wheels (setup) and writes model.done
  log model
  "$py" - "$spec_main" <<'PY' | tee "$out/model.txt"
import sys, tomllib
from bench.genmodel.cache import ensure_model
from bench.genmodel.shape import ModelShape
gen = tomllib.load(open(sys.argv[1], "rb"))["server"]["generate"]
path = ensure_model(ModelShape(**gen))
print(path, path.stat().st_size)
PY
  touch "$cache/model.done"
}

stage_sweep() {  # an existing --out resumes, so a second call finishes an interrupted sweep
  log sweep
  PATH=$cache/mainline/bin:$PATH timeout "${SWEEP_TIMEOUT:-300}" "$py" -m bench sweep \
    "$spec_main" --out "$cache/sweep-mainline" --no-report 2>&1 | tail -3
  PATH=$cache/ik/bin:$PATH timeout "${SWEEP_TIMEOUT:-300}" "$py" -m bench sweep \
    "$spec_ik" --out "$cache/sweep-ik" --no-report 2>&1 | tail -3
}

stage_truth() {
  log "truth: client vs server timings vs llama-bench / llama-sweep-bench"
  "$py" -m benchmarks.truth "$cache/sweep-mainline" | tee "$out/truth-mainline.md"
  "$py" -m benchmarks.truth "$cache/sweep-ik" | tee "$out/truth-ik.md"
}

stage_compare() {
  log compare
  local dest=$cache/ik-vs-mainline
  "$py" -m bench report "$cache/sweep-mainline" >/dev/null && "$py" -m bench report "$cache/sweep-ik" >/dev/null
  "$py" -m benchmarks.compare_engines "$dest" "$cache/sweep-mainline" "$cache/sweep-ik" | tee "$out/compare.md"
  cp -r "$cache/sweep-mainline" "$cache/sweep-ik" "$dest/"  # each engine's own report beside the comparison
}

for stage in "$@"; do "stage_$stage" || echo "stage $stage failed rc=$?"; done
log done
