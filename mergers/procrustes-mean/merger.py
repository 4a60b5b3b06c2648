"""procrustes-mean: rotate every space onto the first one with orthogonal Procrustes on the anchors,
then average: a translation method (submissions/ortho) used as a merger.

    R_i = U V^T  for  (A_i - a_i)^T (A_1 - a_1) = U S V^T        Z = 1/k sum_i (X_i - a_i) R_i
where a_i is the mean of space i's anchors. Unlike rlsa it keeps the first space's absolute
coordinates (width d_1) and corrects rotations only, not rescalings.
"""
from __future__ import annotations

import torch

from bench.merging import Merger, register_merger


@register_merger("procrustes-mean")
class ProcrustesMean(Merger):
    def fit(self, anchors: list[torch.Tensor]) -> "ProcrustesMean":  # k tensors of (n, d_i)
        self.means_ = [A.mean(dim=0) for A in anchors]  # (d_i,) each
        reference = anchors[0] - self.means_[0]  # (n, d_1)
        self.maps_ = []
        for A, mean in zip(anchors, self.means_):
            U, _, Vh = torch.linalg.svd((A - mean).T @ reference, full_matrices=False)  # (d_i, r), (r,), (r, d_1)
            self.maps_.append(U @ Vh)  # (d_i, d_1)
        return self

    def transform(self, spaces: list[torch.Tensor]) -> torch.Tensor:  # k tensors of (m, d_i) -> (m, d_1)
        if len(spaces) != len(self.maps_):
            raise ValueError(f"fitted on {len(self.maps_)} spaces, given {len(spaces)}")
        aligned = [(X - mean.to(X)) @ R.to(X) for X, mean, R in zip(spaces, self.means_, self.maps_)]  # k of (m, d_1)
        return torch.stack(aligned).mean(dim=0)
