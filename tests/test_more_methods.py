"""The submissions irp, ridge, cca, mlp and random-ortho against independent references
(sklearn, scipy, numpy, torch autograd) and hand-made cases."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.cross_decomposition import CCA as SklearnCCA
from sklearn.linear_model import Ridge as SklearnRidge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.preprocessing import StandardScaler

from bench.method import get_method


def build(name: str, **params):
    return get_method(name).cls(**params)


def module(name: str):
    return sys.modules[get_method(name).cls.__module__]


def pair(n: int, dx: int, dy: int, seed: int = 0, noise: float = 0.1, dtype=torch.float64):
    """A loosely related pair: Y = X A + b + noise, with scales that differ per column."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, dx, generator=g, dtype=dtype) * torch.linspace(0.5, 3, dx, dtype=dtype) + 1
    A = torch.randn(dx, dy, generator=g, dtype=dtype)
    Y = X @ A + 2 + noise * torch.randn(n, dy, generator=g, dtype=dtype)
    return X, Y


def rotation(d: int, seed: int = 1) -> torch.Tensor:
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return Q


def close(a, b, tol: float = 1e-8) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def standardised(X: torch.Tensor, Y: torch.Tensor):
    sx, sy = StandardScaler().fit(X.numpy()), StandardScaler().fit(Y.numpy())
    return sx, sy, sx.transform(X.numpy()), sy.transform(Y.numpy())


# ------------------------------------------------------------------------------------ irp


def irp_reference(Ax, Ay, X, alpha=0.0):
    """The paper's steps one by one in numpy: centre, normalise, cosines, invert, rescale."""
    Ax, Ay, X = (np.asarray(t, dtype=np.float64) for t in (Ax, Ay, X))
    unit = lambda Z: Z / np.linalg.norm(Z, axis=1, keepdims=True)  # noqa: E731
    mx, my = Ax.mean(0), Ay.mean(0)
    A, Bc = unit(Ax - mx), Ay - my
    B = unit(Bc)
    R = unit(X - mx) @ A.T  # (m, n) relative representation
    if alpha == 0:
        Z = np.linalg.lstsq(B, R.T, rcond=None)[0].T  # (m, dy): B z = r, minimum norm
    else:  # alpha is relative to the mean eigenvalue of B^T B, trace(B^T B) / dy = n / dy
        n, dy = B.shape
        Z = np.linalg.solve(B.T @ B + alpha * n / dy * np.eye(dy), B.T @ R.T).T
    return np.linalg.norm(Bc, axis=1).mean() * unit(Z) + my


@pytest.mark.parametrize(
    ("n", "dx", "dy", "alpha"), [(40, 6, 6, 0.0), (40, 6, 4, 0.0), (5, 6, 8, 0.0), (40, 5, 7, 0.3), (5, 6, 8, 0.3)]
)
def test_irp_matches_the_step_by_step_reference(n, dx, dy, alpha):
    X, Y = pair(n, dx, dy)
    X_new = torch.randn(9, dx, dtype=torch.float64) + 1
    method = build("irp", alpha=alpha).fit(X, Y)
    close(method.transform(X_new), irp_reference(X, Y, X_new, alpha), tol=1e-7)


def test_irp_recovers_a_rotated_scaled_shifted_target_up_to_scale():
    g = torch.Generator().manual_seed(3)
    d = 16
    X = torch.randn(300, d, generator=g, dtype=torch.float64) + 0.5
    offset = torch.randn(d, generator=g, dtype=torch.float64)
    Y = 3.0 * X @ rotation(d) + offset  # an angle-preserving relation, after centring
    method = build("irp", alpha=0.0).fit(X[:100], Y[:100])  # the paper's plain least squares
    Y_hat = method.transform(X[100:])
    centred = torch.nn.functional.cosine_similarity(Y_hat - Y[:100].mean(0), Y[100:] - Y[:100].mean(0), dim=1)
    assert centred.min() > 1 - 1e-9  # the direction is exact; only the norm is lost
    raw = torch.nn.functional.cosine_similarity(Y_hat, Y[100:], dim=1)
    assert raw.mean() > 0.95
    norms = (Y_hat - Y[:100].mean(0)).norm(dim=1)
    close(norms, torch.full_like(norms, (Y[:100] - Y[:100].mean(0)).norm(dim=1).mean().item()), tol=1e-9)
    # a ridge bends the direction a little toward the well-spanned target directions
    regularised = build("irp", alpha=0.3).fit(X[:100], Y[:100]).transform(X[100:]) - Y[:100].mean(0)
    assert torch.nn.functional.cosine_similarity(regularised, Y[100:] - Y[:100].mean(0), dim=1).min() > 0.98


def irp_cv_reference(X, Y, alphas, folds=5):
    """irp's default: k-fold CV on the anchors, by irp_reference per fold and alpha (numpy, one solve
    each): the mean held-out cosine between translated and true centred target directions."""
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    n = len(X)
    bounds = [round(i * n / folds) for i in range(folds + 1)]
    scores = []
    for alpha in alphas:
        cosines = []
        for start, stop in zip(bounds[:-1], bounds[1:]):
            train = np.r_[0:start, stop:n]
            y_mean = Y[train].mean(0)
            translated = irp_reference(X[train], Y[train], X[start:stop], alpha) - y_mean
            truth = Y[start:stop] - y_mean
            cosines += list((translated * truth).sum(1) / np.linalg.norm(translated, axis=1) / np.linalg.norm(truth, axis=1))
        scores.append(np.mean(cosines))
    best = max(range(len(alphas)), key=lambda i: (round(scores[i], 12), alphas[i]))  # ties: the larger alpha
    return alphas[best], np.array(scores)


@pytest.mark.parametrize(("n", "d", "noise"), [(60, 8, 0.05), (40, 10, 1.0), (12, 16, 0.3)])
def test_irp_chooses_alpha_by_cross_validation_on_the_anchors(n, d, noise):
    g = torch.Generator().manual_seed(n)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.logspace(0, -2, d, dtype=torch.float64)  # anisotropic
    Y = X @ rotation(d) + noise * torch.randn(n, d, generator=g, dtype=torch.float64) + 2.0
    alphas = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
    method = build("irp").fit(X, Y)  # the default: alpha=None
    expected_alpha, expected_scores = irp_cv_reference(X, Y, alphas)
    close(method.cv_cosines_, expected_scores, tol=1e-9)
    assert method.alpha_ == expected_alpha
    X_new = torch.randn(7, d, generator=g, dtype=torch.float64)
    close(method.transform(X_new), irp_reference(X, Y, X_new, expected_alpha), tol=1e-7)  # refitted on all anchors


def test_irp_rejects_a_negative_alpha_in_fit():
    with pytest.raises(ValueError, match="alpha"):
        build("irp", alpha=-1.0).fit(*pair(10, 3, 3))


# ---------------------------------------------------------------------------------- ridge


@pytest.mark.parametrize(("n", "dx", "dy"), [(60, 8, 5), (23, 4, 6), (12, 20, 3)])  # (12, 20): n < d
def test_ridge_picks_gridsearchcv_alpha_and_matches_sklearn_ridge(n, dx, dy):
    X, Y = pair(n, dx, dy, noise=2.0)
    alphas = (0.01, 0.1, 1.0, 10.0, 100.0)
    method = build("ridge", alphas=alphas, n_folds=5).fit(X, Y)
    sx, sy, Xs, Ys = standardised(X, Y)
    search = GridSearchCV(SklearnRidge(), {"alpha": list(alphas)}, cv=KFold(5), scoring="neg_mean_squared_error")
    search.fit(Xs, Ys)
    close(method.cv_errors_, -search.cv_results_["mean_test_score"], tol=1e-8)
    assert method.alpha_ == search.best_params_["alpha"]
    reference = SklearnRidge(alpha=method.alpha_).fit(Xs, Ys)
    X_new = torch.randn(7, dx, dtype=torch.float64)
    close(method.transform(X_new), sy.inverse_transform(reference.predict(sx.transform(X_new.numpy()))))


def test_ridge_without_scaling_is_sklearn_ridge_with_an_intercept():
    X, Y = pair(40, 5, 3)
    method = build("ridge", preprocessing="none", alphas=(3.0,)).fit(X, Y)
    reference = SklearnRidge(alpha=3.0).fit(X.numpy(), Y.numpy())
    close(method.weight_, reference.coef_.T)
    close(method.bias_, reference.intercept_)


def test_ridge_prefers_more_regularisation_on_pure_noise_and_less_on_clean_data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(50, 10, generator=g, dtype=torch.float64)
    noise = build("ridge").fit(X, torch.randn(50, 4, generator=g, dtype=torch.float64))
    clean = build("ridge").fit(X, X @ torch.randn(10, 4, generator=g, dtype=torch.float64))
    assert noise.alpha_ >= 100 and clean.alpha_ <= 0.01


def test_ridge_is_deterministic_and_validates_its_grid():
    X, Y = pair(30, 4, 4, dtype=torch.float32)
    assert torch.equal(build("ridge").fit(X, Y).transform(X), build("ridge").fit(X, Y).transform(X))
    with pytest.raises(ValueError, match="alphas"):
        build("ridge", alphas=()).fit(X, Y)


# ------------------------------------------------------------------------------------ cca


def test_cca_correlations_are_the_cosines_of_the_principal_angles():
    # Bjorck & Golub: canonical correlations = singular values of Qx^T Qy (orthonormal bases)
    X, Y = pair(80, 5, 4, noise=3.0)
    method = build("cca", reg=0.0).fit(X, Y)
    Qx, _ = scipy.linalg.qr(X.numpy() - X.numpy().mean(0), mode="economic")
    Qy, _ = scipy.linalg.qr(Y.numpy() - Y.numpy().mean(0), mode="economic")
    expected = scipy.linalg.svdvals(Qx.T @ Qy)  # (4,) descending
    close(method.correlations_, expected, tol=1e-10)


def test_cca_correlations_match_sklearn_cca():
    X, Y = pair(200, 4, 3, noise=4.0, seed=2)
    method = build("cca", reg=0.0).fit(X, Y)
    reference = SklearnCCA(n_components=3, max_iter=5000, tol=1e-12).fit(X.numpy(), Y.numpy())
    xs, ys = reference.transform(X.numpy(), Y.numpy())
    sklearn_rho = [np.corrcoef(xs[:, j], ys[:, j])[0, 1] for j in range(3)]
    close(method.correlations_, sklearn_rho, tol=1e-6)
    # and the scores of the method have those correlations, with whitened (identity) covariances
    sx, sy, Xs, Ys = standardised(X, Y)
    Zx, Zy = Xs @ method.x_weights_.numpy(), Ys @ method.y_weights_.numpy()
    close(Zx.T @ Zx / len(Zx), np.eye(3), tol=1e-9)
    close(Zx.T @ Zy / len(Zx), np.diag(method.correlations_.numpy()), tol=1e-9)


def test_cca_translates_an_exact_invertible_relation_exactly():
    g = torch.Generator().manual_seed(4)
    X = torch.randn(50, 6, generator=g, dtype=torch.float64)
    Y = X @ torch.randn(6, 6, generator=g, dtype=torch.float64) + 1
    method = build("cca", reg=0.0).fit(X, Y)
    close(method.correlations_, np.ones(6), tol=1e-8)
    X_new = torch.randn(5, 6, generator=g, dtype=torch.float64)
    close(method.transform(X_new), X_new @ torch.linalg.lstsq(X, Y - 1).solution + 1, tol=1e-7)


def test_cca_n_components_defaults_and_validation():
    X, Y = pair(6, 8, 5)
    assert build("cca").fit(X, Y).x_weights_.shape == (8, 5)  # min(dx, dy, n - 1) = 5
    assert build("cca").fit(X[:4], Y[:4]).x_weights_.shape == (8, 3)  # n - 1 = 3
    assert build("cca", n_components=2).fit(X, Y).transform(X).shape == (6, 5)
    with pytest.raises(ValueError, match="n_components"):
        build("cca", n_components=6).fit(X, Y)


# ------------------------------------------------------------------------------------ mlp


def nonlinear_pair(n: int, d: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    Y = torch.tanh(2 * X @ torch.randn(d, d, generator=g) / d**0.5) + 0.02 * torch.randn(n, d, generator=g)
    return X, Y


def test_mlp_gradients_are_autograd_gradients():
    mlp = module("mlp")
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(11, 4, generator=g, dtype=torch.float64), torch.randn(11, 3, generator=g, dtype=torch.float64)
    for activation in ("relu", "gelu"):
        params = {k: torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
                  for k, shape in {"S": (4, 3), "c": (3,), "W1": (4, 5), "b1": (5,), "W2": (5, 3)}.items()}
        loss, grads = mlp._loss_and_grads({k: p.detach() for k, p in params.items()}, X, Y, activation)
        torch.nn.functional.mse_loss(mlp._forward(params, X, activation), Y).backward()
        close(loss, torch.nn.functional.mse_loss(mlp._forward(params, X, activation), Y).detach(), tol=1e-12)
        for k, p in params.items():
            close(grads[k], p.grad, tol=1e-10)


def test_mlp_is_deterministic_and_seeded():
    X, Y = nonlinear_pair(100)
    def fit(seed, **params):
        return build("mlp", seed=seed, **params).fit(X[:80], Y[:80]).transform(X[80:])

    assert torch.equal(fit(0, max_epochs=60), fit(0, max_epochs=60))  # with early stopping and refit
    # without a hold-out every epoch is trained: the seeded initialisation of W1 shows
    assert torch.equal(fit(0, max_epochs=20, val_fraction=0.0), fit(0, max_epochs=20, val_fraction=0.0))
    assert not torch.equal(fit(0, max_epochs=20, val_fraction=0.0), fit(1, max_epochs=20, val_fraction=0.0))


def test_mlp_improves_on_its_initial_affine_fit():
    X, Y = nonlinear_pair(300)
    method = build("mlp").fit(X[:256], Y[:256])
    assert min(method.val_losses_) < 0.5 * method.val_losses_[0]  # held-out: far better than the affine start
    assert method.n_epochs_ > 0 and method.train_losses_[-1] < 0.5 * method.train_losses_[0]
    held_out = ((method.transform(X[256:]) - Y[256:]) ** 2).mean()
    affine = ((build("affine").fit(X[:256], Y[:256]).transform(X[256:]) - Y[256:]) ** 2).mean()
    assert held_out < 0.5 * affine


def test_mlp_stops_early_and_keeps_the_best_epoch():
    X, Y = nonlinear_pair(40, seed=1)
    method = build("mlp", patience=5, max_epochs=2000).fit(X, Y)
    best = int(np.argmin(method.val_losses_))
    assert len(method.val_losses_) == best + 5 + 2  # patience + 1 epochs after the best, then stop
    assert method.n_epochs_ == best and len(method.train_losses_) == best + 1  # the refit stops at the best


def test_mlp_without_hold_out_trains_max_epochs_and_fits_under_inference_mode():
    X, Y = nonlinear_pair(30)
    with torch.inference_mode():
        method = build("mlp", val_fraction=0.0, max_epochs=7).fit(X, Y)
        output = method.transform(X)
    assert method.n_epochs_ == 7 and method.val_losses_ == [] and torch.isfinite(output).all()


def test_mlp_validates_its_parameters_in_fit():
    X, Y = nonlinear_pair(10)
    with pytest.raises(ValueError, match="activation"):
        build("mlp", activation="tanh").fit(X, Y)
    with pytest.raises(ValueError, match="val_fraction"):
        build("mlp", val_fraction=1.0).fit(X, Y)


# --------------------------------------------------------------------------- random-ortho


@pytest.mark.parametrize(("dx", "dy"), [(5, 5), (3, 6), (6, 3)])
def test_random_ortho_map_is_orthogonal_and_seeded(dx, dy):
    X, Y = pair(20, dx, dy)
    d = max(dx, dy)
    R = build("random-ortho", seed=3).fit(X, Y).map_
    assert R.shape == (d, d)
    close(R.T @ R, np.eye(d), tol=1e-12)
    assert torch.equal(R, build("random-ortho", seed=3).fit(X, Y).map_)
    assert not torch.allclose(R, build("random-ortho", seed=4).fit(X, Y).map_)


def test_random_ortho_ignores_the_pairing_and_unscales_with_target_statistics():
    X, Y = pair(30, 4, 6)
    method = build("random-ortho", seed=0).fit(X, Y)
    shuffled = build("random-ortho", seed=0).fit(X, Y[torch.randperm(30)])  # anchors only give statistics
    X_new = torch.randn(5, 4, dtype=torch.float64)
    close(method.transform(X_new), shuffled.transform(X_new), tol=1e-10)
    sx, sy, _, _ = standardised(X, Y)
    padded = np.hstack([sx.transform(X_new.numpy()), np.zeros((5, 2))])
    close(method.transform(X_new), sy.inverse_transform(padded @ method.map_.numpy()))


def test_random_ortho_is_haar_sign_fixed():
    # the map is the Q of the seeded Gaussian's unique QR with a positive diagonal in R (Mezzadri's
    # recipe for Haar measure): the same Gaussian, drawn again, gives Q^T G = R upper triangular, R_jj > 0
    random_orthogonal = module("random-ortho").random_orthogonal
    G = torch.randn(6, 6, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    Q = random_orthogonal(6, 9)
    close(Q.T @ G, np.triu(Q.T.numpy() @ G.numpy()), tol=1e-12)
    assert (torch.diagonal(Q.T @ G) > 0).all()
