"""Reproducibility: `bench compare` holds a rerun to the stored rows (continuous metrics to 1e-5
relative, counting metrics within one evaluation sample), and two small tasks run on 1 and on 2
torch threads, each from its own empty cache (encoders trained, decoders fitted anew), agree."""
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from bench.reproduce import RTOL, compare, differences
from bench.results import ResultStore
from bench.task import load_task
from support import REPO, SMALL_TASK
from test_results import row

M = 540  # digits' evaluation split


def test_counting_metrics_may_differ_by_one_evaluation_sample_and_no_more():
    reference = replace(row(0), metrics={"accuracy": 0.5, "agreement": 0.9})
    within = replace(reference, metrics={"accuracy": 0.5 + 1 / M, "agreement": 0.9 - 1 / M})
    beyond = replace(reference, metrics={"accuracy": 0.5 + 2 / M, "agreement": 0.9})
    assert differences(reference, within, M) == []
    assert [(d.metric, d.rerun) for d in differences(reference, beyond, M)] == [("accuracy", 0.5 + 2 / M)]


def test_continuous_metrics_are_held_to_a_relative_tolerance():
    reference = replace(row(0), metrics={"mse": 2.0, "cosine": 0.0})
    assert differences(reference, replace(reference, metrics={"mse": 2.0 * (1 + 0.9 * RTOL), "cosine": 0.0}), M) == []
    assert [d.metric for d in differences(reference, replace(reference, metrics={"mse": 2.0 * (1 + 2 * RTOL),
                                                                                 "cosine": 1e-9}), M)] == ["cosine", "mse"]


def test_a_metric_unavailable_in_one_run_only_is_a_difference():
    reference = replace(row(0), metrics={"lpips": None, "mse": float("nan")})
    assert differences(reference, replace(reference, metrics={"lpips": None, "mse": float("nan")}), M) == []
    assert [d.metric for d in differences(reference, replace(reference, metrics={"lpips": 0.1, "mse": 1.0}), M)] \
        == ["lpips", "mse"]


def test_cells_in_one_store_only_are_listed_not_compared(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SMALL_TASK)
    task = load_task(path)
    ours = [replace(row(seed, task="tiny"), task_version=1) for seed in (0, 1)]
    theirs = [ours[1], replace(row(2, task="tiny"), task_version=1)]
    comparison = compare(ours, theirs, {"tiny": task})
    assert (comparison.compared, comparison.rows_outside) == (1, 0)
    assert [r.seed for r in comparison.only_reference] == [0] and [r.seed for r in comparison.only_rerun] == [2]


SIMILARITY = """\
name: tiny-similarity
version: 1
kind: similarity
dataset: {name: digits}
encoders: {all: [digits-mlp-w32-s0, digits-cnn-w32-s1]}
anchors: {counts: [16, 128], seeds: [0, 1]}
methods: [absolute, ortho, linear, ridge, cca, irp]
metrics: [cka_linear, mse, cosine, mutual_knn, retrieval_top1]
"""


def test_two_small_tasks_run_from_empty_caches_on_one_and_two_threads_agree(tmp_path):
    """Two small tasks run on two torch threads and on one, each from its own empty cache: the
    encoders are trained, the embeddings computed and the decoders fitted twice, and every row,
    nulls included, agrees within the tolerances, with anchor counts below and above the width
    (16 and 128 anchors, 32 dimensions)."""
    tasks = [tmp_path / "tiny.yaml", tmp_path / "tiny-similarity.yaml"]
    tasks[0].write_text(SMALL_TASK.replace("[absolute, ortho, linear]", "[absolute, ortho, linear, ridge, irp]"))
    tasks[1].write_text(SIMILARITY)
    for threads in (2, 1):
        env = {**os.environ, "BENCH_CACHE": str(tmp_path / f"cache-{threads}"), "OMP_NUM_THREADS": str(threads)}
        done = subprocess.run([sys.executable, "-m", "bench", "run", *map(str, tasks), "--nulls", "--quiet",
                               "--results", str(tmp_path / f"results-{threads}")],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
    loaded = {t.name: t for t in map(load_task, tasks)}
    two, one = (ResultStore(tmp_path / f"results-{threads}").rows() for threads in (2, 1))
    comparison = compare(two, one, loaded)
    assert comparison.compared == len(two) > 100 and not comparison.only_rerun
    assert sum(r.pairing == "shuffled" for r in two) > 20 and sum(r.n_anchors < 32 for r in two) > 20
    assert comparison.differences == [], str(comparison)
