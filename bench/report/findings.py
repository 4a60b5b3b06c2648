"""docs/findings.md: does our data agree with the papers' claims? Generated from results/ alone,
with the leaderboard (`bench leaderboard`), so it can never disagree with the stored numbers.

Each claim is checked on every task where it applies, at the task's largest anchor count unless
said otherwise; "agrees" is decided by the rule written next to the claim, not by hand.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.datasets import load_dataset
from bench.report.rows import current_rows
from bench.report.stats import fmt, largest_count, native_value, summarise
from bench.results import ResultStore
from bench.task import Task, discover_tasks


def _value(summary: dict, method: str, n: int | None) -> tuple[float, float]:
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


def ortho_vs_linear(frame: pd.DataFrame, tasks: list[Task]) -> list[str]:
    lines = ["## 2. On classification, `ortho` matches or beats `linear` and `affine`",
             "Rule: ortho's mean is at least the others' mean minus the larger 95% half-width, at the largest "
             "anchor count and at the task's smallest count.", "",
             "| task | n | ortho | linear | affine | verdict |", "|---|---|---|---|---|---|"]
    for task in tasks:
        summary = summarise(frame, task, "accuracy")
        counts = sorted({n for m, n in summary if m == "ortho"})
        for n in sorted({counts[0], counts[-1]}) if counts else []:
            ortho, linear, affine = (_value(summary, m, n) for m in ("ortho", "linear", "affine"))
            slack = np.nanmax([ortho[1], linear[1], affine[1], 0])
            ok = ortho[0] >= max(linear[0], affine[0]) - slack
            lines.append(f"| {task.name} | {n} | {fmt(*ortho)} | {fmt(*linear)} | {fmt(*affine)} | {_verdict(ok)} |")
    return lines


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


def irp_regulariser(frame: pd.DataFrame, tasks: list[Task]) -> list[str]:
    """The ablation tasks that run irp both ways: the regulariser chosen on the anchors, and plain."""
    lines = ["## 5b. irp's inversion: plain least squares against a regulariser chosen on the anchors",
             "The IRP paper inverts the relative projection by plain least squares (`irp-plain`, alpha = 0); "
             "`irp` chooses a ridge on its anchors by cross-validation. Rule: plain least squares within 0.05 "
             "accuracy of the cross-validated inversion, at every anchor count.", "",
             "| task | anchors | irp-plain | irp | verdict |", "|---|---|---|---|---|"]
    for task in tasks:
        summary = summarise(frame, task, "accuracy")
        for n in sorted({count for method, count in summary if method == "irp-plain"}):
            plain, chosen = _value(summary, "irp-plain", n), _value(summary, "irp", n)
            lines.append(f"| {task.name} | {n} | {fmt(*plain)} | {fmt(*chosen)} | "
                         f"{_verdict(plain[0] >= chosen[0] - 0.05)} |")
    return lines


def reconstruction_errors(frame: pd.DataFrame, tasks: list[Task]) -> list[str]:
    lines = ["## 6. On reconstruction, the linear-family methods give close errors",
             "The semantic-alignment paper stitches pairs of autoencoders and finds affine, linear, l-ortho and ortho "
             "alike (reconstruction MSE 0.02 on MNIST). Rule: the largest pixel MSE of the four is at most 1.5x the "
             "smallest.", "",
             "| task | affine | linear | l-ortho | ortho | native | verdict |", "|---|---|---|---|---|---|---|"]
    for task in tasks:
        n = largest_count(frame, task)
        summary = summarise(frame, task, "pixel_mse")
        values = [_value(summary, m, n) for m in ("affine", "linear", "l-ortho", "ortho")]
        means = [v[0] for v in values]
        ok = None if np.isnan(means).any() else max(means) <= 1.5 * min(means)
        cells = " | ".join(fmt(*v, digits=4) for v in values)
        lines.append(f"| {task.name} (n={n}) | {cells} | "
                     f"{fmt(native_value(frame, task, 'pixel_mse'), np.nan, digits=4)} | {_verdict(ok)} |")
    return lines


def merging_claims(frame: pd.DataFrame, tasks: list[Task]) -> list[str]:
    lines = ["## 7. Merging: relative aggregation (`rlsa`) against naive merging",
             "\"From Charts to Atlas\" reports (a) CKA above 0.7 between the RLSA space and the end-to-end space, "
             "(b) accuracy up to 33 points above naive merging, (c) higher class separability than both the "
             "end-to-end and the naive space. Rules, per partition at the largest anchor count: (a) rlsa's "
             "cka_linear > 0.7; (b) rlsa's accuracy is at least naive's minus the larger 95% half-width; (c) rlsa's "
             "separability is above both the end-to-end encoder's and naive's.", "",
             "| task | partition | rlsa CKA (a) | rlsa / naive accuracy (b) | "
             "rlsa / naive / end-to-end separability (c) |",
             "|---|---|---|---|---|"]
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
    return lines


def render_findings(results_dir: Path, out: Path) -> str:
    tasks = {t.name: t for t in discover_tasks()}
    frame, _ = current_rows(ResultStore(results_dir).rows(), tasks)
    scored = [t for t in tasks.values() if not frame.empty and (frame.task == t.name).any()]
    # the papers' claims, on the tasks that measure them: stitched accuracy (classification tasks), pixel
    # errors (reconstruction tasks), and tasks whose plug-ins are not ranked with the methods (merging)
    classification = [t for t in scored if t.kind.ranked and "accuracy" in t.spec.metrics]
    # ablation tasks (methods listed with parameters or labels) test one choice, not the papers' claims
    ablations = [t for t in classification if any(m.params.get("preprocessing") for m in t.methods)]
    main = [t for t in classification if not any(m.params or m.label for m in t.methods)]
    reconstruction = [t for t in scored if "pixel_mse" in t.spec.metrics]
    merging = [t for t in scored if not t.kind.ranked]
    irp_ablations = [t for t in classification if any(m.name == "irp" and m.params for m in t.methods)]
    sections = [absolute_near_chance(frame, main), ortho_vs_linear(frame, main), saturation(frame, main),
                normalisation(frame, ablations), irp_vs_ortho(frame, main), irp_regulariser(frame, irp_ablations),
                reconstruction_errors(frame, reconstruction), merging_claims(frame, merging)]
    lines = ["# Findings: the papers' claims against our results", "",
             "Generated by `bench leaderboard` from `results/`; do not edit by hand. Accuracy is stitched "
             "classification accuracy, mean ± 95% interval over anchor seeds (of the mean over encoder pairs).", ""]
    for section in sections:
        lines += section + [""]
    text = "\n".join(lines).rstrip() + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text
