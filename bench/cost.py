"""How the cost of one cell grows with the number of anchors and the embedding width.

    python -m bench.cost [--methods ortho,linear] [--repeats 3] [--out results/cost-growth.json]

For each method, times fit on n paired anchors plus transform of M_EVAL evaluation rows (what a
method costs per cell; scoring is the task's and is left out), median of `repeats`, on seeded
synthetic embeddings where Y is a noisy linear image of X (as real encoders' spaces are):

- anchors sweep: n in ANCHORS at width WIDTH (dx = dy);
- width sweep: dx = dy in WIDTHS at N_FIXED anchors.

Writes the timings with the machine's description as JSON, and a two-panel log-log plot beside
it under results/plots/ (the README's performance section links it).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from bench.method import REPO_ROOT, build_method

ANCHORS = (250, 500, 1000, 2000, 5000)
WIDTH = 768
WIDTHS = (64, 128, 256, 512, 768, 1280)
N_FIXED = 2000
M_EVAL = 2000
METHODS = ("absolute", "ortho", "l-ortho", "linear", "affine", "ridge", "cca", "irp")


def related(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:  # (n, d), (n, d)
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=generator)
    Y = X @ (torch.randn(d, d, generator=generator) / d**0.5) + 0.1 * torch.randn(n, d, generator=generator)
    return X, Y


def cell_seconds(method: str, n: int, d: int, repeats: int) -> float:
    """Median seconds of fit on n anchors + transform of M_EVAL rows, width d on both sides."""
    X, Y = related(n + M_EVAL, d)
    anchors_x, anchors_y, evaluation = X[:n], Y[:n], X[n:]
    build_method(method, seed=0).fit(anchors_x, anchors_y).transform(evaluation)  # warm-up, untimed
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        build_method(method, seed=0).fit(anchors_x, anchors_y).transform(evaluation)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def sweep(methods: Sequence[str], repeats: int) -> dict:
    rows = []
    for method in methods:
        for n in ANCHORS:
            rows.append({"method": method, "sweep": "anchors", "n_anchors": n, "width": WIDTH,
                         "seconds": cell_seconds(method, n, WIDTH, repeats)})
        for d in WIDTHS:
            rows.append({"method": method, "sweep": "width", "n_anchors": N_FIXED, "width": d,
                         "seconds": cell_seconds(method, N_FIXED, d, repeats)})
        print(f"{method}: done", flush=True)
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
               "load_average_1min": round(os.getloadavg()[0], 2)}
    return {"machine": machine, "m_eval": M_EVAL, "repeats": repeats, "rows": rows}


def plot(data: dict, path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    methods = sorted({r["method"] for r in data["rows"]})
    for method in methods:
        for axis, sweep_name, x in ((left, "anchors", "n_anchors"), (right, "width", "width")):
            points = sorted((r[x], r["seconds"]) for r in data["rows"]
                            if r["method"] == method and r["sweep"] == sweep_name)
            axis.plot([p[0] for p in points], [1000 * p[1] for p in points], marker="o", label=method)
    left.set(xscale="log", yscale="log", xlabel=f"anchors (width {WIDTH})",
             ylabel=f"fit + transform of {data['m_eval']} rows (ms)")
    right.set(xscale="log", xlabel=f"width dx = dy ({N_FIXED} anchors)")
    for axis, ticks in ((left, ANCHORS), (right, WIDTHS)):
        axis.set_xticks(ticks, [f"{t:,}" for t in ticks], minor=False)
        axis.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axis.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8, loc="upper left")
    machine = data["machine"]
    figure.suptitle(f"Cost of one cell by method: {machine['cpus']} CPUs, torch {machine['torch']}, "
                    f"{machine['torch_threads']} threads", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "cost-growth.json")
    args = parser.parse_args(argv)
    data = sweep(args.methods.split(","), args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    plot(data, args.out.parent / "plots" / "cost-growth.png")
    print(f"wrote {args.out} and {args.out.parent / 'plots' / 'cost-growth.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
