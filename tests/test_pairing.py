"""Correspondence protocols (bench/pairing.py): paired, noisy, partial and unpaired anchors. Each
side's samples are checked by what must hold for any draw (counts, overlaps, which pairs survive);
the task schema refuses what a protocol cannot mean; a method is only given the protocols it
declares, also when it is described by a sandboxed worker; rows are keyed by their protocol."""
import dataclasses

import numpy as np
import pytest
import torch

from bench import sandbox, wire
from bench.kinds.stitching import StitchingJob
from bench.method import METHODS, Method, MethodInfo
from bench.pairing import Pairing, mismatched, shuffled_pairs
from bench.results import ResultStore, row_problem
from bench.runner import Summary, run_task
from bench.sandbox import ProcessExecutor
from bench.task import TaskError, load_task
from support import SMALL_TASK
from test_sandbox import write_method

# ----------------------------------------------------------------------------- labels and sides


@pytest.mark.parametrize("pairing", [Pairing("paired"), Pairing("shuffled"), Pairing("noisy", 0.25),
                                     Pairing("noisy", 1.0), Pairing("partial", 32), Pairing("unpaired")])
def test_a_label_reads_back_as_its_protocol(pairing):
    assert Pairing.parse(pairing.label) == pairing


@pytest.mark.parametrize("label", ["", "noisy", "noisy:0", "noisy:1.5", "noisy:-0.1", "partial:x", "partial:",
                                   "Paired", "unpaired:3", "noisy:nan", 7])
def test_a_label_that_is_no_protocol_is_refused(label):
    with pytest.raises(ValueError):
        Pairing.parse(label)


def test_noisy_with_nothing_mismatched_is_the_paired_protocol():
    assert Pairing("noisy", 0).label == "paired"


def draw(pairing: Pairing, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    drawn = np.random.default_rng(3).choice(10_000, size=pairing.drawn(n), replace=False)
    return (drawn, *pairing.sides(drawn, n, seed=7))


@pytest.mark.parametrize("n, fraction", [(100, 0.1), (100, 0.25), (64, 0.5), (1024, 0.25), (50, 1.0), (40, 0.01)])
def test_noisy_mismatches_exactly_its_fraction_of_the_same_anchors(n, fraction):
    drawn, source, target = draw(Pairing("noisy", fraction), n)
    assert np.array_equal(source, drawn) and sorted(target) == sorted(drawn)  # the same samples on both sides
    wrong = int((source != target).sum())
    assert wrong == max(2, round(fraction * n))  # 0.01 of 40 rounds to 0: one pair cannot be mismatched, so 2
    order = mismatched(n, fraction, seed=7)
    assert np.array_equal(order, mismatched(n, fraction, seed=7)) and not np.array_equal(order, mismatched(n, fraction, 8))


def test_the_null_keeps_its_derangement():
    drawn, source, target = draw(Pairing("shuffled"), 64)
    assert np.array_equal(target, drawn[shuffled_pairs(64, 7)]) and (source != target).all()


@pytest.mark.parametrize("pairing", [Pairing("partial", 16), Pairing("partial", 1), Pairing("unpaired")])
def test_partial_and_unpaired_sides_share_only_their_known_pairs(pairing):
    n = 64
    known = pairing.known
    drawn, source, target = draw(pairing, n)
    assert len(drawn) == 2 * n - known and len(source) == len(target) == n
    assert np.array_equal(source[:known], target[:known])  # the known pairs first, row for row
    assert not set(source[known:]) & set(target)  # every other sample is on one side only
    assert not set(target[known:]) & set(source)
    assert len(set(source)) == len(set(target)) == n


def test_a_draw_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="needs 127 samples"):
        Pairing("partial", 1).sides(np.arange(64), 64, 0)


# ----------------------------------------------------------------------------- the task file


def task_file(tmp_path, pairing: str, anchors: str = "counts: [16, 64], seeds: [0, 1]") -> str:
    path = tmp_path / "tiny-pairing.yaml"
    path.write_text(SMALL_TASK.replace("name: tiny", "name: tiny-pairing")
                    .replace("anchors: {counts: [16, 64], seeds: [0, 1]}", f"anchors: {{{anchors}, pairing: {pairing}}}"))
    return path


@pytest.mark.parametrize("pairing, anchors, problem", [
    ("{noisy: [0]}", None, "anchors.pairing.noisy[0]: Input should be greater than 0"),
    ("{noisy: [1.5]}", None, "anchors.pairing.noisy[0]: Input should be less than or equal to 1"),
    ("{noisy: [0.1, 0.1]}", None, "anchors.pairing.noisy: values must be unique"),
    ("{paired: false}", None, "no protocol"),
    ("{partial: [16]}", None, "known pairs [16] must each be fewer than every anchor count [16, 64]"),
    ("{unpaired: true}", "counts: [16], seeds: [0], sampling: kmeans", "drawn at random, not by 'kmeans' sampling"),
    ("{unpaired: yes please}", None, "anchors.pairing.unpaired: Input should be a valid boolean"),
    ("{unparied: true}", None, "anchors.pairing.unparied: unknown key; did you mean 'unpaired'"),
])
def test_a_protocol_a_task_cannot_mean_is_an_error_naming_the_key(tmp_path, pairing, anchors, problem):
    path = task_file(tmp_path, pairing, *([anchors] if anchors else []))
    with pytest.raises(TaskError) as error:
        load_task(path)
    assert str(path) in str(error.value) and problem in str(error.value)


def test_unpaired_anchors_must_fit_twice_in_the_fit_split(tmp_path):
    from bench.task import check_against_data

    task = load_task(task_file(tmp_path, "{unpaired: true}", "counts: [1000], seeds: [0]"))  # digits: 1,347 fit samples
    with pytest.raises(TaskError, match=r"anchors.counts\[0\]: 1000 anchors \(2000 distinct samples as unpaired\)"):
        check_against_data(task)


def test_the_default_protocol_keeps_every_task_hash_and_another_changes_it(tmp_path):
    (tmp_path / "plain").mkdir()
    plain = tmp_path / "plain" / "tiny.yaml"
    plain.write_text(SMALL_TASK.replace("name: tiny", "name: tiny-pairing"))
    explicit = load_task(task_file(tmp_path, "{paired: true}"))
    assert load_task(plain).spec_hash == explicit.spec_hash != load_task(task_file(tmp_path, "{noisy: [0.5]}")).spec_hash


# ----------------------------------------------------------------------------- what a method is given


class Unpaired(Method):
    """Procrustes on the known pairs (or the floor, without any); records what fit_unpaired was given."""
    pairings = frozenset({"paired", "partial", "unpaired"})
    calls: list[tuple[str, int, int, int]] = []

    def fit(self, X, Y):
        return self.fit_unpaired(X, Y, known=len(X))

    def fit_unpaired(self, X, Y, known=0):
        Unpaired.calls.append(("fit_unpaired", len(X), len(Y), known))
        if known:
            u, _, vt = torch.linalg.svd(X[:known].T @ Y[:known], full_matrices=False)
            self.map_ = u @ vt  # (dx, dy)
        else:
            self.map_ = torch.eye(X.shape[1], Y.shape[1])
        return self

    def transform(self, X):
        return X @ self.map_


@pytest.fixture
def with_unpaired(monkeypatch):
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    METHODS.add("both-ways", MethodInfo("both-ways", Unpaired, None))
    Unpaired.calls = []


def pairing_task(tmp_path, pairing: str, methods: str):
    return load_task(_write(tmp_path, task_file(tmp_path, pairing).read_text().replace("[absolute, ortho, linear]", methods)))


def _write(tmp_path, text: str):
    path = tmp_path / "tiny-pairing.yaml"
    path.write_text(text)
    return path


def test_a_method_is_given_only_the_protocols_it_declares(tmp_path, with_unpaired):
    task = pairing_task(tmp_path, "{noisy: [0.5], partial: [8], unpaired: true}", "[ortho, both-ways]")
    planned = {(cell.method.name, cell.pairing) for cell in task.plan(nulls=True)}
    assert planned == {("ortho", "paired"), ("ortho", "noisy:0.5"), ("both-ways", "paired"), ("both-ways", "noisy:0.5"),
                       ("both-ways", "partial:8"), ("both-ways", "unpaired"), ("ortho", "shuffled"),
                       ("both-ways", "shuffled")}
    unpaired_only = pairing_task(tmp_path, "{paired: false, unpaired: true}", "[ortho, both-ways]")
    assert {(c.method.name, c.pairing) for c in unpaired_only.plan(nulls=True)} == {("both-ways", "unpaired")}


def test_each_protocol_runs_keyed_by_its_label_and_resumes(tmp_path, with_unpaired):
    task = pairing_task(tmp_path, "{noisy: [0.5], partial: [8], unpaired: true}", "[ortho, both-ways]")
    store, summary = ResultStore(tmp_path / "results"), Summary()
    run_task(task, store, torch.device("cpu"), summary, progress=False)
    rows = store.rows()
    pairs, seeds, counts = len(task.pairs()), 2, 2
    assert (summary.run, summary.failed) == (pairs * seeds * counts * (2 + 4), 0)
    assert {row.pairing for row in rows} == {"paired", "noisy:0.5", "partial:8", "unpaired"}
    stored = dataclasses.asdict(rows[0])
    assert row_problem(stored | {"pairing": "noisy:0.5"}) is None
    assert "pairing 'noisy:2'" in row_problem(stored | {"pairing": "noisy:2"})  # a corrupt row is named, not read
    # fit_unpaired was given n rows a side and its known pairs: 8 (partial), 0 (unpaired), n (paired, by its fit)
    assert {(n, known) for _, n, _, known in Unpaired.calls} == {(16, 8), (64, 8), (16, 0), (64, 0), (16, 16), (64, 64)}
    by = {(r.method, r.pairing, r.source, r.n_anchors, r.seed): r.metrics["accuracy"] for r in rows if r.method != "native"}
    for (method, pairing, source, n, seed), accuracy in by.items():
        if pairing == "unpaired":  # no pair known: the identity, whatever the protocol's draw
            assert accuracy == by[("both-ways", "unpaired", source, 64 if n == 16 else 16, seed)]
    # partial uses its 8 known pairs and nothing else: the same score at 16 and 64 anchors a side needs the same 8 pairs,
    # which the draws do not share, so only a sanity bound: better than none at all
    mean = lambda pairing: np.mean([a for (m, p, *_), a in by.items() if m == "both-ways" and p == pairing])  # noqa: E731
    assert mean("paired") > mean("partial:8") > mean("unpaired") - 0.05
    again = Summary()
    run_task(task, store, torch.device("cpu"), again, progress=False)
    assert (again.run, again.skipped) == (0, summary.run)


def test_the_evaluation_gives_each_side_its_protocols_samples(tmp_path, with_unpaired):
    from bench.datasets import load_dataset
    from bench.task import Cell, MethodSpec

    task = pairing_task(tmp_path, "{noisy: [0.25], partial: [8], unpaired: true}", "[both-ways]")
    dataset = load_dataset("digits")
    evaluation = task.kind.evaluation(task, dataset, torch.device("cpu"), tmp_path)
    fit = set(dataset.split("train"))
    source, target = task.pairs()[0]
    sides = {label: evaluation.sides(Cell(source, target, MethodSpec(name="both-ways"), 64, 1, label))
             for label in ("paired", "noisy:0.25", "partial:8", "unpaired")}
    for label, (src, tgt) in sides.items():
        assert set(src) | set(tgt) <= fit and len(set(src)) == len(set(tgt)) == 64, label
    assert np.array_equal(*sides["paired"]) and (sides["noisy:0.25"][0] != sides["noisy:0.25"][1]).sum() == 16
    assert not set(sides["unpaired"][0]) & set(sides["unpaired"][1])
    job = evaluation.job([Cell(source, target, MethodSpec(name="both-ways"), 64, 1, "partial:8")], task.spec.limits)
    assert job.known == 8 and job.Y_anchors[0].shape == (64, evaluation.embedding(target).shape[1])
    assert torch.equal(job.Y_anchors[0][:8], evaluation.embedding(target)[sides["partial:8"][1][:8]])


# ----------------------------------------------------------------------------- declared by a worker


UNPAIRED_BODY = ("    pairings = frozenset({'paired', 'unpaired'})\n"
                 "    def fit(self, X, Y):\n        self.d_ = Y.shape[1]\n        return self\n"
                 "    def fit_unpaired(self, X, Y, known=0):\n        self.d_ = Y.shape[1] + 0 * len(X) - 0 * known\n"
                 "        open('called', 'w').write(str(known))\n        return self\n"
                 "    def transform(self, X):\n        return X[:, :self.d_]\n")


def test_a_worker_describes_what_a_method_declares_and_its_stand_in_plans_by_it(tmp_path, monkeypatch):
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    honest = write_method(tmp_path / "subs" / "declares", "declares-unpaired", UNPAIRED_BODY)
    sly = write_method(tmp_path / "subs" / "sly", "sly-string", UNPAIRED_BODY.replace(
        "frozenset({'paired', 'unpaired'})", "'unpaired, partial'"))  # a string is not a set of protocols
    isolated = sandbox.Isolated(sandboxed=False)
    try:
        described = {d.name: d for folder in (honest, sly) for d in isolated.describe(folder)}
    finally:
        isolated.close()
    assert described["declares-unpaired"].pairings == ("paired", "unpaired")
    assert described["sly-string"].pairings == ("paired",)
    for folder, d in ((honest, described["declares-unpaired"]), (sly, described["sly-string"])):
        sandbox.register_described(d, folder)
    assert METHODS.get("declares-unpaired").cls.pairings == frozenset({"paired", "unpaired"})
    text = SMALL_TASK.replace("name: tiny", "name: tiny-described").replace(
        "[absolute, ortho, linear]", "[declares-unpaired, sly-string]").replace(
        "seeds: [0, 1]}", "seeds: [0, 1], pairing: {paired: false, unpaired: true}}")
    planned = {cell.method.name for cell in load_task(_write(tmp_path, text)).plan()}
    assert planned == {"declares-unpaired"}


@pytest.mark.parametrize("pairings", [None, "unpaired", ["unpaired"], ["paired", "telepathy"]])
def test_a_description_with_pairings_that_are_no_protocols_makes_a_broken_plugin(tmp_path, pairings):
    plugin = {"family": "method", "name": "ok", "error": None, "params": [], "takes_seed": False, "batches": False,
              "pairings": pairings}
    described = wire.descriptions_from({"kind": "described", "plugins": [plugin]}, tmp_path / "folder")
    assert described[0].name == "folder" and described[0].error.startswith("protocol:")


def test_a_sandboxed_worker_calls_fit_unpaired_with_the_known_pairs(tmp_path):
    folder = write_method(tmp_path / "declares", "declares-unpaired-run", UNPAIRED_BODY)
    X, Y = torch.randn(16, 6), torch.randn(12, 4)  # the sides need not even have as many rows
    job = StitchingJob(plugin="declares-unpaired-run", params={}, seed=0, device="cpu", time_limit=60, memory_limit=2048,
                       folder=str(folder), X_anchors=[X], Y_anchors=[Y], X_eval=torch.randn(5, 6), known=0)
    outcomes = dict(ProcessExecutor(1, sandboxed=sandbox.unavailable_reason() is None).run([job]))
    outcome = outcomes[0][0]
    assert outcome.error is None and outcome.translated.shape == (5, 4)


def test_a_malformed_declaration_plans_the_same_in_process_as_in_a_worker(tmp_path, monkeypatch):
    class Sly(Unpaired):
        pairings = "unpaired, partial"  # a string: "unpaired" in it is a substring, not a declared protocol

    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    METHODS.add("sly-local", MethodInfo("sly-local", Sly, None))
    task = pairing_task(tmp_path, "{partial: [8], unpaired: true}", "[sly-local]")
    assert {cell.pairing for cell in task.plan()} == {"paired"}  # as bench.method.declared_pairings reads it
