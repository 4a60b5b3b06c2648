import os
from pathlib import Path

import pytest

from support import SMALL_TASK

# One embedding cache for the whole session, never the user's: tests must not depend on or
# pollute ~/.cache. Encoders trained once here are reused by every test.
_SESSION_CACHE = Path(os.environ.get("BENCH_TEST_CACHE", "/tmp/latent-bench-test-cache"))
os.environ["BENCH_CACHE"] = str(_SESSION_CACHE)


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
