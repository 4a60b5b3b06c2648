"""Ill-determined fits have one canonical answer (issue 16).

With fewer anchors than dimensions, or duplicated anchors, the least-squares and Procrustes
problems have many solutions, and which one LAPACK returns depends on rounding: on the number of
torch threads, on the order of the anchors, on float32 noise. Every built-in method must give the
same translation whatever those are (well below the 1e-5 relative tolerance of `bench compare`),
and the answer it gives is the documented rule, checked here against numpy/scipy by hand.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import scipy.linalg
import torch

from bench.method import get_method
from bench.preprocessing import rank_tolerance

METHODS = ["ortho", "l-ortho", "linear", "affine", "ridge", "cca", "irp", "mlp", "random-ortho", "absolute"]
# no folds, no seeded split: the order of the anchors must not change anything these fit
ORDER_FREE = {"ortho", "l-ortho", "linear", "affine", "cca", "random-ortho", "absolute"}
SAME = 1e-7  # relative: what "the same translation" means here, far below bench compare's 1e-5
NEAR = 1e-6  # relative, for inputs changed by 1e-7: a fit's honest response to them is of that order
M_EVAL = 200
RTOL = 100 * float(np.finfo(np.float32).eps)  # the documented cut: singular values at or below it (relative) are zero


def embeddings(n: int, dx: int, dy: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, dx), (n, dy) float32 pairs that look like real encoders' latents: ReLU features with
    offsets and unequal scales on one side, tanh features on the other, both driven by shared factors."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 6))  # (n, 6) what the two encoders both see
    X = np.maximum(Z @ rng.standard_normal((6, dx)) + 0.5 * rng.standard_normal((n, dx)) + 0.5, 0)  # (n, dx)
    X = X * rng.uniform(0.2, 5.0, dx) + rng.uniform(-2, 2, dx)
    Y = np.tanh(Z @ rng.standard_normal((6, dy)) / 2) + 0.2 * rng.standard_normal((n, dy)) + 3.0  # (n, dy)
    return torch.from_numpy(X.astype(np.float32)), torch.from_numpy(Y.astype(np.float32))


def anchors_and_eval(case: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Anchors X (n, dx), Y (n, dy) and evaluation rows (m, dx) of the same source: n below the width,
    n at the width (rank n - 1 after centring), 16 distinct anchors four times over, or n = 500."""
    n, dx, dy = {"16-of-32to64": (16, 32, 64), "16-of-64to32": (16, 64, 32), "64-of-64to64": (64, 64, 64),
                 "duplicated": (16, 32, 64), "500-of-32to64": (500, 32, 64)}[case]
    X, Y = embeddings(n + M_EVAL, dx, dy, seed=dx + dy)
    X_anchors, Y_anchors = X[:n], Y[:n]
    if case == "duplicated":  # 64 anchors, 16 distinct: n above both widths, rank 15 all the same
        X_anchors, Y_anchors = X_anchors.repeat(4, 1), Y_anchors.repeat(4, 1)
    return X_anchors, Y_anchors, X[n:]


CASES = ["16-of-32to64", "16-of-64to32", "64-of-64to64", "duplicated"]
WELL_DETERMINED = "500-of-32to64"  # for contrast: these fits were reproducible before, and stay so


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def translate(name: str, X: torch.Tensor, Y: torch.Tensor, X_eval: torch.Tensor) -> torch.Tensor:  # -> (m, dy)
    return get_method(name).cls().fit(X, Y).transform(X_eval)


def relative_difference(A: torch.Tensor, B: torch.Tensor) -> float:
    return float((A.double() - B.double()).norm() / B.double().norm())


# --------------------------------------------------------------------------- (a) one answer, however it is computed


@pytest.mark.parametrize("case", [*CASES, WELL_DETERMINED])
@pytest.mark.parametrize("name", METHODS)
def test_a_fit_does_not_depend_on_the_thread_count(name, case):
    X, Y, X_eval = anchors_and_eval(case)
    with torch_threads(1):
        one = translate(name, X, Y, X_eval)
    with torch_threads(2):
        two = translate(name, X, Y, X_eval)
    assert relative_difference(two, one) < SAME


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", METHODS)
def test_an_ill_determined_fit_does_not_depend_on_rounding_noise_or_the_anchor_order(name, case):
    """Anchor order is irrelevant to the methods without folds or a seeded split: permuting the rows
    must change nothing. The others (whose cross-validation folds or hold-out follow the order)
    are held to a relative perturbation of 1e-7 of the source anchors: float32 rounding noise.
    mlp is held to it without its Adam epochs (its ridge start): float32 Adam follows the sign of
    gradients that are exactly zero at that start (the bias's), so training amplifies a 1e-7
    change of its input to about 1e-3 whatever the anchors; it is pinned to one thread, so the
    thread count cannot change it (previous test)."""
    X, Y, X_eval = anchors_and_eval(case)
    params = {"max_epochs": 0} if name == "mlp" else {}
    with torch_threads(1):
        reference = get_method(name).cls(**params).fit(X, Y).transform(X_eval)
        if name in ORDER_FREE:
            order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
            perturbed = get_method(name).cls(**params).fit(X[order], Y[order]).transform(X_eval)
            tolerance = SAME
        else:
            noise = torch.randn(X.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
            X_noisy = (X.double() * (1 + 1e-7 * noise)).float()
            perturbed = get_method(name).cls(**params).fit(X_noisy, Y).transform(X_eval)
            tolerance = NEAR
    assert relative_difference(perturbed, reference) < tolerance


@pytest.mark.parametrize("name", sorted(ORDER_FREE))
def test_duplicating_every_anchor_changes_no_fit(name):
    """Four copies of 16 anchors carry what the 16 do: same statistics, same span, same correspondence."""
    X, Y, X_eval = anchors_and_eval("16-of-32to64")
    with torch_threads(1):
        once = translate(name, X, Y, X_eval)
        four_times = translate(name, X.repeat(4, 1), Y.repeat(4, 1), X_eval)
    assert relative_difference(four_times, once) < SAME


# --------------------------------------------------------------------------- (b) the canonical answer, by hand


def standardised(Z: torch.Tensor, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 standard scaling with the anchors' own statistics, zero-padded to `width` columns:
    (n, k) -> (n, width), and the (k,) mean and std that undo it."""
    Z64 = Z.numpy().astype(np.float64)
    mean, std = Z64.mean(axis=0), Z64.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    scaled = (Z64 - mean) / std
    return np.hstack([scaled, np.zeros((len(Z), width - Z.shape[1]))]), mean, std


def span(Z: np.ndarray) -> np.ndarray:  # (n, k) -> (k, r)
    """The directions in which Z's singular values exceed RTOL times the largest."""
    _, s, Vt = np.linalg.svd(Z, full_matrices=False)
    return Vt[s > RTOL * s[0]].T


def polar_on_spans(M: np.ndarray, Vx: np.ndarray, Vy: np.ndarray) -> np.ndarray:  # (p, q) -> (p, q)
    """Vx Q Vy^T with Q = U W^T, the orthogonal factor of M restricted to the spans: a partial isometry."""
    U, _, Wt = np.linalg.svd(Vx.T @ M @ Vy, full_matrices=False)
    return Vx @ U @ Wt @ Vy.T


def reference_translation(name: str, X: torch.Tensor, Y: torch.Tensor, X_eval: torch.Tensor) -> np.ndarray:
    """Each least-squares or Procrustes method's canonical rule, written out with numpy in float64."""
    n, dx, dy = len(X), X.shape[1], Y.shape[1]
    d = max(dx, dy)
    Xp, x_mean, x_std = standardised(X, d)  # (n, d)
    Yp, y_mean, y_std = standardised(Y, d)  # (n, d)
    Xe = np.hstack([(X_eval.numpy() - x_mean) / x_std, np.zeros((len(X_eval), d - dx))])  # (m, d)
    if name == "ortho":  # no padding needed: zero columns add nothing to the span or the cross-product
        Z = Xe @ polar_on_spans(Xp.T @ Yp, span(Xp), span(Yp))
    elif name == "linear":
        Z = Xe @ np.linalg.pinv(Xp, rcond=RTOL) @ Yp
    elif name == "l-ortho":
        Z = Xe @ polar_on_spans(np.linalg.pinv(Xp, rcond=RTOL) @ Yp, span(Xp), span(Yp))
    elif name == "affine":
        A = np.hstack([Xp, np.ones((n, 1))])  # (n, d + 1)
        theta = np.linalg.pinv(A, rcond=RTOL) @ Yp  # (d + 1, d)
        Z = Xe @ theta[:-1] + theta[-1]
    return Z[:, :dy] * y_std + y_mean  # (m, dy) raw target space


@pytest.mark.parametrize("case", [*CASES, WELL_DETERMINED])
@pytest.mark.parametrize("name", ["ortho", "linear", "l-ortho", "affine"])
def test_the_canonical_answer_is_the_documented_rule(name, case):
    """ortho and l-ortho: the orthogonal factor on the directions the anchors span (singular values
    above 100 float32 eps of the largest), zero elsewhere; linear and affine: the minimum-norm
    least-squares solution with that cut (numpy's pinv); all on float64-standardised, zero-padded
    anchors."""
    X, Y, X_eval = anchors_and_eval(case)
    with torch_threads(1):
        translated = translate(name, X, Y, X_eval)
    assert relative_difference(translated, torch.from_numpy(reference_translation(name, X, Y, X_eval))) < 1e-5


def test_ridge_without_a_penalty_is_the_minimum_norm_affine_fit():
    X, Y, X_eval = anchors_and_eval("16-of-32to64")
    with torch_threads(1):
        translated = get_method("ridge").cls(alphas=(0.0,)).fit(X, Y).transform(X_eval)
    Xp, x_mean, x_std = standardised(X, X.shape[1])  # (n, dx) centred, no padding
    Yp, y_mean, y_std = standardised(Y, Y.shape[1])
    W = np.linalg.pinv(Xp, rcond=RTOL) @ Yp  # (dx, dy); centred, so the bias is 0
    expected = ((X_eval.numpy() - x_mean) / x_std) @ W * y_std + y_mean
    assert relative_difference(translated, torch.from_numpy(expected)) < 1e-5


def test_cca_drops_the_components_of_zero_correlation():
    """Duplicated anchors span 15 directions: components 16 to 32 have no correlation and no defined
    direction, so they get zero weights, whatever LAPACK put in those columns."""
    X, Y, _ = anchors_and_eval("duplicated")
    method = get_method("cca").cls().fit(X, Y)
    assert method.x_weights_.shape == (32, 32)
    assert (method.correlations_[:15] > 0.1).all() and torch.equal(method.correlations_[15:], torch.zeros(17))
    assert torch.equal(method.x_weights_[:, 15:], torch.zeros(32, 17))
    assert torch.equal(method.y_weights_[:, 15:], torch.zeros(64, 17))
    # the others have a sign fixed by the data, not by LAPACK's path: reordering the anchors keeps it
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    reordered = get_method("cca").cls().fit(X[order], Y[order])
    assert relative_difference(reordered.x_weights_, method.x_weights_) < 1e-6


def test_rank_tolerance_is_a_hundred_eps_of_the_input():
    assert rank_tolerance(torch.float32) == RTOL
    assert rank_tolerance(torch.float64) == 100 * float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------- (c) well-determined fits unchanged


def test_ortho_with_many_anchors_is_still_scipys_orthogonal_procrustes():
    """The fast path (float32, one batched SVD) on a full-rank fit: the paper's Procrustes, to the
    precision float32 gives its weakest directions."""
    X, Y = embeddings(2000, 32, 64, seed=1)
    Xp, _, _ = standardised(X, 64)
    Yp, y_mean, y_std = standardised(Y, 64)
    R, _ = scipy.linalg.orthogonal_procrustes(Xp, Yp)  # (64, 64) on the paper's zero-padded anchors
    method = get_method("ortho").cls().fit(X, Y)
    assert method.map_.dtype == torch.float32
    # float32 places the weakest directions (singular values ~1e-3 of the largest here) to ~eps / 1e-3
    assert relative_difference(method.map_, torch.from_numpy(R[:32])) < 1e-4
    expected = (Xp[:50] @ R) * y_std + y_mean  # (50, 64)
    assert relative_difference(method.transform(X[:50]), torch.from_numpy(expected)) < 1e-5


def test_linear_with_many_anchors_is_still_plain_least_squares():
    X, Y = embeddings(2000, 32, 64, seed=1)
    Xp, _, _ = standardised(X, 64)
    Yp, y_mean, y_std = standardised(Y, 64)
    W = np.linalg.lstsq(Xp[:, :32], Yp, rcond=None)[0]  # (32, 64) LAPACK's default cut: full rank, nothing cut
    expected = Xp[:50, :32] @ W * y_std + y_mean
    translated = get_method("linear").cls().fit(X, Y).transform(X[:50])
    assert relative_difference(translated, torch.from_numpy(expected)) < 1e-5


def test_ortho_fit_many_routes_each_cell_as_its_fit_would():
    """One batch with a well-determined cell, one of n < d and one of duplicated anchors: the batched
    SVD keeps the first, the canonical path takes the others, and each equals its own fit."""
    sets = [embeddings(500, 32, 64, seed=3), anchors_and_eval("16-of-32to64")[:2], anchors_and_eval("duplicated")[:2]]
    Xs, Ys = [X for X, _ in sets], [Y for _, Y in sets]
    fitted = get_method("ortho").cls().fit_many(Xs, Ys)
    for method, X, Y in zip(fitted, Xs, Ys):
        alone = get_method("ortho").cls().fit(X, Y)
        assert relative_difference(method.map_, alone.map_) < SAME
    ranks = [int((torch.linalg.svdvals(m.map_) > 0.5).sum()) for m in fitted]  # singular values 1 or 0
    assert ranks == [32, 15, 15]  # orthogonal (32 orthonormal rows), then partial isometries of rank n - 1


def test_cca_falls_back_to_gesvd_when_gesdd_does_not_converge(monkeypatch):
    """gesdd failed once on one thread (a Fashion-MNIST null); the fallback gives the same fit."""
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(80, 12, generator=g), torch.randn(80, 9, generator=g)
    X[:, :9] += Y
    cca = get_method("cca").cls
    expected = cca().fit(X, Y).transform(X)

    def not_converging(*args: object, **kwargs: object) -> None:
        raise torch.linalg.LinAlgError("linalg.svd: The algorithm failed to converge (error code: 1).")

    monkeypatch.setattr(torch.linalg, "svd", not_converging)
    torch.testing.assert_close(cca().fit(X, Y).transform(X), expected, rtol=1e-5, atol=1e-6)
