"""naive: the mean of the absolute embeddings, as if every part's encoder shared one space.

The baseline of "From Charts to Atlas" (arXiv 2311.06547): independently trained encoders place
the same sample at unrelated coordinates, so their average blurs classes together.
"""
from __future__ import annotations

import torch

from bench.merging import Merger, register_merger


@register_merger("naive")
class NaiveMean(Merger):
    def fit(self, anchors: list[torch.Tensor]) -> "NaiveMean":  # k tensors of (n, d)
        widths = {A.shape[1] for A in anchors}
        if len(widths) != 1:
            raise ValueError(f"naive merging averages coordinates, so every space needs the same width; got {sorted(widths)}")
        self.n_spaces_ = len(anchors)  # nothing else is learned
        return self

    def transform(self, spaces: list[torch.Tensor]) -> torch.Tensor:  # k tensors of (m, d) -> (m, d)
        if len(spaces) != self.n_spaces_:
            raise ValueError(f"fitted on {self.n_spaces_} spaces, given {len(spaces)}")
        return torch.stack(spaces).mean(dim=0)
