"""The method contract: what a translation method is, how it is registered and found.

A method follows scikit-learn's estimator rules with torch tensors inside:

    method = SomeMethod(**hyperparameters)     # stored unchanged, so get_params/clone/repr work
    method.fit(X_anchors, Y_anchors)           # (n, dx), (n, dy) paired anchors -> returns self
    Y_hat = method.transform(X)                # (m, dx) -> (m, dy), same device and dtype as X
    fitted = method.fit_many(Xs, Ys)           # k anchor sets -> k fitted clones (optional override)
    method.fit_unpaired(X, Y, known=k)         # (n, dx), (n', dy), only the first k rows paired (optional)

Fitted state lives in attributes ending in "_". A method never sees labels, decoders or the
target's evaluation embeddings: the runner hands it the anchors and the source embeddings only.

Correspondence protocols (a task's `anchors.pairing`, bench/task.py): every method fits `paired`
anchors with fit, and `noisy` ones too (a fraction of the pairs mismatched, which the method is not
told). A method that can also learn from anchors without a full correspondence declares it in
`pairings` and implements fit_unpaired: `partial` (k known pairs, then unpaired rows from each
side) and `unpaired` (no pair known, k = 0). The runner gives a method only the protocols it
declares, so a paired method never silently scores noise on unpaired anchors.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import inspect
import os
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from bench.registry import Registry

REPO_ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINT_GROUP = "bench.methods"
# what a method may declare in `pairings`: "paired" (fit; noisy anchors too), and the protocols fit_unpaired serves
PAIRINGS = ("paired", "partial", "unpaired")


class Method(BaseEstimator):
    """Base class of translation methods. Subclasses implement fit and transform.

    The contract (checked by `bench check`, bench/checks.py): __init__ takes the hyperparameters
    as keyword arguments and stores each unchanged under its own name; fit(X, Y) learns from
    paired anchors X (n, dx) and Y (n, dy) into attributes ending in "_" and returns self;
    transform(X) maps (m, dx) to (m, dy) on X's device, each row independently of the others.

    >>> class Scaled(Method):
    ...     def __init__(self, alpha: float = 1.0):
    ...         self.alpha = alpha
    ...     def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "Scaled":
    ...         self.map_ = torch.linalg.lstsq(X, Y).solution  # (dx, dy)
    ...         return self
    ...     def transform(self, X: torch.Tensor) -> torch.Tensor:
    ...         self._check_fitted()
    ...         return self.alpha * X @ self.map_
    >>> X = torch.eye(3)
    >>> Scaled(alpha=0.5).fit(X, 2 * X).transform(torch.ones(1, 3))
    tensor([[1., 1., 1.]])
    >>> Scaled().get_params()  # sklearn's, from __init__'s signature
    {'alpha': 1.0}
    >>> Scaled().transform(X)
    Traceback (most recent call last):
    ...
    sklearn.exceptions.NotFittedError: Scaled.transform called before fit
    """

    pairings: ClassVar[frozenset[str]] = frozenset({"paired"})  # the protocols it fits (PAIRINGS)

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> Method:  # (n, dx), (n, dy)
        raise NotImplementedError

    def fit_unpaired(self, X: torch.Tensor, Y: torch.Tensor, known: int = 0) -> Method:  # (n, dx), (n', dy)
        """Learn from the two spaces' samples when not every row has a known partner: rows i < known
        of X and Y are pairs (the same sample), the other rows of each side are samples of their own,
        in no particular order and with no partner given (known = 0: the `unpaired` protocol). Only
        called on a method whose `pairings` declare `partial` (known > 0) or `unpaired`; returns self."""
        raise NotImplementedError(f"{type(self).__name__} declares no unpaired protocol (pairings)")

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        raise NotImplementedError

    def fit_many(self, Xs: list[torch.Tensor], Ys: list[torch.Tensor]) -> list[Method]:
        """One fitted clone per anchor set: fitted[i] behaves as clone(self).fit(Xs[i], Ys[i]).

        A method that overrides it (and takes no seed: see fits_in_batches) gets, in one call,
        the cells that share a source, a target, its parameters and the anchor count; only the
        anchor seeds differ (Xs[i] is (n, dx), Ys[i] is (n, dy)). This default fits clones one
        after another. Override it to share work, e.g. one batched decomposition (ortho). The
        fit_many rule of `bench check` holds an override to this default's results, and the
        runner refits one cell of every batch alone to compare.
        """
        return [clone(self).fit(X, Y) for X, Y in zip(Xs, Ys, strict=True)]

    def fit_transform(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return self.fit(X, Y).transform(X)

    def _check_fitted(self) -> None:
        """Raise sklearn's NotFittedError, with the method's name, when transform precedes fit."""
        try:
            check_is_fitted(self)
        except NotFittedError as error:
            raise NotFittedError(f"{type(self).__name__}.transform called before fit") from error


@dataclass
class MethodInfo:
    """A registered method: its class and where its source and card live."""

    name: str
    cls: type
    folder: Path | None  # submissions/<name>/ for in-tree submissions, else None
    card: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # why the submission could not be imported, if it could not

    @property
    def origin(self) -> str:  # lets the registry refuse one name registered by two classes
        return f"{self.cls.__module__}.{self.cls.__qualname__}"

    @property
    def source_hash(self) -> str:
        """sha256 of the submission's Python source: a changed method gets new result keys."""
        if self.folder is not None:
            files = sorted(self.folder.rglob("*.py"))
            blobs = [p.relative_to(self.folder).as_posix().encode() + p.read_bytes() for p in files]
        else:
            blobs = [inspect.getsource(sys.modules[self.cls.__module__]).encode()]
        return hashlib.sha256(b"\0".join(blobs)).hexdigest()[:16]


METHODS: Registry[MethodInfo] = Registry("method")
_loading_folder: Path | None = None  # set while a submission folder's module is imported


def loading_folder() -> Path | None:
    """The submission folder whose modules are being imported now (None outside load_submission)."""
    return _loading_folder


def register_method(name: str) -> Callable[[type], type]:
    """Class decorator: `@register_method("ortho")` makes a Method subclass available by name.

    In a submission (submissions/<name>/method.py; see the README):

        @register_method("my-method")
        class MyMethod(Method):
            ...

    The runner, `bench check` and task files then find the class by its name:

    >>> info = get_method("ortho")
    >>> info.cls.method_name, issubclass(info.cls, Method)
    ('ortho', True)

    Names are lowercase letters, digits, "-", "_" or ".", so that they are also folder names:

    >>> register_method("My Method")
    Traceback (most recent call last):
    ...
    ValueError: method name 'My Method' must be lowercase letters, digits, '-', '_' or '.'
    """
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
        raise ValueError(f"method name {name!r} must be lowercase letters, digits, '-', '_' or '.'")

    def decorator(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"@register_method({name!r}) must decorate a subclass of bench.Method")
        cls.method_name = name
        METHODS.add(name, MethodInfo(name, cls, _loading_folder))
        return cls

    return decorator


class SubmissionError(Exception):
    """A submission folder that cannot be imported; the message names the file and the cause."""


class Unimportable(Method):
    """Stands in for a submission whose modules fail to import (see MethodInfo.error)."""


def load_submission(folder: Path, registry: Registry | None = None) -> list[str]:
    """Import every module of submissions/<name>/ and return the names it registered in `registry`
    (METHODS by default; bench.merging.MERGERS for a merger's folder)."""
    registry = METHODS if registry is None else registry
    global _loading_folder
    folder = Path(folder).resolve()
    _loading_folder = folder
    package = re.sub(r"\W", "_", folder.name)  # outside the f-string: a backslash there needs Python 3.12
    # pickle finds a class by importing its module, which needs the parent packages in sys.modules
    _ensure_package("bench_submissions", [])
    _ensure_package(f"bench_submissions.{package}", [str(folder)])
    try:
        for path in sorted(folder.glob("*.py")):
            module_name = f"bench_submissions.{package}.{path.stem}"
            if module_name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None  # a .py file always has a source loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as error:  # any failure of third-party code is reported, not raised raw
                del sys.modules[module_name]
                raise SubmissionError(f"{path}: cannot import: {type(error).__name__}: {error}") from error
    finally:
        _loading_folder = None
    # by folder, not by difference: a folder imported before (e.g. by discovery) still reports its names
    added = sorted(name for name, info in registry.loaded().items() if info.folder == folder)
    card = read_card(folder)
    for name in added:
        registry.update(name, card=card)
    return added


def _ensure_package(name: str, path: list[str]) -> None:
    if name not in sys.modules:
        package = types.ModuleType(name)
        package.__path__ = path  # a package, so that its submodules can be looked up
        sys.modules[name] = package


def read_card(folder: Path) -> dict[str, Any]:
    import yaml

    path = folder / "card.yaml"
    if not path.exists():
        return {}
    try:
        card = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SubmissionError(f"{path}: not valid YAML: {error}") from error
    return card if isinstance(card, dict) else {}


def submissions_dir() -> Path:
    return Path(os.environ.get("BENCH_SUBMISSIONS", REPO_ROOT / "submissions"))


def register_folder(folder: Path, registry: Registry | None = None, stand_in: type = Unimportable) -> list[str]:
    """load_submission, except that a broken submission is registered under its folder's name
    with the import error, so that it fails its own cells and stops no other method. Folders are
    imported in this process unless import_folders_with chose another way (bench.sandbox: in a worker)."""
    registry = METHODS if registry is None else registry
    if _folder_importer is not None:
        return _folder_importer(Path(folder), registry)
    try:
        return load_submission(folder, registry)
    except SubmissionError as error:
        if registry.registered(folder.name) is None:
            registry.add(folder.name, MethodInfo(folder.name, stand_in, Path(folder).resolve(), error=str(error)))
        return [folder.name]


_folder_importer: Callable[[Path, Registry], list[str]] | None = None


def import_folders_with(importer: Callable[[Path, Registry], list[str]] | None) -> None:
    """Discover plug-in folders through `importer` from now on (None: import them in this process).
    `bench run --executor process|ray` passes bench.sandbox's, so no submitted module is imported
    by the runner itself, not even at discovery."""
    global _folder_importer
    _folder_importer = importer


def _discover() -> None:
    """Load every in-tree submission, then plug-ins registered under the `bench.methods` group."""
    root = submissions_dir()
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            register_folder(folder)
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        entry_point.load()  # importing the module runs its @register_method decorators


METHODS.add_loader(_discover)


def get_method(name: str) -> MethodInfo:
    return METHODS.get(name)


def takes_seed(cls: type) -> bool:
    """Whether the class takes a `seed` parameter: the runner then builds it with the anchor seed."""
    return "seed" in inspect.signature(cls.__init__).parameters  # type: ignore[misc]  # the class's own __init__


def declared_pairings(cls: type) -> list[str]:
    """The protocols of PAIRINGS the class declares in `pairings` (a malformed declaration declares
    none but paired: bench check's pairings rule reports it)."""
    declared = getattr(cls, "pairings", None)
    if not isinstance(declared, (frozenset, set, tuple, list)):
        return ["paired"]
    return [pairing for pairing in PAIRINGS if pairing == "paired" or pairing in declared]


def fits_in_batches(cls: type) -> bool:
    """Whether the runner should hand cls several cells in one fit_many call: only when cls has its
    own fit_many, written for its own fit (a subclass that changes fit but inherits a parent's
    fit_many must not be batched by the parent's code), and no seed (each cell has its own)."""
    def owner(name: str) -> type:
        return next(klass for klass in cls.__mro__ if name in vars(klass))

    try:
        fit_many_owner = owner("fit_many")
        return fit_many_owner is not Method and issubclass(fit_many_owner, owner("fit")) and not takes_seed(cls)
    except (StopIteration, TypeError, ValueError):  # an odd class: never batched, its own cells report its faults
        return False


def build_method(name: str, params: dict[str, Any] | None = None, seed: int | None = None,
                 registry: Registry | None = None) -> Any:
    """Instantiate a registered method (or a merger, from bench.merging.MERGERS); `seed` is passed
    only to those that take one."""
    info = (METHODS if registry is None else registry).get(name)
    if info.error is not None:
        raise SubmissionError(info.error)
    kwargs = dict(params or {})
    if seed is not None and takes_seed(info.cls):
        kwargs.setdefault("seed", seed)
    return info.cls(**kwargs)
