"""The counterexample study's report: its tables (also what the CLI prints), spectra, ROC curves,
the train/test matrix and sample rows, as ``report.md`` and a self-contained ``report.html``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from forensics.explain.report import explanations_text, plot_explanations
from forensics.report.figures import Curve, labelled_grid, plot_matrix, plot_profiles, plot_roc
from forensics.report.markdown import fmt_ms, markdown_table, provenance, write_report


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

    rows = results["detectors"][detector] if detector is not None else results["default_model"]["groups"]
    return [[s] + images_cell(results, s) + [fmt_ms(v["detection_rate"]), fmt_ms(v["real_accuracy"]),
                                             fmt_ms(v["auc"], pct=False)] + fid_cells(s)
            for s, v in rows.items()]


def images_cell(results: dict, group: str) -> list[str]:
    """The "images" cell of a row when the study has diffusion-era sources: what the row's fakes are."""
    sources = results.get("sources")
    if not sources:
        return []
    s = sources.get(group)
    if s is None:
        return ["GAN samples"]
    return ["reconstructions" if s["kind"].startswith("ae-") else f"{s['kind']} samples"]


def results_header(results: dict) -> list[str]:
    h = ["setup"] + (["images"] if results.get("sources") else []) + ["detection rate (%)", "real accuracy (%)",
                                                                      "ROC-AUC"]
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
    dm = results.get("default_model")
    if dm:
        parts.append(f"**default model** ({dm['detector']}, `forensics detect`'s: trained on real images only, its "
                     f"stored threshold; on all {dm['n_real']} real images, one run)\n")
        parts.append(markdown_table(results_header(results), results_table(results, None)))
        parts.append("")
    if results.get("sources"):
        parts.append("Diffusion-era sources: " + "; ".join(
            f"{k}: {v['output']}, {v['preset']} preset, {v['steps']} steps"
            + (f" (first stage {v['first_stage_steps']})" if "first_stage_steps" in v else "")
            for k, v in results["sources"].items()) + ".\n")
    return "\n".join(parts)


#: the rows of the time table: (label, key in ``Study.timings``; ``"train "`` sums every ``"train <source>"``)
STAGE_TIMES = (("real images", "real"), ("GAN training", "train "), ("fakes sampled", "fakes"),
               ("features", "features"), ("detectors (train + score)", "detectors"),
               ("explanations (LRP)", "explanations"), ("FID/KID", "fid"), ("report", "report"))


def fmt_seconds(seconds: float) -> str:
    """``"8.4 s"``, or ``"3 min 05 s"`` from a minute on."""
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s"


def timings_text(timings: dict[str, dict[str, float]]) -> str:
    """The wall-clock time of each stage (:data:`STAGE_TIMES`) and the total as a Markdown table, one
    column per study (``{column title: Study.timings}``, e.g. one per GAN seed), with each stage's share
    of the total when there is one study; "–": nothing computed (cached, or not part of the study)."""
    one = len(timings) == 1
    rows = []
    for label, key in STAGE_TIMES + (("total", "total"),):
        cells = []
        for t in timings.values():
            if key.endswith(" "):
                runs = [v for k, v in t.items() if k.startswith(key)]
                sec, note = (sum(runs), f" ({len(runs)} run{'s' if len(runs) != 1 else ''})") if runs else (None, "")
            else:
                sec, note = t.get(key), ""
            cells.append("–" if sec is None else fmt_seconds(sec) + note)
            if one:
                cells.append("–" if sec is None else f"{100 * sec / max(t['total'], 1e-9):.0f}%")
        rows.append([label] + cells)
    return markdown_table(["stage"] + (["time", "share"] if one else list(timings)), rows)


def seeds_text(summary: dict) -> str:
    """The spread over GAN seeds (:func:`forensics.study.seeds.summarise_seeds`) as Markdown: per
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
    from forensics.spectral import spectrum

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
          "would score 100% detection and 0% here). *ROC-AUC*: held-out reals vs that setup's fakes."
          + (" Diffusion-era rows (autoencoders, DDPM, latent diffusion; `KIND[-fF]:SPEC`, the spec on every "
             "decoder or U-Net up-block) are shown to the same detectors, which never saw one."
             if results.get("sources") else ""), "",
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
