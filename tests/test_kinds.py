"""A new task kind is one module: this one is defined here, registered, run end to end and reported,
with no edit anywhere in bench/ (bench/task.py's TaskKind and Evaluation protocols are all it uses).

The kind, "toy-rotation": the target space is the source encoder's own embeddings turned by a
seeded random rotation, so a translation method must recover an orthogonal map. Orthogonal
Procrustes on the raw embeddings does so exactly (its mse is round-off); the no-translation floor does not.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import Field

from bench.anchors import sample_anchors
from bench.datasets import Dataset
from bench.encoders import ENCODERS, embeddings
from bench.kinds.stitching import StitchingJob
from bench.method import METHODS
from bench.metrics import score_all
from bench.report.blocks import Block, Code, Inline, Para, Table, User
from bench.report.leaderboard import render
from bench.report.stats import fmt, largest_count, summarise
from bench.results import Result, ResultStore
from bench.runner import Summary, run_task
from bench.task import (
    KINDS,
    Cell,
    LimitSpec,
    Preparation,
    Scores,
    Strict,
    Task,
    TaskError,
    TaskSpec,
    load_task,
    reference_cell,
)


class RotationSpec(Strict):
    encoder: str
    seed: int = Field(default=0, ge=0)


def rotated_id(spec: TaskSpec) -> str:
    return f"{spec.block.encoder}@rotation{spec.block.seed}"


class RotationKind:
    block = "rotation"
    block_spec = RotationSpec
    plugins = METHODS
    compares = ("latent",)
    ranked = False
    title = "Rotation recovery"
    note = "Each method maps an encoder's space onto a rotated copy of itself."

    def pairs(self, spec: TaskSpec) -> list[tuple[str, str]]:
        return [(spec.block.encoder, rotated_id(spec))]

    def problems(self, spec: TaskSpec) -> list[str]:
        return [] if spec.block.encoder in ENCODERS else [f"rotation.encoder: unknown encoder {spec.block.encoder!r}"]

    def decoder_identity(self, spec: TaskSpec) -> str | None:
        return None  # its metrics compare latents: nothing is fitted on the target

    def data_problems(self, task: Task, dataset: Dataset) -> list[str]:
        return []

    def evaluation(self, task: Task, dataset: Dataset, device: torch.device, results_dir: Path) -> RotationEvaluation:
        return RotationEvaluation(task, dataset, device)

    def describe(self, task: Task) -> list[Inline]:
        return [", source ", Code(task.spec.block.encoder), f", rotation seed {task.spec.block.seed}"]

    def report(self, frame: pd.DataFrame, task: Task, names: dict[str, str]) -> list[Block]:
        largest = largest_count(frame, task)
        main = summarise(frame, task, task.main_metric)
        rows = [[User(method), fmt(*main[(method, n)])] for method, n in sorted(main) if n == largest]
        return [Para([f"{task.main_metric} at n={largest}:"]), Table(["method", task.main_metric], rows)]


KINDS.add("toy-rotation", RotationKind())


class RotationEvaluation:
    def __init__(self, task: Task, dataset: Dataset, device: torch.device):
        self.task, self.dataset, self.device = task, dataset, device
        self.fit_idx, self.eval_idx = dataset.split("train"), dataset.split("test")

    @functools.cached_property
    def spaces(self) -> tuple[torch.Tensor, torch.Tensor]:  # (n, d) source and (n, d) rotated
        X = torch.from_numpy(embeddings(self.task.spec.block.encoder, self.dataset, self.device))
        generator = torch.Generator().manual_seed(self.task.spec.block.seed)
        rotation, _ = torch.linalg.qr(torch.randn(X.shape[1], X.shape[1], generator=generator))
        return X, X @ rotation

    def scores(self, output: torch.Tensor) -> Scores:
        target = self.spaces[1][self.eval_idx]
        return score_all(self.task.spec.metrics, {"translated": lambda: output, "target": lambda: target})

    def preparations(self, cells: list[Cell]) -> list[Preparation]:
        return [Preparation("encoding", self.task.spec.block.encoder, lambda: self.spaces)]

    def reference_cells(self) -> list[Cell]:
        return [reference_cell(rotated_id(self.task.spec))]

    def score_reference(self, cell: Cell) -> Scores:
        return self.scores(self.spaces[1][self.eval_idx])

    def batches(self, pending: list[tuple[Cell, Result]]) -> list[list[tuple[Cell, Result]]]:
        return [[item] for item in pending]

    def anchors(self, cell: Cell) -> np.ndarray:
        return sample_anchors(self.fit_idx, self.dataset.y, cell.n_anchors, cell.seed, "uniform")

    def job(self, cells: list[Cell], limits: LimitSpec) -> StitchingJob:
        [cell] = cells
        anchors = self.anchors(cell)
        X, Y = self.spaces
        return StitchingJob(plugin=cell.method.name, params=dict(cell.method.params), seed=cell.seed, device=str(self.device),
                            time_limit=limits.time_s, memory_limit=limits.memory_mb,
                            X_anchors=[X[anchors]], Y_anchors=[Y[anchors]], X_eval=X[self.eval_idx])

    def score(self, cell: Cell, output: torch.Tensor) -> Scores:
        return self.scores(output)

    def scored(self, cell: Cell, output: torch.Tensor) -> None:
        pass


TASK = """\
name: toy-rotation-digits
version: 1
kind: toy-rotation
dataset: {name: digits}
rotation: {encoder: digits-mlp-w32-s0, seed: 3}
anchors: {counts: [64], seeds: [0, 1]}
methods: [absolute, {name: ortho, params: {preprocessing: none}, label: ortho-raw}]
metrics: [mse, cosine]
"""


@pytest.fixture
def task(tmp_path: Path) -> Task:
    path = tmp_path / "toy-rotation-digits.yaml"
    path.write_text(TASK)
    return load_task(path)


def test_a_kind_defined_outside_bench_runs_end_to_end(task, tmp_path):
    store = ResultStore(tmp_path / "results")
    summary = Summary()
    run_task(task, store, torch.device("cpu"), summary, progress=False)
    assert (summary.run, summary.failed) == (4, 0)
    rows = {(r.method, r.seed): r for r in store.rows()}
    assert {r.kind for r in rows.values()} == {"toy-rotation"}
    assert rows[("native", 0)].metrics["mse"] == 0 and rows[("native", 0)].target == "digits-mlp-w32-s0@rotation3"
    for seed in (0, 1):
        ortho, absolute = rows[("ortho-raw", seed)].metrics, rows[("absolute", seed)].metrics
        # Procrustes on raw embeddings recovers a rotation from 64 anchors of a 32-d space up to float32
        # round-off; no translation cannot
        assert ortho["mse"] < 1e-6 * absolute["mse"] and ortho["cosine"] > 1 - 1e-6
        assert rows[("ortho-raw", seed)].source == "digits-mlp-w32-s0"

    # a second run is a resume: every cell and the reference row are stored
    again = Summary()
    run_task(task, store, torch.device("cpu"), again, progress=False)
    assert (again.run, again.skipped) == (0, 4)

    text = render(tmp_path / "results", tmp_path / "leaderboard.md", plots=False, tasks=[task])
    section = text.split("## Rotation recovery")[1]
    assert "Each method maps an encoder's space onto a rotated copy of itself." in section
    assert "### toy-rotation-digits" in section and "source `digits-mlp-w32-s0`, rotation seed 3" in section
    table = [line.split("|")[1:3] for line in section.split("mse at n=64:")[1].split("### Methods")[0].split("\n") if line]
    assert [(method.strip(), float(mse.split("±")[0])) for method, mse in table[2:]] == [("absolute", pytest.approx(
        np.mean([rows[("absolute", seed)].metrics["mse"] for seed in (0, 1)]), abs=1e-3)), ("ortho-raw", 0.0)]
    assert "### Methods" in section  # the kind's plug-in family's cards


def test_the_kind_validates_its_own_block(tmp_path):
    path = tmp_path / "bad.yaml"
    for text, problem in [(TASK.replace("digits-mlp-w32-s0", "no-such-encoder"), "rotation.encoder: unknown encoder"),
                          (TASK.replace("seed: 3", "seed: -1"), "rotation.seed: Input should be greater than or equal to 0"),
                          (TASK.replace("rotation: {", "rotatoin: {"), "rotatoin: unknown key"),
                          (TASK.replace("metrics: [mse, cosine]", "metrics: [accuracy]"), "which a toy-rotation task does not have")]:
        path.write_text(text)
        with pytest.raises(TaskError, match=problem):
            load_task(path)
