"""What the conformance suites, the executors and the ranking compare against, defined once.

- "the same output": equal shapes, values equal up to float32 rounding relative to the output's
  largest magnitude (elementwise tolerances fail near-zero entries: multithreaded BLAS/LAPACK need
  not be bitwise reproducible). Used by bench/checks.py, bench/merger_checks.py and the fit_many
  spot check of bench/executors.py.
- the two reference rows every score is normalised by: FLOOR, the no-translation method (0), and
  NATIVE, the target decoder on the target's own embeddings (1); and RELATIVE, the baseline the
  harness scores itself beside the methods (a task's `baselines`).

Imports torch only, so that any module may import it.
"""
from __future__ import annotations

import torch

FLOOR = "absolute"  # the no-translation method: the floor of the ranking, never asked to beat itself
NATIVE = "native"  # the method label of the native rows (no stitching): the ceiling of the ranking
RELATIVE = "relative"  # the harness's relative-representations baseline (bench.relative): a decoder, no translation
RTOL = 1e-5


def same_output(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal shapes and values equal up to RTOL of the larger magnitude."""
    if a.shape != b.shape:
        return False
    if a.numel() == 0:
        return True
    a, b = a.double(), b.double()
    scale = torch.maximum(a.abs().max(), b.abs().max())
    return bool((a - b).abs().max() <= RTOL * scale + 1e-12)  # a NaN anywhere compares False


def max_difference(a: torch.Tensor, b: torch.Tensor) -> str:
    if a.shape != b.shape:
        return f"shapes {tuple(a.shape)} and {tuple(b.shape)}"
    return f"max abs difference {(a - b).abs().max().item():.3g}"
