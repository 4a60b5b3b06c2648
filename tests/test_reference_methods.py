"""The reference methods and their pre-processing against independent references (numpy, scipy,
sklearn, torch.optim) on small hand-made cases."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import StandardScaler

from bench.method import get_method
from bench.preprocessing import Preprocessing, pad_or_truncate


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # tiny problems: intra-op threads only add OpenMP barriers, which stall on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(name: str, **params):
    return get_method(name).cls(**params)


def pair(n: int, dx: int, dy: int, seed: int = 0, dtype=torch.float64):
    """A loosely related pair: Y = X A + b + noise, with scales that differ per column."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, dx, generator=g, dtype=dtype) * torch.linspace(0.5, 3, dx, dtype=dtype) + 1
    A = torch.randn(dx, dy, generator=g, dtype=dtype)
    Y = X @ A + 2 + 0.1 * torch.randn(n, dy, generator=g, dtype=dtype)
    return X, Y


def close(a, b, tol: float = 1e-8) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# ----------------------------------------------------------------------------------- ortho


def test_ortho_is_scipy_orthogonal_procrustes():
    X, Y = pair(30, 4, 4)
    method = build("ortho", preprocessing="none").fit(X, Y)
    R, _ = scipy.linalg.orthogonal_procrustes(X.numpy(), Y.numpy())
    close(method.map_, R)
    close(method.transform(X[:5]), X[:5].numpy() @ R)


def test_ortho_across_widths_equals_scipy_on_zero_padded_anchors():
    X, Y = pair(30, 3, 5)
    method = build("ortho", preprocessing="none").fit(X, Y)
    Xp = np.hstack([X.numpy(), np.zeros((30, 2))])  # (30, 5): the paper's zero padding
    R, _ = scipy.linalg.orthogonal_procrustes(Xp, Y.numpy())  # (5, 5)
    assert method.map_.shape == (3, 5)  # the unpadded map gives the same translation
    close(method.transform(X), Xp @ R)


@pytest.mark.parametrize("kind", ["standard", "l2", "none"])
def test_cross_product_equals_the_product_of_encoded_anchors(kind):
    X, Y = pair(25, 6, 4)
    prep = Preprocessing(kind).fit(X, Y)
    close(prep.cross_product(X, Y), prep.encode_x(X).T @ prep.encode_y(Y))


def test_ortho_with_standard_scaling_is_the_papers_pipeline():
    X, Y = pair(40, 6, 4)
    method = build("ortho").fit(X, Y)  # defaults: standard scaling, zero padding
    sx, sy = StandardScaler().fit(X.numpy()), StandardScaler().fit(Y.numpy())
    Xs, Ys = sx.transform(X.numpy()), np.hstack([sy.transform(Y.numpy()), np.zeros((40, 2))])
    R, _ = scipy.linalg.orthogonal_procrustes(Xs, Ys)  # (6, 6)
    expected = sy.inverse_transform((Xs[:7] @ R)[:, :4])
    close(method.transform(X[:7]), expected)


def test_ortho_recovers_an_exact_rotation():
    X, _ = pair(20, 5, 5)
    Q, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    method = build("ortho", preprocessing="none").fit(X, X @ Q)
    close(method.map_, Q)


# ---------------------------------------------------------------------------------- linear


@pytest.mark.parametrize(("n", "dx", "dy"), [(30, 4, 4), (30, 6, 3), (30, 3, 6), (5, 8, 8)])
def test_linear_is_numpy_lstsq(n, dx, dy):  # (5, 8, 8): fewer anchors than dims, minimum norm
    X, Y = pair(n, dx, dy)
    method = build("linear", preprocessing="none").fit(X, Y)
    solution = np.linalg.lstsq(X.numpy(), Y.numpy(), rcond=None)[0]  # (dx, dy)
    X_new = torch.randn(7, dx, dtype=torch.float64)
    close(method.transform(X_new), X_new.numpy() @ solution)


def test_linear_with_standard_scaling_uses_anchor_statistics():
    X, Y = pair(30, 5, 3)
    method = build("linear").fit(X, Y)
    sx, sy = StandardScaler().fit(X.numpy()), StandardScaler().fit(Y.numpy())
    solution = np.linalg.lstsq(sx.transform(X.numpy()), sy.transform(Y.numpy()), rcond=None)[0]
    close(method.transform(X[:4]), sy.inverse_transform(sx.transform(X[:4].numpy()) @ solution))


# ---------------------------------------------------------------------------------- affine


@pytest.mark.parametrize(("dx", "dy"), [(4, 4), (5, 3), (3, 5)])
def test_affine_closed_form_is_sklearn_linear_regression(dx, dy):
    X, Y = pair(30, dx, dy)
    method = build("affine", preprocessing="none", solver="closed_form").fit(X, Y)
    reference = LinearRegression().fit(X.numpy(), Y.numpy())
    X_new = torch.randn(6, dx, dtype=torch.float64)
    close(method.transform(X_new), reference.predict(X_new.numpy()))
    if dx == dy:
        close(method.weight_, reference.coef_.T)
        close(method.bias_, reference.intercept_)


def test_affine_gradient_descent_converges_to_the_closed_form():
    X, Y = pair(60, 4, 3, dtype=torch.float32)
    exact = build("affine", solver="closed_form").fit(X, Y).transform(X)
    descent = build("affine", solver="gradient_descent", steps=300, lr=0.05).fit(X, Y).transform(X)
    scale = exact.abs().max()
    assert (descent - exact).abs().max() < 1e-4 * scale


def test_affine_gradient_descent_is_torch_adam_on_the_mse():
    X, Y = pair(20, 3, 2, dtype=torch.float64)
    params = dict(preprocessing="none", zero_pad=False, solver="gradient_descent", lr=0.05, seed=7)
    start = build("affine", steps=0, **params).fit(X, Y)  # the seeded initialisation
    weight = start.weight_.clone().requires_grad_()
    bias = start.bias_.clone().requires_grad_()
    optimizer = torch.optim.Adam([weight, bias], lr=0.05)
    for _ in range(25):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(X @ weight + bias, Y).backward()
        optimizer.step()
    method = build("affine", steps=25, **params).fit(X, Y)
    close(method.weight_, weight.detach(), tol=1e-9)
    close(method.bias_, bias.detach(), tol=1e-9)


def test_affine_gradient_descent_is_seeded():
    X, Y = pair(20, 3, 3, dtype=torch.float32)

    def fitted(seed):
        return build("affine", solver="gradient_descent", steps=10, seed=seed).fit(X, Y).weight_

    assert torch.equal(fitted(1), fitted(1))
    assert not torch.equal(fitted(1), fitted(2))


def test_affine_gradient_descent_fits_under_inference_mode():
    X, Y = pair(20, 3, 3, dtype=torch.float32)
    with torch.inference_mode():
        output = build("affine", solver="gradient_descent", steps=10).fit(X, Y).transform(X)
    assert torch.isfinite(output).all()


def test_affine_rejects_an_unknown_solver_in_fit():
    method = build("affine", solver="newton")  # stored unchanged: sklearn validates in fit
    with pytest.raises(ValueError, match="solver"):
        method.fit(*pair(10, 2, 2))


# --------------------------------------------------------------------------------- l-ortho


@pytest.mark.parametrize(("dx", "dy"), [(4, 4), (6, 3), (3, 6)])
def test_l_ortho_map_is_orthogonal(dx, dy):
    """Orthogonal on the directions both padded spaces span: the narrower space's rows (or columns)
    are orthonormal; the zero-padded ones carry nothing and map to, or come from, zero."""
    X, Y = pair(30, dx, dy)
    R = build("l-ortho").fit(X, Y).map_
    d, k = max(dx, dy), min(dx, dy)
    assert R.shape == (d, d)
    spanned = R[:dx] @ R[:dx].T if dx <= dy else R[:, :dy].T @ R[:, :dy]  # (k, k)
    close(spanned, np.eye(k), tol=1e-10)


def test_l_ortho_is_the_polar_factor_of_the_least_squares_map():
    X, Y = pair(30, 4, 4)
    method = build("l-ortho", preprocessing="none").fit(X, Y)
    solution = np.linalg.lstsq(X.numpy(), Y.numpy(), rcond=None)[0]
    unitary, _ = scipy.linalg.polar(solution)  # the orthogonal matrix closest to `solution`
    close(method.map_, unitary)


# -------------------------------------------------------------------------------- absolute


def test_absolute_pads_and_truncates_exactly():
    X = torch.arange(12.0).reshape(3, 4)
    padded = build("absolute").fit(X, torch.zeros(3, 6)).transform(X)
    assert torch.equal(padded, torch.cat([X, torch.zeros(3, 2)], dim=1))
    cut = build("absolute").fit(X, torch.zeros(3, 3)).transform(X)
    assert torch.equal(cut, X[:, :3])
    same = build("absolute").fit(X, torch.zeros(3, 4)).transform(X)
    assert torch.equal(same, X) and same.data_ptr() != X.data_ptr()  # a copy, not the caller's memory


# --------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize(("dx", "dy"), [(4, 4), (5, 3), (3, 5)])
@pytest.mark.parametrize("kind", ["standard", "none"])
def test_preprocessing_round_trips(kind, dx, dy):
    X, Y = pair(20, dx, dy)
    prep = Preprocessing(kind, zero_pad=True).fit(X, Y)
    assert prep.encode_x(X).shape == prep.encode_y(Y).shape == (20, max(dx, dy))
    close(prep.decode_y(prep.encode_y(Y)), Y, tol=1e-12)


def test_standard_scaling_is_sklearns_standard_scaler_on_the_anchors():
    X, Y = pair(20, 4, 3)
    prep = Preprocessing("standard").fit(X, Y)
    close(prep.encode_x(X), StandardScaler().fit_transform(X.numpy()))
    X_new = torch.randn(5, 4, dtype=torch.float64)  # new rows use the anchors' statistics
    close(prep.encode_x(X_new), StandardScaler().fit(X.numpy()).transform(X_new.numpy()))


def test_standard_scaling_leaves_constant_features_finite():
    X, Y = pair(10, 3, 3)
    X[:, 1] = 5.0
    encoded = Preprocessing("standard").fit(X, Y).encode_x(X)
    assert torch.isfinite(encoded).all() and torch.equal(encoded[:, 1], torch.zeros(10, dtype=X.dtype))


def test_l2_normalises_rows_and_rescales_by_the_target_mean_norm():
    X, Y = pair(20, 4, 3)
    prep = Preprocessing("l2").fit(X, Y)
    close(prep.encode_x(X).norm(dim=1), np.ones(20), tol=1e-12)
    close(prep.encode_y(Y).norm(dim=1), np.ones(20), tol=1e-12)
    Z = torch.randn(6, 3, dtype=torch.float64)
    close(prep.decode_y(Z), Z.numpy() * np.linalg.norm(Y.numpy(), axis=1).mean())


def test_preprocessing_keeps_dtype_and_rejects_unknown_kinds():
    X, Y = pair(10, 3, 2, dtype=torch.float32)
    for kind in ("standard", "l2", "none"):
        prep = Preprocessing(kind, zero_pad=True).fit(X, Y)
        assert prep.encode_x(X).dtype == prep.decode_y(prep.encode_y(Y)).dtype == torch.float32
    with pytest.raises(ValueError, match="preprocessing"):
        Preprocessing("minmax")


def test_pad_or_truncate():
    X = torch.ones(2, 3)
    assert torch.equal(pad_or_truncate(X, 5), torch.tensor([[1.0, 1, 1, 0, 0]] * 2))
    assert torch.equal(pad_or_truncate(X, 2), torch.ones(2, 2))
