"""Spectrum-based detectors: a spectral feature set (:class:`SpectralFeatures`, a scikit-learn
transformer) x a classifier of :data:`~forensics.detectors.estimators.CLASSIFIERS`.

Names are ``<features>-<classifier>``. The published name is the published method, reproduced
as its code runs it; a ``+`` marks the toolkit's variant:

``dzanic-knn``, ``dzanic-svm``, ``dzanic-mlp``
    Dzanic et al.'s features (``generatedata.m``) with the classifiers Chandrasegaran et al.
    ran on them (standardised features; k = 5; RBF SVC with scikit-learn's defaults; 10-10
    sigmoid MLP trained with Adam), as in the paper's Table 2 and supplementary;
``durall-lr``, ``durall-svm``
    Durall et al.'s CelebA features and classifiers (unscaled features; liblinear logistic
    regression; RBF SVC with C = 6.37, gamma = 0.86);
``dzanic+-*``, ``durall+-*``
    the toolkit's features (:mod:`forensics.spectral.spectrum`) with the toolkit's classifier settings
    (standardised features, lbfgs, RBF C = 1, gamma "scale", L-BFGS MLP).

Any other combination works the same way (a published feature set with a classifier its paper
did not use gets the toolkit's classifier settings). The decision rule of ``predict`` is the
published one: the sign of the decision function where the classifier has one (SVM, LR), else
``P > 0.5``; ``predict_proba`` stays calibrated (Platt scaling for the SVM).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from forensics.core.errors import UserError
from forensics.detectors.base import Detector, is_features, register
from forensics.detectors.estimators import CLASSIFIERS, ESTIMATORS, Scorer, classifier, fit_state
from forensics.spectral import spectrum

#: what the published studies ran (``--preset paper`` uses only published methods)
PAPER_DETECTORS = ("dzanic-knn", "dzanic-svm", "dzanic-mlp", "durall-lr", "durall-svm")
#: the toolkit's default detectors (they work from 16 px up)
TOOLKIT_DETECTORS = ("dzanic+-knn", "dzanic+-svm", "dzanic+-mlp", "durall+-lr", "durall+-svm")


def detector_names() -> list[str]:
    return [f"{f}-{e}" for f in spectrum.FEATURE_SETS for e in CLASSIFIERS]


class SpectralFeatures(TransformerMixin, BaseEstimator):
    """A spectral feature set as a scikit-learn transformer: images in (``(N, H, W, 3)`` uint8,
    ``(N, H, W)`` grey, or a list of mixed sizes), one row of features per image out."""

    def __init__(self, features: str = "dzanic+"):
        self.features = features

    def fit(self, X=None, y=None):
        fs = spectrum.feature_set(self.features)
        self.n_features_out_ = fs.dim
        return self

    def transform(self, X) -> np.ndarray:
        return spectrum.features(X, self.features)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array(spectrum.feature_set(self.features).columns(), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


def _family(features: str) -> str:
    return features.rstrip("+")


@register
class SpectralDetector(Detector):
    """Spectral features x classifier (see module).

    ``classifier_params`` override the resolved classifier settings (e.g. ``{"C": 10}``),
    ``scale`` whether features are standardised with the training mean and standard deviation
    (None: as published for a published method, else True), ``threshold`` a fixed probability
    threshold for ``predict`` (None: the published decision rule).
    """

    def __init__(self, features: str = "dzanic+", classifier: str = "knn", classifier_params: dict | None = None,
                 scale: bool | None = None, threshold: float | None = None, seed: int = 0, preprocess: str = "none"):
        self.features = features
        self.classifier = classifier
        self.classifier_params = classifier_params
        self.scale = scale
        self.threshold = threshold
        self.seed = seed
        self.preprocess = preprocess  # the policy training images went through; detect reuses it

    # -- what runs ------------------------------------------------------------------------
    def validate(self) -> "SpectralDetector":
        spectrum.feature_set(self.features)
        classifier(self.classifier)
        return self

    @property
    def name(self) -> str:
        return f"{self.features}-{self.classifier}"

    @property
    def published(self) -> bool:
        """True when this is a published method run with its published settings."""
        return spectrum.feature_set(self.features).published and \
            _family(self.features) in classifier(self.classifier).published

    def settings(self) -> tuple[dict, bool]:
        """The classifier parameters and the scaling that ``fit`` uses."""
        c = classifier(self.classifier)
        pub = c.published.get(_family(self.features)) if spectrum.feature_set(self.features).published else None
        params = dict(pub.params if pub else c.defaults)
        params.update(self.classifier_params or {})
        scale = (pub.scale if pub else True) if self.scale is None else bool(self.scale)
        return params, scale

    @property
    def min_size(self) -> int:
        return spectrum.MIN_SIZE[self.features]

    def transform(self, images) -> np.ndarray:
        return spectrum.features(images, self.features)

    def _features(self, x) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) if is_features(x) else self.transform(x)

    features_of = _features

    def feature_transformer(self) -> SpectralFeatures:
        return SpectralFeatures(self.features)

    def to_pipeline(self):
        """The same detector as an unfitted scikit-learn ``Pipeline`` (features, optional
        ``StandardScaler``, the classifier with the resolved settings); its ``predict`` is
        the published decision rule and agrees with this detector's."""
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        params, scale = self.settings()
        steps = [("features", self.feature_transformer())]
        if scale:
            steps.append(("scale", StandardScaler()))
        steps.append(("classifier", classifier(self.classifier).build(self.seed, **params)))
        return Pipeline(steps)

    # -- fit and score --------------------------------------------------------------------
    def fit(self, X, y) -> "SpectralDetector":
        """Fit on images or features ``X`` with labels ``y`` (1 = generated, 0 = real). Rows
        whose features are undefined (NaN) are left out."""
        self.validate()
        X = self._features(X)
        y = np.asarray(y).astype(np.int64).ravel()
        if len(y) != len(X):
            raise ValueError(f"{len(X)} images but {len(y)} labels")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("labels must be 0 (real) or 1 (generated)")
        keep = np.isfinite(X).all(axis=1)
        X, y = X[keep], y[keep]
        if len(np.unique(y)) < 2:
            raise ValueError("fit needs finite features for both real and generated images")
        params, scale = self.settings()
        mean = X.mean(axis=0) if scale else np.zeros(X.shape[1])
        sd = X.std(axis=0) if scale else np.ones(X.shape[1])
        sd[sd == 0] = 1.0
        est_params, arrays = fit_state(self.classifier, (X - mean) / sd, y, self.seed, **params)
        rule = "threshold" if self.threshold is not None or classifier(self.classifier).decision is None \
            else "decision"
        self._set_state({"estimator": est_params, "rule": rule, "params": params, "scale": scale},
                        {**{f"est_{k}": v for k, v in arrays.items()}, "mean": mean, "scale": sd})
        self.threshold_ = self._rule_threshold() if self.threshold is None else float(self.threshold)
        self.n_train_ = {"real": int((y == 0).sum()), "generated": int((y == 1).sum())}
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        return self

    def _rule_threshold(self) -> float:
        """The probability at which the published rule flips: P(f = 0) for a Platt-scaled
        decision (sigmoid(B) when A > 0), else 0.5."""
        a = self.state_arrays_
        if self.rule_ == "decision" and "est_platt" in a and a["est_platt"][0] > 0:
            return float(0.5 * (1.0 + np.tanh(0.5 * a["est_platt"][1])))
        return 0.5

    def _check_fitted(self):
        if not hasattr(self, "scorer_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"{self.name}: detector is not fitted")

    def _apply(self, x, fn) -> np.ndarray:
        self._check_fitted()
        X = self._features(x)
        out = np.full(len(X), np.nan)
        ok = np.isfinite(X).all(axis=1)
        if ok.any():
            out[ok] = fn((X[ok] - self.mean_) / self.scale_)
        return out

    def p_generated(self, X) -> np.ndarray:
        """P(generated) per image; NaN where the features are undefined."""
        return np.clip(self._apply(X, self.scorer_), 0.0, 1.0)

    def decision_function(self, X) -> np.ndarray:
        """The classifier's signed decision value (> 0: generated), for SVM and LR."""
        self._check_fitted()
        if classifier(self.classifier).decision is None:
            raise AttributeError(f"{self.name}: classifier {self.classifier!r} has no decision function")
        return self._apply(X, self.scorer_.decision)

    def predict(self, X) -> np.ndarray:
        """1 (generated) or 0 (real) by the published rule, or by ``threshold_`` once set."""
        self._check_fitted()
        if self.rule_ == "decision":
            return (self.decision_function(X) > 0).astype(np.int64)
        return (self.p_generated(X) > self.threshold_).astype(np.int64)

    # -- persistence ----------------------------------------------------------------------
    def _state(self):
        return self.state_meta_, self.state_arrays_

    def _set_state(self, meta, arrays):
        self.state_meta_, self.state_arrays_ = meta, arrays
        self.mean_, self.scale_ = arrays["mean"], arrays["scale"]
        self.rule_ = meta.get("rule", "threshold")
        est = {k[4:]: v for k, v in arrays.items() if k.startswith("est_")}
        self.scorer_ = Scorer(self.classifier, meta["estimator"], est)
        self.classes_ = np.array([0, 1])

    @staticmethod
    def upgrade_v1(meta: dict) -> dict:
        """A format-1 model (names before the published/variant scheme; standardised features;
        ``P > threshold``) as format 2, scoring exactly as before."""
        p = meta["params"]
        feats = spectrum.LEGACY_NAMES.get(p["features"], p["features"])
        est = p["estimator"]
        defaults = {"knn": {"k": 5}, "svm": {"C": 1.0, "gamma": "scale"},
                    "mlp": {"hidden": [10, 10], "solver": "lbfgs", "max_iter": 2000},
                    "lr": {"C": 1.0, "solver": "lbfgs"}}[est]
        return {**meta, "name": f"{feats}-{est}",
                "params": {"features": feats, "classifier": est, "classifier_params": defaults, "scale": True,
                           "threshold": float(meta["threshold"]), "seed": p.get("seed", 0),
                           "preprocess": p.get("preprocess", "none")},
                "state": {**meta["state"], "rule": "threshold", "params": defaults, "scale": True}}


def make_detector(name: str, **kw) -> SpectralDetector:
    """Detector from its name, e.g. ``make_detector("dzanic-knn", seed=1)``."""
    feats, _, clf = name.rpartition("-")
    if feats in spectrum.FEATURE_SETS and clf in CLASSIFIERS:
        return SpectralDetector(features=feats, classifier=clf, **kw)
    hint = ""
    if name.startswith("dzanic-faithful-"):
        hint = f" (the published Dzanic method is now {name.replace('-faithful', '')})"
    raise UserError(f"unknown detector {name!r}{hint}; choose from {', '.join(detector_names())}")


__all__ = ["SpectralDetector", "SpectralFeatures", "make_detector", "detector_names", "PAPER_DETECTORS",
           "TOOLKIT_DETECTORS", "ESTIMATORS"]
