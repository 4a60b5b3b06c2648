"""The encoder contract and the embedding cache: an encoder maps a data set's samples to an (n, d)
float32 matrix, cached by content.

Every encoder has an id (as in `bench list encoders`), a weights hash and a code version;
the embedding cache key is built from those and the data set's content hash. The encoders
themselves live in the sibling modules, which register into ENCODERS (bench/encoders/__init__.py).
"""
from __future__ import annotations

import hashlib
import io
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from bench.cache import cache_key, cached_array, cached_bytes
from bench.datasets import Dataset
from bench.registry import Registry


class Encoder(ABC):
    id: str
    dataset: str | None = None  # the one data set this encoder accepts, or None for any
    # what it reads of a data set, "image" or "text" (Dataset.samples): a paired image+text set serves
    # both kinds; None for an encoder that reads no samples (precomputed embeddings)
    modality: str | None = None
    code_version: str = "1"

    @abstractmethod
    def weights_hash(self) -> str:
        """sha256 of the weights actually used (trained or loaded)."""

    @abstractmethod
    def embed(self, dataset: Dataset, device: torch.device) -> np.ndarray:
        """(n, d) float32 embeddings of every sample of the data set, in its order."""

    def describe(self) -> str:
        doc = type(self).__doc__
        return doc.strip().splitlines()[0] if doc else ""


ENCODERS: Registry[Encoder] = Registry("encoder")


class EncoderDataMismatch(ValueError):
    pass


def encoder_modality(encoder_id: str) -> str | None:
    """The modality an encoder reads, from the registry alone (no weights loaded); None when unknown."""
    return ENCODERS.get(encoder_id).modality if encoder_id in ENCODERS else None


def embeddings(encoder_id: str, dataset: Dataset, device: torch.device) -> np.ndarray:
    """(n, d) float32 embeddings of the whole data set, from the cache when possible."""
    return encoder_embeddings(ENCODERS.get(encoder_id), dataset, device)


def encoder_embeddings(encoder: Encoder, dataset: Dataset, device: torch.device) -> np.ndarray:
    """embeddings() for an encoder object that need not be registered (e.g. a merging task's)."""
    encoder_id = encoder.id
    if encoder.dataset is not None and encoder.dataset != dataset.name:
        raise EncoderDataMismatch(f"encoder {encoder_id!r} is trained on {encoder.dataset!r}, not on {dataset.name!r}")
    key = cache_key(kind="embeddings", encoder=encoder_id, weights=encoder.weights_hash(), dataset=dataset.content_hash,
                    split="all", preprocessing="none", code_version=encoder.code_version)
    return cached_array(key, lambda: encoder.embed(dataset, device).astype(np.float32))


Network = TypeVar("Network", bound=nn.Module)


def cached_module(key: str, build: Callable[[], Network], train: Callable[[], nn.Module]) -> Network:
    """A network whose trained weights live in the cache under `key` (trained on a miss)."""

    def train_to_bytes() -> bytes:
        buffer = io.BytesIO()
        torch.save(train().state_dict(), buffer)
        return buffer.getvalue()

    network = build()
    network.load_state_dict(torch.load(io.BytesIO(cached_bytes(key, ".pt", train_to_bytes)), weights_only=True))
    return network.eval()


def module_hash(network: nn.Module) -> str:
    """sha256 of a network's weights, for the embedding cache key."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.cpu().numpy().tobytes())
    return digest.hexdigest()[:16]
