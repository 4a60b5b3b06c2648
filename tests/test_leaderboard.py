"""The leaderboard: rebuilt from results/ alone, deterministic, committed copy up to date."""
import shutil

import numpy as np
from scipy import stats

from bench.leaderboard import interval, md_escape, render
from conftest import REPO


def test_committed_leaderboard_matches_results(tmp_path):
    """CI fails when leaderboard.md drifts from results/: run `bench leaderboard` and commit both."""
    text = render(REPO / "results", tmp_path / "leaderboard.md")
    assert text == (REPO / "leaderboard.md").read_text(encoding="utf-8")


def test_rendering_is_byte_identical(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        out.mkdir()
        render(REPO / "results", out / "leaderboard.md")
    assert (first / "leaderboard.md").read_bytes() == (second / "leaderboard.md").read_bytes()
    plots = sorted(p.relative_to(first) for p in first.rglob("*.png"))
    assert plots and plots == sorted(p.relative_to(second) for p in second.rglob("*.png"))
    for plot in plots:
        assert (first / plot).read_bytes() == (second / plot).read_bytes()


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


def test_empty_results_render(tmp_path):
    (tmp_path / "results").mkdir()
    text = render(tmp_path / "results", tmp_path / "leaderboard.md")
    assert "No results yet" in text
