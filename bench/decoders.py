"""Decoders: heads fitted on the TARGET encoder's own training embeddings, once per target and
content (kept in the cache, like embeddings: DecoderRecipe.fit).

A stitched prediction is decoder_target(method(X_source)); the native prediction is
decoder_target(Y_target). The decoder never sees translated data while it is fitted.

A decoder is a DecoderRecipe: its name, code version and hyper-parameters form its identity, which
every row it scores carries in its key (bench.results.Result.decoder), so changing a decoder makes
its rows stale instead of mixing them with new ones. Bump `version` whenever a change moves scores.

Every head scales its inputs with FeatureScaler: a StandardScaler that treats as constant the
features the target itself barely varies (std under NEGLIGIBLE_STD of the median feature's).
Standardising such a feature divides by its round-off (all-MiniLM-L6-v2 has one of std 8.5e-9 on
Rotten Tomatoes, 1.9e-7 of the median), so a translation's tiny error there would swing every
prediction; dropped, it weighs nothing, for every method alike. Heads are fitted on one thread
(bench.threads): lbfgs on two threads reaches other weights.
"""
from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import sklearn
import torch
from sklearn.base import ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from bench.cache import cache_key, cached_bytes
from bench.datasets import hash_array
from bench.logistic import LbfgsLogistic
from bench.registry import Registry
from bench.threads import one_thread

# A priori, not tuned: a feature whose spread is under a thousandth of the typical feature's carries
# round-off, not signal. Measured on the suite's targets: what it drops is all-MiniLM-L6-v2's three
# near-constant features (std 0, 0 and 1.9e-7 of the median) and two dead EfficientNet-Lite0 units
# on Fashion-MNIST (0 and 2.7e-4); the next smallest feature of any target is at 0.009.
NEGLIGIBLE_STD = 1e-3


class Decoder(Protocol):
    def predict(self, embeddings: np.ndarray) -> np.ndarray: ...  # (m, d) -> (m,) class ids
    def predict_tensor(self, latents: torch.Tensor) -> torch.Tensor: ...  # (m, d) -> (m,), on the latents' device


class FeatureScaler(StandardScaler):
    """StandardScaler whose negligible features (std < NEGLIGIBLE_STD x the median std) scale to 0:
    their scale_ is infinite, so (x - mean) / scale is 0 whatever a translation puts there."""

    def fit(self, X: np.ndarray, y: Any = None, sample_weight: Any = None) -> FeatureScaler:  # (n, d)
        super().fit(X, y, sample_weight)
        std = np.sqrt(self.var_)  # (d,); scale_ is 1 where std is 0 (StandardScaler's rule for constants)
        self.scale_[std < NEGLIGIBLE_STD * np.median(std)] = np.inf
        return self


@dataclass(frozen=True)
class DecoderRecipe:
    """A decoder's identity (name, code version, hyper-parameters) and how it is fitted."""

    name: str
    version: int
    params: Mapping[str, Any]
    build: Callable[..., ClassifierMixin] = field(repr=False)  # params -> an unfitted classifier

    @property
    def identity(self) -> str:
        """e.g. 'logistic v2 {"max_iter": 2000}': what a scored row records (and keys on)."""
        return f"{self.name} v{self.version} {json.dumps(dict(self.params), sort_keys=True)}"

    def fit_pipeline(self, embeddings: np.ndarray, labels: np.ndarray) -> Pipeline:  # (n, d), (n,)
        """FeatureScaler + the classifier, fitted on one thread."""
        with one_thread():
            return Pipeline([("scale", FeatureScaler()), ("classify", self.build(**self.params))]).fit(
                embeddings, labels)

    def fit(self, embeddings: np.ndarray, labels: np.ndarray) -> LinearHead:  # (n, d), (n,)
        """The fitted head, from the content cache when the same recipe was fitted on the same rows.

        Keyed by content, as embeddings are: the recipe's identity, scikit-learn's version (a new
        one may converge elsewhere) and the sha256 of the rows and labels, so a rerun, another task
        on the same target or a submission's first run reuse the head, and any change refits it."""
        key = cache_key(kind="decoder", recipe=self.identity, sklearn=sklearn.__version__,
                        embeddings=content_hash(embeddings), labels=content_hash(labels))
        return LinearHead.from_bytes(cached_bytes(
            key, ".npz", lambda: LinearHead.from_pipeline(self.fit_pipeline(embeddings, labels)).to_bytes()))


def content_hash(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and values (about 0.1 s for 10,000 x 1,280 float32)."""
    digest = hashlib.sha256()
    hash_array(digest, array)
    return digest.hexdigest()


DECODERS: Registry[DecoderRecipe] = Registry("decoder")


class LinearHead:
    """A fitted FeatureScaler + linear classifier as plain arrays, which predict in torch.

    predict_tensor gives the pipeline's predictions (tested sample for sample) on the latents'
    own device, without scikit-learn's per-call input validation, which was about half the cost of
    scoring a warm cell. Like scikit-learn it scales in the input's dtype and scores in float64.
    The arrays are the whole head: it goes to and from the cache as one .npz without pickling.
    """

    FIELDS = ("mean", "scale", "coef", "intercept", "classes")

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 classes: np.ndarray):  # (d,), (d,), (k, d), (k,), (c,); k = 1 for two classes
        self.mean, self.scale = torch.from_numpy(mean), torch.from_numpy(scale)  # float64
        self.coef = torch.from_numpy(np.asarray(coef, dtype=np.float64))
        self.intercept = torch.from_numpy(np.atleast_1d(np.asarray(intercept, dtype=np.float64)))
        self.classes = torch.from_numpy(classes)

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> LinearHead:
        scaler, classifier = pipeline[0], pipeline[-1]
        return cls(scaler.mean_, scaler.scale_, classifier.coef_, classifier.intercept_, classifier.classes_)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **{name: getattr(self, name).numpy() for name in self.FIELDS})
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes) -> LinearHead:
        with np.load(io.BytesIO(payload), allow_pickle=False) as arrays:
            return cls(*(arrays[name] for name in cls.FIELDS))

    def predict(self, embeddings: np.ndarray) -> np.ndarray:  # (m, d) -> (m,)
        return self.predict_tensor(torch.from_numpy(embeddings)).numpy()

    def predict_tensor(self, latents: torch.Tensor) -> torch.Tensor:  # (m, d) -> (m,) class ids, same device
        device, dtype = latents.device, latents.dtype
        scaled = ((latents.double() - self.mean.to(device)).to(dtype).double() / self.scale.to(device)).to(dtype)
        scores = scaled.double() @ self.coef.to(device).T + self.intercept.to(device)  # (m, k)
        # first maximum on ties, as numpy
        chosen = (scores[:, 0] > 0).long() if scores.shape[1] == 1 else scores.argmax(dim=1)
        return self.classes.to(device)[chosen]


# version 2: FeatureScaler (negligible features dropped) and one thread
DECODERS.add("logistic", DecoderRecipe(
    "logistic", 2, {"max_iter": 2000},
    LogisticRegression))  # multinomial, lbfgs: deterministic on one thread
# the same objective as `logistic`, solved by torch's lbfgs in preconditioned variables (bench.logistic):
# about 4x faster on 10,000 rows of 64 to 128 features; the merging task's head, fitted in every cell
DECODERS.add("logistic-lbfgs", DecoderRecipe(
    "logistic-lbfgs", 1, {"C": 1.0, "max_iter": 2000, "tol": 1e-5},
    LbfgsLogistic))
# a linear SVM head, for checking that conclusions do not hinge on the head's loss
DECODERS.add("linear-svm", DecoderRecipe(
    "linear-svm", 2, {"dual": "auto", "max_iter": 5000, "random_state": 0},
    LinearSVC))

# One-vs-rest logistic probes, one per class (bench.metrics' probe_accuracy and probe_consistency)
PROBES = DecoderRecipe("probes", 2, {"max_iter": 2000},
                       lambda **params: OneVsRestClassifier(LogisticRegression(**params)))
