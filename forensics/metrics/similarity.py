"""How much an image changed: PSNR (its formula, vectorised) and SSIM (scikit-image) of uint8 image pairs."""
from __future__ import annotations

import numpy as np


def psnr(a, b) -> np.ndarray:
    """PSNR in dB of uint8 image pairs: two ``(N, H, W[, C])`` arrays (vectorised), or two sequences
    of ``(H, W[, C])`` images whose pairs share a size; ``inf`` where a pair is identical."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape:
        d = a.astype(np.float64) - b.astype(np.float64)
        mse = (d * d).reshape(len(d), -1).mean(axis=1)
    else:
        mse = np.array([np.mean((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2) for x, y in zip(a, b)])
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0 ** 2 / mse)


def ssim(a, b) -> np.ndarray:
    """Mean SSIM (Wang et al. 2004, 7x7 window or the largest odd one that fits, over
    colour channels) of uint8 image pairs (sequences of ``(H, W, 3)``)."""
    from skimage.metrics import structural_similarity

    def win(x):
        return min(7, *(d if d % 2 else d - 1 for d in x.shape[:2]))

    return np.array([structural_similarity(x, y, channel_axis=-1, data_range=255, win_size=win(x))
                     for x, y in zip(a, b)])
