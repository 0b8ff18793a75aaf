#!/usr/bin/env bash
# Build llama.cpp with CUDA, then measure a generated MoE on a GPU box the way issue 11 asks:
# llama-bench truth runs, memory bandwidth, hardware facts, deploy dry-runs, and the bench sweep
# that becomes reports/examples/h200-moe/. Every stage is idempotent, so a second call on the same
# machine skips what is done (build, model) and goes on.
#
# Usage: scripts/h200_example.sh STAGE... with STAGE in: setup build model truth facts deploys sweep
# Env:   CACHE (build, models, sweep and results; default .cache), SPEC (default
#        bench/specs/h200-moe.toml), ARCHS (CUDA archs, default 90a), LLAMA_BIN (use these binaries
#        instead of building), TARBALL (default .carry/llama.cpp.tar.gz, from prepare_llama_cpp.sh),
#        WHEELS (offline wheel folder, default .whl), SWEEP_TIMEOUT (seconds, default 560)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=${CACHE:-$root/.cache}
out=$cache/out
spec=${SPEC:-bench/specs/h200-moe.toml}
archs=${ARCHS:-90a}
build=$cache/llama-build
tarball=${TARBALL:-.carry/llama.cpp.tar.gz}
wheels=${WHEELS:-.whl}
mkdir -p "$out" "$cache/models"
export OMNI_MODEL_CACHE=$cache/models PYTHONUNBUFFERED=1 PYINFRA_YES=
export PATH=${LLAMA_BIN:-$build/bin}:$PATH
# shellcheck source=scripts/device_env.sh
. "$root/scripts/device_env.sh"   # py, PYTHONPATH with the wheelhouse, log, unpack_wheels

model_args() { # the spec's [server.generate] table as genmodel flags
  "$py" - "$spec" <<'PY'
import sys, tomllib
gen = tomllib.load(open(sys.argv[1], "rb"))["server"]["generate"]
print(" ".join(f"--{k.replace('_', '-')} {v}" for k, v in gen.items()))
PY
}

stage_setup() {
  log setup
  unpack_wheels
  "$py" -c "import pyinfra, pydantic, openai, gguf, psutil, rich, pandas, matplotlib; print('imports ok')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
}

stage_build() {
  log build
  [ -n "${LLAMA_BIN:-}" ] && { echo "using $LLAMA_BIN"; return 0; }
  bash scripts/build_llama_cpp.sh "$tarball" "$build" "$archs"
}

stage_model() {
  log model
  # shellcheck disable=SC2046
  "$py" -m bench genmodel $(model_args) | tee "$out/model.txt"
}

stage_truth() {
  log "truth: llama-bench and memory bandwidth"
  local model
  model=$(cut -d' ' -f1 "$out/model.txt")
  "$py" -m bench.membw --gib 4 | tee "$out/membw.json"
  : >"$out/llama-bench.jsonl"
  while read -r label flags; do
    echo "llama-bench $label: $flags"
    # shellcheck disable=SC2086
    llama-bench -m "$model" -p 0 -n 64 -r 3 -o jsonl $flags 2>>"$out/llama-bench.err" \
      | sed "s/^{/{\"omni_label\": \"$label\", /" | tee -a "$out/llama-bench.jsonl"
  done <<'EOF'
all-gpu -ngl 99 -t 16 -fa on
all-gpu-fa-off -ngl 99 -t 16 -fa off
experts-cpu-t16 -ngl 99 -ot exps=CPU -t 16 -fa on
experts-cpu-t8 -ngl 99 -ot exps=CPU -t 8 -fa on
n-cpu-moe-8 -ngl 99 -ncmoe 8 -t 16 -fa on
all-cpu -ngl 0 -t 16 -fa on
EOF
}

stage_facts() {
  log facts
  "$py" -m facts collect >"$out/facts-collect.json" && head -c 600 "$out/facts-collect.json"; echo
  bash scripts/capture_hw.sh "$out/hw" >/dev/null
}

stage_deploys() {
  log "deploys: verify and dry runs on @local"
  local pyinfra=("$py" -m pyinfra)
  {
    echo "\$ OMNI_HOST=@local pyinfra -y inventory.py deploys/verify.py   # judged as the reference box"
    OMNI_HOST=@local "${pyinfra[@]}" -y inventory.py deploys/verify.py; echo "rc=$?"
    echo "\$ OMNI_HOSTS_FILE=docs/examples/h200-hosts.toml pyinfra -y inventory.py deploys/verify.py"
    OMNI_HOSTS_FILE=docs/examples/h200-hosts.toml "${pyinfra[@]}" -y inventory.py deploys/verify.py; echo "rc=$?"
    echo "\$ OMNI_HOST=@local pyinfra inventory.py deploys/phase3.py --dry --data phase0_waived=yes --data storage_skip=yes"
    OMNI_HOST=@local "${pyinfra[@]}" inventory.py deploys/phase3.py --dry --data phase0_waived=yes \
      --data storage_skip=yes; echo "rc=$?"
    echo "\$ OMNI_HOST=@local pyinfra inventory.py deploys/phase4.py --dry"
    OMNI_HOST=@local "${pyinfra[@]}" inventory.py deploys/phase4.py --dry; echo "rc=$?"
    echo "\$ OMNI_HOST=@local pyinfra inventory.py deploys/phase5.py --dry"
    OMNI_HOST=@local "${pyinfra[@]}" inventory.py deploys/phase5.py --dry; echo "rc=$?"
  } </dev/null >"$out/deploys.txt" 2>&1
  grep -E '^\$|^rc=|pyinfra error|Traceback' "$out/deploys.txt"
  cp "$root"/reports/verify-*.json "$out/" 2>/dev/null || true
}

stage_sweep() {
  log sweep
  local dir=$cache/h200-moe-run bw=()
  if [ -f "$out/membw.json" ]; then
    mapfile -t bw < <("$py" -c "import json,sys; d=json.load(open(sys.argv[1])); \
print('--host-bandwidth-gbps'); print(d['host_read_gbps']); \
[print(x) for g in d['gpu_copy_gbps'][:1] for x in ('--gpu-bandwidth-gbps', g)]" "$out/membw.json")
  fi
  timeout "${SWEEP_TIMEOUT:-560}" "$py" -m bench sweep "$spec" --out "$dir" --no-report
  echo "sweep rc=$?"
  "$py" -m bench.report "$dir" "${bw[@]}" && echo "report rc=0"
  tar czf "$out/sweep.tgz" -C "$cache" h200-moe-run
}

for stage in "$@"; do "stage_$stage" || echo "stage $stage failed rc=$?"; done
log done
