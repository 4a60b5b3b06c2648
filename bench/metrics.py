"""Metrics: pure functions of the evaluation tensors, each registered with its direction.

The runner calls ``METRICS.get(name)(**available)`` with every tensor it has (see INPUTS); a
metric takes only the ones its function names as parameters, so the names are typed once.

What each metric compares:
- "latent": the translated embeddings Y_hat against the target encoder's true embeddings Y;
- "labels": the target decoder's predictions on Y_hat against the true labels;
- "native": the predictions on Y_hat against the target decoder's own predictions on Y;
- "pixels": the target autoencoder's reconstructions of Y_hat against the input images;
- "probes": linear one-vs-rest probes fitted on the target's own latents, applied to Y_hat;
- "clusters": the class structure of Y_hat itself, read with the true labels.

Everything is computed in torch on the tensors' device (CPU or CUDA) and returned as a float.
Metrics that need an (m, m) similarity matrix build it in row chunks of about CHUNK_ELEMENTS
entries, so m = 10,000 evaluation samples fit within a few hundred MB (RBF CKA, which needs the
whole kernel matrix for its median bandwidth, within about 2 GB). CKA is NaN when a space is
constant (it has no variance to align), and every metric is NaN when an input is not finite.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.registry import Registry

# The keyword arguments the runner passes; a metric's parameters must be a subset of these.
INPUTS = ("translated", "target", "predicted", "native_predicted", "labels", "n_classes",
          "reconstructed", "images", "probe_decisions", "native_probe_decisions", "probe_truth")
COMPARES = ("latent", "labels", "native", "pixels", "probes", "clusters")

CHUNK_ELEMENTS = 2**25  # entries of an (rows, m) similarity block: 128 MB in float32
MUTUAL_KNN_K = 10  # k of the platonic representation hypothesis paper (Huh et al. 2024)
# RBF CKA bandwidth: sigma = RBF_SIGMA_FACTOR * median pairwise distance. Kornblith et al. (2019)
# report fractions 0.2, 0.4 and 0.8 of the median; 0.8 is the smoothest of those, the closest
# to linear CKA, and the least sensitive to the nearest-neighbour noise of a translation.
RBF_SIGMA_FACTOR = 0.8


@dataclass(frozen=True)
class Metric:
    """A registered metric: its function, its direction and what it compares (one of COMPARES).

    The function's parameter names say which of the runner's INPUTS it needs; calling the record
    with every available input passes only those, and gives NaN when one of them is not finite:

    >>> hits = Metric("hits", lambda predicted, labels: float((predicted == labels).sum()),
    ...               higher_is_better=True, compares="labels")
    >>> hits.inputs
    ('predicted', 'labels')
    >>> hits(predicted=torch.tensor([1, 2, 3]), labels=torch.tensor([1, 2, 0]), n_classes=4)
    2.0
    >>> Metric("bad", lambda logits: 0.0, higher_is_better=True, compares="labels")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: metric 'bad' takes ['logits'], which the runner never passes; inputs are (...)

    Metrics are declared with the `metric` decorator, which builds the record and adds it to
    METRICS (`bench list metrics`):

        @metric("accuracy", higher_is_better=True, compares="labels", per_sample=1.0)
        def accuracy(predicted: Tensor, labels: Tensor) -> float: ...

    >>> METRICS.get("accuracy").higher_is_better, METRICS.get("accuracy").inputs
    (True, ('predicted', 'labels'))
    """

    name: str
    fn: Callable[..., float]
    higher_is_better: bool
    compares: str  # one of COMPARES
    # A metric that counts evaluation samples: at most how much one sample can move it, times m (the
    # evaluation samples); two runs agree when they differ by at most that one sample (bench/reproduce.py).
    # 0: a continuous metric, held to a relative tolerance instead.
    per_sample: float = 0.0
    inputs: tuple[str, ...] = field(init=False)  # fn's parameter names, in order

    def __post_init__(self) -> None:
        if self.compares not in COMPARES:
            raise ValueError(f"metric {self.name!r}: compares={self.compares!r}, expected one of {COMPARES}")
        inputs = tuple(inspect.signature(self.fn).parameters)
        unknown = [p for p in inputs if p not in INPUTS]
        if unknown:  # caught at import time rather than as a KeyError mid-run
            raise ValueError(
                f"metric {self.name!r} takes {unknown}, which the runner never passes; inputs are {INPUTS}")
        object.__setattr__(self, "inputs", inputs)
        # The registry refuses a name registered twice from different places, naming objects by
        # module.qualname; give it the function's, or every Metric would look like the same object.
        object.__setattr__(self, "__module__", self.fn.__module__)
        object.__setattr__(self, "__qualname__", self.fn.__qualname__)

    def __call__(self, **available: object) -> float:
        missing = [p for p in self.inputs if p not in available]
        if missing:
            raise TypeError(f"metric {self.name!r} needs {missing}; got {sorted(available)}")
        args = {p: available[p] for p in self.inputs}
        # A method that emits NaN or inf scores NaN everywhere rather than an arbitrary number
        # (a NaN row would otherwise win every kNN or retrieval comparison, or none).
        for value in args.values():
            if isinstance(value, Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                return math.nan
        return float(self.fn(**args))


METRICS: Registry[Metric] = Registry("metric")


def metric(
    name: str, *, higher_is_better: bool, compares: str, per_sample: float = 0.0
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Register the decorated function as metric `name`; the function itself is returned unchanged."""

    def decorator(fn: Callable[..., float]) -> Callable[..., float]:
        METRICS.add(name, Metric(name, fn, higher_is_better, compares, per_sample))
        return fn

    return decorator


def score_all(
    names: list[str], providers: dict[str, Callable[[], object]]
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Every named metric, computing only the inputs they ask for (providers: input name -> thunk);
    also the reasons of those unavailable here (their value is None)."""
    metrics = [METRICS.get(name) for name in names]
    available = {name: providers[name]() for name in sorted({i for m in metrics for i in m.inputs})}
    scores: dict[str, float | None] = {}
    unavailable: dict[str, str] = {}
    for metric in metrics:
        try:
            scores[metric.name] = metric(**available)
        except MetricUnavailable as reason:
            scores[metric.name], unavailable[metric.name] = None, str(reason)
    return scores, unavailable


# ---------------------------------------------------------------------------------------------
# Downstream: decoder predictions against labels, or against the decoder's native predictions


@metric("accuracy", higher_is_better=True, compares="labels", per_sample=1.0)
def accuracy(predicted: Tensor, labels: Tensor) -> float:
    """The fraction of predicted class ids equal to the labels.

    >>> accuracy(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
    0.75
    """
    return (predicted == labels).double().mean().item()  # (m,) -> scalar


# one changed prediction moves two classes' F1 by at most 2 / support each: 4 / m over c balanced classes
@metric("macro_f1", higher_is_better=True, compares="labels", per_sample=4.0)
def macro_f1(predicted: Tensor, labels: Tensor) -> float:
    # Classes are those seen in labels or predictions (sklearn's default); a class in neither has
    # an undefined F1 and would drag the mean to 0 for no reason, so it is left out.
    m = labels.shape[0]
    classes, index = torch.unique(torch.cat([labels, predicted]), return_inverse=True)
    true_idx, pred_idx = index[:m], index[m:]  # (m,), (m,) in [0, c)
    c = classes.shape[0]
    tp = torch.bincount(true_idx[true_idx == pred_idx], minlength=c).double()  # (c,)
    support = torch.bincount(true_idx, minlength=c).double()  # (c,) = tp + fn
    n_pred = torch.bincount(pred_idx, minlength=c).double()  # (c,) = tp + fp
    f1 = 2 * tp / (support + n_pred)  # every class here has support + n_pred > 0
    return f1.mean().item()


# accuracy / native accuracy: one sample moves it by 1 / (m native), at most 2 / m while native >= 0.5
@metric("relative_accuracy", higher_is_better=True, compares="native", per_sample=2.0)
def relative_accuracy(predicted: Tensor, native_predicted: Tensor, labels: Tensor) -> float:
    # Stitched accuracy as a fraction of what the target decoder reaches on its own encoder.
    native = accuracy(native_predicted, labels)
    return accuracy(predicted, labels) / native if native > 0 else math.nan


@metric("agreement", higher_is_better=True, compares="native", per_sample=1.0)
def agreement(predicted: Tensor, native_predicted: Tensor) -> float:
    return (predicted == native_predicted).double().mean().item()


# ---------------------------------------------------------------------------------------------
# Latent: translated embeddings Y_hat against the target's true embeddings Y, row i with row i


def _check_paired(translated: Tensor, target: Tensor, same_dim: bool = False) -> None:
    # Broadcasting would silently turn a (1, d) target into a comparison with every row.
    if translated.ndim != 2 or target.ndim != 2 or translated.shape[0] != target.shape[0]:
        raise ValueError(
            f"expected (m, d) tensors with the same m, got {tuple(translated.shape)} and {tuple(target.shape)}")
    if same_dim and translated.shape[1] != target.shape[1]:
        raise ValueError(f"expected the same width, got {tuple(translated.shape)} and {tuple(target.shape)}")


@metric("mse", higher_is_better=False, compares="latent")
def mse(translated: Tensor, target: Tensor) -> float:
    _check_paired(translated, target, same_dim=True)
    return (translated.double() - target.double()).pow(2).mean().item()  # mean over m * d elements


@metric("cosine", higher_is_better=True, compares="latent")
def cosine(translated: Tensor, target: Tensor) -> float:
    _check_paired(translated, target, same_dim=True)
    return F.cosine_similarity(translated.double(), target.double(), dim=1).mean().item()  # (m,) -> scalar


# CKA (Kornblith et al. 2019): HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) for Gram matrices K of Y_hat
# and L of Y. The linear variants use the feature-space form, so memory is (d, d), not (m, m);
# they run in float64 because the unbiased estimator subtracts large, nearly equal terms.


@metric("cka_linear", higher_is_better=True, compares="latent")
def cka_linear(translated: Tensor, target: Tensor) -> float:
    """Linear CKA with the biased HSIC: ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), columns centered.

    By hand for one column each: centered, x = (-1, 0, 1) and y = (-1, 1, 0), so
    ||Y^T X||^2 = 1 and ||X^T X|| = ||Y^T Y|| = 2, and CKA = 1 / (2 * 2):

    >>> cka_linear(torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[1.0], [3.0], [2.0]]))
    0.25

    It is 1 for spaces equal up to a rotation, a uniform scale and a shift:

    >>> X = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    >>> Q, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(1)))
    >>> round(cka_linear(X, 3 * X @ Q + 1), 6)
    1.0
    """
    _check_paired(translated, target)
    x = translated.double() - translated.double().mean(0)  # (m, dx)
    y = target.double() - target.double().mean(0)  # (m, dy)
    # tr(K H L H) = ||X^T Y||_F^2 once the columns are centered; the 1/(m-1)^2 factors cancel.
    xy = torch.linalg.matrix_norm(x.T @ y) ** 2  # (dx, dy) -> scalar
    xx = torch.linalg.matrix_norm(x.T @ x)  # (dx, dx) -> scalar
    yy = torch.linalg.matrix_norm(y.T @ y)  # (dy, dy) -> scalar
    return (xy / (xx * yy)).item()


def _hsic_unbiased_linear(x: Tensor, y: Tensor) -> Tensor:
    """Song et al. (2012) unbiased HSIC of K = X X^T, L = Y Y^T, without forming either (m, m) matrix.

    HSIC_1 = [tr(K~ L~) + 1'K~1 1'L~1 / ((m-1)(m-2)) - 2/(m-2) 1'K~L~1] / (m(m-3)), K~ = K with a zero diagonal.
    """
    m = x.shape[0]
    kd, ld = (x * x).sum(1), (y * y).sum(1)  # (m,) diagonals of K and L
    tr_kl = torch.linalg.matrix_norm(x.T @ y) ** 2 - (kd * ld).sum()  # sum over i != j of K_ij L_ij
    k1 = x @ x.sum(0) - kd  # (m,) = K~ 1
    l1 = y @ y.sum(0) - ld  # (m,) = L~ 1
    sum_k, sum_l = k1.sum(), l1.sum()  # 1'K~1, 1'L~1
    return (tr_kl + sum_k * sum_l / ((m - 1) * (m - 2)) - 2 / (m - 2) * (k1 @ l1)) / (m * (m - 3))


@metric("cka_linear_unbiased", higher_is_better=True, compares="latent")
def cka_linear_unbiased(translated: Tensor, target: Tensor) -> float:
    """Linear CKA with the unbiased HSIC estimator (Song et al. 2012), as in Nguyen et al. (2021).

    Unlike the biased form it is not pulled towards 1 when m is small relative to d; it can be
    slightly negative for unrelated spaces. Needs m >= 4.
    """
    _check_paired(translated, target)
    if translated.shape[0] < 4:
        raise ValueError("the unbiased HSIC estimator needs at least 4 samples")
    x = translated.double() - translated.double().mean(0)  # (m, dx); centering does not change
    y = target.double() - target.double().mean(0)  # the estimator, but keeps the terms small
    xy = _hsic_unbiased_linear(x, y)
    return (xy / torch.sqrt(_hsic_unbiased_linear(x, x) * _hsic_unbiased_linear(y, y))).item()


def _row_blocks(m: int) -> Iterator[slice]:
    """Consecutive row ranges whose (rows, m) blocks hold about CHUNK_ELEMENTS entries each."""
    step = max(1, CHUNK_ELEMENTS // max(m, 1))
    for start in range(0, m, step):
        yield slice(start, min(start + step, m))


def _rbf_gram(x: Tensor) -> Tensor:
    """exp(-||x_i - x_j||^2 / (2 sigma^2)), sigma = RBF_SIGMA_FACTOR * median distance over pairs i != j."""
    m = x.shape[0]
    sq = (x * x).sum(1)  # (m,)
    gram = torch.empty(m, m, dtype=x.dtype, device=x.device)  # squared distances first, in place
    for r in _row_blocks(m):  # ||x_i||^2 + ||x_j||^2 - 2 x_i.x_j, written straight into the rows
        torch.addmm(sq[None, :], x[r], x.T, alpha=-2, out=gram[r]).add_(sq[r, None]).clamp_min_(0)
    gram.fill_diagonal_(0)  # exact zeros, so they sort below every pair
    # Lower median of the m(m-1) off-diagonal entries (each pair twice, so also of the pairs): skip
    # the m zeros of the diagonal. kthvalue is 1-based; sqrt is monotone, so this is median^2.
    median_sq = torch.kthvalue(gram.flatten(), m + m * (m - 1) // 2).values
    gram.mul_(-1 / (2 * RBF_SIGMA_FACTOR**2 * median_sq)).exp_()
    return gram  # (m, m)


@metric("cka_rbf", higher_is_better=True, compares="latent")
def cka_rbf(translated: Tensor, target: Tensor) -> float:
    """RBF-kernel CKA with the biased HSIC; bandwidth RBF_SIGMA_FACTOR times the median distance.

    Kornblith et al.'s code takes the median over all m^2 entries including the diagonal zeros;
    here the diagonal is excluded (it matters only for small m). Holds two (m, m) float32 kernels.
    """
    _check_paired(translated, target)
    m = translated.shape[0]
    k, l = _rbf_gram(translated.float()), _rbf_gram(target.float())  # (m, m) each  # noqa: E741  (HSIC's K and L)
    k_row, l_row = k.mean(1), l.mean(1)  # (m,); kernels are symmetric, so also column means
    k_all, l_all = k_row.mean(), l_row.mean()
    kl = kk = ll = torch.zeros((), dtype=torch.float64, device=k.device)
    for r in _row_blocks(m):
        # rows of H K H and H L H, centered on the fly instead of storing two more (m, m) matrices
        kc = k[r] - k_row[None, :] - (k_row[r] - k_all)[:, None]  # (rows, m)
        lc = l[r] - l_row[None, :] - (l_row[r] - l_all)[:, None]  # (rows, m)
        # row sums in float32 (m terms each), the m row sums accumulated in float64
        kl = kl + torch.einsum("ij,ij->i", kc, lc).double().sum()
        kk = kk + torch.einsum("ij,ij->i", kc, kc).double().sum()
        ll = ll + torch.einsum("ij,ij->i", lc, lc).double().sum()
    return (kl / torch.sqrt(kk * ll)).item()


def _knn(x: Tensor, k: int) -> Tensor:
    """Indices of each row's k nearest other rows by cosine similarity: (m, d) -> (m, k)."""
    m = x.shape[0]
    xn = F.normalize(x.float(), dim=1)
    out = torch.empty(m, k, dtype=torch.long, device=x.device)
    for r in _row_blocks(m):
        sim = xn[r] @ xn.T  # (rows, m)
        own = torch.arange(r.start, r.stop, device=x.device)
        sim[own - r.start, own] = -math.inf  # a sample is not its own neighbour
        out[r] = sim.topk(k, dim=1).indices
    return out


def mutual_knn_alignment(translated: Tensor, target: Tensor, k: int) -> float:
    """Mean over samples of |kNN_translated(i) & kNN_target(i)| / k (Huh et al. 2024), cosine kNN."""
    _check_paired(translated, target)
    if not 0 < k < translated.shape[0]:
        raise ValueError(f"mutual kNN with k={k} needs more than k samples, got {translated.shape[0]}")
    a, b = _knn(translated, k), _knn(target, k)  # (m, k), (m, k); each row's indices are distinct
    shared = (a[:, :, None] == b[:, None, :]).sum((1, 2))  # (m,) size of the intersection
    return (shared.double() / k).mean().item()


@metric("mutual_knn", higher_is_better=True, compares="latent", per_sample=1.0)
def mutual_knn(translated: Tensor, target: Tensor) -> float:
    return mutual_knn_alignment(translated, target, MUTUAL_KNN_K)


# Retrieval: translated row i queries all target rows by cosine similarity; target row i is the hit.


def retrieval_ranks(translated: Tensor, target: Tensor) -> Tensor:
    """1-based rank of the correct target row for each query: (m,) int64.

    Ties count against the query (rank = m - #items scoring strictly lower), so a collapsed
    method whose outputs score all targets equally ranks last, not first.
    """
    _check_paired(translated, target, same_dim=True)
    m = translated.shape[0]
    q, t = F.normalize(translated.float(), dim=1), F.normalize(target.float(), dim=1)
    ranks = torch.empty(m, dtype=torch.long, device=translated.device)
    for r in _row_blocks(m):
        sim = q[r] @ t.T  # (rows, m)
        own = torch.arange(r.start, r.stop, device=translated.device)
        correct = sim[own - r.start, own]  # (rows,) read from the same matrix, so ties are exact
        ranks[r] = m - (sim < correct[:, None]).sum(1)
    return ranks


@metric("retrieval_top1", higher_is_better=True, compares="latent", per_sample=1.0)
def retrieval_top1(translated: Tensor, target: Tensor) -> float:
    return (retrieval_ranks(translated, target) <= 1).double().mean().item()


@metric("retrieval_top5", higher_is_better=True, compares="latent", per_sample=1.0)
def retrieval_top5(translated: Tensor, target: Tensor) -> float:
    return (retrieval_ranks(translated, target) <= 5).double().mean().item()


@metric("retrieval_mrr", higher_is_better=True, compares="latent", per_sample=1.0)
def retrieval_mrr(translated: Tensor, target: Tensor) -> float:
    return (1.0 / retrieval_ranks(translated, target).double()).mean().item()


# ---------------------------------------------------------------------------------------------
# Pixels: the target decoder's reconstruction of Y_hat against the original images (in [0, 1])


class MetricUnavailable(RuntimeError):
    """A metric that cannot be computed here (e.g. missing backbone weights); reported, never zero."""


@metric("pixel_mse", higher_is_better=False, compares="pixels")
def pixel_mse(reconstructed: Tensor, images: Tensor) -> float:
    return (reconstructed.double() - images.double()).pow(2).mean().item()  # mean over m * c * h * w


@metric("psnr", higher_is_better=True, compares="pixels")
def psnr(reconstructed: Tensor, images: Tensor) -> float:
    """Mean over images of 10 log10(1 / MSE_i), data range 1 (skimage's peak_signal_noise_ratio per image)."""
    per_image = (reconstructed.double() - images.double()).pow(2).flatten(1).mean(1)  # (m,)
    return (10 * torch.log10(1.0 / per_image.clamp_min(1e-12))).mean().item()


SSIM_WINDOW = 7  # scikit-image's default: a 7x7 uniform window, sample covariances, K1=0.01, K2=0.03


@metric("ssim", higher_is_better=True, compares="pixels")
def ssim(reconstructed: Tensor, images: Tensor) -> float:
    """Mean structural similarity (Wang et al. 2004) as scikit-image computes it for data range 1,
    averaged over channels and images, the border of half a window excluded."""
    x, y = reconstructed.double().flatten(0, 1)[:, None], images.double().flatten(0, 1)[:, None]  # (m*c, 1, h, w)
    def mean(t: Tensor) -> Tensor:  # (m*c, 1, h-6, w-6): valid windows only
        return F.avg_pool2d(t, SSIM_WINDOW, stride=1)

    n = SSIM_WINDOW**2
    ux, uy = mean(x), mean(y)
    vx = (mean(x * x) - ux * ux) * n / (n - 1)
    vy = (mean(y * y) - uy * uy) * n / (n - 1)
    vxy = (mean(x * y) - ux * uy) * n / (n - 1)
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).mean().item()


LPIPS_WEIGHTS = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet, the backbone of LPIPS (Zhang et al. 2018)


@metric("lpips", higher_is_better=False, compares="pixels")
def lpips(reconstructed: Tensor, images: Tensor) -> float:
    """LPIPS (AlexNet) through the `lpips` package, when its backbone weights are in the torch hub cache."""
    hub = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_WEIGHTS
    if not hub.exists():  # no package ships these weights, and a random backbone would be a lie
        raise MetricUnavailable(f"lpips is unavailable: the AlexNet backbone weights are missing; put {LPIPS_WEIGHTS} "
                                f"(https://download.pytorch.org/models/{LPIPS_WEIGHTS}) at {hub}")
    try:
        import lpips as lpips_package
    except ImportError:
        raise MetricUnavailable(
            "lpips is unavailable: the `lpips` package is not installed (pip install lpips)") from None
    model = lpips_package.LPIPS(net="alex", verbose=False).to(images.device)
    def to_rgb(t: Tensor) -> Tensor:  # [0, 1] grey -> [-1, 1] RGB
        return (t.float() * 2 - 1).expand(-1, 3, -1, -1)

    with torch.no_grad():
        return model(to_rgb(reconstructed), to_rgb(images)).mean().item()


# ---------------------------------------------------------------------------------------------
# Probes (the generative-models paper): one-vs-rest linear probes fitted on the target's latents


@metric("probe_accuracy", higher_is_better=True, compares="probes", per_sample=1.0)
def probe_accuracy(probe_decisions: Tensor, probe_truth: Tensor) -> float:
    """Mean over probes and samples of the probe's decision on Y_hat being right; (m, p) booleans."""
    return (probe_decisions == probe_truth).double().mean().item()


@metric("probe_consistency", higher_is_better=True, compares="probes", per_sample=1.0)
def probe_consistency(probe_decisions: Tensor, native_probe_decisions: Tensor) -> float:
    """Fraction of (sample, probe) decisions on Y_hat that equal the decision on the true Y."""
    return (probe_decisions == native_probe_decisions).double().mean().item()


# ---------------------------------------------------------------------------------------------
# Class structure of Y_hat itself, read with the true labels (the merging paper's separability)


@metric("separability", higher_is_better=True, compares="clusters")
def separability(translated: Tensor, labels: Tensor) -> float:
    """Mean over pairs of classes (a, b) of d(mu_a, mu_b) / ((r_a + r_b) / 2), where mu is a class
    centroid and r the mean Euclidean distance of the class's samples to it ("From Charts to Atlas", arXiv 2311.06547).

    A ratio of distances: invariant to rotation, translation and isotropic scaling of the space.
    """
    classes, index = torch.unique(labels, return_inverse=True)  # (c,), (m,)
    if classes.shape[0] < 2:
        raise ValueError("separability needs at least two classes")
    X = translated.double()  # (m, d)
    counts = torch.bincount(index, minlength=classes.shape[0]).double()  # (c,)
    centroids = torch.zeros(classes.shape[0], X.shape[1], dtype=X.dtype, device=X.device).index_add_(0, index, X)
    centroids /= counts[:, None]  # (c, d)
    spread = torch.zeros_like(counts).index_add_(0, index, (X - centroids[index]).norm(dim=1)) / counts  # (c,)
    a, b = torch.triu_indices(classes.shape[0], classes.shape[0], offset=1, device=X.device)  # every pair once
    return ((centroids[a] - centroids[b]).norm(dim=1) / ((spread[a] + spread[b]) / 2)).mean().item()
