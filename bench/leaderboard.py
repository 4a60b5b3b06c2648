"""leaderboard.md (and leaderboard.html) and their plots, rebuilt from results/ alone: no
recomputation, byte-identical output for the same results.

The page is first built as a small list of blocks (headings, paragraphs, tables, images) and then
written by a renderer: Markdown here, HTML in bench/html.py. Text that comes from submissions or
task files is wrapped in `User` so that each renderer escapes it its own way.

Per task each number is a mean over seeds of the per-seed mean over encoder pairs, with a 95%
Student-t interval over seeds; the overall ranking is in bench/ranking.py. Rows whose task
version/spec or method source no longer match the current files are stale: counted, never mixed
with current ones.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union
from urllib.parse import quote

import numpy as np
import pandas as pd
from scipy import stats
from tabulate import tabulate

from bench.method import METHODS, REPO_ROOT
from bench.merging import MERGERS
from bench.metrics import METRICS
from bench.registry import Registry
from bench.ranking import FLOOR, Ranking, empty_cells, normalised_cells, rank
from bench.results import ResultStore
from bench.runner import NATIVE
from bench.task import Task, discover_tasks, plugins

PLOTS_DIR = "results/plots"
DPI = 100  # fixed: the PNG bytes must not depend on the machine's matplotlib defaults
NATIVE_LABEL = "native (no stitching)"


# ---------------------------------------------------------------------------------------------
# the document model, shared by the Markdown and HTML renderers


@dataclass(frozen=True)
class User:
    """Text from a submission or a task file: escaped by every renderer."""
    text: str


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass(frozen=True)
class Link:
    text: str  # escaped like User
    href: str  # checked by safe_href before it is built


Inline = Union[str, User, Code, Strong, Link]  # a plain str is our own text, safe in Markdown


@dataclass
class Heading:
    level: int
    text: Inline


@dataclass
class Para:
    parts: list[Inline]


@dataclass
class Table:
    header: list[Inline]
    rows: list[list[Inline]]


@dataclass
class Image:
    path: str  # relative to the output's folder
    alt: str
    file: Path | None = None  # where to read it from, when that is not beside the output (results/grids)


Block = Union[Heading, Para, Table, Image]


def md_escape(text: str) -> str:
    """Text from submissions or tasks, made inert in Markdown and HTML."""
    text = re.sub(r"[\r\n]+", " ", str(text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", text)


def safe_href(url: Any) -> str | None:
    """A link target that cannot run code: http(s) URLs and relative paths only (no javascript:)."""
    url = str(url or "").strip()
    if re.match(r"^https?://[^\s]+$", url) or re.match(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$", url):
        return quote(url, safe=":/#?&=%@+,;~-._")  # no quotes, spaces or parentheses survive
    return None


def link_or_text(text: str, url: Any) -> Inline:
    href = safe_href(url)
    return Link(text, href) if href else User(text)


def md_inline(part: Inline) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Code):
        return f"`{part.text.replace('`', '')}`"
    if isinstance(part, Strong):
        return f"**{md_escape(part.text)}**"
    if isinstance(part, Link):
        return f"[{md_escape(part.text)}]({part.href})"
    return md_escape(part.text)


def to_markdown(blocks: list[Block]) -> str:
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {md_inline(block.text)}")
        elif isinstance(block, Para):
            out.append("".join(md_inline(p) for p in block.parts))
        elif isinstance(block, Table):
            out.append(tabulate([[md_inline(c) for c in row] for row in block.rows], [md_inline(c) for c in block.header],
                                tablefmt="github", disable_numparse=True))
        else:
            out.append(f"![{md_escape(block.alt)}]({block.path})")
    return "\n\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# numbers


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


def is_current_factory(tasks: dict[str, Task]) -> Callable[[dict[str, Any]], bool]:
    """A row is current when its task version/spec and its method's source match today's files."""
    source_hashes: dict[tuple[str, str], str] = {}

    def is_current(row: dict[str, Any]) -> bool:
        task = tasks.get(row["task"])
        if task is None or (row["task_version"], row["task_spec_hash"]) != (task.spec.version, task.spec_hash):
            return False
        if row["method_name"] == NATIVE:
            return True
        registry, name = plugins(task.spec.kind), row["method_name"]
        if (registry.kind, name) not in source_hashes:
            source_hashes[(registry.kind, name)] = registry.get(name).source_hash if name in registry else ""
        return row["method_source_hash"] == source_hashes[(registry.kind, name)]

    return is_current


def current_rows(rows: list[dict[str, Any]], tasks: dict[str, Task]) -> tuple[pd.DataFrame, int]:
    """Scored rows that match the current task files and method sources, and the count of stale ones."""
    is_current = is_current_factory(tasks)
    ok = [r for r in rows if r["status"] == "ok"]
    current = [r for r in ok if is_current(r)]
    frame = pd.DataFrame([{**{k: r[k] for k in ("task", "source", "target", "method", "method_name", "n_anchors", "seed", "fit_seconds")},
                           "isolation": r.get("isolation", "in-process"),
                           **{f"m:{k}": v for k, v in r["metrics"].items()}} for r in current])
    return frame, len(ok) - len(current)


def unavailable_reasons(rows: list[dict[str, Any]], tasks: dict[str, Task]) -> dict[str, dict[str, str]]:
    """task -> metric -> why the metric has no value there (the first reason stored; they repeat per cell)."""
    is_current, reasons = is_current_factory(tasks), {}
    for row in rows:
        if row["status"] == "ok" and row.get("unavailable") and is_current(row):
            for metric, reason in row["unavailable"].items():
                reasons.setdefault(row["task"], {}).setdefault(metric, reason)
    return reasons


def failed_counts(rows: list[dict[str, Any]], tasks: dict[str, Task]) -> Counter:
    """Current failed cells per method label (they are retried by the next `bench run`)."""
    is_current = is_current_factory(tasks)
    return Counter(r["method"] for r in rows if r["status"] != "ok" and is_current(r))


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


def method_cell(label: str, names: dict[str, str], registry: Registry = METHODS) -> Inline:
    """The method's (or merger's) label, linked to its card when the submission lives in this repository."""
    name = names.get(label, label)
    info = registry.get(name) if name in registry else None
    if info is None or info.folder is None or not info.folder.is_relative_to(REPO_ROOT):
        return User(label)
    return link_or_text(label, (info.folder.relative_to(REPO_ROOT) / "card.yaml").as_posix())


# ---------------------------------------------------------------------------------------------
# tables


def ranking_table(ranking: Ranking, names: dict[str, str], with_tasks: bool = True) -> Table:
    header = ["rank", "method", "score (95% CI)", "tie group", "mean rank"] + (["tasks"] if with_tasks else []) + ["fit ms"]
    rows = []
    for s in ranking.standings:
        row = [str(s.rank), method_cell(s.method, names), f"{s.score:.3f} ({s.low:.3f}–{s.high:.3f})", s.group, f"{s.borda:.2f}"]
        rows.append(row + ([str(s.tasks)] if with_tasks else []) + [f"{1000 * s.fit_seconds:.2f}"])
    return Table(header, rows)


def ranking_blocks(cells: pd.DataFrame, names: dict[str, str], with_tasks: bool) -> tuple[list[Block], Ranking]:
    ranking = rank(cells)
    if not ranking.standings:
        return [Para([f"No ranking: the task has no `{FLOOR}` (floor) or `{NATIVE}` (ceiling) results to normalise by."])], ranking
    return [ranking_table(ranking, names, with_tasks)], ranking


def unavailable_para(reasons: dict[str, str]) -> list[Block]:
    """Why a metric shows "–": stated once per task rather than hidden."""
    if not reasons:
        return []
    parts: list[Inline] = ["Unavailable here (shown as –): "]
    for i, (metric, reason) in enumerate(sorted(reasons.items())):
        parts += (["; "] if i else []) + [Code(metric), ": ", User(reason)]
    return [Para(parts)]


def task_blocks(frame: pd.DataFrame, task: Task, cells: pd.DataFrame, names: dict[str, str], plots: list[Image],
                reasons: dict[str, str]) -> list[Block]:
    spec = task.spec
    largest = largest_count(frame, task)
    blocks: list[Block] = [Heading(2, User(task.name))]
    if spec.description.strip():
        blocks.append(Para([User(spec.description.strip())]))
    blocks.append(Para(["Data set ", Code(spec.dataset.name), " (fit split ", Code(spec.dataset.fit_split), ", scored on ",
                        Code(spec.dataset.eval_split), f"), {len(task.pairs())} encoder pairs, decoder ", Code(spec.decoder),
                        f", anchors sampled {spec.anchors.sampling}, seeds {', '.join(map(str, spec.anchors.seeds))}. "
                        f"Task version {spec.version}, spec hash ", Code(task.spec_hash), "."]))
    if largest is None:
        return blocks + [Para(["No current results."])]
    blocks.append(Para([Strong(f"Ranking by normalised {task.main_metric}"), f" at n={largest} anchors (0 = `{FLOOR}`, 1 = `{NATIVE}`):"]))
    blocks += ranking_blocks(cells, names, with_tasks=False)[0]

    main = summarise(frame, task, task.main_metric)
    sign = 1 if METRICS.get(task.main_metric).higher_is_better else -1
    counts = sorted({n for _, n in main})
    methods = sorted({m for m, _ in main}, key=lambda m: (-sign * main.get((m, largest), (np.nan,))[0], m))
    native = native_value(frame, task, task.main_metric)
    table = [[method_cell(m, names)] + [fmt(*main.get((m, n), (np.nan, np.nan))) for n in counts] for m in methods]
    table.append([NATIVE_LABEL] + [fmt(native, np.nan)] * len(counts))
    blocks += [Para([Strong(f"{task.main_metric} {arrow(task.main_metric)}"), " by number of anchors (mean ± 95% interval over seeds):"]),
               Table(["method"] + [f"n={n}" for n in counts], table)]

    summaries = {metric: summarise(frame, task, metric) for metric in spec.metrics}
    fit = frame[(frame.task == task.name) & (frame.n_anchors == largest)].groupby("method").fit_seconds.mean()
    table = [[method_cell(m, names)] + [fmt(*summaries[metric].get((m, largest), (np.nan, np.nan))) for metric in spec.metrics]
             + [f"{1000 * fit.get(m, np.nan):.2f}"] for m in methods]
    table.append([NATIVE_LABEL] + [fmt(native_value(frame, task, metric), np.nan) for metric in spec.metrics] + ["–"])
    blocks += [Para([f"All metrics at n={largest} anchors:"]),
               Table(["method"] + [f"{m} {arrow(m)}" for m in spec.metrics] + ["fit ms"], table)]
    return blocks + unavailable_para(reasons) + plots


MERGING_NOTE = ("Merging tasks (\"From Charts to Atlas\", arXiv 2311.06547) score the second plug-in family, mergers "
                "(`mergers/`): the task's fit split is cut into parts, one encoder is trained per part, and a merger fuses "
                "their spaces using anchors. Latent metrics compare the merged test embeddings with those of the same "
                "encoder trained end to end on the whole fit split (the reference row); accuracy is that of the task's "
                "decoder fitted on the merged fit split. Each value is the mean ± 95% Student-t interval over anchor seeds "
                "at the largest anchor count. Mergers are not normalised or ranked with the translation methods.")


def merging_blocks(frame: pd.DataFrame, task: Task, names: dict[str, str], reasons: dict[str, str]) -> list[Block]:
    """A merging task: the main metric per merger and partition, then every metric per partition."""
    spec, merging = task.spec, task.spec.merging
    blocks: list[Block] = [Heading(3, User(task.name))]
    if spec.description.strip():
        blocks.append(Para([User(spec.description.strip())]))
    blocks.append(Para(["Data set ", Code(spec.dataset.name), f", {merging.n_tasks} parts, one ", Code(f"{merging.arch}-w{merging.width}"),
                        " encoder each; end-to-end reference ", Code(task.pairs()[0][1]), ", decoder ", Code(spec.decoder),
                        f", anchors sampled {spec.anchors.sampling}, seeds {', '.join(map(str, spec.anchors.seeds))}. "
                        f"Task version {spec.version}, spec hash ", Code(task.spec_hash), "."]))
    largest = largest_count(frame, task)
    if largest is None:
        return blocks + [Para(["No current results."])]
    main, sign = task.main_metric, 1 if METRICS.get(task.main_metric).higher_is_better else -1
    by_partition = {how: {metric: summarise(frame[frame.source == how], task, metric) for metric in spec.metrics}
                    for how in merging.partitions}
    mergers = sorted({m for how in merging.partitions for m, _ in by_partition[how][main]},
                     key=lambda m: (-sign * np.nanmean([by_partition[h][main].get((m, largest), (np.nan,))[0] for h in merging.partitions]), m))
    overview = [[method_cell(m, names, MERGERS)] + [fmt(*by_partition[h][main].get((m, largest), (np.nan, np.nan))) for h in merging.partitions]
                for m in mergers]
    overview.append(["end to end (reference)"] + [fmt(native_value(frame, task, main), np.nan)] * len(merging.partitions))
    blocks += [Para([Strong(f"{main} {arrow(main)}"), f" by partition at n={largest} anchors:"]),
               Table(["merger"] + list(merging.partitions), overview)]
    fit = frame[(frame.task == task.name) & (frame.n_anchors == largest)].groupby(["source", "method"]).fit_seconds.mean()
    for how in merging.partitions:
        table = [[method_cell(m, names, MERGERS)] + [fmt(*by_partition[how][metric].get((m, largest), (np.nan, np.nan))) for metric in spec.metrics]
                 + [f"{1000 * fit.get((how, m), np.nan):.2f}"] for m in mergers]
        table.append(["end to end (reference)"] + [fmt(native_value(frame, task, metric), np.nan) for metric in spec.metrics] + ["–"])
        blocks += [Para([Strong(how), f": all metrics at n={largest} anchors"]),
                   Table(["merger"] + [f"{m} {arrow(m)}" for m in spec.metrics] + ["fit ms"], table)]
    return blocks + unavailable_para(reasons)


def overview_table(frame: pd.DataFrame, tasks: list[Task], names: dict[str, str]) -> Table:
    """Each method's main metric on every task, at the task's largest anchor count."""
    columns, values = [], {}
    for task in tasks:
        largest = largest_count(frame, task)
        if largest is None:
            continue
        columns.append((task, largest))
        for (method, n), value in summarise(frame, task, task.main_metric).items():
            if n == largest:
                values[(method, task.name)] = value
    methods = sorted({m for m, _ in values})
    header: list[Inline] = ["method"] + [f"{t.name} ({t.main_metric} {arrow(t.main_metric)}, n={n})" for t, n in columns]
    table = [[method_cell(m, names)] + [fmt(*values.get((m, t.name), (np.nan, np.nan))) for t, _ in columns] for m in methods]
    table.append([NATIVE_LABEL] + [fmt(native_value(frame, t, t.main_metric), np.nan) for t, _ in columns])
    return Table(header, table)


def methods_table(labels: list[str], names: dict[str, str], registry: Registry = METHODS) -> Table:
    """Each method's (or merger's) card: who made it, where it is described, under which licence."""
    rows = []
    for label in labels:
        name = names.get(label, label)
        card = registry.get(name).card if name in registry else {}
        authors = card.get("authors", "")
        authors = ", ".join(map(str, authors)) if isinstance(authors, list) else str(authors)
        paper = str(card.get("paper", "") or "")
        rows.append([method_cell(label, names, registry), User(str(card.get("title", ""))), User(authors),
                     link_or_text(paper, paper) if paper else "", User(str(card.get("license", "")))])
    return Table(["method", "title", "authors", "paper", "license"], rows)


# ---------------------------------------------------------------------------------------------
# plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, metadata={"Software": None})  # no version stamp: byte-identical reruns
    _pyplot().close(figure)


def method_colours(methods: list[str]) -> dict[str, Any]:
    """The same colour for a method in every plot."""
    plt = _pyplot()
    palette = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    return {m: palette(i % palette.N) for i, m in enumerate(sorted(methods))}


def anchor_plot(frame: pd.DataFrame, task: Task, path: Path, colours: dict[str, Any]) -> None:
    plt = _pyplot()
    summary = summarise(frame, task, task.main_metric)
    figure, axes = plt.subplots(figsize=(6, 4), dpi=DPI)
    for method in sorted({m for m, _ in summary}):
        counts = sorted(n for m, n in summary if m == method)
        means = np.array([summary[(method, n)][0] for n in counts])
        halves = np.nan_to_num(np.array([summary[(method, n)][1] for n in counts]))
        axes.plot(counts, means, marker="o", label=method, color=colours.get(method))
        axes.fill_between(counts, means - halves, means + halves, alpha=0.15, color=colours.get(method))
    native = native_value(frame, task, task.main_metric)
    if not np.isnan(native):
        axes.axhline(native, color="black", linestyle="--", linewidth=1, label="native")
    axes.set_xscale("log", base=2)
    axes.set_xlabel("number of anchors")
    axes.set_ylabel(task.main_metric)
    axes.set_title(task.name)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    _save(figure, path)


def matrix_plot(frame: pd.DataFrame, task: Task, path: Path) -> None:
    """Source-by-target grid of the main metric per method (the semantic-alignment paper's
    cross-modality figure): row = encoder, column = decoder, diagonal = the target's native score."""
    plt = _pyplot()
    largest = largest_count(frame, task)
    column = f"m:{task.main_metric}"
    rows = frame[(frame.task == task.name) & (frame.n_anchors == largest) & (frame.method != NATIVE)]
    encoders = sorted({e for pair in task.pairs() for e in pair})
    methods = sorted(rows.method.unique())
    native = frame[(frame.task == task.name) & (frame.method == NATIVE)].drop_duplicates("target").set_index("target")[column]
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
    ticks = [e.replace(task.spec.dataset.name + "-", "") for e in encoders]  # shorter labels; the title names the data set
    image = None
    for axis, method in zip(axes.flat, methods):
        image = axis.imshow(grids[method], vmin=low, vmax=high, cmap="viridis")
        for (i, j), value in np.ndenumerate(grids[method]):
            if not np.isnan(value):
                axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                          color="black" if value > (low + high) / 2 else "white", fontweight="bold" if i == j else "normal")
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


# ---------------------------------------------------------------------------------------------
# the page


INTRO = ("Generated by `bench leaderboard` from `results/` alone; do not edit by hand. "
         f"`{FLOOR}` is the no-translation floor; `{NATIVE}` is the target decoder on the target's own embeddings, "
         "the no-stitching ceiling.")
RANKING_NOTE = (f"Methods are ranked by their **score**: the task's main metric at its largest anchor count, normalised per "
                f"cell to 0 at the `{FLOOR}` floor and 1 at the `{NATIVE}` ceiling of the same encoder pair, averaged over "
                "cells and then over tasks (above 1: stitching beat the target's own encoder). The interval is a 95% "
                "percentile bootstrap over anchor seeds (2,000 resamples). **rank** is 1 + the number of methods "
                "significantly better; methods sharing a **tie group** letter are not significantly different "
                "(paired Wilcoxon signed-rank test over common cells, Holm-corrected over all pairs, α = 0.05). "
                "**mean rank** is the Borda count: the mean over tasks of the method's rank on each task. "
                "**fit ms**: mean fit time per cell (cells fitted together in one `fit_many` call share its time equally).")


def build(frame: pd.DataFrame, tasks: list[Task], stale: int, failed: Counter, plot_root: Path | None,
          results_dir: Path | None = None, reasons: dict[str, dict[str, str]] | None = None) -> list[Block]:
    """Every block of the page; plots are written under plot_root/results/plots (None: no plots)."""
    blocks: list[Block] = [Heading(1, "Leaderboard"), Para([INTRO])]
    if stale:
        blocks.append(Para([f"{stale} stored results are stale (older task version or spec, or changed method source) and are "
                            "not shown; rerun `bench run` to refresh them."]))
    if failed:
        blocks.append(Para(["Failed cells (not scored; retried by the next `bench run`): "]
                           + [p for i, (m, n) in enumerate(sorted(failed.items())) for p in ([", "] if i else []) + [User(m), f" {n}"]]))
    scored = [t for t in tasks if not frame.empty and (frame.task == t.name).any()]
    if not scored:
        return blocks + [Para(["No results yet: run `bench run`."])]
    unconfined = sorted(set(frame.method[frame.isolation == "process"]))
    if unconfined:  # bench/sandbox.py: rows of code that ran with --no-sandbox
        blocks.append(Para([Strong("Not sandboxed"), ": scores of code that ran with `--no-sandbox`, which nothing confined, "
                            "so they rest on good faith (docs/security.md): "] + [User(", ".join(unconfined))]))
    reasons = reasons or {}
    merging = [t for t in scored if t.spec.kind == "merging"]
    scored = [t for t in scored if t.spec.kind != "merging"]
    stitching = frame[~frame.task.isin([t.name for t in merging])]
    names = frame.drop_duplicates("method").set_index("method").method_name.to_dict()
    colours = method_colours(sorted(set(stitching.method) - {NATIVE}))
    cells = {t.name: normalised_cells(frame, t) for t in scored}
    # Ablation tasks (methods listed with parameters, e.g. ortho[preprocessing=l2]) score variants on a
    # few tasks only; ranked beside methods scored on every task they would not be comparable.
    ablations = {t.name for t in scored if any(m.params or m.label for m in t.methods)}
    ranked = [c for name, c in cells.items() if not c.empty and name not in ablations]
    all_cells = pd.concat(ranked, ignore_index=True) if ranked else empty_cells()

    blocks += [Heading(2, "Overall ranking"), Para([RANKING_NOTE])]
    table, overall = ranking_blocks(all_cells, names, with_tasks=True)
    blocks += table
    unranked = [t.name for t in scored if cells[t.name].empty]
    if ablations:
        blocks.append(Para(["Ablation tasks, ranked only on their own below: "] + [User(", ".join(sorted(ablations)))]))
    if unranked:
        blocks.append(Para([f"Not in the ranking (no `{FLOOR}` or `{NATIVE}` results): "] + [User(", ".join(unranked))]))
    if plot_root is not None and overall.standings:
        cost_plot(overall, plot_root / PLOTS_DIR / "cost-vs-score.png", colours)
        blocks.append(Image(f"{PLOTS_DIR}/cost-vs-score.png", "fit time against normalised score"))

    blocks.append(Heading(2, "By task kind"))
    for kind in sorted({t.spec.kind for t in scored}):
        kind_tasks = [t.name for t in scored if t.spec.kind == kind and not cells[t.name].empty and t.name not in ablations]
        blocks += [Heading(3, User(kind)), Para([f"{len(kind_tasks)} task{'' if len(kind_tasks) == 1 else 's'}: "] + [User(", ".join(kind_tasks))])]
        blocks += ranking_blocks(all_cells[all_cells.task.isin(kind_tasks)], names, with_tasks=True)[0]

    blocks += [Heading(2, "Main metric per task"), Para(["Mean ± 95% Student-t interval over anchor seeds of the mean over encoder pairs."]),
               overview_table(frame, scored, names)]
    blocks += [Heading(2, "Methods"), methods_table(sorted(set(stitching.method) - {NATIVE}), names)]
    for task in scored:
        plots = []
        if plot_root is not None:
            for suffix, alt, draw in (("anchors", "against anchors", lambda p: anchor_plot(frame, task, p, colours)),
                                      ("matrix", "source-by-target matrix", lambda p: matrix_plot(frame, task, p))):
                relative = f"{PLOTS_DIR}/{task.name}-{suffix}.png"
                draw(plot_root / relative)
                plots.append(Image(relative, f"{task.name}: {task.main_metric} {alt}"))
            # image grids the runner saved for reconstruction tasks, linked as results/grids/... (results_dir is
            # results/ beside leaderboard.md in the repository)
            grids = results_dir / "grids" / task.name if results_dir is not None else None
            for grid in sorted(grids.glob("*.png")) if grids is not None and grids.is_dir() else []:
                plots.append(Image(f"results/grids/{task.name}/{grid.name}",
                                   f"{task.name}: originals and {grid.stem}'s stitched reconstructions", grid))
        blocks += task_blocks(frame, task, cells[task.name], names, plots, reasons.get(task.name, {}))
    if merging:
        merger_frame = frame[frame.task.isin([t.name for t in merging])]
        blocks += [Heading(2, "Merging"), Para([MERGING_NOTE])]
        for task in merging:
            blocks += merging_blocks(frame, task, names, reasons.get(task.name, {}))
        blocks += [Heading(3, "Mergers"), methods_table(sorted(set(merger_frame.method) - {NATIVE}), names, MERGERS)]
    return blocks


def render(results_dir: Path, out: Path, plots: bool = True, html: Path | None = None,
           tasks: list[Task] | None = None) -> str:
    """Write the leaderboard (plots beside it under results/plots/, and the HTML page when asked)
    and return its Markdown. `tasks` defaults to every task file in tasks/."""
    task_list = sorted(tasks if tasks is not None else discover_tasks(), key=lambda t: t.name)
    by_name = {t.name: t for t in task_list}
    rows = ResultStore(results_dir).rows()
    frame, stale = current_rows(rows, by_name)
    blocks = build(frame, task_list, stale, failed_counts(rows, by_name), out.parent if plots else None,
                   results_dir, unavailable_reasons(rows, by_name))
    text = to_markdown(blocks)
    out.write_text(text, encoding="utf-8")
    if html is not None:
        from bench.html import to_html

        Path(html).write_text(to_html(blocks, out.parent), encoding="utf-8")
    return text
