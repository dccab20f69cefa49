"""Evaluating a saved detector on labelled folders: ``forensics evaluate`` and ``forensics calibrate``.

Label convention: 1 = generated, 0 = real; a score is P(generated), an image is called generated
when ``score > threshold``. Folders are streamed through the detector chunk by chunk (as
``forensics detect`` does), so only scores are held, never a folder's images.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forensics.config import Config
from forensics.io import atomic_write_text, write_config, write_csv, write_json

# ------------------------------------------------------------------------------ metrics


def threshold_at_fpr(real_scores, fpr: float) -> float:
    """The smallest threshold ``t`` (a real score, or below all of them) with at most
    ``floor(fpr * n)`` real scores ``> t``; ``-inf`` when there are no real scores."""
    s = np.sort(np.asarray(real_scores, np.float64))
    if not len(s):
        return -np.inf
    k = int(np.floor(fpr * len(s) + 1e-9))
    return float(s[len(s) - k - 1]) if k < len(s) else float(-np.inf)


def tpr_at_fpr(real_scores, fake_scores, fpr: float) -> float:
    """Fraction of generated images above :func:`threshold_at_fpr` of the real scores."""
    f = np.asarray(fake_scores, np.float64)
    return float((f > threshold_at_fpr(real_scores, fpr)).mean()) if f.size else float("nan")


def confusion(real_scores, fake_scores, threshold: float) -> dict:
    """Counts at ``threshold``: ``tn``/``fp`` over real images, ``fn``/``tp`` over generated."""
    r, f = np.asarray(real_scores, float), np.asarray(fake_scores, float)
    fp, tp = int((r > threshold).sum()), int((f > threshold).sum())
    return {"tn": int(r.size - fp), "fp": fp, "fn": int(f.size - tp), "tp": tp}


def binary_metrics(real_scores, fake_scores, threshold: float) -> dict:
    """AUC, average precision, accuracy, balanced accuracy, real/generated accuracy, TPR at
    1 % and 5 % FPR and the confusion matrix; NaN where a class is empty."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    r, f = np.asarray(real_scores, float), np.asarray(fake_scores, float)
    c = confusion(r, f, threshold)
    n = r.size + f.size
    both = r.size > 0 and f.size > 0
    y, s = np.r_[np.zeros(r.size), np.ones(f.size)], np.r_[r, f]
    ra = c["tn"] / r.size if r.size else float("nan")
    ga = c["tp"] / f.size if f.size else float("nan")
    return {
        "n_real": int(r.size), "n_generated": int(f.size), "threshold": float(threshold),
        "auc": float(roc_auc_score(y, s)) if both else float("nan"),
        "average_precision": float(average_precision_score(y, s)) if both else float("nan"),
        "accuracy": (c["tn"] + c["tp"]) / n if n else float("nan"),
        "balanced_accuracy": (ra + ga) / 2 if both else float("nan"),
        "real_accuracy": ra, "generated_accuracy": ga,
        "tpr_at_1pct_fpr": tpr_at_fpr(r, f, 0.01) if both else float("nan"),
        "tpr_at_5pct_fpr": tpr_at_fpr(r, f, 0.05) if both else float("nan"),
        "confusion": c,
    }


def best_threshold(real_scores, fake_scores, mode: str) -> float:
    """The threshold maximising ``mode`` (``mcc`` or ``balanced-accuracy``) over all cut points
    (midpoints between consecutive distinct scores, and below/above all of them)."""
    r, f = np.asarray(real_scores, float), np.asarray(fake_scores, float)
    if not r.size or not f.size:
        raise ValueError(f"threshold by {mode} needs both real and generated scores")
    u = np.unique(np.r_[r, f])
    cuts = np.r_[u[0] - 1.0, (u[:-1] + u[1:]) / 2, u[-1]]
    rs, fs = np.sort(r), np.sort(f)
    fp = r.size - np.searchsorted(rs, cuts, side="right")
    tp = f.size - np.searchsorted(fs, cuts, side="right")
    tn, fn = r.size - fp, f.size - tp
    if mode == "balanced-accuracy":
        val = (tn / r.size + tp / f.size) / 2
    elif mode == "mcc":
        den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn).astype(float))
        with np.errstate(invalid="ignore", divide="ignore"):
            val = np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1), 0.0)
    else:
        raise ValueError(f"unknown threshold mode {mode!r}; choose mcc or balanced-accuracy")
    return float(cuts[int(np.argmax(val))])


# ------------------------------------------------------------------------------ scoring


def load_any_model(model_dir):
    """A saved detector of any kind (:func:`forensics.detect.load_model`)."""
    from forensics.detect import load_model

    return load_model(model_dir)


def score_paths(det, paths, policy=None, transform=None, desc: str = "scoring", progress: bool = True,
                client=None, model_dir=None):
    """Stream the images under ``paths`` through ``det`` (the scoring path of ``detect``:
    :func:`forensics.detect.score_chunks`), optionally through ``transform(images, positions)
    -> images`` first (``positions``: the files' positions, for seeding). With a Dask
    ``client`` the chunks are scored on its workers, which load the model from ``model_dir``.
    Returns ``(files, scores, errors)``: scores are NaN for files that could not be decoded or
    scored; ``errors`` maps such a file to its reason."""
    from forensics.detect import score_chunks
    from forensics.images import Policy, scan_nonempty
    from forensics.progress import bar

    files = scan_nonempty(paths)
    pol = Policy.parse(policy if policy is not None else getattr(det, "preprocess", "none"))
    scores = np.full(len(files), np.nan)
    errors = {}
    i = 0
    with bar(total=len(files), desc=desc, enabled=progress) as pb:
        for loaded, s in score_chunks(det, files, pol, model_dir, client, transform=transform):
            scores[i:i + len(loaded)] = s
            for r, v in zip(loaded, s):
                if not np.isfinite(v):
                    errors[str(r.path)] = r.error or f"{det.name} cannot score this image (too small, or features undefined)"
            i += len(loaded)
            pb.update(len(loaded))
    return files, scores, errors


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


# ------------------------------------------------------------------------------ evaluate


@dataclass(frozen=True)
class EvaluateConfig(Config):
    model: str
    out: str
    real: tuple[str, ...] = ()
    fake: tuple[str, ...] = ()
    layout: str | None = None  # a 0_real/1_fake root
    preprocess: str | None = None  # None: the model's stored policy
    threshold: float | None = None  # None: the model's stored threshold
    plots: bool = True
    scheduler: str | None = None  # a Dask scheduler address, or local / local:N (None: this process)

    def validate(self):
        if self.layout is None and (not self.real or not self.fake):
            raise ValueError("evaluation needs real and generated folders, or a 0_real/1_fake folder")
        if self.scheduler is not None:
            from forensics.distributed import parse_scheduler

            parse_scheduler(self.scheduler)
        if self.threshold is not None and not np.isfinite(self.threshold):
            raise ValueError(f"threshold must be a finite number, got {self.threshold}")


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
    det = load_any_model(cfg.model)
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
    from forensics.detect import _engine

    rows, errors = [], {}
    real_scores = []
    gen = {}
    with _engine(cfg.scheduler) as c:  # one cluster for every folder
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


# ------------------------------------------------------------------------------ calibrate

MODES = ("fpr", "mcc", "balanced-accuracy")


@dataclass(frozen=True)
class CalibrateConfig(Config):
    model: str
    real: tuple[str, ...]
    mode: str = "fpr"
    target_fpr: float = 0.05
    fake: tuple[str, ...] = ()
    out: str | None = None  # None: rewrite the model folder in place (atomically)
    preprocess: str | None = None
    scheduler: str | None = None  # a Dask scheduler address, or local / local:N (None: this process)

    def validate(self):
        if self.scheduler is not None:
            from forensics.distributed import parse_scheduler

            parse_scheduler(self.scheduler)
        if self.mode not in MODES:
            raise ValueError(f"unknown calibration mode {self.mode!r}; choose from {', '.join(MODES)}")
        if not 0 <= self.target_fpr < 1:
            raise ValueError(f"target false-positive rate must be in [0, 1), got {self.target_fpr}")
        if self.mode != "fpr" and not self.fake:
            raise ValueError(f"calibration by {self.mode} needs generated images as well as real ones")
        if not self.real:
            raise ValueError("calibration needs a folder of real images")


def _describe_folder(d, scores) -> dict:
    return {"path": str(Path(d).resolve()), "n_images": int(len(scores)), "n_scored": int(np.isfinite(scores).sum())}


def calibrate(cfg: CalibrateConfig, progress: bool = True) -> dict:
    """Set a model's threshold from a calibration set and record the set in ``model.json``.
    The new model is written to a fresh folder that then replaces the old one (or goes to
    ``cfg.out``), so a reader never sees a half-written model."""
    from forensics.io import read_json

    from forensics.detect import _engine

    det = load_any_model(cfg.model)
    with _engine(cfg.scheduler) as c:  # one cluster for every folder
        rs = [score_paths(det, d, cfg.preprocess, desc="calibration real", progress=progress, client=c,
                          model_dir=cfg.model)[1] for d in cfg.real]
        fs = [score_paths(det, d, cfg.preprocess, desc="calibration generated", progress=progress, client=c,
                          model_dir=cfg.model)[1] for d in cfg.fake]
    real = np.concatenate(rs)
    fake = np.concatenate(fs) if fs else np.zeros(0)
    r_ok, f_ok = real[np.isfinite(real)], fake[np.isfinite(fake)]
    if not len(r_ok):
        raise ValueError("none of the real calibration images could be scored")
    thr = threshold_at_fpr(r_ok, cfg.target_fpr) if cfg.mode == "fpr" else best_threshold(r_ok, f_ok, cfg.mode)
    if not np.isfinite(thr):
        thr = float(np.min(r_ok)) - 1e-9
    old = float(det.threshold_)
    m = binary_metrics(r_ok, f_ok, thr)
    record = {"mode": cfg.mode, "target_fpr": cfg.target_fpr if cfg.mode == "fpr" else None,
              "previous_threshold": old, "threshold": thr,
              "real": [_describe_folder(d, s) for d, s in zip(cfg.real, rs)],
              "generated": [_describe_folder(d, s) for d, s in zip(cfg.fake, fs)],
              "preprocess": cfg.preprocess if cfg.preprocess is not None else getattr(det, "preprocess", "none"),
              "measured_on_calibration_set": {k: m[k] for k in ("real_accuracy", "generated_accuracy", "auc",
                                                               "balanced_accuracy")}}
    src = Path(cfg.model)
    dst = Path(cfg.out) if cfg.out else src
    tmp = dst.parent / f".{dst.name}.calibrating"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    meta = read_json(tmp / "model.json")
    meta["threshold"] = thr
    meta["calibration"] = record
    write_json(tmp / "model.json", meta)
    write_config(tmp, {"command": "calibrate", "config": cfg.to_dict()}, name="calibration.json")
    from forensics.detectors.base import replace_folder

    replace_folder(tmp, dst)  # the calibrated model replaces the old one as a whole
    return {"threshold": thr, "previous_threshold": old, "out": str(dst), **record}
