"""linear: the least-squares linear map between pre-processed anchors (Maiorca et al., 2023).

    R = argmin_R ||Xp R - Yp||_F     Xp, Yp: standardised (and zero-padded) anchors

With fewer anchors than dimensions, or anchors of deficient rank, many R fit equally well; the
canonical one is the minimum-norm solution, pinv(Xp) Yp, over the singular values of Xp above
rank_tolerance (100 eps of the input's dtype: 1.2e-5 of the largest for float32): directions the
anchors do not span, or span only within float32 rounding, are mapped to zero. It is solved in
float64 on anchors standardised in float64, so it does not depend on rounding (thread count,
anchor order).
"""
from __future__ import annotations

import torch

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing, rank_tolerance


@register_method("linear")
class Linear(Method):
    def __init__(self, preprocessing: str = "standard", zero_pad: bool = True):
        self.preprocessing = preprocessing
        self.zero_pad = zero_pad

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "Linear":  # (n, dx), (n, dy)
        self.prep_ = Preprocessing(self.preprocessing, self.zero_pad).fit(X, Y)
        Xp, Yp = self.prep_.encode_x(X.cpu().double()), self.prep_.encode_y(Y.cpu().double())  # (n, d), (n, d)
        rcond = rank_tolerance(X.dtype)
        self.map_ = lstsq(Xp, Yp, rcond).to(device=X.device, dtype=X.dtype)  # (d, d)
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return self.prep_.decode_y(self.prep_.encode_x(X) @ self.map_.to(X))


def lstsq(A: torch.Tensor, B: torch.Tensor, rcond: float) -> torch.Tensor:  # (n, p), (n, k) -> (p, k)
    """pinv(A, rcond) @ B: the minimum-norm least-squares solution, singular values of A at or below
    rcond times the largest counted as zero. A and B are float64 on the CPU: CUDA's only driver,
    gels, assumes full rank, and the anchors are small, so the copy costs little."""
    return torch.linalg.lstsq(A, B, rcond=rcond, driver="gelsd").solution
