import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# One embedding cache for the whole session, never the user's: tests must not depend on or
# pollute ~/.cache. Encoders trained once here are reused by every test.
_SESSION_CACHE = Path(os.environ.get("BENCH_TEST_CACHE", "/tmp/latent-bench-test-cache"))
os.environ["BENCH_CACHE"] = str(_SESSION_CACHE)

SMALL_TASK = """\
name: tiny
version: 1
kind: classification
dataset: {name: digits}
encoders: {all: [digits-mlp-w32-s0, digits-mlp-w32-s1]}
anchors: {counts: [16, 64], seeds: [0, 1]}
methods: [absolute, ortho, linear]
metrics: [accuracy, agreement, mse]
"""


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(SMALL_TASK)
    return path


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch) -> Path:
    """An empty cache of this test's own (for tests that corrupt or count cache files)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BENCH_CACHE", str(cache))
    return cache
