"""One validation layer for argument values and for the files the toolkit reads back (model
folders). Every check raises ``ValueError`` with a message about the value, never a flag."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

#: the largest seed NumPy and scikit-learn accept everywhere
MAX_SEED = 2 ** 32 - 1
#: nesting beyond this in a JSON file the toolkit reads is refused (no RecursionError)
MAX_JSON_DEPTH = 64


def finite(name: str, value, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """``value`` as a finite float within ``[lo, hi]`` (open ends where asked)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)) or hi is not None and (v > hi or (hi_open and v == hi)):
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise ValueError(f"{name} must be in {lb}{lo if lo is not None else '-inf'}, "
                         f"{hi if hi is not None else 'inf'}{rb}, got {value!r}")
    return v


def whole(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int within ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}" if hi is not None
                         else f"{name} must be at least {lo}, got {value}")
    return int(value)


def seed(value) -> int:
    return whole("seed", value, 0, MAX_SEED)


def _depth(s: str) -> int:
    """Deepest bracket nesting of JSON text (strings skipped), without parsing it."""
    depth = best = 0
    in_str = esc = False
    for ch in s:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


def read_json_object(path, what: str = "file") -> dict:
    """A JSON file that must hold an object; one-line ``ValueError`` otherwise (bad UTF-8,
    bad JSON, a list/null/string, nesting deeper than :data:`MAX_JSON_DEPTH`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: {what} is not UTF-8 text") from None
    if _depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"{path}: {what} is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{path}: {what} is not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: {what} must hold a JSON object, not {type(obj).__name__}")
    return obj


def model_description(folder) -> dict:
    """``model.json`` of a model folder, checked for the fields every detector needs with the
    right types (a tampered or hand-edited file gives one clear line, never a traceback)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: model folder not found")
    mj = folder / "model.json"
    if not mj.is_file():
        raise ValueError(f"{folder}: not a forensics model (needs model.json)")
    meta = read_json_object(mj, "model description")
    spectral = meta.get("format") == "forensics-detector"
    if spectral and not (folder / "model.npz").is_file():
        raise ValueError(f"{folder}: not a forensics model (needs model.json and model.npz)")
    need = (("format", str), ("class", str), ("params", dict), ("state", dict), ("threshold", (int, float)))
    for key, types in need if spectral else (need[0], need[1], need[4]):
        if key not in meta:
            raise ValueError(f"{mj}: missing {key!r}")
        if not isinstance(meta[key], types) or isinstance(meta[key], bool):
            raise ValueError(f"{mj}: {key!r} has the wrong type ({type(meta[key]).__name__})")
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
    import numpy as np

    from forensics import spectrum

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
