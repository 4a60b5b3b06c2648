"""Tasks: declarative YAML files, strictly validated, versioned and hashed.

    name: digits-cross-seed           # unique, used in results/ paths
    version: 1                        # bump when scores would change
    kind: classification
    default_suite: true
    dataset: {name: digits, fit_split: train, eval_split: test}
    encoders: {all: [digits-mlp-w64-s0, digits-mlp-w64-s1]}   # all ordered pairs, or pairs: [[a, b]]
    decoder: logistic                 # classification: fitted on each target's own fit-split embeddings
                                      # (reconstruction uses the target autoencoder's decoder; similarity none)
    anchors: {counts: [64, 256], seeds: [0, 1, 2], sampling: uniform}
    methods: [ortho, {name: linear, params: {preprocessing: none}}]   # omitted: every registered method
    metrics: [accuracy, mse]          # the first is the task's main metric

Every problem is a TaskError naming the file and the key path; unknown names come with the
closest valid ones. YAML is read with safe_load: no code runs from a task file.
"""
from __future__ import annotations

import difflib
import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bench.method import REPO_ROOT

Scalar = Union[bool, int, float, str, None]
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
LABEL_PATTERN = r"^[a-z0-9][a-z0-9_.,=\[\]-]*$"  # e.g. ortho[preprocessing=l2]


# What each task kind can score (see bench/metrics.py, COMPARES).
KIND_COMPARES = {"classification": ("labels", "native", "probes", "latent"), "similarity": ("latent",),
                 "reconstruction": ("pixels", "latent")}


class TaskError(ValueError):
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


class EncoderSpec(Strict):
    all: list[str] | None = Field(default=None, min_length=2)
    pairs: list[tuple[str, str]] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def exactly_one(self) -> "EncoderSpec":
        if (self.all is None) == (self.pairs is None):
            raise ValueError("give exactly one of 'all' (a list: every ordered pair) or 'pairs' (a list of [source, target])")
        return self

    def ordered_pairs(self) -> list[tuple[str, str]]:
        if self.pairs is not None:
            return [tuple(pair) for pair in self.pairs]
        return [(s, t) for s in self.all for t in self.all if s != t]


class AnchorSpec(Strict):
    counts: list[int] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    sampling: Literal["uniform", "stratified", "kmeans", "farthest"] = "uniform"

    @field_validator("counts", "seeds")
    @classmethod
    def positive_and_unique(cls, values: list[int], info) -> list[int]:
        floor = 1 if info.field_name == "counts" else 0
        if any(v < floor for v in values):
            raise ValueError(f"every value must be >= {floor}")
        if len(set(values)) != len(values):
            raise ValueError("values must be unique")
        return values


class MethodSpec(Strict):
    name: str
    params: dict[str, Scalar] = Field(default_factory=dict)
    label: str | None = Field(default=None, pattern=LABEL_PATTERN)

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        if not self.params:
            return self.name
        return f"{self.name}[{','.join(f'{k}={v}' for k, v in sorted(self.params.items()))}]"


class LimitSpec(Strict):
    """Per-cell limits, enforced by the process and ray executors (not part of the spec hash)."""
    time_s: float = Field(default=600.0, gt=0)
    memory_mb: int = Field(default=8192, gt=0)


class TaskSpec(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    version: int = Field(ge=1)
    description: str = ""
    kind: Literal["classification", "similarity", "reconstruction"]
    default_suite: bool = False
    dataset: DatasetSpec
    encoders: EncoderSpec
    decoder: str = "logistic"
    anchors: AnchorSpec
    methods: list[Union[str, MethodSpec]] | None = Field(default=None, min_length=1)
    metrics: list[str] = Field(min_length=1)
    limits: LimitSpec = LimitSpec()


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

    def pairs(self) -> list[tuple[str, str]]:
        return self.spec.encoders.ordered_pairs()


def tasks_dir() -> Path:
    return REPO_ROOT / "tasks"


def _key_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("str", "MethodSpec", "function-after[exactly_one(), EncoderSpec]"):
            continue  # pydantic's union branch tags carry no key
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _closest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    return f"; did you mean {', '.join(map(repr, close))}?" if close else f" (known: {', '.join(sorted(known))})"


def spec_hash(spec: TaskSpec) -> str:
    """Hash of everything that changes scores (not the description or suite membership)."""
    data = spec.model_dump(mode="json", exclude={"description", "default_suite", "limits"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def load_task(path: Path | str) -> Task:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except FileNotFoundError:
        raise TaskError(path, ["no such task file"]) from None
    except UnicodeDecodeError as error:
        raise TaskError(path, [f"not a text file ({error.reason} at byte {error.start})"]) from None
    except yaml.YAMLError as error:
        raise TaskError(path, [f"not valid YAML: {error}".replace("\n", " ")]) from None
    if data is None:
        raise TaskError(path, ["the file is empty"])
    if not isinstance(data, dict):
        raise TaskError(path, [f"(top level): expected a mapping of keys, got {type(data).__name__}"])
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = _key_path(item["loc"])
            if item["type"] == "extra_forbidden":
                allowed = _allowed_keys(item["loc"])
                problems.append(f"{where}: unknown key{_closest(str(item['loc'][-1]), allowed) if allowed else ''}")
            else:
                problems.append(f"{where}: {item['msg']}")
        raise TaskError(path, sorted(set(problems))) from None
    methods = _method_specs(spec)
    problems = _unknown_names(spec, methods)
    if problems:
        raise TaskError(path, problems)
    return Task(spec, path, spec_hash(spec), methods)


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = TaskSpec
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue
        for candidate in (DatasetSpec, EncoderSpec, AnchorSpec, MethodSpec, LimitSpec):
            if candidate.__name__ in str(field.annotation):
                model = candidate
    return list(model.model_fields)


def _method_specs(spec: TaskSpec) -> tuple[MethodSpec, ...]:
    from bench.method import METHODS

    entries = spec.methods if spec.methods is not None else METHODS.names()
    return tuple(MethodSpec(name=entry) if isinstance(entry, str) else entry for entry in entries)


def _unknown_names(spec: TaskSpec, methods: tuple[MethodSpec, ...]) -> list[str]:
    from bench.datasets import DATASETS
    from bench.decoders import DECODERS
    from bench.encoders import ENCODERS
    from bench.method import METHODS
    from bench.metrics import METRICS

    problems = []

    def check(key: str, name: str, registry) -> bool:
        if name in registry:
            return True
        problems.append(f"{key}: unknown {registry.kind} {name!r}{_closest(name, registry.names())}")
        return False

    check("dataset.name", spec.dataset.name, DATASETS)
    check("decoder", spec.decoder, DECODERS)
    encoder_keys = ([(f"encoders.all[{i}]", n) for i, n in enumerate(spec.encoders.all or [])]
                    + [(f"encoders.pairs[{i}][{j}]", n) for i, p in enumerate(spec.encoders.pairs or []) for j, n in enumerate(p)])
    for key, name in encoder_keys:
        if check(key, name, ENCODERS):
            trained_on = ENCODERS.get(name).dataset
            if trained_on not in (None, spec.dataset.name):
                problems.append(f"{key}: encoder {name!r} is trained on {trained_on!r}, not on the task's data set {spec.dataset.name!r}")
    labels = [m.display for m in methods]
    for i, method in enumerate(methods):
        key = f"methods[{i}]" if spec.methods is not None else "methods (default: all registered)"
        if labels.count(method.display) > 1:
            problems.append(f"{key}: label {method.display!r} appears twice; give one entry a distinct 'label'")
        if check(f"{key}.name" if spec.methods is not None else key, method.name, METHODS):
            accepted = [p for p in inspect.signature(METHODS.get(method.name).cls.__init__).parameters if p != "self"]
            for param in method.params:
                if param not in accepted:
                    problems.append(f"{key}.params.{param}: {method.name!r} takes no parameter {param!r}{_closest(param, accepted)}")
    for i, name in enumerate(spec.metrics):
        if check(f"metrics[{i}]", name, METRICS) and METRICS.get(name).compares not in KIND_COMPARES[spec.kind]:
            problems.append(f"metrics[{i}]: {name!r} compares {METRICS.get(name).compares}, which a {spec.kind} task does not "
                            f"have (it has: {', '.join(KIND_COMPARES[spec.kind])})")
    if spec.kind == "reconstruction":
        for key, name in encoder_keys:
            if name in ENCODERS and not hasattr(ENCODERS.get(name), "decode"):
                problems.append(f"{key}: encoder {name!r} has no decoder; a reconstruction task needs autoencoders (ids *-ae-*)")
    return sorted(set(problems), key=problems.index)


def check_against_data(task: Task) -> None:
    """Checks that need the data set loaded: splits exist, anchor counts fit the fit split."""
    from bench.datasets import load_dataset

    dataset = load_dataset(task.spec.dataset.name)
    problems = [f"dataset.{key}: data set {dataset.name!r} has no split {split!r} (splits: {', '.join(dataset.splits)})"
                for key, split in (("fit_split", task.spec.dataset.fit_split), ("eval_split", task.spec.dataset.eval_split))
                if split not in dataset.splits]
    if not problems:
        pool = len(dataset.split(task.spec.dataset.fit_split))
        problems += [f"anchors.counts[{i}]: {n} anchors, but the fit split {task.spec.dataset.fit_split!r} has only {pool} samples"
                     for i, n in enumerate(task.spec.anchors.counts) if n > pool]
    if problems:
        raise TaskError(task.path, problems)


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
    raise TaskError(path, [f"no task named {name_or_path!r}{_closest(name_or_path, known)}"])
