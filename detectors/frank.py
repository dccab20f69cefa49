"""Frank et al. (ICML 2020): log-scaled 2-D DCT coefficients + a linear classifier.

Grey image (BT.601), type-II orthonormal 2-D DCT of each ``size x size`` tile, ``log(|c| + eps)``,
per-coefficient z-score with the training set's statistics, logistic regression (Frank et al.
used ridge regression and a CNN; the linear model is the one they show already beats
pixel-domain detectors). Larger images are scored as the mean logit of up to 16 tiles.
"""
from __future__ import annotations

import warnings

import numpy as np

from forensics import spectrum
from forensics.detectors.skmodel import ImageEstimator, register, sigmoid, tiles


def log_dct(tiles_: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``(N, S*S)`` log-magnitude orthonormal DCT-II coefficients of ``(N, S, S, 3)`` tiles."""
    from scipy.fft import dctn

    g = spectrum.to_gray(tiles_)
    return np.log(np.abs(dctn(g, type=2, norm="ortho", axes=(1, 2))) + eps).reshape(len(g), -1)


@register
class FrankDCTDetector(ImageEstimator):
    name = "frank-dct-lr"

    def __init__(self, size: int = 32, C: float = 0.1, eps: float = 1e-12, threshold: float = 0.5,
                 seed: int = 0, preprocess: str = "none"):
        self.size = size
        self.C = C
        self.eps = eps
        self.threshold = threshold
        self.seed = seed
        self.preprocess = preprocess

    @property
    def min_size(self) -> int:
        return self.size

    def fit(self, X, y):
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(y)
        T, owner = tiles(X, self.size)
        if len(T) == 0 or len(np.unique(y[owner])) < 2:
            raise ValueError(f"fit needs real and generated images of at least {self.size}x{self.size}")
        F = log_dct(T, self.eps)
        self.mean_ = F.mean(0)
        self.scale_ = F.std(0)
        self.scale_[self.scale_ == 0] = 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lr = LogisticRegression(C=self.C, max_iter=3000).fit((F - self.mean_) / self.scale_, y[owner])
        self.coef_, self.intercept_ = lr.coef_[0], lr.intercept_
        self.classes_ = np.array([0, 1])
        self.threshold_ = self.threshold
        return self

    def _proba(self, X) -> np.ndarray:
        T, owner = tiles(X, self.size)
        n = len(X)
        if not len(T):
            return np.full(n, np.nan)
        z = ((log_dct(T, self.eps) - self.mean_) / self.scale_) @ self.coef_ + self.intercept_[0]
        with np.errstate(invalid="ignore"):
            return sigmoid(np.bincount(owner, weights=z, minlength=n) / np.bincount(owner, minlength=n))

    def _state(self):
        return {}, {"mean": self.mean_, "scale": self.scale_, "coef": self.coef_, "b": self.intercept_}

    def _set_state(self, meta, arrays):
        self.mean_, self.scale_ = arrays["mean"], arrays["scale"]
        self.coef_, self.intercept_ = arrays["coef"], arrays["b"]
        self.classes_ = np.array([0, 1])
