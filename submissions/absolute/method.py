"""absolute: no translation. The source vector is used as if it lived in the target space.

Columns are zero-padded or cut to the target dimension, so a target decoder can at least be
called on it. This is the floor every translation method must beat (Maiorca et al., 2023), on
paired, partial and unpaired anchors alike: it learns the target dimension and nothing else.
"""
from __future__ import annotations

import torch

from bench.method import Method, register_method
from bench.preprocessing import pad_or_truncate


@register_method("absolute")
class Absolute(Method):
    # it never looks at the correspondence, so it fits every protocol alike: the floor of each
    pairings = frozenset({"paired", "partial", "unpaired"})

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> Absolute:  # (n, dx), (n, dy)
        self.dim_ = Y.shape[1]  # the only thing learned: the target dimension dy
        return self

    def fit_unpaired(self, X: torch.Tensor, Y: torch.Tensor, known: int = 0) -> Absolute:  # (n, dx), (n', dy)
        self.dim_ = Y.shape[1]  # as fit: the pairs, known or not, change nothing
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return pad_or_truncate(X, self.dim_)
