"""irp: inverse relative projection (Maiorca et al., 2024, arXiv:2406.15057).

Translation through the relative space, each side fitted on its own anchors:

    Xc = X - mean(Ax)      Ac = Ax - mean(Ax)     (source, centred with the source anchor mean)
    Bc = Ay - mean(Ay)                            (target anchors, centred with their own mean)
    r  = unit(Xc) @ unit(Ac)^T                    (m, n)  relative representation: cosines to the anchors
    z  = argmin_z ||z @ unit(Bc)^T - r||^2 + alpha n/dy ||z||^2   (m, dy)  invert r onto the target anchors
    Y_hat = s * unit(z) + mean(Ay)                s = mean ||Bc_i||: the target anchors' mean norm

Why the inversion works: a unit vector z is determined by its cosines to n >= dy target anchors
that span the space, since unit(Bc) z = r is then a full-rank linear system. If the two spaces
differ by an angle-preserving map (a rotation, a reflection, an isotropic rescaling, after
centring), r is the same in both, so the solution is the target image of the source direction.

What it relies on: the relative representation discards every norm, so only the DIRECTION of
the translated (centred) vector is recovered. The paper's premise is that decoders are
(approximately) scale-invariant: a classifier ending in softmax keeps its arg-max when its input
is rescaled (exactly for a linear head without bias, approximately otherwise), and embedding
norms concentrate around their mean (Gaussian-like norm distributions), so giving every output
the target anchors' mean norm loses little. The target anchor mean is added back at the end: it
undoes the centring the target side was projected with, so the output lives in the raw target
space the decoder was fitted on.

alpha: ridge regulariser of the inversion, relative to the mean eigenvalue of unit(Bc)^T unit(Bc)
(its trace is n, so the penalty added is alpha * n / dy). alpha = 0 is the paper's plain least
squares (the minimum-norm solution, which also makes n < dy anchors well defined). Plain least
squares divides by the smallest singular values of unit(Bc), and real latent spaces are strongly
anisotropic (singular values spanning three orders of magnitude are common), so the few percent
by which two relative representations disagree are amplified into noise. Only the direction of z
is used, so the overall shrinkage a ridge causes does not matter; what it changes is how much the
weakly spanned directions count.

alpha = None (the default) chooses it on the anchors alone, as ridge does: k-fold cross-validation
over `alphas` (contiguous folds; the anchors are already a random sample), each held-out anchor
translated by a fit on the other folds and scored by the cosine between its translated and its
true target direction (centred with the training folds' target mean): the one thing irp recovers.
The alpha of the best mean cosine is refitted on all anchors; a tie goes to the larger alpha (the
smoother inversion); with fewer than two anchors nothing can be held out and the largest is used.
The grid spans the paper's plain least squares (0) to a strong ridge (10) in steps of about 3x;
it was set before any benchmark score was seen, and names no task. All alphas of a fold come from
one SVD of its target anchors: with unit(Bc) = U S V^T, z = r U diag(s / (s^2 + p)) V^T.

Canonical answer: the solve runs in float64, and singular values of unit(Bc) at or below
rank_tolerance (100 eps of the input's dtype: 1.2e-5 of the largest for float32) count as zero in
the cross-validation and in plain least squares (alpha = 0; a penalty makes the solution unique
anyway). With n <= dy anchors unit(Bc) has rank n - 1 (centring) and its last singular value is
rounding noise: alpha = 0 then inverts only the directions the anchors span, the minimum-norm
solution, whatever the rounding.

The whole chain before the final normalisation is linear, so fit folds it into one (dx, dy)
matrix and transform is two matrix products per row: rows are translated independently.
"""
from __future__ import annotations

import torch

from bench.method import Method, register_method
from bench.preprocessing import rank_tolerance

_EPS = 1e-12  # a centred vector shorter than this has no direction: it is left at zero


@register_method("irp")
class InverseRelativeProjection(Method):
    def __init__(self, alpha: float | None = None, alphas: tuple = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
                 n_folds: int = 5):
        self.alpha = alpha
        self.alphas = alphas
        self.n_folds = n_folds

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "InverseRelativeProjection":  # (n, dx), (n, dy)
        Xd, Yd = X.detach().cpu().double(), Y.detach().cpu().double()  # float64 for the solve
        rtol = rank_tolerance(X.dtype)  # singular values of the (n, dy) target anchors below it are zero
        if self.alpha is None:
            alphas = torch.as_tensor([float(a) for a in self.alphas], dtype=torch.float64)  # (k,)
            if alphas.numel() == 0 or bool((alphas < 0).any()) or int(self.n_folds) < 2:
                raise ValueError(f"alphas must be numbers >= 0 and n_folds >= 2, got {self.alphas!r}, {self.n_folds!r}")
            self.cv_cosines_ = _cv_cosines(Xd, Yd, alphas, int(self.n_folds), rtol)  # (k,), NaN when n < 2
            if torch.isnan(self.cv_cosines_).all():
                self.alpha_ = float(alphas.max())
            else:  # the largest alpha among the maximisers: flip so argmax's first hit is the largest
                order = torch.argsort(alphas, descending=True, stable=True)
                self.alpha_ = float(alphas[order[torch.argmax(torch.nan_to_num(self.cv_cosines_[order], nan=-2.0))]])
        elif self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        else:
            self.alpha_ = float(self.alpha)
        x_mean, y_mean = Xd.mean(dim=0), Yd.mean(dim=0)  # (dx,), (dy,)
        A = _unit_rows(Xd - x_mean)  # (n, dx) source anchors, centred, unit norm
        Bc = Yd - y_mean  # (n, dy) target anchors, centred
        B = _unit_rows(Bc)  # (n, dy)
        # The inversion, a (n, dy) matrix P with z = r @ P: z = argmin ||z @ B^T - r||^2 + penalty ||z||^2
        n, dy = B.shape
        penalty = self.alpha_ * n / dy  # alpha times the mean eigenvalue of B^T B (trace n over dy)
        if penalty == 0:
            P = torch.linalg.pinv(B.T, rtol=rtol)  # minimum-norm least squares
        elif n < dy:  # P = B (B^T B + penalty I)^-1 = (B B^T + penalty I)^-1 B: solve the smaller system
            P = torch.linalg.solve(B @ B.T + penalty * torch.eye(n, dtype=B.dtype), B)
        else:
            P = torch.linalg.solve(B.T @ B + penalty * torch.eye(dy, dtype=B.dtype), B.T).T
        map_ = A.T @ P  # (dx, dy) relative projection r = unit(Xc) @ A^T, then inversion, folded
        self.x_mean_ = x_mean.to(device=X.device, dtype=X.dtype)  # (dx,)
        self.y_mean_ = y_mean.to(device=X.device, dtype=X.dtype)  # (dy,)
        self.map_ = map_.to(device=X.device, dtype=X.dtype)  # (dx, dy)
        self.scale_ = Bc.norm(dim=1).mean().item()  # the target anchors' mean (centred) norm
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        Xc = _unit_rows(X - self.x_mean_.to(X))  # (m, dx) centred, unit norm
        Z = Xc @ self.map_.to(X)  # (m, dy) the relative representation, inverted onto the target
        return self.scale_ * _unit_rows(Z) + self.y_mean_.to(X)


def _cv_cosines(X: torch.Tensor, Y: torch.Tensor, alphas: torch.Tensor, n_folds: int, rtol: float) -> torch.Tensor:
    """(k,) mean over held-out anchors of the cosine between the translated and the true centred
    target direction, per alpha; NaN when fewer than two anchors leave nothing to hold out."""
    n = X.shape[0]
    folds = min(n_folds, n)
    if folds < 2:
        return torch.full_like(alphas, float("nan"))
    bounds = [round(i * n / folds) for i in range(folds + 1)]  # contiguous folds, as sklearn's KFold
    total = torch.zeros_like(alphas)  # (k,)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        train = torch.cat([torch.arange(0, start), torch.arange(stop, n)])
        x_mean, y_mean = X[train].mean(dim=0), Y[train].mean(dim=0)
        A, B = _unit_rows(X[train] - x_mean), _unit_rows(Y[train] - y_mean)  # (t, dx), (t, dy)
        R = _unit_rows(X[start:stop] - x_mean) @ A.T  # (h, t) held-out relative representations
        U, S, Vh = torch.linalg.svd(B, full_matrices=False)  # B = U diag(S) Vh
        kept = S > rtol * S.max()  # directions B spans: alpha = 0 is then its pseudo-inverse
        penalties = alphas * B.shape[0] / B.shape[1]  # (k,)
        gains = torch.where(kept, S / (S**2 + penalties[:, None]), torch.zeros_like(S))  # (k, r)
        Z = ((R @ U)[None] * gains[:, None, :]) @ Vh  # (k, h, dy) inverted onto the target
        truth = Y[start:stop] - y_mean  # (h, dy)
        total += torch.nn.functional.cosine_similarity(Z, truth[None].expand_as(Z), dim=2, eps=_EPS).sum(dim=1)
    return total / n


def _unit_rows(Z: torch.Tensor) -> torch.Tensor:  # (m, k) -> (m, k); zero rows stay zero
    norms = Z.norm(dim=1, keepdim=True)
    return Z / torch.where(norms > _EPS, norms, torch.ones_like(norms))
