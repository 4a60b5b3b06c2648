"""leaderboard.md and its plots, rebuilt from results/ alone: no recomputation, byte-identical
output for the same results.

Each number is a mean over seeds of the per-seed mean over encoder pairs, with a 95% Student-t
interval over seeds. Rows whose task version/spec or method source no longer match the current
files are stale: counted, never mixed with current ones.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tabulate import tabulate

from bench.method import METHODS, REPO_ROOT
from bench.metrics import METRICS
from bench.results import ResultStore
from bench.runner import NATIVE
from bench.task import Task, discover_tasks

PLOTS_DIR = "results/plots"


def md_escape(text: str) -> str:
    """Text from submissions or tasks, made inert in Markdown and HTML."""
    text = re.sub(r"[\r\n]+", " ", str(text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", text)


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


def current_rows(rows: list[dict[str, Any]], tasks: dict[str, Task]) -> tuple[pd.DataFrame, int]:
    """Scored rows that match the current task files and method sources, and the count of stale ones."""
    source_hashes: dict[str, str] = {}

    def is_current(row: dict[str, Any]) -> bool:
        task = tasks.get(row["task"])
        if task is None or (row["task_version"], row["task_spec_hash"]) != (task.spec.version, task.spec_hash):
            return False
        if row["method_name"] == NATIVE:
            return True
        if row["method_name"] not in source_hashes:
            source_hashes[row["method_name"]] = METHODS.get(row["method_name"]).source_hash if row["method_name"] in METHODS else ""
        return row["method_source_hash"] == source_hashes[row["method_name"]]

    ok = [r for r in rows if r["status"] == "ok"]
    current = [r for r in ok if is_current(r)]
    frame = pd.DataFrame([{**{k: r[k] for k in ("task", "source", "target", "method", "method_name", "n_anchors", "seed", "fit_seconds")},
                           **{f"m:{k}": v for k, v in r["metrics"].items()}} for r in current])
    return frame, len(ok) - len(current)


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
    by_target = native.set_index("target")[column]
    values = [by_target[t] for _, t in task.pairs() if t in by_target.index]
    return float(np.mean(values)) if values else float("nan")


def method_link(label: str, name: str) -> str:
    info = METHODS.get(name) if name in METHODS else None
    if info is None or info.folder is None:
        return md_escape(label)
    return f"[{md_escape(label)}]({info.folder.relative_to(REPO_ROOT).as_posix()}/card.yaml)"


def task_section(frame: pd.DataFrame, task: Task, plot_path: str | None) -> list[str]:
    spec = task.spec
    main = METRICS.get(task.main_metric)
    arrow = "↑" if main.higher_is_better else "↓"
    counts = sorted(frame[(frame.task == task.name) & (frame.method != NATIVE)].n_anchors.unique().tolist())
    lines = [f"## {md_escape(task.name)}", "",
             f"{md_escape(spec.description.strip())}" if spec.description else "",
             "",
             f"Data set `{spec.dataset.name}` (fit split `{spec.dataset.fit_split}`, scored on `{spec.dataset.eval_split}`), "
             f"{len(task.pairs())} encoder pairs, decoder `{spec.decoder}`, anchors sampled {spec.anchors.sampling}, "
             f"seeds {', '.join(map(str, spec.anchors.seeds))}. Task version {spec.version}, spec hash `{task.spec_hash}`.", ""]
    if not counts:
        return lines + ["No current results.", ""]
    main_summary = summarise(frame, task, task.main_metric)
    largest = counts[-1]
    methods = sorted({m for m, _ in main_summary}, key=lambda m: (-(1 if main.higher_is_better else -1) * main_summary.get((m, largest), (np.nan,))[0], m))
    names = frame[frame.task == task.name].drop_duplicates("method").set_index("method").method_name.to_dict()
    native = native_value(frame, task, task.main_metric)
    header = ["method"] + [f"n={n}" for n in counts]
    table = [[method_link(m, names[m])] + [fmt(*main_summary.get((m, n), (np.nan, np.nan))) for n in counts] for m in methods]
    table.append(["native (no stitching)"] + [fmt(native, np.nan)] * len(counts))
    lines += [f"**{task.main_metric} {arrow}** by number of anchors (mean ± 95% interval over seeds):", "",
              tabulate(table, header, tablefmt="github", disable_numparse=True), ""]
    summaries = {metric: summarise(frame, task, metric) for metric in spec.metrics}
    fit = frame[(frame.task == task.name) & (frame.n_anchors == largest)].groupby("method").fit_seconds.mean()
    header = ["method"] + [f"{m} {'↑' if METRICS.get(m).higher_is_better else '↓'}" for m in spec.metrics] + ["fit ms"]
    table = [[method_link(m, names[m])] + [fmt(*summaries[metric].get((m, largest), (np.nan, np.nan))) for metric in spec.metrics]
             + [f"{1000 * fit.get(m, np.nan):.2f}"] for m in methods]
    table.append(["native (no stitching)"] + [fmt(native_value(frame, task, metric), np.nan) for metric in spec.metrics] + ["–"])
    lines += [f"All metrics at n={largest} anchors:", "", tabulate(table, header, tablefmt="github", disable_numparse=True), ""]
    if plot_path:
        lines += [f"![{md_escape(task.name)}: {task.main_metric} against anchors]({plot_path})", ""]
    return lines


def anchor_plot(frame: pd.DataFrame, task: Task, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(frame, task, task.main_metric)
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    for method in sorted({m for m, _ in summary}):
        counts = sorted(n for m, n in summary if m == method)
        means = np.array([summary[(method, n)][0] for n in counts])
        halves = np.nan_to_num(np.array([summary[(method, n)][1] for n in counts]))
        axes.plot(counts, means, marker="o", label=method)
        axes.fill_between(counts, means - halves, means + halves, alpha=0.15)
    native = native_value(frame, task, task.main_metric)
    if not np.isnan(native):
        axes.axhline(native, color="black", linestyle="--", linewidth=1, label="native")
    axes.set_xscale("log", base=2)
    axes.set_xlabel("number of anchors")
    axes.set_ylabel(task.main_metric)
    axes.set_title(task.name)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Software": None})  # no version stamp: byte-identical reruns
    plt.close(figure)


def render(results_dir: Path, out: Path, plots: bool = True) -> str:
    """Write the leaderboard (and plots beside it under results/plots/) and return its text."""
    tasks = {t.name: t for t in discover_tasks()}
    frame, stale = current_rows(ResultStore(results_dir).rows(), tasks)
    lines = ["# Leaderboard", "",
             "Generated by `bench leaderboard` from `results/` alone; do not edit by hand. "
             "Each cell is the mean over anchor seeds (of the mean over encoder pairs) ± the half-width of a 95% "
             "Student-t interval over seeds. `absolute` is the no-translation floor; `native` is the target decoder "
             "on the target's own embeddings, the no-stitching ceiling.", ""]
    if stale:
        lines += [f"{stale} stored results are stale (older task version or spec, or changed method source) and are not shown; "
                  "rerun `bench run` to refresh them.", ""]
    scored = [t for t in tasks.values() if not frame.empty and (frame.task == t.name).any()]
    if not scored:
        lines += ["No results yet: run `bench run`.", ""]
    else:
        lines += overview(frame, scored)
    for task in scored:
        plot = None
        if plots:
            plot_file = Path(PLOTS_DIR) / f"{task.name}-anchors.png"
            anchor_plot(frame, task, out.parent / plot_file)
            plot = plot_file.as_posix()
        lines += task_section(frame, task, plot)
    text = "\n".join(lines).rstrip() + "\n"
    text = re.sub(r"\n{3,}", "\n\n", text)
    out.write_text(text, encoding="utf-8")
    return text


def overview(frame: pd.DataFrame, tasks: list[Task]) -> list[str]:
    """Each method's main metric on every task, at the task's largest anchor count."""
    columns, values = [], {}
    for task in tasks:
        counts = frame[(frame.task == task.name) & (frame.method != NATIVE)].n_anchors
        if counts.empty:
            continue
        largest = int(counts.max())
        columns.append(task)
        for (method, n), value in summarise(frame, task, task.main_metric).items():
            if n == largest:
                values[(method, task.name)] = value
    methods = sorted({m for m, _ in values})
    header = ["method"] + [f"{md_escape(t.name)} ({t.main_metric}, n={int(frame[(frame.task == t.name) & (frame.method != NATIVE)].n_anchors.max())})" for t in columns]
    table = [[md_escape(m)] + [fmt(*values.get((m, t.name), (np.nan, np.nan))) for t in columns] for m in methods]
    table.append(["native (no stitching)"] + [fmt(native_value(frame, t, t.main_metric), np.nan) for t in columns])
    return ["## Overview", "", tabulate(table, header, tablefmt="github", disable_numparse=True), ""]
