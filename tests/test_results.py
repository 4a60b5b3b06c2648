"""The result store: upserts by cell key, atomic files, corrupt or malformed rows reported with file
and line, never dropped; temporary files of killed writers removed (kills: test_store_kills.py)."""
import json
import multiprocessing
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bench.results import OPTIONAL_DEFAULTS, Result, ResultsFileError, ResultStore
from support import REPO


def row(seed: int, value: float = 0.5, method: str = "ortho", task: str = "t") -> Result:
    """A complete row as the runner writes it."""
    return Result(schema_version=1, task=task, task_version=1, task_spec_hash="h", kind="classification", dataset="digits",
                  dataset_hash="d", source="a", target="b", method=method, method_name=method, method_params={},
                  method_source_hash="s", n_anchors=8, seed=seed, pairing="paired", decoder=None, anchor_ids_hash="x", status="ok", error=None,
                  metrics={"accuracy": value}, unavailable={}, fit_seconds=0.001, fit_cells=1, transform_seconds=0.0,
                  device="cpu", versions={}, git_commit="c", isolation="process")


def test_upsert_replaces_same_cell_and_keeps_others(tmp_path):
    store = ResultStore(tmp_path)
    store.write([row(0, 0.1), row(1, 0.2)])
    store.write([row(1, 0.9), row(2, 0.3)])
    rows = {r.seed: r.metrics["accuracy"] for r in store.rows()}
    assert rows == {0: 0.1, 1: 0.9, 2: 0.3}
    assert store.completed_keys("t", "ortho") == {row(s).key for s in (0, 1, 2)}


def test_failed_rows_are_not_completed(tmp_path):
    store = ResultStore(tmp_path)
    store.write([replace(row(0), status="failed", error="fit: boom")])
    assert store.completed_keys("t", "ortho") == set()


def test_corrupt_line_is_reported_with_path_and_line(tmp_path):
    store = ResultStore(tmp_path)
    store.write([row(0), row(1)])
    path = store.path("t", "ortho")
    path.write_text(path.read_text()[:-20])  # a truncated last line
    with pytest.raises(ResultsFileError, match=rf"{path}:2: corrupt results line"):
        store.rows()
    with pytest.raises(ResultsFileError):
        store.write([row(3)])  # never overwrites what it cannot read
    assert path.read_text().count("\n") == 1


MALFORMED = {  # what a hand edit, a bad merge or a buggy writer can leave: parses, but is no row
    "metrics null": (lambda r: {**r, "metrics": None}, "field 'metrics' is null; expected an object"),
    "status missing": (lambda r: {k: v for k, v in r.items() if k != "status"}, "lacks status"),
    "metric a string": (lambda r: {**r, "metrics": {"accuracy": "high"}}, "metric 'accuracy' is a string"),
    "metric a list": (lambda r: {**r, "metrics": {"accuracy": [0.5]}}, "metric 'accuracy' is a list"),
    "n_anchors a string": (lambda r: {**r, "n_anchors": "8"}, "field 'n_anchors' is a string; expected an integer"),
    "n_anchors a float": (lambda r: {**r, "n_anchors": 8.0}, "field 'n_anchors' is a number; expected an integer"),
    "seed a boolean": (lambda r: {**r, "seed": True}, "field 'seed' is a boolean"),
    "fit_seconds a string": (lambda r: {**r, "fit_seconds": "1 ms"}, "field 'fit_seconds' is a string; expected a number or null"),
    "method_params a list": (lambda r: {**r, "method_params": []}, "field 'method_params' is a list"),
    "unknown status": (lambda r: {**r, "status": "maybe"}, "status 'maybe' is not one of ok, failed"),
    "unavailable reason a number": (lambda r: {**r, "unavailable": {"mse": 1}}, "unavailable['mse'] is an integer"),
    "unknown isolation": (lambda r: {**r, "isolation": "vm"}, "isolation 'vm' is not one of sandbox, process, in-process"),
    "not an object": (lambda r: [r], "results row is a list, not an object"),
    "several missing": (lambda r: {k: v for k, v in r.items() if k not in ("device", "versions")}, "lacks device, versions"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_row_is_reported_with_path_and_line(tmp_path, case):
    store = ResultStore(tmp_path)
    store.write([row(0), row(1), row(2)])
    path = store.path("t", "ortho")
    lines = path.read_text().splitlines()
    break_row, message = MALFORMED[case]
    lines[1] = json.dumps(break_row(json.loads(lines[1])))
    path.write_text("\n".join(lines) + "\n")
    for read in (store.rows, lambda: store.completed_keys("t", "ortho"), lambda: store.write([row(3)])):
        with pytest.raises(ResultsFileError, match=rf"^{re.escape(str(path))}:2: .*{re.escape(message)}"):
            read()
    assert path.read_text().splitlines()[1] == lines[1]  # the bad row is reported, never dropped or rewritten


def test_rows_written_before_a_field_existed_still_read(tmp_path):
    """Rows without fit_cells, unavailable, isolation or pairing (older schemas) read with defaults, and an
    upsert next to them leaves their stored text as it was (defaults are not written back)."""
    store = ResultStore(tmp_path)
    store.write([row(0)])
    path = store.path("t", "ortho")
    old = {k: v for k, v in row(1).to_json().items() if k not in ("fit_cells", "unavailable", "isolation", "pairing")}
    native = {**old, "seed": 2, "fit_seconds": None, "a_later_field": [1]}  # unknown fields are kept, not refused
    with path.open("a") as handle:
        handle.write(json.dumps(old, sort_keys=True) + "\n" + json.dumps(native, sort_keys=True) + "\n")
    by_seed = {r.seed: r for r in store.rows()}
    assert by_seed[1].isolation == "in-process" and by_seed[1].fit_cells == 1 and by_seed[1].unavailable == {}
    assert by_seed[1].pairing == "paired" and by_seed[1].key == row(1).key  # a row from before nulls keeps its key
    assert by_seed[2].fit_cells is None  # not fitted (a native row)
    assert by_seed[0].isolation == "process"  # a stored value wins over the default
    store.write([row(3)])
    # rewritten as they were stored: no defaults added, and a field this version does not know kept
    assert {json.dumps(old, sort_keys=True), json.dumps(native, sort_keys=True)} <= set(path.read_text().splitlines())


def test_a_malformed_row_is_refused_before_it_is_written(tmp_path):
    store = ResultStore(tmp_path)
    store.write([row(0)])
    before = store.path("t", "ortho").read_bytes()
    with pytest.raises(ValueError, match="refusing to store a malformed row .*field 'n_anchors'"):
        store.write([row(1), replace(row(2), n_anchors="8")])
    assert store.path("t", "ortho").read_bytes() == before


def test_every_committed_row_reads_back_unchanged():
    """results/ as committed reads without error, and each typed Result holds exactly its stored row
    (the fields a row predates filled in with their defaults, nothing else changed)."""
    store = ResultStore(REPO / "results")
    rows = store.rows()
    assert len(rows) > 1000 and all(r.isolation in ("sandbox", "process", "in-process") for r in rows)
    for path in store.files():
        stored = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        expected = [{**{field: default(row) for field, default in OPTIONAL_DEFAULTS.items()}, **row} for row in stored]
        assert [result.to_json() for result in store.read_file(path)] == expected, path


def test_stale_temporary_files_are_removed_when_the_store_is_opened(tmp_path):
    store = ResultStore(tmp_path)
    store.write([row(0)])
    folder = store.path("t", "ortho").parent
    stale = [folder / ".ortho.jsonl.4242.tmp", folder / ".linear.jsonl.1.tmp"]  # killed writers' leftovers
    others = [folder / "ortho.jsonl.4242.tmp", folder / "notes.tmp", tmp_path / ".x.jsonl.1.tmp"]  # not the store's own
    for path in stale + others:
        path.write_text('{"half a row')
    ResultStore(tmp_path)
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in others)
    assert [r.seed for r in ResultStore(tmp_path).rows()] == [0]


def store_with_a_malformed_row(results: Path) -> Path:
    """results/tiny/ortho.jsonl (the tiny task's) whose second row has `"metrics": null`; its path."""
    store = ResultStore(results)
    store.write([row(0, task="tiny"), row(1, task="tiny")])
    path = store.path("tiny", "ortho")
    lines = path.read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), "metrics": None})
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("command", ["leaderboard", "export", "run"])
def test_commands_that_read_the_store_exit_2_naming_the_malformed_row(tmp_path, task_file, capsys, command):
    from bench.cli import main

    results, out = tmp_path / "results", tmp_path / "out"
    path = store_with_a_malformed_row(results)
    before = path.read_bytes()
    argv = {"leaderboard": ["leaderboard", "--results", str(results), "--output", str(out / "leaderboard.md")],
            "export": ["export", "--results", str(results), "--output", str(out / "export.csv")],
            "run": ["run", str(task_file), "--results", str(results), "--quiet", "--device", "cpu"]}[command]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"error: {path}:2: results row field 'metrics' is null; expected an object" in error, error
    assert not out.exists() and path.read_bytes() == before  # nothing written, the bad row kept for the user to fix


def test_a_malformed_row_is_one_error_line_not_a_traceback(tmp_path):
    path = store_with_a_malformed_row(tmp_path / "results")
    done = subprocess.run([sys.executable, "-m", "bench", "leaderboard", "--results", str(tmp_path / "results"),
                           "--output", str(tmp_path / "leaderboard.md")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"error: {path}:2: results row field 'metrics' is null" in done.stderr


def _writer(root: str, start: int) -> None:
    store = ResultStore(root)
    for seed in range(start, start + 40):
        store.write([row(seed)])


def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path):
    processes = [multiprocessing.Process(target=_writer, args=(str(tmp_path), start)) for start in (0, 20, 40)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    seeds = [r.seed for r in ResultStore(tmp_path).rows()]
    assert sorted(seeds) == list(range(80))  # 0..79, overlaps written twice, stored once
    assert not list(tmp_path.rglob("*.tmp"))


def test_rows_are_json_lines_sorted_by_key(tmp_path):
    store = ResultStore(tmp_path)
    store.write([row(2), row(0), row(1)])
    lines = store.path("t", "ortho").read_text().splitlines()
    assert [json.loads(line)["seed"] for line in lines] == [0, 1, 2]
