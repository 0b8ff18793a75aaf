#!/usr/bin/env bash
# ik_llama.cpp beside mainline llama.cpp on a GPU box (reports/examples/ik-vs-mainline/): build
# both with CUDA from their pinned sources, sweep the same placements with each, check each sweep
# against the server's own timings and the engine's own benchmark, and compare the engines.
# Every stage is idempotent, so a second call on the same machine skips what is done.
# Budget it: on a 16-core H100 box (nvcc 13.0, sm_90a) the two CUDA builds side by side (-j 8 each)
# had done 140/362 (mainline) and 93/309 (ik) steps after 290 s: the whole run needs about 15-20
# minutes, more than one 10-minute call (the fork's IQK mmq template instances take 60-130 s each).
# With -j 16 each (JOBS=16, both at once) mainline had finished all 362 steps and ik 169/309 after
# 550 s (H100 box, 2026-12-06).
#
# Usage: scripts/ik_vs_mainline.sh STAGE... with STAGE in: setup build model sweep truth compare
#        scripts/ik_vs_mainline.sh start STAGE...   the stages in the background (setsid), so they
#                                                   outlive the device call that started them
#        scripts/ik_vs_mainline.sh poll             wait (WAIT s, default 540) for them, print progress,
#                                                   pack results into $OUT; exit 3 on a fresh machine
# Why start/poll: one device call runs at most 10 minutes and the machine goes back 30 s after a
# call ends, taking its processes and files with it. A poll that finds no pipeline says so at once
# instead of waiting out its time on a bare machine (a session lost 560 s of device time that way).
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

stage_poll() {
  [ -f "$cache/pipeline.log" ] || {
    echo "error: no pipeline under $cache: this is a fresh machine (the last one went back between calls); run 'start' again" >&2
    exit 3; }
  local end=$(( SECONDS + ${WAIT:-540} ))
  while ! grep -q '^=== done' "$cache/pipeline.log" && [ $SECONDS -lt $end ]; do sleep 10; done
  local b
  for b in mainline ik; do
    echo "build $b: $(grep -o '^\[[0-9]*/[0-9]*\]' "$cache/$b/build.log" 2>/dev/null | tail -1)"
  done
  tail -n 25 "$cache/pipeline.log"
  if [ -n "${OUT:-}" ]; then
    (cd "$cache" && tar czf "$OUT/ik-vs-mainline.tgz" pipeline.log out $(ls -d sweep-mainline sweep-ik ik-vs-mainline 2>/dev/null))
  fi
  grep -q '^=== done' "$cache/pipeline.log" || { echo "still running: poll again"; exit 2; }
}

case "${1:-}" in
  start) shift; : >"$cache/pipeline.log"
    setsid nohup bash "$0" "$@" >>"$cache/pipeline.log" 2>&1 </dev/null &
    echo "started in the background: $*; log $cache/pipeline.log; follow with: $0 poll"; exit 0 ;;
  poll) stage_poll; exit 0 ;;
esac
for stage in "$@"; do "stage_$stage" || echo "stage $stage failed rc=$?"; done
log done
