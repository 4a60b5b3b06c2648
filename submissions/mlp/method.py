"""mlp: a one-hidden-layer network with a linear skip, trained on the anchors.

    Y_hat_s = Xs @ S + c + act(Xs @ W1 + b1) @ W2          Xs, Ys: standard-scaled (anchor statistics)
    (p, q) skip S and bias c start at the ridge fit (penalty `alpha`); W2 starts at zero

so training starts from an affine map and the hidden layer only adds what the anchors support.
The skip starts from ridge, not plain least squares: with about as many anchors as dimensions
(n ~ p) the least-squares fit interpolates the anchors with huge weights (on digits cross-seed,
64 anchors of dimension 64, the affine map stitches at 0.73 where ridge gives 0.97), and
training cannot undo such a start. alpha is in the units of sklearn's Ridge on the standardised
anchors (the cross-validated `ridge` picks 0.01 to 1 there); alpha = 0 is least squares.
Full-batch Adam on the MSE; the number of epochs is chosen by early stopping, then the network
is refitted on every anchor (with few anchors, holding a fifth out for good would cost more
than early stopping gains):

1. `val_fraction` of the anchors (a seeded permutation) is held out and the skip initialised on
   the rest only, so the held-out loss is honest. Training stops after `patience` epochs without
   improvement of the held-out MSE or at `max_epochs`; the best epoch e* is kept (e* = 0, the
   affine fit itself, when the hidden layer never helps).
2. The same initialisation, with the skip fitted on all anchors, is trained for e* epochs.

Fitted diagnostics: val_losses_ (held-out MSE per epoch of step 1, epoch 0 = the start),
train_losses_ (MSE on all anchors per epoch of step 2), n_epochs_ (e*).

With val_fraction = 0, or too few anchors to hold any out (fewer than 3), step 1 is skipped and
step 2 trains for max_epochs. Seeded (`seed`: the split and W1's nn.Linear-style uniform
initialisation, from a private generator) and deterministic: full batch, no dropout, gradients
written out by hand (so fit also works under torch.no_grad / inference_mode and avoids
autograd's overhead on tiny problems; the test suite checks them against autograd).

Defaults (lr 1e-2, patience 50): the held-out loss typically first rises for some tens of
epochs while the hidden branch grows from zero, then falls below the affine start; a short
patience stops inside that hump and returns the affine fit.

It runs on the input's device, in float64 for float64 input and float32 otherwise. The skip's
start is solved in float64 (with alpha = 0, the minimum-norm solution over the singular values
above rank_tolerance, so that fewer anchors than dimensions have one answer). Training in float32
is sensitive to rounding: Adam follows the sign of gradients that are exactly zero at the
start (the bias's, fitted by centring), so a change of the anchors at the level of float32
rounding moves the trained map by about 1e-3 relative. On the CPU the fit runs on one thread, so
the thread count does not change it.
activation: "relu" or "gelu" (exact, erf-based).
"""
from __future__ import annotations

import math

import torch

from bench.method import Method, register_method
from bench.preprocessing import Preprocessing, rank_tolerance

ACTIVATIONS = ("relu", "gelu")
BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults
PARAMS = ("S", "c", "W1", "b1", "W2")


@register_method("mlp")
class MLP(Method):
    def __init__(
        self,
        hidden: int = 128,
        activation: str = "gelu",
        lr: float = 1e-2,
        max_epochs: int = 500,
        patience: int = 50,
        val_fraction: float = 0.2,
        alpha: float = 0.1,
        seed: int = 0,
    ):
        self.hidden = hidden
        self.activation = activation
        self.lr = lr
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.alpha = alpha
        self.seed = seed

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> "MLP":  # (n, dx), (n, dy)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if int(self.hidden) < 1:
            raise ValueError(f"hidden must be >= 1, got {self.hidden!r}")
        dtype = torch.float64 if X.dtype == torch.float64 else torch.float32
        self.prep_ = Preprocessing("standard", zero_pad=False).fit(X, Y)
        Xs = self.prep_.encode_x(X).detach().to(dtype)  # (n, p)
        Ys = self.prep_.encode_y(Y).detach().to(dtype)  # (n, q)
        n, p = Xs.shape
        generator = torch.Generator().manual_seed(int(self.seed))  # private: the global RNG is untouched
        order = torch.randperm(n, generator=generator).to(X.device)
        bound = 1 / math.sqrt(p)  # nn.Linear's initialisation range, 1/sqrt(fan_in)
        W1 = (torch.rand(p, int(self.hidden), generator=generator, dtype=torch.float64) * 2 - 1) * bound
        b1 = (torch.rand(int(self.hidden), generator=generator, dtype=torch.float64) * 2 - 1) * bound
        n_val = min(max(round(self.val_fraction * n), 1), n - 2) if self.val_fraction > 0 else 0
        # matrices of a few hundred rows: one CPU thread is faster than several, and far faster
        # when other processes hold the cores (multithreaded BLAS then waits on its own threads)
        threads = torch.get_num_threads()
        if X.device.type == "cpu":
            torch.set_num_threads(1)
        try:
            self._fit_scaled(Xs, Ys, order, n_val, W1, b1)
        finally:
            torch.set_num_threads(threads)
        return self

    def _fit_scaled(self, Xs, Ys, order, n_val: int, W1, b1) -> None:
        epochs = int(self.max_epochs)
        self.val_losses_ = []
        if n_val:  # phase 1: how many epochs help, judged on held-out anchors
            val, train = order[:n_val], order[n_val:]
            theta, shapes = _initial(Xs[train], Ys[train], W1, b1, float(self.alpha))
            _, _, self.val_losses_ = self._train(theta, shapes, Xs[train], Ys[train], Xs[val], Ys[val], epochs)
            epochs = int(torch.tensor(self.val_losses_).argmin())
        # phase 2: the same initialisation on every anchor, trained for the chosen number of epochs
        theta, shapes = _initial(Xs, Ys, W1, b1, float(self.alpha))
        theta, self.train_losses_, _ = self._train(theta, shapes, Xs, Ys, None, None, epochs)
        self.n_epochs_ = epochs  # Adam steps of the final fit
        self.params_ = {k: w.clone() for k, w in _unflatten(theta, shapes).items()}

    def _train(self, theta, shapes, X, Y, X_val, Y_val, max_epochs: int):
        """Full-batch Adam from theta; with a hold-out, stop after `patience` epochs without improvement.

        Returns the last theta, the training losses and the held-out losses (epoch 0 = the start)."""
        theta = theta.to(X)
        train_losses, val_losses, best, since_best = [], [], math.inf, 0
        m, v = torch.zeros_like(theta), torch.zeros_like(theta)  # Adam's moment estimates
        for epoch in range(max_epochs + 1):
            params = _unflatten(theta, shapes)
            loss, grads = _loss_and_grads(params, X, Y, self.activation)
            train_losses.append(loss.item())
            if X_val is not None:
                val_losses.append(_mse(_forward(params, X_val, self.activation), Y_val).item())
                best, since_best = (val_losses[-1], 0) if val_losses[-1] < best else (best, since_best + 1)
                if since_best > self.patience:
                    break
            if epoch == max_epochs:
                break
            t = epoch + 1  # one Adam step, as torch.optim.Adam (theta is rebound, never updated in place)
            grad = torch.cat([grads[k].reshape(-1) for k in PARAMS])
            m = BETAS[0] * m + (1 - BETAS[0]) * grad
            v = BETAS[1] * v + (1 - BETAS[1]) * grad**2
            theta = theta - (self.lr / (1 - BETAS[0] ** t)) * m / ((v / (1 - BETAS[1] ** t)).sqrt() + EPS)
        return theta, train_losses, val_losses

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # (m, dx) -> (m, dy)
        self._check_fitted()
        params = {k: w.to(X) for k, w in self.params_.items()}
        return self.prep_.decode_y(_forward(params, self.prep_.encode_x(X), self.activation))


def _initial(X: torch.Tensor, Y: torch.Tensor, W1: torch.Tensor, b1: torch.Tensor, alpha: float):
    """The flat starting parameters: skip and bias from ridge regression on (X, Y) (bias not
    penalised), W1 and b1 as given, W2 zero (the network starts as the affine fit); and the shape
    of each parameter."""
    Xd, Yd = X.detach().cpu().double(), Y.detach().cpu().double()  # (n, p), (n, q)
    x_mean, y_mean = Xd.mean(dim=0), Yd.mean(dim=0)
    Xc, Yc = Xd - x_mean, Yd - y_mean
    if alpha > 0:
        S = torch.linalg.solve(Xc.T @ Xc + alpha * torch.eye(Xd.shape[1], dtype=Xd.dtype), Xc.T @ Yc)  # (p, q)
    else:  # minimum norm, over the singular values above rank_tolerance: one answer when n <= p
        S = torch.linalg.lstsq(Xc, Yc, rcond=rank_tolerance(X.dtype), driver="gelsd").solution  # (p, q)
    W2 = torch.zeros(W1.shape[1], Yd.shape[1], dtype=torch.float64)  # (h, q)
    start = {"S": S, "c": y_mean - x_mean @ S, "W1": W1, "b1": b1, "W2": W2}
    shapes = {k: start[k].shape for k in PARAMS}
    return torch.cat([start[k].reshape(-1) for k in PARAMS]).to(X), shapes


def _unflatten(theta: torch.Tensor, shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    params, start = {}, 0
    for k in PARAMS:
        size = math.prod(shapes[k])
        params[k] = theta[start : start + size].reshape(shapes[k])
        start += size
    return params


def _act(H: torch.Tensor, activation: str) -> torch.Tensor:
    return torch.relu(H) if activation == "relu" else torch.nn.functional.gelu(H)


def _act_and_grad(H: torch.Tensor, activation: str) -> tuple[torch.Tensor, torch.Tensor]:  # act(H), act'(H)
    if activation == "relu":
        positive = H > 0
        return H * positive, positive.to(H.dtype)
    cdf = 0.5 * (1 + torch.erf(H * (1 / math.sqrt(2))))  # gelu(h) = h Phi(h): gelu' = Phi(h) + h phi(h)
    return H * cdf, cdf + H * torch.exp(-0.5 * H * H) * (1 / math.sqrt(2 * math.pi))


def _forward(params: dict[str, torch.Tensor], X: torch.Tensor, activation: str) -> torch.Tensor:  # (m, p) -> (m, q)
    hidden = _act(X @ params["W1"] + params["b1"], activation)  # (m, h)
    return X @ params["S"] + params["c"] + hidden @ params["W2"]


def _mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((prediction - target) ** 2).mean()


def _loss_and_grads(params: dict[str, torch.Tensor], X: torch.Tensor, Y: torch.Tensor, activation: str):
    """The MSE and its gradient with respect to every parameter, by hand: (n, p), (n, q) -> (), dict."""
    H = X @ params["W1"] + params["b1"]  # (n, h)
    A, dA_dH = _act_and_grad(H, activation)  # (n, h), (n, h)
    residual = X @ params["S"] + params["c"] + A @ params["W2"] - Y  # (n, q)
    G = residual * (2 / residual.numel())  # (n, q) d loss / d output
    dH = (G @ params["W2"].T) * dA_dH  # (n, h)
    grads = {"S": X.T @ G, "c": G.sum(dim=0), "W2": A.T @ G, "W1": X.T @ dH, "b1": dH.sum(dim=0)}
    return (residual**2).mean(), grads
