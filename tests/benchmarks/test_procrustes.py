"""Procrustes fit (submissions/ortho) against its floor and against other implementations.

References timed in the same rounds:
- "svd+matmul" (primary): the bare float32 kernel any Procrustes fit needs, on the raw anchors:
  U, S, Vh = svd(X^T Y); R = U @ Vh. The harness's method should cost at most 1.2x this.
- "scipy": scipy.linalg.orthogonal_procrustes on the same float32 arrays (zero-padded to a
  common width when dx != dy, as it requires).
- "latentis": latentis.transform.translate.Procrustes (standard scaling, zero padding, torch
  SVD), the authors' library, when it can be imported (it is not a dependency: see
  docs/performance.md for how to put it on PYTHONPATH).

scipy runs on numpy's OpenBLAS threads, the rest on torch's OpenMP threads: each kernel waits
SETTLE_S untimed so that neither pool's spinning threads slow the next one (bench.perf.measure).
Not in the CI subset: the gate times ortho's fit in test_methods.py, against torch alone.
"""
from __future__ import annotations

import importlib

import pytest
import torch
from perf_data import bare_procrustes, related, shape_id
from scipy.linalg import orthogonal_procrustes

from bench.method import get_method
from bench.perf import measure

SETTLE_S = 0.25
SHAPES = [(500, 384, 384), (2000, 768, 768), (1000, 384, 1280), (5000, 1280, 1280)]


def _latentis_procrustes():
    try:
        return importlib.import_module("latentis.transform.translate").Procrustes
    except Exception:  # not installed, or one of its many dependencies missing
        return None


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: shape_id(*s))
def test_procrustes_fit(benchmark, shape):
    X, Y = related(*shape)
    d = max(shape[1], shape[2])
    Xn = torch.nn.functional.pad(X, (0, d - shape[1])).numpy()  # scipy needs equal widths
    Yn = torch.nn.functional.pad(Y, (0, d - shape[2])).numpy()
    references = {"svd+matmul": lambda: bare_procrustes(X, Y), "scipy": lambda: orthogonal_procrustes(Xn, Yn)}
    kernels = {
        "svd+matmul": "U @ Vh of torch.linalg.svd(X^T Y), float32",
        "scipy": "scipy.linalg.orthogonal_procrustes(X, Y), float32, zero-padded to equal widths",
    }
    latentis = _latentis_procrustes()
    if latentis is not None:
        references["latentis"] = lambda: latentis().fit(X, Y)
        kernels["latentis"] = "latentis.transform.translate.Procrustes().fit(X, Y), float32"
    method = get_method("ortho").cls()
    benchmark.group = "procrustes fit"
    # 5 rounds still let the U test reach p < 0.01 (1/252), and keep the suite within minutes
    measure(benchmark, lambda: method.fit(X, Y), references, kernels=kernels, min_rounds=5, settle_s=SETTLE_S)
