"""Loading cached embeddings: bench.cache.cached_array on a warm 10,000 x 768 float32 entry."""
from __future__ import annotations

import numpy as np
import pytest

from bench import cache
from bench.perf import measure


@pytest.mark.perf_ci
def test_cached_array_load(benchmark, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    array = np.random.default_rng(0).standard_normal((10_000, 768), dtype=np.float32)  # 30.7 MB
    key = cache.cache_key(bench="perf", what="embeddings", shape=array.shape)
    cache.cached_array(key, lambda: array)  # write the entry once: every timed load is a hit
    plain = tmp_path / "plain.npy"
    np.save(plain, array)  # the floor: the same array, read by numpy with no checksum

    def must_not_compute() -> np.ndarray:
        raise AssertionError("cache miss: the benchmark must time warm loads")

    loaded = measure(
        benchmark,
        lambda: cache.cached_array(key, must_not_compute),
        {"np.load": lambda: np.load(plain)},
        kernels={"np.load": "np.load of the same array from a plain .npy file (no checksum)"},
    )
    assert np.array_equal(loaded, array)
