"""Score fusion of several saved detectors (as Cozzolino et al.'s CLIP-based tool fuses its members).

Each member's P(generated) is first recentred on the member's own threshold
(``sigmoid(logit p - logit threshold)``: 0.5 where the member's verdict flips), so members with
different operating points combine on one scale and the fusion's default threshold 0.5 means
"the members' own rules" (``max``: any member calls the image generated). Rules on these scores:
``mean``; ``max``; ``mean-logit`` (mean of the logits); ``soft-or`` (1 - prod(1 - p)); ``stack``
(logistic regression on the members' logits, fitted by :meth:`ScoreFusion.fit` on labelled
images). The members' model records (parameters,
threshold, state, arrays) are embedded in the fusion's own model files, so a fusion model
folder is self-contained and code-free like any other.
"""
from __future__ import annotations

import warnings

import numpy as np

from forensics.core.reproducible import matmul
from forensics.detectors.base import REGISTRY
from forensics.detectors.skmodel import ImageEstimator, register, sigmoid
from forensics.metrics.rates import threshold_at_fpr

RULES = ("mean", "max", "mean-logit", "soft-or", "stack")


def _logit(p):
    p = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


@register
class ScoreFusion(ImageEstimator):
    """``ScoreFusion(rule).with_members([det, ...])``; ``fit(X, y)`` fits ``stack`` and, with
    ``target_fpr``, sets the threshold on the real images of ``X``."""

    name = "fusion"

    def __init__(self, rule: str = "mean-logit", target_fpr: float | None = None, threshold: float = 0.5,
                 preprocess: str = "none"):
        self.rule = rule
        self.target_fpr = target_fpr
        self.threshold = threshold
        self.preprocess = preprocess
        self.threshold_ = threshold

    def with_members(self, members):
        if self.rule not in RULES:
            raise ValueError(f"unknown fusion rule {self.rule!r}; choose from {', '.join(RULES)}")
        if not members:
            raise ValueError("a fusion needs at least one member detector")
        self.members_ = list(members)
        self.weights_ = np.ones(len(self.members_)) / len(self.members_)
        self.bias_ = np.zeros(1)
        return self

    @property
    def min_size(self) -> int:
        return max(getattr(m, "min_size", 1) for m in self.members_)

    def member_scores(self, X) -> np.ndarray:
        """``(N, members)`` scores, each recentred on its member's threshold (0.5 at the threshold)."""
        cols = []
        for m in self.members_:
            p = np.asarray(m.score(X), np.float64)
            cols.append(sigmoid(_logit(p) - _logit(float(m.threshold_))))
        return np.stack(cols, axis=1)

    def _fuse(self, P: np.ndarray) -> np.ndarray:
        if self.rule == "mean":
            return P.mean(1)
        if self.rule == "max":
            return P.max(1)
        if self.rule == "soft-or":
            return 1.0 - np.prod(1.0 - P, axis=1)
        L = _logit(P)
        if self.rule == "mean-logit":
            return sigmoid(L.mean(1))
        return sigmoid(matmul(L, self.weights_) + self.bias_[0])

    def fit(self, X, y):
        from sklearn.linear_model import LogisticRegression

        if not hasattr(self, "members_"):
            raise ValueError("give the fusion its members (with_members) before fitting")
        y = np.asarray(y)
        P = self.member_scores(X)
        ok = np.isfinite(P).all(1)
        if self.rule == "stack":
            if len(np.unique(y[ok])) < 2:
                raise ValueError("stacking needs scored real and generated images")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lr = LogisticRegression(max_iter=2000).fit(_logit(P[ok]), y[ok])
            self.weights_, self.bias_ = lr.coef_[0], lr.intercept_
        self.threshold_ = self.threshold
        if self.target_fpr is not None:
            self.threshold_ = threshold_at_fpr(self._fuse(P[ok & (y == 0)]), self.target_fpr)
        self.classes_ = np.array([0, 1])
        return self

    def _proba(self, X) -> np.ndarray:
        return self._fuse(self.member_scores(X))

    def _state(self):
        recs, arrays = [], {"weights": self.weights_, "bias": self.bias_}
        for i, m in enumerate(self.members_):
            rec, arr = m.model_record() if hasattr(m, "model_record") else _toolkit_record(m)
            recs.append(rec)
            arrays.update({f"m{i}__{k}": v for k, v in arr.items()})
        return {"members": recs}, arrays

    def _set_state(self, meta, arrays):
        members = []
        for i, rec in enumerate(meta["members"]):
            arr = {k[len(f"m{i}__"):]: v for k, v in arrays.items() if k.startswith(f"m{i}__")}
            det = REGISTRY[rec["class"]](**rec["params"])  # (the model store registers every class)
            det._set_state(rec["state"], arr)
            det.threshold_ = float(rec["threshold"])
            members.append(det)
        self.members_ = members
        self.weights_, self.bias_ = arrays["weights"], arrays["bias"]
        self.classes_ = np.array([0, 1])


def _toolkit_record(det) -> tuple[dict, dict]:
    """The record of one of the toolkit's own detectors (``Detector._state``)."""
    meta, arrays = det._state()
    return {"class": type(det).__name__, "name": det.name, "params": det.get_params(),
            "threshold": float(det.threshold_), "state": meta}, arrays
