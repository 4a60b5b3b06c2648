"""The examples in the docstrings of the submitter's API run, and show what they say."""
import doctest
import importlib

import pytest

# The modules a submitter reads first: the Method contract, its conformance suites, the metrics.
MODULES = ["bench.method", "bench.checks", "bench.merger_checks", "bench.metrics"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    results = doctest.testmod(module, optionflags=doctest.ELLIPSIS, raise_on_error=False, report=True)
    assert results.attempted > 0, f"{name} has no examples"
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples of {name} failed (output above)"
