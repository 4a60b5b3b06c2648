"""Do two result stores agree? The check behind `bench compare` and `make reproduce`: a rerun
(from an empty cache, with another number of torch threads) against the stored results.

Cells are matched by key (bench.results.cell_key). Each metric both rows scored is held to
    continuous metrics (MSE, cosine, CKA, PSNR, SSIM, separability):  |a - b| <= RTOL * max(|a|, |b|)
    metrics that count evaluation samples (Metric.per_sample > 0):    |a - b| <= per_sample / m
where m is the task's number of evaluation samples: the second says the runs differ by at most
what one evaluation sample can change. A metric one row has and the other has not (unavailable
in one run) is a difference too. Cells in one store only are listed apart: they are not compared.
RTOL is for reruns on one device; compare(..., rtol=) takes another (bench/gpu_check.py holds a
CUDA run to a CPU run at 1e-4 relative).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.datasets import load_dataset
from bench.metrics import METRICS
from bench.results import Result
from bench.task import Task

RTOL = 1e-5  # continuous metrics: relative
ATOL = 1e-12  # below this both count as zero (a metric that is 0 in both runs)


@dataclass(frozen=True)
class Difference:
    row: Result  # the reference's row
    metric: str
    reference: float | None
    rerun: float | None
    tolerance: float


@dataclass
class Comparison:
    compared: int = 0  # cells in both stores
    differences: list[Difference] = field(default_factory=list)
    only_reference: list[Result] = field(default_factory=list)
    only_rerun: list[Result] = field(default_factory=list)
    rtol: float = RTOL  # what the continuous metrics were held to

    @property
    def rows_outside(self) -> int:
        return len({difference.row.key for difference in self.differences})

    def __str__(self) -> str:
        lines = [f"{self.compared - self.rows_outside} of {self.compared} cells agree within tolerance "
                 f"(continuous metrics {self.rtol:g} relative; counting metrics within one evaluation sample); "
                 f"{len(self.only_reference)} only in the reference, {len(self.only_rerun)} only in the rerun"]
        for d in self.differences:
            r = d.row
            lines.append(f"  {r.task} {r.source}->{r.target} {r.method} n={r.n_anchors} seed={r.seed} {r.pairing}: "
                         f"{d.metric} {d.reference} vs {d.rerun} (tolerance {d.tolerance:.3g})")
        return "\n".join(lines)


def tolerance(metric: str, reference: float, rerun: float, eval_samples: int, rtol: float = RTOL) -> float:
    per_sample = METRICS.get(metric).per_sample if metric in METRICS else 0.0
    if per_sample > 0:
        return per_sample / eval_samples + ATOL
    return rtol * max(abs(reference), abs(rerun)) + ATOL


def differences(reference: Result, rerun: Result, eval_samples: int, rtol: float = RTOL) -> list[Difference]:
    """The metrics on which two rows of one cell disagree beyond tolerance."""
    found = []
    for metric in sorted(set(reference.metrics) | set(rerun.metrics)):
        a, b = reference.metrics.get(metric), rerun.metrics.get(metric)
        if a is None or b is None or math.isnan(a) or math.isnan(b):  # unavailable or NaN: the same in both, or not
            if _state(a) != _state(b):
                found.append(Difference(reference, metric, a, b, math.nan))
            continue
        allowed = tolerance(metric, a, b, eval_samples, rtol)
        if abs(a - b) > allowed:
            found.append(Difference(reference, metric, a, b, allowed))
    return found


def _state(value: float | None) -> str:
    return "missing" if value is None else "nan" if math.isnan(value) else "number"


def compare(reference: list[Result], rerun: list[Result], tasks: dict[str, Task], rtol: float = RTOL) -> Comparison:
    """Every scored cell of `tasks` in both lists, compared metric by metric (continuous ones to `rtol`)."""
    def scored(rows: list[Result]) -> dict[str, Result]:
        return {row.key: row for row in rows if row.status == "ok" and row.task in tasks}

    ours, theirs = scored(reference), scored(rerun)
    eval_samples = {name: len(load_dataset(task.spec.dataset.name).split(task.spec.dataset.eval_split))
                    for name, task in tasks.items() if any(row.task == name for row in ours.values())}
    comparison = Comparison(rtol=rtol)
    for key, row in sorted(ours.items()):
        if key not in theirs:
            comparison.only_reference.append(row)
            continue
        comparison.compared += 1
        comparison.differences += differences(row, theirs[key], eval_samples[row.task], rtol)
    comparison.only_rerun = [row for key, row in sorted(theirs.items()) if key not in ours]
    return comparison
