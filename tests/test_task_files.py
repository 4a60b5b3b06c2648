"""Task files that cannot lie: what a task file says is what runs, or `bench validate` and `bench run`
stop with exit code 2, `file: key.path: problem` lines, no traceback, and nothing written."""
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.task import TaskError, _accepts, _init_hints, check_against_data, load_task
from support import REPO, SMALL_TASK

COMMANDS = ["validate", "run"]


def refused(tmp_path: Path, capsys, command: str, text: str, *flags: str) -> str:
    """Run `bench COMMAND task.yaml`; assert exit 2, one `error:` report naming the file, no
    traceback and no results directory; return stderr."""
    path = tmp_path / "task.yaml"
    path.write_text(text)
    results = tmp_path / "results"
    argv = [command, str(path)] + (["--results", str(results), "--quiet", *flags] if command == "run" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and "Traceback" not in err
    assert not results.exists()
    return err


def with_methods(methods: str) -> str:
    return SMALL_TASK.replace("methods: [absolute, ortho, linear]", f"methods: {methods}")


# --- 1. duplicate keys -----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("text, expected", [
    (SMALL_TASK + "name: other\n", "name: duplicate key 'name' on lines 1 and 9"),
    (SMALL_TASK.replace("anchors: {counts: [16, 64], seeds: [0, 1]}", "anchors:\n  seeds: [0]\n  counts: [16]\n  seeds: [1]"),
     "anchors.seeds: duplicate key 'seeds' on lines 7 and 9"),
    (with_methods("[ortho, {name: linear, params: {zero_pad: true, zero_pad: false}}]"),
     "methods[1].params.zero_pad: duplicate key 'zero_pad' on line 7, columns 42 and 58"),
])
def test_duplicate_keys(tmp_path, capsys, command, text, expected):
    assert expected in refused(tmp_path, capsys, command, text)


def test_duplicate_key_through_the_real_command_line(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text(SMALL_TASK + "version: 2\n")
    done = subprocess.run([sys.executable, "-m", "bench", "validate", str(path)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"error: {path}: version: duplicate key 'version' on lines 2 and 9; YAML would silently keep the last"


def test_merge_keys_may_override_and_unsafe_tags_stay_refused(tmp_path):
    merged = SMALL_TASK.replace("anchors: {counts: [16, 64], seeds: [0, 1]}",
                                "anchors: {<<: {counts: [8], seeds: [0, 1]}, counts: [16, 64]}")
    assert load_task(_write(tmp_path, merged)).spec.anchors.counts == [16, 64]  # overriding a merge is what `<<` is for
    with pytest.raises(TaskError, match="not valid YAML"):
        load_task(_write(tmp_path, "name: !!python/object/apply:os.system ['echo hacked']\n"))


# --- 2. fit and eval splits ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
def test_eval_split_equal_to_fit_split(tmp_path, capsys, command):
    text = SMALL_TASK.replace("{name: digits}", "{name: digits, fit_split: train, eval_split: train}")
    assert "dataset.eval_split: 'train' is also the fit split" in refused(tmp_path, capsys, command, text)


@pytest.fixture
def overlapping_digits(monkeypatch):
    """digits whose `train` split is every sample, so that it contains `test`."""
    import bench.datasets
    import bench.runner
    import bench.task
    from bench.datasets import load_dataset, make_dataset

    real = load_dataset("digits")
    overlapping = make_dataset("digits", real.x, real.y, {"train": np.arange(len(real.y)), "test": real.splits["test"]},
                               real.classes)
    for module in (bench.datasets, bench.task, bench.runner):  # each imported it by name
        monkeypatch.setattr(module, "load_dataset", lambda name: overlapping)


@pytest.mark.parametrize("command", COMMANDS)
def test_eval_split_overlapping_fit_split(tmp_path, capsys, command, overlapping_digits):
    err = refused(tmp_path, capsys, command, SMALL_TASK)
    assert "dataset.eval_split: split 'test' shares 540 of its 540 samples with the fit split 'train'" in err


# --- 3. method parameters against the method's __init__ ---------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("methods, expected", [
    ('[{name: linear, params: {zero_pad: "no"}}]', "methods[0].params.zero_pad: 'linear' expects true or false, got 'no' (a string)"),
    ("[{name: linear, params: {zero_pad: 1}}]", "methods[0].params.zero_pad: 'linear' expects true or false, got 1 (an integer)"),
    ("[{name: ortho, params: {preprocessing: 3}}]", "methods[0].params.preprocessing: 'ortho' expects a string, got 3"),
    ("[{name: mlp, params: {hidden: true}}]", "methods[0].params.hidden: 'mlp' expects an integer, got true"),
    ("[{name: mlp, params: {max_epochs: 1.5}}]", "methods[0].params.max_epochs: 'mlp' expects an integer, got 1.5 (a number)"),
    ("[{name: cca, params: {reg: 1e-2}}]", "methods[0].params.reg: 'cca' expects a number, got '1e-2' (a string); YAML reads"),
    ("[{name: cca, params: {n_components: yes}}]", "methods[0].params.n_components: 'cca' expects an integer or null, got true"),
    ("[{name: ridge, params: {alphas: 1.0}}]", "methods[0].params.alphas: 'ridge' expects tuple"),
    ("[{name: linear, params: {zero_pad: [1]}}]", "methods[0].params.zero_pad: a parameter is one value"),
    ("[{name: linear, params: {preprocesing: none}}]", "methods[0].params.preprocesing: 'linear' takes no parameter"),
])
def test_method_params_must_match_the_signature(tmp_path, capsys, command, methods, expected):
    err = refused(tmp_path, capsys, command, with_methods(methods))
    assert expected in err
    assert "Input should be a valid string" not in err  # no noise from the other members of a union


def test_method_params_of_the_right_types_load(tmp_path):
    methods = ("[{name: cca, params: {n_components: null, reg: 1}}, {name: cca, params: {n_components: 4, reg: 1.0e-2}},"
               " {name: linear, params: {zero_pad: false, preprocessing: l2}}, {name: mlp, params: {lr: 1, hidden: 16}}]")
    task = load_task(_write(tmp_path, with_methods(methods)))
    assert [m.params for m in task.methods][:2] == [{"n_components": None, "reg": 1}, {"n_components": 4, "reg": 0.01}]


@pytest.mark.parametrize("annotation, good, bad", [
    (bool, [True, False], [1, 0, "no", None]),
    (int, [0, 3, -2], [True, 1.0, "3", None]),
    (float, [1, 0.5], [True, "0.5", None]),
    (str, ["l2"], [3, True, None]),
    (int | None, [None, 4], [True, 4.5]),
    ("Literal['l2', 'none']", ["l2", "none"], ["standard", 1]),
    ("Literal[1, 2]", [1, 2], [True, 1.0, 3]),
])
def test_accepts(annotation, good, bad):
    from typing import Literal  # noqa: F401  (evaluated below)

    annotation = eval(annotation) if isinstance(annotation, str) else annotation
    assert all(_accepts(annotation, value) for value in good)
    assert not any(_accepts(annotation, value) for value in bad)


def test_every_registered_annotation_is_evaluated():
    """Type checks silently turn off for a class whose annotations cannot be evaluated: none of ours."""
    from bench.merging import MERGERS
    from bench.method import METHODS

    for registry in (METHODS, MERGERS):
        for name in registry.names():
            cls = registry.get(name).cls
            annotated = [p for p, info in inspect.signature(cls.__init__).parameters.items()
                         if info.annotation is not inspect.Parameter.empty]
            assert set(annotated) <= set(_init_hints(cls)), name


def test_shipped_task_files_validate(capsys):
    assert main(["validate", *map(str, sorted((REPO / "tasks").glob("*.yaml")))]) == 0
    assert capsys.readouterr().out.count(": ok (") == len(list((REPO / "tasks").glob("*.yaml")))


# --- 4. encoders: {pairs: [[a, b], ...]} ----------------------------------------------------------------

def test_pairs_load_in_order(tmp_path):
    text = SMALL_TASK.replace("{all: [digits-mlp-w32-s0, digits-mlp-w32-s1]}",
                              "{pairs: [[digits-mlp-w32-s1, digits-mlp-w32-s0], [digits-mlp-w64-s0, digits-mlp-w32-s1]]}")
    task = load_task(_write(tmp_path, text))
    assert task.pairs() == [("digits-mlp-w32-s1", "digits-mlp-w32-s0"), ("digits-mlp-w64-s0", "digits-mlp-w32-s1")]
    check_against_data(task)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("pair, index, size", [("[digits-mlp-w32-s0]", 1, 1),
                                               ("[digits-mlp-w32-s0, digits-mlp-w32-s1, digits-mlp-w64-s0]", 1, 3)])
def test_pairs_of_other_lengths(tmp_path, capsys, command, pair, index, size):
    text = SMALL_TASK.replace("{all: [digits-mlp-w32-s0, digits-mlp-w32-s1]}",
                              f"{{pairs: [[digits-mlp-w32-s1, digits-mlp-w32-s0], {pair}]}}")
    err = refused(tmp_path, capsys, command, text)
    assert f"encoders.pairs[{index}]: a pair is [source, target], two encoder ids; this one has {size}" in err


# --- 5. numbers: finite and bounded ---------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("text, expected", [
    (SMALL_TASK + "limits: {time_s: .inf}\n", "limits.time_s: Input should be a finite number"),
    (SMALL_TASK + "limits: {time_s: .nan}\n", "limits.time_s: Input should be a finite number"),
    (SMALL_TASK + "limits: {time_s: 1.0e+9}\n", "limits.time_s: Input should be less than or equal to 86400"),
    (SMALL_TASK + "limits: {time_s: 1.0e9}\n", "limits.time_s: Input should be a valid number; YAML reads 1.0e9 as a string"),
    (SMALL_TASK + "limits: {memory_mb: 100000000000000000}\n", "limits.memory_mb: Input should be less than or equal to 1048576"),
    (SMALL_TASK.replace("seeds: [0, 1]", "seeds: [0, 120000000000000000000000000000]"),
     "anchors.seeds[1]: Input should be less than or equal to 4294967295"),
    (SMALL_TASK.replace("seeds: [0, 1]", "seeds: [0, 1.2e29]"), "anchors.seeds[1]: Input should be a valid integer"),
    (SMALL_TASK.replace("counts: [16, 64]", "counts: [16, 100000000000000000000]"),
     "anchors.counts[1]: Input should be less than or equal to 10000000"),
    (with_methods("[{name: mlp, params: {alpha: .nan}}]"), "methods[0].params.alpha: must be a finite number, not nan"),
    (with_methods("[{name: mlp, params: {lr: -.inf}}]"), "methods[0].params.lr: must be a finite number, not -inf"),
])
def test_numbers_must_be_finite_and_sensible(tmp_path, capsys, command, text, expected):
    assert expected in refused(tmp_path, capsys, command, text)


# --- 6. what the machine lacks: an online data set offline, a GPU -------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
def test_online_data_set_offline(tmp_path, capsys, monkeypatch, command):
    import bench.datasets

    monkeypatch.setattr(bench.datasets, "_reachable", lambda url: False)  # offline, even where there is a network
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))  # and no local copy
    monkeypatch.delenv("BENCH_CIFAR10", raising=False)
    text = SMALL_TASK.replace("{name: digits}", "{name: cifar10}").replace(
        "digits-mlp-w32-s0, digits-mlp-w32-s1", "efficientnet-lite0, efficientnet-lite1")
    err = refused(tmp_path, capsys, command, text)
    assert "dataset.name: data set 'cifar10' cannot be loaded: cifar10: no local copy" in err
    assert "BENCH_CIFAR10" in err and not (tmp_path / "data").exists()


def test_cuda_without_a_gpu(tmp_path, capsys, monkeypatch, task_file):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    stored = tmp_path / "results" / "tiny" / "ortho.jsonl"
    stored.parent.mkdir(parents=True)
    stored.write_text("{}\n")
    assert main(["run", str(task_file), "--results", str(tmp_path / "results"), "--device", "cuda", "--fresh"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --device cuda was asked for, but torch sees no CUDA device; use --device cpu or auto\n"
    assert stored.read_text() == "{}\n"  # --fresh cleared nothing: the device is checked first


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(text)
    return path
