"""Hostile submissions against the sandbox, through the three commands that run submitted code.

Each fixture in tests/fixtures/hostile/ wraps the honest least-squares method of
submissions/linear (same preprocessing, same solver) around one attack: reading the disk or /proc
for the answers, damaging results, pooling anchors across cells (module, class, System V shared
memory), hanging, leaving a process behind, phoning home, hogging memory. Under

    bench check <folder>                                   (each rule in a fresh sandboxed child)
    bench submit <folder> --tasks <tiny task> --results <dir>
    bench run <tiny task> --executor process --results <dir>   (BENCH_SUBMISSIONS: a copy with the fixtures)

the outcome must be one of: the cheat gains nothing (its scores equal linear's to 1e-4), or its
cells (rules) fail with a reason that names the limit it broke. And for every command: every file
outside its own results is byte-identical afterwards (the repository's results/, leaderboard.md,
tasks/, the test embedding cache, the fixtures, decoy results files), it ends within its limits,
and nothing it started is left running. test_unconfined_the_cheats_work runs the same fixtures
with the local (unconfined) executor to show that they do cheat when nothing stops them, so each
sandboxed test can fail.

All commands run once, in the module fixture `hostile`, a few at a time (they mostly wait on
worker start-up and on time limits); the tests then check what each one did.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.method import METHODS
from support import REPO, SMALL_TASK

FIXTURES = REPO / "tests" / "fixtures" / "hostile"
MARKER = "lbhostileorphan"  # forks-orphan's process carries it in argv[0], comm or environment
JUNK = b"lbhostile"  # in every junk row damages-results appends
PORT = 47613  # network's target on the host (tests/fixtures/hostile/network/method.py)
PARALLEL = 3  # commands at once: they mostly wait for worker start-up (an interpreter importing torch) and time limits
TOLERANCE = 1e-4

# Hostile methods whose cells must score exactly like linear's wherever they run sandboxed (under
# check and submit, pools-module and pools-class are rejected first, by the rule fit_independent).
LIKE_LINEAR = ["reads-disk", "reads-proc", "damages-results", "pools-module", "pools-class", "forks-orphan", "network"]
IN_RUN = LIKE_LINEAR + ["hangs", "hogs-memory"]  # pools-shm has a run of its own, on one worker
CHECKED = IN_RUN + ["pools-shm"]
SUBMITTED = IN_RUN
IN_LOCAL = ["reads-disk", "reads-proc", "pools-module", "pools-class", "forks-orphan", "network", "hogs-memory"]

RUN_FAILS = {  # method -> what each of its cells' errors must say under `bench run --executor process`
    "hangs": "time limit: fit + transform took longer than 20 s",
    "hogs-memory": "fit: out of memory: the submission exceeded its memory limit (2048 MiB)",
}
POOLED_RULE = "FAIL  fit_independent: a fit on anchor set B changes after another instance was fitted on A"
OUT_OF_MEMORY = "can't allocate memory: you tried to allocate 8589934592 bytes"
AFTER_FIRST_FIT = ["output_shape", "output_finite", "inputs_unchanged", "rows_independent", "output_type", "seed_reproducible",
                   "pickle_roundtrip", "beats_floor", "fit_many", "fit_independent", "transform_independent",
                   "pairings", "fit_unpaired"]
FITTING_RULES = ["fit_returns_self", "output_shape", "output_finite", "inputs_unchanged", "rows_independent", "output_type",
                 "seed_reproducible", "pickle_roundtrip", "beats_floor", "fit_independent", "transform_independent"]
# method -> (exit code, lines the output must contain); the rest: 0 and "16/16 rules passed" (pools-shm
# included: its pooling crosses processes only, which no rule can see; the sandbox has to stop it)
CHECK_EXPECTED = {
    "pools-module": (1, [POOLED_RULE, "15/16 rules passed"]),
    "pools-class": (1, [POOLED_RULE, "15/16 rules passed"]),
    # after the first rule that runs out of time, none is run: each would hang again (bench/sandbox.py, Isolated.check)
    "hangs": (1, ["FAIL  fit_returns_self: time limit: the rule took longer than 5 s; the worker was killed"]
                 + [f"FAIL  {rule}: not run: an earlier rule ran out of time" for rule in AFTER_FIRST_FIT] + ["2/16 rules passed"]),
    "hogs-memory": (1, [f"FAIL  {rule}: RuntimeError: " for rule in FITTING_RULES] + ["5/16 rules passed"]),
}
SUBMIT_REJECTED = {  # method -> lines of `bench submit`'s output: it stops at the conformance suite (exit 1)
    "pools-module": ["FAIL  conformance: 15/16 rules passed", "      fit_independent: a fit on anchor set B changes"],
    "pools-class": ["FAIL  conformance: 15/16 rules passed", "      fit_independent: a fit on anchor set B changes"],
    "hangs": ["FAIL  conformance: 2/16 rules passed",
              "      fit_returns_self: time limit: the rule took longer than 60 s; the worker was killed"]
             + [f"      {rule}: not run: an earlier rule ran out of time" for rule in AFTER_FIRST_FIT],
    "hogs-memory": ["FAIL  conformance: 5/16 rules passed", "      fit_returns_self: RuntimeError: "],
}
# Each command's limit: generous for a loaded 2-core machine. A hanging method costs `bench check
# --time-limit 5` one 5 s rule and `bench submit` one 60 s rule (its fixed per-rule limit), then no
# rule runs; `bench run` two cells of 20 s on its two workers.
SECONDS = {"check": 150.0, "check-hangs": 60.0, "submit": 200.0, "submit-hangs": 150.0, "run": 200.0}


def task_text(methods: list[str], time_s: int = 20) -> str:
    return (SMALL_TASK.replace("name: tiny", "name: hostile")
            .replace("methods: [absolute, ortho, linear]", f"methods: [{', '.join(methods)}]")
            .replace("counts: [16, 64], seeds: [0, 1]", "counts: [16], seeds: [0]")
            + f"limits: {{time_s: {time_s}, memory_mb: 2048}}\n")


# ----------------------------------------------------------------------------- processes


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _alive(pid: int, start: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[2] == start and stat[0] not in ("Z", "X")


def marked_processes() -> list[tuple[int, int, str]]:
    """Every live process carrying forks-orphan's marker: (pid, start time, command line)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        texts = [_read(f"/proc/{entry}/{name}") for name in ("comm", "cmdline", "environ")]
        stat = _stat(int(entry))
        if stat and stat[0] not in ("Z", "X") and any(MARKER in text for text in texts):
            found.append((int(entry), stat[2], texts[1] or texts[0]))
    return found


class Tracker:
    """Polls /proc and records every descendant (pid, start time, command line) of the registered
    roots while they run: what a command started, workers and sandboxes included."""

    def __init__(self) -> None:
        self.roots: dict[int, dict[tuple[int, int], str]] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def watch(self, pid: int) -> dict[tuple[int, int], str]:
        seen: dict[tuple[int, int], str] = {}
        with self.lock:
            self.roots[pid] = seen
        self.poll()
        return seen

    def forget(self, pid: int) -> None:
        self.poll()
        with self.lock:
            self.roots.pop(pid, None)

    def poll(self) -> None:
        children: dict[int, list[tuple[int, int]]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (stat := _stat(int(entry))) is not None:
                children.setdefault(stat[1], []).append((int(entry), stat[2]))
        with self.lock:
            for root, seen in self.roots.items():
                frontier = [root]
                while frontier:
                    for pid, start in children.get(frontier.pop(), []):
                        if (pid, start) not in seen:
                            seen[(pid, start)] = _read(f"/proc/{pid}/cmdline")[:4000]
                        frontier.append(pid)

    def _loop(self) -> None:
        while not self.stopped.wait(0.1):
            self.poll()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


def left_behind(seen: dict[tuple[int, int], str], grace: float = 5.0) -> list[str]:
    """Descendants still alive `grace` seconds after their command ended (they are then killed)."""
    deadline = time.monotonic() + grace
    while (alive := [key for key in seen if _alive(*key)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid, start in alive:  # ours: started by a command of this module; never leave them running
        if _alive(pid, start):
            os.kill(pid, signal.SIGKILL)
    return [f"{pid}: {seen[(pid, start)]}" for pid, start in alive]


# ----------------------------------------------------------------------------- files


def digests(paths: list[Path]) -> dict[str, str]:
    """sha256 of every file under paths (compiled bytecode aside: interpreters write it as they please)."""
    found = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for path in files:
            if "__pycache__" not in path.parts:
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


CACHE_FILE = re.compile(r"/[0-9a-f]{2}/[0-9a-f]{64}\.(npy|pt)$")  # how bench/cache.py names what it writes


def changed_files(before: dict[str, str], after: dict[str, str], cache: str) -> list[str]:
    """Files changed, removed or added; other sessions may add entries to the shared test cache
    (content-addressed, so they never change one), which alone are not counted."""
    changes = [f"changed: {p}" for p in before if p in after and after[p] != before[p]]
    changes += [f"removed: {p}" for p in before if p not in after]
    changes += [f"added: {p}" for p in after if p not in before and not (p.startswith(cache) and CACHE_FILE.search(p))]
    return changes


def results_lines(results: Path) -> list[str]:
    return [line for path in sorted(results.rglob("*.jsonl")) for line in path.read_text().splitlines()]


def result_rows(results: Path) -> list[dict]:
    return [json.loads(line) for line in results_lines(results)]


# ----------------------------------------------------------------------------- the listener


class Listener:
    """A TCP listener on 127.0.0.1:PORT on the host: network's first target. Counts connections."""

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", PORT))
        self.server.listen(16)
        self.server.settimeout(0.2)  # a bounded accept: the loop checks for the end every 0.2 s
        self.peers: list[tuple[str, bytes]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, address = self.server.accept()
            except (socket.timeout, OSError):
                continue
            with connection:
                connection.settimeout(1.0)
                try:
                    greeting = connection.recv(100)
                except OSError:
                    greeting = b""
            self.peers.append((f"{address[0]}:{address[1]}", greeting))

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.server.close()


# ----------------------------------------------------------------------------- commands


@dataclass
class Command:
    key: str
    args: list[str]
    submissions: Path
    results: Path | None
    timeout: float
    rc: int | None = None
    output: str = ""
    seconds: float = 0.0
    timed_out: bool = False
    started: dict[tuple[int, int], str] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)

    def run(self, tracker: Tracker, reap: bool = True) -> "Command":
        env = {**os.environ, "BENCH_SUBMISSIONS": str(self.submissions), "PYTHONUNBUFFERED": "1"}  # all output, even if killed
        began = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "bench", *self.args], cwd=REPO, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.started = tracker.watch(process.pid)
        try:
            self.output, _ = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            os.kill(process.pid, signal.SIGKILL)
            self.output, _ = process.communicate()
        self.seconds = time.monotonic() - began
        self.rc = process.returncode
        tracker.forget(process.pid)
        if reap:
            self.left = left_behind(self.started)
        return self

    def describe(self) -> str:
        return f"`bench {' '.join(self.args)}`: exit {self.rc} after {self.seconds:.1f} s; output:\n{self.output[-4000:]}"


def submission_copy(root: Path, names: list[str]) -> Path:
    """A submissions folder holding absolute, linear and the named fixtures (copies)."""
    for name in ["absolute", "linear"]:
        shutil.copytree(REPO / "submissions" / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in names:
        shutil.copytree(FIXTURES / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@dataclass
class Hostile:
    commands: dict[str, Command]
    local: Command
    local_orphans: list[tuple[int, int, str]]
    local_peers: list[tuple[str, bytes]]
    peers: list[tuple[str, bytes]]
    changes: list[str]
    marked: list[tuple[int, int, str]]
    junk: list[str]
    world: Path
    linear: dict[tuple, dict[str, float]]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Hostile:
    world = tmp_path_factory.mktemp("hostile")
    cache = os.environ["BENCH_CACHE"]
    # decoys where damages-results looks (it walks /tmp): results rows and a leaderboard, not the run's own
    decoy = world / "decoy"
    (decoy / "results" / "hostile").mkdir(parents=True)
    (decoy / "results" / "hostile" / "linear.jsonl").write_text('{"method_name": "linear", "metrics": {"mse": 0.5}}\n')
    (decoy / "leaderboard.md").write_text("# Leaderboard\n\n| rank | method |\n|---|---|\n| 1 | linear |\n")

    tracker, listener = Tracker(), Listener()
    try:
        # 1. unconfined: the local executor, in the runner's process (also warms the embedding cache)
        local_task = world / "local.yaml"
        local_task.write_text(task_text(["absolute", "linear", *IN_LOCAL]))
        began = time.time()
        local = Command("local", ["run", str(local_task), "--results", str(world / "local-results"), "--quiet"],
                        submission_copy(world / "local-submissions", IN_LOCAL), world / "local-results", SECONDS["run"])
        local.run(tracker, reap=False)
        boot = float(_read("/proc/stat").split("btime")[1].split()[0])
        ticks = os.sysconf("SC_CLK_TCK")
        local_orphans = [p for p in marked_processes() if boot + p[1] / ticks >= began - 1]
        for pid, start, _ in local_orphans:  # forks-orphan's, left by the unconfined run: ours to end
            if _alive(pid, start):
                os.kill(pid, signal.SIGKILL)
        local.left = left_behind(local.started, grace=0.0)
        local_peers, listener.peers = list(listener.peers), []

        # 2. sandboxed: check, submit and run, with everything watched
        run_root = submission_copy(world / "run-submissions", IN_RUN + ["pools-shm"])
        commands: list[Command] = []
        run_task = world / "run.yaml"
        run_task.write_text(task_text(["absolute", "linear", *IN_RUN]))
        shm_task = world / "shm.yaml"
        shm_task.write_text(task_text(["absolute", "linear", "pools-shm"]))
        commands.append(Command("run", ["run", str(run_task), "--executor", "process", "--results", str(world / "run-results"),
                                        "--quiet"], run_root, world / "run-results", SECONDS["run"]))
        commands.append(Command("run-pools-shm", ["run", str(shm_task), "--executor", "process", "--workers", "1", "--results",
                                                  str(world / "shm-results"), "--quiet"], run_root, world / "shm-results",
                                SECONDS["run"]))
        for name in sorted(set(SUBMITTED) | set(CHECKED), key=lambda n: n != "hangs"):  # the slowest first
            root = submission_copy(world / f"{name}-submissions", [name])
            if name in SUBMITTED:
                task = world / f"{name}.yaml"
                task.write_text(task_text(["absolute", "linear", name]))
                results = world / f"{name}-results"
                commands.append(Command(f"submit-{name}", ["submit", str(root / name), "--tasks", str(task), "--results",
                                                           str(results), "--quiet"], root, results,
                                        SECONDS["submit-hangs" if name == "hangs" else "submit"]))
            if name in CHECKED:
                limit = ["--time-limit", "5"] if name == "hangs" else []
                commands.append(Command(f"check-{name}", ["check", str(root / name), *limit], root, None,
                                        SECONDS["check-hangs" if name == "hangs" else "check"]))
        watched = [REPO / "results", REPO / "leaderboard.md", REPO / "tasks", FIXTURES, Path(cache), decoy,
                   *{c.submissions for c in commands}, *world.glob("*.yaml")]
        before = digests(watched)
        with ThreadPoolExecutor(PARALLEL) as pool:
            done = list(pool.map(lambda command: command.run(tracker), commands))
        after = digests(watched)
        marked = marked_processes()
        for command in done:  # shown with -s, or with a failure of the fixture
            print(f"{command.key}: exit {command.rc} after {command.seconds:.1f} s")
        peers = list(listener.peers)
    finally:
        listener.stop()
        tracker.stop()
    junk = [f"{path}: {line[:200]}" for path in world.rglob("*.jsonl") if "decoy" not in path.parts
            for line in path.read_text(errors="replace").splitlines() if JUNK.decode() in line]
    linear = {(r["source"], r["target"], r["n_anchors"], r["seed"]): r["metrics"]
              for r in result_rows(world / "run-results") if r["method"] == "linear" and r["status"] == "ok"}
    return Hostile({c.key: c for c in done}, local, local_orphans, local_peers, peers,
                   changed_files(before, after, cache), marked, junk, world, linear)


# ----------------------------------------------------------------------------- what every command must do


def assert_ended(command: Command, limit: float) -> None:
    assert not command.timed_out and command.seconds < limit, f"did not end within {limit:g} s: {command.describe()}"


def assert_contained(hostile: Hostile, command: Command) -> None:
    """It started nothing that survives it; no file outside its own results changed, no junk
    anywhere, no connection reached the host, no marked process remains."""
    assert not command.left, f"left running after {command.key}: {command.left}"
    assert not hostile.changes, f"files outside the runs' own results changed: {hostile.changes}"
    assert not hostile.junk, f"junk rows in results: {hostile.junk}"
    assert not hostile.peers, f"the host listener on 127.0.0.1:{PORT} was reached: {hostile.peers}"
    assert not hostile.marked, f"forks-orphan's processes are still running: {hostile.marked}"


def assert_like_linear(hostile: Hostile, rows: list[dict], name: str) -> None:
    mine = [r for r in rows if r["method"] == name and r.get("pairing", "paired") == "paired"]
    assert len(mine) == 2, f"{name}: expected 2 cells, got {len(mine)}"
    assert len(hostile.linear) == 2, "linear's reference cells are missing from the run"
    for row in mine:
        assert row["status"] == "ok", f"{name} {row['source']}: {row['error']}"
        assert row["isolation"] == "sandbox"
        reference = hostile.linear[(row["source"], row["target"], row["n_anchors"], row["seed"])]
        assert row["metrics"].keys() == reference.keys()
        for metric, value in reference.items():
            assert abs(row["metrics"][metric] - value) <= TOLERANCE, (
                f"{name} {row['source']} -> {row['target']}: {metric} {row['metrics'][metric]} differs from linear's {value}: "
                f"the attack reached something (the answers, or another cell's anchors)")


# ----------------------------------------------------------------------------- bench check


@pytest.mark.parametrize("name", CHECKED)
def test_check(hostile, name):
    command = hostile.commands[f"check-{name}"]
    assert_ended(command, SECONDS["check-hangs" if name == "hangs" else "check"])
    code, lines = CHECK_EXPECTED.get(name, (0, ["16/16 rules passed"]))
    assert command.rc == code, command.describe()
    for line in lines:
        assert line in command.output, f"{line!r} not in {command.describe()}"
    if name == "hogs-memory":
        assert command.output.count(OUT_OF_MEMORY) == len(FITTING_RULES), command.describe()
    assert_contained(hostile, command)


# ----------------------------------------------------------------------------- bench submit


@pytest.mark.parametrize("name", SUBMITTED)
def test_submit(hostile, name):
    command = hostile.commands[f"submit-{name}"]
    assert_ended(command, SECONDS["submit-hangs" if name == "hangs" else "submit"])
    assert "PASS  card" in command.output, command.describe()
    if name in SUBMIT_REJECTED:
        assert command.rc == 1, command.describe()
        for line in SUBMIT_REJECTED[name]:
            assert line in command.output, f"{line!r} not in {command.describe()}"
        assert "suite:" not in command.output  # no cell of it was run
        assert not command.results.exists() or not result_rows(command.results)
        if name == "hogs-memory":
            assert command.output.count(OUT_OF_MEMORY) == len(FITTING_RULES), command.describe()
    else:
        assert command.rc == 0, command.describe()
        assert "PASS  conformance: 16/16 rules passed" in command.output, command.describe()
        # its 2 cells and their 2 nulls (the same anchors, pairs shuffled), all sandboxed
        assert "PASS  suite: cells run: 4, skipped (already stored): 0, failed: 0" in command.output, command.describe()
        assert_like_linear(hostile, result_rows(command.results), name)
        nulls = [r for r in result_rows(command.results) if r["method"] == name and r.get("pairing") == "shuffled"]
        assert len(nulls) == 2 and all(r["status"] == "ok" and r["isolation"] == "sandbox" for r in nulls)
        assert (command.results / "reports" / f"{name}.md").is_file()
    assert_contained(hostile, command)


# ----------------------------------------------------------------------------- bench run --executor process


@pytest.mark.parametrize("name", IN_RUN)
def test_run(hostile, name):
    command = hostile.commands["run"]
    assert_ended(command, SECONDS["run"])
    assert command.rc == 1, command.describe()  # hangs' and hogs-memory's cells fail
    assert f"cells run: {2 * (2 + len(IN_RUN))}, skipped (already stored): 0, failed: 4" in command.output, command.describe()
    rows = result_rows(command.results)
    if name in RUN_FAILS:
        mine = [r for r in rows if r["method"] == name]
        assert len(mine) == 2
        for row in mine:
            assert row["status"] == "failed" and RUN_FAILS[name] in row["error"], (name, row["error"])
    else:
        assert_like_linear(hostile, rows, name)
    assert_contained(hostile, command)


def test_run_no_state_crosses_jobs_through_system_v_shared_memory(hostile):
    """pools-shm keeps its anchors in a System V shared-memory segment: on one worker, its second
    cell must still be fitted on its own anchors only (a fresh child per job means no state at all)."""
    command = hostile.commands["run-pools-shm"]
    assert_ended(command, SECONDS["run"])
    assert command.rc == 0, command.describe()
    assert_like_linear(hostile, result_rows(command.results), "pools-shm")
    assert_contained(hostile, command)


# ----------------------------------------------------------------------------- unconfined, they cheat


def test_unconfined_the_cheats_work(hostile):
    """The same fixtures under the local executor (the runner's own process, no sandbox): each attack
    succeeds, so each sandboxed test above can fail."""
    command = hostile.local
    assert command.rc == 1, command.describe()
    rows = {(r["method"], r["source"]): r for r in result_rows(command.results) if r["method"] != "native"}
    linear = {source: r["metrics"] for (method, source), r in rows.items() if method == "linear"}
    assert len(linear) == 2

    def differs(row) -> bool:
        return row["status"] == "ok" and any(abs(row["metrics"][k] - v) > 1e-3 for k, v in linear[row["source"]].items())

    for source in linear:
        perfect = rows[("reads-disk", source)]  # it found the cached embeddings: the target's true rows
        assert perfect["status"] == "ok" and perfect["metrics"]["mse"] < 1e-9 and perfect["metrics"]["agreement"] == 1.0, perfect
        assert differs(perfect)
        assert "reads-proc found the runner" in rows[("reads-proc", source)]["error"]
        assert "network: reached 127.0.0.1:47613" in rows[("network", source)]["error"]
        if os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") > 12 * 2**30:  # the kernel grants its 8 GiB of address space
            assert rows[("hogs-memory", source)]["status"] == "ok" and not differs(rows[("hogs-memory", source)])  # no limit, no failure
        assert not differs(rows[("forks-orphan", source)]) and rows[("forks-orphan", source)]["status"] == "ok"
    for name in ["pools-module", "pools-class"]:  # the later cell was fitted on the earlier cell's anchors too
        assert sum(differs(rows[(name, source)]) for source in linear) == 1, [rows[(name, s)]["metrics"] for s in linear]
    assert any(greeting.startswith(b"lbhostile network") for _, greeting in hostile.local_peers), hostile.local_peers
    assert hostile.local_orphans, "forks-orphan left nothing running unconfined: the fixture is broken"


def test_unconfined_damages_results_does_damage_what_it_reaches(tmp_path):
    """damages-results' own search-and-damage, pointed at decoys: what it reaches, it damages."""
    decoys = tmp_path / "decoys"
    results = decoys / "somewhere" / "results" / "task"
    results.mkdir(parents=True)
    (results / "linear.jsonl").write_text('{"method_name": "linear"}\n')
    (decoys / "elsewhere").mkdir()
    (decoys / "elsewhere" / "rows.jsonl").write_text('{"method_name": "ortho"}\n')
    (decoys / "leaderboard.md").write_text("# Leaderboard\n")
    source = shutil.copy(FIXTURES / "damages-results" / "method.py", tmp_path / "damages_results.py")  # no bytecode in fixtures
    saved = dict(METHODS._entries)
    try:
        spec = importlib.util.spec_from_file_location("hostile_damages_results", source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        damaged = module.damage([str(decoys)], 10.0)
    finally:
        METHODS._entries.clear()
        METHODS._entries.update(saved)
    assert sorted(damaged) == sorted(str(p) for p in [results / "linear.jsonl", decoys / "elsewhere" / "rows.jsonl",
                                                      decoys / "leaderboard.md"])
    assert (results / "linear.jsonl").read_bytes() == b'{"method_name": "linear"}\n' + module.JUNK
    assert (decoys / "leaderboard.md").read_bytes() == b""


# ----------------------------------------------------------------------------- SIGKILL of the runner


def test_sigkill_of_the_runner_leaves_no_worker(tmp_path):
    """`bench run --executor process` killed with SIGKILL while its workers run `hangs`: within a few
    seconds none of the processes it started (bwrap, worker templates, their children) remain."""
    root = submission_copy(tmp_path / "submissions", ["hangs"])
    task = tmp_path / "hangs.yaml"
    task.write_text(task_text(["hangs"], time_s=600))
    env = {**os.environ, "BENCH_SUBMISSIONS": str(root)}
    process = subprocess.Popen([sys.executable, "-m", "bench", "run", str(task), "--executor", "process", "--results",
                                str(tmp_path / "results"), "--quiet"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    tracker = Tracker()
    try:
        seen = tracker.watch(process.pid)
        deadline = time.monotonic() + 120
        job_folder = f"--ro-bind {root / 'hangs'} "
        while time.monotonic() < deadline and process.poll() is None:
            tracker.poll()
            sandboxes = [key for key, cmdline in seen.items() if cmdline.startswith("bwrap") and job_folder in cmdline + " "
                         and _alive(*key)]
            workers = [key for key, cmdline in seen.items() if "bench.worker" in cmdline and _alive(*key)]
            jobs = [key for key in workers if any(_stat(pid) and _stat(pid)[1] == key[0] for pid, _ in workers)]
            if sandboxes and jobs:  # a sandboxed worker whose template has forked a job's child: `hangs` is running
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"no worker ran the job within 120 s (exit {process.poll()}); seen: {list(seen.values())}")
        time.sleep(1.0)
        tracker.poll()
        started = {key: cmdline for key, cmdline in seen.items() if _alive(*key)}
        assert any(c.startswith("bwrap") for c in started.values()) and any("bench.worker" in c for c in started.values())
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        tracker.stop()
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    assert not left_behind(started, grace=5.0), "workers outlived a SIGKILLed runner"
