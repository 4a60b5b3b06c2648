"""Data sets: samples, labels and fixed splits, each with a content hash recorded with results.

A loader returns a Dataset whose splits never change between runs (a seeded, stratified split
stored as index arrays), so every encoder, decoder and anchor draw sees the same partition.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from sklearn.model_selection import train_test_split

from bench.registry import Registry


@dataclass(frozen=True)
class Dataset:
    name: str
    x: np.ndarray  # (n, *sample_shape) float32, e.g. (n, 1, 8, 8) images scaled to [0, 1]
    y: np.ndarray  # (n,) int64 class labels
    splits: dict[str, np.ndarray]  # split name -> sorted sample indices into x
    classes: tuple[str, ...]
    description: str = ""
    content_hash: str = field(default="")

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> np.ndarray:
        if name not in self.splits:
            raise KeyError(f"data set {self.name!r} has no split {name!r} (splits: {', '.join(self.splits)})")
        return self.splits[name]


def content_hash(x: np.ndarray, y: np.ndarray, splits: dict[str, np.ndarray]) -> str:
    """sha256 over the samples, the labels and the split indices: a changed split is a changed data set."""
    digest = hashlib.sha256()
    for array in (x, y, *(splits[name] for name in sorted(splits))):
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    for name in sorted(splits):
        digest.update(name.encode())
    return digest.hexdigest()[:16]


def make_dataset(name: str, x: np.ndarray, y: np.ndarray, splits: dict[str, np.ndarray],
                 classes: tuple[str, ...], description: str = "") -> Dataset:
    splits = {k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in splits.items()}
    return Dataset(name, x, y, splits, classes, description, content_hash(x, y, splits))


DATASETS: Registry[Callable[[], Dataset]] = Registry("dataset")


@functools.lru_cache(maxsize=None)
def load_dataset(name: str) -> Dataset:
    return DATASETS.get(name)()


@DATASETS.register("digits")
def digits() -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 samples, ships inside sklearn).

    Split: a stratified 70/30 train/test split with random_state=0, fixed forever
    (1,257 train, 540 test). Encoders, decoders and anchors use train; scores use test.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    y = bunch.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=0)
    return make_dataset("digits", x, y, {"train": train, "test": test}, tuple(map(str, range(10))),
                        "scikit-learn digits, 8x8 grey images, stratified 70/30 split (random_state=0)")
