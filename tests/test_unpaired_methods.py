"""mini-vec2vec, robust-ortho and absolute's unpaired fit against independent references.

Synthetic spaces where the truth is known: Y = X R for a random orthogonal R, X a mixture of
anisotropic clusters with a decaying spectrum (so that the distribution pins R down). References
are numpy/scipy (scipy.linalg.orthogonal_procrustes), not the methods' own helpers.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes

from bench.method import get_method
from bench.pairing import mismatched

N = 1000  # samples per side for the unpaired fits
D = 16


def clustered(n: int, d: int, seed: int, clusters: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, d) float64 samples of a mixture of anisotropic Gaussian clusters, and a random (d, d) rotation."""
    g = torch.Generator().manual_seed(seed)
    centres = 2.5 * torch.randn(clusters, d, generator=g, dtype=torch.float64)  # (c, d)
    shapes = torch.randn(clusters, d, d, generator=g, dtype=torch.float64) / d**0.5  # (c, d, d) each cluster's own
    weights = torch.rand(clusters, generator=g, dtype=torch.float64) + 0.5  # unequal cluster sizes
    labels = torch.multinomial(weights, n, replacement=True, generator=g)  # (n,)
    noise = torch.randn(n, 1, d, generator=g, dtype=torch.float64)
    X = (centres[labels] + (noise @ shapes[labels]).squeeze(1)) * torch.logspace(0, -1, d, dtype=torch.float64)
    R, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))  # (d, d) orthogonal
    return X, R


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    """||got - expected|| over the spread of expected around its mean (0: exact; about 1.4: unrelated)."""
    return float((got - expected).norm() / (expected - expected.mean(dim=0)).norm())


def unpaired_sides(seed: int, known: int, d: int = D) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source X (N, d); target Y (N, d): its first `known` rows the partners of X's, then other samples
    of the same distribution, rotated by R; X_eval (N, d); R."""
    Z, R = clustered(3 * N, d, seed)
    X = Z[:N]
    Y = torch.cat([Z[:known], Z[N : 2 * N - known]]) @ R
    return X, Y, Z[2 * N :], R


@pytest.fixture(autouse=True)
def one_thread():
    # small problems: intra-op threads only add OpenMP barriers, which stall on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mini_vec2vec(**params):
    return get_method("mini-vec2vec").cls(**params)


# ---------------------------------------------------------------------------------------------
# mini-vec2vec


@pytest.mark.parametrize("seed", [0, 1])
def test_mini_vec2vec_recovers_the_rotation_without_a_single_pair(seed):
    X, Y, X_eval, R = unpaired_sides(seed, known=0)
    method = mini_vec2vec(seed=seed).fit_unpaired(X, Y, known=0)
    assert relative_error(method.transform(X_eval), X_eval @ R) < 0.15
    # the floor, fitted the same way, is as far off as unrelated spaces are
    floor = get_method("absolute").cls().fit_unpaired(X, Y, known=0)
    assert relative_error(floor.transform(X_eval), X_eval @ R) > 1.0


@pytest.mark.parametrize("known", [8, 20])  # fewer known pairs than clusters (the matching runs too), and more
def test_mini_vec2vec_recovers_the_rotation_from_a_few_known_pairs_and_unpaired_samples(known):
    """In 32 dimensions: fewer known pairs than dimensions leave part of the rotation undetermined
    (the Procrustes map of the pairs alone is far off); the unpaired samples supply the rest."""
    X, Y, X_eval, R = unpaired_sides(seed=1, known=known, d=32)
    partial = relative_error(mini_vec2vec(seed=0).fit_unpaired(X, Y, known=known).transform(X_eval), X_eval @ R)
    alone = relative_error(mini_vec2vec(seed=0).fit(X[:known], Y[:known]).transform(X_eval), X_eval @ R)
    assert partial < 0.12
    assert alone > 2 * partial


def test_mini_vec2vec_takes_different_row_counts_and_dimensions():
    Z, _ = clustered(700, 12, seed=3)
    lift, _ = torch.linalg.qr(torch.randn(20, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    X, Y = Z[:300].float(), (Z[300:700] @ lift.T).float()  # (300, 12), (400, 20): an isometric embedding
    method = mini_vec2vec(runs=3).fit_unpaired(X, Y, known=0)
    out = method.transform(Z[:5].float())
    assert out.shape == (5, 20) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_mini_vec2vec_paired_fit_is_the_procrustes_map_of_centred_unit_rows():
    """fit (and fit_unpaired with every pair known) against scipy's Procrustes on the same pre-processing."""
    Z, R = clustered(400, D, seed=4)
    X, Y = Z[:300], Z[:300] @ R + 0.05 * torch.randn(300, D, generator=torch.Generator().manual_seed(1),
                                                        dtype=torch.float64)
    Xc, Yc = (X - X.mean(0)).numpy(), (Y - Y.mean(0)).numpy()
    W, _ = orthogonal_procrustes(Xc / np.linalg.norm(Xc, axis=1, keepdims=True),
                                 Yc / np.linalg.norm(Yc, axis=1, keepdims=True))
    scale = np.linalg.norm(Yc, axis=1).mean() / np.linalg.norm(Xc, axis=1).mean()
    X_eval = Z[300:].numpy()
    expected = (X_eval - X.mean(0).numpy()) @ W * scale + Y.mean(0).numpy()
    for method in (mini_vec2vec().fit(X, Y), mini_vec2vec().fit_unpaired(X, Y, known=300)):
        np.testing.assert_allclose(method.transform(Z[300:]).numpy(), expected, rtol=1e-9, atol=1e-9)


def test_mini_vec2vec_is_deterministic_given_its_seed():
    X, Y, X_eval, _ = unpaired_sides(seed=5, known=0)
    X, Y = X[:300], Y[:300]
    first = mini_vec2vec(seed=7, runs=5).fit_unpaired(X, Y, known=0).transform(X_eval)
    again = mini_vec2vec(seed=7, runs=5).fit_unpaired(X.clone(), Y.clone(), known=0).transform(X_eval)
    assert torch.equal(first, again)


# ---------------------------------------------------------------------------------------------
# robust-ortho


def noisy_pairs(p: float, seed: int, n: int = 300, d: int = 64):
    """Paired anchors Y = X R + noise with a fraction p of the pairs mismatched (bench.pairing's
    protocol: a seeded derangement among round(p n) of them), and evaluation rows."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n + 200, d, generator=g, dtype=torch.float64)  # isotropic: standard scaling keeps Y = X R
    R, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    Y = X @ R + 0.1 * torch.randn(n + 200, d, generator=g, dtype=torch.float64)
    return X[:n], Y[:n][mismatched(n, p, seed)], X[n:], R


def standardised(Z: torch.Tensor) -> np.ndarray:
    Z = Z.numpy()
    return (Z - Z.mean(0)) / Z.std(0)  # population std, as bench.preprocessing's


def rotation_error(R_hat: np.ndarray, R: torch.Tensor) -> float:
    return float(np.linalg.norm(R_hat - R.numpy()) / np.linalg.norm(R.numpy()))


def fitted_rotation(method, X: torch.Tensor, Y: torch.Tensor) -> np.ndarray:
    """The (d, d) map a standard-scaled linear method applies, read off its transform of the basis
    (in standardised coordinates), so that the test does not depend on its attributes."""
    mx, sx, my, sy = X.mean(0), X.std(0, correction=0), Y.mean(0), Y.std(0, correction=0)
    basis = torch.eye(X.shape[1], dtype=X.dtype) * sx + mx  # rows: the standardised basis vectors
    return (((method.transform(basis) - my) / sy) - ((method.transform(mx[None]) - my) / sy)).numpy()


@pytest.mark.parametrize("p", [0.25, 0.4])
def test_robust_ortho_recovers_the_rotation_where_plain_procrustes_does_not(p):
    X, Y, _, R = noisy_pairs(p, seed=1)
    plain, _ = orthogonal_procrustes(standardised(X), standardised(Y))
    robust = fitted_rotation(get_method("robust-ortho").cls().fit(X, Y), X, Y)
    assert rotation_error(plain, R) > 0.25
    assert rotation_error(robust, R) < 0.15


def test_robust_ortho_without_mismatches_is_scipys_procrustes():
    X, Y, X_eval, _ = noisy_pairs(0.0, seed=2)
    R_scipy, _ = orthogonal_procrustes(standardised(X), standardised(Y))
    method = get_method("robust-ortho").cls().fit(X, Y)
    expected = standardised_apply(X, Y, X_eval, R_scipy)
    np.testing.assert_allclose(method.transform(X_eval).numpy(), expected, rtol=1e-7, atol=1e-7)
    # and ortho's own translation, the method it makes robust
    ortho = get_method("ortho").cls().fit(X, Y)
    np.testing.assert_allclose(method.transform(X_eval).numpy(), ortho.transform(X_eval).numpy(), atol=1e-7)


def standardised_apply(X: torch.Tensor, Y: torch.Tensor, X_eval: torch.Tensor, R: np.ndarray) -> np.ndarray:
    x, y = X.numpy(), Y.numpy()
    return (X_eval.numpy() - x.mean(0)) / x.std(0) @ R * y.std(0) + y.mean(0)


def test_robust_ortho_trims_mostly_mismatched_pairs_and_is_deterministic():
    X, Y, X_eval, _ = noisy_pairs(0.25, seed=3)
    cls = get_method("robust-ortho").cls
    first, again = cls().fit(X, Y), cls().fit(X.clone(), Y.clone())
    assert torch.equal(first.transform(X_eval), again.transform(X_eval))
    wrong = torch.from_numpy(mismatched(X.shape[0], 0.25, 3) != np.arange(X.shape[0]))  # (n,) the mismatched pairs
    # Storey's estimate of their number is unbiased but not exact (a binomial count: +-6 of 75 here),
    # so a few survive when it falls short
    assert (first.kept_ & wrong).sum() <= 0.2 * wrong.sum()
    assert (first.kept_ & ~wrong).sum() >= 0.9 * (~wrong).sum()  # and most true pairs are kept


# ---------------------------------------------------------------------------------------------
# absolute on unpaired anchors


def test_absolute_learns_only_the_target_dimension_from_unpaired_anchors():
    X, Y = torch.randn(30, 5), torch.randn(20, 8)
    method = get_method("absolute").cls()
    assert method.fit_unpaired(X, Y, known=0) is method
    X_eval = torch.randn(4, 5)
    assert torch.equal(method.transform(X_eval), torch.nn.functional.pad(X_eval, (0, 3)))
    assert {"paired", "partial", "unpaired"} <= method.pairings
