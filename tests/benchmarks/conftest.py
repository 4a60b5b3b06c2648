"""Performance benchmarks (pytest-benchmark): collected only when BENCH_PERF=1.

The default `pytest` run (testpaths = tests) ignores this folder: timings take minutes, and a
test suite should not depend on how busy the machine is. Run them with

    BENCH_PERF=1 .venv/bin/python -m pytest tests/benchmarks                  # full suite, ~3 min
    BENCH_PERF=1 .venv/bin/python -m pytest tests/benchmarks -m perf_ci       # the CI subset
    make perf                                                                 # CI subset + gate

See docs/performance.md. Each benchmark times its target against a reference kernel in the
same rounds (bench.perf.measure) and stores the ratios in extra_info.
"""
from __future__ import annotations

import os

import pytest
import torch

ENABLED = os.environ.get("BENCH_PERF", "") not in ("", "0")
if not ENABLED:
    collect_ignore_glob = ["test_*.py"]

# BENCH_PERF_THREADS pins torch's intra-op threads (the CI gate uses 1: see docs/performance.md)
if ENABLED and os.environ.get("BENCH_PERF_THREADS"):
    torch.set_num_threads(int(os.environ["BENCH_PERF_THREADS"]))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "perf_ci: the small benchmark subset the CI regression gate runs")

