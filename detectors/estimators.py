"""Classifiers behind the detectors, trained with scikit-learn and stored as plain numbers.

A fitted estimator is reduced to a *state*: a JSON-able dict of parameters plus named
numpy arrays. Scoring always goes through the state (:class:`Scorer`), both right after
fitting and after loading a model file, so a saved model scores exactly as the one that
was trained, and no model file ever holds a pickle or anything else that runs code.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

ESTIMATORS = ("knn", "svm", "mlp", "lr")


def make_estimator(name: str, seed: int = 0, **params):
    """A fresh scikit-learn estimator for ``name`` (paper defaults unless overridden)."""
    if name == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=params.get("k", 5))
    if name == "svm":
        from sklearn.svm import SVC

        return SVC(kernel="rbf", C=params.get("C", 1.0), gamma=params.get("gamma", "scale"))
    if name == "mlp":
        from sklearn.neural_network import MLPClassifier

        # two hidden layers of 10 sigmoid units (Chandrasegaran et al.); L-BFGS suits the
        # few hundred training images of the protocol better than Adam's 200 epochs
        return MLPClassifier(hidden_layer_sizes=tuple(params.get("hidden", (10, 10))),
                             activation="logistic", solver="lbfgs", max_iter=params.get("max_iter", 2000),
                             random_state=seed)
    if name == "lr":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=params.get("C", 1.0), max_iter=2000)
    raise ValueError(f"unknown estimator {name!r}; choose from {', '.join(ESTIMATORS)}")


def fit_state(name: str, X: np.ndarray, y: np.ndarray, seed: int = 0, **params):
    """Fit estimator ``name`` on ``X, y`` (y = 1 for generated) and return its state."""
    est = make_estimator(name, seed, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny training sets
        est.fit(X, y)
    if name == "knn":
        return {"k": int(est.n_neighbors)}, {"X": X.astype(np.float64), "y": y.astype(np.int8)}
    if name == "svm":
        # decision f(x) = sum_i a_i exp(-gamma |x - sv_i|^2) + b, positive toward class 1,
        # turned into a probability by Platt scaling: P = sigmoid(A f + B), with A, B fitted
        # on 5-fold cross-validated decision values (so not on the SVM's own training fit)
        return ({"gamma": float(est._gamma)},
                {"sv": est.support_vectors_, "dual": est.dual_coef_[0], "b": est.intercept_,
                 "platt": _platt(name, X, y, seed, params)})
    if name == "mlp":
        arrays = {}
        for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
            arrays[f"W{i}"] = W
            arrays[f"b{i}"] = b
        return {"layers": len(est.coefs_)}, arrays
    if name == "lr":
        return {}, {"coef": est.coef_[0], "b": est.intercept_}
    raise ValueError(name)


def _platt(name, X, y, seed, params) -> np.ndarray:
    """Platt-scaling coefficients ``[A, B]`` from cross-validated decision values."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = int(min(5, np.bincount(y.astype(int)).min()))
    if folds < 2:
        return np.array([1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = cross_val_predict(make_estimator(name, seed, **params), X, y, method="decision_function",
                              cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
        lr = LogisticRegression(C=1e4, max_iter=1000).fit(f[:, None], y)
    return np.array([lr.coef_[0, 0], lr.intercept_[0]])


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


@dataclass
class Scorer:
    """P(generated) from an estimator state; the only scoring path of every detector."""

    name: str
    params: dict
    arrays: dict = field(repr=False)

    def __post_init__(self):
        self._knn = None
        if self.name == "knn":
            from sklearn.neighbors import NearestNeighbors

            self._knn = NearestNeighbors(n_neighbors=min(self.params["k"], len(self.arrays["X"])))
            self._knn.fit(self.arrays["X"])

    def __call__(self, X: np.ndarray) -> np.ndarray:
        a = self.arrays
        if self.name == "knn":
            ix = self._knn.kneighbors(X, return_distance=False)
            return a["y"][ix].mean(axis=1).astype(np.float64)
        if self.name == "svm":
            sv = a["sv"]
            d2 = (X ** 2).sum(1)[:, None] + (sv ** 2).sum(1)[None, :] - 2.0 * X @ sv.T
            f = np.exp(-self.params["gamma"] * np.maximum(d2, 0.0)) @ a["dual"] + a["b"][0]
            A, B = a["platt"]
            return _sigmoid(A * f + B)
        if self.name == "mlp":
            h = X
            n = self.params["layers"]
            for i in range(n):
                h = h @ a[f"W{i}"] + a[f"b{i}"]
                if i < n - 1:
                    h = _sigmoid(h)
            return _sigmoid(h[:, 0])
        if self.name == "lr":
            return _sigmoid(X @ a["coef"] + a["b"][0])
        raise ValueError(f"unknown estimator {self.name!r}")
