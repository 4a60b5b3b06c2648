"""Merging ("From Charts to Atlas", arXiv 2311.06547): the fit split is cut into parts, one
encoder is trained per part, and a merger (bench/merging.py) fuses their spaces into one, which is
scored against an encoder trained end to end on the whole fit split.

The task file's block is `merging` (MergingSpec). Partitions of the fit split into k parts
(classes are shuffled by the block's seed first):
- shared-samples: a fraction of the classes is shared, and every part sees all of their samples;
  the other classes are dealt out, one part each. Anchors come from the shared samples.
- shared-classes: every part sees every class, on disjoint samples. Anchors: any fit sample.
- disjoint: classes are dealt out, so parts share neither classes nor samples. Anchors: any.

A cell is (partition, merger, n_anchors, seed): the result row's `source` is the partition and its
`target` the end-to-end encoder, whose own space is the reference row (`native`). A cell's merged
fit-split embeddings train the task's decoder, which is scored on the merged eval-split
embeddings; latent metrics compare the merged eval embeddings with the end-to-end encoder's, and
"clusters" metrics read their class structure.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator
from torch import Tensor

from bench.anchors import sample_anchors
from bench.datasets import Dataset
from bench.decoders import DECODERS
from bench.encoders import ENCODERS, embeddings, encoder_embeddings
from bench.encoders.trained import TrainedClassifierEncoder, training_config
from bench.executors import Job, Outcome, checked_output, failure, now
from bench.merging import MERGERS, build_merger
from bench.metrics import METRICS, score_all
from bench.pairing import Pairing
from bench.report.blocks import Block, Code, Inline, Para, Strong, Table
from bench.report.stats import arrow, fmt, largest_count, native_value, summarise
from bench.report.tables import method_cell
from bench.results import Result
from bench.task import (
    KINDS,
    MAX_SEED,
    Cell,
    LimitSpec,
    Preparation,
    Scores,
    Strict,
    Task,
    TaskSpec,
    closest,
    reference_cell,
)


class MergingSpec(Strict):
    """How a merging task splits its fit split and which encoder it trains per part.
    Bounds: n_tasks 2..1,000 (and at most the classes: checked against the data), width 2..65,536,
    seed 0..2**32-1, shared_classes finite in (0, 1)."""
    partitions: list[Literal["shared-samples", "shared-classes", "disjoint"]] = Field(min_length=1)
    n_tasks: int = Field(default=2, ge=2, le=1_000)
    # shared-samples: fraction of classes every part sees
    shared_classes: float = Field(default=0.8, gt=0, lt=1, allow_inf_nan=False)
    arch: Literal["mlp", "cnn"] = "mlp"
    width: int = Field(default=64, ge=2, le=65_536)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)  # the end-to-end encoder's training seed; part i's is seed + 1 + i

    @field_validator("partitions")
    @classmethod
    def unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("values must be unique")
        return values


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
        raise ValueError(f"partition {how!r}: {len(private)} classes left to deal out to {n_parts} parts; "
                         "every part needs one (lower merging.shared_classes or merging.n_tasks)")
    owned = [np.concatenate([shared, private[i::n_parts]]) for i in range(n_parts)]
    parts_idx = [np.sort(pool[np.isin(labels[pool], cls)]) for cls in owned]
    anchor_pool = np.sort(pool[np.isin(labels[pool], shared)]) if n_shared else pool
    return parts_idx, anchor_pool


def end_to_end_id(spec: TaskSpec) -> str:
    """The registered encoder trained on the whole fit split with every class (bench/encoders/trained.py)."""
    m = spec.block
    return f"{spec.dataset.name}-{m.arch}-w{m.width}-s{m.seed}"


# ---------------------------------------------------------------------------------------------
# the kind: spec and checks


class MergingKind:
    block = "merging"
    block_spec = MergingSpec
    plugins = MERGERS
    compares = ("latent", "labels", "clusters")
    ranked = False  # mergers are not normalised or ranked with the translation methods
    nulls = False  # a merger's "correspondence" is the anchors' identity across parts: no null yet
    title = "Merging"
    note = ("Merging tasks (\"From Charts to Atlas\", arXiv 2311.06547) score the second plug-in family, mergers "
            "(`mergers/`): the task's fit split is cut into parts, one encoder is trained per part, and a merger fuses "
            "their spaces using anchors. Latent metrics compare the merged test embeddings with those of the same "
            "encoder trained end to end on the whole fit split (the reference row); accuracy is that of the task's "
            "decoder fitted on the merged fit split. Each value is the mean ± 95% Student-t interval over anchor seeds "
            "at the largest anchor count. Mergers are not normalised or ranked with the translation methods.")

    def pairs(self, spec: TaskSpec) -> list[tuple[str, str]]:
        """(partition, end-to-end encoder) per cell group."""
        return [(how, end_to_end_id(spec)) for how in spec.block.partitions]

    def problems(self, spec: TaskSpec) -> list[str]:
        problems = []
        if end_to_end_id(spec) not in ENCODERS:
            problems.append(f"merging: no end-to-end encoder {end_to_end_id(spec)!r} is registered for this data set, "
                            f"architecture, width and seed{closest(end_to_end_id(spec), ENCODERS.names())}")
        if spec.anchors.sampling not in ("uniform", "stratified"):
            problems.append(f"anchors.sampling: a merging task samples anchors without a space to measure in: "
                            f"use 'uniform' or 'stratified', not {spec.anchors.sampling!r}")
        if spec.anchors.pairing.protocols() != [Pairing("paired")]:
            problems.append("anchors.pairing: a merger fits the anchors every part shares, so a merging task's "
                            "anchors are paired only")
        if spec.baselines:
            problems.append("baselines: a merging task has no baselines (relative representations are stitching's)")
        return problems

    def decoder_identity(self, spec: TaskSpec) -> str | None:
        """The task's decoder, fitted on each merged space when a metric reads its predictions."""
        needed = any(METRICS.get(name).compares == "labels" for name in spec.metrics)
        return DECODERS.get(spec.decoder).identity if needed else None

    def data_problems(self, task: Task, dataset: Dataset) -> list[str]:
        spec, block, problems = task.spec, task.spec.block, []
        trained_on = training_config(dataset.name)["split"]
        if spec.dataset.fit_split != trained_on:
            problems.append(f"dataset.fit_split: the end-to-end encoder is trained on split {trained_on!r}; "
                            f"a merging task's parts must split that same split, so fit_split must be {trained_on!r}")
        for how in block.partitions:
            try:
                _, pool = partition(dataset.y, dataset.split(spec.dataset.fit_split), how, block.n_tasks,
                                    block.shared_classes, block.seed)
            except ValueError as error:
                problems.append(f"merging.partitions: {error}")
                continue
            problems += [f"anchors.counts[{i}]: {n} anchors, but partition {how!r} draws anchors from "
                         f"{len(pool)} samples"
                         for i, n in enumerate(spec.anchors.counts) if n > len(pool)]
        return problems

    def evaluation(self, task: Task, dataset: Dataset, device: torch.device, results_dir: Path) -> MergingEvaluation:
        return MergingEvaluation(task, dataset, device)

    def describe(self, task: Task) -> list[Inline]:
        block = task.spec.block
        return [f", {block.n_tasks} parts, one ", Code(f"{block.arch}-w{block.width}"),
                " encoder each; end-to-end reference ", Code(task.pairs()[0][1])]

    def report(self, frame: pd.DataFrame, task: Task, names: dict[str, str]) -> list[Block]:
        """The main metric per merger and partition, then every metric per partition."""
        spec, partitions = task.spec, [how for how, _ in task.pairs()]
        largest = largest_count(frame, task)
        if largest is None:
            return [Para(["No current results."])]
        main, sign = task.main_metric, 1 if METRICS.get(task.main_metric).higher_is_better else -1
        by_partition = {how: {metric: summarise(frame[frame.source == how], task, metric) for metric in spec.metrics}
                        for how in partitions}
        mergers = sorted({m for how in partitions for m, _ in by_partition[how][main]},
                         key=lambda m: (-sign * np.nanmean([by_partition[h][main].get((m, largest), (np.nan,))[0]
                                                            for h in partitions]), m))
        overview = [[method_cell(m, names, MERGERS)] + [fmt(*by_partition[h][main].get((m, largest), (np.nan, np.nan)))
                                                        for h in partitions]
                    for m in mergers]
        overview.append(["end to end (reference)", *[fmt(native_value(frame, task, main), np.nan)] * len(partitions)])
        blocks: list[Block] = [Para([Strong(f"{main} {arrow(main)}"), f" by partition at n={largest} anchors:"]),
                               Table(["merger"] + partitions, overview)]
        fit = (frame[(frame.task == task.name) & (frame.n_anchors == largest)]
               .groupby(["source", "method"]).fit_seconds.mean())
        for how in partitions:
            table = [[method_cell(m, names, MERGERS)]
                     + [fmt(*by_partition[how][metric].get((m, largest), (np.nan, np.nan))) for metric in spec.metrics]
                     + [f"{1000 * fit.get((how, m), np.nan):.2f}"] for m in mergers]
            table.append(["end to end (reference)",
                          *(fmt(native_value(frame, task, metric), np.nan) for metric in spec.metrics), "–"])
            blocks += [Para([Strong(how), f": all metrics at n={largest} anchors"]),
                       Table(["merger"] + [f"{m} {arrow(m)}" for m in spec.metrics] + ["fit ms"], table)]
        return blocks


KINDS.add("merging", MergingKind())


# ---------------------------------------------------------------------------------------------
# running a task


class MergingEvaluation:
    """A merging task's partitions, part encoders' embeddings and the end-to-end space, computed once."""

    def __init__(self, task: Task, dataset: Dataset, device: torch.device):
        self.task, self.spec, self.dataset, self.device = task, task.spec.block, dataset, device
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
            encoder = TrainedClassifierEncoder(self.dataset.name, self.spec.arch, self.spec.width,
                                               self.spec.seed + 1 + i, indices=indices, tag=f"{how}-part{i}")
            spaces.append(torch.from_numpy(encoder_embeddings(encoder, self.dataset, self.device)).to(self.device))
        return spaces

    def end_to_end(self, split: np.ndarray) -> Tensor:  # (len(split), d) embeddings of the end-to-end encoder
        return torch.from_numpy(self._end_to_end()[split]).to(self.device)

    @functools.cache
    def _end_to_end(self) -> np.ndarray:
        return embeddings(end_to_end_id(self.task.spec), self.dataset, self.device)

    @functools.cache
    def end_to_end_eval(self) -> Tensor:
        return self.end_to_end(self.eval_idx)

    def anchors(self, cell: Cell) -> np.ndarray:
        return self.sampled_anchors(cell.source, cell.n_anchors, cell.seed)

    @functools.cache
    def sampled_anchors(self, how: str, n: int, seed: int) -> np.ndarray:
        return sample_anchors(self.parts(how)[1], self.dataset.y, n, seed, self.task.spec.anchors.sampling)

    def scores(self, merged_fit: Tensor, merged_eval: Tensor) -> Scores:
        """The task's metrics on a merged space; a decoder is fitted on its fit split only if a metric needs it."""
        def predicted() -> Tensor:
            decoder = DECODERS.get(self.task.spec.decoder).fit(merged_fit.cpu().numpy(), self.dataset.y[self.fit_idx])
            return decoder.predict_tensor(merged_eval)

        providers: dict[str, Callable[[], object]] = {"translated": lambda: merged_eval, "target": self.end_to_end_eval,
                                                      "labels": lambda: self.labels,
                                                      "n_classes": lambda: self.dataset.n_classes,
                                                      "predicted": predicted}
        return score_all(self.task.spec.metrics, providers)

    # -- bench.task.Evaluation

    def preparations(self, cells: list[Cell]) -> list[Preparation]:
        """The part encoders of each partition the cells merge (trained, then encoding the data set),
        and the end-to-end encoder's space. Decoders are fitted on each merged space, within its cell."""
        partitions = sorted({cell.source for cell in cells if cell.n_anchors})
        end_to_end = [Preparation("encoding", end_to_end_id(self.task.spec), self._end_to_end)] if cells else []
        return [Preparation("encoding", f"{how} parts", functools.partial(self.spaces, how))
                for how in partitions] + end_to_end  # nothing when every row is stored

    def reference_cells(self) -> list[Cell]:
        return [reference_cell(end_to_end_id(self.task.spec))]

    def score_reference(self, cell: Cell) -> Scores:
        """The ceiling: the end-to-end encoder's own space, scored like a merged one."""
        return self.scores(self.end_to_end(self.fit_idx), self.end_to_end(self.eval_idx))

    def batches(self, pending: list[tuple[Cell, Result]]) -> list[list[tuple[Cell, Result]]]:
        return [[item] for item in pending]  # a merger fits one cell per job

    def job(self, cells: list[Cell], limits: LimitSpec) -> MergeJob:
        """What the merger may see: each part's anchors, and the rows to merge (fit split, then eval split).

        Fit and eval rows go through one transform: a merger merges rows independently (the
        rows_independent rule), so this equals two calls. Index arrays copy: the cached spaces stay intact.
        """
        [cell] = cells
        spaces = self.spaces(cell.source)
        anchors = self.anchors(cell)
        rows = np.concatenate([self.fit_idx, self.eval_idx])
        return MergeJob(plugin=cell.method.name, params=dict(cell.method.params), seed=cell.seed,
                        device=str(self.device), time_limit=limits.time_s, memory_limit=limits.memory_mb,
                        anchors=[S[anchors] for S in spaces], spaces=[S[rows] for S in spaces])

    def score(self, cell: Cell, output: Tensor) -> Scores:
        return self.scores(output[: len(self.fit_idx)], output[len(self.fit_idx) :])  # (n_fit + m, d_out)

    def scored(self, cell: Cell, output: Tensor) -> None:
        pass


@dataclass(kw_only=True)
class MergeJob(Job):
    """A merging cell: what a merger may see, the anchors and the rows to merge."""

    family = "merger"
    anchors: list[Tensor]  # k of (n, d_i): the same anchor samples in each part's space
    spaces: list[Tensor]  # k of (m, d_i): the fit-split rows, then the eval-split rows

    def output_shapes(self) -> list[tuple[int, int | None]]:
        return [(self.spaces[0].shape[0], None)]

    def result_bytes(self) -> int:  # a merger's width is its own: up to 4x the parts' widths together
        return self.spaces[0].shape[0] * sum(S.shape[1] for S in self.spaces) * 8 * 4 + 2**20

    def execute(self) -> list[Outcome]:
        """Build, fit and apply the merger; failures name the stage."""
        device = torch.device(self.device)
        anchors, spaces = [A.to(device) for A in self.anchors], [S.to(device) for S in self.spaces]
        outcome, stage = Outcome(None), "build"
        try:
            merger = build_merger(self.plugin, self.params, seed=self.seed)
            stage = "fit"
            started = now(device)
            fitted = merger.fit(anchors)
            outcome.fit_seconds = now(device) - started
            if fitted is not merger:
                raise TypeError(f"fit returned {type(fitted).__name__}; it must return self")
            stage = "transform"
            started = now(device)
            merged = merger.transform(spaces)
            outcome.transform_seconds = now(device) - started
            outcome.translated = checked_output(merged, spaces[0])  # a merger's width is its own
        except Exception as error:  # a broken merger fails its cell, not the run
            outcome.error = failure(stage, error, self.memory_limit)
        return [outcome]
