"""A benchmark for latent-space translation (zero-shot model stitching)."""
from bench.method import Method, register_method

__all__ = ["Method", "register_method"]
__version__ = "0.1.0"
