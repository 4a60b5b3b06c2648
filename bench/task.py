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
KIND_COMPARES = {"classification": ("labels", "native", "probes", "latent", "clusters"), "similarity": ("latent", "clusters"),
                 "reconstruction": ("pixels", "latent"), "merging": ("latent", "labels", "clusters")}


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


class MergingSpec(Strict):
    """How a merging task splits its fit split and which encoder it trains per part (bench/merging.py)."""
    partitions: list[Literal["shared-samples", "shared-classes", "disjoint"]] = Field(min_length=1)
    n_tasks: int = Field(default=2, ge=2)
    shared_classes: float = Field(default=0.8, gt=0, lt=1)  # shared-samples: fraction of classes every part sees
    arch: Literal["mlp", "cnn"] = "mlp"
    width: int = Field(default=64, ge=2)
    seed: int = Field(default=0, ge=0)  # the end-to-end encoder's training seed; part i's is seed + 1 + i

    @field_validator("partitions")
    @classmethod
    def unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("values must be unique")
        return values


class LimitSpec(Strict):
    """Per-cell limits, enforced by the process and ray executors (not part of the spec hash). A job
    of several cells fitted together (Method.fit_many) gets the limits' time times its cells."""
    time_s: float = Field(default=600.0, gt=0)
    memory_mb: int = Field(default=8192, gt=0)


class TaskSpec(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    version: int = Field(ge=1)
    description: str = ""
    kind: Literal["classification", "similarity", "reconstruction", "merging"]
    default_suite: bool = False
    dataset: DatasetSpec
    encoders: EncoderSpec | None = None  # every kind but merging
    merging: MergingSpec | None = None  # merging only: its encoders are trained per partition
    decoder: str = "logistic"
    anchors: AnchorSpec
    methods: list[Union[str, MethodSpec]] | None = Field(default=None, min_length=1)
    metrics: list[str] = Field(min_length=1)
    limits: LimitSpec = LimitSpec()

    @model_validator(mode="after")
    def encoders_or_merging(self) -> "TaskSpec":
        if self.kind == "merging":
            if self.merging is None or self.encoders is not None:
                raise ValueError("a merging task gives 'merging' (how to split the data and train its encoders), not 'encoders'")
        elif self.encoders is None or self.merging is not None:
            raise ValueError(f"a {self.kind} task gives 'encoders', not 'merging'")
        return self


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
        """(source, target) per cell; for a merging task (partition, end-to-end encoder)."""
        if self.spec.kind == "merging":
            from bench.merging import end_to_end_id

            return [(partition, end_to_end_id(self.spec)) for partition in self.spec.merging.partitions]
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
    for key in ("encoders", "merging"):  # each kind has one of them; hashes predate `merging`
        if data[key] is None:
            del data[key]
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
        for candidate in (DatasetSpec, EncoderSpec, MergingSpec, AnchorSpec, MethodSpec, LimitSpec):
            if candidate.__name__ in str(field.annotation):
                model = candidate
    return list(model.model_fields)


def plugins(kind: str):
    """The registry a task's `methods` name: mergers for a merging task, translation methods otherwise."""
    if kind == "merging":
        from bench.merging import MERGERS

        return MERGERS
    from bench.method import METHODS

    return METHODS


def _method_specs(spec: TaskSpec) -> tuple[MethodSpec, ...]:
    entries = spec.methods if spec.methods is not None else plugins(spec.kind).names()
    return tuple(MethodSpec(name=entry) if isinstance(entry, str) else entry for entry in entries)


def _unknown_names(spec: TaskSpec, methods: tuple[MethodSpec, ...]) -> list[str]:
    from bench.datasets import DATASETS
    from bench.decoders import DECODERS
    from bench.encoders import ENCODERS
    from bench.metrics import METRICS

    plugin_registry = plugins(spec.kind)  # methods, or mergers for a merging task
    problems = []

    def check(key: str, name: str, registry) -> bool:
        if name in registry:
            return True
        problems.append(f"{key}: unknown {registry.kind} {name!r}{_closest(name, registry.names())}")
        return False

    check("dataset.name", spec.dataset.name, DATASETS)
    check("decoder", spec.decoder, DECODERS)
    encoders = spec.encoders or EncoderSpec.model_construct(all=None, pairs=None)  # a merging task names none
    encoder_keys = ([(f"encoders.all[{i}]", n) for i, n in enumerate(encoders.all or [])]
                    + [(f"encoders.pairs[{i}][{j}]", n) for i, p in enumerate(encoders.pairs or []) for j, n in enumerate(p)])
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
        if check(f"{key}.name" if spec.methods is not None else key, method.name, plugin_registry):
            accepted = [p for p in inspect.signature(plugin_registry.get(method.name).cls.__init__).parameters if p != "self"]
            for param in method.params:
                if param not in accepted:
                    problems.append(f"{key}.params.{param}: {method.name!r} takes no parameter {param!r}{_closest(param, accepted)}")
    for i, name in enumerate(spec.metrics):
        if check(f"metrics[{i}]", name, METRICS) and METRICS.get(name).compares not in KIND_COMPARES[spec.kind]:
            problems.append(f"metrics[{i}]: {name!r} compares {METRICS.get(name).compares}, which a {spec.kind} task does not "
                            f"have (it has: {', '.join(KIND_COMPARES[spec.kind])})")
    if spec.kind == "merging":
        from bench.merging import end_to_end_id

        if end_to_end_id(spec) not in ENCODERS:
            problems.append(f"merging: no end-to-end encoder {end_to_end_id(spec)!r} is registered for this data set, "
                            f"architecture, width and seed{_closest(end_to_end_id(spec), ENCODERS.names())}")
        if spec.anchors.sampling not in ("uniform", "stratified"):
            problems.append(f"anchors.sampling: a merging task samples anchors without a space to measure in: "
                            f"use 'uniform' or 'stratified', not {spec.anchors.sampling!r}")
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
    if not problems and task.spec.kind == "merging":
        problems += _check_merging_against_data(task, dataset)
    if problems:
        raise TaskError(task.path, problems)


def _check_merging_against_data(task: Task, dataset) -> list[str]:
    from bench.encoders.trained import training_config
    from bench.merging import partition

    spec, problems = task.spec, []
    trained_on = training_config(dataset.name)["split"]
    if spec.dataset.fit_split != trained_on:
        problems.append(f"dataset.fit_split: the end-to-end encoder is trained on split {trained_on!r}; a merging task's "
                        f"parts must split that same split, so fit_split must be {trained_on!r}")
    for how in spec.merging.partitions:
        try:
            _, pool = partition(dataset.y, dataset.split(spec.dataset.fit_split), how, spec.merging.n_tasks,
                                spec.merging.shared_classes, spec.merging.seed)
        except ValueError as error:
            problems.append(f"merging.partitions: {error}")
            continue
        problems += [f"anchors.counts[{i}]: {n} anchors, but partition {how!r} draws anchors from {len(pool)} samples"
                     for i, n in enumerate(spec.anchors.counts) if n > len(pool)]
    return problems


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
