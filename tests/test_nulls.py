"""Nulls: each method's score with its anchor pairs shuffled, stored beside its score, and its lift
on the leaderboard. Checked against what must hold whatever the data: the shuffle is a seeded
derangement of the same anchors, a method that ignores the pairing scores its null exactly, and one
that uses it loses most of its score."""
import numpy as np
import pytest
import torch

from bench.pairing import shuffled_pairs
from bench.report.leaderboard import render
from bench.results import ResultStore
from bench.runner import Summary, run_task
from bench.task import load_task
from support import SMALL_TASK


@pytest.mark.parametrize("n", [2, 3, 16, 257])
def test_the_shuffle_is_a_seeded_derangement(n):
    permutation = shuffled_pairs(n, seed=4)
    assert sorted(permutation) == list(range(n)) and not (permutation == np.arange(n)).any()  # no pair survives
    assert np.array_equal(permutation, shuffled_pairs(n, seed=4))
    assert n < 16 or not np.array_equal(permutation, shuffled_pairs(n, seed=5))  # n = 3 has two derangements


@pytest.fixture
def nulls_run(tmp_path):
    path = tmp_path / "tiny-nulls.yaml"
    path.write_text(SMALL_TASK.replace("name: tiny", "name: tiny-nulls")
                    .replace("[absolute, ortho, linear]", "[absolute, ortho, random-ortho]"))
    task, store = load_task(path), ResultStore(tmp_path / "results")
    summary = Summary()
    run_task(task, store, torch.device("cpu"), summary, progress=False, nulls=True)
    return task, store, summary, tmp_path


def test_each_method_gets_a_null_at_the_largest_anchor_count(nulls_run):
    task, store, summary, _ = nulls_run
    pairs, seeds, counts = len(task.pairs()), len(task.spec.anchors.seeds), task.spec.anchors.counts
    assert (summary.run, summary.failed) == (pairs * 3 * len(counts) * seeds + pairs * 2 * seeds, 0)  # no null for the floor
    rows = store.rows()
    nulls = [r for r in rows if r.pairing == "shuffled"]
    assert {(r.method, r.n_anchors) for r in nulls} == {("ortho", max(counts)), ("random-ortho", max(counts))}
    paired = {(r.method, r.source, r.target, r.n_anchors, r.seed): r for r in rows if r.pairing == "paired"}
    for null in nulls:  # the same anchors (their hash is the source side's), only the pairs differ
        assert null.anchor_ids_hash == paired[(null.method, null.source, null.target, null.n_anchors, null.seed)].anchor_ids_hash
    again = Summary()
    run_task(task, store, torch.device("cpu"), again, progress=False, nulls=True)
    assert (again.run, again.skipped) == (0, summary.run)  # nulls resume like any cell


def test_a_method_that_ignores_the_pairing_scores_its_null_and_one_that_uses_it_does_not(nulls_run):
    _, store, _, _ = nulls_run
    rows = store.rows()
    paired = {(r.method, r.source, r.seed): r.metrics for r in rows if r.pairing == "paired" and r.n_anchors == 64}
    for null in (r for r in rows if r.pairing == "shuffled"):
        own = paired[(null.method, null.source, null.seed)]
        if null.method == "random-ortho":  # the anchors give it statistics only, and a shuffle keeps them
            assert null.metrics == pytest.approx(own, rel=1e-6)
        else:  # ortho without the correspondence: near the floor, far from its own score
            floor = paired[("absolute", null.source, null.seed)]["accuracy"]
            assert null.metrics["accuracy"] < floor + 0.25 < own["accuracy"]


def test_the_leaderboard_shows_each_methods_null_and_lift(nulls_run):
    task, _, _, folder = nulls_run
    text = render(folder / "results", folder / "leaderboard.md", plots=False, tasks=[task])
    section = text.split("### Lift over the null")[1].split("\n#")[0]
    table = {cells[0]: cells[1:] for cells in ([c.strip() for c in line.split("|")[1:-1]]
                                               for line in section.splitlines() if line.startswith("| ["))}
    ortho = next(v for k, v in table.items() if k.startswith("[ortho]"))
    random_ortho = next(v for k, v in table.items() if k.startswith("[random-ortho]"))
    assert float(ortho[3]) > 0.5 and abs(float(random_ortho[3])) < 1e-3  # lift: ortho's is real, random-ortho's nil
    assert float(ortho[1]) == pytest.approx(float(ortho[2]) + float(ortho[3]), abs=2e-3)  # score = null + lift


def test_a_null_never_replaces_a_methods_reconstruction_grid(tmp_path):
    """The showcase grid is the paired cell's: its null shares the cell's anchors and seed, not its
    correspondence, and must not be drawn in its place (as a run with nulls after one without did)."""
    path = tmp_path / "tiny-reconstruction.yaml"
    path.write_text("name: tiny-reconstruction\nversion: 1\nkind: reconstruction\ndataset: {name: digits}\n"
                    "encoders: {all: [digits-ae-w16-s0, digits-ae-w16-s1]}\nanchors: {counts: [64], seeds: [0]}\n"
                    "methods: [absolute, ortho]\nmetrics: [pixel_mse]\n")
    task = load_task(path)
    grids = {}
    for nulls in (False, True):
        results = tmp_path / f"results-{nulls}"
        run_task(task, ResultStore(results), torch.device("cpu"), Summary(), progress=False, nulls=nulls)
        grids[nulls] = (results / "grids" / "tiny-reconstruction" / "ortho.png").read_bytes()
    assert grids[True] == grids[False]
