"""Anchor protocols: which fit-split samples are the paired anchors of a cell.

Anchors are drawn from the fit split only, so they never overlap the evaluation split; the
draw depends on (protocol, count, seed) and nothing else, so every method of a cell sees the
same anchors.
"""
from __future__ import annotations

import hashlib

import numpy as np
from sklearn.model_selection import train_test_split

SAMPLINGS = ("uniform", "stratified")


def sample_anchors(pool: np.ndarray, labels: np.ndarray, n: int, seed: int, sampling: str) -> np.ndarray:
    """(n,) sample indices taken from `pool` (the fit split's indices); `labels` is indexed like the data set."""
    if n > len(pool):
        raise ValueError(f"{n} anchors requested but the fit split has only {len(pool)} samples")
    if sampling == "uniform":
        return np.random.default_rng(seed).choice(pool, size=n, replace=False)
    if sampling == "stratified":
        if n == len(pool):
            return np.random.default_rng(seed).permutation(pool)
        chosen, _ = train_test_split(pool, train_size=n, stratify=labels[pool], random_state=seed)
        return chosen
    raise ValueError(f"unknown anchor sampling {sampling!r} (known: {', '.join(SAMPLINGS)})")


def anchor_ids_hash(indices: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]
