"""The explanations block of the counterexample report: one relevance-per-frequency panel per
explained detector, and the table of where each group's relevance sits."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from forensics.explain.explainers import BANDS
from forensics.report.figures import pyplot, save_figure
from forensics.report.markdown import markdown_table


def plot_explanations(block: dict, path, title: str) -> list[Path] | None:
    """One panel per explained detector with a frequency axis: mean LRP relevance per frequency of
    each group (reals and each setup's fakes; positive speaks for generated), the bands of the table
    shaded. ``None`` when no detector has a frequency axis."""
    dets = [d for d, v in block["detectors"].items() if v["axis"] == "frequency"]
    if not dets:
        return None
    plt = pyplot()
    cols = min(2, len(dets))
    rows = int(np.ceil(len(dets) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.2 * rows), squeeze=False, layout="constrained")
    for ax, det in zip(axes.flat, dets):
        v = block["detectors"][det]
        name = det if v["explainer"] == det else f"{det} ({v['explainer']})"
        f = np.asarray(v["x"])
        n_groups = len(v["groups"])
        cmap = plt.get_cmap("tab10" if n_groups <= 11 else "tab20")
        for k, (g, e) in enumerate(v["groups"].items()):
            style = dict(color="k", lw=2.0, ls="--") if g == "real" else dict(color=cmap((k - 1) % cmap.N), lw=1.4)
            ax.plot(f, e["relevance_mean"], label=f"{g} (n={e['n']})", **style)
        for i, e in enumerate(BANDS[1:]):
            ax.axvline(e, color="0.75", lw=0.8, ls=":")
        ax.axhline(0, color="0.4", lw=0.6)
        ax.set(title=name, xlabel="normalised frequency (cycles/pixel; 0.5 = axis Nyquist)",
               ylabel="mean relevance (logit units; + = generated)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(dets):]:
        ax.axis("off")
    fig.suptitle(title)
    return save_figure(fig, path)


def explanations_text(block: dict) -> str:
    """Per explained detector, a table: each group's mean logit, share called generated and where
    its relevance sits (the band, or the feature, with the most relevance; sign + = generated)."""
    parts = []
    for det, v in block["detectors"].items():
        if v["axis"] == "frequency":
            head = ["group", "n", "mean logit", "called generated (%)", "band with most relevance (cycles/px)",
                    "its share of all bands' relevance", "peak frequency"]
            rows = [[g, e["n"], f"{e['mean_logit']:+.2f}", f"{100 * e['called_generated']:.0f}",
                     f"{e['top_band']} ({'+' if e['top_band_sign'] >= 0 else '−'})",
                     f"{100 * e['top_band_share']:.0f}%", f"{e['peak_frequency']:.3f}"] for g, e in v["groups"].items()]
        else:
            head = ["group", "n", "mean logit", "called generated (%)", "feature with most relevance",
                    "its share of all features' relevance"]
            rows = [[g, e["n"], f"{e['mean_logit']:+.2f}", f"{100 * e['called_generated']:.0f}",
                     f"{e['top_feature']} ({'+' if e['top_feature_sign'] >= 0 else '−'})",
                     f"{100 * e['top_feature_share']:.0f}%"] for g, e in v["groups"].items()]
        name = det if v["explainer"] == det else f"{det} ({v['explainer']})"
        parts += [f"**{name}** (relevance per {v['axis']})\n", markdown_table(head, rows), ""]
    return "\n".join(parts)
