"""One validation layer for argument values and for the JSON files the toolkit reads back (model
folders are checked by :mod:`forensics.detectors.store` with these). Every check raises
``ValueError`` with a message about the value, never a flag."""
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
