"""`bench submit`: card check, conformance suite, the suite for one method, and the report; then
the method is on the regenerated leaderboard with its interval and tie group."""
from __future__ import annotations

import shutil
import sys
from dataclasses import replace

import pytest
import torch

from bench.cli import main
from bench.report.leaderboard import render
from bench.families import FAMILIES
from bench.merging import MERGERS
from bench.method import METHODS, load_submission
from bench.results import ResultStore
from bench.runner import Summary, run_task
from bench.submit import check_card
from bench.task import load_task
from support import REPO

EXAMPLE = REPO / "tests" / "fixtures" / "example_submission"
NAME = "similarity-procrustes"
TINY = """\
name: tiny-submit
version: 1
kind: classification
dataset: {name: digits}
encoders: {all: [digits-mlp-w32-s0, digits-mlp-w32-s1]}
anchors: {counts: [64], seeds: [0, 1, 2, 3, 4, 5, 6, 7]}  # 16 paired cells: enough for Wilcoxon + Holm
methods: [absolute, ortho, linear, similarity-procrustes]
metrics: [accuracy, mse]
"""


@pytest.fixture
def registry(monkeypatch):
    """Methods registered by a test (the example, broken copies) vanish with it."""
    METHODS.names()  # discover the in-tree submissions first, into the original registry
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    before = set(sys.modules)
    yield
    for module in set(sys.modules) - before:
        if module.startswith("bench_submissions."):
            del sys.modules[module]


def test_submit_example_end_to_end(registry, tmp_path, capsys):
    results = tmp_path / "results"
    task_file = tmp_path / "tiny-submit.yaml"
    task_file.write_text(TINY)
    load_submission(EXAMPLE)  # the task names the example, so it must be registered to load the task
    task = load_task(task_file)
    # the other methods' results exist already (as on a real leaderboard): they must be reused, not rerun
    summary = Summary()
    run_task(task, ResultStore(results), torch.device("cpu"), summary, method_filter={"absolute", "ortho", "linear"}, progress=False)
    others = {p.name: p.read_bytes() for p in (results / "tiny-submit").glob("*.jsonl")}
    assert summary.run == 48

    assert main(["submit", str(EXAMPLE), "--results", str(results), "--tasks", str(task_file), "--device", "cpu", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "PASS  card" in out and "PASS  conformance: 16/16 rules passed" in out
    assert "cells run: 32, skipped (already stored): 0, failed: 0" in out  # its own 2 pairs x 8 seeds, and their nulls
    assert {p.name: p.read_bytes() for p in (results / "tiny-submit").glob("*.jsonl") if p.name in others} == others

    report = (results / "reports" / f"{NAME}.md").read_text(encoding="utf-8")
    assert report.startswith(f"# Submission report: {NAME}")
    assert "similarity Procrustes" in report and "[https://doi.org/10.1109/34.88573](https://doi.org/10.1109/34.88573)" in report
    overall = report.split("## Overall")[1].split("## Per task")[0]
    assert f"**{NAME}**: rank " in overall and "95% CI" in overall
    assert "absolute" in overall.split("Significantly better than: ")[1].split(".")[0]
    assert "| tiny-submit" in report.split("## Per task")[1]
    assert "fit " in report.split("## Cost")[1] and "None: every cell was scored." in report

    # the same method, on the regenerated leaderboard: with an interval and a tie group
    board = render(results, tmp_path / "leaderboard.md", plots=False, tasks=[task])
    row = next(line for line in board.split("## Overall ranking")[1].splitlines() if f"[{NAME}](" in line)
    rank, method, score, group, *_ = [c.strip() for c in row.split("|")[1:-1]]
    assert method == f"[{NAME}](tests/fixtures/example_submission/card.yaml)"  # linked to its card
    assert rank.isdigit() and "(" in score and "–" in score and group.isalpha()

    # a second submit computes nothing new
    assert main(["submit", str(EXAMPLE), "--results", str(results), "--tasks", str(task_file), "--device", "cpu", "--quiet"]) == 0
    assert "cells run: 0, skipped (already stored): 32" in capsys.readouterr().out


def test_card_check(tmp_path):
    assert check_card(EXAMPLE) == []
    folder = tmp_path / "no-card"
    folder.mkdir()
    assert "card.yaml: missing" in check_card(folder)[0]
    (folder / "card.yaml").write_text("title: x\nauthors: []\npaper: ''\nlicense: MIT\n")
    problems = check_card(folder)
    assert [p.split("'")[1] for p in problems] == ["authors", "paper", "description", "defaults_chosen_by"]
    (folder / "card.yaml").write_text("- a list\n")
    assert "expected a mapping" in check_card(folder)[0]
    # a default tuned on a benchmark task is refused: its scores there would not be comparable
    complete = (EXAMPLE / "card.yaml").read_text(encoding="utf-8").split("defaults_chosen_by:")[0]
    (folder / "card.yaml").write_text(complete + "defaults_chosen_by: alpha = 0.3, the best on digits-cross-seed\n")
    assert check_card(folder) == [f"{folder / 'card.yaml'}: 'defaults_chosen_by' names the benchmark task 'digits-cross-seed': "
                                  "a default chosen on an evaluation task makes its scores there incomparable; choose it "
                                  "on the anchors or a priori"]
    for dodge in ("alpha = 0.3, the best on Digits-Cross-Seed", "[alpha = 0.3, the best on digits-cross-seed]"):
        (folder / "card.yaml").write_text(complete + f"defaults_chosen_by: {dodge}\n")  # another case, or a list
        assert check_card(folder) and all("'defaults_chosen_by'" in p for p in check_card(folder)), dodge
    (folder / "card.yaml").write_text(complete + "defaults_chosen_by: the digits-cross-seedling rule\n")
    assert check_card(folder) == []  # a task's name inside another word is not the task


def test_every_plugin_card_says_how_its_defaults_were_chosen():
    """Every in-tree method and merger passes the card check, defaults_chosen_by included."""
    folders = sorted((REPO / "submissions").iterdir()) + sorted((REPO / "mergers").iterdir())
    assert len(folders) >= 14 and all(check_card(folder) == [] for folder in folders if folder.is_dir())


def test_submit_stops_on_a_bad_card_or_a_broken_method(registry, tmp_path, capsys):
    results = tmp_path / "results"
    no_card = tmp_path / "no-card"
    shutil.copytree(EXAMPLE, no_card)
    (no_card / "card.yaml").unlink()
    assert main(["submit", str(no_card), "--results", str(results), "--quiet"]) == 1
    assert "FAIL  card" in capsys.readouterr().out and not results.exists()

    broken = tmp_path / "broken"
    shutil.copytree(EXAMPLE, broken)
    source = (broken / "method.py").read_text()
    source = source.replace('"similarity-procrustes"', '"broken-procrustes"')
    source = source.replace("return Y[:, : self.dy_].to(X.dtype)", "return Y[:, : self.dy_].numpy()")  # not a tensor
    (broken / "method.py").write_text(source)
    assert main(["submit", str(broken), "--results", str(results), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "PASS  card" in out and "FAIL  conformance" in out and "output_type" in out
    assert not results.exists()  # nothing was run


def test_contributing_shows_the_tested_example():
    """CONTRIBUTING.md's example is this fixture, verbatim: what a newcomer copies is what CI submits."""
    guide = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    for name, fence in (("method.py", "python"), ("card.yaml", "yaml")):
        assert f"```{fence}\n{(EXAMPLE / name).read_text(encoding='utf-8')}```" in guide, name


def test_report_counts_other_tasks_rows_as_not_part_of_the_run_not_as_stale(tmp_path):
    """A fresh clone's store holds every default-suite task: a submit run on one task must not call the
    others' rows stale. Stale is only a row of the run's own tasks with an older version or source."""
    from bench.submit import write_report
    from test_ranking import A, B, make_rows, make_task

    ran, other = make_task(tmp_path, "ran-task"), make_task(tmp_path, "other-task")
    scores = {"absolute": lambda s, t, n, seed: 0.1, "ortho": lambda s, t, n, seed: 0.8 + 0.01 * seed}
    rows = make_rows(ran, scores, native={A: 0.9, B: 0.95})
    others = make_rows(other, scores, native={A: 0.9, B: 0.95})
    outdated = replace(rows[-1], task_version=0)  # the run's task, an older version of it

    report = write_report("ortho", rows + others + [outdated], [ran], n_checks=12, card=METHODS.get("ortho").card)
    assert f"Stored results of tasks this submit did not run (not part of this run): {len(others)}." in report
    assert "(older task version or spec, or changed method source): 1." in report
    assert "**ortho**: rank " in report.split("## Overall")[1]  # the run's rows are still ranked

    report = write_report("ortho", rows + others, [ran], n_checks=12, card=METHODS.get("ortho").card)
    assert "stale" not in report.lower() and f"(not part of this run): {len(others)}." in report


def test_submit_exits_2_naming_a_malformed_stored_row(registry, tmp_path, capsys):
    """The submission's own results file (a resubmission) has a row with `"metrics": null`: the suite
    stops before computing anything, with the file and line, and the row is kept for the user to fix."""
    import json

    from test_results import row

    results, task_file = tmp_path / "results", tmp_path / "tiny-submit.yaml"
    task_file.write_text(TINY)
    store = ResultStore(results)
    store.write([row(0, method=NAME, task="tiny-submit")])
    path = store.path("tiny-submit", NAME)
    path.write_text(json.dumps({**json.loads(path.read_text()), "metrics": None}) + "\n")
    before = path.read_bytes()
    assert main(["submit", str(EXAMPLE), "--results", str(results), "--tasks", str(task_file), "--device", "cpu", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert f"error: {path}:1: results row field 'metrics' is null" in captured.err
    assert "cells run" not in captured.out and path.read_bytes() == before
    assert not (results / "reports").exists()


FIRST_PART = '''\
import torch

from bench.merging import Merger, register_merger


@register_merger("test-first-part")
class FirstPart(Merger):
    """Keeps the first part's space: a merger that ignores every other part."""

    def fit(self, anchors: list[torch.Tensor]) -> "FirstPart":
        self.n_parts_ = len(anchors)
        return self

    def transform(self, spaces: list[torch.Tensor]) -> torch.Tensor:
        return spaces[0].clone()
'''
MERGING_TASK = """\
name: tiny-merging-submit
version: 1
kind: merging
dataset: {name: digits}
merging: {partitions: [shared-classes], arch: mlp, width: 32}
anchors: {counts: [16], seeds: [0, 1]}
methods: [naive, test-first-part]
metrics: [cka_linear, accuracy]
"""


def test_submit_takes_a_merger_through_the_same_flow(tmp_path, capsys, monkeypatch):
    """A merger folder: card, the merger rules (in sandboxed workers), the merging tasks that name it,
    and its report, by the same code as a method (bench.families)."""
    MERGERS.names()
    monkeypatch.setattr(MERGERS, "_entries", dict(MERGERS._entries))  # the stand-in vanishes with the test
    folder = tmp_path / "first-part"
    folder.mkdir()
    (folder / "merger.py").write_text(FIRST_PART)
    (folder / "card.yaml").write_text("title: first part\nauthors: [a tester]\npaper: none\nlicense: MIT\n"
                                      "description: keeps the first part's space\ndefaults_chosen_by: no hyper-parameters\n")
    task_file, results = tmp_path / "tiny-merging-submit.yaml", tmp_path / "results"
    task_file.write_text(MERGING_TASK)

    assert main(["submit", str(folder), "--results", str(results), "--tasks", str(task_file), "--device", "cpu", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "PASS  card" in out and f"PASS  conformance: {len(FAMILIES['merger'].rules)}/9 rules passed" in out
    assert "cells run: 2, skipped (already stored): 0, failed: 0" in out  # one partition x two seeds, its own cells only
    rows = [r for r in ResultStore(results).rows() if r.method == "test-first-part"]
    assert len(rows) == 2 and {r.isolation for r in rows} == {"sandbox"} and all(0 < r.metrics["cka_linear"] <= 1 for r in rows)
    report = (results / "reports" / "test-first-part.md").read_text(encoding="utf-8")
    assert report.startswith("# Submission report: test-first-part") and "first part by a tester" in report
    assert "| tiny-merging-submit | test-first-part |" in report
