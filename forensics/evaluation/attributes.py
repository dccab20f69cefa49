"""Sensitive-attribute classifiers and the fairness of image sets under them.

The classifier is trained by the toolkit on a labelled folder (an attribute table: CelebA's
``list_attr_celeba.txt`` or a CSV ``filename,attr1,...``, read by :func:`forensics.io.sources.read_attributes`)
and stored code-free: ``model.json`` (settings, class names, held-out per-class accuracy and
confusion matrix) and ``model.npz`` (weights, read with ``allow_pickle=False``).

One attribute gives 2 classes; several (``Male,Black_Hair``) give the ``2^A`` compound classes,
class index ``sum_i a_i 2^i`` (Choi et al.'s 4-class Male x Black_Hair setting).

The model is deliberately small and CPU-trainable: multinomial logistic regression on the
standardised pixels of the image area-resized to ``size x size``. Its held-out confusion matrix is
what :func:`forensics.metrics.fairness.correct_distribution` uses to correct a measured distribution.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import numpy as np

from forensics.core.config import Config, Count, Fraction, Positive, Range, Seed
from forensics.core.parsing import names as comma_list

MODEL_KIND = "attribute-classifier"


@dataclasses.dataclass(frozen=True)
class AttributeClassifierConfig(Config):
    attributes: tuple[str, ...] = ()
    size: Annotated[int, Range(8)] = 32
    test_fraction: Fraction = 0.2
    C: Positive = 0.01          # inverse L2 strength of the logistic regression (pixels are many, images few)
    n: Count | None = None     # seeded subset of the labelled images
    seed: Seed = 0

    def validate(self):
        if not self.attributes:
            raise ValueError("name at least one attribute")
        if len(self.attributes) > 4:
            raise ValueError("at most 4 attributes (16 compound classes)")


def class_index(attrs: np.ndarray) -> np.ndarray:
    """Compound class of ``(N, A)`` 0/1 attributes: ``sum_i a_i 2^i``."""
    a = np.asarray(attrs, dtype=np.int64)
    return (a << np.arange(a.shape[1])).sum(1)


def class_names(attr_names) -> list[str]:
    names = list(attr_names)
    return [",".join(f"{a}={(c >> i) & 1}" for i, a in enumerate(names)) for c in range(2 ** len(names))]


def pixel_features(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype=np.float64).reshape(len(images), -1) / 255.0


def confusion_matrix(true, pred, k: int) -> tuple[np.ndarray, list]:
    """Row-normalised ``C[i, j] = P(pred j | true i)`` and per-class accuracy (``None`` where a class
    has no samples; that row is the identity row, i.e. assumed error-free)."""
    C = np.zeros((k, k))
    np.add.at(C, (np.asarray(true), np.asarray(pred)), 1.0)
    n = C.sum(1)
    acc = [float(C[i, i] / n[i]) if n[i] else None for i in range(k)]
    for i in range(k):
        C[i] = C[i] / n[i] if n[i] else np.eye(k)[i]
    return C, acc


class AttributeClassifier:
    """A trained classifier: ``predict(images) -> (labels, probabilities)``."""

    def __init__(self, meta: dict, arrays: dict):
        self.meta = meta
        self.W, self.b = arrays["W"], arrays["b"]
        self.mean, self.std = arrays["mean"], arrays["std"]
        self.confusion = arrays["confusion"]

    @property
    def attributes(self) -> list[str]:
        return list(self.meta["attributes"])

    @property
    def k(self) -> int:
        return int(self.meta["k"])

    @property
    def size(self) -> int:
        return int(self.meta["config"]["size"])

    def predict(self, images) -> tuple[np.ndarray, np.ndarray]:
        z = (pixel_features(images) - self.mean) / self.std @ self.W + self.b
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        return p.argmax(1), p

    @classmethod
    def load(cls, folder) -> "AttributeClassifier":
        from forensics.io.files import read_json, read_npz

        folder = Path(folder)
        if not (folder / "model.json").is_file() or not (folder / "model.npz").is_file():
            raise FileNotFoundError(f"{folder}: not an attribute classifier (needs model.json and model.npz)")
        meta = read_json(folder / "model.json")
        if meta.get("kind") != MODEL_KIND:
            raise ValueError(f"{folder}: model.json is a {meta.get('kind')!r}, not an {MODEL_KIND}")
        return cls(meta, read_npz(folder / "model.npz"))


def train_attribute_classifier(data: str, out, config: AttributeClassifierConfig,
                               attributes_table: str | None = None, progress: bool = False) -> dict:
    """Train on the images of ``data`` (a folder; CelebA's table is found itself, else give
    ``attributes_table``), hold out ``test_fraction`` (stratified) for the per-class accuracy and
    confusion matrix, and write ``out/model.json``, ``out/model.npz`` and ``out/config.json``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from forensics.io.files import write_config, write_json, write_npz
    from forensics.io.sources import load_source

    ds = load_source(data, config.size, config.n, config.seed, None, attributes_table, list(config.attributes),
                     progress=progress)
    if ds.attrs is None:
        raise ValueError(f"{data}: no attribute table (give one, e.g. a CSV filename,{config.attributes[0]})")
    k = 2 ** len(config.attributes)
    y = class_index(ds.attrs)
    counts = np.bincount(y, minlength=k)
    strat = y if counts[counts > 0].min() >= 2 and len(np.unique(y)) > 1 else None
    idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=config.test_fraction,
                                      random_state=config.seed, stratify=strat)
    if len(np.unique(y[idx_tr])) < 2:
        raise ValueError(f"the training images show only one class of {','.join(config.attributes)}")
    X = pixel_features(ds.images)
    mean, std = X[idx_tr].mean(0), X[idx_tr].std(0) + 1e-6
    Xs = (X - mean) / std
    lr = LogisticRegression(C=config.C, max_iter=2000).fit(Xs[idx_tr], y[idx_tr])
    W = np.zeros((X.shape[1], k))
    b = np.full(k, -1e4)  # classes never seen in training are never predicted
    coef = lr.coef_ if len(lr.classes_) > 2 else np.vstack([-lr.coef_[0] / 2, lr.coef_[0] / 2])
    icpt = lr.intercept_ if len(lr.classes_) > 2 else np.array([-lr.intercept_[0] / 2, lr.intercept_[0] / 2])
    W[:, lr.classes_] = coef.T
    b[lr.classes_] = icpt
    clf = AttributeClassifier({"kind": MODEL_KIND, "attributes": list(config.attributes), "k": k,
                               "config": config.to_dict()},
                              {"W": W, "b": b, "mean": mean, "std": std, "confusion": np.eye(k)})
    pred = clf.predict(ds.images[idx_te])[0]
    C, acc = confusion_matrix(y[idx_te], pred, k)
    meta = {"kind": MODEL_KIND, "attributes": list(config.attributes), "k": k, "classes": class_names(config.attributes),
            "policy": f"resize:{config.size}:area", "features": "standardised pixels, multinomial logistic regression",
            "config": config.to_dict(), "n_train": int(len(idx_tr)), "n_test": int(len(idx_te)),
            "class_counts": counts.tolist(), "accuracy": float((pred == y[idx_te]).mean()),
            "per_class_accuracy": acc, "confusion": C.tolist(),
            "data": {k_: v for k_, v in ds.manifest.items() if k_ != "files"}}
    out = Path(out)
    write_npz(out / "model.npz", W=W, b=b, mean=mean, std=std, confusion=C)
    write_json(out / "model.json", meta)
    write_config(out, {"command": "train-attribute", "data": str(data), "attributes_table": attributes_table,
                       "config": config.to_dict()})
    return meta


def _attribute_list(attribute) -> list[str]:
    return (comma_list(attribute) or []) if isinstance(attribute, str) else list(attribute)


def fairness_of_folder(samples, classifier_dir, attribute, out=None, progress: bool = False) -> dict:
    """Class distribution of the images under ``samples`` under the attribute classifier and its
    discrepancies from uniform, measured and corrected by the classifier's held-out confusion
    matrix. Unreadable files are listed and skipped. With ``out``: ``fairness.json``,
    ``predictions.csv`` and ``config.json`` there."""
    from forensics.core.progress import bar
    from forensics.io.files import write_config, write_csv, write_json
    from forensics.io.images import Policy, iter_loaded, scan_nonempty, warn_skipped
    from forensics.metrics.fairness import fairness_report

    clf = AttributeClassifier.load(classifier_dir)
    want = _attribute_list(attribute)
    if want != clf.attributes:
        raise ValueError(f"{classifier_dir} classifies {','.join(clf.attributes)}, not {','.join(want)}")
    files = scan_nonempty(samples)
    pol = Policy("resize", clf.size, "area")
    names = clf.meta["classes"]
    rows, images, kept, skipped = [], [], [], []
    for r in bar(iter_loaded(files, pol), total=len(files), desc="attribute", enabled=progress):
        if r.ok:
            images.append(r.image)
            kept.append(r)
        else:
            skipped.append({"path": str(r.path), "error": r.error})
            warn_skipped(r)
    if not images:
        raise ValueError(f"{samples}: none of the {len(files)} images could be read")
    labels, probs = clf.predict(np.stack(images))
    rep = fairness_report(labels, clf.k, clf.confusion, names)
    rep.update({"samples": str(samples), "classifier": str(classifier_dir), "attribute": ",".join(clf.attributes),
                "classifier_per_class_accuracy": clf.meta.get("per_class_accuracy"), "policy": str(pol),
                "skipped": skipped})
    if out is not None:
        out = Path(out)
        for r, lab, p in zip(kept, labels, probs):
            rows.append({"path": str(r.path), "class": int(lab), "class_name": names[lab],
                         "probability": round(float(p[lab]), 6)})
        rows += [{"path": s["path"], "class": "", "class_name": "error", "probability": ""} for s in skipped]
        write_csv(out / "predictions.csv", rows, ["path", "class", "class_name", "probability"])
        write_json(out / "fairness.json", rep)
        write_config(out, {"command": "fairness", "samples": str(samples), "classifier": str(classifier_dir),
                           "attribute": ",".join(clf.attributes)})
    return rep


def group_fpr_of_verdicts(verdicts, attributes_table, attribute, out=None) -> dict:
    """Per-group false-positive rates of ``forensics detect`` verdicts (a ``.csv`` or ``.json``
    written by it) on **real** images whose groups come from an attribute table (file names
    matched); rows with errors or files missing from the table are counted and left out."""
    import csv
    import json

    from forensics.io.files import write_json
    from forensics.io.sources import read_attributes
    from forensics.metrics.fairness import group_false_positive_rates

    p = Path(verdicts)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such verdicts file")
    if p.suffix.lower() == ".json":
        rows = json.loads(p.read_text(encoding="utf-8"))["rows"]
    else:
        with open(p, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    table, names = read_attributes(attributes_table)
    want = _attribute_list(attribute)
    missing = [a for a in want if a not in names]
    if missing:
        raise ValueError(f"attributes {', '.join(missing)} not in {attributes_table}")
    cols = [names.index(a) for a in want]
    flagged, groups, unmatched, errors = [], [], 0, 0
    cnames = class_names(want)
    for r in rows:
        if r.get("label") not in ("real", "generated"):
            errors += 1
            continue
        a = table.get(Path(r["path"]).name)
        if a is None:
            unmatched += 1
            continue
        flagged.append(r["label"] == "generated")
        groups.append(cnames[int(class_index(a[cols][None])[0])])
    if not flagged:
        raise ValueError(f"{p}: no scored row matches a file of {attributes_table}")
    res = group_false_positive_rates(flagged, groups)
    res.update({"attribute": ",".join(want), "verdicts": str(p), "unmatched": unmatched, "errors": errors})
    if out is not None:
        write_json(Path(out), res)
    return res
