"""Which stored result rows count: a row is current when its task version/spec, its decoder's
identity and its method's source (a harness baseline's: bench.relative.baseline_source_hash)
match today's; stale rows are counted, never mixed with current ones.

The method's source hash comes from the plug-in registry of the task's kind (TaskKind.plugins:
translation methods, mergers, ...). That is the one reason the report reads the plug-ins at all.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pandas as pd

from bench.compare import NATIVE, RELATIVE
from bench.relative import baseline_source_hash
from bench.results import Result
from bench.task import Task


def is_current_factory(tasks: dict[str, Task]) -> Callable[[Result], bool]:
    """A row is current when its task version/spec, its decoder and its method's source match today's."""
    source_hashes: dict[tuple[str, str], str] = {}

    def is_current(row: Result) -> bool:
        task = tasks.get(row.task)
        if task is None or (row.task_version, row.task_spec_hash, row.decoder) != (
                task.spec.version, task.spec_hash, task.decoder_identity):
            return False
        if row.method_name in (NATIVE, RELATIVE):  # scored by the harness: current while its code is
            return row.method_source_hash == baseline_source_hash(row.method_name)
        registry, name = task.kind.plugins, row.method_name
        if (registry.kind, name) not in source_hashes:
            source_hashes[(registry.kind, name)] = registry.get(name).source_hash if name in registry else ""
        return row.method_source_hash == source_hashes[(registry.kind, name)]

    return is_current


def current_rows(rows: list[Result], tasks: dict[str, Task], pairing: str = "paired") -> tuple[pd.DataFrame, int]:
    """Scored rows that match the current task files and method sources, and the count of stale ones;
    of paired cells, or of the nulls (pairing="shuffled", bench.results.PAIRINGS)."""
    is_current = is_current_factory(tasks)
    ok = [r for r in rows if r.status == "ok" and r.pairing == pairing]
    current = [r for r in ok if is_current(r)]
    frame = pd.DataFrame([{**{k: getattr(r, k) for k in ("task", "source", "target", "method", "method_name",
                                                         "n_anchors", "seed", "fit_seconds")},
                           "isolation": r.isolation,
                           **{f"m:{k}": v for k, v in r.metrics.items()}} for r in current])
    return frame, len(ok) - len(current)


def unavailable_reasons(rows: list[Result], tasks: dict[str, Task]) -> dict[str, dict[str, str]]:
    """task -> metric -> why the metric has no value there (the first reason stored; they repeat per cell)."""
    is_current = is_current_factory(tasks)
    reasons: dict[str, dict[str, str]] = {}
    for row in rows:
        if row.status == "ok" and row.unavailable and is_current(row):
            for metric, reason in row.unavailable.items():
                reasons.setdefault(row.task, {}).setdefault(metric, reason)
    return reasons


def failed_counts(rows: list[Result], tasks: dict[str, Task]) -> Counter:
    """Current failed cells per method label, a null's as "<label> (null)" (retried by the next `bench
    run`, with --nulls for a null)."""
    is_current = is_current_factory(tasks)
    return Counter(r.method + (" (null)" if r.pairing != "paired" else "")
                   for r in rows if r.status != "ok" and is_current(r))

