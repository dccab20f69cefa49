"""Figures and reports: spectrum plots, sample grids, Markdown/HTML tables."""
from __future__ import annotations

import base64
import html
import io
import json
import re
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


def plot_profiles(curves: Sequence[Curve], path, title: str = "Azimuthal spectrum",
                  ylabel: str = "mean log magnitude (dB)") -> Path:
    """Two panels: full frequency range and the high-frequency zoom, mean ± 1 std."""
    plt = _pyplot()
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
    """Self-contained HTML of a report's Markdown (Python-Markdown with tables and fenced code);
    local PNG/SVG images are embedded as data URIs so the file can be mailed on its own."""
    import markdown

    body = markdown.markdown(md, extensions=["tables", "fenced_code"], output_format="html")

    def embed(m):
        src = html.unescape(m.group(2))
        f = base / src
        if "://" in src or src.startswith("data:") or not f.is_file():
            return m.group(0)
        mime = {".png": "image/png", ".svg": "image/svg+xml"}.get(f.suffix.lower(), "application/octet-stream")
        return f'{m.group(1)}"data:{mime};base64,{base64.b64encode(f.read_bytes()).decode("ascii")}"'

    body = re.sub(r'(<img[^>]*?src=)"([^"]+)"', embed, body)
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;"
             "text-align:right}th{background:#eee}img{max-width:100%}pre{background:#f5f5f5;padding:1em;"
             "overflow-x:auto}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n{body}\n</body></html>\n")


def provenance() -> dict:
    """Versions, date and (in a git checkout) the commit, for a report's configuration block."""
    import datetime
    import platform
    import subprocess

    import forensics

    info = {"forensics": forensics.__version__, "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    for mod in ("numpy", "torch", "sklearn", "scipy"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(forensics.__file__).parent,
                                capture_output=True, text=True, timeout=5)
        if commit.returncode == 0:
            info["commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(scores: dict[str, dict[str, np.ndarray]], path, title: str) -> list[Path]:
    """One ROC panel per detector: held-out reals (``"real"``) vs each setup's fakes."""
    from sklearn.metrics import roc_curve

    plt = _pyplot()
    dets = list(scores)
    cols = min(3, len(dets))
    rows = int(np.ceil(len(dets) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4 * rows), squeeze=False)
    for ax, det in zip(axes.flat, dets):
        sr = scores[det]["real"]
        for k, (setup, sf) in enumerate((s, v) for s, v in scores[det].items() if s != "real"):
            y = np.r_[np.zeros(len(sr)), np.ones(len(sf))]
            fpr, tpr, _ = roc_curve(y, np.r_[sr, sf])
            ax.plot(fpr, tpr, color=f"C{k % 10}", lw=1.5, label=setup)
        ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1)
        ax.set(title=det, xlabel="false-positive rate (reals called generated)", ylabel="true-positive rate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    for ax in list(axes.flat)[len(dets):]:
        ax.axis("off")
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_matrix(matrix: dict, setups: Sequence[str], path, title: str, tested: Sequence[str] | None = None) -> list[Path]:
    """The train-on-i / test-on-j detection rates of each detector as heat maps (percent); rows are
    the ``setups`` trained on, columns the groups ``tested`` (default: the same setups)."""
    tested = list(tested or setups)
    plt = _pyplot()
    dets = list(matrix)
    cols = min(3, len(dets))
    rows = int(np.ceil(len(dets) / cols))
    n, k = len(setups), len(tested)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 + 0.75 * k * cols, 1.2 + 0.6 * n * rows), squeeze=False)
    for ax, det in zip(axes.flat, dets):
        m = np.array([[100 * matrix[det][t]["detection_rate"][s]["mean"] for s in tested] for t in setups])
        ax.imshow(m, vmin=0, vmax=100, cmap="viridis")
        for (r, c), v in np.ndenumerate(m):
            ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=8, color="w" if v < 60 else "k")
        ax.set_xticks(range(k), tested, rotation=60, fontsize=8)
        ax.set_yticks(range(n), setups, fontsize=8)
        ax.set(title=det, xlabel="tested on", ylabel="trained on (real vs)")
    for ax in list(axes.flat)[len(dets):]:
        ax.axis("off")
    fig.suptitle(title)
    return save_figure(fig, path)


def labelled_grid(groups: dict[str, np.ndarray], path, per_group: int = 8, min_px: int = 96) -> list[Path]:
    """One row of samples per group, each image upscaled (nearest) to at least ``min_px`` and labelled."""
    plt = _pyplot()
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


def plot_explanations(block: dict, path, title: str) -> list[Path] | None:
    """One panel per explained detector with a frequency axis: mean LRP relevance per frequency of
    each group (reals and each setup's fakes; positive speaks for generated), the bands of the table
    shaded. ``None`` when no detector has a frequency axis."""
    dets = [d for d, v in block["detectors"].items() if v["axis"] == "frequency"]
    if not dets:
        return None
    from forensics.explain import BANDS

    plt = _pyplot()
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


def write_report(folder, md: str, title: str) -> tuple[Path, Path]:
    """``report.md`` and a self-contained ``report.html`` in ``folder``."""
    folder = Path(folder)
    p_md = atomic_write_text(folder / "report.md", md)
    p_html = atomic_write_text(folder / "report.html", markdown_to_html(md, folder, title))
    return p_md, p_html


# ------------------------------------------------------------------ counterexample report
def results_table(results: dict, detector: str) -> list[list[str]]:
    """Rows ``setup, detection rate, real accuracy, ROC-AUC`` (percent, mean ± std), and the source's
    FID and KID (x 1000, mean ± std over subsets; no spread when one subset is all of both sets) when the
    study measured them."""
    fid = results.get("fid") or None

    def fid_cells(s):
        if fid is None:
            return []
        if s not in fid:
            return ["–", "–"]
        f = fid[s]
        spread = f" ± {1000 * f['kid_std']:.1f}" if f.get("kid_subsets", 2) > 1 else ""  # one subset: no spread
        return [f"{f['fid']:.1f}", f"{1000 * f['kid']:.1f}{spread}"]

    return [[s, fmt_ms(v["detection_rate"]), fmt_ms(v["real_accuracy"]), fmt_ms(v["auc"], pct=False)] + fid_cells(s)
            for s, v in results["detectors"][detector].items()]


def results_header(results: dict) -> list[str]:
    h = ["setup", "detection rate (%)", "real accuracy (%)", "ROC-AUC"]
    fid = results.get("fid")
    if fid:
        first = next(iter(fid.values()))
        h += [f"FID ({first['mode']}, {first['n_fake']} vs {first['n_real']})", "KID x 1000"]
    return h


def results_text(results: dict) -> str:
    """The main table of every detector as Markdown (also what the CLI prints)."""
    cfg = results["config"]
    parts = []
    from forensics.detectors import make_detector

    reps = f"{cfg['reps']} repetition{'s' if cfg['reps'] != 1 else ''}"
    for det in results["detectors"]:
        try:
            real_only = getattr(make_detector(det), "real_only", False)
        except (ValueError, KeyError):
            real_only = False
        how = (f"trained on {cfg['n_train']} real images only" if real_only
               else f"trained on real vs baseline, {cfg['n_train']} + {cfg['n_train']} images")
        parts.append(f"**{det}** ({how}, {reps}; mean ± std)\n")
        parts.append(markdown_table(results_header(results), results_table(results, det)))
        parts.append("")
    return "\n".join(parts)


def seeds_text(summary: dict) -> str:
    """The spread over GAN seeds (:func:`forensics.experiment.summarise_seeds`) as Markdown: per
    detector, mean ± std over seeds of each seed's mean, and the range [min, max]."""
    n = len(summary["seeds"])
    parts = [f"Over {n} GAN seeds ({', '.join(map(str, summary['seeds']))}): mean ± std across seeds of each "
             f"study's mean, [min – max] across seeds.\n"]

    def cell(d, pct=True):
        k = 100 if pct else 1
        f = "{:.1f}" if pct else "{:.3f}"
        return (f"{f.format(k * d['mean'])} ± {f.format(k * d['std'])} "
                f"[{f.format(k * d['min'])} – {f.format(k * d['max'])}]")

    for det, per_setup in summary["detectors"].items():
        parts.append(f"**{det}**\n")
        rows = [[s, cell(v["detection_rate"]), cell(v["real_accuracy"]), cell(v["auc"], pct=False)]
                for s, v in per_setup.items()]
        parts.append(markdown_table(["setup", "detection rate (%)", "real accuracy (%)", "ROC-AUC"], rows))
        parts.append("")
    return "\n".join(parts)


def write_experiment_report(folder, results: dict, real: np.ndarray, fakes: dict,
                            scores: dict | None = None) -> tuple[Path, Path]:
    """``report.md`` + ``report.html`` of a counterexample study: tables, spectra, ROC curves (one
    repetition's held-out scores), the train/test matrix as heat maps, labelled sample rows; every
    figure as PNG and SVG."""
    from forensics import spectrum

    folder = Path(folder)
    cfg = results["config"]
    setups = cfg["setups"]
    tested = list(fakes)  # every source's label (the setups first)
    h, w = real.shape[1:3]
    freqs = spectrum.profile_frequencies(h, w)
    curves = []
    for label, imgs in [("real", real)] + list(fakes.items()):
        p = spectrum.azimuthal_profile(imgs)
        curves.append(Curve(label, freqs, p.mean(0), p.std(0), len(imgs)))
    plot_profiles(curves, folder / "spectra.png",
                  title=f"{cfg['gan']} at {cfg['size']} px: mean azimuthal spectrum of each setup vs real")
    rng = np.random.default_rng(0)
    groups = {"real": real[np.sort(rng.choice(len(real), min(8, len(real)), replace=False))], **fakes}
    labelled_grid(groups, folder / "samples.png")
    plot_matrix(results["matrix"], setups, folder / "matrix.png",
                "detection rate (%) when trained on real vs the row's setup", tested=tested)
    md = [f"# Counterexample study: {cfg['gan']}, {cfg['size']}x{cfg['size']}", "",
          "Detectors are trained on real images vs the **baseline** GAN (transposed convolutions throughout), "
          "then shown the fakes of GANs that differ only in their last upsampling layer. "
          "*Detection rate*: share of a setup's fakes called generated (0% = fully bypassed). "
          "*Real accuracy*: share of held-out real images called real (an always-'generated' detector "
          "would score 100% detection and 0% here). *ROC-AUC*: held-out reals vs that setup's fakes.", "",
          "## Results", "", results_text(results)]
    if scores:
        plot_roc(scores, folder / "roc.png", "ROC: held-out reals vs each setup (repetition 0, trained on baseline)")
        md += ["## ROC curves", "", "![ROC curves per detector and setup](roc.png)", ""]
    md += ["## Trained on real vs setup i, tested on setup j", "",
           "![detection rate heat maps](matrix.png)", ""]
    for det, m in results["matrix"].items():
        md.append(f"**{det}** (detection rate %)\n")
        rows = [[t, fmt_ms(m[t]["real_accuracy"])] + [fmt_ms(m[t]["detection_rate"][s]) for s in tested] for t in setups]
        md.append(markdown_table(["trained on", "real acc."] + [f"→ {s}" for s in tested], rows))
        md.append("")
    if results.get("explanations"):
        ex = results["explanations"]
        md += ["## Which frequencies drive the verdict", "",
               "LRP relevance of each explainable detector's logit (trained on real vs baseline, repetition 0), "
               f"averaged over {ex['images']}: positive relevance is evidence for *generated*, negative for *real*; "
               "an image's relevances add up to its logit. The band with most relevance is the one whose summed "
               "mean relevance is largest in magnitude (bands: " + ", ".join(
                   next((v["bands"] for v in ex["detectors"].values() if "bands" in v), [])) + " cycles/pixel).", ""]
        if plot_explanations(ex, folder / "explanations.png", "mean LRP relevance per frequency, per group"):
            md += ["![relevance per frequency, one panel per detector](explanations.png)", ""]
        md += [explanations_text(ex)]
    md += ["## Spectra", "", "![mean azimuthal spectra, full range and high-frequency zoom](spectra.png)", "",
           "## Samples", "", "![one row per group: real, then each setup](samples.png)", "",
           "## Configuration", "", "```", json.dumps({**cfg, "provenance": provenance()}, indent=2, default=str), "```",
           "", "Outputs: results.json (all figures), runs/<setup>/ (GAN runs), fakes/<setup>/ (PNGs), "
           "features/ (cached features), config.json; every figure also as .svg."]
    return write_report(folder, "\n".join(md) + "\n", f"Counterexample study: {cfg['gan']}")
