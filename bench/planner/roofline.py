"""The roofline: seconds per token = bytes read on each device / its bandwidth + a fixed per-token cost.

Prefill streams the host-resident weights over PCIe once per ubatch; the fixed cost is calibrated
from one measured launch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from bench.planner import PlanError
from bench.planner.host import Gpu, HostFacts
from bench.planner.model import ModelTable
from bench.planner.placement import Placement, Settings


def seconds_per_token(host: HostFacts, s: Settings, host_read: float,
                      gpu_reads: Iterable[tuple[Gpu, float]]) -> float:
    """Bytes read in host RAM and on each GPU over that memory's bandwidth, plus the fixed cost."""
    t = host_read / (host.bw_gbps * 1e9) + s.fixed_ms / 1000
    return t + sum(r / (g.bw_gbps * 1e9) for g, r in gpu_reads)


def predict(mt: ModelTable, host: HostFacts, p: Placement, s: Settings) -> Placement:
    """Decode and prefill tokens/s from the roofline (bytes / bandwidth per device + fixed cost)."""
    by_index = {g.index: g for g in host.gpus}
    t = seconds_per_token(host, s, p.host_read, ((by_index[g], r) for g, r in p.gpu_read.items()))
    p.decode_tps = 1.0 / t if t > 0 else 0.0
    pcie = [by_index[g].pcie_gbps for g in p.gpus if by_index[g].pcie_gbps]
    # prefill: llama.cpp copies host-resident weights to the main GPU for each ubatch (op offload)
    host_weights = p.host_weight_bytes - mt.embd_bytes
    if p.gpus and pcie and host_weights > 0:
        p.prefill_tps = s.ubatch / (host_weights / (pcie[0] * 1e9))
    return p


def predict_argv(mt: ModelTable, host: HostFacts, s: Settings, argv: Sequence[str]) -> float | None:
    """The same roofline for a hand-written placement (template, --n-cpu-moe grid, -ngl 0).

    None for `--fit on`: its placement is chosen at launch (the row reads it back from the log).
    """
    from bench.report.placement import bytes_by_device, parse_placement
    from omni.llamacpp import parse

    if parse(argv, lenient=True).fit == "on":  # `--fit off` keeps the placement argv gives
        return None
    n_gpus = len(host.gpus)
    host_read, gpu_read = bytes_by_device(mt.model, parse_placement(argv, n_gpus=n_gpus), n_gpus,
                                          [g.free_bytes for g in host.gpus])
    t = seconds_per_token(host, s, host_read, zip(host.gpus, gpu_read, strict=True))
    return 1.0 / t if t > 0 else None


def calibrate(mt: ModelTable, host: HostFacts, s: Settings, results_csv: str | Path) -> tuple[float, str]:
    """(fixed ms per token, how) from the first measured planner row of a sweep's results.csv.

    Why: the roofline counts memory traffic only; kernel launches, the CPU's expert dispatch and
    synchronisation add a per-token cost that one launch measures: 1/measured - 1/roofline.
    """
    import csv

    try:
        with Path(results_csv).open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise PlanError(f"--calibrate {results_csv}: not a readable results.csv ({exc})") from None
    zero = Settings(**{**s.__dict__, "fixed_ms": 0.0})
    for r in rows:
        argv = (r.get("axis.args.placement") or "").split()
        try:
            measured = float(r.get("decode_tps") or r.get("server_decode_tps") or 0)
        except ValueError:
            continue
        if r.get("status") != "ok" or r.get("placement_source") != "planner" or not argv or measured <= 0:
            continue
        roof = predict_argv(mt, host, zero, argv)
        if not roof:
            continue
        fixed = max(1000 * (1 / measured - 1 / roof), 0.0)
        return fixed, (f"{fixed:.3f} ms/token from {r.get('config_label', '?')}: measured {measured:.2f} "
                       f"tokens/s, roofline {roof:.2f}")
    raise PlanError(f"--calibrate {results_csv}: no ok row with placement_source planner and a decode rate; "
                    "run the plan's spec first (python -m bench sweep SPEC)")
