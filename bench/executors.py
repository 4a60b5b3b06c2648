"""Executors: where a job's plug-in runs.

A Job holds exactly what a plug-in may see (each task kind defines its own: bench/kinds/), never
labels, decoders or the reference's evaluation embeddings; scoring happens back in the runner. A
job may hold several cells (a method fitting several anchor sets through Method.fit_many). Every
executor yields (index, one Outcome per cell) as jobs finish.

- local:   in the runner's process, one job after another (the default: fastest, no isolation);
- process and ray (bench/sandbox.py): sandboxed worker processes, a fresh child per job, with
           time and memory limits; what submitted code runs under.

Each is an Executor, built by name from EXECUTORS (`bench run --executor NAME`); bench/sandbox.py
registers its own when imported, which EXECUTORS does on first use of its names.

Results are written by the runner alone, so workers never touch the store.
"""
from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch

from bench.registry import Registry


class SandboxUnavailable(RuntimeError):
    """The sandbox of bench/sandbox.py cannot be set up on this machine; the message says why and what to do."""


@dataclass
class Outcome:
    translated: torch.Tensor | None  # (m, dy) on the job's device, or None when it failed
    error: str | None = None
    fit_seconds: float | None = None  # a job fitted together: its fit time divided by fit_cells
    transform_seconds: float | None = None
    fit_cells: int = 1  # how many cells were fitted together with this one (itself included)


def failed(cells: int, error: str) -> list[Outcome]:
    """Every cell of a job that could not finish (its worker died or ran out of time) fails with `error`."""
    return [Outcome(None, error) for _ in range(cells)]


def now(device: torch.device) -> float:
    """perf_counter after the device's queued work: what a fit or transform took, on CUDA too."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def checked_output(output: Any, like: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """A plug-in's transform output, detached: a finite tensor on the input's device with one row per
    input row, and `dim` columns (None: any width, as a merger's). Raises what is wrong, for the cell's error."""
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"transform returned {type(output).__module__}.{type(output).__qualname__}; "
                        "it must return a torch.Tensor")
    if output.device != like.device:
        raise TypeError(f"transform returned a tensor on {output.device}; "
                        f"it must stay on the input's device {like.device}")
    if dim is not None and tuple(output.shape) != (like.shape[0], dim):
        raise ValueError(f"transform returned shape {tuple(output.shape)}; expected (m, dy) = ({like.shape[0]}, {dim})")
    if dim is None and (output.ndim != 2 or output.shape[0] != like.shape[0]):
        raise ValueError(f"transform returned shape {tuple(output.shape)}; expected ({like.shape[0]}, d_out)")
    if not torch.isfinite(output).all():
        raise ValueError(f"transform returned {int((~torch.isfinite(output)).sum())} non-finite values (NaN or inf)")
    return output.detach()


def failure(stage: str, error: Exception, memory_limit: int | None) -> str:
    """The error of a failed job, naming its stage; running out of memory says which limit."""
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in str(error):
        return f"{stage}: out of memory: the submission exceeded its memory limit ({memory_limit} MiB): {error}"
    return f"{stage}: {type(error).__name__}: {error}"


@dataclass(kw_only=True)
class Job:
    """What one plug-in may see for one job, and how to run it: each task kind's jobs subclass it
    (bench/kinds/) with their inputs as fields and define execute(). Executors and the sandbox only
    use what is here; a job is pickled to a worker and run there by execute()."""

    family: ClassVar[str]  # the plug-in family (bench.sandbox.FAMILIES): "method", "merger", ...
    plugin: str  # the registered name of the method, merger, ...
    params: dict[str, Any]
    seed: int
    device: str
    time_limit: float | None = None  # seconds for fit + transform of all its cells
    memory_limit: int | None = None  # MiB beyond the worker's size at the job's start
    folder: str | None = None  # the plug-in's own folder: the one place a sandboxed worker lets it read

    @property
    def cells(self) -> int:
        return 1

    def execute(self) -> list[Outcome]:
        """Build, fit and apply the plug-in, one Outcome per cell; a failure becomes its cell's error."""
        raise NotImplementedError

    def output_shapes(self) -> list[tuple[int, int | None]]:
        """(rows, columns) of each cell's output; None columns: any width."""
        raise NotImplementedError

    def on_host(self) -> Job:
        """The job with its tensors in host memory (a CUDA tensor would initialise CUDA where it is unpickled)."""
        moved = {f.name: _on_host(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **moved)

    def result_bytes(self) -> int:
        """The most bytes its outcomes may take on the wire: every output in float64, plus headroom."""
        return sum(rows * (columns or 1) for rows, columns in self.output_shapes()) * 8 + 2**20


def _on_host(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, list) and all(isinstance(v, torch.Tensor) for v in value):
        return [v.cpu() for v in value]
    return value


class Executor(Protocol):
    """Runs jobs and yields (index in `jobs`, one Outcome per cell of that job) as jobs finish, in
    any order. `folders` are the plug-in folders the jobs' code lives in (a sandbox mounts them)."""

    @property
    def isolation(self) -> str:
        """"in-process", "process" or "sandbox" (bench.sandbox.Isolation): recorded in every row."""
        ...

    def run(self, jobs: Iterable[Job], folders: Iterable[str] = ()) -> Iterator[tuple[int, list[Outcome]]]: ...


# name -> build(workers=, address=, sandboxed=, folders=) -> Executor; each takes every option and
# uses those that apply to it. bench.sandbox registers "process" and "ray" when it is imported.
EXECUTORS: Registry[Callable[..., Executor]] = Registry("executor")
EXECUTORS.add_loader(lambda: importlib.import_module("bench.sandbox"))


class LocalExecutor:
    """In the runner's own process: the fast default for the project's own reference methods. No
    isolation and no limits; bench.sandbox has the executors for submitted code."""

    isolation = "in-process"

    def run(self, jobs: Iterable[Job], folders: Iterable[str] = ()) -> Iterator[tuple[int, list[Outcome]]]:
        for index, job in enumerate(jobs):
            yield index, job.execute()


@EXECUTORS.register("local")
def local_executor(workers: int | None = None, address: str | None = None, sandboxed: bool = True,
                   folders: Iterable[str] = ()) -> LocalExecutor:
    return LocalExecutor()
