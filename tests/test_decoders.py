"""Decoders: the torch prediction path gives scikit-learn's predictions, sample for sample."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.datasets import load_dataset
from bench.decoders import DECODERS


@pytest.mark.parametrize("decoder", ["logistic", "linear-svm"])
@pytest.mark.parametrize("n_classes", [2, 10])
def test_predict_tensor_equals_the_sklearn_pipeline(decoder, n_classes):
    data = load_dataset("digits")
    keep = data.y < n_classes
    X, y = data.x[keep].reshape(keep.sum(), -1).astype(np.float32), data.y[keep]  # (n, 64) pixels as latents
    head = DECODERS.get(decoder)(X[::2], y[::2])
    rng = np.random.default_rng(0)
    # held-out rows, and the same rows badly translated (scaled, shifted, noisy): many near the boundaries
    for latents in (X[1::2], 1.7 * X[1::2] + 3 + rng.normal(scale=4, size=X[1::2].shape).astype(np.float32)):
        expected = head.predict(latents)
        got = head.predict_tensor(torch.from_numpy(latents))
        assert got.dtype == torch.from_numpy(expected).dtype and np.array_equal(got.numpy(), expected)
    assert len(np.unique(expected)) > 1  # the check saw more than one class predicted
