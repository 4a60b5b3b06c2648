"""Faults and bad input: hostile or broken submissions, kills, concurrent runs, corrupt files."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch

from bench import cache
from bench.executors import LocalExecutor
from bench.sandbox import ProcessExecutor
from bench.method import METHODS, register_folder
from bench.results import ResultStore
from bench.runner import Summary, run_task
from bench.task import load_task
from support import REPO, SMALL_TASK

FIT_DY = "    def fit(self, X, Y):\n        self.dy_ = Y.shape[1]\n        return self\n"
HOSTILE = {  # name -> the body of a Method subclass
    "hangs": "    def fit(self, X, Y):\n        time.sleep(600)\n        return self\n",
    "crashes": "    def fit(self, X, Y):\n        os._exit(3)\n",
    "segfaults": "    def fit(self, X, Y):\n        os.kill(os.getpid(), signal.SIGSEGV)\n",
    "hogs": "    def fit(self, X, Y):\n        self.waste_ = torch.ones(2**31, dtype=torch.float64)\n        return self\n",
    "raises": "    def fit(self, X, Y):\n        raise ValueError('bad anchors')\n",
    "returns-nan": FIT_DY + "    def transform(self, X):\n        return torch.full((X.shape[0], self.dy_), float('nan'))\n",
    "wrong-shape": FIT_DY + "    def transform(self, X):\n        return torch.zeros(X.shape[0], self.dy_ - 1)\n",
    "wrong-device": FIT_DY + "    def transform(self, X):\n        return torch.zeros(X.shape[0], self.dy_, device='meta')\n",
    "returns-numpy": FIT_DY + "    def transform(self, X):\n        return numpy.zeros((X.shape[0], self.dy_))\n",
}
REASONS = {
    "hangs": "time limit", "crashes": "crash: the worker process died", "segfaults": "killed by signal 11",
    "hogs": "exceeded its memory limit (2048 MiB)", "raises": "fit: ValueError: bad anchors", "returns-nan": "non-finite values",
    "wrong-shape": "expected (m, dy)", "wrong-device": "must stay on the input's device",
    "returns-numpy": "must return a torch.Tensor", "import-error": "cannot import: ModuleNotFoundError",
    "syntax-error": "cannot import: SyntaxError",
}


def write_submission(root, name: str, body: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    header = f"import os, signal, time\nimport numpy, torch\nfrom bench import Method, register_method\n\n\n@register_method({name!r})\nclass M(Method):\n"
    default_transform = "    def transform(self, X):\n        return X\n"
    (folder / "method.py").write_text(header + body + ("" if "def transform" in body else default_transform))


@pytest.fixture
def hostile_submissions(tmp_path, monkeypatch):
    METHODS.names()  # discover the real submissions first
    root = tmp_path / "submissions"
    shutil.copytree(REPO / "submissions" / "ortho", root / "ortho")  # the workers see only this folder
    for name, body in HOSTILE.items():
        write_submission(root, name, body)
    (root / "import-error").mkdir()
    (root / "import-error" / "method.py").write_text("import package_that_does_not_exist\n")
    (root / "syntax-error").mkdir()
    (root / "syntax-error" / "method.py").write_text("def broken(:\n")
    monkeypatch.setenv("BENCH_SUBMISSIONS", str(root))  # the spawned workers discover them too
    saved = dict(METHODS._entries)
    for folder in sorted(root.iterdir()):
        register_folder(folder)
    yield root
    METHODS._entries.clear()
    METHODS._entries.update(saved)


def test_every_hostile_or_broken_submission_fails_its_cells_with_a_reason(tmp_path, hostile_submissions):
    names = sorted(REASONS)
    path = tmp_path / "t.yaml"
    path.write_text(SMALL_TASK.replace("methods: [absolute, ortho, linear]", f"methods: [ortho, {', '.join(names)}]")
                    .replace("counts: [16, 64], seeds: [0, 1]", "counts: [16], seeds: [0]")
                    + "limits: {time_s: 8, memory_mb: 2048}\n")
    summary = Summary()
    run_task(load_task(path), ResultStore(tmp_path / "r"), torch.device("cpu"), summary, progress=False,
             executor=ProcessExecutor(workers=2))
    rows = ResultStore(tmp_path / "r").rows()
    by_method = {}
    for row in rows:
        by_method.setdefault(row.method, []).append(row)
    assert all(r.status == "ok" for r in by_method["ortho"])  # the run went on around them
    for name in names:
        assert len(by_method[name]) == 2, name
        for row in by_method[name]:
            assert row.status == "failed" and REASONS[name] in row.error, (name, row.error)
    assert summary.failed == 2 * len(names)


def test_local_and_process_executors_give_identical_results(task_file, tmp_path):
    task = load_task(task_file)
    for name, executor in (("local", LocalExecutor()), ("process", ProcessExecutor(workers=2))):
        run_task(task, ResultStore(tmp_path / name), torch.device("cpu"), Summary(), progress=False, executor=executor)
    assert _scores(tmp_path / "local") == _scores(tmp_path / "process")


def test_ray_executor_matches_local(task_file, tmp_path):
    ray = pytest.importorskip("ray") if os.environ.get("BENCH_ALLOW_NO_RAY") else __import__("ray")
    from bench.sandbox import RayExecutor

    task = load_task(task_file)
    run_task(task, ResultStore(tmp_path / "local"), torch.device("cpu"), Summary(), progress=False)
    try:
        executor = RayExecutor()
        run_task(task, ResultStore(tmp_path / "ray"), torch.device("cpu"), Summary(), progress=False, executor=executor)
    finally:
        ray.shutdown()
    assert _scores(tmp_path / "local") == _scores(tmp_path / "ray")


def _scores(results) -> dict:
    """Cell -> metrics, rounded to float32 precision (threads may reorder a float sum)."""
    return {(r.method, r.source, r.target, r.n_anchors, r.seed): {k: round(v, 5) for k, v in r.metrics.items()}
            for r in ResultStore(results).rows()}


def _bench(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_sigkill_at_random_points_then_rerun_equals_uninterrupted(task_file, tmp_path):
    args = ["run", str(task_file), "--quiet", "--results"]
    assert _bench(*args, str(tmp_path / "clean")).wait() == 0
    rng = random.Random(0)
    for _ in range(4):
        process = _bench(*args, str(tmp_path / "killed"))
        time.sleep(rng.uniform(2.0, 6.0))  # import, embeddings, cells, writes: anywhere
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert _bench(*args, str(tmp_path / "killed")).wait() == 0
    lines = [line for path in (tmp_path / "killed").rglob("*.jsonl") for line in path.read_text().splitlines()]
    keys = [(json.loads(l)["method"], json.loads(l)["source"], json.loads(l)["n_anchors"], json.loads(l)["seed"]) for l in lines]
    assert len(keys) == len(set(keys))  # no duplicate rows
    assert _scores(tmp_path / "killed") == _scores(tmp_path / "clean")
    assert not list((tmp_path / "killed").rglob("*.tmp"))


def test_two_runs_on_one_results_directory(task_file, tmp_path):
    args = ["run", str(task_file), "--quiet", "--results", str(tmp_path / "shared")]
    first, second = _bench(*args), _bench(*args)
    assert first.wait() == 0 and second.wait() == 0
    rows = ResultStore(tmp_path / "shared").rows()
    assert len(rows) == 24 + 2  # every cell once, plus the two native rows
    assert len({(r.method, r.source, r.n_anchors, r.seed) for r in rows}) == len(rows)


def test_corrupt_cache_file_is_detected_and_recomputed(fresh_cache):
    calls = []
    compute = lambda: calls.append(1) or np.arange(12, dtype=np.float32).reshape(3, 4)
    key = cache.cache_key(kind="test", n=1)
    first = cache.cached_array(key, compute)
    (path,) = cache.entries()
    path.write_bytes(path.read_bytes()[:-7])  # truncated
    with pytest.warns(cache.CorruptCacheWarning, match=str(path)):
        again = cache.cached_array(key, compute)
    assert np.array_equal(first, again) and len(calls) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # repaired: no warning, no recomputation
        cache.cached_array(key, compute)
    assert len(calls) == 2


def test_corrupt_results_file_stops_the_run_with_its_path(task_file, tmp_path):
    results = tmp_path / "results"
    assert _bench("run", str(task_file), "--quiet", "--results", str(results)).wait() == 0
    path = results / "tiny" / "ortho.jsonl"
    content = path.read_text()
    truncated = content[: content.index("\n", len(content) // 2) - 15]  # cut inside a line, as a crash would
    path.write_text(truncated)
    process = _bench("run", str(task_file), "--quiet", "--results", str(results))
    assert process.wait() == 2
    assert f"{path}:" in process.stderr.read()
    assert path.read_text() == truncated  # not overwritten, not dropped


def test_fuzzed_task_files_exit_2_and_write_nothing(tmp_path, capsys):
    from bench.cli import main

    rng = random.Random(1)
    lines = SMALL_TASK.splitlines()
    cases = [b"", bytes(rng.randrange(256) for _ in range(300)), b"{{{{", b"name: tiny\n" * 3,
             SMALL_TASK.replace("counts: [16, 64]", "counts: [16, 10000000]").encode(),
             SMALL_TASK.replace("digits-mlp-w32-s1", "efficientnet-imaginary").encode()]
    for _ in range(8):  # one key's value replaced by a wrong type, or a key misspelled
        mutated = list(lines)
        i = rng.randrange(len(mutated))
        key, _, value = mutated[i].partition(":")
        mutated[i] = f"{key}: {{unexpected: [1, 2]}}" if rng.random() < 0.5 else f"{key}x:{value}"
        cases.append("\n".join(mutated).encode())
    results = tmp_path / "results"
    for number, case in enumerate(cases):
        path = tmp_path / f"fuzz{number}.yaml"
        path.write_bytes(case)
        assert main(["run", str(path), "--results", str(results), "--quiet"]) == 2, case
        assert str(path) in capsys.readouterr().err
    assert not results.exists()


def test_a_batch_that_hangs_or_crashes_fails_each_of_its_cells(tmp_path, monkeypatch):
    METHODS.names()
    root = tmp_path / "submissions"
    bodies = {"hangs-batched": "        time.sleep(600)\n", "crashes-batched": "        os._exit(3)\n"}
    for name, body in bodies.items():  # fit works; fit_many, which the runner calls for 2 seeds, does not
        write_submission(root, name, FIT_DY + "    def fit_many(self, Xs, Ys):\n" + body)
    monkeypatch.setenv("BENCH_SUBMISSIONS", str(root))
    saved = dict(METHODS._entries)
    try:
        for folder in sorted(root.iterdir()):
            register_folder(folder)
        path = tmp_path / "t.yaml"
        path.write_text(SMALL_TASK.replace("methods: [absolute, ortho, linear]", "methods: [hangs-batched, crashes-batched]")
                        .replace("counts: [16, 64], seeds: [0, 1]", "counts: [16], seeds: [0, 1]") + "limits: {time_s: 3}\n")
        summary = Summary()
        run_task(load_task(path), ResultStore(tmp_path / "r"), torch.device("cpu"), summary, progress=False,
                 executor=ProcessExecutor(workers=2))
    finally:
        METHODS._entries.clear()
        METHODS._entries.update(saved)
    rows = ResultStore(tmp_path / "r").rows()
    errors = {(r.method, r.source, r.seed): r.error for r in rows if r.method != "native"}
    assert len(errors) == 8 and summary.failed == 8  # 2 methods x 2 pairs x 2 seeds, one job per method and pair
    for (method, _, _), error in errors.items():
        expected = "longer than 6 s" if method == "hangs-batched" else "crash: the worker process died"
        assert expected in error, (method, error)
