"""The runner end to end on a tiny digits task: scores, resume, failures, anchors, determinism."""
import functools
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from bench.anchors import sample_anchors
from bench.datasets import load_dataset
from bench.decoders import DECODERS
from bench.method import METHODS, Method, MethodInfo
from bench.results import ResultStore
from bench.kinds.stitching import StitchingEvaluation, StitchingJob
from bench.report.rows import is_current_factory
from bench.runner import Summary, run_task
from bench.task import load_task
from support import REPO, SMALL_TASK


def run(task, results, methods=None) -> Summary:
    summary = Summary()
    run_task(task, ResultStore(results), torch.device("cpu"), summary, methods, progress=False)
    return summary


def test_scores_resume_and_determinism(task_file, tmp_path):
    task = load_task(task_file)
    first = run(task, tmp_path / "a")
    assert (first.run, first.skipped, first.failed) == (len(task.plan()), 0, 0) == (24, 0, 0)
    rows = ResultStore(tmp_path / "a").rows()
    ok = {(r.method, r.source, r.n_anchors, r.seed): r for r in rows if r.method != "native"}
    # the paper's shape: no translation is near chance, Procrustes recovers the native accuracy
    native = np.mean([r.metrics["accuracy"] for r in rows if r.method == "native"])
    absolute = np.mean([r.metrics["accuracy"] for k, r in ok.items() if k[0] == "absolute"])
    ortho = np.mean([r.metrics["accuracy"] for k, r in ok.items() if k[0] == "ortho" and k[2] == 64])
    assert native > 0.9 and absolute < 0.3 and ortho > 0.85 * native
    row = next(iter(ok.values()))
    for field in ("schema_version", "task_spec_hash", "method_source_hash", "anchor_ids_hash", "versions", "git_commit", "device"):
        assert getattr(row, field) is not None

    second = run(task, tmp_path / "a")
    assert (second.run, second.skipped) == (0, 24)

    run(task, tmp_path / "b")  # a fresh directory: the same numbers
    strip = lambda rs: sorted(json.dumps({**r.to_json(), "fit_seconds": 0, "transform_seconds": 0}, sort_keys=True) for r in rs)
    assert strip(ResultStore(tmp_path / "b").rows()) == strip(rows)


def test_a_changed_decoder_makes_the_rows_it_scored_stale_and_they_run_again(task_file, tmp_path, monkeypatch):
    """The decoder's identity is in every row's key: a new version is a new cell, and the old rows
    stay stored but stop counting (never mixed with the new ones)."""
    task = load_task(task_file)
    run(task, tmp_path)
    before = ResultStore(tmp_path).rows()
    assert {r.decoder for r in before} == {'logistic v2 {"max_iter": 2000}'} == {task.decoder_identity}
    monkeypatch.setitem(DECODERS._entries, "logistic", replace(DECODERS.get("logistic"), version=99))
    assert task.decoder_identity == 'logistic v99 {"max_iter": 2000}'
    assert not any(map(is_current_factory({task.name: task}), before))
    again = run(task, tmp_path)
    assert (again.run, again.skipped) == (len(task.plan()), 0)
    after = ResultStore(tmp_path).rows()
    current = [r for r in after if is_current_factory({task.name: task})(r)]
    assert len(after) == 2 * len(before) and len(current) == len(before)
    assert {r.decoder for r in current} == {task.decoder_identity}


class Exploding(Method):
    def __init__(self, mode: str = "raise"):
        self.mode = mode

    def fit(self, X, Y):
        if self.mode == "raise":
            raise RuntimeError("exploded on purpose")
        self.dy_ = Y.shape[1]
        return self

    def transform(self, X):
        if self.mode == "nan":
            return torch.full((X.shape[0], self.dy_), float("nan"))
        if self.mode == "numpy":
            return np.zeros((X.shape[0], self.dy_))
        return torch.zeros(X.shape[0], self.dy_ + 1)


@pytest.mark.parametrize("mode, reason", [
    ("raise", "fit: RuntimeError: exploded on purpose"),
    ("nan", "non-finite values"),
    ("numpy", "numpy.ndarray; it must return a torch.Tensor"),
    ("shape", "expected (m, dy)"),
])
def test_broken_method_fails_its_cells_not_the_run(tmp_path, monkeypatch, mode, reason):
    monkeypatch.setitem(METHODS._entries, "exploding", MethodInfo("exploding", Exploding, None))
    path = tmp_path / "t.yaml"
    path.write_text(SMALL_TASK.replace("methods: [absolute, ortho, linear]",
                                       f"methods: [ortho, {{name: exploding, params: {{mode: {mode}}}}}]"))
    summary = run(load_task(path), tmp_path / "r")
    assert summary.run == 16 and summary.failed == 8
    failed = [r for r in ResultStore(tmp_path / "r").rows() if r.status == "failed"]
    assert len(failed) == 8 and all(reason in r.error for r in failed)
    assert all(reason in line for line in summary.failures)


def test_anchors_come_from_fit_split_only():
    data = load_dataset("digits")
    train, test = data.split("train"), data.split("test")
    assert not set(train) & set(test) and len(train) + len(test) == len(data.y)
    for sampling in ("uniform", "stratified"):
        anchors = sample_anchors(train, data.y, 200, seed=3, sampling=sampling)
        assert len(set(anchors)) == 200 and set(anchors) <= set(train)
        assert np.array_equal(anchors, sample_anchors(train, data.y, 200, seed=3, sampling=sampling))
    counts = np.bincount(data.y[sample_anchors(train, data.y, 100, seed=0, sampling="stratified")], minlength=10)
    assert counts.min() >= 9 and counts.max() <= 11  # proportional to the (nearly balanced) classes


def test_method_filter_runs_only_that_method(task_file, tmp_path):
    summary = run(load_task(task_file), tmp_path / "r", methods={"ortho"})
    assert summary.run == 8
    assert {r.method for r in ResultStore(tmp_path / "r").rows()} == {"ortho", "native"}


def test_prefixed_encoder_names_resolve_in_task_files(tmp_path):
    """`file:<path>` (like hf:, st:) is built from its name: precomputed embeddings enter a task as is."""
    data = load_dataset("digits")
    rng = np.random.default_rng(0)
    source = rng.normal(size=(len(data.y), 8)).astype(np.float32) + np.eye(10, 8, dtype=np.float32)[data.y] * 3
    rotation = np.linalg.qr(rng.normal(size=(8, 8)))[0].astype(np.float32)
    np.save(tmp_path / "a.npy", source)
    np.save(tmp_path / "b.npy", source @ rotation)
    path = tmp_path / "t.yaml"
    path.write_text(SMALL_TASK.replace("[digits-mlp-w32-s0, digits-mlp-w32-s1]", f"[file:{tmp_path}/a.npy, file:{tmp_path}/b.npy]")
                    .replace("[absolute, ortho, linear]", "[ortho]").replace("counts: [16, 64], seeds: [0, 1]", "counts: [64], seeds: [0]"))
    run(load_task(path), tmp_path / "r")
    rows = {(r.method, r.target): r.metrics["accuracy"] for r in ResultStore(tmp_path / "r").rows()}
    target = f"file:{tmp_path}/b.npy"
    assert rows[("ortho", target)] > 0.95 * rows[("native", target)]


def test_jobs_hand_methods_copies_of_the_cached_embeddings(task_file):
    task = load_task(task_file)
    dataset = load_dataset(task.spec.dataset.name)
    context = StitchingEvaluation(task, dataset, torch.device("cpu"))
    cell = task.plan()[0]
    job = context.job([cell], task.spec.limits)
    cached = context.embedding(cell.source).clone()
    for tensor in (*job.X_anchors, *job.Y_anchors, job.X_eval):
        tensor.mul_(0)  # what a careless method might do in fit or transform
    assert torch.equal(context.embedding(cell.source), cached)


def test_cells_differing_only_in_their_seed_share_a_job_when_the_method_batches(task_file):
    path = task_file.with_name("seeded.yaml")
    path.write_text(task_file.read_text().replace("[absolute, ortho, linear]", "[ortho, affine, linear]"))
    task = load_task(path)
    jobs = [sorted((c.method.name, c.source, c.n_anchors, c.seed) for c, _ in batch) for batch in StitchingEvaluation(task, load_dataset("digits"), torch.device("cpu")).batches([(c, {}) for c in task.plan()])]
    for source in ("digits-mlp-w32-s0", "digits-mlp-w32-s1"):
        for n in (16, 64):
            # ortho has its own fit_many: one job per anchor count, its two seeds together
            assert [("ortho", source, n, 0), ("ortho", source, n, 1)] in jobs
            # linear inherits the default, affine takes a seed: a job per cell
            for name in ("affine", "linear"):
                assert [(name, source, n, 0)] in jobs and [(name, source, n, 1)] in jobs
    assert len(jobs) == 2 * 2 + 2 * 2 * 2 * 2


def test_only_a_method_with_its_own_fit_many_and_no_seed_is_batched():
    from bench.method import fits_in_batches

    ortho = METHODS.get("ortho").cls

    class ChangesFit(ortho):  # inherits ortho's fit_many, which knows nothing of this fit
        def fit(self, X, Y):
            return super().fit(2 * X, Y)

    class AlsoBatches(ChangesFit):
        def fit_many(self, Xs, Ys):
            return [type(self)(**self.get_params()).fit(X, Y) for X, Y in zip(Xs, Ys)]

    assert fits_in_batches(ortho) and fits_in_batches(AlsoBatches)
    assert not any(fits_in_batches(cls) for cls in (ChangesFit, METHODS.get("linear").cls, METHODS.get("affine").cls, Method))


def test_batched_fits_give_the_results_of_one_cell_at_a_time(task_file, tmp_path, monkeypatch):
    import bench.kinds.stitching

    task = load_task(task_file)
    run(task, tmp_path / "batched")
    monkeypatch.setattr(bench.kinds.stitching, "MAX_BATCH", 1)
    run(task, tmp_path / "alone")
    strip = lambda r: json.dumps({**r.to_json(), "fit_seconds": 0, "transform_seconds": 0, "fit_cells": 0}, sort_keys=True)
    batched, alone = (ResultStore(tmp_path / name).rows() for name in ("batched", "alone"))
    assert sorted(map(strip, batched)) == sorted(map(strip, alone))
    assert {r.fit_cells for r in batched if r.method == "ortho"} == {2}  # its two seeds in one call
    assert {r.fit_cells for r in batched if r.method in ("absolute", "linear")} == {1}
    assert {r.fit_cells for r in alone if r.method != "native"} == {1}


class FewAnchorsFail(Method):
    """Fails on fewer than 20 anchors: in a batch, only that cell may fail."""

    def fit(self, X, Y):
        if X.shape[0] < 20:
            raise ValueError(f"needs 20 anchors, got {X.shape[0]}")
        self.map_ = torch.linalg.lstsq(X, Y).solution
        return self

    def transform(self, X):
        return X @ self.map_


class WrongFitMany(FewAnchorsFail):
    def fit_many(self, Xs, Ys):
        return [self]  # one object for every anchor set: broken


class PoolsAnchors(FewAnchorsFail):
    def fit_many(self, Xs, Ys):  # fits every cell on all the anchors of the batch: more than its share
        pooled = type(self)().fit(torch.cat(Xs), torch.cat(Ys))
        return [type(self)().fit(torch.cat(Xs), torch.cat(Ys)) if i else pooled for i in range(len(Xs))]


@pytest.mark.parametrize("cls", [FewAnchorsFail, WrongFitMany, PoolsAnchors])
def test_a_batch_that_breaks_falls_back_to_one_fit_per_cell(monkeypatch, cls):
    monkeypatch.setitem(METHODS._entries, "few", MethodInfo("few", cls, None))
    generator = torch.Generator().manual_seed(0)
    X, Y = torch.randn(64, 4, generator=generator), torch.randn(64, 3, generator=generator)
    outcomes = StitchingJob(plugin="few", params={}, seed=0, device="cpu", X_anchors=[X[:16], X[:32], X],
                            Y_anchors=[Y[:16], Y[:32], Y], X_eval=X[:5]).execute()
    assert [o.error for o in outcomes] == ["fit: ValueError: needs 20 anchors, got 16", None, None]
    assert torch.allclose(outcomes[2].translated, X[:5] @ torch.linalg.lstsq(X, Y).solution)
    assert [o.fit_cells for o in outcomes] == [1, 1, 1]


def test_the_shared_work_is_done_first_one_progress_bar_per_phase(task_file, tmp_path, monkeypatch, capsys):
    """Encoding, then the decoders, then the cells, each with its own bar: no job is made before every
    encoder's embeddings and every target's decoder exist, so the cells' ETA counts cells only."""
    task = load_task(task_file)
    order = []
    for name in ("embedding", "decoder"):
        original = getattr(StitchingEvaluation, name).__wrapped__  # under functools.cache

        def recorded(self, encoder, original=original, name=name):
            order.append((name, encoder))
            return original(self, encoder)

        monkeypatch.setattr(StitchingEvaluation, name, functools.cache(recorded))
    job = StitchingEvaluation.job
    monkeypatch.setattr(StitchingEvaluation, "job", lambda self, *a: order.append(("job", None)) or job(self, *a))
    run_task(task, ResultStore(tmp_path), torch.device("cpu"), Summary(), progress=True)
    first_job = order.index(("job", None))
    encoders = ["digits-mlp-w32-s0", "digits-mlp-w32-s1"]
    assert order[:first_job] == [("embedding", e) for e in encoders] + [("decoder", e) for e in encoders]
    bars = capsys.readouterr().err
    assert bars.index("tiny: encoding") < bars.index("tiny: decoders") < bars.index("tiny:   0%|")  # the cells' bar
    assert "0/2 [" in bars and "0/24 [" in bars  # two encoders, two decoders; 24 cells, nothing else counted as one


@pytest.mark.parametrize("task_path", ["tasks/fashion-mnist-merging.yaml", "tasks/digits-cross-seed.yaml"])
def test_a_rerun_with_every_row_stored_prepares_nothing(task_path):
    """No cell to run, no reference to score: no encoder is trained or run, no decoder fitted (before,
    a merging task encoded its end-to-end space on every `bench run`)."""
    task = load_task(REPO / task_path)
    evaluation = task.kind.evaluation(task, load_dataset(task.spec.dataset.name), torch.device("cpu"), REPO / "results")
    assert evaluation.preparations([]) == []
    assert evaluation.preparations(evaluation.reference_cells())  # the references alone need their spaces
