"""irp: inverse relative projection (Maiorca et al., 2024, arXiv:2406.15057).

Translation through the relative space, each side fitted on its own anchors:

    Xc = X - mean(Ax)      Ac = Ax - mean(Ax)     (source, centred with the source anchor mean)
    Bc = Ay - mean(Ay)                            (target anchors, centred with their own mean)
    r  = unit(Xc) @ unit(Ac)^T                    (m, n)  relative representation: cosines to the anchors
    z  = argmin_z ||z @ unit(Bc)^T - r||^2 + alpha n/dy ||z||^2   (m, dy)  invert r onto the target anchors
    Y_hat = s * unit(z) + mean(Ay)                s = mean ||Bc_i||: the target anchors' mean norm

Why the inversion works: a unit vector z is determined by its cosines to n >= dy target anchors
that span the space, since unit(Bc) z = r is then a full-rank linear system. If the two spaces
differ by an angle-preserving map (a rotation, a reflection, an isotropic rescaling, after
centring), r is the same in both, so the solution is the target image of the source direction.

What it relies on: the relative representation discards every norm, so only the DIRECTION of
the translated (centred) vector is recovered. The paper's premise is that decoders are
(approximately) scale-invariant: a classifier ending in softmax keeps its arg-max when its input
is rescaled (exactly for a linear head without bias, approximately otherwise), and embedding
norms concentrate around their mean (Gaussian-like norm distributions), so giving every output
the target anchors' mean norm loses little. The target anchor mean is added back at the end: it
undoes the centring the target side was projected with, so the output lives in the raw target
space the decoder was fitted on.

alpha: ridge regulariser of the inversion, relative to the mean eigenvalue of unit(Bc)^T unit(Bc)
(its trace is n, so the penalty added is alpha * n / dy). alpha = 0 is the paper's plain least
squares (the minimum-norm solution, which also makes n < dy anchors well defined). Plain least
squares divides by the smallest singular values of unit(Bc), and real latent spaces are strongly
anisotropic: on digits cross-seed (dy = 64, 256 anchors) they span 9 down to 0.005, so the few
percent by which the two relative representations disagree (cosine 0.977 there) are amplified
into noise and stitched accuracy falls to chance (0.10-0.14, against 0.96 with alpha = 0.3).
The default 0.3 sat at the top of a broad plateau (0.1-1) at 16 to 256 anchors on that task. Only the
direction of z is used, so the overall shrinkage a ridge causes does not matter; what it changes
is how much the weakly spanned directions count.

The whole chain before the final normalisation is linear, so fit folds it into one (dx, dy)
matrix and transform is two matrix products per row: rows are translated independently.
"""
from __future__ import annotations

import torch

from bench.method import Method, register_method

_EPS = 1e-12  # a centred vector shorter than this has no direction: it is left at zero


@register_method("irp")
class InverseRelativeProjection(Method):
    def __init__(self, alpha: float = 0.3):
        self.alpha = alpha

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "InverseRelativeProjection":  # (n, dx), (n, dy)
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        Xd, Yd = X.detach().cpu().double(), Y.detach().cpu().double()  # float64 for the solve
        x_mean, y_mean = Xd.mean(dim=0), Yd.mean(dim=0)  # (dx,), (dy,)
        A = _unit_rows(Xd - x_mean)  # (n, dx) source anchors, centred, unit norm
        Bc = Yd - y_mean  # (n, dy) target anchors, centred
        B = _unit_rows(Bc)  # (n, dy)
        # The inversion, a (n, dy) matrix P with z = r @ P: z = argmin ||z @ B^T - r||^2 + penalty ||z||^2
        n, dy = B.shape
        penalty = self.alpha * n / dy  # alpha times the mean eigenvalue of B^T B (trace n over dy)
        if penalty == 0:
            P = torch.linalg.pinv(B.T)  # minimum-norm least squares
        elif n < dy:  # P = B (B^T B + penalty I)^-1 = (B B^T + penalty I)^-1 B: solve the smaller system
            P = torch.linalg.solve(B @ B.T + penalty * torch.eye(n, dtype=B.dtype), B)
        else:
            P = torch.linalg.solve(B.T @ B + penalty * torch.eye(dy, dtype=B.dtype), B.T).T
        map_ = A.T @ P  # (dx, dy) relative projection r = unit(Xc) @ A^T, then inversion, folded
        self.x_mean_ = x_mean.to(device=X.device, dtype=X.dtype)  # (dx,)
        self.y_mean_ = y_mean.to(device=X.device, dtype=X.dtype)  # (dy,)
        self.map_ = map_.to(device=X.device, dtype=X.dtype)  # (dx, dy)
        self.scale_ = Bc.norm(dim=1).mean().item()  # the target anchors' mean (centred) norm
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        Xc = _unit_rows(X - self.x_mean_.to(X))  # (m, dx) centred, unit norm
        Z = Xc @ self.map_.to(X)  # (m, dy) the relative representation, inverted onto the target
        return self.scale_ * _unit_rows(Z) + self.y_mean_.to(X)


def _unit_rows(Z: torch.Tensor) -> torch.Tensor:  # (m, k) -> (m, k); zero rows stay zero
    norms = Z.norm(dim=1, keepdim=True)
    return Z / torch.where(norms > _EPS, norms, torch.ones_like(norms))
