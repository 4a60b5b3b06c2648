"""The command line: exit codes, nothing written on bad input, export columns."""
import subprocess
import sys

import pandas as pd

from bench.cli import main
from support import REPO, SMALL_TASK


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, capture_output=True, text=True)


def test_malformed_task_exits_2_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL_TASK.replace("anchors:", "anchorz:"))
    results = tmp_path / "results"
    done = bench("run", str(bad), "--results", str(results))
    assert done.returncode == 2
    assert f"{bad}: anchorz: unknown key; did you mean 'anchors'" in done.stderr
    assert "Traceback" not in done.stderr and not results.exists()
    assert bench("validate", str(bad)).returncode == 2


def test_run_export_and_resume(tmp_path, task_file, capsys):
    results = tmp_path / "results"
    assert main(["run", str(task_file), "--results", str(results), "--methods", "ortho,absolute", "--quiet"]) == 0
    assert "cells run: 16, skipped (already stored): 0, failed: 0" in capsys.readouterr().out
    assert main(["run", str(task_file), "--results", str(results), "--quiet"]) == 0
    assert "cells run: 8, skipped (already stored): 16" in capsys.readouterr().out  # only linear was missing
    out = tmp_path / "cells.csv"
    assert main(["export", "--results", str(results), "--output", str(out)]) == 0
    frame = pd.read_csv(out)
    for column in ("task", "task_version", "dataset", "source", "target", "method", "method_params", "n_anchors",
                   "seed", "pairing", "accuracy", "agreement", "mse", "fit_seconds", "transform_seconds", "device"):
        assert column in frame
    assert len(frame[frame.method != "native"]) == 24


def test_check_and_list():
    done = bench("check", "ortho")
    assert done.returncode == 0 and "FAIL" not in done.stdout
    listing = bench("list", "encoders").stdout
    assert "digits-cnn-w64-s2" in listing
    unknown = bench("check", "orthoo")
    assert unknown.returncode == 2 and "did you mean 'ortho'" in unknown.stderr
