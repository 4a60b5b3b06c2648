"""Encoders the harness trains itself: small MLP and CNN classifiers on an image data set.

Deterministic given (data set, architecture, latent width, seed): trained on one thread
(bench/threads.py), the same weights on every run of the same machine type, whatever its cores.
Weights are cached under a key of the training configuration and the data set's content hash;
the latent is the layer that feeds the classification head.
Different seeds of one architecture give the paper's cross-seed setting; MLP against CNN the
cross-architecture one.
"""
from __future__ import annotations

import functools
import hashlib

import numpy as np
import torch
from torch import nn

from bench.cache import cache_key
from bench.datasets import Dataset, load_dataset
from bench.encoders.base import ENCODERS, Encoder, cached_module, module_hash
from bench.threads import one_thread

TRAINING = {"epochs": 40, "batch_size": 64, "lr": 1e-3, "split": "train"}  # digits: 1,257 images of 8x8
# Larger data sets need fewer passes (a few minutes of CPU in all, cold); keys of the cache include these.
TRAINING_BY_DATASET = {
    "mnist-5k": {"epochs": 12, "batch_size": 64, "lr": 1e-3, "split": "train"},  # 4,000 images of 28x28
    "fashion-mnist": {"epochs": 5, "batch_size": 128, "lr": 2e-3, "split": "train"},  # 10,000 images of 28x28
}


def training_config(dataset: str) -> dict:
    return TRAINING_BY_DATASET.get(dataset, TRAINING)


def build_network(arch: str, image_shape: tuple[int, ...], width: int, n_classes: int) -> nn.Sequential:
    """A classifier whose layer [-3] outputs the latent (the head is ReLU + Linear).

    Images larger than 16 px (28x28 MNIST-like) are max-pooled by 2 after the first convolution.
    """
    channels, height, breadth = image_shape
    if arch == "mlp":
        trunk = [nn.Flatten(), nn.Linear(channels * height * breadth, 128), nn.ReLU(), nn.Linear(128, width)]
    elif arch == "cnn":
        pool = [nn.MaxPool2d(2)] if height > 16 else []
        trunk = [nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), *pool, nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                 nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(32 * 16, width)]
    else:
        raise ValueError(f"unknown architecture {arch!r}")
    return nn.Sequential(*trunk, nn.ReLU(), nn.Linear(width, n_classes))


def train(dataset: Dataset, arch: str, width: int, seed: int, indices: np.ndarray | None = None) -> nn.Sequential:
    """Adam on cross-entropy over the train split (or over `indices`, whose classes are renumbered
    0..k-1 for a head of k outputs), on the CPU so the weights are reproducible."""
    config = training_config(dataset.name)
    train_idx = dataset.split(config["split"]) if indices is None else indices
    classes, labels = np.unique(dataset.y[train_idx], return_inverse=True)
    torch.manual_seed(seed)
    network = build_network(arch, dataset.x.shape[1:], width, len(classes))
    x = torch.from_numpy(dataset.x[train_idx])  # (n, c, h, w)
    y = torch.from_numpy(labels.astype(np.int64))  # (n,)
    optimizer = torch.optim.Adam(network.parameters(), lr=config["lr"])
    shuffle = torch.Generator().manual_seed(seed)
    with one_thread():  # the same weights whatever the thread count (bench/threads.py)
        for _ in range(config["epochs"]):
            for batch in torch.randperm(len(y), generator=shuffle).split(config["batch_size"]):
                optimizer.zero_grad()
                nn.functional.cross_entropy(network(x[batch]), y[batch]).backward()
                optimizer.step()
    return network.eval()


class TrainedClassifierEncoder(Encoder):
    """A classifier trained by the harness; the latent feeds its classification head.

    With `indices` (and a `tag` naming them) it is trained on those samples and their classes only:
    the task-specific encoders of a merging task (bench/merging.py).
    """

    code_version = "2"  # 2: trained on one thread
    dataset: str  # always one
    modality = "image"

    def __init__(self, dataset: str, arch: str, width: int, seed: int, indices: np.ndarray | None = None,
                 tag: str = ""):
        self.dataset, self.arch, self.width, self.seed = dataset, arch, width, seed
        self.indices = None if indices is None else np.sort(np.asarray(indices, dtype=np.int64))
        self.id = f"{dataset}-{arch}-w{width}-s{seed}" + (f"-{tag}" if tag else "")

    @functools.cached_property
    def network(self) -> nn.Sequential:
        data = load_dataset(self.dataset)
        subset = {} if self.indices is None else {"subset": hashlib.sha256(self.indices.tobytes()).hexdigest()[:16]}
        key = cache_key(kind="weights", arch=self.arch, width=self.width, seed=self.seed, dataset=data.content_hash,
                        training=training_config(self.dataset), code_version=self.code_version,
                        torch=torch.__version__.split("+")[0], **subset)
        n_classes = data.n_classes if self.indices is None else len(np.unique(data.y[self.indices]))
        return cached_module(key, lambda: build_network(self.arch, data.x.shape[1:], self.width, n_classes),
                             lambda: train(data, self.arch, self.width, self.seed, self.indices))

    def weights_hash(self) -> str:
        return module_hash(self.network)

    @torch.no_grad()
    def embed(self, dataset: Dataset, device: torch.device) -> np.ndarray:
        trunk = self.network[:-2].to(device)  # drop the head (ReLU + Linear)
        x = torch.from_numpy(dataset.x)
        chunks = [trunk(batch.to(device)).cpu() for batch in x.split(1024)]
        self.network.to("cpu")
        return torch.cat(chunks).numpy()  # (n, width)


def _register(dataset: str, archs: tuple[str, ...], widths: tuple[int, ...], seeds: tuple[int, ...]) -> None:
    for arch in archs:
        for width in widths:
            for seed in seeds:
                encoder = TrainedClassifierEncoder(dataset, arch, width, seed)
                ENCODERS.add(encoder.id, encoder)


_register("digits", ("mlp", "cnn"), (32, 64), (0, 1, 2))
_register("mnist-5k", ("mlp", "cnn"), (32, 64), (0, 1, 2))
_register("fashion-mnist", ("mlp", "cnn"), (32, 64), (0, 1, 2))
