"""Per-task numbers of the report: each is a mean over seeds of the per-seed mean over encoder
pairs, with a 95% Student-t interval over seeds; the native ceiling is averaged like the methods.
(The overall ranking, with bootstrap intervals and tie groups, is bench/ranking.py.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from bench.compare import NATIVE
from bench.metrics import METRICS
from bench.task import Task


def interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of the 95% Student-t interval (nan half-width for one value)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan")
    return mean, float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))


def fmt(mean: float, half: float, digits: int = 3) -> str:
    if np.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if np.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


def summarise(frame: pd.DataFrame, task: Task, metric: str) -> dict[tuple[str, int], tuple[float, float]]:
    """(method, n_anchors) -> (mean, 95% half-width) of `metric`, over seeds of the mean over pairs."""
    column = f"m:{metric}"
    methods = frame[(frame.task == task.name) & (frame.method != NATIVE)]
    if column not in methods:
        return {}
    per_seed = methods.groupby(["method", "n_anchors", "seed"])[column].mean()
    return {key: interval(group.to_numpy()) for key, group in per_seed.groupby(level=["method", "n_anchors"])}


def native_value(frame: pd.DataFrame, task: Task, metric: str) -> float:
    """The native ceiling averaged like the methods: over the targets of the task's pairs."""
    column = f"m:{metric}"
    native = frame[(frame.task == task.name) & (frame.method == NATIVE)]
    if column not in native:
        return float("nan")
    by_target = native.drop_duplicates("target").set_index("target")[column]
    values = [by_target[t] for _, t in task.pairs() if t in by_target.index]
    return float(np.mean(values)) if values else float("nan")


def largest_count(frame: pd.DataFrame, task: Task) -> int | None:
    counts = frame[(frame.task == task.name) & (frame.method != NATIVE)].n_anchors
    return None if counts.empty else int(counts.max())


def arrow(metric: str) -> str:
    return "↑" if METRICS.get(metric).higher_is_better else "↓"

