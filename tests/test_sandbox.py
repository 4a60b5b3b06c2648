"""The sandbox's own guarantees (bench/sandbox.py, bench/worker.py), each checked with code that tries
to break it. The hostile submissions of the issue, end to end through the CLI, are in test_hostile.py."""
import io
import json
import pickle
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import sandbox, wire
from bench.kinds.stitching import StitchingJob
from bench.report.leaderboard import render
from bench.method import METHODS, register_folder
from bench.results import ResultStore
from bench.sandbox import ProcessExecutor, stand_in
from bench.wire import Described, ProtocolError, decode, frame, outcomes_from
from bench.task import load_task
from support import REPO, SMALL_TASK

needs_sandbox = pytest.mark.skipif(sandbox.unavailable_reason() is not None, reason=f"{sandbox.unavailable_reason()}")

CARD = "title: t\nauthors: [a]\npaper: https://example.org\nlicense: MIT\ndescription: d\ndefaults_chosen_by: a priori\n"


def write_method(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "method.py").write_text(
        "import os, glob, torch\nfrom bench import Method, register_method\n\n"
        f"@register_method({name!r})\nclass M(Method):\n" + body)
    (folder / "card.yaml").write_text(CARD)
    return folder


def run_jobs(folder: Path, name: str, n_jobs: int, sandboxed: bool = True) -> list:
    X, Y = torch.randn(16, 4), torch.randn(16, 4)
    jobs = [StitchingJob(plugin=name, params={}, seed=0, device="cpu", time_limit=60, memory_limit=2048, folder=str(folder),
                         X_anchors=[X], Y_anchors=[Y], X_eval=torch.randn(5, 4)) for _ in range(n_jobs)]
    outcomes = dict(ProcessExecutor(1, sandboxed=sandboxed).run(jobs))
    return [outcomes[i][0] for i in range(n_jobs)]


# ----------------------------------------------------------------------------- the wire format


def test_results_are_never_unpickled_and_malformed_ones_are_refused():
    evil = pickle.dumps(print)  # a pickle would run code in the runner when loaded
    with pytest.raises(ProtocolError):
        decode(frame(evil))
    with pytest.raises(ProtocolError):
        decode(frame(b"{}"))  # no kind
    with pytest.raises(ProtocolError):
        decode(b"\xff" * 4)  # truncated
    buffer = io.BytesIO()
    np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)  # an object array needs pickle to load
    header = frame(json.dumps({"kind": "outcomes"}).encode())
    with pytest.raises(ProtocolError):
        decode(header + frame(buffer.getvalue()))


@pytest.mark.parametrize("array, problem", [
    (np.zeros((5, 3), np.float32), r"not a \(5, 4\) float array"),
    (np.zeros((4, 4), np.float32), r"not a \(5, 4\) float array"),
    (np.zeros((5, 4), np.int64), r"not a \(5, 4\) float array"),
    (np.full((5, 4), np.nan, np.float32), "non-finite"),
])
def test_outputs_are_checked_again_in_the_runner(array, problem):
    header = {"kind": "outcomes", "outcomes": [{"error": None, "fit_seconds": 0.1, "fit_cells": 1,
                                                 "transform_seconds": 0.1, "translated": True}]}
    with pytest.raises(ProtocolError, match=problem):
        outcomes_from(header, [array], 1, [(5, 4)])
    good = outcomes_from(header, [np.ones((5, 4), np.float32)], 1, [(5, 4)])
    assert good[0].translated.shape == (5, 4) and good[0].error is None


def test_an_array_header_that_promises_more_than_it_holds_is_refused_before_allocation():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(4, np.float32), allow_pickle=False)
    blob = buffer.getvalue().replace(b"(4,)", b"(1099511627776,)")  # 2**40 floats promised, 16 bytes given
    with pytest.raises(ProtocolError, match="header does not match"):
        decode(frame(json.dumps({"kind": "outcomes"}).encode()) + frame(blob))
    deep = b"[" * 200_000 + b"]" * 200_000  # json.loads recurses: the error is the job's, not the runner's
    with pytest.raises(ProtocolError):
        decode(frame(deep))


@pytest.mark.parametrize("plugin", [
    "not a dict",
    {"family": "method", "name": "Bad Name", "error": None, "params": [], "takes_seed": False, "batches": False},
    {"family": "method", "name": "ok", "error": None, "params": ["not a dict"], "takes_seed": False, "batches": False},
    {"family": "method", "name": "ok", "error": None, "takes_seed": False, "batches": False,
     "params": [{"name": "import os", "default": 1, "has_default": True, "type": {"kind": "int", "choices": None, "nullable": False}}]},
    {"family": "method", "name": "ok", "error": None, "takes_seed": False, "batches": False,
     "params": [{"name": "a", "default": [1], "has_default": True, "type": {"kind": "int", "choices": None, "nullable": False}}]},
    {"family": "method", "name": "ok", "error": None, "takes_seed": False, "batches": False,
     "params": [{"name": "a", "default": 1, "has_default": True, "type": {"kind": "Callable", "choices": None, "nullable": False}}]},
])
def test_a_malformed_description_makes_a_broken_plugin_not_an_error(plugin, tmp_path):
    described = wire.descriptions_from({"kind": "described", "plugins": [plugin]}, tmp_path / "folder")
    assert len(described) == 1 and described[0].name == "folder" and described[0].error.startswith("protocol:")


def test_a_name_another_folder_registered_makes_the_newcomer_broken(tmp_path, monkeypatch):
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    honest = Described("method", "taken-name", None, [], False, False)
    assert sandbox.register_described(honest, tmp_path / "honest") == "taken-name"
    assert sandbox.register_described(honest, tmp_path / "honest") == "taken-name"  # the same folder again: no conflict
    name = sandbox.register_described(honest, tmp_path / "thief")
    assert name == "thief" and "registers 'taken-name'" in METHODS.registered("thief").error
    assert METHODS.registered("taken-name").folder == (tmp_path / "honest").resolve()


def test_a_reported_time_must_be_a_non_negative_number():
    header = {"kind": "outcomes", "outcomes": [{"error": "x", "fit_seconds": -1, "fit_cells": 1, "translated": False}]}
    with pytest.raises(ProtocolError, match="fit_seconds"):
        outcomes_from(header, [], 1, [(5, 4)])


# ----------------------------------------------------------------------------- stand-ins


def test_a_stand_in_has_the_real_parameters_and_types_and_never_runs():
    from typing import Literal

    class Real:
        def __init__(self, alpha: float = 1.0, mode: Literal["a", "b"] = "a", flag: bool = False, seed: int | None = None,
                     free=3, required: str = "x"):
            pass

    params = wire.describe_parameters(Real)
    cls = stand_in(Described("method", "real", None, params, takes_seed=True, batches=False))
    signature = __import__("inspect").signature(cls.__init__)
    assert list(signature.parameters) == ["self", "alpha", "mode", "flag", "seed", "free", "required"]
    assert signature.parameters["alpha"].default == 1.0 and signature.parameters["free"].default == 3
    hints = typing.get_type_hints(cls.__init__)
    assert hints["alpha"] is float and hints["flag"] is bool and hints["mode"] == Literal["a", "b"]
    assert hints["seed"] == (int | None) and hints["free"] is typing.Any
    with pytest.raises(RuntimeError, match="runs only in a worker"):
        cls().fit(torch.zeros(2, 2), torch.zeros(2, 2))


# ----------------------------------------------------------------------------- the worker


@needs_sandbox
def test_every_job_starts_from_a_fresh_process_with_an_empty_folder(tmp_path):
    # a module counter, a class attribute and a file left in /tmp and in its own folder: what the
    # next job sees of them comes back in its output
    folder = write_method(tmp_path / "stateful", "stateful", """\
    fits = 0

    def fit(self, X, Y):
        M.fits += 1
        seen = len(glob.glob('/tmp/**/left-behind', recursive=True)) + len(glob.glob(os.path.expanduser('~') + '/left-behind'))
        open(os.path.join(os.environ['TMPDIR'], 'left-behind'), 'w').write('x')
        self.state_ = float(M.fits + 100 * seen)
        return self

    def transform(self, X):
        return torch.full((X.shape[0], 4), self.state_)
""")
    outcomes = run_jobs(folder, "stateful", 3)
    assert [o.error for o in outcomes] == [None] * 3
    assert [float(o.translated[0, 0]) for o in outcomes] == [1.0, 1.0, 1.0]  # first fit, no file, every time


@needs_sandbox
def test_sysv_shared_memory_does_not_reach_the_next_job(tmp_path):
    folder = write_method(tmp_path / "shm", "shm", """\
    def fit(self, X, Y):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        existed = libc.shmget(0x1a7e, 0, 0) >= 0  # a segment an earlier job left behind
        libc.shmget(0x1a7e, 4096, 0o1000 | 0o600)  # IPC_CREAT: leave one for the next job
        self.existed_ = float(existed)
        return self

    def transform(self, X):
        return torch.full((X.shape[0], 4), self.existed_)
""")
    outcomes = run_jobs(folder, "shm", 2)
    assert [o.error for o in outcomes] == [None, None]
    assert [float(o.translated[0, 0]) for o in outcomes] == [0.0, 0.0]


@needs_sandbox
def test_a_child_reads_only_its_own_folder_and_writes_only_its_job_folder(tmp_path):
    other = write_method(tmp_path / "plugins" / "other", "other", "    pass\n")
    (other / "secret.txt").write_text("secret")
    folder = write_method(tmp_path / "plugins" / "probe", "probe", f"""\
    def fit(self, X, Y):
        def can(action):
            try:
                action()
                return 1.0
            except OSError:
                return 0.0
        self.codes_ = [
            can(lambda: open({str(other / 'secret.txt')!r}).read()),          # another plug-in's folder
            can(lambda: open(os.path.join(os.path.dirname(__file__), 'x'), 'w')),  # its own folder is read-only
            can(lambda: open(os.path.join(os.environ['TMPDIR'], 'x'), 'w')),   # its job folder is writable
            can(lambda: open('/tmp/escape', 'w')),                             # the rest of /tmp is not
            can(lambda: open(os.path.join(os.path.dirname(__file__), 'method.py')).read()),  # its own code
            can(lambda: open({str(REPO / 'README.md')!r}).read()),              # the checkout
        ]
        return self

    def transform(self, X):
        return torch.tensor(self.codes_).repeat(X.shape[0], 1)  # (m, 6)
""")
    X, Y = torch.randn(16, 4), torch.randn(16, 6)
    job = StitchingJob(plugin="probe", params={}, seed=0, device="cpu", time_limit=60, memory_limit=2048, folder=str(folder),
                       X_anchors=[X], Y_anchors=[Y], X_eval=torch.randn(2, 4))
    executor = ProcessExecutor(1, folders=[str(other)], sandboxed=True)  # both folders mounted: Landlock tells them apart
    ((_, (outcome,)),) = list(executor.run([job]))
    assert outcome.error is None, outcome.error
    codes = outcome.translated[0].tolist()
    assert codes == [0.0, 0.0, 1.0, 0.0, 1.0, 0.0], codes


@needs_sandbox
def test_unsandboxed_workers_still_get_a_fresh_process_per_job(tmp_path):
    folder = write_method(tmp_path / "counter", "counter", """\
    fits = 0

    def fit(self, X, Y):
        M.fits += 1
        self.n_ = float(M.fits)
        return self

    def transform(self, X):
        return torch.full((X.shape[0], 4), self.n_)
""")
    outcomes = run_jobs(folder, "counter", 2, sandboxed=False)
    assert [float(o.translated[0, 0]) for o in outcomes] == [1.0, 1.0]


# ----------------------------------------------------------------------------- without a sandbox


def test_submit_refuses_without_a_sandbox_unless_told_and_then_marks_everything(tmp_path):
    task = tmp_path / "tiny.yaml"
    task.write_text(SMALL_TASK.replace("methods: [absolute, ortho, linear]", "methods: [similarity-procrustes]")
                    .replace("counts: [16, 64], seeds: [0, 1]", "counts: [16], seeds: [0]"))
    no_bwrap = {"PATH": str(Path(sys.executable).parent), "BENCH_CACHE": str(Path("/tmp/latent-bench-test-cache"))}
    command = [sys.executable, "-m", "bench", "submit", str(REPO / "tests" / "fixtures" / "example_submission"),
               "--tasks", str(task), "--results", str(tmp_path / "r"), "--quiet"]
    refused = subprocess.run(command, capture_output=True, text=True, env=no_bwrap, cwd=REPO, timeout=300)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    lines = [line for line in refused.stdout.splitlines() if "sandbox" in line]
    assert len(lines) == 1 and "bubblewrap" in lines[0] and "--no-sandbox" in lines[0]
    assert "Traceback" not in refused.stderr and not (tmp_path / "r").exists()

    ran = subprocess.run(command + ["--no-sandbox"], capture_output=True, text=True, env=no_bwrap, cwd=REPO, timeout=600)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = [r for r in ResultStore(tmp_path / "r").rows() if r.method_name != "native"]
    assert rows and {r.isolation for r in rows} == {"process"}
    report = (tmp_path / "r" / "reports" / "similarity-procrustes.md").read_text()
    assert report.startswith("**Not sandboxed**")
    METHODS.names()  # discover the in-tree submissions first: the registry restored below keeps them
    saved, modules = dict(METHODS._entries), set(sys.modules)
    try:
        register_folder(REPO / "tests" / "fixtures" / "example_submission")  # the task names it
        board = render(tmp_path / "r", tmp_path / "leaderboard.md", plots=False, tasks=[load_task(task)])
    finally:  # leave the registry and the imported modules as they were, for the tests after this one
        METHODS._entries.clear()
        METHODS._entries.update(saved)
        for module in set(sys.modules) - modules:
            del sys.modules[module]
    assert "**Not sandboxed**: scores of code that ran with `--no-sandbox`" in board and "similarity-procrustes" in board
