"""Cross-modal stitching: a paired image+text data set, encoders that each read their own modality,
a tiny text <-> image task end to end, and the leaderboard's encoder x decoder matrix.

fashion-mnist-wordnet pairs at the CLASS level (an image and a WordNet text of its class); the online
fashion-products-captioned set pairs each photo with its own title, and fails at once offline.
"""
from __future__ import annotations

import sys
import time
import types
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch

from bench import datasets
from bench.compare import NATIVE
from bench.datasets import DATASETS, DatasetUnavailable, content_hash, fashion_wordnet_texts, load_dataset, make_dataset
from bench.encoders import ENCODERS, EncoderDataMismatch, embeddings, encoder_modality
from bench.encoders.packaged import distinct
from bench.encoders.text import GloveMean
from bench.report.blocks import Link, Strong, User
from bench.report.leaderboard import render
from bench.report.markdown import md_inline
from bench.report.tables import crossmodal_blocks, is_cross_modal
from bench.results import ResultStore
from bench.runner import Summary, run_task
from bench.task import load_task
from test_ranking import make_rows, make_task

CPU = torch.device("cpu")
TEXT, IMAGE = "glove-50d-mean", "efficientnet-lite0"


@pytest.fixture(scope="module")
def paired():
    return load_dataset("fashion-mnist-wordnet")


def small(data, n_train: int, n_test: int, name: str):
    """A stratified few rows of a paired set, as a registered-shape data set of their own."""
    train = data.split("train")[datasets.stratified_subset(data.y[data.split("train")], n_train)]
    test = data.split("test")[datasets.stratified_subset(data.y[data.split("test")], n_test)]
    rows = np.concatenate([train, test])
    return make_dataset(name, data.x[rows], data.y[rows], {"train": np.arange(n_train),
                                                           "test": n_train + np.arange(n_test)},
                        data.classes, "", data.ids[rows], data.texts[rows])


# --- the data set ----------------------------------------------------------------------------------------------


def test_images_are_fashion_mnist_and_texts_sit_beside_them(paired):
    images = load_dataset("fashion-mnist")
    assert paired.modality == "image+text" and paired.modalities == ("image", "text")
    assert paired.samples("image") is paired.x and paired.samples("text") is paired.texts
    np.testing.assert_array_equal(paired.x, images.x)
    np.testing.assert_array_equal(paired.y, images.y)
    assert {k: v.tolist() for k, v in paired.splits.items()} == {k: v.tolist() for k, v in images.splits.items()}
    assert paired.texts.shape == (12_000,) and all(isinstance(t, str) and ": " in t for t in paired.texts)
    assert paired.content_hash == "50e88667bd289253"  # pinned: a changed text or split is a changed data set


def test_fit_and_evaluation_texts_are_disjoint(paired):
    texts = fashion_wordnet_texts()
    assert list(texts) == list(paired.classes)
    fit = {t for f, _ in texts.values() for t in f}
    evaluation = {t for _, e in texts.values() for t in e}
    assert fit and evaluation and not fit & evaluation
    # split by synset: no definition (shared by a synset's lemmas) is on both sides either
    definition = lambda text: text.split(": ", 1)[1]  # noqa: E731
    assert not {definition(t) for t in fit} & {definition(t) for t in evaluation}
    assert set(paired.texts[paired.split("train")]) == fit
    assert set(paired.texts[paired.split("test")]) == evaluation
    assert all(f and e for f, e in texts.values())  # every class has texts on both sides


def test_each_image_is_paired_with_a_text_of_its_own_class_used_evenly(paired):
    texts = fashion_wordnet_texts()
    for split, side in (("train", 0), ("test", 1)):
        for label, name in enumerate(paired.classes):
            rows = paired.split(split)[paired.y[paired.split(split)] == label]
            pool = texts[name][side]
            assert set(paired.texts[rows]) == set(pool)  # its class's texts, every one of them
            uses = Counter(paired.texts[rows].tolist()).values()
            assert max(uses) - min(uses) <= 1  # balanced reuse
    sneaker = paired.classes.index("Sneaker")
    shown = paired.texts[paired.y == sneaker]
    assert all(any(word in t for word in ("shoe", "plimsoll", "cleats", "walker")) for t in shown)


def test_content_hash_covers_the_texts():
    x = np.zeros((4, 1, 2, 2), dtype=np.float32)
    y, splits = np.array([0, 1, 0, 1]), {"train": np.array([0, 1]), "test": np.array([2, 3])}
    texts = np.array(["a: one", "b: two", "c: three", "d: four"], dtype=object)
    plain, with_texts = make_dataset("p", x, y, splits, ("0", "1")), make_dataset("p", x, y, splits, ("0", "1"),
                                                                                   texts=texts)
    assert plain.content_hash == content_hash(x, y, splits)  # one modality: the hash it always had
    assert with_texts.content_hash == content_hash(x, y, splits, texts) != plain.content_hash
    changed = texts.copy()
    changed[3] = "d: fore"
    assert make_dataset("p", x, y, splits, ("0", "1"), texts=changed).content_hash != with_texts.content_hash
    with pytest.raises(ValueError, match="one string with each image"):
        make_dataset("p", texts, y, splits, ("0", "1"), texts=texts)  # texts beside texts
    with pytest.raises(KeyError, match="not text"):
        plain.samples("text")


# --- encoders --------------------------------------------------------------------------------------------------


def test_each_encoder_reads_its_own_modality(paired):
    data = small(paired, 30, 10, "paired-rows")
    as_text = make_dataset("text-rows", data.texts, data.y, data.splits, data.classes)
    as_image = make_dataset("image-rows", data.x, data.y, data.splits, data.classes)
    np.testing.assert_array_equal(ENCODERS.get(TEXT).embed(data, CPU), ENCODERS.get(TEXT).embed(as_text, CPU))
    np.testing.assert_array_equal(ENCODERS.get(IMAGE).embed(data, CPU), ENCODERS.get(IMAGE).embed(as_image, CPU))
    assert (encoder_modality(TEXT), encoder_modality(IMAGE), encoder_modality("no-such-encoder")) == ("text", "image",
                                                                                                      None)
    with pytest.raises(EncoderDataMismatch, match="embeds image data.*holds text samples"):
        ENCODERS.get(IMAGE).embed(as_text, CPU)  # a one-modality set still refuses the other kind


def test_text_encoders_encode_each_distinct_text_once(paired):
    samples, rows = distinct(["b", "a", "c"])
    assert samples == ["b", "a", "c"] and rows.tolist() == [0, 1, 2]  # all distinct: the identity
    samples, rows = distinct(["x", "y", "x", "z", "y"])
    assert samples == ["x", "y", "z"] and rows.tolist() == [0, 1, 0, 2, 1]

    encoded: list[str] = []

    class Counting(GloveMean):
        def encode(self, batch, device):
            encoded.extend(batch)
            return super().encode(batch, device)

    z = Counting().embed(paired, CPU)  # 12,000 samples
    assert sorted(encoded) == sorted(set(paired.texts.tolist())) and len(encoded) == 201
    first = {}
    for text, row in zip(paired.texts.tolist(), z):
        np.testing.assert_array_equal(first.setdefault(text, row), row)  # the same text, the same embedding


def test_the_embedding_cache_follows_the_texts(paired, fresh_cache):
    data = small(paired, 20, 10, "cache-rows")
    other = data.texts.copy()
    other[0] = "plimsoll: a light gym shoe with a rubber sole"
    changed = make_dataset(data.name, data.x, data.y, data.splits, data.classes, "", data.ids, other)
    before, after = embeddings(TEXT, data, CPU), embeddings(TEXT, changed, CPU)
    assert not np.array_equal(before[0], after[0])  # a new key, not the cached rows of the old texts
    np.testing.assert_array_equal(before[1:], after[1:])


# --- a tiny task end to end -------------------------------------------------------------------------------------

TINY = """\
name: tiny-cross-modal
version: 1
kind: classification
dataset: {{name: {dataset}}}
encoders: {{all: [{text}, {image}]}}
anchors: {{counts: [32, 128], seeds: [0], sampling: stratified}}
methods: [absolute, ortho, linear]
metrics: [accuracy, mse]
"""


def test_a_tiny_cross_modal_task_runs_and_reports_its_matrix(paired, tmp_path, monkeypatch):
    name = "tiny-fashion-wordnet"
    monkeypatch.setitem(DATASETS._entries, name, lambda: small(paired, 400, 200, name))
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(dataset=name, text=TEXT, image=IMAGE))
    task = load_task(path)
    summary = Summary()
    run_task(task, ResultStore(tmp_path / "results"), CPU, summary, None, progress=False)
    assert (summary.run, summary.failed) == (len(task.plan()), 0) == (12, 0)
    rows = {(r.method, r.source, r.n_anchors): r.metrics["accuracy"] for r in ResultStore(tmp_path / "results").rows()}
    native = {source: value for (method, source, _), value in rows.items() if method == NATIVE}
    assert set(native) == {TEXT, IMAGE} and min(native.values()) > 0.5  # each decoder on its own modality
    for source in (TEXT, IMAGE):  # a translation fitted on 128 class-paired anchors beats no translation
        assert rows[("linear", source, 128)] > rows[("absolute", source, 128)] + 0.2
    text = render(tmp_path / "results", tmp_path / "leaderboard.md", plots=False, tasks=[task])
    assert "Cross-modal matrix, accuracy" in text and "text → image" in text and "image → text" in text
    assert f"| text: {TEXT}" in text and f"| image: {IMAGE}" in text


# --- the leaderboard's matrix -----------------------------------------------------------------------------------

MATRIX_TASK = """\
name: {name}
version: 1
kind: classification
dataset: {{name: fashion-mnist-wordnet}}
encoders: {{all: [glove-50d-mean, paraphrase-minilm-l3-v2, efficientnet-lite0]}}
anchors: {{counts: [16, 64], seeds: [0, 1]}}
methods: [absolute, ortho, linear]
metrics: [accuracy]
"""


def hand_built(task) -> pd.DataFrame:
    """relative (a baseline: it translates nothing) scores highest across modalities, then linear; ortho wins
    within text; n=16 rows would change every mean if they counted."""
    modality = {"glove-50d-mean": "text", "paraphrase-minilm-l3-v2": "text", "efficientnet-lite0": "image"}
    score = {"absolute": lambda s, t: 0.1, "relative": lambda s, t: 0.7,
             "ortho": lambda s, t: 0.9 if modality[s] == modality[t] else 0.3,
             "linear": lambda s, t: 0.6 if modality[s] == modality[t] else 0.5 + 0.1 * (modality[s] == "image")}
    rows = [{"task": task.name, "method": NATIVE, "source": t, "target": t, "n_anchors": 0, "seed": 0,
             "m:accuracy": value} for t, value in (("glove-50d-mean", 0.61), ("paraphrase-minilm-l3-v2", 0.72),
                                                   ("efficientnet-lite0", 0.83))]
    for method, value in score.items():
        for s, t in task.pairs():
            for seed in (0, 1):
                rows.append({"task": task.name, "method": method, "source": s, "target": t, "n_anchors": 64,
                             "seed": seed, "m:accuracy": value(s, t) + (0.02 if seed else 0.0)})
                rows.append({"task": task.name, "method": method, "source": s, "target": t, "n_anchors": 16,
                             "seed": seed, "m:accuracy": 0.0})
    return pd.DataFrame(rows)


def plain(cell) -> str:
    """A cell's text (a method linked to its card: its label), bold as Markdown."""
    return cell.text if isinstance(cell, (Link, User)) else md_inline(cell)


def cells(table) -> list[list[str]]:
    return [[plain(c) for c in row] for row in table.rows]


def test_matrix_block_against_a_hand_built_frame(tmp_path):
    task = make_task(tmp_path, text=MATRIX_TASK.format(name="matrix"))
    assert is_cross_modal(task)
    intro, matrix, _, directions = crossmodal_blocks(hand_built(task), task, {})
    assert "n=64" in md_inline(intro.parts[1]) and plain(intro.parts[2]) == "linear"  # the best translation
    assert [plain(h) for h in matrix.header] == [
        "encoder ↓ decoder →", "text: glove-50d-mean", "text: paraphrase-minilm-l3-v2", "image: efficientnet-lite0"]
    # rows: sources; columns: targets; linear's mean over seeds 0 and 1 at n=64; the diagonal is native, bold
    assert cells(matrix) == [
        ["text: glove-50d-mean", "**0.610**", "0.610", "0.510"],
        ["text: paraphrase-minilm-l3-v2", "0.610", "**0.720**", "0.510"],
        ["image: efficientnet-lite0", "0.610", "0.610", "**0.830**"]]
    assert matrix.rows[0][1] == Strong("0.610") and matrix.rows[0][0] == User("text: glove-50d-mean")
    # the directions the task has, across modalities first (one image encoder: no image -> image pair)
    assert [plain(h) for h in directions.header] == ["method", "image → text", "text → image", "text → text"]
    assert cells(directions) == [
        ["relative", "0.710", "0.710", "0.710"],
        ["linear", "0.610", "0.510", "0.610"],
        ["ortho", "0.310", "0.310", "0.910"],
        ["absolute", "0.110", "0.110", "0.110"],
        ["native (no stitching)", "0.665", "0.830", "0.665"]]


def test_no_matrix_for_a_task_of_one_modality(tmp_path):
    task = make_task(tmp_path, "one-modality", metrics="accuracy")  # digits MLPs: images only
    assert not is_cross_modal(task)
    frame = pd.DataFrame(make_rows_frame(task))
    assert crossmodal_blocks(frame, task, {}) == []


def make_rows_frame(task) -> list[dict]:
    return [{"task": task.name, "method": r.method, "source": r.source, "target": r.target, "n_anchors": r.n_anchors,
             "seed": r.seed, "m:accuracy": r.metrics["accuracy"]}
            for r in make_rows(task, {"ortho": lambda s, t, n, seed: 0.9}, native={s: 0.95 for s, _ in task.pairs()})]


# --- the online instance-level set -------------------------------------------------------------------------------


def test_online_captioned_set_fails_at_once_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    started = time.perf_counter()
    monkeypatch.setitem(sys.modules, "datasets", None)  # Hugging Face datasets not installed
    with pytest.raises(DatasetUnavailable, match="fashion-products-captioned: needs the Hugging Face `datasets`.*"
                                                 "pip install datasets"):
        DATASETS.get("fashion-products-captioned")()
    monkeypatch.setitem(sys.modules, "datasets", types.ModuleType("datasets"))  # installed, but no network
    monkeypatch.setattr(datasets, "_reachable", lambda url: False)
    with pytest.raises(DatasetUnavailable, match="huggingface.co cannot be reached.*HF_HUB_OFFLINE=1"):
        DATASETS.get("fashion-products-captioned")()
    assert time.perf_counter() - started < 5


class FakeTable:
    """The columns of a hub table that the loader reads, and select()."""

    def __init__(self, columns: dict[str, list]):
        self.columns = columns

    def __getitem__(self, column: str) -> list:
        return list(self.columns[column])

    def select(self, indices: list[int]) -> FakeTable:
        return FakeTable({k: [v[i] for i in indices] for k, v in self.columns.items()})


def test_online_captioned_set_pairs_each_photo_with_its_own_title(monkeypatch):
    from PIL import Image

    rng = np.random.default_rng(0)
    categories = ["Topwear"] * 40 + ["Shoes"] * 30 + ["Rare"] * 3 + ["Bags"] * 27
    colours = {"Topwear": (200, 0, 0), "Shoes": (0, 200, 0), "Rare": (9, 9, 9), "Bags": (0, 0, 200)}
    columns = {"id": list(range(1000, 1100)), "subCategory": categories,
               "productDisplayName": [f"product {i} {c}" if i != 5 else None for i, c in enumerate(categories)],
               "image": [Image.new("RGB", (60, 80), colours[c]) for c in categories]}
    order = rng.permutation(100)
    columns = {k: [v[i] for i in order] for k, v in columns.items()}
    hub = types.ModuleType("datasets")
    hub.load_dataset = lambda repo: {"train": FakeTable(columns)}
    monkeypatch.setitem(sys.modules, "datasets", hub)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a cached copy: no network check
    monkeypatch.setattr(datasets, "CAPTIONED_MIN_PER_CLASS", 5)
    monkeypatch.setattr(datasets, "CAPTIONED_SIZES", (60, 20))
    data = DATASETS.get("fashion-products-captioned")()
    assert data.modality == "image+text" and data.classes == ("Bags", "Shoes", "Topwear")  # "Rare" dropped
    assert data.x.shape == (80, 3, 32, 32) and data.x.dtype == np.float32
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 60, "test": 20}
    for i in range(80):  # instance-level: the i-th text is the i-th product's own title, its image its own colour
        product = int(data.ids[i].split("/")[1]) - 1000
        assert data.texts[i] == f"product {product} {data.classes[data.y[i]]}"
        centre = data.x[i, :, 16, 16] * 255
        np.testing.assert_allclose(centre, colours[data.classes[data.y[i]]], atol=1)
        assert np.allclose(data.x[i, :, 16, 0], 1.0)  # padded with white to a square
    assert "product 5 Topwear" not in set(data.texts)  # a product without a title is left out
