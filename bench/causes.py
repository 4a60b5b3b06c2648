"""docs/causes.json: the measured reasons behind the findings that disagree with a paper.

docs/findings.md says where our numbers disagree with the papers (bench/report/findings.py); this
module measures why, from the cached embeddings and each task's own anchors (the harness's code:
bench.task, the kind's Evaluation.anchors, bench.encoders.embeddings, bench.preprocessing), and
puts the stored scores beside them. findings.py reads the JSON only, so rendering the report never
imports this module or an encoder; `bench causes` recomputes it (`make bench`, before the leaderboard).

What is measured, per claim (docs/findings.md):
- 2 and 6, orthogonal maps against least squares: per cell (pair, anchor count, seed) on the
  standardised anchors, the condition number of the source anchors' covariance, the share of the
  evaluation embeddings' variance outside the anchors' span (anchors below the dimension), the
  spectral mismatch of the two spaces (how far apart their singular values are: no orthogonal map
  can close that gap, Mirsky's inequality), how far the least-squares map is from a scaled
  orthogonal one, and how far l-ortho's map (the polar factor of least squares) is from ortho's
  (Procrustes); then, across tasks, the rank correlation of each with the stored gaps.
- 5b, irp's inversion: the condition number of the matrix irp-plain inverts (the centred, unit
  target anchors, submissions/irp/method.py), the effective one under the ridge irp chooses, and
  how much the two relative representations disagree (what the inversion amplifies).
- 7b, merging: what each step from the concatenated parts to rlsa loses, in the task decoder's
  accuracy (averaging: naive; normalising rows: a head on the unit-normalised concatenation; rlsa's
  basis of the same information), and the rank of rlsa's linear image.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import scipy.linalg
import torch
from scipy import stats
from threadpoolctl import threadpool_limits

from bench.datasets import Dataset, load_dataset
from bench.encoders import embeddings
from bench.method import build_method
from bench.metrics import METRICS
from bench.preprocessing import Preprocessing, rank_tolerance
from bench.report.findings import CAUSES, CAUSES_VERSION, claim_tasks, results_fingerprint
from bench.report.rows import current_rows
from bench.results import ResultStore
from bench.task import Cell, Task, discover_tasks

DEFAULT_OUTPUT = CAUSES  # docs/, beside findings.md: results/ is the store's (results/<task>/*.jsonl)
CPU = torch.device("cpu")  # the embeddings are cached; every measurement here is small linear algebra
CLAIM_METRIC = "accuracy"  # what claim 7b compares on a merging task (its main metric is its first, CKA)


# ---------------------------------------------------------------------------------------------
# the measurements: pure numpy, each tested against an independent reference (tests/test_causes.py)


def _tolerance(singular_values: np.ndarray) -> float:
    # the methods' own cut (bench.preprocessing.rank_tolerance): at or below 100 float32 eps of the
    # largest, a singular value of float32 embeddings is not a direction, so the span measured here
    # is the span the methods fit on
    return float(singular_values.max(initial=0.0)) * rank_tolerance(torch.float32)


def span_condition(A: np.ndarray) -> tuple[float, int]:
    """The condition number sigma_max / sigma_min of A over the singular values it numerically has,
    and their count (its rank). (n, d) -> (kappa, rank). A zero matrix: (nan, 0).

    The covariance A^T A / n has the square of this condition number."""
    s = _svd(A, compute_uv=False)  # (min(n, d),)
    kept = s[s > _tolerance(s)]
    return (float(kept.max() / kept.min()) if kept.size else math.nan), int(kept.size)


def covariance_condition(Xp: np.ndarray) -> tuple[float, int]:
    """Condition number of the anchors' covariance Xp^T Xp / n over its span, and its rank: what a
    least-squares fit on these anchors divides by. (n, d) standardised anchors -> (kappa, rank)."""
    kappa, rank = span_condition(Xp)
    return kappa**2, rank


def _svd(M: np.ndarray, full_matrices: bool = False, compute_uv: bool = True) -> Any:
    """numpy's SVD in float64 (LAPACK's divide and conquer, gesdd) or, where that fails to converge, QR
    iteration (gesvd), slower but convergent: gesdd failed on a cross-modal cell's float32 Xp^T Yp."""
    M = np.asarray(M, dtype=np.float64)
    try:
        return np.linalg.svd(M, full_matrices=full_matrices, compute_uv=compute_uv)  # type: ignore[call-overload]
    except np.linalg.LinAlgError:
        return scipy.linalg.svd(M, full_matrices=full_matrices, compute_uv=compute_uv, lapack_driver="gesvd")


def polar(M: np.ndarray) -> np.ndarray:
    """The orthogonal polar factor U V^T of M (the orthogonal matrix nearest to it). (p, q) -> (p, q)."""
    U, _, Vt = _svd(M, full_matrices=False)  # (p, k), (k,), (k, q)
    return U @ Vt


def non_orthogonality(R: np.ndarray) -> float:
    """min_c ||R - c polar(R)||_F / ||R||_F, over the singular values R numerically has: 0 for a
    scaled orthogonal map, near 1 when a few directions dominate. With s the singular values,
    R - c U V^T = U (diag(s) - c I) V^T, minimised at c = mean(s): sqrt(1 - sum(s)^2 / (k sum(s^2)))."""
    s = _svd(R, compute_uv=False)
    s = s[s > _tolerance(s)]
    if not s.size:
        return math.nan
    return math.sqrt(max(0.0, 1 - s.sum() ** 2 / (s.size * (s**2).sum())))


def map_agreement(P: np.ndarray, Q: np.ndarray) -> float:
    """tr(P^T Q) / k for two (dx, dy) maps with orthonormal columns or rows (k = min(dx, dy)): 1 when
    they are the same map, about 0 for unrelated ones: the mean cosine of their k directions."""
    return float(np.trace(P.T @ Q) / min(P.shape))


def outside_span(anchors: np.ndarray, X: np.ndarray) -> float:
    """Share of X's squared norm outside the span of the anchors' rows: what a map fitted on those
    anchors never saw. (n, d) anchors, (m, d) points -> [0, 1]."""
    _, s, Vt = _svd(anchors, full_matrices=False)  # (k,), (k, d)
    V = Vt[s > _tolerance(s)].T  # (d, r) orthonormal basis of the anchors' row span
    outside = X - (X @ V) @ V.T  # (m, d)
    return float((outside**2).sum() / max((X**2).sum(), np.finfo(np.float64).tiny))


def spectral_mismatch(Xp: np.ndarray, Yp: np.ndarray) -> float:
    """||sigma(Xp) - sigma(Yp)||_2 / ||Yp||_F, singular values sorted and zero-padded to one length.
    By Mirsky's inequality no orthogonal Q fits better: ||Xp Q - Yp||_F >= ||sigma(Xp) - sigma(Yp)||_2,
    since sigma(Xp Q) = sigma(Xp). (n, dx), (n, dy) -> >= 0: the anisotropy no rotation can undo."""
    sx, sy = _svd(Xp, compute_uv=False), _svd(Yp, compute_uv=False)
    k = max(sx.size, sy.size)
    sx, sy = np.pad(sx, (0, k - sx.size)), np.pad(sy, (0, k - sy.size))
    return float(np.linalg.norm(sx - sy) / np.linalg.norm(Yp))


def unit_rows(Z: np.ndarray) -> np.ndarray:  # (m, d) -> (m, d), each row of norm 1 (a zero row stays zero)
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.where(norms > 1e-12, norms, 1.0)


def rank_correlation(x: Iterable[float], y: Iterable[float]) -> dict[str, float | int]:
    """Spearman's rho of y against x and its two-sided p-value, over the pairs where both are finite."""
    xs, ys = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    finite = np.isfinite(xs) & np.isfinite(ys)
    if finite.sum() < 3 or np.ptp(xs[finite]) == 0 or np.ptp(ys[finite]) == 0:
        return {"rho": math.nan, "p": math.nan, "cells": int(finite.sum())}
    result = stats.spearmanr(xs[finite], ys[finite])
    return {"rho": float(result.statistic), "p": float(result.pvalue), "cells": int(finite.sum())}


def worse_by(value: float, reference: float, higher_is_better: bool) -> float:
    """How much worse `value` is than `reference`, relative to the reference: the same scale for an
    accuracy (higher is better) and a pixel MSE (lower is better), so tasks can be ranked together."""
    return ((reference - value) if higher_is_better else (value - reference)) / abs(reference)


# ---------------------------------------------------------------------------------------------
# per claim: the tasks' cells, measured


def _scores(frame: pd.DataFrame, task: Task) -> Callable[[str, Cell], float]:
    """(method label, cell) -> the cell's stored main-metric score (nan when not stored)."""
    rows = frame[frame.task == task.name]
    column = f"m:{task.main_metric}"
    table = ({} if column not in rows else
             rows.set_index(["method", "source", "target", "n_anchors", "seed"])[column].to_dict())

    def score(method: str, cell: Cell) -> float:
        value = table.get((method, cell.source, cell.target, cell.n_anchors, cell.seed))
        return math.nan if value is None or pd.isna(value) else float(value)

    return score


def _cells(task: Task, counts: Iterable[int]) -> list[Cell]:
    """The task's paired cells at these anchor counts, one per (source, target, n, seed): what the
    anchors depend on (the method does not)."""
    seen: dict[tuple[str, str, int, int], Cell] = {}
    for cell in task.plan():
        if cell.n_anchors in counts:
            seen.setdefault((cell.source, cell.target, cell.n_anchors, cell.seed), cell)
    return list(seen.values())


def _embedding(encoder: str, dataset: Dataset) -> np.ndarray:  # (N, d) float64, the whole data set
    return embeddings(encoder, dataset, CPU).astype(np.float64)


def stitching_cells(task: Task, frame: pd.DataFrame, counts: Iterable[int], results_dir: Path) -> list[dict[str, Any]]:
    """The anchors' geometry of every cell at these counts, with the stored gaps between methods."""
    dataset = load_dataset(task.spec.dataset.name)
    evaluation = task.kind.evaluation(task, dataset, CPU, results_dir)  # the task's own anchors
    eval_idx = dataset.split(task.spec.dataset.eval_split)
    score, better = _scores(frame, task), METRICS.get(task.main_metric).higher_is_better
    cached: dict[str, np.ndarray] = {}
    measured = []
    for cell in _cells(task, counts):
        for encoder in (cell.source, cell.target):
            if encoder not in cached:
                cached[encoder] = _embedding(encoder, dataset)
        anchors = evaluation.anchors(cell)  # (n,) sample ids
        X, Y = torch.from_numpy(cached[cell.source][anchors]), torch.from_numpy(cached[cell.target][anchors])
        # the reference methods' standard scaling, fitted on the anchors (their zero padding changes no quantity here)
        prep = Preprocessing("standard").fit(X, Y)
        Xp, Yp = prep.encode_x(X).numpy(), prep.encode_y(Y).numpy()  # (n, dx), (n, dy)
        X_eval = prep.encode_x(torch.from_numpy(cached[cell.source][eval_idx])).numpy()  # (m, dx)
        kappa, rank = covariance_condition(Xp)
        R = np.linalg.lstsq(Xp, Yp, rcond=None)[0]  # (dx, dy) minimum-norm least squares: `linear`'s map
        ortho, linear, l_ortho, affine = (score(m, cell) for m in ("ortho", "linear", "l-ortho", "affine"))
        measured.append({
            "source": cell.source, "target": cell.target, "n": cell.n_anchors, "seed": cell.seed,
            "dim": Xp.shape[1], "rank": rank, "kappa": kappa,
            "outside_span": outside_span(Xp, X_eval),
            "spectral_mismatch": spectral_mismatch(Xp, Yp),
            "non_orthogonality": non_orthogonality(R),
            # l-ortho is the polar factor of least squares, ortho that of the cross-product (Procrustes)
            "map_agreement": map_agreement(polar(R), polar(Xp.T @ Yp)),
            "ortho_behind_linear": worse_by(ortho, linear, better),
            "ortho_behind_affine": worse_by(ortho, affine, better),
            "l_ortho_behind_ortho": worse_by(l_ortho, ortho, better),
        })
    return measured


def irp_cells(task: Task, frame: pd.DataFrame, results_dir: Path) -> list[dict[str, Any]]:
    """irp's inversion at every cell: the condition number of what plain least squares inverts,
    the effective one under the ridge irp chooses on the same anchors, and the perturbation."""
    plain = next(m for m in task.methods if m.name == "irp" and m.params.get("alpha") == 0)
    chosen = next(m for m in task.methods if m.name == "irp" and m.params.get("alpha") is None)
    dataset = load_dataset(task.spec.dataset.name)
    evaluation = task.kind.evaluation(task, dataset, CPU, results_dir)
    eval_idx = dataset.split(task.spec.dataset.eval_split)
    score = _scores(frame, task)
    cached: dict[str, np.ndarray] = {}
    measured = []
    for cell in _cells(task, task.spec.anchors.counts):
        for encoder in (cell.source, cell.target):
            if encoder not in cached:
                cached[encoder] = _embedding(encoder, dataset)
        X, Y = cached[cell.source], cached[cell.target]  # (N, dx), (N, dy)
        anchors = evaluation.anchors(cell)
        Xa, Ya = X[anchors], Y[anchors]
        A, B = unit_rows(Xa - Xa.mean(axis=0)), unit_rows(Ya - Ya.mean(axis=0))  # (n, dx), (n, dy): irp's fit
        s = _svd(B, compute_uv=False)  # irp-plain inverts B^T with pinv: it divides by these
        s = s[s > _tolerance(s)]
        n, dy = B.shape
        # the ridge irp chooses by cross-validation on these anchors (its own fit, not a copy of it)
        fitted = build_method(chosen.name, dict(chosen.params), seed=cell.seed).fit(torch.from_numpy(Xa),
                                                                                    torch.from_numpy(Ya))
        penalty = fitted.alpha_ * n / dy
        # the gain on direction i is 1 / s_i plain and s_i / (s_i^2 + penalty) under the ridge; relative to
        # the best-spanned direction's 1 / s_max, the largest gain is the condition number (plain) or its ridge bound
        effective = float(s.max() * (s / (s**2 + penalty)).max()) if penalty > 0 else float(s.max() / s.min())
        # what the inversion amplifies: the source's relative representation against the target's own
        r_source = unit_rows(X[eval_idx] - Xa.mean(axis=0)) @ A.T  # (m, n)
        r_target = unit_rows(Y[eval_idx] - Ya.mean(axis=0)) @ B.T  # (m, n)
        disagreement = np.linalg.norm(r_source - r_target, axis=1) / np.linalg.norm(r_target, axis=1)  # (m,)
        measured.append({
            "source": cell.source, "target": cell.target, "n": cell.n_anchors, "seed": cell.seed, "dim": dy,
            "rank": int(s.size), "kappa_plain": float(s.max() / s.min()), "alpha_chosen": float(fitted.alpha_),
            "kappa_chosen": effective, "disagreement": float(np.median(disagreement)),
            "accuracy_plain": score(plain.display, cell), "accuracy_chosen": score(chosen.display, cell),
        })
    return measured


def merging_steps(task: Task, frame: pd.DataFrame, results_dir: Path) -> list[dict[str, Any]]:
    """Per partition at the largest anchor count: the stored accuracies of concat, naive and rlsa; the
    accuracy of the unit-normalised concatenation, scored as the task scores a merger's output (what
    rlsa's linear image holds); the rank of that image; how related the parts' raw coordinates are."""
    dataset = load_dataset(task.spec.dataset.name)
    evaluation = task.kind.evaluation(task, dataset, CPU, results_dir)
    spaces_of = cast(Any, evaluation).spaces  # the parts' spaces, (N, d_i) each: the merging evaluation's own
    fit_idx, eval_idx = dataset.split(task.spec.dataset.fit_split), dataset.split(task.spec.dataset.eval_split)
    largest = max(task.spec.anchors.counts)
    rows = frame[(frame.task == task.name) & (frame.n_anchors == largest)]
    measured = []
    for partition, _ in task.pairs():  # a cell group: (partition, end-to-end encoder)
        spaces = [S.cpu().numpy().astype(np.float64) for S in spaces_of(partition)]  # k of (N, d_i)
        cells = [c for c in _cells(task, [largest]) if c.source == partition]
        units = np.hstack([unit_rows(S) for S in spaces])  # (N, sum d_i)
        # scored as a merger's output is: its fit-split rows fit the task's decoder, its eval-split rows are scored
        merged = torch.from_numpy(units[np.concatenate([fit_idx, eval_idx])].astype(np.float32))
        unit_scores, _ = evaluation.score(cells[0], merged)
        # rlsa = mean_i unit(X_i) unit(A_i)^T = [unit(X_1) ... unit(X_k)] M / k, M = the stacked unit anchors
        # (sum d_i, n): when M has rank sum d_i, rlsa's space is an injective linear image of `units`
        ranks = [span_condition(np.hstack([unit_rows(S[evaluation.anchors(c)]) for S in spaces]))[1] for c in cells]
        centred = [unit_rows(S[eval_idx] - S[fit_idx].mean(axis=0)) for S in spaces]  # k of (m, d_i)
        pairs = [(i, j) for i in range(len(spaces)) for j in range(i + 1, len(spaces))
                 if spaces[i].shape[1] == spaces[j].shape[1]]  # coordinates compare only at one width
        stored = rows[rows.source == partition].groupby("method")[f"m:{CLAIM_METRIC}"].mean()
        measured.append({
            "partition": partition, "n": largest, "width": int(sum(S.shape[1] for S in spaces)),
            "rank": int(min(ranks)),
            # the paper's premise: independently trained parts place a sample at unrelated coordinates
            "coordinate_cosine": float(np.mean([np.sum(centred[i] * centred[j], axis=1).mean() for i, j in pairs]))
            if pairs else math.nan,
            "unit_concat": unit_scores.get(CLAIM_METRIC),
            **{method: float(stored.get(method, math.nan)) for method in ("concat", "naive", "rlsa")},
        })
    return measured


# ---------------------------------------------------------------------------------------------
# the file: medians per task and anchor count, rank correlations across tasks


GEOMETRY = ("kappa", "outside_span", "spectral_mismatch", "non_orthogonality", "map_agreement")
GAPS = ("ortho_behind_linear", "ortho_behind_affine", "l_ortho_behind_ortho")
# (what is ranked, over which claim groups' tasks (findings.claim_tasks), at which anchor counts, which
# cells: "above" n >= the source width, "below" n < it, "all"; against which measured quantities)
CORRELATIONS = (
    # claim 2 at its two counts; with fewer anchors than dimensions a fit is ill-determined, a regime of its own
    ("ortho_behind_linear", ("main",), "ends", "above", GEOMETRY[:4]),
    ("ortho_behind_linear", ("main",), "ends", "below", GEOMETRY[:4]),
    ("ortho_behind_affine", ("pixels",), "largest", "all", GEOMETRY[:4]),  # claim 6
    # l-ortho's collapse across tasks, and the mechanism: its map drifts from Procrustes' as kappa grows
    ("l_ortho_behind_ortho", ("main", "pixels"), "largest", "all", GEOMETRY),
    ("map_agreement", ("main", "pixels"), "largest", "all", ("kappa",)),
)
REGIMES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "above": lambda cell: cell["n"] >= cell["dim"], "below": lambda cell: cell["n"] < cell["dim"],
    "all": lambda cell: True}


def _median(values: Iterable[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(finite)) if finite else None


def _per_count(cells: list[dict[str, Any]], fields: Iterable[str]) -> list[dict[str, Any]]:
    """One record per (task, n): the cells' count, source widths, how many have n below their width,
    and the median of each field over pairs and seeds."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for cell in cells:
        groups.setdefault((cell["task"], cell["n"]), []).append(cell)
    return [{"task": task, "n": n, "cells": len(group), "dims": sorted({c["dim"] for c in group}),
             "below_dim": sum(n < c["dim"] for c in group), **{f: _median(c[f] for c in group) for f in fields}}
            for (task, n), group in sorted(groups.items())]


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null: strict JSON has neither."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def measure(results_dir: Path, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every measurement, from the cached embeddings and the current rows of `results_dir`."""
    # one BLAS/OpenMP thread: the same figures on any machine, and no threads spinning against a busy one's
    with threadpool_limits(limits=1):
        return _measure(results_dir, progress)


def _measure(results_dir: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    tasks = {t.name: t for t in discover_tasks()}
    frame, _ = current_rows(ResultStore(results_dir).rows(), tasks)
    groups = claim_tasks(frame, tasks)
    counts = {"ends": lambda t: {min(t.spec.anchors.counts), max(t.spec.anchors.counts)},
              "largest": lambda t: {max(t.spec.anchors.counts)}}
    stitching: list[dict[str, Any]] = []
    for task in {t.name: t for g in ("main", "pixels") for t in groups[g]}.values():
        progress(task.name)
        measured = stitching_cells(task, frame, counts["ends"](task), results_dir)
        stitching += [{"task": task.name, **cell} for cell in measured]
    correlations = []
    for ranked, claim_groups, which, regime, quantities in CORRELATIONS:
        chosen = [c for c in stitching if REGIMES[regime](c) and any(
            c["task"] == t.name and c["n"] in counts[which](t) for g in claim_groups for t in groups[g])]
        correlations.append({"ranked": ranked, "counts": which, "regime": regime,
                             "tasks": sorted({c["task"] for c in chosen}),
                             "against": {q: rank_correlation((c[q] for c in chosen), (c[ranked] for c in chosen))
                                         for q in quantities}})
    irp: list[dict[str, Any]] = []
    for task in groups["irp_ablations"]:
        progress(task.name)
        irp += [{"task": task.name, **cell} for cell in irp_cells(task, frame, results_dir)]
    # one law for both inversions: accuracy against the condition number each one effectively has
    irp_correlation = rank_correlation([c["kappa_plain"] for c in irp] + [c["kappa_chosen"] for c in irp],
                                       [c["accuracy_plain"] for c in irp] + [c["accuracy_chosen"] for c in irp])
    merging = []
    for task in groups["unranked"]:
        progress(task.name)
        merging += [{"task": task.name, **step} for step in merging_steps(task, frame, results_dir)]
    measured_tasks = sorted({c["task"] for c in stitching + irp + merging})
    return _json_safe({
        "version": CAUSES_VERSION,
        "written_by": "bench causes (bench/causes.py)",
        "results": results_fingerprint(frame, measured_tasks), "tasks": measured_tasks,
        "geometry": _per_count(stitching, GEOMETRY + GAPS + ("rank",)),
        "correlations": correlations,
        "irp": _per_count(irp, ("rank", "kappa_plain", "alpha_chosen", "kappa_chosen", "disagreement",
                                "accuracy_plain", "accuracy_chosen")),
        "irp_correlation": irp_correlation,
        "mergers": merging,
    })


def write_causes(results_dir: Path, output: Path = DEFAULT_OUTPUT,
                 progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Measure and write the JSON (atomically: a reader never sees half a file)."""
    causes = measure(results_dir, progress)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.tmp")
    temporary.write_text(json.dumps(causes, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(output)
    return causes
