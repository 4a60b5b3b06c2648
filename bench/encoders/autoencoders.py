"""Convolutional autoencoders the harness trains itself, for reconstruction stitching.

The latent is the bottleneck; the decoder half is the reconstruction task's decoder: a
stitched reconstruction is decoder_target(method(encoder_source(x))). Pairs that differ in seed
give the semantic-alignment paper's autoencoding experiment, pairs that differ in latent width
the generative-models paper's setting. Deterministic and cached like the trained classifiers.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.cache import cache_key
from bench.datasets import Dataset, load_dataset
from bench.encoders.base import ENCODERS, Encoder, cached_module, module_hash
from bench.threads import one_thread

TRAINING: dict[str, Any] = {"epochs": {"digits": 30, "default": 8}, "batch_size": 128, "lr": 2e-3, "split": "train"}


class Autoencoder(nn.Module):
    """(1, H, W) images with H, W divisible by 4 -> (width,) latent -> (1, H, W) in [0, 1]."""

    def __init__(self, image_shape: tuple[int, int, int], width: int):
        super().__init__()
        channels, height, breadth = image_shape
        self.inner = (32, height // 4, breadth // 4)
        flat = int(np.prod(self.inner))
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, 16, 3, stride=2, padding=1), nn.ReLU(),  # (16, H/2, W/2)
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),  # (32, H/4, W/4)
            nn.Flatten(), nn.Linear(flat, width))
        self.decoder = nn.Sequential(
            nn.Linear(width, flat), nn.ReLU(), nn.Unflatten(1, self.inner),
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),  # (16, H/2, W/2)
            nn.ConvTranspose2d(16, channels, 4, stride=2, padding=1), nn.Sigmoid())  # (c, H, W)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))


def train(dataset: Dataset, width: int, seed: int) -> Autoencoder:
    """Adam on pixel MSE over the train split, on the CPU so the weights are reproducible."""
    torch.manual_seed(seed)
    network = Autoencoder(dataset.x.shape[1:], width)
    x = torch.from_numpy(dataset.x[dataset.split(TRAINING["split"])])  # (n, c, h, w)
    optimizer = torch.optim.Adam(network.parameters(), lr=TRAINING["lr"])
    shuffle = torch.Generator().manual_seed(seed)
    with one_thread():  # the same weights whatever the thread count (bench/threads.py)
        for _ in range(TRAINING["epochs"].get(dataset.name, TRAINING["epochs"]["default"])):
            for batch in torch.randperm(len(x), generator=shuffle).split(TRAINING["batch_size"]):
                optimizer.zero_grad()
                nn.functional.mse_loss(network(x[batch]), x[batch]).backward()
                optimizer.step()
    return network.eval()


class AutoencoderEncoder(Encoder):
    """A convolutional autoencoder trained by the harness; the latent is its bottleneck."""

    code_version = "2"  # 2: trained on one thread
    modality = "image"

    def __init__(self, dataset: str, width: int, seed: int):
        self.dataset, self.width, self.seed = dataset, width, seed
        self.id = f"{dataset}-ae-w{width}-s{seed}"

    @functools.cached_property
    def network(self) -> Autoencoder:
        data = load_dataset(self.dataset)
        key = cache_key(kind="weights", arch="conv-ae", width=self.width, seed=self.seed, dataset=data.content_hash,
                        training=TRAINING, code_version=self.code_version, torch=torch.__version__.split("+")[0])
        return cached_module(key, lambda: Autoencoder(data.x.shape[1:], self.width),
                             lambda: train(data, self.width, self.seed))

    def weights_hash(self) -> str:
        return module_hash(self.network)

    @torch.no_grad()
    def embed(self, dataset: Dataset, device: torch.device) -> np.ndarray:
        encoder = self.network.encoder.to(device)
        chunks = [encoder(batch.to(device)).cpu() for batch in torch.from_numpy(dataset.x).split(1024)]
        self.network.to("cpu")
        return torch.cat(chunks).numpy()  # (n, width)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(m, width) latents -> (m, c, h, w) images on the latents' device."""
        decoder = self.network.decoder.to(latents.device)
        return torch.cat([decoder(batch) for batch in latents.split(1024)])


def _register(dataset: str, widths: tuple[int, ...], seeds: tuple[int, ...]) -> None:
    for width in widths:
        for seed in seeds:
            encoder = AutoencoderEncoder(dataset, width, seed)
            ENCODERS.add(encoder.id, encoder)


_register("digits", (16, 32), (0, 1))
_register("fashion-mnist", (32, 64), (0, 1))
