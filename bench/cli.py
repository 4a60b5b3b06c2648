"""The `bench` command line (also `python -m bench`).

Exit codes: 0 success; 1 a run finished with failed cells, or a conformance check failed;
2 bad input (a task file, a name, a results file) - in which case nothing was written.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from bench import cache
from bench.causes import DEFAULT_OUTPUT as CAUSES_OUTPUT
from bench.causes import write_causes
from bench.datasets import DATASETS, DatasetUnavailable
from bench.encoders import ENCODERS
from bench.executors import EXECUTORS, SandboxUnavailable
from bench.families import FAMILIES
from bench.method import REPO_ROOT, SubmissionError, get_method
from bench.metrics import METRICS
from bench.registry import UnknownNameError
from bench.report.findings import render_findings
from bench.report.leaderboard import render
from bench.reproduce import compare
from bench.results import ResultsFileError, ResultStore
from bench.runner import Summary, resolve_device, run_task
from bench.sandbox import Isolated, isolated_discovery, make_executor
from bench.submit import submit as submit_folder
from bench.task import BadInputError, LimitSpec, Task, check_against_data, discover_tasks, find_task, load_task

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2
PLUGIN_LISTS = [family.plural for family in FAMILIES.values()]  # `bench list methods`, `bench list mergers`


def cmd_run(args: argparse.Namespace) -> int:
    if args.executor == "local":
        return _run(args, None)
    # plug-ins imported in workers only, discovery too
    with isolated_discovery(sandboxed=not args.no_sandbox) as isolated:
        return _run(args, isolated)


def _run(args: argparse.Namespace, isolated: Isolated | None) -> int:
    tasks = [find_task(t) for t in args.tasks] if args.tasks else discover_tasks(default_suite_only=True)
    for task in tasks:  # validate everything before writing anything
        check_against_data(task)
    methods = set(args.methods.split(",")) if args.methods else None
    if methods:
        for name in methods:
            if not any(name in (m.name, m.display) for t in tasks for m in t.methods):
                get_method(name)  # raises with the closest names when it is not a method at all
    results = Path(args.results)
    if args.fresh:
        _clear_results(results, tasks)
    store, device, summary = ResultStore(results), resolve_device(args.device), Summary()
    executor = make_executor(args.executor, args.workers, args.address, sandboxed=not args.no_sandbox)
    if isolated is not None:
        isolated.close()  # discovery is over
    started = time.perf_counter()
    for task in tasks:
        limits = _limits(args, task.spec.limits)
        run_task(task, store, device, summary, methods, progress=not args.quiet, executor=executor, limits=limits,
                 nulls=args.nulls)
    summary.seconds = time.perf_counter() - started
    print(summary)
    return EXIT_FAILED if summary.failed else 0


def _limits(args: argparse.Namespace, task_limits: LimitSpec) -> LimitSpec:
    """The task's limits, with --time-limit and --memory-limit in their place when given (held to the same bounds)."""
    given = {"time_s": args.time_limit, "memory_mb": args.memory_limit}
    try:
        return LimitSpec.model_validate({**task_limits.model_dump(),
                                         **{k: v for k, v in given.items() if v is not None}})
    except ValidationError as error:
        item = error.errors()[0]
        option = {"time_s": "--time-limit", "memory_mb": "--memory-limit"}[str(item["loc"][0])]
        raise BadInputError(f"{option}: {item['msg']}") from None


def _clear_results(results: Path, tasks: list[Task]) -> None:
    for task in tasks:
        for path in (results / task.name).glob("*.jsonl"):
            path.unlink()


def cmd_leaderboard(args: argparse.Namespace) -> int:
    render(Path(args.results), Path(args.output), html=Path(args.html) if args.html else None)
    findings = Path(args.output).parent / "docs" / "findings.md"
    render_findings(Path(args.results), findings)
    print(f"wrote {args.output}, {findings}" + (f" and {args.html}" if args.html else ""))
    return 0


def cmd_causes(args: argparse.Namespace) -> int:
    write_causes(Path(args.results), Path(args.output), progress=lambda task: print(f"measuring {task}", flush=True))
    print(f"wrote {args.output} (`bench leaderboard` shows it in docs/findings.md)")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    return submit_folder(Path(args.folder), Path(args.results), args.tasks or None, args.device,
                         progress=not args.quiet, sandboxed=not args.no_sandbox)


def cmd_compare(args: argparse.Namespace) -> int:
    tasks = [find_task(t) for t in args.tasks] if args.tasks else discover_tasks()
    comparison = compare(ResultStore(args.reference).rows(), ResultStore(args.rerun).rows(), {t.name: t for t in tasks})
    print(comparison)
    return EXIT_FAILED if comparison.differences else 0


def cmd_export(args: argparse.Namespace) -> int:
    rows = [r for r in ResultStore(args.results).rows() if r.status == "ok"]
    frame = pd.DataFrame([{
        "task": r.task, "task_version": r.task_version, "dataset": r.dataset, "source": r.source,
        "target": r.target, "method": r.method, "method_params": json.dumps(r.method_params, sort_keys=True),
        "n_anchors": r.n_anchors, "seed": r.seed, "pairing": r.pairing, **r.metrics,
        "fit_seconds": r.fit_seconds, "transform_seconds": r.transform_seconds, "device": r.device,
    } for r in rows])
    output = Path(args.output or f"results/export.{args.format}")
    output.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "csv":
        frame.to_csv(output, index=False)
    elif args.format == "json":
        frame.to_json(output, orient="records", indent=1)
    else:
        frame.to_parquet(output, index=False)
    print(f"wrote {len(frame)} rows to {output}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    # a name is looked up among folders described in workers, never imported here
    with isolated_discovery(sandboxed=not args.no_sandbox, rule_seconds=args.time_limit) as isolated:
        described, folder = isolated.resolve(args.method)
    if described.error is not None:
        print(f"FAIL  import: {described.error}")
        return EXIT_FAILED
    results = isolated.check(described.family, described.name, folder, FAMILIES[described.family].rule_names)
    for result in results:
        print(f"{'PASS' if result.passed else 'FAIL'}  {result.rule}"
              + ("" if result.passed else f": {result.message}"))
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed}/{len(results)} rules passed")
    return EXIT_FAILED if failed else 0


def cmd_validate(args: argparse.Namespace) -> int:
    for path in args.files:
        task = load_task(path)
        check_against_data(task)
        print(f"{path}: ok ({task.name} v{task.spec.version}, spec {task.spec_hash}, "
              f"{len(task.pairs())} pairs x {len(task.methods)} methods x {len(task.spec.anchors.counts)} counts "
              f"x {len(task.spec.anchors.seeds)} seeds{protocols(task)}: {len(task.plan())} cells)")
    return 0


def protocols(task: Task) -> str:
    """', protocols paired, noisy:0.1, ...' for a task with more than paired anchors (bench.pairing)."""
    labels = [pairing.label for pairing in task.spec.anchors.pairing.protocols()]
    return f", protocols {', '.join(labels)} where a method declares them" if labels != ["paired"] else ""


def cmd_list(args: argparse.Namespace) -> int:
    if args.what == "tasks":
        for task in discover_tasks():
            print(f"{task.name:32} v{task.spec.version}  {'default' if task.spec.default_suite else '       '}  "
                  f"{task.spec.description.strip().splitlines()[0] if task.spec.description.strip() else ''}")
    elif args.what in PLUGIN_LISTS:
        registry = next(family.registry for family in FAMILIES.values() if family.plural == args.what)
        for name in registry.names():
            info = registry.get(name)
            print(f"{name:16} {f'BROKEN: {info.error}' if info.error else info.card.get('title', '')}")
    elif args.what == "datasets":
        for name in DATASETS.names():
            doc = (DATASETS.get(name).__doc__ or "").strip().splitlines()
            print(f"{name:16} {doc[0] if doc else ''}")
    elif args.what == "encoders":
        for name in ENCODERS.names():
            encoder = ENCODERS.get(name)
            print(f"{name:28} {encoder.dataset or 'any':10} {encoder.describe()}")
    else:
        for name in METRICS.names():
            metric = METRICS.get(name)
            print(f"{name:22} {'higher' if metric.higher_is_better else 'lower'} is better, compares {metric.compares}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    if args.action == "ls":
        paths = cache.entries()
        for path in paths:
            print(f"{path.stat().st_size:>12,}  {path}")
        print(f"{len(paths)} files in {cache.cache_dir()}")
    else:
        print(f"removed {cache.clear()} files from {cache.cache_dir()}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="bench", description="Latent-space translation benchmark.")
    commands = root.add_subparsers(dest="command", required=True)
    results_default = str(REPO_ROOT / "results")

    run = commands.add_parser("run", help="run tasks (default: the default suite); resumes by default")
    run.add_argument("tasks", nargs="*", metavar="TASK", help="task names or task files")
    run.add_argument("--methods", help="comma-separated method names or labels")
    run.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    run.add_argument("--results", default=results_default)
    run.add_argument("--fresh", action="store_true", help="discard stored results of these tasks first")
    run.add_argument("--nulls", action="store_true",
                     help="also each method's null: its score at the largest anchor count, the anchor pairs shuffled")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    executor = run.add_argument("--executor", default="local",
                                help="local: in-process, for the project's own methods (default); process: "
                                     "sandboxed worker processes with limits; ray: Ray tasks, each in a sandboxed "
                                     "worker")
    executor.choices = EXECUTORS  # the registry's names (bench.executors, and bench.sandbox's process and ray)
    run.add_argument("--no-sandbox", action="store_true",
                     help="process/ray: plain worker processes where the sandbox cannot be set up (rows are marked)")
    run.add_argument("--workers", type=int, help="worker processes for --executor process (default: CPU count)")
    run.add_argument("--address", help="Ray cluster address for --executor ray (default: start a local instance)")
    run.add_argument("--time-limit", type=float,
                     help="seconds per cell (process/ray executors; default: the task's limits.time_s)")
    run.add_argument("--memory-limit", type=int,
                     help="MiB per cell (process executor; default: the task's limits.memory_mb)")
    run.set_defaults(func=cmd_run)

    compared = commands.add_parser("compare", help="do two result stores agree? (a rerun against the stored results)")
    compared.add_argument("reference", metavar="RESULTS")
    compared.add_argument("rerun", metavar="RERUN_RESULTS")
    compared.add_argument("--tasks", nargs="+", metavar="TASK", help="task names or files (default: every task)")
    compared.set_defaults(func=cmd_compare)

    board = commands.add_parser("leaderboard", help="regenerate leaderboard.md from results/")
    board.add_argument("--results", default=results_default)
    board.add_argument("--output", default=str(REPO_ROOT / "leaderboard.md"))
    board.add_argument("--html", nargs="?", const=str(REPO_ROOT / "leaderboard.html"), metavar="PATH",
                       help="also write the self-contained HTML page (default path: leaderboard.html)")
    board.set_defaults(func=cmd_leaderboard)

    causes = commands.add_parser("causes", help="measure why findings disagree with the papers (docs/causes.json)")
    causes.add_argument("--results", default=results_default)
    causes.add_argument("--output", default=str(CAUSES_OUTPUT))
    causes.set_defaults(func=cmd_causes)

    submit = commands.add_parser("submit",
                                 help="card check, conformance suite, default suite and report for one submission")
    submit.add_argument("folder", metavar="SUBMISSION_FOLDER")
    submit.add_argument("--tasks", nargs="+", metavar="TASK", help="task names or files (default: the default suite)")
    submit.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    submit.add_argument("--results", default=results_default)
    submit.add_argument("--quiet", action="store_true", help="no progress bar")
    submit.add_argument("--no-sandbox", action="store_true",
                        help="run without the sandbox where it cannot be set up: the report and rows say so")
    submit.set_defaults(func=cmd_submit)

    export = commands.add_parser("export", help="one row per scored cell, for pandas")
    export.add_argument("--format", default="csv", choices=["csv", "json", "parquet"])
    export.add_argument("--results", default=results_default)
    export.add_argument("--output")
    export.set_defaults(func=cmd_export)

    check = commands.add_parser("check", help="run the conformance suite on one method or merger")
    check.add_argument("method", metavar="NAME_OR_PATH")
    check.add_argument("--time-limit", type=float, default=60.0, help="seconds per rule (default 60)")
    check.add_argument("--no-sandbox", action="store_true", help="plain worker processes (time limits still apply)")
    check.set_defaults(func=cmd_check)

    validate = commands.add_parser("validate", help="validate task files without running them")
    validate.add_argument("files", nargs="+", metavar="TASK_FILE")
    validate.set_defaults(func=cmd_validate)

    listing = commands.add_parser("list", help="list registered things")
    listing.add_argument("what", choices=["tasks", *PLUGIN_LISTS, "datasets", "encoders", "metrics"])
    listing.set_defaults(func=cmd_list)

    cache = commands.add_parser("cache", help="manage the embedding cache")
    cache.add_argument("action", choices=["ls", "clear"])
    cache.set_defaults(func=cmd_cache)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if getattr(args, "device", "auto") != "auto":  # before the command writes anything (run --fresh clears results)
            resolve_device(args.device)
        return args.func(args)
    except (BadInputError, UnknownNameError, SubmissionError, ResultsFileError, DatasetUnavailable,
            SandboxUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
