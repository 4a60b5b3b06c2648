"""One thread for the fits whose outcome must not depend on the machine's thread count.

A parallel reduction sums in an order set by the number of threads, and training a network or an
iterative solver (lbfgs, k-means) carries that round-off into other weights, anchors or decisions:
the harness's own encoders trained on one thread and on two differ in every weight. So everything
the harness fits itself (encoders, decoders and probes, k-means anchors) runs on one torch thread and
one BLAS/OpenMP thread; inference and scoring keep every thread (their results were measured equal,
bit for bit, on one and two threads).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits


@contextmanager
def one_thread() -> Iterator[None]:
    """torch's intra-op pool and every BLAS/OpenMP pool held to one thread inside the block."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)
