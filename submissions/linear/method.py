"""linear: the least-squares linear map between pre-processed anchors (Maiorca et al., 2023).

    R = argmin_R ||Xp R - Yp||_F     Xp, Yp: standardised (and zero-padded) anchors
"""
from __future__ import annotations

import torch

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing


@register_method("linear")
class Linear(Method):
    def __init__(self, preprocessing: str = "standard", zero_pad: bool = True):
        self.preprocessing = preprocessing
        self.zero_pad = zero_pad

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "Linear":  # (n, dx), (n, dy)
        self.prep_ = Preprocessing(self.preprocessing, self.zero_pad).fit(X, Y)
        self.map_ = lstsq(self.prep_.encode_x(X), self.prep_.encode_y(Y))  # (d, d)
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return self.prep_.decode_y(self.prep_.encode_x(X) @ self.map_.to(X))


def lstsq(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:  # (n, p), (n, k) -> (p, k)
    # float64 on the CPU with gelsd: the minimum-norm solution even when A is rank-deficient
    # (zero-padded columns, fewer anchors than dimensions). CUDA's only driver, gels, assumes
    # full rank; the anchors are small, so the copy costs little.
    solution = torch.linalg.lstsq(A.cpu().double(), B.cpu().double(), driver="gelsd").solution
    return solution.to(device=A.device, dtype=A.dtype)
