"""The wire between the runner and its workers (bench/sandbox.py, bench/worker.py).

Runner -> worker: a request (a Job of some task kind, a CheckJob or a DescribeJob), pickled: this
direction is trusted. Worker -> runner: a result as length-prefixed parts, a JSON header then
.npy arrays, never pickle: the runner must not unpickle what submitted code wrote. Everything a
result says is checked again here (shapes, dtypes, finiteness, times, the closed vocabulary of
plug-in descriptions); anything else is a ProtocolError, the failure of that job alone.
"""
from __future__ import annotations

import inspect
import io
import json
import pickle
import re
import struct
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import torch

from bench.checks import CheckResult
from bench.executors import Job, Outcome
from bench.families import FAMILIES
from bench.method import PAIRINGS

READY = b"latent-bench worker ready\n"
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")  # what register_method accepts


@dataclass
class CheckJob:
    """One conformance rule for one plug-in, run in a fresh child of a worker."""
    family: str
    name: str
    folder: str | None
    rule: str
    params: dict[str, Any] | None = None
    time_limit: float | None = None
    memory_limit: int | None = None


@dataclass
class DescribeJob:
    """Import a plug-in folder (in a child, never in the runner) and describe what it registers."""
    folder: str
    time_limit: float | None = 60.0
    memory_limit: int | None = 4096


def frame(payload: bytes) -> bytes:
    return struct.pack("<Q", len(payload)) + payload


def read_exact(stream: BinaryIO, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def read_request(stream: BinaryIO) -> Any:
    """The next request (pickled by the runner: this direction is trusted), or None at end of input."""
    header = read_exact(stream, 8)
    if header is None:
        return None
    payload = read_exact(stream, struct.unpack("<Q", header)[0])
    return None if payload is None else pickle.loads(payload)


def on_host(request: Any) -> Any:
    """The request with its tensors in host memory: unpickling a CUDA tensor would initialise CUDA in
    the template, and a CUDA context does not survive fork. The child moves them to the job's device."""
    return request.on_host() if isinstance(request, Job) else request


def result_limit(request: Any) -> int:
    """The most bytes a request's result may take (a job's: its outputs in float64, plus headroom)."""
    return request.result_bytes() if isinstance(request, Job) else 2**24


def _message(header: dict[str, Any], arrays: Sequence[np.ndarray] = ()) -> bytes:
    text = json.dumps(header).encode()
    blobs = []
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        blobs.append(buffer.getvalue())
    return b"".join(frame(part) for part in [text, *blobs])


def encode_outcomes(outcomes: list[Outcome]) -> bytes:
    arrays, items = [], []
    for outcome in outcomes:
        translated = outcome.translated
        if translated is not None:
            translated = translated.detach().cpu()
            arrays.append((translated if translated.dtype in (torch.float32, torch.float64)
                           else translated.float()).numpy())
        items.append({"error": outcome.error, "fit_seconds": outcome.fit_seconds, "fit_cells": outcome.fit_cells,
                      "transform_seconds": outcome.transform_seconds, "translated": translated is not None})
    return _message({"kind": "outcomes", "outcomes": items}, arrays)


def encode_checks(results: list[CheckResult]) -> bytes:
    return _message({"kind": "checks", "results": [[r.rule, r.passed, r.message] for r in results]})


def encode_description(plugins: list[dict[str, Any]]) -> bytes:
    return _message({"kind": "described", "plugins": plugins})


def encode_error(error: str) -> bytes:
    return _message({"kind": "error", "error": error})


class ProtocolError(ValueError):
    """A worker's result that is not what the protocol allows (a broken or hostile submission)."""


def decode(payload: bytes) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Parse a worker's result without trusting it: JSON and .npy only, no pickle."""
    parts, offset = [], 0
    while offset < len(payload):
        if offset + 8 > len(payload):
            raise ProtocolError("a truncated part")
        size = struct.unpack_from("<Q", payload, offset)[0]
        if offset + 8 + size > len(payload):
            raise ProtocolError("a truncated part")
        parts.append(payload[offset + 8: offset + 8 + size])
        offset += 8 + size
    if not parts:
        raise ProtocolError("an empty result")
    try:
        header = json.loads(parts[0])
        arrays = [_array(blob) for blob in parts[1:]]
    except ProtocolError:
        raise
    except Exception as error:  # whatever crafted bytes provoke (deep nesting: RecursionError, ...) fails the job only
        raise ProtocolError(f"an unreadable result ({type(error).__name__})") from None
    if not isinstance(header, dict) or not isinstance(header.get("kind"), str):
        raise ProtocolError("a result without a kind")
    return header, arrays


def _array(blob: bytes) -> np.ndarray:
    """A .npy blob whose header promises exactly the bytes that follow (numpy would allocate the
    promised shape before finding out), of a plain numeric dtype."""
    stream = io.BytesIO(blob)
    version = np.lib.format.read_magic(stream)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(stream)
    if (dtype.hasobject or dtype.fields is not None
            or int(np.prod(shape, dtype=object)) * dtype.itemsize != len(blob) - stream.tell()):
        raise ProtocolError("an array whose header does not match its data")
    stream.seek(0)
    return np.load(stream, allow_pickle=False)


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise ProtocolError(f"{what} is not a non-negative number")
    return float(value)


def outcomes_from(
    header: dict[str, Any], arrays: list[np.ndarray], cells: int, shapes: list[tuple[int, int | None]]
) -> list[Outcome]:
    """The job's outcomes, each translated array checked again here: shape, dtype, finiteness."""
    if header["kind"] == "error":
        return [Outcome(None, str(header.get("error"))[:2000]) for _ in range(cells)]
    items = header.get("outcomes")
    if header["kind"] != "outcomes" or not isinstance(items, list) or len(items) != cells:
        raise ProtocolError(f"expected {cells} outcomes")
    outcomes, pending = [], iter(arrays)
    for item, (rows, dim) in zip(items, shapes, strict=True):
        if not isinstance(item, dict):
            raise ProtocolError("an outcome is not an object")
        fit_cells = item.get("fit_cells", 1)
        if isinstance(fit_cells, bool) or not isinstance(fit_cells, int) or not 1 <= fit_cells <= cells:
            raise ProtocolError("fit_cells out of range")
        outcome = Outcome(None, None, _number(item.get("fit_seconds"), "fit_seconds"),
                          _number(item.get("transform_seconds"), "transform_seconds"), fit_cells)
        error = item.get("error")
        if error is not None:
            outcome.error = str(error)[:2000]
        elif item.get("translated") is not True:
            raise ProtocolError("an outcome with neither an error nor an output")
        else:
            array = next(pending, None)
            if array is None or array.dtype not in (np.float32, np.float64) or array.ndim != 2 \
                    or array.shape[0] != rows or (dim is not None and array.shape[1] != dim):
                raise ProtocolError(f"an output that is not a ({rows}, {dim or 'd'}) float array")
            if not np.isfinite(array).all():
                raise ProtocolError("an output with non-finite values")
            outcome.translated = torch.from_numpy(array)
        outcomes.append(outcome)
    return outcomes


# ----------------------------------------------------------------------------- describing plug-ins


def describe_parameters(cls: type) -> list[dict[str, Any]]:
    """__init__'s parameters as data the runner can check task files against: name, default and a
    type from a small closed vocabulary (annotations are never evaluated in the runner)."""
    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]  # the class's own __init__
    except Exception:  # unresolvable annotations: checked as "any"
        hints = {}
    described = []
    for name, parameter in inspect.signature(cls.__init__).parameters.items():  # type: ignore[misc]
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        default = parameter.default
        described.append({"name": name,
                          "default": default if isinstance(default, (bool, int, float, str, type(None))) else None,
                          "has_default": default is not parameter.empty, "type": _type_of(hints.get(name))})
    return described


def _type_of(annotation: Any) -> dict[str, Any]:
    nullable, choices = False, None
    args = typing.get_args(annotation)
    if annotation is not None and type(None) in args:  # X | None, Optional[X]
        nullable = True
        rest = [a for a in args if a is not type(None)]
        annotation = rest[0] if len(rest) == 1 else None
    if typing.get_origin(annotation) is Literal:
        choices = [c for c in typing.get_args(annotation) if isinstance(c, (bool, int, float, str))]
        return {"kind": "choice", "choices": choices, "nullable": nullable}
    kinds = {bool: "bool", int: "int", float: "float", str: "str"}
    return {"kind": kinds.get(annotation, "any"), "choices": None, "nullable": nullable}


def annotation_of(described: dict[str, Any]) -> Any:
    """The Python annotation for a described type, built from the closed vocabulary only."""
    kind = described.get("kind")
    # a kind that is missing (None) or unknown gives Any
    annotation: Any = {"bool": bool, "int": int, "float": float, "str": str}.get(kind, Any)  # type: ignore[arg-type]
    if kind == "choice" and described.get("choices"):
        annotation = Literal[tuple(described["choices"])]
    return annotation | None if described.get("nullable") and annotation is not Any else annotation


@dataclass(frozen=True)
class Described:
    family: str
    name: str
    error: str | None
    params: list[dict[str, Any]]
    takes_seed: bool
    batches: bool
    pairings: tuple[str, ...] = ("paired",)  # bench.method.declared_pairings

    @classmethod
    def broken(cls, name: str, error: str, family: str = "method") -> Described:
        """A plug-in that fails its own cells with `error` (it could not be imported or described)."""
        return cls(family, name, error, [], False, False)


def descriptions_from(header: dict[str, Any], folder: Path) -> list[Described]:
    """The plug-ins a worker described, each checked against the closed vocabulary of
    describe_parameters; a malformed one is a broken plug-in, never an exception in the runner."""
    if header["kind"] == "error":
        return [Described.broken(folder.name, str(header.get("error"))[:2000])]
    plugins = header.get("plugins")
    if header["kind"] != "described" or not isinstance(plugins, list):
        raise ProtocolError("expected a description")
    described = []
    for plugin in plugins:
        try:
            described.append(_described(plugin))
        except (ProtocolError, KeyError, TypeError, ValueError) as error:
            return [Described.broken(folder.name, f"protocol: the worker described its plug-ins malformedly ({error})")]
    return described


def _described(plugin: Any) -> Described:
    if (not isinstance(plugin, dict) or plugin.get("family") not in FAMILIES
            or not isinstance(plugin.get("name"), str)):
        raise ProtocolError("a plug-in without a family or a name")
    if not NAME.fullmatch(plugin["name"]):
        raise ProtocolError(f"plug-in name {plugin['name'][:80]!r} is not lowercase letters, digits, '-', '_' or '.'")
    if (not isinstance(plugin.get("params"), list)
            or not all(isinstance(plugin.get(k), bool) for k in ("takes_seed", "batches"))):
        raise ProtocolError("a plug-in without parameters or flags")
    pairings = plugin.get("pairings")
    if not (isinstance(pairings, list) and "paired" in pairings and set(pairings) <= set(PAIRINGS)):
        raise ProtocolError("a plug-in whose pairings are not protocols of bench.method.PAIRINGS")
    error = plugin.get("error")
    return Described(plugin["family"], plugin["name"], None if error is None else str(error)[:2000],
                     [_parameter(p) for p in plugin["params"]], plugin["takes_seed"], plugin["batches"],
                     tuple(p for p in PAIRINGS if p in pairings))


SCALARS = (bool, int, float, str, type(None))


def _parameter(p: Any) -> dict[str, Any]:
    kind = p.get("type") if isinstance(p, dict) else None
    if not (isinstance(p, dict) and isinstance(p.get("name"), str) and p["name"].isidentifier() and p["name"] != "self"
            and isinstance(p.get("default"), SCALARS) and isinstance(p.get("has_default"), bool)
            and isinstance(kind, dict)
            and kind.get("kind") in ("bool", "int", "float", "str", "any", "choice")
            and isinstance(kind.get("nullable"), bool)
            and (kind.get("choices") is None or (isinstance(kind["choices"], list)
                                                 and all(isinstance(c, SCALARS[:4]) for c in kind["choices"])))):
        raise ProtocolError("a malformed parameter")
    return {"name": p["name"], "default": p["default"], "has_default": p["has_default"],
            "type": {"kind": kind["kind"], "choices": kind.get("choices"), "nullable": kind["nullable"]}}


def check_result_from(header: dict[str, Any], rule: str) -> CheckResult:
    if header["kind"] == "error":
        return CheckResult(rule, False, str(header.get("error"))[:2000])
    items = header.get("results")
    if header["kind"] != "checks" or not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], list) \
            or len(items[0]) != 3 or items[0][0] != rule or not isinstance(items[0][1], bool):
        raise ProtocolError("a malformed rule result")
    return CheckResult(rule, items[0][1], str(items[0][2])[:2000])
