"""The relative-representations baseline: cosines as scikit-learn computes them (zero rows included),
LbfgsLogistic at scikit-learn's LogisticRegression optimum, and the baseline end to end: spaces
related by an orthogonal map and a scale stitch exactly, an unrelated source does not, and the
outcome does not depend on the thread count."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics.pairwise import cosine_similarity
from threadpoolctl import threadpool_limits

from bench.datasets import load_dataset
from bench.decoders import DECODERS, FeatureScaler
from bench.logistic import LbfgsLogistic
from bench.relative import (
    RELATIVE_DECODER,
    baseline_source_hash,
    fit_relative_decoder,
    relative_representation,
)
from bench.threads import one_thread


def test_relative_representation_is_the_cosine_similarity():
    rng = np.random.default_rng(0)
    Z, anchors = rng.normal(size=(50, 7)) * 3 + 1, rng.normal(size=(9, 7))  # (m, d), (n, d)
    got = relative_representation(torch.from_numpy(Z).float(), torch.from_numpy(anchors).float())
    assert got.dtype == torch.float32 and got.shape == (50, 9)
    np.testing.assert_allclose(got.numpy(), cosine_similarity(Z, anchors), atol=1e-6)


def test_a_zero_row_has_cosine_zero_with_everything():
    """A dead embedding or a zero anchor: 0, as scikit-learn defines it, never NaN."""
    rng = np.random.default_rng(1)
    Z, anchors = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    Z[2], anchors[3] = 0.0, 0.0
    got = relative_representation(torch.from_numpy(Z), torch.from_numpy(anchors)).numpy()  # (6, 5)
    assert np.isfinite(got).all()
    assert np.array_equal(got[2], np.zeros(5)) and np.array_equal(got[:, 3], np.zeros(6))
    np.testing.assert_allclose(got, cosine_similarity(Z, anchors), atol=1e-6)


def _standardised_problem(k: int, p: int, rank: int, seed: int, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """k overlapping Gaussian classes in a rank-`rank` subspace of p features, FeatureScaler-standardised."""
    rng = np.random.default_rng(seed)
    y = rng.integers(k, size=n)
    latent = rng.normal(size=(k, rank))[y] + rng.normal(scale=1.5, size=(n, rank))  # (n, rank)
    X = (latent @ np.random.default_rng(100).normal(size=(rank, p))).astype(np.float32)  # (n, p)
    return FeatureScaler().fit(X).transform(X), y


@pytest.mark.parametrize(("k", "p", "rank", "C"), [
    (4, 20, 20, 1.0),  # multinomial, the recipe's C
    (2, 20, 20, 1.0),  # binary: scikit-learn's single logit, not a two-column softmax
    (5, 30, 6, 1.0),  # rank 6 in 30 features: fitted in the 6 (or 7) directions the features span
    (3, 20, 20, 0.05),  # strongly regularised
])
def test_relative_logistic_reaches_the_sklearn_optimum(k, p, rank, C):
    """Against LogisticRegression solved to tol 1e-12 on the same standardised features and C: the same
    predictions, probabilities within 5e-4 at the recipe's tol (measured: 1.5e-4 at most) and within 5e-5
    at a tight tol (measured: 7e-6), on held-out rows."""
    X, y = _standardised_problem(k, p, rank, seed=0)
    X_test, _ = _standardised_problem(k, p, rank, seed=1)
    reference = LogisticRegression(C=C, tol=1e-12, max_iter=100_000).fit(X.astype(np.float64), y)
    with one_thread():
        ours = LbfgsLogistic(C=C, tol=RELATIVE_DECODER.params["tol"]).fit(X, y)
        tight = LbfgsLogistic(C=C, tol=1e-9, max_iter=10_000).fit(X, y)
    assert ours.coef_.shape == reference.coef_.shape and ours.intercept_.shape == reference.intercept_.shape
    assert np.array_equal(ours.classes_, reference.classes_)
    for model, tolerance in ((ours, 5e-4), (tight, 5e-5)):
        assert np.array_equal(model.predict(X_test), reference.predict(X_test))
        np.testing.assert_allclose(model.predict_proba(X_test), reference.predict_proba(X_test), atol=tolerance)
    assert len(np.unique(reference.predict(X_test))) == k  # every class predicted somewhere


def test_the_recipe_scales_like_the_decoders_and_predicts_in_torch_as_in_sklearn():
    """FeatureScaler first (a near-constant feature dropped, as for every decoder), and LinearHead's
    torch path gives the pipeline's predictions."""
    X, y = _standardised_problem(4, 12, 12, seed=2)
    X = X * np.linspace(0.5, 20, 12, dtype=np.float32) + 3  # unscaled features
    X[:, 5] = 1.0 + np.float32(1e-7) * np.random.default_rng(3).normal(size=len(X)).astype(np.float32)
    pipeline = RELATIVE_DECODER.fit_pipeline(X, y)
    head = RELATIVE_DECODER.fit(X, y)
    assert isinstance(pipeline[0], FeatureScaler) and np.isinf(pipeline[0].scale_[5])
    assert np.array_equal(head.predict_tensor(torch.from_numpy(X)).numpy(), pipeline.predict(X))
    assert np.allclose(head.coef[:, 5], 0.0)  # a dropped feature weighs nothing


def test_the_recipe_identity_names_its_version_and_parameters():
    assert RELATIVE_DECODER.identity == 'relative-logistic v1 {"C": 1.0, "max_iter": 2000, "tol": 1e-05}'
    assert replace(RELATIVE_DECODER, version=2).identity != RELATIVE_DECODER.identity
    assert RELATIVE_DECODER.params["C"] == DECODERS.get("logistic").build().C  # the logistic decoder's regularisation
    assert len(baseline_source_hash("relative")) == 16 and baseline_source_hash("ortho") == ""


def _digits_spaces() -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data = load_dataset("digits")
    fit, evaluation = data.split("train"), data.split("test")
    Y = torch.from_numpy(data.x.reshape(len(data.x), -1).astype(np.float32))  # (n, 64): pixels as a target space
    anchors = np.random.default_rng(0).choice(fit, size=32, replace=False)
    return Y, data.y, fit, evaluation, anchors


def test_a_rotated_and_scaled_source_stitches_exactly_and_an_unrelated_one_does_not():
    """X = 3.7 Y Q, with Q (64, 80) orthonormal columns: cosines are unchanged, so the source's relative
    representation is the target's (to float32 rounding) and the baseline predicts what the target's
    relative decoder predicts on its own: accuracy equal to the native relative accuracy. A source of
    random embeddings, unrelated to the data, stitches at about chance."""
    Y, y, fit, evaluation, anchors = _digits_spaces()
    Q, _ = torch.linalg.qr(torch.randn(80, 64, generator=torch.Generator().manual_seed(0)))  # (80, 64)
    X = 3.7 * Y @ Q.T  # (n, 80)
    unrelated = torch.randn(len(Y), 80, generator=torch.Generator().manual_seed(1))
    decoder = fit_relative_decoder(Y[fit], Y[anchors], y[fit])
    native = decoder.predict(Y[evaluation], Y[anchors])
    stitched = decoder.predict(X[evaluation], X[anchors])
    torch.testing.assert_close(relative_representation(X, X[anchors]), relative_representation(Y, Y[anchors]),
                               atol=1e-5, rtol=0)
    assert torch.equal(stitched, native)
    truth = torch.from_numpy(y[evaluation])
    native_accuracy = (native == truth).double().mean().item()
    unrelated_accuracy = (decoder.predict(unrelated[evaluation], unrelated[anchors]) == truth).double().mean().item()
    assert native_accuracy > 0.85 and unrelated_accuracy < 0.25


def test_any_decoder_recipe_fits_on_relative_features():
    """The slow reference (DECODERS' logistic, scikit-learn's lbfgs) on the same features: nearly the same
    predictions (it stops at its tol of 1e-4, before the optimum)."""
    Y, y, fit, evaluation, anchors = _digits_spaces()
    ours = fit_relative_decoder(Y[fit], Y[anchors], torch.from_numpy(y[fit])).predict(Y[evaluation], Y[anchors])
    sklearns = fit_relative_decoder(Y[fit], Y[anchors], y[fit], recipe=DECODERS.get("logistic"))
    assert sklearns.recipe.name == "logistic"
    assert (sklearns.predict(Y[evaluation], Y[anchors]) == ours).double().mean().item() > 0.98


def test_the_baseline_does_not_depend_on_the_thread_count():
    """Fits run on one thread and the cosines are the same on any thread count: the same weights and
    predictions, bit for bit, from a process on 1 and on 2 threads."""
    Y, y, fit, evaluation, anchors = _digits_spaces()
    X = 2.0 * Y + torch.randn(Y.shape, generator=torch.Generator().manual_seed(2))  # a noisy source
    outcomes = []
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with threadpool_limits(limits=threads):
                decoder = fit_relative_decoder(Y[fit], Y[anchors], y[fit])
                outcomes.append((decoder.head.coef, decoder.predict(X[evaluation], X[anchors])))
    finally:
        torch.set_num_threads(previous)
    (coef_1, predicted_1), (coef_2, predicted_2) = outcomes
    assert torch.equal(coef_1, coef_2) and torch.equal(predicted_1, predicted_2)


def test_features_that_never_vary_leave_the_class_prior():
    """Nothing spanned (r = 0): only the intercepts are fitted, to the fit split's class frequencies."""
    y = np.repeat([0, 1, 2], [70, 20, 10])
    with one_thread():
        model = LbfgsLogistic().fit(np.zeros((100, 5), dtype=np.float32), y)
    np.testing.assert_allclose(model.predict_proba(np.ones((1, 5))), [[0.7, 0.2, 0.1]], atol=1e-6)
    assert np.array_equal(model.coef_, np.zeros((3, 5)))
