"""The plug-in families: what a task's `methods` can name, and what `bench check` and `bench
submit` hold to a contract. Each family has a base class, a registry filled from its folders, a
stand-in for a folder that fails to import, and its conformance rules:

- method (bench/method.py, submissions/): translation methods, run by the stitching kinds;
- merger (bench/merging.py, mergers/): mergers, run by the merging kind.

The sandbox (bench/sandbox.py, bench/worker.py), `bench check`, `bench submit` and `bench list`
go through FAMILIES, so none of them branches on a family. A task kind names its family's
registry (TaskKind.plugins).
"""
from __future__ import annotations

from dataclasses import dataclass

from bench import checks, merger_checks
from bench.checks import Rule
from bench.merging import MERGERS, Merger, UnimportableMerger
from bench.method import METHODS, Method, MethodInfo, Unimportable
from bench.registry import Registry


@dataclass(frozen=True)
class Family:
    name: str  # "method": what a request or a description names, and each row's plug-in word
    plural: str  # "methods": `bench list <plural>`
    registry: Registry[MethodInfo]
    base: type  # the class every plug-in of the family subclasses
    unimportable: type  # registered in place of a folder whose modules fail to import
    rules: list[tuple[str, Rule]]  # the conformance suite, (rule id, check function)

    @property
    def rule_names(self) -> list[str]:
        return [rule for rule, _ in self.rules]


FAMILIES: dict[str, Family] = {family.name: family for family in (
    Family("method", "methods", METHODS, Method, Unimportable, checks.RULES),
    Family("merger", "mergers", MERGERS, Merger, UnimportableMerger, merger_checks.RULES),
)}


def family_of(registry: Registry[MethodInfo]) -> Family:
    """The family whose registry this is (e.g. a task kind's TaskKind.plugins)."""
    return next(family for family in FAMILIES.values() if family.registry is registry)
