"""Decoders: heads fitted on the TARGET encoder's own training embeddings, once per target.

A stitched prediction is decoder_target(method(X_source)); the native prediction is
decoder_target(Y_target). The decoder never sees translated data while it is fitted.
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.registry import Registry


class Decoder(Protocol):
    def predict(self, embeddings: np.ndarray) -> np.ndarray: ...  # (m, d) -> (m,) class ids


DECODERS: Registry[Callable[[np.ndarray, np.ndarray], Decoder]] = Registry("decoder")


@DECODERS.register("logistic")
def logistic(embeddings: np.ndarray, labels: np.ndarray) -> Decoder:
    """Multinomial logistic regression on standardised embeddings (lbfgs: deterministic)."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(embeddings, labels)


@DECODERS.register("linear-svm")
def linear_svm(embeddings: np.ndarray, labels: np.ndarray) -> Decoder:
    """A linear SVM head, for checking that conclusions do not hinge on the head's loss."""
    from sklearn.svm import LinearSVC

    return make_pipeline(StandardScaler(), LinearSVC(dual="auto", max_iter=5000, random_state=0)).fit(embeddings, labels)
