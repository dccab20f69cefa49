"""Frank et al. (ICML 2020): log-scaled 2-D DCT coefficients + a linear classifier.

Grey image (BT.601), type-II orthonormal 2-D DCT of each ``size x size`` tile, ``log(|c| + eps)``,
per-coefficient z-score with the training set's statistics, logistic regression (Frank et al.
used ridge regression and a CNN; the linear model is the one they show already beats
pixel-domain detectors). Larger images are scored as the mean logit of up to 16 tiles.
"""
from __future__ import annotations

import numpy as np

from forensics.detectors.skmodel import TiledLogistic, register
from forensics.spectral import spectrum


def log_dct(tiles_: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``(N, S*S)`` log-magnitude orthonormal DCT-II coefficients of ``(N, S, S, 3)`` tiles."""
    from scipy.fft import dctn

    g = spectrum.to_gray(tiles_)
    return np.log(np.abs(dctn(g, type=2, norm="ortho", axes=(1, 2))) + eps).reshape(len(g), -1)


@register
class FrankDCTDetector(TiledLogistic):
    name = "frank-dct-lr"

    def __init__(self, size: int = 32, C: float = 0.1, eps: float = 1e-12, threshold: float = 0.5,
                 seed: int = 0, preprocess: str = "none"):
        self.size = size
        self.C = C
        self.eps = eps
        self.threshold = threshold
        self.seed = seed
        self.preprocess = preprocess

    def _tile_features(self, T: np.ndarray) -> np.ndarray:
        return log_dct(T, self.eps)
