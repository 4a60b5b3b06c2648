"""ortho: orthogonal Procrustes between pre-processed anchors (Maiorca et al., 2023).

    R = argmin_{R^T R = I} ||Xp R - Yp||_F:   Xp^T Yp = U S V^T   ->   R = U V^T
The paper zero-pads both spaces to d = max(dx, dy) so that a square orthogonal R exists when
dx != dy. Padding only adds zero rows or columns to Xp^T Yp, so the reduced SVD of the unpadded
(dx, dy) product gives the same translation at a fraction of the cost: that is what we compute.

When the cross-product has full rank, U V^T is unique, and the fit stays in the input's dtype and
device: the SVD plus one matrix product, nothing else (docs/performance.md measures it against
that floor). Cells that share a pair (many anchor counts and seeds) all have a (dx, dy)
cross-product, whatever their number of anchors: fit_many stacks them and takes one batched SVD.

When it does not (n anchors <= min(dx, dy), so that at most n - 1 centred directions exist;
duplicated anchors), U V^T is not unique: the columns of U and V for the zero singular values are
any orthonormal completion, and LAPACK's depends on rounding (the thread count, the anchor order).
The canonical answer maps the directions the anchors do not span to zero: with V_x, V_y
orthonormal bases of the directions in which the standardised anchors Xp, Yp have singular values
above rank_tolerance (100 eps of the input's dtype: 1.2e-5 of the largest for float32),

    R = V_x Q V_y^T      Q: the orthogonal factor of V_x^T Xp^T Yp V_y    (a partial isometry)

computed in float64 on the CPU from anchors standardised in float64 (Q keeps every singular value
of the core but exact zeros, at float64 rounding). Weakly correlated directions the anchors do
span keep their rotation, as full-rank fits always had. The fast SVD is used when it can be trusted:
more anchors than min(dx, dy), and its smallest singular value above the same 1.2e-5 of the
largest (float32 places the directions of smaller ones to no better than about 1%); every other
fit takes the canonical path, which then gives the same map whenever the anchors span every
direction.
"""
from __future__ import annotations

import torch
from sklearn.base import clone

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing, rank_tolerance


@register_method("ortho")
class Ortho(Method):
    def __init__(self, preprocessing: str = "standard"):
        self.preprocessing = preprocessing

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "Ortho":  # (n, dx), (n, dy)
        self.prep_ = Preprocessing(self.preprocessing).fit(X, Y)
        self.map_ = procrustes([self.prep_], [X], [Y])[0]  # (dx, dy)
        return self

    def fit_many(self, Xs: list[torch.Tensor], Ys: list[torch.Tensor]) -> list["Ortho"]:  # b of (n_i, dx), (n_i, dy)
        fitted = [clone(self) for _ in Xs]
        for method, X, Y in zip(fitted, Xs, Ys, strict=True):
            method.prep_ = Preprocessing(self.preprocessing).fit(X, Y)
        for method, map_ in zip(fitted, procrustes([m.prep_ for m in fitted], Xs, Ys)):
            method.map_ = map_
        return fitted

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return self.prep_.decode_y(self.prep_.encode_x(X) @ self.map_.to(X))


def procrustes(preps: list[Preprocessing], Xs: list[torch.Tensor], Ys: list[torch.Tensor]) -> list[torch.Tensor]:
    """The orthogonal factor of each anchor pair's cross-product: b of (n_i, dx), (n_i, dy) -> b of (dx, dy).

    One batched SVD, in the input's dtype, for every pair that may have full rank; the canonical
    float64 partial isometry for the others, and for those whose batched SVD is not to be trusted."""
    dx, dy = Xs[0].shape[1], Ys[0].shape[1]
    rtol = rank_tolerance(Xs[0].dtype)
    maps: list[torch.Tensor | None] = [None] * len(Xs)
    fast = [i for i, X in enumerate(Xs) if X.shape[0] > min(dx, dy)]  # more anchors than dimensions
    if fast:
        products = torch.stack([preps[i].cross_product(Xs[i], Ys[i]) for i in fast])  # (b, dx, dy)
        U, s, Vh = torch.linalg.svd(products, full_matrices=False)  # (b, dx, k), (b, k), (b, k, dy); k = min(dx, dy)
        full_rank = (s[:, -1] > rtol * s[:, 0]).tolist()  # b bools
        for i, map_, unique in zip(fast, U @ Vh, full_rank):
            maps[i] = map_.clone() if unique else None  # its own storage, not a view of the whole batch
    return [map_ if map_ is not None else _partial_isometry(prep, X, Y, rtol)
            for map_, prep, X, Y in zip(maps, preps, Xs, Ys)]


def _partial_isometry(prep: Preprocessing, X: torch.Tensor, Y: torch.Tensor, rtol: float) -> torch.Tensor:
    """V_x Q V_y^T: the orthogonal factor of the float64 cross-product on the directions the anchors span."""
    Xp, Yp = prep.encode_x(X.cpu().double()), prep.encode_y(Y.cpu().double())  # (n, dx), (n, dy) float64
    Vx, Vy = span(Xp, rtol), span(Yp, rtol)  # (dx, rx), (dy, ry)
    core = (Xp @ Vx).T @ (Yp @ Vy)  # (rx, ry) the cross-product on the spanned directions
    U, s, Wh = torch.linalg.svd(core, full_matrices=False)  # (rx, k), (k,), (k, ry)
    keep = s > rank_tolerance(core.dtype) * s[:1]  # (k,) all but exact zeros (s[:1]: empty when k = 0)
    return (Vx @ U[:, keep] @ Wh[keep] @ Vy.T).to(device=X.device, dtype=X.dtype)


def span(Z: torch.Tensor, rtol: float) -> torch.Tensor:  # (n, k) -> (k, r)
    """An orthonormal basis of the directions in which Z's singular values exceed rtol times the largest."""
    # eigenvectors of the Gram matrix: cheaper than Z's SVD when n > k, and in float64 its eigenvalues
    # (the squared singular values) are exact far below the cut, rtol^2 = 1.4e-10 of the largest
    values, vectors = torch.linalg.eigh(Z.T @ Z)  # (k,) ascending, (k, k)
    return vectors[:, values > rtol**2 * values[-1:]]  # values[-1:]: no direction at all when k = 0
