"""Encoders: map a data set's samples to an (n, d) float32 matrix, cached by content.

The contract (Encoder, ENCODERS, embeddings) is bench/encoders/base.py; importing this package
registers the built-in encoders, in this order (the registry's listing order, hence no sorting).
"""
# isort: off
from bench.encoders.base import (ENCODERS, Encoder, EncoderDataMismatch, cached_module, embeddings,  # noqa: F401
                                 encoder_embeddings, encoder_modality, module_hash)
from bench.encoders import autoencoders, trained  # noqa: F401
from bench.encoders import adapters, pretrained, text  # noqa: F401  (offline pretrained encoders, adapters)
# isort: on

__all__ = ["ENCODERS", "Encoder", "EncoderDataMismatch", "cached_module", "embeddings", "encoder_embeddings",
           "encoder_modality", "module_hash"]
