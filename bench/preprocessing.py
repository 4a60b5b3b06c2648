"""Fitted pre-processing shared by the reference translation methods (Maiorca et al., 2023).

A translation is estimated between *pre-processed* anchors and its output is mapped back into the
target's raw space:

    prep = Preprocessing("standard", zero_pad=True).fit(X_anchors, Y_anchors)
    Xp, Yp = prep.encode_x(X_anchors), prep.encode_y(Y_anchors)   # (n, d), (n, d)
    R = solve(Xp, Yp)                                             # any map estimated on them
    Y_hat = prep.decode_y(prep.encode_x(X) @ R)                   # (m, d) -> (m, dy), raw target space

Scaling comes first, then padding: standardising a padded zero column would divide 0 by 0.
Statistics come from the anchors only, so every transformed row depends on itself alone.

The statistics are computed and kept in float64, and encode_x/encode_y work in the dtype of
what they are given: float32 rows are encoded in float32 (transform), while prep.encode_x(X.double())
gives the anchors in float64 for a fit. That matters when the fit is ill-determined: float32
centring leaves anchors that are not exactly of rank n - 1 (a spurious singular value of about
1e-7 relative, larger for features whose mean is large against their spread), and a minimum-norm
solve treats such rounding noise as a real direction. In float64 the centred anchors are of rank
n - 1 to 1e-16, far below the cut of rank_tolerance.
"""
from __future__ import annotations

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
        if self.kind == "standard":  # float64 statistics, on the input's device (see the module's docstring)
            self.x_mean, self.x_std = _mean_std(X)  # (dx,), (dx,)
            self.y_mean, self.y_std = _mean_std(Y)  # (dy,), (dy,)
        elif self.kind == "l2":
            # the output is brought back to the target's typical scale, which row norms discard
            self.y_norm = torch.linalg.vector_norm(Y, dim=1, dtype=torch.float64).mean()  # () float64
        return self

    def encode_x(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, d)
        if self.kind == "standard":
            X = (X - self.x_mean.to(X)) / self.x_std.to(X)
        elif self.kind == "l2":
            X = _unit_rows(X)
        return self._pad(X)

    def cross_product(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:  # (n, dx), (n, dy) -> (dx, dy)
        """encode_x(X)^T encode_y(Y) without padding, in X's dtype, scaling the small product instead of the anchors."""
        if self.kind == "standard":
            # both sides centred: in exact arithmetic one would do, but in float32 the rounded mean leaves
            # column sums of Y - my of n * eps * |my|, which X's own mean would carry into the product
            M = (X - self.x_mean.to(X)).T @ (Y - self.y_mean.to(X))  # (dx, dy)
            return M / self.x_std.to(X)[:, None] / self.y_std.to(X)[None, :]
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


def _mean_std(Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (n, k) -> (k,), (k,) float64
    n = Z.shape[0]
    # sums accumulated in float64 without a float64 copy of the anchors (which costs more than the
    # statistics): the mean is then exact to float64 rounding, so that float64 anchors centred with
    # it are of rank n - 1 to 1e-16, and neither depends on the order of the sums (the thread count)
    mean = Z.sum(dim=0, dtype=torch.float64) / n
    # population std, as sklearn's StandardScaler: the float32 squares of the deviations are exact
    # to a relative 1e-7, plenty for a scale
    std = torch.sqrt(torch.square(Z - mean.to(Z)).sum(dim=0, dtype=torch.float64) / n)
    # a constant feature carries no information: leave it centred, unscaled
    return mean, torch.where(std > _EPS, std, torch.ones_like(std))


def _unit_rows(Z: torch.Tensor) -> torch.Tensor:  # (m, k) -> (m, k), each row of norm 1
    return Z / Z.norm(dim=1, keepdim=True).clamp_min(_EPS)


def rank_tolerance(dtype: torch.dtype) -> float:
    """The relative cut, 100 eps of the input's dtype (1.2e-5 for float32), at or below which a
    singular value of standardised anchors counts as zero: the anchors do not span that direction.

    Why there: an ill-determined fit (fewer anchors than dimensions, duplicated anchors) has exact
    null directions, at about 1e-16 of the largest singular value once solved in float64; any cut
    above that gives them one answer (the minimum-norm one; zero for a Procrustes map). The cut
    also clears the directions float32 rounding of the embeddings creates: up to about 1e-6 of the
    largest in standardised anchors (features whose mean is ten times their spread, features a
    network computed as combinations of others). Measured on the default suite's encoders
    (standardised anchors, 32 to 1,257 of them): every direction they span has a singular value
    of at least 3e-5 of the largest (64 digits anchors of width 64; most are above 1e-3), and the
    directions they do not span sit at 1e-16 (exact) or 2e-8 (paraphrase-MiniLM-L3, 1,024
    anchors: a float32 dependency between features). numpy's matrix_rank rule, max(n, d) * eps,
    bounds the rounding an SVD accumulates in the input's precision, which a float64 solve does
    not have; it would reach 2.4e-4 at 2,000 anchors. ortho also uses the cut as the smallest
    relative singular value of its float32 cross-product that it trusts (2,000 anchors of two
    related 768-dimensional spaces, tests/benchmarks: 6e-5, so they keep the fast path).
    """
    return 100 * torch.finfo(dtype).eps


def pad_or_truncate(X: torch.Tensor, dim: int) -> torch.Tensor:  # (m, dx) -> (m, dim)
    """Zero-pad or cut the columns of X to `dim`: the no-translation floor. Returns a new tensor."""
    if X.shape[1] >= dim:
        return X[:, :dim].clone()
    return torch.nn.functional.pad(X, (0, dim - X.shape[1]))
