"""``forensics evaluate``: a saved detector on labelled folders (AUC, AP, accuracies, TPR at 1 % and 5 % FPR, plots).

Label convention: 1 = generated, 0 = real; a score is P(generated), an image is called generated
when ``score > threshold``. Folders are streamed through the detector chunk by chunk (as
``forensics detect`` does), so only scores are held, never a folder's images.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forensics.core.config import Config, Probability
from forensics.detection.scoring import score_paths
from forensics.detectors.store import load_model
from forensics.io.engine import engine
from forensics.io.files import atomic_write_text, write_config, write_csv, write_json
from forensics.metrics.rates import binary_metrics


def split_layout(root) -> list[tuple[str, Path, Path]]:
    """``(name, real_dir, fake_dir)`` of a ``0_real``/``1_fake`` layout: ``root`` itself, or
    each subfolder of ``root`` that has one (CNNDetection's test sets)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    if (root / "0_real").is_dir() and (root / "1_fake").is_dir():
        return [(root.name, root / "0_real", root / "1_fake")]
    out = [(d.name, d / "0_real", d / "1_fake") for d in sorted(root.iterdir())
           if (d / "0_real").is_dir() and (d / "1_fake").is_dir()]
    if not out:
        raise FileNotFoundError(f"{root}: has no 0_real/ and 1_fake/ folders (nor subfolders with them)")
    return out


@dataclass(frozen=True)
class EvaluateConfig(Config):
    model: str
    out: str
    real: tuple[str, ...] = ()
    fake: tuple[str, ...] = ()
    layout: str | None = None  # a 0_real/1_fake root
    preprocess: str | None = None  # None: the model's stored policy
    threshold: Probability | None = None  # None: the model's stored threshold (a probability of generated)
    plots: bool = True
    scheduler: str | None = None  # a Dask scheduler address, or local / local:N (None: this process)

    def validate(self):
        if self.layout is None and (not self.real or not self.fake):
            raise ValueError("evaluation needs real and generated folders, or a 0_real/1_fake folder")
        if self.scheduler is not None:
            from forensics.io.engine import parse_scheduler

            parse_scheduler(self.scheduler)


def _plot_curves(out: Path, real: np.ndarray, groups: dict[str, np.ndarray], title: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    written = []
    for kind in ("roc", "pr"):
        fig, ax = plt.subplots(figsize=(5, 4.5))
        for name, f in groups.items():
            if not len(f) or not len(real):
                continue
            y, s = np.r_[np.zeros(len(real)), np.ones(len(f))], np.r_[real, f]
            if kind == "roc":
                x_, y_, _ = roc_curve(y, s)
                ax.plot(x_, y_, label=name)
            else:
                p_, r_, _ = precision_recall_curve(y, s)
                ax.plot(r_, p_, label=name)
        if kind == "roc":
            ax.plot([0, 1], [0, 1], ":", color="grey")
            ax.set(xlabel="false-positive rate (real called generated)", ylabel="true-positive rate")
        else:
            ax.set(xlabel="recall (generated found)", ylabel="precision")
        ax.set_title(f"{title}: {kind.upper()}")
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        for ext in ("png", "svg"):
            fig.savefig(out / f"{kind}.{ext}", dpi=120)
            written.append(f"{kind}.{ext}")
        plt.close(fig)
    return written


def _fmt(v, pct=True):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{100 * v:.1f}" if pct else f"{v:.3f}"


def evaluate(cfg: EvaluateConfig, progress: bool = True) -> dict:
    """Score labelled folders with a saved model; write ``evaluation.json``, ``scores.csv``,
    ``report.md``, ROC/PR plots and ``config.json`` into ``cfg.out``. Returns the summary."""
    det = load_model(cfg.model)
    thr = float(cfg.threshold if cfg.threshold is not None else det.threshold_)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.layout is not None:
        pairs = split_layout(cfg.layout)
        reals = [str(p[1]) for p in pairs]
        fakes = [(p[0] if len(pairs) > 1 else p[2].name, str(p[2])) for p in pairs]
    else:
        reals = list(cfg.real)
        names = [Path(f).name or str(f) for f in cfg.fake]
        fakes = [(n if names.count(n) == 1 else str(f), str(f)) for n, f in zip(names, cfg.fake)]

    rows, errors = [], {}
    real_scores = []
    gen = {}
    with engine(cfg.scheduler) as c:  # one cluster for every folder
        for d in reals:
            files, s, err = score_paths(det, d, cfg.preprocess, desc=f"real {Path(d).name}", progress=progress,
                                        client=c, model_dir=cfg.model)
            errors.update(err)
            real_scores.append(s)
            rows += [{"path": str(p), "label": 0, "group": "real", "score": v} for p, v in zip(files, s)]
        for name, d in fakes:
            files, s, err = score_paths(det, d, cfg.preprocess, desc=f"generated {name}", progress=progress,
                                        client=c, model_dir=cfg.model)
            errors.update(err)
            gen[name] = np.concatenate([gen.get(name, np.zeros(0)), s])
            rows += [{"path": str(p), "label": 1, "group": name, "score": v} for p, v in zip(files, s)]
    real = np.concatenate(real_scores)
    ok = lambda a: a[np.isfinite(a)]  # noqa: E731
    real_ok = ok(real)
    all_fake = np.concatenate([ok(v) for v in gen.values()]) if gen else np.zeros(0)
    overall = binary_metrics(real_ok, all_fake, thr)
    per = {k: binary_metrics(real_ok, ok(v), thr) for k, v in gen.items()}
    summary = {"model": str(cfg.model), "detector": det.name, "threshold": thr,
               "overall": overall, "per_generator": per, "n_errors": len(errors),
               "errors": [{"path": k, "reason": v} for k, v in sorted(errors.items())]}
    write_json(out / "evaluation.json", summary)
    write_csv(out / "scores.csv", [{**r, "score": None if not np.isfinite(r["score"]) else round(float(r["score"]), 6),
                                    "error": errors.get(r["path"])} for r in rows],
              ["path", "label", "group", "score", "error"])
    plots = _plot_curves(out, real_ok, {k: ok(v) for k, v in gen.items()}, det.name) if cfg.plots else []
    write_config(out, {"command": "evaluate", "config": cfg.to_dict()})
    atomic_write_text(out / "report.md", _report(summary, plots))
    return summary


def _report(s: dict, plots: list[str]) -> str:
    o = s["overall"]
    c = o["confusion"]
    lines = [f"# Evaluation of `{s['detector']}` ({s['model']})", "",
             f"Threshold {s['threshold']:.4g} (score > threshold = generated). "
             f"{o['n_real']} real, {o['n_generated']} generated images; {s['n_errors']} could not be scored.", "",
             "| metric | value |", "|---|---|",
             f"| ROC-AUC | {_fmt(o['auc'], False)} |", f"| average precision | {_fmt(o['average_precision'], False)} |",
             f"| accuracy | {_fmt(o['accuracy'])} % |", f"| balanced accuracy | {_fmt(o['balanced_accuracy'])} % |",
             f"| real accuracy | {_fmt(o['real_accuracy'])} % |", f"| generated accuracy | {_fmt(o['generated_accuracy'])} % |",
             f"| TPR at 1 % FPR | {_fmt(o['tpr_at_1pct_fpr'])} % |", f"| TPR at 5 % FPR | {_fmt(o['tpr_at_5pct_fpr'])} % |",
             "", "Confusion matrix (rows: truth, columns: verdict)", "",
             "| | called real | called generated |", "|---|---|---|",
             f"| real | {c['tn']} | {c['fp']} |", f"| generated | {c['fn']} | {c['tp']} |", "",
             "## Per generator (against all real images)", "",
             "| generator | n | detected % | AUC | AP | TPR@1%FPR | TPR@5%FPR |", "|---|---|---|---|---|---|---|"]
    for k, m in s["per_generator"].items():
        lines.append(f"| {k} | {m['n_generated']} | {_fmt(m['generated_accuracy'])} | {_fmt(m['auc'], False)} | "
                     f"{_fmt(m['average_precision'], False)} | {_fmt(m['tpr_at_1pct_fpr'])} | {_fmt(m['tpr_at_5pct_fpr'])} |")
    if plots:
        lines += ["", "![ROC](roc.png) ![PR](pr.png)"]
    return "\n".join(lines) + "\n"
