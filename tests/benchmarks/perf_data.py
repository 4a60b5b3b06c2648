"""Seeded inputs for the benchmarks: every run times the same numbers."""
from __future__ import annotations

import torch


def randn(*shape: int, seed: int) -> torch.Tensor:
    """Standard normal float32 from a private generator (the global RNG is left alone)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def related(n: int, dx: int, dy: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Paired (n, dx), (n, dy) embeddings: Y a noisy linear image of X, as real encoders are."""
    X = randn(n, dx, seed=seed)
    W = randn(dx, dy, seed=seed + 1) / dx**0.5  # (dx, dy)
    Y = X @ W + 0.1 * randn(n, dy, seed=seed + 2)
    return X, Y


def shape_id(n: int, dx: int, dy: int) -> str:
    return f"n{n}-{dx}to{dy}"


def bare_procrustes(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:  # (n, dx), (n, dy) -> (dx, dy)
    """The floor of any Procrustes fit: U @ Vh of the reduced SVD of X^T Y, in X's dtype."""
    U, _, Vh = torch.linalg.svd(X.T @ Y, full_matrices=False)  # (dx, k), (k,), (k, dy)
    return U @ Vh
