"""The relative-representations stitching baseline (Moschella et al., ICLR 2023).

An embedding is replaced by its cosine similarities to the n anchors of its own space:

    rel(x) = [cos(x, a_1), ..., cos(x, a_n)]                      (m, d), (n, d) -> (m, n)

Cosines do not change when a space is rotated, reflected or rescaled, so two encoders that differ by
such a map give the same relative representation of the same samples, whatever their widths. For one
cell (source, target, n anchors of a seed) the paper's zero-shot stitching is then:

    decoder   = fitted on rel(Y_target[fit split], Y_target[anchors]) and the fit split's labels  (N_fit, n)
    predicted = decoder(rel(X_source[eval split], X_source[anchors]))                             (m, n)

with no translation, and the predictions are scored like any stitched cell. The paper trains on
relative representations the same head it trains on absolute ones; here that is the harness's
`logistic` decoder (bench.decoders): FeatureScaler, then L2-regularised multinomial logistic
regression with C = 1. So the baseline differs from the native decoder in its features only.

The head is the same model solved another way (bench.logistic.LbfgsLogistic), because every cell needs one and
scikit-learn's lbfgs is slow on these features: cosines to many anchors are strongly collinear and
the regularisation is weak (C = 1 over 10,000 samples). Measured on one thread (CPU time, on a
shared 2-core machine), Fashion-MNIST, EfficientNet-Lite2 target, 10 classes:

    fit features (N, n)   scikit-learn lbfgs, tol 1e-4      LbfgsLogistic, tol 1e-5
    (10,000, 1,024)       16 s, 803-846 iterations           6.0-6.7 s, 233-242 iterations
    (10,000, 256)         2.6-3.0 s, 431-470 iterations      1.4-2.2 s, 167-182 iterations

and scikit-learn stops short of the optimum: against a tol = 1e-8 solve (1,852 and 5,928
iterations), 24 and 29 of its 2,000 stitched predictions differ (256 and 1,024 anchors);
LbfgsLogistic's differ in none, its probabilities within 4e-3. Digits cells (1,257 x 64 or 256) take 0.1 s,
Rotten Tomatoes (3,000 x 1,024, 3 classes) 0.7 s, a 64-d target at 1,024 anchors 2.6 s
(scikit-learn: 18 s). A decoder depends on the target and the anchor samples only, so cells
that share them (every source of a target, under a sampling that does not depend on the source)
can share it.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from bench.compare import RELATIVE
from bench.decoders import DecoderRecipe, LinearHead
from bench.logistic import LbfgsLogistic


def relative_representation(Z: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """(m, d), (n, d) -> (m, n) cosine similarities, float32, on Z's device.

    A zero row (a dead embedding, or a zero anchor) has no direction: its cosine with everything is
    defined as 0, as scikit-learn's cosine_similarity defines it, instead of 0 / 0 = NaN.
    """
    units = _unit_rows(Z.float())  # (m, d)
    anchor_units = _unit_rows(anchors.float().to(Z.device))  # (n, d)
    return units @ anchor_units.T


def _unit_rows(Z: torch.Tensor) -> torch.Tensor:  # (m, d) -> (m, d)
    norms = torch.linalg.vector_norm(Z, dim=1, keepdim=True)  # (m, 1)
    return Z / torch.where(norms > 0, norms, torch.ones_like(norms))  # a zero row stays 0


# version 1: LbfgsLogistic (then named RelativeLogistic), tol 1e-5 on the preconditioned gradient
RELATIVE_DECODER = DecoderRecipe("relative-logistic", 1, {"C": 1.0, "max_iter": 2000, "tol": 1e-5}, LbfgsLogistic)


class RelativeDecoder:
    """A head fitted on the target's relative representation, fed the source's."""

    def __init__(self, head: LinearHead, recipe: DecoderRecipe):
        self.head, self.recipe = head, recipe

    def predict(self, X_eval: torch.Tensor, X_anchors: torch.Tensor) -> torch.Tensor:  # (m, dx), (n, dx) -> (m,)
        """Class ids of the source's evaluation embeddings, on X_eval's device."""
        return self.head.predict_tensor(relative_representation(X_eval, X_anchors))


def fit_relative_decoder(Y_fit: torch.Tensor, Y_anchors: torch.Tensor, labels: np.ndarray | torch.Tensor,
                         recipe: DecoderRecipe = RELATIVE_DECODER) -> RelativeDecoder:  # (N, dy), (n, dy), (N,)
    """The recipe's head (FeatureScaler + classifier, fitted on one thread) on the target's relative
    representation of its fit split; any DecoderRecipe works (DECODERS' logistic is the slow reference)."""
    features = relative_representation(Y_fit, Y_anchors).cpu().numpy()  # (N, n) float32
    labels = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    # not through the cache (recipe.fit): this fit is the baseline's cost, which its rows record
    return RelativeDecoder(LinearHead.from_pipeline(recipe.fit_pipeline(features, labels)), recipe)


def baseline_source_hash(name: str) -> str:
    """What keys the rows of a baseline the harness scores itself (bench.compare): the relative
    baseline's recipe identity, hashed, so a new version or parameter makes its stored rows stale;
    "" for the native ceiling, whose decoder is in every row's key already."""
    if name != RELATIVE:
        return ""
    return hashlib.sha256(RELATIVE_DECODER.identity.encode()).hexdigest()[:16]


# what the leaderboard's Methods table shows for the baseline, which has no submission folder and no card.yaml
CARD = {
    "title": "relative representations (no translation)",
    "authors": ["Luca Moschella", "Valentino Maiorca", "Marco Fumero", "Antonio Norelli", "Francesco Locatello",
                "Emanuele Rodolà"],
    "paper": "https://arxiv.org/abs/2209.15430",
    "license": "MIT",
    "defaults_chosen_by": "A priori: the task's logistic decoder (C = 1) on cosines to the cell's own anchors, "
                          "as the paper trains its usual head on relative representations; nothing is tuned.",
}
