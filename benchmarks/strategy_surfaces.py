"""Result surfaces to replay sweep strategies on: synthetic ones with realistic noise, and recorded ones.

Why these shapes: on a hybrid CPU/GPU MoE box the launch flags that matter (threads, NUMA
policy, batch sizes, expert offload) are mostly separable multiplicative effects with a few
interactions, so a handful of configurations end up within a few % of each other and the rest
are clearly slower; some combinations do not start (out of memory). Each launch then varies by
a couple of % (page-cache and memory placement differ per start), the workload's finite number
of requests adds its own spread, and now and then a launch is an outlier (a background job, a
cold page cache).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import numpy as np

from bench.objective import DEFAULT, Objective, launch_score, parse_objective


@dataclass
class Surface:
    """True log-scores per configuration and a noise model, or a recorded grid to reorder."""

    name: str
    ids: list[str]
    mu: np.ndarray = field(default_factory=lambda: np.zeros(0))  # true log score
    launch_sd: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per config, log scale
    request_sd: float = 0.01  # spread of one launch's mean over its requests, log scale
    broken: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # never starts
    outlier_p: float = 0.0
    outlier_drop: tuple[float, float] = (0.08, 0.25)
    recorded: np.ndarray | None = None  # (configs, repeats) log scores, nan = failed launch

    def draw(self, rng: np.random.Generator, repeats: int) -> tuple[np.ndarray, np.ndarray]:
        """(log scores, launch ok) of a full grid with `repeats` launches per configuration."""
        if self.recorded is not None:
            rec = np.array([row[rng.permutation(len(row))][:repeats] for row in self.recorded])
            return np.nan_to_num(rec, nan=0.0), ~np.isnan(rec)
        n = len(self.ids)
        logs = self.mu[:, None] + self.launch_sd[:, None] * rng.standard_normal((n, repeats))
        logs += self.request_sd * rng.standard_normal((n, repeats))
        hit = rng.random((n, repeats)) < self.outlier_p
        logs += np.where(hit, np.log1p(-rng.uniform(*self.outlier_drop, (n, repeats))), 0.0)
        ok = np.repeat(~self.broken[:, None], repeats, axis=1)
        return logs, ok


def _crossed(name: str, axes: dict[str, dict[str, float]], **noise: object) -> Surface:
    """Configurations = the product of axis levels; true score = sum of the levels' log effects."""
    ids, mu = [], []
    for combo in product(*(levels.items() for levels in axes.values())):
        ids.append(",".join(f"{axis}={lvl}" for axis, (lvl, _) in zip(axes, combo, strict=True)))
        mu.append(sum(math.log1p(eff) for _, eff in combo))
    return Surface(name, ids, np.array(mu), **noise)  # type: ignore[arg-type]


def moe_hybrid() -> Surface:
    """72 configurations of a hybrid MoE server; the top 5 lie within 3 % of the best."""
    s = _crossed(
        "moe-hybrid 2%sd",
        {
            "threads": {"24": -0.22, "48": -0.04, "64": 0.0, "96": -0.05},
            "numa": {"none": -0.14, "interleave": 0.0, "distribute": -0.015},
            "ubatch": {"512": -0.02, "2048": 0.0, "4096": 0.005},
            "offload": {"exps=CPU": 0.0, "exps=CPU,attn=GPU1": -0.18},
        },
    )
    s.launch_sd = np.full(len(s.ids), 0.02)
    s.request_sd, s.outlier_p = 0.01, 0.03
    s.broken = np.array(["ubatch=4096" in i and "attn=GPU1" in i for i in s.ids])  # OOM
    # interaction: 96 threads with no NUMA policy thrashes the interconnect
    s.mu = s.mu + np.array([math.log(0.9) if "threads=96" in i and "numa=none" in i else 0.0 for i in s.ids])
    # noisier launches without a NUMA policy (placement differs per start)
    s.launch_sd = np.where([("numa=none" in i) for i in s.ids], 0.04, s.launch_sd)
    return s


def flat_top() -> Surface:
    """24 configurations, 8 of them within 2 % of the best: the hard case for early stopping."""
    rng = np.random.default_rng(7)
    top = np.log1p(-rng.uniform(0.0, 0.02, 8))
    top[0] = 0.0
    rest = np.log1p(-rng.uniform(0.05, 0.4, 16))
    ids = [f"cfg{i:02d}" for i in range(24)]
    return Surface("flat-top 3%sd", ids, np.concatenate([top, rest]),
                   np.full(24, 0.03), 0.01, np.zeros(24, bool), 0.03)


def demo_small() -> Surface:
    """The zero-config demo's shape: parallel slots x NUMA prefix (6 configurations)."""
    s = _crossed("demo-like 3%sd",
                 {"parallel": {"1": -0.45, "2": -0.1, "4": 0.0}, "numa": {"none": 0.0, "interleave": -0.01}})
    s.launch_sd = np.full(len(s.ids), 0.03)
    s.request_sd, s.outlier_p = 0.01, 0.03
    s.broken = np.zeros(len(s.ids), bool)
    return s


def noisy() -> Surface:
    """36 configurations with 6 % launch spread (a busy or thermally limited box)."""
    s = _crossed("noisy 6%sd",
                 {"threads": {"a": -0.3, "b": -0.08, "c": 0.0, "d": -0.02},
                  "numa": {"x": -0.1, "y": 0.0, "z": -0.03},
                  "batch": {"p": -0.01, "q": 0.0, "r": -0.05}})
    s.launch_sd = np.full(len(s.ids), 0.06)
    s.request_sd, s.outlier_p = 0.02, 0.05
    s.broken = np.zeros(len(s.ids), bool)
    return s


SURFACES: list[Surface] = [moe_hybrid(), flat_top(), demo_small(), noisy()]


def recorded_surface(path: Path, objective: Objective | None = None) -> tuple[Surface, int]:
    """A results.csv from a full-grid sweep: one launch score per (config_id, repeat), on the sweep's
    one objective (default `decode`, what a race on that spec would prune by)."""
    objective = objective or parse_objective(DEFAULT)
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            groups[(row["config_id"], row.get("repeat", "0"))].append(row)
    per_config: dict[str, list[float]] = defaultdict(list)
    for (cid, _rep), rows in sorted(groups.items()):
        score = launch_score(rows, objective)
        per_config[cid].append(math.log(score) if score else math.nan)
    repeats = min(len(v) for v in per_config.values())
    ids = sorted(per_config)
    rec = np.array([per_config[c][:repeats] for c in ids])
    return Surface(f"real {path.parent.name}", ids, recorded=rec), repeats


RECORD_SPEC = """\
# A full grid with 3 launches per configuration, recorded to replay strategies on real noise.
name = "grid-record"
engine = "xllamacpp"
strategy = "grid"
[server]
args = ["-c", "4096", "--no-warmup", "--threads", "1"]
health_timeout_s = 60
stop_timeout_s = 10
[server.generate]
n_embd = 256
n_layer = 4
n_ff = 768
n_head = 4
n_head_kv = 2
n_vocab = 2048
dtype = "f16"
[axes]
"--parallel" = [1, 2, 4]
"--ubatch-size" = [16, 512]
[workload]
input_tokens = [64]
output_tokens = [32]
concurrency = [1, 4]
requests = 8
warmup = 1
repeats = 3
"""


RECORD_SPEC_LARGER = """\
# 8 configurations of the peer benchmark's ~59 MB model (a few hundred tokens/s on 1 thread).
name = "grid-record-larger"
engine = "xllamacpp"
strategy = "grid"
[server]
args = ["-c", "4096", "--no-warmup", "--threads", "1"]
health_timeout_s = 60
stop_timeout_s = 10
[server.generate]
n_embd = 512
n_layer = 8
n_ff = 1536
n_head = 8
n_head_kv = 4
n_vocab = 4096
dtype = "f16"
[axes]
"--parallel" = [1, 4]
"--ubatch-size" = [8, 512]
"--flash-attn" = ["on", "off"]
[workload]
input_tokens = [128]
output_tokens = [64]
concurrency = [1, 4]
requests = 8
warmup = 1
repeats = 3
"""
RECORD_SPECS = {"tiny": RECORD_SPEC, "larger": RECORD_SPEC_LARGER}


def record_grid(out: Path, kind: str = "tiny") -> Path:
    """Run (or resume) a recording sweep with `python -m bench sweep`; returns its results.csv."""
    import subprocess
    import sys

    out.mkdir(parents=True, exist_ok=True)
    spec = out.parent / f"{out.name}.toml"
    spec.write_text(RECORD_SPECS[kind])
    subprocess.run([sys.executable, "-m", "bench", "sweep", str(spec), "--out", str(out)], check=True)
    return out / "results.csv"
