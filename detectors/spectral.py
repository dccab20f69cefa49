"""Spectrum-based detectors: a feature set of :mod:`forensics.spectrum` + a classifier.

Names are ``<features>-<estimator>``: features ``dzanic`` (fixed variant), ``dzanic-faithful``
or ``durall``; estimators ``knn`` (k = 5), ``svm`` (RBF, Platt-scaled), ``mlp`` (two hidden
layers of 10 sigmoid units) or ``lr`` (logistic regression). The ones the literature uses:
``dzanic-knn``, ``dzanic-svm``, ``dzanic-mlp`` (Dzanic et al.; Chandrasegaran et al.) and
``durall-lr``, ``durall-svm`` (Durall et al.); every other combination works the same way.
Features are standardised with the training set's mean and standard deviation only.
"""
from __future__ import annotations

import numpy as np

from forensics.detectors.base import Detector, register
from forensics.detectors.estimators import ESTIMATORS, Scorer, fit_state
from forensics import spectrum
from forensics.errors import UserError

PAPER_DETECTORS = ("dzanic-knn", "dzanic-svm", "dzanic-mlp", "durall-lr", "durall-svm")


def detector_names() -> list[str]:
    return [f"{f}-{e}" for f in spectrum.FEATURES for e in ESTIMATORS]


@register
class SpectralDetector(Detector):
    def __init__(self, features: str = "dzanic", estimator: str = "knn", threshold: float = 0.5,
                 seed: int = 0, preprocess: str = "none"):
        self.features = features
        self.estimator = estimator
        self.threshold = threshold
        self.seed = seed
        self.preprocess = preprocess  # the policy training images went through; detect reuses it
        if features not in spectrum.FEATURES:
            raise ValueError(f"unknown feature set {features!r}")
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}")
        self.threshold_ = threshold

    @property
    def name(self) -> str:
        return f"{self.features}-{self.estimator}"

    @property
    def min_size(self) -> int:
        return spectrum.MIN_SIZE[self.features]

    def transform(self, images) -> np.ndarray:
        return spectrum.features(images, self.features)

    def fit(self, real, fake) -> "SpectralDetector":
        Xr, Xf = self.features_of(real), self.features_of(fake)
        X = np.concatenate([Xr, Xf])
        y = np.r_[np.zeros(len(Xr), np.int64), np.ones(len(Xf), np.int64)]
        keep = np.isfinite(X).all(axis=1)
        if keep.sum() < len(X):
            X, y = X[keep], y[keep]
        if len(np.unique(y)) < 2:
            raise ValueError("fit needs finite features for both real and generated images")
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0
        params, arrays = fit_state(self.estimator, (X - self.mean_) / self.scale_, y, self.seed)
        self._set_state({"estimator": params}, {**{f"est_{k}": v for k, v in arrays.items()},
                                                 "mean": self.mean_, "scale": self.scale_})
        self.threshold_ = self.threshold
        self.n_train_ = {"real": int((y == 0).sum()), "generated": int((y == 1).sum())}
        return self

    def score(self, x) -> np.ndarray:
        """P(generated) per image; NaN where the features are undefined."""
        if not hasattr(self, "scorer_"):
            raise UserError(f"{self.name}: detector is not fitted")
        X = self.features_of(x)
        out = np.full(len(X), np.nan)
        ok = np.isfinite(X).all(axis=1)
        if ok.any():
            out[ok] = np.clip(self.scorer_((X[ok] - self.mean_) / self.scale_), 0.0, 1.0)
        return out

    def _state(self):
        return self.state_meta_, self.state_arrays_

    def _set_state(self, meta, arrays):
        self.state_meta_, self.state_arrays_ = meta, arrays
        self.mean_, self.scale_ = arrays["mean"], arrays["scale"]
        est = {k[4:]: v for k, v in arrays.items() if k.startswith("est_")}
        self.scorer_ = Scorer(self.estimator, meta["estimator"], est)


def make_detector(name: str, **kw) -> SpectralDetector:
    """Detector from its name, e.g. ``make_detector("dzanic-knn", seed=1)``."""
    for f in sorted(spectrum.FEATURES, key=len, reverse=True):
        if name.startswith(f + "-") and name[len(f) + 1:] in ESTIMATORS:
            return SpectralDetector(features=f, estimator=name[len(f) + 1:], **kw)
    raise UserError(f"unknown detector {name!r}; choose from {', '.join(detector_names())}")
