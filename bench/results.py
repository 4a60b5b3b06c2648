"""The result store: one JSON line per scored cell, under results/<task>/<method>.jsonl.

A row carries everything needed to reproduce and rank the cell (see ROW_FIELDS). Writes are
upserts by cell key, done under an exclusive lock by rewriting the file to a temporary name and
renaming it over the old one: a run killed at any moment leaves the old file or the new one,
never half of one, and two runs writing to one directory lose nothing and duplicate nothing.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

SCHEMA_VERSION = 1
ROW_FIELDS = (
    "schema_version", "task", "task_version", "task_spec_hash", "kind", "dataset", "dataset_hash",
    "source", "target", "method", "method_name", "method_params", "method_source_hash",
    "n_anchors", "seed", "anchor_ids_hash", "status", "error", "metrics", "unavailable",
    "fit_seconds", "fit_cells", "transform_seconds", "device", "versions", "git_commit",
)
# fit_cells: how many cells were fitted in one call (Method.fit_many); fit_seconds is then that
# call's time divided by fit_cells. Rows written before it existed lack it (read: 1).
# What identifies a cell: a new task version, spec, method source or params is a new cell.
KEY_FIELDS = ("task", "task_version", "task_spec_hash", "source", "target", "method", "method_params",
              "method_source_hash", "n_anchors", "seed")


class ResultsFileError(ValueError):
    """A results file that cannot be read; never skipped silently."""


def cell_key(row: dict[str, Any]) -> str:
    return json.dumps([row[field] for field in KEY_FIELDS], sort_keys=True, separators=(",", ":"))


def _file_name(method: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._=,-]", "_", method)
    return f"{safe}.jsonl"


class ResultStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    def path(self, task: str, method: str) -> Path:
        return self.root / task / _file_name(method)

    def files(self) -> list[Path]:
        return sorted(self.root.glob("*/*.jsonl")) if self.root.is_dir() else []

    @staticmethod
    def read_file(path: Path) -> list[dict[str, Any]]:
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ResultsFileError(f"{path}:{number}: corrupt results line ({error.msg}); "
                                       "fix or delete the file, then rerun `bench run` to recompute its cells") from None
            missing = [f for f in KEY_FIELDS + ("status", "metrics") if f not in row] if isinstance(row, dict) else ["(not an object)"]
            if missing:
                raise ResultsFileError(f"{path}:{number}: results row lacks {', '.join(missing)}")
            rows.append(row)
        return rows

    def rows(self) -> list[dict[str, Any]]:
        return [row for path in self.files() for row in self.read_file(path)]

    def completed_keys(self, task: str, method: str) -> set[str]:
        path = self.path(task, method)
        if not path.exists():
            return set()
        return {cell_key(row) for row in self.read_file(path) if row["status"] == "ok"}

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        """Upsert rows by cell key (a new row replaces an older one of the same cell)."""
        by_path: dict[Path, list[dict[str, Any]]] = {}
        for row in rows:
            by_path.setdefault(self.path(row["task"], row["method"]), []).append(row)
        with self._locked():
            for path, new_rows in by_path.items():
                merged = {cell_key(row): row for row in (self.read_file(path) if path.exists() else [])}
                merged.update((cell_key(row), row) for row in new_rows)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                with open(tmp, "w", encoding="utf-8") as handle:
                    for key in sorted(merged):
                        handle.write(json.dumps(merged[key], sort_keys=True) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
