"""Merging (bench/merging.py, mergers/): partitions, the reference mergers against independent
references, the separability metric, the merger conformance suite, task validation and a run."""
from __future__ import annotations

import itertools
import json
import re
import shutil

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.spatial.distance import cdist
from sklearn.metrics.pairwise import cosine_similarity

from bench.merger_checks import RULES, run_merger_checks
from bench.report.leaderboard import render
from bench.kinds.merging import partition
from bench.merging import MERGERS, build_merger
from bench.metrics import METRICS
from bench.results import ResultStore
from bench.runner import Summary, run_task
from bench.task import TaskError, check_against_data, load_task
from fixtures.broken_mergers import BROKEN, Good

LABELS = np.repeat(np.arange(10), 20)  # 10 classes x 20 samples
POOL = np.arange(200)


def classes_of(indices: np.ndarray) -> set[int]:
    return set(LABELS[indices].tolist())


# ---------------------------------------------------------------------------------- partitions


def test_shared_samples_partition_shares_the_samples_of_most_classes():
    (a, b), anchor_pool = partition(LABELS, POOL, "shared-samples", 2, 0.8, seed=3)
    shared = np.intersect1d(a, b)
    assert len(classes_of(shared)) == 8 and len(shared) == 160  # every sample of the 8 shared classes
    assert len(classes_of(a) - classes_of(b)) == 1 and len(classes_of(b) - classes_of(a)) == 1  # one private class each
    assert np.array_equal(np.union1d(a, b), POOL)
    assert np.array_equal(anchor_pool, shared)  # anchors come from samples both encoders saw


def test_shared_classes_partition_deals_out_every_class():
    (a, b), anchor_pool = partition(LABELS, POOL, "shared-classes", 2, 0.8, seed=3)
    assert len(np.intersect1d(a, b)) == 0 and np.array_equal(np.union1d(a, b), POOL)
    assert np.array_equal(np.bincount(LABELS[a]), np.full(10, 10)) and np.array_equal(np.bincount(LABELS[b]), np.full(10, 10))
    assert np.array_equal(anchor_pool, POOL)


def test_disjoint_partition_splits_classes_and_samples():
    parts, anchor_pool = partition(LABELS, POOL, "disjoint", 3, 0.8, seed=0)
    assert sorted(len(classes_of(p)) for p in parts) == [3, 3, 4]
    for p, q in itertools.combinations(parts, 2):
        assert not classes_of(p) & classes_of(q)
    assert np.array_equal(np.sort(np.concatenate(parts)), POOL) and np.array_equal(anchor_pool, POOL)


def test_partition_needs_a_private_class_per_part():
    with pytest.raises(ValueError, match="1 classes left to deal out to 2 parts"):
        partition(LABELS, POOL, "shared-samples", 2, 0.9, seed=0)


# ----------------------------------------------------------------------------- reference mergers


def spaces(widths=(4, 4), n=30, seed=0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=generator, dtype=torch.float64) for d in widths]


def test_rlsa_is_the_mean_of_cosine_similarities_to_the_anchors():
    anchors, evaluation = spaces((4, 6), n=8, seed=1), spaces((4, 6), n=5, seed=2)
    merged = build_merger("rlsa").fit(anchors).transform(evaluation)
    expected = np.mean([cosine_similarity(X.numpy(), A.numpy()) for X, A in zip(evaluation, anchors)], axis=0)  # (5, 8)
    np.testing.assert_allclose(merged.numpy(), expected, atol=1e-12)


def test_rlsa_does_not_see_rotations_and_rescalings_of_a_space():
    anchors, evaluation = spaces((5, 5), n=12), spaces((5, 5), n=7, seed=3)
    Q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))
    moved = lambda S: [S[0], 3.0 * S[1] @ torch.from_numpy(Q)]
    plain = build_merger("rlsa").fit(anchors).transform(evaluation)
    np.testing.assert_allclose(build_merger("rlsa").fit(moved(anchors)).transform(moved(evaluation)), plain, atol=1e-12)


def test_naive_and_concat_against_numpy():
    X = spaces((4, 4), n=6)
    np.testing.assert_allclose(build_merger("naive").fit(X).transform(X), (X[0].numpy() + X[1].numpy()) / 2)
    np.testing.assert_allclose(build_merger("concat").fit(X).transform(X), np.hstack([X[0].numpy(), X[1].numpy()]))
    with pytest.raises(ValueError, match="same width"):
        build_merger("naive").fit(spaces((4, 5)))


def test_procrustes_mean_undoes_a_rotation_and_a_shift():
    X = spaces((5,), n=40)[0]
    Q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(5, 5)))
    Y = X @ torch.from_numpy(Q) + 2.0
    merged = build_merger("procrustes-mean").fit([X, Y]).transform([X, Y])
    R, _ = scipy.linalg.orthogonal_procrustes(Y.numpy() - Y.numpy().mean(0), X.numpy() - X.numpy().mean(0))
    np.testing.assert_allclose(R, Q.T, atol=1e-10)  # scipy finds the inverse rotation too
    np.testing.assert_allclose(merged, X - X.mean(0), atol=1e-10)


# -------------------------------------------------------------------------------- separability


def test_separability_hand_computed():
    # class 0 at 0 and 2 (centroid 1, mean distance 1); class 1 at 10 and 12 (centroid 11, 1): 10 / 1
    points = torch.tensor([[0.0], [2.0], [10.0], [12.0]])
    assert METRICS.get("separability")(translated=points, labels=torch.tensor([0, 0, 1, 1])) == pytest.approx(10.0)


def test_separability_against_scipy_and_its_invariances():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)) + np.repeat(rng.normal(scale=3, size=(3, 4)), 20, axis=0), np.repeat([4, 7, 9], 20)
    centroids = np.stack([X[y == c].mean(0) for c in (4, 7, 9)])
    spread = [cdist(X[y == c], centroids[[i]]).mean() for i, c in enumerate((4, 7, 9))]
    expected = np.mean([cdist(centroids[[a]], centroids[[b]])[0, 0] / ((spread[a] + spread[b]) / 2)
                        for a, b in itertools.combinations(range(3), 2)])
    metric = METRICS.get("separability")
    assert metric(translated=torch.from_numpy(X), labels=torch.from_numpy(y)) == pytest.approx(expected, rel=1e-12)
    Q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    moved = torch.from_numpy(5.0 * X @ Q + 1.0)
    assert metric(translated=moved, labels=torch.from_numpy(y)) == pytest.approx(expected, rel=1e-10)
    assert metric.higher_is_better and metric.compares == "clusters"


# ---------------------------------------------------------------------------- conformance suite


@pytest.mark.parametrize("name", ["naive", "concat", "rlsa", "procrustes-mean"])
def test_reference_mergers_pass_every_rule(name):
    failed = [(r.rule, r.message) for r in run_merger_checks(MERGERS.get(name).cls) if not r.passed]
    assert failed == []


def test_each_broken_merger_fails_exactly_its_rule():
    assert [r.rule for r in run_merger_checks(Good) if not r.passed] == []
    assert set(BROKEN) == {rule for rule, _ in RULES}
    for rule, cls in BROKEN.items():
        assert [r.rule for r in run_merger_checks(cls) if not r.passed] == [rule], cls.__name__


# ------------------------------------------------------------------------------ tasks and a run

MERGING_TASK = """\
name: tiny-merging
version: 1
kind: merging
dataset: {name: digits}
merging: {partitions: [shared-samples, disjoint], shared_classes: 0.8, arch: mlp, width: 32}
anchors: {counts: [16], seeds: [0, 1]}
methods: [naive, rlsa]
metrics: [cka_linear, accuracy, separability]
"""


@pytest.mark.parametrize("edit, message", [
    (("merging: {", "encoders: {all: [digits-mlp-w32-s0, digits-mlp-w32-s1]}\nmerging: {"), "gives 'merging'"),
    (("methods: [naive, rlsa]", "methods: [naive, rlsaa]"), "methods[1].name: unknown merger 'rlsaa'; did you mean 'rlsa'"),
    (("methods: [naive, rlsa]", "methods: [ortho]"), "methods[0].name: unknown merger 'ortho'"),
    (("width: 32", "width: 48"), "merging: no end-to-end encoder 'digits-mlp-w48-s0'"),
    (("seeds: [0, 1]}", "seeds: [0, 1], sampling: kmeans}"), "anchors.sampling: a merging task"),
    (("metrics: [cka_linear", "metrics: [pixel_mse"), "metrics[0]: 'pixel_mse' compares pixels"),
])
def test_invalid_merging_tasks_name_the_field(tmp_path, edit, message):
    path = tmp_path / "task.yaml"
    path.write_text(MERGING_TASK.replace(*edit))
    with pytest.raises(TaskError) as error:
        load_task(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_anchor_count_is_checked_against_the_shared_pool(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text(MERGING_TASK.replace("counts: [16]", "counts: [1200]"))
    with pytest.raises(TaskError, match=r"anchors.counts\[0\]: 1200 anchors, but partition 'shared-samples' draws anchors from \d+ samples"):
        check_against_data(load_task(path))


def test_a_merging_run_stores_scores_and_resumes(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text(MERGING_TASK)
    task, store = load_task(path), ResultStore(tmp_path / "results")
    first = Summary()
    run_task(task, store, torch.device("cpu"), first, progress=False)
    assert (first.run, first.failed) == (8, 0)  # 2 partitions x 2 mergers x 2 seeds
    rows = {(r.source, r.method, r.seed): r for r in store.rows()}
    reference = rows[("digits-mlp-w32-s0", "native", 0)].metrics
    assert reference["cka_linear"] == pytest.approx(1.0) and reference["accuracy"] > 0.9
    for (source, method, seed), row in rows.items():
        assert row.kind == "merging" and 0 < row.metrics["cka_linear"] <= 1 + 1e-9
        assert 0.5 < row.metrics["accuracy"] <= 1 and row.metrics["separability"] > 0
    # naive ignores the anchors: both seeds give the same merged space
    assert rows[("disjoint", "naive", 0)].metrics == rows[("disjoint", "naive", 1)].metrics
    assert rows[("disjoint", "rlsa", 0)].anchor_ids_hash != rows[("disjoint", "rlsa", 1)].anchor_ids_hash
    again = Summary()
    run_task(task, store, torch.device("cpu"), again, progress=False)
    assert (again.run, again.skipped) == (0, 8)
    json.dumps([row.to_json() for row in store.rows()])  # every stored value is plain JSON
    text = render(store.root, tmp_path / "leaderboard.md", plots=False, tasks=[task])
    merging = text[text.index("## Merging"):]
    assert "### tiny-merging" in merging and re.search(r"\| end to end \(reference\) +\| 1\.000 ", merging)
    assert "**disjoint**: all metrics at n=16 anchors" in merging and "[rlsa](mergers/rlsa/card.yaml)" in merging


HANGING_MERGER = """\
import time

from bench.merging import Merger, register_merger


@register_merger("test-hangs")
class Hangs(Merger):
    def fit(self, anchors):
        time.sleep(600)
        return self

    def transform(self, spaces):
        return spaces[0]
"""


def test_process_executor_fails_a_hanging_merger_and_keeps_the_others(tmp_path, monkeypatch):
    from bench.sandbox import ProcessExecutor
    from bench.merging import UnimportableMerger
    from bench.method import register_folder
    from support import REPO

    mergers = tmp_path / "mergers"
    (mergers / "test-hangs").mkdir(parents=True)
    (mergers / "test-hangs" / "merger.py").write_text(HANGING_MERGER)
    shutil.copytree(REPO / "mergers" / "rlsa", mergers / "rlsa")
    monkeypatch.setenv("BENCH_MERGERS", str(mergers))  # what the spawned workers discover
    register_folder(mergers / "test-hangs", MERGERS, UnimportableMerger)  # and this process, for the task file
    path = tmp_path / "task.yaml"
    path.write_text(MERGING_TASK.replace("[shared-samples, disjoint]", "[disjoint]").replace("seeds: [0, 1]", "seeds: [0]")
                    .replace("methods: [naive, rlsa]", "methods: [test-hangs, rlsa]") + "limits: {time_s: 5}\n")
    store, summary = ResultStore(tmp_path / "results"), Summary()
    run_task(load_task(path), store, torch.device("cpu"), summary, progress=False, executor=ProcessExecutor(workers=1))
    rows = {r.method: r for r in store.rows()}
    assert (summary.run, summary.failed) == (2, 1)
    assert rows["test-hangs"].status == "failed" and "time limit" in rows["test-hangs"].error
    assert rows["rlsa"].status == "ok" and rows["rlsa"].metrics["cka_linear"] > 0.5
