"""Correspondence protocols: how a cell's source anchors and target anchors correspond.

Every cell draws its anchor samples from the fit split (bench.anchors.sample_anchors) and then
gives the source side and the target side as its protocol says. Its `pairing` label is stored
in its row and, unless "paired", is part of the row's key:

- "paired": row i of both sides is the same sample (the seed papers' setting);
- "shuffled": a paired cell's null: the same anchors, the target side in a seeded derangement;
- "noisy:<p>": a fraction p of the pairs mismatched: a seeded derangement among round(p n) of
  them (at least 2 when p > 0); the method is not told which, nor how many;
- "partial:<k>": k known pairs first, then n - k samples of each side with no partner given; the
  two sides' unpaired samples are different samples;
- "unpaired": n source samples and n other target samples; no pair at all (k = 0).

A method fits the first three with fit(X, Y); partial and unpaired cells go to fit_unpaired(X, Y,
known=k), and only to methods that declare them (bench.method.Method.pairings).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

PROTOCOLS = ("paired", "noisy", "partial", "unpaired")  # what a task's anchors.pairing can ask for
NULL = "shuffled"  # a paired cell's null (bench.task.Task.plan with nulls)
_LABEL = re.compile(r"^(paired|shuffled|unpaired)$|^noisy:(\d+(?:\.\d+)?(?:e-?\d+)?)$|^partial:(\d+)$")


@dataclass(frozen=True)
class Pairing:
    protocol: str  # PROTOCOLS, or NULL
    amount: float | int | None = None  # noisy: the fraction p mismatched; partial: the known pairs k

    @property
    def label(self) -> str:
        """The row's `pairing` value, e.g. "noisy:0.25"; noisy with p = 0 is "paired"."""
        if self.protocol == "noisy":
            return "paired" if self.amount == 0 else f"noisy:{self.amount:g}"
        if self.protocol == "partial":
            return f"partial:{self.amount}"
        return self.protocol

    @classmethod
    def parse(cls, label: str) -> Pairing:
        """The Pairing of a row's label; raises ValueError for anything else."""
        match = _LABEL.match(label) if isinstance(label, str) else None
        if match is None:
            raise ValueError(f"pairing {label!r} is not paired, shuffled, noisy:<p>, partial:<k> or unpaired")
        named, fraction, known = match.groups()
        if fraction is not None:
            if not 0 < float(fraction) <= 1:
                raise ValueError(f"pairing {label!r}: the mismatched fraction must be in (0, 1]")
            return cls("noisy", float(fraction))
        return cls("partial", int(known)) if known is not None else cls(named)

    @property
    def needs(self) -> str:
        """What a method must declare in `pairings` to be given this cell: "paired" for those fit fits."""
        return self.protocol if self.protocol in ("partial", "unpaired") else "paired"

    @property
    def known(self) -> int | None:
        """fit_unpaired's `known` (k for partial, 0 for unpaired), or None: the cell is fitted with fit."""
        return {"partial": self.amount, "unpaired": 0}.get(self.protocol)  # type: ignore[return-value]

    def drawn(self, n: int) -> int:
        """How many distinct samples a cell of n anchors per side draws: each side's unpaired ones differ."""
        known = self.known
        return n if known is None else 2 * n - known

    def sides(self, drawn: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(source samples (n,), target samples (n,)) from the `drawn(n)` samples of the cell's draw."""
        if len(drawn) != self.drawn(n):
            raise ValueError(f"{self.label} with {n} anchors per side needs {self.drawn(n)} samples, not {len(drawn)}")
        if self.protocol == "paired":
            return drawn, drawn
        if self.protocol == NULL:
            return drawn, drawn[shuffled_pairs(n, seed)]
        if self.protocol == "noisy":
            return drawn, drawn[mismatched(n, float(self.amount or 0), seed)]
        known = int(self.known or 0)
        return drawn[:n], np.concatenate([drawn[:known], drawn[n:]])  # (n,), (known + n - known,)


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) a random permutation with no fixed point when n > 1 (each element takes its successor
    in a random cycle), so that no anchor keeps its partner."""
    order = rng.permutation(n)
    return np.roll(order, 1)[np.argsort(order)] if n > 1 else order


def shuffled_pairs(n: int, seed: int) -> np.ndarray:
    """(n,) the permutation of a null cell's target anchors, seeded: the null is reproducible."""
    return derangement(n, np.random.default_rng([seed, 0x5EED]))  # its own stream, apart from the sampling's


def mismatched(n: int, fraction: float, seed: int) -> np.ndarray:
    """(n,) the target order of a noisy cell: round(fraction n) positions (at least 2 when fraction > 0,
    as one pair cannot be mismatched alone) deranged among themselves, the others kept."""
    rng = np.random.default_rng([seed, 0xBAD])  # apart from the sampling's and the null's streams
    count = min(n, max(2, round(fraction * n))) if fraction > 0 else 0
    chosen = np.sort(rng.choice(n, size=count, replace=False))  # (count,) the mismatched positions
    order = np.arange(n)
    order[chosen] = chosen[derangement(count, rng)]
    return order
