"""The server-log reference of the peer benchmark, parsed from a real xllamacpp log capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.peers_server import parse_log, summarize_server

LOG = (Path(__file__).parent / "fixtures" / "xllamacpp-slots.log").read_text()


def test_parse_log_reads_every_task_with_its_times():
    reqs = parse_log(LOG)
    assert [r.task for r in reqs] == [0, 33, 66, 99]
    first = reqs[0]
    assert first.t_launch == pytest.approx(0.376121)
    assert first.t_release == pytest.approx(0.571299)
    assert (first.prompt_ms, first.prompt_n, first.eval_ms, first.eval_n) == (21.80, 4, 173.21, 32)
    assert first.itl_ms == pytest.approx(173.21 / 31)
    assert not reqs[-1].complete  # the capture ends while task 99 is still running


def test_summary_spans_first_launch_to_last_release_of_complete_tasks():
    view = summarize_server(parse_log(LOG))
    assert view is not None
    assert view.requests == 3 and view.output_tokens == 96
    assert view.window_s == pytest.approx(0.942735 - 0.376121)
    assert view.throughput_tps == pytest.approx(96 / (0.942735 - 0.376121))
    assert view.ttft_ms_p50 == pytest.approx(7.77)
    assert view.itl_ms_p50 == pytest.approx(173.21 / 31)
    assert summarize_server([]) is None
