"""concat: the absolute embeddings side by side, one block of columns per part's encoder.

Not an aggregation into one shared space but the lossless baseline a downstream head can always
use: its width grows with the number of parts, and it ignores the anchors.
"""
from __future__ import annotations

import torch

from bench.merging import Merger, register_merger


@register_merger("concat")
class Concatenation(Merger):
    def fit(self, anchors: list[torch.Tensor]) -> "Concatenation":  # k tensors of (n, d_i)
        self.widths_ = [A.shape[1] for A in anchors]
        return self

    def transform(self, spaces: list[torch.Tensor]) -> torch.Tensor:  # k tensors of (m, d_i) -> (m, sum d_i)
        if [X.shape[1] for X in spaces] != self.widths_:
            raise ValueError(f"fitted on spaces of widths {self.widths_}, given {[X.shape[1] for X in spaces]}")
        return torch.cat(spaces, dim=1)
