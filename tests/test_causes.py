"""bench/causes.py's measurements against independent references, and the Why lines of
docs/findings.md rendered from a small causes file (and without one)."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import linalg, optimize, stats

from bench.causes import (
    covariance_condition,
    map_agreement,
    non_orthogonality,
    outside_span,
    polar,
    rank_correlation,
    span_condition,
    spectral_mismatch,
    stitching_cells,
    worse_by,
)
from bench.cli import cmd_causes, parser
from bench.report.findings import (
    CAUSES_VERSION,
    Causes,
    irp_regulariser,
    ortho_vs_linear,
    render_findings,
    results_fingerprint,
)
from bench.task import find_task, load_task
from support import REPO


def rotation(d: int, seed: int) -> np.ndarray:  # (d, d) orthogonal
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))[0]


# ---------------------------------------------------------------------------------------------
# the measurements


def test_covariance_condition_is_numpys_on_a_hand_built_covariance():
    n, scales = 200, np.array([10.0, 3.0, 1.0, 0.1])
    Z = np.linalg.qr(np.random.default_rng(0).normal(size=(n, 4)))[0]  # (n, 4) orthonormal columns
    X = Z * scales  # X^T X = diag(scales^2): condition number (10 / 0.1)^2 = 1e4
    kappa, rank = covariance_condition(X)
    assert rank == 4
    assert kappa == pytest.approx(np.linalg.cond(X.T @ X / n), rel=1e-9)
    assert kappa == pytest.approx(1e4, rel=1e-9)


def test_condition_over_the_span_leaves_out_what_the_anchors_do_not_span():
    """A constant (standardised: zero) feature or fewer anchors than dimensions: the condition number
    over the directions spanned, and the rank says how many there are."""
    rng = np.random.default_rng(1)
    X = np.hstack([rng.normal(size=(50, 3)) * [1.0, 2.0, 5.0], np.zeros((50, 1))])  # (50, 4), rank 3
    kappa, rank = span_condition(X)
    assert rank == 3
    assert kappa == pytest.approx(np.linalg.cond(X[:, :3]), rel=1e-9)
    wide = rng.normal(size=(5, 20))  # 5 anchors in 20 dimensions
    assert span_condition(wide)[1] == 5
    assert span_condition(wide)[0] == pytest.approx(np.linalg.cond(wide), rel=1e-9)
    assert math.isnan(span_condition(np.zeros((3, 2)))[0])


def test_polar_factor_is_scipys():
    M = np.random.default_rng(2).normal(size=(6, 6))
    assert np.allclose(polar(M), linalg.polar(M)[0])
    Q = polar(np.random.default_rng(3).normal(size=(7, 4)))  # (7, 4): orthonormal columns
    assert np.allclose(Q.T @ Q, np.eye(4))


def test_non_orthogonality_known_matrices_and_the_minimum_it_stands_for():
    Q = rotation(5, 4)
    assert non_orthogonality(3.0 * Q) == pytest.approx(0.0, abs=1e-7)
    # singular values (2, 1): 1 - (2 + 1)^2 / (2 * (4 + 1)) = 0.1
    assert non_orthogonality(Q[:, :2] @ np.diag([2.0, 1.0]) @ rotation(2, 5)) == pytest.approx(math.sqrt(0.1))
    R = np.random.default_rng(6).normal(size=(5, 5))
    U = polar(R)
    best = optimize.minimize_scalar(lambda c: np.linalg.norm(R - c * U)).fun / np.linalg.norm(R)
    assert non_orthogonality(R) == pytest.approx(best, rel=1e-6)


def test_map_agreement():
    Q = rotation(4, 7)
    assert map_agreement(Q, Q) == pytest.approx(1.0)
    assert map_agreement(Q, -Q) == pytest.approx(-1.0)
    wide = polar(np.random.default_rng(8).normal(size=(3, 6)))  # (3, 6): orthonormal rows
    assert map_agreement(wide, wide) == pytest.approx(1.0)
    # unrelated random rotations agree about 0 (the mean cosine of 200 random directions)
    assert abs(map_agreement(rotation(200, 9), rotation(200, 10))) < 0.2


def test_outside_span_by_hand():
    anchors = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 0.0]])  # span e1, e2
    assert outside_span(anchors, np.array([[1.0, 1.0, 1.0]])) == pytest.approx(1 / 3)
    assert outside_span(anchors, np.array([[3.0, -1.0, 0.0]])) == pytest.approx(0.0, abs=1e-12)
    full = np.random.default_rng(11).normal(size=(20, 3))
    assert outside_span(full, np.random.default_rng(12).normal(size=(5, 3))) == pytest.approx(0.0, abs=1e-12)


def test_spectral_mismatch_bounds_every_orthogonal_map():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(40, 5)) * [5.0, 2.0, 1.0, 0.5, 0.1]
    Y = rng.normal(size=(40, 5))
    assert spectral_mismatch(X, X @ rotation(5, 14)) == pytest.approx(0.0, abs=1e-12)
    bound = spectral_mismatch(X, Y) * np.linalg.norm(Y)
    for seed in range(20):
        assert np.linalg.norm(X @ rotation(5, seed) - Y) >= bound - 1e-9
    best = np.linalg.norm(X @ polar(X.T @ Y) - Y)  # Procrustes: the best orthogonal map
    assert best >= bound - 1e-9
    # different widths: the singular values are zero-padded to one length
    assert spectral_mismatch(X[:, :2], np.hstack([X[:, :2], np.zeros((40, 1))])) == pytest.approx(0.0, abs=1e-12)


def test_rank_correlation_is_scipys_and_skips_what_is_not_finite():
    x, y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0, 1.0, 4.0, 3.0, 6.0, 5.0]
    expected = stats.spearmanr(x, y)
    measured = rank_correlation(x, y)
    assert measured["rho"] == pytest.approx(expected.statistic)
    assert measured["p"] == pytest.approx(expected.pvalue)
    assert measured["cells"] == 6
    assert rank_correlation(x + [math.nan], y + [1.0]) == measured
    assert math.isnan(rank_correlation([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])["rho"])
    assert math.isnan(rank_correlation([1.0, 2.0], [1.0, 2.0])["rho"])


def test_worse_by_has_one_sign_for_both_directions():
    assert worse_by(0.9, 1.0, higher_is_better=True) == pytest.approx(0.1)
    assert worse_by(0.03, 0.02, higher_is_better=False) == pytest.approx(0.5)
    assert worse_by(1.0, 0.9, higher_is_better=True) < 0


def test_stitching_cells_measure_the_tasks_own_anchors(task_file):
    """The tiny task (two digits MLPs of width 32): below the width at 16 anchors, spanned at 64."""
    task = load_task(task_file)
    frame = pd.DataFrame(columns=["task", "source", "target", "method", "n_anchors", "seed", "m:accuracy"])
    cells = stitching_cells(task, frame, {16, 64}, REPO / "results")
    assert len(cells) == 2 * 2 * 2  # ordered pairs x counts x seeds
    for cell in cells:
        assert cell["dim"] == 32 and cell["kappa"] > 1
        assert cell["rank"] == min(cell["n"] - 1, 32)  # standardised (centred) anchors lose one direction
        assert 0 <= cell["outside_span"] <= 1 and cell["spectral_mismatch"] >= 0
        assert -1 <= cell["map_agreement"] <= 1 + 1e-9
        assert math.isnan(cell["ortho_behind_linear"])  # no stored scores
    assert all(c["outside_span"] > 1e-6 for c in cells if c["n"] == 16)  # 15 directions of 32
    assert all(c["outside_span"] < 1e-6 for c in cells if c["n"] == 64)


# ---------------------------------------------------------------------------------------------
# findings: the Why lines, from a causes file and without one


def synthetic_frame() -> pd.DataFrame:
    """digits-cross-seed where ortho is well behind linear at 256 anchors (claim 2 disagrees there only)."""
    task = find_task("digits-cross-seed")
    rows = []
    for source, target in task.pairs():
        for n in task.spec.anchors.counts:
            for seed in task.spec.anchors.seeds:
                for method, accuracy in (("ortho", 0.9 if n == 256 else 0.95), ("linear", 0.95), ("affine", 0.95)):
                    rows.append({"task": task.name, "source": source, "target": target, "method": method,
                                 "method_name": method, "n_anchors": n, "seed": seed,
                                 "m:accuracy": accuracy + 0.001 * seed})
    return pd.DataFrame(rows)


def causes_fixture(frame: pd.DataFrame) -> dict:
    geometry = {"task": "digits-cross-seed", "n": 256, "cells": 18, "dims": [64], "below_dim": 0, "rank": 64,
                "kappa": 2.6e6, "outside_span": 0.0, "spectral_mismatch": 0.057, "non_orthogonality": 0.87,
                "map_agreement": 0.46, "ortho_behind_linear": 0.052, "ortho_behind_affine": 0.052,
                "l_ortho_behind_ortho": 0.71}
    against = {"spectral_mismatch": {"rho": 0.48, "p": 1e-7, "cells": 110},
               "kappa": {"rho": 0.05, "p": 0.6, "cells": 110}}
    return {"version": CAUSES_VERSION, "results": results_fingerprint(frame, ["digits-cross-seed"]),
            "tasks": ["digits-cross-seed"], "geometry": [geometry],
            "correlations": [{"ranked": "ortho_behind_linear", "counts": "ends", "regime": "above",
                              "tasks": ["digits-cross-seed"], "against": against},
                             {"ranked": "ortho_behind_linear", "counts": "ends", "regime": "below",
                              "tasks": ["digits-cross-seed"], "against": {}}],
            "irp": [], "irp_correlation": {"rho": None, "p": None, "cells": 0}, "mergers": []}


def test_why_lines_come_from_the_causes_file(tmp_path):
    frame = synthetic_frame()
    path = tmp_path / "causes.json"
    path.write_text(json.dumps(causes_fixture(frame)))
    lines = ortho_vs_linear(frame, [find_task("digits-cross-seed")], Causes.load(path, frame))
    text = "\n".join(lines)
    assert "| digits-cross-seed | 256 |" in text and "**disagrees**" in text
    assert "**Why**" in text
    why = next(line for line in lines if line.startswith("| digits-cross-seed | 256 | 64 |"))
    assert "0 of 18" in why and "0.057" in why and "2.6e+06" in why and "+5.2%" in why
    assert "anisotropy that no rotation undoes" in why  # the regime's strongest correlate (0.48, p < 0.05)
    assert "ρ = +0.48 (p = 1e-07)" in text and "110 cells of 1 tasks" in text
    assert "none of them goes with it" in text  # the regime below the width has nothing measured


def test_a_claim_that_agrees_has_no_why(tmp_path):
    frame = synthetic_frame()
    frame.loc[frame.method == "ortho", "m:accuracy"] = 0.96
    path = tmp_path / "causes.json"
    path.write_text(json.dumps(causes_fixture(frame)))
    assert not any("Why" in line for line in ortho_vs_linear(frame, [find_task("digits-cross-seed")],
                                                             Causes.load(path, frame)))


@pytest.mark.parametrize("content, reason", [
    (None, "is missing"),
    ("{not json", "cannot be read"),
    (json.dumps({"version": CAUSES_VERSION + 1}), "another layout"),
    ("stale", "other results"),
    ("malformed", "malformed"),
])
def test_without_a_usable_causes_file_one_line_says_why(tmp_path, content, reason):
    frame = synthetic_frame()
    path = tmp_path / "causes.json"
    if content == "stale":
        fixture = causes_fixture(frame)
        fixture["results"] = "0" * 16
        content = json.dumps(fixture)
    elif content == "malformed":
        fixture = causes_fixture(frame)
        del fixture["geometry"][0]["kappa"]
        content = json.dumps(fixture)
    if content is not None:
        path.write_text(content)
    lines = ortho_vs_linear(frame, [find_task("digits-cross-seed")], Causes.load(path, frame))
    why = [line for line in lines if "Why" in line]
    assert len(why) == 1 and why[0].startswith("**Why**: not measured: ") and reason in why[0]


def test_claim_5b_why_without_irp_records_names_them_unmeasured(tmp_path):
    task = find_task("digits-irp-ablation")
    frame = pd.DataFrame([{"task": task.name, "source": s, "target": t, "method": m, "method_name": "irp",
                           "n_anchors": n, "seed": seed, "m:accuracy": accuracy}
                          for s, t in task.pairs() for n in task.spec.anchors.counts for seed in task.spec.anchors.seeds
                          for m, accuracy in (("irp", 0.95), ("irp-plain", 0.1))])
    fixture = causes_fixture(frame) | {"tasks": [task.name], "results": results_fingerprint(frame, [task.name])}
    fixture["irp"] = [{"task": task.name, "n": 64, "cells": 18, "dims": [64], "below_dim": 0, "rank": 63,
                       "kappa_plain": 2.8e4, "alpha_chosen": 1.0, "kappa_chosen": 2.35, "disagreement": 0.18,
                       "accuracy_plain": 0.08, "accuracy_chosen": 0.95}]
    fixture["irp_correlation"] = {"rho": -0.93, "p": 4e-47, "cells": 108}
    path = tmp_path / "causes.json"
    path.write_text(json.dumps(fixture))
    text = "\n".join(irp_regulariser(frame, [task], Causes.load(path, frame)))
    assert "| digits-irp-ablation | 64 | 64 | 63 | 2.8e+04 | 1 | 2.4 | 18% | 0.080 | 0.950 |" in text
    assert "| digits-irp-ablation | 16 | not measured |" in text
    assert "peaks at n = 64 = the target width: the interpolation threshold" in text
    assert "ρ = -0.93 (p = 4e-47) over 108 fits" in text


def test_findings_without_causes_say_so_once_per_disagreeing_claim(tmp_path):
    text = render_findings(REPO / "results", tmp_path / "findings.md", causes=tmp_path / "missing.json")
    sections = text.split("\n## ")[1:]  # the claims (the header names Why too)
    disagreeing = [s for s in sections if "**disagrees**" in s]
    assert all(s.count("**Why**: not measured: `missing.json` is missing") == 1 for s in disagreeing)
    assert not any("**Why**" in s for s in sections if "**disagrees**" not in s)


def test_the_report_never_imports_the_measurements():
    """findings reads docs/causes.json: bench.causes (which runs encoders) is not imported to render it. (The
    encoder registry is: bench.report.tables reads each task's encoders' modalities from it, running none.)"""
    code = "import sys, bench.report.findings; print(sorted(m for m in sys.modules if m in ('bench.causes',)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert done.stdout.strip() == "[]"


def test_bench_causes_is_a_command(tmp_path):
    args = parser().parse_args(["causes", "--results", str(tmp_path), "--output", str(tmp_path / "causes.json")])
    assert args.func is cmd_causes and args.output == str(tmp_path / "causes.json")
