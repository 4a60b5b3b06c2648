"""The result store under SIGKILL at every system call of its write path.

bench/results.py counts the system calls of its writes (open of the temporary file, each chunk
written, fsync, close, rename) and, with BENCH_TEST_KILL_AT_WRITE=N in its environment, SIGKILLs
its own process right before the Nth. Killed at each point in turn, a write must leave every
results file byte-identical to the old file or to the new one (no lost, duplicated or half row),
and the next opening of the store must remove the killed writer's temporary file.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from bench.results import TMP_GLOB, Result, ResultStore
from support import REPO
from test_results import row

KILL_VARIABLE = "BENCH_TEST_KILL_AT_WRITE"
CHUNK = 300  # bytes per write call in the scripted writer; a row is ~500 bytes, so kills land inside rows
# bench/results.py loaded on its own (stdlib only): the subprocess starts in 0.1 s, not the 3 s of torch
WRITER = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("results_under_test", {str(REPO / "bench" / "results.py")!r})
results = sys.modules["results_under_test"] = importlib.util.module_from_spec(spec)  # dataclasses look it up
spec.loader.exec_module(results)
results._CHUNK_BYTES = {CHUNK}
results.ResultStore(sys.argv[1]).write(results.Result.from_json(row) for row in json.load(sys.stdin))
"""


def environment(kill_at: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != KILL_VARIABLE}
    return env if kill_at is None else {**env, KILL_VARIABLE: str(kill_at)}


def write_in_subprocess(root: Path, rows: list[Result], kill_at: int | None) -> int:
    done = subprocess.run([sys.executable, "-c", WRITER, str(root)], input=json.dumps([row.to_json() for row in rows]),
                          env=environment(kill_at), capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, -signal.SIGKILL), done.stderr
    return done.returncode


def write_points(files: list[Path], final: dict[Path, bytes]) -> list[tuple[Path, str]]:
    """(file, system call) in the order ResultStore.write makes them: files in the order of their first row."""
    points = []
    for path in files:
        chunks = math.ceil(len(final[path]) / CHUNK)
        points += [(path, "open")] + [(path, "write")] * chunks + [(path, "fsync"), (path, "close"), (path, "replace")]
    return points


def update_scenario() -> tuple[list[Result], list[Result]]:
    """Two files with rows; the write replaces some of their rows, adds others, and creates a third file."""
    old = [row(s, 0.1, "ortho") for s in range(6)] + [row(s, 0.1, "linear") for s in range(4)]
    new = [row(s, 0.9, "ortho") for s in range(3, 9)] + [row(s, 0.9, "linear") for s in (0, 1)] + [row(s, 0.9, "affine") for s in range(3)]
    return old, new


def first_write_scenario() -> tuple[list[Result], list[Result]]:
    return [], [row(s, 0.5, "ortho") for s in range(4)]


def check_kills(tmp_path: Path, old_rows: list[Result], new_rows: list[Result]) -> dict[str, int]:
    before = tmp_path / "before"
    ResultStore(before).write(old_rows)
    before.mkdir(exist_ok=True)
    files = list(dict.fromkeys(ResultStore(before).path(r.task, r.method).relative_to(before) for r in new_rows))
    after = tmp_path / "after"
    shutil.copytree(before, after)
    assert write_in_subprocess(after, new_rows, kill_at=None) == 0
    old = {f: (before / f).read_bytes() if (before / f).exists() else None for f in files}
    final = {f: (after / f).read_bytes() for f in files}
    assert all(old[f] != final[f] for f in files)  # every file changes, so "old" and "new" are told apart
    points = write_points(files, final)
    seen = {"kills": 0, "stale temporary files": 0, "half rows in them": 0}
    for n in range(1, len(points) + 2):
        root = tmp_path / f"killed-at-{n}"
        shutil.copytree(before, root)
        code = write_in_subprocess(root, new_rows, kill_at=n)
        if n == len(points) + 1:  # past the last point: the write completes, so every point was counted
            assert code == 0 and all((root / f).read_bytes() == final[f] for f in files)
            break
        assert code == -signal.SIGKILL, n
        seen["kills"] += 1
        killed, call = points[n - 1]
        leftovers = list(root.glob(TMP_GLOB))
        if call == "open":
            assert leftovers == [], n  # killed before creating its temporary file
        else:  # killed inside the write: its temporary file holds the chunks written so far
            (tmp,) = leftovers
            assert tmp.parent == (root / killed).parent and tmp.name.startswith(f".{killed.name}."), (n, tmp)
            written = points[: n - 1].count((killed, "write"))
            content = tmp.read_bytes()
            assert content == final[killed][: written * CHUNK], n
            seen["stale temporary files"] += 1
            seen["half rows in them"] += bool(content) and not content.endswith(b"\n")
        store = ResultStore(root)  # the next opening removes the leftover
        assert not list(root.glob(TMP_GLOB)), n
        renamed = files[: files.index(killed)]  # files before the killed one were replaced, the rest not
        for f in files:
            expected = final[f] if f in renamed else old[f]
            assert ((root / f).read_bytes() if (root / f).exists() else None) == expected, (n, f)
        rows = store.rows()  # and it parses: every row whole and well formed, each cell once
        assert len({r.key for r in rows}) == len(rows)
    assert seen["kills"] == len(points)
    return seen


def test_sigkill_at_every_point_of_an_update_leaves_old_or_new_files(tmp_path):
    seen = check_kills(tmp_path, *update_scenario())
    assert seen["stale temporary files"] == seen["kills"] - 3  # all but the three opens
    assert seen["half rows in them"] > 0


def test_sigkill_at_every_point_of_a_first_write_leaves_no_file_or_the_new_one(tmp_path):
    seen = check_kills(tmp_path, *first_write_scenario())
    assert seen["stale temporary files"] == seen["kills"] - 1 and seen["half rows in them"] > 0


def _bench_run(task_file: Path, results: Path, kill_at: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", "run", str(task_file), "--quiet", "--results", str(results)],
                          cwd=REPO, env=environment(kill_at), capture_output=True, text=True, timeout=600)


def _scores(rows: list[Result]) -> dict:
    """Cell -> metrics, rounded to float32 precision (threads may reorder a float sum)."""
    return {(r.method, r.source, r.target, r.n_anchors, r.seed): {k: round(v, 5) for k, v in r.metrics.items()}
            for r in rows}


def test_sigkill_inside_a_bench_run_write_then_rerun_equals_uninterrupted(task_file, tmp_path):
    """A real `bench run` of the tiny task writes the native rows (5 points: open, write, fsync, close,
    rename), then its cells' rows, one small file per method (5 points each). Point 14 is the close of
    the second method's file; were the rows flushed in more writes, it would still be no open (those
    are points 1, 6, 11, ...), so the kill lands inside a write with its temporary file there."""
    clean = _bench_run(task_file, tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    expected = _scores(ResultStore(tmp_path / "clean").rows())
    results = tmp_path / "killed"
    killed = _bench_run(task_file, results, kill_at=14)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    assert len(list(results.glob(TMP_GLOB))) == 1  # it died inside a write, its temporary file open
    store = ResultStore(results)
    assert not list(results.glob(TMP_GLOB))
    partial = _scores(store.rows())  # parses; what was stored is what the clean run computed
    assert 0 < len(partial) < len(expected) and all(expected[cell] == metrics for cell, metrics in partial.items())
    rerun = _bench_run(task_file, results)
    assert rerun.returncode == 0, rerun.stderr
    rows = ResultStore(results).rows()
    assert len({r.key for r in rows}) == len(rows) and _scores(rows) == expected
