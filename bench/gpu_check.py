"""`make gpu-check` (`python -m bench.gpu_check`): does a CUDA run give the CPU's results, and how much faster is it?

On a machine where torch sees a CUDA device:
1. the tests that need CUDA or take a CUDA branch when there is one (CUDA_TESTS: the metrics on
   CUDA tensors against the CPU, the conformance suite's output_type rule on CUDA inputs);
2. a warm-up: SLICE on CUDA into a scratch store, untimed (embeddings into the cache, encoders
   trained when the cache is empty, CUDA initialised);
3. SLICE on CUDA, then on the CPU, each timed, into two temporary result stores;
4. bench.reproduce.compare of the two stores: counting metrics within one evaluation sample, as
   `bench compare`, and continuous ones within CROSS_DEVICE_RTOL (below);
5. the speed: cpu seconds / cuda seconds for the slice, per task and for the fits alone (the
   method rows' fit_seconds), and each device's cells per second.
Exit 0 when the tests pass, no cell fails and the stores agree; 1 otherwise.

Without CUDA it says that no GPU is present, checks nothing GPU-specific, and exits 0 (CI runs
that). A CUDA-only test is found by name: put "cuda" in it.

Why 1e-4 relative across devices (bench compare's 1e-5 is for reruns on one device): both runs
read the same cached float32 embeddings and fit the same decoders on the CPU, so what differs is
float32 arithmetic in the fits, transforms and metrics, summed in another order by cuBLAS and
cuSOLVER than by MKL and LAPACK: about sqrt(k) eps for a sum of k terms, and up to k eps (1e-4 at
k = 1,000 to 2,000, the anchor counts and widths of the slice), and CUDA's float32 SVD is another
algorithm than LAPACK's. On one device, one thread against two already gave 1.25e-5 (README), so
1e-5 would flag round-off; tests/test_metrics.py holds CUDA metrics to the CPU's at the same 1e-4.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.compare import NATIVE, RELATIVE
from bench.datasets import DatasetUnavailable, load_dataset
from bench.method import REPO_ROOT
from bench.reproduce import compare
from bench.results import Result, ResultStore
from bench.runner import Summary, run_task
from bench.task import Task, find_task

# Default-suite tasks and a few methods each (600 cells; 4 min a pass on a loaded 2-core CPU). Between them:
# dx < dy, dx = dy and dx > dy, fewer anchors than dimensions (the canonical float64 paths), ortho's
# batched SVD, the latent metrics (CKA, k-NN, retrieval), an autoencoder decoding on the device,
# and 1,280-wide pretrained features.
SLICE: dict[str, set[str]] = {
    "digits-cross-arch": {"absolute", "ortho", "linear", "affine"},
    "digits-similarity": {"ortho", "linear"},
    "digits-reconstruction": {"ortho", "linear"},
    "fashion-mnist-cross-arch": {"absolute", "ortho"},
}
CROSS_DEVICE_RTOL = 1e-4
CUDA_TESTS = ["-k", "cuda or reference_method"]
GPU = "cuda"  # the device checked against the CPU (the tests put "cpu" here to run the steps without one)


@dataclass
class Run:
    """One timed pass of the slice on one device, into its own result store."""
    device: str
    store: Path
    seconds: float
    cells: int
    failures: list[str]
    task_seconds: dict[str, float] = field(default_factory=dict)

    def fit_seconds(self) -> float:
        """The methods' fits alone, summed from the rows (the native ceiling and the relative baseline left out)."""
        return sum(row.fit_seconds or 0.0 for row in self.rows() if row.method_name not in (NATIVE, RELATIVE))

    def rows(self) -> list[Result]:
        return ResultStore(self.store).rows()


def no_gpu() -> str:
    build = f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
    return (f"gpu-check: no GPU present (torch {torch.__version__} is {build} and sees no CUDA device); "
            "nothing GPU-specific was checked")


def run_cuda_tests() -> bool:
    command = [sys.executable, "-m", "pytest", "tests", *CUDA_TESTS, "-q", "-p", "no:cacheprovider"]
    print(f"1/4 the CUDA tests: {shlex.join(command[2:])}", flush=True)
    return subprocess.run(command, cwd=REPO_ROOT).returncode == 0


def available(tasks: dict[str, set[str]]) -> list[tuple[Task, set[str]]]:
    """Each task (a name or file) whose data are here, with its methods; the others are named and left out."""
    found = []
    for name, methods in tasks.items():
        task = find_task(name)
        try:
            load_dataset(task.spec.dataset.name)
        except DatasetUnavailable as error:
            print(f"  left out {name}: {error}")
            continue
        found.append((task, methods))
    return found


def run_slice(plan: list[tuple[Task, set[str]]], store: Path, device: str) -> Run:
    summary, task_seconds = Summary(), {}
    for task, methods in plan:
        started = time.perf_counter()
        run_task(task, ResultStore(store), torch.device(device), summary, methods, progress=False)
        task_seconds[task.name] = time.perf_counter() - started
    return Run(device, store, sum(task_seconds.values()), summary.run, summary.failures, task_seconds)


def speed(cuda: Run, cpu: Run) -> str:
    """cpu seconds / cuda seconds: the slice, the methods' fits alone, each task; and cells per second."""
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b > 0 else "n/a"

    def rate(run: Run) -> str:
        per_second = f"{run.cells / run.seconds:.1f}" if run.seconds > 0 else "n/a"
        return f"{run.device} {run.cells} cells in {run.seconds:.1f} s, {per_second} cells/s"

    fits = cuda.fit_seconds(), cpu.fit_seconds()
    lines = [f"speed, cpu seconds / cuda seconds: the slice {ratio(cpu.seconds, cuda.seconds)} "
             f"({rate(cuda)}; {rate(cpu)})",
             f"  the fits alone {ratio(fits[1], fits[0])} ({cuda.device} {fits[0]:.2f} s, "
             f"{cpu.device} {fits[1]:.2f} s: the method rows' fit_seconds summed)"]
    lines += [f"  {name} {ratio(cpu.task_seconds[name], seconds)} ({cuda.device} {seconds:.1f} s, "
              f"{cpu.device} {cpu.task_seconds[name]:.1f} s)"
              for name, seconds in cuda.task_seconds.items() if name in cpu.task_seconds]
    return "\n".join(lines)


def verdict(cuda: Run, cpu: Run, tasks: list[Task]) -> int:
    """Print whether the two stores agree within the cross-device tolerance, and the speed; 0 when they agree."""
    comparison = compare(cpu.rows(), cuda.rows(), {task.name: task for task in tasks}, rtol=CROSS_DEVICE_RTOL)
    print(f"cpu (reference) against cuda: {comparison}")
    for run in (cuda, cpu):
        for failure in run.failures:
            print(f"  FAILED on {run.device}: {failure}")
    print(speed(cuda, cpu))
    agree = not (comparison.differences or comparison.only_reference or comparison.only_rerun
                 or cuda.failures or cpu.failures)
    return 0 if agree else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", metavar="DIR", type=Path,
                        help="write the result stores under DIR, a new folder (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep {args.keep}: exists; name a new folder")  # a stored cell would not be rerun
    if not torch.cuda.is_available():
        print(no_gpu())
        return 0
    print(f"gpu-check on {torch.cuda.get_device_name()} (torch {torch.__version__}, CUDA {torch.version.cuda}); "
          f"the CPU run on {torch.get_num_threads()} torch threads", flush=True)
    tests_pass = run_cuda_tests()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        root = Path(args.keep or scratch)
        print("2/4 warm-up: the slice on cuda, untimed", flush=True)
        plan = available(SLICE)
        if not plan:
            print("gpu-check: no task of the slice has its data here")
            return 1
        tasks = [task for task, _ in plan]
        warm = run_slice(plan, root / "warm-up", GPU)
        print(f"  {warm.cells} cells in {warm.seconds:.1f} s", flush=True)
        print("3/4 the slice on cuda, then on cpu, timed", flush=True)
        cuda = run_slice(plan, root / "cuda", GPU)
        cpu = run_slice(plan, root / "cpu", "cpu")
        twice = compare(warm.rows(), cuda.rows(), {task.name: task for task in tasks})
        print(f"  cuda run to run (information, not in the exit code): {twice}")
        print("4/4 ", end="")
        agree = verdict(cuda, cpu, tasks)
    if not tests_pass:
        print("gpu-check: the CUDA tests failed")
    return 0 if tests_pass and agree == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
