"""Procrustes fit (submissions/ortho) against its floor and against other implementations.

References timed in the same rounds:
- "svd+matmul" (primary): the bare float32 kernel any Procrustes fit needs, on the raw anchors:
  U, S, Vh = svd(X^T Y); R = U @ Vh. The harness's method should cost at most 1.2x this.
- "scipy": scipy.linalg.orthogonal_procrustes on the same float32 arrays (zero-padded to a
  common width when dx != dy, as it requires).
- "latentis": latentis.transform.translate.Procrustes (standard scaling, zero padding, torch
  SVD), the authors' library, when it can be imported (it is not a dependency: see
  docs/performance.md for how to put it on PYTHONPATH).
"""
from __future__ import annotations

import importlib

import pytest
import torch
from perf_data import related, shape_id
from scipy.linalg import orthogonal_procrustes

from bench.method import get_method
from bench.perf import measure

SHAPES = [
    pytest.param((500, 384, 384), id=shape_id(500, 384, 384)),
    pytest.param((2000, 768, 768), id=shape_id(2000, 768, 768), marks=pytest.mark.perf_ci),
    pytest.param((1000, 384, 1280), id=shape_id(1000, 384, 1280)),
    pytest.param((5000, 1280, 1280), id=shape_id(5000, 1280, 1280)),
]


def bare_procrustes(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:  # (n, dx), (n, dy) -> (dx, dy)
    U, _, Vh = torch.linalg.svd(X.T @ Y, full_matrices=False)  # (dx, k), (k,), (k, dy)
    return U @ Vh


def _latentis_procrustes():
    try:
        return importlib.import_module("latentis.transform.translate").Procrustes
    except Exception:  # not installed, or one of its many dependencies missing
        return None


@pytest.mark.parametrize("shape", SHAPES)
def test_procrustes_fit(benchmark, shape):
    X, Y = related(*shape)
    d = max(shape[1], shape[2])
    Xn = torch.nn.functional.pad(X, (0, d - shape[1])).numpy()  # scipy needs equal widths
    Yn = torch.nn.functional.pad(Y, (0, d - shape[2])).numpy()
    references = {"svd+matmul": lambda: bare_procrustes(X, Y), "scipy": lambda: orthogonal_procrustes(Xn, Yn)}
    kernels = {
        "svd+matmul": "U @ Vh, U, S, Vh = torch.linalg.svd(X^T Y), float32",
        "scipy": "scipy.linalg.orthogonal_procrustes(X, Y), float32, zero-padded to equal widths",
    }
    latentis = _latentis_procrustes()
    if latentis is not None:
        references["latentis"] = lambda: latentis().fit(X, Y)
        kernels["latentis"] = "latentis.transform.translate.Procrustes().fit(X, Y)"
    method = get_method("ortho").cls()
    benchmark.group = "procrustes fit"
    # the biggest shape takes seconds a round: 5 rounds still let the U test reach p < 0.01
    measure(benchmark, lambda: method.fit(X, Y), references, kernels=kernels, min_rounds=5 if d >= 1280 else 7)
