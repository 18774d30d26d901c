"""Figures (matplotlib, Agg backend, small PNGs): learning curves, spike rasters, image tiles,
confusion matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_curves", "plot_raster", "plot_confusion", "plot_tiles", "save"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | Path, dpi: int = 100) -> Path:
    """Save and close ``fig``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    _plt().close(fig)
    return path


def plot_curves(ax, curves: dict[str, tuple], xlabel: str, ylabel: str, title: str = ""):
    """Lines ``{label: (x, y)}`` on ``ax``."""
    for label, (x, y) in curves.items():
        ax.plot(x, y, marker="o", ms=3, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_raster(ax, spikes: np.ndarray, dt_label: str = "time step", title: str = "", max_neurons: int = 200):
    """Raster of a ``(T, N)`` 0/1 array (first ``max_neurons`` neurons)."""
    spikes = np.asarray(spikes)[:, :max_neurons]
    t, n = np.nonzero(spikes)
    ax.scatter(t, n, s=2, marker="|", color="k")
    ax.set(
        xlabel=dt_label,
        ylabel="neuron",
        title=title,
        xlim=(-0.5, spikes.shape[0] - 0.5),
        ylim=(-0.5, spikes.shape[1] - 0.5),
    )
    return ax


def plot_confusion(ax, confusion: np.ndarray, class_names=None, title: str = "confusion (row: true)"):
    """Row-normalised confusion matrix."""
    c = np.asarray(confusion, dtype=float)
    norm = c / np.maximum(c.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    k = len(c)
    names = class_names or [str(i) for i in range(k)]
    ax.set(
        xticks=range(k),
        yticks=range(k),
        xticklabels=names,
        yticklabels=names,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    for i in range(k):
        for j in range(k):
            if c[i, j]:
                ax.text(
                    j,
                    i,
                    int(c[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    return ax


def plot_tiles(fig, images: np.ndarray, n_cols: int | None = None, cmap: str = "hot_r"):
    """Tile ``(N, H, W)`` images (e.g. receptive fields) into one axes-free grid on ``fig``."""
    images = np.asarray(images)
    n = len(images)
    n_cols = n_cols or int(np.ceil(np.sqrt(n)))
    n_rows = int(np.ceil(n / n_cols))
    h, w = images.shape[1:3]
    grid = np.full((n_rows * (h + 1) - 1, n_cols * (w + 1) - 1), np.nan)
    for i, im in enumerate(images):
        r, c = divmod(i, n_cols)
        grid[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = im
    ax = fig.add_subplot(111)
    ax.imshow(grid, cmap=cmap, interpolation="nearest")
    ax.axis("off")
    return ax


def figure(*args, **kwargs):
    """``plt.subplots`` on the Agg backend."""
    return _plt().subplots(*args, **kwargs)
