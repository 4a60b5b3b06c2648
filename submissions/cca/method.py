"""cca: translation through the canonical space of the anchors (canonical correlation analysis).

After standard scaling (anchor statistics), regularised CCA finds k pairs of directions
(Wx[:, j], Wy[:, j]) whose anchor projections are maximally correlated, with unit variance and
mutually uncorrelated scores on each side:

    Cxx = Xs^T Xs / n + reg I    Cyy = Ys^T Ys / n + reg I    Cxy = Xs^T Ys / n     (dx, dx) ...
    Cxx^{-1/2} Cxy Cyy^{-1/2} = U diag(rho) V^T                                     (whitened SVD)
    Wx = Cxx^{-1/2} U[:, :k]     Wy = Cyy^{-1/2} V[:, :k]     rho[:k]: canonical correlations

The canonical space is a bridge shared by both spaces (as the relative space of `irp`): a source
vector is projected onto it with Wx, and brought into the target with the map that reconstructs
the target from ITS OWN canonical scores,

    D = argmin_D ||Ys Wy D - Ys||_F      (k, dy) least squares on the anchors
    Y_hat = unstandardise(Xs_new @ Wx @ D)

Why this back-map: (1) it is the best linear read-out of Y's canonical coordinates on the
anchors, so with k < dy the discarded directions are handled in the least-squares sense rather
than by the Euclidean pseudo-inverse of Wy, which ignores the correlation between Y's features;
with k = dy and reg = 0 both coincide with Wy^{-1}. (2) The source scores are used as stand-ins
for the target scores without the shrinkage by rho that regressing Ys on Xs Wx would apply: both
score sets have unit variance, so the translation keeps the target's spread, as the orthogonal
methods do (shrunk outputs, as least squares gives with poorly correlated components, are pulled
toward the mean and hurt classifiers).

n_components: k, default None = min(dx, dy, n - 1) (with n anchors, at most n - 1 centred
directions exist). reg: ridge added to both covariances, in units of the standardised variance
(1 per feature); it keeps the whitening finite when n <= d, where unregularised CCA finds
spurious perfect correlations.

Canonical answer: the fit runs in float64 on anchors standardised in float64. A component whose
canonical correlation is zero (at or below rank_tolerance, 100 eps of the input's dtype: 1.2e-5
of the largest for float32) has no defined direction: with duplicated or too few anchors its
singular vectors are any completion of the others, picked by rounding. Its weights are set to
zero (it adds nothing to the map, and its correlation is reported as 0). Every other pair of
singular vectors gets a fixed sign, the largest entry of U[:, j] positive (sklearn's svd_flip);
the map does not depend on it, the reported weights do.
"""
from __future__ import annotations

import scipy.linalg
import torch

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing, rank_tolerance


@register_method("cca")
class CCA(Method):
    def __init__(self, n_components: int | None = None, reg: float = 1e-3):
        self.n_components = n_components
        self.reg = reg

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "CCA":  # (n, dx), (n, dy)
        if self.reg < 0:
            raise ValueError(f"reg must be >= 0, got {self.reg!r}")
        n, dx, dy = X.shape[0], X.shape[1], Y.shape[1]
        k = min(dx, dy, max(n - 1, 1)) if self.n_components is None else int(self.n_components)
        if not 1 <= k <= min(dx, dy):
            raise ValueError(f"n_components must be in [1, min(dx, dy) = {min(dx, dy)}], got {self.n_components!r}")
        self.prep_ = Preprocessing("standard", zero_pad=False).fit(X, Y)
        Xs = self.prep_.encode_x(X.detach().cpu().double())  # (n, dx), float64 on the CPU
        Ys = self.prep_.encode_y(Y.detach().cpu().double())  # (n, dy)
        Cxx = Xs.T @ Xs / n + self.reg * torch.eye(dx, dtype=Xs.dtype)  # (dx, dx)
        Cyy = Ys.T @ Ys / n + self.reg * torch.eye(dy, dtype=Ys.dtype)  # (dy, dy)
        Cxy = Xs.T @ Ys / n  # (dx, dy)
        Kx, Ky = _inv_sqrt(Cxx), _inv_sqrt(Cyy)  # (dx, dx), (dy, dy)
        U, rho, Vh = svd(Kx @ Cxy @ Ky)  # (dx, r), (r,), (r, dy)
        U, rho, V = U[:, :k], rho[:k], Vh[:k].T  # (dx, k), (k,), (dy, k)
        defined = rho > rank_tolerance(X.dtype) * rho[0]  # (k,) components of nonzero correlation
        signs = torch.sign(U.gather(0, U.abs().argmax(dim=0, keepdim=True))[0]) * defined  # (k,) +1, -1 or 0
        U, V, rho = U * signs, V * signs, rho * defined
        Wx, Wy = Kx @ U, Ky @ V  # (dx, k), (dy, k)
        D = torch.linalg.lstsq(Ys @ Wy, Ys, rcond=rank_tolerance(X.dtype), driver="gelsd").solution  # (k, dy)
        self.correlations_ = rho.clone()  # (k,) canonical correlations (of the regularised problem)
        self.x_weights_ = Wx.to(device=X.device, dtype=X.dtype)  # (dx, k)
        self.y_weights_ = Wy.to(device=X.device, dtype=X.dtype)  # (dy, k)
        self.map_ = (Wx @ D).to(device=X.device, dtype=X.dtype)  # (dx, dy) projection then read-out
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        return self.prep_.decode_y(self.prep_.encode_x(X) @ self.map_.to(X))


def _inv_sqrt(C: torch.Tensor) -> torch.Tensor:  # (d, d) symmetric PSD -> C^{-1/2}, pseudo-inverse on its null space
    values, vectors = torch.linalg.eigh(C)
    keep = values > 1e-12 * values.max().clamp_min(1e-300)
    inv = torch.where(keep, values.clamp_min(1e-300).rsqrt(), torch.zeros_like(values))
    return (vectors * inv) @ vectors.T


def svd(M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # (p, q) float64 CPU
    """The reduced SVD by LAPACK's divide and conquer (gesdd) or, when that fails to converge, by
    QR iteration (gesvd), slower but convergent where gesdd is not: gesdd failed once on one thread
    (a null's shuffled anchors, Fashion-MNIST, 1,024 anchors of width 1,280) and not on two."""
    try:
        return torch.linalg.svd(M, full_matrices=False)  # (p, r), (r,), (r, q)
    except torch.linalg.LinAlgError:
        U, s, Vh = scipy.linalg.svd(M.numpy(), full_matrices=False, lapack_driver="gesvd")
        return torch.from_numpy(U), torch.from_numpy(s), torch.from_numpy(Vh)
