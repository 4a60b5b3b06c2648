"""docs/findings.md: does our data agree with the papers' claims? Generated from results/ alone,
with the leaderboard (`bench leaderboard`), so it can never disagree with the stored numbers.

Each claim is checked on every task where it applies, at the task's largest anchor count unless
said otherwise; "agrees" is decided by the rule written next to the claim, not by hand. Under a
claim with a disagreeing row, **Why** shows what `bench causes` measured (docs/causes.json) and the
cause its figures name, or one line saying why there is nothing to show (no file, or one measured
on other results than these).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.compare import FLOOR, NATIVE, RELATIVE
from bench.datasets import load_dataset
from bench.method import REPO_ROOT
from bench.pairing import NULL, Pairing
from bench.report.plots import PLOTS, curve_plot, method_colours
from bench.report.rows import current_rows
from bench.report.stats import fmt, largest_count, native_value, summarise
from bench.report.tables import is_cross_modal, task_modalities
from bench.results import Result, ResultStore
from bench.task import Task, discover_tasks

# docs/causes.json: the measured reasons behind the disagreements, written by `bench causes` (bench/causes.py),
# read here as data: rendering the report measures nothing and imports neither bench.causes nor an encoder
CAUSES = REPO_ROOT / "docs" / "causes.json"
CAUSES_VERSION = 1  # bump when the file's layout changes: an older file is then reported, not misread


def _value(summary: dict, method: str, n: float | None) -> tuple[float, float]:
    return summary.get((method, n), (float("nan"), float("nan")))


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("agrees" if ok else "**disagrees**")


def _curve(summary: dict, counts: list[int], method: str) -> str:
    """`method`'s mean by anchor count, e.g. "10: 0.512, 100: 0.871"."""
    return ", ".join(f"{n}: {summary[(method, n)][0]:.3f}" for n in counts if (method, n) in summary)


def absolute_near_chance(frame: pd.DataFrame, tasks: list[Task]) -> list[str]:
    lines = ["## 1. No translation (`absolute`) is near chance",
             "Rule: absolute's accuracy is below 2x chance (1 / number of classes) while native is far above it.", "",
             "| task | absolute | chance | native | verdict |", "|---|---|---|---|---|"]
    for task in tasks:
        n = largest_count(frame, task)
        summary = summarise(frame, task, "accuracy")
        absolute = _value(summary, "absolute", n)
        chance = 1 / load_dataset(task.spec.dataset.name).n_classes
        lines.append(f"| {task.name} | {fmt(*absolute)} | {chance:.3f} | "
                     f"{fmt(native_value(frame, task, 'accuracy'), np.nan)} "
                     f"| {_verdict(absolute[0] < 2 * chance)} |")
    return lines


def ortho_vs_linear(frame: pd.DataFrame, tasks: list[Task], causes: Causes | None = None) -> list[str]:
    lines = ["## 2. On classification, `ortho` matches or beats `linear` and `affine`",
             "Rule: ortho's mean is at least the others' mean minus the larger 95% half-width, at the largest "
             "anchor count and at the task's smallest count.", "",
             "| task | n | ortho | linear | affine | verdict |", "|---|---|---|---|---|---|"]
    disagreeing: list[tuple[str, int]] = []
    for task in tasks:
        summary = summarise(frame, task, "accuracy")
        counts = sorted({n for m, n in summary if m == "ortho"})
        for n in sorted({counts[0], counts[-1]}) if counts else []:
            ortho, linear, affine = (_value(summary, m, n) for m in ("ortho", "linear", "affine"))
            slack = np.nanmax([ortho[1], linear[1], affine[1], 0])
            ok = ortho[0] >= max(linear[0], affine[0]) - slack
            lines.append(f"| {task.name} | {n} | {fmt(*ortho)} | {fmt(*linear)} | {fmt(*affine)} | {_verdict(ok)} |")
            disagreeing += [] if ok else [(task.name, n)]
    return lines + _why(causes, disagreeing, why_ortho)


def saturation(frame: pd.DataFrame, tasks: list[Task]) -> list[str]:
    lines = ["## 3. Accuracy saturates once the anchors reach the embedding dimension",
             "Rule: for ortho, the first anchor count >= the source dimension reaches 98% of the accuracy at the "
             "largest count. (Least squares, `linear`, is shown too: near n = d it is an interpolating fit "
             "and dips.)", "",
             "| task | dim | method: accuracy by anchors | verdict |", "|---|---|---|---|"]
    for task in tasks:
        summary = summarise(frame, task, "accuracy")
        counts = sorted({n for m, n in summary if m == "ortho"})
        widths = {int(e.split("-w")[1].split("-")[0]) for pair in task.pairs() for e in pair if "-w" in e}
        if len(counts) < 3 or len(widths) != 1:
            continue
        dim = widths.pop()
        at_dim = next((n for n in counts if n >= dim), None)
        ok = None if at_dim is None else summary[("ortho", at_dim)][0] >= 0.98 * summary[("ortho", counts[-1])][0]
        lines.append(f"| {task.name} | {dim} | ortho: {_curve(summary, counts, 'ortho')}"
                     f"<br>linear: {_curve(summary, counts, 'linear')} | {_verdict(ok)} |")
    return lines


def normalisation(frame: pd.DataFrame, tasks: list[Task]) -> list[str]:
    lines = ["## 4. Standard scaling beats L2 normalisation (most clearly on text)",
             "Rule: for each method, standard scaling's mean is at least L2's mean minus the larger half-width.", "",
             "| task | method | standard | l2 | none | verdict |", "|---|---|---|---|---|---|"]
    for task in tasks:
        n = largest_count(frame, task)
        summary = summarise(frame, task, "accuracy")
        for method in ("ortho", "linear", "affine"):
            standard, l2, none = (_value(summary, f"{method}[preprocessing={p}]", n)
                                  for p in ("standard", "l2", "none"))
            if np.isnan(standard[0]):
                continue
            ok = standard[0] >= l2[0] - np.nanmax([standard[1], l2[1], 0])
            lines.append(f"| {task.name} | {method} | {fmt(*standard)} | {fmt(*l2)} | {fmt(*none)} | {_verdict(ok)} |")
    return lines


def irp_vs_ortho(frame: pd.DataFrame, tasks: list[Task]) -> list[str]:
    lines = ["## 5. Inverse relative projection (`irp`) against `ortho`",
             "The IRP paper reports IRP competitive with (not better than) direct alignment when the decoder is "
             "scale-invariant. Rule: irp within 0.05 accuracy of ortho.", "",
             "| task | ortho | irp | verdict |", "|---|---|---|---|"]
    for task in tasks:
        n = largest_count(frame, task)
        summary = summarise(frame, task, "accuracy")
        ortho, irp = _value(summary, "ortho", n), _value(summary, "irp", n)
        if np.isnan(irp[0]):
            continue
        lines.append(f"| {task.name} | {fmt(*ortho)} | {fmt(*irp)} | {_verdict(irp[0] >= ortho[0] - 0.05)} |")
    return lines


def irp_regulariser(frame: pd.DataFrame, tasks: list[Task], causes: Causes | None = None) -> list[str]:
    """The ablation tasks that run irp both ways: the regulariser chosen on the anchors, and plain."""
    lines = ["## 5b. irp's inversion: plain least squares against a regulariser chosen on the anchors",
             "The IRP paper inverts the relative projection by plain least squares (`irp-plain`, alpha = 0); "
             "`irp` chooses a ridge on its anchors by cross-validation. Rule: plain least squares within 0.05 "
             "accuracy of the cross-validated inversion, at every anchor count.", "",
             "| task | anchors | irp-plain | irp | verdict |", "|---|---|---|---|---|"]
    disagreeing: list[tuple[str, int]] = []
    for task in tasks:
        summary = summarise(frame, task, "accuracy")
        for n in sorted({count for method, count in summary if method == "irp-plain"}):
            plain, chosen = _value(summary, "irp-plain", n), _value(summary, "irp", n)
            ok = plain[0] >= chosen[0] - 0.05
            lines.append(f"| {task.name} | {n} | {fmt(*plain)} | {fmt(*chosen)} | {_verdict(ok)} |")
            disagreeing += [] if ok else [(task.name, n)]
    return lines + _why(causes, disagreeing, why_irp)


def reconstruction_errors(frame: pd.DataFrame, tasks: list[Task], causes: Causes | None = None) -> list[str]:
    lines = ["## 6. On reconstruction, the linear-family methods give close errors",
             "The semantic-alignment paper stitches pairs of autoencoders and finds affine, linear, l-ortho and ortho "
             "alike (reconstruction MSE 0.02 on MNIST). Rule: the largest pixel MSE of the four is at most 1.5x the "
             "smallest.", "",
             "| task | affine | linear | l-ortho | ortho | native | verdict |", "|---|---|---|---|---|---|---|"]
    disagreeing: list[tuple[str, int]] = []
    for task in tasks:
        n = largest_count(frame, task)
        summary = summarise(frame, task, "pixel_mse")
        values = [_value(summary, m, n) for m in ("affine", "linear", "l-ortho", "ortho")]
        means = [v[0] for v in values]
        ok = None if np.isnan(means).any() else max(means) <= 1.5 * min(means)
        cells = " | ".join(fmt(*v, digits=4) for v in values)
        lines.append(f"| {task.name} (n={n}) | {cells} | "
                     f"{fmt(native_value(frame, task, 'pixel_mse'), np.nan, digits=4)} | {_verdict(ok)} |")
        disagreeing += [(task.name, n)] if ok is False and n is not None else []
    return lines + _why(causes, disagreeing, why_reconstruction)


def merging_claims(frame: pd.DataFrame, tasks: list[Task], causes: Causes | None = None) -> list[str]:
    lines = ["## 7. Merging: relative aggregation (`rlsa`) against naive merging",
             "\"From Charts to Atlas\" reports (a) CKA above 0.7 between the RLSA space and the end-to-end space, "
             "(b) accuracy up to 33 points above naive merging, (c) higher class separability than both the "
             "end-to-end and the naive space. Rules, per partition at the largest anchor count: (a) rlsa's "
             "cka_linear > 0.7; (b) rlsa's accuracy is at least naive's minus the larger 95% half-width; (c) rlsa's "
             "separability is above both the end-to-end encoder's and naive's.", "",
             "| task | partition | rlsa CKA (a) | rlsa / naive accuracy (b) | "
             "rlsa / naive / end-to-end separability (c) |",
             "|---|---|---|---|---|"]
    disagreeing: list[tuple[str, str]] = []  # (task, partition) where (b) disagrees
    for task in tasks:
        n = largest_count(frame, task)
        for how in [partition for partition, _ in task.pairs()]:  # a merging task's cells: (partition, reference)
            part = frame[frame.source == how]
            cka, accuracy, separability = (summarise(part, task, m) for m in ("cka_linear", "accuracy", "separability"))
            rlsa_cka = _value(cka, "rlsa", n)
            rlsa_acc, naive_acc = _value(accuracy, "rlsa", n), _value(accuracy, "naive", n)
            rlsa_sep, naive_sep = _value(separability, "rlsa", n), _value(separability, "naive", n)
            e2e_sep = native_value(frame, task, "separability")
            a = rlsa_cka[0] > 0.7
            b = rlsa_acc[0] >= naive_acc[0] - np.nanmax([rlsa_acc[1], naive_acc[1], 0])
            c = rlsa_sep[0] > max(naive_sep[0], e2e_sep)
            lines.append(f"| {task.name} | {how} | {fmt(*rlsa_cka)} {_verdict(a)} | "
                         f"{fmt(*rlsa_acc)} / {fmt(*naive_acc)} {_verdict(b)} "
                         f"| {fmt(*rlsa_sep)} / {fmt(*naive_sep)} / {e2e_sep:.3f} {_verdict(c)} |")
            disagreeing += [] if b else [(task.name, how)]
    return lines + _why(causes, disagreeing, why_merging)


# ---------------------------------------------------------------------------------------------
# The correspondence protocols (bench/pairing.py), the relative baseline and cross-modal tasks: tasks chosen by
# their spec, each listed ("not measured yet" until it has rows). The protocols' tables read protocol_frame's rows.


def protocol_frame(rows: list[Result], tasks: dict[str, Task], paired: pd.DataFrame) -> pd.DataFrame:
    """The current rows of every protocol label stored but the null's, labelled in a `pairing` column
    (`paired`: the paired label's, already read)."""
    labels = sorted({r.pairing for r in rows} - {"paired", NULL})
    frames = [paired.assign(pairing="paired"), *(current_rows(rows, tasks, pairing=label)[0].assign(pairing=label)
                                                 for label in labels)]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _accuracy(frame: pd.DataFrame, task: Task, n: int | None, label: str | None = None
              ) -> dict[str, tuple[float, float]]:
    """method -> (mean, 95% half-width) of accuracy at n anchors (summarise), of one protocol label's rows
    when given; {} when there are none."""
    if frame.empty or n is None:
        return {}
    rows = frame if label is None else frame[frame.pairing == label]
    return {m: value for (m, count), value in summarise(rows, task, "accuracy").items() if count == n}


def _beats(a: tuple[float, float], b: tuple[float, float]) -> bool | None:
    """a's 95% interval lies above b's (a's mean minus its half-width above b's mean plus b's; the half-width
    of one seed counts as 0); None when either is not measured."""
    if np.isnan(a[0]) or np.isnan(b[0]):
        return None
    return bool(a[0] - np.nan_to_num(a[1]) > b[0] + np.nan_to_num(b[1]))


def _unmeasured(task: Task, width: int) -> str:
    """A table row of `width` columns naming the task as not measured yet."""
    return _table_row((task.name,), None, lambda _: [], width).replace("not measured", "not measured yet")


NAN = (float("nan"), float("nan"))
NOISY_CLAIM, NOISY_FALL = 0.25, 0.5  # the claim's fraction of mismatched pairs; each method's fall: p = 0 to this
Figure = Callable[[Task, dict[tuple[str, float], tuple[float, float]]], str]  # draws a task's curves; its link


def noisy_anchors(frame: pd.DataFrame, tasks: list[Task], figure: Figure | None = None,
                  causes: Causes | None = None) -> list[str]:
    """The tasks whose anchors.pairing lists noisy fractions: accuracy per method against p (`frame`:
    protocol_frame's rows), each method's fall from p = 0 to NOISY_FALL, and the claim at NOISY_CLAIM."""
    tasks = [t for t in tasks if t.spec.anchors.pairing.noisy]
    lines = ["## 8. Noisy anchors: a robust method (`robust-ortho`) beats `ortho` at p = 0.25",
             "A fraction p of the anchor pairs is mismatched, and no method is told which (p = 0: the paired cells). "
             "Accuracy at the task's largest anchor count; fall: the mean at p = 0 minus the mean at "
             f"p = {NOISY_FALL:g}. Rule: robust-ortho's 95% interval lies above ortho's at p = {NOISY_CLAIM:g} "
             "(its mean minus its half-width above ortho's mean plus ortho's half-width).", ""]
    verdicts = ["| task | robust-ortho | ortho | verdict |", "|---|---|---|---|"]
    disagreeing: list[str] = []
    for task in tasks:
        n, pairing = max(task.spec.anchors.counts), task.spec.anchors.pairing
        fractions = [0.0] * pairing.paired + sorted(pairing.noisy)
        curves = {(m, p): value for p in fractions  # Pairing("noisy", 0).label is "paired"
                  for m, value in _accuracy(frame, task, n, Pairing("noisy", p).label).items()}
        if not curves:
            verdicts.append(_unmeasured(task, 4))
            continue
        lines += [f"**{task.name}** (n = {n}):", "",
                  "| method | " + " | ".join(f"p = {p:g}" for p in fractions) + f" | fall to p = {NOISY_FALL:g} |",
                  "|---" * (len(fractions) + 2) + "|"]
        for method in sorted({m for m, _ in curves}):
            fall = _value(curves, method, 0.0)[0] - _value(curves, method, NOISY_FALL)[0]
            lines.append(f"| {method} | " + " | ".join(fmt(*_value(curves, method, p)) for p in fractions)
                         + f" | {_number(fall, '+.3f')} |")
        lines += ["", figure(task, curves), ""] if figure is not None else [""]
        robust, ortho = _value(curves, "robust-ortho", NOISY_CLAIM), _value(curves, "ortho", NOISY_CLAIM)
        verdicts.append(f"| {task.name} | {fmt(*robust)} | {fmt(*ortho)} | {_verdict(_beats(robust, ortho))} |")
        disagreeing += [task.name] if _beats(robust, ortho) is False else []
    return lines + (verdicts if tasks else ["Not measured yet: no task lists noisy anchors."]) + _why(
        causes, disagreeing, no_cause_measured)


ANCHOR_FREE = "mini-vec2vec"  # the reference method for partial and unpaired anchors


def anchor_free(frame: pd.DataFrame, tasks: list[Task], causes: Causes | None = None) -> list[str]:
    """The tasks whose anchors.pairing lists partial or unpaired anchors: at each count, the anchor-free method
    under each protocol against absolute (unpaired cells) and paired ortho (`frame`: protocol_frame's rows)."""
    tasks = [t for t in tasks if t.spec.anchors.pairing.unpaired or t.spec.anchors.pairing.partial]
    lines = [f"## 9. Anchor-free translation (`{ANCHOR_FREE}`) beats `absolute` clearly on unpaired tasks",
             "At each count n, as many samples a side under each protocol: unpaired (no pair known), partial (k known "
             f"pairs, the other samples of each side with no partner) or paired. Rule, on every task with unpaired "
             f"cells: {ANCHOR_FREE}'s 95% interval on them lies above absolute's (its mean minus its half-width above "
             "absolute's mean plus absolute's half-width). Gap to paired: paired ortho's mean minus unpaired "
             f"{ANCHOR_FREE}'s.", ""]
    table = [f"| task | n | absolute | {ANCHOR_FREE} unpaired | {ANCHOR_FREE} partial | {ANCHOR_FREE} paired "
             "| ortho paired | gap to paired | verdict |", "|---" * 9 + "|"]
    disagreeing: list[tuple[str, int]] = []
    for task in tasks:
        pairing = task.spec.anchors.pairing
        labels = [p.label for p in pairing.protocols()]
        counts = sorted(task.spec.anchors.counts)
        by_label = {(label, n): _accuracy(frame, task, n, label) for label in labels for n in counts}
        if not any(by_label.values()):
            table.append(_unmeasured(task, 9))
            continue
        for n in counts:
            unpaired, paired = by_label.get(("unpaired", n), {}), by_label.get(("paired", n), {})
            absolute, free = unpaired.get(FLOOR, NAN), unpaired.get(ANCHOR_FREE, NAN)
            partial = "<br>".join(f"k = {k}: {fmt(*by_label[(Pairing('partial', k).label, n)].get(ANCHOR_FREE, NAN))}"
                                  for k in pairing.partial) or "–"
            ortho, gap = paired.get("ortho", NAN), paired.get("ortho", NAN)[0] - free[0]
            table.append(f"| {task.name} | {n} | {fmt(*absolute)} | {fmt(*free)} | {partial} | "
                         f"{fmt(*paired.get(ANCHOR_FREE, NAN))} | {fmt(*ortho)} | {_number(gap, '+.3f')} "
                         f"| {_verdict(_beats(free, absolute))} |")
            disagreeing += [(task.name, n)] if _beats(free, absolute) is False else []
    return lines + (table if tasks else ["Not measured yet: no task lists partial or unpaired anchors."]) + _why(
        causes, disagreeing, no_cause_measured)


def relative_vs_translation(frame: pd.DataFrame, tasks: list[Task], causes: Causes | None = None) -> list[str]:
    """The tasks with the relative baseline: it against ortho and the best translation method, at the task's
    smallest and largest anchor count, and plainly whether it beats translation."""
    tasks = [t for t in tasks if RELATIVE in t.spec.baselines]
    lines = ["## 10. Translation is at least as good as relative representations",
             f"`{RELATIVE}` is the harness's relative-representations baseline: the target's decoder fitted on its "
             "cosines to the cell's anchors, fed the source's; nothing is translated. The semantic-alignment paper "
             "(Maiorca et al.) reports translation at least as good. Rule: ortho's mean is at least relative's mean "
             "minus the larger 95% half-width, at the task's smallest and largest anchor count. Best translation: "
             f"the method other than `{FLOOR}` with the highest mean there.", ""]
    if not tasks:
        return lines + ["Not measured yet: no task scores the relative baseline."]
    lines += ["| task | n | relative | ortho | best translation | verdict |", "|---|---|---|---|---|---|"]
    ahead: list[str] = []  # "task (n = ...)" where relative's interval lies above the best translation's
    disagreeing: list[tuple[str, int]] = []
    measured = 0
    for task in tasks:
        counts = sorted({min(task.spec.anchors.counts), max(task.spec.anchors.counts)})
        summaries = {n: _accuracy(frame, task, n) for n in counts}
        if not any(RELATIVE in s for s in summaries.values()):
            lines.append(_unmeasured(task, 6))
            continue
        for n, summary in summaries.items():
            relative, ortho = summary.get(RELATIVE, NAN), summary.get("ortho", NAN)
            translations = {m: v for m, v in summary.items() if m not in (RELATIVE, FLOOR)}
            best = max(translations, key=lambda m: translations[m][0], default=None)
            ok = None if np.isnan([relative[0], ortho[0]]).any() else \
                ortho[0] >= relative[0] - np.nanmax([relative[1], ortho[1], 0])
            lines.append(f"| {task.name} | {n} | {fmt(*relative)} | {fmt(*ortho)} | "
                         f"{'–' if best is None else f'{best}: {fmt(*translations[best])}'} | {_verdict(ok)} |")
            disagreeing += [(task.name, n)] if ok is False else []
            beats = None if best is None else _beats(relative, translations[best])
            measured += beats is not None
            ahead += [f"{task.name} (n = {n})"] if beats else []
    why = _why(causes, disagreeing, no_cause_measured)
    if not measured:
        return lines + ["", "Whether relative representations beat translation: not measured yet."] + why
    return lines + ["", f"Plainly: relative representations beat translation (their 95% interval above the best "
                        f"translation method's) in {len(ahead)} of {measured} measured rows"
                        + (f": {', '.join(ahead)}." if ahead else "; translation is never beaten.")] + why


TEXT, IMAGE = "text", "image"  # the modalities the cross-modal claims compare (bench.encoders' declared ones)


def cross_modal(frame: pd.DataFrame, tasks: list[Task], causes: Causes | None = None) -> list[str]:
    """The tasks whose encoders read different modalities: accuracy per method text -> image against image
    -> text, per encoder for the best method across them, and whether a text encoder lifts a weak image decoder."""
    tasks = [t for t in tasks if is_cross_modal(t)]
    lines = ["## 11. Cross-modal stitching: text → image against image → text",
             "Accuracy at the task's largest anchor count. Per direction: each seed's mean over the direction's "
             "encoder pairs, then the mean ± 95% half-width over seeds. Per encoder: the method best over both "
             "directions, the encoder into the other modality's decoders and the decoder fed the other modality's "
             "encoders. The semantic-alignment paper finds that strong text encoders can lift a weak vision decoder. "
             "Rule: the weakest image decoder (lowest native accuracy) is lifted: some text encoder translated into "
             f"it, by some method but `{FLOOR}`, scores above its native accuracy by more than the stitched score's "
             "95% half-width.", ""]
    disagreeing: list[str] = []
    for task in tasks:
        n = None if frame.empty else largest_count(frame, task)
        if n is None:
            lines += [f"- {task.name}: not measured yet.", ""]
            continue
        modality = task_modalities(task)
        rows = frame[frame.task == task.name]
        source, target = rows.source.map(modality), rows.target.map(modality)
        crossing = (source != target) & source.notna() & target.notna()
        directions = {f"{a} → {b}": _accuracy(rows[(source == a) & (target == b)], task, n)
                      for a, b in ((TEXT, IMAGE), (IMAGE, TEXT))}
        methods = sorted({m for summary in directions.values() for m in summary})
        translations = [m for m in methods if m not in (FLOOR, RELATIVE)] or methods
        best = max(translations, key=lambda m: np.nanmean([s.get(m, NAN)[0] for s in directions.values()]))
        lines += [f"**{task.name}** (n = {n}):", "", "| method | " + " | ".join(directions) + " |", "|---|---|---|"]
        lines += [f"| {m} | " + " | ".join(fmt(*s.get(m, NAN)) for s in directions.values()) + " |" for m in methods]
        lines += ["", f"Per encoder, {best}:", "",
                  "| encoder | modality | native | as encoder | as decoder |", "|---|---|---|---|---|"]
        for encoder, kind in modality.items():
            out = _accuracy(rows[crossing & (rows.source == encoder)], task, n).get(best, NAN)
            into = _accuracy(rows[crossing & (rows.target == encoder)], task, n).get(best, NAN)
            lines.append(f"| {encoder} | {kind} | {_number(_native(rows, task, encoder))} | {fmt(*out)} "
                         f"| {fmt(*into)} |")
        lift, lifted = _lift(rows, task, n, modality)
        lines += ["", *lift, ""]
        disagreeing += [task.name] if lifted is False else []
    return (lines if tasks else lines + ["Not measured yet: no task stitches across modalities."]) + _why(
        causes, disagreeing, no_cause_measured)


def _native(rows: pd.DataFrame, task: Task, encoder: str) -> float:
    return native_value(rows[rows.target == encoder], task, "accuracy")


def _lift(rows: pd.DataFrame, task: Task, n: int,
          modality: dict[str, str | None]) -> tuple[list[str], bool | None]:
    """Per image decoder, the best text encoder translated into it against its native accuracy; the claim's
    verdict on the weakest one (None: not decided)."""
    lines = ["| image decoder | native | best text encoder into it | lifted |", "|---|---|---|---|"]
    lifted: dict[str, bool | None] = {}
    for decoder in (e for e, kind in modality.items() if kind == IMAGE):
        stitched = {(s, m): v for s, kind in modality.items() if kind == TEXT
                    for m, v in _accuracy(rows[(rows.source == s) & (rows.target == decoder)], task, n).items()
                    if m not in (FLOOR, RELATIVE)}  # translated into the decoder's own space
        top = max(stitched, key=lambda key: stitched[key][0], default=None)
        native = _native(rows, task, decoder)
        lifted[decoder] = None if top is None else _beats(stitched[top], (native, 0.0))
        lines.append(f"| {decoder} | {_number(native)} | "
                     f"{'–' if top is None else f'{top[0]} ({top[1]}): {fmt(*stitched[top])}'} | "
                     f"{ {None: 'n/a', True: 'yes', False: 'no'}[lifted[decoder]]} |")
    natives = {d: _native(rows, task, d) for d in lifted}
    weakest = min((d for d in natives if not np.isnan(natives[d])), key=natives.__getitem__, default=None)
    verdict = None if weakest is None else lifted[weakest]
    return lines + ["", "Verdict: n/a (no image decoder's native accuracy)." if weakest is None else
                    f"Verdict: {_verdict(verdict)} (the weakest image decoder: {weakest}, native "
                    f"{natives[weakest]:.3f})."], verdict


# ---------------------------------------------------------------------------------------------
# Why: the measured causes of the disagreements (docs/causes.json, from bench/causes.py)

# what each measured quantity is, and which way it hurts (+1: more of it is worse, -1: less of it is worse)
QUANTITIES = {
    "spectral_mismatch": ("spectral mismatch", "anisotropy that no rotation undoes", +1),
    "outside_span": ("variance outside the anchors' span", "anchors below the dimension", +1),
    "kappa": ("κ", "ill-conditioned anchors", +1),
    "non_orthogonality": ("least squares' distance from a rotation", "a least-squares map far from a rotation", +1),
    "map_agreement": ("agreement of l-ortho's map with ortho's", "l-ortho's map drifting from Procrustes'", -1),
}
MEASURED = "Measured on each cell's own anchors, standardised as the methods do; medians over pairs and seeds."
DEFINED = {
    "kappa": "κ: condition number of the source anchors' covariance, over the directions they span.",
    "spectral_mismatch": "Spectral mismatch: ‖σ(X) − σ(Y)‖ / ‖Y‖ of the two spaces' anchors, a lower bound on any "
                         "orthogonal map's relative error (Mirsky's inequality).",
    "outside_span": "Variance outside the span: the share of the source's evaluation embeddings that the anchors do "
                    "not span, which no fit on them has seen.",
    "map_agreement": "Agreement: tr(P^T Q) / k between l-ortho's map P and ortho's Q, 1 for the same map.",
    "loss": "Losses are relative to the better method's score.",
}


def _legend(*terms: str) -> str:
    return " ".join([MEASURED, *(DEFINED[term] for term in terms)])


class Causes:
    """docs/causes.json as read for one rendering: its figures, or why there are none to show."""

    def __init__(self, data: dict[str, Any] | None, problem: str | None = None):
        self.data, self.problem = data, problem

    @classmethod
    def load(cls, path: Path, frame: pd.DataFrame) -> Causes:
        if not path.exists():
            return cls(None, f"`{path.name}` is missing (run `bench causes`)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            return cls(None, f"`{path.name}` cannot be read ({error}; run `bench causes`)")
        if not isinstance(data, dict) or data.get("version") != CAUSES_VERSION:
            return cls(None, f"`{path.name}` has another layout than this report reads (run `bench causes`)")
        if data.get("results") != results_fingerprint(frame, list(data.get("tasks", []))):
            return cls(None, f"`{path.name}` was measured on other results than these (run `bench causes`)")
        return cls(data)

    def section(self, name: str) -> Any:
        """A top-level entry of the file (a KeyError when it lacks one: reported as malformed by _why)."""
        return (self.data or {})[name]

    def find(self, section: str, **key: Any) -> dict[str, Any] | None:
        """The record of a section (geometry, irp, merging, correlations) whose fields match `key`."""
        return next((r for r in (self.data or {}).get(section, []) if all(r.get(k) == v for k, v in key.items())),
                    None)


def _why(causes: Causes | None, rows: list, explain: Callable[[Causes, list], list[str]]) -> list[str]:
    """The Why paragraph under a claim that has disagreeing rows: the measured figures, or one line saying
    why there are none (no causes file, an older one, one measured on other results, a malformed one)."""
    if not rows or causes is None:
        return []
    if causes.data is not None:
        try:
            return ["", *explain(causes, rows)]
        except (KeyError, TypeError, ValueError, IndexError) as error:
            causes = Causes(None, f"`docs/causes.json` is malformed ({type(error).__name__}: {error}; "
                                  "run `bench causes`)")
    return ["", f"**Why**: not measured: {causes.problem}."]


def no_cause_measured(causes: Causes, rows: list) -> list[str]:
    """A claim `bench causes` measures nothing for (the protocols, baselines and cross-modal claims): its
    disagreeing rows are named as unexplained, not left without a Why."""
    return [f"**Why**: not measured: `bench causes` measures no cause for this claim yet "
            f"({', '.join(' n = '.join(map(str, row)) if isinstance(row, tuple) else str(row) for row in rows)})."]


def _number(value: Any, spec: str = ".3f") -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _loss(value: Any) -> str:  # a relative loss, as a signed percentage
    return "–" if value is None else f"{100 * value:+.1f}%"


def _rho(stats: dict[str, Any] | None) -> str:
    if not stats or stats.get("rho") is None:
        return "ρ not measurable"
    return f"ρ = {stats['rho']:+.2f} (p = {stats['p']:.1g})"


def _strongest(correlation: dict[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
    """The measured quantity whose rise (or, for an agreement, fall) goes with the loss most strongly,
    among those with p < 0.05; None when none does."""
    against = (correlation or {}).get("against", {})
    candidates = [(QUANTITIES[q][2] * stats["rho"], q, stats) for q, stats in against.items()
                  if stats.get("rho") is not None and stats["p"] < 0.05 and QUANTITIES[q][2] * stats["rho"] > 0]
    if not candidates:
        return None
    _, quantity, stats = max(candidates, key=lambda c: c[0])
    return quantity, stats


def _ranked_against(correlation: dict[str, Any] | None) -> str:
    """"κ ρ = +0.05 (p = 0.6), ..." for every quantity the loss was ranked against."""
    against = (correlation or {}).get("against", {})
    return "; ".join(f"{QUANTITIES[q][0]}: {_rho(stats)}" for q, stats in against.items())


def _cells(correlation: dict[str, Any] | None) -> str:
    if not correlation:
        return "no cells"
    cells = max((s.get("cells", 0) for s in correlation["against"].values()), default=0)
    return f"{cells} cells of {len(correlation['tasks'])} tasks"


def _table_row(key: tuple[object, ...], measured: dict[str, Any] | None, cells: Callable[[dict[str, Any]], list[str]],
               width: int) -> str:
    """A Why table's row of `width` columns: its key, then the measured cells, or "not measured" and blanks."""
    if measured is None:
        return f"| {' | '.join(map(str, key))} | not measured |" + " |" * (width - len(key) - 1)
    return f"| {' | '.join([*map(str, key), *cells(measured)])} |"


def why_ortho(causes: Causes, rows: list[tuple[str, int]]) -> list[str]:
    """Claim 2: per disagreeing row, the anchors' geometry and the cause its regime's correlation names."""
    regimes = {regime: causes.find("correlations", ranked="ortho_behind_linear", regime=regime)
               for regime in ("above", "below")}
    lines = ["**Why**: ortho is held to an orthogonal map. " + _legend("kappa", "spectral_mismatch", "outside_span",
                                                                       "loss"), "",
             "| task | n | source widths | cells with n < width | variance outside the anchors' span "
             "| spectral mismatch | κ | ortho's loss to linear | named cause |", "|---" * 9 + "|"]

    def cells(g: dict[str, Any]) -> list[str]:
        regime = "below" if 2 * g["below_dim"] > g["cells"] else "above"
        strongest = _strongest(regimes[regime])
        cause = "none measured (no correlation with p < 0.05)" if strongest is None else QUANTITIES[strongest[0]][1]
        return [", ".join(map(str, g["dims"])), f"{g['below_dim']} of {g['cells']}", _number(g["outside_span"]),
                _number(g["spectral_mismatch"]), _number(g["kappa"], ".1e"), _loss(g["ortho_behind_linear"]), cause]

    lines += [_table_row((task, n), causes.find("geometry", task=task, n=n), cells, 9) for task, n in rows]
    lines.append("")
    for regime, where in (("above", "at or above the source width"), ("below", "below the source width")):
        correlation = regimes[regime]
        strongest = _strongest(correlation)
        verdict = ("none of them goes with it (p < 0.05)" if strongest is None else
                   f"it goes most with {QUANTITIES[strongest[0]][0]}: {QUANTITIES[strongest[0]][1]}")
        lines.append(f"- With n {where} ({_cells(correlation)}), ortho's loss to linear, ranked (Spearman) against "
                     f"{_ranked_against(correlation)}: {verdict}.")
    return lines


def why_irp(causes: Causes, rows: list[tuple[str, int]]) -> list[str]:
    """Claim 5b: what each inversion divides by, per anchor count, and the rank correlation with accuracy."""
    lines = ["**Why**: irp inverts B, its centred target anchors with unit rows (dividing by B's singular "
             "values), to undo the relative projection; what it amplifies is the disagreement between the source's "
             "and the target's relative representations of a sample. κ: B's condition number over the directions "
             "it spans, plain and under the ridge irp chooses on the anchors (the largest gain s / (s² + penalty) "
             "against the best-spanned direction's). Medians over pairs and seeds.", "",
             "| task | anchors | target width | rank of B | κ, plain | irp's alpha | κ under irp's ridge "
             "| disagreement | irp-plain | irp |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_table_row((task, n), causes.find("irp", task=task, n=n), lambda r: [
        ", ".join(map(str, r["dims"])), _number(r["rank"], ".0f"), _number(r["kappa_plain"], ".1e"),
        _number(r["alpha_chosen"], "g"), _number(r["kappa_chosen"], ".1f"), _number(r["disagreement"], ".0%"),
        _number(r["accuracy_plain"]), _number(r["accuracy_chosen"])], 10) for task, n in rows]
    lines.append("")
    for task in dict.fromkeys(task for task, _ in rows):
        measured = [r for r in causes.section("irp") if r["task"] == task and r["kappa_plain"] is not None]
        if not measured:
            continue
        peak = max(measured, key=lambda r: r["kappa_plain"])
        lowest = min(measured, key=lambda r: r["accuracy_plain"] if r["accuracy_plain"] is not None else math.inf)
        widths = ", ".join(map(str, peak["dims"]))
        threshold = (" = the target width: the interpolation threshold, where n anchors just determine the "
                     "inversion" if peak["n"] in peak["dims"] else f" (target width {widths})")
        lines.append(f"- {task}: plain κ peaks at n = {peak['n']}{threshold}; irp-plain scores lowest at n = "
                     f"{lowest['n']} ({_number(lowest['accuracy_plain'])}).")
    correlation = causes.section("irp_correlation")
    lines.append(f"- Accuracy against the condition number each inversion effectively has, plain and ridge together: "
                 f"Spearman {_rho(correlation)} over {correlation['cells']} fits: the more an inversion can amplify "
                 f"the disagreement, the lower its accuracy.")
    return lines


def why_reconstruction(causes: Causes, rows: list[tuple[str, int]]) -> list[str]:
    """Claim 6: the orthogonal methods' losses to affine, and l-ortho's collapse across tasks against κ."""
    lines = ["**Why**: two of the four maps are orthogonal. " + _legend("kappa", "map_agreement", "spectral_mismatch",
                                                                        "loss"), "",
             "| task | n | κ | agreement of l-ortho's map with ortho's | spectral mismatch | ortho's loss to affine "
             "| l-ortho's loss to ortho |", "|---|---|---|---|---|---|---|"]
    lines += [_table_row((task, n), causes.find("geometry", task=task, n=n), lambda g: [
        _number(g["kappa"], ".1e"), _number(g["map_agreement"], ".2f"), _number(g["spectral_mismatch"]),
        _loss(g["ortho_behind_affine"]), _loss(g["l_ortho_behind_ortho"])], 7) for task, n in rows]
    lines.append("")
    l_ortho = causes.find("correlations", ranked="l_ortho_behind_ortho")
    chain = causes.find("correlations", ranked="map_agreement")
    against = (l_ortho or {}).get("against", {})
    kappa, agreement = against.get("kappa"), against.get("map_agreement")
    follows = bool(kappa and agreement and kappa.get("rho") is not None and agreement.get("rho") is not None
                   and kappa["rho"] > 0 > agreement["rho"] and max(kappa["p"], agreement["p"]) < 0.05)
    lines.append(f"- l-ortho is the polar factor of the least-squares map, which divides by the anchors' covariance. "
                 f"Across the stitching tasks at their largest anchor count ({_cells(l_ortho)}), l-ortho's loss to "
                 f"ortho against κ: {_rho(kappa)}; against the agreement of its map with ortho's: {_rho(agreement)}; "
                 f"that agreement against κ: {_rho((chain or {}).get('against', {}).get('kappa'))}"
                 + (". The worse conditioned the anchors, the further least squares' polar factor drifts from "
                    "Procrustes' and the more l-ortho loses: it collapses where the anchors are ill-conditioned."
                    if follows else ": these do not single out ill-conditioned anchors (that needs ρ > 0 for κ and "
                    "ρ < 0 for the agreement, both with p < 0.05)."))
    largest: dict[str, dict[str, Any]] = {}
    for g in causes.section("geometry"):
        if g["task"] in (l_ortho or {}).get("tasks", []) and g["n"] >= largest.get(g["task"], {"n": -1})["n"]:
            largest[g["task"]] = g
    by_kappa = sorted(largest.values(), key=lambda g: -(g["kappa"] or 0))
    lines.append("- By task, at its largest anchor count, median κ and l-ortho's loss to ortho: "
                 + "; ".join(f"{g['task']} {_number(g['kappa'], '.1e')}, {_loss(g['l_ortho_behind_ortho'])}"
                             for g in by_kappa) + ".")
    ortho = causes.find("correlations", ranked="ortho_behind_affine")
    strongest = _strongest(ortho)
    lines.append(f"- ortho's loss to affine on the reconstruction cells ({_cells(ortho)}), ranked against "
                 f"{_ranked_against(ortho)}: "
                 + ("none of them goes with it (p < 0.05)." if strongest is None else
                    f"it goes most with {QUANTITIES[strongest[0]][0]}: {QUANTITIES[strongest[0]][1]}."))
    return lines


def why_merging(causes: Causes, rows: list[tuple[str, str]]) -> list[str]:
    """Claim 7b: what each step from the concatenated parts to rlsa costs in accuracy."""
    lines = ["**Why**: the task's head is fitted on each merged space, so a merger loses only what its space "
             "no longer holds, or holds in a basis the head fits less well. rlsa's space is the unit-normalised "
             "parts' concatenation times the stacked unit anchors (a linear image: the same information when its "
             "rank is the parts' total width); the unit-normalised concatenation is scored here as a merger's output "
             "is. Accuracy at the largest anchor count; coordinate cosine: the mean cosine between a sample's "
             "centred embeddings in two parts (about 0: unrelated coordinates, the paper's premise for naive "
             "merging's failure).", "",
             "| task | partition | concat | naive | unit-normalised concat | rlsa | rank of rlsa's image / width "
             "| coordinate cosine |", "|---|---|---|---|---|---|---|---|"]
    found = [causes.find("mergers", task=task, partition=partition) for task, partition in rows]
    lines += [_table_row(key, r, lambda r: [
        _number(r["concat"]), _number(r["naive"]), _number(r["unit_concat"]), _number(r["rlsa"]),
        f"{r['rank']} / {r['width']}", _number(r["coordinate_cosine"], ".2f")], 8) for key, r in zip(rows, found)]
    measured = [r for r in found if r is not None]
    if measured:
        steps = {"averaging the parts (concat to naive)": [r["concat"] - r["naive"] for r in measured],
                 "normalising rows (concat to unit-normalised concat)": [r["concat"] - r["unit_concat"]
                                                                        for r in measured],
                 "rlsa's basis (unit-normalised concat to rlsa)": [r["unit_concat"] - r["rlsa"] for r in measured]}
        means = {step: float(np.mean(losses)) for step, losses in steps.items()}
        same = all(r["rank"] == r["width"] for r in measured)
        lines += ["", "- Mean accuracy each step loses over these partitions: "
                  + "; ".join(f"{step} {loss:+.3f}" for step, loss in means.items())
                  + f". The largest: {max(means, key=lambda step: means[step])}."
                  + (" rlsa's image has full rank in every partition: it holds the same information as the "
                     "unit-normalised concatenation, in another basis." if same else
                     " rlsa's image has lower rank than the parts' total width in some partition: it drops "
                     "information.")]
    return lines


def results_fingerprint(frame: pd.DataFrame, tasks: list[str]) -> str:
    """A hash of the stored scores of these tasks' current cells: docs/causes.json records the one it
    was measured against, so a causes file older than the results is reported, never shown as current."""
    columns = ["task", "source", "target", "method", "n_anchors", "seed"]
    rows = frame[frame.task.isin(tasks)] if not frame.empty else frame
    metrics = sorted(c for c in rows.columns if c in ("m:accuracy", "m:pixel_mse"))
    table = rows[columns + metrics].sort_values(columns) if not rows.empty else pd.DataFrame()
    return hashlib.sha256(table.to_csv(index=False, float_format="%.9g").encode()).hexdigest()[:16]


def claim_tasks(frame: pd.DataFrame, tasks: dict[str, Task]) -> dict[str, list[Task]]:
    """The scored tasks each group of claims is checked on (bench.causes measures the same ones)."""
    scored = [t for t in tasks.values() if not frame.empty and (frame.task == t.name).any()]
    # the papers' claims, on the tasks that measure them: stitched accuracy (classification tasks), pixel
    # errors (reconstruction tasks), and tasks whose plug-ins are not ranked with the methods (merging)
    classification = [t for t in scored if t.kind.ranked and "accuracy" in t.spec.metrics]
    return {
        "main": [t for t in classification if not any(m.params or m.label for m in t.methods)],
        # ablation tasks (methods listed with parameters or labels) test one choice, not the papers' claims
        "ablations": [t for t in classification if any(m.params.get("preprocessing") for m in t.methods)],
        "irp_ablations": [t for t in classification if any(m.name == "irp" and m.params for m in t.methods)],
        "pixels": [t for t in scored if "pixel_mse" in t.spec.metrics],
        "unranked": [t for t in scored if not t.kind.ranked],  # merging: plug-ins not ranked with the methods
    }


def render_findings(results_dir: Path, out: Path, causes: Path = CAUSES, plot_root: Path | None = None) -> str:
    """Write `out` from results_dir; its figures go under plot_root/results/plots (default: the folder above
    out's, the repository of docs/findings.md), linked relative to `out`."""
    tasks = {t.name: t for t in discover_tasks()}
    rows = ResultStore(results_dir).rows()
    frame, _ = current_rows(rows, tasks)
    groups = claim_tasks(frame, tasks)
    main, why = groups["main"], Causes.load(causes, frame)
    protocols = protocol_frame(rows, tasks, frame)
    ranked = [t.name for t in tasks.values() if t.kind.ranked]
    colours = method_colours(sorted(set(frame.method[frame.task.isin(ranked)]) - {NATIVE}) if not frame.empty else [])
    folder = (plot_root if plot_root is not None else out.parent.parent) / PLOTS

    def noisy_figure(task: Task, curves: dict[tuple[str, float], tuple[float, float]]) -> str:
        path = folder / f"{task.name}-noisy.png"
        curve_plot(curves, path, colours, title=f"{task.name}: noisy anchors",
                   xlabel="fraction p of the anchor pairs mismatched", ylabel="accuracy",
                   native=native_value(frame, task, "accuracy"))
        return f"![{task.name}: accuracy against p]({Path(os.path.relpath(path, out.parent)).as_posix()})"

    stitching = [t for t in tasks.values() if t.kind.ranked and "accuracy" in t.spec.metrics]
    sections = [absolute_near_chance(frame, main), ortho_vs_linear(frame, main, why), saturation(frame, main),
                normalisation(frame, groups["ablations"]), irp_vs_ortho(frame, main),
                irp_regulariser(frame, groups["irp_ablations"], why),
                reconstruction_errors(frame, groups["pixels"], why),
                merging_claims(frame, groups["unranked"], why),
                noisy_anchors(protocols, stitching, noisy_figure, why), anchor_free(protocols, stitching, why),
                relative_vs_translation(frame, stitching, why), cross_modal(frame, stitching, why)]
    lines = ["# Findings: the papers' claims against our results", "",
             "Generated by `bench leaderboard` from `results/`; do not edit by hand. Accuracy is stitched "
             "classification accuracy, mean ± 95% interval over anchor seeds (of the mean over encoder pairs). "
             "Under a claim our numbers disagree with, **Why** gives what `bench causes` measured "
             "(`docs/causes.json`: from the cached embeddings and each task's own anchors).", ""]
    for section in sections:
        lines += section + [""]
    text = "\n".join(lines).rstrip() + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text
