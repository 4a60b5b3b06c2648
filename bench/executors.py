"""Executors: where a cell's method runs.

A Job holds exactly what a method may see: its name, parameters and seed, the paired anchors and
the source's evaluation embeddings. Never labels, decoders or the target's evaluation embeddings;
scoring happens back in the runner. A Job may hold several cells that differ only in their anchor
seed (bench.runner.batches): the method fits them together through Method.fit_many. Every
executor yields (index, one Outcome per cell) as jobs finish.

- local:   in the runner's process, one job after another (the default: fastest, no isolation);
- process: a pool of worker processes; each job has a time and a memory limit, and a worker that
           crashes, hangs or runs out of memory fails its job with the reason and is replaced;
- ray:     Ray tasks (one per job), asking for a GPU per task when the device is CUDA.

Results are written by the runner alone, so parallel workers never touch the store.
"""
from __future__ import annotations

import multiprocessing
import os
import random
import resource
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch

EXECUTORS = ("local", "process", "ray")


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

    @property
    def cells(self) -> int:
        return len(self.X_anchors)


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
    cells = 1


@dataclass
class Outcome:
    translated: torch.Tensor | None  # (m, dy) on the job's device, or None when it failed
    error: str | None = None
    fit_seconds: float | None = None  # a job fitted together: its fit time divided by fit_cells
    transform_seconds: float | None = None
    fit_cells: int = 1  # how many cells were fitted together with this one (itself included)


def failed(job: "Job | MergeJob | _Submitted", error: str) -> list[Outcome]:
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
    from bench.checks import max_difference, same_output
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


class LocalExecutor:
    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[int, list[Outcome]]]:
        for index, job in enumerate(jobs):
            yield index, execute(job)


# ----------------------------------------------------------------------------- process pool

def _worker(connection: Connection, threads: int, folders: list[str]) -> None:
    """A worker: receive a Job, run it under its memory limit, send back the Outcome."""
    torch.set_num_threads(threads)
    from bench.method import METHODS, register_folder

    for folder in folders:  # submissions outside submissions/ (bench submit PATH)
        register_folder(Path(folder))
    from bench.merging import MERGERS

    METHODS.names()  # import the submissions now, so that a job's time limit covers only its method
    MERGERS.names()
    connection.send("ready")
    while True:
        try:
            job = connection.recv()
        except EOFError:
            return
        if job.memory_limit is not None:
            base = _address_space_bytes()
            resource.setrlimit(resource.RLIMIT_AS, (base + job.memory_limit * 2**20, resource.RLIM_INFINITY))
        try:
            outcomes = _on_cpu(execute(job))
        except BaseException:  # execute catches Exceptions; this is for the rest (SystemExit, ...)
            outcomes = failed(job, f"worker: {traceback.format_exc(limit=1).strip().splitlines()[-1]}")
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        connection.send(outcomes)


def _on_cpu(outcomes: list[Outcome]) -> list[Outcome]:  # what crosses a process boundary
    for outcome in outcomes:
        if outcome.translated is not None:
            outcome.translated = outcome.translated.cpu()
    return outcomes


def _address_space_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class _Slot:
    process: multiprocessing.process.BaseProcess
    connection: Connection
    index: int | None = None  # the job it runs
    job: Job | None = None
    deadline: float | None = None


class ProcessExecutor:
    """A pool of `workers` processes (spawned: safe with CUDA and with threaded BLAS)."""

    def __init__(self, workers: int | None = None, folders: Iterable[Path] = ()):
        self.workers = workers or max(1, (os.cpu_count() or 2))
        self.folders = [str(Path(folder).resolve()) for folder in folders]
        self.context = multiprocessing.get_context("spawn")
        self.threads = max(1, torch.get_num_threads() // self.workers)

    def _start(self) -> _Slot:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_worker, args=(child, self.threads, self.folders), daemon=True)
        process.start()
        child.close()
        try:
            parent.recv()  # "ready"
        except EOFError:
            raise RuntimeError(f"a worker process could not start (exit code {process.exitcode}); "
                               "run `bench list methods` to see whether a submission breaks on import") from None
        return _Slot(process, parent)

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[int, list[Outcome]]]:
        pending = iter(enumerate(jobs))
        slots = [self._start() for _ in range(self.workers)]
        try:
            busy = 0
            while True:
                for slot in slots:  # keep every worker fed
                    if slot.job is None and (item := next(pending, None)) is not None:
                        slot.index, slot.job = item
                        slot.deadline = time.monotonic() + slot.job.time_limit if slot.job.time_limit else None
                        slot.connection.send(slot.job)
                        busy += 1
                if busy == 0:
                    return
                deadlines = [s.deadline for s in slots if s.deadline is not None]
                timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
                ready = wait([s.connection for s in slots if s.job is not None] + [s.process.sentinel for s in slots if s.job is not None], timeout)
                for position, slot in enumerate(slots):
                    if slot.job is None:
                        continue
                    timed_out = False
                    if slot.connection in ready:
                        try:
                            outcomes = slot.connection.recv()
                        except (EOFError, OSError):
                            outcomes = self._death(slot)
                    elif slot.process.sentinel in ready:
                        outcomes = self._death(slot)
                    elif slot.deadline is not None and time.monotonic() >= slot.deadline:
                        timed_out = True
                        outcomes = failed(slot.job, f"time limit: fit + transform took longer than {slot.job.time_limit:g} s; the worker was killed")
                    else:
                        continue
                    index = slot.index
                    if timed_out or not slot.process.is_alive():
                        self._stop(slot)
                        slots[position] = self._start()
                    else:
                        slot.index = slot.job = slot.deadline = None
                    busy -= 1
                    yield index, outcomes
        finally:
            for slot in slots:
                self._stop(slot)

    @staticmethod
    def _death(slot: _Slot) -> list[Outcome]:
        slot.process.join(timeout=5)
        code = slot.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return failed(slot.job, f"crash: the worker process died while running the method ({how}); "
                             "a method must not exit the interpreter or crash native code")

    @staticmethod
    def _stop(slot: _Slot) -> None:
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join(timeout=5)
        slot.connection.close()


# ----------------------------------------------------------------------------- ray

class RayExecutor:
    """One Ray task per job; a local Ray instance is started unless `address` is given."""

    def __init__(self, address: str | None = None):
        import ray

        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     **({} if address else {"num_cpus": os.cpu_count() or 2}))

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[int, list[Outcome]]]:
        ray = self.ray
        remote = ray.remote(_ray_execute)
        running: dict[Any, tuple[int, float, _Submitted]] = {}  # ref -> (index, start, what a failure needs)
        for index, job in enumerate(jobs):
            gpus = 1 if job.device.startswith("cuda") else 0
            ref = remote.options(num_gpus=gpus, max_retries=0).remote(job)
            running[ref] = (index, time.monotonic(), _Submitted(job.cells, job.time_limit))  # not the job: its tensors can go
        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                index, _, submitted = running.pop(ref)
                try:
                    outcomes = ray.get(ref)
                except Exception as error:  # the worker died: Ray reports it as an error on get
                    outcomes = failed(submitted, f"crash: the Ray worker died while running the method ({type(error).__name__})")
                yield index, outcomes
            for ref in [r for r, (_, start, sub) in running.items() if sub.time_limit and time.monotonic() - start > sub.time_limit]:
                ray.cancel(ref, force=True)
                index, _, submitted = running.pop(ref)
                yield index, failed(submitted, f"time limit: fit + transform took longer than {submitted.time_limit:g} s; the Ray task was cancelled")


@dataclass
class _Submitted:
    cells: int
    time_limit: float | None


def _ray_execute(job: Job) -> list[Outcome]:
    return _on_cpu(execute(job))


def make_executor(name: str, workers: int | None = None, address: str | None = None):
    if name == "local":
        return LocalExecutor()
    if name == "process":
        return ProcessExecutor(workers)
    if name == "ray":
        return RayExecutor(address)
    raise ValueError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
