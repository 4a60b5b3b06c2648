"""The leaderboard: rebuilt from results/ alone, deterministic, committed copy up to date."""
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from bench.report.blocks import md_escape, safe_href
from bench.report.leaderboard import render
from bench.report.stats import interval
from bench.results import ResultStore
from support import REPO
from test_ranking import A, B, make_rows, make_task


def test_committed_leaderboard_matches_results(tmp_path):
    """CI fails when leaderboard.md drifts from results/: run `bench leaderboard` and commit both."""
    html = tmp_path / "leaderboard.html"
    text = render(REPO / "results", tmp_path / "leaderboard.md", html=html)
    assert text == (REPO / "leaderboard.md").read_text(encoding="utf-8")
    if (REPO / "leaderboard.html").exists():  # the HTML page, when it is committed too
        assert html.read_bytes() == (REPO / "leaderboard.html").read_bytes()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Results of two tasks: three methods, the floor, the ceiling, a stale row and a failed cell."""
    folder = tmp_path_factory.mktemp("synthetic")
    tasks = [make_task(folder, "task-one", metrics="accuracy, mse"), make_task(folder, "task-two", metrics="mse, accuracy")]
    rows = []
    for task in tasks:
        metric = task.main_metric
        good = 0.9 if metric == "accuracy" else 1.0
        rows += make_rows(task, {"absolute": lambda s, t, n, seed, m=metric: 0.1 if m == "accuracy" else 9.0,
                                 "ortho": lambda s, t, n, seed, g=good: g + 0.01 * seed,
                                 "linear": lambda s, t, n, seed, g=good: g * 0.8 + 0.01 * seed},
                          native={A: 0.97 if metric == "accuracy" else 0.0, B: 0.95 if metric == "accuracy" else 0.0})
    stale = replace(rows[-1], task_version=0, seed=99)
    failed = replace(rows[-1], method="linear", seed=98, status="failed", error="fit: boom", metrics={})
    ResultStore(folder / "results").write(rows + [stale, failed])
    (folder / "site").mkdir()
    text = render(folder / "results", folder / "site" / "leaderboard.md", html=folder / "site" / "leaderboard.html", tasks=tasks)
    return folder, tasks, text


def test_rendering_is_byte_identical(synthetic, tmp_path):
    folder, tasks, _ = synthetic
    first, second = folder / "site", tmp_path
    render(folder / "results", second / "leaderboard.md", html=second / "leaderboard.html", tasks=tasks)
    for name in ("leaderboard.md", "leaderboard.html"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    plots = sorted(p.relative_to(first) for p in first.rglob("*.png"))
    assert [p.name for p in plots] == ["cost-vs-score.png", "task-one-anchors.png", "task-one-matrix.png",
                                       "task-two-anchors.png", "task-two-matrix.png"]
    assert plots == sorted(p.relative_to(second) for p in second.rglob("*.png"))
    for plot in plots:
        assert (first / plot).read_bytes() == (second / plot).read_bytes()


def test_leaderboard_sections(synthetic):
    _, _, text = synthetic
    overall = text.split("## Overall ranking")[1].split("## By task kind")[0]
    lines = [line for line in overall.splitlines() if line.startswith("| ")]
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == ["rank", "method", "score (95% CI)", "tie group",
                                                              "mean rank", "tasks", "fit ms"]
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[1:]]
    assert [row[1].split("]")[0].lstrip("[") for row in cells] == ["ortho", "linear", "absolute"]
    # ortho wins task-one by far, linear wins task-two by a little: not significant over both, a tie
    assert [(row[0], row[3]) for row in cells] == [("1", "a"), ("1", "a"), ("3", "b")]
    assert cells[-1][2] == "0.000 (0.000–0.000)" and cells[0][5] == "2"
    assert "[ortho](submissions/ortho/card.yaml)" in overall  # links to the method's card
    assert "### classification" in text and "## task-one" in text and "## task-two" in text and "## Methods" in text
    for plot in ("cost-vs-score", "task-one-matrix", "task-one-anchors", "task-two-matrix"):
        assert f"](results/plots/{plot}.png)" in text
    assert "1 stored results are stale" in text  # flagged, and not counted: 2 pairs x 3 seeds per task
    assert "Failed cells (not scored; retried by the next `bench run`, `--nulls` for a null): linear 1" in text
    assert "**mse ↓** by number of anchors" in text  # a lower-is-better main metric


def test_interval_is_student_t():
    values = np.array([0.8, 0.82, 0.79, 0.85, 0.81])
    mean, half = interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert np.isclose(mean, values.mean()) and np.isclose(half, (high - low) / 2)
    assert np.isnan(interval(np.array([0.5]))[1])


def test_markdown_escaping_neutralises_injection():
    hostile = "<script>alert(1)</script> | [x](javascript:alert(1)) **bold**\n# heading"
    escaped = md_escape(hostile)
    assert "<" not in escaped and "\n" not in escaped and "|" not in escaped.replace("\\|", "")
    assert "](" not in escaped.replace("\\]\\(", "")


def test_only_safe_links():
    assert safe_href("https://arxiv.org/abs/2311.00664") == "https://arxiv.org/abs/2311.00664"
    assert safe_href("submissions/ortho/card.yaml") == "submissions/ortho/card.yaml"
    for bad in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>", "https://x.org/a b", "", None,
                "https://x.org/)(", "//evil.org/x"):
        href = safe_href(bad)
        assert href is None or ("(" not in href and ")" not in href and " " not in href), bad


def test_empty_results_render(tmp_path):
    (tmp_path / "results").mkdir()
    text = render(tmp_path / "results", tmp_path / "leaderboard.md")
    assert "No results yet" in text
