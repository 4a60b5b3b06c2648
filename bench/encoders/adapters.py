"""Generic encoder adapters, named by prefix, for users with network or with their own models.

| name | what it is |
|---|---|
| `file:<path>` | precomputed embeddings: .npy (rows in the data set's order), .npz (`embeddings` [+ `ids`]), .parquet (`id` column + an `embedding` list column or numeric columns) |
| `st:<model id or dir>` | a sentence-transformers model (its own pooling and normalisation) |
| `hf:<model id or dir>[@mean or @cls]` | a transformers text model (AutoTokenizer + AutoModel) with the declared pooling, mean by default |
| `torchvision:<arch>` | a torchvision ImageNet model (default weights) with its classifier removed |

`resolve_adapter(name)` builds the encoder; the encoder registry resolves these prefixes through
it (see `register_prefixes`). Model ids are loaded through `from_pretrained`, so a local directory
works offline exactly like a hub id online. Weights hashes: the file's bytes for `file:`, the
model's state dict for the others (so a changed checkpoint under the same id is a new cache key).
"""  # noqa: E501  (the table's rows)
from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.datasets import Dataset
from bench.encoders.base import ENCODERS, Encoder, EncoderDataMismatch
from bench.encoders.packaged import (
    EncoderUnavailable,
    batches,
    distinct,
    files_hash,
    images,
    quiet_transformers,
    require_modality,
    texts,
)


def state_hash(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _text_order(samples: list[str]) -> np.ndarray:
    return np.argsort([len(t) for t in samples], kind="stable")  # batches of similar length: less padding


# --- file: precomputed embeddings ---------------------------------------------------------------------------


class FileEncoder(Encoder):
    """Precomputed embeddings read from a .npy, .npz or .parquet file (aligned by sample id when it has ids)."""

    code_version = "1"

    def __init__(self, name: str, path: str):
        self.id, self.path = name, Path(path).expanduser()

    def _file(self) -> Path:
        if not self.path.is_file():
            raise EncoderUnavailable(f"{self.id}: no such file {self.path} (expected precomputed embeddings: "
                                     f".npy, .npz with 'embeddings' [and 'ids'], or .parquet with an 'id' column)")
        return self.path

    def weights_hash(self) -> str:
        return files_hash(self._file())

    def read(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(m, d) embeddings and (m,) sample ids (None when the file has no ids)."""
        path = self._file()
        suffix = path.suffix.lower()
        if suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if "embeddings" not in archive:
                    raise EncoderUnavailable(
                        f"{self.id}: {path} has arrays {list(archive)}, expected 'embeddings' (and 'ids')")
                return archive["embeddings"], (archive["ids"] if "ids" in archive else None)
        if suffix == ".parquet":
            import pandas as pd

            frame = pd.read_parquet(path)
            ids = frame.pop("id").to_numpy() if "id" in frame.columns else None
            if "embedding" in frame.columns:
                return np.stack(frame["embedding"].to_numpy()), ids
            return frame.to_numpy(), ids
        raise EncoderUnavailable(f"{self.id}: unsupported file type {suffix!r} (use .npy, .npz or .parquet)")

    def embed(self, dataset: Dataset, device: torch.device) -> np.ndarray:
        values, ids = self.read()
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2:
            raise EncoderDataMismatch(f"{self.id}: embeddings must be a 2-d (n, d) array, got shape {values.shape}")
        if ids is None:
            if len(values) != len(dataset.y):
                raise EncoderDataMismatch(f"{self.id}: {len(values)} rows but data set {dataset.name!r} has "
                                          f"{len(dataset.y)} samples; store ids to align a different set of rows")
            return values
        row = {str(sample_id): i for i, sample_id in enumerate(np.asarray(ids).tolist())}
        wanted = [str(i) for i in dataset.ids.tolist()]  # type: ignore[union-attr]  # make_dataset sets ids
        missing = [i for i in wanted if i not in row]
        if missing:
            raise EncoderDataMismatch(f"{self.id}: {len(missing)} of the {len(wanted)} samples of {dataset.name!r} "
                                      f"have no row in the file (first: {missing[:3]})")
        return values[[row[i] for i in wanted]]


# --- st: sentence-transformers --------------------------------------------------------------------------------


class SentenceTransformerEncoder(Encoder):
    """A sentence-transformers model by hub id or local directory (its own pooling and normalisation)."""

    modality = "text"
    code_version = "1"
    batch_size = 64

    def __init__(self, name: str, model_id: str):
        self.id, self.model_id = name, model_id

    @functools.cached_property
    def model(self) -> Any:  # a SentenceTransformer (an optional package)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EncoderUnavailable(
                f"{self.id} needs sentence-transformers: pip install sentence-transformers") from None
        quiet_transformers()
        try:
            return SentenceTransformer(self.model_id, device="cpu").eval()
        except OSError as error:  # not on disk and no hub access
            raise EncoderUnavailable(f"{self.id}: cannot load {self.model_id!r} ({error}); give a local directory, or "
                                     f"run once with network so it lands in the Hugging Face cache") from None

    def weights_hash(self) -> str:
        return state_hash(self.model)

    def embed(self, dataset: Dataset, device: torch.device) -> np.ndarray:
        require_modality(self.id, self.modality, dataset)
        samples, rows_of = distinct(texts(dataset))  # each distinct text once: (k,) texts, (n,) rows into them
        order = _text_order(samples)
        model = self.model.to(device)
        chunks = [model.encode([samples[i] for i in order[rows]], batch_size=self.batch_size, convert_to_numpy=True,
                               show_progress_bar=False) for rows in batches(len(samples), self.batch_size, self.id)]
        model.to("cpu")
        out = np.empty((len(samples), chunks[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(chunks)
        return out[rows_of]


# --- hf: transformers with a declared pooling -------------------------------------------------------------------

POOLINGS = ("mean", "cls")


class HFEncoder(Encoder):
    """A transformers text model (AutoTokenizer + AutoModel) with declared pooling of the last hidden state."""

    modality = "text"
    code_version = "1"
    batch_size = 64
    max_tokens = 512

    def __init__(self, name: str, model_id: str, pooling: str = "mean"):
        if pooling not in POOLINGS:
            raise ValueError(f"{name}: pooling must be one of {POOLINGS}, got {pooling!r}")
        self.id, self.model_id, self.pooling = name, model_id, pooling

    @functools.cached_property
    def parts(self) -> tuple[Any, Any]:  # (tokenizer, model) of transformers (an optional package)
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError:
            raise EncoderUnavailable(f"{self.id} needs transformers: pip install transformers") from None
        quiet_transformers()
        try:
            return AutoTokenizer.from_pretrained(self.model_id), AutoModel.from_pretrained(self.model_id).eval()
        except OSError as error:
            raise EncoderUnavailable(f"{self.id}: cannot load {self.model_id!r} ({error}); give a local directory, or "
                                     f"run once with network so it lands in the Hugging Face cache") from None

    def weights_hash(self) -> str:
        return state_hash(self.parts[1])

    @torch.no_grad()
    def embed(self, dataset: Dataset, device: torch.device) -> np.ndarray:
        require_modality(self.id, self.modality, dataset)
        tokenizer, model = self.parts
        model = model.to(device)
        limit = min(self.max_tokens, getattr(tokenizer, "model_max_length", self.max_tokens) or self.max_tokens)
        samples, rows_of = distinct(texts(dataset))  # each distinct text once: (k,) texts, (n,) rows into them
        order = _text_order(samples)
        chunks = []
        for rows in batches(len(samples), self.batch_size, self.id):
            batch = tokenizer([samples[i] for i in order[rows]], padding=True, truncation=True, max_length=limit,
                              return_tensors="pt").to(device)
            hidden = model(**batch).last_hidden_state  # (b, t, h)
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (b, t, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            chunks.append(pooled.float().cpu().numpy())
        model.to("cpu")
        out = np.empty((len(samples), chunks[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(chunks)
        return out[rows_of]


# --- torchvision: ImageNet models -------------------------------------------------------------------------------


class TorchvisionEncoder(Encoder):
    """A torchvision ImageNet classifier (default weights) with its last linear layer removed."""

    modality = "image"
    code_version = "1"
    batch_size = 128

    def __init__(self, name: str, arch: str):
        self.id, self.arch = name, arch

    @functools.cached_property
    def parts(self) -> tuple[Any, Any]:  # (model, preprocessing transform) of torchvision (an optional package)
        try:
            import torchvision
        except ImportError:
            raise EncoderUnavailable(f"{self.id} needs torchvision, installed for your torch "
                                     f"(torch {torch.__version__}: pip install the matching torchvision, pinned, or "
                                     f"pip may replace torch with another build)") from None
        try:
            weights = torchvision.models.get_model_weights(self.arch).DEFAULT
            model = torchvision.models.get_model(self.arch, weights=weights).eval()
        except Exception as error:  # unknown arch, or weights not in the torch hub cache and no network
            raise EncoderUnavailable(
                f"{self.id}: cannot load torchvision {self.arch!r} with its default weights "
                f"({error}); the weights file must be in the torch hub cache (TORCH_HOME)") from None
        for head in ("fc", "classifier", "heads", "head"):
            if hasattr(model, head):
                setattr(model, head, torch.nn.Identity())
                break
        return model, weights.transforms()

    def weights_hash(self) -> str:
        return state_hash(self.parts[0])

    @torch.no_grad()
    def embed(self, dataset: Dataset, device: torch.device) -> np.ndarray:
        require_modality(self.id, self.modality, dataset)
        model, transform = self.parts
        model = model.to(device)
        x = torch.from_numpy(images(dataset))  # (n, c, h, w) in [0, 1]
        chunks = []
        for rows in batches(len(x), self.batch_size, self.id):
            batch = x[rows].to(device)
            if batch.shape[1] == 1:
                batch = batch.expand(-1, 3, -1, -1)
            chunks.append(model(transform(batch)).flatten(1).cpu())
        model.to("cpu")
        return torch.cat(chunks).numpy()


# --- resolution by prefix -----------------------------------------------------------------------------------------


def _hf(name: str, rest: str) -> Encoder:
    model_id, at, pooling = rest.rpartition("@")
    return HFEncoder(name, model_id, pooling) if at and pooling in POOLINGS else HFEncoder(name, rest, "mean")


ADAPTERS: dict[str, Callable[[str, str], Encoder]] = {
    "file": FileEncoder,
    "st": SentenceTransformerEncoder,
    "hf": _hf,
    "torchvision": TorchvisionEncoder,
}


@functools.cache  # one encoder object per name, so its loaded model is reused
def resolve_adapter(name: str) -> Encoder:
    prefix, sep, rest = name.partition(":")
    if not sep or prefix not in ADAPTERS or not rest:
        raise KeyError(f"{name!r} is not an adapter name (use {', '.join(p + ':<...>' for p in ADAPTERS)})")
    return ADAPTERS[prefix](name, rest)


def is_adapter(name: str) -> bool:
    prefix, sep, rest = name.partition(":")
    return bool(sep and rest) and prefix in ADAPTERS


def register_prefixes() -> None:
    """Let the encoder registry resolve `prefix:...` names (when the registry offers a resolver hook)."""
    add_resolver = getattr(ENCODERS, "add_resolver", None)
    if add_resolver is not None:
        for prefix in ADAPTERS:
            add_resolver(f"{prefix}:", resolve_adapter)


register_prefixes()
