"""Latent-space merging ("From Charts to Atlas", arXiv 2311.06547): the fit split is cut into
parts, one encoder is trained per part, and a merger fuses their spaces into one, which is scored
against an encoder trained end to end on the whole fit split.

A merger is the second plug-in family, with scikit-learn's estimator rules like a method:

    merger = SomeMerger(**hyperparameters)
    merger.fit([A_1, ..., A_k])             # (n, d_i): the same n anchor samples in each part's space
    Z = merger.transform([X_1, ..., X_k])   # (m, d_i) each -> (m, d_out): one merged row per sample

Mergers live in mergers/<name>/ (a module calling @register_merger, and a card.yaml). A merger
sees anchors and embeddings only: never labels, the end-to-end space or a decoder.

Partitions of the fit split into k parts (classes are shuffled by the task's seed first):
- shared-samples: a fraction of the classes is shared, and every part sees all of their samples;
  the other classes are dealt out, one part each. Anchors come from the shared samples.
- shared-classes: every part sees every class, on disjoint samples. Anchors: any fit sample.
- disjoint: classes are dealt out, so parts share neither classes nor samples. Anchors: any.

A cell is (partition, merger, n_anchors, seed). Its merged fit-split embeddings train the task's
decoder, which is scored on the merged eval-split embeddings; latent metrics compare the merged
eval embeddings with the end-to-end encoder's, and "clusters" metrics read their class structure.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import Tensor

from bench.anchors import anchor_ids_hash, sample_anchors
from bench.datasets import Dataset
from bench.decoders import DECODERS
from bench.encoders import embeddings, encoder_embeddings
from bench.encoders.trained import TrainedClassifierEncoder
from bench.executors import MergeJob, Outcome, _now, failure
from bench.method import REPO_ROOT, MethodInfo, build_method, register_folder
from bench.metrics import score_all
from bench.registry import Registry
from bench.results import ResultStore, cell_key
from bench.task import Task, TaskSpec

class Merger(BaseEstimator):
    """Base class of mergers. Subclasses implement fit and transform."""

    def fit(self, anchors: list[Tensor]) -> "Merger":  # k tensors of (n, d_i)
        raise NotImplementedError

    def transform(self, spaces: list[Tensor]) -> Tensor:  # k tensors of (m, d_i) -> (m, d_out)
        raise NotImplementedError


class UnimportableMerger(Merger):
    """Stands in for a merger folder whose modules fail to import (see MethodInfo.error)."""


MERGERS: Registry[MethodInfo] = Registry("merger")


def register_merger(name: str):
    """Class decorator: `@register_merger("rlsa")` makes a Merger subclass available by name."""
    import bench.method

    def decorator(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Merger)):
            raise TypeError(f"@register_merger({name!r}) must decorate a subclass of bench.merging.Merger")
        MERGERS.add(name, MethodInfo(name, cls, bench.method._loading_folder))
        return cls

    return decorator


def mergers_dir() -> Path:
    return Path(os.environ.get("BENCH_MERGERS", REPO_ROOT / "mergers"))


def _discover() -> None:
    root = mergers_dir()
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))) if root.is_dir() else []:
        register_folder(folder, MERGERS, UnimportableMerger)


MERGERS.add_loader(_discover)


def build_merger(name: str, params: dict[str, Any] | None = None, seed: int | None = None) -> Merger:
    return build_method(name, params, seed, registry=MERGERS)


# ---------------------------------------------------------------------------------------------
# partitions and encoders


def partition(labels: np.ndarray, pool: np.ndarray, how: str, n_parts: int, shared_classes: float,
              seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Each part's sample indices (sorted, taken from `pool`) and the pool anchors are drawn from."""
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.unique(labels[pool]))
    if how == "shared-classes":  # every class in every part, each class's samples dealt out
        parts: list[list[np.ndarray]] = [[] for _ in range(n_parts)]
        for c in classes:
            members = rng.permutation(pool[labels[pool] == c])
            for i in range(n_parts):
                parts[i].append(members[i::n_parts])
        return [np.sort(np.concatenate(p)) for p in parts], pool
    n_shared = int(round(shared_classes * len(classes))) if how == "shared-samples" else 0
    shared, private = classes[:n_shared], classes[n_shared:]
    if len(private) < n_parts:
        raise ValueError(f"partition {how!r}: {len(private)} classes left to deal out to {n_parts} parts; every part needs one "
                         "(lower merging.shared_classes or merging.n_tasks)")
    owned = [np.concatenate([shared, private[i::n_parts]]) for i in range(n_parts)]
    parts_idx = [np.sort(pool[np.isin(labels[pool], cls)]) for cls in owned]
    anchor_pool = np.sort(pool[np.isin(labels[pool], shared)]) if n_shared else pool
    return parts_idx, anchor_pool


def end_to_end_id(spec: TaskSpec) -> str:
    """The registered encoder trained on the whole fit split with every class (bench/encoders/trained.py)."""
    m = spec.merging
    return f"{spec.dataset.name}-{m.arch}-w{m.width}-s{m.seed}"


# ---------------------------------------------------------------------------------------------
# running a merging task


class MergingContext:
    """A merging task's partitions, part encoders' embeddings and the end-to-end space, computed once."""

    def __init__(self, task: Task, dataset: Dataset, device: torch.device):
        self.task, self.spec, self.dataset, self.device = task, task.spec.merging, dataset, device
        self.fit_idx = dataset.split(task.spec.dataset.fit_split)
        self.eval_idx = dataset.split(task.spec.dataset.eval_split)
        self.labels = torch.from_numpy(dataset.y[self.eval_idx]).to(device)  # (m,)

    @functools.cache
    def parts(self, how: str) -> tuple[list[np.ndarray], np.ndarray]:
        return partition(self.dataset.y, self.fit_idx, how, self.spec.n_tasks, self.spec.shared_classes, self.spec.seed)

    @functools.cache
    def spaces(self, how: str) -> list[Tensor]:  # k tensors of (N, d): every sample through each part's encoder
        spaces = []
        for i, indices in enumerate(self.parts(how)[0]):
            # seeds differ from each other and from the end-to-end encoder's: independently trained spaces
            encoder = TrainedClassifierEncoder(self.dataset.name, self.spec.arch, self.spec.width, self.spec.seed + 1 + i,
                                               indices=indices, tag=f"{how}-part{i}")
            spaces.append(torch.from_numpy(encoder_embeddings(encoder, self.dataset, self.device)).to(self.device))
        return spaces

    @functools.cache
    def end_to_end(self) -> Tensor:  # (m, d) eval-split embeddings of the end-to-end encoder
        return torch.from_numpy(embeddings(end_to_end_id(self.task.spec), self.dataset, self.device)[self.eval_idx]).to(self.device)

    @functools.cache
    def anchors(self, how: str, n: int, seed: int) -> np.ndarray:
        return sample_anchors(self.parts(how)[1], self.dataset.y, n, seed, self.task.spec.anchors.sampling)

    def score(self, merged_fit: Tensor, merged_eval: Tensor) -> tuple[dict[str, float | None], dict[str, str]]:
        """The task's metrics on a merged space; a decoder is fitted on its fit split only if a metric needs it."""
        def predicted() -> Tensor:
            decoder = DECODERS.get(self.task.spec.decoder)(merged_fit.cpu().numpy(), self.dataset.y[self.fit_idx])
            return decoder.predict_tensor(merged_eval)

        providers = {"translated": lambda: merged_eval, "target": self.end_to_end, "labels": lambda: self.labels,
                     "n_classes": lambda: self.dataset.n_classes, "predicted": predicted}
        return score_all(self.task.spec.metrics, providers)


def check_merged(output: Any, like: Tensor) -> Tensor:
    """A merger's output: a finite (m, d_out) tensor on the input's device, one row per input row."""
    if not isinstance(output, Tensor):
        raise TypeError(f"transform returned {type(output).__module__}.{type(output).__qualname__}; it must return a torch.Tensor")
    if output.device != like.device:
        raise TypeError(f"transform returned a tensor on {output.device}; it must stay on the input's device {like.device}")
    if output.ndim != 2 or output.shape[0] != like.shape[0]:
        raise ValueError(f"transform returned shape {tuple(output.shape)}; expected ({like.shape[0]}, d_out)")
    if not torch.isfinite(output).all():
        raise ValueError(f"transform returned {int((~torch.isfinite(output)).sum())} non-finite values (NaN or inf)")
    return output.detach()


def make_merge_job(context: MergingContext, cell, row: dict[str, Any], limits: dict[str, Any]) -> MergeJob:
    """What the merger may see: each part's anchors, and the rows to merge (fit split, then eval split).

    Fit and eval rows go through one transform: a merger merges rows independently (the
    rows_independent rule), so this equals two calls. Index arrays copy: the cached spaces stay intact.
    """
    spaces = context.spaces(cell.source)
    anchors = context.anchors(cell.source, cell.n_anchors, cell.seed)
    row.update(anchor_ids_hash=anchor_ids_hash(anchors), device=str(context.device))
    rows = np.concatenate([context.fit_idx, context.eval_idx])
    return MergeJob(cell.method.name, dict(cell.method.params), cell.seed, [S[anchors] for S in spaces],
                    [S[rows] for S in spaces], str(context.device), **limits)


def execute_merge(job: MergeJob) -> Outcome:
    """Build, fit and apply the merger (in whichever process the executor chose); failures name the stage."""
    device = torch.device(job.device)
    anchors, spaces = [A.to(device) for A in job.anchors], [S.to(device) for S in job.spaces]
    outcome, stage = Outcome(None), "build"
    try:
        merger = build_merger(job.merger, job.params, seed=job.seed)
        stage = "fit"
        started = _now(device)
        fitted = merger.fit(anchors)
        outcome.fit_seconds = _now(device) - started
        if fitted is not merger:
            raise TypeError(f"fit returned {type(fitted).__name__}; it must return self")
        stage = "transform"
        started = _now(device)
        merged = merger.transform(spaces)
        outcome.transform_seconds = _now(device) - started
        outcome.translated = check_merged(merged, spaces[0])
    except Exception as error:  # a broken merger fails its cell, not the run
        outcome.error = failure(stage, error, job.memory_limit)
    return outcome


def finish_merge_row(context: MergingContext, row: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    row.update(fit_seconds=outcome.fit_seconds, fit_cells=outcome.fit_cells, transform_seconds=outcome.transform_seconds)
    if outcome.error is not None:
        return {**row, "status": "failed", "error": outcome.error}
    merged = outcome.translated.to(context.device, torch.float32)  # (n_fit + m, d_out)
    try:
        row["metrics"], row["unavailable"] = context.score(merged[: len(context.fit_idx)], merged[len(context.fit_idx) :])
    except Exception as error:
        return {**row, "status": "failed", "error": f"score: {type(error).__name__}: {error}"}
    return row


def end_to_end_row(context: MergingContext, row: dict[str, Any]) -> dict[str, Any]:
    """The ceiling: the end-to-end encoder's own space, scored like a merged one."""
    everything = embeddings(end_to_end_id(context.task.spec), context.dataset, context.device)
    fit, evaluation = (torch.from_numpy(everything[idx]).to(context.device) for idx in (context.fit_idx, context.eval_idx))
    row["metrics"], row["unavailable"] = context.score(fit, evaluation)
    return {**row, "device": str(context.device)}


def merging_steps(task: Task, dataset: Dataset, device: torch.device, store: ResultStore, native_done: set[str]):
    """For bench.runner.run_task on a merging task: write the end-to-end reference row if missing, then
    return (make a cell's MergeJob, finish its row). The executor runs the jobs (in process by
    default; `--executor process` isolates mergers with time and memory limits)."""
    from bench.runner import base_row, native_cell

    context = MergingContext(task, dataset, device)
    reference = base_row(task, dataset, native_cell(end_to_end_id(task.spec)), "")
    if cell_key(reference) not in native_done:
        store.write([end_to_end_row(context, reference)])
    return (lambda batch, limits: make_merge_job(context, *batch[0], limits)), \
        (lambda cell, row, outcome: finish_merge_row(context, row, outcome))
