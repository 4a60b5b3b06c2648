"""The metrics, called through the registry as the runner calls them, against their bare kernels."""
from __future__ import annotations

import pytest
import torch
from perf_data import randn, related

from bench.metrics import METRICS
from bench.perf import measure

D = 768
N_CLASSES = 10


def _inputs(m: int) -> dict[str, torch.Tensor | int]:
    translated, target = related(m, D, D, seed=3)  # (m, D), (m, D)
    labels = torch.randint(N_CLASSES, (m,), generator=torch.Generator().manual_seed(4))
    predicted = torch.where(randn(m, seed=5) > 0.5, (labels + 1) % N_CLASSES, labels)  # ~70% right
    return dict(translated=translated, target=target, predicted=predicted, labels=labels,
                native_predicted=labels.clone(), n_classes=N_CLASSES)


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a @ b.T  # (m, m)


# name -> (what the bare kernel computes, a function of the inputs)
REFERENCES = {
    "accuracy": ("(predicted == labels).sum()", lambda t: (t["predicted"] == t["labels"]).sum()),
    "mse": ("(a - b).square().mean(), float32", lambda t: (t["translated"] - t["target"]).square().mean()),
    "cosine": ("(a * b).sum(1), float32", lambda t: (t["translated"] * t["target"]).sum(1)),
    "cka_linear": ("a^T b, float32 (d, d)", lambda t: t["translated"].T @ t["target"]),
    "mutual_knn": ("a a^T and b b^T, float32 (m, m)",
                   lambda t: (_pairwise(t["translated"], t["translated"]), _pairwise(t["target"], t["target"]))),
    "retrieval_top1": ("a b^T, float32 (m, m)", lambda t: _pairwise(t["translated"], t["target"])),
}
CASES = [
    pytest.param("accuracy", 5000, id="accuracy-m5000"),
    pytest.param("mse", 5000, id="mse-m5000"),
    pytest.param("cosine", 5000, id="cosine-m5000"),
    pytest.param("cka_linear", 5000, id="cka_linear-m5000", marks=pytest.mark.perf_ci),
    pytest.param("mutual_knn", 2000, id="mutual_knn-m2000"),
    pytest.param("retrieval_top1", 2000, id="retrieval_top1-m2000", marks=pytest.mark.perf_ci),
    pytest.param("retrieval_top1", 5000, id="retrieval_top1-m5000"),
]


@pytest.mark.parametrize("name, m", CASES)
def test_metric(benchmark, name, m):
    inputs = _inputs(m)
    metric = METRICS.get(name)
    kernel, reference = REFERENCES[name]
    benchmark.group = "metrics"
    measure(benchmark, lambda: metric(**inputs), {"bare": lambda: reference(inputs)}, kernels={"bare": kernel})
