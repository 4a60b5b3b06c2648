"""Decoders: heads fitted on the TARGET encoder's own training embeddings, once per target.

A stitched prediction is decoder_target(method(X_source)); the native prediction is
decoder_target(Y_target). The decoder never sees translated data while it is fitted.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.registry import Registry


class Decoder(Protocol):
    def predict(self, embeddings: np.ndarray) -> np.ndarray: ...  # (m, d) -> (m,) class ids
    def predict_tensor(self, latents: torch.Tensor) -> torch.Tensor: ...  # (m, d) -> (m,), on the latents' device


DECODERS: Registry[Callable[[np.ndarray, np.ndarray], Decoder]] = Registry("decoder")


class LinearHead:
    """A fitted StandardScaler + linear classifier pipeline that also predicts in torch.

    predict_tensor gives the pipeline's predictions (tested sample for sample) on the latents'
    own device, without scikit-learn's per-call input validation, which was about half the cost of
    scoring a warm cell. Like scikit-learn it scales in the input's dtype and scores in float64.
    """

    def __init__(self, pipeline: Pipeline):
        scaler, classifier = pipeline[0], pipeline[-1]
        self.pipeline = pipeline
        self.mean, self.scale = torch.from_numpy(scaler.mean_), torch.from_numpy(scaler.scale_)  # (d,), (d,) float64
        self.coef = torch.from_numpy(np.asarray(classifier.coef_, dtype=np.float64))  # (k, d); k = 1 for two classes
        self.intercept = torch.from_numpy(np.atleast_1d(np.asarray(classifier.intercept_, dtype=np.float64)))  # (k,)
        self.classes = torch.from_numpy(classifier.classes_)  # (c,)

    def predict(self, embeddings: np.ndarray) -> np.ndarray:  # (m, d) -> (m,)
        return self.pipeline.predict(embeddings)

    def predict_tensor(self, latents: torch.Tensor) -> torch.Tensor:  # (m, d) -> (m,) class ids, same device
        device, dtype = latents.device, latents.dtype
        scaled = ((latents.double() - self.mean.to(device)).to(dtype).double() / self.scale.to(device)).to(dtype)
        scores = scaled.double() @ self.coef.to(device).T + self.intercept.to(device)  # (m, k)
        # first maximum on ties, as numpy
        chosen = (scores[:, 0] > 0).long() if scores.shape[1] == 1 else scores.argmax(dim=1)
        return self.classes.to(device)[chosen]


@DECODERS.register("logistic")
def logistic(embeddings: np.ndarray, labels: np.ndarray) -> LinearHead:
    """Multinomial logistic regression on standardised embeddings (lbfgs: deterministic)."""
    return LinearHead(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(embeddings, labels))


@DECODERS.register("linear-svm")
def linear_svm(embeddings: np.ndarray, labels: np.ndarray) -> LinearHead:
    """A linear SVM head, for checking that conclusions do not hinge on the head's loss."""
    from sklearn.svm import LinearSVC

    svm = LinearSVC(dual="auto", max_iter=5000, random_state=0)
    return LinearHead(make_pipeline(StandardScaler(), svm).fit(embeddings, labels))
