"""The relative-representations baseline inside a task (`baselines: [relative]`): the harness scores
it beside the methods, keyed by its own code, and its accuracy is what scikit-learn gives when the
same steps are composed by hand (cosines to the cell's anchors, standardised, logistic regression
fitted on the target's fit split, fed the source's evaluation split)."""
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.preprocessing import StandardScaler

from bench.datasets import load_dataset
from bench.encoders import embeddings
from bench.report import rows as report_rows
from bench.results import ResultStore
from bench.runner import Summary, run_task
from bench.task import TaskError, load_task
from support import SMALL_TASK

RELATIVE_TASK = SMALL_TASK.replace("name: tiny", "name: tiny-relative").replace(
    "metrics: [accuracy, agreement, mse]", "metrics: [accuracy, agreement, mse]\nbaselines: [relative]")


@pytest.fixture
def relative_run(tmp_path):
    path = tmp_path / "tiny-relative.yaml"
    path.write_text(RELATIVE_TASK)
    task, store = load_task(path), ResultStore(tmp_path / "results")
    summary = Summary()
    run_task(task, store, torch.device("cpu"), summary, progress=False)
    return task, store, summary


def test_baselines_change_no_other_score_so_no_spec_hash(tmp_path):
    plain, relative = tmp_path / "plain.yaml", tmp_path / "relative.yaml"
    plain.write_text(SMALL_TASK.replace("name: tiny", "name: tiny-relative"))
    relative.write_text(RELATIVE_TASK)
    assert load_task(plain).spec_hash == load_task(relative).spec_hash


def test_each_cell_gets_a_relative_row_with_the_decoders_metrics_only(relative_run):
    task, store, _ = relative_run
    rows = [r for r in store.rows() if r.method == "relative"]
    anchors = task.spec.anchors
    assert len(rows) == len(task.pairs()) * len(anchors.counts) * len(anchors.seeds)
    for row in rows:
        assert row.status == "ok" and row.metrics["accuracy"] > 0.5 and row.metrics["agreement"] is not None
        assert row.metrics["mse"] is None and "nothing is translated" in row.unavailable["mse"]
        assert row.anchor_ids_hash is not None and row.fit_seconds > 0
    paired = {(r.source, r.n_anchors, r.seed): r.anchor_ids_hash for r in store.rows() if r.method == "ortho"}
    assert all(paired[(r.source, r.n_anchors, r.seed)] == r.anchor_ids_hash for r in rows)  # the methods' anchors


def test_the_relative_accuracy_is_sklearns_composed_by_hand(relative_run):
    task, store, _ = relative_run
    dataset = load_dataset("digits")
    fit, evaluated = dataset.split("train"), dataset.split("test")
    row = next(r for r in store.rows() if r.method == "relative" and r.n_anchors == 64 and r.seed == 1)
    evaluation = task.kind.evaluation(task, dataset, torch.device("cpu"), store.root)
    cell = next(c for c in evaluation.reference_cells() if (c.source, c.target, c.n_anchors, c.seed) ==
                (row.source, row.target, 64, 1))
    anchors = evaluation.anchors(cell)
    X = embeddings(row.source, dataset, torch.device("cpu")).astype(np.float64)
    Y = embeddings(row.target, dataset, torch.device("cpu")).astype(np.float64)
    scaler = StandardScaler().fit(cosine_similarity(Y[fit], Y[anchors]))
    head = LogisticRegression(C=1.0, max_iter=5000, tol=1e-8).fit(scaler.transform(cosine_similarity(Y[fit], Y[anchors])),
                                                                 dataset.y[fit])
    predicted = head.predict(scaler.transform(cosine_similarity(X[evaluated], X[anchors])))
    expected = float((predicted == dataset.y[evaluated]).mean())
    assert row.metrics["accuracy"] == pytest.approx(expected, abs=3 / len(evaluated))  # within 3 of 450 predictions


def test_relative_rows_resume_and_go_stale_when_its_code_changes(relative_run, monkeypatch):
    task, store, summary = relative_run
    again = Summary()
    run_task(task, store, torch.device("cpu"), again, progress=False)
    assert again.run == 0
    frame, stale = report_rows.current_rows(store.rows(), {task.name: task})
    assert "relative" in set(frame.method) and stale == 0
    monkeypatch.setattr(report_rows, "baseline_source_hash", lambda name: "changed" if name == "relative" else "")
    frame, stale = report_rows.current_rows(store.rows(), {task.name: task})
    assert "relative" not in set(frame.method) and stale == len(task.pairs()) * 2 * 2


def test_a_task_without_decoder_metrics_cannot_ask_for_the_relative_baseline(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(RELATIVE_TASK.replace("kind: classification", "kind: similarity").replace(
        "metrics: [accuracy, agreement, mse]", "metrics: [mse]"))
    with pytest.raises(TaskError, match=r"baselines: 'relative' is scored by a decoder"):
        load_task(path)
    path.write_text(RELATIVE_TASK.replace("baselines: [relative]", "baselines: [relatives]"))
    with pytest.raises(TaskError, match=r"baselines\[0\]: Input should be 'relative'"):
        load_task(path)
