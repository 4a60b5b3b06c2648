"""mini-vec2vec: a linear translation learned without paired anchors (Dar, arXiv 2510.02348).

Both spaces are centred and their rows put on the unit sphere, each with its own rows' mean (the
paper's pre-processing; a rotation between the two spaces survives both steps). Then:

1. anchor alignment: k-means with c clusters in each space; the two sets of centroids are matched
   by the quadratic assignment that best superposes their cosine-similarity matrices Kx, Ky (c, c),
   max over permutations P of tr(Kx P Ky P^T), the best of `restarts` seeded FAQ starts (scipy);
   repeated for `runs` clusterings: runs * c pairs of matched centroids. One clustering's matching
   is often wrong (k-means cuts the two spaces differently); many of them, used together, are not.
2. pseudo-pairs: every source row's relative representation (its cosines to the matched source
   centroids, each centroid's column standardised over its side's rows) is compared with every
   target row's; the `neighbors` target rows whose relative representations are the most similar
   are its pseudo-partners.
3. matching refinement: W is the Procrustes map of the rows and the mean of their pseudo-partners;
   a row's pseudo-partners become its `neighbors` nearest target rows under W, and W moves part of
   the way (1 - smoothing) to the Procrustes map of the new pairs; until the neighbour sets stop
   changing or `iterations` rounds.
4. the map: Procrustes, in the full spaces, of the rows and the mean of their last pseudo-partners.

Steps 1-3 run in each side's top `components` principal directions (unit rows again there): a cost
cut that is not the paper's. Each refinement round then takes an SVD of (r, r), r = components,
not of (dx, dy), which is what keeps a fit at 2,000 rows of 1,280 dimensions to seconds on two
cores; the nearest neighbours are decided by the leading directions anyway. The principal
directions come from a seeded randomised range finder (Halko et al., 2011: 10 extra vectors,
4 power iterations), the clusters from seeded k-means++ and Lloyd's iterations.

The paper's second refinement (k-means in both spaces, the target's initialised with the mapped
source centroids, Procrustes on the centroid pairs) is left out: c' centroid pairs determine at most
c' - 1 directions of the map, and the c' = 500 it uses is a quarter to a half of the 1,000-2,000
rows a benchmark cell has.

Known pairs (fit_unpaired with known = k > 0; fit, where k = n): each takes part in every
Procrustes as a pair of weight one, as a pseudo-pair does, and serves as a relative-representation
anchor; the cluster matching, which can go wrong, runs only when fewer pairs than clusters are
known. With every source row's partner known there is nothing to match: the map is the Procrustes
map of the pairs (centred, unit rows).

Every Procrustes map is computed in float64, with singular values at or below rank_tolerance (100
float32 eps) of the largest counted as zero: directions no pair spans map to zero, the canonical
answer of bench/preprocessing.py. transform: Y_hat = (X - mean_x) W s + mean_y, with
s = mean ||Y - mean_y|| / mean ||X - mean_x|| (each mean over that side's own rows): W maps
directions, s restores the target's typical norm.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import quadratic_assignment

from bench.method import Method, register_method
from bench.preprocessing import rank_tolerance

_EPS = 1e-12  # below this a norm or a spread counts as zero
_OVERSAMPLE, _POWER_ITERATIONS = 10, 4  # the randomised range finder's (Halko et al., 2011)
_LLOYD_ITERATIONS = 100  # k-means stops earlier when no assignment changes


@register_method("mini-vec2vec")
class MiniVec2Vec(Method):
    pairings = frozenset({"paired", "partial", "unpaired"})

    def __init__(self, n_clusters: int = 20, runs: int = 30, restarts: int = 30, neighbors: int = 10,
                 iterations: int = 30, smoothing: float = 0.5, components: int = 128, seed: int = 0):
        self.n_clusters = n_clusters
        self.runs = runs
        self.restarts = restarts
        self.neighbors = neighbors
        self.iterations = iterations
        self.smoothing = smoothing
        self.components = components
        self.seed = seed

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> MiniVec2Vec:  # (n, dx), (n, dy) paired
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"fit takes paired anchors: {X.shape[0]} source rows, {Y.shape[0]} target rows")
        return self.fit_unpaired(X, Y, known=X.shape[0])

    def fit_unpaired(self, X: torch.Tensor, Y: torch.Tensor, known: int = 0) -> MiniVec2Vec:  # (n, dx), (n', dy)
        self._validate(X, Y, known)
        Xd, Yd = X.detach().cpu().double(), Y.detach().cpu().double()  # float64 copies: the inputs stay untouched
        self.x_mean_, self.y_mean_ = Xd.mean(dim=0), Yd.mean(dim=0)  # (dx,), (dy,)
        Xc, Yc = Xd - self.x_mean_, Yd - self.y_mean_  # (n, dx), (n', dy)
        self.scale_ = Yc.norm(dim=1).mean() / Xc.norm(dim=1).mean().clamp_min(_EPS)  # () float64
        Xu, Yu = _unit_rows(Xc), _unit_rows(Yc)
        if known == Xu.shape[0]:  # every source row has its partner: nothing to match
            self.map_ = procrustes(Xu, Yu[:known])  # (dx, dy)
            return self
        generator = torch.Generator().manual_seed(int(self.seed))  # private: the global RNGs are untouched
        rng = np.random.default_rng(int(self.seed))  # the quadratic assignments' starts
        r = min(self.components, *Xu.shape, *Yu.shape)
        xr = _unit_rows(Xu @ _principal_directions(Xu, r, generator))  # (n, r)
        yr = _unit_rows(Yu @ _principal_directions(Yu, r, generator))  # (n', r)
        anchors_x, anchors_y = xr[:known], yr[:known]  # (k, r) each: the known pairs
        if known < self.n_clusters:
            cx, cy = self._matched_centroids(xr, yr, generator, rng)  # (runs c, r) each
            anchors_x, anchors_y = torch.cat([cx, anchors_x]), torch.cat([cy, anchors_y])
        count = min(self.neighbors, Yu.shape[0])
        neighbours = _relative_neighbours(xr, yr, anchors_x, anchors_y, count)[known:]  # (n - k, count)
        neighbours = self._refine(xr, yr, known, neighbours)
        self.map_ = procrustes(Xu, torch.cat([Yu[:known], Yu[neighbours].mean(dim=1)]))  # (dx, dy)
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return ((X - self.x_mean_.to(X)) @ self.map_.to(X)) * self.scale_.to(X) + self.y_mean_.to(X)

    # -----------------------------------------------------------------------------------------

    def _validate(self, X: torch.Tensor, Y: torch.Tensor, known: int) -> None:
        if not 0 <= known <= min(X.shape[0], Y.shape[0]):
            raise ValueError(f"known = {known} pairs, with {X.shape[0]} source and {Y.shape[0]} target rows")
        if not (min(self.n_clusters, self.runs, self.restarts, self.neighbors, self.components) >= 1
                and self.iterations >= 0 and 0 <= self.smoothing < 1):
            raise ValueError("n_clusters, runs, restarts, neighbors and components must be >= 1, iterations >= 0, "
                             "smoothing in [0, 1)")

    def _matched_centroids(self, xr: torch.Tensor, yr: torch.Tensor, generator: torch.Generator,
                           rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """runs * c centroid pairs, (runs c, r) each: every run clusters both spaces and orders the
        target's centroids by the quadratic assignment of the two cosine-similarity matrices."""
        c = min(self.n_clusters, xr.shape[0], yr.shape[0])
        matched_x, matched_y = [], []
        for _ in range(self.runs):
            cx, cy = _centroids(xr, c, generator), _centroids(yr, c, generator)  # (c, r) unit rows each
            Kx, Ky = (cx @ cx.T).numpy(), (cy @ cy.T).numpy()  # (c, c)
            best = None
            for start in range(self.restarts):
                # the first start is FAQ's barycenter, the others random doubly stochastic matrices
                options = {"maximize": True, "P0": "barycenter" if start == 0 else "randomized", "rng": rng}
                result = quadratic_assignment(Kx, Ky, method="faq", options=options)
                if best is None or result.fun > best.fun:
                    best = result
            assert best is not None  # restarts >= 1
            matched_x.append(cx)
            matched_y.append(cy[torch.from_numpy(best.col_ind)])  # row i: the centroid matched to source centroid i
        return torch.cat(matched_x), torch.cat(matched_y)

    def _refine(self, xr: torch.Tensor, yr: torch.Tensor, known: int, neighbours: torch.Tensor) -> torch.Tensor:
        """Alternate Procrustes on (known pairs, pseudo-pairs) and nearest-neighbour pseudo-partners;
        the last neighbour sets, (n - k, count) target rows."""
        count = neighbours.shape[1]

        def fitted(neighbours: torch.Tensor) -> torch.Tensor:  # (n - k, count) -> (r, r)
            return procrustes(xr, torch.cat([yr[:known], yr[neighbours].mean(dim=1)]))

        W = fitted(neighbours)
        for _ in range(self.iterations):
            scores = (xr[known:] @ W) @ yr.T  # (n - k, n'), cosines up to each mapped row's norm
            new = torch.sort(scores.topk(count, dim=1).indices, dim=1).values  # (n - k, count)
            if torch.equal(new, torch.sort(neighbours, dim=1).values):
                break  # a fixed point of the matching
            neighbours = new
            W = self.smoothing * W + (1 - self.smoothing) * fitted(neighbours)
        return neighbours


def _relative_neighbours(xr: torch.Tensor, yr: torch.Tensor, anchors_x: torch.Tensor, anchors_y: torch.Tensor,
                         count: int) -> torch.Tensor:  # -> (n, count) target rows
    """For each source row, the target rows whose relative representations (cosines to the matched
    anchors, each anchor's column standardised over its own side's rows) are the most similar."""
    Rx = _standard_columns(xr @ _unit_rows(anchors_x).T)  # (n, a)
    Ry = _standard_columns(yr @ _unit_rows(anchors_y).T)  # (n', a)
    similarity = _unit_rows(Rx) @ _unit_rows(Ry).T  # (n, n')
    return similarity.topk(count, dim=1).indices


def _principal_directions(Z: torch.Tensor, r: int, generator: torch.Generator) -> torch.Tensor:  # (n, d) -> (d, r)
    """An orthonormal basis of Z's r leading principal directions (randomised, seeded)."""
    Zc = Z - Z.mean(dim=0)  # (n, d)
    sketch = torch.randn(Z.shape[1], min(r + _OVERSAMPLE, *Z.shape), generator=generator, dtype=Z.dtype)
    basis, _ = torch.linalg.qr(Zc.T @ (Zc @ sketch))  # (d, r + p)
    for _ in range(_POWER_ITERATIONS):  # sharpens the basis towards the leading directions
        basis, _ = torch.linalg.qr(Zc.T @ (Zc @ basis))
    values, vectors = torch.linalg.eigh(basis.T @ (Zc.T @ (Zc @ basis)))  # ascending, (r + p, r + p)
    return basis @ vectors[:, -r:].flip(1)  # (d, r), the largest first


def _centroids(Z: torch.Tensor, c: int, generator: torch.Generator) -> torch.Tensor:  # (n, r) -> (c, r) unit rows
    """k-means clusters of Z's rows, found in their c leading coordinates (Z's columns are principal
    directions, largest first: the cluster structure of c clusters lies mostly in the leading c - 1,
    Ding and He, ICML 2004), and their centroids in all r coordinates, put back on the unit sphere."""
    members = torch.nn.functional.one_hot(_kmeans(Z[:, :c].float(), c, generator), c).to(Z.dtype)  # (n, c)
    return _unit_rows(members.T @ Z)  # the sum of a cluster's rows points where their mean does


def _kmeans(Z: torch.Tensor, c: int, generator: torch.Generator) -> torch.Tensor:  # (n, k) -> (n,) labels
    """Seeded greedy k-means++ seeding (each new centre the best of 2 + ln c candidates drawn by
    squared distance, as scikit-learn's), then Lloyd's iterations until no label changes (an empty
    cluster keeps its previous centre)."""
    n, trials = Z.shape[0], 2 + int(np.log(c))
    centers = Z[torch.randint(n, (1,), generator=generator)]  # (1, k)
    closest = ((Z - centers) ** 2).sum(dim=1)  # (n,) squared distance to the nearest chosen centre
    for _ in range(1, c):
        weights = closest if closest.sum() > _EPS else torch.ones_like(closest)  # all rows equal: any of them
        candidates = torch.multinomial(weights, trials, replacement=True, generator=generator)  # (t,)
        distances = torch.minimum(closest[None, :], torch.cdist(Z[candidates], Z) ** 2)  # (t, n)
        best = int(distances.sum(dim=1).argmin())  # the candidate that leaves the least inertia
        centers, closest = torch.cat([centers, Z[candidates[best]][None]]), distances[best]
    labels = torch.full((n,), -1)
    for _ in range(_LLOYD_ITERATIONS):
        new = ((centers * centers).sum(dim=1)[None, :] - 2 * Z @ centers.T).argmin(dim=1)  # (n,)
        if torch.equal(new, labels):
            break
        labels = new
        members = torch.nn.functional.one_hot(labels, c).to(Z.dtype)  # (n, c)
        sizes = members.sum(dim=0)  # (c,)
        centers = torch.where(sizes[:, None] > 0, members.T @ Z / sizes.clamp_min(1)[:, None], centers)
    return labels


def procrustes(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:  # (m, dx), (m, dy) -> (dx, dy)
    """The orthogonal factor of A^T B, zero on the directions whose singular values are at or below
    rank_tolerance (100 float32 eps) of the largest: the directions the pairs do not span."""
    U, s, Vh = torch.linalg.svd(A.T @ B, full_matrices=False)  # (dx, k), (k,), (k, dy)
    keep = s > rank_tolerance(torch.float32) * s[:1]  # s[:1]: empty when k = 0
    return U[:, keep] @ Vh[keep]


def _unit_rows(Z: torch.Tensor) -> torch.Tensor:  # (m, k) -> (m, k)
    return Z / Z.norm(dim=1, keepdim=True).clamp_min(_EPS)


def _standard_columns(Z: torch.Tensor) -> torch.Tensor:  # (m, k) -> (m, k), each column mean 0, spread 1
    spread = Z.std(dim=0, correction=0)
    return (Z - Z.mean(dim=0)) / torch.where(spread > _EPS, spread, torch.ones_like(spread))
