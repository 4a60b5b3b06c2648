"""`bench submit submissions/<name>` (or `mergers/<name>`): from a plug-in folder to a ranked
report, in order, for every plug-in family alike (bench/families.py):

    1. the card check: card.yaml with a title, authors, paper, license and description;
    2. its family's conformance suite (bench/checks.py, bench/merger_checks.py), in sandboxed workers;
    3. the default suite's tasks whose kind runs its family, for this plug-in only: cached
       embeddings and the stored results of the others are reused, so only its own cells are computed;
    4. results/reports/<name>.md: where it ranks overall and per task, which plug-ins it is
       significantly better or worse than, its cost, and its failed cells.

Steps 1 and 2 stop the flow when they fail (exit 1): no compute is spent on a plug-in that
breaks the contract. The report is what a contributor attaches to a pull request.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from bench.executors import SandboxUnavailable
from bench.families import FAMILIES
from bench.method import SubmissionError
from bench.ranking import Ranking, empty_cells, normalised_cells, rank
from bench.report.blocks import Block, Heading, Inline, Para, Strong, Table, User, link_or_text
from bench.report.markdown import to_markdown
from bench.report.rows import current_rows, is_current_factory
from bench.report.tables import ranking_table
from bench.results import Result, ResultStore
from bench.runner import Summary, resolve_device, run_task
from bench.sandbox import Isolated, ProcessExecutor, isolated_discovery
from bench.task import Task, check_against_data, discover_tasks, find_task, tasks_dir

# defaults_chosen_by: how each default hyper-parameter was chosen, on the anchors alone (e.g. by
# cross-validation) or a priori with a reason; a default tuned on a benchmark task is not comparable
CARD_FIELDS = ("title", "authors", "paper", "license", "description", "defaults_chosen_by")
EXIT_FAILED, EXIT_BAD_INPUT = 1, 2


def check_card(folder: Path) -> list[str]:
    """Problems with folder/card.yaml, one line each; empty when it is complete."""
    path = folder / "card.yaml"
    if not path.is_file():
        return [f"{path}: missing; it needs {', '.join(CARD_FIELDS)} (see CONTRIBUTING.md)"]
    try:
        card = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        return [f"{path}: not valid YAML: {error}".replace("\n", " ")]
    if not isinstance(card, dict):
        return [f"{path}: expected a mapping of {', '.join(CARD_FIELDS)}"]
    problems = []
    for key in CARD_FIELDS:
        value = card.get(key)
        values = value if isinstance(value, list) and key == "authors" else [value]  # only authors may be a list
        if not any(isinstance(v, str) and v.strip() for v in values):
            problems.append(f"{path}: '{key}' is missing or empty (text expected)")
    reason = str(card.get("defaults_chosen_by") or "").lower()
    named = [task for task in sorted(p.stem for p in tasks_dir().glob("*.yaml"))
             if re.search(rf"(?<![\w-]){re.escape(task)}(?![\w-])", reason)]
    if named:
        problems.append(f"{path}: 'defaults_chosen_by' names the benchmark task {named[0]!r}: a default chosen on an "
                        "evaluation task makes its scores there incomparable; choose it on the anchors or a priori")
    return problems


def submit(folder: Path, results: Path, task_names: list[str] | None = None, device: str = "auto",
           progress: bool = True, echo: Callable[[str], None] = print, sandboxed: bool = True) -> int:
    """Run the four steps; return the exit code (0 when everything passed and every cell scored).

    The submission's code runs only in workers (bench/sandbox.py), sandboxed unless sandboxed=False
    (--no-sandbox, where the sandbox cannot be set up: the report and every row then say so).
    Methods and mergers alike (bench.families): the suite runs the tasks whose kind's family it is."""
    folder = Path(folder)
    problems = check_card(folder)
    echo("FAIL  card\n" + "\n".join(f"      {p}" for p in problems) if problems else "PASS  card")
    if problems:
        return EXIT_FAILED
    try:
        with isolated_discovery(sandboxed) as isolated:  # other plug-in folders too are imported in workers only
            return _checked_and_run(folder, results, task_names, device, progress, echo, isolated)
    except SandboxUnavailable as error:  # no rankable report without the sandbox
        echo(f"FAIL  sandbox: {error}")
        return EXIT_BAD_INPUT


def _checked_and_run(folder: Path, results: Path, task_names: list[str] | None, device: str, progress: bool,
                     echo: Callable[[str], None], isolated: Isolated) -> int:
    try:
        described, plugin_folder = isolated.resolve(str(folder))
    except SubmissionError as error:
        echo(f"FAIL  import: {error}")
        return EXIT_FAILED
    if described.error is not None:
        echo(f"FAIL  import: {described.error}")
        return EXIT_FAILED
    name, family = described.name, FAMILIES[described.family]
    checks = isolated.check(family.name, name, plugin_folder, family.rule_names)
    failed_checks = [c for c in checks if not c.passed]
    echo(f"{'FAIL' if failed_checks else 'PASS'}  conformance: "
         f"{len(checks) - len(failed_checks)}/{len(checks)} rules passed")
    for check in failed_checks:
        echo(f"      {check.rule}: {check.message}")
    if failed_checks:
        return EXIT_FAILED

    # tasks are loaded only now: a task that lists no methods takes every registered one, this included
    tasks = [find_task(t) for t in task_names] if task_names else discover_tasks(default_suite_only=True)
    tasks = [t for t in tasks if t.kind.plugins is family.registry and any(name == m.name for m in t.methods)]
    if not tasks:
        echo(f"FAIL  suite: no task runs the {family.name} {name!r} (their `methods` lists name other {family.plural})")
        return EXIT_FAILED
    store, summary, started = ResultStore(results), Summary(), time.perf_counter()
    executor = ProcessExecutor(folders=[folder], sandboxed=isolated.sandboxed)
    for task in tasks:
        check_against_data(task)
        # untrusted code: sandboxed worker processes with the task's time and memory limits; its nulls
        # too, so that the leaderboard can say how much of its score the correspondence explains
        run_task(task, store, resolve_device(device), summary, method_filter={name}, progress=progress,
                 executor=executor, nulls=True)
    summary.seconds = time.perf_counter() - started
    echo(f"{'FAIL' if summary.failed else 'PASS'}  suite: {summary}")

    report = results / "reports" / f"{name}.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    text = write_report(name, store.rows(), tasks, len(checks), family.registry.get(name).card)
    if not isolated.sandboxed:  # said first, where nobody can miss it
        text = (f"**Not sandboxed**: run with `--no-sandbox`, so nothing confined this submission's code; "
                f"its rows are marked `isolation: process` and the leaderboard flags them.\n\n{text}")
    report.write_text(text, encoding="utf-8")
    echo(f"wrote {report}")
    return EXIT_FAILED if summary.failed else 0


def write_report(name: str, rows: list[Result], tasks: list[Task], n_checks: int, card: dict[str, Any]) -> str:
    """The report's Markdown: the plug-in's rank overall and per task, its rivals, cost and failures."""
    by_name = {t.name: t for t in tasks}
    run_rows = [r for r in rows if r.task in by_name]
    frame, stale = current_rows(run_rows, by_name)  # stale: rows of these tasks from an older version or source
    mine = [r for r in rows if r.method_name == name and is_current_factory(by_name)(r)]
    labels = sorted({r.method for r in mine})
    names = {} if frame.empty else frame.drop_duplicates("method").set_index("method").method_name.to_dict()
    paper = str(card.get("paper", ""))
    authors = card.get("authors", "")
    blocks: list[Block] = [
        Heading(1, User(f"Submission report: {name}")),
        Para([User(str(card.get("title", ""))), " by ",
              User(", ".join(map(str, authors)) if isinstance(authors, list) else str(authors)),
              "; paper: ", link_or_text(paper, paper), "; license: ", User(str(card.get("license", ""))), "."]),
        Para([f"Card: complete. Conformance suite: {n_checks}/{n_checks} rules passed. Generated by `bench submit`; "
              "scores are the leaderboard's (`bench/ranking.py`): the main metric at each task's largest anchor count, "
              "normalised to 0 at `absolute` and 1 at `native`, with a 95% bootstrap interval over anchor seeds; "
              "significance is a paired Wilcoxon signed-rank test over common cells, Holm-corrected."])]
    blocks += left_out_blocks(stale, other_tasks=sum(r.status == "ok" and r.task not in by_name for r in rows))

    cells = {t.name: normalised_cells(frame, t) for t in tasks}
    ranked = [c for c in cells.values() if not c.empty]
    overall = rank(pd.concat(ranked, ignore_index=True) if ranked else empty_cells())
    blocks += [Heading(2, "Overall")] + standing_blocks(overall, labels, "all tasks")
    if overall.standings:
        blocks.append(ranking_table(overall, names, with_tasks=True))

    blocks.append(Heading(2, "Per task"))
    header: list[Inline] = ["task", "method", "rank", "score (95% CI)", "tie group", "better than", "worse than"]
    table: list[list[Inline]] = []
    for task in tasks:
        ranking = rank(cells[task.name])
        for label in labels:
            s = ranking.get(label)
            if s is None:
                table.append([User(task.name), User(label), "–", "no normalised score", "–", "–", "–"])
                continue
            table.append([User(task.name), User(label), f"{s.rank} of {len(ranking.standings)}",
                          f"{s.score:.3f} ({s.low:.3f}–{s.high:.3f})", s.group,
                          User(", ".join(ranking.better[label]) or "none"),
                          User(", ".join(ranking.worse[label]) or "none")])
    blocks.append(Table(header, table))

    blocks.append(Heading(2, "Cost"))
    ok = [r for r in mine if r.status == "ok" and r.pairing == "paired"]  # its nulls are not its cost
    fit = [r.fit_seconds for r in ok if r.fit_seconds is not None]
    transform = [r.transform_seconds for r in ok if r.transform_seconds is not None]
    devices = sorted({r.device for r in ok if r.device})
    blocks.append(Para([f"Over its {len(ok)} scored cells on {', '.join(devices) or 'no device'}, mean per cell: "
                        f"fit {1000 * np.mean(fit) if fit else float('nan'):.2f} ms, "
                        f"transform {1000 * np.mean(transform) if transform else float('nan'):.2f} ms."]))
    if overall.standings:  # like for like: every method's mean fit over the ranked cells (largest anchor counts)
        blocks.append(Para(["Mean fit per ranked cell (each task's largest anchor count): "]
                           + [p for i, s in enumerate(overall.standings) for p in ([", "] if i else [])
                              + [Strong(s.method) if s.method in labels else User(s.method),
                                 f" {1000 * s.fit_seconds:.2f} ms"]]
                           + ["."]))

    blocks.append(Heading(2, "Failed cells"))
    failed = sorted((r for r in mine if r.status != "ok"),
                    key=lambda r: (r.task, r.method, r.source, r.target, r.n_anchors, r.seed, r.pairing))
    if not failed:
        blocks.append(Para(["None: every cell was scored."]))
    else:
        blocks.append(Table(["task", "method", "source → target", "anchors", "seed", "pairing", "error"],
                            [[User(r.task), User(r.method), User(f"{r.source} → {r.target}"), str(r.n_anchors),
                              str(r.seed), r.pairing, User(str(r.error))] for r in failed]))
    return to_markdown(blocks)


def left_out_blocks(stale: int, other_tasks: int) -> list[Block]:
    """Scored rows in the store that the report does not use, counted by why: a store shared with the
    leaderboard holds every task's rows, and those of tasks this submit did not run are not stale."""
    blocks: list[Block] = []
    if stale:
        blocks.append(Para([f"Stale stored results of these tasks, left out (older task version or spec, or changed "
                            f"method source): {stale}."]))
    if other_tasks:
        blocks.append(Para([f"Stored results of tasks this submit did not run (not part of this run): {other_tasks}."]))
    return blocks


def standing_blocks(ranking: Ranking, labels: list[str], scope: str) -> list[Block]:
    """One paragraph per label of the method: its rank, interval, group and rivals."""
    blocks: list[Block] = []
    for label in labels:
        s = ranking.get(label)
        if s is None:
            blocks.append(Para([User(label), f": no normalised score on {scope} "
                                             "(no scored cells, or no `absolute`/`native` results)."]))
            continue
        similar = [m.method for m in ranking.standings if m.method != label
                   and m.method not in ranking.better[label] and m.method not in ranking.worse[label]]
        blocks.append(Para([Strong(label), f": rank {s.rank} of {len(ranking.standings)} on {scope} ({s.tasks} tasks), "
                            f"score {s.score:.3f} (95% CI {s.low:.3f}–{s.high:.3f}), tie group {s.group}, "
                            f"mean rank {s.borda:.2f}. "
                            "Significantly better than: ", User(", ".join(ranking.better[label]) or "none"),
                            ". Significantly worse than: ", User(", ".join(ranking.worse[label]) or "none"),
                            ". Not distinguishable from: ", User(", ".join(similar) or "none"), "."]))
    return blocks
