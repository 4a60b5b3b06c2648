"""The merger contract: the second plug-in family, run by merging tasks (bench/kinds/merging.py:
"From Charts to Atlas", arXiv 2311.06547): the fit split is cut into parts, one encoder is
trained per part, and a merger fuses their spaces into one, scored against an encoder trained end
to end on the whole fit split.

A merger follows scikit-learn's estimator rules, like a method:

    merger = SomeMerger(**hyperparameters)
    merger.fit([A_1, ..., A_k])             # (n, d_i): the same n anchor samples in each part's space
    Z = merger.transform([X_1, ..., X_k])   # (m, d_i) each -> (m, d_out): one merged row per sample

Mergers live in mergers/<name>/ (a module calling @register_merger, and a card.yaml). A merger
sees anchors and embeddings only: never labels, the end-to-end space or a decoder.

The partitions, cells and scores are bench/kinds/merging.py's.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sklearn.base import BaseEstimator
from torch import Tensor

from bench.method import REPO_ROOT, MethodInfo, build_method, loading_folder, register_folder
from bench.registry import Registry


class Merger(BaseEstimator):
    """Base class of mergers. Subclasses implement fit and transform."""

    def fit(self, anchors: list[Tensor]) -> Merger:  # k tensors of (n, d_i)
        raise NotImplementedError

    def transform(self, spaces: list[Tensor]) -> Tensor:  # k tensors of (m, d_i) -> (m, d_out)
        raise NotImplementedError


class UnimportableMerger(Merger):
    """Stands in for a merger folder whose modules fail to import (see MethodInfo.error)."""


MERGERS: Registry[MethodInfo] = Registry("merger")


def register_merger(name: str) -> Callable[[type], type]:
    """Class decorator: `@register_merger("rlsa")` makes a Merger subclass available by name."""

    def decorator(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Merger)):
            raise TypeError(f"@register_merger({name!r}) must decorate a subclass of bench.merging.Merger")
        MERGERS.add(name, MethodInfo(name, cls, loading_folder()))
        return cls

    return decorator


def mergers_dir() -> Path:
    return Path(os.environ.get("BENCH_MERGERS", REPO_ROOT / "mergers"))


def _discover() -> None:
    root = mergers_dir()
    for folder in (sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
                   if root.is_dir() else []):
        register_folder(folder, MERGERS, UnimportableMerger)


MERGERS.add_loader(_discover)


def build_merger(name: str, params: dict[str, Any] | None = None, seed: int | None = None) -> Merger:
    return build_method(name, params, seed, registry=MERGERS)
