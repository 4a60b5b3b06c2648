"""`make gpu-check` (bench/gpu_check.py): without a GPU it says so and exits 0; with one it holds a CUDA
run to a CPU run (continuous metrics to 1e-4 relative, counting ones within one evaluation sample) and
prints the speed. No GPU here: the steps run with "cpu" standing in for "cuda"."""
from dataclasses import replace

import pytest
import torch

from bench import gpu_check
from bench.compare import NATIVE, RELATIVE
from bench.gpu_check import CROSS_DEVICE_RTOL, Run, main, verdict
from bench.reproduce import RTOL
from bench.results import ResultStore
from bench.task import load_task
from test_results import row

M = 540  # digits' evaluation split


def test_without_a_gpu_it_says_so_and_exits_0(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gpu-check: no GPU present (torch ") and out.endswith("nothing GPU-specific was checked\n")


def stores(tmp_path, rerun_metrics: dict[str, float], cuda_seconds: float = 2.0, cpu_seconds: float = 8.0):
    """A CPU store and a "CUDA" store of two cells of the tiny task; the CUDA store's second cell scores
    `rerun_metrics`. Fits: 1 s + 3 s on the CPU, 0.5 s + 0.5 s on CUDA; the ceiling and the baseline
    rows (left out of the fits) are slow on purpose."""
    reference = {"accuracy": 0.5, "agreement": 0.9, "mse": 2.0}
    runs = []
    for device, seconds, fits, metrics in (("cuda", cuda_seconds, (0.5, 0.5), rerun_metrics),
                                           ("cpu", cpu_seconds, (1.0, 3.0), reference)):
        rows = [replace(row(0, task="tiny"), metrics=reference, fit_seconds=fits[0], device=device),
                replace(row(1, task="tiny"), metrics=metrics, fit_seconds=fits[1], device=device),
                replace(row(0, task="tiny", method=NATIVE), metrics=reference, fit_seconds=None, device=device),
                replace(row(0, task="tiny", method=RELATIVE), metrics=reference, fit_seconds=100.0, device=device)]
        ResultStore(tmp_path / device).write(rows)
        runs.append(Run(device, tmp_path / device, seconds, cells=2, failures=[]))
    return runs


@pytest.fixture
def tiny(task_file):
    return [load_task(task_file)]


def test_stores_that_agree_within_the_cross_device_tolerance_pass_and_the_speed_is_printed(tmp_path, tiny, capsys):
    # mse 5x beyond bench compare's own 1e-5 but within 1e-4; agreement one evaluation sample off
    cuda, cpu = stores(tmp_path, {"accuracy": 0.5, "agreement": 0.9 - 1 / M, "mse": 2.0 * (1 + 5 * RTOL)})
    assert 5 * RTOL < CROSS_DEVICE_RTOL
    assert verdict(cuda, cpu, tiny) == 0
    out = capsys.readouterr().out
    assert "4 of 4 cells agree within tolerance (continuous metrics 0.0001 relative; counting metrics within one " \
           "evaluation sample)" in out
    assert ("speed, cpu seconds / cuda seconds: the slice 4.00x (cuda 2 cells in 2.0 s, 1.0 cells/s; "
            "cpu 2 cells in 8.0 s, 0.2 cells/s)\n  the fits alone 4.00x (cuda 1.00 s, cpu 4.00 s") in out


@pytest.mark.parametrize("metrics", [
    {"accuracy": 0.5, "agreement": 0.9, "mse": 2.0 * (1 + 2 * CROSS_DEVICE_RTOL)},  # continuous, beyond 1e-4
    {"accuracy": 0.5 + 2 / M, "agreement": 0.9, "mse": 2.0},  # two evaluation samples
])
def test_stores_that_disagree_beyond_it_fail_and_the_cell_is_named(tmp_path, tiny, capsys, metrics):
    cuda, cpu = stores(tmp_path, metrics)
    assert verdict(cuda, cpu, tiny) == 1
    out = capsys.readouterr().out
    assert "3 of 4 cells agree" in out and "tiny a->b ortho n=8 seed=1 paired:" in out
    assert "speed, cpu seconds / cuda seconds: the slice 4.00x" in out


def test_a_cell_in_one_store_only_or_a_failed_cell_fails_the_check(tmp_path, tiny, capsys):
    cuda, cpu = stores(tmp_path, {"accuracy": 0.5, "agreement": 0.9, "mse": 2.0})
    ResultStore(cpu.store).write([row(2, task="tiny")])
    assert verdict(cuda, cpu, tiny) == 1
    cuda, cpu = stores(tmp_path / "again", {"accuracy": 0.5, "agreement": 0.9, "mse": 2.0})
    assert verdict(replace(cuda, failures=["tiny a->b ortho: out of memory"]), cpu, tiny) == 1
    assert "FAILED on cuda: tiny a->b ortho: out of memory" in capsys.readouterr().out


def test_the_steps_run_end_to_end_with_the_cpu_standing_in(tmp_path, task_file, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "a stand-in")
    monkeypatch.setattr(gpu_check, "GPU", "cpu")
    monkeypatch.setattr(gpu_check, "run_cuda_tests", lambda: True)
    monkeypatch.setattr(gpu_check, "SLICE", {str(task_file): {"absolute", "ortho"}})
    assert main(["--keep", str(tmp_path / "stores")]) == 0
    out = capsys.readouterr().out
    assert "gpu-check on a stand-in" in out and "18 of 18 cells agree" in out  # 8 per method, 2 native
    assert {p.name for p in (tmp_path / "stores").iterdir()} == {"warm-up", "cuda", "cpu"}
    assert {r.method for r in ResultStore(tmp_path / "stores" / "cpu").rows()} == {"absolute", "ortho", NATIVE}
    with pytest.raises(SystemExit):  # the stores are kept in a new folder, never resumed
        main(["--keep", str(tmp_path / "stores")])
