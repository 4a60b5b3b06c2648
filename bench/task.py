"""Tasks: declarative YAML files, strictly validated, versioned and hashed.

    name: digits-cross-seed           # unique, used in results/ paths
    version: 1                        # bump when scores would change
    kind: classification              # a registered TaskKind (bench/kinds/): it owns the next block
    default_suite: true
    dataset: {name: digits, fit_split: train, eval_split: test}
    encoders: {all: [digits-mlp-w64-s0, digits-mlp-w64-s1]}   # the kind's own block (its `block` key)
    decoder: logistic                 # classification: fitted on each target's own fit-split embeddings
                                      # (reconstruction uses the target autoencoder's decoder; similarity none)
    anchors: {counts: [64, 256], seeds: [0, 1, 2], sampling: uniform}
                                      # + pairing: {noisy: [0.1, 0.5]} or {partial: [32], unpaired: true, paired: false}
                                      #   (bench/pairing.py; omitted: paired only)
    methods: [ortho, {name: linear, params: {preprocessing: none}}]   # omitted: every registered method
    metrics: [accuracy, mse]          # the first is the task's main metric
    baselines: [relative]             # optional: relative representations, scored by the harness (bench/relative.py)
    limits: {time_s: 600, memory_mb: 8192}   # per cell; optional

Every problem is a TaskError naming the file and the key path; unknown names come with the
closest valid ones. A task file cannot say something it does not mean:
- a key given twice in one mapping is an error (plain YAML silently keeps the last);
- fit_split and eval_split must be different, disjoint splits (checked against the data set);
- method params must be parameters of the method's __init__, of its annotated type (bool, int,
  float, str, Literal[...], X | None; unannotated: anything), single values, finite numbers;
- numbers are bounded: anchor counts 1..10,000,000 (and at most the fit split), seeds
  0..2**32-1, time_s finite in (0, 86,400], memory_mb 1..1,048,576 (1 TiB).
YAML is read with a yaml.SafeLoader subclass: no code runs from a task file.

What differs between task kinds (their spec block, plug-in family, metric inputs, checks, cells
and evaluation) is each kind's own: a TaskKind, registered in KINDS by its module in bench/kinds/.
This module only looks kinds up by name, so it never names one.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib
import inspect
import json
import math
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, Union

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from bench.anchors import GEOMETRIC
from bench.compare import FLOOR, NATIVE
from bench.datasets import DATASETS, Dataset, DatasetUnavailable, load_dataset
from bench.decoders import DECODERS
from bench.method import REPO_ROOT, declared_pairings
from bench.metrics import METRICS
from bench.pairing import NULL, Pairing
from bench.registry import Registry
from bench.results import Result

if TYPE_CHECKING:  # the run-time and report halves of a kind: only the runner, the report and the kinds import these
    import pandas as pd
    import torch

    from bench.executors import Job
    from bench.report.blocks import Block, Inline

Scalar = bool | int | float | str | None
MAX_SEED = 2**32 - 1  # numpy's legacy RandomState takes no larger seed; no task needs one
MAX_ANCHORS = 10_000_000  # beyond any data set here; check_against_data holds counts to the fit split
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
LABEL_PATTERN = r"^[a-z0-9][a-z0-9_.,=\[\]-]*$"  # e.g. ortho[preprocessing=l2]



class BadInputError(ValueError):
    """Input given to the bench that cannot be used (a task file, a command-line choice such as
    --device cuda without a GPU); the command line reports it on one `error:` line, exit code 2."""


class TaskError(BadInputError):
    """A task file that cannot be used; str() lists `file: key.path: problem` lines."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path, self.problems = Path(path), problems
        super().__init__("\n".join(f"{path}: {problem}" for problem in problems))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DatasetSpec(Strict):
    name: str
    fit_split: str = "train"
    eval_split: str = "test"


def _unique(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError("values must be unique")
    return values


class PairingSpec(Strict):
    """The correspondence protocols of a task's cells (bench/pairing.py): each one listed adds its
    cells for every method that declares it (bench.method.Method.pairings)."""
    paired: bool = True  # every pair known (a noisy sweep's p = 0)
    noisy: list[Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]] = Field(default_factory=list)  # fractions p
    partial: list[Annotated[int, Field(ge=1, le=MAX_ANCHORS)]] = Field(default_factory=list)  # known pairs k
    unpaired: bool = False

    _unique = field_validator("noisy", "partial")(_unique)

    @model_validator(mode="after")
    def some_protocol(self) -> PairingSpec:
        if not self.protocols():
            raise ValueError("no protocol: give paired: true, noisy, partial or unpaired: true")
        return self

    def protocols(self) -> list[Pairing]:
        return ([Pairing("paired")] * self.paired + [Pairing("noisy", p) for p in self.noisy]
                + [Pairing("partial", k) for k in self.partial] + [Pairing("unpaired")] * self.unpaired)


class AnchorSpec(Strict):
    # bounds per value, so that an error names its index; counts are also held to the fit split (check_against_data)
    counts: list[Annotated[int, Field(ge=1, le=MAX_ANCHORS)]] = Field(min_length=1)
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] = Field(min_length=1)
    sampling: Literal["uniform", "stratified", "kmeans", "farthest"] = "uniform"
    pairing: PairingSpec = PairingSpec()

    _unique = field_validator("counts", "seeds")(_unique)

    @model_validator(mode="after")
    def protocols_fit(self) -> AnchorSpec:
        if any(k >= n for k in self.pairing.partial for n in self.counts):
            raise ValueError(f"pairing.partial: known pairs {self.pairing.partial} must each be fewer than every "
                             f"anchor count {self.counts} (k = n is the paired protocol)")
        unmatched = self.pairing.partial or self.pairing.unpaired
        if unmatched and self.sampling in GEOMETRIC:
            raise ValueError(f"pairing: partial and unpaired anchors are drawn at random, not by {self.sampling!r} "
                             f"sampling (it picks each side's points from the source's own geometry)")
        return self


def _one_finite_value(value: Any) -> Any:
    # before the Scalar union: one clear message instead of one per union member
    if not isinstance(value, (bool, int, float, str, type(None))):
        raise ValueError(f"a parameter is one value (true/false, a number, a string or null), "
                         f"not a {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, not {value}")
    return value


Param = Annotated[Scalar, BeforeValidator(_one_finite_value)]


class MethodSpec(Strict):
    name: str
    params: dict[str, Param] = Field(default_factory=dict)  # checked against the class's __init__ in load_task
    label: str | None = Field(default=None, pattern=LABEL_PATTERN)

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        if not self.params:
            return self.name
        return f"{self.name}[{','.join(f'{k}={v}' for k, v in sorted(self.params.items()))}]"


class LimitSpec(Strict):
    """Per-cell limits, enforced by the process and ray executors (not part of the spec hash). A job
    of several cells fitted together (Method.fit_many) gets the limits' time times its cells.
    Bounds: time_s finite, in (0, 86,400] (a day per cell); memory_mb in 1..1,048,576 (1 TiB)."""
    time_s: float = Field(default=600.0, gt=0, le=86_400, allow_inf_nan=False)
    memory_mb: int = Field(default=8192, gt=0, le=1_048_576)


class TaskSpec(Strict):
    """The fields every task has. A task's own spec class (spec_class) adds its kind's block, e.g.
    `encoders` (bench/kinds/stitching.py) or `merging` (bench/kinds/merging.py)."""
    name: str = Field(pattern=NAME_PATTERN)
    version: int = Field(ge=1)
    description: str = ""
    kind: str
    default_suite: bool = False
    dataset: DatasetSpec
    decoder: str = "logistic"
    anchors: AnchorSpec
    methods: list[str | MethodSpec] | None = Field(default=None, min_length=1)
    metrics: list[str] = Field(min_length=1)
    baselines: list[Literal["relative"]] = Field(default_factory=list)  # scored by the harness itself (Evaluation)
    limits: LimitSpec = LimitSpec()

    _unique_baselines = field_validator("baselines")(_unique)

    @field_validator("kind")
    @classmethod
    def registered_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown task kind {kind!r}{closest(kind, KINDS.names())}")
        return kind

    @property
    def block(self) -> Any:
        """The kind's own block of this spec (e.g. its EncoderSpec)."""
        return getattr(self, KINDS.get(self.kind).block)


@dataclass(frozen=True)
class Cell:
    """One scored unit of a task: a method on a (source, target) pair with n anchors of one seed. A
    kind says what source and target stand for (encoders; for merging, a partition and a reference)."""
    source: str
    target: str
    method: MethodSpec
    n_anchors: int
    seed: int
    pairing: str = "paired"  # its correspondence protocol's label (bench.pairing.Pairing.label); "shuffled": a null

    @property
    def protocol(self) -> Pairing:
        return Pairing.parse(self.pairing)


def reference_cell(target: str) -> Cell:
    """The cell of a task's ceiling on `target`: no plug-in, scored as `native` (bench.compare)."""
    return Cell(target, target, MethodSpec(name=NATIVE), 0, 0)


Scores = tuple[dict[str, float | None], dict[str, str]]  # metric -> value (None: unavailable), metric -> why


@dataclass(frozen=True)
class Preparation:
    """One piece of the one-time work a task's cells share (bench.runner shows each phase apart)."""

    phase: str  # "encoding", "decoders": steps of one phase are alike in cost, so its ETA is honest
    name: str  # what the step works on, e.g. an encoder id
    run: typing.Callable[[], object]  # does it, and keeps what it made for the cells (functools.cache)


class Evaluation(Protocol):
    """The run-time half of a task kind, for one task on one device (TaskKind.evaluation). The
    runner asks, in this order: the reference cells, the preparations of the cells to run, the jobs
    of the pending cells, and then the scores of each job's outputs; it builds, times and stores
    every row itself."""

    def preparations(self, cells: list[Cell]) -> list[Preparation]:
        """The one-time work these cells (pending ones and reference cells) share, grouped by phase
        in the order it is done: encoding the data set (training an encoder where needed), then
        fitting decoders. Done first, the cells' own ETA counts cells only."""
        ...

    def reference_cells(self) -> list[Cell]:
        """The cells it scores itself, with no plug-in: the reference cells (reference_cell) whose rows
        rank and normalise the task's plug-ins, and those of the task's `baselines` (bench.compare.RELATIVE)."""
        ...

    def score_reference(self, cell: Cell) -> Scores:
        ...

    def batches(self, pending: list[tuple[Cell, Result]]) -> list[list[tuple[Cell, Result]]]:
        """Pending cells (with their rows) grouped into jobs: each group is one job's cells."""
        ...

    def job(self, cells: list[Cell], limits: LimitSpec) -> Job:
        """What the plug-in may see for these cells (one group of batches): each side's anchors as the
        cell's correspondence protocol gives them (bench.pairing)."""
        ...

    def anchors(self, cell: Cell) -> np.ndarray:
        """The source's anchor samples of a cell (indices into the data set), recorded in its row by their hash."""
        ...

    def score(self, cell: Cell, output: torch.Tensor) -> Scores:
        """The task's metrics on a cell's output (a job's Outcome.translated)."""
        ...

    def scored(self, cell: Cell, output: torch.Tensor) -> None:
        """Called after a cell scored: what a kind keeps beside the row (e.g. reconstruction grids)."""
        ...


class TaskKind(Protocol):
    """A family of tasks that owns its evaluation (lm-evaluation-harness's task classes, mteb's task
    types): the task file's `kind` names one, and nothing outside its module branches on it.

        @KINDS.register("my-kind")
        class MyKind: ...   # these attributes and methods; see bench/kinds/ and tests/test_kinds.py
    """

    # read-only (a class attribute meets each): the kind's declarations
    @property
    def block(self) -> str:
        """The task file's key for the kind's own settings, e.g. "encoders"."""
        ...

    @property
    def block_spec(self) -> type[BaseModel]:
        """The block's schema (a Strict model)."""
        ...

    @property
    def plugins(self) -> Registry[Any]:
        """The plug-in family its tasks' `methods` name (bench.method.METHODS, bench.merging.MERGERS, ...)."""
        ...

    @property
    def compares(self) -> tuple[str, ...]:
        """The metric inputs it provides (bench.metrics COMPARES): each metric of its tasks compares one."""
        ...

    @property
    def nulls(self) -> bool:
        """Whether its plug-ins get a null: cells whose anchor pairs are shuffled (Evaluation.job does it)."""
        ...

    @property
    def ranked(self) -> bool:
        """Whether its plug-ins are normalised and ranked with the translation methods on the leaderboard."""
        ...

    @property
    def title(self) -> str:
        """An unranked kind's section of the leaderboard: its heading (and `note`, what it measures)."""
        ...

    @property
    def note(self) -> str:
        ...

    def pairs(self, spec: TaskSpec) -> list[tuple[str, str]]:
        """(source, target) of each cell group, in order."""
        ...

    def problems(self, spec: TaskSpec) -> list[str]:
        """`key.path: problem` lines about the block's names (registered encoders, ...), without data."""
        ...

    def decoder_identity(self, spec: TaskSpec) -> str | None:
        """What its evaluation fits on the target to score a cell (decoders, probes: their names, code
        versions and hyper-parameters; bench.decoders.DecoderRecipe.identity), or None when nothing:
        every row stores it in its key, so a changed decoder makes the rows it scored stale."""
        ...

    def data_problems(self, task: Task, dataset: Dataset) -> list[str]:
        """`key.path: problem` lines that need the data set loaded."""
        ...

    def evaluation(self, task: Task, dataset: Dataset, device: torch.device, results_dir: Path) -> Evaluation:
        """How its cells run and score; results_dir is where it may keep files beside the rows."""
        ...

    def describe(self, task: Task) -> list[Inline]:
        """Its setting, in the leaderboard's line "Data set X<this>, decoder ..." (bench.report.blocks inlines)."""
        ...

    def report(self, frame: pd.DataFrame, task: Task, names: dict[str, str]) -> list[Block]:
        """An unranked kind's blocks for one task in its own section (current rows in `frame`)."""
        ...


# name -> TaskKind; bench/kinds/ registers the project's own on first use (a test may add one)
KINDS: Registry[TaskKind] = Registry("task kind")
KINDS.add_loader(lambda: importlib.import_module("bench.kinds"))


def spec_class(kind: TaskKind) -> type[TaskSpec]:
    """TaskSpec with the kind's block as a required field."""
    return _spec_classes.setdefault(kind.block_spec, create_model(  # type: ignore[call-overload]
        f"TaskSpec[{kind.block}]", __base__=TaskSpec, **{kind.block: (kind.block_spec, ...)}))


_spec_classes: dict[type[BaseModel], type[TaskSpec]] = {}


@dataclass(frozen=True)
class Task:
    spec: TaskSpec
    path: Path
    spec_hash: str
    methods: tuple[MethodSpec, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def main_metric(self) -> str:
        return self.spec.metrics[0]

    @property
    def kind(self) -> TaskKind:
        return KINDS.get(self.spec.kind)

    def pairs(self) -> list[tuple[str, str]]:
        """(source, target) per cell group, as the task's kind defines them."""
        return self.kind.pairs(self.spec)

    @property
    def decoder_identity(self) -> str | None:
        """What scores its cells on the target (TaskKind.decoder_identity): part of every row's key."""
        return self.kind.decoder_identity(self.spec)

    def plan(self, method_filter: set[str] | None = None, nulls: bool = False) -> list[Cell]:
        """Every cell of the task (of the methods named in method_filter, by name or label). With
        nulls, and when the kind has them, also each plug-in's null at the largest anchor count: the
        same anchors with their pairs shuffled, what it scores without a real correspondence (not
        for the floor, which ignores the anchors)."""
        methods = [m for m in self.methods
                   if method_filter is None or m.name in method_filter or m.display in method_filter]
        anchors = self.spec.anchors
        cells = [Cell(s, t, m, n, seed, pairing.label) for (s, t) in self.pairs() for m in methods
                 for pairing in anchors.pairing.protocols() if self.fits(m, pairing)
                 for n in anchors.counts for seed in anchors.seeds]
        if nulls and self.kind.nulls and anchors.pairing.paired and max(anchors.counts) > 1:  # one anchor: no null
            cells += [Cell(s, t, m, max(anchors.counts), seed, NULL) for (s, t) in self.pairs()
                      for m in methods if m.name != FLOOR for seed in anchors.seeds]
        return cells

    def fits(self, method: MethodSpec, pairing: Pairing) -> bool:
        """Whether the plug-in declares the protocol (bench.method.Method.pairings; every one fits paired
        anchors): a cell it cannot fit is not planned, rather than scored on anchors it misreads."""
        return pairing.needs in declared_pairings(self.kind.plugins.get(method.name).cls)


def tasks_dir() -> Path:
    return REPO_ROOT / "tasks"


def _key_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("str", "MethodSpec") or str(part).startswith("function-after["):
            continue  # pydantic's union branch tags carry no key
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def closest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    return f"; did you mean {', '.join(map(repr, close))}?" if close else f" (known: {', '.join(sorted(known))})"


def spec_hash(spec: TaskSpec) -> str:
    """Hash of everything that changes scores (not the description or suite membership)."""
    # baselines: their rows are keyed by their own code (bench.relative.baseline_source_hash); no other score moves
    data = spec.model_dump(mode="json", exclude={"description", "default_suite", "limits", "baselines"})
    if spec.anchors.pairing == PairingSpec():  # paired only: the hash of every task written before protocols
        del data["anchors"]["pairing"]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class _TaskLoader(yaml.SafeLoader):
    """SafeLoader (no code runs from a task file) that records every key given twice in one mapping:
    YAML readers silently keep the last, so the file would say something it does not mean."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.repeated: list[str] = []  # `key.path: duplicate key ...` problems
        self._paths: dict[int, str] = {}  # id(mapping node) -> its key path

    def construct_document(self, node: yaml.Node) -> Any:
        self._paths = dict(_mapping_paths(node))
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:  # before the base class flattens `<<` merges: a merge may be overridden
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # a complex key is the base class's to refuse
            key, mark = self.construct_object(key_node), key_node.start_mark
            if key in first_seen:
                where = _join(self._paths.get(id(node), ""), str(key))
                self.repeated.append(f"{where}: duplicate key {key!r} {_both_places(first_seen[key], mark)}; "
                                     f"YAML would silently keep the last")
            first_seen.setdefault(key, mark)
        return super().construct_mapping(node, deep=deep)


def _both_places(first: yaml.Mark, second: yaml.Mark) -> str:
    if first.line == second.line:  # a flow mapping, {a: 1, a: 2}: "lines 8 and 8" would say little
        return f"on line {first.line + 1}, columns {first.column + 1} and {second.column + 1}"
    return f"on lines {first.line + 1} and {second.line + 1}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mapping_paths(node: yaml.Node, path: str = "", seen: set[int] | None = None) -> Iterator[tuple[int, str]]:
    """(id(node), key path) of every mapping node under node; an alias is visited once (they may recurse)."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        yield id(node), path
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            yield from _mapping_paths(value_node, _join(path, key), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _mapping_paths(item, f"{path}[{i}]", seen)


def _read_yaml(path: Path) -> Any:
    try:
        loader = _TaskLoader(path.read_text(encoding="utf-8"))
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except FileNotFoundError:
        raise TaskError(path, ["no such task file"]) from None
    except UnicodeDecodeError as error:
        raise TaskError(path, [f"not a text file ({error.reason} at byte {error.start})"]) from None
    except yaml.YAMLError as error:
        raise TaskError(path, [f"not valid YAML: {error}".replace("\n", " ")]) from None
    if loader.repeated:
        raise TaskError(path, loader.repeated)
    return data


def _schema_problems(error: ValidationError, model: type[BaseModel], kind: str | None) -> list[str]:
    problems = []
    blocks = {name: KINDS.get(name).block for name in KINDS.names()}  # kind -> the key of its own block
    for item in error.errors():
        if item["loc"][-1:] == ("str",) and isinstance(item["input"], dict):
            continue  # a mapping under `methods` is a MethodSpec: "not a string" is the other union member talking
        where = _key_path(item["loc"])
        if kind is not None and len(item["loc"]) == 1 and item["loc"][0] in blocks.values():  # a kind's block
            owners = ", ".join(name for name, block in blocks.items() if block == item["loc"][0])
            if item["type"] == "extra_forbidden":
                problems.append(f"{where}: a {kind} task gives {blocks[kind]!r}, not {where!r} "
                                f"(the block of {owners} tasks)")
            else:
                problems.append(f"{where}: a {kind} task gives {where!r}: {item['msg'].removeprefix('Value error, ')}")
        elif item["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, item["loc"])
            problems.append(f"{where}: unknown key{closest(str(item['loc'][-1]), allowed) if allowed else ''}")
        else:
            hint = _number_hint(item["input"]) if item["type"] in ("int_type", "float_type") else ""
            problems.append(f"{where}: {item['msg'].removeprefix('Value error, ')}{hint}")
    return sorted(set(problems))


def load_task(path: Path | str) -> Task:
    path = Path(path)
    data = _read_yaml(path)
    if data is None:
        raise TaskError(path, ["the file is empty"])
    if not isinstance(data, dict):
        raise TaskError(path, [f"(top level): expected a mapping of keys, got {type(data).__name__}"])
    kind = KINDS.registered(data["kind"]) if isinstance(data.get("kind"), str) and data["kind"] in KINDS else None
    if kind is None:  # the kind's problem is reported; the blocks of the kinds there are would only add noise
        data = {key: value for key, value in data.items() if key not in {KINDS.get(k).block for k in KINDS.names()}}
    model = spec_class(kind) if kind is not None else TaskSpec
    try:
        spec = model.model_validate(data)
    except ValidationError as error:
        raise TaskError(path, _schema_problems(error, model, data["kind"] if kind is not None else None)) from None
    methods = _method_specs(spec)
    problems = _unknown_names(spec, methods)
    if problems:
        raise TaskError(path, problems)
    return Task(spec, path, spec_hash(spec), methods)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys of the mapping at loc[:-1] (for an unknown key's closest names)."""
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is not None:
            model = next(_models_in(field.annotation), model)
    return list(model.model_fields)


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models named in an annotation, e.g. MethodSpec in list[str | MethodSpec] | None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from _models_in(argument)


def _method_specs(spec: TaskSpec) -> tuple[MethodSpec, ...]:
    entries = spec.methods if spec.methods is not None else KINDS.get(spec.kind).plugins.names()
    return tuple(MethodSpec(name=entry) if isinstance(entry, str) else entry for entry in entries)


def _unknown_names(spec: TaskSpec, methods: tuple[MethodSpec, ...]) -> list[str]:
    kind = KINDS.get(spec.kind)
    plugin_registry = kind.plugins  # methods, mergers, ...: the kind's plug-in family
    problems = []

    def check(key: str, name: str, registry: Registry[Any]) -> bool:
        if name in registry:
            return True
        problems.append(f"{key}: unknown {registry.kind} {name!r}{closest(name, registry.names())}")
        return False

    check("dataset.name", spec.dataset.name, DATASETS)
    if spec.dataset.fit_split == spec.dataset.eval_split:  # disjointness of different splits: check_against_data
        problems.append(f"dataset.eval_split: {spec.dataset.eval_split!r} is also the fit split; scores must come from "
                        f"samples that no encoder, decoder or anchor was fitted on")
    check("decoder", spec.decoder, DECODERS)
    problems += kind.problems(spec)
    labels = [m.display for m in methods]
    for i, method in enumerate(methods):
        key = f"methods[{i}]" if spec.methods is not None else "methods (default: all registered)"
        if labels.count(method.display) > 1:
            problems.append(f"{key}: label {method.display!r} appears twice; give one entry a distinct 'label'")
        if check(f"{key}.name" if spec.methods is not None else key, method.name, plugin_registry):
            problems += _param_problems(key, method, plugin_registry.get(method.name).cls)
    for i, name in enumerate(spec.metrics):
        if check(f"metrics[{i}]", name, METRICS) and METRICS.get(name).compares not in kind.compares:
            problems.append(f"metrics[{i}]: {name!r} compares {METRICS.get(name).compares}, "
                            f"which a {spec.kind} task does not have (it has: {', '.join(kind.compares)})")
    return sorted(set(problems), key=problems.index)


def _param_problems(key: str, method: MethodSpec, cls: type) -> list[str]:
    """A task's params for `cls`, held to its __init__: known names, values of the annotated types."""
    parameters = {n: p for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}  # type: ignore[misc]
    hints = _init_hints(cls)
    problems = []
    for name, value in method.params.items():
        if name not in parameters:
            problems.append(f"{key}.params.{name}: {method.name!r} takes no parameter {name!r}"
                            f"{closest(name, list(parameters))}")
        elif name in hints and not _accepts(hints[name], value):
            problems.append(f"{key}.params.{name}: {method.name!r} expects {_describe(hints[name])}, "
                            f"got {_yaml_repr(value)}{_number_hint(value) if _accepts(hints[name], 1.0) else ''}")
    return problems


def _init_hints(cls: type) -> dict[str, Any]:
    """The evaluated annotations of cls.__init__; none when they cannot be evaluated (e.g. a name
    imported only under TYPE_CHECKING): the values are then not checked, as for unannotated ones."""
    try:
        return typing.get_type_hints(cls.__init__)  # type: ignore[misc]  # the class's own __init__
    except Exception:  # third-party annotations can fail in many ways; checking them is a courtesy
        return {}


def _accepts(annotation: Any, value: Scalar) -> bool:
    """Whether a YAML scalar fits an annotation. bool is an int in Python, but not here: `true` is no
    count and `1` no switch."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin is Literal:
        return any(value == option and type(value) is type(option) for option in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return any(_accepts(member, value) for member in typing.get_args(annotation))
    if annotation in (None, type(None)):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:  # `lr: 1` means 1.0
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    try:  # str, or a class no scalar is (tuple, list[float], ...): such a parameter cannot come from a task
        return isinstance(value, origin or annotation)
    except TypeError:  # a TypeVar, a non-runtime Protocol, ...: not checkable, so accepted
        return True


def _describe(annotation: Any) -> str:
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(_yaml_repr(option, typed=False) for option in typing.get_args(annotation))
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return " or ".join(_describe(member) for member in typing.get_args(annotation))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    if annotation in names:
        return names[annotation]
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)  # list[float] keeps its brackets


def _number_hint(value: Any) -> str:
    """For a string where a number was expected: PyYAML follows YAML 1.1, where a float needs a dot
    and a signed exponent, so 1e-3 and 1.0e9 are strings."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:  # a word, not a misread number
        return ""
    return f"; YAML reads {value} as a string: write a float with a dot and a signed exponent, e.g. 1.0e-3 or 1.0e+9"


def _yaml_repr(value: Scalar, typed: bool = True) -> str:
    """A value as the task file wrote it, e.g. `'no' (a string)` so that "no" is not read as false."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    kind = {str: "a string", int: "an integer", float: "a number"}.get(type(value))
    return f"{value!r} ({kind})" if typed and kind else repr(value)


def check_against_data(task: Task) -> None:
    """Checks that need the data set loaded: it loads, the splits exist and are disjoint, anchor
    counts fit the fit split, and the kind's own (TaskKind.data_problems)."""
    try:
        dataset = load_dataset(task.spec.dataset.name)
    except DatasetUnavailable as error:
        problem = f"dataset.name: data set {task.spec.dataset.name!r} cannot be loaded: {error}"
        raise TaskError(task.path, [problem]) from None
    problems = [f"dataset.{key}: data set {dataset.name!r} has no split {split!r} "
                f"(splits: {', '.join(dataset.splits)})"
                for key, split in (("fit_split", task.spec.dataset.fit_split),
                                   ("eval_split", task.spec.dataset.eval_split))
                if split not in dataset.splits]
    if not problems:
        problems += _overlap(task, dataset)
    if not problems:
        pool, anchors = len(dataset.split(task.spec.dataset.fit_split)), task.spec.anchors
        for i, n in enumerate(anchors.counts):
            widest = max(anchors.pairing.protocols(), key=lambda pairing: pairing.drawn(n))
            if widest.drawn(n) > pool:
                drawn = f" ({widest.drawn(n)} distinct samples as {widest.label})" if widest.drawn(n) > n else ""
                problems.append(f"anchors.counts[{i}]: {n} anchors{drawn}, but the fit split "
                                f"{task.spec.dataset.fit_split!r} has only {pool} samples")
    if not problems:
        problems += task.kind.data_problems(task, dataset)
    if problems:
        raise TaskError(task.path, problems)


def _overlap(task: Task, dataset: Dataset) -> list[str]:
    """Scores on samples that anchors, decoders or encoders were fitted on would flatter every method."""
    fit, evaluated = task.spec.dataset.fit_split, task.spec.dataset.eval_split
    shared = np.intersect1d(dataset.split(fit), dataset.split(evaluated))
    if fit == evaluated or not len(shared):
        return []  # the same name is a schema problem, reported by load_task
    return [f"dataset.eval_split: split {evaluated!r} shares {len(shared)} of its {len(dataset.split(evaluated))} "
            f"samples with the fit split {fit!r} of data set {dataset.name!r}; scores must come from unseen samples"]


def discover_tasks(default_suite_only: bool = False) -> list[Task]:
    tasks = [load_task(path) for path in sorted(tasks_dir().glob("*.yaml"))]
    names = [t.name for t in tasks]
    for task in tasks:
        if names.count(task.name) > 1:
            raise TaskError(task.path, [f"name: {task.name!r} is used by another task file too"])
    return [t for t in tasks if t.spec.default_suite or not default_suite_only]


def find_task(name_or_path: str) -> Task:
    """A task file path, or the name of a task in tasks/."""
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        return load_task(name_or_path)
    path = tasks_dir() / f"{name_or_path}.yaml"
    if path.exists():
        return load_task(path)
    known = [p.stem for p in tasks_dir().glob("*.yaml")]
    raise TaskError(path, [f"no task named {name_or_path!r}{closest(name_or_path, known)}"])
