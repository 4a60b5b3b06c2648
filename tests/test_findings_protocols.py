"""docs/findings.md's sections on the correspondence protocols (noisy, partial and unpaired anchors), the
relative baseline and cross-modal tasks: tables and verdicts against hand-computed values on hand-built
frames, and "not measured yet" (never a crash) where a task has no rows. No dependence on results/."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.report.findings import (
    anchor_free,
    cross_modal,
    noisy_anchors,
    protocol_frame,
    relative_vs_translation,
    render_findings,
)
from bench.report.rows import current_rows
from bench.results import ResultStore
from bench.task import Task, find_task, load_task
from test_ranking import make_rows

# Every score below is a base value + 0.01 x seed (seeds 0, 1, 2), the same for every pair: per seed the mean
# over pairs is base + 0.01 seed, so the table shows base + 0.01 ± t(0.975, 2) x 0.01 / sqrt(3) = 0.025.
HALF = stats.t.ppf(0.975, 2) * 0.01 / np.sqrt(3)
TASK = """\
name: {name}
version: 1
kind: classification
dataset: {{name: {dataset}}}
encoders: {{all: [{encoders}]}}
anchors: {{counts: [{counts}], seeds: [0, 1, 2], sampling: stratified{pairing}}}
methods: [absolute, ortho, linear, robust-ortho, mini-vec2vec]
metrics: [accuracy, mse]
{extra}"""
DIGITS = "digits-mlp-w32-s0, digits-mlp-w32-s1"


def task(folder: Path, name: str, counts: str, pairing: str = "", extra: str = "", dataset: str = "digits",
         encoders: str = DIGITS) -> Task:
    path = folder / f"{name}.yaml"
    path.write_text(TASK.format(name=name, dataset=dataset, encoders=encoders, counts=counts,
                                pairing=f", pairing: {pairing}" if pairing else "", extra=extra))
    return load_task(path)


def frame(task: Task, scores: dict[tuple[str, str, int], float], native: dict[str, float] | None = None
          ) -> pd.DataFrame:
    """Rows of every pair and seed: (method, pairing label, n) -> base accuracy (+ 0.01 seed), and native rows."""
    rows = [{"task": task.name, "source": s, "target": t, "method": method, "method_name": method, "n_anchors": n,
             "seed": seed, "pairing": label, "m:accuracy": base + 0.01 * seed}
            for (method, label, n), base in scores.items() for s, t in task.pairs() for seed in (0, 1, 2)]
    rows += [{"task": task.name, "source": t, "target": t, "method": "native", "method_name": "native",
              "n_anchors": 0, "seed": 0, "pairing": "paired", "m:accuracy": value}
             for t, value in (native or {}).items()]
    return pd.DataFrame(rows)


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip("|").split("|")]


def row(lines: list[str], *key: str) -> list[str]:
    """The table row whose first cells are `key`."""
    found = [cells(line) for line in lines if line.startswith("| ") and cells(line)[:len(key)] == list(key)]
    assert len(found) == 1, (key, lines)
    return found[0]


def test_half_width_is_the_students_t_of_three_seeds():
    assert HALF == pytest.approx(0.0248, abs=1e-4)


# --- 8. noisy anchors ------------------------------------------------------------------------------------------


def noisy_task(folder: Path) -> Task:
    return task(folder, "noisy", "64", pairing="{noisy: [0.25, 0.5]}")


def test_noisy_table_per_method_against_p_and_the_fall_to_one_half(tmp_path):
    t = noisy_task(tmp_path)
    scores = {("ortho", "paired", 64): 0.9, ("ortho", "noisy:0.25", 64): 0.7, ("ortho", "noisy:0.5", 64): 0.5,
              ("robust-ortho", "paired", 64): 0.9, ("robust-ortho", "noisy:0.25", 64): 0.8,
              ("robust-ortho", "noisy:0.5", 64): 0.75,
              ("ortho", "noisy:0.1", 64): 0.0, ("ortho", "shuffled", 64): 0.0}  # a p the task lists not, a null
    drawn: list[dict] = []
    lines = noisy_anchors(frame(t, scores), [t], lambda task, curves: drawn.append(curves) or "FIGURE")
    header = row(lines, "method")
    assert header == ["method", "p = 0", "p = 0.25", "p = 0.5", "fall to p = 0.5"]
    assert row(lines, "ortho") == ["ortho", "0.910 ± 0.025", "0.710 ± 0.025", "0.510 ± 0.025", "+0.400"]
    assert row(lines, "robust-ortho") == ["robust-ortho", "0.910 ± 0.025", "0.810 ± 0.025", "0.760 ± 0.025",
                                          "+0.150"]
    # robust-ortho's interval at p = 0.25 (0.810 - 0.025) lies above ortho's (0.710 + 0.025)
    assert row(lines, "noisy") == ["noisy", "0.810 ± 0.025", "0.710 ± 0.025", "agrees"]
    assert "FIGURE" in lines and "**noisy** (n = 64):" in lines
    assert sorted(drawn[0]) == [("ortho", 0.0), ("ortho", 0.25), ("ortho", 0.5), ("robust-ortho", 0.0),
                                ("robust-ortho", 0.25), ("robust-ortho", 0.5)]
    assert drawn[0][("ortho", 0.5)] == pytest.approx((0.51, HALF))


def test_noisy_claim_disagrees_when_the_intervals_overlap(tmp_path):
    t = noisy_task(tmp_path)
    # 0.730 - 0.025 = 0.705 is below 0.710 + 0.025: robust-ortho is ahead, but not clearly
    scores = {("ortho", "noisy:0.25", 64): 0.7, ("robust-ortho", "noisy:0.25", 64): 0.72}
    lines = noisy_anchors(frame(t, scores), [t])
    assert row(lines, "noisy")[-1] == "**disagrees**"
    assert row(lines, "ortho")[1] == "–" and row(lines, "ortho")[-1] == "–"  # no p = 0: no fall


def test_noisy_section_without_rows_or_tasks_says_not_measured(tmp_path):
    t, other = noisy_task(tmp_path), task(tmp_path, "plain", "64")
    lines = noisy_anchors(pd.DataFrame(), [t, other])
    assert row(lines, "noisy") == ["noisy", "not measured yet", "", ""]
    assert not any(line.startswith("| plain") for line in lines)  # chosen by its spec: no noisy fractions
    assert noisy_anchors(pd.DataFrame(), [other])[-1] == "Not measured yet: no task lists noisy anchors."


# --- 9. anchor-free against absolute and paired ----------------------------------------------------------------


def test_anchor_free_table_gap_and_verdicts(tmp_path):
    t = task(tmp_path, "unpaired", "64, 128", pairing="{partial: [16], unpaired: true}")
    scores = {("absolute", "unpaired", 64): 0.1, ("mini-vec2vec", "unpaired", 64): 0.5,
              ("mini-vec2vec", "partial:16", 64): 0.6, ("mini-vec2vec", "paired", 64): 0.7,
              ("ortho", "paired", 64): 0.8,
              ("absolute", "unpaired", 128): 0.1, ("mini-vec2vec", "unpaired", 128): 0.11}
    lines = anchor_free(frame(t, scores), [t])
    assert row(lines, "unpaired", "64") == ["unpaired", "64", "0.110 ± 0.025", "0.510 ± 0.025", "k = 16: 0.610 ± 0.025",
                                            "0.710 ± 0.025", "0.810 ± 0.025", "+0.300", "agrees"]
    # 0.120 - 0.025 is not above 0.110 + 0.025; nothing paired at 128: no gap
    assert row(lines, "unpaired", "128") == ["unpaired", "128", "0.110 ± 0.025", "0.120 ± 0.025", "k = 16: –", "–",
                                             "–", "–", "**disagrees**"]
    assert row(anchor_free(pd.DataFrame(), [t]), "unpaired") == ["unpaired", "not measured yet"] + [""] * 7
    assert anchor_free(pd.DataFrame(), [])[-1] == "Not measured yet: no task lists partial or unpaired anchors."


# --- 10. relative representations against translation ---------------------------------------------------------


def test_relative_against_ortho_and_the_best_translation_at_the_smallest_and_largest_count(tmp_path):
    t = task(tmp_path, "relative", "16, 64, 256", extra="baselines: [relative]\n")
    scores = {(m, "paired", n): base for (m, n), base in {
        ("relative", 16): 0.5, ("ortho", 16): 0.4, ("linear", 16): 0.44, ("absolute", 16): 0.95,
        ("relative", 64): 0.6, ("ortho", 64): 0.6,
        ("relative", 256): 0.7, ("ortho", 256): 0.8, ("linear", 256): 0.85, ("absolute", 256): 0.1}.items()}
    lines = relative_vs_translation(frame(t, scores).drop(columns="pairing"), [t])
    # at 16 ortho (0.410) is below relative (0.510) minus 0.025; absolute is no translation, never the best
    assert row(lines, "relative", "16") == ["relative", "16", "0.510 ± 0.025", "0.410 ± 0.025",
                                            "linear: 0.450 ± 0.025", "**disagrees**"]
    assert row(lines, "relative", "256") == ["relative", "256", "0.710 ± 0.025", "0.810 ± 0.025",
                                             "linear: 0.860 ± 0.025", "agrees"]
    assert not any(line.startswith("| relative | 64 |") for line in lines)  # the smallest and largest count only
    # relative's interval at 16 (0.510 - 0.025 = 0.485) lies above linear's (0.450 + 0.025 = 0.475)
    assert lines[-1] == ("Plainly: relative representations beat translation (their 95% interval above the best "
                         "translation method's) in 1 of 2 measured rows: relative (n = 16).")


def test_relative_never_ahead_and_not_measured(tmp_path):
    t = task(tmp_path, "relative", "16, 256", extra="baselines: [relative]\n")
    scores = {("relative", "paired", 256): 0.7, ("ortho", "paired", 256): 0.72}
    lines = relative_vs_translation(frame(t, scores).drop(columns="pairing"), [t])
    assert row(lines, "relative", "256")[-1] == "agrees"
    assert row(lines, "relative", "16") == ["relative", "16", "–", "–", "–", "n/a"]
    assert lines[-1].endswith("in 0 of 1 measured rows; translation is never beaten.")
    unmeasured = relative_vs_translation(pd.DataFrame(), [t, task(tmp_path, "plain", "16")])
    assert row(unmeasured, "relative") == ["relative", "not measured yet", "", "", "", ""]
    assert unmeasured[-1] == "Whether relative representations beat translation: not measured yet."
    assert not any(line.startswith("| plain") for line in unmeasured)


# --- 11. cross-modal -------------------------------------------------------------------------------------------

T1, T2, I1, I2 = "all-minilm-l6-v2", "glove-50d-mean", "efficientnet-lite0", "efficientnet-lite1"
ORTHO = {(T1, I1): 0.8, (T1, I2): 0.7, (T2, I1): 0.6, (T2, I2): 0.5,  # text -> image: 0.65
         (I1, T1): 0.4, (I1, T2): 0.3, (I2, T1): 0.2, (I2, T2): 0.1,  # image -> text: 0.25
         (T1, T2): 0.9, (T2, T1): 0.9, (I1, I2): 0.9, (I2, I1): 0.9}  # within one modality: in neither direction


def crossmodal_frame(t: Task, native: dict[str, float]) -> pd.DataFrame:
    rows = [{"task": t.name, "source": s, "target": d, "method": m, "method_name": m, "n_anchors": n, "seed": seed,
             "m:accuracy": value + 0.01 * seed}
            for (s, d), base in ORTHO.items() for seed in (0, 1, 2) for n in (16, 64)
            for m, value in (("ortho", base if n == 64 else 0.0), ("linear", base - 0.1), ("absolute", 0.1))]
    rows += [{"task": t.name, "source": e, "target": e, "method": "native", "method_name": "native", "n_anchors": 0,
              "seed": 0, "m:accuracy": value} for e, value in native.items()]
    return pd.DataFrame(rows)


def crossmodal_task(folder: Path) -> Task:
    return task(folder, "crossmodal", "16, 64", dataset="fashion-mnist-wordnet", encoders=f"{T1}, {T2}, {I1}, {I2}")


def test_cross_modal_directions_encoders_and_the_lift(tmp_path):
    t = crossmodal_task(tmp_path)
    lines = cross_modal(crossmodal_frame(t, {T1: 0.9, T2: 0.7, I1: 0.75, I2: 0.85}), [t])
    assert "**crossmodal** (n = 64):" in lines
    assert row(lines, "method") == ["method", "text → image", "image → text"]
    assert row(lines, "ortho") == ["ortho", "0.660 ± 0.025", "0.260 ± 0.025"]
    assert row(lines, "linear") == ["linear", "0.560 ± 0.025", "0.160 ± 0.025"]
    assert row(lines, "absolute") == ["absolute", "0.110 ± 0.025", "0.110 ± 0.025"]
    assert "Per encoder, ortho:" in lines  # the best over both directions
    assert row(lines, T1, "text") == [T1, "text", "0.900", "0.760 ± 0.025", "0.310 ± 0.025"]  # into I1, I2; from them
    assert row(lines, I1, "image") == [I1, "image", "0.750", "0.360 ± 0.025", "0.710 ± 0.025"]
    # I1 is the weakest image decoder (0.75): T1 translated by ortho into it scores 0.810, 0.810 - 0.025 > 0.75
    assert row(lines, I1, "0.750") == [I1, "0.750", f"{T1} (ortho): 0.810 ± 0.025", "yes"]
    assert row(lines, I2, "0.850") == [I2, "0.850", f"{T1} (ortho): 0.710 ± 0.025", "no"]
    assert f"Verdict: agrees (the weakest image decoder: {I1}, native 0.750)." in lines


def test_cross_modal_lift_needs_more_than_the_half_width(tmp_path):
    t = crossmodal_task(tmp_path)
    lines = cross_modal(crossmodal_frame(t, {T1: 0.9, T2: 0.7, I1: 0.8, I2: 0.85}), [t])  # 0.810 - 0.025 < 0.8
    assert row(lines, I1, "0.800")[-1] == "no"
    assert f"Verdict: **disagrees** (the weakest image decoder: {I1}, native 0.800)." in lines


def test_cross_modal_not_measured_yet(tmp_path):
    t, plain = crossmodal_task(tmp_path), task(tmp_path, "plain", "16")
    assert cross_modal(pd.DataFrame(), [t, plain])[-2:] == ["- crossmodal: not measured yet.", ""]
    other = crossmodal_frame(t, {}).assign(task="plain")  # rows of another task only
    assert "- crossmodal: not measured yet." in cross_modal(other, [t])
    assert cross_modal(pd.DataFrame(), [plain])[-1] == "Not measured yet: no task stitches across modalities."


# --- the page: protocol rows read from a store, the figure written and linked ------------------------------------


def store_rows(t: Task) -> list:
    """fashion-mnist-noisy-anchors' rows as the runner writes them: paired, two noisy fractions, a null, a stale row."""
    rows = []
    for label, drop in (("paired", 0.0), ("noisy:0.25", 0.2), ("noisy:0.5", 0.4), ("shuffled", 0.8)):
        made = make_rows(t, {"ortho": lambda s, d, n, seed, drop=drop: 0.9 - drop + 0.01 * seed,
                             "robust-ortho": lambda s, d, n, seed, drop=drop: 0.9 - drop / 4 + 0.01 * seed},
                         native={"efficientnet-lite0": 0.9, "efficientnet-lite2": 0.92})
        rows += [replace(r, pairing=label) for r in made if label == "paired" or r.method != "native"]
    return rows + [replace(rows[-1], pairing="noisy:0.5", task_version=0, seed=7)]


def test_protocol_frame_labels_current_rows_and_leaves_out_the_null(tmp_path):
    t = find_task("fashion-mnist-noisy-anchors")
    rows = store_rows(t)
    paired, _ = current_rows(rows, {t.name: t})
    protocols = protocol_frame(rows, {t.name: t}, paired)
    assert sorted(protocols.pairing.unique()) == ["noisy:0.25", "noisy:0.5", "paired"]
    assert 7 not in set(protocols.seed)  # the stale row
    assert protocol_frame([], {}, pd.DataFrame()).empty


def test_the_page_draws_the_noisy_figure_and_links_it_from_docs(tmp_path):
    t = find_task("fashion-mnist-noisy-anchors")
    ResultStore(tmp_path / "results").write(store_rows(t))
    text = render_findings(tmp_path / "results", tmp_path / "docs" / "findings.md", causes=tmp_path / "none.json",
                           plot_root=tmp_path)
    figure = tmp_path / "results" / "plots" / f"{t.name}-noisy.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"![{t.name}: accuracy against p](../results/plots/{t.name}-noisy.png)" in text
    section = text.split("\n## 8.")[1].split("\n## 9.")[0]
    assert "| robust-ortho | 0.910 ± 0.025 | – | 0.860 ± 0.025 | 0.810 ± 0.025 | – | +0.100 |" in section
    assert f"| {t.name} | 0.860 ± 0.025 | 0.710 ± 0.025 | agrees |" in section


def test_the_page_without_these_results_says_not_measured(tmp_path):
    (tmp_path / "results").mkdir()
    text = render_findings(tmp_path / "results", tmp_path / "docs" / "findings.md", causes=tmp_path / "none.json",
                           plot_root=tmp_path)
    for number in ("8", "9", "10", "11"):
        section = text.split(f"\n## {number}. ")[1].split("\n## ")[0]
        assert "not measured yet" in section.lower()
        assert "agrees" not in section
    assert not (tmp_path / "results" / "plots").exists()
