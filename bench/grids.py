"""Image grids for reconstruction tasks: originals above stitched reconstructions, one PNG per method.

Saved by the runner for one showcase cell per method (the task's first pair, largest anchor
count, first seed), so the leaderboard can link a picture of what each score means.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

N_SHOWN = 10


def grid_path(results_dir: Path, task: str, method: str) -> Path:
    return results_dir / "grids" / task / f"{method}.png"


def save_grid(path: Path, originals: np.ndarray, reconstructions: np.ndarray, title: str) -> None:
    """(k, 1, h, w) originals and reconstructions in [0, 1] -> a 2-row PNG, byte-stable for equal input."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = min(N_SHOWN, len(originals))
    figure, axes = plt.subplots(2, k, figsize=(k * 0.9, 2.2), dpi=100, squeeze=False)
    for column in range(k):
        for row, images in enumerate((originals, reconstructions)):
            axes[row, column].imshow(np.clip(images[column, 0], 0, 1), cmap="gray", vmin=0, vmax=1)
            axes[row, column].axis("off")
    figure.suptitle(title, fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
