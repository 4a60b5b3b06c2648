"""LbfgsLogistic: scikit-learn's LogisticRegression objective, minimised by torch's lbfgs in
preconditioned variables: the same model as the `logistic` decoder, several times faster.

Written for the relative-representations baseline (bench.relative: cosines to many anchors are
strongly collinear features, where scikit-learn's lbfgs takes 800 iterations and stops short of the
optimum) and used by the merging task's head too (bench.decoders' `logistic-lbfgs`): on a merged
Fashion-MNIST space (10,000 x 128, 10 classes) scikit-learn's lbfgs takes about 480 iterations and
2.5 s on one thread, this one 170 iterations and 0.6 s, their test predictions agreeing on 99.8%.
Tested against scikit-learn's optimum in tests/test_relative.py.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

# An eigenvalue of the features' Gram matrix at or below this fraction of the largest counts as zero:
# the same cut as the translation methods' (singular values at or below 100 float32 eps of the
# largest, bench.preprocessing.rank_tolerance), squared. The optimum's weights lie in the span of
# the fit features (the loss's gradient does, and the L2 penalty pulls everything else to 0), so
# leaving out directions the features do not span changes nothing but the cost: a target narrower
# than the anchor count (64-d against 256 anchors) is fitted in 65 dimensions, not 256.
RANK_CUT = (100 * float(torch.finfo(torch.float32).eps)) ** 2
REFRESH_AFTER = 30  # lbfgs iterations under the guessed curvature before it is measured (_Problem)



class LbfgsLogistic(ClassifierMixin, BaseEstimator):
    """scikit-learn's LogisticRegression(C) objective (lbfgs, multinomial; binary for two classes),
    minimised with torch's full-batch lbfgs in preconditioned variables; coef_, intercept_ and
    classes_ as scikit-learn lays them out, so bench.decoders.LinearHead predicts with it.

    Objective, as scikit-learn scales it: mean cross-entropy + ||W||^2 / (2 C N), intercept
    unpenalised, N the number of samples. W = V theta, V the eigenvectors of the features' Gram
    matrix (p, r), so the features' directions are uncorrelated and the penalty is ||theta||^2.
    The variables are theta scaled by the objective's curvature (_Problem): first a guess (the
    softmax's curvature at uniform probabilities), then the curvature measured after REFRESH_AFTER
    iterations. `tol` bounds the gradient in those variables, i.e. measured in the objective's own
    curvature units, the same way whatever the feature count and scale.
    """

    def __init__(self, C: float = 1.0, tol: float = 1e-5, max_iter: int = 2000):
        self.C = C
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X: np.ndarray, y: np.ndarray) -> LbfgsLogistic:  # (N, p) standardised, (N,)
        self.classes_, codes = np.unique(y, return_inverse=True)  # (k,), (N,)
        k = len(self.classes_)
        if k < 2:
            raise ValueError(f"logistic regression needs two classes or more, got {k}")
        S = torch.from_numpy(np.asarray(X, dtype=np.float64))  # (N, p)
        eigenvalues, V = torch.linalg.eigh(S.T @ S)  # (p,), (p, p), ascending
        kept = eigenvalues > RANK_CUT * eigenvalues[-1].clamp(min=0)
        eigenvalues, V = eigenvalues[kept], V[:, kept]  # (r,), (p, r)
        problem = _Problem(S @ V, eigenvalues / len(S), codes, k, 1.0 / (self.C * len(S)))

        # float32 passes (half the bytes of a memory-bound product) take lbfgs to tol or to their
        # rounding floor, then float64 passes to tol: the first of them checks tol in float64
        problem.minimise(torch.float32, self.tol, min(REFRESH_AFTER, self.max_iter))
        problem.measure_curvature()
        problem.minimise(torch.float32, self.tol, self.max_iter)
        problem.minimise(torch.float64, self.tol, self.max_iter)
        self.coef_ = (V @ problem.theta).T.numpy()  # (columns, p)
        self.intercept_ = problem.b.numpy()  # (columns,)
        self.n_iter_ = np.array([problem.iterations])
        self.n_evaluations_ = problem.evaluations
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:  # (m, p) -> (m, columns), or (m,) for two classes
        scores = np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, X: np.ndarray) -> np.ndarray:  # (m, p) -> (m,)
        scores = self.decision_function(X)
        return self.classes_[(scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # (m, p) -> (m, k)
        scores = self.decision_function(X)
        scores = np.stack([np.zeros_like(scores), scores], axis=1) if scores.ndim == 1 else scores
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)


class _Problem:
    """The objective over theta (r, columns) and b (columns,), with logits theta^T z + b per sample.

    Its curvature is taken as Kronecker-factored, A (x) Z^T Z / N + penalty, where A (columns,
    columns) is the softmax's curvature averaged over the samples and Z^T Z / N = diag(variances)
    (Z's columns are uncorrelated). In the eigenbasis A = U diag(D) U^T that is diagonal:
    variance_j D_a + penalty for feature j and class direction a. lbfgs runs on
    phi = (theta U) / scale, scale = that curvature^-1/2, where the objective is about as curved in
    every direction: with A a guess (1/k at uniform probabilities) the features' collinearity is
    undone; with A measured, the classes' different separations too.
    """

    def __init__(self, Z: torch.Tensor, variances: torch.Tensor, codes: np.ndarray, k: int, penalty: float):
        self.Z64, self.variances, self.penalty = Z, variances, penalty  # (N, r) float64, (r,), 1 / (C N)
        self.N, r = Z.shape
        self.columns = 1 if k == 2 else k  # two classes: one logit against an implicit 0, as scikit-learn
        self.onehot = torch.zeros(k, self.N, dtype=torch.float64)
        self.onehot[torch.from_numpy(codes), torch.arange(self.N)] = 1.0  # (k, N)
        self.theta = torch.zeros(r, self.columns, dtype=torch.float64)
        self.b = torch.zeros(self.columns, dtype=torch.float64)
        self.features: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}
        self.iterations = self.evaluations = 0
        guess = 0.25 if k == 2 else 1.0 / k  # the softmax's curvature at uniform probabilities
        self.set_curvature(torch.full((self.columns,), guess, dtype=torch.float64), torch.eye(self.columns,
                                                                                               dtype=torch.float64))

    def set_curvature(self, D: torch.Tensor, U: torch.Tensor) -> None:  # A's eigenvalues (columns,), vectors
        self.U = U
        self.scale = (self.variances[:, None] * D + self.penalty).rsqrt()  # (r, columns)
        self.b_map = U * (D + self.penalty).rsqrt()  # b = b_map beta; the intercept is unpenalised

    def data(self, precision: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:  # (N, r), (r, N)
        if precision not in self.features:  # both layouts, so each product reads its matrix row by row
            Z = self.Z64.to(precision)
            self.features[precision] = Z, Z.T.contiguous()
        return self.features[precision]

    def logits(self, theta: torch.Tensor, b: torch.Tensor, precision: torch.dtype) -> torch.Tensor:  # (k, N)
        logits = (theta.T.to(precision) @ self.data(precision)[1]).double() + b[:, None]  # (columns, N)
        return torch.cat([torch.zeros_like(logits), logits]) if self.columns == 1 else logits

    def measure_curvature(self) -> None:
        """A, the softmax's curvature averaged over the samples at the current weights."""
        p = torch.softmax(self.logits(self.theta, self.b, torch.float32), dim=0)[-self.columns:]  # (columns, N)
        D, U = torch.linalg.eigh(torch.diag(p.mean(dim=1)) - p @ p.T / self.N)
        self.set_curvature(D.clamp(min=0), U)

    def minimise(self, precision: torch.dtype, tol: float, max_iter: int) -> None:
        """lbfgs from the current weights, the data passes in `precision`."""
        Z = self.data(precision)[0]
        phi = (self.theta @ self.U) / self.scale  # (r, columns)
        beta = torch.linalg.solve(self.b_map, self.b)  # (columns,)
        x = torch.cat([phi.reshape(-1), beta]).requires_grad_(True)

        def weights(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # -> theta (r, columns), b (columns,)
            phi, beta = x[:-self.columns].view(-1, self.columns), x[-self.columns:]
            return (phi * self.scale) @ self.U.T, self.b_map @ beta

        def objective() -> torch.Tensor:
            theta, b = weights(x.detach())
            log_p = torch.log_softmax(self.logits(theta, b, precision), dim=0)  # (k, N)
            loss = -(log_p * self.onehot).sum() / self.N + 0.5 * self.penalty * (theta ** 2).sum()
            residual = ((log_p.exp() - self.onehot) / self.N)[-self.columns:]  # (columns, N): d loss / d logits
            grad_theta = (residual.to(precision) @ Z).double().T + self.penalty * theta  # (r, columns)
            x.grad = torch.cat([((grad_theta @ self.U) * self.scale).reshape(-1), self.b_map.T @ residual.sum(dim=1)])
            return loss

        solver = torch.optim.LBFGS([x], lr=1, max_iter=max_iter, max_eval=2 * max_iter, tolerance_grad=tol,
                                   tolerance_change=1e-12, history_size=10, line_search_fn="strong_wolfe")
        solver.step(objective)
        self.theta, self.b = weights(x.detach())
        self.iterations += int(solver.state[x]["n_iter"])
        self.evaluations += int(solver.state[x]["func_evals"])
