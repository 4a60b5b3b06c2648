"""The report's tables: the ranking, each method's main metric per task, the methods' cards."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.compare import FLOOR, NATIVE
from bench.method import METHODS, REPO_ROOT
from bench.ranking import Ranking, rank
from bench.registry import Registry
from bench.report.blocks import Block, Code, Inline, Para, Table, User, link_or_text
from bench.report.stats import arrow, fmt, largest_count, native_value, summarise
from bench.task import Task

NATIVE_LABEL = "native (no stitching)"


def method_cell(label: str, names: dict[str, str], registry: Registry = METHODS) -> Inline:
    """The method's (or merger's) label, linked to its card when the submission lives in this repository."""
    name = names.get(label, label)
    info = registry.get(name) if name in registry else None
    if info is None or info.folder is None or not info.folder.is_relative_to(REPO_ROOT):
        return User(label)
    return link_or_text(label, (info.folder.relative_to(REPO_ROOT) / "card.yaml").as_posix())


def ranking_table(ranking: Ranking, names: dict[str, str], with_tasks: bool = True) -> Table:
    header = (["rank", "method", "score (95% CI)", "tie group", "mean rank"] + (["tasks"] if with_tasks else [])
              + ["fit ms"])
    rows = []
    for s in ranking.standings:
        row = [str(s.rank), method_cell(s.method, names), f"{s.score:.3f} ({s.low:.3f}–{s.high:.3f})", s.group,
               f"{s.borda:.2f}"]
        rows.append(row + ([str(s.tasks)] if with_tasks else []) + [f"{1000 * s.fit_seconds:.2f}"])
    return Table(header, rows)


def ranking_blocks(cells: pd.DataFrame, names: dict[str, str], with_tasks: bool) -> tuple[list[Block], Ranking]:
    ranking = rank(cells)
    if not ranking.standings:
        no_ranking = f"No ranking: the task has no `{FLOOR}` (floor) or `{NATIVE}` (ceiling) results to normalise by."
        return [Para([no_ranking])], ranking
    return [ranking_table(ranking, names, with_tasks)], ranking


def unavailable_para(reasons: dict[str, str]) -> list[Block]:
    """Why a metric shows "–": stated once per task rather than hidden."""
    if not reasons:
        return []
    parts: list[Inline] = ["Unavailable here (shown as –): "]
    for i, (metric, reason) in enumerate(sorted(reasons.items())):
        parts += (["; "] if i else []) + [Code(metric), ": ", User(reason)]
    return [Para(parts)]


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
    header = ["method"] + [f"{t.name} ({t.main_metric} {arrow(t.main_metric)}, n={n})" for t, n in columns]
    table: list[Sequence[Inline]] = [
        [method_cell(m, names)] + [fmt(*values.get((m, t.name), (np.nan, np.nan))) for t, _ in columns]
        for m in methods]
    table.append([NATIVE_LABEL] + [fmt(native_value(frame, t, t.main_metric), np.nan) for t, _ in columns])
    return Table(header, table)


def methods_table(labels: list[str], names: dict[str, str], registry: Registry = METHODS) -> Table:
    """Each method's (or merger's) card: who made it, where it is described, under which licence, and
    how its defaults were chosen (on the anchors, or a priori: never on a benchmark task)."""
    rows = []
    for label in labels:
        name = names.get(label, label)
        card = registry.get(name).card if name in registry else {}
        authors = card.get("authors", "")
        authors = ", ".join(map(str, authors)) if isinstance(authors, list) else str(authors)
        paper = str(card.get("paper", "") or "")
        rows.append([method_cell(label, names, registry), User(str(card.get("title", ""))), User(authors),
                     link_or_text(paper, paper) if paper else "", User(str(card.get("license", ""))),
                     User(str(card.get("defaults_chosen_by", "") or "not stated"))])
    return Table(["method", "title", "authors", "paper", "license", "defaults chosen by"], rows)

