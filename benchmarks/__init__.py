"""Benchmarks of the harness itself (client overhead, peers, strategies): not part of the installed package.

Run them from the repository root (``python -m benchmarks.overhead`` ...); they may import ``bench``,
nothing imports them (tests/test_layers.py). Results and commands: docs/perf.md.
"""
