"""The timing-regression gate (bench/perf.py): flags a real 2x slowdown, ignores noise and machines."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bench import perf

REPO = Path(__file__).resolve().parent.parent


def entry(name: str, data, reference=None) -> dict:
    """A benchmark as pytest-benchmark's JSON stores it (only the fields compare reads)."""
    data = [float(x) for x in data]
    out = {"fullname": f"tests/benchmarks/test_synthetic.py::{name}", "name": name,
           "stats": {"data": data, "median": statistics.median(data), "rounds": len(data)}, "extra_info": {}}
    if reference is not None:
        reference = [float(x) for x in reference]
        out["extra_info"] = {"reference": "bare", "references": {"bare": {"data": reference, "median": statistics.median(reference)}}}
    return out


def write(path: Path, *entries: dict) -> Path:
    path.write_text(json.dumps({"benchmarks": list(entries)}))
    return path


def noisy(rng: np.random.Generator, median: float, n: int = 15, spread: float = 0.05) -> np.ndarray:
    """Timing-like samples: log-normal around `median`, with a long right tail."""
    return median * np.exp(rng.normal(0, spread, n)) + rng.exponential(median * spread / 2, n)


def one(tmp_path: Path, base: dict, cur: dict, **kwargs) -> perf.Comparison:
    [c] = perf.compare_all(write(tmp_path / "base.json", base), write(tmp_path / "cur.json", cur), **kwargs)
    return c


def test_an_injected_2x_slowdown_is_flagged(tmp_path):
    rng = np.random.default_rng(0)
    base = entry("fit", noisy(rng, 1e-2), reference=noisy(rng, 5e-3))
    cur = entry("fit", 2 * noisy(rng, 1e-2), reference=noisy(rng, 5e-3))
    regressions = perf.compare(write(tmp_path / "b.json", base), write(tmp_path / "c.json", cur))
    assert [r.name for r in regressions] == [cur["fullname"]]
    [r] = regressions
    assert r.basis == "ratio to bare" and 1.7 < r.slowdown < 2.3 and r.p_value < 1e-3


def test_an_unchanged_rerun_never_flags(tmp_path):
    rng = np.random.default_rng(1)
    for _ in range(200):  # 200 reruns from one distribution: not a single false alarm
        base = entry("fit", noisy(rng, 1e-2, spread=0.2), reference=noisy(rng, 5e-3, spread=0.2))
        cur = entry("fit", noisy(rng, 1e-2, spread=0.2), reference=noisy(rng, 5e-3, spread=0.2))
        assert not one(tmp_path, base, cur).regressed


def test_a_significant_slowdown_below_the_factor_is_not_a_regression(tmp_path):
    rng = np.random.default_rng(2)
    c = one(tmp_path, entry("fit", noisy(rng, 1.0)), entry("fit", 1.3 * noisy(rng, 1.0)))
    assert c.p_value < 1e-3 and 1.2 < c.slowdown < 1.4  # real, and reported...
    assert not c.regressed  # ...but under 1.5x: not what the gate is for


def test_a_large_median_jump_that_is_noise_is_not_a_regression(tmp_path):
    # bimodal timings (a busy neighbour half of the time): the medians differ 3x, the samples do not
    base = entry("fit", [1.0] * 4 + [3.0] * 3)
    cur = entry("fit", [1.0] * 3 + [3.0] * 4)
    c = one(tmp_path, base, cur)
    assert c.slowdown == pytest.approx(3.0) and c.p_value > 0.1 and not c.regressed


def test_ratios_to_the_reference_cancel_a_slower_machine(tmp_path):
    rng = np.random.default_rng(3)
    target, reference = noisy(rng, 1e-2), noisy(rng, 5e-3)
    base = entry("fit", target, reference)
    # the same code on a machine 2.5x slower: target and reference slow down together
    cur = entry("fit", 2.5 * noisy(rng, 1e-2), reference=2.5 * noisy(rng, 5e-3))
    c = one(tmp_path, base, cur)
    assert c.basis == "ratio to bare" and not c.regressed and 0.9 < c.slowdown < 1.1
    # in raw seconds the same runs would fail the gate
    raw = one(tmp_path, entry("fit", base["stats"]["data"]), entry("fit", cur["stats"]["data"]))
    assert raw.basis == "seconds" and raw.regressed


def test_too_few_samples_for_the_u_test_leave_the_factor_to_decide(tmp_path):
    c = one(tmp_path, entry("fit", [1.0, 1.1, 0.9]), entry("fit", [2.0, 2.1, 1.9]))
    assert c.p_value is None and "too few" in c.note and c.regressed


def test_missing_and_new_benchmarks_are_listed_not_flagged(tmp_path):
    base = write(tmp_path / "b.json", entry("old", [1.0] * 7))
    cur = write(tmp_path / "c.json", entry("new", [9.0] * 7))
    notes = {c.name.split("::")[1]: c.note for c in perf.compare_all(base, cur)}
    assert "missing" in notes["old"] and "new" in notes["new"]
    assert perf.compare(base, cur) == []


def test_cli_prints_a_table_and_exits_1_on_a_regression(tmp_path, capsys):
    rng = np.random.default_rng(4)
    base = write(tmp_path / "b.json", entry("fit", noisy(rng, 1.0), noisy(rng, 1.0)))
    same = write(tmp_path / "s.json", entry("fit", noisy(rng, 1.0), noisy(rng, 1.0)))
    slow = write(tmp_path / "f.json", entry("fit", 2 * noisy(rng, 1.0), noisy(rng, 1.0)))
    assert perf.main(["compare", str(base), str(same)]) == 0
    assert "0 regressed of 1" in capsys.readouterr().out
    assert perf.main(["compare", str(base), str(slow), "--factor", "1.5"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "1 regressed of 1" in out
    assert perf.main(["compare", str(base), str(tmp_path / "nope.json")]) == 2


TINY_BENCHMARK = textwrap.dedent(
    """
    import importlib.util, os, sys, time

    # bench/perf.py loaded by path: importing the bench package would load torch, seconds per run
    spec = importlib.util.spec_from_file_location("perf_under_test", os.environ["PERF_MODULE"])
    perf = sys.modules["perf_under_test"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(perf)

    SLOWDOWN = float(os.environ.get("SLOWDOWN", "1"))

    def test_tiny(benchmark):
        # the reference and the target both sleep 4 ms; SLOWDOWN stretches the target alone
        perf.measure(benchmark, lambda: time.sleep(0.004 * SLOWDOWN), {"bare": lambda: time.sleep(0.004)}, rounds=12)
    """
)


def run_tiny(tmp_path: Path, out: str, slowdown: float) -> Path:
    """A real pytest-benchmark run of a tiny benchmark in a subprocess; returns its JSON."""
    test = tmp_path / "test_tiny_benchmark.py"
    test.write_text(TINY_BENCHMARK)
    env = {**os.environ, "SLOWDOWN": str(slowdown), "PERF_MODULE": str(REPO / "bench" / "perf.py")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(test), "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         f"--benchmark-json={tmp_path / out}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path / out


def test_a_real_benchmark_run_twice_flags_an_injected_sleep_and_passes_a_rerun(tmp_path):
    base = run_tiny(tmp_path, "base.json", 1.0)
    rerun = run_tiny(tmp_path, "rerun.json", 1.0)
    slow = run_tiny(tmp_path, "slow.json", 2.0)
    # the JSON keeps the raw samples and the paired reference timings
    [saved] = json.loads(base.read_text())["benchmarks"]
    assert len(saved["stats"]["data"]) == 12 == len(saved["extra_info"]["references"]["bare"]["data"])
    assert perf.compare(base, rerun) == []
    [regression] = perf.compare(base, slow)
    assert regression.basis == "ratio to bare" and regression.slowdown > 1.5
