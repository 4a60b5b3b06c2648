"""Executors: where a cell's method runs.

A Job holds exactly what a method may see: its name, parameters and seed, the paired anchors and
the source's evaluation embeddings. Never labels, decoders or the target's evaluation embeddings;
scoring happens back in the runner. A Job may hold several cells that differ only in their anchor
seed (bench.runner.batches): the method fits them together through Method.fit_many. Every
executor yields (index, one Outcome per cell) as jobs finish.

- local:   in the runner's process, one job after another (the default: fastest, no isolation);
- process and ray (bench/sandbox.py): sandboxed worker processes, a fresh child per job, with
           time and memory limits; what submitted code runs under.

Each is an Executor, built by name from EXECUTORS (`bench run --executor NAME`); bench/sandbox.py
registers its own when imported, which EXECUTORS does on first use of its names.

Results are written by the runner alone, so workers never touch the store.
"""
from __future__ import annotations

import importlib
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol

import torch

from bench.compare import max_difference, same_output
from bench.registry import Registry


class SandboxUnavailable(RuntimeError):
    """The sandbox of bench/sandbox.py cannot be set up on this machine; the message says why and what to do."""


@dataclass
class Job:
    method: str
    params: dict[str, Any]
    seed: int
    X_anchors: list[torch.Tensor]  # one (n, dx) per cell
    Y_anchors: list[torch.Tensor]  # one (n, dy) per cell
    X_eval: torch.Tensor  # (m, dx), the same for every cell
    device: str
    time_limit: float | None = None  # seconds for fit + transform of all its cells
    memory_limit: int | None = None  # MiB beyond the worker's size at the job's start
    folder: str | None = None  # the method's own folder: the one place a sandboxed worker lets it read
    family = "method"

    @property
    def cells(self) -> int:
        return len(self.X_anchors)

    @property
    def plugin(self) -> str:
        return self.method


@dataclass
class MergeJob:
    """A merging cell (bench/merging.py): what a merger may see, the anchors and the rows to merge."""
    merger: str
    params: dict[str, Any]
    seed: int
    anchors: list[torch.Tensor]  # k of (n, d_i): the same anchor samples in each part's space
    spaces: list[torch.Tensor]  # k of (m, d_i): the fit-split rows, then the eval-split rows
    device: str
    time_limit: float | None = None  # seconds for fit + transform
    memory_limit: int | None = None
    folder: str | None = None
    family = "merger"
    cells = 1

    @property
    def plugin(self) -> str:
        return self.merger


@dataclass
class Outcome:
    translated: torch.Tensor | None  # (m, dy) on the job's device, or None when it failed
    error: str | None = None
    fit_seconds: float | None = None  # a job fitted together: its fit time divided by fit_cells
    transform_seconds: float | None = None
    fit_cells: int = 1  # how many cells were fitted together with this one (itself included)


def failed(job: Any, error: str) -> list[Outcome]:
    """Every cell of a job that could not finish (its worker died or ran out of time) fails with `error`."""
    return [Outcome(None, error) for _ in range(job.cells)]


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def check_output(output: Any, like: torch.Tensor, dim: int) -> None:
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"transform returned {type(output).__module__}.{type(output).__qualname__}; it must return a torch.Tensor")
    if output.device != like.device:
        raise TypeError(f"transform returned a tensor on {output.device}; it must stay on the input's device {like.device}")
    if tuple(output.shape) != (like.shape[0], dim):
        raise ValueError(f"transform returned shape {tuple(output.shape)}; expected (m, dy) = ({like.shape[0]}, {dim})")
    if not torch.isfinite(output).all():
        raise ValueError(f"transform returned {int((~torch.isfinite(output)).sum())} non-finite values (NaN or inf)")


def failure(stage: str, error: Exception, memory_limit: int | None) -> str:
    """The error of a failed job, naming its stage; running out of memory says which limit."""
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in str(error):
        return f"{stage}: out of memory: the submission exceeded its memory limit ({memory_limit} MiB): {error}"
    return f"{stage}: {type(error).__name__}: {error}"


def execute(job: Job | MergeJob) -> list[Outcome]:
    """Build, fit and apply the method, one Outcome per cell; a failure becomes its cell's error, naming the stage."""
    if isinstance(job, MergeJob):
        from bench.merging import execute_merge

        return [execute_merge(job)]
    device = torch.device(job.device)
    X_eval = job.X_eval.to(device)
    pairs = [(X.to(device), Y.to(device)) for X, Y in zip(job.X_anchors, job.Y_anchors, strict=True)]
    if len(pairs) == 1:  # the job's tensors are this cell's own copies (bench.runner.make_job)
        return [execute_one(job, *pairs[0], X_eval)]
    try:
        return execute_batch(job, pairs, X_eval)
    except Exception:  # fit_many broke its contract: fit the cells one by one, so an error lands on its own cell
        pass
    # each cell its own copy of the inputs: an in-place edit by one cell cannot reach the next
    return [execute_one(job, X.clone(), Y.clone(), X_eval.clone()) for X, Y in pairs]


def execute_batch(job: Job, pairs: list[tuple[torch.Tensor, torch.Tensor]], X_eval: torch.Tensor) -> list[Outcome]:
    """Every cell fitted in one fit_many call (its time shared out equally). Raises when the call
    breaks its contract: one distinct fitted method per anchor set, and a cell picked at random,
    refitted alone by fit, must translate as its batched fit does."""
    from bench.method import build_method

    method, device = build_method(job.method, job.params, seed=job.seed), X_eval.device
    started = _now(device)
    fitted = method.fit_many([X.clone() for X, _ in pairs], [Y.clone() for _, Y in pairs])  # copies: the fallback gets pristine anchors
    share = (_now(device) - started) / len(pairs)
    cls = type(method)
    if not (isinstance(fitted, list) and len(fitted) == len(pairs) and len({id(m) for m in fitted}) == len(pairs)
            and all(isinstance(m, cls) for m in fitted)):
        raise TypeError(f"fit_many must return one distinct fitted {cls.__name__} per anchor set")
    checked = random.randrange(len(pairs))  # unpredictable: an override cannot treat the checked cell apart
    alone = build_method(job.method, job.params, seed=job.seed).fit(*(t.clone() for t in pairs[checked]))
    expected, got = alone.transform(X_eval.clone()), fitted[checked].transform(X_eval.clone())
    if not (isinstance(got, torch.Tensor) and isinstance(expected, torch.Tensor) and same_output(got.detach().cpu(), expected.detach().cpu())):
        raise ValueError(f"fit_many's cell {checked} differs from fit alone ({max_difference(got.detach().cpu(), expected.detach().cpu())})")
    return [transform_cell(Outcome(None, fit_seconds=share, fit_cells=len(pairs)), m, X_eval.clone(), Y.shape[1], job.memory_limit)
            for m, (_, Y) in zip(fitted, pairs)]


def execute_one(job: Job, X_anchors: torch.Tensor, Y_anchors: torch.Tensor, X_eval: torch.Tensor) -> Outcome:
    from bench.method import build_method

    outcome, stage = Outcome(None), "build"
    try:
        method = build_method(job.method, job.params, seed=job.seed)
        stage = "fit"
        started = _now(X_eval.device)
        fitted = method.fit(X_anchors, Y_anchors)
        outcome.fit_seconds = _now(X_eval.device) - started
        if fitted is not method:
            raise TypeError(f"fit returned {type(fitted).__name__}; it must return self")
    except Exception as error:  # a broken submission fails its cell, not the run
        outcome.error = failure(stage, error, job.memory_limit)
        return outcome
    return transform_cell(outcome, method, X_eval, Y_anchors.shape[1], job.memory_limit)


def transform_cell(outcome: Outcome, method: Any, X_eval: torch.Tensor, dim: int, memory_limit: int | None) -> Outcome:
    try:
        started = _now(X_eval.device)
        translated = method.transform(X_eval)
        outcome.transform_seconds = _now(X_eval.device) - started
        check_output(translated, X_eval, dim)
        outcome.translated = translated.detach()
    except Exception as error:
        outcome.error = failure("transform", error, memory_limit)
    return outcome


class Executor(Protocol):
    """Runs jobs and yields (index in `jobs`, one Outcome per cell of that job) as jobs finish, in
    any order. `folders` are the plug-in folders the jobs' code lives in (a sandbox mounts them)."""

    isolation: str  # "in-process", "process" or "sandbox" (bench.sandbox.Isolation): recorded in every row

    def run(self, jobs: Iterable[Job | MergeJob], folders: Iterable[str] = ()) -> Iterator[tuple[int, list[Outcome]]]: ...


# name -> build(workers=, address=, sandboxed=, folders=) -> Executor; each takes every option and
# uses those that apply to it. bench.sandbox registers "process" and "ray" when it is imported.
EXECUTORS: Registry[Callable[..., Executor]] = Registry("executor")
EXECUTORS.add_loader(lambda: importlib.import_module("bench.sandbox"))


class LocalExecutor:
    """In the runner's own process: the fast default for the project's own reference methods. No
    isolation and no limits; bench.sandbox has the executors for submitted code."""

    isolation = "in-process"

    def run(self, jobs: Iterable[Job | MergeJob], folders: Iterable[str] = ()) -> Iterator[tuple[int, list[Outcome]]]:
        for index, job in enumerate(jobs):
            yield index, execute(job)


@EXECUTORS.register("local")
def local_executor(workers: int | None = None, address: str | None = None, sandboxed: bool = True,
                   folders: Iterable[str] = ()) -> LocalExecutor:
    return LocalExecutor()
