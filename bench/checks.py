"""The public conformance suite: does a Method class keep the contract of bench/method.py?

In the spirit of sklearn's check_estimator. Every rule is a function

    check_<rule>(method_cls, params=None) -> str | None

that builds the method as `method_cls(**params)`, runs it on small seeded synthetic data and
raises AssertionError with a readable message on a violation (returning an optional note when it
passes). Each rule tests one property and tolerates violations of the others (a numpy output is
only the output_type rule's business), so a broken method fails exactly the rules it breaks.

    results = run_checks(resolve_method("submissions/my-method"))   # or a registered name
"""
from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from bench.compare import FLOOR, max_difference, same_output  # "the same output": bench/compare.py
from bench.method import (
    METHODS,
    PAIRINGS,
    Method,
    declared_pairings,
    fits_in_batches,
    get_method,
    load_submission,
    takes_seed,
)
from bench.preprocessing import pad_or_truncate

N_ANCHORS, N_EVAL, DIM = 48, 12, 8  # small: the whole suite runs in well under a second
DIM_CASES = ((5, DIM), (DIM, DIM), (DIM, 5))  # (dx, dy): dx < dy, dx = dy, dx > dy


@dataclass
class CheckResult:
    rule: str
    passed: bool
    message: str


# ---------------------------------------------------------------------------------------------
# synthetic data


def make_rotation_pair(
    n: int, dx: int, dy: int, seed: int = 0, noise: float = 0.05, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """X (n, dx) Gaussian; Y (n, dy) = X zero-padded to max(dx, dy), rotated, cut to dy, plus noise."""
    generator = torch.Generator().manual_seed(seed)
    d = max(dx, dy)
    X = torch.randn(n, dx, generator=generator)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=generator))  # (d, d) orthogonal
    if torch.linalg.det(Q) < 0:  # a rotation, not a reflection: a method limited to rotations can recover it
        Q[:, 0] = -Q[:, 0]
    Y = (pad_or_truncate(X, d) @ Q)[:, :dy] + noise * torch.randn(n, dy, generator=generator)
    return X.to(dtype), Y.to(dtype)


def _data(
    dx: int = DIM, dy: int = DIM, dtype: torch.dtype = torch.float32, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fresh tensors on every call (a method that mutates its input cannot spoil a later fit)."""
    X, Y = make_rotation_pair(N_ANCHORS + N_EVAL, dx, dy, seed=dx * 100 + dy, dtype=dtype)
    X, Y = X.to(device), Y.to(device)
    return X[:N_ANCHORS], Y[:N_ANCHORS], X[N_ANCHORS:], Y[N_ANCHORS:]  # anchors, then evaluation


def _build(method_cls: type, params: dict[str, Any] | None) -> Method:
    return method_cls(**dict(params or {}))


def _build_seeded(method_cls: type, params: dict[str, Any] | None, seed: int = 0) -> Method:
    kwargs = dict(params or {})
    if takes_seed(method_cls):
        kwargs.setdefault("seed", seed)
    return method_cls(**kwargs)


def _tensor(output: Any) -> torch.Tensor:
    """The output as a CPU tensor, whatever its type: the type is checked by output_type alone."""
    if isinstance(output, torch.Tensor):
        return output.detach().cpu()
    return torch.as_tensor(np.asarray(output))


# ---------------------------------------------------------------------------------------------
# the rules


def check_params_roundtrip(method_cls: type, params: dict[str, Any] | None = None) -> None:
    """__init__ stores every argument unchanged under its own name: get_params, clone work."""
    params = dict(params or {})
    method = _build(method_cls, params)
    signature = inspect.signature(method_cls.__init__).parameters  # type: ignore[misc]  # the class's own, as given
    names = [k for k, p in signature.items() if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    try:
        got = method.get_params(deep=False)
    except Exception as error:
        raise AssertionError(
            f"get_params() fails ({type(error).__name__}: {error}): every __init__ argument must be "
            f"stored as an attribute of the same name, unchanged"
        ) from error
    assert set(got) == set(names), f"get_params() gives {sorted(got)}, __init__ takes {sorted(names)}"
    for name in names:
        expected = params.get(name, signature[name].default)
        assert got[name] is expected or _equal(got[name], expected), (
            f"__init__ stores {name}={got[name]!r}, was given {expected!r}: store hyperparameters "
            f"unchanged and validate them in fit"
        )
    cloned = clone(method)  # sklearn's clone also checks that __init__ keeps each object as given
    assert type(cloned) is method_cls, f"clone gives a {type(cloned).__name__}"
    # the assert above narrows cloned to `object` for mypy (method_cls is any class)
    assert _equal_params(cloned.get_params(deep=False), got), "clone changes the parameters"  # type: ignore[attr-defined]
    rebuilt = method_cls(**got)
    assert _equal_params(rebuilt.get_params(deep=False), got), "method_cls(**get_params()) changes them"
    assert method.set_params(**got) is method, "set_params must return self"


def check_not_fitted(method_cls: type, params: dict[str, Any] | None = None) -> None:
    """transform before fit raises NotFittedError (or an error whose message mentions fit)."""
    _, _, X_eval, _ = _data()
    try:
        _build(method_cls, params).transform(X_eval)
    except NotFittedError:
        return
    except Exception as error:
        assert "fit" in str(error).lower(), (
            f"transform before fit raises {type(error).__name__}: {error!s:.200}; raise sklearn's "
            f"NotFittedError (self._check_fitted()) or an error that says fit is needed"
        )
        return
    raise AssertionError("transform before fit returned instead of raising; call self._check_fitted()")


def check_fit_returns_self(method_cls: type, params: dict[str, Any] | None = None) -> None:
    X, Y, _, _ = _data()
    method = _build_seeded(method_cls, params)
    returned = method.fit(X, Y)
    assert returned is method, f"fit returned {type(returned).__name__}, not self"


def check_output_shape(method_cls: type, params: dict[str, Any] | None = None) -> None:
    """transform maps (m, dx) to (m, dy) for dx < dy, dx = dy and dx > dy."""
    for dx, dy in DIM_CASES:
        X, Y, X_eval, _ = _data(dx, dy)
        method = _build_seeded(method_cls, params)
        method.fit(X, Y)
        shape = tuple(_tensor(method.transform(X_eval)).shape)
        assert shape == (N_EVAL, dy), f"dx={dx}, dy={dy}: output shape {shape}, expected {(N_EVAL, dy)}"


def check_output_finite(method_cls: type, params: dict[str, Any] | None = None) -> None:
    """No NaN or inf in the output, for dx < dy, dx = dy and dx > dy."""
    for dx, dy in DIM_CASES:
        X, Y, X_eval, _ = _data(dx, dy)
        method = _build_seeded(method_cls, params)
        method.fit(X, Y)
        output = _tensor(method.transform(X_eval))
        bad = (~torch.isfinite(output)).sum().item()
        assert bad == 0, f"dx={dx}, dy={dy}: {bad} of {output.numel()} output values are NaN or inf"


def check_inputs_unchanged(method_cls: type, params: dict[str, Any] | None = None) -> None:
    """fit and transform leave their input tensors as they found them."""
    X, Y, X_eval, _ = _data()
    copies = X.clone(), Y.clone(), X_eval.clone()
    method = _build_seeded(method_cls, params)
    method.fit(X, Y)
    assert torch.equal(X, copies[0]), "fit modified X in place"
    assert torch.equal(Y, copies[1]), "fit modified Y in place"
    method.transform(X_eval)
    assert torch.equal(X_eval, copies[2]), "transform modified X in place"


def check_rows_independent(method_cls: type, params: dict[str, Any] | None = None) -> None:
    """transform(X)[i] == transform(X[i:i+1]): no batch statistics at transform time."""
    X, Y, X_eval, _ = _data()
    method = _build_seeded(method_cls, params)
    method.fit(X, Y)
    batch = _tensor(method.transform(X_eval))  # (m, dy)
    for i in range(N_EVAL):
        single = _tensor(method.transform(X_eval[i : i + 1]))  # (1, dy)
        assert same_output(single.reshape(-1), batch[i].reshape(-1)), (
            f"row {i} alone differs from row {i} in a batch"
            f" ({max_difference(single.reshape(-1), batch[i].reshape(-1))}):"
            f" rows must be translated independently"
        )


def check_output_type(method_cls: type, params: dict[str, Any] | None = None) -> None:
    """One torch.Tensor out, on the input's device and with its dtype."""
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for dtype in (torch.float32, torch.float64):
            X, Y, X_eval, _ = _data(dtype=dtype, device=device)
            method = _build_seeded(method_cls, params)
            method.fit(X, Y)
            output = method.transform(X_eval)
            assert isinstance(output, torch.Tensor), (
                f"transform returned {type(output).__module__}.{type(output).__name__}, not a torch.Tensor"
            )
            assert output.device == X_eval.device, f"{device} input gave output on {output.device}"
            assert output.dtype == dtype, f"{dtype} input gave a {output.dtype} output"


def check_seed_reproducible(method_cls: type, params: dict[str, Any] | None = None) -> None:
    """The same data and seed give the same output: refitting, or fitting a fresh instance."""
    X, Y, X_eval, _ = _data()
    method = _build_seeded(method_cls, params)
    method.fit(X, Y)
    first = _tensor(method.transform(X_eval))
    X, Y, X_eval, _ = _data()
    method.fit(X, Y)
    refit = _tensor(method.transform(X_eval))
    assert same_output(refit, first), (
        f"refitting with the same seed changes the output ({max_difference(refit, first)})")
    fresh = _build_seeded(method_cls, params)
    fresh.fit(X, Y)
    other = _tensor(fresh.transform(X_eval))
    assert same_output(other, first), f"a fresh instance with the same seed differs ({max_difference(other, first)})"


def check_pickle_roundtrip(method_cls: type, params: dict[str, Any] | None = None) -> None:
    """A pickled and unpickled fitted method gives the same output."""
    X, Y, X_eval, _ = _data()
    method = _build_seeded(method_cls, params)
    method.fit(X, Y)
    before = _tensor(method.transform(X_eval))
    restored = pickle.loads(pickle.dumps(method))
    after = _tensor(restored.transform(X_eval))
    assert same_output(after, before), f"the unpickled method gives another output ({max_difference(after, before)})"


# beats_floor's margin, fixed a priori: on a rotation plus 5% noise, a method that uses the
# correspondence removes most of the no-translation error (the reference methods leave at most 10%
# of it over many data seeds), while a map that ignores it does not (random-ortho leaves 50-120%).
FLOOR_MARGIN = 0.25


def check_beats_floor(method_cls: type, params: dict[str, Any] | None = None) -> str | None:
    """On spaces related by a rotation plus noise, an MSE at most FLOOR_MARGIN (a quarter) of no
    translation's (pad/truncate): beating the floor by chance, without the correspondence, fails."""
    if getattr(method_cls, "method_name", None) == FLOOR:
        return f"skipped: {FLOOR!r} is the floor itself"
    mse, floor = floor_ratio_inputs(method_cls, params, *_data())
    assert mse <= FLOOR_MARGIN * floor, (f"MSE {mse:.4g} is {mse / floor:.2f} of the no-translation floor {floor:.4g}; "
                                         f"a method that uses the anchors' correspondence stays under {FLOOR_MARGIN}")
    return f"MSE {mse:.3g} = {mse / floor:.3f} of the floor {floor:.3g}"


def floor_ratio_inputs(method_cls: type, params: dict[str, Any] | None, X: torch.Tensor, Y: torch.Tensor,
                       X_eval: torch.Tensor, Y_eval: torch.Tensor, seed: int = 0) -> tuple[float, float]:
    """(the method's MSE, no translation's MSE) on the evaluation pair, the method fitted on (X, Y)."""
    method = _build_seeded(method_cls, params, seed)
    method.fit(X, Y)
    output = _tensor(method.transform(X_eval)).to(Y_eval.dtype)
    assert output.shape == Y_eval.shape, f"output shape {tuple(output.shape)}, expected {tuple(Y_eval.shape)}"
    mse = torch.mean((output - Y_eval) ** 2).item()
    floor = torch.mean((pad_or_truncate(X_eval, Y_eval.shape[1]) - Y_eval) ** 2).item()
    return mse, floor


def check_fit_many(method_cls: type, params: dict[str, Any] | None = None) -> str | None:
    """A fit_many the runner uses (fits_in_batches), on anchor sets of different sizes, gives one
    distinct fitted method per set, each translating as a fresh instance fitted on that set alone,
    and leaves its inputs as it found them."""
    if not fits_in_batches(method_cls):
        return "not used: the runner fits each cell alone (fit_many not overridden, or the method takes a seed)"
    X, Y, X_eval, _ = _data()
    sizes = (N_ANCHORS, N_ANCHORS // 2, 3 * N_ANCHORS // 4)
    Xs, Ys = [X[:n].clone() for n in sizes], [Y[:n].clone() for n in sizes]
    copies = [t.clone() for t in Xs + Ys]
    fitted = _build(method_cls, params).fit_many(Xs, Ys)
    assert all(torch.equal(a, b) for a, b in zip(Xs + Ys, copies)), "fit_many modified its anchor tensors in place"
    assert isinstance(fitted, list) and len(fitted) == len(sizes), (
        f"fit_many on {len(sizes)} anchor sets returned {type(fitted).__name__}"
        f"{f' of length {len(fitted)}' if isinstance(fitted, list) else ''};"
        " it must return a list with one fitted method per set")
    assert len({id(m) for m in fitted}) == len(sizes), "fit_many returned the same object for several anchor sets"
    for n, method, X_n, Y_n in zip(sizes, fitted, copies[: len(sizes)], copies[len(sizes):]):
        alone = _tensor(_build(method_cls, params).fit(X_n.clone(), Y_n.clone()).transform(X_eval.clone()))
        together = _tensor(method.transform(X_eval.clone()))
        assert same_output(together, alone), (
            f"the method fitted by fit_many on {n} anchors differs from one fitted on them alone"
            f" ({max_difference(together, alone)})")
    return None


def check_fit_independent(method_cls: type, params: dict[str, Any] | None = None) -> None:
    """A fit does not depend on earlier fits in the same process (no anchors pooled in module or
    class state): fitting a new instance on anchor set B after another instance was fitted on A
    gives what B gave first. `bench check` runs each rule in a fresh process, so there the first
    fit on B is a fit in a fresh process."""
    X_a, Y_a = make_rotation_pair(N_ANCHORS, DIM, DIM, seed=11)  # two anchor sets, neither the other rules' one
    X_b, Y_b = make_rotation_pair(N_ANCHORS, DIM, DIM, seed=7)
    _, _, X_eval, _ = _data()

    def fitted_on_b() -> torch.Tensor:
        # the same global RNG state for both fits: randomness is seed_reproducible's business, not this rule's
        numpy_state = np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            np.random.seed(0)
            method = _build_seeded(method_cls, params)
            method.fit(X_b.clone(), Y_b.clone())
            output = _tensor(method.transform(X_eval.clone()))
        np.random.set_state(numpy_state)
        return output

    first = fitted_on_b()
    _build_seeded(method_cls, params).fit(X_a.clone(), Y_a.clone())
    after = fitted_on_b()
    assert same_output(after, first), (
        f"a fit on anchor set B changes after another instance was fitted on A ({max_difference(after, first)}): "
        "a fit must depend on its own anchors only, not on state kept in the module or the class")


TRANSFORM_CALLS = 200


def check_transform_independent(method_cls: type, params: dict[str, Any] | None = None) -> None:
    """transform does not depend on earlier calls: the 1st and the 200th call on the same input agree
    (no adaptation to the evaluation rows a method has been shown)."""
    X, Y, X_eval, _ = _data()
    method = _build_seeded(method_cls, params)
    method.fit(X, Y)
    first = _tensor(method.transform(X_eval.clone()))
    for _ in range(TRANSFORM_CALLS - 2):
        method.transform(X_eval.clone())
    last = _tensor(method.transform(X_eval.clone()))
    assert same_output(last, first), (
        f"call {TRANSFORM_CALLS} of transform differs from call 1 on the same input ({max_difference(last, first)}): "
        "transform must not learn from the rows it is given")


def check_pairings(method_cls: type, params: dict[str, Any] | None = None) -> str:
    """`pairings` (the correspondence protocols the method fits) is a frozenset of names from
    bench.method.PAIRINGS, "paired" among them: every method fits paired anchors with fit."""
    declared = getattr(method_cls, "pairings", None)
    assert isinstance(declared, frozenset), (
        f"pairings is a {type(declared).__name__}: declare a frozenset class attribute, "
        f"e.g. pairings = frozenset({{'paired', 'unpaired'}})")
    unknown = sorted(str(p) for p in declared - set(PAIRINGS))
    assert not unknown, f"pairings declares {unknown}, which are not protocols (bench.method.PAIRINGS: {PAIRINGS})"
    assert "paired" in declared, "pairings must contain 'paired': every method fits paired anchors with fit"
    return "declares " + ", ".join(p for p in PAIRINGS if p in declared)


UNPAIRED_ROWS = (N_ANCHORS - 8, N_ANCHORS + 8)  # the target side's rows: never the source's count
PARTIAL_KNOWN = N_ANCHORS // 4  # the known pairs of a partial fit


def check_fit_unpaired(method_cls: type, params: dict[str, Any] | None = None) -> str:
    """A method whose pairings declare partial or unpaired overrides fit_unpaired; for each declared
    protocol (unpaired: known = 0; partial: known = PARTIAL_KNOWN), fit_unpaired on n source rows and
    n' != n target rows returns self, and transform then gives a finite (m, dy) output, for dx < dy,
    dx = dy and dx > dy. A method that declares neither is never asked (the runner never calls it)."""
    # a malformed declaration is the pairings rule's business; here it declares what the runner reads of it
    protocols = [p for p in declared_pairings(method_cls) if p != "paired"]
    if not protocols:
        return "not asked: pairings declares neither partial nor unpaired, so the runner never calls fit_unpaired"
    owner = next(klass for klass in method_cls.__mro__ if "fit_unpaired" in vars(klass))
    assert owner is not Method, (
        f"pairings declares {' and '.join(protocols)}, but fit_unpaired is bench.method.Method's, which raises: "
        f"override fit_unpaired(X, Y, known) or declare only 'paired'")
    for protocol in protocols:
        known = 0 if protocol == "unpaired" else PARTIAL_KNOWN
        for (dx, dy), n_y in zip(DIM_CASES, (*UNPAIRED_ROWS, UNPAIRED_ROWS[0])):
            X, Y, X_eval = _unpaired_data(dx, dy, N_ANCHORS, n_y, known)
            case = f"{protocol} (known={known}), {N_ANCHORS} source rows, {n_y} target rows, dx={dx}, dy={dy}"
            method = _build_seeded(method_cls, params)
            returned = method.fit_unpaired(X, Y, known=known)
            assert returned is method, f"{case}: fit_unpaired returned {type(returned).__name__}, not self"
            output = _tensor(method.transform(X_eval))
            assert tuple(output.shape) == (N_EVAL, dy), (
                f"{case}: output shape {tuple(output.shape)}, expected {(N_EVAL, dy)}")
            bad = (~torch.isfinite(output)).sum().item()
            assert bad == 0, f"{case}: {bad} of {output.numel()} output values are NaN or inf"
    return f"fits {' and '.join(protocols)}"


def _unpaired_data(dx: int, dy: int, n_x: int, n_y: int, known: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """X (n_x, dx), Y (n_y, dy) and X_eval (N_EVAL, dx): rows i < known of X and Y are pairs (spaces
    related by a rotation, as the other rules' data), the other rows of each side are samples of their own."""
    total = n_x + n_y - known + N_EVAL
    X_all, Y_all = make_rotation_pair(total, dx, dy, seed=dx * 100 + dy + 1)
    X = X_all[:n_x]  # (n_x, dx): rows < known paired, then source-only samples
    Y = torch.cat([Y_all[:known], Y_all[n_x : n_x + n_y - known]])  # (n_y, dy): other samples after the pairs
    return X, Y, X_all[total - N_EVAL :]


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # arrays and tensors compare elementwise
        return False


def _equal_params(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(a[k] is b[k] or _equal(a[k], b[k]) for k in a)


Rule = Callable[..., str | None]  # check_<rule>(cls, params=None) -> an optional note


def named_rules(*checks: Rule) -> list[tuple[str, Rule]]:
    """(rule id, function) pairs in the given order (the order `bench check` prints); a rule's id
    is its function's name without the `check_` prefix."""
    pairs = []
    for check in checks:
        name = check.__name__
        if not name.startswith("check_"):
            raise ValueError(f"a rule's function is named check_<rule>, not {name!r}")
        pairs.append((name.removeprefix("check_"), check))
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError("two rules share a name")
    return pairs


RULES: list[tuple[str, Rule]] = named_rules(
    check_params_roundtrip, check_not_fitted, check_fit_returns_self, check_output_shape, check_output_finite,
    check_inputs_unchanged, check_rows_independent, check_output_type, check_seed_reproducible, check_pickle_roundtrip,
    check_beats_floor, check_fit_many, check_fit_independent, check_transform_independent, check_pairings,
    check_fit_unpaired,
)


def run_checks(method_cls: type, params: dict[str, Any] | None = None,
               rules: list[tuple[str, Rule]] | None = None) -> list[CheckResult]:
    """Run every rule (RULES, or bench.merger_checks.RULES for a merger); a rule that raises
    anything (a crash in fit included) is a failed rule.

    A rule is a function check_<rule>(method_cls, params=None) that raises AssertionError (with a
    message saying what to fix) on a violation and returns an optional note when it holds;
    named_rules turns functions into (rule id, function) pairs. A reference method keeps them all:

    >>> results = run_checks(resolve_method("ortho"))
    >>> len(results) == len(RULES), all(r.passed for r in results)
    (True, True)
    >>> [r.rule for r in results][:4]
    ['params_roundtrip', 'not_fitted', 'fit_returns_self', 'output_shape']
    >>> next(r.message for r in results if r.rule == "beats_floor")  # doctest: +ELLIPSIS
    'MSE ... = ... of the floor ...'

    A method whose fit forgets to return self fails that rule, with the reason:

    >>> class NoSelf(Method):
    ...     def fit(self, X: torch.Tensor, Y: torch.Tensor) -> None:
    ...         self.map_ = torch.linalg.lstsq(X, Y).solution
    ...     def transform(self, X: torch.Tensor) -> torch.Tensor:
    ...         return X @ self.map_
    >>> run_checks(NoSelf, rules=named_rules(check_fit_returns_self))
    [CheckResult(rule='fit_returns_self', passed=False, message='fit returned NoneType, not self')]
    """
    results = []
    with _single_threaded():
        for rule, check in RULES if rules is None else rules:
            try:
                note = check(method_cls, params)
            except AssertionError as error:
                results.append(CheckResult(rule, False, str(error) or "assertion failed"))
            except Exception as error:
                results.append(CheckResult(rule, False, f"{type(error).__name__}: {error}"))
            else:
                results.append(CheckResult(rule, True, note or ""))
    return results


@contextmanager
def _single_threaded() -> Iterator[None]:
    # the suite's problems are tiny: intra-op threads only add OpenMP barriers, which stall (a
    # hundredfold slower, measured) when other processes keep the cores busy
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def resolve_method(name_or_path: str) -> type:
    """A registered method's class, by name or by the path of a submission folder."""
    path = Path(name_or_path)
    if path.is_dir():
        names = load_submission(path)
        if len(names) != 1:
            found = ", ".join(names) or "none"
            raise ValueError(f"{path} must register exactly one method with @register_method, found: {found}")
        # not get_method: that would import every submission; registered: load_submission registered it
        return METHODS.registered(names[0]).cls  # type: ignore[union-attr]
    if path.exists() or "/" in name_or_path or "\\" in name_or_path:
        raise ValueError(f"{name_or_path!r} is not a submission folder")
    return get_method(name_or_path).cls
