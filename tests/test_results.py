"""The result store: upserts by cell key, atomic files, corrupt files reported, never dropped."""
import json
import multiprocessing

import pytest

from bench.results import KEY_FIELDS, ResultsFileError, ResultStore, cell_key


def row(seed: int, value: float = 0.5, method: str = "ortho") -> dict:
    base = {field: None for field in KEY_FIELDS}
    base.update(task="t", task_version=1, task_spec_hash="h", source="a", target="b", method=method,
                method_params={}, method_source_hash="s", n_anchors=8, seed=seed)
    return {**base, "status": "ok", "metrics": {"accuracy": value}}


def test_upsert_replaces_same_cell_and_keeps_others(tmp_path):
    store = ResultStore(tmp_path)
    store.write([row(0, 0.1), row(1, 0.2)])
    store.write([row(1, 0.9), row(2, 0.3)])
    rows = {r["seed"]: r["metrics"]["accuracy"] for r in store.rows()}
    assert rows == {0: 0.1, 1: 0.9, 2: 0.3}
    assert store.completed_keys("t", "ortho") == {cell_key(row(s)) for s in (0, 1, 2)}


def test_failed_rows_are_not_completed(tmp_path):
    store = ResultStore(tmp_path)
    store.write([{**row(0), "status": "failed", "error": "fit: boom"}])
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
    seeds = [r["seed"] for r in ResultStore(tmp_path).rows()]
    assert sorted(seeds) == list(range(80))  # 0..79, overlaps written twice, stored once
    assert not list(tmp_path.rglob("*.tmp"))


def test_rows_are_json_lines_sorted_by_key(tmp_path):
    store = ResultStore(tmp_path)
    store.write([row(2), row(0), row(1)])
    lines = store.path("t", "ortho").read_text().splitlines()
    assert [json.loads(line)["seed"] for line in lines] == [0, 1, 2]
