#!/usr/bin/env bash
# The placement evidence of issue 16 on a GPU box: build llama.cpp (CUDA), generate a DeepSeek-R1-
# shaped proxy (deepseek2, Q4_K_M via llama-quantize), give it a VRAM budget below its weights, plan
# it (python -m bench plan), then sweep the plan + neighbours, --fit, the runbook template, an
# --n-cpu-moe grid and all-CPU. Every stage is idempotent (a second call skips what is done).
#
# Usage: scripts/placement_example.sh STAGE... with STAGE in: setup build model plan sweep
# Env:   CACHE (default .cache), OUT (results; default $CACHE/out), ARCHS (default 90a), JOBS,
#        VRAM_GIB (the budget the planner and --fit get, default 4), CTX (default 4096),
#        SHAPE (genmodel flags), GRID (extra placements, ';'-separated), TARBALL, WHEELS
# WHEELS must hold pyinfra too (scripts/wheelhouse.sh's default list): `facts collect` imports it.
# Without it, write the facts by hand as reports/examples/placement/device/f16.py does.
# The measured run (reports/examples/placement/README.md) built TARGETS="llama-server llama-quantize".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=${CACHE:-$root/.cache}
out=${OUT:-$cache/out}
build=$cache/llama-build
tarball=${TARBALL:-.carry/llama.cpp.tar.gz}
wheels=${WHEELS:-.whl}
vram=${VRAM_GIB:-4}
ctx=${CTX:-4096}
shape=${SHAPE:---arch deepseek2 --n-embd 2048 --n-layer 17 --n-layer-dense-lead 1 --n-head 16 --n-ff 8192 \
--n-lora-q 512 --n-lora-kv 256 --n-rot 64 --n-embd-head-qk-nope 128 --n-embd-head-v-mla 128 --n-expert 64 \
--n-expert-used 8 --n-ff-exp 2048 --n-expert-shared 1 --n-vocab 32000 --dtype q8_0 --quantize Q4_K_M}
grid=${GRID:--ngl 99 --n-cpu-moe 6;-ngl 99 --n-cpu-moe 11;-ngl 99 --n-cpu-moe 14;-ngl 0}
mkdir -p "$out" "$cache/models"
export OMNI_MODEL_CACHE=$cache/models PYTHONUNBUFFERED=1 OMNI_LLAMA_BIN=$build/bin
export PATH=$build/bin:$PATH
# shellcheck source=scripts/device_env.sh
. "$root/scripts/device_env.sh"   # py, PYTHONPATH with the wheelhouse, log, unpack_wheels

stage_setup() {
  log setup
  unpack_wheels
  "$py" -c "import pydantic, gguf, psutil, rich, numpy; print('imports ok')"
  nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version --format=csv,noheader | tee "$out/gpu.txt"
}

stage_build() {
  log build
  TARGETS="llama-server llama-quantize llama-gguf-split llama-fit-params" \
    bash scripts/build_llama_cpp.sh "$tarball" "$build" "${ARCHS:-90a}"
}

model_path() { "$py" -c "
import sys; sys.argv=['x']+sys.argv[1:]
from bench.genmodel.cache import model_file
from bench.genmodel.shape import ModelShape
from bench.cli import parser
a = parser().parse_args(['genmodel', *sys.argv[1:]])
print(model_file(ModelShape(**{k: v for k, v in vars(a).items() if k in ModelShape.model_fields and v is not None})))
" $shape; }

stage_model() {
  log model
  # shellcheck disable=SC2086
  "$py" -m bench genmodel $shape | tee "$out/model.txt"
}

stage_plan() {
  log plan
  local model
  model=$(model_path)
  "$py" -m facts collect >"$out/facts.json" 2>"$out/facts.err" || echo "facts collect failed: see facts.err"
  "$py" -m bench.membw --gib 2 >"$out/membw.json" || echo "membw failed"
  local gargs=()
  IFS=';' read -ra gs <<<"$grid"
  for g in "${gs[@]}"; do gargs+=(--grid "$g"); done
  "$py" -m bench plan "$model" --facts "$out/facts.json" --membw "$out/membw.json" --vram-budget "$vram" \
    --ctx "$ctx" --binary "$build/bin/llama-server" "${gargs[@]}" ${PLAN_ARGS:-} --out "$out/spec.toml" | tee "$out/plan.txt"
  # the sweep: one thread count (all cores), short cells
  sed -i -e 's/^output_tokens = \[128\]/output_tokens = [64]/' -e 's/^requests = 3/requests = 2/' \
    -e 's/^"--threads" = \[\([0-9]*\).*\]/"--threads" = [\1]/' "$out/spec.toml"
  # what --fit chooses under the same margin, as llama.cpp's own tool prints it
  local fitt
  fitt=$(grep -o '"-fitt", "[0-9,]*"' "$out/spec.toml" | head -1 | grep -o '[0-9,]*"$' | tr -d '"')
  llama-fit-params -m "$model" -c "$ctx" -fa on -fitt "$fitt" -fitc "$ctx" >"$out/fit-params.txt" 2>"$out/fit-params.log"
  echo "llama-fit-params -fitt $fitt: $(cat "$out/fit-params.txt")"
}

stage_sweep() {
  log sweep
  timeout "${SWEEP_TIMEOUT:-400}" "$py" -m bench sweep "$out/spec.toml" --out "$out/sweep" --no-report
  echo "sweep exit $?"
}

for stage in "$@"; do "stage_$stage"; done
log done
