"""ortho: orthogonal Procrustes between pre-processed anchors (Maiorca et al., 2023).

    R = argmin_{R^T R = I} ||Xp R - Yp||_F:   Xp^T Yp = U S V^T   ->   R = U V^T
The paper zero-pads both spaces to d = max(dx, dy) so that a square orthogonal R exists when
dx != dy. Padding only adds zero rows or columns to Xp^T Yp, so the reduced SVD of the unpadded
(dx, dy) product gives the same translation at a fraction of the cost: that is what we compute.
The fit stays in the input's dtype and device: it is the SVD plus one matrix product, nothing
else (docs/performance.md measures it against that floor). Cells that share a pair (many anchor
counts and seeds) all have a (dx, dy) cross-product, whatever their number of anchors: fit_many
stacks them and takes one batched SVD.
"""
from __future__ import annotations

import torch
from sklearn.base import clone

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing


@register_method("ortho")
class Ortho(Method):
    def __init__(self, preprocessing: str = "standard"):
        self.preprocessing = preprocessing

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "Ortho":  # (n, dx), (n, dy)
        self.prep_ = Preprocessing(self.preprocessing).fit(X, Y)
        self.map_ = procrustes(self.prep_.cross_product(X, Y))  # (dx, dy)
        return self

    def fit_many(self, Xs: list[torch.Tensor], Ys: list[torch.Tensor]) -> list["Ortho"]:  # b of (n_i, dx), (n_i, dy)
        fitted = [clone(self) for _ in Xs]
        for method, X, Y in zip(fitted, Xs, Ys, strict=True):
            method.prep_ = Preprocessing(self.preprocessing).fit(X, Y)
        products = torch.stack([m.prep_.cross_product(X, Y) for m, X, Y in zip(fitted, Xs, Ys)])  # (b, dx, dy)
        for method, map_ in zip(fitted, procrustes(products)):
            method.map_ = map_.clone()  # its own storage, not a view of the whole batch
        return fitted

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return self.prep_.decode_y(self.prep_.encode_x(X) @ self.map_.to(X))


def procrustes(M: torch.Tensor) -> torch.Tensor:  # (..., dx, dy) -> (..., dx, dy)
    """The orthogonal factor U V^T of each cross-product (batched: one call for a stack)."""
    U, _, Vh = torch.linalg.svd(M, full_matrices=False)  # (..., dx, k), (..., k), (..., k, dy); k = min(dx, dy)
    return U @ Vh
