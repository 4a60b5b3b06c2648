"""The report's tables: the ranking, each method's main metric per task, the methods' cards, and the
cross-modal encoder x decoder matrix of tasks whose encoders read different modalities."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.compare import FLOOR, NATIVE, RELATIVE
from bench.encoders import encoder_modality
from bench.method import METHODS, REPO_ROOT
from bench.metrics import METRICS
from bench.ranking import Ranking, rank
from bench.registry import Registry
from bench.relative import CARD as RELATIVE_CARD
from bench.report.blocks import Block, Code, Inline, Para, Strong, Table, User, link_or_text
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
        card = registry.get(name).card if name in registry else {RELATIVE: RELATIVE_CARD}.get(name, {})
        authors = card.get("authors", "")
        authors = ", ".join(map(str, authors)) if isinstance(authors, list) else str(authors)
        paper = str(card.get("paper", "") or "")
        rows.append([method_cell(label, names, registry), User(str(card.get("title", ""))), User(authors),
                     link_or_text(paper, paper) if paper else "", User(str(card.get("license", ""))),
                     User(str(card.get("defaults_chosen_by", "") or "not stated"))])
    return Table(["method", "title", "authors", "paper", "license", "defaults chosen by"], rows)



# --- the cross-modal matrix (the semantic-alignment paper's encoder x decoder table) -------------------------


def task_modalities(task: Task) -> dict[str, str | None]:
    """Each encoder of the task (in order of first appearance) -> the modality it reads (None: unknown)."""
    encoders = dict.fromkeys(e for pair in task.pairs() for e in pair)
    return {e: encoder_modality(e) for e in encoders}


def is_cross_modal(task: Task) -> bool:
    """A task whose encoders read different modalities of one paired data set: what the matrix is for.
    Decided from the encoders' declared modality, so it holds for any kind and any task name."""
    return len({m for m in task_modalities(task).values() if m is not None}) > 1


def _pair_means(frame: pd.DataFrame, task: Task, column: str, largest: int) -> pd.Series:
    """(method, source, target) -> mean over seeds of `column` at the largest anchor count."""
    rows = frame[(frame.task == task.name) & (frame.n_anchors == largest) & (frame.method != NATIVE)]
    return rows.groupby(["method", "source", "target"])[column].mean()


def crossmodal_blocks(frame: pd.DataFrame, task: Task, names: dict[str, str]) -> list[Block]:
    """For a cross-modal task: the main metric as an encoder (rows) x decoder (columns) matrix for the
    method best across modalities, its native scores on the diagonal, and every method by direction
    (text -> image, image -> text, within one modality), baselines included. [] for any other task."""
    largest = largest_count(frame, task)
    if not is_cross_modal(task) or largest is None:
        return []
    metric, column = task.main_metric, f"m:{task.main_metric}"
    modality = task_modalities(task)
    kinds = list(dict.fromkeys(m for m in modality.values() if m is not None))
    encoders = sorted((e for e in modality if modality[e] is not None), key=lambda e: kinds.index(modality[e] or ""))
    means = _pair_means(frame, task, column, largest)
    if means.empty:
        return []
    native = (frame[(frame.task == task.name) & (frame.method == NATIVE)]
              .drop_duplicates("target").set_index("target")[column])
    sign = 1 if METRICS.get(metric).higher_is_better else -1

    def direction(source: str, target: str) -> str:
        return f"{modality[source]} → {modality[target]}"

    pairs = [(s, t) for s, t in task.pairs() if modality[s] is not None and modality[t] is not None]
    crossing = sorted({direction(s, t) for s, t in pairs if modality[s] != modality[t]})
    directions = crossing + sorted({direction(s, t) for s, t in pairs if modality[s] == modality[t]})
    by_direction: dict[str, dict[str, float]] = {}  # method -> direction -> mean over its pairs
    for method in sorted(set(means.index.get_level_values("method"))):
        own = means[method]
        by_direction[method] = {d: float(np.mean([v for (s, t), v in own.items() if direction(s, t) == d] or [np.nan]))
                                for d in directions}

    def across(method: str) -> float:  # the method's mean over the cross-modal directions, for sorting
        values = [by_direction[method][d] for d in crossing if not np.isnan(by_direction[method][d])]
        return sign * float(np.mean(values)) if values else -np.inf

    methods = sorted(by_direction, key=lambda m: (-across(m), m))
    # the matrix shows a translation: not the floor, nor the harness's baseline that translates nothing
    best = next((m for m in methods if m not in (FLOOR, RELATIVE)), methods[0])
    header: list[Inline] = ["encoder ↓ decoder →", *(User(f"{modality[e]}: {e}") for e in encoders)]
    matrix: list[list[Inline]] = []
    for source in encoders:
        row: list[Inline] = [User(f"{modality[source]}: {source}")]
        for target in encoders:
            if source == target:
                row.append(Strong(fmt(float(native.get(target, np.nan)), np.nan)))
            else:
                row.append(fmt(float(means[best].get((source, target), np.nan)), np.nan))
        matrix.append(row)
    table: list[list[Inline]] = [[method_cell(m, names), *(fmt(by_direction[m][d], np.nan) for d in directions)]
                                 for m in methods]
    table.append([NATIVE_LABEL, *(fmt(float(np.mean([native.get(t, np.nan) for s, t in pairs
                                                     if direction(s, t) == d])), np.nan) for d in directions)])
    return [
        Para([Strong(f"Cross-modal matrix, {metric} {arrow(metric)}"), f" at n={largest} anchors (mean over seeds): "
              "rows are encoders (the source), columns decoders (the target's head, fitted on its own embeddings); "
              f"the bold diagonal is `{NATIVE}`, each decoder on its own modality's embeddings. Method: ",
              method_cell(best, names), ", the best across modalities. Which samples pair across the modalities "
              "(the same instance, or only the same class) is the data set's: see the task's description."]),
        Table(header, matrix),
        Para([f"{metric} {arrow(metric)} by direction at n={largest}: the mean over the encoder pairs of each "
              f"direction; the `{NATIVE}` row averages the targets' own scores over the same pairs."]),
        Table(["method", *directions], table),
    ]
