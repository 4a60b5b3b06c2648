"""ortho: orthogonal Procrustes between pre-processed anchors (Maiorca et al., 2023).

    R = argmin_{R^T R = I} ||Xp R - Yp||_F:   Xp^T Yp = U S V^T   ->   R = U V^T
The paper zero-pads both spaces to d = max(dx, dy) so that a square orthogonal R exists when
dx != dy. Padding only adds zero rows or columns to Xp^T Yp, so the reduced SVD of the unpadded
(dx, dy) product gives the same translation at a fraction of the cost: that is what we compute.
The fit stays in the input's dtype and device: it is the SVD plus one matrix product, nothing
else (docs/performance.md measures it against that floor).
"""
from __future__ import annotations

import torch

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing


@register_method("ortho")
class Ortho(Method):
    def __init__(self, preprocessing: str = "standard"):
        self.preprocessing = preprocessing

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "Ortho":  # (n, dx), (n, dy)
        self.prep_ = Preprocessing(self.preprocessing).fit(X, Y)
        M = self.prep_.cross_product(X, Y)  # (dx, dy) = Xp^T Yp
        U, _, Vh = torch.linalg.svd(M, full_matrices=False)  # (dx, k), (k,), (k, dy); k = min(dx, dy)
        self.map_ = U @ Vh  # (dx, dy)
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return self.prep_.decode_y(self.prep_.encode_x(X) @ self.map_.to(X))
