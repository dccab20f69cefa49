"""``forensics robustness``: a detector's AUC and TPR at 5 % FPR as an image perturbation grows.

Perturbations (strength 0 is the clean images): ``jpeg`` (quality; lower is stronger),
``resize`` (scale factor, with a named filter), ``blur`` (Gaussian sigma, px), ``noise``
(additive Gaussian sigma in 0..255 grey levels) and ``crop`` (fraction of each side kept,
centred). Each is applied identically to real and generated images: the same code and the same
strength, and noise drawn from a generator seeded by the run's seed, the strength and the
file's position (so a rerun gives the same images, and a run on Dask workers, ``scheduler``, the
same images and numbers as one process). Folders are streamed, never held whole.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forensics.core.config import Config, Range, Seed
from forensics.detection.scoring import score_paths
from forensics.detectors.store import load_model
from forensics.io.engine import engine, parse_scheduler
from forensics.io.files import write_config, write_csv, write_json
from forensics.io.processing import RESIZE_FILTERS, perturb
from forensics.metrics.rates import binary_metrics

#: default strengths per perturbation (the clean images are always measured as well)
DEFAULT_STRENGTHS = {
    "jpeg": (95, 90, 75, 50, 30),
    "resize": (0.5, 0.75, 1.5, 2.0),
    "blur": (0.5, 1.0, 2.0),
    "noise": (1.0, 2.0, 5.0, 10.0),
    "crop": (0.9, 0.75, 0.5),
}
#: the strengths each perturbation takes (checked when the config is built)
STRENGTH_RANGES = {"jpeg": Range(1, 100), "resize": Range(0, lo_open=True), "blur": Range(0, lo_open=True),
                   "noise": Range(0), "crop": Range(0, 1, lo_open=True)}
UNITS = {"jpeg": "JPEG quality", "resize": "scale factor", "blur": "Gaussian blur sigma (px)",
         "noise": "noise sigma (grey levels)", "crop": "fraction of each side kept"}


@dataclass(frozen=True)
class Perturbation:
    """``transform(images, positions)`` of :func:`forensics.detection.scoring.score_paths`: one
    perturbation at one strength, picklable for Dask workers (seeded by file position, not by
    chunk or worker)."""

    kind: str
    strength: float
    seed: int = 0
    resize_filter: str = "bilinear"

    def __call__(self, images, positions=None):
        return perturb(images, self.kind, self.strength, self.seed, positions, self.resize_filter)


@dataclass(frozen=True)
class RobustnessConfig(Config):
    model: str
    real: str
    fake: str
    out: str
    perturbations: tuple[str, ...] = tuple(DEFAULT_STRENGTHS)
    strengths: dict = field(default_factory=dict)  # kind -> list of strengths; default DEFAULT_STRENGTHS
    resize_filter: str = "bilinear"
    seed: Seed = 0
    preprocess: str | None = None
    scheduler: str | None = None  # a Dask scheduler address, or local / local:N (None: this process)

    def validate(self):
        bad = sorted(set(self.perturbations) - set(DEFAULT_STRENGTHS))
        if bad or not self.perturbations:
            raise ValueError(f"unknown perturbation(s) {bad}; choose from {', '.join(DEFAULT_STRENGTHS)}")
        bad = sorted(set(self.strengths) - set(DEFAULT_STRENGTHS))
        if bad:
            raise ValueError(f"strengths given for unknown perturbation(s) {bad}")
        for kind, levels in self.strengths.items():  # the perturbation's own range, before any image is read
            if not isinstance(levels, (list, tuple)) or not levels:
                raise ValueError(f"{kind} strengths must be a non-empty list of numbers, got {levels!r}")
            for s in levels:
                STRENGTH_RANGES[kind].check(f"{kind} strength", s)
        if self.resize_filter not in RESIZE_FILTERS:
            raise ValueError(f"unknown resize filter {self.resize_filter!r}; choose from {', '.join(RESIZE_FILTERS)}")
        if self.scheduler is not None:
            parse_scheduler(self.scheduler)

    def levels(self, kind: str) -> tuple:
        return tuple(self.strengths.get(kind, DEFAULT_STRENGTHS[kind]))


def robustness(cfg: RobustnessConfig, progress: bool = True) -> dict:
    """Measure ``cfg.model`` on perturbed real and generated folders; writes
    ``robustness.json``, ``robustness.csv``, one plot per perturbation and ``config.json``."""
    det = load_model(cfg.model)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    thr = float(det.threshold_)

    def measure(kind, s, c):
        tf = None if kind is None else Perturbation(kind, s, cfg.seed, cfg.resize_filter)
        _, r, _ = score_paths(det, cfg.real, cfg.preprocess, tf, desc=f"real {kind or 'clean'} {s}", progress=progress,
                              client=c, model_dir=cfg.model)
        _, f, _ = score_paths(det, cfg.fake, cfg.preprocess, tf, desc=f"generated {kind or 'clean'} {s}",
                              progress=progress, client=c, model_dir=cfg.model)
        m = binary_metrics(r[np.isfinite(r)], f[np.isfinite(f)], thr)
        return {"perturbation": kind or "none", "strength": s, "auc": m["auc"], "tpr_at_5pct_fpr": m["tpr_at_5pct_fpr"],
                "real_accuracy": m["real_accuracy"], "generated_accuracy": m["generated_accuracy"],
                "n_real": m["n_real"], "n_generated": m["n_generated"]}

    curves = {}
    with engine(cfg.scheduler) as c:  # one cluster for every perturbation and strength
        clean = measure(None, 0, c)
        rows = [clean]
        for kind in cfg.perturbations:
            curves[kind] = [measure(kind, s, c) for s in cfg.levels(kind)]
            rows += curves[kind]
    write_json(out / "robustness.json", {"model": cfg.model, "detector": det.name, "threshold": thr,
                                         "clean": clean, "curves": curves, "units": UNITS,
                                         "resize_filter": cfg.resize_filter})
    write_csv(out / "robustness.csv", rows, ["perturbation", "strength", "auc", "tpr_at_5pct_fpr", "real_accuracy",
                                             "generated_accuracy", "n_real", "n_generated"])
    _plots(out, det.name, clean, curves, cfg.resize_filter)
    write_config(out, {"command": "robustness", "config": cfg.to_dict()})
    return {"clean": clean, "curves": curves, "out": str(out)}


def _plots(out: Path, name: str, clean: dict, curves: dict, resize_filter: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for kind, rows in curves.items():
        fig, ax = plt.subplots(figsize=(5, 3.6))
        xs = [r["strength"] for r in rows]
        for key, label in (("auc", "ROC-AUC"), ("tpr_at_5pct_fpr", "TPR at 5 % FPR"),
                           ("real_accuracy", "real accuracy (stored threshold)")):
            ax.plot(xs, [r[key] for r in rows], "o-", label=label)
            ax.axhline(clean[key], ls=":", lw=0.8, color=ax.lines[-1].get_color())
        if kind == "jpeg":
            ax.invert_xaxis()
        unit = UNITS[kind] + (f", {resize_filter}" if kind == "resize" else "")
        ax.set(xlabel=unit, ylim=(-0.02, 1.02), title=f"{name}: {kind} (dotted: clean)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        for ext in ("png", "svg"):
            fig.savefig(out / f"{kind}.{ext}", dpi=120)
        plt.close(fig)


def summary_line(result: dict) -> str:
    """One line of a :func:`robustness` result: the clean AUC, the worst perturbation and those that
    could not be scored (images too small for the detector after the perturbation)."""
    rows = [row for rows in result["curves"].values() for row in rows]
    scored = [row for row in rows if np.isfinite(row["auc"])]
    unscored = [f"{row['perturbation']} {row['strength']:g}" for row in rows if not np.isfinite(row["auc"])]
    worst = min(scored, key=lambda x: x["auc"]) if scored else None
    return (f"clean AUC {result['clean']['auc']:.3f}"
            + (f"; worst {worst['perturbation']} {worst['strength']:g}: AUC {worst['auc']:.3f}" if worst else "")
            + (f"; not scorable (images too small for the detector): {', '.join(unscored)}" if unscored else ""))
