"""Decoders: the torch prediction path gives scikit-learn's predictions, sample for sample; negligible
features are dropped; a decoder's identity names its version and parameters; a fitted head is
kept in the content cache and refitted when its recipe, rows or labels change."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from bench.cache import CorruptCacheWarning, entries
from bench.datasets import load_dataset
from bench.decoders import DECODERS, NEGLIGIBLE_STD, FeatureScaler, LinearHead


@pytest.mark.parametrize("decoder", ["logistic", "logistic-lbfgs", "linear-svm"])
@pytest.mark.parametrize("n_classes", [2, 10])
def test_predict_tensor_equals_the_sklearn_pipeline(decoder, n_classes):
    data = load_dataset("digits")
    keep = data.y < n_classes
    X, y = data.x[keep].reshape(keep.sum(), -1).astype(np.float32), data.y[keep]  # (n, 64) pixels as latents
    head = DECODERS.get(decoder).fit(X[::2], y[::2])
    pipeline = DECODERS.get(decoder).fit_pipeline(X[::2], y[::2])  # what the head's arrays come from
    rng = np.random.default_rng(0)
    # held-out rows, and the same rows badly translated (scaled, shifted, noisy): many near the boundaries
    for latents in (X[1::2], 1.7 * X[1::2] + 3 + rng.normal(scale=4, size=X[1::2].shape).astype(np.float32)):
        expected = pipeline.predict(latents)
        got = head.predict_tensor(torch.from_numpy(latents))
        assert got.dtype == torch.from_numpy(expected).dtype and np.array_equal(got.numpy(), expected)
    assert len(np.unique(expected)) > 1  # the check saw more than one class predicted


def test_a_negligible_feature_is_dropped_and_the_rest_scaled_as_sklearn_does():
    """FeatureScaler against StandardScaler on the kept columns: the same scaled values there, 0 on a
    feature whose spread is round-off (std 1e-9, under NEGLIGIBLE_STD of the median), whatever a
    translation puts in it, and StandardScaler's own rule (scale 1) for an exactly constant feature
    when most features vary."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6)) * [1.0, 2.0, 0.5, 1.5, 1.0, 1.0]  # (n, 6)
    X[:, 4] = 3.0 + 1e-9 * rng.normal(size=200)  # near-constant: below 1e-3 x the median std
    X[:, 5] = 0.02 * rng.normal(size=200)  # small but real: 0.02 of the median std, kept
    scaler = FeatureScaler().fit(X)
    reference = StandardScaler().fit(X[:, [0, 1, 2, 3, 5]])
    probe = X + rng.normal(size=X.shape)  # a translation's errors, large on the near-constant feature too
    scaled = scaler.transform(probe)
    assert np.allclose(scaled[:, [0, 1, 2, 3, 5]], reference.transform(probe[:, [0, 1, 2, 3, 5]]), rtol=1e-12)
    assert np.array_equal(scaled[:, 4], np.zeros(200))
    assert NEGLIGIBLE_STD * np.median(X.std(0)) > 1e-9 and 0.02 * 0.5 > NEGLIGIBLE_STD  # the case is what it says


def test_the_head_ignores_what_a_translation_puts_in_a_near_constant_feature():
    """The Rotten Tomatoes failure in small: before, a head standardised a feature of std 1e-8 and a
    translation error of 1e-3 there (1e5 standard deviations) swung its predictions."""
    data = load_dataset("digits")
    X = data.x.reshape(len(data.x), -1).astype(np.float32)  # (n, 64) pixels as latents
    X[:, 0] = 1.0 + np.float32(1e-7) * np.random.default_rng(1).normal(size=len(X)).astype(np.float32)
    pipeline = DECODERS.get("logistic").fit_pipeline(X[::2], data.y[::2])
    head = LinearHead.from_pipeline(pipeline)
    shifted = X[1::2].copy()
    shifted[:, 0] += 1e-3
    assert np.array_equal(pipeline.predict(shifted), pipeline.predict(X[1::2]))
    assert np.array_equal(head.predict_tensor(torch.from_numpy(shifted)).numpy(), pipeline.predict(X[1::2]))


def test_a_decoder_identity_names_its_version_and_parameters():
    logistic = DECODERS.get("logistic")
    assert logistic.identity == 'logistic v2 {"max_iter": 2000}'
    assert replace(logistic, version=3).identity != logistic.identity
    assert replace(logistic, params={"max_iter": 100}).identity != logistic.identity


def _digits_latents() -> tuple[np.ndarray, np.ndarray]:
    data = load_dataset("digits")
    return data.x.reshape(len(data.x), -1).astype(np.float32), data.y  # (n, 64) pixels as latents, (n,)


def test_a_fitted_head_comes_back_from_the_cache_with_the_same_arrays(fresh_cache, monkeypatch):
    X, y = _digits_latents()
    logistic = DECODERS.get("logistic")
    first = logistic.fit(X, y)
    assert len(entries()) == 1

    def refit(*args):
        raise AssertionError("the head was refitted although the cache holds it")

    monkeypatch.setattr(type(logistic), "fit_pipeline", refit)
    again = logistic.fit(X.copy(), y.copy())  # equal content, other arrays: a hit
    for name in LinearHead.FIELDS:
        assert torch.equal(getattr(again, name), getattr(first, name)), name
    assert torch.equal(again.predict_tensor(torch.from_numpy(X)), first.predict_tensor(torch.from_numpy(X)))


@pytest.mark.parametrize("change", ["rows", "labels", "version", "parameters"])
def test_a_head_is_refitted_when_its_rows_labels_or_recipe_change(fresh_cache, change):
    X, y = _digits_latents()
    logistic = DECODERS.get("logistic")
    logistic.fit(X, y)
    if change == "rows":
        X = X.copy()
        X[0, 10] += 1.0
    elif change == "labels":
        y = y.copy()
        y[0] = (y[0] + 1) % 10
    elif change == "version":
        logistic = replace(logistic, version=logistic.version + 1)
    else:
        logistic = replace(logistic, params={"max_iter": 50})
    logistic.fit(X, y)
    assert len(entries()) == 2  # a second head: the first one's key did not match


def test_a_corrupt_cached_head_is_reported_and_refitted(fresh_cache):
    X, y = _digits_latents()
    logistic = DECODERS.get("logistic")
    first = logistic.fit(X, y)
    (path,) = entries()
    path.write_bytes(path.read_bytes()[:-20])  # truncated
    with pytest.warns(CorruptCacheWarning, match=str(path)):
        again = logistic.fit(X, y)
    assert torch.equal(again.coef, first.coef)
