"""robust-ortho: orthogonal Procrustes that trims the anchor pairs that look mismatched.

ortho (Maiorca et al., 2023) trusts every anchor pair. When some pairs are wrong (two different
samples) and nobody says which or how many, each wrong pair pulls the map towards a random
pairing. robust-ortho alternates between fitting the map and judging the pairs:

    Xp, Yp = standardise(X), standardise(Y)                        (each side's own statistics)
    keep = every pair
    repeat:
        for each of K folds of the pairs: R_f = Procrustes on the kept pairs outside the fold
        u_i = the fraction of target anchors j != i with ||Xp_i R_f - Yp_j|| < ||Xp_i R_f - Yp_i||
        pi  = min(1, #{u_i > 1/2} / (n / 2))                     the estimated mismatched fraction
        keep = the n - round(pi n) pairs of smallest u_i
    until keep stops changing;  R = Procrustes on the kept pairs

Why u_i tells wrong pairs apart: a mismatched pair's target is just another sample, so its
distance to the translated source is a random draw among the distances to all target anchors,
and u_i is uniform on [0, 1]; a true pair's target is among the nearest (u_i near 0). Held-out
folds matter: with about as many anchors as dimensions, a Procrustes map fitted on a pair pulls
that very pair together, wrong or not, and in-sample ranks would hide it. Counting the u_i above
1/2 and doubling them is Storey's estimate of the fraction of uniform ("null") values (Storey,
J. R. Stat. Soc. B 2002, with his lambda = 1/2), so neither the mismatched fraction nor a
threshold is given or tuned: both come from the anchors. With no wrong pair the true pairs
rank near the top and the map is ortho's, or, where a few true pairs are served poorly enough to rank
in the lower half, ortho's on slightly fewer pairs.

Procrustes is computed in the coordinates the anchors span (a reduced QR of each side's anchors):
the (r_x, r_y) core, r = min(n, d), is all the SVD sees, which is cheaper than the (dx, dy)
cross-product when n < d and gives the same map. Singular values at or below rank_tolerance (100
float32 eps of the largest) count as zero, so directions no kept anchor spans map to zero, the
canonical answer ortho also gives (bench/preprocessing.py). The final map is computed in float64 on
the CPU, the held-out ranks in float32 (they only order distances).
"""
from __future__ import annotations

import torch

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing, rank_tolerance

FOLDS = 5  # held-out folds for the ranks: each fit sees 80% of the pairs
MAX_ROUNDS = 10  # trimming rounds; the kept set has always settled well before on the data we tried
STOREY_LAMBDA = 0.5  # Storey's default: u above it counts towards the mismatched fraction


@register_method("robust-ortho")
class RobustOrtho(Method):
    def __init__(self, preprocessing: str = "standard"):
        self.preprocessing = preprocessing

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> RobustOrtho:  # (n, dx), (n, dy)
        self.prep_ = Preprocessing(self.preprocessing).fit(X, Y)
        Xp = self.prep_.encode_x(X.detach().cpu().double())  # (n, dx) float64
        Yp = self.prep_.encode_y(Y.detach().cpu().double())  # (n, dy) float64
        kept = trimmed_pairs(Xp, Yp)  # (n,) bool
        self.kept_ = kept  # which anchor pairs the final map was fitted on
        self.map_ = procrustes(Xp[kept], Yp[kept])  # (dx, dy) float64
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return self.prep_.decode_y(self.prep_.encode_x(X) @ self.map_.to(X))


def trimmed_pairs(Xp: torch.Tensor, Yp: torch.Tensor) -> torch.Tensor:  # (n, dx), (n, dy) -> (n,) bool
    """The pairs kept once the trimming has settled (every pair when n is too small to judge)."""
    n = Xp.shape[0]
    kept = torch.ones(n, dtype=torch.bool)
    if n < 2 * FOLDS:  # too few pairs for held-out fits: keep them all
        return kept
    # the ranks only order distances: float32 is plenty there, and twice as fast as the final fit's float64
    X32, Y32 = Xp.float(), Yp.float()
    for _ in range(MAX_ROUNDS):
        u = held_out_ranks(X32, Y32, kept)  # (n,)
        mismatched = min(n - 2, round(min(1.0, float((u > STOREY_LAMBDA).sum()) / ((1 - STOREY_LAMBDA) * n)) * n))
        order = torch.argsort(u, stable=True)  # ties (many true pairs at u = 0) keep the anchors' order
        new = torch.zeros(n, dtype=torch.bool)
        new[order[: n - mismatched]] = True
        if torch.equal(new, kept):
            break
        kept = new
    return kept


def held_out_ranks(Xp: torch.Tensor, Yp: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:  # -> (n,) in [0, 1]
    """u_i: the fraction of the other target anchors nearer than Yp_i to Xp_i mapped by a Procrustes
    map fitted on the kept pairs of the other folds."""
    n = Xp.shape[0]
    fold = torch.arange(n) % FOLDS  # the anchors come in random order: a fixed split needs no seed
    y_norms = (Yp * Yp).sum(dim=1)  # (n,)
    u = torch.empty(n, dtype=torch.float64)
    for f in range(FOLDS):
        held = fold == f
        train = ~held & kept
        mapped = Xp[held] @ procrustes(Xp[train], Yp[train])  # (h, dy)
        # ||a - y_j||^2 = ||a||^2 + ||y_j||^2 - 2 a.y_j; ||a||^2 is the same along a row, so it is left out
        distances = y_norms[None, :] - 2 * mapped @ Yp.T  # (h, n)
        rows = torch.nonzero(held).squeeze(1)  # (h,) each held-out pair's own column
        own = distances[torch.arange(len(rows)), rows]  # (h,)
        u[held] = ((distances < own[:, None]).sum(dim=1)).double() / (n - 1)
    return u


def procrustes(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:  # (m, dx), (m, dy) -> (dx, dy)
    """argmin over partial isometries R of ||A R - B||, zero on the directions the pairs do not span.

    With A^T = Qa Ra and B^T = Qb Rb (reduced QR), A^T B = Qa (Ra Rb^T) Qb^T, so the orthogonal factor
    of the small core Ra Rb^T, carried back by Qa and Qb, is the orthogonal factor of A^T B."""
    Qa, Ra = torch.linalg.qr(A.T)  # (dx, ra), (ra, m)
    Qb, Rb = torch.linalg.qr(B.T)  # (dy, rb), (rb, m)
    U, s, Vh = torch.linalg.svd(Ra @ Rb.T, full_matrices=False)  # (ra, k), (k,), (k, rb)
    keep = s > rank_tolerance(torch.float32) * s[:1]  # the cut ortho uses; s[:1]: empty when k = 0
    return (Qa @ U[:, keep]) @ (Vh[keep] @ Qb.T)
