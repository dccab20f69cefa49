"""Scikit-learn estimators for the analyst's detectors, stored in the toolkit's code-free
model format (``model.json`` + ``model.npz``, the files :class:`forensics.detectors.Detector`
reads), so ``forensics detect --model DIR`` and the model store accept them.

An estimator here is a ``BaseEstimator`` + ``ClassifierMixin``:

``fit(X, y)``
    ``X``: a batch of uint8 images ``(N, H, W, 3)`` (or a list of them), ``y``: 1 = generated,
    0 = real (some detectors use the real images only and say so);
``predict_proba(X)``
    ``(N, 2)``: P(real), P(generated);
``predict(X)``
    1 where P(generated) > ``threshold_`` (the stored, calibrated threshold);
``score(X)``
    P(generated) per image, the toolkit's detector contract; ``score(X, y)`` with labels is
    scikit-learn's mean accuracy, so ``clone``/grid search keep working.

Learned state is written as JSON numbers and plain arrays (``allow_pickle=False``); loading
never runs code. Subclasses implement ``_features``/``_fit``/``_proba`` and
``_state``/``_set_state``.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from forensics.core.reproducible import matmul
from forensics.detectors.base import RealFakeContract, register
from forensics.detectors.formats import FORMAT, FORMAT_VERSION
from forensics.io.files import write_json, write_npz

__all__ = ["ImageEstimator", "register", "as_batch", "tiles", "sigmoid"]


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))  # overflow-free


def as_batch(X) -> list[np.ndarray]:
    """A batch ``(N, H, W, 3)`` or a list of ``(H, W, 3)`` images as a list of arrays."""
    if isinstance(X, np.ndarray):
        if X.ndim == 3:
            X = X[None]
        if X.ndim != 4 or X.shape[-1] != 3:
            raise ValueError(f"expected RGB images (N, H, W, 3), got shape {X.shape}")
        return list(X)
    return [np.asarray(x) for x in X]


def tiles(images, size: int, max_tiles: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Cut every image into up to ``max_tiles`` evenly spread ``size x size`` tiles (an image
    of exactly ``size`` gives itself). Returns the tiles ``(M, size, size, 3)`` and the owner
    index of each tile; an image smaller than ``size`` owns no tile."""
    out, owner = [], []
    for i, im in enumerate(as_batch(images)):
        h, w = im.shape[:2]
        if h < size or w < size:
            continue
        ny, nx = h // size, w // size
        k = int(np.ceil(np.sqrt(max_tiles)))
        ys = np.unique(np.linspace(0, h - size, min(ny, k)).round().astype(int))
        xs = np.unique(np.linspace(0, w - size, min(nx, k)).round().astype(int))
        for y in ys:
            for x in xs:
                out.append(im[y:y + size, x:x + size])
                owner.append(i)
    if not out:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int64)
    return np.ascontiguousarray(np.stack(out)), np.asarray(owner, np.int64)


class ImageEstimator(RealFakeContract, ClassifierMixin, BaseEstimator):
    """Common plumbing; see the module docstring. The toolkit's contract (``p_generated``,
    ``score`` without labels, ``calibrate``) comes from :class:`RealFakeContract`."""

    name = "estimator"

    @property
    def min_size(self) -> int:
        """The smallest image side it scores: its tile ``size`` (8 for an estimator without one)."""
        return getattr(self, "size", 8)

    def predict_proba(self, X) -> np.ndarray:
        if not hasattr(self, "threshold_"):
            raise ValueError(f"{self.name}: detector is not fitted")
        p = np.clip(self._proba(X), 0.0, 1.0)
        return np.stack([1.0 - p, p], axis=1)

    # -- persistence ----------------------------------------------------------------------
    def _state(self) -> tuple[dict, dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_state(self, meta: dict, arrays: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def model_record(self, extra: dict | None = None) -> tuple[dict, dict]:
        """``(model.json contents, model.npz arrays)``."""
        meta, arrays = self._state()
        return ({"format": FORMAT, "format_version": FORMAT_VERSION, "class": type(self).__name__,
                 "name": self.name, "params": self.get_params(), "threshold": float(self.threshold_),
                 "state": meta, **(extra or {})}, arrays)

    def save(self, folder, extra: dict | None = None):
        from pathlib import Path

        folder = Path(folder)
        rec, arrays = self.model_record(extra)
        write_npz(folder / "model.npz", **arrays)
        write_json(folder / "model.json", rec)
        return folder


class TiledLogistic(ImageEstimator):
    """Standardised per-tile features (``_tile_features`` of ``(T, size, size, 3)`` tiles) and a
    logistic regression; an image's score is the sigmoid of its tiles' mean logit.

    ``image_features(X)`` (each image's tile features, which do not depend on the fitted state),
    ``fit_features`` and ``p_generated_features`` split ``fit`` and ``p_generated`` at those features, so
    a caller that fits and scores many models on the same images (the leave-one-family-out protocol)
    computes them once."""

    def _tile_features(self, T: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def image_features(self, X) -> list[np.ndarray]:
        """Per image, its tiles' features ``(T_i, D)`` (no row for an image smaller than a tile)."""
        X = as_batch(X)
        T, owner = tiles(X, self.size)
        if not len(T):
            return [np.zeros((0, 0)) for _ in X]
        return np.split(self._tile_features(T), np.cumsum(np.bincount(owner, minlength=len(X)))[:-1])

    def fit(self, X, y):
        return self.fit_features(self.image_features(X), y)

    def fit_features(self, feats: list[np.ndarray], y):
        """:meth:`fit` from :meth:`image_features` of the training images."""
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(y)
        owner = np.repeat(np.arange(len(feats)), [len(f) for f in feats])
        if len(owner) == 0 or len(np.unique(y[owner])) < 2:
            raise ValueError(f"fit needs real and generated images of at least {self.size}x{self.size}")
        F = np.concatenate([f for f in feats if len(f)])
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
        return self.p_generated_features(self.image_features(X))

    def p_generated_features(self, feats: list[np.ndarray]) -> np.ndarray:
        """P(generated) from :meth:`image_features` (NaN for an image without a tile)."""
        if not hasattr(self, "threshold_"):
            raise ValueError(f"{self.name}: detector is not fitted")
        n = len(feats)
        owner = np.repeat(np.arange(n), [len(f) for f in feats])
        if not len(owner):
            return np.full(n, np.nan)
        F = np.concatenate([f for f in feats if len(f)])
        z = matmul((F - self.mean_) / self.scale_, self.coef_) + self.intercept_[0]
        with np.errstate(invalid="ignore"):
            return sigmoid(np.bincount(owner, weights=z, minlength=n) / np.bincount(owner, minlength=n))

    def _state(self):
        return {}, {"mean": self.mean_, "scale": self.scale_, "coef": self.coef_, "b": self.intercept_}

    def _set_state(self, meta, arrays):
        self.mean_, self.scale_ = arrays["mean"], arrays["scale"]
        self.coef_, self.intercept_ = arrays["coef"], arrays["b"]
        self.classes_ = np.array([0, 1])
