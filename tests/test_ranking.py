"""Ranking: normalised scores, Holm, Wilcoxon, bootstrap, tie groups and Borda, against
hand-computed cases and scipy. Synthetic result rows (make_rows) keep these tests fast and exact.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from bench.report.rows import current_rows
from bench.method import METHODS
from bench.ranking import bootstrap, holm, normalised_cells, paired_test, rank, tie_groups
from bench.results import SCHEMA_VERSION, Result
from bench.task import Task, load_task

TASK = """\
name: {name}
version: 1
kind: classification
dataset: {{name: digits}}
encoders: {{all: [digits-mlp-w32-s0, digits-mlp-w32-s1]}}
anchors: {{counts: [16, 64], seeds: [0, 1, 2]}}
methods: [absolute, ortho, linear]
metrics: [{metrics}]
"""
A, B = "digits-mlp-w32-s0", "digits-mlp-w32-s1"

Scores = Callable[[str, str, int, int], float]  # (source, target, n_anchors, seed) -> value


def make_task(folder: Path, name: str = "synthetic", metrics: str = "accuracy, mse", text: str | None = None) -> Task:
    path = folder / f"{name}.yaml"
    path.write_text(text or TASK.format(name=name, metrics=metrics))
    return load_task(path)


def make_rows(task: Task, methods: dict[str, Scores], native: dict[str, float], metric: str | None = None,
              fit_seconds: float = 0.001, method_names: dict[str, str] | None = None) -> list[Result]:
    """Result rows as the runner writes them, with `metric` (default: the main one) from `methods`."""
    metric = metric or task.main_metric
    names = method_names or {}

    def row(method: str, source: str, target: str, n: int, seed: int, value: float) -> Result:
        name = names.get(method, method)
        return Result(schema_version=SCHEMA_VERSION, task=task.name, task_version=task.spec.version,
                      task_spec_hash=task.spec_hash, kind=task.spec.kind, dataset="digits", dataset_hash="x",
                      source=source, target=target, method=method, method_name=name, method_params={},
                      method_source_hash=METHODS.get(name).source_hash if name != "native" else "",
                      n_anchors=n, seed=seed, pairing="paired", decoder=task.decoder_identity, anchor_ids_hash="x", status="ok", error=None,
                      metrics={metric: value}, unavailable={}, fit_seconds=None if name == "native" else fit_seconds,
                      fit_cells=None if name == "native" else 1, transform_seconds=0.0, device="cpu", versions={},
                      git_commit="x", isolation="in-process")

    rows = [row("native", t, t, 0, 0, value) for t, value in sorted(native.items())]
    for method, scores in methods.items():
        rows += [row(method, s, t, n, seed, scores(s, t, n, seed)) for s, t in task.pairs()
                 for n in task.spec.anchors.counts for seed in task.spec.anchors.seeds]
    return rows


def frame_of(task: Task, rows: list[Result]) -> pd.DataFrame:
    frame, stale = current_rows(rows, {task.name: task})
    assert stale == 0
    return frame


def test_normalised_score_hand_computed(tmp_path):
    task = make_task(tmp_path)
    rows = make_rows(task, {"absolute": lambda s, t, n, seed: 0.1,
                            "ortho": lambda s, t, n, seed: 0.5 if n == 64 else 0.0},  # only n=64 (the largest) counts
                     native={A: 0.8, B: 0.9})
    cells = normalised_cells(frame_of(task, rows), task)
    ortho = cells[cells.method == "ortho"].set_index(["source", "target", "seed"]).score
    assert np.allclose(ortho.loc[(A, B, 0)], (0.5 - 0.1) / (0.9 - 0.1))  # target B's ceiling
    assert np.allclose(ortho.loc[(B, A, 0)], (0.5 - 0.1) / (0.8 - 0.1))  # target A's ceiling
    assert len(ortho) == 6 and (cells[cells.method == "absolute"].score == 0).all()


def test_normalised_score_lower_is_better(tmp_path):
    task = make_task(tmp_path, metrics="mse, accuracy")
    rows = make_rows(task, {"absolute": lambda s, t, n, seed: 8.0, "ortho": lambda s, t, n, seed: 2.0,
                            "linear": lambda s, t, n, seed: 10.0}, native={A: 0.0, B: 0.0})
    cells = normalised_cells(frame_of(task, rows), task).groupby("method").score.mean()
    assert np.isclose(cells["ortho"], (2 - 8) / (0 - 8)) and np.isclose(cells["ortho"], 0.75)
    assert np.isclose(cells["linear"], -0.25)  # worse than no translation: below the floor


def test_cells_without_scale_or_floor_are_left_out(tmp_path):
    task = make_task(tmp_path)
    # the floor equals the ceiling on target A: no scale there, so only the cells into B remain
    rows = make_rows(task, {"absolute": lambda s, t, n, seed: 0.8 if t == A else 0.1,
                            "ortho": lambda s, t, n, seed: 0.5}, native={A: 0.8, B: 0.9})
    cells = normalised_cells(frame_of(task, rows), task)
    assert set(cells.target) == {B}
    no_floor = make_rows(task, {"ortho": lambda s, t, n, seed: 0.5}, native={A: 0.8, B: 0.9})
    assert normalised_cells(frame_of(task, no_floor), task).empty


def test_holm_hand_computed():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> made monotone: 0.06
    assert np.allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_paired_test_is_scipy_wilcoxon():
    rng = np.random.default_rng(1)
    a = rng.normal(0.6, 0.05, 30)
    b = a - rng.normal(0.02, 0.03, 30)
    p, direction = paired_test(a, b)
    assert np.isclose(p, stats.wilcoxon(a - b).pvalue) and direction > 0
    assert paired_test(b, a)[1] < 0 and np.isclose(paired_test(b, a)[0], p)
    assert paired_test(a, a.copy()) == (1.0, 0.0)  # identical methods: no evidence of a difference


def test_tie_groups_compact_letters():
    # a ~ b, b ~ c, but a differs from c: b shares a letter with both
    assert tie_groups(["a", "b", "c"], {frozenset("ac")}) == {"a": "a", "b": "ab", "c": "b"}
    assert tie_groups(["a", "b", "c"], {frozenset("ab"), frozenset("ac"), frozenset("bc")}) == {"a": "a", "b": "b", "c": "c"}
    assert tie_groups(["a", "b"], set()) == {"a": "a", "b": "a"}


def test_bootstrap_matches_a_plain_loop():
    cells = pd.DataFrame({"task": ["t"] * 8 + ["u"] * 4, "source": "s", "target": "x",
                          "seed": [0, 1, 2, 3] * 3, "method": ["m"] * 4 + ["k"] * 4 + ["m"] * 4,
                          "score": [0.1, 0.4, 0.3, 0.9, 0.2, 0.2, 0.2, 0.2, 1.0, 0.0, 0.5, 0.5], "fit_seconds": 0.0})
    samples = bootstrap(cells, ["k", "m"], resamples=50, seed=0)
    rng = np.random.default_rng(0)
    t_m, u_m = np.array([0.1, 0.4, 0.3, 0.9]), np.array([1.0, 0.0, 0.5, 0.5])
    # the draws are made per task, in name order: (resamples, seeds) each
    draws_t = rng.integers(0, 4, size=(50, 4))
    draws_u = rng.integers(0, 4, size=(50, 4))
    expected_m = (t_m[draws_t].mean(axis=1) + u_m[draws_u].mean(axis=1)) / 2
    assert np.allclose(samples[1], expected_m)
    assert np.allclose(samples[0], 0.2)  # k: constant over seeds, present in task t only
    assert np.array_equal(samples, bootstrap(cells, ["k", "m"], resamples=50, seed=0))  # seeded


def test_rank_ties_groups_and_borda(tmp_path):
    tasks = [make_task(tmp_path, name) for name in ("first", "second")]
    frames = []
    for task in tasks:
        rows = make_rows(task, {
            "absolute": lambda s, t, n, seed: 0.1,
            "ortho": lambda s, t, n, seed: 0.9 - (0.02 * seed if task.name == "first" else 0.0),
            # linear and l-ortho: identical up to a sign-alternating wiggle; both clearly below ortho
            "linear": lambda s, t, n, seed: 0.6 + (0.001 if seed % 2 else -0.001),
            "l-ortho": lambda s, t, n, seed: 0.6 + (-0.001 if seed % 2 else 0.001),
        }, native={A: 1.0, B: 1.0})
        frames.append(frame_of(task, rows))
    frame = pd.concat(frames, ignore_index=True)
    cells = pd.concat([normalised_cells(frame, t) for t in tasks], ignore_index=True)
    ranking = rank(cells, resamples=200)
    by = {s.method: s for s in ranking.standings}
    assert [s.method for s in ranking.standings][0] == "ortho" and ranking.standings[-1].method == "absolute"
    # ortho: (0.9, 0.88, 0.86 on "first"; 0.9 on "second") -> normalised mean over tasks
    expected = (np.mean([(0.9 - 0.02 * s - 0.1) / 0.9 for s in range(3)]) + (0.9 - 0.1) / 0.9) / 2
    assert np.isclose(by["ortho"].score, expected)
    assert by["ortho"].low <= by["ortho"].score <= by["ortho"].high
    assert by["linear"].group == by["l-ortho"].group and by["linear"].rank == by["l-ortho"].rank == 2
    assert by["ortho"].rank == 1 and by["absolute"].rank == 4
    assert set(ranking.better["ortho"]) == {"linear", "l-ortho", "absolute"} and ranking.worse["ortho"] == []
    assert "l-ortho" not in ranking.better["linear"] and "linear" not in ranking.worse["l-ortho"]
    # Borda: ortho first on both tasks; linear and l-ortho tie (2.5 each, or 2 and 3 per task)
    assert by["ortho"].borda == 1.0 and by["absolute"].borda == 4.0
    assert np.isclose(by["linear"].borda + by["l-ortho"].borda, 5.0)
    assert by["ortho"].tasks == 2 and by["ortho"].cells == 12 and np.isclose(by["ortho"].fit_seconds, 0.001)


def test_ranking_is_deterministic(tmp_path):
    task = make_task(tmp_path)
    rng = np.random.default_rng(5)
    values = {key: rng.uniform(0.3, 0.9) for key in [(s, t, n, seed) for s in (A, B) for t in (A, B) for n in (16, 64) for seed in range(3)]}
    rows = make_rows(task, {"absolute": lambda *k: 0.1, "ortho": lambda *k: values[k], "linear": lambda *k: values[k] * 0.9},
                     native={A: 0.95, B: 0.95})
    cells = normalised_cells(frame_of(task, rows), task)
    assert rank(cells) == rank(cells.sample(frac=1, random_state=3).reset_index(drop=True))

