"""rlsa: Relative Latent Space Aggregation ("From Charts to Atlas", arXiv 2311.06547).

Each space is made relative: a sample becomes its cosine similarities to the n anchors embedded
in the same space. Relative coordinates do not change under the rotations and rescalings that
separate independently trained encoders, so the spaces can be averaged:

    Z = 1/k sum_i  normalize(X_i) @ normalize(A_i)^T        (m, d_i) -> (m, n)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.merging import Merger, register_merger


@register_merger("rlsa")
class RelativeAggregation(Merger):
    def fit(self, anchors: list[torch.Tensor]) -> "RelativeAggregation":  # k tensors of (n, d_i)
        self.anchors_ = [F.normalize(A, dim=1) for A in anchors]  # unit rows: dot products are cosines
        return self

    def transform(self, spaces: list[torch.Tensor]) -> torch.Tensor:  # k tensors of (m, d_i) -> (m, n)
        if len(spaces) != len(self.anchors_):
            raise ValueError(f"fitted on {len(self.anchors_)} spaces, given {len(spaces)}")
        relative = [F.normalize(X, dim=1) @ A.to(X).T for X, A in zip(spaces, self.anchors_)]  # k of (m, n)
        return torch.stack(relative).mean(dim=0)
