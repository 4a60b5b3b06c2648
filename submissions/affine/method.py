"""affine: a linear map plus a bias between pre-processed anchors (Maiorca et al., 2023).

    theta = [R; b] = argmin ||A theta - Yp||_F^2     A = [Xp, 1]: the last column fits the bias

solver="closed_form" solves it exactly by least squares, in float64 on anchors standardised in
float64. When the fit is ill-determined (fewer anchors than dimensions, duplicated anchors) the
canonical answer is the minimum-norm one, pinv(A) Yp, with the singular values of A below
rank_tolerance (100 eps of the input's dtype: 1.2e-5 of the largest for float32) counted as
zero, so that rounding (thread count, anchor order) cannot pick another.

solver="gradient_descent" is the paper's form: full-batch Adam on the MSE for `steps` steps from a
seeded nn.Linear-style initialisation, with the defaults of the authors' latentis code (300 steps,
lr 1e-3), which stop short of the optimum: that is the method the paper reports.
"""
from __future__ import annotations

import math

import torch

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing, rank_tolerance

SOLVERS = ("closed_form", "gradient_descent")
BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults


@register_method("affine")
class Affine(Method):
    def __init__(
        self,
        preprocessing: str = "standard",
        zero_pad: bool = True,
        solver: str = "closed_form",
        steps: int = 300,
        lr: float = 1e-3,
        seed: int = 0,
    ):
        self.preprocessing = preprocessing
        self.zero_pad = zero_pad
        self.solver = solver
        self.steps = steps
        self.lr = lr
        self.seed = seed

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "Affine":  # (n, dx), (n, dy)
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        self.prep_ = Preprocessing(self.preprocessing, self.zero_pad).fit(X, Y)
        if self.solver == "closed_form":
            Xp, Yp = self.prep_.encode_x(X.cpu().double()), self.prep_.encode_y(Y.cpu().double())  # (n, p), (n, q)
            A = torch.cat([Xp, torch.ones_like(Xp[:, :1])], dim=1)  # (n, p + 1)
            theta = _least_squares(A, Yp, rank_tolerance(X.dtype)).to(device=X.device, dtype=X.dtype)
        else:
            Xp, Yp = self.prep_.encode_x(X), self.prep_.encode_y(Y)  # (n, p), (n, q)
            theta = self._adam(torch.cat([Xp, torch.ones_like(Xp[:, :1])], dim=1), Yp)
        self.weight_, self.bias_ = theta[:-1], theta[-1]  # (p, q), (q,)
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        Z = self.prep_.encode_x(X) @ self.weight_.to(X) + self.bias_.to(X)  # (m, q)
        return self.prep_.decode_y(Z)

    def _adam(self, A: torch.Tensor, Yp: torch.Tensor) -> torch.Tensor:  # (n, p+1), (n, q) -> (p+1, q)
        # a private generator: seeded, and the caller's global RNG stream is left untouched
        generator = torch.Generator().manual_seed(self.seed)
        bound = 1 / math.sqrt(A.shape[1] - 1)  # nn.Linear's initialisation range, 1/sqrt(fan_in)
        theta = (torch.rand(A.shape[1], Yp.shape[1], generator=generator, dtype=torch.float64) * 2 - 1) * bound
        theta = theta.to(A)  # (p + 1, q)
        # the MSE's gradient in closed form rather than autograd: the same Adam iterates, ten
        # times faster on small problems, and fit works under no_grad or inference_mode
        m, v = torch.zeros_like(theta), torch.zeros_like(theta)  # Adam's moment estimates
        for t in range(1, self.steps + 1):
            grad = A.T @ (A @ theta - Yp) * (2 / Yp.numel())  # d mean((A theta - Yp)^2) / d theta
            m = BETAS[0] * m + (1 - BETAS[0]) * grad
            v = BETAS[1] * v + (1 - BETAS[1]) * grad**2
            denom = (v / (1 - BETAS[1] ** t)).sqrt() + EPS
            theta = theta - self.lr / (1 - BETAS[0] ** t) * m / denom
        return theta


def _least_squares(A: torch.Tensor, B: torch.Tensor, rcond: float) -> torch.Tensor:  # (n, p), (n, q) -> (p, q)
    # float64 on the CPU with gelsd: minimum-norm (pinv(A, rcond) @ B) and safe for rank-deficient A
    # (padded zero columns, fewer anchors than dimensions), which CUDA's only driver, gels, is not
    return torch.linalg.lstsq(A, B, rcond=rcond, driver="gelsd").solution
