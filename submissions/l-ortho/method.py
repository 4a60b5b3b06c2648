"""l-ortho: the least-squares map, orthogonalised (Maiorca et al., 2023).

    R = argmin_R ||Xp R - Yp||_F = U S V^T     ->     map = U V^T
U V^T is the orthogonal matrix closest to R in Frobenius norm: the linear fit, stripped of its
scalings. With zero padding (the default) Xp and Yp share d = max(dx, dy) columns and the map is
a square orthogonal matrix.
"""
from __future__ import annotations

import torch

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing


@register_method("l-ortho")
class LOrtho(Method):
    def __init__(self, preprocessing: str = "standard", zero_pad: bool = True):
        self.preprocessing = preprocessing
        self.zero_pad = zero_pad

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "LOrtho":  # (n, dx), (n, dy)
        self.prep_ = Preprocessing(self.preprocessing, self.zero_pad).fit(X, Y)
        Xp, Yp = self.prep_.encode_x(X), self.prep_.encode_y(Y)  # (n, d), (n, d)
        # float64 on the CPU: gelsd copes with rank-deficient Xp (padded zero columns, n < d),
        # which CUDA's only lstsq driver does not
        R = torch.linalg.lstsq(Xp.cpu().double(), Yp.cpu().double(), driver="gelsd").solution
        U, _, Vh = torch.linalg.svd(R, full_matrices=False)  # (d, k), (k,), (k, d)
        self.map_ = (U @ Vh).to(device=X.device, dtype=X.dtype)  # (d, d)
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return self.prep_.decode_y(self.prep_.encode_x(X) @ self.map_.to(X))
