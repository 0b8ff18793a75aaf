"""Inference-server configuration sweeps: `python -m bench sweep|report|genmodel` (docs/bench.md).

Data flows one way: spec (TOML, `spec`) → configurations and cells (`plan`) → engine argv/env
(`engines`) → server process (`server`) with memory sampling and the OOM guard (`memory`) →
streamed load (`load`) → per-cell metrics (`metrics`, statistics from `stats`) → rows (`runrow`,
fields in `schema`, every number's name/unit/direction in `metric_registry`) → files (`store`) →
HTML (`report`). `sweep` is the pipeline (one `SweepPlan` from `preflight`, one `launched` context
per launch in `sweep_launch`, its cells in `sweep_cells`); `strategies` decide which launch comes
next. llama.cpp flags: `omni.llamacpp` (the table: `omni.llama_flags`).
"""
