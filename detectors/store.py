"""The model store: one place that reads model folders back.

A model folder holds ``model.json`` (its format, class, parameters, threshold, provenance) beside its
arrays (``model.npz``, or ``model.safetensors`` for the CNN); nothing in it is ever executed. This
module checks the description (:func:`model_description`), dispatches on its ``format`` to the class
that reads it (:func:`load_detector`, the saved classes: :func:`model_classes`), probes the loaded detector
(:func:`fitted_model`) and gives the checked whole (:func:`load_model`), the one loader every verb
uses. The default model lives in the package data (:func:`default_model_dir`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from forensics.core.checks import read_json_object
from forensics.core.errors import one_line
from forensics.detectors.formats import CNN_FORMAT, FORMAT, HASH_KNN_FORMAT, VERSIONS
from forensics.io.sources import data_dir


def model_description(folder) -> dict:
    """``model.json`` of a model folder, checked for the fields every detector needs with the
    right types, a known format and a version of it this toolkit reads (:data:`VERSIONS`; a tampered,
    hand-edited or later release's file gives one clear line, never a traceback or a guess)."""
    folder = model_folder(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: model folder not found (shipped models: {', '.join(shipped_models())})")
    mj = folder / "model.json"
    if not mj.is_file():
        raise ValueError(f"{folder}: not a forensics model (needs model.json)")
    meta = read_json_object(mj, "model description")
    spectral = meta.get("format") == FORMAT
    if spectral and not (folder / "model.npz").is_file():
        raise ValueError(f"{folder}: not a forensics model (needs model.json and model.npz)")
    need = (("format", str), ("class", str), ("params", dict), ("state", dict), ("threshold", (int, float)))
    for key, types in need if spectral else (need[0], need[1], need[4]):
        if key not in meta:
            raise ValueError(f"{mj}: missing {key!r}")
        if not isinstance(meta[key], types) or isinstance(meta[key], bool):
            raise ValueError(f"{mj}: {key!r} has the wrong type ({type(meta[key]).__name__})")
    if meta["format"] not in VERSIONS:
        raise ValueError(f"{mj}: not a forensics model (format {one_line(meta['format'])!r}; this toolkit reads "
                         f"{', '.join(VERSIONS)})")
    version, known = meta.get("format_version"), VERSIONS[meta["format"]]
    if type(version) is not int or version not in known:
        reads = f"version{'s' if len(known) > 1 else ''} {' and '.join(map(str, known))}"
        raise ValueError(f"{mj}: {meta['format']} format version {one_line(repr(version))} is not supported (this "
                         f"toolkit reads {reads}); a later release wrote it, or the file is damaged")
    if not math.isfinite(meta["threshold"]):
        raise ValueError(f"{mj}: threshold is not a finite number")
    pre = meta.get("params", {}).get("preprocess", "none") if isinstance(meta.get("params"), dict) else "none"
    if not isinstance(pre, str):
        raise ValueError(f"{mj}: params.preprocess must be a policy string")
    return meta


def fitted_model(det, folder) -> None:
    """A loaded detector is usable: finite threshold, finite standardisation with no zero
    scale, and it scores a probe batch of the right feature width to finite values in [0, 1]
    (catches wrong-length or wrong-rank arrays of any estimator)."""
    from forensics.spectral import spectrum

    where = f"{folder}: incompatible or damaged model"
    thr = float(det.threshold_)
    if not math.isfinite(thr):
        raise ValueError(f"{where} (threshold is {thr})")
    spectral = getattr(det, "features", None) is not None  # standardised spectral features (else images)
    mean, scale = (getattr(det, "mean_", None), getattr(det, "scale_", None)) if spectral else (None, None)
    if mean is not None:
        mean, scale = np.asarray(mean), np.asarray(scale)
        if mean.ndim != 1 or scale.shape != mean.shape:
            raise ValueError(f"{where} (mean and scale must be vectors of one length, "
                             f"got {mean.shape} and {scale.shape})")
        if not (np.issubdtype(mean.dtype, np.number) and np.issubdtype(scale.dtype, np.number)):
            raise ValueError(f"{where} (mean and scale are not numbers)")
        if not (np.isfinite(mean).all() and np.isfinite(scale).all()) or (scale == 0).any():
            raise ValueError(f"{where} (mean/scale hold non-finite or zero values)")
    try:
        min_side = getattr(det, "min_size", 1)
        # a network built for one image side is probed at that side; a spectral model at 64 px or more
        side = min_side if getattr(det, "features", None) is None and min_side > 1 else max(64, min_side)
        probe = np.zeros((1, side, side, 3), np.uint8)
        probe[0, ::2, ::3] = 200
        width = spectrum.features(probe, det.features).shape[1] if getattr(det, "features", None) else None
        if mean is not None and width is not None and len(mean) != width:
            raise ValueError(f"{where} (it has {len(mean)} features, {det.name} computes {width})")
        X = np.vstack([np.asarray(mean, dtype=np.float64)] * 2) if mean is not None else np.repeat(probe, 2, 0)
        s = np.asarray(det.p_generated(X), dtype=np.float64)
    except ValueError as e:
        if str(e).startswith(where):
            raise
        raise ValueError(f"{where} ({e})") from None
    except Exception as e:  # wrong shapes surface as IndexError, TypeError, ...
        raise ValueError(f"{where} ({type(e).__name__}: {e})") from None
    if s.shape != (2,) or not np.isfinite(s).all():
        raise ValueError(f"{where} (scores a test input to {s.tolist()!r})")


def model_classes() -> dict[str, type]:
    """Every class a ``model.json`` of :data:`FORMAT` may name, registered (a class registers itself
    when its module is imported; :meth:`forensics.detectors.base.Detector.load` and a fusion's members
    are looked up among these)."""
    from forensics.detectors import frank, fusion, native, periodic, robust, spectral  # noqa: F401 (registering)
    from forensics.detectors.base import REGISTRY

    return REGISTRY


def load_detector(folder):
    """The detector saved in ``folder``, whatever its kind: dispatched on the format named in its
    ``model.json`` (the CNN and the hash-kNN detector have files of their own; every other detector is
    ``model.json`` + ``model.npz``); nothing in the folder is executed."""
    folder = Path(folder)
    try:
        fmt = json.loads((folder / "model.json").read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        fmt = FORMAT  # Detector.load gives the precise message
    if fmt == CNN_FORMAT:
        from forensics.detectors.cnn import CNNDetector

        return CNNDetector.load(folder)
    if fmt == HASH_KNN_FORMAT:
        from forensics.detectors.hash_knn import HashKNNDetector

        return HashKNNDetector.load(folder)
    from forensics.detectors.base import Detector

    model_classes()
    return Detector.load(folder)


def default_model_dir() -> Path:
    """The model ``forensics detect`` uses when none is given (package data)."""
    return data_dir() / "models" / "default"


def shipped_models() -> list[str]:
    """The names of the models shipped in the package data (``data/models/NAME``)."""
    root = data_dir() / "models"
    return sorted(p.name for p in root.iterdir() if (p / "model.json").is_file()) if root.is_dir() else []


def model_folder(model=None) -> Path:
    """The folder of ``model``: None is the default model; an existing path is itself; else the name of a
    shipped model, ``NAME`` or ``models/NAME`` (e.g. ``robust-32``, ``models/durall-lr``). A name that is
    neither: the folder as given (the loader says it is not found, and lists the shipped names)."""
    if model is None:
        return default_model_dir()
    folder = Path(model)
    if folder.exists():
        return folder
    name = folder.name if folder.parent in (Path("."), Path("models")) else None
    if name and (data_dir() / "models" / name / "model.json").is_file():
        return data_dir() / "models" / name
    return folder


def load_model(model_dir=None):
    """The model in ``model_dir`` (a folder, or a shipped model's name: :func:`model_folder`), or the
    default model shipped in ``data/models/default``; checked to be complete and usable (one-line
    ``ValueError`` otherwise)."""
    folder = model_folder(model_dir)
    model_description(folder)
    try:
        det = load_detector(folder)
    except (ValueError, OSError):
        raise
    except RecursionError:
        raise ValueError(f"{folder}: model description is nested too deeply") from None
    except Exception as e:  # whatever a tampered file provokes inside the loader
        raise ValueError(f"{folder}: incompatible or damaged model ({type(e).__name__}: {one_line(e)})") from None
    fitted_model(det, folder)
    return det


def stored_policy(model_dir) -> str:
    """The preprocessing policy recorded in a model folder, read without loading it (so
    decoding can start while the detector's libraries import)."""
    meta = model_description(model_folder(model_dir))
    return str(meta["params"].get("preprocess", "none"))
