"""fit and transform of every reference method, each timed against the kernel it cannot avoid.

The references are torch kernels only, run on the same thread pool as the methods; comparisons
with other libraries (scipy, latentis) are in test_procrustes.py.
"""
from __future__ import annotations

import pytest
import torch
from perf_data import bare_procrustes, randn, related, shape_id

from bench.method import get_method
from bench.perf import measure

CI = pytest.mark.perf_ci
# (n anchors, dx, dy): few anchors and small encoders, a typical pair, a small encoder into a big one
SHAPES = [(500, 384, 384), (2000, 768, 768), (1000, 384, 1280)]
M_EVAL = 5000  # rows translated by transform


def _lstsq(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:  # (n, p), (n, q) -> (p, q)
    return torch.linalg.lstsq(A, B).solution  # float32, torch's default CPU driver (gelsy)


def _orthogonalised_lstsq(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    U, _, Vh = torch.linalg.svd(_lstsq(X, Y), full_matrices=False)
    return U @ Vh


# name -> (what the bare kernel computes, a function of X, Y returning it)
FIT_REFERENCES = {
    "absolute": ("an empty Python call", lambda X, Y: None),
    "linear": ("lstsq(X, Y), float32", _lstsq),
    "affine": ("lstsq([X, 1], Y), float32", lambda X, Y: _lstsq(torch.cat([X, torch.ones_like(X[:, :1])], 1), Y)),
    "l-ortho": ("U @ Vh of svd(lstsq(X, Y)), float32", _orthogonalised_lstsq),
    # the floor of the 1.2x target: any Procrustes fit needs X^T Y, its SVD and U @ Vh
    "ortho": ("U @ Vh of svd(X^T Y), float32", bare_procrustes),
}


def _params(names, ci):
    return [
        pytest.param(name, shape, id=f"{name}-{shape_id(*shape)}", marks=[CI] if (name, shape) in ci else [])
        for name in names
        for shape in SHAPES
    ]


@pytest.mark.parametrize("name, shape", _params(FIT_REFERENCES, ci={("linear", (2000, 768, 768)), ("ortho", (2000, 768, 768))}))
def test_fit(benchmark, name, shape):
    X, Y = related(*shape)
    method = get_method(name).cls()
    kernel, reference = FIT_REFERENCES[name]
    benchmark.group = f"fit {shape_id(*shape)}"
    measure(benchmark, lambda: method.fit(X, Y), {"bare": lambda: reference(X, Y)}, kernels={"bare": kernel})


@pytest.mark.parametrize(
    "name, shape",
    _params(["absolute", "linear", "affine", "l-ortho", "ortho"], ci={("ortho", (2000, 768, 768))}),
)
def test_transform(benchmark, name, shape):
    X, Y = related(*shape)
    method = get_method(name).cls().fit(X, Y)
    X_eval = randn(M_EVAL, shape[1], seed=7)  # (m, dx)
    if name == "absolute":  # zero-pads or cuts the columns: its floor is one copy of the input
        kernel, reference = "X.clone()", X_eval.clone
    else:
        W = randn(shape[1], shape[2], seed=8)  # (dx, dy)
        kernel, reference = "X @ W, float32", lambda: X_eval @ W
    benchmark.group = f"transform m{M_EVAL}-{shape[1]}to{shape[2]}"
    measure(benchmark, lambda: method.transform(X_eval), {"bare": reference}, kernels={"bare": kernel})


@pytest.mark.parametrize("dim", [384, 768])
def test_fit_many(benchmark, dim):
    """The cells of one pair in a default-style grid (3 anchor counts x 3 seeds) fitted by one
    fit_many call, against the same nine fits one at a time (what the runner did before)."""
    anchor_sets = [related(n, dim, dim, seed=10 * seed) for n in (500, 1000, 2000) for seed in range(3)]
    Xs, Ys = [X for X, _ in anchor_sets], [Y for _, Y in anchor_sets]
    method = get_method("ortho").cls()
    benchmark.group = f"fit_many 9 cells {dim}to{dim}"
    measure(benchmark, lambda: method.fit_many(Xs, Ys),
            {"one at a time": lambda: [get_method("ortho").cls().fit(X, Y) for X, Y in anchor_sets]},
            kernels={"one at a time": "ortho's fit on each of the 9 anchor sets in a loop"})
