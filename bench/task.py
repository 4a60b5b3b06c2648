"""Tasks: declarative YAML files, strictly validated, versioned and hashed.

    name: digits-cross-seed           # unique, used in results/ paths
    version: 1                        # bump when scores would change
    kind: classification
    default_suite: true
    dataset: {name: digits, fit_split: train, eval_split: test}
    encoders: {all: [digits-mlp-w64-s0, digits-mlp-w64-s1]}   # all ordered pairs, or pairs: [[a, b], ...]
    decoder: logistic                 # classification: fitted on each target's own fit-split embeddings
                                      # (reconstruction uses the target autoencoder's decoder; similarity none)
    anchors: {counts: [64, 256], seeds: [0, 1, 2], sampling: uniform}
    methods: [ortho, {name: linear, params: {preprocessing: none}}]   # omitted: every registered method
    metrics: [accuracy, mse]          # the first is the task's main metric
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
"""
from __future__ import annotations

import difflib
import hashlib
import inspect
import json
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal, Union

import numpy as np
import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from bench.method import REPO_ROOT

Scalar = Union[bool, int, float, str, None]
MAX_SEED = 2**32 - 1  # numpy's legacy RandomState takes no larger seed; no task needs one
MAX_ANCHORS = 10_000_000  # beyond any data set here; check_against_data holds counts to the fit split
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
LABEL_PATTERN = r"^[a-z0-9][a-z0-9_.,=\[\]-]*$"  # e.g. ortho[preprocessing=l2]


# What each task kind can score (see bench/metrics.py, COMPARES).
KIND_COMPARES = {"classification": ("labels", "native", "probes", "latent", "clusters"), "similarity": ("latent", "clusters"),
                 "reconstruction": ("pixels", "latent"), "merging": ("latent", "labels", "clusters")}


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
    def exactly_one(self) -> "EncoderSpec":
        if (self.all is None) == (self.pairs is None):
            raise ValueError("give exactly one of 'all' (a list: every ordered pair) or 'pairs' (a list of [source, target])")
        return self

    def ordered_pairs(self) -> list[tuple[str, str]]:
        if self.pairs is not None:
            return [tuple(pair) for pair in self.pairs]
        return [(s, t) for s in self.all for t in self.all if s != t]


class AnchorSpec(Strict):
    # bounds per value, so that an error names its index; counts are also held to the fit split (check_against_data)
    counts: list[Annotated[int, Field(ge=1, le=MAX_ANCHORS)]] = Field(min_length=1)
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] = Field(min_length=1)
    sampling: Literal["uniform", "stratified", "kmeans", "farthest"] = "uniform"

    @field_validator("counts", "seeds")
    @classmethod
    def unique(cls, values: list[int]) -> list[int]:
        if len(set(values)) != len(values):
            raise ValueError("values must be unique")
        return values


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


class MergingSpec(Strict):
    """How a merging task splits its fit split and which encoder it trains per part (bench/merging.py).
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


class LimitSpec(Strict):
    """Per-cell limits, enforced by the process and ray executors (not part of the spec hash). A job
    of several cells fitted together (Method.fit_many) gets the limits' time times its cells.
    Bounds: time_s finite, in (0, 86,400] (a day per cell); memory_mb in 1..1,048,576 (1 TiB)."""
    time_s: float = Field(default=600.0, gt=0, le=86_400, allow_inf_nan=False)
    memory_mb: int = Field(default=8192, gt=0, le=1_048_576)


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


def _schema_problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        if item["loc"][-1:] == ("str",) and isinstance(item["input"], dict):
            continue  # a mapping under `methods` is a MethodSpec: "not a string" is the other union member talking
        where = _key_path(item["loc"])
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(item["loc"])
            problems.append(f"{where}: unknown key{_closest(str(item['loc'][-1]), allowed) if allowed else ''}")
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
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as error:
        raise TaskError(path, _schema_problems(error)) from None
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
    if spec.dataset.fit_split == spec.dataset.eval_split:  # disjointness of different splits: check_against_data
        problems.append(f"dataset.eval_split: {spec.dataset.eval_split!r} is also the fit split; scores must come from "
                        f"samples that no encoder, decoder or anchor was fitted on")
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
            problems += _param_problems(key, method, plugin_registry.get(method.name).cls)
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


def _param_problems(key: str, method: MethodSpec, cls: type) -> list[str]:
    """A task's params for `cls`, held to its __init__: known names, values of the annotated types."""
    parameters = {n: p for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}
    hints = _init_hints(cls)
    problems = []
    for name, value in method.params.items():
        if name not in parameters:
            problems.append(f"{key}.params.{name}: {method.name!r} takes no parameter {name!r}"
                            f"{_closest(name, list(parameters))}")
        elif name in hints and not _accepts(hints[name], value):
            problems.append(f"{key}.params.{name}: {method.name!r} expects {_describe(hints[name])}, "
                            f"got {_yaml_repr(value)}{_number_hint(value) if _accepts(hints[name], 1.0) else ''}")
    return problems


def _init_hints(cls: type) -> dict[str, Any]:
    """The evaluated annotations of cls.__init__; none when they cannot be evaluated (e.g. a name
    imported only under TYPE_CHECKING): the values are then not checked, as for unannotated ones."""
    try:
        return typing.get_type_hints(cls.__init__)
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
    counts fit the fit split."""
    from bench.datasets import DatasetUnavailable, load_dataset

    try:
        dataset = load_dataset(task.spec.dataset.name)
    except DatasetUnavailable as error:
        problem = f"dataset.name: data set {task.spec.dataset.name!r} cannot be loaded: {error}"
        raise TaskError(task.path, [problem]) from None
    problems = [f"dataset.{key}: data set {dataset.name!r} has no split {split!r} (splits: {', '.join(dataset.splits)})"
                for key, split in (("fit_split", task.spec.dataset.fit_split), ("eval_split", task.spec.dataset.eval_split))
                if split not in dataset.splits]
    if not problems:
        problems += _overlap(task, dataset)
    if not problems:
        pool = len(dataset.split(task.spec.dataset.fit_split))
        problems += [f"anchors.counts[{i}]: {n} anchors, but the fit split {task.spec.dataset.fit_split!r} has only {pool} samples"
                     for i, n in enumerate(task.spec.anchors.counts) if n > pool]
    if not problems and task.spec.kind == "merging":
        problems += _check_merging_against_data(task, dataset)
    if problems:
        raise TaskError(task.path, problems)


def _overlap(task: Task, dataset) -> list[str]:
    """Scores on samples that anchors, decoders or encoders were fitted on would flatter every method."""
    fit, evaluated = task.spec.dataset.fit_split, task.spec.dataset.eval_split
    shared = np.intersect1d(dataset.split(fit), dataset.split(evaluated))
    if fit == evaluated or not len(shared):
        return []  # the same name is a schema problem, reported by load_task
    return [f"dataset.eval_split: split {evaluated!r} shares {len(shared)} of its {len(dataset.split(evaluated))} "
            f"samples with the fit split {fit!r} of data set {dataset.name!r}; scores must come from unseen samples"]


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
