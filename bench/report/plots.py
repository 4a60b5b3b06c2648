"""The report's figures (matplotlib, imported on first use): fit time against score, the main
metric against the number of anchors (or any other x, e.g. the fraction of mismatched anchor pairs),
and the source-by-target matrix per task."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench.compare import FLOOR, NATIVE
from bench.ranking import Ranking
from bench.report.stats import largest_count, native_value, summarise
from bench.task import Task

if TYPE_CHECKING:  # matplotlib itself is imported on first use
    from matplotlib.figure import Figure

PLOTS = "results/plots"  # where the figures live, below the repository root
DPI = 100  # fixed: the PNG bytes must not depend on the machine's matplotlib defaults


def _pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, metadata={"Software": None})  # no version stamp: byte-identical reruns
    _pyplot().close(figure)


def method_colours(methods: list[str]) -> dict[str, Any]:
    """The same colour for a method in every plot."""
    plt = _pyplot()
    palette = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    return {m: palette(i % palette.N) for i, m in enumerate(sorted(methods))}


def curve_plot(summary: dict[tuple[str, Any], tuple[float, float]], path: Path, colours: dict[str, Any], *,
               title: str, xlabel: str, ylabel: str, native: float = float("nan"), log_x: bool = False) -> None:
    """Each method's mean against x with its 95% band, from summary: (method, x) -> (mean, half-width);
    the native ceiling dashed when there is one."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4), dpi=DPI)
    for method in sorted({m for m, _ in summary}):
        xs = sorted(x for m, x in summary if m == method)
        means = np.array([summary[(method, x)][0] for x in xs])
        halves = np.nan_to_num(np.array([summary[(method, x)][1] for x in xs]))
        axes.plot(xs, means, marker="o", label=method, color=colours.get(method))
        axes.fill_between(xs, means - halves, means + halves, alpha=0.15, color=colours.get(method))
    if not np.isnan(native):
        axes.axhline(native, color="black", linestyle="--", linewidth=1, label="native")
    if log_x:
        axes.set_xscale("log", base=2)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    _save(figure, path)


def anchor_plot(frame: pd.DataFrame, task: Task, path: Path, colours: dict[str, Any]) -> None:
    curve_plot(summarise(frame, task, task.main_metric), path, colours, title=task.name, xlabel="number of anchors",
               ylabel=task.main_metric, native=native_value(frame, task, task.main_metric), log_x=True)


def matrix_plot(frame: pd.DataFrame, task: Task, path: Path) -> None:
    """Source-by-target grid of the main metric per method (the semantic-alignment paper's
    cross-modality figure): row = encoder, column = decoder, diagonal = the target's native score."""
    plt = _pyplot()
    largest = largest_count(frame, task)
    column = f"m:{task.main_metric}"
    rows = frame[(frame.task == task.name) & (frame.n_anchors == largest) & (frame.method != NATIVE)]
    encoders = sorted({e for pair in task.pairs() for e in pair})
    methods = sorted(rows.method.unique())
    native = (frame[(frame.task == task.name) & (frame.method == NATIVE)]
              .drop_duplicates("target").set_index("target")[column])
    # (source, target) -> mean over seeds, per method; NaN where the pair is not part of the task
    means = rows.groupby(["method", "source", "target"])[column].mean()
    grids = {}
    for method in methods:
        grid = np.full((len(encoders), len(encoders)), np.nan)  # (sources, targets)
        for (source, target), value in means[method].items():
            grid[encoders.index(source), encoders.index(target)] = value
        for i, encoder in enumerate(encoders):
            grid[i, i] = native.get(encoder, np.nan)
        grids[method] = grid
    values = np.concatenate([g[~np.isnan(g)] for g in grids.values()])
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    ncols = min(3, len(methods))
    nrows = -(-len(methods) // ncols)
    side = 1.1 + 0.55 * len(encoders)
    figure, axes = plt.subplots(nrows, ncols, figsize=(side * ncols + 1.2, side * nrows + 0.9), dpi=DPI, squeeze=False,
                                layout="constrained")  # makes room for the colour bar and the shared labels
    # shorter labels; the title names the data set
    ticks = [e.replace(task.spec.dataset.name + "-", "") for e in encoders]
    image = None
    for axis, method in zip(axes.flat, methods):
        image = axis.imshow(grids[method], vmin=low, vmax=high, cmap="viridis")
        for (i, j), value in np.ndenumerate(grids[method]):
            if not np.isnan(value):
                axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                          color="black" if value > (low + high) / 2 else "white",
                          fontweight="bold" if i == j else "normal")
        axis.set_title(method, fontsize=9)
        axis.set_xticks(range(len(encoders)), ticks, rotation=45, ha="right", fontsize=7)
        axis.set_yticks(range(len(encoders)), ticks, fontsize=7)
    for axis in list(axes.flat)[len(methods):]:
        axis.axis("off")
    figure.supxlabel("decoder (target)", fontsize=8)
    figure.supylabel("encoder (source)", fontsize=8)
    figure.suptitle(f"{task.name}: {task.main_metric} at n={largest} (diagonal: native)", fontsize=10)
    if image is not None:
        figure.colorbar(image, ax=axes, shrink=0.8, fraction=0.03)
    _save(figure, path)


def cost_plot(ranking: Ranking, path: Path, colours: dict[str, Any]) -> None:
    """Mean fit time against the overall normalised score, with the score's 95% interval."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4), dpi=DPI)
    for s in ranking.standings:
        x = max(1000 * s.fit_seconds, 1e-3)  # log axis: a free method still gets a point
        axes.errorbar([x], [s.score], yerr=[[s.score - s.low], [s.high - s.score]], marker="o", capsize=3,
                      color=colours.get(s.method), label=s.method)
    axes.axhline(1.0, color="black", linestyle="--", linewidth=1)
    axes.axhline(0.0, color="grey", linestyle=":", linewidth=1)
    axes.set_xscale("log")
    axes.set_xlabel("mean fit time per cell (ms, log scale)")
    axes.set_ylabel(f"normalised score (0 = {FLOOR}, 1 = {NATIVE})")
    axes.set_title("cost against score")
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    _save(figure, path)

