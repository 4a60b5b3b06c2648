"""Stitching: a method translates a source encoder's space into a target's, fitted on paired
anchors, and the target's decoder scores the translation. Three kinds share it, differing in what
their metrics compare (bench/metrics.py, COMPARES):

- classification: the target's classifier head, probes, latent and cluster metrics;
- similarity: latent and cluster metrics only (no decoder is needed);
- reconstruction: the target autoencoder's decoder rebuilds images (pixel metrics), and the first
  pair's cells at the largest anchor count save an image grid beside the results.

The task file's block is `encoders`: `all` (every ordered pair) or `pairs` ([source, target]).
The reference cell of each target is `native`: its decoder on its own evaluation embeddings.

A method gets the paired anchors and the source evaluation embeddings, nothing else: labels,
decoders and target evaluation embeddings stay in the runner's process (StitchingJob). Pending
cells that differ only in their anchor seed form one job when the method has its own
Method.fit_many: ortho takes one batched SVD for all of them.
"""
from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import torch
from pydantic import AfterValidator, Field, model_validator
from sklearn.pipeline import Pipeline

from bench.anchors import GEOMETRIC, sample_anchors
from bench.compare import RELATIVE, max_difference, same_output
from bench.datasets import Dataset
from bench.decoders import DECODERS, PROBES
from bench.encoders import ENCODERS, embeddings
from bench.encoders.autoencoders import AutoencoderEncoder
from bench.executors import Job, Outcome, checked_output, failure, now
from bench.grids import N_SHOWN, grid_path, save_grid
from bench.method import METHODS, build_method, fits_in_batches
from bench.metrics import METRICS, score_all
from bench.relative import RelativeDecoder, fit_relative_decoder
from bench.report.blocks import Block, Code, Inline
from bench.results import Result
from bench.task import (
    KINDS,
    Cell,
    LimitSpec,
    MethodSpec,
    Preparation,
    Scores,
    Strict,
    Task,
    TaskSpec,
    closest,
    reference_cell,
)

DECODED = frozenset({"labels", "native"})  # what a metric compares when it reads the decoder's predictions
MAX_BATCH = 32  # cells per job: bounds a job's memory, time limit and what one crash of a worker fails


def _source_and_target(pair: list[str]) -> list[str]:
    if len(pair) != 2:
        raise ValueError(f"a pair is [source, target], two encoder ids; this one has {len(pair)}")
    return pair


# A list, not tuple[str, str]: strict mode takes no YAML list for a tuple. Dumped as a JSON list
# either way, so spec hashes are unchanged.
EncoderPair = Annotated[list[str], AfterValidator(_source_and_target)]


class EncoderSpec(Strict):
    all: list[str] | None = Field(default=None, min_length=2)
    pairs: list[EncoderPair] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def exactly_one(self) -> EncoderSpec:
        if (self.all is None) == (self.pairs is None):
            raise ValueError("give exactly one of 'all' (a list: every ordered pair) "
                             "or 'pairs' (a list of [source, target])")
        return self

    def ordered_pairs(self) -> list[tuple[str, str]]:
        if self.pairs is not None:
            return [(source, target) for source, target in self.pairs]
        names = self.all or []
        return [(s, t) for s in names for t in names if s != t]

    def keyed_names(self) -> list[tuple[str, str]]:
        """(task file key, encoder id) of every encoder named."""
        return ([(f"encoders.all[{i}]", n) for i, n in enumerate(self.all or [])]
                + [(f"encoders.pairs[{i}][{j}]", n) for i, p in enumerate(self.pairs or []) for j, n in enumerate(p)])


# ---------------------------------------------------------------------------------------------
# the kind: spec and checks


@dataclass(frozen=True)
class StitchingKind:
    """classification, similarity and reconstruction: one class, three registered instances."""

    compares: tuple[str, ...]
    autoencoders: bool = False  # reconstruction: the targets' decoders rebuild images
    block = "encoders"
    block_spec = EncoderSpec
    plugins = METHODS
    nulls = True
    ranked = True
    title = note = ""  # a ranked kind has no section of its own

    def pairs(self, spec: TaskSpec) -> list[tuple[str, str]]:
        return spec.block.ordered_pairs()

    def problems(self, spec: TaskSpec) -> list[str]:
        problems = []
        for key, name in spec.block.keyed_names():
            if name not in ENCODERS:
                problems.append(f"{key}: unknown {ENCODERS.kind} {name!r}{closest(name, ENCODERS.names())}")
                continue
            trained_on = ENCODERS.get(name).dataset
            if trained_on not in (None, spec.dataset.name):
                problems.append(f"{key}: encoder {name!r} is trained on {trained_on!r}, "
                                f"not on the task's data set {spec.dataset.name!r}")
            if self.autoencoders and not hasattr(ENCODERS.get(name), "decode"):
                problems.append(f"{key}: encoder {name!r} has no decoder; "
                                f"a {spec.kind} task needs autoencoders (ids *-ae-*)")
        if spec.baselines and not compared(spec) & DECODED:
            problems.append(f"baselines: {RELATIVE!r} is scored by a decoder fitted on the target's relative "
                            f"representation: a task with a metric of the decoder's predictions (e.g. accuracy)")
        return problems

    def data_problems(self, task: Task, dataset: Dataset) -> list[str]:
        return []

    def decoder_identity(self, spec: TaskSpec) -> str | None:
        """The target's decoder when a metric reads its predictions, and the probes when one reads theirs."""
        heads = [DECODERS.get(spec.decoder)] if compared(spec) & DECODED else []
        heads += [PROBES] if "probes" in compared(spec) else []
        return " + ".join(head.identity for head in heads) or None

    def evaluation(self, task: Task, dataset: Dataset, device: torch.device, results_dir: Path) -> StitchingEvaluation:
        return StitchingEvaluation(task, dataset, device, results_dir if self.autoencoders else None)

    def describe(self, task: Task) -> list[Inline]:
        data = task.spec.dataset
        return [" (fit split ", Code(data.fit_split), ", scored on ", Code(data.eval_split),
                f"), {len(task.pairs())} encoder pairs"]

    def report(self, frame: pd.DataFrame, task: Task, names: dict[str, str]) -> list[Block]:
        return []  # ranked: the leaderboard's own per-task sections show these tasks


KINDS.add("classification", StitchingKind(compares=("labels", "native", "probes", "latent", "clusters")))
KINDS.add("similarity", StitchingKind(compares=("latent", "clusters")))
KINDS.add("reconstruction", StitchingKind(compares=("pixels", "latent"), autoencoders=True))


def compared(spec: TaskSpec) -> set[str]:
    """What the task's metrics compare (bench.metrics.COMPARES): which heads its targets need."""
    return {METRICS.get(name).compares for name in spec.metrics}


# ---------------------------------------------------------------------------------------------
# running a task: embeddings, decoders and scores, computed once and shared by its cells


class StitchingEvaluation:
    """Embeddings, decoders and native predictions of one task, computed once and shared by its cells."""

    def __init__(self, task: Task, dataset: Dataset, device: torch.device, grids_dir: Path | None = None):
        self.task, self.dataset, self.device = task, dataset, device
        self.fit_idx = dataset.split(task.spec.dataset.fit_split)
        self.eval_idx = dataset.split(task.spec.dataset.eval_split)
        self.labels = torch.from_numpy(dataset.y[self.eval_idx]).to(device)  # (m,)
        self.grids_dir = grids_dir  # reconstruction: where the showcase grids go (None: no grids)
        spec = task.spec
        self.showcase = (*task.pairs()[0], max(spec.anchors.counts), spec.anchors.seeds[0])  # (source, target, n, seed)

    @functools.cache
    def embedding(self, encoder: str) -> torch.Tensor:  # (n, d) on device, whole data set
        return torch.from_numpy(embeddings(encoder, self.dataset, self.device)).to(self.device)

    @functools.cache
    def decoder(self, target: str) -> Any:
        fit = self.embedding(target)[self.fit_idx].cpu().numpy()
        return DECODERS.get(self.task.spec.decoder).fit(fit, self.dataset.y[self.fit_idx])

    def predict(self, target: str, latents: torch.Tensor) -> torch.Tensor:  # (m, d) -> (m,)
        return self.decoder(target).predict_tensor(latents.detach().to(self.device))

    @functools.cache
    def native_predicted(self, target: str) -> torch.Tensor:
        return self.predict(target, self.embedding(target)[self.eval_idx])

    @functools.cache
    def sampled_anchors(self, source: str, n: int, seed: int) -> np.ndarray:
        sampling = self.task.spec.anchors.sampling
        if sampling not in GEOMETRIC:
            return self.anchors_shared(n, seed)
        return sample_anchors(self.fit_idx, self.dataset.y, n, seed, sampling, self.embedding(source).cpu().numpy())

    @functools.cache
    def anchors_shared(self, n: int, seed: int) -> np.ndarray:  # the same for every source encoder
        return sample_anchors(self.fit_idx, self.dataset.y, n, seed, self.task.spec.anchors.sampling)

    @functools.cache
    def probes(self, target: str) -> Pipeline:
        """One-vs-rest logistic probes, one per class, fitted on the target's own fit-split latents."""
        fit = self.embedding(target)[self.fit_idx].cpu().numpy()
        return PROBES.fit_pipeline(fit, self.dataset.y[self.fit_idx])

    def probe_decisions(self, target: str, latents: torch.Tensor) -> torch.Tensor:  # (m, d) -> (m, classes) bool
        return torch.from_numpy(self.probes(target).decision_function(latents.detach().cpu().numpy()) > 0).to(
            self.device)

    def reconstruct(self, target: str, latents: torch.Tensor) -> torch.Tensor:  # (m, d) -> (m, c, h, w)
        autoencoder = ENCODERS.get(target)
        assert isinstance(autoencoder, AutoencoderEncoder)  # problems() holds a reconstruction task's targets to it
        return autoencoder.decode(latents.to(self.device))

    def scores(self, target: str, translated: torch.Tensor) -> Scores:
        """Every metric of the task, and the reasons of those unavailable here (their value is None)."""
        return score_all(self.task.spec.metrics, self.providers(target, translated))

    def providers(self, target: str, translated: torch.Tensor,
                  predicted: torch.Tensor | None = None) -> dict[str, Callable[[], object]]:
        """The metrics' inputs on `target`; the decoder's predictions are those of `translated` unless given."""
        Y_eval = self.embedding(target)[self.eval_idx]
        return {  # each input is computed only when a metric of the task asks for it
            "translated": lambda: translated, "target": lambda: Y_eval, "labels": lambda: self.labels,
            "n_classes": lambda: self.dataset.n_classes,
            "predicted": lambda: predicted if predicted is not None else self.predict(target, translated),
            "native_predicted": lambda: self.native_predicted(target),
            "reconstructed": lambda: self.reconstruct(target, translated),
            "images": lambda: torch.from_numpy(self.dataset.x[self.eval_idx]).to(self.device),
            "probe_decisions": lambda: self.probe_decisions(target, translated),
            "native_probe_decisions": lambda: self.probe_decisions(target, Y_eval),
            "probe_truth": lambda: torch.nn.functional.one_hot(self.labels, self.dataset.n_classes).bool(),
        }

    @functools.cache
    def relative_decoder(self, target: str, anchors: tuple[int, ...]) -> RelativeDecoder:
        """By target and anchor samples: every source of a target with the same anchors shares it."""
        Y = self.embedding(target)
        return fit_relative_decoder(Y[self.fit_idx], Y[list(anchors)], self.dataset.y[self.fit_idx])

    def score_relative(self, cell: Cell) -> Scores:
        """Relative representations (bench.relative): a decoder fitted on the target's relative
        representation of its fit split to the cell's anchors, fed the source's, with no translation.
        Only the metrics of the decoder's predictions: no output lives in the target's space."""
        source_anchors, target_anchors = self.sides(cell)
        decoder, X = self.relative_decoder(cell.target, tuple(target_anchors)), self.embedding(cell.source)
        predicted = decoder.predict(X[self.eval_idx], X[source_anchors])  # (m,)
        metrics = self.task.spec.metrics
        decoded = [name for name in metrics if METRICS.get(name).compares in DECODED]
        untranslated = torch.empty(0)  # never read: only the decoder's metrics are asked for
        scores, unavailable = score_all(decoded, self.providers(cell.target, untranslated, predicted))
        return ({name: scores.get(name) for name in metrics},
                unavailable | {name: f"{RELATIVE} decodes relative representations: nothing is translated into "
                                     f"the target's space" for name in metrics if name not in decoded})

    # -- bench.task.Evaluation

    def preparations(self, cells: list[Cell]) -> list[Preparation]:
        """Each encoder's embeddings, then each target's decoder and probes as the metrics ask for them."""
        heads = compared(self.task.spec)
        encoders = sorted({cell.source for cell in cells if cell.n_anchors} | {cell.target for cell in cells})
        targets = sorted({cell.target for cell in cells})
        steps = [Preparation("encoding", name, functools.partial(self.embedding, name)) for name in encoders]
        if heads & DECODED:
            steps += [Preparation("decoders", target, functools.partial(self.decoder, target)) for target in targets]
        if "probes" in heads:
            steps += [Preparation("decoders", f"{target} probes", functools.partial(self.probes, target))
                      for target in targets]
        return steps  # a relative baseline's decoder is its fit: fitted and timed in its own cell

    def reference_cells(self) -> list[Cell]:
        """The ceiling of each target, and the cells of the task's baselines (paired anchors, like the methods')."""
        anchors = self.task.spec.anchors
        return ([reference_cell(target) for target in sorted({t for _, t in self.task.pairs()})]
                + [Cell(s, t, MethodSpec(name=name), n, seed) for name in self.task.spec.baselines
                   for (s, t) in self.task.pairs() for n in anchors.counts for seed in anchors.seeds])

    def score_reference(self, cell: Cell) -> Scores:
        """The no-stitch ceiling: the target decoder on the target's own evaluation embeddings; or a baseline."""
        if cell.method.name == RELATIVE:
            return self.score_relative(cell)
        return self.scores(cell.target, self.embedding(cell.target)[self.eval_idx])

    def batches(self, pending: list[tuple[Cell, Result]]) -> list[list[tuple[Cell, Result]]]:
        """Group the cells a method fits together: those that differ only in their anchor seed (same
        pair, parameters and anchor count, so same shapes), for a method with its own fit_many
        (fits_in_batches); every other cell is a job of its own, with its own limits and fit time."""
        batched = {name: fits_in_batches(METHODS.get(name).cls) for name in {cell.method.name for cell, _ in pending}}
        groups: dict[tuple[Any, ...], list[tuple[Cell, Result]]] = {}
        for position, (cell, row) in enumerate(pending):
            key = ((cell.source, cell.target, cell.method.display, cell.n_anchors, cell.pairing)
                   if batched[cell.method.name] and cell.protocol.known is None else (position,))  # fit_many: fit's
            groups.setdefault(key, []).append((cell, row))
        return [group[start:start + MAX_BATCH] for group in groups.values()
                for start in range(0, len(group), MAX_BATCH)]

    def job(self, cells: list[Cell], limits: LimitSpec) -> StitchingJob:
        """What the method may see: each cell's anchors of both sides as its protocol gives them (a
        null's in shuffled pairs; bench.pairing), and the source's evaluation embeddings."""
        first = cells[0]
        X_src, Y_tgt = self.embedding(first.source), self.embedding(first.target)
        # indexing by an index array copies: an in-place edit by one method cannot leak into the cached embeddings
        X_anchors = [X_src[self.anchors(cell)] for cell in cells]
        Y_anchors = [Y_tgt[self.sides(cell)[1]] for cell in cells]
        return StitchingJob(plugin=first.method.name, params=dict(first.method.params), seed=first.seed,
                            device=str(self.device), time_limit=limits.time_s * len(cells),
                            memory_limit=limits.memory_mb, known=first.protocol.known,
                            X_anchors=X_anchors, Y_anchors=Y_anchors, X_eval=X_src[self.eval_idx])

    def anchors(self, cell: Cell) -> np.ndarray:
        return self.sides(cell)[0]

    def sides(self, cell: Cell) -> tuple[np.ndarray, np.ndarray]:
        """(source samples (n,), target samples (n,)): the cell's draw, given to each side as its protocol says."""
        protocol = cell.protocol
        drawn = self.sampled_anchors(cell.source, protocol.drawn(cell.n_anchors), cell.seed)
        return protocol.sides(drawn, cell.n_anchors, cell.seed)

    def score(self, cell: Cell, output: torch.Tensor) -> Scores:
        return self.scores(cell.target, output)

    def scored(self, cell: Cell, output: torch.Tensor) -> None:
        """Reconstruction: originals and this method's stitched reconstructions of the showcase cell, as a PNG
        (its paired cell: a null shares the showcase's anchors, not its correspondence)."""
        showcased = (cell.source, cell.target, cell.n_anchors, cell.seed) == self.showcase and cell.pairing == "paired"
        if self.grids_dir is None or not showcased:
            return
        shown = self.eval_idx[:N_SHOWN]
        reconstructed = self.reconstruct(cell.target, output[:N_SHOWN])
        title = f"{cell.method.display}: {cell.source} -> {cell.target}, {cell.n_anchors} anchors (top: originals)"
        save_grid(grid_path(self.grids_dir, self.task.name, cell.method.display), self.dataset.x[shown],
                  reconstructed.cpu().numpy(), title)


# ---------------------------------------------------------------------------------------------
# the job: what a method sees, and how it is run (in whichever process the executor chose)


@dataclass(kw_only=True)
class StitchingJob(Job):
    """One method's cells that differ only in their anchor seed (one cell unless it has fit_many)."""

    family = "method"

    X_anchors: list[torch.Tensor]  # one (n, dx) per cell
    Y_anchors: list[torch.Tensor]  # one (n, dy) per cell
    X_eval: torch.Tensor  # (m, dx), the same for every cell
    known: int | None = None  # None: rows i of X and Y are pairs (fit); else fit_unpaired(X, Y, known) (bench.pairing)

    @property
    def cells(self) -> int:
        return len(self.X_anchors)

    def output_shapes(self) -> list[tuple[int, int | None]]:
        return [(self.X_eval.shape[0], Y.shape[1]) for Y in self.Y_anchors]

    def execute(self) -> list[Outcome]:
        device = torch.device(self.device)
        X_eval = self.X_eval.to(device)
        pairs = [(X.to(device), Y.to(device)) for X, Y in zip(self.X_anchors, self.Y_anchors, strict=True)]
        if len(pairs) == 1:  # the job's tensors are this cell's own copies (StitchingEvaluation.job)
            return [self.execute_one(*pairs[0], X_eval)]
        if self.known is not None:  # batches hold only cells that fit fits (StitchingEvaluation.batches)
            raise ValueError("a job of several cells fits paired anchors")
        try:
            return self.execute_batch(pairs, X_eval)
        except Exception:  # fit_many broke its contract: fit the cells one by one, so an error lands on its own cell
            pass
        # each cell its own copy of the inputs: an in-place edit by one cell cannot reach the next
        return [self.execute_one(X.clone(), Y.clone(), X_eval.clone()) for X, Y in pairs]

    def execute_batch(self, pairs: list[tuple[torch.Tensor, torch.Tensor]], X_eval: torch.Tensor) -> list[Outcome]:
        """Every cell fitted in one fit_many call (its time shared out equally). Raises when the call
        breaks its contract: one distinct fitted method per anchor set, and a cell picked at random,
        refitted alone by fit, must translate as its batched fit does."""
        method, device = build_method(self.plugin, self.params, seed=self.seed), X_eval.device
        started = now(device)
        # copies: the fallback gets pristine anchors
        fitted = method.fit_many([X.clone() for X, _ in pairs], [Y.clone() for _, Y in pairs])
        share = (now(device) - started) / len(pairs)
        cls = type(method)
        if not (isinstance(fitted, list) and len(fitted) == len(pairs) and len({id(m) for m in fitted}) == len(pairs)
                and all(isinstance(m, cls) for m in fitted)):
            raise TypeError(f"fit_many must return one distinct fitted {cls.__name__} per anchor set")
        checked = random.randrange(len(pairs))  # unpredictable: an override cannot treat the checked cell apart
        alone = build_method(self.plugin, self.params, seed=self.seed).fit(*(t.clone() for t in pairs[checked]))
        expected, got = alone.transform(X_eval.clone()), fitted[checked].transform(X_eval.clone())
        if not (isinstance(got, torch.Tensor) and isinstance(expected, torch.Tensor)
                and same_output(got.detach().cpu(), expected.detach().cpu())):
            raise ValueError(f"fit_many's cell {checked} differs from fit alone "
                             f"({max_difference(got.detach().cpu(), expected.detach().cpu())})")
        return [self.transform_cell(Outcome(None, fit_seconds=share, fit_cells=len(pairs)), m, X_eval.clone(),
                                    Y.shape[1])
                for m, (_, Y) in zip(fitted, pairs)]

    def execute_one(self, X_anchors: torch.Tensor, Y_anchors: torch.Tensor, X_eval: torch.Tensor) -> Outcome:
        outcome, stage = Outcome(None), "build"
        try:
            method = build_method(self.plugin, self.params, seed=self.seed)
            stage = "fit"
            started = now(X_eval.device)
            fitted = (method.fit(X_anchors, Y_anchors) if self.known is None
                      else method.fit_unpaired(X_anchors, Y_anchors, known=self.known))
            outcome.fit_seconds = now(X_eval.device) - started
            if fitted is not method:
                fit = "fit" if self.known is None else "fit_unpaired"
                raise TypeError(f"{fit} returned {type(fitted).__name__}; it must return self")
        except Exception as error:  # a broken submission fails its cell, not the run
            outcome.error = failure(stage, error, self.memory_limit)
            return outcome
        return self.transform_cell(outcome, method, X_eval, Y_anchors.shape[1])

    def transform_cell(self, outcome: Outcome, method: Any, X_eval: torch.Tensor, dim: int) -> Outcome:
        try:
            started = now(X_eval.device)
            translated = method.transform(X_eval)
            outcome.transform_seconds = now(X_eval.device) - started
            outcome.translated = checked_output(translated, X_eval, dim)
        except Exception as error:
            outcome.error = failure("transform", error, self.memory_limit)
        return outcome
