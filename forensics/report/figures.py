"""Figures: spectrum plots, sample grids, ROC panels and heat maps, each written as PNG and SVG."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from forensics.io.files import atomic_write_bytes

#: Where the high-frequency zoom panel starts (cycles/pixel).
ZOOM_FROM = 0.25


@dataclass
class Curve:
    """Mean ± std azimuthal profile of one group of images."""

    label: str
    freqs: np.ndarray  # cycles/pixel
    mean: np.ndarray
    std: np.ndarray
    n: int


def plot_profiles(curves: Sequence[Curve], path, title: str = "Azimuthal spectrum",
                  ylabel: str = "mean log magnitude (dB)") -> Path:
    """Two panels: full frequency range and the high-frequency zoom, mean ± 1 std; one legend beside
    them (inside a panel it would hide the curves)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13.5, 4.6), layout="constrained")
    for ax, zoom in zip(axes, (False, True)):
        for i, c in enumerate(curves):
            sel = c.freqs >= ZOOM_FROM if zoom else slice(None)
            f, m, s = c.freqs[sel], c.mean[sel], c.std[sel]
            line, = ax.plot(f, m, lw=1.6, color=f"C{i % 10}", label=f"{c.label} (n={c.n})")
            ax.fill_between(f, m - s, m + s, color=line.get_color(), alpha=0.15, lw=0)
        ax.axvline(0.5, color="0.4", ls=":", lw=1)
        ax.text(0.5, 1.0, " axis Nyquist", transform=ax.get_xaxis_transform(), va="top", ha="left",
                fontsize=8, color="0.3")
        ax.set_xlabel("spatial frequency (cycles/pixel)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.set_title("high-frequency zoom (f >= %.2f)" % ZOOM_FROM if zoom else "full range")
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8, loc="outside right upper")
    fig.suptitle(title)
    return save_figure(fig, path)[0]


def image_grid(images: np.ndarray, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile ``(N, H, W, 3)`` uint8 images into one grid image (white padding)."""
    n, h, w = images.shape[:3]
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = im
    return grid


def save_figure(fig, path) -> list[Path]:
    """Write a matplotlib figure as ``path`` (PNG) and beside it as SVG; returns both paths."""
    import matplotlib.pyplot as plt

    path = Path(path)
    out = []
    for ext in (".png", ".svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext[1:], dpi=110, bbox_inches="tight")
        out.append(atomic_write_bytes(path.with_suffix(ext), buf.getvalue()))
    plt.close(fig)
    return out


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(scores: dict[str, dict[str, np.ndarray]], path, title: str) -> list[Path]:
    """One ROC panel per detector: held-out reals (``"real"``) vs each setup's fakes; when every panel
    shows the same setups, one legend for all (in the grid's empty slot, or beside the panels), else one
    per panel."""
    from sklearn.metrics import roc_curve

    plt = pyplot()
    dets = list(scores)
    cols = min(3, len(dets))
    rows = int(np.ceil(len(dets) / cols))
    groups = [[s for s in scores[d] if s != "real"] for d in dets]
    shared = all(g == groups[0] for g in groups)
    wide = shared and len(dets) == rows * cols  # the legend goes beside the panels
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols + 1.8 * wide, 4 * rows + 0.4), squeeze=False,
                             layout="constrained")
    for ax, det in zip(axes.flat, dets):
        sr = scores[det]["real"]
        for k, (setup, sf) in enumerate((s, v) for s, v in scores[det].items() if s != "real"):
            y = np.r_[np.zeros(len(sr)), np.ones(len(sf))]
            fpr, tpr, _ = roc_curve(y, np.r_[sr, sf])
            ax.plot(fpr, tpr, color=f"C{k % 10}", lw=1.5, label=setup)
        ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1)
        ax.set(title=det, xlabel="false-positive rate (reals called generated)", ylabel="true-positive rate")
        ax.grid(alpha=0.3)
        if not shared:
            ax.legend(fontsize=8, loc="lower right")
    spare = list(axes.flat)[len(dets):]
    for ax in spare:
        ax.axis("off")
    if shared:
        handles = axes.flat[0].get_legend_handles_labels()
        if spare:
            spare[0].legend(*handles, fontsize=9, loc="center", title="fakes of")
        else:
            fig.legend(*handles, fontsize=9, loc="outside right upper", title="fakes of")
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_matrix(matrix: dict, setups: Sequence[str], path, title: str, tested: Sequence[str] | None = None) -> list[Path]:
    """The train-on-i / test-on-j detection rates of each detector as heat maps (percent); rows are
    the ``setups`` trained on, columns the groups ``tested`` (default: the same setups). Beside each
    row, on the right, the real-image accuracy of the detectors trained on it (an always-"generated"
    detector would show 100 in every cell and 0 there)."""
    tested = list(tested or setups)
    plt = pyplot()
    dets = list(matrix)
    cols = min(3, len(dets))
    rows = int(np.ceil(len(dets) / cols))
    n, k = len(setups), len(tested)
    # inches: 0.5 per cell; beside a panel its tick labels and axis labels; below it the rotated tick labels
    below = 0.06 * max(len(s) for s in tested) + 1.2
    beside = 0.065 * max(len(s) for s in setups) + 1.4
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 + cols * (0.5 * k + beside), 0.5 + rows * (0.5 * n + below)),
                             squeeze=False, layout="constrained")
    for ax, det in zip(axes.flat, dets):
        m = np.array([[100 * matrix[det][t]["detection_rate"][s]["mean"] for s in tested] for t in setups])
        im = ax.imshow(m, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for (r, c), v in np.ndenumerate(m):
            ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=8, color="w" if v < 60 else "k")
        ax.set_xticks(range(k), tested, rotation=60, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_yticks(range(n), setups, fontsize=8)
        ax.set(title=det, xlabel="tested on", ylabel="trained on (real vs)")
        acc = ax.secondary_yaxis("right")
        acc.set_yticks(range(n), [f"{100 * matrix[det][t]['real_accuracy']['mean']:.0f}" for t in setups], fontsize=9)
        acc.tick_params(length=0)
        acc.set_ylabel("real accuracy (%)", fontsize=9)
    for ax in list(axes.flat)[len(dets):]:
        ax.axis("off")
    fig.get_layout_engine().set(wspace=0.08, hspace=0.06)  # one panel's right labels clear of the next one's left
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.9 / rows, aspect=12, label="detection rate (%)")
    fig.suptitle(title)
    return save_figure(fig, path)


def labelled_grid(groups: dict[str, np.ndarray], path, per_group: int = 8, min_px: int = 96) -> list[Path]:
    """One row of samples per group, each image upscaled (nearest) to at least ``min_px`` and labelled."""
    plt = pyplot()
    names = list(groups)
    h = max(g.shape[1] for g in groups.values())
    scale = max(1, int(np.ceil(min_px / h)))
    fig, axes = plt.subplots(len(names), 1, figsize=(per_group * scale * h / 100 + 1.2, len(names) * scale * h / 95 + 0.3),
                             squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        imgs = groups[name][:per_group]
        big = np.kron(image_grid(imgs, cols=per_group, pad=1), np.ones((scale, scale, 1), np.uint8))
        ax.imshow(big, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
    return save_figure(fig, path)
