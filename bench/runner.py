"""The runner: task -> embeddings -> anchors -> cells (fit, transform, score) -> result store.

A cell is (source, target, method, n_anchors, seed). The runner plans every cell of a task,
skips those with a stored result (resume), and only then loads embeddings and fits decoders, so a
complete run costs seconds. A method gets the paired anchors and the source evaluation
embeddings, nothing else: labels, decoders and target evaluation embeddings stay here.

Pending cells that differ only in their anchor seed (same pair, method, parameters and anchor
count) form one job when the method has its own Method.fit_many: ortho takes one batched SVD for
all of them. Such a job's time limit is the per-cell limit times its cells.
"""
from __future__ import annotations

import functools
import platform
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.anchors import GEOMETRIC, anchor_ids_hash, sample_anchors
from bench.compare import NATIVE
from bench.datasets import Dataset, load_dataset
from bench.decoders import DECODERS
from bench.encoders import ENCODERS, embeddings
from bench.executors import Job, LocalExecutor, MergeJob, Outcome
from bench.grids import N_SHOWN, grid_path, save_grid
from bench.method import REPO_ROOT, fits_in_batches
from bench.metrics import score_all
from bench.results import SCHEMA_VERSION, ResultStore, cell_key
from bench.task import MethodSpec, Task, check_against_data, plugins

# rows are written at most this often: a kill loses at most this much work (plus the job in flight),
# however slow the cells, and a fast task is not slowed by a rewrite + fsync every few cells
FLUSH_SECONDS = 5.0
MAX_BATCH = 32  # cells per job: bounds a job's memory, time limit and what one crash of a worker fails


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from bench.task import BadInputError  # bad input, not a crash: the command line exits 2 on one line

        raise BadInputError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu or auto")
    return torch.device(name)


@functools.lru_cache(maxsize=1)
def environment() -> tuple[dict[str, str], str]:
    import sklearn

    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                "sklearn": sklearn.__version__}
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        commit = done.stdout.strip() if done.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return versions, commit


@dataclass(frozen=True)
class Cell:
    source: str
    target: str
    method: MethodSpec
    n_anchors: int
    seed: int


@dataclass
class Summary:
    run: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"cells run: {self.run}, skipped (already stored): {self.skipped}, failed: {self.failed}, time: {self.seconds:.1f} s"
        return "\n".join([text, *(f"  FAILED {failure}" for failure in self.failures)])


def plan(task: Task, method_filter: set[str] | None = None) -> list[Cell]:
    methods = [m for m in task.methods if method_filter is None or m.name in method_filter or m.display in method_filter]
    anchors = task.spec.anchors
    return [Cell(s, t, m, n, seed) for (s, t) in task.pairs() for m in methods for n in anchors.counts for seed in anchors.seeds]


def base_row(task: Task, dataset: Dataset, cell: Cell, source_hash: str) -> dict[str, Any]:
    versions, commit = environment()
    return {
        "schema_version": SCHEMA_VERSION, "task": task.name, "task_version": task.spec.version,
        "task_spec_hash": task.spec_hash, "kind": task.spec.kind, "dataset": dataset.name,
        "dataset_hash": dataset.content_hash, "source": cell.source, "target": cell.target,
        "method": cell.method.display, "method_name": cell.method.name, "method_params": dict(cell.method.params),
        "method_source_hash": source_hash, "n_anchors": cell.n_anchors, "seed": cell.seed,
        "anchor_ids_hash": None, "status": "ok", "error": None, "metrics": {}, "unavailable": {},
        "fit_seconds": None, "fit_cells": None, "transform_seconds": None, "device": None, "isolation": "in-process",
        "versions": versions, "git_commit": commit,
    }


class TaskContext:
    """Embeddings, decoders and native predictions of one task, computed once and shared by its cells."""

    def __init__(self, task: Task, dataset: Dataset, device: torch.device):
        self.task, self.dataset, self.device = task, dataset, device
        self.fit_idx = dataset.split(task.spec.dataset.fit_split)
        self.eval_idx = dataset.split(task.spec.dataset.eval_split)
        self.labels = torch.from_numpy(dataset.y[self.eval_idx]).to(device)  # (m,)

    @functools.cache
    def embedding(self, encoder: str) -> torch.Tensor:  # (n, d) on device, whole data set
        return torch.from_numpy(embeddings(encoder, self.dataset, self.device)).to(self.device)

    @functools.cache
    def decoder(self, target: str):
        fit = self.embedding(target)[self.fit_idx].cpu().numpy()
        return DECODERS.get(self.task.spec.decoder)(fit, self.dataset.y[self.fit_idx])

    def predict(self, target: str, latents: torch.Tensor) -> torch.Tensor:  # (m, d) -> (m,)
        return self.decoder(target).predict_tensor(latents.detach().to(self.device))

    @functools.cache
    def native_predicted(self, target: str) -> torch.Tensor:
        return self.predict(target, self.embedding(target)[self.eval_idx])

    @functools.cache
    def anchors(self, source: str, n: int, seed: int) -> np.ndarray:
        sampling = self.task.spec.anchors.sampling
        if sampling not in GEOMETRIC:
            return self.anchors_shared(n, seed)
        return sample_anchors(self.fit_idx, self.dataset.y, n, seed, sampling, self.embedding(source).cpu().numpy())

    @functools.cache
    def anchors_shared(self, n: int, seed: int) -> np.ndarray:  # the same for every source encoder
        return sample_anchors(self.fit_idx, self.dataset.y, n, seed, self.task.spec.anchors.sampling)

    @functools.cache
    def probes(self, target: str):
        """One-vs-rest logistic probes, one per class, fitted on the target's own fit-split latents."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        fit = self.embedding(target)[self.fit_idx].cpu().numpy()
        return make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(max_iter=2000))).fit(fit, self.dataset.y[self.fit_idx])

    def probe_decisions(self, target: str, latents: torch.Tensor) -> torch.Tensor:  # (m, d) -> (m, classes) bool
        return torch.from_numpy(self.probes(target).decision_function(latents.detach().cpu().numpy()) > 0).to(self.device)

    def reconstruct(self, target: str, latents: torch.Tensor) -> torch.Tensor:  # (m, d) -> (m, c, h, w)
        return ENCODERS.get(target).decode(latents.to(self.device))

    def score(self, target: str, translated: torch.Tensor) -> tuple[dict[str, float | None], dict[str, str]]:
        """Every metric of the task, and the reasons of those unavailable here (their value is None)."""
        Y_eval = self.embedding(target)[self.eval_idx]
        providers = {  # each input is computed only when a metric of the task asks for it
            "translated": lambda: translated, "target": lambda: Y_eval, "labels": lambda: self.labels,
            "n_classes": lambda: self.dataset.n_classes,
            "predicted": lambda: self.predict(target, translated),
            "native_predicted": lambda: self.native_predicted(target),
            "reconstructed": lambda: self.reconstruct(target, translated),
            "images": lambda: torch.from_numpy(self.dataset.x[self.eval_idx]).to(self.device),
            "probe_decisions": lambda: self.probe_decisions(target, translated),
            "native_probe_decisions": lambda: self.probe_decisions(target, Y_eval),
            "probe_truth": lambda: torch.nn.functional.one_hot(self.labels, self.dataset.n_classes).bool(),
        }
        return score_all(self.task.spec.metrics, providers)


def make_job(context: TaskContext, batch: list[tuple[Cell, dict[str, Any]]], limits: dict[str, Any]) -> Job:
    """What the method may see: each cell's paired anchors, and the source's evaluation embeddings."""
    first = batch[0][0]
    X_src, Y_tgt = context.embedding(first.source), context.embedding(first.target)
    X_anchors, Y_anchors = [], []
    for cell, row in batch:
        anchors = context.anchors(cell.source, cell.n_anchors, cell.seed)
        row.update(anchor_ids_hash=anchor_ids_hash(anchors), device=str(context.device))
        # indexing by an index array copies: an in-place edit by one method cannot leak into the cached embeddings
        X_anchors.append(X_src[anchors])
        Y_anchors.append(Y_tgt[anchors])
    time_limit = limits["time_limit"] and limits["time_limit"] * len(batch)  # the per-cell limit, for each cell
    return Job(first.method.name, dict(first.method.params), first.seed, X_anchors, Y_anchors,
               X_src[context.eval_idx], str(context.device), time_limit, limits["memory_limit"])


def batches(pending: list[tuple[Cell, dict[str, Any]]], registry) -> list[list[tuple[Cell, dict[str, Any]]]]:
    """Group the cells a method fits together: those that differ only in their anchor seed (same
    pair, parameters and anchor count, so same shapes), for a method with its own fit_many
    (fits_in_batches); every other cell is a job of its own, with its own limits and fit time."""
    batched = {name: fits_in_batches(registry.get(name).cls) for name in {cell.method.name for cell, _ in pending}}
    groups: dict[tuple, list[tuple[Cell, dict[str, Any]]]] = {}
    for position, (cell, row) in enumerate(pending):
        if batched[cell.method.name]:
            key = (cell.source, cell.target, cell.method.display, cell.n_anchors)
        else:
            key = (position,)
        groups.setdefault(key, []).append((cell, row))
    return [group[start:start + MAX_BATCH] for group in groups.values() for start in range(0, len(group), MAX_BATCH)]


def placed(job: Job | MergeJob, folders: dict[str, str]) -> Job | MergeJob:
    """The job, told its plug-in's folder: the one folder a sandboxed worker lets it read."""
    job.folder = folders.get(job.plugin)
    return job


def finish_row(context: TaskContext, cell: Cell, row: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    row.update(fit_seconds=outcome.fit_seconds, fit_cells=outcome.fit_cells, transform_seconds=outcome.transform_seconds)
    if outcome.error is not None:
        return {**row, "status": "failed", "error": outcome.error}
    try:
        row["metrics"], row["unavailable"] = context.score(cell.target, outcome.translated.to(context.device, torch.float32))
    except Exception as error:
        return {**row, "status": "failed", "error": f"score: {type(error).__name__}: {error}"}
    return row


def native_cell(target: str) -> Cell:
    return Cell(target, target, MethodSpec(name=NATIVE), 0, 0)


def native_rows(context: TaskContext, targets: list[str]) -> list[dict[str, Any]]:
    """The no-stitch ceiling: each target decoder on the target's own evaluation embeddings."""
    rows = []
    for target in targets:
        row = base_row(context.task, context.dataset, native_cell(target), source_hash="")
        row["device"] = str(context.device)
        row["metrics"], row["unavailable"] = context.score(target, context.embedding(target)[context.eval_idx])
        rows.append(row)
    return rows


def run_task(task: Task, store: ResultStore, device: torch.device, summary: Summary,
             method_filter: set[str] | None = None, progress: bool = True, executor=None,
             limits: dict[str, Any] | None = None) -> None:
    """Run every cell of `task` that has no stored result; failed cells are stored with their reason."""
    check_against_data(task)
    executor = executor or LocalExecutor()
    limits = limits or {"time_limit": task.spec.limits.time_s, "memory_limit": task.spec.limits.memory_mb}
    dataset = load_dataset(task.spec.dataset.name)
    cells = plan(task, method_filter)
    registry = plugins(task.spec.kind)  # translation methods, or mergers for a merging task
    source_hashes = {m.name: registry.get(m.name).source_hash for m in task.methods}
    done = {label: store.completed_keys(task.name, label) for label in {c.method.display for c in cells} | {NATIVE}}
    pending = [(cell, row) for cell in cells
               if cell_key(row := base_row(task, dataset, cell, source_hashes[cell.method.name])) not in done[cell.method.display]]
    summary.skipped += len(cells) - len(pending)
    if task.spec.kind == "merging":
        from bench.merging import merging_steps

        make, finish = merging_steps(task, dataset, device, store, done[NATIVE])
        grouped = [[item] for item in pending]  # a merger fits one cell per job
    else:
        make, finish = stitching_steps(task, dataset, device, store, done[NATIVE], pending)
        grouped = batches(pending, registry)
    folders = {m.name: str(registry.get(m.name).folder) for m in task.methods if registry.get(m.name).folder}
    isolation = getattr(executor, "isolation", "in-process")
    for _, row in pending:
        row["isolation"] = isolation  # what the method ran under (bench/sandbox.py); the leaderboard shows it
    jobs = (placed(make(batch, limits), folders) for batch in grouped)  # lazy: one job's tensors at a time
    buffer: list[dict[str, Any]] = []
    flushed = time.monotonic()
    bar = tqdm(total=len(pending), desc=task.name, unit="cell", disable=not progress or not pending, dynamic_ncols=True)
    for index, outcomes in executor.run(jobs, sorted(set(folders.values()))):
        for (cell, row), outcome in zip(grouped[index], outcomes, strict=True):
            row = finish(cell, row, outcome)
            summary.run += 1
            bar.update()
            if row["status"] != "ok":
                summary.failed += 1
                summary.failures.append(f"{task.name} {cell.source}->{cell.target} {cell.method.display} "
                                        f"n={cell.n_anchors} seed={cell.seed}: {row['error']}")
            buffer.append(row)
        if time.monotonic() - flushed >= FLUSH_SECONDS:
            store.write(buffer)
            buffer, flushed = [], time.monotonic()
    bar.close()
    store.write(buffer)


def stitching_steps(task: Task, dataset: Dataset, device: torch.device, store: ResultStore, native_done: set[str],
                    pending: list[tuple[Cell, dict[str, Any]]]):
    """For a stitching task: write the missing native rows, then return (make a cell's Job, finish its row)."""
    context = TaskContext(task, dataset, device)
    targets = sorted({t for _, t in task.pairs()})
    missing_native = [t for t in targets if cell_key(base_row(task, dataset, native_cell(t), "")) not in native_done]
    if missing_native:
        store.write(native_rows(context, missing_native))
    first_pair, largest, first_seed = task.pairs()[0], max(task.spec.anchors.counts), task.spec.anchors.seeds[0]
    showcase = {cell_key(row) for cell, row in pending
                if (cell.source, cell.target) == first_pair and cell.n_anchors == largest and cell.seed == first_seed}

    def finish(cell: Cell, row: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        row = finish_row(context, cell, row, outcome)
        if row["status"] == "ok" and task.spec.kind == "reconstruction" and cell_key(row) in showcase:
            save_showcase(context, cell, outcome, store.root)
        return row

    return (lambda batch, limits: make_job(context, batch, limits)), finish


def save_showcase(context: TaskContext, cell: Cell, outcome: Outcome, results_dir) -> None:
    """For reconstruction tasks: originals and this method's stitched reconstructions, as a PNG."""
    shown = context.eval_idx[:N_SHOWN]
    reconstructed = context.reconstruct(cell.target, outcome.translated[:N_SHOWN].to(context.device, torch.float32))
    title = f"{cell.method.display}: {cell.source} -> {cell.target}, {cell.n_anchors} anchors (top: originals)"
    save_grid(grid_path(results_dir, context.task.name, cell.method.display), context.dataset.x[shown],
              reconstructed.cpu().numpy(), title)
