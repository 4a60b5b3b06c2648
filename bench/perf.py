"""Timing regressions: record a benchmark against a reference kernel, compare two runs like asv.

Recording (tests/benchmarks/ uses it through pytest-benchmark's `benchmark` fixture):

    measure(benchmark, lambda: method.fit(X, Y),
            references={"svd+matmul": lambda: bare_procrustes(X, Y), "scipy": ...})

Each round times every reference kernel, then the target, back to back, so round i yields the
paired ratio target_i / reference_i. What lands in pytest-benchmark's JSON (`--benchmark-json`
always stores the raw per-round samples as `stats.data`; `--benchmark-save` needs
`--benchmark-save-data` for that):

    extra_info = {"reference": "svd+matmul",                      # the primary reference
                  "references": {"svd+matmul": {"kernel": "...",  # what it computes
                                                "data": [s, ...], # seconds, round i with data[i]
                                                "median": s,
                                                "ratio": r},      # median of the paired ratios
                                 "scipy": {...}}}

Comparing (`python -m bench.perf compare BASELINE CURRENT [--factor 1.5] [--alpha 0.01]`):
a benchmark regressed when BOTH

  1. its median slowdown median(current) / median(baseline) exceeds `factor`, and
  2. a one-sided Mann-Whitney U test says the current samples are larger (p < alpha),

which is asv's rule: a large change that is also not noise. Samples are the paired ratios to the
primary reference where both runs have them, else raw seconds. Ratios cancel the machine: on a
CPU twice as slow, or one shared with another job, the target and the reference kernel timed in
the same round slow down together and their ratio stays put, so a baseline recorded on one
machine still gates runs on another. Raw seconds would flag every slower CI machine (or pass
every faster one). The ratio cancels only what the two share: a change that slows one kind of
work (memory bandwidth, Python overhead) and not the other still moves it, which is why each
reference is the kernel its target cannot avoid rather than one generic matmul.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

MIN_ROUNDS = 7  # 7 vs 7 samples: the exact one-sided U test can reach p = 1/3432, far below 0.01
MAX_ROUNDS = 50
BUDGET_S = 1.0  # a benchmark's rounds (targets and references together) aim at about this long


# ---------------------------------------------------------------------------------------------
# Recording


def measure(
    benchmark: Any,
    target: Callable[[], Any],
    references: Mapping[str, Callable[[], Any]],
    *,
    kernels: Mapping[str, str] | None = None,
    rounds: int | None = None,
    budget_s: float = BUDGET_S,
    min_rounds: int = MIN_ROUNDS,
    max_rounds: int = MAX_ROUNDS,
    settle_s: float = 0.0,
) -> Any:
    """Time `target` with pytest-benchmark, each round paired with a timing of every reference.

    The first reference is the primary one (the one `compare` uses). `kernels` describes what
    each reference computes (defaults to its name). Returns what `target` returned.

    settle_s: an untimed sleep before every timed kernel. Needed when the kernels use different
    thread pools (numpy's OpenBLAS and torch's OpenMP): a pool keeps spinning for up to ~0.2 s
    after its call, and on 2 cores that slows whatever runs next (measured: ortho's fit 1.5x
    slower right after scipy's). With the pause every kernel starts from idle pools.
    """
    if not references:
        raise ValueError("measure needs at least one reference kernel")
    refs = dict(references)
    # One untimed warm-up of everything (allocator, lazy imports, MKL/OpenMP thread pools), which
    # also tells how many rounds fit the budget.
    start = time.perf_counter()
    for fn in refs.values():
        fn()
    target()
    once = time.perf_counter() - start + settle_s * (len(refs) + 1)
    if rounds is None:
        rounds = min(max(math.ceil(budget_s / max(once, 1e-9)), min_rounds), max_rounds)
    ref_data: dict[str, list[float]] = {name: [] for name in refs}

    def setup() -> None:  # pedantic calls it before each round, outside the timed region
        for name, fn in refs.items():
            if settle_s:
                time.sleep(settle_s)
            t0 = time.perf_counter()
            fn()
            ref_data[name].append(time.perf_counter() - t0)
        if settle_s:
            time.sleep(settle_s)  # then the target

    result = benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=0, iterations=1)
    stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    data = list(stats.stats.data) if stats else []
    info: dict[str, Any] = {}
    for name, samples in ref_data.items():
        samples = samples[: len(data)]  # --benchmark-cprofile calls setup once more, after the rounds
        info[name] = {
            "kernel": (kernels or {}).get(name, name),
            "data": samples,
            "median": statistics.median(samples) if samples else None,
            "ratio": statistics.median(paired_ratios(data, samples)) if samples else None,
        }
    benchmark.extra_info["reference"] = next(iter(refs))
    benchmark.extra_info["references"] = info
    return result


def paired_ratios(data: Sequence[float], reference: Sequence[float]) -> list[float]:
    """Round-by-round target / reference (the reference floored at 1 ns against a zero timer tick)."""
    return [t / max(r, 1e-9) for t, r in zip(data, reference)]


# ---------------------------------------------------------------------------------------------
# Comparing


@dataclass(frozen=True)
class Comparison:
    """One benchmark in both runs. `regressed` is what the gate acts on."""

    name: str
    basis: str  # "ratio to <reference>" or "seconds"
    baseline: float | None  # median sample (a ratio or seconds, per basis); None: not in that run
    current: float | None
    slowdown: float | None  # current / baseline
    p_value: float | None  # one-sided Mann-Whitney U, H1: current > baseline; None: untestable
    regressed: bool
    note: str = ""


Regression = Comparison  # what compare() returns: the comparisons with regressed=True


def load_run(path: str | Path) -> dict[str, dict[str, Any]]:
    """A pytest-benchmark JSON file as {fullname: benchmark entry}."""
    run = json.loads(Path(path).read_text())
    return {entry["fullname"]: entry for entry in run.get("benchmarks", [])}


def _samples(entry: Mapping[str, Any], reference: str | None) -> list[float]:
    stats = entry.get("stats", {})
    data = stats.get("data")
    if not data:  # saved without --benchmark-save-data: only the summaries survive, one sample
        if "median" not in stats:
            return []
        if reference is None:
            return [stats["median"]]
        return [stats["median"] / max(entry["extra_info"]["references"][reference]["median"], 1e-9)]
    if reference is None:
        return list(data)
    return paired_ratios(data, entry["extra_info"]["references"][reference]["data"])


def _reference(entry: Mapping[str, Any]) -> str | None:
    info = entry.get("extra_info", {})
    name = info.get("reference")
    refs = info.get("references", {})
    return name if name in refs and refs[name].get("data") else None


def compare_benchmark(
    name: str, baseline: Mapping[str, Any], current: Mapping[str, Any], factor: float = 1.5, alpha: float = 0.01
) -> Comparison:
    ref_b, ref_c = _reference(baseline), _reference(current)
    # ratios only when both runs are normalised by the same kernel; otherwise seconds, for both
    reference = ref_b if ref_b is not None and ref_b == ref_c else None
    basis = f"ratio to {reference}" if reference else "seconds"
    base, cur = _samples(baseline, reference), _samples(current, reference)
    if not base or not cur:
        return Comparison(name, basis, None, None, None, None, False, "no samples")
    med_b, med_c = statistics.median(base), statistics.median(cur)
    slowdown = med_c / med_b if med_b > 0 else math.inf
    p_value, note = significance(base, cur, alpha)
    significant = p_value is None or p_value < alpha
    return Comparison(name, basis, med_b, med_c, slowdown, p_value, slowdown > factor and significant, note)


def significance(baseline: Sequence[float], current: Sequence[float], alpha: float) -> tuple[float | None, str]:
    """One-sided Mann-Whitney U p-value for "current is slower", or None when it cannot be tested.

    With n and m samples the smallest p-value the exact test can give is 1 / C(n + m, n); when
    even that is above alpha (e.g. 4 vs 4, or summaries saved without their samples) the test
    could never agree, and, like asv without samples, the slowdown factor decides alone.
    """
    n, m = len(baseline), len(current)
    if 1 / math.comb(n + m, n) >= alpha:
        return None, f"{n} vs {m} samples: too few for the U test, factor alone decides"
    from scipy.stats import mannwhitneyu

    if len(set(baseline) | set(current)) == 1:  # all equal: no evidence of any change
        return 1.0, ""
    return float(mannwhitneyu(current, baseline, alternative="greater").pvalue), ""


def compare_all(
    baseline_json: str | Path, current_json: str | Path, factor: float = 1.5, alpha: float = 0.01
) -> list[Comparison]:
    """Every benchmark of either run, in the baseline's order then the new ones."""
    base, cur = load_run(baseline_json), load_run(current_json)
    out = []
    for name in list(base) + [n for n in cur if n not in base]:
        if name not in cur:
            out.append(Comparison(name, "", None, None, None, None, False, "missing from the current run"))
        elif name not in base:
            out.append(Comparison(name, "", None, None, None, None, False, "new: not in the baseline"))
        else:
            out.append(compare_benchmark(name, base[name], cur[name], factor, alpha))
    return out


def compare(
    baseline_json: str | Path, current_json: str | Path, factor: float = 1.5, alpha: float = 0.01
) -> list[Regression]:
    """The benchmarks that regressed: median slowdown > factor AND Mann-Whitney p < alpha."""
    return [c for c in compare_all(baseline_json, current_json, factor, alpha) if c.regressed]


def format_table(comparisons: Sequence[Comparison], factor: float, alpha: float) -> str:
    from tabulate import tabulate

    def num(x: float | None, fmt: str) -> str:
        return "" if x is None else format(x, fmt)

    rows = [
        [
            "REGRESSED" if c.regressed else "ok",
            c.name.split("::")[-1],
            c.basis,
            num(c.baseline, ".4g"),
            num(c.current, ".4g"),
            num(c.slowdown, ".2f") + ("x" if c.slowdown is not None else ""),
            num(c.p_value, ".2g"),
            c.note,
        ]
        for c in comparisons
    ]
    table = tabulate(rows, ["", "benchmark", "basis", "baseline", "current", "slowdown", "p", "note"])
    n_bad = sum(c.regressed for c in comparisons)
    rule = f"regression: median slowdown > {factor}x and one-sided Mann-Whitney p < {alpha}"
    return f"{table}\n\n{rule}\n{n_bad} regressed of {len(comparisons)} benchmarks"


def run_compare(
    baseline_json: str | Path,
    current_json: str | Path,
    factor: float = 1.5,
    alpha: float = 0.01,
    out: TextIO | None = None,
) -> int:
    """Print the comparison table; the exit code: 1 when anything regressed, else 0.

    This is the function behind `bench perf compare` (bench/cli.py) and `python -m bench.perf`.
    """
    comparisons = compare_all(baseline_json, current_json, factor, alpha)
    print(format_table(comparisons, factor, alpha), file=out or sys.stdout)
    return 1 if any(c.regressed for c in comparisons) else 0


def format_run(run_json: str | Path) -> str:
    """One run's medians and ratios to each reference: the figures docs/performance.md quotes."""
    from tabulate import tabulate

    rows = []
    for name, entry in load_run(run_json).items():
        refs = entry.get("extra_info", {}).get("references", {})
        ratios = ", ".join(f"{ref}: {info['ratio']:.2f}x" for ref, info in refs.items()
                           if info.get("ratio") is not None)
        stats = entry["stats"]
        rows.append([name.split("::")[-1], f"{stats['median'] * 1e3:.4g}", stats["rounds"], ratios])
    return tabulate(rows, ["benchmark", "median ms", "rounds", "median paired ratio to reference"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cmp = commands.add_parser("compare", help="compare two pytest-benchmark JSON files; exit 1 on a regression")
    cmp.add_argument("baseline", type=Path)
    cmp.add_argument("current", type=Path)
    cmp.add_argument("--factor", type=float, default=1.5, help="slowdown that counts (default 1.5)")
    cmp.add_argument("--alpha", type=float, default=0.01, help="significance level of the U test (default 0.01)")
    show = commands.add_parser("show", help="one run's medians and ratios to its references")
    show.add_argument("run", type=Path)
    args = parser.parse_args(argv)
    if args.command == "show":
        print(format_run(args.run))
        return 0
    for path in (args.baseline, args.current):
        if not path.is_file():
            print(f"error: {path}: no such file", file=sys.stderr)
            return 2
    return run_compare(args.baseline, args.current, args.factor, args.alpha)


if __name__ == "__main__":
    sys.exit(main())
