"""ortho: orthogonal Procrustes between pre-processed anchors (Maiorca et al., 2023).

    R = argmin_{R^T R = I} ||Xp R - Yp||_F:   Xp^T Yp = U S V^T   ->   R = U V^T
Zero padding (the default) gives both spaces d = max(dx, dy) columns, so a square orthogonal R
exists even when dx != dy; the output is cut back to dy columns.
"""
from __future__ import annotations

import torch

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing


@register_method("ortho")
class Ortho(Method):
    def __init__(self, preprocessing: str = "standard", zero_pad: bool = True):
        self.preprocessing = preprocessing
        self.zero_pad = zero_pad

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "Ortho":  # (n, dx), (n, dy)
        self.prep_ = Preprocessing(self.preprocessing, self.zero_pad).fit(X, Y)
        Xp, Yp = self.prep_.encode_x(X), self.prep_.encode_y(Y)  # (n, d), (n, d)
        M = Xp.cpu().double().T @ Yp.cpu().double()  # (d, d) cross-covariance; float64 for accuracy
        U, _, Vh = torch.linalg.svd(M, full_matrices=False)  # (d, d), (d,), (d, d)
        self.map_ = (U @ Vh).to(device=X.device, dtype=X.dtype)  # (d, d)
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return self.prep_.decode_y(self.prep_.encode_x(X) @ self.map_.to(X))
