"""Figures and reports: spectrum plots, sample grids, Markdown/HTML tables."""
from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from forensics.io import atomic_write_bytes, atomic_write_text

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


def _figure_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def plot_profiles(curves: Sequence[Curve], path, title: str = "Azimuthal spectrum",
                  ylabel: str = "mean log magnitude (dB)") -> Path:
    """Two panels: full frequency range and the high-frequency zoom, mean ± 1 std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
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
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(title)
    return atomic_write_bytes(path, _figure_bytes(fig))


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


def png_bytes(img: np.ndarray) -> bytes:
    """Lossless PNG encoding of a uint8 RGB image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path, img: np.ndarray) -> Path:
    return atomic_write_bytes(path, png_bytes(img))


def fmt_ms(d: dict, pct: bool = True) -> str:
    """``{"mean", "std"}`` as ``"93.0 ± 2.1"`` (percent) or ``"0.930 ± 0.021"``."""
    if d is None or not np.isfinite(d.get("mean", np.nan)):
        return "n/a"
    return f"{100 * d['mean']:.1f} ± {100 * d['std']:.1f}" if pct else f"{d['mean']:.3f} ± {d['std']:.3f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def markdown_to_html(md: str, base: Path, title: str) -> str:
    """A small, self-contained HTML rendering of the reports' Markdown (headings, tables,
    paragraphs, code blocks, images embedded as base64 data URIs)."""
    lines = md.splitlines()
    out, i = [], 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append("<pre>" + html.escape("\n".join(lines[i + 1:j])) + "</pre>")
            i = j + 1
            continue
        if ln.startswith("#"):
            level = len(ln) - len(ln.lstrip("#"))
            out.append(f"<h{level}>{html.escape(ln[level:].strip())}</h{level}>")
        elif ln.startswith("|") and i + 1 < len(lines) and set(lines[i + 1].replace("|", "").strip()) <= set("-: "):
            head = [c.strip() for c in ln.strip("|").split("|")]
            j = i + 2
            body = []
            while j < len(lines) and lines[j].startswith("|"):
                body.append([c.strip() for c in lines[j].strip("|").split("|")])
                j += 1
            out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</table>")
            i = j
            continue
        elif ln.startswith("![") and "](" in ln:
            alt = ln[2:ln.index("](")]
            src = ln[ln.index("](") + 2:ln.rindex(")")]
            data = base64.b64encode((base / src).read_bytes()).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{html.escape(alt)}</figcaption></figure>")
        elif ln.strip():
            out.append(f"<p>{html.escape(ln)}</p>")
        i += 1
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;"
             "text-align:right}th{background:#eee}img{max-width:100%}pre{background:#f5f5f5;padding:1em;"
             "overflow-x:auto}figcaption{font-size:0.85em;color:#555}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")


def write_report(folder, md: str, title: str) -> tuple[Path, Path]:
    """``report.md`` and a self-contained ``report.html`` in ``folder``."""
    folder = Path(folder)
    p_md = atomic_write_text(folder / "report.md", md)
    p_html = atomic_write_text(folder / "report.html", markdown_to_html(md, folder, title))
    return p_md, p_html


# ------------------------------------------------------------------ counterexample report
def results_table(results: dict, detector: str) -> list[list[str]]:
    """Rows ``setup, detection rate, real accuracy, ROC-AUC`` (percent, mean ± std)."""
    return [[s, fmt_ms(v["detection_rate"]), fmt_ms(v["real_accuracy"]), fmt_ms(v["auc"], pct=False)]
            for s, v in results["detectors"][detector].items()]


def results_text(results: dict) -> str:
    """The main table of every detector as Markdown (also what the CLI prints)."""
    cfg = results["config"]
    parts = []
    for det in results["detectors"]:
        parts.append(f"**{det}** (trained on real vs baseline, {cfg['n_train']} + {cfg['n_train']} images, "
                     f"{cfg['reps']} repetitions; mean ± std)\n")
        parts.append(markdown_table(["setup", "detection rate (%)", "real accuracy (%)", "ROC-AUC"],
                                    results_table(results, det)))
        parts.append("")
    return "\n".join(parts)


def write_experiment_report(folder, results: dict, real: np.ndarray, fakes: dict) -> tuple[Path, Path]:
    """``report.md`` + ``report.html`` of a counterexample run, with the spectra figure
    and one sample grid per setup."""
    from forensics import spectrum

    folder = Path(folder)
    cfg = results["config"]
    h, w = real.shape[1:3]
    freqs = spectrum.profile_frequencies(h, w)
    curves = []
    for label, imgs in [("real", real)] + list(fakes.items()):
        p = spectrum.azimuthal_profile(imgs)
        curves.append(Curve(label, freqs, p.mean(0), p.std(0), len(imgs)))
    plot_profiles(curves, folder / "spectra.png",
                  title=f"{cfg['gan']} at {cfg['size']} px: mean azimuthal spectrum of each setup vs real")
    rng = np.random.default_rng(0)
    write_png(folder / "samples_real.png", image_grid(real[np.sort(rng.choice(len(real), 64, replace=False))], cols=8))
    for s, imgs in fakes.items():
        write_png(folder / f"samples_{s}.png", image_grid(imgs[:64], cols=8))
    md = [f"# Counterexample study: {cfg['gan']}, {cfg['size']}x{cfg['size']}", "",
          "Detectors are trained on real images vs the **baseline** GAN (transposed convolutions throughout), "
          "then shown the fakes of GANs that differ only in their last upsampling layer. "
          "*Detection rate*: share of a setup's fakes called generated (0% = fully bypassed). "
          "*Real accuracy*: share of held-out real images called real (an always-'generated' detector "
          "would score 100% detection and 0% here). *ROC-AUC*: held-out reals vs that setup's fakes.", "",
          "## Results", "", results_text(results),
          "## Trained on real vs setup i, tested on setup j (detection rate %)", ""]
    setups = cfg["setups"]
    for det, m in results["matrix"].items():
        md.append(f"**{det}**\n")
        rows = [[t, fmt_ms(m[t]["real_accuracy"])] + [fmt_ms(m[t]["detection_rate"][s]) for s in setups] for t in setups]
        md.append(markdown_table(["trained on", "real acc."] + [f"→ {s}" for s in setups], rows))
        md.append("")
    md += ["## Spectra", "", "![mean azimuthal spectra, full range and high-frequency zoom](spectra.png)", "",
           "## Samples", "", "![real images](samples_real.png)", ""]
    md += [f"![{s}](samples_{s}.png)\n" for s in setups]
    md += ["## Configuration", "", "```", json.dumps(cfg, indent=2, default=str), "```", "",
           "Outputs: results.json (all figures), runs/<setup>/ (GAN runs), fakes/<setup>/ (PNGs), "
           "features/ (cached features), config.json."]
    return write_report(folder, "\n".join(md) + "\n", f"Counterexample study: {cfg['gan']}")
