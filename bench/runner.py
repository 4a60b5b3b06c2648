"""The runner: task -> its kind's evaluation -> cells (jobs on an executor, scores) -> result store.

A cell is (source, target, plug-in, n_anchors, seed); the task's kind (bench/kinds/) says what
source and target are, what a plug-in sees (its jobs) and how an output is scored. The runner
plans every cell of a task, skips those with a stored result (resume), writes the kind's missing
reference rows, and only then has jobs built (embeddings loaded, decoders fitted), so a complete
run costs seconds. Rows are built here and only here (base_row), then scored by the kind; the
plug-in's code runs wherever the executor puts it, and never sees what scores it.
"""
from __future__ import annotations

import functools
import itertools
import platform
import subprocess
import time
from dataclasses import dataclass, field, replace

import numpy as np
import sklearn
import torch
from tqdm.auto import tqdm

from bench.anchors import anchor_ids_hash
from bench.compare import NATIVE
from bench.datasets import Dataset, load_dataset
from bench.executors import Executor, Job, LocalExecutor, Outcome
from bench.method import REPO_ROOT
from bench.relative import baseline_source_hash
from bench.results import SCHEMA_VERSION, Result, ResultStore
from bench.task import BadInputError, Cell, Evaluation, LimitSpec, Preparation, Task, check_against_data

# rows are written at most this often: a kill loses at most this much work (plus the job in flight),
# however slow the cells, and a fast task is not slowed by a rewrite + fsync every few cells
FLUSH_SECONDS = 5.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        # bad input, not a crash: the command line exits 2 on one line
        raise BadInputError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu or auto")
    return torch.device(name)


@functools.lru_cache(maxsize=1)
def environment() -> tuple[dict[str, str], str]:
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                "sklearn": sklearn.__version__}
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        commit = done.stdout.strip() if done.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return versions, commit


@dataclass
class Summary:
    run: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = (f"cells run: {self.run}, skipped (already stored): {self.skipped}, failed: {self.failed}, "
                f"time: {self.seconds:.1f} s")
        return "\n".join([text, *(f"  FAILED {failure}" for failure in self.failures)])


def base_row(task: Task, dataset: Dataset, cell: Cell, source_hash: str) -> Result:
    """A cell's row before it runs; the runner fills in the rest with dataclasses.replace."""
    versions, commit = environment()
    return Result(
        schema_version=SCHEMA_VERSION, task=task.name, task_version=task.spec.version, task_spec_hash=task.spec_hash,
        kind=task.spec.kind, dataset=dataset.name, dataset_hash=dataset.content_hash, source=cell.source,
        target=cell.target, method=cell.method.display, method_name=cell.method.name,
        method_params=dict(cell.method.params), method_source_hash=source_hash, n_anchors=cell.n_anchors,
        seed=cell.seed, pairing=cell.pairing, decoder=task.decoder_identity, anchor_ids_hash=None, status="ok",
        error=None, metrics={}, unavailable={},
        fit_seconds=None, fit_cells=None, transform_seconds=None, device=None, versions=versions, git_commit=commit,
        isolation="in-process")


def run_task(task: Task, store: ResultStore, device: torch.device, summary: Summary,
             method_filter: set[str] | None = None, progress: bool = True, executor: Executor | None = None,
             limits: LimitSpec | None = None, nulls: bool = False) -> None:
    """Run every cell of `task` that has no stored result; failed cells are stored with their reason.
    With nulls, each plug-in's null cells too (Task.plan)."""
    check_against_data(task)
    executor = executor or LocalExecutor()
    limits = limits or task.spec.limits
    dataset = load_dataset(task.spec.dataset.name)
    cells = task.plan(method_filter, nulls)
    registry = task.kind.plugins  # the kind's plug-in family: translation methods, mergers, ...
    source_hashes = {m.name: registry.get(m.name).source_hash for m in task.methods}
    done = {label: store.completed_keys(task.name, label)
            for label in {c.method.display for c in cells} | {NATIVE, *task.spec.baselines}}
    # what the plug-in runs under (bench/sandbox.py; the leaderboard shows it) and on
    isolation = getattr(executor, "isolation", "in-process")
    pending = [(cell, replace(row, isolation=isolation, device=str(device))) for cell in cells
               if (row := base_row(task, dataset, cell, source_hashes[cell.method.name])).key
               not in done[cell.method.display]]
    summary.skipped += len(cells) - len(pending)
    evaluation = task.kind.evaluation(task, dataset, device, store.root)
    references = missing_references(evaluation, task, dataset, done)
    prepare(task.name, evaluation.preparations([cell for cell, _ in pending] + [cell for cell, _ in references]),
            progress)
    if references:
        store.write([scored_reference(evaluation, cell, row, device) for cell, row in references])
    grouped = evaluation.batches(pending)
    folders = {m.name: str(registry.get(m.name).folder) for m in task.methods if registry.get(m.name).folder}
    # lazy: one job's tensors at a time
    jobs = (placed(evaluation.job([cell for cell, _ in batch], limits), folders) for batch in grouped)
    buffer: list[Result] = []
    flushed = time.monotonic()
    bar = tqdm(total=len(pending), desc=task.name, unit="cell", disable=not progress or not pending, dynamic_ncols=True)
    for index, outcomes in executor.run(jobs, sorted(set(folders.values()))):
        for (cell, row), outcome in zip(grouped[index], outcomes, strict=True):
            row = finish_row(evaluation, cell, row, outcome, device)
            summary.run += 1
            bar.update()
            if row.status != "ok":
                summary.failed += 1
                pairing = f" ({cell.pairing})" if cell.pairing != "paired" else ""
                summary.failures.append(f"{task.name} {cell.source}->{cell.target} {cell.method.display}{pairing} "
                                        f"n={cell.n_anchors} seed={cell.seed}: {row.error}")
            buffer.append(row)
        if time.monotonic() - flushed >= FLUSH_SECONDS:
            store.write(buffer)
            buffer, flushed = [], time.monotonic()
    bar.close()
    store.write(buffer)


def prepare(task_name: str, preparations: list[Preparation], progress: bool) -> None:
    """The cells' shared one-time work, one progress bar per phase (encoding, decoders): each bar's
    ETA is that phase's own, and the cells' bar that follows counts cells only."""
    for phase, steps in itertools.groupby(preparations, key=lambda step: step.phase):
        bar = tqdm(list(steps), desc=f"{task_name}: {phase}", unit="step", disable=not progress, dynamic_ncols=True)
        for step in bar:
            bar.set_postfix_str(step.name)
            step.run()


def missing_references(evaluation: Evaluation, task: Task, dataset: Dataset,
                       done: dict[str, set[str]]) -> list[tuple[Cell, Result]]:
    """The cells the evaluation scores itself (the kind's ceiling, `native`, and the task's baselines)
    with no stored row, and their rows to fill; `done` holds the stored keys by method label."""
    rows = [(cell, base_row(task, dataset, cell, source_hash=baseline_source_hash(cell.method.name)))
            for cell in evaluation.reference_cells()]
    return [(cell, row) for cell, row in rows if row.key not in done[cell.method.display]]


def scored_reference(evaluation: Evaluation, cell: Cell, row: Result, device: torch.device) -> Result:
    started = time.perf_counter()
    metrics, unavailable = evaluation.score_reference(cell)
    anchored = cell.n_anchors > 0  # a baseline's: its anchors and its cost (the ceiling's are none)
    return replace(row, device=str(device), metrics=metrics, unavailable=unavailable,
                   anchor_ids_hash=anchor_ids_hash(evaluation.anchors(cell)) if anchored else None,
                   fit_seconds=time.perf_counter() - started if anchored else None)


def placed(job: Job, folders: dict[str, str]) -> Job:
    """The job, told its plug-in's folder: the one folder a sandboxed worker lets it read."""
    job.folder = folders.get(job.plugin)
    return job


def finish_row(evaluation: Evaluation, cell: Cell, row: Result, outcome: Outcome, device: torch.device) -> Result:
    """A cell's row from its job's outcome: scored, or failed with the reason (a failing score included)."""
    row = replace(row, anchor_ids_hash=anchor_ids_hash(evaluation.anchors(cell)), fit_seconds=outcome.fit_seconds,
                  fit_cells=outcome.fit_cells, transform_seconds=outcome.transform_seconds)
    if outcome.error is not None or outcome.translated is None:
        return replace(row, status="failed", error=outcome.error or "no output")
    output = outcome.translated.to(device, torch.float32)
    try:
        metrics, unavailable = evaluation.score(cell, output)
    except Exception as error:
        return replace(row, status="failed", error=f"score: {type(error).__name__}: {error}")
    evaluation.scored(cell, output)
    return replace(row, metrics=metrics, unavailable=unavailable)
