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


def psnr(a, b) -> np.ndarray:
    """PSNR in dB of uint8 image pairs (sequences of ``(H, W, 3)``; inf where identical)."""
    from skimage.metrics import peak_signal_noise_ratio

    return np.array([peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(a, b)])


def ssim(a, b) -> np.ndarray:
    """Mean SSIM (Wang et al. 2004, 7x7 window or the largest odd one that fits, over
    colour channels) of uint8 image pairs (sequences of ``(H, W, 3)``)."""
    from skimage.metrics import structural_similarity

    def win(x):
        return min(7, *(d if d % 2 else d - 1 for d in x.shape[:2]))

    return np.array([structural_similarity(x, y, channel_axis=-1, data_range=255, win_size=win(x))
                     for x, y in zip(a, b)])
