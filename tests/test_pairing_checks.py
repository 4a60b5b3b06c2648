"""The conformance rules of the correspondence protocols: pairings and fit_unpaired (bench/checks.py)."""
from __future__ import annotations

import pytest
import torch

from bench import checks
from bench.checks import run_checks
from bench.method import get_method
from fixtures.broken_methods import Reference

NEW_METHODS = ["absolute", "mini-vec2vec", "robust-ortho"]


@pytest.mark.parametrize("name", NEW_METHODS)
def test_the_methods_with_pairings_pass_every_rule(name):
    results = run_checks(get_method(name).cls)
    assert all(r.passed for r in results), "\n".join(f"{r.rule}: {r.message}" for r in results if not r.passed)


def test_a_paired_method_is_never_asked_for_fit_unpaired():
    class RaisesIfAsked(Reference):  # declares only paired (the default)
        def fit_unpaired(self, X, Y, known=0):
            raise AssertionError("the rule must not call fit_unpaired on a paired-only method")

    assert checks.check_pairings(RaisesIfAsked) == "declares paired"
    assert checks.check_fit_unpaired(RaisesIfAsked).startswith("not asked")


class Unpaired(Reference):
    """Declares every protocol; fit_unpaired learns only the target dimension (a correct floor)."""

    pairings = frozenset({"paired", "partial", "unpaired"})

    def fit_unpaired(self, X, Y, known=0):
        self.map_ = torch.zeros(X.shape[1], Y.shape[1], dtype=X.dtype, device=X.device)
        return self


def test_a_correct_unpaired_method_passes_and_is_asked_each_declared_protocol():
    asked = []

    class Recording(Unpaired):
        def fit_unpaired(self, X, Y, known=0):
            asked.append((known, X.shape[0], Y.shape[0]))
            return super().fit_unpaired(X, Y, known)

    assert checks.check_fit_unpaired(Recording) == "fits partial and unpaired"
    assert {known for known, _, _ in asked} == {0, checks.PARTIAL_KNOWN}
    assert all(n_x != n_y for _, n_x, n_y in asked)  # never as many target rows as source rows


def test_only_the_declared_protocol_is_asked():
    class PartialOnly(Unpaired):
        pairings = frozenset({"paired", "partial"})

        def fit_unpaired(self, X, Y, known=0):
            assert known > 0, "asked for unpaired anchors without declaring them"
            return super().fit_unpaired(X, Y, known)

    assert checks.check_fit_unpaired(PartialOnly) == "fits partial"


@pytest.mark.parametrize(("pairings", "message"), [
    ({"paired", "unpaired"}, "is a set"),  # mutable: declare a frozenset
    (("paired",), "is a tuple"),
    (frozenset({"unpaired"}), "must contain 'paired'"),
    (frozenset({"paired", "semi"}), "not protocols"),
])
def test_malformed_pairings_fail_their_rule_only(pairings, message):
    broken = type("Broken", (Unpaired,), {"pairings": pairings})
    with pytest.raises(AssertionError, match=message):
        checks.check_pairings(broken)


def test_declaring_unpaired_without_overriding_fit_unpaired_fails():
    class Undone(Reference):
        pairings = frozenset({"paired", "unpaired"})

    with pytest.raises(AssertionError, match="override fit_unpaired"):
        checks.check_fit_unpaired(Undone)


def test_fit_unpaired_that_does_not_return_self_fails():
    class ReturnsNone(Unpaired):
        def fit_unpaired(self, X, Y, known=0):
            super().fit_unpaired(X, Y, known)

    with pytest.raises(AssertionError, match="returned NoneType, not self"):
        checks.check_fit_unpaired(ReturnsNone)


def test_a_map_sized_by_the_row_counts_fails_the_shape():
    class SizedByRows(Unpaired):  # confuses the target's row count with its dimension
        def fit_unpaired(self, X, Y, known=0):
            self.map_ = torch.zeros(X.shape[1], Y.shape[0], dtype=X.dtype)
            return self

    with pytest.raises(AssertionError, match="output shape"):
        checks.check_fit_unpaired(SizedByRows)


def test_a_nan_output_fails():
    class NaNs(Unpaired):
        def fit_unpaired(self, X, Y, known=0):
            self.map_ = torch.full((X.shape[1], Y.shape[1]), float("nan"), dtype=X.dtype)
            return self

    with pytest.raises(AssertionError, match="NaN or inf"):
        checks.check_fit_unpaired(NaNs)
