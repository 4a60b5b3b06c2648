"""Ranking methods across tasks: normalised scores, bootstrap intervals, tie groups, Borda ranks.

Tasks have different scales (accuracy on one, MSE on another), so each cell's main metric is
normalised between two references measured on the same cell:

    score = (value - floor) / (ceiling - floor)      floor: `absolute` (no translation) on the same
                                                     (source, target, n_anchors, seed) cell
                                                     ceiling: `native` (the target decoder on the
                                                     target's own embeddings)

0 is the floor and 1 the ceiling whatever the metric's direction (for a lower-is-better metric both
differences change sign together); a method can exceed 1 when stitching beats the target's own
encoder. Only the task's largest anchor count is ranked: every method gets the most help there.

A method's overall score is the mean over tasks of its mean cell score. Its 95% interval is a
percentile bootstrap over anchor seeds (each seed is one anchor draw), resampled per task with the
same draws for every method so that the intervals are comparable. Two methods are told apart only
when a paired Wilcoxon signed-rank test over their common cells rejects equality after Holm's
correction over all pairs; `rank` is then 1 + the number of methods significantly better, and
tie groups are letters (methods sharing a letter are not significantly different).
"""
from __future__ import annotations

import string
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from bench.compare import FLOOR, NATIVE
from bench.metrics import METRICS
from bench.task import Task

ALPHA = 0.05
RESAMPLES = 2000
CELL = ["task", "source", "target", "seed"]  # what pairs two methods' scores in the paired test


@dataclass
class Standing:
    method: str
    score: float  # mean over tasks of the mean normalised cell score
    low: float  # 95% bootstrap interval
    high: float
    rank: int  # 1 + number of methods significantly better
    group: str  # tie-group letters
    borda: float  # mean over tasks of the per-task rank (1 = best, ties averaged)
    fit_seconds: float  # mean over its ranked cells
    tasks: int  # tasks it has scores on
    cells: int


@dataclass
class Ranking:
    standings: list[Standing]  # best first
    p_adjusted: dict[tuple[str, str], float] = field(default_factory=dict)  # Holm-adjusted, both orders
    better: dict[str, list[str]] = field(default_factory=dict)  # method -> methods it significantly beats
    worse: dict[str, list[str]] = field(default_factory=dict)  # method -> methods that significantly beat it

    def get(self, method: str) -> Standing | None:
        return next((s for s in self.standings if s.method == method), None)


def empty_cells() -> pd.DataFrame:
    return pd.DataFrame(columns=CELL + ["method", "score", "fit_seconds"])


def normalised_cells(frame: pd.DataFrame, task: Task, metric: str | None = None) -> pd.DataFrame:
    """One row per (source, target, seed, method) at the task's largest anchor count, with `score`.

    `frame` has the columns of bench.report.rows.current_rows. Empty when the task lacks its floor or
    ceiling. A cell whose ceiling is not better than its floor has no scale and is left out.
    """
    metric = metric or task.main_metric
    column, sign = f"m:{metric}", (1.0 if METRICS.get(metric).higher_is_better else -1.0)
    rows = frame[frame.task == task.name] if not frame.empty else frame
    empty = empty_cells()
    if rows.empty or column not in rows:
        return empty
    methods = rows[(rows.method != NATIVE) & rows[column].notna()]
    if methods.empty or FLOOR not in set(methods.method):
        return empty
    largest = methods.n_anchors.max()
    methods = methods[methods.n_anchors == largest]
    floor = methods[methods.method == FLOOR].set_index(["source", "target", "seed"])[column].rename("floor")
    ceiling = rows[rows.method == NATIVE].drop_duplicates("target").set_index("target")[column].rename("ceiling")
    cells = methods.join(floor, on=["source", "target", "seed"]).join(ceiling, on="target")
    scale = sign * (cells.ceiling - cells.floor)  # > 0 when the ceiling is better than the floor
    cells = cells.assign(score=sign * (cells[column] - cells.floor) / scale.where(scale > 1e-12))
    cells = cells[cells.score.notna()]
    return cells[CELL + ["method", "score", "fit_seconds"]].sort_values(CELL + ["method"]).reset_index(drop=True)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment: p_(i) * (m - i + 1), made monotone, capped at 1."""
    order = np.argsort(p_values, kind="stable")
    adjusted, running = [0.0] * len(p_values), 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - i) * p_values[index]))
        adjusted[index] = running
    return adjusted


def paired_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank p-value of a - b, and the direction (W+ - W-: > 0 when a wins).

    All-equal pairs (e.g. two methods that agree on every cell) are no evidence: p = 1.
    """
    diff = np.asarray(a, float) - np.asarray(b, float)
    diff = diff[diff != 0]  # zeros carry no sign (Wilcoxon's own convention)
    if len(diff) == 0:
        return 1.0, 0.0
    ranks = stats.rankdata(np.abs(diff))
    direction = float(ranks[diff > 0].sum() - ranks[diff < 0].sum())
    with warnings.catch_warnings():  # small samples: scipy warns that it falls back to exact/normal
        warnings.simplefilter("ignore")
        p = float(stats.wilcoxon(diff).pvalue)
    return (1.0 if np.isnan(p) else p), direction


def bootstrap(cells: pd.DataFrame, methods: list[str], resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(len(methods), resamples) overall scores, resampling each task's seeds with replacement.

    The same seed draws are used for every method: anchors drawn with seed s are shared by all
    methods of a task, so resampling seeds resamples anchor draws jointly.
    """
    rng = np.random.default_rng(seed)
    per_task = []
    for task in sorted(cells.task.unique()):
        # (methods, seeds): mean over encoder pairs of each method's score with each seed's anchors
        table = (cells[cells.task == task].groupby(["method", "seed"]).score.mean()
                 .unstack("seed").reindex(methods).to_numpy())
        draws = rng.integers(0, table.shape[1], size=(resamples, table.shape[1]))  # (B, seeds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a method absent from a task: all-NaN
            per_task.append(np.nanmean(table[:, draws], axis=2))  # (methods, B)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(per_task, axis=2), axis=2)  # (methods, B): mean over tasks


def tie_groups(order: list[str], different: set[frozenset[str]]) -> dict[str, str]:
    """Compact letter display on the ranked order: each maximal run of methods that are pairwise
    not significantly different gets a letter; a method carries the letters of every run it is in.
    """
    runs, last_end = [], -1
    for start in range(len(order)):
        end = start
        while end + 1 < len(order) and all(frozenset((order[k], order[end + 1])) not in different
                                           for k in range(start, end + 1)):
            end += 1
        if end > last_end:  # not contained in an earlier run
            runs.append((start, end))
            last_end = end
    letters = list(string.ascii_lowercase) + [f"z{i}" for i in range(1, 1000)]
    groups = {method: "" for method in order}
    for letter, (start, end) in zip(letters, runs):
        for method in order[start:end + 1]:
            groups[method] += letter
    return groups


def rank(cells: pd.DataFrame, resamples: int = RESAMPLES, alpha: float = ALPHA) -> Ranking:
    """Rank the methods of `cells` (normalised_cells of one or more tasks, concatenated)."""
    if cells.empty:
        return Ranking([])
    cells = cells.sort_values(CELL + ["method"]).reset_index(drop=True)  # float sums in one order, whatever the input's
    task_scores = cells.groupby(["task", "method"]).score.mean()  # (task, method) -> mean over cells
    overall = task_scores.groupby("method").mean()
    methods = sorted(overall.index, key=lambda m: (-overall[m], m))
    samples = bootstrap(cells, methods, resamples)
    low, high = np.percentile(samples, [2.5, 97.5], axis=1)

    # paired tests over common cells, Holm-corrected over all pairs
    wide = cells.pivot_table(index=CELL, columns="method", values="score")
    pairs = [(a, b) for i, a in enumerate(methods) for b in methods[i + 1:]]
    raw, directions = [], []
    for a, b in pairs:
        both = wide[[a, b]].dropna()
        p, direction = paired_test(both[a].to_numpy(), both[b].to_numpy())
        raw.append(p)
        directions.append(direction)
    adjusted = holm(raw)
    result = Ranking([], {}, {m: [] for m in methods}, {m: [] for m in methods})
    different = set()
    for (a, b), p, direction in zip(pairs, adjusted, directions):
        result.p_adjusted[(a, b)] = result.p_adjusted[(b, a)] = p
        if p < alpha and direction != 0:
            winner, loser = (a, b) if direction > 0 else (b, a)
            result.better[winner].append(loser)
            result.worse[loser].append(winner)
            different.add(frozenset((a, b)))
    groups = tie_groups(methods, different)

    # Borda: each task ranks its methods (1 = best, ties share the mean rank); average over tasks
    borda = (task_scores.groupby("task", group_keys=False)
             .apply(lambda s: pd.Series(stats.rankdata(-s.to_numpy()), index=s.index))
             .groupby("method").mean())
    fit = cells.groupby("method").fit_seconds.mean()
    counts = cells.groupby("method").agg(tasks=("task", "nunique"), cells=("score", "size"))
    for i, method in enumerate(methods):
        result.standings.append(Standing(
            method=method, score=float(overall[method]), low=float(low[i]), high=float(high[i]),
            rank=1 + len(result.worse[method]), group=groups[method], borda=float(borda[method]),
            fit_seconds=float(fit.get(method, np.nan)), tasks=int(counts.tasks[method]),
            cells=int(counts.cells[method])))
    for lists in (result.better, result.worse):
        for method in lists:
            lists[method].sort(key=methods.index)
    return result
