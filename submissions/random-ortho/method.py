"""random-ortho: a random orthogonal map between standard-scaled spaces (a lower bound).

    Xp, Yp = standardise(X), standardise(Y), zero-padded to d = max(dx, dy)    (anchor statistics)
    G ~ N(0, 1)^(d x d) (seeded)   G = Q R   ->   Q diag(sign(diag(R)))        Haar-distributed
    Y_hat = unstandardise((Xp @ Q)[:, :dy])

The anchors are used only for the scaling statistics, never for the map itself: this is what
`ortho` would give if Procrustes picked its rotation blindly. It separates the gain from
matching the first two moments of the target (which `absolute` does not do) from the gain of
actually aligning the spaces. The sign fix makes Q uniformly (Haar) distributed over the
orthogonal group, not just any orthogonal matrix (a plain QR favours the signs of its algorithm).

Expect it to lose to `absolute` on pairs that are close to the identity, and to tie with it on
unrelated or randomly rotated ones (both are then equally wrong).
"""
from __future__ import annotations

import torch

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing


@register_method("random-ortho")
class RandomOrtho(Method):
    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "RandomOrtho":  # (n, dx), (n, dy)
        self.prep_ = Preprocessing("standard", zero_pad=True).fit(X, Y)
        d = max(X.shape[1], Y.shape[1])
        self.map_ = random_orthogonal(d, int(self.seed)).to(device=X.device, dtype=X.dtype)  # (d, d)
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return self.prep_.decode_y(self.prep_.encode_x(X) @ self.map_.to(X))


def random_orthogonal(d: int, seed: int) -> torch.Tensor:  # -> (d, d) float64, Q^T Q = I
    """A Haar-distributed orthogonal matrix, the same for the same (d, seed) on every device."""
    generator = torch.Generator().manual_seed(seed)  # private, on the CPU: the global RNG is untouched
    Q, R = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    signs = torch.sign(torch.diagonal(R))
    return Q * torch.where(signs == 0, torch.ones_like(signs), signs)  # scale column j by sign(R_jj)
