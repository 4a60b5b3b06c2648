"""l-ortho: the least-squares map, orthogonalised (Maiorca et al., 2023).

    R = argmin_R ||Xp R - Yp||_F = U S V^T     ->     map = U V^T
U V^T is the orthogonal matrix closest to R in Frobenius norm: the linear fit, stripped of its
scalings. With zero padding (the default) Xp and Yp share d = max(dx, dy) columns and the map is
(d, d): orthogonal when dx = dy and the anchors span every direction (see below for the others).

The canonical answer when the fit is ill-determined (fewer anchors than dimensions, duplicated
anchors, zero padding of two different widths): R is the minimum-norm least-squares solution,
with the singular values of Xp at or below rank_tolerance (100 eps of the input's dtype: 1.2e-5 of
the largest for float32) counted as zero, and it is orthogonalised on the directions the anchors
span only: with V_x, V_y orthonormal bases of the directions in which Xp and Yp have singular
values above that cut,

    map = V_x Q V_y^T      Q: the orthogonal factor of V_x^T R V_y    (a partial isometry)

all in float64 on anchors standardised in float64. On the other directions any orthogonal
completion fits the anchors equally well, so LAPACK's pick was rounding noise (it changed with
the thread count); they say nothing about the correspondence, and are mapped to zero. When the
anchors span every direction (and R has full rank), the map is U V^T, the orthogonal matrix.
"""
from __future__ import annotations

import torch

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing, rank_tolerance


@register_method("l-ortho")
class LOrtho(Method):
    def __init__(self, preprocessing: str = "standard", zero_pad: bool = True):
        self.preprocessing = preprocessing
        self.zero_pad = zero_pad

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "LOrtho":  # (n, dx), (n, dy)
        self.prep_ = Preprocessing(self.preprocessing, self.zero_pad).fit(X, Y)
        Xp, Yp = self.prep_.encode_x(X.cpu().double()), self.prep_.encode_y(Y.cpu().double())  # (n, d), (n, d)
        rtol = rank_tolerance(X.dtype)
        Ux, sx, Vxh = torch.linalg.svd(Xp, full_matrices=False)  # (n, k), (k,), (k, d)
        kept = sx > rtol * sx[:1]  # (k,) the directions the source anchors span (s[:1]: none if Xp = 0)
        Vx, Vy = Vxh[kept].T, span(Yp, rtol)  # (d, rx), (d, ry)
        # the minimum-norm least-squares map is R = Vx diag(1 / sx) Ux^T Yp; its core on the spans:
        core = (Ux[:, kept].T @ Yp / sx[kept, None]) @ Vy  # (rx, ry) = Vx^T R Vy
        U, s, Wh = torch.linalg.svd(core, full_matrices=False)  # (rx, r), (r,), (r, ry)
        keep = s > rank_tolerance(core.dtype) * s[:1]  # (r,) all but exact zeros
        self.map_ = (Vx @ U[:, keep] @ Wh[keep] @ Vy.T).to(device=X.device, dtype=X.dtype)  # (d, d)
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return self.prep_.decode_y(self.prep_.encode_x(X) @ self.map_.to(X))


def span(Z: torch.Tensor, rtol: float) -> torch.Tensor:  # (n, k) -> (k, r)
    """An orthonormal basis of the directions in which Z's singular values exceed rtol times the largest."""
    # eigenvectors of the Gram matrix: cheaper than Z's SVD when n > k, and in float64 its eigenvalues
    # (the squared singular values) are exact far below the cut, rtol^2 = 1.4e-10 of the largest
    values, vectors = torch.linalg.eigh(Z.T @ Z)  # (k,) ascending, (k, k)
    return vectors[:, values > rtol**2 * values[-1:]]  # values[-1:]: no direction at all when k = 0
