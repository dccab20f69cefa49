"""Parsing the short lists users type: ``"a,b,c"``, ``"0.5,1,2"``, ``"alpha=0.2,policy=cropping"``, and
the toolkit's environment settings (``FORENSICS_THREADS``). Library functions take parsed values; the
CLI (and whatever reads such text) parses with these, so a list is split, and a malformed one refused,
in one way everywhere."""
from __future__ import annotations

import os

from forensics.core.errors import UserError

#: the most threads ``FORENSICS_THREADS`` may ask for
MAX_THREADS = 4096


def names(text: str | None) -> list[str] | None:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; ``None`` or empty text -> ``None`` (nothing given)."""
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def numbers(text: str, what: str, kind: type = float) -> list:
    """``"0.5,1,2"`` -> ``[0.5, 1.0, 2.0]`` (``kind`` int for whole numbers); ``ValueError`` naming
    ``what`` when an entry is not a number of that kind."""
    try:
        return [kind(t) for t in names(text) or []]
    except ValueError:
        noun = "whole numbers" if kind is int else "numbers"
        raise ValueError(f"{what} must be {noun} separated by commas, got {text!r}") from None


def assignments(text: str | None, what: str = "settings") -> dict | None:
    """``"alpha=0.2,n=3,policy=cropping,on=true"`` -> ``{"alpha": 0.2, "n": 3, "policy": "cropping", "on": True}``
    (numbers and ``true``/``false`` parsed, the rest kept as text); ``None`` when nothing is given."""
    if not text:
        return None
    out = {}
    for part in names(text):
        k, eq, v = part.partition("=")
        if not eq:
            raise ValueError(f"{what}: {part!r} is not NAME=VALUE")
        if v.strip().lower() in ("true", "false"):
            out[k.strip()] = v.strip().lower() == "true"
            continue
        try:
            out[k.strip()] = float(v) if any(c in v for c in ".e") else int(v)
        except ValueError:
            out[k.strip()] = v.strip()
    return out


def threads_setting(raw: str | None = None) -> int | None:
    """``FORENSICS_THREADS`` (or ``raw``): the number of threads for spectrum work, ``None`` when unset,
    empty or ``0`` (all cores). Anything but a whole number from 0 to :data:`MAX_THREADS` (``abc``,
    ``1e3``, ``-2``, ``1.5``) is a :class:`~forensics.core.errors.UserError` saying what is wrong."""
    if raw is None:
        raw = os.environ.get("FORENSICS_THREADS", "")
    text = raw.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or int(text) > MAX_THREADS:
        raise UserError(f"FORENSICS_THREADS={raw!r}: expected a whole number of threads from 1 to {MAX_THREADS} "
                        "(0 or unset: all cores)")
    n = int(text)
    return n or None
