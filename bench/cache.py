"""Content-addressed disk cache for embeddings and trained weights.

A key is the sha256 of everything that determines the content (encoder id and weights hash,
data set content hash, split, preprocessing, code version), never of names alone. Each file
starts with the sha256 of its payload, so a truncated or corrupted file is detected, reported
with its path and recomputed.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CHECKSUM_BYTES = 64  # hex sha256 header


def cache_dir() -> Path:
    """BENCH_CACHE if set, else the user cache directory (~/.cache/latent-bench on Linux)."""
    if "BENCH_CACHE" in os.environ:
        return Path(os.environ["BENCH_CACHE"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("latent-bench"))


def cache_key(**parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class CorruptCacheWarning(UserWarning):
    pass


def _read(path: Path) -> bytes | None:
    if not path.exists():
        return None
    blob = path.read_bytes()
    checksum, payload = blob[:CHECKSUM_BYTES], blob[CHECKSUM_BYTES:]
    if hashlib.sha256(payload).hexdigest().encode() != checksum:
        warnings.warn(f"corrupt cache file {path} (checksum mismatch); recomputing", CorruptCacheWarning, stacklevel=3)
        return None
    return payload


def _write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(hashlib.sha256(payload).hexdigest().encode() + payload)
    os.replace(tmp, path)  # atomic: readers see the old file or the new one, never half of one


def cached_bytes(key: str, suffix: str, compute: Callable[[], bytes]) -> bytes:
    path = cache_dir() / key[:2] / f"{key}{suffix}"
    payload = _read(path)
    if payload is None:
        payload = compute()
        _write(path, payload)
    return payload


def cached_array(key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    def compute_bytes() -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(compute()), allow_pickle=False)
        return buffer.getvalue()

    return np.load(io.BytesIO(cached_bytes(key, ".npy", compute_bytes)), allow_pickle=False)


def entries() -> list[Path]:
    root = cache_dir()
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def clear() -> int:
    removed = 0
    for path in entries():
        path.unlink()
        removed += 1
    return removed
