"""Engines side by side: sweeps of the same placements by different engines (ik_llama.cpp and
mainline llama.cpp) merged into one results.csv (`engine` on every row) and one page of ratios.

Why not one sweep: a spec has one engine, and each engine's sweep keeps its own report; this joins
them on the placement axis (`args.placement`) so the ratio per placement is read off one table.

    python -m benchmarks.compare_engines OUT_DIR SWEEP_DIR SWEEP_DIR...

Writes OUT_DIR/results.csv, OUT_DIR/truth.jsonl (each sweep's `python -m benchmarks.truth`),
OUT_DIR/compare.md and OUT_DIR/index.html; prints the Markdown.
"""

from __future__ import annotations

import csv
import html
import json
import statistics
import sys
from pathlib import Path
from typing import Any

BASELINE = "llama-server"
PLACEMENT, VARIANT = "axis.args.placement", "axis.args.ik"


def load_rows(sweeps: list[Path]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for sweep in sweeps:
        with (sweep / "results.csv").open() as f:
            rows += [r | {"sweep_dir": sweep.name} for r in csv.DictReader(f)]
    return rows


def _mean(rows: list[dict[str, str]], key: str) -> float | None:
    vals = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
    return statistics.fmean(vals) if vals else None


def summarize(rows: list[dict[str, str]], concurrency: str = "1") -> list[dict[str, Any]]:
    """One line per (placement, engine, variant) at `concurrency`, with ratios to the baseline."""
    groups: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for r in rows:
        if r["status"] == "ok" and r["concurrency"] == concurrency:
            key = (r.get(PLACEMENT, ""), r["engine"], r.get(VARIANT) or "")
            groups.setdefault(key, []).append(r)
    out = []
    for (placement, engine, variant), rs in groups.items():
        out.append({"placement": placement, "engine": engine, "variant": variant or "(defaults)",
                    "decode_tps": _mean(rs, "decode_tps"),
                    "server_decode_tps": _mean(rs, "server_decode_tps"),
                    "paired": _mean(rs, "decode_client_over_server"),
                    "prefill_tps": _mean(rs, "server_prefill_tps"),
                    "mismatches": rs[0]["config_mismatches"]})
    for line in out:
        base = next((b for b in out if b["placement"] == line["placement"] and b["engine"] == BASELINE), None)
        for metric in ("decode_tps", "prefill_tps"):
            if base and base[metric] and line[metric]:
                line[f"{metric}_vs_mainline"] = line[metric] / base[metric]
        if line.get("paired") is not None:  # the same requests on both clocks (bench.metrics)
            line["client_over_server"] = line["paired"]
        elif line["decode_tps"] and line["server_decode_tps"]:  # a sweep from before the pairing
            line["client_over_server"] = line["decode_tps"] / line["server_decode_tps"]
    order = {p: i for i, p in enumerate(dict.fromkeys(r.get(PLACEMENT, "") for r in rows))}
    return sorted(out, key=lambda x: (order.get(x["placement"], 0), x["engine"] != BASELINE, x["variant"]))


COLUMNS = [("placement", "placement", ""), ("engine", "engine", ""), ("variant", "ik flags", ""),
           ("decode_tps", "decode tok/s (ours)", ".1f"), ("server_decode_tps", "decode (server)", ".1f"),
           ("client_over_server", "ours/server", ".3f"), ("prefill_tps", "prefill tok/s (server)", ".0f"),
           ("decode_tps_vs_mainline", "decode vs mainline", ".2f"),
           ("prefill_tps_vs_mainline", "prefill vs mainline", ".2f"), ("mismatches", "asked≠applied", "")]


def _cell(value: Any, fmt: str) -> str:
    if value is None or value == "":
        return "-"
    return format(value, fmt) if fmt and isinstance(value, int | float) else str(value)


def markdown(lines: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    body = ["| " + " | ".join(_cell(ln.get(k), fmt) for k, _, fmt in COLUMNS) + " |" for ln in lines]
    return "\n".join([head, "|" + " --- |" * len(COLUMNS), *body])


def page(lines: list[dict[str, Any]], sweeps: list[Path], truth: list[dict[str, Any]]) -> str:
    th = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in COLUMNS)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(ln.get(k), fmt))}</td>" for k, _, fmt in COLUMNS)
                  + "</tr>" for ln in lines)
    links = " · ".join(f'<a href="{s.name}/index.html">{html.escape(s.name)} report</a>' for s in sweeps)
    tcols = ["engine", "config_label", "decode_tps", "server_decode_tps", "client_over_server",
             "bench_decode_tps", "server_over_bench", "server_prefill_tps", "bench_prefill_tps"]
    def tcell(t: dict[str, Any], c: str) -> str:
        return f"<td>{html.escape(_cell(t.get(c), '.3f' if 'over' in c else '.1f'))}</td>"

    ttrs = "".join("<tr>" + "".join(tcell(t, c) for c in tcols) + "</tr>" for t in truth)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>ik_llama.cpp vs llama.cpp</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child,td:nth-child(2),td:nth-child(3)
{{text-align:left}}</style></head><body><h1>ik_llama.cpp vs mainline llama.cpp, per placement</h1>
<p>Concurrency 1; decode is our client's rate, prefill the server's own <code>timings</code>; ratios are
to mainline llama.cpp on the same placement. {links}</p><table><tr>{th}</tr>{trs}</table>
<h2>Truth check: our client, the server's timings, the engine's own benchmark</h2>
<p><code>llama-sweep-bench</code> (ik, the empty-cache window) and <code>llama-bench</code> (mainline),
run with each configuration's placement flags (<code>python -m benchmarks.truth</code>).</p>
<table><tr>{"".join(f"<th>{c}</th>" for c in tcols)}</tr>{ttrs}</table></body></html>
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3:
        print("usage: python -m benchmarks.compare_engines OUT_DIR SWEEP_DIR SWEEP_DIR...", file=sys.stderr)
        return 2
    dest, sweeps = Path(args[0]), [Path(a) for a in args[1:]]
    missing = [str(s) for s in sweeps if not (s / "results.csv").is_file()]
    if missing:
        print(f"error: no results.csv in {', '.join(missing)}: give finished sweep directories",
              file=sys.stderr)
        return 2
    rows = load_rows(sweeps)
    dest.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with (dest / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    truth = [json.loads(ln) for s in sweeps if (s / "truth.jsonl").is_file()
             for ln in (s / "truth.jsonl").read_text().splitlines() if ln.strip()]
    (dest / "truth.jsonl").write_text("".join(json.dumps(t) + "\n" for t in truth))
    lines = summarize(rows)
    text = markdown(lines)
    (dest / "compare.md").write_text(text + "\n")
    (dest / "index.html").write_text(page(lines, sweeps, truth))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
