"""Inference-server configuration sweeps: `python -m bench sweep|report|genmodel` (docs/bench.md).

Data flows one way: spec (TOML, `spec`) → configurations and cells (`plan`) → engine argv/env
(`engines`) → server process (`server`) with memory sampling and the OOM guard (`memory`) →
streamed load (`load`) → statistics (`metrics`) → rows (`runrow`, names in `schema`) → files
(`store`) → HTML (`report`). `sweep` is the loop; `strategies` decide which launch comes next.
"""
