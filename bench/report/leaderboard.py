"""leaderboard.md (and leaderboard.html) and their plots, rebuilt from results/ alone: no
recomputation, byte-identical output for the same results.

The page is first built as a list of blocks (bench/report/blocks.py) and then written by
bench/report/markdown.py and, with --html, bench/report/html.py. Per task each number is a mean
over seeds of the per-seed mean over encoder pairs, with a 95% Student-t interval over seeds
(bench/report/stats.py); the overall ranking is bench/ranking.py. Rows whose task version/spec or
method source no longer match the current files are stale: counted, never mixed with current ones
(bench/report/rows.py).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from bench.metrics import METRICS
from bench.compare import FLOOR, NATIVE
from bench.ranking import empty_cells, normalised_cells
from bench.report.blocks import Block, Code, Heading, Image, Para, Strong, Table, User
from bench.report.html import to_html
from bench.report.markdown import to_markdown
from bench.report.plots import anchor_plot, cost_plot, matrix_plot, method_colours
from bench.report.rows import current_rows, failed_counts, unavailable_reasons
from bench.report.stats import arrow, fmt, largest_count, native_value, summarise
from bench.report.tables import (NATIVE_LABEL, method_cell, methods_table, overview_table, ranking_blocks,
                                 unavailable_para)
from bench.results import ResultStore
from bench.task import Task, discover_tasks, plugins

PLOTS_DIR = "results/plots"


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
    spec, merging, mergers_registry = task.spec, task.spec.merging, plugins(task.spec.kind)  # bench.merging's MERGERS
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
    overview = [[method_cell(m, names, mergers_registry)] + [fmt(*by_partition[h][main].get((m, largest), (np.nan, np.nan))) for h in merging.partitions]
                for m in mergers]
    overview.append(["end to end (reference)"] + [fmt(native_value(frame, task, main), np.nan)] * len(merging.partitions))
    blocks += [Para([Strong(f"{main} {arrow(main)}"), f" by partition at n={largest} anchors:"]),
               Table(["merger"] + list(merging.partitions), overview)]
    fit = frame[(frame.task == task.name) & (frame.n_anchors == largest)].groupby(["source", "method"]).fit_seconds.mean()
    for how in merging.partitions:
        table = [[method_cell(m, names, mergers_registry)] + [fmt(*by_partition[how][metric].get((m, largest), (np.nan, np.nan))) for metric in spec.metrics]
                 + [f"{1000 * fit.get((how, m), np.nan):.2f}"] for m in mergers]
        table.append(["end to end (reference)"] + [fmt(native_value(frame, task, metric), np.nan) for metric in spec.metrics] + ["–"])
        blocks += [Para([Strong(how), f": all metrics at n={largest} anchors"]),
                   Table(["merger"] + [f"{m} {arrow(m)}" for m in spec.metrics] + ["fit ms"], table)]
    return blocks + unavailable_para(reasons)



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
        blocks += [Heading(3, "Mergers"), methods_table(sorted(set(merger_frame.method) - {NATIVE}), names, plugins("merging"))]
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
        Path(html).write_text(to_html(blocks, out.parent), encoding="utf-8")
    return text
