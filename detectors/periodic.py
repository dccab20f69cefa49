"""Periodic-artefact features of the 2-D spectrum (in the spirit of Synthbuster, Bammey 2023).

A ×2 (×4, ×8...) upsampling leaves peaks at multiples of ``1/P`` cycles/pixel. Per colour
channel: the 2x2 cross-difference residual ``|I(y,x) + I(y+1,x+1) - I(y,x+1) - I(y+1,x)|``
(which removes the image's smooth content), the FFT magnitude of a ``size x size`` tile
(``size`` a multiple of ``period``), sampled only at the ``(P + 1) x (P/2 + 1)`` harmonics
``(ky, kx) = (i, j) * size / P``; log, minus the log of the DC term (the residual's mean). That
gives 135 features for P = 8. Standardised, then logistic regression (Synthbuster used gradient
boosting; a linear model keeps the model file a few numbers). Images are scored as the mean
logit of up to 16 tiles.
"""
from __future__ import annotations

import numpy as np

from forensics.detectors.skmodel import TiledLogistic, register


def harmonic_features(tiles_: np.ndarray, period: int = 8) -> np.ndarray:
    """``(N, 3 * ((P + 1) * (P/2 + 1) - 1))`` log harmonic magnitudes of the residual."""
    x = tiles_.astype(np.float64)
    r = np.abs(x[:, :-1, :-1] + x[:, 1:, 1:] - x[:, :-1, 1:] - x[:, 1:, :-1])  # (N, S-1, S-1, 3)
    s = tiles_.shape[1]
    r = np.pad(r, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="edge")  # back to S x S
    F = np.abs(np.fft.fft2(r, axes=(1, 2)))
    step = s // period
    ky = (np.arange(period + 1) * step) % s
    kx = np.arange(period // 2 + 1) * step
    H = np.log(F[:, ky][:, :, kx] + 1e-6)  # (N, P+1, P/2+1, 3)
    H = H - H[:, :1, :1]
    return H.reshape(len(H), -1, 3)[:, 1:].reshape(len(H), -1)


@register
class PeriodicSpectrumDetector(TiledLogistic):
    name = "periodic-lr"

    def __init__(self, size: int = 32, period: int = 8, C: float = 1.0, threshold: float = 0.5,
                 seed: int = 0, preprocess: str = "none"):
        self.size = size
        self.period = period
        self.C = C
        self.threshold = threshold
        self.seed = seed
        self.preprocess = preprocess

    def _check(self):
        if self.period < 2 or self.period % 2 or self.size % self.period:
            raise ValueError(f"period must be even and divide the tile size ({self.size}), got {self.period}")

    def image_features(self, X):
        self._check()
        return super().image_features(X)

    def _tile_features(self, T: np.ndarray) -> np.ndarray:
        return harmonic_features(T, self.period)
