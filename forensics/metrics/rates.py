"""Detection metrics (label convention: 1 = generated, 0 = real) and summaries."""
from __future__ import annotations

import numpy as np


def detection_rate(scores_fake: np.ndarray, threshold: float) -> float:
    """Fraction of generated images called generated (``score > threshold``)."""
    s = np.asarray(scores_fake, dtype=np.float64)
    return float((s > threshold).mean()) if s.size else float("nan")


def real_accuracy(scores_real: np.ndarray, threshold: float) -> float:
    """Fraction of real images called real (``score <= threshold``)."""
    s = np.asarray(scores_real, dtype=np.float64)
    return float((s <= threshold).mean()) if s.size else float("nan")


def roc_auc(scores_real: np.ndarray, scores_fake: np.ndarray) -> float:
    """ROC-AUC of generated vs real (0.5 = chance); NaN when a class is empty."""
    from sklearn.metrics import roc_auc_score

    r, f = np.asarray(scores_real, float), np.asarray(scores_fake, float)
    if r.size == 0 or f.size == 0:
        return float("nan")
    return float(roc_auc_score(np.r_[np.zeros(r.size), np.ones(f.size)], np.r_[r, f]))


def mean_std(values) -> dict:
    """``{"mean": m, "std": s}`` over repetitions (population std, NaN-free input)."""
    v = np.asarray(list(values), dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std())}


def threshold_at_fpr(real_scores, fpr: float) -> float:
    """The threshold that calls at most ``floor(fpr * n)`` of ``n`` real images generated
    (``score > t``): the smallest real score with at most that many real scores above it, or
    ``-inf`` when ``fpr`` lets every real image be called generated (``fpr`` = 1). Scores that are
    not finite (images a detector could not score) are left out; with no finite real score there is
    nothing to set a threshold on (``ValueError``). The one rule of every threshold set for a
    false-positive rate: ``evaluate``'s TPR at 1 % / 5 % FPR, ``calibrate``, a detector's
    ``calibrate(real, fpr)``, the robust detector's cross-fitted thresholds and a fusion's target."""
    s = np.sort(np.asarray(real_scores, np.float64).ravel())
    s = s[np.isfinite(s)]
    if not len(s):
        raise ValueError("no finite real-image score to set a threshold on")
    k = int(np.floor(fpr * len(s) + 1e-9))  # (the 1e-9: 0.57 * 100 is 56.99999999999999)
    return float(s[len(s) - k - 1]) if k < len(s) else float(-np.inf)


def tpr_at_fpr(real_scores, fake_scores, fpr: float) -> float:
    """Fraction of generated images above :func:`threshold_at_fpr` of the real scores (NaN when
    either side has no score)."""
    f = np.asarray(fake_scores, np.float64)
    r = np.asarray(real_scores, np.float64)
    if not f.size or not np.isfinite(r).any():
        return float("nan")
    return float((f > threshold_at_fpr(r, fpr)).mean())


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
