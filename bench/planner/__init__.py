"""Placement planner: which tensors of a MoE model larger than VRAM go on which GPU, and how fast.

Why: llama.cpp's `--fit` gives up as soon as `-ngl`, `-ts` or `-ot` is passed, and the runbook's
`-ngl 99 -ot exps=CPU` leaves most of the VRAM idle while decode is bound by the bytes read per
token from host RAM. The planner reads every tensor's size and type from the GGUF (all shards),
keeps the every-token tensors (attention, dense FFN, shared experts, router, KV cache) on the GPUs,
then fills the VRAM left with whole layers of routed experts (then single expert tensors), and
prints `-ot` rules checked against the model's real tensor names. Its roofline: seconds per token
= bytes read on each device / that device's bandwidth + a fixed per-token cost (calibrated from
one measured launch); prefill streams the host-resident weights over PCIe once per ubatch.

Modules, downhill: `host` (what the host offers), `model` (the GGUF's tensors grouped for
placement), `placement` (a placement and the knobs it is made under), `rules` (the `-ot` rules),
`fill` (one placement: dense parts where llama.cpp puts them, then experts into the VRAM left),
`roofline` (predicted tokens/s and its calibration), `search` (the best placement and its
neighbours), `render` (flags, human lines and the sweep spec).
"""

MIB = 1024**2
GIB = 1024**3


class PlanError(ValueError):
    """A plan that cannot be made (bad input, or the model does not fit); one line with the numbers."""
