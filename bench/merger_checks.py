"""Conformance suite of the merger contract (bench/merging.py), the counterpart of bench/checks.py.

Every rule is `check_<rule>(merger_cls, params=None)`: it builds `merger_cls(**params)`, runs it on
two small seeded synthetic spaces (a Gaussian cloud and a noisy rotation of it, both of width DIM
so that averaging mergers apply) and raises AssertionError on a violation.

    results = run_merger_checks(resolve_merger("mergers/my-merger"))   # or a registered name
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from bench.checks import CheckResult, Rule, _tensor, check_params_roundtrip, named_rules, run_checks
from bench.compare import max_difference, same_output
from bench.merging import MERGERS
from bench.method import load_submission

N_ANCHORS, N_EVAL, DIM = 32, 10, 6


def _spaces(seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Fresh (anchors, evaluation) lists of two spaces: X and X @ Q + noise."""
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(N_ANCHORS + N_EVAL, DIM, generator=generator)
    Q, _ = torch.linalg.qr(torch.randn(DIM, DIM, generator=generator))
    spaces = [X, X @ Q + 0.05 * torch.randn(N_ANCHORS + N_EVAL, DIM, generator=generator)]
    return [S[:N_ANCHORS] for S in spaces], [S[N_ANCHORS:] for S in spaces]


def _fitted(merger_cls: type, params: dict[str, Any] | None) -> tuple[Any, list[torch.Tensor]]:
    """A fitted merger (whatever fit returns: that is fit_returns_self's business) and evaluation spaces."""
    anchors, evaluation = _spaces()
    merger = merger_cls(**dict(params or {}))
    merger.fit(anchors)
    return merger, evaluation


def _merge(merger: Any, spaces: list[torch.Tensor]) -> torch.Tensor:
    """transform on copies, so that a merger editing its input in place fails inputs_unchanged alone."""
    return _tensor(merger.transform([S.clone() for S in spaces]))


def check_fit_returns_self(merger_cls: type, params: dict[str, Any] | None = None) -> None:
    merger = merger_cls(**dict(params or {}))
    returned = merger.fit(_spaces()[0])
    assert returned is merger, f"fit returned {type(returned).__name__}, not self"


def check_output_type(merger_cls: type, params: dict[str, Any] | None = None) -> None:
    merger, evaluation = _fitted(merger_cls, params)
    output = merger.transform(evaluation)
    assert isinstance(output, torch.Tensor), (
        f"transform returned {type(output).__name__}; it must return a torch.Tensor")
    assert output.device == evaluation[0].device, (
        f"transform returned a tensor on {output.device}, not on the input's device")


def check_output_shape(merger_cls: type, params: dict[str, Any] | None = None) -> None:
    """k spaces of m rows become one (m, d_out) matrix, with the same d_out for every m."""
    merger, evaluation = _fitted(merger_cls, params)
    full, part = _merge(merger, evaluation), _merge(merger, [S[:3] for S in evaluation])
    assert full.ndim == 2 and full.shape[0] == N_EVAL, (
        f"transform returned shape {tuple(full.shape)}; expected ({N_EVAL}, d_out)")
    assert tuple(part.shape) == (3, full.shape[1]), (
        f"3 rows gave shape {tuple(part.shape)}; expected (3, {full.shape[1]})")


def check_output_finite(merger_cls: type, params: dict[str, Any] | None = None) -> None:
    """No NaN or inf, for the evaluation rows and for the same rows 1,000 times farther out."""
    merger, evaluation = _fitted(merger_cls, params)
    for scale in (1.0, 1e3):
        output = _merge(merger, [S * scale for S in evaluation])
        bad = int((~torch.isfinite(output)).sum())
        assert bad == 0, f"rows scaled by {scale:g}: transform returned {bad} non-finite values"


def check_inputs_unchanged(merger_cls: type, params: dict[str, Any] | None = None) -> None:
    anchors, evaluation = _spaces()
    copies = [S.clone() for S in anchors + evaluation]
    merger = merger_cls(**dict(params or {}))
    merger.fit(anchors)
    merger.transform(evaluation)
    changed = [i for i, (S, C) in enumerate(zip(anchors + evaluation, copies)) if not torch.equal(S, C)]
    assert not changed, f"fit or transform modified input tensor(s) {changed} in place"


def check_rows_independent(merger_cls: type, params: dict[str, Any] | None = None) -> None:
    """transform(...)[i] == transform(row i alone): no batch statistics at transform time."""
    merger, evaluation = _fitted(merger_cls, params)
    batch = _merge(merger, evaluation)
    for i in range(min(N_EVAL, batch.shape[0])):  # a missing row is output_shape's business
        single = _merge(merger, [S[i : i + 1] for S in evaluation]).reshape(-1)
        assert same_output(single, batch[i].reshape(-1)), (
            f"row {i} alone differs from row {i} in a batch ({max_difference(single, batch[i].reshape(-1))})")


def check_deterministic(merger_cls: type, params: dict[str, Any] | None = None) -> None:
    first, evaluation = _fitted(merger_cls, params)
    second, _ = _fitted(merger_cls, params)
    a, b = _merge(first, evaluation), _merge(second, evaluation)
    assert same_output(a, b), f"two fits on the same anchors merge differently ({max_difference(a, b)})"


def check_pickle_roundtrip(merger_cls: type, params: dict[str, Any] | None = None) -> None:
    merger, evaluation = _fitted(merger_cls, params)
    restored = pickle.loads(pickle.dumps(merger))
    a, b = _merge(merger, evaluation), _merge(restored, evaluation)
    assert same_output(a, b), f"a pickled and restored merger merges differently ({max_difference(a, b)})"


RULES: list[tuple[str, Rule]] = named_rules(
    check_params_roundtrip, check_fit_returns_self, check_output_type, check_output_shape, check_output_finite,
    check_inputs_unchanged, check_rows_independent, check_deterministic, check_pickle_roundtrip,
)


def run_merger_checks(merger_cls: type, params: dict[str, Any] | None = None) -> list[CheckResult]:
    """Every rule of RULES on `merger_cls(**params)`; a rule that raises anything is a failed rule.

    Rules follow bench/checks.py's contract: check_<rule>(merger_cls, params=None) raises
    AssertionError with a readable message on a violation. A reference merger keeps them all:

    >>> results = run_merger_checks(resolve_merger("concat"))
    >>> [r.rule for r in results] == [rule for rule, _ in RULES], all(r.passed for r in results)
    (True, True)

    A merger whose output depends on the batch (here: centred on the batch mean) fails
    rows_independent:

    >>> from bench.merging import Merger
    >>> class BatchCentred(Merger):
    ...     def fit(self, anchors: list[torch.Tensor]) -> "BatchCentred":
    ...         self.k_ = len(anchors)
    ...         return self
    ...     def transform(self, spaces: list[torch.Tensor]) -> torch.Tensor:
    ...         merged = torch.cat(spaces, dim=1)
    ...         return merged - merged.mean(0)
    >>> failed = {r.rule: r.message for r in run_merger_checks(BatchCentred) if not r.passed}
    >>> failed["rows_independent"]  # doctest: +ELLIPSIS
    'row 0 alone differs from row 0 in a batch (...)'
    """
    return run_checks(merger_cls, params, rules=RULES)


def resolve_merger(name_or_path: str) -> type | None:
    """A merger's class by registered name or merger folder; None when it names no merger."""
    path = Path(name_or_path)
    if path.is_dir():
        names = load_submission(path, MERGERS)
        # registered: load_submission registered it
        return MERGERS.registered(names[0]).cls if len(names) == 1 else None  # type: ignore[union-attr]
    return MERGERS.get(name_or_path).cls if name_or_path in MERGERS else None
