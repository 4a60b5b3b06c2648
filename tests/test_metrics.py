"""Each built-in metric against an independent reference: sklearn, scipy, plain numpy, or a hand case."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cosine as scipy_cosine_distance
from scipy.spatial.distance import pdist
from scipy.stats import ortho_group
from sklearn.metrics import accuracy_score, f1_score
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.neighbors import NearestNeighbors

from bench import metrics
from bench.metrics import METRICS, Metric, metric
from bench.registry import UnknownNameError

EXPECTED = {  # name: (higher_is_better, compares)
    "accuracy": (True, "labels"),
    "macro_f1": (True, "labels"),
    "relative_accuracy": (True, "native"),
    "agreement": (True, "native"),
    "mse": (False, "latent"),
    "cosine": (True, "latent"),
    "cka_linear": (True, "latent"),
    "cka_linear_unbiased": (True, "latent"),
    "cka_rbf": (True, "latent"),
    "mutual_knn": (True, "latent"),
    "retrieval_top1": (True, "latent"),
    "retrieval_top5": (True, "latent"),
    "retrieval_mrr": (True, "latent"),
}
CKAS = ["cka_linear", "cka_linear_unbiased", "cka_rbf"]


def call(name: str, **tensors) -> float:
    return METRICS.get(name)(**tensors)


def latent_pair(m: int = 60, dx: int = 8, dy: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A target Y and a noisy linear image of it, so the metrics sit away from 0 and 1."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(m, dy))
    x = y @ rng.normal(size=(dy, dx)) + 0.5 * rng.normal(size=(m, dx))
    return x.astype(np.float32), y.astype(np.float32)


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


# --- the registry entries -----------------------------------------------------------------------


def test_every_metric_is_registered_with_its_direction():
    assert set(EXPECTED) <= set(METRICS.names())
    for name, (higher, compares) in EXPECTED.items():
        entry = METRICS.get(name)
        assert (entry.name, entry.higher_is_better, entry.compares) == (name, higher, compares)
        assert set(entry.inputs) <= set(metrics.INPUTS)


def test_inputs_come_from_parameter_names():
    assert METRICS.get("accuracy").inputs == ("predicted", "labels")
    assert METRICS.get("relative_accuracy").inputs == ("predicted", "native_predicted", "labels")
    assert METRICS.get("cka_linear").inputs == ("translated", "target")


def test_misspelled_name_suggests_the_right_one():
    with pytest.raises(UnknownNameError) as err:
        METRICS.get("acuracy")
    assert "accuracy" in err.value.suggestions
    assert "did you mean 'accuracy'" in str(err.value)


def test_call_picks_its_inputs_and_returns_a_python_float():
    pred, lab = torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2])
    junk = torch.full((4, 3), math.nan)  # not an input of accuracy, so its NaNs do not matter
    value = call("accuracy", predicted=pred, labels=lab, native_predicted=lab, translated=junk, n_classes=3)
    assert type(value) is float and value == 0.75
    with pytest.raises(TypeError, match="labels"):
        call("accuracy", predicted=pred)


def test_non_finite_latent_input_scores_nan():
    x, y = latent_pair()
    x[3, 2] = np.inf
    for name in ["mse", "cosine", "cka_linear", "mutual_knn", "retrieval_top1"]:
        assert math.isnan(call(name, translated=t(x), target=t(y)))


def test_registration_rejects_bad_declarations():
    with pytest.raises(ValueError, match="compares"):
        Metric("x", lambda translated: 0.0, higher_is_better=True, compares="vibes")
    with pytest.raises(ValueError, match="never passes"):
        Metric("x", lambda prediction: 0.0, higher_is_better=True, compares="labels")
    with pytest.raises(ValueError, match="registered twice"):  # another function under a taken name

        @metric("accuracy", higher_is_better=True, compares="labels")
        def accuracy(predicted, labels):
            return 1.0

    assert METRICS.get("accuracy").fn is metrics.accuracy


# --- downstream -----------------------------------------------------------------------------------


def test_accuracy_and_macro_f1_match_sklearn():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, size=200)
    predicted = np.where(rng.random(200) < 0.6, labels, rng.integers(0, 8, size=200))  # 6, 7: predicted only
    predicted[predicted == 4] = 5  # class 4 never predicted
    labels[labels == 3] = 2  # class 3 in neither predictions (rarely) nor labels
    predicted[predicted == 3] = 2
    kw = dict(predicted=t(predicted), labels=t(labels), n_classes=10)  # classes 8, 9: absent, ignored
    assert call("accuracy", **kw) == pytest.approx(accuracy_score(labels, predicted))
    union = np.unique(np.concatenate([labels, predicted]))
    expected = f1_score(labels, predicted, average="macro", labels=union)
    assert call("macro_f1", **kw) == pytest.approx(expected)
    assert call("macro_f1", **kw) == pytest.approx(f1_score(labels, predicted, average="macro"))


def test_relative_accuracy_and_agreement_hand_cases():
    labels = torch.tensor([0, 1, 2, 3, 4])
    native = torch.tensor([0, 1, 2, 3, 0])  # 4/5 correct
    predicted = torch.tensor([0, 1, 0, 3, 0])  # 3/5 correct; agrees with native on 4 of 5
    kw = dict(predicted=predicted, native_predicted=native, labels=labels)
    assert call("relative_accuracy", **kw) == pytest.approx(3 / 4)
    assert call("agreement", **kw) == pytest.approx(4 / 5)
    nothing_right = torch.tensor([1, 2, 3, 4, 0])
    assert math.isnan(call("relative_accuracy", predicted=predicted, native_predicted=nothing_right, labels=labels))


# --- latent: pointwise --------------------------------------------------------------------------


def test_mse_and_cosine_match_numpy_and_scipy():
    x, y = latent_pair()
    assert call("mse", translated=t(x), target=t(y)) == pytest.approx(np.mean((x.astype(float) - y) ** 2))
    rowwise = [1 - scipy_cosine_distance(a, b) for a, b in zip(x.astype(float), y.astype(float))]
    assert call("cosine", translated=t(x), target=t(y)) == pytest.approx(np.mean(rowwise), rel=1e-6)


def test_pointwise_metrics_refuse_unpaired_shapes():
    x, y = latent_pair()
    with pytest.raises(ValueError, match="same m"):
        call("mse", translated=t(x), target=t(y[:1]))  # would broadcast silently otherwise


# --- latent: CKA ------------------------------------------------------------------------------


def hsic_kornblith(k: np.ndarray, l: np.ndarray) -> float:
    """tr(K H L H) / (m-1)^2 with H the centering matrix, as in Kornblith et al. (2019), eq. 3."""
    m = k.shape[0]
    h = np.eye(m) - np.ones((m, m)) / m
    return np.trace(k @ h @ l @ h) / (m - 1) ** 2


def cka_reference(k: np.ndarray, l: np.ndarray, hsic) -> float:
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def hsic_unbiased_loops(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al. (2012), eq. 5, term by term with explicit loops over distinct indices."""
    m = k.shape[0]
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    trace = sum(k[i, j] * l[j, i] for i in range(m) for j in range(m))
    ones_k = sum(k[i, j] for i in range(m) for j in range(m))
    ones_l = sum(l[i, j] for i in range(m) for j in range(m))
    kl_rows = sum(sum(k[i, j] for j in range(m)) * sum(l[i, q] for q in range(m)) for i in range(m))  # 1'K L 1
    return (trace + ones_k * ones_l / ((m - 1) * (m - 2)) - 2 / (m - 2) * kl_rows) / (m * (m - 3))


def test_cka_linear_matches_kornblith_hsic_on_gram_matrices():
    x, y = latent_pair(dx=5, dy=9)
    xd, yd = x.astype(float), y.astype(float)
    expected = cka_reference(xd @ xd.T, yd @ yd.T, hsic_kornblith)
    assert call("cka_linear", translated=t(x), target=t(y)) == pytest.approx(expected, rel=1e-6)


def test_cka_linear_unbiased_matches_loop_form():
    x, y = latent_pair(m=30, dx=5, dy=9)
    xd, yd = x.astype(float) + 3.0, y.astype(float) - 1.0  # uncentered: the estimator ignores shifts
    expected = cka_reference(xd @ xd.T, yd @ yd.T, hsic_unbiased_loops)
    assert call("cka_linear_unbiased", translated=t(xd), target=t(yd)) == pytest.approx(expected, rel=1e-6)
    # the estimator differs from the biased one, and it is not pulled up by few samples in many dims
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(20, 200)), rng.normal(size=(20, 200))  # unrelated
    biased = call("cka_linear", translated=t(a), target=t(b))
    unbiased = call("cka_linear_unbiased", translated=t(a), target=t(b))
    assert biased > 0.5 and abs(unbiased) < 0.2


def test_cka_rbf_matches_numpy_reference():
    x, y = latent_pair(m=41)

    def gram(a: np.ndarray) -> np.ndarray:
        d = pdist(a.astype(float))  # the m(m-1)/2 distances i < j
        median = np.sort(d)[(d.size - 1) // 2]  # lower median: an actual distance, as torch.median gives
        diff = a.astype(float)[:, None, :] - a.astype(float)[None, :, :]
        sq = (diff**2).sum(-1)
        return np.exp(-sq / (2 * (metrics.RBF_SIGMA_FACTOR * median) ** 2))

    expected = cka_reference(gram(x), gram(y), hsic_kornblith)
    assert call("cka_rbf", translated=t(x), target=t(y)) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("name", CKAS)
def test_cka_is_one_for_identical_spaces(name):
    x, _ = latent_pair()
    assert call(name, translated=t(x), target=t(x.copy())) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", CKAS)
def test_cka_is_invariant_to_rotation_and_isotropic_scaling(name):
    x, y = latent_pair(dx=8, dy=8)
    q = ortho_group.rvs(8, random_state=3).astype(np.float32)
    base = call(name, translated=t(x), target=t(y))
    assert 0.1 < base < 0.99  # a case where invariance is not trivially 1 == 1
    assert call(name, translated=t(x @ q), target=t(y)) == pytest.approx(base, abs=1e-5)
    assert call(name, translated=t(7.5 * x), target=t(0.01 * y)) == pytest.approx(base, abs=1e-5)


# --- latent: neighbourhoods and retrieval -----------------------------------------------------


def on_circle(degrees: list[float]) -> torch.Tensor:
    rad = np.deg2rad(degrees)
    return t(np.stack([np.cos(rad), np.sin(rad)], 1).astype(np.float32))


def test_mutual_knn_hand_case():
    a = on_circle([0, 10, 90, 100])  # nearest other point: 1, 0, 3, 2
    b = on_circle([0, 50, 60, 200])  # nearest other point: 1, 2, 1, 2
    assert metrics.mutual_knn_alignment(a, b, k=1) == pytest.approx(0.5)  # rows 0 and 3 agree
    assert metrics.mutual_knn_alignment(a, b, k=3) == pytest.approx(1.0)  # k = m - 1: everything else


def test_mutual_knn_is_one_for_identical_and_matches_sklearn_neighbours():
    x, y = latent_pair(m=80)
    assert call("mutual_knn", translated=t(x), target=t(x.copy())) == 1.0
    k = metrics.MUTUAL_KNN_K
    nx = NearestNeighbors(n_neighbors=k, metric="cosine").fit(x).kneighbors(return_distance=False)
    ny = NearestNeighbors(n_neighbors=k, metric="cosine").fit(y).kneighbors(return_distance=False)
    expected = np.mean([len(set(a) & set(b)) / k for a, b in zip(nx, ny)])
    assert call("mutual_knn", translated=t(x), target=t(y)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="more than k"):
        call("mutual_knn", translated=t(x[:k]), target=t(y[:k]))


def test_retrieval_hand_case_with_a_permutation():
    e = torch.eye(4)
    perm = [0, 1, 3, 2]
    translated = e[perm] + 0.5 * e  # row i is closest to target perm[i], then to target i
    kw = dict(translated=translated, target=e)
    assert metrics.retrieval_ranks(**kw).tolist() == [1, 1, 2, 2]
    assert call("retrieval_top1", **kw) == 0.5
    assert call("retrieval_top5", **kw) == 1.0
    assert call("retrieval_mrr", **kw) == pytest.approx((1 + 1 + 0.5 + 0.5) / 4)


def test_retrieval_ties_count_against_the_query():
    collapsed = torch.zeros(4, 4)  # a method that outputs one point scores every target equally
    kw = dict(translated=collapsed, target=torch.eye(4))
    assert metrics.retrieval_ranks(**kw).tolist() == [4, 4, 4, 4]
    assert call("retrieval_top1", **kw) == 0.0


def test_retrieval_matches_sklearn_cosine_argsort():
    rng = np.random.default_rng(4)
    y = rng.normal(size=(70, 8)).astype(np.float32)
    x = (y + 0.8 * rng.normal(size=y.shape)).astype(np.float32)  # noisy enough to miss some
    order = np.argsort(-cosine_similarity(x, y), axis=1, kind="stable")  # (m, m) best first
    ranks = np.array([np.nonzero(order[i] == i)[0][0] + 1 for i in range(len(x))])
    assert metrics.retrieval_ranks(t(x), t(y)).numpy().tolist() == ranks.tolist()
    kw = dict(translated=t(x), target=t(y))
    assert call("retrieval_top1", **kw) == pytest.approx(np.mean(ranks <= 1))
    assert call("retrieval_top5", **kw) == pytest.approx(np.mean(ranks <= 5))
    assert call("retrieval_mrr", **kw) == pytest.approx(np.mean(1 / ranks))
    assert 0.0 < call("retrieval_top1", **kw) < 1.0


def test_row_chunking_does_not_change_results(monkeypatch):
    x, y = latent_pair(m=50)
    names = ["cka_rbf", "mutual_knn", "retrieval_mrr"]
    whole = {n: call(n, translated=t(x), target=t(y)) for n in names}
    monkeypatch.setattr(metrics, "CHUNK_ELEMENTS", 7 * 50)  # blocks of 7 rows, the last one short
    for n in names:
        assert call(n, translated=t(x), target=t(y)) == pytest.approx(whole[n], rel=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x, y = latent_pair(m=50)
    pred, lab = torch.tensor([0, 1, 2, 1]), torch.tensor([0, 1, 1, 1])
    for name, (_, compares) in EXPECTED.items():
        if compares == "latent":
            kw = dict(translated=t(x), target=t(y))
        else:
            kw = dict(predicted=pred, native_predicted=lab, labels=lab)
        on_gpu = {k: v.cuda() for k, v in kw.items()}
        assert call(name, **on_gpu) == pytest.approx(call(name, **kw), rel=1e-4, abs=1e-6)
