"""Classifiers behind the detectors: one registry entry per classifier.

Each :class:`Classifier` entry says how to build the scikit-learn estimator (the toolkit's
settings, and the published settings per paper), how to reduce a fitted one to a *state* (a
JSON-able dict of parameters plus named numpy arrays) and how to score from that state.
Scoring always goes through the state, right after fitting and after loading a model file
alike, so a saved model scores exactly as the one that was trained, and no model file ever
holds a pickle or anything else that runs code. Adding a classifier is adding one entry to
:data:`CLASSIFIERS`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from forensics.core.reproducible import matmul


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


@dataclass(frozen=True)
class Published:
    """A paper's settings of a classifier: estimator parameters and whether features are
    standardised first."""

    params: dict
    scale: bool
    source: str


@dataclass(frozen=True)
class Classifier:
    """One classifier: everything the detectors need to know about it, in one place."""

    name: str
    build: Callable[..., object]  #: ``build(seed, **params)`` -> unfitted scikit-learn estimator
    defaults: dict  #: the toolkit's parameters (standardised features)
    #: fitted estimator, training X, y -> (params, arrays)
    export: Callable[[object, np.ndarray, np.ndarray], tuple[dict, dict]]
    proba: Callable[[dict, dict, np.ndarray], np.ndarray]  #: state, X -> P(class 1)
    #: state, X -> signed decision value (> 0: class 1), for estimators that have one
    decision: Callable[[dict, dict, np.ndarray], np.ndarray] | None = None
    #: published settings, by feature family ("dzanic", "durall")
    published: dict[str, Published] = field(default_factory=dict)
    #: Platt scaling of the decision values gives the probabilities (SVM)
    platt: bool = False


# ----------------------------------------------------------------------------------- kNN
def _knn_build(seed, k=5):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=k)


def _knn_proba(p, a, X):
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=min(p["k"], len(a["X"]))).fit(a["X"])
    ix = nn.kneighbors(X, return_distance=False)
    return a["y"][ix].mean(axis=1).astype(np.float64)


# ----------------------------------------------------------------------------------- SVM
def _svm_build(seed, C=1.0, gamma="scale"):
    from sklearn.svm import SVC

    return SVC(kernel="rbf", C=C, gamma=gamma)


def _svm_export(est, X, y):
    # decision f(x) = sum_i a_i exp(-gamma |x - sv_i|^2) + b, positive toward class 1 (what
    # SVC.decision_function returns and SVC.predict thresholds at 0)
    return {"gamma": float(est._gamma)}, {"sv": est.support_vectors_, "dual": est.dual_coef_[0],
                                           "b": est.intercept_}


def _svm_decision(p, a, X):
    sv = a["sv"]
    d2 = (X ** 2).sum(1)[:, None] + (sv ** 2).sum(1)[None, :] - 2.0 * matmul(X, sv.T)
    return matmul(np.exp(-p["gamma"] * np.maximum(d2, 0.0)), a["dual"]) + a["b"][0]


def _svm_proba(p, a, X):
    A, B = a["platt"]
    return _sigmoid(A * _svm_decision(p, a, X) + B)


# ----------------------------------------------------------------------------------- MLP
def _mlp_build(seed, hidden=(10, 10), solver="lbfgs", max_iter=2000, learning_rate="constant"):
    from sklearn.neural_network import MLPClassifier

    # two hidden layers of 10 sigmoid units (Chandrasegaran et al.); the toolkit trains with
    # L-BFGS, which suits the few hundred training images of the protocol better than Adam
    return MLPClassifier(hidden_layer_sizes=tuple(hidden), activation="logistic", solver=solver,
                         learning_rate=learning_rate, max_iter=max_iter, random_state=seed)


def _mlp_export(est, X, y):
    arrays = {}
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        arrays[f"W{i}"] = W
        arrays[f"b{i}"] = b
    return {"layers": len(est.coefs_)}, arrays


def _mlp_proba(p, a, X):
    h = X
    n = p["layers"]
    for i in range(n):
        h = matmul(h, a[f"W{i}"]) + a[f"b{i}"]
        if i < n - 1:
            h = _sigmoid(h)
    return _sigmoid(h[:, 0])


# ------------------------------------------------------------------------------------ LR
def _lr_build(seed, C=1.0, solver="lbfgs"):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, solver=solver, max_iter=2000)


def _lr_decision(p, a, X):
    return matmul(X, a["coef"]) + a["b"][0]


_CHANDRASEGARAN = "Chandrasegaran et al., src/classifiers (StandardScaler on the training set)"
_DURALL = "Durall et al., CelebA notebook (features unscaled)"

#: The classifiers, by name. Adding one is adding an entry here.
CLASSIFIERS: dict[str, Classifier] = {c.name: c for c in (
    Classifier("knn", _knn_build, {"k": 5},
               # instance-based: the training set is the state
               export=lambda est, X, y: ({"k": int(est.n_neighbors)}, {"X": X.astype(np.float64), "y": y.astype(np.int8)}),
               proba=_knn_proba,
               published={"dzanic": Published({"k": 5}, True, "Dzanic et al. (fitcknn, k = 5); " + _CHANDRASEGARAN)}),
    Classifier("svm", _svm_build, {"C": 1.0, "gamma": "scale"}, _svm_export, _svm_proba, _svm_decision,
               published={"dzanic": Published({"C": 1.0, "gamma": "scale"}, True, _CHANDRASEGARAN + ", SVC defaults"),
                          "durall": Published({"C": 6.37, "gamma": 0.86}, False, _DURALL + ", SVC rbf C 6.37 gamma 0.86")},
               platt=True),
    Classifier("mlp", _mlp_build, {"hidden": [10, 10], "solver": "lbfgs", "max_iter": 2000}, _mlp_export, _mlp_proba,
               published={"dzanic": Published({"hidden": [10, 10], "solver": "adam", "learning_rate": "adaptive",
                                               "max_iter": 2000}, True, _CHANDRASEGARAN + ", adam, adaptive rate")}),
    Classifier("lr", _lr_build, {"C": 1.0, "solver": "lbfgs"},
               export=lambda est, X, y: ({}, {"coef": est.coef_[0], "b": est.intercept_}),
               proba=lambda p, a, X: _sigmoid(_lr_decision(p, a, X)), decision=_lr_decision,
               published={"durall": Published({"C": 1.0, "solver": "liblinear"}, False, _DURALL + ", liblinear")}),
)}

ESTIMATORS = tuple(CLASSIFIERS)


def classifier(name: str) -> Classifier:
    try:
        return CLASSIFIERS[name]
    except KeyError:
        raise ValueError(f"unknown classifier {name!r}; choose from {', '.join(CLASSIFIERS)}") from None


def make_estimator(name: str, seed: int = 0, **params):
    """A fresh scikit-learn estimator for ``name`` (the toolkit's settings unless overridden)."""
    c = classifier(name)
    return c.build(seed, **{**c.defaults, **params})


def fit_state(name: str, X: np.ndarray, y: np.ndarray, seed: int = 0, **params) -> tuple[dict, dict]:
    """Fit classifier ``name`` on ``X, y`` (y = 1 for generated) and return its state."""
    c = classifier(name)
    params = {**c.defaults, **params}
    est = c.build(seed, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny training sets
        est.fit(X, y)
    meta, arrays = c.export(est, X, y)
    if c.platt:
        arrays["platt"] = _platt(c, X, y, seed, params)
    return meta, arrays


def _platt(c: Classifier, X, y, seed, params) -> np.ndarray:
    """Platt-scaling coefficients ``[A, B]`` (``P = sigmoid(A f + B)``) fitted on 5-fold
    cross-validated decision values, so not on the classifier's own training fit."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = int(min(5, np.bincount(y.astype(int)).min()))
    if folds < 2:
        return np.array([1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = cross_val_predict(c.build(seed, **params), X, y, method="decision_function",
                              cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
        lr = LogisticRegression(C=1e4, max_iter=1000).fit(f[:, None], y)
    return np.array([lr.coef_[0, 0], lr.intercept_[0]])


@dataclass
class Scorer:
    """P(generated) and the decision value from a classifier state."""

    name: str
    params: dict
    arrays: dict = field(repr=False)

    def __post_init__(self):
        self.entry = classifier(self.name)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return self.entry.proba(self.params, self.arrays, X)

    def decision(self, X: np.ndarray) -> np.ndarray:
        if self.entry.decision is None:
            raise AttributeError(f"classifier {self.name!r} has no decision function")
        return self.entry.decision(self.params, self.arrays, X)
