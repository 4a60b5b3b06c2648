"""Inside a worker process: a pristine template that forks one fresh child per request.

bench.wire.Worker starts this module (under bubblewrap when sandboxed). The template imports
torch and the harness once, never a submission, then serves requests read from stdin:

    request -> fork a child -> child: limits, Landlock, import the plug-in, run it -> result pipe
            -> kill whatever the child left running, delete its folder -> result to stdout

so no module, class or file state of submitted code outlives its request, and every request
starts from the same interpreter state. The child's output is untrusted: the template only
relays its bytes (bounded), and the runner decodes them without pickle (bench.wire.decode).
"""
from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import landlock
import numpy  # noqa: F401  (pre-imported: every child starts with it loaded)
import scipy.linalg  # noqa: F401
import sklearn.linear_model  # noqa: F401
import torch

import bench.kinds  # noqa: F401  (the job classes requests unpickle into, imported once in the template)
from bench import wire
from bench.checks import run_checks
from bench.executors import Job
from bench.families import FAMILIES
from bench.method import (
    SubmissionError,
    declared_pairings,
    fits_in_batches,
    load_submission,
    register_folder,
    takes_seed,
)

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
CLONE_NEWUSER, CLONE_NEWIPC = 0x10000000, 0x08000000


def _prctl(option: int, value: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


# ----------------------------------------------------------------------------- the child


def _confine(request: Any, job_dir: Path, landlock_roots: list[str]) -> None:
    """Limits first (they bind everything after), then Landlock: from here on the child reads only
    the Python environment and its own plug-in folder, and writes only its job folder."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the template
    memory = getattr(request, "memory_limit", None)
    if memory is not None and not str(getattr(request, "device", "cpu")).startswith("cuda"):
        # hard limit too, so the submission cannot raise it again (CUDA maps huge virtual ranges: no limit there)
        limit = _address_space_bytes() + memory * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if landlock_roots:
        # its own IPC namespace (inside a user namespace of its own, which needs no privilege): SysV
        # shared memory, semaphores and message queues die with the job instead of reaching the next one
        if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWUSER | CLONE_NEWIPC) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER | CLONE_NEWIPC) failed")
        ruleset = landlock.Ruleset()
        read_file = landlock.FSAccess.EXECUTE | landlock.FSAccess.READ_FILE
        readable = read_file | landlock.FSAccess.READ_DIR
        for root in [*landlock_roots, *([request.folder] if request.folder else [])]:
            if os.path.exists(root):  # a rule on a file may grant only file rights
                ruleset.allow(root, rules=readable if os.path.isdir(root) else read_file)
        ruleset.allow("/dev", rules=readable | landlock.FSAccess.WRITE_FILE)  # /dev/null, /dev/urandom
        ruleset.allow(str(job_dir))  # everything, in its own folder only
        ruleset.apply()


def _address_space_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _register(request: Any) -> type:
    """Import the request's plug-in folder (in this child only) and return its class."""
    family = FAMILIES[request.family]
    if request.folder:
        register_folder(Path(request.folder), family.registry, family.unimportable)
    return family.registry.get(request.name).cls


def _serve_one(request: Any) -> bytes:
    if isinstance(request, Job):
        if request.folder:
            family = FAMILIES[request.family]
            register_folder(Path(request.folder), family.registry, family.unimportable)
        return wire.encode_outcomes(request.execute())
    if isinstance(request, wire.CheckJob):
        cls = _register(request)
        rules = [(rule, check) for rule, check in FAMILIES[request.family].rules if rule == request.rule]
        return wire.encode_checks(run_checks(cls, request.params, rules=rules))
    if isinstance(request, wire.DescribeJob):
        return wire.encode_description(_describe(Path(request.folder)))
    raise TypeError(f"unknown request {type(request).__name__}")


def _describe(folder: Path) -> list[dict[str, Any]]:
    """What the runner needs to plan a folder's plug-ins without importing them itself."""
    try:
        load_submission(folder)  # imports its modules once; they register into whichever family they belong to
    except SubmissionError as error:
        return [{"family": "method", "name": folder.name, "error": str(error), "params": [], "takes_seed": False,
                 "batches": False, "pairings": ["paired"]}]
    plugins = []
    for family in FAMILIES.values():
        for name in load_submission(folder, family.registry):
            cls = family.registry.get(name).cls
            plugins.append({"family": family.name, "name": name, "error": None, "params": wire.describe_parameters(cls),
                            "takes_seed": takes_seed(cls), "batches": fits_in_batches(cls),
                            "pairings": declared_pairings(cls)})
    return plugins


def _child(request: Any, job_dir: Path, landlock_roots: list[str], threads: int, result_fd: int) -> None:
    status = 0
    try:
        log = os.open(job_dir / "output.log", os.O_WRONLY | os.O_CREAT, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0), os.dup2(log, 1), os.dup2(log, 2)  # noqa: B018 - the control pipes stay the template's
        os.closerange(3, result_fd)
        os.closerange(result_fd + 1, 1 << 16)
        os.chdir(job_dir)
        os.environ.update(TMPDIR=str(job_dir), HOME=str(job_dir),
                          BENCH_SUBMISSIONS=str(job_dir / "none"), BENCH_MERGERS=str(job_dir / "none"))
        tempfile.tempdir = str(job_dir)
        _confine(request, job_dir, landlock_roots)
        torch.set_num_threads(threads)
        payload = _serve_one(request)
    except BaseException:  # the request could not run at all: say why, in the request's own terms
        payload, status = wire.encode_error(f"worker: {traceback.format_exc(limit=2).strip().splitlines()[-1]}"), 1
    try:
        with os.fdopen(result_fd, "wb") as pipe:
            pipe.write(payload)
    finally:
        os._exit(status)


# ----------------------------------------------------------------------------- the template


def _descendants() -> list[int]:
    """Every process below this one (children that detached themselves were reparented here:
    the template is a subreaper)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [os.getpid()]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _kill_descendants(sandboxed: bool) -> None:
    """Kill everything a job left running. In the sandbox's PID namespace every other process is the
    job's, so kill(-1) takes them all at once (a process that keeps forking cannot outrun it);
    outside, descendants are swept until none is left, and a worker that cannot get rid of them exits."""
    if sandboxed:
        try:
            os.kill(-1, signal.SIGKILL)  # every process of the namespace but its init and this one
        except ProcessLookupError:
            pass
    else:
        for _ in range(100):
            alive = _descendants()
            if not alive:
                break
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _reap()
        else:
            sys.exit("worker: a job left processes that could not be killed; stopping this worker")
    _reap()


def _reap() -> None:
    """Collect the killed (they come back here: the template is a subreaper), for at most a second."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                time.sleep(0.01)
        except ChildProcessError:
            return


def _run(request: Any, landlock_roots: list[str], threads: int, limit: int) -> bytes:
    job_dir = Path(tempfile.mkdtemp(prefix="job-"))
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(request, job_dir, landlock_roots, threads, write_fd)
    os.close(write_fd)
    chunks, size = [], 0
    with os.fdopen(read_fd, "rb") as pipe:
        while chunk := pipe.read(1 << 20):
            size += len(chunk)
            if size > limit:
                os.kill(pid, signal.SIGKILL)
                chunks = [wire.encode_error(f"protocol: the worker's result exceeded {limit} bytes")]
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    _kill_descendants(sandboxed=bool(landlock_roots))
    log_tail = _tail(job_dir / "output.log")
    shutil.rmtree(job_dir, ignore_errors=True)
    if os.WIFSIGNALED(status) or not chunks:
        how = (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"exit code {os.WEXITSTATUS(status)}")
        return wire.encode_error(f"crash: the worker process died while running the method ({how}); "
                                    f"a method must not exit the interpreter or crash native code{log_tail}")
    return b"".join(chunks)


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return f"; its last output: {lines[-1][:300]}" if lines else ""


def main() -> None:
    """Serve requests until stdin closes. argv: threads, then the Landlock roots (none: not sandboxed)."""
    threads, landlock_roots = int(sys.argv[1]), sys.argv[2:]
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the runner (bubblewrap does this too when sandboxed)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a child come back here, to be killed
    control_in, control_out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write on the control pipe
    control_out.write(wire.READY)
    control_out.flush()
    while True:
        request = wire.read_request(control_in)
        if request is None:
            return
        control_out.write(wire.frame(_run(request, landlock_roots, threads, wire.result_limit(request))))
        control_out.flush()


if __name__ == "__main__":
    main()
