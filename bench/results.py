"""The result store: one JSON line per scored cell, under results/<task>/<method>.jsonl.

A row is a Result: everything needed to reproduce and rank the cell, one typed record whose
fields are the schema (ROW_FIELDS, FIELD_TYPES). Writes are
upserts by cell key, done under an exclusive lock by rewriting the file to a temporary name and
renaming it over the old one: a run killed at any moment leaves the old file or the new one,
never half of one, and two runs writing to one directory lose nothing and duplicate nothing.
The temporary file a killed writer leaves behind is removed when the store is next opened.

Every row read is checked against FIELD_TYPES: a row that parses but lacks a field or holds a
wrong type is a ResultsFileError naming file and line, like a corrupt line, never a KeyError later.
"""
from __future__ import annotations

import copy
import dataclasses
import fcntl
import json
import os
import re
import signal
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from bench.pairing import Pairing

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Result:
    """One cell's row: everything needed to reproduce and rank it (DESIGN.md). Built by the runner
    (bench.runner.base_row, then dataclasses.replace as the cell runs), stored as one JSON object
    per line, read back by the report, `bench submit` and `bench export`. Its fields are the
    schema: their annotations are what a stored row is checked against (FIELD_TYPES)."""

    schema_version: int
    task: str
    task_version: int
    task_spec_hash: str
    kind: str
    dataset: str
    dataset_hash: str
    source: str  # what a cell's source and target are is its task kind's (encoders; a partition, ...)
    target: str
    method: str  # the plug-in's label in its task, e.g. ortho[preprocessing=l2]
    method_name: str
    method_params: dict[str, Any]
    method_source_hash: str
    n_anchors: int
    seed: int
    pairing: str  # bench.pairing.Pairing.label: "paired", "shuffled" (the cell's null), "noisy:0.25", "partial:32", ...
    decoder: str | None  # what scored it on the target (TaskKind.decoder_identity), or None where nothing is fitted
    anchor_ids_hash: str | None
    status: str  # STATUSES
    error: str | None
    metrics: dict[str, float | None]  # None: unavailable here, for the reason in `unavailable`
    unavailable: dict[str, str]
    fit_seconds: float | None  # a job fitted together (Method.fit_many): its fit time divided by fit_cells
    fit_cells: int | None  # how many cells were fitted in one call
    transform_seconds: float | None
    device: str | None
    versions: dict[str, str]
    git_commit: str | None
    isolation: str  # ISOLATIONS: where the plug-in ran

    @property
    def key(self) -> str:
        """What identifies a cell (KEY_FIELDS): a new task version, spec, method source, params or decoder
        is a new cell."""
        return cell_key(self.to_json())

    def to_json(self) -> dict[str, Any]:
        """The stored object (its metric, parameter and version dicts copied)."""
        return {field: copy.copy(getattr(self, field)) for field in ROW_FIELDS}

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Result:
        """A checked stored row (row_problem is None), with the fields added since it was written filled in."""
        return cls(**{field: row[field] if field in row else OPTIONAL_DEFAULTS[field](row) for field in ROW_FIELDS})


# Rows written before fit_cells, isolation or `unavailable` existed lack them; the store reads them
# with the defaults in OPTIONAL_DEFAULTS and never writes those defaults back.
# What identifies a cell: a new task version, spec, method source, params or decoder is a new cell.
KEY_FIELDS = ("task", "task_version", "task_spec_hash", "source", "target", "method", "method_params",
              "method_source_hash", "n_anchors", "seed")  # and the pairing and decoder, when set (cell_key)
STATUSES = ("ok", "failed")
ISOLATIONS = ("sandbox", "process", "in-process")

_NONE = type(None)


def _json_types(annotation: Any) -> tuple[type, ...]:
    """The JSON value types a field of this annotation may hold: a float field takes any number."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return tuple(t for member in typing.get_args(annotation) for t in _json_types(member))
    if annotation is float:
        return (int, float)
    return (typing.get_origin(annotation) or annotation,)


ROW_FIELDS = tuple(field.name for field in dataclasses.fields(Result))
# No field takes a boolean: bool is a subclass of int, and `true` is no anchor count (see _is).
FIELD_TYPES: dict[str, tuple[type, ...]] = {name: _json_types(hint)
                                            for name, hint in typing.get_type_hints(Result).items()}
OPTIONAL_DEFAULTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "unavailable": lambda row: {},
    "fit_cells": lambda row: None if row["fit_seconds"] is None else 1,  # before fit_many every cell was fitted alone
    "isolation": lambda row: "in-process",
    "pairing": lambda row: "paired",  # before nulls every cell was paired
    "decoder": lambda row: None,  # rows written before decoders had identities: stale where a decoder scores
}
_JSON_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", _NONE: "null",
               list: "a list", dict: "an object"}

TMP_GLOB = "*/.*.jsonl.*.tmp"  # what _replace_file leaves when its process is killed before the rename
_CHUNK_BYTES = 1 << 16  # a results file is written in chunks of this size (tests make it small)

# Test-only fault injection (tests/test_store_kills.py): with BENCH_TEST_KILL_AT_WRITE=N in its
# environment, a process SIGKILLs itself right before the Nth system call of its store writes,
# counted over the whole process. Read once at import; unset, a write point costs one comparison.
_KILL_AT = int(os.environ.get("BENCH_TEST_KILL_AT_WRITE") or 0)
_write_points = 0


def _kill_point() -> None:
    global _write_points
    if _KILL_AT:
        _write_points += 1
        if _write_points == _KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)


class ResultsFileError(ValueError):
    """A results file that cannot be read; never skipped silently."""


def cell_key(row: dict[str, Any]) -> str:
    """A paired cell with no decoder keeps the key it had before nulls and decoder identities existed,
    so stored rows keep theirs (and their order); a decoder's identity, when there is one, is part of it."""
    pairing, decoder = row.get("pairing", "paired"), row.get("decoder")
    extra = ([pairing] if pairing != "paired" else []) + ([{"decoder": decoder}] if decoder is not None else [])
    return json.dumps([row[field] for field in KEY_FIELDS] + extra, sort_keys=True, separators=(",", ":"))


def _file_name(method: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._=,-]", "_", method)
    return f"{safe}.jsonl"


def _json_type(value: Any) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _is(value: Any, types: tuple[type, ...]) -> bool:
    # isinstance, not type(): rows being written may hold numpy floats (float subclasses, JSON-safe)
    return isinstance(value, types) and type(value) is not bool


# Speed (about 4,500 rows are read per `bench leaderboard`): the field types of a row form its shape,
# and a shape already found well formed is not checked field by field again.
_FIELDS = tuple(FIELD_TYPES)
_ABSENT = (object(),) * len(_FIELDS)
_good_shapes: set[tuple[type, ...]] = set()
_METRIC_TYPES = frozenset({int, float, _NONE})


def row_problem(row: Any) -> str | None:
    """What is wrong with a parsed results row (one line of text), or None when it is well formed."""
    if not isinstance(row, dict):
        return f"results row is {_json_type(row)}, not an object"
    shape = tuple(map(type, map(row.get, _FIELDS, _ABSENT)))
    if shape not in _good_shapes:
        problem = _field_problem(row)
        if problem is not None:
            return problem
        _good_shapes.add(shape)
    if row["status"] not in STATUSES:
        return f"results row status {row['status']!r} is not one of {', '.join(STATUSES)}"
    if not _METRIC_TYPES.issuperset(map(type, row["metrics"].values())):
        bad = next((k for k, v in row["metrics"].items() if not _is(v, (int, float, _NONE))), None)
        if bad is not None:
            return f"results row metric '{bad}' is {_json_type(row['metrics'][bad])}; expected a number or null"
    bad = next((k for k, v in row.get("unavailable", {}).items() if type(v) is not str), None)
    if bad is not None:
        return f"results row unavailable['{bad}'] is {_json_type(row['unavailable'][bad])}; expected a string"
    if row.get("isolation", "in-process") not in ISOLATIONS:
        return f"results row isolation {row['isolation']!r} is not one of {', '.join(ISOLATIONS)}"
    try:
        Pairing.parse(row.get("pairing", "paired"))
    except ValueError as error:
        return f"results row {error}"
    return None


def _field_problem(row: dict[str, Any]) -> str | None:
    """A missing field or a field of the wrong type, or None."""
    missing = [f for f in FIELD_TYPES if f not in row and f not in OPTIONAL_DEFAULTS]
    if missing:
        return f"results row lacks {', '.join(missing)}"
    for field, allowed in FIELD_TYPES.items():
        if field in row and not _is(row[field], allowed):
            # (int, float) reads "a number"
            expected = " or ".join(_JSON_NAMES[t] for t in allowed if not (t is int and float in allowed))
            return f"results row field '{field}' is {_json_type(row[field])}; expected {expected}"
    return None


def _parse_file(path: Path) -> list[dict[str, Any]]:
    """The rows of a results file as stored (no defaults filled in), each one checked."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ResultsFileError(f"{path}:{number}: corrupt results line ({error.msg}); "
                                   "fix or delete the file, then rerun `bench run` to recompute its cells") from None
        problem = row_problem(row)
        if problem is not None:
            raise ResultsFileError(f"{path}:{number}: {problem}; "
                                   "fix or delete the line, then rerun `bench run` to recompute its cell")
        rows.append(row)
    return rows


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


def _replace_file(path: Path, data: bytes) -> None:
    """Write data to a temporary name beside path, fsync it and rename it over path: readers and
    a SIGKILL at any point see the old file or the new one. Each system call is a kill point."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _kill_point()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        try:
            view = memoryview(data)
            for start in range(0, len(view), _CHUNK_BYTES):
                _kill_point()
                _write_all(fd, view[start:start + _CHUNK_BYTES])
            _kill_point()
            os.fsync(fd)
        finally:
            _kill_point()
            os.close(fd)
        _kill_point()
        os.replace(tmp, path)
    except BaseException:
        _kill_point()
        tmp.unlink(missing_ok=True)  # a failed write (disk full...) leaves no debris; the old file stands
        raise


class ResultStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self._remove_stale_tmp()

    def path(self, task: str, method: str) -> Path:
        return self.root / task / _file_name(method)

    def files(self) -> list[Path]:
        return sorted(self.root.glob("*/*.jsonl")) if self.root.is_dir() else []

    @staticmethod
    def read_file(path: Path) -> list[Result]:
        """The rows of one results file, checked, with fields added since a row was written filled in."""
        return [Result.from_json(row) for row in _parse_file(path)]

    def rows(self) -> list[Result]:
        return [row for path in self.files() for row in self.read_file(path)]

    def completed_keys(self, task: str, method: str) -> set[str]:
        path = self.path(task, method)
        if not path.exists():
            return set()
        return {cell_key(row) for row in _parse_file(path) if row["status"] == "ok"}

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _remove_stale_tmp(self) -> None:
        """Remove the temporary files of writers killed mid-write. A writer holds the lock for as long
        as its temporary file exists, so every one seen under the lock is stale, whatever its pid."""
        if not self.root.is_dir() or next(self.root.glob(TMP_GLOB), None) is None:
            return  # the usual case: one directory listing per task, no lock taken
        try:
            with self._locked():
                for path in self.root.glob(TMP_GLOB):
                    path.unlink(missing_ok=True)
        except PermissionError:  # a read-only store: readers never look at these files, so leave them
            pass

    def write(self, results: Iterable[Result]) -> None:
        """Upsert rows by cell key (a new row replaces an older one of the same cell)."""
        by_path: dict[Path, list[dict[str, Any]]] = {}
        for row in (result.to_json() for result in results):
            problem = row_problem(row)
            if problem is not None:  # a bug in the caller: refuse it before it becomes a file no command reads
                raise ValueError(f"refusing to store a malformed row ({problem}): {row!r}")
            by_path.setdefault(self.path(row["task"], row["method"]), []).append(row)
        with self._locked():
            for path, new_rows in by_path.items():
                # the stored rows as they are: defaults read into old rows are never written back
                merged = {cell_key(row): row for row in (_parse_file(path) if path.exists() else [])}
                merged.update((cell_key(row), row) for row in new_rows)
                path.parent.mkdir(parents=True, exist_ok=True)
                text = "".join(json.dumps(merged[key], sort_keys=True) + "\n" for key in sorted(merged))
                _replace_file(path, text.encode("utf-8"))
