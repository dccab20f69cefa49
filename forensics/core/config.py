"""Typed configurations: one frozen dataclass per thing that runs.

A config is a value: built from defaults, a named preset constructor (``GanConfig.tiny(...)``),
a JSON file or CLI flags, and written as JSON beside the results it produced so the run can be
repeated with ``--config FILE``. ``replace`` gives a changed copy, ``fingerprint`` a stable key
for caches (chained with the upstream stage's key, see :func:`chain`).

Every numeric field declares the values it may take with its type, ``batch: Count = 64`` or
``size: Annotated[int, Range(16)] = 32`` (:class:`Range`; a tuple field's range holds for each
element). However a config is built (defaults, a file, flags, ``replace``), its numbers are checked
against their ranges before ``validate`` runs: an out-of-range value raises :class:`OutOfRange`
naming the setting (the CLI names its flag), so none reaches the code that computes.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import numbers
import types
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

from forensics.core.checks import MAX_SEED
from forensics.core.errors import OutOfRange

C = TypeVar("C", bound="Config")


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a numeric setting may take: ``lo <= v <= hi`` (``None``: no bound; an open end
    excludes the bound itself, for floats). Declared on a config field as ``Annotated[int, Range(1)]``."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def text(self) -> str:
        """``must be at least 1``, ``must be in (0, 1)``, ..."""
        num = lambda x: str(int(x)) if float(x).is_integer() else repr(float(x))
        if self.lo is not None and self.hi is not None:
            return (f"must be in {'(' if self.lo_open else '['}{num(self.lo)}, "
                    f"{num(self.hi)}{')' if self.hi_open else ']'}")
        if self.lo is not None:
            return f"must be {'greater than' if self.lo_open else 'at least'} {num(self.lo)}"
        if self.hi is not None:
            return f"must be {'less than' if self.hi_open else 'at most'} {num(self.hi)}"
        return "must be a number"

    def check(self, name: str, value, kind: type = float, setting: str | None = None):
        """``value`` as a ``kind`` (int or float, finite) inside the range; :class:`OutOfRange` naming
        ``name`` otherwise (``setting``: the field it sets, default ``name``)."""
        def refuse(requirement):
            return OutOfRange(name, f"{requirement}, got {value!r}", setting, value)

        if isinstance(value, bool) or not isinstance(value, numbers.Integral if kind is int else numbers.Real):
            raise refuse("must be a whole number" if kind is int else "must be a number")
        v = int(value) if kind is int else float(value)
        if not math.isfinite(v):
            raise refuse("must be a finite number")
        if (self.lo is not None and (v < self.lo or self.lo_open and v == self.lo)
                or self.hi is not None and (v > self.hi or self.hi_open and v == self.hi)):
            raise refuse(self.text())
        return v


#: common ranges of config fields
Seed = Annotated[int, Range(0, MAX_SEED)]
Count = Annotated[int, Range(1)]  # a number of things or steps, at least one
NonNegative = Annotated[float, Range(0)]
Positive = Annotated[float, Range(0, lo_open=True)]  # e.g. a learning rate
Probability = Annotated[float, Range(0, 1)]
Fraction = Annotated[float, Range(0, 1, lo_open=True, hi_open=True)]  # a share strictly between 0 and 1


def _numeric(tp):
    """``(kind, range, is_tuple)`` of a field annotated ``int``/``float`` (optionally ``| None``, a
    tuple of them, with an ``Annotated`` range), else ``None``."""
    rng = None
    for _ in range(3):  # Annotated[...] | None, Annotated[X | None, ...], tuple[Annotated[...], ...]
        if typing.get_origin(tp) is Annotated:
            rng = next((m for m in tp.__metadata__ if isinstance(m, Range)), rng)
            tp = tp.__origin__
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return None
            tp = args[0]
        else:
            break
    is_tuple = typing.get_origin(tp) is tuple
    if is_tuple:
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if not args or any(a != args[0] for a in args):
            return None
        inner = _numeric(args[0])
        return None if inner is None else (inner[0], inner[1] or rng, True)
    return (tp, rng, False) if tp in (int, float) else None


@functools.cache
def numeric_fields(cls) -> dict[str, tuple]:
    """``name -> (kind, Range or None, is_tuple)`` of a config class's numeric fields."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: n for f in dataclasses.fields(cls) if (n := _numeric(hints[f.name])) is not None}


def _jsonable(v):
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return v.to_dict() if isinstance(v, Config) else dataclasses.asdict(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, Path):
        return str(v)
    return v


def fingerprint(value) -> str:
    """A short stable hash of any JSON-able value (dict keys sorted)."""
    return hashlib.sha256(json.dumps(_jsonable(value), sort_keys=True, default=str).encode()).hexdigest()[:16]


def chain(upstream: str | None, own, produced=None) -> str:
    """A stage's cache key: its own settings, its upstream stage's key and what it actually produced
    (e.g. the step a checkpoint reached). Changing anything upstream changes every key below it."""
    return fingerprint({"upstream": upstream, "own": own, "produced": produced})


def _coerce(tp, v, where: str):
    """``v`` read from JSON as the annotated type ``tp`` (tuples from lists, nested configs from dicts)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if v is None:
            return None
        return _coerce(args[0], v, where) if len(args) == 1 else v
    if v is None:
        return v
    if isinstance(tp, type) and issubclass(tp, Config):
        if not isinstance(v, dict):
            raise ValueError(f"{where}: expected an object, got {type(v).__name__}")
        return tp.from_dict(v)
    if origin is tuple or tp is tuple:
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {type(v).__name__}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        return tuple(_coerce(inner, x, where) for x in v)
    if origin is dict or tp is dict:
        if not isinstance(v, dict):
            raise ValueError(f"{where}: expected an object, got {type(v).__name__}")
        return dict(v)
    if tp is float and isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if tp in (int, float, str, bool) and not isinstance(v, tp) or (tp is int and isinstance(v, bool)):
        raise ValueError(f"{where}: expected {tp.__name__}, got {v!r}")
    return v


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every configuration. Subclasses are ``@dataclass(frozen=True)`` with typed fields
    (numeric ones with their :class:`Range`) and may define ``validate(self)`` (raise ``ValueError``
    with a message about the values)."""

    def __post_init__(self):
        for name, tp in typing.get_type_hints(type(self)).items():  # lists given for tuple fields
            v = getattr(self, name, None)
            if isinstance(v, list) and (typing.get_origin(tp) is tuple or tp is tuple):
                object.__setattr__(self, name, tuple(v))
        self.check_ranges()
        self.validate()

    def check_ranges(self) -> None:
        """Every numeric field a number of its kind inside its declared range (ints stay ints, floats
        become floats); :class:`OutOfRange` naming the first that is not."""
        for name, (kind, rng, is_tuple) in numeric_fields(type(self)).items():
            v = getattr(self, name)
            if v is None:
                continue
            rng = rng or Range()
            if is_tuple:
                if not isinstance(v, tuple):
                    raise OutOfRange(name, f"must be a list of numbers, got {v!r}", value=v)
                v = tuple(rng.check(name, x, kind) for x in v)
            else:
                v = rng.check(name, v, kind)
            object.__setattr__(self, name, v)

    def validate(self) -> None:  # overridden by subclasses
        pass

    # ------------------------------------------------------------------ JSON in and out
    def to_dict(self) -> dict:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    #: fields a complete record (``from_dict(..., complete=True)``) may lack: added after records
    #: were first written, their default is what the older records meant
    LATER_FIELDS = ()  # (no annotation: a class attribute, not a field)

    @classmethod
    def from_dict(cls: type[C], d: dict, complete: bool = False, **overrides) -> C:
        """Build from a dict (e.g. a ``config.json``); unknown keys are an error, ``overrides`` that are
        not ``None`` win over ``d``. ``complete``: ``d`` is a record the toolkit wrote (a run's
        ``config.json``), so a missing setting is an error (except :attr:`LATER_FIELDS`), not its default."""
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(d).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown setting(s) {', '.join(unknown)}")
        missing = sorted(names - set(d) - set(cls.LATER_FIELDS)) if complete else []
        if missing:
            raise ValueError(f"{cls.__name__}: missing setting(s) {', '.join(missing)}")
        merged = {**d, **{k: v for k, v in overrides.items() if v is not None}}
        kw = {k: _coerce(hints[k], v, f"{cls.__name__}.{k}") for k, v in merged.items() if k in names}
        try:
            return cls(**kw)
        except TypeError as e:  # a required field missing
            raise ValueError(f"{cls.__name__}: {e}") from None

    @classmethod
    def load(cls: type[C], path, complete: bool = False, **overrides) -> C:
        """Read a config JSON file (a toolkit ``config.json`` may hold it under the key ``"config"``);
        ``complete`` as in :meth:`from_dict`."""
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such config file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a readable JSON config ({e})") from None
        if isinstance(d, dict) and isinstance(d.get("config"), dict):
            d = d["config"]
        try:
            return cls.from_dict(d, complete, **overrides)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def replace(self: C, **changes) -> C:
        return dataclasses.replace(self, **changes)

    def fingerprint(self) -> str:
        return fingerprint(self.to_dict())
