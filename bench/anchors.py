"""Anchor protocols: which fit-split samples are the paired anchors of a cell.

Anchors are drawn from the fit split only, so they never overlap the evaluation split; the
draw depends on (protocol, count, seed) and, for the geometric protocols, on the source
encoder's embeddings of the fit split; every method of a cell sees the same anchors.

- uniform: a seeded uniform draw without replacement;
- stratified: class proportions of the fit split kept (a seeded stratified draw);
- kmeans: k-means (k = n, seeded) on the source embeddings of the pool; the anchor of each
  centroid is the pool sample nearest to it (distinct samples);
- farthest: greedy farthest-point sampling in the source space from a seeded first sample.
"""
from __future__ import annotations

import hashlib

import numpy as np
from sklearn.model_selection import train_test_split

from bench.threads import one_thread

SAMPLINGS = ("uniform", "stratified", "kmeans", "farthest")
GEOMETRIC = ("kmeans", "farthest")  # these need the source embeddings of the pool


def sample_anchors(pool: np.ndarray, labels: np.ndarray, n: int, seed: int, sampling: str,
                   features: np.ndarray | None = None) -> np.ndarray:
    """(n,) sample indices taken from `pool` (the fit split's indices).

    `labels` and `features` ((N, d) source embeddings, for kmeans/farthest) are indexed like the data set.
    """
    if n > len(pool):
        raise ValueError(f"{n} anchors requested but the fit split has only {len(pool)} samples")
    if sampling == "uniform":
        return np.random.default_rng(seed).choice(pool, size=n, replace=False)
    if sampling == "stratified":
        if n == len(pool):
            return np.random.default_rng(seed).permutation(pool)
        chosen, _ = train_test_split(pool, train_size=n, stratify=labels[pool], random_state=seed)
        return chosen
    if sampling in GEOMETRIC:
        if features is None:
            raise ValueError(f"anchor sampling {sampling!r} needs the source embeddings")
        points = features[pool].astype(np.float64)  # (p, d)
        chosen = _kmeans_nearest(points, n, seed) if sampling == "kmeans" else _farthest_points(points, n, seed)
        return pool[chosen]
    raise ValueError(f"unknown anchor sampling {sampling!r} (known: {', '.join(SAMPLINGS)})")


def anchor_ids_hash(indices: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]


def _kmeans_nearest(points: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Positions in `points` of the samples nearest each of n k-means centroids, all distinct."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances

    # one BLAS/OpenMP thread, whatever the machine: k-means' reductions may run in another order on
    # another thread count and pick other anchors (the committed kmeans anchors of an earlier session
    # were not what this code gives on this machine on 1, 2, 4 or 8 threads)
    with one_thread():
        centroids = KMeans(n_clusters=n, n_init=1, random_state=seed).fit(points).cluster_centers_  # (n, d)
        distances = pairwise_distances(centroids, points)  # (n, p)
    chosen: list[int] = []
    taken = np.zeros(len(points), dtype=bool)
    for row in distances:  # two centroids may share a nearest sample: take the next nearest free one
        order = np.argsort(row, kind="stable")
        pick = order[~taken[order]][0]
        taken[pick] = True
        chosen.append(int(pick))
    return np.array(chosen)


def _farthest_points(points: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Greedy farthest-point sampling: each next sample maximises its distance to those chosen."""
    chosen = [int(np.random.default_rng(seed).integers(len(points)))]
    nearest = np.linalg.norm(points - points[chosen[0]], axis=1)  # (p,) distance to the chosen set
    for _ in range(n - 1):
        nearest[chosen] = -1.0
        chosen.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return np.array(chosen)
