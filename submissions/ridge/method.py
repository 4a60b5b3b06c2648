"""ridge: a ridge-regularised affine map, its penalty chosen by cross-validation on the anchors.

    W, b = argmin ||Xp W + b - Yp||_F^2 + alpha ||W||_F^2      (the bias is not penalised)
    alpha = argmin over `alphas` of the k-fold CV error on the anchors (nothing else is seen)

Xp, Yp are the pre-processed anchors (standard scaling by default, as the reference methods).
For each training fold the bias is fitted by centring (as sklearn's Ridge, fit_intercept=True),
and every alpha is solved at once from one SVD of the centred fold:

    Xc = U S V^T   ->   W(alpha) = V diag(s / (s^2 + alpha)) U^T Yc

which is exact for n < d and, at alpha = 0, is the minimum-norm least-squares solution. The CV
score is the mean over folds of the held-out mean squared error, as sklearn's GridSearchCV with
KFold(n_folds) (contiguous, unshuffled folds: the anchors are already a random sample, and the
choice is deterministic); a tie goes to the larger alpha (the simpler map). The chosen alpha is
refitted on all anchors. With fewer than two anchors nothing can be held out: the largest alpha
is used.

Canonical answer: everything runs in float64, on anchors standardised in float64, and singular
values of a centred fold at or below rank_tolerance (100 eps of the input's dtype: 1.2e-5 of the
largest for float32) count as zero: with fewer anchors than dimensions, or duplicated ones, the
directions they do not span get a zero weight however the rounding goes (for alpha = 0 this is
the minimum-norm solution).
"""
from __future__ import annotations

import torch

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing, rank_tolerance


@register_method("ridge")
class Ridge(Method):
    def __init__(
        self,
        preprocessing: str = "standard",
        alphas: tuple = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0),
        n_folds: int = 5,
    ):
        self.preprocessing = preprocessing
        self.alphas = alphas
        self.n_folds = n_folds

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "Ridge":  # (n, dx), (n, dy)
        alphas = torch.as_tensor([float(a) for a in self.alphas], dtype=torch.float64)  # (k,)
        if alphas.numel() == 0 or bool((alphas < 0).any()):
            raise ValueError(f"alphas must be a non-empty list of numbers >= 0, got {self.alphas!r}")
        if int(self.n_folds) < 2:
            raise ValueError(f"n_folds must be >= 2, got {self.n_folds!r}")
        self.prep_ = Preprocessing(self.preprocessing, zero_pad=False).fit(X, Y)
        Xp = self.prep_.encode_x(X.detach().cpu().double())  # (n, dx), float64 on the CPU
        Yp = self.prep_.encode_y(Y.detach().cpu().double())  # (n, dy)
        rtol = rank_tolerance(X.dtype)  # singular values of the anchors below it are zero
        self.cv_errors_ = _cv_errors(Xp, Yp, alphas, int(self.n_folds), rtol)  # (k,), NaN when n < 2
        if torch.isnan(self.cv_errors_).all():
            best = int(torch.argmax(alphas))
        else:
            # the largest alpha among the minimisers: flip so argmin's first hit is the largest
            order = torch.argsort(alphas, descending=True, stable=True)
            best = int(order[torch.argmin(self.cv_errors_[order])])
        self.alpha_ = float(alphas[best])
        weight, bias = _ridge_path(Xp, Yp, alphas[best : best + 1], rtol)
        self.weight_ = weight[0].to(device=X.device, dtype=X.dtype)  # (dx, dy)
        self.bias_ = bias[0].to(device=X.device, dtype=X.dtype)  # (dy,)
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return self.prep_.decode_y(self.prep_.encode_x(X) @ self.weight_.to(X) + self.bias_.to(X))


def _ridge_path(X: torch.Tensor, Y: torch.Tensor, alphas: torch.Tensor,
                rtol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge with an unpenalised bias for every alpha: (n, p), (n, q), (k,) -> (k, p, q), (k, q)."""
    x_mean, y_mean = X.mean(dim=0), Y.mean(dim=0)  # (p,), (q,)
    U, s, Vh = torch.linalg.svd(X - x_mean, full_matrices=False)  # (n, r), (r,), (r, p)
    UtY = U.T @ (Y - y_mean)  # (r, q)
    keep = s > rtol * s.max()  # directions the data actually span
    denom = s[None, :] ** 2 + alphas[:, None]  # (k, r)
    factor = torch.where(keep[None, :], s[None, :] / torch.where(keep[None, :], denom, 1.0), 0.0)  # (k, r)
    weight = torch.einsum("rp,kr,rq->kpq", Vh, factor, UtY)  # (k, p, q)
    bias = y_mean[None, :] - torch.einsum("p,kpq->kq", x_mean, weight)  # (k, q)
    return weight, bias


def _cv_errors(X: torch.Tensor, Y: torch.Tensor, alphas: torch.Tensor, n_folds: int, rtol: float) -> torch.Tensor:
    """Mean over k contiguous folds of the held-out MSE, for every alpha: -> (len(alphas),)."""
    n = X.shape[0]
    folds = min(n_folds, n)
    if folds < 2:
        return torch.full_like(alphas, float("nan"))
    # the fold sizes of sklearn's KFold: the first n % folds folds get one extra sample
    sizes = [n // folds + (1 if i < n % folds else 0) for i in range(folds)]
    errors, start = [], 0
    for size in sizes:
        held = torch.zeros(n, dtype=torch.bool)
        held[start : start + size] = True
        start += size
        weight, bias = _ridge_path(X[~held], Y[~held], alphas, rtol)  # (k, p, q), (k, q)
        prediction = torch.einsum("mp,kpq->kmq", X[held], weight) + bias[:, None, :]  # (k, m, q)
        errors.append(((prediction - Y[held]) ** 2).mean(dim=(1, 2)))  # (k,)
    return torch.stack(errors).mean(dim=0)
