"""HTML performance report of a sweep directory: `render_report(sweep_dir)` writes `index.html`.

`python -m bench report SWEEP_DIR` and every finished sweep call it; `python -m bench.report` is
the same entry point with the threshold and bandwidth flags (see `bench.report.cli`).
"""

from bench.report.cli import main
from bench.report.options import ReportError, ReportOptions
from bench.report.render import render_report

__all__ = ["ReportError", "ReportOptions", "main", "render_report"]
