"""Fitted pre-processing shared by the reference translation methods (Maiorca et al., 2023).

A translation is estimated between *pre-processed* anchors and its output is mapped back into the
target's raw space:

    prep = Preprocessing("standard", zero_pad=True).fit(X_anchors, Y_anchors)
    Xp, Yp = prep.encode_x(X_anchors), prep.encode_y(Y_anchors)   # (n, d), (n, d)
    R = solve(Xp, Yp)                                             # any map estimated on them
    Y_hat = prep.decode_y(prep.encode_x(X) @ R)                   # (m, d) -> (m, dy), raw target space

Scaling comes first, then padding: standardising a padded zero column would divide 0 by 0.
Statistics come from the anchors only, so every transformed row depends on itself alone.
"""
from __future__ import annotations

import math

import torch

KINDS = ("standard", "l2", "none")
_EPS = 1e-12  # below this a std or a norm counts as zero: divide by 1 instead


class Preprocessing:
    """Scaling ("standard", "l2" or "none") plus optional zero padding to d = max(dx, dy)."""

    def __init__(self, kind: str = "standard", zero_pad: bool = False):
        if kind not in KINDS:
            raise ValueError(f"preprocessing must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.zero_pad = zero_pad

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> Preprocessing:  # (n, dx), (n, dy)
        self.dx, self.dy = X.shape[1], Y.shape[1]
        self.dim = max(self.dx, self.dy) if self.zero_pad else None
        if self.kind == "standard":
            self.x_mean, self.x_std = _mean_std(X)  # (dx,), (dx,)
            self.y_mean, self.y_std = _mean_std(Y)  # (dy,), (dy,)
        elif self.kind == "l2":
            # the output is brought back to the target's typical scale, which row norms discard
            self.y_norm = Y.norm(dim=1).mean()  # ()
        return self

    def encode_x(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, d)
        if self.kind == "standard":
            X = (X - self.x_mean.to(X)) / self.x_std.to(X)
        elif self.kind == "l2":
            X = _unit_rows(X)
        return self._pad(X)

    def cross_product(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:  # (n, dx), (n, dy) -> (dx, dy)
        """encode_x(X)^T encode_y(Y) without padding, scaling the small product instead of the anchors."""
        if self.kind == "standard":
            # centring one side is enough: (X - mx)^T (Y - my) = X^T (Y - my), as the columns of Y - my sum to 0
            M = X.T @ (Y - self.y_mean)  # (dx, dy)
            return M / self.x_std[:, None] / self.y_std[None, :]
        if self.kind == "l2":
            inverse_norms = 1 / (X.norm(dim=1).clamp_min(_EPS) * Y.norm(dim=1).clamp_min(_EPS))  # (n,)
            return X.T @ (Y * inverse_norms[:, None])
        return X.T @ Y

    def encode_y(self, Y: torch.Tensor) -> torch.Tensor:  # (n, dy) -> (n, d)
        if self.kind == "standard":
            Y = (Y - self.y_mean.to(Y)) / self.y_std.to(Y)
        elif self.kind == "l2":
            Y = _unit_rows(Y)
        return self._pad(Y)

    def decode_y(self, Y: torch.Tensor) -> torch.Tensor:  # (m, d) -> (m, dy), raw target space
        Y = Y[:, : self.dy]  # drop the padded columns (a no-op without padding)
        if self.kind == "standard":
            return Y * self.y_std.to(Y) + self.y_mean.to(Y)
        if self.kind == "l2":
            return Y * self.y_norm.to(Y)
        return Y.clone()  # never hand back a view of the caller's memory

    def _pad(self, Z: torch.Tensor) -> torch.Tensor:  # (m, k) -> (m, d)
        if self.dim is None or Z.shape[1] == self.dim:
            return Z
        return torch.nn.functional.pad(Z, (0, self.dim - Z.shape[1]))


def _mean_std(Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (n, k) -> (k,), (k,)
    mean = Z.mean(dim=0)
    # population std, as sklearn's StandardScaler; the norm of the centred columns is ~3x faster than torch.std
    std = torch.linalg.vector_norm(Z - mean, dim=0) / math.sqrt(Z.shape[0])
    # a constant feature carries no information: leave it centred, unscaled
    return mean, torch.where(std > _EPS, std, torch.ones_like(std))


def _unit_rows(Z: torch.Tensor) -> torch.Tensor:  # (m, k) -> (m, k), each row of norm 1
    return Z / Z.norm(dim=1, keepdim=True).clamp_min(_EPS)


def pad_or_truncate(X: torch.Tensor, dim: int) -> torch.Tensor:  # (m, dx) -> (m, dim)
    """Zero-pad or cut the columns of X to `dim`: the no-translation floor. Returns a new tensor."""
    if X.shape[1] >= dim:
        return X[:, :dim].clone()
    return torch.nn.functional.pad(X, (0, dim - X.shape[1]))
