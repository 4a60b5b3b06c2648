"""absolute: no translation. The source vector is used as if it lived in the target space.

Columns are zero-padded or cut to the target dimension, so a target decoder can at least be
called on it. This is the floor every translation method must beat (Maiorca et al., 2023).
"""
from __future__ import annotations

import torch

from bench.method import Method, register_method
from bench.preprocessing import pad_or_truncate


@register_method("absolute")
class Absolute(Method):
    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "Absolute":  # (n, dx), (n, dy)
        self.dim_ = Y.shape[1]  # the only thing learned: the target dimension dy
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return pad_or_truncate(X, self.dim_)
